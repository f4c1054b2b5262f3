//! The demo's load over time ([`Schedule`]: steady, burst, steady again) and the produce and
//! consume rates it measures from the topic's offsets ([`RateMeter`]). Pure: times are
//! durations since the schedule started.

use std::collections::VecDeque;
use std::time::Duration;

/// What a phase of the load is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// The steady load one consumer handles.
    Steady,
    /// The burst one consumer cannot keep up with.
    Burst,
    /// Steady again: the backlog drains, the group shrinks.
    Recover,
}

impl Load {
    /// How the live view names it.
    pub fn name(self) -> &'static str {
        match self {
            Load::Steady => "steady",
            Load::Burst => "BURST",
            Load::Recover => "steady again",
        }
    }
}

/// One phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// What it is.
    pub load: Load,
    /// Events per second (the one producer task's rate).
    pub rate: f64,
    /// When it starts.
    pub start: Duration,
    /// How long it lasts.
    pub length: Duration,
}

impl Phase {
    /// When it ends.
    pub fn end(&self) -> Duration {
        self.start + self.length
    }
}

/// Steady, burst, steady again, back to back.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    phases: [Phase; 3],
}

impl Schedule {
    /// The three phases.
    pub fn new(
        rate: f64,
        burst_rate: f64,
        steady: Duration,
        burst: Duration,
        recover: Duration,
    ) -> Schedule {
        let first = Phase {
            load: Load::Steady,
            rate,
            start: Duration::ZERO,
            length: steady,
        };
        let second = Phase {
            load: Load::Burst,
            rate: burst_rate,
            start: first.end(),
            length: burst,
        };
        let third = Phase {
            load: Load::Recover,
            rate,
            start: second.end(),
            length: recover,
        };
        Schedule {
            phases: [first, second, third],
        }
    }

    /// The phases, in order.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The steady rate.
    pub fn steady_rate(&self) -> f64 {
        self.phases[0].rate
    }

    /// The whole schedule's length.
    pub fn total(&self) -> Duration {
        self.phases[2].end()
    }

    /// The phase at `elapsed` and its index; `None` once the schedule is over.
    pub fn at(&self, elapsed: Duration) -> Option<(usize, Phase)> {
        self.phases
            .iter()
            .enumerate()
            .find(|(_, p)| elapsed >= p.start && elapsed < p.end())
            .map(|(i, p)| (i, *p))
    }
}

/// One reading of the topic's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    /// Sum of the partitions' log-end offsets: events produced so far.
    pub produced: i64,
    /// Sum of the group's committed offsets: events consumed (written) so far.
    pub consumed: i64,
}

/// Produce and consume rates over a sliding window of offset readings. Committed offsets
/// move once per auto-commit (1 s), so a window of a few seconds smooths the steps.
#[derive(Debug, Clone)]
pub struct RateMeter {
    window: Duration,
    samples: VecDeque<(Duration, Offsets)>,
}

/// Events per second, when there are two readings to compare.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Produced per second.
    pub produce: Option<f64>,
    /// Consumed per second.
    pub consume: Option<f64>,
}

impl RateMeter {
    /// A meter over `window`.
    pub fn new(window: Duration) -> RateMeter {
        RateMeter {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Adds a reading taken at `at`; readings older than the window (but the newest such,
    /// the window's left edge) are dropped.
    pub fn record(&mut self, at: Duration, offsets: Offsets) {
        if self.samples.back().is_some_and(|(last, _)| at <= *last) {
            // Out of order or twice the same instant: nothing to learn.
            return;
        }
        self.samples.push_back((at, offsets));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| at.saturating_sub(*t) >= self.window)
        {
            self.samples.pop_front();
        }
    }

    /// The rates over the window. An offset that went back (a topic recreated, a group
    /// reset) gives no rate rather than a negative one.
    pub fn rates(&self) -> Rates {
        let (Some((t0, first)), Some((t1, last))) = (self.samples.front(), self.samples.back())
        else {
            return Rates::default();
        };
        let seconds = t1.saturating_sub(*t0).as_secs_f64();
        if seconds <= 0.0 {
            return Rates::default();
        }
        let per_sec = |from: i64, to: i64| (to >= from).then(|| (to - from) as f64 / seconds);
        Rates {
            produce: per_sec(first.produced, last.produced),
            consume: per_sec(first.consumed, last.consumed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn each_moment_has_its_phase_and_the_end_has_none() {
        let schedule = Schedule::new(500.0, 2000.0, secs(60), secs(90), secs(120));
        let cases = [
            (0, Some((0, Load::Steady, 500.0))),
            (59, Some((0, Load::Steady, 500.0))),
            (60, Some((1, Load::Burst, 2000.0))),
            (149, Some((1, Load::Burst, 2000.0))),
            (150, Some((2, Load::Recover, 500.0))),
            (269, Some((2, Load::Recover, 500.0))),
            (270, None),
            (10_000, None),
        ];
        for (at, expected) in cases {
            let got = schedule.at(secs(at)).map(|(i, p)| (i, p.load, p.rate));
            assert_eq!(got, expected, "at {at} s");
        }
        assert_eq!(schedule.total(), secs(270));
        assert_eq!(schedule.phases()[1].end(), secs(150));
    }

    #[test]
    fn rates_come_from_the_window_of_readings() {
        let mut meter = RateMeter::new(secs(5));
        assert_eq!(meter.rates(), Rates::default(), "no reading yet");
        let at = |s: u64, produced: i64, consumed: i64| (secs(s), Offsets { produced, consumed });
        let (t, o) = at(0, 0, 0);
        meter.record(t, o);
        assert_eq!(meter.rates(), Rates::default(), "one reading is no rate");
        // 1000/s produced; commits arrive in steps of 800 every second.
        for s in 1..=10 {
            let (t, o) = at(s, 1000 * s as i64, 800 * s as i64);
            meter.record(t, o);
        }
        let rates = meter.rates();
        assert_eq!(rates.produce, Some(1000.0));
        assert_eq!(rates.consume, Some(800.0));
        // Only the last 5 s count: the load changed to 3000/s and consumption stopped.
        for s in 11..=15 {
            let (t, o) = at(s, 10_000 + 3000 * (s as i64 - 10), 8000);
            meter.record(t, o);
        }
        let rates = meter.rates();
        assert_eq!(rates.produce, Some(3000.0));
        assert_eq!(rates.consume, Some(0.0));
        // A reading from the past is ignored; offsets going back give no rate.
        let (t, o) = at(3, 0, 0);
        meter.record(t, o);
        assert_eq!(meter.rates().produce, Some(3000.0));
        let (t, o) = at(16, 0, 0);
        meter.record(t, o);
        assert_eq!(meter.rates(), Rates::default());
    }
}
