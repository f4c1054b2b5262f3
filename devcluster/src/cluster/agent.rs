//! The agents: containers (command tasks, custom executors, the default executor of task
//! groups) as local processes, the executor API (reference 3), and the task status update
//! manager (2.4: per task, only the head update is forwarded, retried until acknowledged).
//!
//! Simplifications (crate docs): no real containerization or isolation; a command task is
//! run by the agent itself as `sh -c` (the role of Mesos' command executor, whose updates
//! it reproduces); the default executor is played the same way for each task of a group.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fastdata_proto::v1::{
    AgentId, ContainerId, ContainerInfo, ContainerStatus, ExecutorId, ExecutorInfo, FrameworkInfo,
    NetworkInfo, TaskGroupInfo, TaskId, TaskInfo, TaskState, TaskStatus, environment, executor,
    executor_info, framework_info, network_info, task_status, volume,
};
use uuid::Uuid;

use super::{
    Cluster, ConnId, Effect, ExecutorRequest, ExitInfo, LaunchSpec, Msg, Now, Reply, Signal, Timer,
    ToAgent, ToMaster,
};
use crate::config::{AgentConfig, stout_duration};
use crate::resources;
use crate::wire::{self, Answer, Encoding};

/// What runs in a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) enum ContainerKind {
    /// A command task, run by the agent as Mesos' command executor would.
    Command,
    /// A custom executor process speaking the executor API.
    Custom,
    /// The default executor of a task group: one process per task.
    Default,
}

/// Lifecycle of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) enum ContainerState {
    Launching,
    Running,
    Terminated,
}

/// Why the agent ended a container, for the updates of its remaining tasks.
#[derive(Debug, Clone)]
pub(crate) struct Termination {
    state: TaskState,
    reason: task_status::Reason,
    message: String,
}

/// A task on an agent, with its status update stream.
#[derive(Debug, Clone)]
pub(crate) struct AgentTask {
    pub info: TaskInfo,
    /// The latest state the agent accepted.
    pub state: TaskState,
    /// Updates not yet acknowledged by the scheduler; the front one is forwarded.
    pub pending: VecDeque<TaskStatus>,
    /// UUIDs already accepted (duplicates are ignored).
    seen: Vec<Vec<u8>>,
    /// Delivered to its executor (LAUNCH / LAUNCH_GROUP sent).
    pub delivered: bool,
    pub kill_requested: bool,
}

impl AgentTask {
    fn new(info: TaskInfo) -> AgentTask {
        AgentTask {
            info,
            state: TaskState::TaskStaging,
            pending: VecDeque::new(),
            seen: Vec::new(),
            delivered: false,
            kill_requested: false,
        }
    }
}

/// An executor subscription stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExecutorConn {
    pub conn: ConnId,
}

/// One container (an executor run).
#[derive(Debug, Clone)]
pub(crate) struct Container {
    pub id: String,
    pub framework_id: String,
    pub executor_id: String,
    pub kind: ContainerKind,
    pub executor: ExecutorInfo,
    pub sandbox: PathBuf,
    pub pid: Option<u32>,
    pub state: ContainerState,
    pub conn: Option<ExecutorConn>,
    pub subscribed_once: bool,
    /// LAUNCH / LAUNCH_GROUP events waiting for SUBSCRIBE.
    pub queued: Vec<executor::Event>,
    pub tasks: BTreeMap<String, AgentTask>,
    /// Processes still running (their keys).
    pub processes: Vec<String>,
    pub termination: Option<Termination>,
}

impl Container {
    /// Records why the agent is ending this container (used for its tasks' updates).
    pub(crate) fn set_termination(
        &mut self,
        state: TaskState,
        reason: task_status::Reason,
        message: &str,
    ) {
        self.termination = Some(Termination {
            state,
            reason,
            message: message.to_owned(),
        });
    }
}

/// A framework as an agent knows it.
#[derive(Debug, Clone)]
pub(crate) struct AgentFramework {
    pub info: FrameworkInfo,
    /// TEARDOWN or removal: no more updates, executors get SHUTDOWN.
    pub terminating: bool,
}

/// One agent.
#[derive(Debug)]
pub(crate) struct AgentState {
    pub id: String,
    pub config: AgentConfig,
    pub port: u16,
    /// `<work_dir>/agents/<index>`.
    pub dir: PathBuf,
    /// `<work_dir>/volumes`: Docker volumes that belong to the cluster, not to an agent.
    pub cluster_volumes: PathBuf,
    /// Listener open and agent process alive.
    pub up: bool,
    /// Removed for good (fault injection).
    pub removed: bool,
    /// Restarted and waiting for its executors to re-subscribe.
    pub recovering: bool,
    /// Bumped at every restart, so stale timers are ignored.
    pub generation: u64,
    pub frameworks: BTreeMap<String, AgentFramework>,
    pub containers: BTreeMap<String, Container>,
    pub conns: HashMap<ConnId, String>,
}

fn executor_event(kind: executor::event::Type) -> executor::Event {
    executor::Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn has_cap(info: &FrameworkInfo, cap: framework_info::capability::Type) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type == Some(cap as i32))
}

/// A status update generated on the agent (by the command or default executor it plays, or
/// by the agent itself): it carries a fresh uuid and is retried until acknowledged.
fn agent_status(
    task_id: &str,
    state: TaskState,
    executor_id: Option<&str>,
    source: task_status::Source,
    reason: Option<task_status::Reason>,
    message: Option<String>,
) -> TaskStatus {
    TaskStatus {
        task_id: TaskId {
            value: task_id.to_owned(),
        },
        state: state as i32,
        message,
        source: Some(source as i32),
        reason: reason.map(|r| r as i32),
        executor_id: executor_id.map(|e| ExecutorId {
            value: e.to_owned(),
        }),
        uuid: Some(fastdata_proto::mesos_ext::new_status_uuid()),
        ..Default::default()
    }
}

fn duration_of(d: Option<&fastdata_proto::v1::DurationInfo>) -> Option<Duration> {
    d.and_then(|d| u64::try_from(d.nanoseconds).ok())
        .map(Duration::from_nanos)
}

impl AgentState {
    pub fn new(
        index: usize,
        id: String,
        config: AgentConfig,
        port: u16,
        work_dir: &Path,
    ) -> AgentState {
        let _ = index;
        AgentState {
            id,
            config,
            port,
            dir: work_dir.join("agents").join(index.to_string()),
            cluster_volumes: work_dir.join("volumes"),
            up: true,
            removed: false,
            recovering: false,
            generation: 0,
            frameworks: BTreeMap::new(),
            containers: BTreeMap::new(),
            conns: HashMap::new(),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up && !self.removed
    }

    fn sandbox(&self, framework_id: &str, executor_id: &str, container_id: &str) -> PathBuf {
        self.dir
            .join("slaves")
            .join(&self.id)
            .join("frameworks")
            .join(framework_id)
            .join("executors")
            .join(executor_id)
            .join("runs")
            .join(container_id)
    }

    /// Directory of a persistent volume (`<work_dir>/volumes/roles/<role>/<id>` on a Mesos
    /// agent).
    pub fn volume_dir(&self, role: &str, persistence_id: &str) -> PathBuf {
        self.dir
            .join("volumes")
            .join("roles")
            .join(role)
            .join(persistence_id)
    }

    fn container_of(&self, framework_id: &str, executor_id: &str) -> Option<&Container> {
        self.containers.values().find(|c| {
            c.framework_id == framework_id
                && c.executor_id == executor_id
                && c.state != ContainerState::Terminated
        })
    }

    fn container_id_of_task(&self, framework_id: &str, task_id: &str) -> Option<String> {
        self.containers
            .values()
            .find(|c| c.framework_id == framework_id && c.tasks.contains_key(task_id))
            .map(|c| c.id.clone())
    }

    /// Symlinks for the volumes of a ContainerInfo: `DOCKER_VOLUME` with a driver this agent
    /// has maps the volume name to a cluster-wide directory (as Portworx would); anything else
    /// fails the launch as the `filesystem/posix` isolator does (`volumes.jsonl`).
    fn container_links(
        &self,
        container: Option<&ContainerInfo>,
    ) -> Result<Vec<(String, PathBuf)>, String> {
        let mut links = Vec::new();
        let Some(container) = container else {
            return Ok(links);
        };
        for v in &container.volumes {
            let docker = v.source.as_ref().and_then(|s| {
                (s.r#type == Some(volume::source::Type::DockerVolume as i32))
                    .then_some(s.docker_volume.as_ref())
                    .flatten()
            });
            match docker {
                Some(dv) if !self.config.volume_drivers.is_empty() => {
                    let driver = dv.driver.clone().unwrap_or_else(|| "local".into());
                    if !self.config.volume_drivers.contains(&driver) {
                        return Err(format!(
                            "Docker volume driver '{driver}' is not available on agent {}",
                            self.id
                        ));
                    }
                    links.push((
                        v.container_path.clone(),
                        self.cluster_volumes.join(&driver).join(&dv.name),
                    ));
                }
                _ => return Err("Volumes in ContainerInfo is not supported".into()),
            }
        }
        Ok(links)
    }

    /// Symlinks for the persistent volumes among `resources`.
    fn persistent_links(
        &self,
        resources: &[fastdata_proto::v1::Resource],
    ) -> Vec<(String, PathBuf)> {
        resources
            .iter()
            .filter_map(|r| {
                let disk = r.disk.as_ref()?;
                let persistence = disk.persistence.as_ref()?;
                let volume = disk.volume.as_ref()?;
                let role = resources::reservation_role(r).unwrap_or("*");
                Some((
                    volume.container_path.clone(),
                    self.volume_dir(role, &persistence.id),
                ))
            })
            .collect()
    }

    /// The environment a Mesos agent gives an executor (reference 3.1; compare
    /// `executor-env.json` and `executor-env-checkpoint.json`).
    fn executor_env(
        &self,
        cfg: &crate::config::ClusterConfig,
        framework: &FrameworkInfo,
        executor: &ExecutorInfo,
        sandbox: &Path,
    ) -> Vec<(String, String)> {
        let checkpoint = framework.checkpoint.unwrap_or(false);
        let grace = duration_of(executor.shutdown_grace_period.as_ref())
            .unwrap_or(cfg.executor_shutdown_grace_period);
        let sandbox = sandbox.display().to_string();
        let framework_id = framework
            .id
            .as_ref()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        let mut env: Vec<(String, String)> = vec![
            ("LIBPROCESS_IP".into(), "127.0.0.1".into()),
            ("LIBPROCESS_PORT".into(), "0".into()),
            (
                "MESOS_AGENT_ENDPOINT".into(),
                format!("127.0.0.1:{}", self.port),
            ),
            (
                "MESOS_CHECKPOINT".into(),
                if checkpoint { "1" } else { "0" }.into(),
            ),
            ("MESOS_DIRECTORY".into(), sandbox.clone()),
            (
                "MESOS_EXECUTOR_ID".into(),
                executor.executor_id.value.clone(),
            ),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD".into(),
                stout_duration(grace),
            ),
            ("MESOS_FRAMEWORK_ID".into(), framework_id),
            ("MESOS_HTTP_COMMAND_EXECUTOR".into(), "0".into()),
            ("MESOS_SANDBOX".into(), sandbox),
            ("MESOS_SLAVE_ID".into(), self.id.clone()),
            (
                "MESOS_SLAVE_PID".into(),
                format!("slave(1)@127.0.0.1:{}", self.port),
            ),
        ];
        if checkpoint {
            env.push((
                "MESOS_RECOVERY_TIMEOUT".into(),
                stout_duration(cfg.recovery_timeout),
            ));
            env.push((
                "MESOS_SUBSCRIPTION_BACKOFF_MAX".into(),
                stout_duration(cfg.executor_reregistration_timeout),
            ));
        }
        env
    }
}

/// `CommandInfo.environment` on top of `env` (highest priority); secrets are not supported.
fn with_command_env(
    mut env: Vec<(String, String)>,
    command: Option<&fastdata_proto::v1::CommandInfo>,
) -> Vec<(String, String)> {
    let vars = command
        .and_then(|c| c.environment.as_ref())
        .map(|e| e.variables.as_slice())
        .unwrap_or_default();
    for var in vars {
        let is_value = var
            .r#type
            .is_none_or(|t| t == environment::variable::Type::Value as i32);
        if !is_value {
            continue;
        }
        let value = var.value.clone().unwrap_or_default();
        env.retain(|(k, _)| *k != var.name);
        env.push((var.name.clone(), value));
    }
    env
}

impl Cluster {
    fn agent(&self, i: usize) -> &AgentState {
        &self.agents[i]
    }

    /// Sends a message from agent `i` to the master.
    fn send_to_master(&mut self, i: usize, msg: ToMaster) {
        self.send(Msg::ToMaster(i, msg));
    }

    pub(crate) fn agent_receive(&mut self, now: Now, i: usize, msg: ToAgent) {
        match msg {
            ToAgent::RunTask { framework, task } => self.run_task(now, i, &framework, task),
            ToAgent::RunTaskGroup {
                framework,
                executor,
                group,
            } => self.run_task_group(now, i, &framework, &executor, group),
            ToAgent::KillTask {
                framework_id,
                task_id,
                kill_policy,
            } => self.kill_task(now, i, &framework_id, &task_id, kill_policy),
            ToAgent::ShutdownExecutor {
                framework_id,
                executor_id,
            } => {
                let id = self
                    .agent(i)
                    .container_of(&framework_id, &executor_id)
                    .map(|c| c.id.clone());
                if let Some(id) = id {
                    self.shutdown_container(now, i, &id);
                }
            }
            ToAgent::ShutdownFramework { framework_id } => {
                self.shutdown_framework(now, i, &framework_id)
            }
            ToAgent::Acknowledge {
                framework_id,
                task_id,
                uuid,
            } => self.status_acknowledged(now, i, &framework_id, &task_id, &uuid),
            ToAgent::FrameworkMessage {
                framework_id,
                executor_id,
                data,
            } => {
                let conn = self
                    .agent(i)
                    .container_of(&framework_id, &executor_id)
                    .and_then(|c| c.conn);
                if let Some(conn) = conn {
                    let mut ev = executor_event(executor::event::Type::Message);
                    ev.message = Some(executor::event::Message { data });
                    self.effect(Effect::ExecutorEvent {
                        conn: conn.conn,
                        event: ev,
                    });
                }
            }
            ToAgent::FrameworkReconnected {
                framework_id,
                framework,
            } => {
                if let Some(f) = self.agents[i].frameworks.get_mut(&framework_id) {
                    f.info = framework;
                }
                self.resend_pending(now, i, Some(&framework_id));
            }
            ToAgent::DestroyVolume {
                role,
                persistence_id,
            } => {
                let path = self.agent(i).volume_dir(&role, &persistence_id);
                self.effect(Effect::RemoveDir { path });
            }
        }
    }

    fn remember_framework(&mut self, i: usize, framework: &FrameworkInfo) -> String {
        let id = framework
            .id
            .as_ref()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        let agent = &mut self.agents[i];
        let entry = agent
            .frameworks
            .entry(id.clone())
            .or_insert(AgentFramework {
                info: framework.clone(),
                terminating: false,
            });
        entry.info.clone_from(framework);
        entry.terminating = false;
        id
    }

    fn new_container(
        &mut self,
        i: usize,
        framework_id: &str,
        executor: ExecutorInfo,
        kind: ContainerKind,
    ) -> String {
        let container_id = Uuid::new_v4().to_string();
        let sandbox =
            self.agent(i)
                .sandbox(framework_id, &executor.executor_id.value, &container_id);
        let container = Container {
            id: container_id.clone(),
            framework_id: framework_id.to_owned(),
            executor_id: executor.executor_id.value.clone(),
            kind,
            executor,
            sandbox,
            pid: None,
            state: ContainerState::Launching,
            conn: None,
            subscribed_once: false,
            queued: Vec::new(),
            tasks: BTreeMap::new(),
            processes: Vec::new(),
            termination: None,
        };
        self.agents[i]
            .containers
            .insert(container_id.clone(), container);
        container_id
    }

    fn run_task(&mut self, now: Now, i: usize, framework: &FrameworkInfo, task: TaskInfo) {
        let framework_id = self.remember_framework(i, framework);
        let task_id = task.task_id.value.clone();
        match task.executor.clone() {
            None => {
                // The command executor: executor id = task id.
                let command = task.command.clone().unwrap_or_default();
                let executor = ExecutorInfo {
                    r#type: Some(executor_info::Type::Default as i32),
                    executor_id: ExecutorId {
                        value: task_id.clone(),
                    },
                    framework_id: framework.id.clone(),
                    command: Some(command.clone()),
                    name: Some(format!("Command Executor (Task: {task_id})")),
                    ..Default::default()
                };
                let cid =
                    self.new_container(i, &framework_id, executor.clone(), ContainerKind::Command);
                let mut agent_task = AgentTask::new(task.clone());
                agent_task.delivered = true;
                let links = self
                    .agent(i)
                    .container_links(task.container.as_ref())
                    .map(|mut l| {
                        l.extend(self.agent(i).persistent_links(&task.resources));
                        l
                    });
                let container = self.agents[i].containers.get_mut(&cid).expect("just made");
                container.tasks.insert(task_id, agent_task);
                match links {
                    Ok(links) => {
                        let sandbox = container.sandbox.clone();
                        let env = self.agent(i).executor_env(
                            &self.config,
                            framework,
                            &executor,
                            &sandbox,
                        );
                        let env = with_command_env(env, Some(&command));
                        self.launch_process(i, &cid, sandbox, command, env, links);
                    }
                    Err(e) => self.launch_failed(
                        now,
                        i,
                        &cid,
                        &format!("Failed to launch container: {e}"),
                    ),
                }
            }
            Some(executor) => {
                let existing = self
                    .agent(i)
                    .container_of(&framework_id, &executor.executor_id.value)
                    .map(|c| c.id.clone());
                let mut launch = executor_event(executor::event::Type::Launch);
                launch.launch = Some(executor::event::Launch { task: task.clone() });
                let cid = match existing {
                    Some(cid) => cid,
                    None => {
                        let cid = self.new_container(
                            i,
                            &framework_id,
                            executor.clone(),
                            ContainerKind::Custom,
                        );
                        self.start_executor(now, i, &cid, framework, &executor, &task.resources);
                        cid
                    }
                };
                let container = self.agents[i].containers.get_mut(&cid).expect("exists");
                let mut agent_task = AgentTask::new(task);
                if let Some(conn) = container.conn {
                    agent_task.delivered = true;
                    container.tasks.insert(task_id, agent_task);
                    self.effect(Effect::ExecutorEvent {
                        conn: conn.conn,
                        event: launch,
                    });
                } else {
                    container.tasks.insert(task_id, agent_task);
                    container.queued.push(launch);
                }
            }
        }
    }

    /// Records the container's process and asks the runtime to start `command` in it, in the
    /// sandbox, with `env` and the volume `links`.
    fn launch_process(
        &mut self,
        i: usize,
        cid: &str,
        sandbox: std::path::PathBuf,
        command: fastdata_proto::v1::CommandInfo,
        env: Vec<(String, String)>,
        links: Vec<(String, std::path::PathBuf)>,
    ) {
        // Invariant: callers create the container before launching its process.
        self.agents[i]
            .containers
            .get_mut(cid)
            .expect("the container exists")
            .processes
            .push(cid.to_owned());
        self.effect(Effect::Launch(LaunchSpec {
            agent: i,
            process: cid.to_owned(),
            sandbox,
            shell: command.shell.unwrap_or(true),
            value: command.value.clone().unwrap_or_default(),
            arguments: command.arguments.clone(),
            env,
            uris: command.uris,
            links,
        }));
    }

    /// Starts a custom executor's process and its registration timer.
    fn start_executor(
        &mut self,
        now: Now,
        i: usize,
        cid: &str,
        framework: &FrameworkInfo,
        executor: &ExecutorInfo,
        task_resources: &[fastdata_proto::v1::Resource],
    ) {
        let agent = self.agent(i);
        let sandbox = agent.containers[cid].sandbox.clone();
        let links = agent
            .container_links(executor.container.as_ref())
            .map(|mut l| {
                l.extend(agent.persistent_links(&executor.resources));
                l.extend(agent.persistent_links(task_resources));
                l
            });
        let command = executor.command.clone().unwrap_or_default();
        let env = with_command_env(
            agent.executor_env(&self.config, framework, executor, &sandbox),
            Some(&command),
        );
        match links {
            Ok(links) => {
                self.launch_process(i, cid, sandbox, command, env, links);
                let timeout = self.config.executor_registration_timeout;
                self.set_timer(
                    now.at + timeout,
                    Timer::ExecutorRegistration {
                        agent: i,
                        container_id: cid.to_owned(),
                    },
                );
            }
            Err(e) => {
                // Tasks are added by the caller after this returns; fail them once queued.
                let message = format!("Failed to launch container: {e}");
                let container = self.agents[i].containers.get_mut(cid).expect("exists");
                container.termination = Some(Termination {
                    state: TaskState::TaskFailed,
                    reason: task_status::Reason::ContainerLaunchFailed,
                    message,
                });
                self.set_timer(
                    now.at,
                    Timer::ExecutorRegistration {
                        agent: i,
                        container_id: cid.to_owned(),
                    },
                );
            }
        }
    }

    fn run_task_group(
        &mut self,
        now: Now,
        i: usize,
        framework: &FrameworkInfo,
        executor: &ExecutorInfo,
        group: TaskGroupInfo,
    ) {
        let framework_id = self.remember_framework(i, framework);
        let custom = executor.r#type == Some(executor_info::Type::Custom as i32);
        let existing = self
            .agent(i)
            .container_of(&framework_id, &executor.executor_id.value)
            .map(|c| c.id.clone());
        if custom {
            let mut launch = executor_event(executor::event::Type::LaunchGroup);
            launch.launch_group = Some(executor::event::LaunchGroup {
                task_group: group.clone(),
            });
            let cid = match existing {
                Some(cid) => cid,
                None => {
                    let cid = self.new_container(
                        i,
                        &framework_id,
                        executor.clone(),
                        ContainerKind::Custom,
                    );
                    let resources: Vec<_> = group
                        .tasks
                        .iter()
                        .flat_map(|t| t.resources.clone())
                        .collect();
                    self.start_executor(now, i, &cid, framework, executor, &resources);
                    cid
                }
            };
            let container = self.agents[i].containers.get_mut(&cid).expect("exists");
            let delivered = container.conn.is_some();
            for task in &group.tasks {
                let mut t = AgentTask::new(task.clone());
                t.delivered = delivered;
                container.tasks.insert(task.task_id.value.clone(), t);
            }
            match container.conn {
                Some(conn) => self.effect(Effect::ExecutorEvent {
                    conn: conn.conn,
                    event: launch,
                }),
                None => container.queued.push(launch),
            }
            return;
        }
        // The default executor, played by the agent: one process per task.
        let cid = match existing {
            Some(cid) => cid,
            None => self.new_container(i, &framework_id, executor.clone(), ContainerKind::Default),
        };
        for task in group.tasks {
            let task_id = task.task_id.value.clone();
            let process = format!("{cid}/{task_id}");
            let command = task.command.clone().unwrap_or_default();
            let agent = self.agent(i);
            let links = agent.container_links(task.container.as_ref()).map(|mut l| {
                l.extend(agent.persistent_links(&task.resources));
                l.extend(agent.persistent_links(&executor.resources));
                l
            });
            let sandbox = agent.containers[&cid].sandbox.join("tasks").join(&task_id);
            let mut env = agent.executor_env(&self.config, framework, executor, &sandbox);
            env.retain(|(k, _)| k != "MESOS_HTTP_COMMAND_EXECUTOR");
            let env = with_command_env(env, Some(&command));
            let container = self.agents[i].containers.get_mut(&cid).expect("exists");
            let mut t = AgentTask::new(task);
            t.delivered = true;
            container.tasks.insert(task_id.clone(), t);
            match links {
                Ok(links) => {
                    container.processes.push(process.clone());
                    self.effect(Effect::Launch(LaunchSpec {
                        agent: i,
                        process,
                        sandbox,
                        shell: command.shell.unwrap_or(true),
                        value: command.value.clone().unwrap_or_default(),
                        arguments: command.arguments.clone(),
                        env,
                        uris: command.uris.clone(),
                        links,
                    }));
                }
                Err(e) => {
                    let status = agent_status(
                        &task_id,
                        TaskState::TaskFailed,
                        Some(&executor.executor_id.value),
                        task_status::Source::Agent,
                        Some(task_status::Reason::ContainerLaunchFailed),
                        Some(format!("Failed to launch container: {e}")),
                    );
                    self.accept_update(now, i, &cid, status);
                }
            }
        }
        self.maybe_finish_default(now, i, &cid);
    }

    /// The container could not start: its tasks fail (`volumes.jsonl`: TASK_FAILED,
    /// REASON_CONTAINER_LAUNCH_FAILED, SOURCE_AGENT, no TASK_STARTING).
    fn launch_failed(&mut self, now: Now, i: usize, cid: &str, message: &str) {
        let Some(container) = self.agents[i].containers.get_mut(cid) else {
            return;
        };
        container.state = ContainerState::Terminated;
        container.processes.clear();
        let kind = container.kind;
        let executor_id = container.executor_id.clone();
        let framework_id = container.framework_id.clone();
        let tasks: Vec<String> = container
            .tasks
            .iter()
            .filter(|(_, t)| !t.state.is_terminal())
            .map(|(id, _)| id.clone())
            .collect();
        if let Some(c) = container.conn.take() {
            self.effect(Effect::CloseStream { conn: c.conn });
        }
        for task_id in tasks {
            let executor = match kind {
                ContainerKind::Command => Some(task_id.clone()),
                _ => Some(executor_id.clone()),
            };
            let status = agent_status(
                &task_id,
                TaskState::TaskFailed,
                executor.as_deref(),
                task_status::Source::Agent,
                Some(task_status::Reason::ContainerLaunchFailed),
                Some(message.to_owned()),
            );
            self.accept_update(now, i, cid, status);
        }
        if kind == ContainerKind::Custom {
            self.send_to_master(
                i,
                ToMaster::ExitedExecutor {
                    framework_id,
                    executor_id,
                    status: None,
                },
            );
        }
        self.maybe_forget_container(i, cid);
    }

    pub(crate) fn agent_process_failed(
        &mut self,
        now: Now,
        i: usize,
        process: &str,
        message: &str,
    ) {
        let (cid, task) = split_process(process);
        let Some(container) = self.agents[i].containers.get_mut(cid) else {
            return;
        };
        container.processes.retain(|p| p != process);
        match (container.kind, task) {
            (ContainerKind::Default, Some(task_id)) => {
                let executor_id = container.executor_id.clone();
                let status = agent_status(
                    task_id,
                    TaskState::TaskFailed,
                    Some(&executor_id),
                    task_status::Source::Agent,
                    Some(task_status::Reason::ContainerLaunchFailed),
                    Some(format!("Failed to launch container: {message}")),
                );
                let cid = cid.to_owned();
                self.accept_update(now, i, &cid, status);
                self.maybe_finish_default(now, i, &cid);
            }
            _ => {
                let cid = cid.to_owned();
                self.launch_failed(
                    now,
                    i,
                    &cid,
                    &format!("Failed to launch container: {message}"),
                );
            }
        }
    }

    pub(crate) fn agent_process_started(&mut self, now: Now, i: usize, process: &str, pid: u32) {
        let (cid, task) = split_process(process);
        let Some(container) = self.agents[i].containers.get_mut(cid) else {
            // Nobody wants it any more.
            self.effect(Effect::Signal {
                agent: i,
                process: process.to_owned(),
                signal: Signal::Kill,
            });
            return;
        };
        if container.pid.is_none() || container.kind != ContainerKind::Default {
            container.pid = Some(pid);
        }
        if container.state == ContainerState::Launching {
            container.state = ContainerState::Running;
        }
        let kind = container.kind;
        let executor_id = container.executor_id.clone();
        let cid = cid.to_owned();
        let task_ids: Vec<String> = match (kind, task) {
            (ContainerKind::Command, _) => container.tasks.keys().cloned().collect(),
            (ContainerKind::Default, Some(t)) => vec![t.to_owned()],
            _ => Vec::new(),
        };
        let killed = task_ids
            .iter()
            .any(|t| container.tasks.get(t).is_some_and(|t| t.kill_requested));
        if killed || container.termination.is_some() {
            self.effect(Effect::Signal {
                agent: i,
                process: process.to_owned(),
                signal: Signal::Kill,
            });
            return;
        }
        for task_id in task_ids {
            let executor = if kind == ContainerKind::Command {
                task_id.clone()
            } else {
                executor_id.clone()
            };
            for state in [TaskState::TaskStarting, TaskState::TaskRunning] {
                let status = agent_status(
                    &task_id,
                    state,
                    Some(&executor),
                    task_status::Source::Executor,
                    None,
                    None,
                );
                self.accept_update(now, i, &cid, status);
            }
        }
    }

    pub(crate) fn agent_process_exited(
        &mut self,
        now: Now,
        i: usize,
        process: &str,
        exit: ExitInfo,
    ) {
        let (cid, task) = split_process(process);
        let cid = cid.to_owned();
        let Some(container) = self.agents[i].containers.get_mut(&cid) else {
            return;
        };
        container.processes.retain(|p| p != process);
        match container.kind {
            ContainerKind::Command => {
                container.state = ContainerState::Terminated;
                let task_ids: Vec<String> = container.tasks.keys().cloned().collect();
                for task_id in task_ids {
                    self.command_task_exited(now, i, &cid, &task_id, &task_id, exit);
                }
                self.maybe_forget_container(i, &cid);
            }
            ContainerKind::Default => {
                if let Some(task_id) = task {
                    let executor_id = container.executor_id.clone();
                    self.command_task_exited(now, i, &cid, task_id, &executor_id, exit);
                }
                self.maybe_finish_default(now, i, &cid);
            }
            ContainerKind::Custom => {
                container.state = ContainerState::Terminated;
                let framework_id = container.framework_id.clone();
                let executor_id = container.executor_id.clone();
                let termination = container.termination.clone().unwrap_or(Termination {
                    state: TaskState::TaskFailed,
                    reason: task_status::Reason::ExecutorTerminated,
                    message: "Executor terminated".into(),
                });
                if let Some(c) = container.conn.take() {
                    self.agents[i].conns.remove(&c.conn);
                    self.effect(Effect::CloseStream { conn: c.conn });
                }
                let container = &self.agents[i].containers[&cid];
                let live: Vec<String> = container
                    .tasks
                    .iter()
                    .filter(|(_, t)| !t.state.is_terminal())
                    .map(|(id, _)| id.clone())
                    .collect();
                for task_id in live {
                    let status = agent_status(
                        &task_id,
                        termination.state,
                        Some(&executor_id),
                        task_status::Source::Agent,
                        Some(termination.reason),
                        Some(termination.message.clone()),
                    );
                    self.accept_update(now, i, &cid, status);
                }
                self.send_to_master(
                    i,
                    ToMaster::ExitedExecutor {
                        framework_id,
                        executor_id,
                        status: Some(exit.raw),
                    },
                );
                self.maybe_forget_container(i, &cid);
            }
        }
    }

    /// The terminal update of a task run by the agent's command or default executor.
    fn command_task_exited(
        &mut self,
        now: Now,
        i: usize,
        cid: &str,
        task_id: &str,
        executor_id: &str,
        exit: ExitInfo,
    ) {
        let Some(task) = self.agents[i]
            .containers
            .get(cid)
            .and_then(|c| c.tasks.get(task_id))
        else {
            return;
        };
        if task.state.is_terminal() {
            return;
        }
        let state = if task.kill_requested {
            TaskState::TaskKilled
        } else if exit.code == Some(0) {
            TaskState::TaskFinished
        } else {
            TaskState::TaskFailed
        };
        let status = agent_status(
            task_id,
            state,
            Some(executor_id),
            task_status::Source::Executor,
            None,
            Some(format!("Command {}", exit.describe())),
        );
        self.accept_update(now, i, cid, status);
    }

    /// A default executor exits once all its tasks are terminal.
    fn maybe_finish_default(&mut self, _now: Now, i: usize, cid: &str) {
        let Some(container) = self.agents[i].containers.get_mut(cid) else {
            return;
        };
        if container.kind != ContainerKind::Default
            || container.state == ContainerState::Terminated
            || !container.processes.is_empty()
            || container.tasks.values().any(|t| !t.state.is_terminal())
        {
            return;
        }
        container.state = ContainerState::Terminated;
        let framework_id = container.framework_id.clone();
        let executor_id = container.executor_id.clone();
        self.send_to_master(
            i,
            ToMaster::ExitedExecutor {
                framework_id,
                executor_id,
                status: Some(0),
            },
        );
        self.maybe_forget_container(i, cid);
    }

    /// Drops a terminated container once all its updates are acknowledged.
    fn maybe_forget_container(&mut self, i: usize, cid: &str) {
        let agent = &mut self.agents[i];
        let done = agent.containers.get(cid).is_some_and(|c| {
            c.state == ContainerState::Terminated && c.processes.is_empty() && c.tasks.is_empty()
        });
        if done {
            agent.containers.remove(cid);
        }
    }

    fn kill_task(
        &mut self,
        now: Now,
        i: usize,
        framework_id: &str,
        task_id: &str,
        kill_policy: Option<fastdata_proto::v1::KillPolicy>,
    ) {
        let Some(cid) = self.agent(i).container_id_of_task(framework_id, task_id) else {
            return;
        };
        let container = &self.agents[i].containers[&cid];
        let task = &container.tasks[task_id];
        if task.state.is_terminal() || task.kill_requested {
            return;
        }
        let kind = container.kind;
        let executor_id = container.executor_id.clone();
        if !task.delivered
            || container.state == ContainerState::Launching && kind != ContainerKind::Custom
        {
            // Killed before it reached its executor.
            let container = self.agents[i].containers.get_mut(&cid).expect("exists");
            container.queued.retain(|e| {
                e.launch
                    .as_ref()
                    .is_none_or(|l| l.task.task_id.value != task_id)
            });
            if let Some(t) = container.tasks.get_mut(task_id) {
                t.kill_requested = true;
            }
            let status = agent_status(
                task_id,
                TaskState::TaskKilled,
                Some(&executor_id),
                task_status::Source::Agent,
                Some(task_status::Reason::TaskKilledDuringLaunch),
                Some("Killed before delivery to the executor".into()),
            );
            self.accept_update(now, i, &cid, status);
            let container = &self.agents[i].containers[&cid];
            if kind == ContainerKind::Custom
                && !container.subscribed_once
                && container.tasks.values().all(|t| t.state.is_terminal())
            {
                // MESOS-8411: an executor that never got a task is shut down.
                self.shutdown_container(now, i, &cid);
            }
            return;
        }
        let grace = duration_of(kill_policy.as_ref().and_then(|k| k.grace_period.as_ref()))
            .or_else(|| {
                duration_of(
                    task.info
                        .kill_policy
                        .as_ref()
                        .and_then(|k| k.grace_period.as_ref()),
                )
            })
            .unwrap_or(self.config.default_kill_grace_period);
        match kind {
            ContainerKind::Custom => {
                if let Some(conn) = container.conn {
                    let mut ev = executor_event(executor::event::Type::Kill);
                    ev.kill = Some(executor::event::Kill {
                        task_id: TaskId {
                            value: task_id.to_owned(),
                        },
                        kill_policy,
                    });
                    self.effect(Effect::ExecutorEvent {
                        conn: conn.conn,
                        event: ev,
                    });
                }
            }
            ContainerKind::Command | ContainerKind::Default => {
                // The default executor kills the whole group when one task is killed.
                let victims: Vec<String> = if kind == ContainerKind::Default {
                    container
                        .tasks
                        .iter()
                        .filter(|(_, t)| !t.state.is_terminal())
                        .map(|(id, _)| id.clone())
                        .collect()
                } else {
                    vec![task_id.to_owned()]
                };
                let killing_state = self.agents[i]
                    .frameworks
                    .get(framework_id)
                    .is_some_and(|f| {
                        has_cap(&f.info, framework_info::capability::Type::TaskKillingState)
                    });
                for victim in victims {
                    let executor = if kind == ContainerKind::Command {
                        victim.clone()
                    } else {
                        executor_id.clone()
                    };
                    if let Some(t) = self.agents[i]
                        .containers
                        .get_mut(&cid)
                        .and_then(|c| c.tasks.get_mut(&victim))
                    {
                        t.kill_requested = true;
                    }
                    if killing_state {
                        let status = agent_status(
                            &victim,
                            TaskState::TaskKilling,
                            Some(&executor),
                            task_status::Source::Executor,
                            None,
                            None,
                        );
                        self.accept_update(now, i, &cid, status);
                    }
                    let process = if kind == ContainerKind::Command {
                        cid.clone()
                    } else {
                        format!("{cid}/{victim}")
                    };
                    self.effect(Effect::Signal {
                        agent: i,
                        process: process.clone(),
                        signal: Signal::Term,
                    });
                    self.set_timer(now.at + grace, Timer::KillEscalation { agent: i, process });
                }
            }
        }
    }

    pub(crate) fn kill_escalation(&mut self, i: usize, process: &str) {
        let (cid, _) = split_process(process);
        let running = self.agents[i]
            .containers
            .get(cid)
            .is_some_and(|c| c.processes.iter().any(|p| p == process));
        if running {
            self.effect(Effect::Signal {
                agent: i,
                process: process.to_owned(),
                signal: Signal::Kill,
            });
        }
    }

    /// SHUTDOWN of an executor: the event, then SIGTERM and SIGKILL after the grace period.
    fn shutdown_container(&mut self, now: Now, i: usize, cid: &str) {
        let grace_default = self.config.executor_shutdown_grace_period;
        let Some(container) = self.agents[i].containers.get_mut(cid) else {
            return;
        };
        if container.state == ContainerState::Terminated {
            return;
        }
        if container.termination.is_none() {
            container.termination = Some(Termination {
                state: TaskState::TaskKilled,
                reason: task_status::Reason::ExecutorTerminated,
                message: "Executor shut down".into(),
            });
        }
        for t in container.tasks.values_mut() {
            t.kill_requested = true;
        }
        let grace =
            duration_of(container.executor.shutdown_grace_period.as_ref()).unwrap_or(grace_default);
        let conn = container.conn;
        let processes = container.processes.clone();
        let custom = container.kind == ContainerKind::Custom;
        if let Some(conn) = conn {
            self.effect(Effect::ExecutorEvent {
                conn: conn.conn,
                event: executor_event(executor::event::Type::Shutdown),
            });
        }
        for process in processes {
            if !custom {
                self.effect(Effect::Signal {
                    agent: i,
                    process: process.clone(),
                    signal: Signal::Term,
                });
            }
            self.set_timer(now.at + grace, Timer::KillEscalation { agent: i, process });
        }
    }

    fn shutdown_framework(&mut self, now: Now, i: usize, framework_id: &str) {
        if let Some(f) = self.agents[i].frameworks.get_mut(framework_id) {
            f.terminating = true;
        }
        let cids: Vec<String> = self.agents[i]
            .containers
            .values()
            .filter(|c| c.framework_id == framework_id)
            .map(|c| c.id.clone())
            .collect();
        for cid in cids {
            self.shutdown_container(now, i, &cid);
            // No updates go out for a removed framework.
            if let Some(c) = self.agents[i].containers.get_mut(&cid) {
                for t in c.tasks.values_mut() {
                    t.pending.clear();
                }
                c.tasks.retain(|_, t| !t.state.is_terminal());
            }
            self.maybe_forget_container(i, &cid);
        }
    }

    pub(crate) fn registration_timeout(&mut self, now: Now, i: usize, cid: &str) {
        let Some(container) = self.agents[i].containers.get_mut(cid) else {
            return;
        };
        if container.subscribed_once || container.state == ContainerState::Terminated {
            return;
        }
        if container.processes.is_empty() {
            // Never started (launch failed before a process existed).
            let message = container
                .termination
                .as_ref()
                .map(|t| t.message.clone())
                .unwrap_or_default();
            let cid = cid.to_owned();
            self.launch_failed(now, i, &cid, &message);
            return;
        }
        let timeout = self.config.executor_registration_timeout;
        container.termination = Some(Termination {
            state: TaskState::TaskFailed,
            reason: task_status::Reason::ExecutorRegistrationTimeout,
            message: format!(
                "Executor did not register within {}",
                stout_duration(timeout)
            ),
        });
        let processes = container.processes.clone();
        for process in processes {
            self.effect(Effect::Signal {
                agent: i,
                process,
                signal: Signal::Kill,
            });
        }
    }

    pub(crate) fn executor_heartbeat(&mut self, now: Now, i: usize, cid: &str, conn: ConnId) {
        let current = self.agents[i]
            .containers
            .get(cid)
            .and_then(|c| c.conn)
            .is_some_and(|c| c.conn == conn);
        if !current {
            return;
        }
        self.effect(Effect::ExecutorEvent {
            conn,
            event: executor_event(executor::event::Type::Heartbeat),
        });
        let interval = self.config.executor_heartbeat_interval;
        self.set_timer(
            now.at + interval,
            Timer::ExecutorHeartbeat {
                agent: i,
                container_id: cid.to_owned(),
                conn,
            },
        );
    }

    /// The executor endpoint (M: src/slave/http.cpp `Http::executor`, reference 1.3).
    pub(crate) fn agent_request(&mut self, now: Now, i: usize, req: ExecutorRequest<'_>) -> Reply {
        let decoded = match wire::decode_executor_call(req.parts) {
            Ok(d) => d,
            Err(answer) => return Reply::Answer(answer),
        };
        let call = decoded.call;
        let kind = call
            .r#type
            .and_then(|t| executor::call::Type::try_from(t).ok())
            .unwrap_or(executor::call::Type::Unknown);
        let encoding = if kind == executor::call::Type::Subscribe {
            match wire::response_encoding(req.parts.accept) {
                Ok(e) => Some(e),
                Err(answer) => return Reply::Answer(answer),
            }
        } else {
            None
        };
        if kind == executor::call::Type::Heartbeat {
            return Reply::Answer(Answer::accepted());
        }
        if self.agents[i].recovering && kind != executor::call::Type::Subscribe {
            return Reply::Answer(Answer::text(503, "Agent has not finished recovery"));
        }
        let framework_id = call.framework_id.value.clone();
        let executor_id = call.executor_id.value.clone();
        if !self.agents[i].frameworks.contains_key(&framework_id) {
            return Reply::Answer(Answer::bad_request("Framework cannot be found"));
        }
        let found = self.agents[i]
            .containers
            .values()
            .filter(|c| c.framework_id == framework_id && c.executor_id == executor_id)
            .max_by_key(|c| c.state != ContainerState::Terminated)
            .map(|c| (c.id.clone(), c.subscribed_once, c.state));
        let Some((cid, subscribed_once, state)) = found else {
            return Reply::Answer(Answer::bad_request("Executor cannot be found"));
        };
        match kind {
            executor::call::Type::Subscribe => {
                let encoding = encoding.unwrap_or(Encoding::Json);
                let subscribe = call.subscribe.unwrap_or_default();
                self.executor_subscribe(now, i, &cid, req.conn, subscribe, state);
                Reply::Stream {
                    encoding,
                    stream_id: None,
                }
            }
            _ if !subscribed_once => Reply::Answer(Answer::text(403, "Executor is not subscribed")),
            executor::call::Type::Update => {
                if let Some(update) = call.update {
                    let uuid = update.status.uuid.clone().unwrap_or_default();
                    let task_id = update.status.task_id.clone();
                    let known = self.agents[i].containers[&cid]
                        .tasks
                        .contains_key(&task_id.value);
                    if known {
                        self.accept_update(now, i, &cid, update.status);
                    }
                    self.send_acknowledged(i, &cid, task_id, uuid);
                }
                Reply::Answer(Answer::accepted())
            }
            executor::call::Type::Message => {
                if let Some(message) = call.message {
                    self.send_to_master(
                        i,
                        ToMaster::ExecutorMessage {
                            framework_id,
                            executor_id,
                            data: message.data,
                        },
                    );
                }
                Reply::Answer(Answer::accepted())
            }
            _ => Reply::Answer(Answer::not_implemented()),
        }
    }

    fn send_acknowledged(&mut self, i: usize, cid: &str, task_id: TaskId, uuid: Vec<u8>) {
        let conn = self.agents[i].containers.get(cid).and_then(|c| c.conn);
        if let Some(conn) = conn {
            let mut ev = executor_event(executor::event::Type::Acknowledged);
            ev.acknowledged = Some(executor::event::Acknowledged { task_id, uuid });
            self.effect(Effect::ExecutorEvent {
                conn: conn.conn,
                event: ev,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn executor_subscribe(
        &mut self,
        now: Now,
        i: usize,
        cid: &str,
        conn: ConnId,
        subscribe: executor::call::Subscribe,
        state: ContainerState,
    ) {
        let framework_id = self.agents[i].containers[cid].framework_id.clone();
        let terminating = self.agents[i]
            .frameworks
            .get(&framework_id)
            .is_some_and(|f| f.terminating)
            || state == ContainerState::Terminated
            || self.agents[i].containers[cid].termination.is_some();
        if terminating {
            self.effect(Effect::ExecutorEvent {
                conn,
                event: executor_event(executor::event::Type::Shutdown),
            });
            self.effect(Effect::CloseStream { conn });
            return;
        }
        let agent = &self.agents[i];
        let framework = agent.frameworks[&framework_id].info.clone();
        let agent_info = {
            let mut info = super::master::agent_info(&agent.id, &agent.config, agent.port);
            info.attributes
                .clone_from(&self.master.agents[i].info.attributes);
            info
        };
        let container = self.agents[i]
            .containers
            .get_mut(cid)
            .expect("found by the caller");
        if let Some(old) = container.conn.take() {
            // "Closing already existing HTTP connection".
            self.effect(Effect::CloseStream { conn: old.conn });
            self.agents[i].conns.remove(&old.conn);
        }
        let container = self.agents[i]
            .containers
            .get_mut(cid)
            .expect("found by the caller");
        container.conn = Some(ExecutorConn { conn });
        container.subscribed_once = true;
        let mut subscribed = executor_event(executor::event::Type::Subscribed);
        subscribed.subscribed = Some(executor::event::Subscribed {
            executor_info: container.executor.clone(),
            framework_info: framework,
            agent_info,
            container_id: Some(ContainerId {
                value: cid.to_owned(),
                parent: None,
            }),
        });
        let queued = std::mem::take(&mut container.queued);
        for t in container.tasks.values_mut() {
            t.delivered = true;
        }
        self.agents[i].conns.insert(conn, cid.to_owned());
        self.effect(Effect::ExecutorEvent {
            conn,
            event: subscribed,
        });
        for event in queued {
            self.effect(Effect::ExecutorEvent { conn, event });
        }
        for update in subscribe.unacknowledged_updates {
            let uuid = update.status.uuid.clone().unwrap_or_default();
            let task_id = update.status.task_id.clone();
            let known = self.agents[i].containers[cid]
                .tasks
                .contains_key(&task_id.value);
            if known {
                self.accept_update(now, i, cid, update.status);
            }
            self.send_acknowledged(i, cid, task_id, uuid);
        }
        let interval = self.config.executor_heartbeat_interval;
        self.set_timer(
            now.at + interval,
            Timer::ExecutorHeartbeat {
                agent: i,
                container_id: cid.to_owned(),
                conn,
            },
        );
    }

    pub(crate) fn agent_stream_closed(&mut self, _now: Now, conn: ConnId) {
        for agent in &mut self.agents {
            if let Some(cid) = agent.conns.remove(&conn)
                && let Some(c) = agent.containers.get_mut(&cid)
                && c.conn.is_some_and(|c| c.conn == conn)
            {
                c.conn = None;
            }
        }
    }

    /// The task status update manager accepts an update: fills in what the agent adds,
    /// ignores duplicates, and forwards it if it is now the head of its task's stream.
    pub(crate) fn accept_update(&mut self, now: Now, i: usize, cid: &str, mut status: TaskStatus) {
        let agent_id = self.agents[i].id.clone();
        let Some(container) = self.agents[i].containers.get_mut(cid) else {
            return;
        };
        let framework_id = container.framework_id.clone();
        if self.agents[i]
            .frameworks
            .get(&framework_id)
            .is_some_and(|f| f.terminating)
        {
            return;
        }
        let container = self.agents[i].containers.get_mut(cid).expect("checked");
        status.agent_id = Some(AgentId { value: agent_id });
        if status.timestamp.is_none() {
            status.timestamp = Some(now.unix);
        }
        if let Some(pid) = container.pid
            && status.source != Some(task_status::Source::Agent as i32)
        {
            status.container_status = Some(ContainerStatus {
                container_id: Some(ContainerId {
                    value: cid.to_owned(),
                    parent: None,
                }),
                network_infos: vec![NetworkInfo {
                    ip_addresses: vec![network_info::IpAddress {
                        protocol: None,
                        ip_address: Some("127.0.0.1".into()),
                    }],
                    ..Default::default()
                }],
                cgroup_info: None,
                executor_pid: Some(pid),
            });
        }
        let task_id = status.task_id.value.clone();
        let Some(task) = container.tasks.get_mut(&task_id) else {
            return;
        };
        let uuid = status.uuid.clone().unwrap_or_default();
        if task.seen.contains(&uuid) {
            return;
        }
        task.seen.push(uuid);
        task.state = TaskState::try_from(status.state).unwrap_or(task.state);
        task.pending.push_back(status);
        if task.pending.len() == 1 {
            self.forward_head(now, i, cid, &task_id);
        }
    }

    fn forward_head(&mut self, now: Now, i: usize, cid: &str, task_id: &str) {
        let Some(container) = self.agents[i].containers.get(cid) else {
            return;
        };
        let Some(task) = container.tasks.get(task_id) else {
            return;
        };
        let Some(head) = task.pending.front().cloned() else {
            return;
        };
        let framework_id = container.framework_id.clone();
        let latest_state = task.state as i32;
        let uuid = head.uuid.clone().unwrap_or_default();
        self.send_to_master(
            i,
            ToMaster::StatusUpdate {
                framework_id: framework_id.clone(),
                status: head,
                latest_state,
            },
        );
        let interval = self.config.status_update_retry_min;
        self.set_timer(
            now.at + interval,
            Timer::StatusRetry {
                agent: i,
                framework_id,
                task_id: task_id.to_owned(),
                uuid,
                interval,
            },
        );
    }

    pub(crate) fn retry_status(
        &mut self,
        now: Now,
        i: usize,
        framework_id: &str,
        task_id: &str,
        uuid: &[u8],
        interval: Duration,
    ) {
        if !self.agents[i].is_up() {
            return;
        }
        let Some(cid) = self.agent(i).container_id_of_task(framework_id, task_id) else {
            return;
        };
        let container = &self.agents[i].containers[&cid];
        let task = &container.tasks[task_id];
        let Some(head) = task.pending.front().cloned() else {
            return;
        };
        if head.uuid.as_deref() != Some(uuid) {
            return;
        }
        let latest_state = task.state as i32;
        self.send_to_master(
            i,
            ToMaster::StatusUpdate {
                framework_id: framework_id.to_owned(),
                status: head,
                latest_state,
            },
        );
        let next = (interval * 2).min(self.config.status_update_retry_max);
        self.set_timer(
            now.at + next,
            Timer::StatusRetry {
                agent: i,
                framework_id: framework_id.to_owned(),
                task_id: task_id.to_owned(),
                uuid: uuid.to_vec(),
                interval: next,
            },
        );
    }

    /// Forwards the head of every pending stream again (of one framework, or all).
    pub(crate) fn resend_pending(&mut self, now: Now, i: usize, framework_id: Option<&str>) {
        let heads: Vec<(String, String)> = self.agents[i]
            .containers
            .values()
            .filter(|c| framework_id.is_none_or(|f| c.framework_id == f))
            .flat_map(|c| {
                c.tasks
                    .iter()
                    .filter(|(_, t)| !t.pending.is_empty())
                    .map(|(id, _)| (c.id.clone(), id.clone()))
            })
            .collect();
        for (cid, task_id) in heads {
            self.forward_head(now, i, &cid, &task_id);
        }
    }

    fn status_acknowledged(
        &mut self,
        now: Now,
        i: usize,
        framework_id: &str,
        task_id: &str,
        uuid: &[u8],
    ) {
        let Some(cid) = self.agent(i).container_id_of_task(framework_id, task_id) else {
            return;
        };
        let container = self.agents[i].containers.get_mut(&cid).expect("found");
        let task = container.tasks.get_mut(task_id).expect("found");
        if task.pending.front().and_then(|s| s.uuid.as_deref()) != Some(uuid) {
            return;
        }
        task.pending.pop_front();
        if !task.pending.is_empty() {
            self.forward_head(now, i, &cid, task_id);
            return;
        }
        if task.state.is_terminal() {
            container.tasks.remove(task_id);
            self.maybe_forget_container(i, &cid);
        }
    }
}

/// Splits a process key into its container id and, for default-executor tasks, task id.
fn split_process(process: &str) -> (&str, Option<&str>) {
    match process.split_once('/') {
        Some((cid, task)) => (cid, Some(task)),
        None => (process, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_keys() {
        assert_eq!(split_process("c1"), ("c1", None));
        assert_eq!(split_process("c1/t1"), ("c1", Some("t1")));
    }
}
