//! A rolling window of event counts and latencies: the "per second" and "p99" in live stats.
//!
//! Pure over the `Instant`s it is given (tests pass their own), bounded in memory (a fixed
//! ring of one-second slots, each with a small HDR histogram).

use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// Latencies are recorded in microseconds, from 1 µs to 10 minutes, 2 significant digits.
const MAX_LATENCY_MICROS: u64 = 600_000_000;

#[derive(Debug, Clone)]
struct Slot {
    index: u64,
    events: u64,
    latencies: Histogram<u64>,
}

/// Counts and latencies over the last `slots × slot_len`.
#[derive(Debug, Clone)]
pub struct RollingWindow {
    origin: Instant,
    slot_len: Duration,
    slots: Vec<Slot>,
}

impl RollingWindow {
    /// A window of `slots` slots of `slot_len` each, starting at `origin`.
    pub fn new(origin: Instant, slot_len: Duration, slots: usize) -> Self {
        assert!(slots > 0 && !slot_len.is_zero(), "a window needs slots"); // caller bug
        let empty = Slot {
            index: u64::MAX,
            events: 0,
            latencies: Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 2)
                .expect("static histogram bounds are valid"),
        };
        RollingWindow {
            origin,
            slot_len,
            slots: vec![empty; slots],
        }
    }

    /// Ten one-second slots.
    pub fn ten_seconds(origin: Instant) -> Self {
        Self::new(origin, Duration::from_secs(1), 10)
    }

    fn index(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        (elapsed.as_nanos() / self.slot_len.as_nanos()) as u64
    }

    fn slot_mut(&mut self, now: Instant) -> &mut Slot {
        let index = self.index(now);
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[(index % len) as usize];
        if slot.index != index {
            slot.index = index;
            slot.events = 0;
            slot.latencies.reset();
        }
        slot
    }

    fn live(&self, now: Instant) -> impl Iterator<Item = &Slot> {
        let current = self.index(now);
        let len = self.slots.len() as u64;
        self.slots
            .iter()
            .filter(move |s| s.index <= current && s.index + len > current)
    }

    /// Records `n` events at `now`.
    pub fn record_events(&mut self, now: Instant, n: u64) {
        self.slot_mut(now).events += n;
    }

    /// Records one latency at `now`.
    pub fn record_latency(&mut self, now: Instant, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_LATENCY_MICROS);
        self.slot_mut(now).latencies.saturating_record(micros);
    }

    /// Events per second over the part of the window that has elapsed (at least one slot).
    pub fn rate(&self, now: Instant) -> f64 {
        let events: u64 = self.live(now).map(|s| s.events).sum();
        let window = self.slot_len * self.slots.len() as u32;
        let covered = now
            .saturating_duration_since(self.origin)
            .clamp(self.slot_len, window);
        events as f64 / covered.as_secs_f64()
    }

    /// The `quantile` (0..=1) of the latencies in the window, if any were recorded.
    pub fn latency_quantile(&self, now: Instant, quantile: f64) -> Option<Duration> {
        let mut merged: Option<Histogram<u64>> = None;
        for slot in self.live(now).filter(|s| !s.latencies.is_empty()) {
            match &mut merged {
                None => merged = Some(slot.latencies.clone()),
                // Same bounds everywhere, so adding cannot fail.
                Some(m) => m.add(&slot.latencies).expect("same histogram bounds"),
            }
        }
        merged.map(|m| Duration::from_micros(m.value_at_quantile(quantile)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_over_the_elapsed_part_then_the_whole_window() {
        let t0 = Instant::now();
        let mut w = RollingWindow::ten_seconds(t0);
        w.record_events(t0, 100);
        // Half a second in: one slot's worth at least.
        assert_eq!(w.rate(t0 + Duration::from_millis(500)), 100.0);
        for s in 1..20 {
            w.record_events(t0 + Duration::from_secs(s), 100);
        }
        // 19.5 s in: the last ten slots hold 1000 events over 10 s.
        assert_eq!(w.rate(t0 + Duration::from_millis(19_500)), 100.0);
        // Nothing for a long time: the old slots no longer count.
        assert_eq!(w.rate(t0 + Duration::from_secs(100)), 0.0);
    }

    #[test]
    fn latency_quantiles() {
        let t0 = Instant::now();
        let mut w = RollingWindow::ten_seconds(t0);
        assert_eq!(w.latency_quantile(t0, 0.5), None);
        for ms in 1..=100 {
            w.record_latency(
                t0 + Duration::from_millis(ms * 30),
                Duration::from_millis(ms),
            );
        }
        let now = t0 + Duration::from_secs(3);
        let p50 = w.latency_quantile(now, 0.5).unwrap().as_millis();
        let p99 = w.latency_quantile(now, 0.99).unwrap().as_millis();
        assert!((49..=51).contains(&p50), "{p50}");
        assert!((98..=100).contains(&p99), "{p99}");
        // Twenty seconds later they have rolled out.
        assert_eq!(w.latency_quantile(now + Duration::from_secs(20), 0.5), None);
    }
}
