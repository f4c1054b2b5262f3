//! The scaling policy: how many consumers the group should have, and why.
//!
//! Owns the decision and nothing else. [`decide()`] is a pure function: a [`ScalingInput`] (one
//! lag observation plus the scheduler's consumer count and sink health), the
//! [`ScalingConfig`], the [`PolicyState`] and the time in; a [`Decision`] `{ target, reason }`
//! and the next state out, like a kube-runtime reconciler returns an `Action`. It never
//! launches or kills anything and never touches the Mesos client or Kafka; the scheduler's
//! reconcile loop carries out the decision and keeps the [`DecisionLog`].
//!
//! # Modes
//!
//! - `step`: the original system's rule exactly. Every `step_interval` (15 s): backlog >
//!   `scale_up_lag` (500) and count < `max_consumers` (10) → +1; backlog < `scale_down_lag`
//!   (100) and count > `min_consumers` (1) → -1.
//! - `proportional` (default), after DS2: the group is sized in one step from what one
//!   consumer reads per second (its *capacity*), the produce rate and the backlog:
//!   - above `scale_up_lag`: `ceil((produce + backlog / target_drain_time) / capacity)`, with
//!     the 30 s produce rate, or the 3 s one when it is 25% higher or more, so that a load
//!     step is sized at its new level and noise is not;
//!   - below `scale_down_lag`: `ceil(produce × (1 + headroom) / capacity)`;
//!   - in between: hold (the hysteresis band).
//!
//!   The capacity is the consume rate divided by the consumers, taken from a full rate window
//!   that started after the group settled on its current count. Only consumers with a backlog
//!   are busy, so only a window with a backlog above `scale_up_lag` throughout, on every
//!   partition, gives a measurement (the latest replaces the previous one, so a slower sink
//!   shows); any other window gives a lower bound (the highest is kept). With only a lower
//!   bound, scaling down goes one consumer at a time unless the bound already proves fewer
//!   are enough; with nothing measured at all, scaling up waits. A group with a backlog that
//!   commits nothing over a full window gets no more consumers: they could not help.
//!
//!   Also: no decision in the first seconds, before the backlog is settled; the first
//!   scale-up after a load step is sized on the new rate; the drain term makes it add a
//!   little more while a backlog is outstanding, and the stabilized scale-down trims it.
//!
//! # Guards, in every mode
//!
//! First, a pause: with `min_consumers` and `max_consumers` both 0 the target is 0 whatever
//! the lag (the only way to 0; otherwise `min_consumers` is at least 1).
//!
//! Then, in the order they apply: stay within `[min_consumers, min(max_consumers, partitions)]`
//! (an excess is removed at once); no change on stale or old data; samples taken while the
//! group rebalances are ignored (not even recorded); scale up at once, but not while any
//! consumer reports a failing sink (more consumers would make a failing Cassandra worse), and
//! not a second time until the consumers of the previous change have joined the group (or
//! `cooldown` has passed); scale down only when every sample of the stabilization window
//! (60 s, counted from the last change) agrees, and then to the highest count any of them
//! asked for. `step` mode additionally acts only once per `step_interval`.
//!
//! The thresholds apply to the backlog (lag net of commit timing, see
//! [`crate::lag::LagObservation::backlog`]), in messages as in the original system: at high
//! rates they should be raised above what the consumers' pipeline normally holds.

pub mod audit;
pub mod config;
pub mod decide;
pub mod sim;

#[cfg(test)]
mod decide_tests;

pub use audit::{DecisionLog, DecisionRecord};
pub use config::{ConfigError, InvalidConfig, ScalingConfig, ScalingMode};
pub use decide::{Action, Capacity, Change, Decision, Guard, PolicyState, ScalingInput, decide};

use std::time::Duration;

/// `12400` → `"12,400"`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `3100.4` → `"3,100/s"`.
pub(crate) fn per_sec(rate: f64) -> String {
    format!("{}/s", count(rate.max(0.0).round() as u64))
}

/// `1 consumer`, `3 consumers`.
pub(crate) fn consumers(n: u32) -> String {
    if n == 1 {
        "1 consumer".to_owned()
    } else {
        format!("{n} consumers")
    }
}

/// `60 s`, `7.5 s`.
pub(crate) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if (s - s.round()).abs() < 0.05 {
        format!("{} s", s.round() as u64)
    } else {
        format!("{s:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_an_operator_writes_them() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (12_400, "12,400"),
            (1_234_567, "1,234,567"),
        ];
        for (n, text) in cases {
            assert_eq!(count(n), text);
        }
        assert_eq!(per_sec(3100.4), "3,100/s");
        assert_eq!(per_sec(-2.0), "0/s");
        assert_eq!(secs(Duration::from_secs(60)), "60 s");
        assert_eq!(secs(Duration::from_millis(7500)), "7.5 s");
    }
}
