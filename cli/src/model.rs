//! The JSON the CLI reads from the scheduler's REST API, as its own types.
//!
//! Tolerant on purpose: every field has a default and unknown fields are ignored, so a CLI
//! and a scheduler one version apart still work together (the CLI shows what it knows). The
//! authoritative shapes are in `scheduler/api/openapi.json`; these mirror the parts the CLI
//! displays.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// `GET /v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Status {
    /// Service name.
    pub service_name: String,
    /// Snapshot time, RFC 3339.
    pub at: String,
    /// One line.
    pub summary: String,
    /// Phase.
    pub phase: Phase,
    /// Consumers.
    pub consumers: Consumers,
    /// Lag.
    pub lag: Option<Lag>,
    /// Sink.
    pub sink: Sink,
    /// Why nothing changes.
    pub held_reason: Option<String>,
    /// Thresholds.
    pub scaling: Scaling,
    /// Simulated producers (absent from older schedulers: none).
    pub producers: Producers,
    /// Deploy plan.
    pub plan: Plan,
    /// Recent decisions, newest first.
    pub decisions: Vec<Decision>,
}

/// The scheduler's phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Phase {
    /// `running`, `fatal`, ...
    pub state: String,
    /// In a sentence.
    pub message: String,
    /// What to do, when fatal.
    pub remedy: Option<String>,
}

/// Consumer counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Consumers {
    /// Wanted.
    pub desired: u32,
    /// Running.
    pub running: u32,
    /// min_consumers.
    pub min: u32,
    /// max_consumers.
    pub max: u32,
}

/// Lag.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Lag {
    /// Total.
    pub total: u64,
    /// Backlog.
    pub backlog: u64,
    /// Worst status.
    pub status: String,
    /// Produce rate.
    pub produce_rate_per_sec: Option<f64>,
    /// Consume rate.
    pub consume_rate_per_sec: Option<f64>,
    /// Age of the oldest unconsumed message.
    pub seconds_behind: Option<f64>,
    /// Time to drain.
    pub seconds_to_drain: Option<f64>,
    /// Rebalancing.
    pub rebalancing: bool,
    /// Stale.
    pub stale: Option<Stale>,
    /// Partitions.
    pub partitions: Vec<Partition>,
}

/// Why the lag is old.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Stale {
    /// What failed.
    pub reason: String,
    /// Consecutive failures.
    pub failures: u32,
}

/// One partition.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Partition {
    /// Id.
    pub partition: i32,
    /// Lag.
    pub lag: u64,
    /// Status.
    pub status: String,
    /// Committed offset.
    pub committed_offset: Option<i64>,
    /// Log end.
    pub log_end_offset: i64,
    /// Age of its oldest unconsumed message.
    pub seconds_behind: Option<f64>,
}

/// Sink health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Sink {
    /// No failures.
    pub healthy: bool,
    /// In a sentence.
    pub summary: String,
}

/// The plan in one line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Plan {
    /// `COMPLETE`, `IN_PROGRESS`, `ERROR`.
    pub status: String,
    /// What is left.
    pub message: String,
}

/// One decision.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Decision {
    /// RFC 3339.
    pub at: String,
    /// Folded repeats.
    pub repeats: u32,
    /// `hold`, `scale_up`, `scale_down`.
    pub action: String,
    /// Before.
    pub from: u32,
    /// After.
    pub to: u32,
    /// Guard.
    pub guard: Option<String>,
    /// Why.
    pub reason: String,
    /// Mode.
    pub mode: String,
}

/// `GET /v1/decisions`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Decisions {
    /// Newest first.
    pub decisions: Vec<Decision>,
}

/// `GET|PUT /v1/scaling`: the known fields in the order operators think of them, and any
/// field a newer scheduler adds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Scaling {
    /// `step` or `proportional`.
    pub mode: Option<String>,
    /// Grow above.
    pub scale_up_lag: Option<u64>,
    /// Shrink below.
    pub scale_down_lag: Option<u64>,
    /// Fewest.
    pub min_consumers: Option<u32>,
    /// Most.
    pub max_consumers: Option<u32>,
    /// Step interval.
    pub step_interval_secs: Option<f64>,
    /// Stabilization window.
    pub stabilization_window_secs: Option<f64>,
    /// Cooldown.
    pub cooldown_secs: Option<f64>,
    /// Drain time.
    pub target_drain_time_secs: Option<f64>,
    /// Headroom.
    pub headroom: Option<f64>,
    /// Staleness bound.
    pub max_observation_age_secs: Option<f64>,
    /// Fields this CLI does not know.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `GET|PUT /v1/producers`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Producers {
    /// Producer tasks configured.
    pub tasks: u32,
    /// Events per second of each.
    pub rate: f64,
}

/// A JSON error body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    /// Kind.
    pub error: String,
    /// Sentence.
    pub message: String,
    /// Field problems.
    pub problems: Vec<FieldProblem>,
}

/// One field problem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FieldProblem {
    /// Field.
    pub field: String,
    /// Rule.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_and_missing_fields_are_fine() {
        let status: Status = serde_json::from_str(
            r#"{"service_name":"fd","brand_new":{"x":1},"consumers":{"running":2,"later":true},
                "lag":{"total":5,"partitions":[{"partition":0,"lag":5,"status":"ok","new":1}]},
                "scaling":{"scale_up_lag":900,"future_knob":3}}"#,
        )
        .expect("tolerant");
        assert_eq!(status.service_name, "fd");
        assert_eq!(status.consumers.running, 2);
        assert_eq!(status.lag.as_ref().map(|l| l.partitions.len()), Some(1));
        assert_eq!(status.scaling.scale_up_lag, Some(900));
        assert_eq!(
            status.scaling.other.get("future_knob"),
            Some(&Value::from(3))
        );
        let empty: Status = serde_json::from_str("{}").expect("all defaults");
        assert_eq!(empty.lag, None);
    }
}
