//! The pure half of the lag monitor: raw offsets in, [`LagObservation`] out.
//!
//! [`LagTracker`] keeps a short history of [`OffsetSample`]s (the sliding windows) and turns
//! each new sample into an observation: per-partition lag and status, totals, rates and
//! seconds-behind. It does no I/O and reads no clock: time comes in with the sample, so every
//! rule here is tested with plain values.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How a partition the group never committed an offset for is counted, like KEDA's
/// `offsetResetPolicy`. It should match the consumers' `auto.offset.reset`: that is where they
/// will start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoCommitPolicy {
    /// The consumers will start at the log start: the lag is every message still in the log,
    /// `log_end - log_start` (not `log_end`, which would count messages retention deleted;
    /// KEDA #7936).
    #[default]
    Earliest,
    /// The consumers will start at the log end: the lag is zero.
    Latest,
}

/// Windows and rules of the lag tracker.
#[derive(Debug, Clone, PartialEq)]
pub struct LagConfig {
    /// How partitions without a committed offset are counted.
    pub no_commit_policy: NoCommitPolicy,
    /// Window of the produce and consume rates (default 30 s). Commits arrive every
    /// `auto.commit.interval.ms` (5 s by default); the window should hold several of them
    /// for the consume rate to be accurate.
    pub rate_window: Duration,
    /// Window of the recent produce rate (default 3 s). The log-end offset moves with every
    /// message, so this one is exact and reacts quickly to a change in load.
    pub recent_window: Duration,
    /// Window over which the backlog is settled (default 5 s, one auto-commit interval): see
    /// [`LagObservation::backlog`].
    pub settle_window: Duration,
    /// Window of the per-partition status rules (default 60 s).
    pub status_window: Duration,
    /// A partition with at most this lag is always `ok` (Burrow's `allowed-lag`, default 0).
    pub allowed_lag: u64,
    /// Upper bound on the number of samples kept, whatever the tick (default 600).
    pub max_history: usize,
}

impl Default for LagConfig {
    fn default() -> Self {
        LagConfig {
            no_commit_policy: NoCommitPolicy::Earliest,
            rate_window: Duration::from_secs(30),
            recent_window: Duration::from_secs(3),
            settle_window: Duration::from_secs(5),
            status_window: Duration::from_secs(60),
            allowed_lag: 0,
            max_history: 600,
        }
    }
}

/// The offsets of one partition in one sample, as read from the brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOffsets {
    /// Partition id.
    pub partition: i32,
    /// The group's committed offset (the next offset it will read); `None` when the group never
    /// committed one for this partition.
    pub committed: Option<i64>,
    /// The log start offset (the oldest offset retention kept).
    pub log_start: i64,
    /// The log-end offset: the high watermark, or the last stable offset when the group reads
    /// with `isolation.level=read_committed`.
    pub log_end: i64,
}

/// The group coordinator's view of the consumer group (classic `DescribeGroups` states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupPhase {
    /// Members have their assignment and are consuming.
    Stable,
    /// A member joined or left; the coordinator waits for everyone to rejoin.
    PreparingRebalance,
    /// Members rejoined and wait for their assignment.
    CompletingRebalance,
    /// No members (offsets may still be committed).
    Empty,
    /// The group does not exist (any more).
    Dead,
    /// A state name this code does not know.
    Unknown,
}

impl GroupPhase {
    /// Maps the state string Kafka returns (`"Stable"`, `"PreparingRebalance"`, ...).
    pub fn from_kafka(state: &str) -> GroupPhase {
        match state {
            "Stable" => GroupPhase::Stable,
            "PreparingRebalance" => GroupPhase::PreparingRebalance,
            "CompletingRebalance" | "AwaitingSync" => GroupPhase::CompletingRebalance,
            "Empty" => GroupPhase::Empty,
            "Dead" => GroupPhase::Dead,
            _ => GroupPhase::Unknown,
        }
    }

    /// True while partitions are being reassigned: consumption pauses, so rates and lag
    /// measured now say nothing about the group's capacity.
    pub fn is_rebalancing(self) -> bool {
        matches!(
            self,
            GroupPhase::PreparingRebalance | GroupPhase::CompletingRebalance
        )
    }
}

/// Phase and size of the consumer group at sample time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// Coordinator state.
    pub phase: GroupPhase,
    /// Number of members.
    pub members: u32,
}

/// One successful poll of the brokers.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetSample {
    /// When the sample was taken (monotonic; drives every window).
    pub at: Instant,
    /// The same moment as wall-clock milliseconds since the Unix epoch, for display only.
    pub at_unix_ms: u64,
    /// Every partition of the topic, any order.
    pub partitions: Vec<PartitionOffsets>,
    /// The group's state, when the sampler could read it.
    pub group: Option<GroupState>,
}

/// Burrow-style status of a partition (and, as the worst of its partitions, of the group).
/// Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionStatus {
    /// Lag within `allowed_lag` at some point of the status window, or the window is not full
    /// yet, or the lag is falling.
    Ok,
    /// The group commits, but the lag was above `allowed_lag` for the whole window and is
    /// higher at its end than at its start: the consumer falls behind.
    Lagging,
    /// Lag above `allowed_lag` for the whole window and the committed offset did not move,
    /// while the group has members: a consumer is stuck (poison message, failing sink).
    Stalled,
    /// Like stalled, but the group has no members: nobody consumes this partition.
    Stopped,
}

/// One partition in an observation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionLag {
    /// Partition id.
    pub partition: i32,
    /// Committed offset; `None` when the group never committed one (see `no_commit`).
    pub committed: Option<i64>,
    /// Log start offset.
    pub log_start: i64,
    /// Log-end offset (high watermark or last stable offset).
    pub log_end: i64,
    /// `log_end - committed` clamped at 0, exactly what Kafka's consumer-group tool prints;
    /// for a partition without a commit, counted by the [`NoCommitPolicy`].
    pub lag: u64,
    /// The group never committed an offset for this partition.
    pub no_commit: bool,
    /// Burrow-style status over the status window.
    pub status: PartitionStatus,
    /// How old the oldest unconsumed message is, estimated from when the log end passed the
    /// committed offset (interpolated between samples; extrapolated at the produce rate when
    /// that happened before the window). `None` when it cannot be estimated.
    pub seconds_behind: Option<f64>,
}

/// The partition with the highest lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MaxLag {
    /// Partition id.
    pub partition: i32,
    /// Its lag.
    pub lag: u64,
}

/// Why an observation must not be acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stale {
    /// What failed, in words an operator can act on.
    pub reason: String,
    /// Wall-clock time of the first failed sample in this run of failures.
    pub since_unix_ms: u64,
    /// Consecutive failed samples.
    pub failures: u32,
}

/// The lag of one consumer group on one topic at one moment: what the policy and the status
/// API see.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LagObservation {
    /// When the offsets were sampled (for a stale observation: the last good sample).
    #[serde(skip)]
    pub at: Option<Instant>,
    /// The same moment in wall-clock milliseconds since the Unix epoch (0: never sampled).
    pub at_unix_ms: u64,
    /// Every partition, ordered by id.
    pub partitions: Vec<PartitionLag>,
    /// Sum of the partitions' lag.
    pub total_lag: u64,
    /// The lag that is real backlog rather than commit timing: per partition, the lowest lag
    /// over the settle window after discounting what was produced since the previous sample,
    /// summed. A consumer that keeps up but commits every 5 s shows a saw-tooth lag of up to
    /// five seconds of traffic; right after each commit the lag is back to what it has not
    /// read yet, which is what this measures.
    pub backlog: u64,
    /// The samples span the settle window, so `backlog` is settled (in the first seconds it
    /// cannot tell backlog from commit timing).
    pub backlog_settled: bool,
    /// Partitions with a backlog (see `backlog`): when all have one, every consumer is busy.
    pub backlogged_partitions: u32,
    /// The partition with the highest lag.
    pub max_lag: Option<MaxLag>,
    /// Number of partitions the group never committed an offset for.
    pub no_commit_partitions: u32,
    /// Messages appended per second over the rate window.
    pub produce_rate: Option<f64>,
    /// Messages appended per second over the recent window.
    pub produce_rate_recent: Option<f64>,
    /// Offsets committed per second over the rate window (the group's consume rate).
    pub consume_rate: Option<f64>,
    /// Seconds the rate window actually spans (shorter than configured at start-up).
    pub rate_window_secs: f64,
    /// The rate window spans its configured length (false in the first seconds).
    pub rate_window_full: bool,
    /// When the rate window starts.
    #[serde(skip)]
    pub rate_window_start: Option<Instant>,
    /// Total lag divided by the consume rate: how long the group needs to read what is
    /// there now if nothing else arrives. `None` when it consumes nothing while lagging.
    pub seconds_behind_drain: Option<f64>,
    /// Age of the oldest unconsumed message over all partitions (see
    /// [`PartitionLag::seconds_behind`]).
    pub seconds_behind_time: Option<f64>,
    /// The worst partition status.
    pub status: PartitionStatus,
    /// The group's state, when known.
    pub group: Option<GroupState>,
    /// The group is rebalancing: consumption is paused, rates are not representative.
    pub rebalancing: bool,
    /// Partitions that appeared since the previous sample.
    pub partitions_added: Vec<i32>,
    /// Partitions that disappeared since the previous sample.
    pub partitions_removed: Vec<i32>,
    /// Set when the latest sample failed: the numbers are the last good ones (or empty), and
    /// nothing may scale on them.
    pub stale: Option<Stale>,
}

impl LagObservation {
    /// An observation with no data, marked stale (nothing was ever sampled).
    fn empty_stale(stale: Stale) -> LagObservation {
        LagObservation {
            at: None,
            at_unix_ms: 0,
            partitions: Vec::new(),
            total_lag: 0,
            backlog: 0,
            backlog_settled: false,
            backlogged_partitions: 0,
            max_lag: None,
            no_commit_partitions: 0,
            produce_rate: None,
            produce_rate_recent: None,
            consume_rate: None,
            rate_window_secs: 0.0,
            rate_window_full: false,
            rate_window_start: None,
            seconds_behind_drain: None,
            seconds_behind_time: None,
            status: PartitionStatus::Ok,
            group: None,
            rebalancing: false,
            partitions_added: Vec::new(),
            partitions_removed: Vec::new(),
            stale: Some(stale),
        }
    }

    /// The partition, if the topic has it.
    pub fn partition(&self, partition: i32) -> Option<&PartitionLag> {
        self.partitions
            .binary_search_by_key(&partition, |p| p.partition)
            .ok()
            .map(|i| &self.partitions[i])
    }
}

/// One partition at one sample, as the tracker remembers it.
#[derive(Debug, Clone, Copy)]
struct Point {
    committed: Option<i64>,
    /// Where the group will read next: the committed offset, or for a partition without a
    /// commit the log start or log end per the [`NoCommitPolicy`].
    position: i64,
    end: i64,
    lag: u64,
    /// Lag not explained by what was produced since the previous sample.
    fresh_lag: u64,
}

/// One sample: partition ids (sorted) and their points, index for index.
#[derive(Debug)]
struct Snapshot {
    at: Instant,
    ids: Vec<i32>,
    points: Vec<Point>,
}

impl Snapshot {
    /// The point of `partition`. `hint` is its index in the newest snapshot: the partition
    /// set rarely changes, so that is nearly always where it is here too.
    fn get(&self, partition: i32, hint: usize) -> Option<&Point> {
        if self.ids.get(hint) == Some(&partition) {
            return self.points.get(hint);
        }
        let i = self.ids.binary_search(&partition).ok()?;
        self.points.get(i)
    }
}

/// Turns samples into observations; holds the sliding windows.
#[derive(Debug)]
pub struct LagTracker {
    config: LagConfig,
    history: VecDeque<Snapshot>,
    known: BTreeSet<i32>,
    last: Option<LagObservation>,
    failures: u32,
    failing_since_unix_ms: u64,
}

impl LagTracker {
    /// A tracker with no history.
    pub fn new(config: LagConfig) -> LagTracker {
        LagTracker {
            config,
            history: VecDeque::new(),
            known: BTreeSet::new(),
            last: None,
            failures: 0,
            failing_since_unix_ms: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LagConfig {
        &self.config
    }

    /// The latest observation, if any.
    pub fn last(&self) -> Option<&LagObservation> {
        self.last.as_ref()
    }

    /// Records a failed sample: returns the last good observation (or an empty one) marked
    /// stale with `reason`.
    pub fn observe_failure(
        &mut self,
        at_unix_ms: u64,
        reason: impl Into<String>,
    ) -> LagObservation {
        if self.failures == 0 {
            self.failing_since_unix_ms = at_unix_ms;
        }
        self.failures = self.failures.saturating_add(1);
        let stale = Stale {
            reason: reason.into(),
            since_unix_ms: self.failing_since_unix_ms,
            failures: self.failures,
        };
        let observation = match &self.last {
            Some(last) => LagObservation {
                stale: Some(stale),
                partitions_added: Vec::new(),
                partitions_removed: Vec::new(),
                ..last.clone()
            },
            None => LagObservation::empty_stale(stale),
        };
        self.last = Some(observation.clone());
        observation
    }

    /// Records a successful sample and returns the observation it yields.
    pub fn observe(&mut self, sample: OffsetSample) -> LagObservation {
        self.failures = 0;
        let now = sample.at;
        let mut offsets = sample.partitions;
        offsets.sort_by_key(|p| p.partition);
        offsets.dedup_by_key(|p| p.partition);

        let previous = self.history.back();
        let mut ids = Vec::with_capacity(offsets.len());
        let mut points = Vec::with_capacity(offsets.len());
        for (i, o) in offsets.iter().enumerate() {
            let (position, no_commit_lag) = match (o.committed, self.config.no_commit_policy) {
                (Some(c), _) => (c, None),
                (None, NoCommitPolicy::Earliest) => {
                    (o.log_start, Some(clamp_lag(o.log_end - o.log_start)))
                }
                (None, NoCommitPolicy::Latest) => (o.log_end, Some(0)),
            };
            let lag = no_commit_lag.unwrap_or_else(|| clamp_lag(o.log_end - position));
            let produced_since_previous = previous
                .and_then(|s| s.get(o.partition, i))
                .map_or(0, |p| clamp_lag(o.log_end - p.end));
            ids.push(o.partition);
            points.push(Point {
                committed: o.committed,
                position,
                end: o.log_end,
                lag,
                fresh_lag: lag.saturating_sub(produced_since_previous),
            });
        }

        let current: BTreeSet<i32> = ids.iter().copied().collect();
        let (partitions_added, partitions_removed) = if self.history.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                current.difference(&self.known).copied().collect(),
                self.known.difference(&current).copied().collect(),
            )
        };
        self.known = current;

        self.history.push_back(Snapshot {
            at: now,
            ids,
            points,
        });
        self.prune(now);

        let observation = self.build(now, sample.at_unix_ms, sample.group, offsets);
        let observation = LagObservation {
            partitions_added,
            partitions_removed,
            ..observation
        };
        self.last = Some(observation.clone());
        observation
    }

    /// Drops samples older than the longest window, keeping the newest one at or before its
    /// start so that a full window always spans at least its length.
    fn prune(&mut self, now: Instant) {
        let longest = [
            self.config.rate_window,
            self.config.recent_window,
            self.config.settle_window,
            self.config.status_window,
        ]
        .into_iter()
        .max()
        .unwrap_or_default();
        while self.history.len() >= 2
            && now.saturating_duration_since(self.history[1].at) >= longest
        {
            self.history.pop_front();
        }
        while self.history.len() > self.config.max_history.max(2) {
            self.history.pop_front();
        }
    }

    /// Index of the newest sample at or before `now - window`, or 0 when the history is
    /// shorter than the window.
    fn window_start(&self, now: Instant, window: Duration) -> usize {
        self.history
            .iter()
            .rposition(|s| now.saturating_duration_since(s.at) >= window)
            .unwrap_or(0)
    }

    fn build(
        &self,
        now: Instant,
        at_unix_ms: u64,
        group: Option<GroupState>,
        offsets: Vec<PartitionOffsets>,
    ) -> LagObservation {
        // Invariant: `observe` pushed this sample just before calling `build`.
        let newest = self.history.back().expect("build runs right after a push");

        let rate_start = self.window_start(now, self.config.rate_window);
        let (produce_rate, consume_rate, rate_span) = self.rates(rate_start, newest);
        let recent_start = self.window_start(now, self.config.recent_window);
        let (produce_rate_recent, _, _) = self.rates(recent_start, newest);

        let settle_start = self.window_start(now, self.config.settle_window);
        let status_start = self.window_start(now, self.config.status_window);
        let status_complete = now.saturating_duration_since(self.history[status_start].at)
            >= self.config.status_window;
        let nobody_consumes = group.is_some_and(|g| {
            g.members == 0 || matches!(g.phase, GroupPhase::Empty | GroupPhase::Dead)
        });

        let mut partitions = Vec::with_capacity(offsets.len());
        let mut backlog = 0u64;
        let mut backlogged_partitions = 0u32;
        for (i, o) in offsets.into_iter().enumerate() {
            let point = newest.points[i];
            let settled = self
                .history
                .range(settle_start..)
                .filter_map(|s| s.get(o.partition, i))
                .map(|p| p.fresh_lag)
                .min()
                .unwrap_or(point.fresh_lag);
            backlog += settled;
            backlogged_partitions += u32::from(settled > 0);
            let status = self.status(
                (o.partition, i),
                point,
                status_start,
                status_complete,
                nobody_consumes,
            );
            partitions.push(PartitionLag {
                partition: o.partition,
                committed: o.committed,
                log_start: o.log_start,
                log_end: o.log_end,
                lag: point.lag,
                no_commit: o.committed.is_none(),
                status,
                seconds_behind: self.seconds_behind((o.partition, i), point, now),
            });
        }

        let total_lag: u64 = partitions.iter().map(|p| p.lag).sum();
        let max_lag = partitions
            .iter()
            .filter(|p| p.lag > 0)
            .max_by_key(|p| (p.lag, std::cmp::Reverse(p.partition)))
            .map(|p| MaxLag {
                partition: p.partition,
                lag: p.lag,
            });
        let seconds_behind_drain = match consume_rate {
            _ if total_lag == 0 => Some(0.0),
            Some(rate) if rate > 0.0 => Some(total_lag as f64 / rate),
            _ => None,
        };
        let seconds_behind_time = partitions
            .iter()
            .filter_map(|p| p.seconds_behind)
            .fold(None, |acc: Option<f64>, s| {
                Some(acc.map_or(s, |a| a.max(s)))
            });
        LagObservation {
            at: Some(now),
            at_unix_ms,
            no_commit_partitions: partitions.iter().filter(|p| p.no_commit).count() as u32,
            status: partitions
                .iter()
                .map(|p| p.status)
                .max()
                .unwrap_or(PartitionStatus::Ok),
            partitions,
            total_lag,
            backlog,
            backlog_settled: now.saturating_duration_since(self.history[settle_start].at)
                >= self.config.settle_window,
            backlogged_partitions,
            max_lag,
            produce_rate,
            produce_rate_recent,
            consume_rate,
            rate_window_secs: rate_span,
            rate_window_full: rate_span >= self.config.rate_window.as_secs_f64(),
            rate_window_start: Some(self.history[rate_start].at),
            seconds_behind_drain,
            seconds_behind_time,
            group,
            rebalancing: group.is_some_and(|g| g.phase.is_rebalancing()),
            partitions_added: Vec::new(),
            partitions_removed: Vec::new(),
            stale: None,
        }
    }

    /// Produce and consume rates between the sample at `start` and `newest`, over the
    /// partitions present in both. A partition whose log end went backwards (the topic was
    /// deleted and created again) or whose commit appeared or went backwards (offsets reset)
    /// is left out rather than counted as a huge negative or positive rate.
    ///
    /// The consume rate of a partition is measured between the first and the last commit seen
    /// in the window ("edge to edge"), not between the window's ends: a committed offset is up
    /// to one auto-commit interval older than the consumer's position, and measuring from end
    /// to end would turn that staleness into an error of up to `commit interval / window`. It
    /// is biased too: right after a rebalance the window starts on the exact commit made at
    /// revoke time and ends on a stale one, so the rate reads low. Between two commits both
    /// offsets are exact positions. With fewer than two commits in the window it falls back to
    /// the ends.
    fn rates(&self, start: usize, newest: &Snapshot) -> (Option<f64>, Option<f64>, f64) {
        let old = &self.history[start];
        let span = newest.at.saturating_duration_since(old.at).as_secs_f64();
        if span <= 0.0 {
            return (None, None, 0.0);
        }
        let mut produced = 0u64;
        let mut consumed = 0.0f64;
        for (i, (&partition, new)) in newest.ids.iter().zip(&newest.points).enumerate() {
            let Some(old) = old.get(partition, i) else {
                continue;
            };
            if new.end >= old.end {
                produced += (new.end - old.end) as u64;
            }
            let (Some(n), Some(o)) = (new.committed, old.committed) else {
                continue;
            };
            if n < o {
                continue;
            }
            consumed += self.commit_edges((partition, i), start).map_or(
                (n - o) as f64 / span,
                |(t0, c0, t1, c1)| {
                    (c1 - c0) as f64 / t1.saturating_duration_since(t0).as_secs_f64()
                },
            );
        }
        (Some(produced as f64 / span), Some(consumed), span)
    }

    /// The first and the last commit of `partition` seen from the sample at `start` on:
    /// `(time, offset)` of each, when they are two different commits that only moved forward.
    fn commit_edges(
        &self,
        (partition, hint): (i32, usize),
        start: usize,
    ) -> Option<(Instant, i64, Instant, i64)> {
        let mut first = None;
        let mut last = None;
        let mut previous = self.history[start].get(partition, hint)?.committed;
        for snapshot in self.history.range(start + 1..) {
            let committed = snapshot.get(partition, hint)?.committed;
            if let (Some(c), Some(p)) = (committed, previous)
                && c != p
            {
                if c < p {
                    return None;
                }
                first.get_or_insert((snapshot.at, c));
                last = Some((snapshot.at, c));
            }
            previous = committed;
        }
        match (first, last) {
            (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => Some((t0, c0, t1, c1)),
            _ => None,
        }
    }

    /// Burrow's evaluation rules, adapted to offsets sampled every tick rather than recorded
    /// at each commit (see the module docs of [`crate::lag`]).
    fn status(
        &self,
        (partition, hint): (i32, usize),
        now: Point,
        start: usize,
        complete: bool,
        nobody_consumes: bool,
    ) -> PartitionStatus {
        let allowed = self.config.allowed_lag;
        if now.lag <= allowed || !complete {
            return PartitionStatus::Ok;
        }
        let mut first = None;
        for snapshot in self.history.range(start..) {
            // A partition that appeared within the window has no full window yet, and one
            // that was within `allowed_lag` at some point of it recently caught up.
            match snapshot.get(partition, hint) {
                Some(p) if p.lag > allowed => {
                    first.get_or_insert(*p);
                }
                _ => return PartitionStatus::Ok,
            }
        }
        let Some(first) = first else {
            return PartitionStatus::Ok;
        };
        if first.position == now.position && first.committed.is_some() == now.committed.is_some() {
            return if nobody_consumes {
                PartitionStatus::Stopped
            } else {
                PartitionStatus::Stalled
            };
        }
        if now.lag > first.lag {
            PartitionStatus::Lagging
        } else {
            PartitionStatus::Ok
        }
    }

    /// Age of the message at the group's position: when did the log end pass it?
    fn seconds_behind(
        &self,
        (partition, hint): (i32, usize),
        now_point: Point,
        now: Instant,
    ) -> Option<f64> {
        if now_point.lag == 0 {
            return Some(0.0);
        }
        let c = now_point.position;
        // Walk back from the newest sample to the last one whose log end had not passed C
        // yet: it and the next one bracket the moment offset C was appended.
        let mut right: Option<(Instant, i64)> = None;
        let mut left: Option<(Instant, i64)> = None;
        for snapshot in self.history.iter().rev() {
            let Some(p) = snapshot.get(partition, hint) else {
                break;
            };
            if p.end > c {
                right = Some((snapshot.at, p.end));
            } else {
                left = Some((snapshot.at, p.end));
                break;
            }
        }
        let (tr, er) = right?;
        let appended_at = match left {
            Some((tl, el)) => {
                let fraction = (c - el) as f64 / (er - el) as f64;
                tl + tr
                    .saturating_duration_since(tl)
                    .mul_f64(fraction.clamp(0.0, 1.0))
            }
            None => {
                // Appended before the window: extrapolate at the window's produce rate, or say
                // at least the window's age when nothing was produced in it.
                let (t0, e0) = (tr, er);
                let span = now.saturating_duration_since(t0).as_secs_f64();
                if now_point.end > e0 && span > 0.0 {
                    let rate = (now_point.end - e0) as f64 / span;
                    let before = (e0 - c) as f64 / rate;
                    return Some(span + before);
                }
                t0
            }
        };
        Some(now.saturating_duration_since(appended_at).as_secs_f64())
    }
}

fn clamp_lag(lag: i64) -> u64 {
    lag.max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(partition: i32, committed: Option<i64>, log_start: i64, log_end: i64) -> PartitionOffsets {
        PartitionOffsets {
            partition,
            committed,
            log_start,
            log_end,
        }
    }

    fn sample(t0: Instant, secs: u64, partitions: Vec<PartitionOffsets>) -> OffsetSample {
        OffsetSample {
            at: t0 + Duration::from_secs(secs),
            at_unix_ms: 1_000_000 + secs * 1000,
            partitions,
            group: Some(GroupState {
                phase: GroupPhase::Stable,
                members: 1,
            }),
        }
    }

    #[test]
    fn lag_per_partition_and_no_commit_policies() {
        // (policy, committed, log_start, log_end) -> (lag, no_commit)
        let cases = [
            (NoCommitPolicy::Earliest, Some(40), 0, 100, 60, false),
            (NoCommitPolicy::Latest, Some(40), 0, 100, 60, false),
            // Committed past the end (end read before the commit landed): clamped, not negative.
            (NoCommitPolicy::Earliest, Some(120), 0, 100, 0, false),
            // No commit, earliest: from the log START, not from 0 (retention deleted 0..30).
            (NoCommitPolicy::Earliest, None, 30, 100, 70, true),
            (NoCommitPolicy::Latest, None, 30, 100, 0, true),
            // Empty partition without commit.
            (NoCommitPolicy::Earliest, None, 0, 0, 0, true),
            // Committed below the log start (retention overtook the group): Kafka's tool
            // reports end - committed, and so do we.
            (NoCommitPolicy::Earliest, Some(10), 30, 100, 90, false),
        ];
        for (policy, committed, start, end, lag, no_commit) in cases {
            let mut tracker = LagTracker::new(LagConfig {
                no_commit_policy: policy,
                ..LagConfig::default()
            });
            let obs = tracker.observe(sample(Instant::now(), 0, vec![p(0, committed, start, end)]));
            let part = obs.partition(0).expect("partition 0");
            assert_eq!(
                (
                    part.lag,
                    part.no_commit,
                    obs.total_lag,
                    obs.no_commit_partitions
                ),
                (lag, no_commit, lag, u32::from(no_commit)),
                "{policy:?} committed {committed:?} start {start} end {end}"
            );
        }
    }

    #[test]
    fn totals_max_lag_and_ordering() {
        let mut tracker = LagTracker::new(LagConfig::default());
        let obs = tracker.observe(sample(
            Instant::now(),
            0,
            vec![p(2, Some(5), 0, 10), p(0, Some(0), 0, 30), p(1, None, 0, 7)],
        ));
        let ids: Vec<i32> = obs.partitions.iter().map(|p| p.partition).collect();
        assert_eq!(ids, vec![0, 1, 2]);
        assert_eq!(obs.total_lag, 30 + 7 + 5);
        assert_eq!(
            obs.max_lag,
            Some(MaxLag {
                partition: 0,
                lag: 30
            })
        );
        assert_eq!(obs.stale, None);
        assert_eq!(obs.produce_rate, None, "one sample gives no rate");
        assert!(!obs.backlog_settled, "one sample cannot settle the backlog");
    }

    #[test]
    fn rates_over_the_window() {
        let t0 = Instant::now();
        let mut tracker = LagTracker::new(LagConfig::default());
        // 2 partitions, each +100/s appended, +50/s committed, for 20 s.
        let mut last = None;
        for s in 0..=20 {
            let s64 = s as i64;
            last = Some(tracker.observe(sample(
                t0,
                s,
                vec![
                    p(0, Some(50 * s64), 0, 100 * s64),
                    p(1, Some(50 * s64), 0, 100 * s64),
                ],
            )));
        }
        let obs = last.expect("observed");
        assert_eq!(obs.produce_rate, Some(200.0));
        assert_eq!(obs.produce_rate_recent, Some(200.0));
        assert_eq!(obs.consume_rate, Some(100.0));
        assert_eq!(obs.rate_window_secs, 20.0);
        assert!(!obs.rate_window_full);
        assert_eq!(obs.total_lag, 2 * (2000 - 1000));
        assert_eq!(obs.seconds_behind_drain, Some(20.0));
    }

    #[test]
    fn consume_rate_is_measured_between_commits() {
        // 100/s consumed. A commit at revoke time (t=3, exact), then auto-commits at 5.5,
        // 10.5, ... seen at the next sample. End to end over the window: (3,050 - 300) / 30 =
        // 91.7/s; between commits: (3,050 - 550) / (31 - 6) = 100/s.
        let t0 = Instant::now();
        let mut tracker = LagTracker::new(LagConfig::default());
        let mut obs = None;
        for s in 3..=33i64 {
            let last_commit = if s < 6 {
                3.0
            } else {
                (((s - 1) / 5) * 5) as f64 + 0.5
            };
            let committed = (100.0 * last_commit) as i64;
            obs = Some(tracker.observe(sample(
                t0,
                s as u64,
                vec![p(0, Some(committed), 0, 100 * s)],
            )));
        }
        let obs = obs.expect("observed");
        assert_eq!(obs.rate_window_secs, 30.0);
        assert_eq!(obs.consume_rate, Some(100.0));
        assert_eq!(obs.produce_rate, Some(100.0));
    }

    #[test]
    fn recent_rate_reacts_before_the_window_rate() {
        let t0 = Instant::now();
        let mut tracker = LagTracker::new(LagConfig::default());
        let mut end = 0;
        let mut obs = None;
        for s in 0..=20 {
            end += if s > 17 { 1000 } else { 100 };
            obs = Some(tracker.observe(sample(t0, s, vec![p(0, Some(0), 0, end)])));
        }
        let obs = obs.expect("observed");
        assert_eq!(obs.produce_rate_recent, Some(1000.0));
        assert_eq!(obs.produce_rate, Some((17.0 * 100.0 + 3.0 * 1000.0) / 20.0));
    }

    #[test]
    fn backlog_discounts_commit_sawtooth() {
        // 1,000/s appended; the consumer keeps up but commits every 5 s. The raw lag saws
        // between 1,000 and 5,000; the backlog is 0.
        let t0 = Instant::now();
        let mut tracker = LagTracker::new(LagConfig::default());
        let mut obs = None;
        for s in 0..=30i64 {
            let end = 1000 * s;
            // Commits at 0.5 s, 5.5 s, 10.5 s, ... of the position at that moment.
            let committed = if s == 0 {
                0
            } else {
                5000 * ((2 * s - 1) / 10) + 500
            };
            obs = Some(tracker.observe(sample(t0, s as u64, vec![p(0, Some(committed), 0, end)])));
        }
        let obs = obs.expect("observed");
        assert!(obs.total_lag > 0);
        assert!(obs.backlog_settled);
        assert_eq!(obs.backlog, 0, "raw lag {}", obs.total_lag);

        // A real backlog of 20,000 shows up as such.
        let mut tracker = LagTracker::new(LagConfig::default());
        let mut obs = None;
        for s in 0..=30i64 {
            let end = 1000 * s + 20_000;
            obs = Some(tracker.observe(sample(t0, s as u64, vec![p(0, Some(1000 * s), 0, end)])));
        }
        let obs = obs.expect("observed");
        assert_eq!((obs.backlog, obs.backlogged_partitions), (20_000 - 1000, 1));
    }

    /// Feeds `committed(s)` and `end(s)` for s in 0..=secs to a fresh tracker.
    fn status_after(
        secs: u64,
        members: u32,
        committed: impl Fn(i64) -> i64,
        end: impl Fn(i64) -> i64,
    ) -> PartitionStatus {
        let t0 = Instant::now();
        let mut tracker = LagTracker::new(LagConfig::default());
        let mut status = PartitionStatus::Ok;
        for s in 0..=secs {
            let si = s as i64;
            let mut smp = sample(t0, s, vec![p(0, Some(committed(si)), 0, end(si))]);
            smp.group = Some(GroupState {
                phase: if members == 0 {
                    GroupPhase::Empty
                } else {
                    GroupPhase::Stable
                },
                members,
            });
            let obs = tracker.observe(smp);
            assert_eq!(obs.status, obs.partitions[0].status);
            status = obs.status;
        }
        status
    }

    #[test]
    fn burrow_style_statuses() {
        use PartitionStatus::*;
        // (name, seconds observed, members, committed(s), end(s)) -> status
        type F = fn(i64) -> i64;
        let cases: [(&str, u64, u32, F, F, PartitionStatus); 8] = [
            ("caught up", 90, 1, |s| 10 * s, |s| 10 * s, Ok),
            (
                "lagging but window not full",
                30,
                1,
                |_| 0,
                |s| 10 * s + 5,
                Ok,
            ),
            ("falling behind", 90, 1, |s| 5 * s, |s| 10 * s + 5, Lagging),
            ("catching up", 90, 1, |s| 20 * s, |s| 10 * s + 5000, Ok),
            ("steady lag", 90, 1, |s| 10 * s, |s| 10 * s + 50, Ok),
            (
                "offset stuck with members",
                90,
                1,
                |_| 7,
                |s| 10 * s + 100,
                Stalled,
            ),
            (
                "offset stuck, no members",
                90,
                0,
                |_| 7,
                |s| 10 * s + 100,
                Stopped,
            ),
            ("stuck but no lag", 90, 1, |_| 7, |_| 7, Ok),
        ];
        for (name, secs, members, committed, end, want) in cases {
            assert_eq!(status_after(secs, members, committed, end), want, "{name}");
        }
    }

    #[test]
    fn stuck_offset_with_a_lag_dip_in_the_window_is_ok() {
        // Lag was 0 in the window's first seconds: Burrow's "recently caught up" rule.
        let status = status_after(61, 1, |_| 100, |s| if s < 5 { 100 } else { 200 });
        assert_eq!(status, PartitionStatus::Ok);
    }

    #[test]
    fn added_and_removed_partitions_are_reported_once() {
        let t0 = Instant::now();
        let mut tracker = LagTracker::new(LagConfig::default());
        let first = tracker.observe(sample(
            t0,
            0,
            vec![p(0, Some(0), 0, 5), p(1, Some(0), 0, 5)],
        ));
        assert_eq!(
            (first.partitions_added.len(), first.partitions_removed.len()),
            (0, 0)
        );
        let grown = tracker.observe(sample(
            t0,
            1,
            vec![
                p(0, Some(0), 0, 5),
                p(1, Some(0), 0, 5),
                p(2, None, 0, 9),
                p(3, None, 0, 1),
            ],
        ));
        assert_eq!(grown.partitions_added, vec![2, 3]);
        assert_eq!(grown.total_lag, 5 + 5 + 9 + 1);
        let shrunk = tracker.observe(sample(t0, 2, vec![p(0, Some(0), 0, 5), p(3, None, 0, 1)]));
        assert_eq!(shrunk.partitions_removed, vec![1, 2]);
        assert_eq!(shrunk.partitions_added, Vec::<i32>::new());
        assert_eq!(shrunk.partitions.len(), 2);
        let again = tracker.observe(sample(t0, 3, vec![p(0, Some(0), 0, 5), p(3, None, 0, 1)]));
        assert_eq!(
            (again.partitions_added.len(), again.partitions_removed.len()),
            (0, 0)
        );
    }

    #[test]
    fn recreated_topic_does_not_yield_negative_rates() {
        let t0 = Instant::now();
        let mut tracker = LagTracker::new(LagConfig::default());
        tracker.observe(sample(t0, 0, vec![p(0, Some(900), 0, 1000)]));
        let obs = tracker.observe(sample(t0, 1, vec![p(0, Some(3), 0, 10)]));
        assert_eq!(obs.produce_rate, Some(0.0));
        assert_eq!(obs.consume_rate, Some(0.0));
        assert_eq!(obs.total_lag, 7);
    }

    #[test]
    fn failure_marks_stale_and_keeps_last_numbers() {
        let t0 = Instant::now();
        let mut tracker = LagTracker::new(LagConfig::default());
        let never = tracker.observe_failure(5, "brokers unreachable");
        assert_eq!(never.partitions.len(), 0);
        assert_eq!(never.stale.as_ref().map(|s| s.failures), Some(1));

        let good = tracker.observe(sample(t0, 0, vec![p(0, Some(1), 0, 11)]));
        assert_eq!(good.stale, None);
        tracker.observe_failure(7_000, "timed out after 5 s");
        let stale = tracker.observe_failure(8_000, "timed out after 5 s");
        assert_eq!(stale.total_lag, 10);
        assert_eq!(stale.at, good.at);
        assert_eq!(
            stale.stale,
            Some(Stale {
                reason: "timed out after 5 s".into(),
                since_unix_ms: 7_000,
                failures: 2
            })
        );
        let recovered = tracker.observe(sample(t0, 3, vec![p(0, Some(11), 0, 11)]));
        assert_eq!((recovered.stale, recovered.total_lag), (None, 0));
    }

    #[test]
    fn time_based_seconds_behind() {
        let t0 = Instant::now();
        let mut tracker = LagTracker::new(LagConfig::default());
        // 100 messages/s appended from t=0; the group sits at offset 250, which the log end
        // passed at t=2.5 s. At t=10 s it is 7.5 s behind.
        let mut obs = None;
        for s in 0..=10 {
            obs = Some(tracker.observe(sample(t0, s, vec![p(0, Some(250), 0, 100 * s as i64)])));
        }
        let obs = obs.expect("observed");
        let behind = obs.seconds_behind_time.expect("estimate");
        assert!((behind - 7.5).abs() < 0.011, "{behind}");

        // Position before the first sample: extrapolated at the window's rate.
        let mut tracker = LagTracker::new(LagConfig::default());
        let mut obs = None;
        for s in 0..=4 {
            obs =
                Some(tracker.observe(sample(t0, s, vec![p(0, Some(0), 0, 1000 + 100 * s as i64)])));
        }
        let behind = obs
            .expect("observed")
            .seconds_behind_time
            .expect("estimate");
        assert!((behind - 14.0).abs() < 0.011, "{behind}");
    }

    #[test]
    fn rebalancing_comes_from_the_group_phase() {
        let t0 = Instant::now();
        let mut tracker = LagTracker::new(LagConfig::default());
        let mut s = sample(t0, 0, vec![p(0, Some(0), 0, 1)]);
        s.group = Some(GroupState {
            phase: GroupPhase::from_kafka("PreparingRebalance"),
            members: 2,
        });
        assert!(tracker.observe(s).rebalancing);
        let mut s = sample(t0, 1, vec![p(0, Some(0), 0, 1)]);
        s.group = None;
        assert!(!tracker.observe(s).rebalancing);
    }

    #[test]
    fn history_is_bounded() {
        let t0 = Instant::now();
        let mut tracker = LagTracker::new(LagConfig::default());
        for s in 0..1000 {
            tracker.observe(sample(t0, s, vec![p(0, Some(0), 0, 1)]));
        }
        assert_eq!(tracker.history.len(), 61);
        let mut tracker = LagTracker::new(LagConfig {
            max_history: 10,
            ..LagConfig::default()
        });
        for s in 0..100 {
            tracker.observe(OffsetSample {
                at: t0 + Duration::from_millis(s),
                ..sample(t0, 0, vec![p(0, Some(0), 0, 1)])
            });
        }
        assert_eq!(tracker.history.len(), 10);
    }
}
