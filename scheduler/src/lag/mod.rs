//! The lag monitor: how far the consumer group is behind on every partition of its topic.
//!
//! Owns reading offsets from Kafka and deriving lag, rates, seconds-behind and status from
//! them. It must not decide anything (that is [`crate::policy`]) and never touches the Mesos
//! client: the scheduler's reconcile loop reads its observations from a `watch` channel.
//!
//! Three parts, pure core first:
//!
//! - [`observation`]: [`LagTracker`] turns [`OffsetSample`]s into [`LagObservation`]s. Pure:
//!   no I/O, no clock.
//! - [`sampler`]: [`KafkaOffsetSampler`] reads one sample with rdkafka in a constant number of
//!   round trips per broker (see its docs for which requests and why), on the blocking pool,
//!   with timeouts.
//! - [`monitor`]: [`LagMonitor`] ticks (1 s by default), samples, publishes.
//!
//! # What an observation says
//!
//! - **Lag** per partition is `log_end - committed`, clamped at 0: exactly what Kafka's own
//!   `kafka-consumer-groups --describe` prints. `log_end` is the high watermark, or the last
//!   stable offset when the group reads committed. A partition the group never committed is
//!   flagged `no_commit` and counted by the [`NoCommitPolicy`] (from the log start, or zero),
//!   never as `-1` or as the whole log-end offset.
//! - **Backlog** is the lag net of commit timing (see [`LagObservation::backlog`]); the policy
//!   scales on it, since a consumer that keeps up still shows seconds of traffic as lag between
//!   two auto-commits.
//! - **Rates**: produce rate from log-end offsets, consume rate from committed offsets, over a
//!   sliding window (30 s), plus a recent produce rate (3 s) that reacts to load steps. The
//!   consume rate is measured between commits, not between the window's ends (see
//!   `LagTracker`'s `rates`).
//! - **Seconds behind**, two ways: total lag over the consume rate (time to drain), and the age
//!   of the oldest unconsumed message, interpolated from when the log end passed the committed
//!   offset (kafka-lag-exporter's method; extrapolated at the produce rate when that was before
//!   the window).
//! - **Status** per partition and, as the worst, for the group, in the spirit of Burrow over a
//!   60 s window: `ok`; `lagging` (lag above `allowed_lag` throughout and higher at the end of
//!   the window than at its start: Burrow's rule compares consecutive commits, but we sample
//!   every second between commits, so the saw-tooth of auto-commit would defeat it); `stalled`
//!   (lag throughout and the committed offset did not move while the group has members);
//!   `stopped` (the same with no members: nobody commits). The offset-fetch API does not return
//!   commit times, so "no commits for a window" is read as "no member and no movement".
//! - **Added and removed partitions** since the previous sample are listed, and from then on
//!   counted (or no longer counted).
//! - **Stale**: when a sample fails or times out, the last good numbers are republished with
//!   the reason; nothing downstream acts on a stale observation.

pub mod monitor;
pub mod observation;
pub mod sampler;

pub use monitor::{LagMonitor, MonitorConfig, ObservationReceiver, OffsetSource};
pub use observation::{
    GroupPhase, GroupState, LagConfig, LagObservation, LagTracker, MaxLag, NoCommitPolicy,
    OffsetSample, PartitionLag, PartitionOffsets, PartitionStatus, Stale,
};
pub use sampler::{KafkaOffsetSampler, SampleError, SamplerConfig};
