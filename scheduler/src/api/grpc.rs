//! The gRPC control API (`fastdata.control.v1.Control`, tonic): `GetStatus`, `SetScaling`
//! and the `WatchStatus` stream.
//!
//! Conversions to the protobuf messages are pure functions; `SetScaling` forwards to the run
//! loop exactly as `PUT /v1/scaling` does (same [`ScalingPatch::apply`] rules, answered with
//! INVALID_ARGUMENT naming every field). `WatchStatus` is an explicit state machine,
//! [`WatchState`], stepped by three wake-ups: the interval (send a snapshot), a new snapshot
//! on the `watch` channel (send the decisions that were not in the previous one), and
//! shutdown (end the stream). tonic drops the stream when the client goes away.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::time::Duration;

use fastdata_proto::control::v1 as pb;
use fastdata_proto::control::v1::control_server::{Control, ControlServer};
use futures::Stream;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tonic::{Request, Response, Status};

use super::rest::{Forwarded, RestState, forward};
use super::views::{PhaseView, STATUS_DECISIONS, summary};
use crate::lag::PartitionStatus;
use crate::policy::{Action, DecisionRecord, ScalingConfig, ScalingMode};
use crate::status::{
    FieldProblem, PlanStatus, ScalingPatch, ScalingRejected, StatusReceiver, StatusSnapshot,
};

/// Default `WatchStatus` interval.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_millis(1000);
/// Shortest `WatchStatus` interval a client may ask for.
pub const MIN_WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// The service implementation.
#[derive(Debug, Clone)]
pub struct ControlService {
    shared: RestState,
    shutdown: watch::Receiver<bool>,
}

impl ControlService {
    /// A service over the same state as the REST API; streams end when `shutdown` turns true
    /// (or its sender is dropped).
    pub fn new(shared: RestState, shutdown: watch::Receiver<bool>) -> ControlService {
        ControlService { shared, shutdown }
    }

    /// The tonic server of this service.
    pub fn into_server(self) -> ControlServer<ControlService> {
        ControlServer::new(self)
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::StatusEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Control for ControlService {
    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::Status>, Status> {
        let snapshot = self.shared.status.borrow().clone();
        Ok(Response::new(status_message(&snapshot)))
    }

    async fn set_scaling(
        &self,
        request: Request<pb::SetScalingRequest>,
    ) -> Result<Response<pb::ScalingConfig>, Status> {
        let change = patch_of(request.get_ref()).map_err(|r| invalid_argument(&r))?;
        match forward(&self.shared, "gRPC", change).await {
            Ok(config) => Ok(Response::new(scaling_message(&config))),
            Err(Forwarded::Rejected(rejected)) => Err(invalid_argument(&rejected)),
            Err(Forwarded::Unavailable(message)) => Err(Status::unavailable(message)),
        }
    }

    type WatchStatusStream = EventStream;

    async fn watch_status(
        &self,
        request: Request<pb::WatchStatusRequest>,
    ) -> Result<Response<Self::WatchStatusStream>, Status> {
        let interval = watch_interval(request.get_ref().interval_ms);
        let state = WatchState::new(self.shared.status.clone(), interval, self.shutdown.clone());
        Ok(Response::new(Box::pin(state.into_stream())))
    }
}

/// `interval_ms` of a request as an interval: 0 is the default, and too short is raised.
pub fn watch_interval(interval_ms: u32) -> Duration {
    if interval_ms == 0 {
        DEFAULT_WATCH_INTERVAL
    } else {
        Duration::from_millis(u64::from(interval_ms)).max(MIN_WATCH_INTERVAL)
    }
}

/// INVALID_ARGUMENT with every problem, fields named as in the protobuf message.
fn invalid_argument(rejected: &ScalingRejected) -> Status {
    let problems: Vec<String> = rejected
        .problems
        .iter()
        .map(|p| format!("{}: {}", proto_field(&p.field), p.message))
        .collect();
    Status::invalid_argument(format!(
        "the scaling change was refused: {}",
        problems.join("; ")
    ))
}

/// The protobuf name of a REST (JSON) field of the scaling configuration.
pub fn proto_field(json_field: &str) -> &str {
    match json_field {
        "step_interval_secs" => "interval_seconds",
        "stabilization_window_secs" => "stabilization_seconds",
        "target_drain_time_secs" => "target_drain_seconds",
        "cooldown_secs" => "cooldown_seconds",
        "max_observation_age_secs" => "max_observation_age_seconds",
        other => other,
    }
}

/// The patch a `SetScalingRequest` asks for. A mode that is set must be one of the two.
pub fn patch_of(request: &pb::SetScalingRequest) -> Result<ScalingPatch, ScalingRejected> {
    let mode = match request.mode {
        None => None,
        Some(m) if m == pb::ScalingMode::Step as i32 => Some(ScalingMode::Step),
        Some(m) if m == pb::ScalingMode::Proportional as i32 => Some(ScalingMode::Proportional),
        Some(other) => {
            return Err(ScalingRejected {
                problems: vec![FieldProblem {
                    field: "mode".to_owned(),
                    message: format!(
                        "mode must be SCALING_MODE_STEP or SCALING_MODE_PROPORTIONAL when set, not {}",
                        pb::ScalingMode::try_from(other)
                            .map_or_else(|_| other.to_string(), |m| m.as_str_name().to_owned())
                    ),
                }],
            });
        }
    };
    Ok(ScalingPatch {
        mode,
        scale_up_lag: request.scale_up_lag,
        scale_down_lag: request.scale_down_lag,
        min_consumers: request.min_consumers,
        max_consumers: request.max_consumers,
        step_interval_secs: request.interval_seconds,
        stabilization_window_secs: request.stabilization_seconds,
        cooldown_secs: request.cooldown_seconds,
        target_drain_time_secs: request.target_drain_seconds,
        headroom: request.headroom,
        max_observation_age_secs: request.max_observation_age_seconds,
    })
}

/// The protobuf form of a scaling configuration.
pub fn scaling_message(config: &ScalingConfig) -> pb::ScalingConfig {
    pb::ScalingConfig {
        mode: mode_message(config.mode) as i32,
        scale_up_lag: config.scale_up_lag,
        scale_down_lag: config.scale_down_lag,
        min_consumers: config.min_consumers,
        max_consumers: config.max_consumers,
        interval_seconds: config.step_interval.as_secs_f64(),
        stabilization_seconds: config.stabilization_window.as_secs_f64(),
        target_drain_seconds: config.target_drain_time.as_secs_f64(),
        cooldown_seconds: config.cooldown.as_secs_f64(),
        headroom: config.headroom,
        max_observation_age_seconds: config.max_observation_age.as_secs_f64(),
    }
}

fn mode_message(mode: ScalingMode) -> pb::ScalingMode {
    match mode {
        ScalingMode::Step => pb::ScalingMode::Step,
        ScalingMode::Proportional => pb::ScalingMode::Proportional,
    }
}

fn partition_state(status: PartitionStatus) -> pb::PartitionState {
    match status {
        PartitionStatus::Ok => pb::PartitionState::Ok,
        PartitionStatus::Lagging => pb::PartitionState::Lagging,
        PartitionStatus::Stalled => pb::PartitionState::Stalled,
        PartitionStatus::Stopped => pb::PartitionState::Stopped,
    }
}

/// The protobuf form of one decision.
pub fn decision_message(record: &DecisionRecord) -> pb::Decision {
    pb::Decision {
        at_unix_ms: record.at_unix_ms as i64,
        from_consumers: record.decision.current,
        target_consumers: record.decision.target,
        reason: record.decision.reason.clone(),
        mode: mode_message(record.mode) as i32,
        action: match record.decision.action {
            Action::Hold => pb::ScalingAction::Hold,
            Action::ScaleUp => pb::ScalingAction::ScaleUp,
            Action::ScaleDown => pb::ScalingAction::ScaleDown,
        } as i32,
        guard: record
            .decision
            .guard
            .and_then(|g| serde_json::to_value(g).ok())
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        repeats: record.repeats,
        last_at_unix_ms: record.last_at_unix_ms as i64,
        backlog: record.input.backlog,
    }
}

/// The protobuf form of a snapshot.
pub fn status_message(snapshot: &StatusSnapshot) -> pb::Status {
    let lag = snapshot.lag.as_ref();
    let rate = |r: Option<f64>| r.filter(|v| v.is_finite()).unwrap_or(0.0);
    let phase = PhaseView::of(&snapshot.phase);
    pb::Status {
        total_lag: lag.map_or(0, |l| l.total_lag as i64),
        partitions: lag.map_or_else(Vec::new, |l| {
            l.partitions
                .iter()
                .map(|p| pb::PartitionLag {
                    partition: p.partition,
                    committed_offset: p.committed,
                    log_end_offset: p.log_end,
                    lag: p.lag as i64,
                    state: partition_state(p.status) as i32,
                    log_start_offset: p.log_start,
                    seconds_behind: p.seconds_behind.filter(|v| v.is_finite()),
                })
                .collect()
        }),
        produce_rate: rate(lag.and_then(|l| l.produce_rate)),
        consume_rate: rate(lag.and_then(|l| l.consume_rate)),
        seconds_behind: rate(lag.and_then(|l| l.seconds_behind_time)),
        desired_consumers: snapshot.desired_consumers,
        running_consumers: snapshot.running_consumers,
        sink_healthy: snapshot.sink_unhealthy_consumers == 0,
        recent_decisions: snapshot
            .decisions
            .iter()
            .rev()
            .take(STATUS_DECISIONS)
            .map(decision_message)
            .collect(),
        held_reason: snapshot.held_reason.clone().unwrap_or_default(),
        stale: lag.is_some_and(|l| l.stale.is_some()),
        scaling: Some(scaling_message(&snapshot.scaling)),
        service_name: snapshot.service_name.clone(),
        at_unix_ms: snapshot.at_unix_ms as i64,
        phase: Some(pb::Phase {
            state: phase.state.to_owned(),
            message: phase.message,
            remedy: phase.remedy.unwrap_or_default(),
        }),
        sink_healthy_consumers: snapshot.sink_healthy_consumers,
        sink_unhealthy_consumers: snapshot.sink_unhealthy_consumers,
        sink_error: if snapshot.sink_unhealthy_consumers > 0 {
            snapshot.sink_error.clone().unwrap_or_default()
        } else {
            String::new()
        },
        backlog: lag.map_or(0, |l| l.backlog),
        plan_status: match snapshot.plan {
            PlanStatus::Complete => pb::PlanStatus::Complete,
            PlanStatus::InProgress => pb::PlanStatus::InProgress,
            PlanStatus::Error => pb::PlanStatus::Error,
        } as i32,
        plan_message: snapshot.plan_message.clone(),
        lag_state: lag.map_or(pb::PartitionState::Unspecified, |l| {
            partition_state(l.status)
        }) as i32,
        stale_reason: lag
            .and_then(|l| l.stale.as_ref())
            .map(|s| s.reason.clone())
            .unwrap_or_default(),
        framework_id: snapshot.framework_id.clone().unwrap_or_default(),
        summary: summary(snapshot),
    }
}

/// What identifies a decision record across snapshots: folding repeats into it changes its
/// count, not its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DecisionKey {
    at_unix_ms: u64,
    from: u32,
    to: u32,
    reason: String,
}

impl DecisionKey {
    fn of(record: &DecisionRecord) -> DecisionKey {
        DecisionKey {
            at_unix_ms: record.at_unix_ms,
            from: record.decision.current,
            to: record.decision.target,
            reason: record.decision.reason.clone(),
        }
    }
}

/// Which decisions a watcher has seen: the keys of the latest snapshot's (bounded) log.
#[derive(Debug, Clone, Default)]
pub struct DecisionTracker {
    seen: HashSet<DecisionKey>,
}

impl DecisionTracker {
    /// A tracker that has seen every decision of `decisions`.
    pub fn seen_all(decisions: &[DecisionRecord]) -> DecisionTracker {
        DecisionTracker {
            seen: decisions.iter().map(DecisionKey::of).collect(),
        }
    }

    /// The records of `decisions` not seen before, in log order (oldest first); they count
    /// as seen afterwards. Records that left the log are forgotten, so memory stays bounded
    /// by the log.
    pub fn fresh<'a>(&mut self, decisions: &'a [DecisionRecord]) -> Vec<&'a DecisionRecord> {
        let fresh = decisions
            .iter()
            .filter(|d| !self.seen.contains(&DecisionKey::of(d)))
            .collect();
        self.seen = decisions.iter().map(DecisionKey::of).collect();
        fresh
    }
}

/// One `WatchStatus` stream.
#[derive(Debug)]
pub struct WatchState {
    status: StatusReceiver,
    interval: tokio::time::Interval,
    shutdown: watch::Receiver<bool>,
    tracker: DecisionTracker,
    queue: VecDeque<pb::StatusEvent>,
}

/// What woke a [`WatchState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// The interval elapsed: time for a snapshot.
    Tick,
    /// The run loop published a snapshot.
    Published,
    /// The run loop is gone, or the server shuts down.
    End,
}

impl WatchState {
    /// A stream that starts with the current snapshot; decisions already in it are not sent
    /// again as events.
    pub fn new(
        mut status: StatusReceiver,
        period: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> WatchState {
        let tracker = DecisionTracker::seen_all(&status.borrow_and_update().decisions);
        let mut interval = tokio::time::interval(period);
        // A slow client gets the next snapshot when it can take it, not a burst of old ones.
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        WatchState {
            status,
            interval,
            shutdown,
            tracker,
            queue: VecDeque::new(),
        }
    }

    /// Carries out one wake-up; false when the stream must end.
    fn step(&mut self, wake: Wake) -> bool {
        match wake {
            Wake::End => false,
            Wake::Tick => {
                let snapshot = self.status.borrow_and_update().clone();
                // Decisions that arrived with this snapshot go first, then the snapshot.
                for record in self.tracker.fresh(&snapshot.decisions) {
                    self.queue.push_back(decision_event(record));
                }
                self.queue.push_back(pb::StatusEvent {
                    event: Some(pb::status_event::Event::Snapshot(status_message(&snapshot))),
                });
                true
            }
            Wake::Published => {
                let snapshot = self.status.borrow_and_update().clone();
                for record in self.tracker.fresh(&snapshot.decisions) {
                    self.queue.push_back(decision_event(record));
                }
                true
            }
        }
    }

    async fn wake(&mut self) -> Wake {
        if *self.shutdown.borrow() {
            return Wake::End;
        }
        tokio::select! {
            biased;
            _ = self.shutdown.changed() => Wake::End,
            changed = self.status.changed() => match changed {
                Ok(()) => Wake::Published,
                Err(_) => Wake::End,
            },
            _ = self.interval.tick() => Wake::Tick,
        }
    }

    /// The events, as a stream.
    pub fn into_stream(self) -> impl Stream<Item = Result<pb::StatusEvent, Status>> + Send {
        futures::stream::unfold(self, |mut state| async move {
            loop {
                if let Some(event) = state.queue.pop_front() {
                    return Some((Ok(event), state));
                }
                let wake = state.wake().await;
                if !state.step(wake) {
                    return None;
                }
            }
        })
    }
}

fn decision_event(record: &DecisionRecord) -> pb::StatusEvent {
    pb::StatusEvent {
        event: Some(pb::status_event::Event::Decision(decision_message(record))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::sample::sample_snapshot;

    #[test]
    fn set_scaling_maps_every_field_and_refuses_an_unspecified_mode() {
        let request = pb::SetScalingRequest {
            mode: Some(pb::ScalingMode::Step as i32),
            scale_up_lag: Some(900),
            interval_seconds: Some(5.0),
            stabilization_seconds: Some(30.0),
            target_drain_seconds: Some(45.0),
            cooldown_seconds: Some(10.0),
            headroom: Some(0.1),
            max_observation_age_seconds: Some(4.0),
            ..pb::SetScalingRequest::default()
        };
        let patch = patch_of(&request).expect("valid");
        assert_eq!(
            patch,
            ScalingPatch {
                mode: Some(ScalingMode::Step),
                scale_up_lag: Some(900),
                step_interval_secs: Some(5.0),
                stabilization_window_secs: Some(30.0),
                target_drain_time_secs: Some(45.0),
                cooldown_secs: Some(10.0),
                headroom: Some(0.1),
                max_observation_age_secs: Some(4.0),
                ..ScalingPatch::default()
            }
        );
        for bad in [0, 7] {
            let request = pb::SetScalingRequest {
                mode: Some(bad),
                ..pb::SetScalingRequest::default()
            };
            let rejected = patch_of(&request).expect_err("bad mode");
            assert_eq!(rejected.problems[0].field, "mode");
        }
    }

    #[test]
    fn invalid_argument_names_fields_as_the_proto_does() {
        let status = invalid_argument(&ScalingRejected {
            problems: vec![
                FieldProblem {
                    field: "step_interval_secs".into(),
                    message: "step_interval_secs must be more than 0 seconds".into(),
                },
                FieldProblem {
                    field: "scale_down_lag".into(),
                    message: "scale_down_lag (9) must be below scale_up_lag (5)".into(),
                },
            ],
        });
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "the scaling change was refused: interval_seconds: step_interval_secs must be more than 0 seconds; scale_down_lag: scale_down_lag (9) must be below scale_up_lag (5)"
        );
    }

    #[test]
    fn status_message_carries_the_snapshot() {
        let snapshot = sample_snapshot(1_795_600_800_000);
        let message = status_message(&snapshot);
        assert_eq!(message.total_lag, 12_400);
        assert_eq!(message.partitions.len(), 6);
        assert_eq!(message.partitions[5].committed_offset, None);
        assert_eq!(message.recent_decisions.len(), STATUS_DECISIONS);
        assert_eq!(
            message.recent_decisions[0].at_unix_ms as u64,
            snapshot.decisions.last().expect("decisions").at_unix_ms
        );
        assert_eq!(message.phase.expect("phase").state, "running");
        assert_eq!(message.scaling.expect("scaling").interval_seconds, 15.0);
        assert!(message.sink_healthy);
        assert_eq!(message.lag_state, pb::PartitionState::Lagging as i32);
    }

    #[test]
    fn the_tracker_reports_each_new_record_once() {
        let snapshot = sample_snapshot(1_795_600_800_000);
        let all = &snapshot.decisions;
        let mut tracker = DecisionTracker::seen_all(&all[..10]);
        let fresh: Vec<u64> = tracker.fresh(all).iter().map(|d| d.at_unix_ms).collect();
        assert_eq!(
            fresh,
            all[10..].iter().map(|d| d.at_unix_ms).collect::<Vec<_>>()
        );
        assert!(tracker.fresh(all).is_empty(), "nothing twice");
        // A fold (more repeats) is not a new decision; a rotation of the log is not either.
        let mut folded = all.clone();
        folded.last_mut().expect("a record").repeats += 5;
        folded.remove(0);
        assert!(tracker.fresh(&folded).is_empty());
    }
}
