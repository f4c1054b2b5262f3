//! The decision audit log: the last decisions with the inputs they were made on, bounded.
//!
//! Owns only the record keeping; the scheduler persists it (ZooKeeper `decisions`) and serves
//! it (`GET /v1/decisions`). The policy decides every tick, so consecutive holds for the same
//! reason are folded into one record with a repeat count, and the log keeps changes and
//! reasons to hold rather than a line per second.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::config::ScalingMode;
use super::decide::{Decision, ScalingInput};

/// One decision and what it was based on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Wall-clock time of the (first) decision, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The mode in force.
    pub mode: ScalingMode,
    /// The inputs.
    pub input: ScalingInput,
    /// The decision.
    pub decision: Decision,
    /// How many identical holds followed and were folded into this record.
    pub repeats: u32,
    /// Wall-clock time of the last of them.
    pub last_at_unix_ms: u64,
}

/// At most `capacity` records, oldest dropped first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionLog {
    capacity: usize,
    records: VecDeque<DecisionRecord>,
}

impl DecisionLog {
    /// Default number of records kept: about 60 kB of JSON, small enough for one znode.
    pub const DEFAULT_CAPACITY: usize = 100;

    /// An empty log keeping at most `capacity` records (at least 1).
    pub fn new(capacity: usize) -> DecisionLog {
        let capacity = capacity.max(1);
        DecisionLog {
            capacity,
            records: VecDeque::with_capacity(capacity),
        }
    }

    /// Adds a decision. A hold with the same target, guard and reason kind as the latest record
    /// only bumps that record's repeat count. Returns true when a new record was added.
    pub fn record(
        &mut self,
        at_unix_ms: u64,
        mode: ScalingMode,
        input: ScalingInput,
        decision: Decision,
    ) -> bool {
        if let Some(last) = self.records.back_mut()
            && !decision.is_change()
            && !last.decision.is_change()
            && last.mode == mode
            && last.decision.target == decision.target
            && last.decision.guard == decision.guard
        {
            last.repeats = last.repeats.saturating_add(1);
            last.last_at_unix_ms = at_unix_ms;
            return false;
        }
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(DecisionRecord {
            at_unix_ms,
            mode,
            input,
            decision,
            repeats: 0,
            last_at_unix_ms: at_unix_ms,
        });
        true
    }

    /// Records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &DecisionRecord> {
        self.records.iter()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The most recent record.
    pub fn latest(&self) -> Option<&DecisionRecord> {
        self.records.back()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Default for DecisionLog {
    fn default() -> Self {
        DecisionLog::new(DecisionLog::DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decide::{Action, Guard};

    fn decision(current: u32, target: u32, guard: Option<Guard>) -> Decision {
        Decision {
            target,
            current,
            action: match target.cmp(&current) {
                std::cmp::Ordering::Greater => Action::ScaleUp,
                std::cmp::Ordering::Less => Action::ScaleDown,
                std::cmp::Ordering::Equal => Action::Hold,
            },
            guard,
            reason: format!("{current} -> {target}"),
        }
    }

    fn input(backlog: u64) -> ScalingInput {
        ScalingInput {
            backlog,
            consumers: 3,
            ..ScalingInput::default()
        }
    }

    #[test]
    fn folds_repeated_holds_and_keeps_changes() {
        let mut log = DecisionLog::new(10);
        let mode = ScalingMode::Proportional;
        let added: Vec<bool> = [
            decision(3, 3, None),
            decision(3, 3, None),
            decision(3, 3, Some(Guard::Stale)),
            decision(3, 5, None),
            decision(5, 5, Some(Guard::AwaitingJoin)),
            decision(5, 5, Some(Guard::AwaitingJoin)),
            decision(5, 5, Some(Guard::AwaitingJoin)),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, d)| log.record(i as u64, mode, input(i as u64), d))
        .collect();
        assert_eq!(added, vec![true, false, true, true, true, false, false]);
        let summary: Vec<(u64, u32, u32, u64)> = log
            .iter()
            .map(|r| {
                (
                    r.at_unix_ms,
                    r.decision.target,
                    r.repeats,
                    r.last_at_unix_ms,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![(0, 3, 1, 1), (2, 3, 0, 2), (3, 5, 0, 3), (4, 5, 2, 6)]
        );
        assert_eq!(log.latest().map(|r| r.input.backlog), Some(4));
    }

    #[test]
    fn is_bounded_and_serializable() {
        let mut log = DecisionLog::new(3);
        for i in 0..10u32 {
            log.record(
                u64::from(i),
                ScalingMode::Step,
                input(0),
                decision(i, i + 1, None),
            );
        }
        assert_eq!(log.len(), 3);
        let firsts: Vec<u32> = log.iter().map(|r| r.decision.current).collect();
        assert_eq!(firsts, vec![7, 8, 9]);
        let json = serde_json::to_string(&log).expect("serializes");
        assert!(json.contains("\"action\":\"scale_up\""), "{json}");
        let back: DecisionLog = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, log);
        assert_eq!(DecisionLog::new(0).capacity(), 1);
    }
}
