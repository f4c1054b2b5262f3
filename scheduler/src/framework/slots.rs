//! Consumer and producer slots: what is persisted about each, and what the scheduler tracks
//! about it at runtime.
//!
//! A *slot* is a numbered place for one task (`consumer-3`, `producer-0`). It outlives the task
//! running in it: a failed task is relaunched in the same slot, on the slot's reservation when
//! its agent is alive, and a consumer slot keeps its Portworx volume (`<service>-consumer-3`) for
//! ever, so the dead-letter store follows the slot. Slot numbers stay dense: the group grows by
//! adding the next index and shrinks by removing the highest.
//!
//! Pure data: no I/O, no clock (times are passed in).

use std::fmt;
use std::str::FromStr;

use fastdata_proto::task::{SinkState, StatsReport};
use fastdata_proto::v1::TaskState;
use serde::{Deserialize, Serialize};
use tokio::time::{Duration, Instant};

/// What a slot runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    /// A Kafka → Cassandra consumer: reserved resources and a volume.
    Consumer,
    /// A sensor producer: unreserved resources, no volume.
    Producer,
}

impl SlotKind {
    /// `consumer` or `producer`.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Consumer => "consumer",
            SlotKind::Producer => "producer",
        }
    }
}

/// `consumer-3`. Orders by kind, then index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotName {
    /// Kind.
    pub kind: SlotKind,
    /// Index, from 0.
    pub index: u32,
}

impl SlotName {
    /// A consumer slot.
    pub fn consumer(index: u32) -> SlotName {
        SlotName {
            kind: SlotKind::Consumer,
            index,
        }
    }

    /// A producer slot.
    pub fn producer(index: u32) -> SlotName {
        SlotName {
            kind: SlotKind::Producer,
            index,
        }
    }
}

impl fmt::Display for SlotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind.as_str(), self.index)
    }
}

impl FromStr for SlotName {
    type Err = String;

    fn from_str(s: &str) -> Result<SlotName, String> {
        let (kind, index) = s
            .rsplit_once('-')
            .ok_or_else(|| format!("{s:?} is not a slot name (consumer-N or producer-N)"))?;
        let kind = match kind {
            "consumer" => SlotKind::Consumer,
            "producer" => SlotKind::Producer,
            _ => {
                return Err(format!(
                    "{s:?} is not a slot name (consumer-N or producer-N)"
                ));
            }
        };
        let index = index
            .parse()
            .map_err(|_| format!("{s:?} is not a slot name (consumer-N or producer-N)"))?;
        Ok(SlotName { kind, index })
    }
}

/// Whether the slot should run or go away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Keep a task running in it.
    Run,
    /// Kill its task, unreserve its resources, then forget it.
    Remove,
}

/// A dynamic reservation made for a slot: the resources carry labels `framework_id`, `slot`
/// and `resource_id`, so the scheduler recognises them in later offers (and never touches
/// another framework's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    /// The agent holding it.
    pub agent_id: String,
    /// The `resource_id` label: one per reservation made.
    pub resource_id: String,
    /// CPUs reserved (task and executor).
    pub cpus: f64,
    /// Memory reserved, MB (task and executor).
    pub mem: f64,
}

/// What is stored in ZooKeeper for a slot (`slots/<name>`): enough for a restarted scheduler
/// to adopt its task and find its reservation and volume again. Small (a few hundred bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotRecord {
    /// Format version.
    pub version: u32,
    /// Kind.
    pub kind: SlotKind,
    /// Index.
    pub index: u32,
    /// Run or remove.
    pub goal: Goal,
    /// The last task launched in the slot (written before the LAUNCH is sent, so a restart
    /// never launches it twice).
    pub task_id: Option<String>,
    /// The agent of that task (or of the reservation).
    pub agent_id: Option<String>,
    /// That agent's hostname.
    pub hostname: Option<String>,
    /// That agent's fault-domain zone.
    pub zone: Option<String>,
    /// The slot's reservation, consumers only.
    pub reservation: Option<Reservation>,
    /// The slot's Docker volume name, consumers only.
    pub volume: Option<String>,
    /// Consecutive failures (drives the relaunch backoff).
    pub failures: u32,
    /// Tasks launched in this slot so far.
    pub launches: u32,
}

impl SlotRecord {
    /// A new slot with nothing launched or reserved yet.
    pub fn new(name: SlotName, volume: Option<String>) -> SlotRecord {
        SlotRecord {
            version: 1,
            kind: name.kind,
            index: name.index,
            goal: Goal::Run,
            task_id: None,
            agent_id: None,
            hostname: None,
            zone: None,
            reservation: None,
            volume,
            failures: 0,
            launches: 0,
        }
    }

    /// The slot's name.
    pub fn name(&self) -> SlotName {
        SlotName {
            kind: self.kind,
            index: self.index,
        }
    }
}

/// A slot as the scheduler tracks it: the record plus what Mesos and the executor said.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// The persisted part.
    pub record: SlotRecord,
    /// The latest state of `record.task_id`; `None` when no task was launched or its state is
    /// not known yet (after a restart, until reconciliation answers).
    pub state: Option<TaskState>,
    /// The latest status message.
    pub message: Option<String>,
    /// When the LAUNCH was sent, until the first update for it arrives.
    pub launched_at: Option<Instant>,
    /// Since when the task is TASK_RUNNING.
    pub running_since: Option<Instant>,
    /// Not before this may the slot be relaunched (backoff).
    pub relaunch_at: Option<Instant>,
    /// When KILL was last sent for its task.
    pub kill_sent_at: Option<Instant>,
    /// Offers from the reservation's agent that did not carry the reservation while the slot
    /// waited for it.
    pub reservation_misses: u32,
    /// The workload's last stats report and when it arrived.
    pub stats: Option<(Instant, StatsReport)>,
}

impl Slot {
    /// Wraps a record (new, or loaded from ZooKeeper).
    pub fn new(record: SlotRecord) -> Slot {
        Slot {
            record,
            state: None,
            message: None,
            launched_at: None,
            running_since: None,
            relaunch_at: None,
            kill_sent_at: None,
            reservation_misses: 0,
            stats: None,
        }
    }

    /// The slot's name.
    pub fn name(&self) -> SlotName {
        self.record.name()
    }

    /// A task is launched and not known to be over: STAGING (launch sent), STARTING,
    /// RUNNING, KILLING, or not yet reconciled after a restart.
    pub fn task_live(&self) -> bool {
        if self.record.task_id.is_none() {
            return false;
        }
        match self.state {
            None => true,
            Some(state) => !state.is_terminal() && !is_away(state),
        }
    }

    /// The task is TASK_RUNNING.
    pub fn running(&self) -> bool {
        self.record.task_id.is_some() && self.state == Some(TaskState::TaskRunning)
    }

    /// The slot wants a task and has none live (it needs an offer, once its backoff is over).
    pub fn needs_launch(&self, now: Instant) -> bool {
        self.record.goal == Goal::Run
            && !self.task_live()
            && self.relaunch_at.is_none_or(|at| now >= at)
    }

    /// The last stats report, if it is recent enough to trust (three report periods).
    pub fn fresh_stats(&self, now: Instant, period: Duration) -> Option<&StatsReport> {
        self.stats
            .as_ref()
            .filter(|(at, _)| now.saturating_duration_since(*at) <= period * 3)
            .map(|(_, report)| report)
    }

    /// The slot's consumer reports a failing sink.
    pub fn sink_unhealthy(&self, now: Instant, period: Duration) -> bool {
        self.running()
            && self
                .fresh_stats(now, period)
                .is_some_and(|s| s.sink == SinkState::Unhealthy)
    }
}

/// TASK_UNREACHABLE and TASK_UNKNOWN: not terminal for Mesos (the agent may come back), but
/// the task is not running anywhere the scheduler can reach, so the slot is relaunched
/// elsewhere (and the old task killed if it reappears).
pub fn is_away(state: TaskState) -> bool {
    matches!(state, TaskState::TaskUnreachable | TaskState::TaskUnknown)
}

/// Relaunch delay after `failures` consecutive failures: 1 s, 2 s, 4 s ... capped at `max`,
/// scaled by `jitter` (0.5 to 1.5, chosen by the caller) so crash-looping slots do not
/// relaunch in lockstep.
pub fn relaunch_backoff(failures: u32, max: Duration, jitter: f64) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let base = Duration::from_secs(1).saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    base.min(max).mul_f64(jitter.clamp(0.5, 1.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order() {
        for text in ["consumer-0", "consumer-12", "producer-3"] {
            let name: SlotName = text.parse().unwrap();
            assert_eq!(name.to_string(), text);
        }
        for bad in ["consumer", "worker-1", "consumer-x", "consumer--1", ""] {
            assert!(bad.parse::<SlotName>().is_err(), "{bad}");
        }
        assert!(SlotName::consumer(2) < SlotName::consumer(10));
        assert!(SlotName::consumer(10) < SlotName::producer(0));
    }

    #[test]
    fn liveness_follows_the_task_state() {
        let mut slot = Slot::new(SlotRecord::new(SlotName::consumer(0), None));
        let now = Instant::now();
        assert!(!slot.task_live());
        assert!(slot.needs_launch(now));
        slot.record.task_id = Some("t".into());
        assert!(
            slot.task_live(),
            "unknown state after launch or restart counts as live"
        );
        let cases = [
            (TaskState::TaskStaging, true),
            (TaskState::TaskStarting, true),
            (TaskState::TaskRunning, true),
            (TaskState::TaskKilling, true),
            (TaskState::TaskFinished, false),
            (TaskState::TaskFailed, false),
            (TaskState::TaskKilled, false),
            (TaskState::TaskLost, false),
            (TaskState::TaskDropped, false),
            (TaskState::TaskGone, false),
            (TaskState::TaskUnreachable, false),
            (TaskState::TaskUnknown, false),
            (TaskState::TaskError, false),
        ];
        for (state, live) in cases {
            slot.state = Some(state);
            assert_eq!(slot.task_live(), live, "{state:?}");
            assert_eq!(slot.needs_launch(now), !live, "{state:?}");
        }
        slot.relaunch_at = Some(now + Duration::from_secs(5));
        assert!(!slot.needs_launch(now), "backing off");
        assert!(slot.needs_launch(now + Duration::from_secs(5)));
        slot.record.goal = Goal::Remove;
        assert!(!slot.needs_launch(now + Duration::from_secs(5)));
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let max = Duration::from_secs(60);
        let delays: Vec<u64> = (0..9)
            .map(|f| relaunch_backoff(f, max, 1.0).as_secs())
            .collect();
        assert_eq!(delays, [0, 1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(relaunch_backoff(40, max, 1.0), max);
        assert_eq!(relaunch_backoff(3, max, 0.5), Duration::from_secs(2));
        assert_eq!(relaunch_backoff(3, max, 9.0), Duration::from_secs(6));
    }

    #[test]
    fn records_are_small_json() {
        let mut record = SlotRecord::new(SlotName::consumer(7), Some("fastdata-consumer-7".into()));
        record.task_id = Some(format!("fastdata__consumer-7__{}", uuid::Uuid::new_v4()));
        record.reservation = Some(Reservation {
            agent_id: "a".repeat(40),
            resource_id: uuid::Uuid::new_v4().to_string(),
            cpus: 1.1,
            mem: 576.0,
        });
        let json = serde_json::to_vec(&record).unwrap();
        assert!(json.len() < 600, "{} bytes", json.len());
        assert_eq!(serde_json::from_slice::<SlotRecord>(&json).unwrap(), record);
    }
}
