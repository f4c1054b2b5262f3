//! The executor's decisions: one state machine over the agent's events, the workloads' news
//! and time.
//!
//! Owns the task lifecycle of reference 3.3 and the issue: TASK_STARTING while a workload is
//! set up, TASK_RUNNING when its runner says it really runs, TASK_FINISHED / TASK_FAILED with
//! a message saying why, TASK_KILLING (only for frameworks with TASK_KILLING_STATE) then
//! TASK_KILLED on KILL, a graceful stop cut off when the kill policy's grace runs out, and
//! SHUTDOWN (or SIGTERM, or giving up on the agent) stopping everything within
//! `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` before exiting. It combines the subscription
//! ([`crate::connection`]) and the update bookkeeping ([`crate::updates`]).
//!
//! [`Lifecycle::step`] takes one [`Input`] and the time, and returns [`Action`]s for the shell
//! to carry out; [`Lifecycle::next_deadline`] says when it wants a [`Input::Tick`]. It does no
//! I/O and keeps no clock of its own, so every path is tested with plain values.
//!
//! Choices the Mesos documents leave open:
//! - One executor runs one task (the scheduler's design), but LAUNCH_GROUP and several
//!   LAUNCHes are handled task by task. The executor exits once every task it was given is
//!   terminal and the agent acknowledged every update; it waits at most [`FINAL_ACK_WAIT`]
//!   for those acknowledgements while subscribed (while disconnected, the recovery timeout
//!   decides).
//! - KILL's grace: the KILL's kill policy, else the task's, else the workload's own (the
//!   consumer's `grace_ms`), else [`DEFAULT_KILL_GRACE`]. A second KILL changes nothing.
//! - SHUTDOWN cuts every workload off at the shutdown grace period less a reserve (a quarter,
//!   at most 1 s) so the TASK_KILLED updates still reach the agent before it kills the
//!   process; the executor exits at the grace period in any case.
//! - A bad task spec fails the task at once (no TASK_STARTING) with `REASON_TASK_INVALID`
//!   and the field in the message; a LAUNCH during shutdown fails with a message saying so.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fastdata_proto::mesos_ext::executor_status;
use fastdata_proto::task::{ExecutorCommand, WorkloadKind};
use fastdata_proto::v1::framework_info::capability::Type as Capability;
use fastdata_proto::v1::{
    DurationInfo, ExecutorId, TaskInfo, TaskState, TaskStatus, executor, task_status,
};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::time::Instant;

use crate::calls::CallIds;
use crate::connection::{ConnId, Connection, Lost, humantime};
use crate::env::Recovery;
use crate::plan::{Plan, plan};
use crate::report::WorkloadOutcome;
use crate::updates::{Acknowledgement, UpdateBook};

/// Grace of a KILL when neither Mesos nor the workload names one (Mesos' command executor
/// default).
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);
/// How long the executor waits, subscribed, for the agent to acknowledge its last updates.
pub const FINAL_ACK_WAIT: Duration = Duration::from_secs(10);
/// Wait before sending an UPDATE again after a call failed while subscribed.
pub const UPDATE_RETRY: Duration = Duration::from_secs(1);

/// Looks up a variable of the executor's environment (for `password_env`).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What the state machine is given at start.
#[derive(Clone)]
pub struct LifecycleConfig {
    /// The ids every call carries.
    pub ids: CallIds,
    /// `MESOS_SANDBOX`.
    pub sandbox: PathBuf,
    /// `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`.
    pub shutdown_grace: Duration,
    /// Checkpointing or not.
    pub recovery: Recovery,
    /// The process environment (tests pass a table).
    pub env: EnvLookup,
    /// Seed of the reconnection jitter (tests fix it).
    pub seed: u64,
}

impl std::fmt::Debug for LifecycleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LifecycleConfig")
            .field("ids", &self.ids)
            .field("sandbox", &self.sandbox)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("recovery", &self.recovery)
            .finish_non_exhaustive()
    }
}

/// Now, for the monotonic timers and for `TaskStatus.timestamp`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Monotonic time (timers).
    pub now: Instant,
    /// Seconds since the Unix epoch (status timestamps).
    pub unix: f64,
}

/// How a call answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAnswer {
    /// 202: the agent took it.
    Accepted,
    /// Another status; the body says why.
    Refused {
        /// HTTP status.
        status: u16,
        /// The agent's text.
        body: String,
    },
    /// No answer (refused connection, reset, timeout).
    Unreachable(String),
}

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Input {
    /// The program started.
    Start,
    /// A SUBSCRIBE got no stream.
    SubscribeFailed {
        /// Which attempt.
        conn: ConnId,
        /// The HTTP status, if the agent answered.
        status: Option<u16>,
        /// Why.
        error: String,
    },
    /// An event arrived on a subscription stream.
    Event {
        /// Which stream.
        conn: ConnId,
        /// The event.
        event: Box<executor::Event>,
    },
    /// A subscription stream ended or broke.
    StreamEnded {
        /// Which stream.
        conn: ConnId,
        /// Why, if it broke.
        error: Option<String>,
    },
    /// An UPDATE call was answered.
    UpdateAnswered {
        /// The subscription it was sent on.
        conn: ConnId,
        /// The update's UUID.
        uuid: Vec<u8>,
        /// The answer.
        answer: CallAnswer,
    },
    /// A workload really runs.
    WorkloadReady {
        /// Its task.
        task_id: String,
        /// What it reached, for the TASK_RUNNING message.
        detail: String,
    },
    /// A workload ended.
    WorkloadExited {
        /// Its task.
        task_id: String,
        /// How.
        outcome: WorkloadOutcome,
    },
    /// Time passed ([`Lifecycle::next_deadline`]).
    Tick,
    /// SIGTERM or SIGINT: the first stops gracefully, the second at once.
    Terminate,
}

/// Something for the shell to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Open a subscription with this SUBSCRIBE; report back with its `conn`.
    Subscribe {
        /// The attempt.
        conn: ConnId,
        /// The call.
        call: executor::Call,
    },
    /// Close the current subscription stream.
    CloseStream,
    /// Send this UPDATE call; answer with [`Input::UpdateAnswered`].
    Update {
        /// The subscription.
        conn: ConnId,
        /// The update's UUID.
        uuid: Vec<u8>,
        /// The call.
        call: executor::Call,
    },
    /// Start a task's workload.
    StartWorkload {
        /// The task.
        task_id: String,
        /// What to run.
        plan: Box<Plan>,
    },
    /// Ask a workload to stop gracefully.
    StopWorkload {
        /// The task.
        task_id: String,
    },
    /// Cut a workload off (its grace ran out); no [`Input::WorkloadExited`] is needed.
    AbortWorkload {
        /// The task.
        task_id: String,
    },
    /// Pass a scheduler command to a workload.
    Command {
        /// The task.
        task_id: String,
        /// The command.
        command: ExecutorCommand,
    },
    /// Exit the process.
    Exit(ExitReason),
}

/// Why the executor exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// Every task ended and was reported (or SHUTDOWN/SIGTERM completed).
    Done,
    /// The agent could not be reached; the text says why.
    AgentLost(String),
    /// A second SIGTERM/SIGINT.
    Interrupted,
}

impl ExitReason {
    /// The process exit code: 0 done, 1 agent lost, 130 interrupted.
    pub fn code(&self) -> u8 {
        match self {
            ExitReason::Done => 0,
            ExitReason::AgentLost(_) => 1,
            ExitReason::Interrupted => 130,
        }
    }
}

#[derive(Debug, Clone)]
struct Task {
    kind: Option<WorkloadKind>,
    /// The last state reported (TASK_STAGING: none yet).
    state: TaskState,
    /// Its workload was started and has not exited (or been cut off).
    workload_live: bool,
    /// The task's own kill policy grace.
    policy_grace: Option<Duration>,
    /// The workload's own graceful-stop time.
    own_grace: Option<Duration>,
    kill: Option<KillOrder>,
}

#[derive(Debug, Clone)]
struct KillOrder {
    deadline: Instant,
    grace: Duration,
    /// "killed by the scheduler" / "stopped because …".
    cause: String,
}

#[derive(Debug, Clone)]
struct ShuttingDown {
    deadline: Instant,
    reason: ExitReason,
}

/// The state machine; see the module docs.
pub struct Lifecycle {
    config: LifecycleConfig,
    link: Connection,
    book: UpdateBook,
    tasks: BTreeMap<String, Task>,
    /// SUBSCRIBED said the framework has TASK_KILLING_STATE.
    killing_state: bool,
    shutdown: Option<ShuttingDown>,
    terminate_signals: u32,
    final_ack_deadline: Option<Instant>,
    update_retry_at: Option<Instant>,
    rng: SmallRng,
    exited: bool,
    clock: Clock,
    out: Vec<Action>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("link", &self.link.link())
            .field("tasks", &self.tasks)
            .field("unacknowledged", &self.book.unacknowledged())
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

/// SUBSCRIBE answers that no retry can change. 503 (agent recovering) and 404 (agent
/// routes not installed yet) are retried (reference 3.5), as are 5xx, 408 and 429.
fn refuses_for_good(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 404 | 408 | 429)
}

fn grace_of(d: Option<&DurationInfo>) -> Option<Duration> {
    d.map(|d| Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0)))
}

impl Lifecycle {
    /// A state machine that has done nothing yet; feed it [`Input::Start`].
    pub fn new(config: LifecycleConfig, clock: Clock) -> Self {
        Lifecycle {
            link: Connection::new(config.recovery),
            rng: SmallRng::seed_from_u64(config.seed),
            config,
            book: UpdateBook::default(),
            tasks: BTreeMap::new(),
            killing_state: false,
            shutdown: None,
            terminate_signals: 0,
            final_ack_deadline: None,
            update_retry_at: None,
            exited: false,
            clock,
            out: Vec::new(),
        }
    }

    /// The ids of every call.
    pub fn ids(&self) -> &CallIds {
        &self.config.ids
    }

    /// True while subscribed (MESSAGE calls make sense).
    pub fn is_subscribed(&self) -> bool {
        self.link.is_subscribed()
    }

    /// The ids of the tasks this executor was given, in order.
    pub fn task_ids(&self) -> Vec<String> {
        self.tasks.keys().cloned().collect()
    }

    /// Updates still waiting for ACKNOWLEDGED.
    pub fn unacknowledged(&self) -> usize {
        self.book.unacknowledged()
    }

    /// When the state machine wants an [`Input::Tick`].
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.exited {
            return None;
        }
        let kills = self
            .tasks
            .values()
            .filter(|t| !t.state.is_terminal())
            .filter_map(|t| t.kill.as_ref().map(|k| k.deadline));
        let retry = self
            .update_retry_at
            .filter(|_| self.link.is_subscribed() && self.book.has_undelivered());
        [
            self.link.next_deadline(),
            self.shutdown.as_ref().map(|s| s.deadline),
            self.final_ack_deadline,
            retry,
        ]
        .into_iter()
        .flatten()
        .chain(kills)
        .min()
    }

    /// Feeds one input; returns what to do.
    pub fn step(&mut self, input: Input, clock: Clock) -> Vec<Action> {
        self.clock = clock;
        if self.exited {
            return Vec::new();
        }
        match input {
            Input::Start => self.attempt(),
            Input::SubscribeFailed {
                conn,
                status,
                error,
            } => {
                tracing::warn!(error = %error, "subscribing to the agent failed");
                if status.is_some_and(refuses_for_good) && self.link.is_current(conn) {
                    // The agent does not know this executor (or refuses our call): retrying
                    // cannot help. Mesos' library retries only 503 and 404 (reference 3.5).
                    self.give_up(format!("the agent refused the subscription: {error}"));
                } else {
                    self.lost(conn, &error);
                }
            }
            Input::StreamEnded { conn, error } => {
                if self.link.is_current(conn) {
                    let why = error.unwrap_or_else(|| "the agent closed the stream".into());
                    tracing::warn!(error = %why, "lost the subscription to the agent");
                    self.lost(conn, &why);
                }
            }
            Input::Event { conn, event } => self.event(conn, *event),
            Input::UpdateAnswered { conn, uuid, answer } => {
                self.update_answered(conn, &uuid, answer)
            }
            Input::WorkloadReady { task_id, detail } => self.workload_ready(&task_id, detail),
            Input::WorkloadExited { task_id, outcome } => self.workload_exited(&task_id, outcome),
            Input::Tick => self.tick(),
            Input::Terminate => {
                self.terminate_signals += 1;
                if self.terminate_signals > 1 {
                    tracing::warn!("second signal: exiting at once");
                    self.exit(ExitReason::Interrupted);
                } else {
                    tracing::info!("signal received: stopping every task gracefully");
                    self.begin_shutdown(
                        "the executor was asked to stop (SIGTERM)",
                        ExitReason::Done,
                    );
                }
            }
        }
        self.pump();
        self.maybe_exit();
        std::mem::take(&mut self.out)
    }

    // ---------------------------------------------------------------- the subscription

    fn attempt(&mut self) {
        let conn = self.link.attempt(self.clock.now);
        self.subscribe_on(conn);
    }

    fn subscribe_on(&mut self, conn: ConnId) {
        let call = self.config.ids.subscribe(self.book.subscribe_payload());
        let carried = call
            .subscribe
            .as_ref()
            .map_or(0, |s| s.unacknowledged_updates.len());
        tracing::info!(
            conn = conn.0,
            unacknowledged_updates = carried,
            "subscribing to the agent"
        );
        self.out.push(Action::Subscribe { conn, call });
    }

    fn lost(&mut self, conn: ConnId, why: &str) {
        if !self.link.is_current(conn) {
            return;
        }
        self.book.disconnected();
        self.final_ack_deadline = None;
        let jitter: f64 = self.rng.random();
        match self.link.lost(conn, self.clock.now, jitter) {
            Lost::Stale => {}
            Lost::Retry(at) => {
                tracing::info!(
                    retry_in = ?at.saturating_duration_since(self.clock.now),
                    "will subscribe again"
                );
            }
            Lost::GiveUp(reason) => self.give_up(format!("{reason} (last error: {why})")),
        }
    }

    fn give_up(&mut self, reason: String) {
        tracing::error!(reason = %reason, "giving up on the agent: stopping every task and exiting");
        self.link.abandon();
        let stopping = format!("the executor lost its agent: {reason}");
        self.begin_shutdown(&stopping, ExitReason::AgentLost(reason));
    }

    fn event(&mut self, conn: ConnId, event: executor::Event) {
        use executor::event::Type;
        if !self.link.is_current(conn) {
            return;
        }
        let kind = event
            .r#type
            .and_then(|t| Type::try_from(t).ok())
            .unwrap_or(Type::Unknown);
        match kind {
            Type::Subscribed => self.subscribed(conn, event.subscribed),
            // The agent may answer a SUBSCRIBE with SHUTDOWN alone (executor terminating).
            Type::Shutdown => {
                tracing::info!("SHUTDOWN from the agent: stopping every task");
                self.begin_shutdown("the agent shut the executor down", ExitReason::Done);
            }
            _ if !self.link.is_subscribed() => {
                tracing::warn!(event = ?kind, "event before SUBSCRIBED ignored");
            }
            Type::Launch => match event.launch {
                Some(launch) => self.launch(launch.task),
                None => tracing::warn!("LAUNCH without a task ignored"),
            },
            Type::LaunchGroup => match event.launch_group {
                Some(group) => {
                    for task in group.task_group.tasks {
                        self.launch(task);
                    }
                }
                None => tracing::warn!("LAUNCH_GROUP without a task group ignored"),
            },
            Type::Kill => match event.kill {
                Some(kill) => self.kill(
                    &kill.task_id.value,
                    kill.kill_policy
                        .as_ref()
                        .and_then(|p| grace_of(p.grace_period.as_ref())),
                ),
                None => tracing::warn!("KILL without a task id ignored"),
            },
            Type::Acknowledged => {
                if let Some(ack) = event.acknowledged {
                    let task_id = ack.task_id.value;
                    let uuid = uuid::Uuid::from_slice(&ack.uuid)
                        .map_or_else(|_| format!("{:02x?}", ack.uuid), |u| u.to_string());
                    match self.book.acknowledged(&task_id, &ack.uuid) {
                        Acknowledgement::Removed => {
                            tracing::debug!(task_id = %task_id, uuid = %uuid, "update acknowledged by the agent");
                        }
                        Acknowledgement::Unknown => {
                            tracing::debug!(task_id = %task_id, uuid = %uuid, "ACKNOWLEDGED for an update no longer waiting");
                        }
                    }
                }
            }
            Type::Message => {
                if let Some(message) = event.message {
                    self.command(&message.data);
                }
            }
            Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                tracing::warn!(error = %message, "ERROR from the agent: subscribing again");
                self.out.push(Action::CloseStream);
                self.lost(conn, &format!("ERROR event: {message}"));
            }
            Type::Heartbeat => {}
            Type::Unknown => tracing::debug!("event of a type this executor does not know ignored"),
        }
    }

    fn subscribed(&mut self, conn: ConnId, subscribed: Option<executor::event::Subscribed>) {
        if !self.link.subscribed(conn) {
            return;
        }
        if let Some(s) = subscribed {
            self.killing_state = s
                .framework_info
                .capabilities
                .iter()
                .any(|c| c.r#type == Some(Capability::TaskKillingState as i32));
        }
        self.book.subscribed();
        self.update_retry_at = None;
        tracing::info!(
            conn = conn.0,
            unacknowledged_updates = self.book.unacknowledged(),
            task_killing_state = self.killing_state,
            "subscribed to the agent"
        );
    }

    fn update_answered(&mut self, conn: ConnId, uuid: &[u8], answer: CallAnswer) {
        if !self.link.is_current(conn) {
            return;
        }
        match answer {
            CallAnswer::Accepted => self.book.sent(uuid),
            CallAnswer::Refused { status: 403, body } => {
                // "Executor is not subscribed": the agent has forgotten this subscription.
                tracing::warn!(body = %body, "UPDATE refused as not subscribed: subscribing again");
                self.book.send_failed(uuid);
                self.out.push(Action::CloseStream);
                self.lost(conn, &format!("UPDATE answered 403: {body}"));
            }
            CallAnswer::Refused { status, body } if status == 503 || status >= 500 => {
                tracing::warn!(status, body = %body, "UPDATE not taken yet; will send it again");
                self.book.send_failed(uuid);
                self.update_retry_at = Some(self.clock.now + UPDATE_RETRY);
            }
            CallAnswer::Refused { status, body } => {
                // A 4xx for an update we validated is a bug of ours; keeping it would get every
                // later SUBSCRIBE refused as well.
                let dropped = self.book.refused(uuid);
                tracing::error!(
                    status, body = %body, update = ?dropped,
                    "the agent refused a status update as invalid; dropped it"
                );
            }
            CallAnswer::Unreachable(error) => {
                tracing::warn!(error = %error, "UPDATE call failed; will send it again");
                self.book.send_failed(uuid);
                self.update_retry_at = Some(self.clock.now + UPDATE_RETRY);
            }
        }
    }

    /// Sends the next update if the subscription is up and none is in flight.
    fn pump(&mut self) {
        let conn = match self.link.link() {
            crate::connection::Link::Subscribed(conn) => conn,
            _ => return,
        };
        if self.update_retry_at.is_some_and(|at| self.clock.now < at) {
            return;
        }
        self.update_retry_at = None;
        if let Some(update) = self.book.next_to_send() {
            let uuid = update.status.uuid.clone().unwrap_or_default();
            self.out.push(Action::Update {
                conn,
                uuid,
                call: self.config.ids.update(update.status),
            });
        }
    }

    // ---------------------------------------------------------------- tasks

    fn launch(&mut self, task: TaskInfo) {
        let task_id = task.task_id.value.clone();
        if self.tasks.contains_key(&task_id) {
            tracing::warn!(task_id = %task_id, "LAUNCH of a task this executor already has ignored");
            return;
        }
        tracing::info!(task_id = %task_id, name = %task.name, "task launched");
        let planned = if self.shutdown.is_some() {
            None
        } else {
            Some(plan(&task, &self.config.sandbox, self.config.env.as_ref()))
        };
        self.tasks.insert(
            task_id.clone(),
            Task {
                kind: None,
                state: TaskState::TaskStaging,
                workload_live: false,
                policy_grace: task
                    .kill_policy
                    .as_ref()
                    .and_then(|p| grace_of(p.grace_period.as_ref())),
                own_grace: None,
                kill: None,
            },
        );
        self.book.launched(task);
        match planned {
            None => self.report(
                &task_id,
                TaskState::TaskFailed,
                "the executor is shutting down and starts no new task".into(),
                None,
            ),
            Some(Err(error)) => {
                tracing::warn!(task_id = %task_id, error = %error, "task refused");
                self.report(
                    &task_id,
                    TaskState::TaskFailed,
                    error.to_string(),
                    Some(task_status::Reason::TaskInvalid),
                );
            }
            Some(Ok(plan)) => {
                let entry = self.tasks.get_mut(&task_id).expect("inserted above");
                entry.kind = Some(plan.kind);
                entry.own_grace = plan.own_grace();
                entry.workload_live = true;
                let message = format!("starting the {} workload", plan.kind);
                self.report(&task_id, TaskState::TaskStarting, message, None);
                self.out.push(Action::StartWorkload {
                    task_id,
                    plan: Box::new(plan),
                });
            }
        }
    }

    fn kill(&mut self, task_id: &str, event_grace: Option<Duration>) {
        let Some(task) = self.tasks.get(task_id) else {
            tracing::warn!(
                task_id,
                "KILL of a task this executor does not have ignored"
            );
            return;
        };
        if task.state.is_terminal() || task.kill.is_some() {
            tracing::info!(
                task_id,
                state = task.state.as_str_name(),
                "KILL of a task already ending ignored"
            );
            return;
        }
        let grace = event_grace
            .or(task.policy_grace)
            .or(task.own_grace)
            .unwrap_or(DEFAULT_KILL_GRACE);
        tracing::info!(task_id = %task_id, grace = ?grace, "KILL: stopping the workload gracefully");
        // TASK_KILLING only for frameworks that opted in (reference 2.9).
        if self.killing_state {
            self.report(
                task_id,
                TaskState::TaskKilling,
                format!("stopping gracefully within {}", humantime(grace)),
                None,
            );
        }
        self.order_stop(task_id, grace, "killed by the scheduler".into());
    }

    /// Asks a task's workload to stop, with a cut-off after `grace`.
    fn order_stop(&mut self, task_id: &str, grace: Duration, cause: String) {
        let now = self.clock.now;
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        match &mut task.kill {
            // Already stopping: only ever shorten the cut-off.
            Some(order) => {
                if now + grace < order.deadline {
                    order.deadline = now + grace;
                    order.grace = grace;
                }
            }
            None => {
                task.kill = Some(KillOrder {
                    deadline: now + grace,
                    grace,
                    cause,
                });
                if task.workload_live {
                    self.out.push(Action::StopWorkload {
                        task_id: task_id.to_owned(),
                    });
                }
            }
        }
        // A task whose workload never started (refused spec) has nothing to stop.
        let live = self.tasks.get(task_id).is_some_and(|t| t.workload_live);
        if !live {
            self.finish_killed(task_id, "nothing was running");
        }
    }

    fn workload_ready(&mut self, task_id: &str, detail: String) {
        let Some(task) = self.tasks.get(task_id) else {
            return;
        };
        if task.state == TaskState::TaskStarting && task.kill.is_none() {
            self.report(task_id, TaskState::TaskRunning, detail, None);
        }
    }

    fn workload_exited(&mut self, task_id: &str, outcome: WorkloadOutcome) {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        if !task.workload_live {
            // Cut off earlier; its terminal update is already out.
            return;
        }
        task.workload_live = false;
        if task.state.is_terminal() {
            return;
        }
        let kind = task.kind.map_or("task".to_owned(), |k| k.to_string());
        if task.kill.is_some() {
            let summary = match outcome {
                WorkloadOutcome::Stopped(text) | WorkloadOutcome::Finished(text) => text,
                WorkloadOutcome::Failed(error) => {
                    format!("the {kind} workload reported an error while stopping: {error}")
                }
            };
            self.finish_killed(task_id, &summary);
            return;
        }
        let (state, message) = match outcome {
            WorkloadOutcome::Finished(text) => (TaskState::TaskFinished, text),
            WorkloadOutcome::Failed(error) => (TaskState::TaskFailed, error),
            WorkloadOutcome::Stopped(text) => (
                TaskState::TaskFailed,
                format!("the {kind} workload stopped without being asked to: {text}"),
            ),
        };
        tracing::info!(task_id = %task_id, state = state.as_str_name(), message = %message, "task ended");
        self.report(task_id, state, message, None);
    }

    fn finish_killed(&mut self, task_id: &str, summary: &str) {
        let Some(task) = self.tasks.get(task_id) else {
            return;
        };
        if task.state.is_terminal() {
            return;
        }
        let cause = task
            .kill
            .as_ref()
            .map_or("killed".to_owned(), |k| k.cause.clone());
        let message = format!("{cause}: {summary}");
        tracing::info!(task_id = %task_id, message = %message, "task killed");
        self.report(task_id, TaskState::TaskKilled, message, None);
    }

    fn command(&mut self, data: &[u8]) {
        let command = match ExecutorCommand::from_json(data) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, bytes = data.len(), "scheduler MESSAGE is not a command; ignored");
                return;
            }
        };
        let targets: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.workload_live && t.kill.is_none())
            .filter(|(_, t)| t.kind == Some(WorkloadKind::Producer))
            .map(|(id, _)| id.clone())
            .collect();
        if targets.is_empty() {
            tracing::info!(command = ?command, "scheduler command for a workload this executor does not run; ignored");
        }
        for task_id in targets {
            self.out.push(Action::Command {
                task_id,
                command: command.clone(),
            });
        }
    }

    /// Records and (when possible) sends a status update.
    fn report(
        &mut self,
        task_id: &str,
        state: TaskState,
        message: String,
        reason: Option<task_status::Reason>,
    ) {
        let mut status: TaskStatus = executor_status(task_id, state);
        status.executor_id = Some(ExecutorId {
            value: self.config.ids.executor_id.clone(),
        });
        status.timestamp = Some(self.clock.unix);
        status.message = Some(message);
        status.reason = reason.map(|r| r as i32);
        if let Some(task) = self.tasks.get_mut(task_id) {
            task.state = state;
        }
        self.book.record(status);
    }

    // ---------------------------------------------------------------- time and ending

    fn tick(&mut self) {
        let now = self.clock.now;
        match self.link.tick(now) {
            Ok(Some(conn)) => self.subscribe_on(conn),
            Ok(None) => {}
            Err(reason) => self.give_up(reason),
        }
        let due: Vec<(String, Duration)> = self
            .tasks
            .iter()
            .filter(|(_, t)| !t.state.is_terminal())
            .filter_map(|(id, t)| {
                t.kill
                    .as_ref()
                    .filter(|k| k.deadline <= now)
                    .map(|k| (id.clone(), k.grace))
            })
            .collect();
        for (task_id, grace) in due {
            tracing::warn!(task_id = %task_id, grace = ?grace, "grace period ran out: cutting the workload off");
            if let Some(task) = self.tasks.get_mut(&task_id) {
                task.workload_live = false;
            }
            self.out.push(Action::AbortWorkload {
                task_id: task_id.clone(),
            });
            self.finish_killed(
                &task_id,
                &format!(
                    "the workload did not stop within the grace period of {} and was cut off",
                    humantime(grace)
                ),
            );
        }
        if self.final_ack_deadline.is_some_and(|d| d <= now) {
            tracing::warn!(
                unacknowledged = self.book.unacknowledged(),
                "the agent did not acknowledge the last updates in time; exiting anyway"
            );
            self.exit(ExitReason::Done);
        }
        if let Some(shutdown) = self.shutdown.as_ref().filter(|s| s.deadline <= now) {
            let reason = shutdown.reason.clone();
            tracing::warn!(
                unacknowledged = self.book.unacknowledged(),
                "shutdown grace period over: exiting"
            );
            self.exit(reason);
        }
    }

    fn begin_shutdown(&mut self, cause: &str, reason: ExitReason) {
        if self.shutdown.is_some() {
            return;
        }
        let grace = self.config.shutdown_grace;
        let reserve = (grace / 4).min(Duration::from_secs(1));
        let cut_off = grace - reserve;
        self.shutdown = Some(ShuttingDown {
            deadline: self.clock.now + grace,
            reason,
        });
        let live: Vec<(String, Duration)> = self
            .tasks
            .iter()
            .filter(|(_, t)| !t.state.is_terminal())
            .map(|(id, t)| {
                let own = t.policy_grace.or(t.own_grace).unwrap_or(cut_off);
                (id.clone(), own.min(cut_off))
            })
            .collect();
        for (task_id, grace) in live {
            self.order_stop(&task_id, grace, format!("stopped because {cause}"));
        }
    }

    fn maybe_exit(&mut self) {
        if self.exited {
            return;
        }
        let all_terminal = self.tasks.values().all(|t| t.state.is_terminal());
        if !all_terminal {
            self.final_ack_deadline = None;
            return;
        }
        if let Some(shutdown) = &self.shutdown {
            // Giving up on the agent: nothing more can be delivered.
            if self.book.is_empty() || self.link.gave_up() {
                let reason = shutdown.reason.clone();
                self.exit(reason);
            }
            return;
        }
        if self.tasks.is_empty() {
            return;
        }
        if self.book.is_empty() {
            tracing::info!("every task ended and the agent has every update: exiting");
            self.exit(ExitReason::Done);
        } else if self.link.is_subscribed() {
            self.final_ack_deadline
                .get_or_insert(self.clock.now + FINAL_ACK_WAIT);
        } else {
            self.final_ack_deadline = None;
        }
    }

    fn exit(&mut self, reason: ExitReason) {
        if self.exited {
            return;
        }
        self.exited = true;
        self.link.close();
        self.out.push(Action::CloseStream);
        self.out.push(Action::Exit(reason));
    }
}

#[cfg(test)]
mod tests;
