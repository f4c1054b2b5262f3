//! The producer's rate control: when may the next event go out.
//!
//! Pure over the `Instant`s it is given. Event `k` after the schedule's anchor is due at
//! `anchor + k / rate`; the producer asks how many are due now, sends them, and sleeps until
//! the next one is due. Computing from the anchor (not by adding intervals) keeps rounding from
//! drifting, so the count over any 10 s window stays within 2 % of the target (or one event,
//! the quantum of counting, at low rates). A producer that fell behind (Kafka's queue was full)
//! catches up by at most [`MAX_CATCH_UP`] worth of events and drops the rest of its debt, so
//! it never floods the topic after a stall. Changing the rate re-anchors at the time the next
//! event would have been due under the new rate, with no burst and no gap.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// The most a late producer catches up on.
pub const MAX_CATCH_UP: Duration = Duration::from_secs(1);

/// Highest settable rate (events per second); far above what one producer can send.
pub const MAX_RATE: f64 = 10_000_000.0;

/// A target total rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetRate {
    /// Events per second, summed over all sensors.
    PerSecond(f64),
    /// As fast as Kafka takes them (benchmarks).
    Unthrottled,
}

impl TargetRate {
    /// Checks the rate is usable: positive, finite, at most [`MAX_RATE`].
    pub fn validate(self) -> Result<Self, String> {
        match self {
            TargetRate::PerSecond(r) if r.is_finite() && r > 0.0 && r <= MAX_RATE => Ok(self),
            TargetRate::PerSecond(r) => Err(format!(
                "rate {r} is not usable; give events per second above 0 and at most {MAX_RATE}, or `unthrottled`"
            )),
            TargetRate::Unthrottled => Ok(self),
        }
    }
}

impl FromStr for TargetRate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("unthrottled") || text.eq_ignore_ascii_case("max") {
            return Ok(TargetRate::Unthrottled);
        }
        let number = text.strip_suffix("/s").unwrap_or(text).trim();
        number
            .parse::<f64>()
            .map_err(|_| {
                format!(
                    "{text:?} is not a rate; give events per second (e.g. 500) or `unthrottled`"
                )
            })
            .and_then(|r| TargetRate::PerSecond(r).validate())
    }
}

impl fmt::Display for TargetRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetRate::PerSecond(r) => write!(f, "{r}/s"),
            TargetRate::Unthrottled => f.write_str("unthrottled"),
        }
    }
}

/// The send schedule.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: TargetRate,
    anchor: Instant,
    released: u64,
}

impl Pacer {
    /// A schedule whose first event is due at `now`.
    pub fn new(rate: TargetRate, now: Instant) -> Self {
        Pacer {
            rate,
            anchor: now,
            released: 0,
        }
    }

    /// The current target.
    pub fn rate(&self) -> TargetRate {
        self.rate
    }

    /// How many events are due at `now` and not yet released (`u64::MAX` when unthrottled).
    /// Drops debt beyond [`MAX_CATCH_UP`] first.
    pub fn due(&mut self, now: Instant) -> u64 {
        let TargetRate::PerSecond(rate) = self.rate else {
            return u64::MAX;
        };
        let owed = self.scheduled_by(now, rate).saturating_sub(self.released);
        let cap = ((rate * MAX_CATCH_UP.as_secs_f64()).ceil() as u64).max(1);
        if owed > cap {
            // Re-anchor so that exactly `cap` events are due now.
            let back = Duration::from_secs_f64((cap - 1) as f64 / rate);
            self.anchor = now.checked_sub(back).unwrap_or(now);
            self.released = 0;
        }
        self.scheduled_by(now, rate).saturating_sub(self.released)
    }

    /// Events `0..n` after the anchor are due by `now`: `n = floor(elapsed × rate) + 1`.
    fn scheduled_by(&self, now: Instant, rate: f64) -> u64 {
        if now < self.anchor {
            return 0;
        }
        let elapsed = (now - self.anchor).as_secs_f64();
        // A hair of tolerance so that an event due at exactly `now` is not lost to rounding.
        (elapsed * rate + 1e-9).floor() as u64 + 1
    }

    /// `n` events were sent.
    pub fn release(&mut self, n: u64) {
        self.released += n;
    }

    /// When the next event is due (`None` when unthrottled: always).
    pub fn next_due(&self) -> Option<Instant> {
        match self.rate {
            TargetRate::PerSecond(rate) => {
                Some(self.anchor + Duration::from_secs_f64(self.released as f64 / rate))
            }
            TargetRate::Unthrottled => None,
        }
    }

    /// Changes the rate at `now`. The next event is due one new interval after the last one
    /// sent (or now, if that is already past or nothing was sent).
    pub fn set_rate(&mut self, rate: TargetRate, now: Instant) {
        let last_sent = match self.rate {
            TargetRate::PerSecond(old) if self.released > 0 => {
                Some(self.anchor + Duration::from_secs_f64((self.released - 1) as f64 / old))
            }
            _ => None,
        };
        let anchor = match (rate, last_sent) {
            (TargetRate::PerSecond(new), Some(last)) => {
                (last + Duration::from_secs_f64(1.0 / new)).max(now)
            }
            _ => now,
        };
        *self = Pacer {
            rate,
            anchor,
            released: 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Drives a pacer like the producer does, with late wakeups, and returns the send times.
    fn simulate(rate: f64, seconds: u64, max_late: Duration, seed: u64) -> (Instant, Vec<Instant>) {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(seconds);
        let mut pacer = Pacer::new(TargetRate::PerSecond(rate), t0);
        let mut now = t0;
        let mut sent = Vec::new();
        while now < end {
            let due = pacer.due(now);
            for _ in 0..due {
                sent.push(now);
            }
            pacer.release(due);
            // Timers fire no earlier than asked and at 1 ms granularity, sometimes late.
            let next = pacer
                .next_due()
                .unwrap()
                .max(now + Duration::from_millis(1));
            let late = Duration::from_micros(rng.random_range(0..=max_late.as_micros() as u64));
            now = next + late;
        }
        (t0, sent)
    }

    /// Every 10 s window starting on a 10 ms grid holds rate×10 events ± max(2 %, 1 event).
    fn assert_windows(rate: f64, t0: Instant, sent: &[Instant], seconds: u64) {
        let expected = rate * 10.0;
        let tolerance = (expected * 0.02).max(1.0);
        let mut start = t0;
        while start + Duration::from_secs(10) <= t0 + Duration::from_secs(seconds) {
            let end = start + Duration::from_secs(10);
            let count = sent.iter().filter(|t| **t >= start && **t < end).count() as f64;
            assert!(
                (count - expected).abs() <= tolerance,
                "rate {rate}: {count} events in the window at +{:?}, expected {expected} ± {tolerance}",
                start - t0
            );
            start += Duration::from_millis(10);
        }
    }

    #[test]
    fn holds_the_rate_over_any_ten_seconds() {
        for (rate, late_ms) in [(1.0, 20), (3.3, 20), (50.0, 5), (1000.0, 3), (20_000.0, 2)] {
            let seconds = if rate > 10_000.0 { 12 } else { 25 };
            let (t0, sent) = simulate(rate, seconds, Duration::from_millis(late_ms), 7);
            assert_windows(rate, t0, &sent, seconds);
        }
    }

    #[test]
    fn catches_up_at_most_one_second() {
        let t0 = Instant::now();
        let mut p = Pacer::new(TargetRate::PerSecond(100.0), t0);
        assert_eq!(p.due(t0), 1);
        p.release(1);
        // A 5 s stall: 500 events owed, only 100 (one second's worth) are due now.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(p.due(later), 100);
        p.release(100);
        assert_eq!(p.due(later), 0);
        // And the schedule continues from there at the normal pace.
        assert_eq!(p.due(later + Duration::from_millis(10)), 1);
    }

    #[test]
    fn rate_changes_without_burst_or_gap() {
        let t0 = Instant::now();
        let mut p = Pacer::new(TargetRate::PerSecond(1.0), t0);
        assert_eq!(p.due(t0), 1);
        p.release(1);
        // Raised to 10/s half a second later: next event 0.1 s after the last, i.e. now.
        let t1 = t0 + Duration::from_millis(500);
        p.set_rate(TargetRate::PerSecond(10.0), t1);
        assert_eq!(p.next_due(), Some(t1));
        assert_eq!(p.due(t1), 1);
        p.release(1);
        assert_eq!(p.due(t1 + Duration::from_millis(99)), 0);
        assert_eq!(p.due(t1 + Duration::from_millis(100)), 1);
        p.release(1);
        // Lowered to 0.5/s: the next one 2 s after the last one sent.
        p.set_rate(TargetRate::PerSecond(0.5), t1 + Duration::from_millis(150));
        assert_eq!(p.next_due(), Some(t1 + Duration::from_millis(2100)));
        p.set_rate(TargetRate::Unthrottled, t1);
        assert_eq!(p.due(t1), u64::MAX);
        assert_eq!(p.next_due(), None);
    }

    #[test]
    fn parses_rates() {
        assert_eq!("500".parse(), Ok(TargetRate::PerSecond(500.0)));
        assert_eq!("2.5/s".parse(), Ok(TargetRate::PerSecond(2.5)));
        assert_eq!("unthrottled".parse(), Ok(TargetRate::Unthrottled));
        for bad in ["0", "-1", "fast", "NaN", "inf", "1e12"] {
            assert!(bad.parse::<TargetRate>().is_err(), "{bad}");
        }
        assert_eq!(TargetRate::PerSecond(500.0).to_string(), "500/s");
    }
}
