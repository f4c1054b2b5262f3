//! Jittered, bounded exponential backoff.
//!
//! Pure: the delay for an attempt is a function of the attempt number and a jitter draw in
//! `[0, 1)`, so it is tested without clocks. Callers reset by starting again at attempt 0
//! after a success.

use std::time::Duration;

/// Exponential backoff: attempt `n` waits between half and all of
/// `min(max, initial * 2^n)` ("equal jitter"), so retries never stampede and never spin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first retry's delay.
    pub initial: Duration,
    /// Ceiling of any delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 = first retry), given `jitter` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.min(31)))
            .min(self.max);
        let jitter = jitter.clamp(0.0, 1.0);
        ceiling.mul_f64(0.5 + jitter / 2.0)
    }

    /// [`Backoff::delay`] with a random jitter.
    pub fn delay_random(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        };
        let table = [
            (0, 0.0, 50),
            (0, 1.0, 100),
            (1, 0.0, 100),
            (3, 1.0, 800),
            (6, 1.0, 5000),
            (60, 1.0, 5000),
            (60, 0.0, 2500),
            (u32::MAX, 0.5, 3750),
        ];
        for (attempt, jitter, ms) in table {
            assert_eq!(
                b.delay(attempt, jitter).as_millis(),
                ms,
                "attempt {attempt} jitter {jitter}"
            );
        }
    }
}
