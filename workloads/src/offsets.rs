//! Which Kafka offset may be stored, given which messages are done.
//!
//! The consumer writes many messages of a partition at once and they finish in any order. An
//! offset may be stored (and so later committed) only when every message before it is done
//! (its row written or its dead letter recorded): that is the at-least-once guarantee. This
//! module is that bookkeeping and nothing else, as a pure value.
//!
//! Within one assignment of a partition ("generation") messages arrive in offset order, so the
//! position to store is the lowest offset still in flight, or one past the highest started if
//! nothing is in flight. When a partition is revoked its state is dropped; completions carrying
//! an older generation are ignored (the partition's next owner, perhaps this consumer again,
//! replays from the committed offset, and a replayed row overwrites itself).

use std::collections::{BTreeSet, HashMap};

/// Identifies one message being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset of the message.
    pub offset: i64,
    generation: u64,
}

#[derive(Debug)]
struct PartitionProgress {
    generation: u64,
    in_flight: BTreeSet<i64>,
    highest_started: i64,
    stored: Option<i64>,
}

/// Per-partition progress of one consumer.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, PartitionProgress>,
    next_generation: u64,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// A message is being worked on.
    pub fn start(&mut self, partition: i32, offset: i64) -> Ticket {
        let next_generation = &mut self.next_generation;
        let progress = self.partitions.entry(partition).or_insert_with(|| {
            *next_generation += 1;
            PartitionProgress {
                generation: *next_generation,
                in_flight: BTreeSet::new(),
                highest_started: offset,
                // Where this assignment started is where the group's position already is.
                stored: Some(offset),
            }
        });
        progress.in_flight.insert(offset);
        progress.highest_started = progress.highest_started.max(offset);
        Ticket {
            partition,
            offset,
            generation: progress.generation,
        }
    }

    /// A message is done. Returns the offset to store (the next message to consume) if the
    /// storable position moved forward.
    pub fn finish(&mut self, ticket: Ticket) -> Option<i64> {
        let progress = self.partitions.get_mut(&ticket.partition)?;
        if progress.generation != ticket.generation || !progress.in_flight.remove(&ticket.offset) {
            return None;
        }
        let position = progress
            .in_flight
            .first()
            .copied()
            .unwrap_or(progress.highest_started + 1);
        if progress.stored.is_some_and(|stored| stored >= position) {
            return None;
        }
        progress.stored = Some(position);
        Some(position)
    }

    /// The partition was revoked: forget it; its unfinished tickets become stale.
    pub fn revoke(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// Whether a ticket still belongs to a current assignment.
    pub fn is_current(&self, ticket: Ticket) -> bool {
        self.partitions
            .get(&ticket.partition)
            .is_some_and(|p| p.generation == ticket.generation)
    }

    /// Messages in flight across all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stores_only_a_contiguous_prefix() {
        let mut t = OffsetTracker::new();
        let a = t.start(0, 10);
        let b = t.start(0, 11);
        let c = t.start(0, 13); // offsets may have gaps (compaction, transaction markers)
        assert_eq!(t.finish(c), None, "10 and 11 are not done");
        assert_eq!(t.finish(a), Some(11));
        assert_eq!(t.finish(b), Some(14));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::new();
        let a = t.start(0, 5);
        let b = t.start(1, 7);
        assert_eq!(t.finish(b), Some(8));
        assert_eq!(t.finish(a), Some(6));
    }

    #[test]
    fn revoked_partitions_ignore_late_completions() {
        let mut t = OffsetTracker::new();
        let old = t.start(0, 100);
        t.revoke(0);
        assert!(!t.is_current(old));
        // Reassigned: replay from the committed offset 90.
        let replay = t.start(0, 90);
        assert_eq!(t.finish(old), None, "a stale ticket never stores");
        assert_eq!(t.finish(replay), Some(91));
        assert_eq!(t.finish(replay), None, "finishing twice is harmless");
    }

    proptest! {
        /// Whatever order messages finish in, a stored offset never covers an unfinished
        /// message, stored offsets only grow, and the last one is one past the last message.
        #[test]
        fn never_stores_past_unfinished(
            gaps in proptest::collection::vec(1i64..4, 1..60),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 60),
        ) {
            let mut t = OffsetTracker::new();
            let mut offset = 0;
            let mut pending = Vec::new();
            for gap in &gaps {
                offset += gap;
                pending.push(t.start(3, offset));
            }
            let last = offset;
            let mut done = Vec::new();
            let mut stored = None;
            let mut i = 0;
            while !pending.is_empty() {
                let pick = order[i % order.len()].index(pending.len());
                i += 1;
                let ticket = pending.swap_remove(pick);
                done.push(ticket.offset);
                if let Some(position) = t.finish(ticket) {
                    prop_assert!(stored.is_none_or(|s| s < position));
                    for p in &pending {
                        prop_assert!(p.offset >= position, "stored {} past unfinished {}", position, p.offset);
                    }
                    stored = Some(position);
                }
            }
            prop_assert_eq!(stored, Some(last + 1));
        }
    }
}
