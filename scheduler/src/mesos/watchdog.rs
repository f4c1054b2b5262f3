//! The heartbeat watchdog: when must the next event have arrived?
//!
//! Owns one deadline and the rule that moves it; it does not sleep and does not close
//! anything (the connection task sleeps until [`Watchdog::deadline`] and reports the stream
//! lost when it passes).
//!
//! Mesos sends HEARTBEAT every `heartbeat_interval_seconds` (15 s; the first one right after
//! SUBSCRIBED) and tells schedulers to treat "no event at all for several intervals" as a
//! dead connection, close it and re-subscribe (reference 2.2: `scheduler.proto` HEARTBEAT
//! comment; "Network partitions" in the scheduler HTTP API docs). A half-open TCP
//! connection never errors by itself, so without this a network partition would leave the
//! scheduler waiting forever.

use std::time::Duration;

use tokio::time::Instant;

/// Mesos' fixed heartbeat interval, used when SUBSCRIBED does not carry one.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// Longest interval we believe: a garbage `heartbeat_interval_seconds` must not switch the
/// watchdog off.
const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3600);

/// The interval a SUBSCRIBED event announces, made safe: absent, negative, zero, NaN or
/// absurd values fall back to Mesos' 15 s or are capped at an hour.
pub fn heartbeat_interval(announced: Option<f64>) -> Duration {
    match announced {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => {
            Duration::from_secs_f64(seconds.min(MAX_HEARTBEAT_INTERVAL.as_secs_f64()))
        }
        _ => DEFAULT_HEARTBEAT_INTERVAL,
    }
}

/// How long a subscription may stay silent: `misses × interval` (at least one interval).
pub fn silence_window(interval: Duration, misses: u32) -> Duration {
    interval.saturating_mul(misses.max(1))
}

/// A deadline that every event pushes back by a fixed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watchdog {
    window: Duration,
    deadline: Instant,
}

impl Watchdog {
    /// Armed at `now`: expires after `window` without an event.
    pub fn armed(window: Duration, now: Instant) -> Watchdog {
        Watchdog {
            window,
            deadline: now + window,
        }
    }

    /// An event arrived at `now`.
    pub fn saw_event(&mut self, now: Instant) {
        self.deadline = now + self.window;
    }

    /// When the stream is considered dead.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The window it was armed with.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Whether the deadline has passed at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_intervals_are_made_safe() {
        let table = [
            (None, DEFAULT_HEARTBEAT_INTERVAL),
            (Some(15.0), Duration::from_secs(15)),
            (Some(1.0), Duration::from_secs(1)),
            (Some(0.25), Duration::from_millis(250)),
            (Some(0.0), DEFAULT_HEARTBEAT_INTERVAL),
            (Some(-1.0), DEFAULT_HEARTBEAT_INTERVAL),
            (Some(f64::NAN), DEFAULT_HEARTBEAT_INTERVAL),
            (Some(f64::INFINITY), DEFAULT_HEARTBEAT_INTERVAL),
            (Some(1e12), MAX_HEARTBEAT_INTERVAL),
        ];
        for (announced, expected) in table {
            assert_eq!(heartbeat_interval(announced), expected, "{announced:?}");
        }
    }

    #[test]
    fn window_is_misses_times_interval() {
        assert_eq!(
            silence_window(Duration::from_secs(15), 5),
            Duration::from_secs(75)
        );
        assert_eq!(
            silence_window(Duration::from_secs(1), 0),
            Duration::from_secs(1)
        );
    }

    /// Paused clock: the deadline moves with every event and fires exactly one window after
    /// the last one.
    #[tokio::test(start_paused = true)]
    async fn fires_one_window_after_the_last_event() {
        let start = Instant::now();
        let mut dog = Watchdog::armed(Duration::from_secs(3), start);
        // Events at 1 s, 2 s and 4 s keep it alive.
        for at in [1, 2, 4] {
            tokio::time::sleep_until(start + Duration::from_secs(at)).await;
            assert!(!dog.expired(Instant::now()));
            dog.saw_event(Instant::now());
        }
        // Then silence: it fires at 4 s + 3 s, not before.
        tokio::time::sleep_until(start + Duration::from_millis(6999)).await;
        assert!(!dog.expired(Instant::now()));
        tokio::time::sleep_until(dog.deadline()).await;
        assert!(dog.expired(Instant::now()));
        assert_eq!(Instant::now() - start, Duration::from_secs(7));
    }
}
