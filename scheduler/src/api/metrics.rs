//! `GET /v1/metrics/prometheus`: the snapshot in the Prometheus text exposition format
//! (version 0.0.4), rendered by a pure function.
//!
//! Every family has `# HELP` and `# TYPE` before its samples; counters end in `_total` and
//! come from the scheduler's monotonic [`crate::status::Counters`]; everything else is a
//! gauge of the latest snapshot. States (phase, plan, partition status) are state sets: one
//! sample per possible value, 1 for the current one, so a query never has to know which
//! values exist. Label values are escaped as the format requires (`\\`, `\"`, `\n`).

use std::fmt::Write as _;

use crate::lag::PartitionStatus;
use crate::status::{PlanStatus, StatusSnapshot};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family being written.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape_label(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value as f64);
    }
}

/// The exposition of `snapshot`.
pub fn render(snapshot: &StatusSnapshot) -> String {
    let mut e = Exposition {
        out: String::with_capacity(4096),
    };
    let lag = snapshot.lag.as_ref();

    e.gauge(
        "fastdata_lag_messages",
        "Total lag of the consumer group over all partitions (log end minus committed offset).",
        lag.map_or(0.0, |l| l.total_lag as f64),
    );
    e.gauge(
        "fastdata_backlog_messages",
        "Lag net of commit timing; what the scaling thresholds apply to.",
        lag.map_or(0.0, |l| l.backlog as f64),
    );
    e.family(
        "fastdata_partition_lag_messages",
        "gauge",
        "Lag of the consumer group per partition.",
    );
    for p in lag.map_or(&[][..], |l| &l.partitions[..]) {
        e.sample(
            "fastdata_partition_lag_messages",
            &[("partition", &p.partition.to_string())],
            p.lag as f64,
        );
    }
    e.family(
        "fastdata_partition_status",
        "gauge",
        "Burrow-style status per partition: 1 for the current status, 0 for the others.",
    );
    for p in lag.map_or(&[][..], |l| &l.partitions[..]) {
        let partition = p.partition.to_string();
        for status in [
            PartitionStatus::Ok,
            PartitionStatus::Lagging,
            PartitionStatus::Stalled,
            PartitionStatus::Stopped,
        ] {
            e.sample(
                "fastdata_partition_status",
                &[
                    ("partition", &partition),
                    ("status", super::views::status_word(status)),
                ],
                f64::from(u8::from(p.status == status)),
            );
        }
    }
    let rates = [
        (
            "fastdata_produce_rate_messages_per_second",
            "Messages appended to the topic per second (30 s window); absent until measured.",
            lag.and_then(|l| l.produce_rate),
        ),
        (
            "fastdata_consume_rate_messages_per_second",
            "Offsets committed by the group per second (30 s window); absent until measured.",
            lag.and_then(|l| l.consume_rate),
        ),
        (
            "fastdata_lag_seconds",
            "Age of the oldest unconsumed message; absent until it can be estimated.",
            lag.and_then(|l| l.seconds_behind_time),
        ),
    ];
    for (name, help, value) in rates {
        e.family(name, "gauge", help);
        if let Some(v) = value.filter(|v| v.is_finite()) {
            e.sample(name, &[], v);
        }
    }
    e.gauge(
        "fastdata_lag_stale",
        "1 when the last read of the offsets failed and the lag numbers are old.",
        f64::from(u8::from(lag.is_some_and(|l| l.stale.is_some()))),
    );
    e.gauge(
        "fastdata_consumers_desired",
        "Consumers the scaling policy wants.",
        f64::from(snapshot.desired_consumers),
    );
    e.gauge(
        "fastdata_consumers_running",
        "Consumer tasks in TASK_RUNNING.",
        f64::from(snapshot.running_consumers),
    );
    e.gauge(
        "fastdata_consumers_sink_unhealthy",
        "Consumers reporting failing Cassandra writes.",
        f64::from(snapshot.sink_unhealthy_consumers),
    );
    e.gauge(
        "fastdata_scaling_min_consumers",
        "min_consumers in force.",
        f64::from(snapshot.scaling.min_consumers),
    );
    e.gauge(
        "fastdata_scaling_max_consumers",
        "max_consumers in force.",
        f64::from(snapshot.scaling.max_consumers),
    );
    e.gauge(
        "fastdata_scaling_scale_up_lag_messages",
        "scale_up_lag in force.",
        snapshot.scaling.scale_up_lag as f64,
    );
    e.gauge(
        "fastdata_scaling_scale_down_lag_messages",
        "scale_down_lag in force.",
        snapshot.scaling.scale_down_lag as f64,
    );

    let c = &snapshot.counters;
    e.counter(
        "fastdata_scaling_changes_total",
        "Scaling decisions that changed the consumer target.",
        c.scaling_changes,
    );
    e.family(
        "fastdata_last_scaling_change_timestamp_seconds",
        "gauge",
        "When the most recent retained scaling change was decided (Unix time).",
    );
    if let Some(last) = snapshot
        .decisions
        .iter()
        .rev()
        .find(|d| d.decision.is_change())
    {
        e.sample(
            "fastdata_last_scaling_change_timestamp_seconds",
            &[],
            last.at_unix_ms as f64 / 1000.0,
        );
    }
    e.counter(
        "fastdata_offers_received_total",
        "Resource offers received from Mesos.",
        c.offers_received,
    );
    e.counter(
        "fastdata_offers_accepted_total",
        "Resource offers accepted.",
        c.offers_accepted,
    );
    e.counter(
        "fastdata_offers_declined_total",
        "Resource offers declined.",
        c.offers_declined,
    );
    e.counter(
        "fastdata_revives_total",
        "REVIVE calls sent to Mesos.",
        c.revives,
    );
    e.counter(
        "fastdata_suppresses_total",
        "SUPPRESS calls sent to Mesos.",
        c.suppresses,
    );
    e.counter(
        "fastdata_tasks_launched_total",
        "Tasks launched.",
        c.tasks_launched,
    );
    e.counter("fastdata_task_kills_total", "KILL calls sent.", c.kills);
    e.counter(
        "fastdata_subscriptions_total",
        "Subscriptions to the Mesos master (first and re-subscriptions).",
        c.subscriptions,
    );
    e.family(
        "fastdata_task_updates_total",
        "counter",
        "Task status updates received, by Mesos task state.",
    );
    for (state, count) in &c.task_updates {
        e.sample(
            "fastdata_task_updates_total",
            &[("state", state)],
            *count as f64,
        );
    }
    e.family(
        "fastdata_scheduler_phase",
        "gauge",
        "The scheduler's phase: 1 for the current one, 0 for the others.",
    );
    let current = super::views::PhaseView::of(&snapshot.phase).state;
    for phase in [
        "starting",
        "waiting_for_lock",
        "subscribing",
        "reconciling",
        "running",
        "fatal",
        "uninstalling",
        "uninstalled",
    ] {
        e.sample(
            "fastdata_scheduler_phase",
            &[("phase", phase)],
            f64::from(u8::from(phase == current)),
        );
    }
    e.family(
        "fastdata_deploy_plan_status",
        "gauge",
        "The deploy plan's status: 1 for the current one, 0 for the others.",
    );
    for (status, name) in [
        (PlanStatus::Complete, "COMPLETE"),
        (PlanStatus::InProgress, "IN_PROGRESS"),
        (PlanStatus::Error, "ERROR"),
    ] {
        e.sample(
            "fastdata_deploy_plan_status",
            &[("status", name)],
            f64::from(u8::from(snapshot.plan == status)),
        );
    }
    e.gauge(
        "fastdata_snapshot_timestamp_seconds",
        "When the scheduler made the snapshot these numbers come from (Unix time).",
        snapshot.at_unix_ms as f64 / 1000.0,
    );
    e.out
}

/// A sample value: integers without a fraction, others as Rust prints them (which the
/// format's float syntax accepts).
fn number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::sample::sample_snapshot;

    #[test]
    fn shows_lag_consumers_and_counters() {
        let snapshot = sample_snapshot(1_795_600_800_000);
        let text = render(&snapshot);
        for line in [
            "fastdata_lag_messages 12400",
            "fastdata_partition_lag_messages{partition=\"0\"} 4100",
            "fastdata_partition_status{partition=\"0\",status=\"lagging\"} 1",
            "fastdata_partition_status{partition=\"0\",status=\"ok\"} 0",
            "fastdata_consumers_desired 4",
            "fastdata_consumers_running 3",
            "fastdata_offers_declined_total 403",
            "fastdata_task_updates_total{state=\"TASK_RUNNING\"} 7",
            "fastdata_scheduler_phase{phase=\"running\"} 1",
            "fastdata_deploy_plan_status{status=\"IN_PROGRESS\"} 1",
            "fastdata_scaling_changes_total 5",
            "fastdata_produce_rate_messages_per_second 3100.4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn unknown_values_are_absent_not_zero() {
        let mut snapshot = sample_snapshot(1_795_600_800_000);
        snapshot.lag = None;
        let text = render(&snapshot);
        assert!(!text.contains("\nfastdata_produce_rate_messages_per_second "));
        assert!(text.contains("# TYPE fastdata_produce_rate_messages_per_second gauge"));
        assert!(text.contains("\nfastdata_lag_messages 0\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut snapshot = sample_snapshot(0);
        snapshot.counters.task_updates.insert("WEIRD\"\n".into(), 1);
        let text = render(&snapshot);
        assert!(text.contains("fastdata_task_updates_total{state=\"WEIRD\\\"\\n\"} 1"));
    }

    #[test]
    fn numbers_use_the_format_syntax() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(1_795_600_800.5), "1795600800.5");
    }
}
