//! [`StatusSnapshot`]: everything the scheduler knows, as one value, for the REST and gRPC
//! APIs, the status page and the CLI.
//!
//! The framework's run loop builds a fresh snapshot after every change and publishes it on a
//! `tokio::sync::watch` channel ([`StatusReceiver`]); readers never lock the scheduler's
//! state. Requests that change something (the scaling thresholds) go the other way as
//! [`ApiRequest`]s on a bounded channel, answered through a oneshot. Pure data: no I/O here.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::lag::LagObservation;
use crate::policy::{DecisionRecord, ScalingConfig};

/// Where the scheduler is in its life. Maps onto the DC/OS SDK's `/v1/health` codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Phase {
    /// Connecting to ZooKeeper, taking the lock and loading the framework's state.
    Starting {
        /// Why the last attempt to reach ZooKeeper failed, if one did.
        last_error: Option<String>,
    },
    /// Another scheduler instance holds the ZooKeeper lock; this one waits.
    WaitingForLock,
    /// Subscribing to the Mesos master (or re-subscribing after a disconnection).
    Subscribing {
        /// Why the last attempt failed, if one did.
        last_error: Option<String>,
    },
    /// Subscribed; reconciling the tasks it knows with the master before taking offers.
    Reconciling {
        /// Tasks still without an answer.
        pending: usize,
    },
    /// Subscribed and acting.
    Running,
    /// The scheduler stopped trying: Mesos refused the framework for good (for example
    /// "Framework has been removed"). Needs the operator.
    Fatal {
        /// What Mesos (or the state store) said.
        message: String,
        /// What the operator must do, step by step.
        remedy: String,
    },
    /// Uninstall mode: killing tasks, unreserving, tearing down.
    Uninstalling {
        /// What is left to do.
        remaining: String,
    },
    /// Uninstall finished: the framework is torn down and its state deleted.
    Uninstalled,
}

/// The lifecycle state of one task, as the scheduler tracks it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    /// Slot name: `consumer-3`, `producer-0`.
    pub slot: String,
    /// `consumer` or `producer`.
    pub kind: String,
    /// Current Mesos task id, if one is launched.
    pub task_id: Option<String>,
    /// Agent it runs (or is reserved) on.
    pub agent_id: Option<String>,
    /// That agent's hostname.
    pub hostname: Option<String>,
    /// Last Mesos state (`TASK_RUNNING`...), or the scheduler's own step for a slot without
    /// a task (`RESERVING`, `WAITING_FOR_OFFER`, `BACKOFF`, `KILLING`, `UNRESERVING`).
    pub state: String,
    /// The slot's goal: `running` or `removed` (being scaled down).
    pub goal: String,
    /// Last status message from Mesos or the executor.
    pub message: Option<String>,
    /// Docker volume of the slot, if it has one.
    pub volume: Option<String>,
    /// Consecutive failures of this slot (drives its relaunch backoff).
    pub failures: u32,
    /// When the slot may be relaunched, milliseconds since the Unix epoch, while backing off.
    pub relaunch_at_unix_ms: Option<u64>,
    /// The workload's last stats report.
    pub stats: Option<fastdata_proto::task::StatsReport>,
}

/// One offer and what became of it, for `/v1/debug/offers`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfferOutcome {
    /// When, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Offer id.
    pub offer_id: String,
    /// Agent.
    pub agent_id: String,
    /// Agent hostname.
    pub hostname: String,
    /// `accepted` or `declined`.
    pub outcome: String,
    /// What was done with it (`RESERVE+LAUNCH consumer-3`), or why it was declined ("needs 1
    /// cpu, offer has 0.5", "agent already runs 2 consumers").
    pub reason: String,
}

/// State of the `deploy` plan, with the DC/OS SDK's status-code meaning (200 complete, 202 in
/// progress, 417 error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PlanStatus {
    /// Every slot the target asks for runs (or, uninstalling, everything is cleaned up).
    Complete,
    /// Work remains.
    InProgress,
    /// The scheduler cannot make progress (a fatal error).
    Error,
}

/// One point of the status page's history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// Milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Total lag.
    pub total_lag: u64,
    /// Consumers running.
    pub running: u32,
    /// Consumers wanted.
    pub desired: u32,
}

/// Counters for `/v1/metrics/prometheus`, monotonic since the scheduler started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counters {
    /// Offers received.
    pub offers_received: u64,
    /// Offers accepted.
    pub offers_accepted: u64,
    /// Offers declined.
    pub offers_declined: u64,
    /// REVIVE calls sent.
    pub revives: u64,
    /// SUPPRESS calls sent.
    pub suppresses: u64,
    /// Tasks launched.
    pub tasks_launched: u64,
    /// KILL calls sent.
    pub kills: u64,
    /// Status updates received, by state name (`TASK_RUNNING` ...).
    pub task_updates: std::collections::BTreeMap<String, u64>,
    /// Scaling decisions that changed the target.
    pub scaling_changes: u64,
    /// Subscriptions (first and re-subscriptions).
    pub subscriptions: u64,
}

/// Everything the APIs show. Cheap to clone (published behind an `Arc`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusSnapshot {
    /// The service name.
    pub service_name: String,
    /// When this snapshot was made, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Life-cycle phase.
    pub phase: Phase,
    /// The framework id, once Mesos gave one (or the one stored in ZooKeeper).
    pub framework_id: Option<String>,
    /// The master the scheduler is subscribed to.
    pub master: Option<String>,
    /// The latest lag observation.
    pub lag: Option<LagObservation>,
    /// The scaling thresholds in force.
    pub scaling: ScalingConfig,
    /// Consumers the policy wants.
    pub desired_consumers: u32,
    /// Consumer tasks in TASK_RUNNING.
    pub running_consumers: u32,
    /// Consumers reporting a healthy sink / an unhealthy one.
    pub sink_healthy_consumers: u32,
    /// Consumers reporting an unhealthy sink.
    pub sink_unhealthy_consumers: u32,
    /// The last sink error a consumer reported, if any is unhealthy.
    pub sink_error: Option<String>,
    /// When nothing changes although the lag says it could, why ("scale-up held: Cassandra
    /// unhealthy on 2 of 3 consumers"), or why a wanted slot is not running ("waiting for an
    /// offer: needs 1 cpu, best offer has 0.5").
    pub held_reason: Option<String>,
    /// Recent decisions, oldest first (the full bounded log is `/v1/decisions`).
    pub decisions: Vec<DecisionRecord>,
    /// Every slot and its task.
    pub tasks: Vec<TaskView>,
    /// Recent offer outcomes, oldest first (bounded).
    pub offers: Vec<OfferOutcome>,
    /// The deploy plan.
    pub plan: PlanStatus,
    /// A sentence about the plan ("3 of 5 consumers running; consumer-4 waiting for an
    /// offer").
    pub plan_message: String,
    /// The last hour, one point every few seconds.
    pub history: Vec<HistoryPoint>,
    /// Producer tasks configured (0 on a real cluster).
    pub producer_tasks: u32,
    /// Their rate, events per second per producer task (changed at runtime with
    /// [`ApiRequest::SetProducerRate`]).
    pub producer_rate: f64,
    /// Counters.
    pub counters: Counters,
}

impl StatusSnapshot {
    /// The snapshot of a scheduler that has just started.
    pub fn starting(service_name: &str, scaling: ScalingConfig) -> StatusSnapshot {
        StatusSnapshot {
            service_name: service_name.to_owned(),
            at_unix_ms: 0,
            phase: Phase::Starting { last_error: None },
            framework_id: None,
            master: None,
            lag: None,
            scaling,
            desired_consumers: 0,
            running_consumers: 0,
            sink_healthy_consumers: 0,
            sink_unhealthy_consumers: 0,
            sink_error: None,
            held_reason: None,
            decisions: Vec::new(),
            tasks: Vec::new(),
            offers: Vec::new(),
            plan: PlanStatus::InProgress,
            plan_message: "starting".to_owned(),
            history: Vec::new(),
            producer_tasks: 0,
            producer_rate: 0.0,
            counters: Counters::default(),
        }
    }
}

/// The receiving side of the snapshots.
pub type StatusReceiver = watch::Receiver<Arc<StatusSnapshot>>;

/// A change of thresholds: fields left `None` keep their value (REST `PUT /v1/scaling` with a
/// partial body, gRPC `SetScaling`). Durations in seconds, as in [`ScalingConfig`]'s JSON.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingPatch {
    /// `step` or `proportional`.
    pub mode: Option<crate::policy::ScalingMode>,
    /// Backlog above which the group grows.
    pub scale_up_lag: Option<u64>,
    /// Backlog below which it may shrink.
    pub scale_down_lag: Option<u64>,
    /// Fewest consumers.
    pub min_consumers: Option<u32>,
    /// Most consumers.
    pub max_consumers: Option<u32>,
    /// `step` interval, seconds.
    pub step_interval_secs: Option<f64>,
    /// Stabilization window, seconds.
    pub stabilization_window_secs: Option<f64>,
    /// Cooldown, seconds.
    pub cooldown_secs: Option<f64>,
    /// Target drain time, seconds.
    pub target_drain_time_secs: Option<f64>,
    /// Headroom fraction.
    pub headroom: Option<f64>,
    /// Observation age bound, seconds.
    pub max_observation_age_secs: Option<f64>,
}

/// Why a scaling change was refused: every problem, each naming its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
pub struct ScalingRejected {
    /// The problems.
    pub problems: Vec<FieldProblem>,
}

/// One field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// JSON field name.
    pub field: String,
    /// The rule it breaks, in a sentence.
    pub message: String,
}

/// A request from the APIs to the run loop.
#[derive(Debug)]
pub enum ApiRequest {
    /// Apply a scaling patch: validated, persisted to ZooKeeper, in force from the next tick.
    /// Answers with the whole configuration now in force.
    SetScaling {
        /// The change.
        patch: ScalingPatch,
        /// The answer.
        reply: oneshot::Sender<Result<ScalingConfig, ScalingRejected>>,
    },
    /// Set the producer tasks' rate (events per second each), for load tests and the demo.
    /// Not persisted: a restarted scheduler starts its producers at the configured rate.
    /// Answers with the rate now in force.
    SetProducerRate {
        /// Events per second per producer task; 0 pauses.
        rate: f64,
        /// The answer.
        reply: oneshot::Sender<Result<f64, ScalingRejected>>,
    },
}

/// Why a producer rate was refused.
pub fn check_producer_rate(rate: f64) -> Result<f64, ScalingRejected> {
    if rate.is_finite() && (0.0..=1_000_000.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(ScalingRejected {
            problems: vec![FieldProblem {
                field: "rate".to_owned(),
                message: format!(
                    "{rate} is not a rate; use events per second per producer task, from 0 (paused) to 1000000"
                ),
            }],
        })
    }
}

/// The sending side of [`ApiRequest`]s.
pub type ApiSender = mpsc::Sender<ApiRequest>;

/// The JSON fields of a [`ScalingPatch`] (and of [`ScalingConfig`]), in document order.
pub const SCALING_FIELDS: [&str; 11] = [
    "mode",
    "scale_up_lag",
    "scale_down_lag",
    "min_consumers",
    "max_consumers",
    "step_interval_secs",
    "stabilization_window_secs",
    "cooldown_secs",
    "target_drain_time_secs",
    "headroom",
    "max_observation_age_secs",
];

impl ScalingPatch {
    /// The configuration `current` becomes with this patch, or every problem, each naming its
    /// field: values the patch itself cannot carry (negative, non-finite or overflowing
    /// seconds, a non-finite headroom) and every rule [`ScalingConfig::validate`] refuses on
    /// the merged result. Pure; the run loop persists what it returns.
    ///
    /// A rule that relates two fields is reported under the one this patch changed, so
    /// `{"scale_up_lag": 50}` against a `scale_down_lag` of 100 blames `scale_up_lag`.
    pub fn apply(&self, current: &ScalingConfig) -> Result<ScalingConfig, ScalingRejected> {
        let mut next = current.clone();
        let mut problems = Vec::new();
        if let Some(mode) = self.mode {
            next.mode = mode;
        }
        if let Some(lag) = self.scale_up_lag {
            next.scale_up_lag = lag;
        }
        if let Some(lag) = self.scale_down_lag {
            next.scale_down_lag = lag;
        }
        if let Some(n) = self.min_consumers {
            next.min_consumers = n;
        }
        if let Some(n) = self.max_consumers {
            next.max_consumers = n;
        }
        let durations = [
            (
                "step_interval_secs",
                self.step_interval_secs,
                &mut next.step_interval,
            ),
            (
                "stabilization_window_secs",
                self.stabilization_window_secs,
                &mut next.stabilization_window,
            ),
            ("cooldown_secs", self.cooldown_secs, &mut next.cooldown),
            (
                "target_drain_time_secs",
                self.target_drain_time_secs,
                &mut next.target_drain_time,
            ),
            (
                "max_observation_age_secs",
                self.max_observation_age_secs,
                &mut next.max_observation_age,
            ),
        ];
        for (field, secs, slot) in durations {
            let Some(secs) = secs else { continue };
            match seconds(field, secs) {
                Ok(duration) => *slot = duration,
                Err(message) => problems.push(FieldProblem {
                    field: field.to_owned(),
                    message,
                }),
            }
        }
        if let Some(headroom) = self.headroom {
            if headroom.is_finite() {
                next.headroom = headroom;
            } else {
                problems.push(FieldProblem {
                    field: "headroom".to_owned(),
                    message: format!(
                        "headroom must be a fraction between 0 and 1 (0.05 keeps 5% spare capacity), not {headroom}"
                    ),
                });
            }
        }
        if let Err(invalid) = next.validate() {
            for error in invalid.0 {
                problems.push(FieldProblem {
                    field: self.blame(&error).to_owned(),
                    message: error.to_string(),
                });
            }
        }
        if problems.is_empty() {
            Ok(next)
        } else {
            Err(ScalingRejected { problems })
        }
    }

    /// The field to report `error` under: for a rule between two fields, the one this patch
    /// set when it set only that one.
    fn blame(&self, error: &crate::policy::ConfigError) -> &'static str {
        use crate::policy::ConfigError;
        match error {
            ConfigError::ScaleDownNotBelowScaleUp { .. }
                if self.scale_up_lag.is_some() && self.scale_down_lag.is_none() =>
            {
                "scale_up_lag"
            }
            ConfigError::MinAboveMax { .. }
                if self.max_consumers.is_some() && self.min_consumers.is_none() =>
            {
                "max_consumers"
            }
            other => other.field(),
        }
    }
}

/// `secs` as a duration, or the sentence saying why it is not one.
fn seconds(field: &str, secs: f64) -> Result<std::time::Duration, String> {
    if !secs.is_finite() {
        return Err(format!(
            "{field} must be a finite number of seconds, not {secs}"
        ));
    }
    if secs < 0.0 {
        return Err(format!(
            "{field} must not be negative (got {secs}); durations are in seconds"
        ));
    }
    std::time::Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{field} is {secs} s, far too large; durations are in seconds"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::ScalingMode;

    fn fields(rejected: &ScalingRejected) -> Vec<&str> {
        rejected.problems.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn an_empty_patch_keeps_everything() {
        let current = ScalingConfig::default();
        assert_eq!(ScalingPatch::default().apply(&current), Ok(current));
    }

    #[test]
    fn a_partial_patch_changes_only_its_fields() {
        let current = ScalingConfig::default();
        let patch = ScalingPatch {
            mode: Some(ScalingMode::Step),
            scale_up_lag: Some(2000),
            max_consumers: Some(6),
            step_interval_secs: Some(7.5),
            headroom: Some(0.2),
            ..ScalingPatch::default()
        };
        let next = patch.apply(&current).expect("valid");
        assert_eq!(
            next,
            ScalingConfig {
                mode: ScalingMode::Step,
                scale_up_lag: 2000,
                max_consumers: 6,
                step_interval: Duration::from_millis(7500),
                headroom: 0.2,
                ..current
            }
        );
    }

    #[test]
    fn every_problem_is_reported_under_its_field() {
        let current = ScalingConfig::default();
        let cases: Vec<(ScalingPatch, Vec<&str>, &str)> = vec![
            (
                ScalingPatch {
                    scale_up_lag: Some(50),
                    ..ScalingPatch::default()
                },
                vec!["scale_up_lag"],
                "scale_down_lag (100) must be below scale_up_lag (50)",
            ),
            (
                ScalingPatch {
                    scale_down_lag: Some(900),
                    ..ScalingPatch::default()
                },
                vec!["scale_down_lag"],
                "scale_down_lag (900) must be below scale_up_lag (500)",
            ),
            (
                ScalingPatch {
                    scale_up_lag: Some(50),
                    scale_down_lag: Some(60),
                    ..ScalingPatch::default()
                },
                vec!["scale_down_lag"],
                "must be below",
            ),
            (
                ScalingPatch {
                    max_consumers: Some(0),
                    ..ScalingPatch::default()
                },
                vec!["max_consumers"],
                "min_consumers (1) must not exceed max_consumers (0); to pause consumption set min_consumers to 0 as well",
            ),
            (
                ScalingPatch {
                    min_consumers: Some(20),
                    ..ScalingPatch::default()
                },
                vec!["min_consumers"],
                "min_consumers (20) must not exceed max_consumers (10)",
            ),
            (
                ScalingPatch {
                    cooldown_secs: Some(-1.0),
                    ..ScalingPatch::default()
                },
                vec!["cooldown_secs"],
                "cooldown_secs must not be negative",
            ),
            (
                ScalingPatch {
                    step_interval_secs: Some(f64::NAN),
                    ..ScalingPatch::default()
                },
                vec!["step_interval_secs"],
                "must be a finite number of seconds",
            ),
            (
                ScalingPatch {
                    target_drain_time_secs: Some(1e300),
                    ..ScalingPatch::default()
                },
                vec!["target_drain_time_secs"],
                "far too large",
            ),
            (
                ScalingPatch {
                    max_observation_age_secs: Some(0.0),
                    ..ScalingPatch::default()
                },
                vec!["max_observation_age_secs"],
                "must be more than 0 seconds",
            ),
            (
                ScalingPatch {
                    stabilization_window_secs: Some(100_000.0),
                    ..ScalingPatch::default()
                },
                vec!["stabilization_window_secs"],
                "more than a day",
            ),
            (
                ScalingPatch {
                    headroom: Some(f64::INFINITY),
                    ..ScalingPatch::default()
                },
                vec!["headroom"],
                "headroom must be a fraction",
            ),
            (
                ScalingPatch {
                    headroom: Some(1.5),
                    ..ScalingPatch::default()
                },
                vec!["headroom"],
                "not 1.5",
            ),
        ];
        for (patch, expected, message) in cases {
            let rejected = patch.apply(&current).expect_err(message);
            assert_eq!(fields(&rejected), expected, "{patch:?}");
            assert!(
                rejected.to_string().contains(message),
                "{rejected} should contain {message:?}"
            );
        }
    }

    #[test]
    fn type_problems_and_rule_problems_come_together() {
        let patch = ScalingPatch {
            cooldown_secs: Some(-5.0),
            min_consumers: Some(4),
            max_consumers: Some(3),
            ..ScalingPatch::default()
        };
        let rejected = patch
            .apply(&ScalingConfig::default())
            .expect_err("two problems");
        assert_eq!(fields(&rejected), vec!["cooldown_secs", "min_consumers"]);
    }

    #[test]
    fn the_field_list_matches_the_json() {
        let config = serde_json::to_value(ScalingConfig::default()).expect("serializes");
        let names: Vec<&str> = config
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = SCALING_FIELDS.to_vec();
        expected.sort_unstable();
        let mut names = names;
        names.sort_unstable();
        assert_eq!(names, expected);
        let patch = serde_json::to_value(ScalingPatch::default()).expect("serializes");
        let mut patch_names: Vec<&str> = patch
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        patch_names.sort_unstable();
        assert_eq!(patch_names, expected);
    }
}
