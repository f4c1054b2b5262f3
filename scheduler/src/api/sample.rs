//! A realistic [`StatusSnapshot`] made of plain values: three of four consumers running, a
//! lagging group, an hour of history with scaling changes, declined offers.
//!
//! The API's tests and the CLI's tests use it so that every field of every document carries
//! a value, and the status-page test renders it; it is public for those tests and for trying
//! the page or the CLI against a server without a cluster. It does no I/O and reads no
//! clock: the caller says what "now" is.

use std::collections::BTreeMap;

use fastdata_proto::task::{SinkState, StatsReport, WorkloadKind};

use crate::lag::{
    GroupPhase, GroupState, LagObservation, MaxLag, PartitionLag, PartitionStatus, Stale,
};
use crate::policy::{Action, Decision, DecisionRecord, Guard, ScalingConfig, ScalingInput};
use crate::status::{
    Counters, HistoryPoint, OfferOutcome, Phase, PlanStatus, StatusSnapshot, TaskView,
};

/// Lag per partition in the sample (sums to 12,400).
const PARTITION_LAG: [u64; 6] = [4_100, 3_900, 2_200, 1_200, 600, 400];

/// The sample snapshot, taken at `now_unix_ms`.
pub fn sample_snapshot(now_unix_ms: u64) -> StatusSnapshot {
    let minutes_ago = |m: u64| now_unix_ms.saturating_sub(m * 60_000);
    let scaling = ScalingConfig::default();
    let decisions = sample_decisions(now_unix_ms, &scaling);
    StatusSnapshot {
        service_name: "fastdata".to_owned(),
        at_unix_ms: now_unix_ms,
        phase: Phase::Running,
        framework_id: Some("7c1d3b5e-2f0a-4d8e-9b61-0c4f5a7e3d21-0001".to_owned()),
        master: Some("http://127.0.0.1:5050".to_owned()),
        lag: Some(sample_lag(now_unix_ms)),
        scaling,
        desired_consumers: 4,
        running_consumers: 3,
        sink_healthy_consumers: 3,
        sink_unhealthy_consumers: 0,
        sink_error: None,
        held_reason: Some(
            "consumer-3 waiting for an offer: needs 1 cpu and 512 MB, best offer has 0.5 cpu on agent-2"
                .to_owned(),
        ),
        decisions,
        tasks: sample_tasks(now_unix_ms),
        offers: vec![
            offer(minutes_ago(9), 1, "agent-1", "accepted", "RESERVE+LAUNCH consumer-2"),
            offer(minutes_ago(6), 2, "agent-2", "declined", "needs 1 cpu, offer has 0.5"),
            offer(minutes_ago(5), 3, "agent-3", "declined", "agent already runs 2 consumers"),
            offer(minutes_ago(4), 4, "agent-2", "declined", "needs 1 cpu, offer has 0.5"),
            offer(minutes_ago(3), 5, "agent-1", "declined", "agent already runs 2 consumers"),
            offer(minutes_ago(2), 6, "agent-2", "declined", "needs 1 cpu, offer has 0.5"),
            offer(minutes_ago(1), 7, "agent-4", "declined", "role fastdata-role has no unreserved memory"),
        ],
        plan: PlanStatus::InProgress,
        plan_message: "3 of 4 consumers running; consumer-3 waiting for an offer".to_owned(),
        history: sample_history(now_unix_ms, &decisions_for_history(now_unix_ms)),
        producer_tasks: 1,
        producer_rate: 800.0,
        counters: Counters {
            offers_received: 412,
            offers_accepted: 9,
            offers_declined: 403,
            revives: 6,
            suppresses: 5,
            tasks_launched: 7,
            kills: 2,
            task_updates: BTreeMap::from([
                ("TASK_FINISHED".to_owned(), 0),
                ("TASK_KILLED".to_owned(), 2),
                ("TASK_RUNNING".to_owned(), 7),
                ("TASK_STARTING".to_owned(), 7),
                ("TASK_FAILED".to_owned(), 1),
            ]),
            scaling_changes: 5,
            subscriptions: 2,
        },
    }
}

/// A stale observation: the brokers did not answer for the last three reads.
pub fn stale_lag(now_unix_ms: u64) -> LagObservation {
    let mut lag = sample_lag(now_unix_ms.saturating_sub(3_000));
    lag.stale = Some(Stale {
        reason: "Kafka brokers 127.0.0.1:9092 unreachable for 3 s; check --kafka-brokers"
            .to_owned(),
        since_unix_ms: now_unix_ms.saturating_sub(3_000),
        failures: 3,
    });
    lag
}

fn sample_lag(now_unix_ms: u64) -> LagObservation {
    let statuses = [
        PartitionStatus::Lagging,
        PartitionStatus::Lagging,
        PartitionStatus::Ok,
        PartitionStatus::Ok,
        PartitionStatus::Ok,
        PartitionStatus::Ok,
    ];
    let partitions: Vec<PartitionLag> = PARTITION_LAG
        .iter()
        .zip(statuses)
        .enumerate()
        .map(|(i, (&lag, status))| {
            let log_end = 1_250_000 + 1_000 * i as i64;
            PartitionLag {
                partition: i as i32,
                // Partition 5 has never been committed: the lag counts from the log start.
                committed: (i != 5).then(|| log_end - lag as i64),
                log_start: if i == 5 { log_end - lag as i64 } else { 0 },
                log_end,
                lag,
                no_commit: i == 5,
                status,
                seconds_behind: Some(lag as f64 / 520.0),
            }
        })
        .collect();
    LagObservation {
        at: None,
        at_unix_ms: now_unix_ms.saturating_sub(400),
        total_lag: PARTITION_LAG.iter().sum(),
        backlog: 11_900,
        backlog_settled: true,
        backlogged_partitions: 6,
        max_lag: Some(MaxLag {
            partition: 0,
            lag: PARTITION_LAG[0],
        }),
        no_commit_partitions: 1,
        produce_rate: Some(3_100.4),
        produce_rate_recent: Some(3_180.0),
        consume_rate: Some(2_890.2),
        rate_window_secs: 30.0,
        rate_window_full: true,
        rate_window_start: None,
        seconds_behind_drain: Some(4.29),
        seconds_behind_time: Some(7.9),
        status: PartitionStatus::Lagging,
        group: Some(GroupState {
            phase: GroupPhase::Stable,
            members: 3,
        }),
        rebalancing: false,
        partitions_added: Vec::new(),
        partitions_removed: Vec::new(),
        stale: None,
        partitions,
    }
}

/// (minutes ago, from, to, guard, reason) of the sample's decisions, oldest first.
type DecisionLine = (u64, u32, u32, Option<Guard>, &'static str);

fn decision_lines() -> Vec<DecisionLine> {
    vec![
        (70, 1, 1, None, "backlog 40 within [100, 500]: hold"),
        (
            65,
            1,
            2,
            None,
            "backlog 2,300 above 500: 1 consumer reads 1,400/s, produce 2,100/s; need 2",
        ),
        (
            64,
            2,
            2,
            Some(Guard::AwaitingJoin),
            "scale-up held: consumer-1 has not joined the group yet",
        ),
        (
            52,
            2,
            4,
            None,
            "backlog 9,800 above 500: 2 consumers read 2,700/s, produce 3,900/s; need 4",
        ),
        (
            51,
            4,
            4,
            Some(Guard::AwaitingJoin),
            "scale-up held: 2 consumers have not joined the group yet",
        ),
        (
            40,
            4,
            4,
            None,
            "backlog 60 below 100: 3 consumers would do; stabilizing",
        ),
        (
            36,
            4,
            3,
            None,
            "backlog 45 below 100 for 60 s: produce 2,000/s needs 3 consumers",
        ),
        (30, 3, 3, None, "backlog 220 within [100, 500]: hold"),
        (
            25,
            3,
            3,
            Some(Guard::SinkUnhealthy),
            "scale-up held: Cassandra unhealthy on 2 of 3 consumers",
        ),
        (18, 3, 3, None, "backlog 300 within [100, 500]: hold"),
        (
            12,
            3,
            3,
            Some(Guard::Stale),
            "lag not measured for 12 s: Kafka brokers unreachable; hold",
        ),
        (
            9,
            3,
            4,
            None,
            "backlog 6,100 above 500: 3 consumers read 2,900/s, produce 3,100/s; need 4",
        ),
        (
            8,
            4,
            4,
            Some(Guard::AwaitingJoin),
            "scale-up held: consumer-3 has not joined the group yet",
        ),
        (
            1,
            4,
            4,
            Some(Guard::AtLimit),
            "backlog 11,900 above 500: need 5, but the cluster has no offer for consumer-3 yet",
        ),
    ]
}

fn sample_decisions(now_unix_ms: u64, scaling: &ScalingConfig) -> Vec<DecisionRecord> {
    decision_lines()
        .into_iter()
        .map(|(minutes, from, to, guard, reason)| {
            let at = now_unix_ms.saturating_sub(minutes * 60_000);
            let action = match to.cmp(&from) {
                std::cmp::Ordering::Greater => Action::ScaleUp,
                std::cmp::Ordering::Less => Action::ScaleDown,
                std::cmp::Ordering::Equal => Action::Hold,
            };
            let repeats = if action == Action::Hold { 30 } else { 0 };
            DecisionRecord {
                at_unix_ms: at,
                mode: scaling.mode,
                input: ScalingInput {
                    at_unix_ms: at,
                    consumers: from,
                    unhealthy_consumers: u32::from(guard == Some(Guard::SinkUnhealthy)) * 2,
                    partitions: 6,
                    total_lag: 500 * u64::from(to) + 120,
                    backlog: 480 * u64::from(to),
                    backlog_settled: true,
                    backlogged_partitions: 6,
                    produce_rate: Some(2_000.0 + 300.0 * f64::from(to)),
                    produce_rate_recent: Some(2_050.0 + 300.0 * f64::from(to)),
                    consume_rate: Some(1_900.0 + 300.0 * f64::from(from)),
                    rate_window_full: true,
                    group_members: Some(from),
                    rebalancing: false,
                    stale: (guard == Some(Guard::Stale))
                        .then(|| "Kafka brokers 127.0.0.1:9092 unreachable".to_owned()),
                    ..ScalingInput::default()
                },
                decision: Decision {
                    target: to,
                    current: from,
                    action,
                    guard,
                    reason: reason.to_owned(),
                },
                repeats,
                last_at_unix_ms: at + u64::from(repeats) * 1_000,
            }
        })
        .collect()
}

/// (at, consumers after) of every change, oldest first.
fn decisions_for_history(now_unix_ms: u64) -> Vec<(u64, u32)> {
    decision_lines()
        .into_iter()
        .filter(|(_, from, to, _, _)| from != to)
        .map(|(minutes, _, to, _, _)| (now_unix_ms.saturating_sub(minutes * 60_000), to))
        .collect()
}

/// One point every 10 s over the last 70 minutes; the consumer count follows the changes
/// (running one step behind desired for a minute), the lag rises before each scale-up.
fn sample_history(now_unix_ms: u64, changes: &[(u64, u32)]) -> Vec<HistoryPoint> {
    let span_ms = 70 * 60_000;
    let start = now_unix_ms.saturating_sub(span_ms);
    (0..=span_ms / 10_000)
        .map(|i| {
            let at = start + i * 10_000;
            let desired = changes
                .iter()
                .take_while(|(when, _)| *when <= at)
                .last()
                .map_or(1, |(_, to)| *to);
            // consumer-3 has waited for an offer since the last scale-up, 9 minutes ago.
            let started = changes
                .iter()
                .take_while(|(when, _)| *when + 60_000 <= at)
                .last()
                .map_or(1, |(_, to)| *to);
            let running = if at + 9 * 60_000 >= now_unix_ms {
                started.min(3)
            } else {
                started
            };
            // A lag that peaks at each change and drains after it, over a small wave.
            let since_change = changes
                .iter()
                .filter(|(when, _)| *when <= at)
                .map(|(when, _)| at - when)
                .min()
                .unwrap_or(span_ms);
            let wave = ((at / 1_000) as f64 / 90.0).sin().abs() * 300.0;
            let drain = 9_000.0 * (-(since_change as f64) / 240_000.0).exp();
            let total_lag = (wave + drain + 200.0) as u64;
            HistoryPoint {
                at_unix_ms: at,
                total_lag: if at + 60_000 >= now_unix_ms {
                    12_400
                } else {
                    total_lag
                },
                running,
                desired,
            }
        })
        .collect()
}

fn sample_tasks(now_unix_ms: u64) -> Vec<TaskView> {
    let consumer = |slot: u32, agent: u32| TaskView {
        slot: format!("consumer-{slot}"),
        kind: "consumer".to_owned(),
        task_id: Some(format!("fastdata__consumer-{slot}__0f3c9a{slot}")),
        agent_id: Some(format!("agent-{agent}")),
        hostname: Some(format!("10.0.0.{agent}")),
        state: "TASK_RUNNING".to_owned(),
        goal: "running".to_owned(),
        message: None,
        volume: Some(format!("fastdata-consumer-{slot}")),
        failures: 0,
        relaunch_at_unix_ms: None,
        stats: Some(StatsReport {
            version: 1,
            task_id: format!("fastdata__consumer-{slot}__0f3c9a{slot}"),
            kind: Some(WorkloadKind::Consumer),
            at_unix_ms: now_unix_ms as i64 - 2_000,
            ready: true,
            events_per_sec: 963.4,
            rows_written: 1_200_000 + u64::from(slot) * 1_000,
            dead_letters: u64::from(slot == 1) * 3,
            write_errors: 0,
            write_latency_p50_ms: Some(1.8),
            write_latency_p99_ms: Some(9.5),
            assigned_partitions: vec![slot as i32 * 2, slot as i32 * 2 + 1],
            sink: SinkState::Healthy,
            sink_error: None,
            acked: 0,
            failed: 0,
        }),
    };
    vec![
        consumer(0, 1),
        consumer(1, 1),
        consumer(2, 3),
        TaskView {
            slot: "consumer-3".to_owned(),
            kind: "consumer".to_owned(),
            task_id: None,
            agent_id: None,
            hostname: None,
            state: "WAITING_FOR_OFFER".to_owned(),
            goal: "running".to_owned(),
            message: Some("needs 1 cpu and 512 MB, best offer has 0.5 cpu on agent-2".to_owned()),
            volume: Some("fastdata-consumer-3".to_owned()),
            failures: 0,
            relaunch_at_unix_ms: None,
            stats: None,
        },
        TaskView {
            slot: "producer-0".to_owned(),
            kind: "producer".to_owned(),
            task_id: Some("fastdata__producer-0__5e1d7c".to_owned()),
            agent_id: Some("agent-4".to_owned()),
            hostname: Some("10.0.0.4".to_owned()),
            state: "TASK_RUNNING".to_owned(),
            goal: "running".to_owned(),
            message: None,
            volume: None,
            failures: 1,
            relaunch_at_unix_ms: None,
            stats: Some(StatsReport {
                version: 1,
                task_id: "fastdata__producer-0__5e1d7c".to_owned(),
                kind: Some(WorkloadKind::Producer),
                at_unix_ms: now_unix_ms as i64 - 1_000,
                ready: true,
                events_per_sec: 3_100.0,
                acked: 9_800_000,
                failed: 12,
                ..StatsReport::default()
            }),
        },
    ]
}

fn offer(at: u64, n: u32, agent: &str, outcome: &str, reason: &str) -> OfferOutcome {
    OfferOutcome {
        at_unix_ms: at,
        offer_id: format!("7c1d3b5e-2f0a-4d8e-9b61-0c4f5a7e3d21-O{n}"),
        agent_id: agent.to_owned(),
        hostname: format!("10.0.0.{}", agent.trim_start_matches("agent-")),
        outcome: outcome.to_owned(),
        reason: reason.to_owned(),
    }
}
