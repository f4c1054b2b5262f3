//! What the REST API shows: pure conversions from a [`StatusSnapshot`] to the JSON documents
//! of `/v1/status`, `/v1/tasks`, `/v1/decisions`, `/v1/producers`, `/v1/debug/offers` and
//! `/v1/history`.
//!
//! The snapshot is the scheduler's internal view; these types are the API's contract, written
//! down in `scheduler/api/openapi.json` and tested against it. Keeping them separate means an
//! internal field can change without the API changing by accident (the conversion stops
//! compiling instead). No I/O and no clock here: the time comes with the snapshot.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::lag::{GroupPhase, LagObservation, PartitionStatus};
use crate::policy::{Action, DecisionRecord, Guard, ScalingConfig, ScalingMode};
use crate::status::{Phase, PlanStatus, StatusSnapshot, TaskView};

/// Decisions shown in `/v1/status` (the full bounded log is `/v1/decisions`).
pub const STATUS_DECISIONS: usize = 10;

/// The window the status page plots.
pub const HISTORY_WINDOW_MS: u64 = 3_600_000;

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusView {
    /// The service name.
    pub service_name: String,
    /// When the scheduler made this snapshot, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The same, RFC 3339 UTC.
    pub at: String,
    /// One line for a terminal: phase, consumers, lag.
    pub summary: String,
    /// Where the scheduler is in its life.
    pub phase: PhaseView,
    /// Framework id, once known.
    pub framework_id: Option<String>,
    /// The Mesos master it talks to.
    pub master: Option<String>,
    /// Consumer counts and bounds.
    pub consumers: ConsumersView,
    /// The consumer group's lag; `null` before the first observation.
    pub lag: Option<LagView>,
    /// Cassandra as the consumers see it.
    pub sink: SinkView,
    /// Why nothing changes although it could, or why a wanted slot does not run.
    pub held_reason: Option<String>,
    /// The thresholds in force.
    pub scaling: ScalingConfig,
    /// The simulated producers (none on a real cluster).
    pub producers: ProducersView,
    /// The deploy plan in one line.
    pub plan: PlanSummary,
    /// The most recent decisions, newest first (at most [`STATUS_DECISIONS`]).
    pub decisions: Vec<DecisionView>,
}

/// `GET|PUT /v1/producers`: the producer tasks the scheduler runs (the sensor simulator of
/// local runs and load tests) and their rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProducersView {
    /// Producer tasks configured (`FASTDATA_PRODUCER_COUNT`; 0 on a real cluster).
    pub tasks: u32,
    /// Events per second of each producer task; 0 means paused.
    pub rate: f64,
}

impl ProducersView {
    /// The producers of `snapshot`.
    pub fn of(snapshot: &StatusSnapshot) -> ProducersView {
        ProducersView {
            tasks: snapshot.producer_tasks,
            // The run loop only accepts finite rates; JSON could not carry another.
            rate: if snapshot.producer_rate.is_finite() {
                snapshot.producer_rate
            } else {
                0.0
            },
        }
    }
}

/// The scheduler's phase, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseView {
    /// `starting`, `waiting_for_lock`, `subscribing`, `reconciling`, `running`, `fatal`, `uninstalling`
    /// or `uninstalled`.
    pub state: &'static str,
    /// What it is doing, in a sentence.
    pub message: String,
    /// For `fatal`: what the operator must do.
    pub remedy: Option<String>,
}

/// Consumer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConsumersView {
    /// What the policy wants.
    pub desired: u32,
    /// Tasks in TASK_RUNNING.
    pub running: u32,
    /// `min_consumers` in force.
    pub min: u32,
    /// `max_consumers` in force.
    pub max: u32,
}

/// The lag of the group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LagView {
    /// When the offsets were read, milliseconds since the Unix epoch (0: never).
    pub observed_at_unix_ms: u64,
    /// Sum of the partitions' lag (messages).
    pub total: u64,
    /// Lag net of commit timing; what the thresholds apply to.
    pub backlog: u64,
    /// The backlog is settled (false in the first seconds).
    pub backlog_settled: bool,
    /// Worst partition status.
    pub status: PartitionStatus,
    /// The partition with the most lag.
    pub max_partition: Option<MaxPartition>,
    /// Messages produced per second (30 s window).
    pub produce_rate_per_sec: Option<f64>,
    /// Messages produced per second (3 s window).
    pub produce_rate_recent_per_sec: Option<f64>,
    /// Messages consumed (committed) per second.
    pub consume_rate_per_sec: Option<f64>,
    /// Age of the oldest unconsumed message, seconds.
    pub seconds_behind: Option<f64>,
    /// Lag divided by the consume rate: time to drain if nothing more arrived.
    pub seconds_to_drain: Option<f64>,
    /// The consumer group at the coordinator.
    pub group: Option<GroupView>,
    /// The group is rebalancing (rates are not representative).
    pub rebalancing: bool,
    /// Partitions the group never committed an offset for.
    pub no_commit_partitions: u32,
    /// Set when the last read of the offsets failed: the numbers are the last good ones.
    pub stale: Option<StaleView>,
    /// Every partition, by id.
    pub partitions: Vec<PartitionView>,
}

/// The partition with the most lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MaxPartition {
    /// Partition id.
    pub partition: i32,
    /// Its lag.
    pub lag: u64,
}

/// The consumer group at the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GroupView {
    /// `stable`, `preparing_rebalance`, `completing_rebalance`, `empty`, `dead`, `unknown`.
    pub state: GroupPhase,
    /// Members.
    pub members: u32,
}

/// Why the lag numbers are old.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleView {
    /// What failed.
    pub reason: String,
    /// Since when, milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
    /// Consecutive failed reads.
    pub failures: u32,
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionView {
    /// Partition id.
    pub partition: i32,
    /// Lag (messages).
    pub lag: u64,
    /// `ok`, `lagging`, `stalled` or `stopped` (Burrow's rules).
    pub status: PartitionStatus,
    /// The group's committed offset; `null` when it never committed one.
    pub committed_offset: Option<i64>,
    /// Oldest offset still in the log.
    pub log_start_offset: i64,
    /// Log-end offset.
    pub log_end_offset: i64,
    /// Age of the oldest unconsumed message here, seconds.
    pub seconds_behind: Option<f64>,
}

/// Cassandra as the consumers report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkView {
    /// No consumer reports a failing sink.
    pub healthy: bool,
    /// Consumers whose last write succeeded.
    pub healthy_consumers: u32,
    /// Consumers whose last write failed.
    pub unhealthy_consumers: u32,
    /// The last error one of them reported.
    pub error: Option<String>,
    /// In a sentence.
    pub summary: String,
}

/// The deploy plan in one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    /// `COMPLETE`, `IN_PROGRESS` or `ERROR`.
    pub status: PlanStatus,
    /// What is left, in a sentence.
    pub message: String,
}

/// One audited decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionView {
    /// When it was (first) taken, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The same, RFC 3339 UTC.
    pub at: String,
    /// Identical holds folded into this record.
    pub repeats: u32,
    /// When the last of them was, milliseconds since the Unix epoch.
    pub last_at_unix_ms: u64,
    /// The mode in force.
    pub mode: ScalingMode,
    /// `hold`, `scale_up` or `scale_down`.
    pub action: Action,
    /// Consumers before.
    pub from: u32,
    /// Consumers wanted after.
    pub to: u32,
    /// The guard that held back or capped it.
    pub guard: Option<Guard>,
    /// Why, with the numbers.
    pub reason: String,
    /// What it was based on.
    pub input: DecisionInputView,
}

/// The inputs of a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionInputView {
    /// Total lag.
    pub total_lag: u64,
    /// Backlog the thresholds applied to.
    pub backlog: u64,
    /// Produce rate.
    pub produce_rate_per_sec: Option<f64>,
    /// Consume rate.
    pub consume_rate_per_sec: Option<f64>,
    /// Consumers running.
    pub consumers: u32,
    /// Consumers reporting a failing sink.
    pub unhealthy_consumers: u32,
    /// Partitions of the topic.
    pub partitions: u32,
    /// Members of the group.
    pub group_members: Option<u32>,
    /// The group was rebalancing.
    pub rebalancing: bool,
    /// Why the observation was stale.
    pub stale: Option<String>,
}

/// `GET /v1/decisions`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionsView {
    /// Every retained decision, newest first.
    pub decisions: Vec<DecisionView>,
}

/// `GET /v1/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TasksView {
    /// Every slot, as the scheduler tracks it.
    pub tasks: Vec<TaskEntry>,
}

/// One slot and its task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskEntry {
    /// `consumer-3`, `producer-0`.
    pub slot: String,
    /// `consumer` or `producer`.
    pub kind: String,
    /// Mesos task id.
    pub task_id: Option<String>,
    /// Agent id.
    pub agent_id: Option<String>,
    /// Agent hostname.
    pub hostname: Option<String>,
    /// Mesos task state or the scheduler's step for the slot.
    pub state: String,
    /// `running` or `removed`.
    pub goal: String,
    /// Last status message.
    pub message: Option<String>,
    /// Docker volume of the slot.
    pub volume: Option<String>,
    /// Consecutive failures.
    pub failures: u32,
    /// When it may be relaunched, milliseconds since the Unix epoch.
    pub relaunch_at_unix_ms: Option<u64>,
    /// The workload's last report.
    pub stats: Option<TaskStatsView>,
}

/// A workload's last report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskStatsView {
    /// When it was taken, milliseconds since the Unix epoch.
    pub at_unix_ms: i64,
    /// The workload really runs (joined its group, reached Cassandra).
    pub ready: bool,
    /// Events per second.
    pub events_per_sec: f64,
    /// Consumer: rows written.
    pub rows_written: u64,
    /// Consumer: dead letters.
    pub dead_letters: u64,
    /// Consumer: failed writes.
    pub write_errors: u64,
    /// Consumer: median write latency, ms.
    pub write_latency_p50_ms: Option<f64>,
    /// Consumer: p99 write latency, ms.
    pub write_latency_p99_ms: Option<f64>,
    /// Consumer: partitions assigned.
    pub assigned_partitions: Vec<i32>,
    /// `unknown`, `healthy` or `unhealthy`.
    pub sink: &'static str,
    /// Consumer: the last sink error.
    pub sink_error: Option<String>,
    /// Producer: events acknowledged.
    pub acked: u64,
    /// Producer: events failed.
    pub failed: u64,
}

/// `GET /v1/debug/offers`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffersView {
    /// Offers received since the scheduler started.
    pub received: u64,
    /// Offers accepted since the scheduler started.
    pub accepted: u64,
    /// Offers declined since the scheduler started.
    pub declined: u64,
    /// The reasons of the retained declines, most frequent first.
    pub decline_reasons: Vec<ReasonCount>,
    /// The retained outcomes, newest first.
    pub offers: Vec<OfferEntry>,
}

/// How often one decline reason occurs among the retained outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    /// The reason.
    pub reason: String,
    /// How many retained offers were declined for it.
    pub count: u32,
}

/// One offer and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfferEntry {
    /// Milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The same, RFC 3339 UTC.
    pub at: String,
    /// Offer id.
    pub offer_id: String,
    /// Agent id.
    pub agent_id: String,
    /// Agent hostname.
    pub hostname: String,
    /// `accepted` or `declined`.
    pub outcome: String,
    /// What was done with it, or why it was declined.
    pub reason: String,
}

/// `GET /v1/history`: what the status page plots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryView {
    /// The snapshot's time: the right edge of the plot.
    pub now_unix_ms: u64,
    /// The plotted window (one hour).
    pub window_ms: u64,
    /// Service name.
    pub service_name: String,
    /// The summary line of `/v1/status`.
    pub summary: String,
    /// Why nothing changes, if something is held.
    pub held_reason: Option<String>,
    /// Points of the window, oldest first.
    pub points: Vec<HistoryPointView>,
    /// The scaling changes of the window, oldest first.
    pub decisions: Vec<DecisionMarker>,
}

/// One plotted point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HistoryPointView {
    /// Milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Total lag.
    pub total_lag: u64,
    /// Consumers running.
    pub running: u32,
    /// Consumers wanted.
    pub desired: u32,
}

/// A scaling change, as the page marks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionMarker {
    /// Milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Consumers before.
    pub from: u32,
    /// Consumers after.
    pub to: u32,
    /// `scale_up` or `scale_down`.
    pub action: Action,
    /// Why.
    pub reason: String,
}

impl StatusView {
    /// The view of `snapshot`.
    pub fn of(snapshot: &StatusSnapshot) -> StatusView {
        StatusView {
            service_name: snapshot.service_name.clone(),
            at_unix_ms: snapshot.at_unix_ms,
            at: rfc3339(snapshot.at_unix_ms),
            summary: summary(snapshot),
            phase: PhaseView::of(&snapshot.phase),
            framework_id: snapshot.framework_id.clone(),
            master: snapshot.master.clone(),
            consumers: ConsumersView {
                desired: snapshot.desired_consumers,
                running: snapshot.running_consumers,
                min: snapshot.scaling.min_consumers,
                max: snapshot.scaling.max_consumers,
            },
            lag: snapshot.lag.as_ref().map(LagView::of),
            sink: SinkView::of(snapshot),
            held_reason: snapshot.held_reason.clone(),
            scaling: snapshot.scaling.clone(),
            producers: ProducersView::of(snapshot),
            plan: PlanSummary {
                status: snapshot.plan,
                message: snapshot.plan_message.clone(),
            },
            decisions: newest_first(&snapshot.decisions, STATUS_DECISIONS),
        }
    }
}

impl PhaseView {
    /// The view of `phase`.
    pub fn of(phase: &Phase) -> PhaseView {
        let (state, message, remedy) = match phase {
            Phase::Starting { last_error: None } => (
                "starting",
                "starting: connecting to ZooKeeper and loading the framework's state".to_owned(),
                None,
            ),
            Phase::Starting {
                last_error: Some(error),
            } => (
                "starting",
                format!("starting: ZooKeeper cannot be reached yet ({error}); retrying"),
                None,
            ),
            Phase::WaitingForLock => (
                "waiting_for_lock",
                "waiting for the ZooKeeper lock: another scheduler instance of this service is active".to_owned(),
                None,
            ),
            Phase::Subscribing { last_error: None } => (
                "subscribing",
                "subscribing to the Mesos master".to_owned(),
                None,
            ),
            Phase::Subscribing {
                last_error: Some(error),
            } => (
                "subscribing",
                format!("subscribing to the Mesos master again after: {error}"),
                None,
            ),
            Phase::Reconciling { pending } => (
                "reconciling",
                format!(
                    "reconciling tasks with the master before accepting offers ({pending} without an answer yet)"
                ),
                None,
            ),
            Phase::Running => ("running", "subscribed and scaling".to_owned(), None),
            Phase::Fatal { message, remedy } => ("fatal", message.clone(), Some(remedy.clone())),
            Phase::Uninstalling { remaining } => {
                ("uninstalling", format!("uninstalling: {remaining}"), None)
            }
            Phase::Uninstalled => (
                "uninstalled",
                "uninstalled: the framework is torn down and its state deleted".to_owned(),
                None,
            ),
        };
        PhaseView {
            state,
            message,
            remedy,
        }
    }
}

impl LagView {
    /// The view of `lag`.
    pub fn of(lag: &LagObservation) -> LagView {
        LagView {
            observed_at_unix_ms: lag.at_unix_ms,
            total: lag.total_lag,
            backlog: lag.backlog,
            backlog_settled: lag.backlog_settled,
            status: lag.status,
            max_partition: lag.max_lag.map(|m| MaxPartition {
                partition: m.partition,
                lag: m.lag,
            }),
            produce_rate_per_sec: finite(lag.produce_rate),
            produce_rate_recent_per_sec: finite(lag.produce_rate_recent),
            consume_rate_per_sec: finite(lag.consume_rate),
            seconds_behind: finite(lag.seconds_behind_time),
            seconds_to_drain: finite(lag.seconds_behind_drain),
            group: lag.group.map(|g| GroupView {
                state: g.phase,
                members: g.members,
            }),
            rebalancing: lag.rebalancing,
            no_commit_partitions: lag.no_commit_partitions,
            stale: lag.stale.as_ref().map(|s| StaleView {
                reason: s.reason.clone(),
                since_unix_ms: s.since_unix_ms,
                failures: s.failures,
            }),
            partitions: lag
                .partitions
                .iter()
                .map(|p| PartitionView {
                    partition: p.partition,
                    lag: p.lag,
                    status: p.status,
                    committed_offset: p.committed,
                    log_start_offset: p.log_start,
                    log_end_offset: p.log_end,
                    seconds_behind: finite(p.seconds_behind),
                })
                .collect(),
        }
    }
}

impl SinkView {
    /// The sink part of `snapshot`.
    pub fn of(snapshot: &StatusSnapshot) -> SinkView {
        let healthy = snapshot.sink_healthy_consumers;
        let unhealthy = snapshot.sink_unhealthy_consumers;
        let reporting = healthy + unhealthy;
        let summary = if unhealthy > 0 {
            let mut text =
                format!("Cassandra writes failing on {unhealthy} of {reporting} consumers");
            if let Some(error) = &snapshot.sink_error {
                text.push_str(": ");
                text.push_str(error);
            }
            text
        } else if reporting == 0 {
            "no consumer has reported on Cassandra yet".to_owned()
        } else {
            format!("Cassandra healthy on {healthy} of {reporting} consumers")
        };
        SinkView {
            healthy: unhealthy == 0,
            healthy_consumers: healthy,
            unhealthy_consumers: unhealthy,
            error: if unhealthy > 0 {
                snapshot.sink_error.clone()
            } else {
                None
            },
            summary,
        }
    }
}

impl DecisionView {
    /// The view of one audit record.
    pub fn of(record: &DecisionRecord) -> DecisionView {
        let input = &record.input;
        DecisionView {
            at_unix_ms: record.at_unix_ms,
            at: rfc3339(record.at_unix_ms),
            repeats: record.repeats,
            last_at_unix_ms: record.last_at_unix_ms,
            mode: record.mode,
            action: record.decision.action,
            from: record.decision.current,
            to: record.decision.target,
            guard: record.decision.guard,
            reason: record.decision.reason.clone(),
            input: DecisionInputView {
                total_lag: input.total_lag,
                backlog: input.backlog,
                produce_rate_per_sec: finite(input.produce_rate),
                consume_rate_per_sec: finite(input.consume_rate),
                consumers: input.consumers,
                unhealthy_consumers: input.unhealthy_consumers,
                partitions: input.partitions,
                group_members: input.group_members,
                rebalancing: input.rebalancing,
                stale: input.stale.clone(),
            },
        }
    }
}

impl DecisionsView {
    /// Every decision of `snapshot`, newest first.
    pub fn of(snapshot: &StatusSnapshot) -> DecisionsView {
        DecisionsView {
            decisions: newest_first(&snapshot.decisions, usize::MAX),
        }
    }
}

impl TasksView {
    /// Every slot of `snapshot`, in the snapshot's order.
    pub fn of(snapshot: &StatusSnapshot) -> TasksView {
        TasksView {
            tasks: snapshot.tasks.iter().map(TaskEntry::of).collect(),
        }
    }
}

impl TaskEntry {
    /// The view of one slot.
    pub fn of(task: &TaskView) -> TaskEntry {
        TaskEntry {
            slot: task.slot.clone(),
            kind: task.kind.clone(),
            task_id: task.task_id.clone(),
            agent_id: task.agent_id.clone(),
            hostname: task.hostname.clone(),
            state: task.state.clone(),
            goal: task.goal.clone(),
            message: task.message.clone(),
            volume: task.volume.clone(),
            failures: task.failures,
            relaunch_at_unix_ms: task.relaunch_at_unix_ms,
            stats: task.stats.as_ref().map(|s| TaskStatsView {
                at_unix_ms: s.at_unix_ms,
                ready: s.ready,
                events_per_sec: if s.events_per_sec.is_finite() {
                    s.events_per_sec
                } else {
                    0.0
                },
                rows_written: s.rows_written,
                dead_letters: s.dead_letters,
                write_errors: s.write_errors,
                write_latency_p50_ms: finite(s.write_latency_p50_ms),
                write_latency_p99_ms: finite(s.write_latency_p99_ms),
                assigned_partitions: s.assigned_partitions.clone(),
                sink: match s.sink {
                    fastdata_proto::task::SinkState::Unknown => "unknown",
                    fastdata_proto::task::SinkState::Healthy => "healthy",
                    fastdata_proto::task::SinkState::Unhealthy => "unhealthy",
                },
                sink_error: s.sink_error.clone(),
                acked: s.acked,
                failed: s.failed,
            }),
        }
    }
}

impl OffersView {
    /// The offer outcomes of `snapshot`, newest first, with the decline reasons counted.
    pub fn of(snapshot: &StatusSnapshot) -> OffersView {
        let mut reasons: BTreeMap<&str, u32> = BTreeMap::new();
        for offer in snapshot.offers.iter().filter(|o| o.outcome == "declined") {
            *reasons.entry(offer.reason.as_str()).or_default() += 1;
        }
        let mut decline_reasons: Vec<ReasonCount> = reasons
            .into_iter()
            .map(|(reason, count)| ReasonCount {
                reason: reason.to_owned(),
                count,
            })
            .collect();
        // Most frequent first; the BTreeMap order breaks ties alphabetically (stable sort).
        decline_reasons.sort_by_key(|r| std::cmp::Reverse(r.count));
        OffersView {
            received: snapshot.counters.offers_received,
            accepted: snapshot.counters.offers_accepted,
            declined: snapshot.counters.offers_declined,
            decline_reasons,
            offers: snapshot
                .offers
                .iter()
                .rev()
                .map(|o| OfferEntry {
                    at_unix_ms: o.at_unix_ms,
                    at: rfc3339(o.at_unix_ms),
                    offer_id: o.offer_id.clone(),
                    agent_id: o.agent_id.clone(),
                    hostname: o.hostname.clone(),
                    outcome: o.outcome.clone(),
                    reason: o.reason.clone(),
                })
                .collect(),
        }
    }
}

impl HistoryView {
    /// The last hour of `snapshot`: its history points and its scaling changes.
    pub fn of(snapshot: &StatusSnapshot) -> HistoryView {
        let from = snapshot.at_unix_ms.saturating_sub(HISTORY_WINDOW_MS);
        HistoryView {
            now_unix_ms: snapshot.at_unix_ms,
            window_ms: HISTORY_WINDOW_MS,
            service_name: snapshot.service_name.clone(),
            summary: summary(snapshot),
            held_reason: snapshot.held_reason.clone(),
            points: snapshot
                .history
                .iter()
                .filter(|p| p.at_unix_ms >= from)
                .map(|p| HistoryPointView {
                    at_unix_ms: p.at_unix_ms,
                    total_lag: p.total_lag,
                    running: p.running,
                    desired: p.desired,
                })
                .collect(),
            decisions: snapshot
                .decisions
                .iter()
                .filter(|d| d.decision.is_change() && d.at_unix_ms >= from)
                .map(|d| DecisionMarker {
                    at_unix_ms: d.at_unix_ms,
                    from: d.decision.current,
                    to: d.decision.target,
                    action: d.decision.action,
                    reason: d.decision.reason.clone(),
                })
                .collect(),
        }
    }
}

/// One line for a terminal or a page title: `running · 3 of 4 consumers running · lag 12,400
/// (lagging)`.
pub fn summary(snapshot: &StatusSnapshot) -> String {
    let phase = PhaseView::of(&snapshot.phase).state.replace('_', " ");
    let consumers = format!(
        "{} of {} consumers running",
        snapshot.running_consumers, snapshot.desired_consumers
    );
    let lag = match &snapshot.lag {
        None => "lag not measured yet".to_owned(),
        Some(lag) if lag.stale.is_some() => {
            format!("lag {} (stale)", crate::policy::count(lag.total_lag))
        }
        Some(lag) => format!(
            "lag {} ({})",
            crate::policy::count(lag.total_lag),
            status_word(lag.status)
        ),
    };
    format!("{phase} · {consumers} · {lag}")
}

/// `ok`, `lagging`, `stalled`, `stopped`.
pub fn status_word(status: PartitionStatus) -> &'static str {
    match status {
        PartitionStatus::Ok => "ok",
        PartitionStatus::Lagging => "lagging",
        PartitionStatus::Stalled => "stalled",
        PartitionStatus::Stopped => "stopped",
    }
}

/// The last `limit` records, newest first.
fn newest_first(records: &[DecisionRecord], limit: usize) -> Vec<DecisionView> {
    records
        .iter()
        .rev()
        .take(limit)
        .map(DecisionView::of)
        .collect()
}

/// JSON has no NaN or infinity: an unusable rate is "unknown".
fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds
/// (`2026-11-25T10:00:00.123Z`), by the civil-from-days algorithm (proleptic Gregorian).
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let millis = unix_ms % 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Shift the epoch to 0000-03-01 so that leap days end a (400-year) era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::sample::sample_snapshot;

    #[test]
    fn rfc3339_matches_known_dates() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_709_251_199_999, "2024-02-29T23:59:59.999Z"),
            (1_795_600_800_123, "2026-11-25T10:00:00.123Z"),
            (4_102_444_800_000, "2100-01-01T00:00:00.000Z"),
        ];
        for (ms, text) in cases {
            assert_eq!(rfc3339(ms), text, "{ms}");
        }
    }

    #[test]
    fn status_shows_newest_decisions_first_and_bounded() {
        let snapshot = sample_snapshot(1_795_600_800_000);
        let view = StatusView::of(&snapshot);
        assert!(snapshot.decisions.len() > STATUS_DECISIONS);
        assert_eq!(view.decisions.len(), STATUS_DECISIONS);
        let newest = snapshot.decisions.last().expect("decisions");
        assert_eq!(view.decisions[0].at_unix_ms, newest.at_unix_ms);
        assert!(
            view.decisions
                .windows(2)
                .all(|w| w[0].at_unix_ms >= w[1].at_unix_ms)
        );
        assert_eq!(view.consumers.desired, snapshot.desired_consumers);
        let lag = view.lag.expect("the sample has lag");
        assert_eq!(lag.partitions.len(), 6);
        assert_eq!(lag.total, lag.partitions.iter().map(|p| p.lag).sum::<u64>());
    }

    #[test]
    fn sink_summary_counts_consumers() {
        let mut snapshot = sample_snapshot(1_795_600_800_000);
        snapshot.sink_healthy_consumers = 1;
        snapshot.sink_unhealthy_consumers = 2;
        snapshot.sink_error = Some("timeout writing to 127.0.0.1:9042".into());
        let sink = SinkView::of(&snapshot);
        assert!(!sink.healthy);
        assert_eq!(
            sink.summary,
            "Cassandra writes failing on 2 of 3 consumers: timeout writing to 127.0.0.1:9042"
        );
        snapshot.sink_unhealthy_consumers = 0;
        let sink = SinkView::of(&snapshot);
        assert_eq!(sink.error, None, "a healthy sink shows no stale error");
        assert_eq!(sink.summary, "Cassandra healthy on 1 of 1 consumers");
    }

    #[test]
    fn history_keeps_the_last_hour_and_marks_only_changes() {
        let snapshot = sample_snapshot(1_795_600_800_000);
        let view = HistoryView::of(&snapshot);
        let from = snapshot.at_unix_ms - HISTORY_WINDOW_MS;
        assert!(view.points.iter().all(|p| p.at_unix_ms >= from));
        assert!(
            snapshot.history.iter().any(|p| p.at_unix_ms < from),
            "the sample has points older than an hour, to test the cut"
        );
        let changes = snapshot
            .decisions
            .iter()
            .filter(|d| d.decision.is_change() && d.at_unix_ms >= from)
            .count();
        assert_eq!(view.decisions.len(), changes);
        assert!(changes >= 3);
        assert!(view.decisions.iter().all(|d| d.from != d.to));
    }

    #[test]
    fn offers_count_decline_reasons_most_frequent_first() {
        let snapshot = sample_snapshot(1_795_600_800_000);
        let view = OffersView::of(&snapshot);
        assert_eq!(view.offers.len(), snapshot.offers.len());
        assert!(
            view.decline_reasons
                .windows(2)
                .all(|w| w[0].count >= w[1].count)
        );
        let declined = snapshot
            .offers
            .iter()
            .filter(|o| o.outcome == "declined")
            .count();
        assert_eq!(
            view.decline_reasons
                .iter()
                .map(|r| r.count as usize)
                .sum::<usize>(),
            declined
        );
    }
}
