//! Jittered, bounded, exponential backoff between subscription attempts.
//!
//! Owns the arithmetic of the delays and nothing else: the connection state machine decides
//! when a failure happened and when a subscription succeeded (which resets the backoff).
//!
//! Mesos' scheduler guide asks for exponential backoff when re-subscribing, capped at about
//! 15 s (reference 2.2). The jitter matters most on the *first* retry: after a master
//! failover every framework of the cluster reconnects at the same moment.

use std::time::Duration;

/// The delays: the n-th consecutive failure waits a uniformly jittered delay in
/// `[c/2, 3c/2)` where `c = min · 2ⁿ`, clamped to `[min, max]`. So every delay lies within
/// `min..=max`, grows exponentially, and two clients never stay in lockstep.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff between `min` and `max` (a `max` below `min` is taken as `min`).
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay after the next failure, given a jitter in `[0, 1)`, without counting it.
    pub fn peek(&self, jitter: f64) -> Duration {
        // 2^20 · min is far beyond any sensible max; stop doubling there (no overflow).
        let ceiling = self
            .min
            .saturating_mul(1 << self.failures.min(20))
            .min(self.max);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.5
        };
        ceiling.mul_f64(0.5 + jitter).clamp(self.min, self.max)
    }

    /// Counts a failure and returns how long to wait before the next attempt.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let delay = self.peek(jitter);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// After a success: the next failure starts from `min` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Counts a failure and sleeps its delay (on `tokio::time`, so paused-clock tests can
    /// advance it).
    pub async fn wait(&mut self, jitter: f64) {
        tokio::time::sleep(self.next_delay(jitter)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn delays_grow_exponentially_within_bounds() {
        let mut b = Backoff::new(MS(100), MS(1500));
        // Jitter 0.5 gives the ceiling itself: 100, 200, 400, 800, then the cap.
        let delays: Vec<Duration> = (0..7).map(|_| b.next_delay(0.5)).collect();
        assert_eq!(
            delays,
            vec![
                MS(100),
                MS(200),
                MS(400),
                MS(800),
                MS(1500),
                MS(1500),
                MS(1500)
            ]
        );
        assert_eq!(b.failures(), 7);
    }

    #[test]
    fn jitter_spreads_each_step_and_never_leaves_min_max() {
        // (failures before, jitter, expected delay)
        let table = [
            (0, 0.0, MS(100)),  // 50 clamped up to min
            (0, 0.75, MS(125)), // 100 · 1.25
            (1, 0.0, MS(100)),  // 200 · 0.5
            (1, 0.75, MS(250)), // 200 · 1.25
            (3, 0.0, MS(400)),  // 800 · 0.5
            (3, 0.75, MS(1000)),
            (10, 0.0, MS(750)),   // cap 1500 · 0.5
            (10, 0.75, MS(1500)), // clamped down to max
            (40, 0.25, MS(1125)), // no overflow on long outages
        ];
        for (failures, jitter, expected) in table {
            let b = Backoff {
                min: MS(100),
                max: MS(1500),
                failures,
            };
            let d = b.peek(jitter);
            assert_eq!(d, expected, "failures {failures}, jitter {jitter}");
        }
        for failures in 0..64 {
            for step in 0..100 {
                let jitter = f64::from(step) / 100.0;
                let b = Backoff {
                    min: MS(100),
                    max: MS(1500),
                    failures,
                };
                let d = b.peek(jitter);
                assert!(
                    (MS(100)..=MS(1500)).contains(&d),
                    "failures {failures}, jitter {jitter}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn garbage_jitter_and_inverted_bounds_stay_sane() {
        let b = Backoff::new(MS(500), MS(100));
        assert_eq!(b.peek(f64::NAN), MS(500));
        assert_eq!(b.peek(-3.0), MS(500));
        assert_eq!(b.peek(7.0), MS(500));
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(MS(100), MS(10_000));
        for _ in 0..5 {
            b.next_delay(0.5);
        }
        assert_eq!(b.peek(0.5), MS(3200));
        b.reset();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.next_delay(0.5), MS(100));
    }

    /// The wait runs on tokio's clock: with the clock paused, the runtime jumps straight to
    /// each deadline, and the elapsed virtual time is exactly the computed delay.
    #[tokio::test(start_paused = true)]
    async fn waits_on_the_tokio_clock() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(15));
        let mut elapsed = Vec::new();
        for jitter in [0.5, 0.5, 0.0, 0.75, 0.5, 0.5] {
            let start = tokio::time::Instant::now();
            b.wait(jitter).await;
            elapsed.push(start.elapsed().as_millis());
        }
        // 1 s; 2 s; 4 s · 0.5; 8 s · 1.25; 16 s capped at 15 s; cap.
        assert_eq!(elapsed, vec![1000, 2000, 2000, 10000, 15000, 15000]);
        b.reset();
        let start = tokio::time::Instant::now();
        b.wait(0.5).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
