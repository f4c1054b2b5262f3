//! What the executor says about its workloads: the stats reports of its MESSAGE calls and the
//! texts of its terminal updates.
//!
//! Owns the mapping from the workloads' own numbers (`ConsumerStats`, `ProducerStats`, the
//! check's rounds) to the versioned [`StatsReport`] the scheduler's policy reads, and the
//! one-line summaries that end up in `TaskStatus.message`. Pure.

use fastdata_proto::task::{SinkState, StatsReport, VERSION, WorkloadKind};
use fastdata_workloads::consumer::{ConsumerReport, ConsumerStats, SinkStatus};
use fastdata_workloads::producer::{ProducerReport, ProducerStats};

/// How a workload ended, as its runner saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadOutcome {
    /// It did what it was for and ended by itself (the Cassandra check passed).
    Finished(String),
    /// It could not run or broke; the text says why.
    Failed(String),
    /// It stopped because it was asked to; the text says how it left things.
    Stopped(String),
}

/// A consumer's stats as a report (task id and time are filled by the caller).
pub fn consumer_stats(stats: &ConsumerStats) -> StatsReport {
    StatsReport {
        version: VERSION,
        kind: Some(WorkloadKind::Consumer),
        ready: stats.ready,
        events_per_sec: stats.events_per_sec,
        rows_written: stats.rows_written,
        dead_letters: stats.dead_letters,
        write_errors: stats.write_errors,
        write_latency_p50_ms: stats.write_latency_p50_ms,
        write_latency_p99_ms: stats.write_latency_p99_ms,
        assigned_partitions: stats.assigned_partitions.clone(),
        sink: match stats.sink.status {
            SinkStatus::Unknown => SinkState::Unknown,
            SinkStatus::Healthy => SinkState::Healthy,
            SinkStatus::Unhealthy => SinkState::Unhealthy,
        },
        sink_error: match stats.sink.status {
            SinkStatus::Unhealthy => stats
                .sink
                .last_error
                .as_deref()
                .map(StatsReport::short_error),
            _ => None,
        },
        ..StatsReport::default()
    }
}

/// Numbers of the producer runs that ended (a paused producer is stopped and started again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerTotals {
    /// Events Kafka acknowledged in ended runs.
    pub acked: u64,
    /// Events that failed in ended runs.
    pub failed: u64,
}

impl ProducerTotals {
    /// Adds an ended run.
    pub fn add(&mut self, report: &ProducerReport) {
        self.acked += report.acked;
        self.failed += report.failed + report.unacknowledged;
    }
}

/// A producer's stats as a report: `current` is the running producer's (none while paused).
pub fn producer_stats(totals: ProducerTotals, current: Option<&ProducerStats>) -> StatsReport {
    StatsReport {
        version: VERSION,
        kind: Some(WorkloadKind::Producer),
        ready: true,
        events_per_sec: current.map_or(0.0, |s| s.events_per_sec),
        acked: totals.acked + current.map_or(0, |s| s.acked),
        failed: totals.failed + current.map_or(0, |s| s.failed),
        ..StatsReport::default()
    }
}

/// The Cassandra check's state as a report.
pub fn check_stats(last_error: Option<&str>, ok_rounds: u64) -> StatsReport {
    StatsReport {
        version: VERSION,
        kind: Some(WorkloadKind::CassandraCheck),
        ready: true,
        sink: match (ok_rounds, last_error) {
            (_, Some(_)) => SinkState::Unhealthy,
            (0, None) => SinkState::Unknown,
            _ => SinkState::Healthy,
        },
        sink_error: last_error.map(StatsReport::short_error),
        ..StatsReport::default()
    }
}

/// How a consumer left things when it stopped.
pub fn consumer_stopped(report: &ConsumerReport, group: &str) -> String {
    let commit = if report.committed {
        "committed its offsets"
    } else {
        "could NOT commit its last offsets (the next owner replays them)"
    };
    let group = if report.left_group {
        format!("left group {group}")
    } else {
        format!("did not finish leaving group {group} (its session times out)")
    };
    let mut text = format!(
        "consumer {commit} and {group}; {} rows written, {} dead letters",
        report.rows_written, report.dead_letters
    );
    if report.abandoned > 0 {
        text.push_str(&format!(
            ", {} writes unfinished and not committed",
            report.abandoned
        ));
    }
    text
}

/// How a producer left things when it stopped.
pub fn producer_stopped(totals: ProducerTotals) -> String {
    format!(
        "producer flushed and stopped; {} events acknowledged by Kafka, {} failed",
        totals.acked, totals.failed
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;
    use fastdata_workloads::consumer::{ConsumerState, SinkHealth};
    use fastdata_workloads::producer::{ProducerState, TargetRate};

    use super::*;

    fn consumer(status: SinkStatus, error: Option<&str>) -> ConsumerStats {
        ConsumerStats {
            state: ConsumerState::Running,
            ready: true,
            events_per_sec: 812.5,
            rows_written: 10_000,
            dead_letters: 3,
            write_errors: 7,
            write_latency_p50_ms: Some(1.5),
            write_latency_p99_ms: Some(12.0),
            assigned_partitions: vec![0, 3, 5],
            sink: SinkHealth {
                status,
                since: Utc::now(),
                last_error: error.map(str::to_owned),
            },
            paused: false,
            in_flight: 4,
            rebalances: 1,
        }
    }

    #[test]
    fn consumer_numbers_reach_the_report() {
        let report = consumer_stats(&consumer(SinkStatus::Healthy, Some("old failure")));
        assert_eq!(report.version, VERSION);
        assert_eq!(report.kind, Some(WorkloadKind::Consumer));
        assert!(report.ready);
        assert_eq!(report.events_per_sec, 812.5);
        assert_eq!(
            (
                report.rows_written,
                report.dead_letters,
                report.write_errors
            ),
            (10_000, 3, 7)
        );
        assert_eq!(report.write_latency_p50_ms, Some(1.5));
        assert_eq!(report.write_latency_p99_ms, Some(12.0));
        assert_eq!(report.assigned_partitions, vec![0, 3, 5]);
        assert_eq!(report.sink, SinkState::Healthy);
        assert_eq!(report.sink_error, None, "a healthy sink carries no error");
        assert!(report.to_json().len() < 1024, "reports stay small");
    }

    #[test]
    fn sink_health_maps_state_by_state() {
        for (status, error, want, want_error) in [
            (SinkStatus::Unknown, None, SinkState::Unknown, None),
            (SinkStatus::Healthy, None, SinkState::Healthy, None),
            (
                SinkStatus::Unhealthy,
                Some("Cassandra unreachable"),
                SinkState::Unhealthy,
                Some("Cassandra unreachable"),
            ),
        ] {
            let report = consumer_stats(&consumer(status, error));
            assert_eq!(report.sink, want);
            assert_eq!(report.sink_error.as_deref(), want_error);
        }
        let long = "x".repeat(5_000);
        let report = consumer_stats(&consumer(SinkStatus::Unhealthy, Some(&long)));
        assert!(report.sink_error.unwrap().len() <= fastdata_proto::task::MAX_ERROR_LEN + 3);
    }

    #[test]
    fn producer_totals_add_up_across_runs() {
        let mut totals = ProducerTotals::default();
        totals.add(&ProducerReport {
            sent: 110,
            acked: 100,
            failed: 4,
            unacknowledged: 6,
            elapsed: Duration::from_secs(1),
        });
        let running = ProducerStats {
            state: ProducerState::Producing,
            target_rate: TargetRate::PerSecond(50.0),
            events_per_sec: 49.0,
            sent: 20,
            acked: 18,
            failed: 1,
            last_error: None,
        };
        let report = producer_stats(totals, Some(&running));
        assert_eq!((report.acked, report.failed), (118, 11));
        assert_eq!(report.events_per_sec, 49.0);
        let paused = producer_stats(totals, None);
        assert_eq!(
            (paused.acked, paused.failed, paused.events_per_sec),
            (100, 10, 0.0)
        );
        assert_eq!(paused.kind, Some(WorkloadKind::Producer));
    }

    #[test]
    fn check_reports_sink_health() {
        assert_eq!(check_stats(None, 0).sink, SinkState::Unknown);
        assert_eq!(check_stats(None, 1).sink, SinkState::Healthy);
        let failing = check_stats(Some("no route"), 0);
        assert_eq!(failing.sink, SinkState::Unhealthy);
        assert_eq!(failing.sink_error.as_deref(), Some("no route"));
    }

    #[test]
    fn stop_summaries_say_what_was_left_undone() {
        let clean = ConsumerReport {
            rows_written: 500,
            dead_letters: 2,
            write_errors: 0,
            abandoned: 0,
            committed: true,
            left_group: true,
            ran_for: Duration::from_secs(9),
        };
        assert_eq!(
            consumer_stopped(&clean, "g"),
            "consumer committed its offsets and left group g; 500 rows written, 2 dead letters"
        );
        let cut = ConsumerReport {
            abandoned: 12,
            committed: false,
            left_group: false,
            ..clean
        };
        let text = consumer_stopped(&cut, "g");
        assert!(text.contains("could NOT commit"), "{text}");
        assert!(text.contains("did not finish leaving group g"), "{text}");
        assert!(text.contains("12 writes unfinished"), "{text}");
        assert!(
            producer_stopped(ProducerTotals {
                acked: 5,
                failed: 1
            })
            .contains("5 events")
        );
    }
}
