//! The pure state machine of the whole cluster: one Mesos master and N agents.
//!
//! Every input (an HTTP request on the scheduler or executor endpoint, a stream that closed,
//! a process that started or exited, a timer, a fault) goes through one method of
//! [`Cluster`], which updates the state and records what must happen outside as
//! [`Effect`]s (events to streams, processes to start or signal, directories to remove),
//! drained with [`Cluster::take_effects`]. HTTP answers are returned directly. Nothing here
//! does I/O or reads a clock: time comes in as [`Now`], so every rule is table-tested
//! without sockets.
//!
//! The master and the agents are separate parts of the state and talk only through
//! [`Msg`]s on an internal queue (the "network"), so that a removed or restarting agent
//! loses messages the way a real one does. [`master`] owns the scheduler API, [`allocator`]
//! the offers, [`operations`] ACCEPT, [`agent`] the executor API, containers and status
//! updates, [`faults`] the fault injection and the state document.

pub(crate) mod agent;
pub(crate) mod allocator;
pub(crate) mod faults;
pub(crate) mod master;
pub(crate) mod operations;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use fastdata_proto::v1::{
    ExecutorInfo, FrameworkInfo, KillPolicy, TaskGroupInfo, TaskInfo, TaskStatus, executor,
    scheduler,
};
use tokio::time::Instant;

use crate::config::ClusterConfig;
use crate::wire::{Answer, Encoding, RequestParts};

pub use faults::Fault;

/// Identifies one HTTP connection that may carry an event stream.
pub type ConnId = u64;

/// The current time: monotonic for timers, wall clock for `TaskStatus.timestamp`.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time (tokio's, so tests can pause it).
    pub at: Instant,
    /// Seconds since the Unix epoch.
    pub unix: f64,
}

impl Now {
    /// `self` moved forward by `d` on both clocks.
    pub fn after(self, d: Duration) -> Now {
        Now {
            at: self.at + d,
            unix: self.unix + d.as_secs_f64(),
        }
    }
}

/// Which master address a scheduler request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MasterAddress {
    /// The address devcluster prints and elects first.
    Primary,
    /// The optional second master address (`ClusterConfig::standby_master`).
    Standby,
}

/// A request to `POST /api/v1/scheduler`, as the server saw it.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerRequest<'a> {
    /// Method, content type, accept, body.
    pub parts: RequestParts<'a>,
    /// The `Mesos-Stream-Id` header.
    pub stream_id: Option<&'a str>,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The connection, in case the answer is an event stream.
    pub conn: ConnId,
}

/// A request to `POST /api/v1/executor` on one agent.
#[derive(Debug, Clone, Copy)]
pub struct ExecutorRequest<'a> {
    /// Method, content type, accept, body.
    pub parts: RequestParts<'a>,
    /// The connection, in case the answer is an event stream.
    pub conn: ConnId,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A complete answer.
    Answer(Answer),
    /// `200 OK`, chunked, RecordIO events of this encoding on the request's connection.
    Stream {
        /// Encoding of the events (and the `Content-Type`).
        encoding: Encoding,
        /// The `Mesos-Stream-Id` header (scheduler streams only).
        stream_id: Option<String>,
    },
}

/// A signal to a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: the start of a graceful kill.
    Term,
    /// SIGKILL: the end of a grace period.
    Kill,
}

/// Everything needed to start one process in a sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    /// Agent index.
    pub agent: usize,
    /// Identifies the process within the agent (a container id, or `container/task` for the
    /// tasks of a default executor).
    pub process: String,
    /// Sandbox directory (created by the launcher).
    pub sandbox: PathBuf,
    /// The command to run: `sh -c <value>` when `shell`, else `value` with `arguments`.
    pub shell: bool,
    /// `CommandInfo.value`.
    pub value: String,
    /// `CommandInfo.arguments` (argv, including argv[0]).
    pub arguments: Vec<String>,
    /// The complete environment (nothing else is inherited but `PATH` and `HOME`).
    pub env: Vec<(String, String)>,
    /// `CommandInfo.uris` to fetch into the sandbox first.
    pub uris: Vec<fastdata_proto::v1::command_info::Uri>,
    /// Symlinks to make in the sandbox: (path relative to the sandbox, target directory).
    pub links: Vec<(String, PathBuf)>,
}

/// Something the shell must carry out.
// Effects live for one step and are moved, not stored; boxing the events would only add
// allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// One scheduler event on a subscription stream.
    SchedulerEvent {
        /// The stream.
        conn: ConnId,
        /// The event.
        event: scheduler::Event,
    },
    /// One executor event on a subscription stream.
    ExecutorEvent {
        /// The stream.
        conn: ConnId,
        /// The event.
        event: executor::Event,
    },
    /// End a stream (the response body ends).
    CloseStream {
        /// The stream.
        conn: ConnId,
    },
    /// Fetch URIs, make the sandbox and start a process.
    Launch(LaunchSpec),
    /// Signal a process group.
    Signal {
        /// Agent index.
        agent: usize,
        /// The process (see [`LaunchSpec::process`]).
        process: String,
        /// Which signal.
        signal: Signal,
    },
    /// Delete a directory tree (DESTROY of a persistent volume).
    RemoveDir {
        /// The directory.
        path: PathBuf,
    },
    /// Open or close an agent's HTTP listener (agent removal and restart).
    AgentListener {
        /// Agent index.
        agent: usize,
        /// True to (re)open it.
        up: bool,
    },
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal number, when a signal ended it.
    pub signal: Option<i32>,
    /// The raw `waitpid` status (what FAILURE events carry).
    pub raw: i32,
}

impl ExitInfo {
    /// Mesos' wording: "exited with status N" / "terminated with signal <name>".
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("terminated with signal {}", signal_name(sig)),
            (None, None) => "terminated".into(),
        }
    }
}

/// `strsignal` for the signals that end tasks.
pub fn signal_name(sig: i32) -> String {
    match sig {
        1 => "Hangup".into(),
        2 => "Interrupt".into(),
        3 => "Quit".into(),
        6 => "Aborted".into(),
        9 => "Killed".into(),
        11 => "Segmentation fault".into(),
        13 => "Broken pipe".into(),
        14 => "Alarm clock".into(),
        15 => "Terminated".into(),
        other => format!("Unknown signal {other}"),
    }
}

/// A message between the master and an agent.
#[allow(clippy::large_enum_variant)] // short-lived, moved through one queue
#[derive(Debug, Clone)]
pub(crate) enum Msg {
    ToAgent(usize, ToAgent),
    ToMaster(usize, ToMaster),
}

/// Master → agent.
#[allow(clippy::large_enum_variant)] // short-lived, moved through one queue
#[derive(Debug, Clone)]
pub(crate) enum ToAgent {
    RunTask {
        framework: FrameworkInfo,
        task: TaskInfo,
    },
    RunTaskGroup {
        framework: FrameworkInfo,
        executor: ExecutorInfo,
        group: TaskGroupInfo,
    },
    KillTask {
        framework_id: String,
        task_id: String,
        kill_policy: Option<KillPolicy>,
    },
    ShutdownExecutor {
        framework_id: String,
        executor_id: String,
    },
    ShutdownFramework {
        framework_id: String,
    },
    Acknowledge {
        framework_id: String,
        task_id: String,
        uuid: Vec<u8>,
    },
    FrameworkMessage {
        framework_id: String,
        executor_id: String,
        data: Vec<u8>,
    },
    /// The scheduler (re)subscribed: resend pending status updates now.
    FrameworkReconnected {
        framework_id: String,
        framework: FrameworkInfo,
    },
    /// A persistent volume was destroyed: delete its directory.
    DestroyVolume {
        role: String,
        persistence_id: String,
    },
}

/// Agent → master.
#[allow(clippy::large_enum_variant)] // short-lived, moved through one queue
#[derive(Debug, Clone)]
pub(crate) enum ToMaster {
    StatusUpdate {
        framework_id: String,
        status: TaskStatus,
        latest_state: i32,
    },
    ExecutorMessage {
        framework_id: String,
        executor_id: String,
        data: Vec<u8>,
    },
    ExitedExecutor {
        framework_id: String,
        executor_id: String,
        status: Option<i32>,
    },
}

/// A timer; each names what it is for and is ignored when that no longer holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Timer {
    Allocate,
    Heartbeat {
        framework_id: String,
        conn: ConnId,
    },
    FailoverTimeout {
        framework_id: String,
        generation: u64,
    },
    StatusRetry {
        agent: usize,
        framework_id: String,
        task_id: String,
        uuid: Vec<u8>,
        interval: Duration,
    },
    KillEscalation {
        agent: usize,
        process: String,
    },
    ExecutorRegistration {
        agent: usize,
        container_id: String,
    },
    ExecutorHeartbeat {
        agent: usize,
        container_id: String,
        conn: ConnId,
    },
    AgentRestart {
        agent: usize,
        generation: u64,
    },
    ExecutorReregistration {
        agent: usize,
        generation: u64,
    },
}

/// The cluster.
#[derive(Debug)]
pub struct Cluster {
    pub(crate) config: ClusterConfig,
    pub(crate) work_dir: PathBuf,
    pub(crate) master: master::MasterState,
    pub(crate) agents: Vec<agent::AgentState>,
    /// Which address leads; `None`: no leader elected.
    pub(crate) leader: Option<MasterAddress>,
    pub(crate) ports: Ports,
    /// Docker volumes (`<driver>/<name>` → directory) any container has linked.
    pub(crate) docker_volumes: BTreeMap<String, PathBuf>,
    timers: BTreeMap<(Instant, u64), Timer>,
    timer_seq: u64,
    queue: VecDeque<Msg>,
    effects: Vec<Effect>,
}

/// The ports the listeners are bound to (known once the shell has bound them).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Ports {
    /// The primary master address.
    pub master: u16,
    /// The standby master address, if any.
    pub standby: Option<u16>,
    /// Each agent's listener.
    pub agents: Vec<u16>,
}

impl Cluster {
    /// A cluster whose listeners are bound to `ports` and whose files live in `work_dir`.
    pub fn new(config: ClusterConfig, ports: Ports, work_dir: PathBuf, now: Now) -> Cluster {
        let master = master::MasterState::new(&config, ports.master);
        let agents = config
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| {
                agent::AgentState::new(
                    i,
                    master.agent_id(i),
                    a.clone(),
                    ports.agents.get(i).copied().unwrap_or(5051),
                    &work_dir,
                )
            })
            .collect();
        let mut cluster = Cluster {
            config,
            work_dir,
            master,
            agents,
            leader: Some(MasterAddress::Primary),
            ports,
            docker_volumes: BTreeMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            queue: VecDeque::new(),
            effects: Vec::new(),
        };
        for i in 0..cluster.agents.len() {
            cluster.master_add_agent(i);
        }
        let interval = cluster.config.allocation_interval;
        cluster.set_timer(now.at + interval, Timer::Allocate);
        cluster
    }

    /// The effects recorded since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// When [`Cluster::tick`] must next run.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    /// Fires every timer that is due.
    pub fn tick(&mut self, now: Now) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now.at {
                break;
            }
            let timer = entry.remove();
            self.fire(now, timer);
            self.flush(now);
        }
    }

    pub(crate) fn set_timer(&mut self, at: Instant, timer: Timer) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), timer);
    }

    pub(crate) fn effect(&mut self, effect: Effect) {
        if let Effect::Launch(spec) = &effect {
            let root = self.work_dir.join("volumes");
            for (_, target) in &spec.links {
                if let Ok(name) = target.strip_prefix(&root) {
                    self.docker_volumes
                        .insert(name.display().to_string(), target.clone());
                }
            }
        }
        self.effects.push(effect);
    }

    pub(crate) fn send(&mut self, msg: Msg) {
        self.queue.push_back(msg);
    }

    /// Delivers queued master ↔ agent messages until none are left. A message to or from an
    /// agent that is down is lost, as on a network.
    pub(crate) fn flush(&mut self, now: Now) {
        while let Some(msg) = self.queue.pop_front() {
            match msg {
                Msg::ToAgent(i, m) => {
                    if self.agents.get(i).is_some_and(|a| a.is_up()) {
                        self.agent_receive(now, i, m);
                    }
                }
                Msg::ToMaster(i, m) => {
                    if self.master.agent_reachable(i) {
                        self.master_receive(now, i, m);
                    }
                }
            }
        }
    }

    fn fire(&mut self, now: Now, timer: Timer) {
        match timer {
            Timer::Allocate => {
                self.allocate(now);
                let interval = self.config.allocation_interval;
                self.set_timer(now.at + interval, Timer::Allocate);
            }
            Timer::Heartbeat { framework_id, conn } => self.heartbeat(now, &framework_id, conn),
            Timer::FailoverTimeout {
                framework_id,
                generation,
            } => self.failover_timeout(now, &framework_id, generation),
            Timer::StatusRetry {
                agent,
                framework_id,
                task_id,
                uuid,
                interval,
            } => self.retry_status(now, agent, &framework_id, &task_id, &uuid, interval),
            Timer::KillEscalation { agent, process } => self.kill_escalation(agent, &process),
            Timer::ExecutorRegistration {
                agent,
                container_id,
            } => self.registration_timeout(now, agent, &container_id),
            Timer::ExecutorHeartbeat {
                agent,
                container_id,
                conn,
            } => self.executor_heartbeat(now, agent, &container_id, conn),
            Timer::AgentRestart { agent, generation } => {
                self.agent_restarted(now, agent, generation)
            }
            Timer::ExecutorReregistration { agent, generation } => {
                self.reregistration_timeout(now, agent, generation)
            }
        }
    }

    /// A stream's connection closed (the client went away or the server ended it).
    pub fn stream_closed(&mut self, now: Now, conn: ConnId) {
        self.master_stream_closed(now, conn);
        self.agent_stream_closed(now, conn);
        self.flush(now);
    }

    /// A request to the scheduler endpoint of `address`.
    pub fn scheduler_request(
        &mut self,
        now: Now,
        address: MasterAddress,
        req: SchedulerRequest<'_>,
    ) -> Reply {
        let reply = self.master_request(now, address, req);
        self.flush(now);
        reply
    }

    /// A request to the executor endpoint of agent `agent`.
    pub fn executor_request(&mut self, now: Now, agent: usize, req: ExecutorRequest<'_>) -> Reply {
        let reply = self.agent_request(now, agent, req);
        self.flush(now);
        reply
    }

    /// The launcher started a process (`pid`) for `process`.
    pub fn process_started(&mut self, now: Now, agent: usize, process: &str, pid: u32) {
        self.agent_process_started(now, agent, process, pid);
        self.flush(now);
    }

    /// The launcher could not start `process` (fetch or spawn failed).
    pub fn process_failed(&mut self, now: Now, agent: usize, process: &str, message: &str) {
        self.agent_process_failed(now, agent, process, message);
        self.flush(now);
    }

    /// `process` ended.
    pub fn process_exited(&mut self, now: Now, agent: usize, process: &str, exit: ExitInfo) {
        self.agent_process_exited(now, agent, process, exit);
        self.flush(now);
    }

    /// True while agent `agent` is running (not removed, not restarting).
    pub fn agent_is_up(&self, agent: usize) -> bool {
        self.agents.get(agent).is_some_and(|a| a.is_up())
    }

    /// The id of agent `agent`.
    pub fn agent_id(&self, agent: usize) -> Option<String> {
        self.agents.get(agent).map(|a| a.id.clone())
    }

    /// The ports of the listeners.
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The directory under which sandboxes and volumes live.
    pub fn work_dir(&self) -> &std::path::Path {
        &self.work_dir
    }
}
