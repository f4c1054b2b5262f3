//! What the executor's tests share: a small test scheduler on top of devcluster's own test
//! client (`devcluster/tests/common/mod.rs`, included by each test file as `common`), tasks
//! that run the real `fastdata-executor` binary, and looks into devcluster's state.
//!
//! The binary reaches the agent the way Mesos' fetcher would give it: a `CommandInfo.uris`
//! entry with the absolute path of the built binary, `executable: true`, run as
//! `./fastdata-executor` in the sandbox.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use fastdata_devcluster::{ClusterConfig, DevCluster};
use fastdata_proto::task::StatsReport;
use fastdata_proto::v1::{
    AgentId, CommandInfo, ContainerInfo, DurationInfo, Environment, ExecutorId, ExecutorInfo,
    FrameworkInfo, KillPolicy, Parameter, Parameters, Resource, TaskId, TaskInfo, TaskState,
    TaskStatus, Volume, command_info, container_info, environment, executor_info,
    offer::{Operation, operation},
    resource, scheduler, value, volume,
};
use tokio::time::Instant;

use crate::common::Scheduler;

/// The binary under test.
pub const EXECUTOR: &str = env!("CARGO_BIN_EXE_fastdata-executor");

/// Generous bound for any one wait in these tests (a loaded 2-core machine).
pub const LONG: Duration = Duration::from_secs(60);

/// devcluster with fast timers and one agent; the agent waits 2 s (Mesos' default) for
/// executors to re-subscribe after a restart, and checkpointing executors give up on a lost
/// agent after 20 s (so none outlives a failed test for long).
pub fn cluster_config() -> ClusterConfig {
    let mut config = ClusterConfig::default().fast();
    config.agents = vec![fastdata_devcluster::AgentConfig::default()];
    config.executor_reregistration_timeout = Duration::from_secs(2);
    config.executor_shutdown_grace_period = Duration::from_secs(5);
    config.recovery_timeout = Duration::from_secs(20);
    config
}

/// A devcluster that kills the executors it started if the test panics before `stop`.
pub struct Cluster(Option<DevCluster>);

impl std::ops::Deref for Cluster {
    type Target = DevCluster;

    fn deref(&self) -> &DevCluster {
        self.0.as_ref().expect("running until stopped")
    }
}

impl Cluster {
    /// Stops devcluster and everything it started.
    pub async fn stop(mut self) {
        if let Some(cluster) = self.0.take() {
            cluster.stop().await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let Some(cluster) = &self.0 else { return };
        // A failed test: its executors would otherwise keep trying to reach the vanished
        // agent for the recovery timeout. Each runs in its own process group.
        let state = cluster.state();
        let pids = state["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["containers"].as_array().cloned().unwrap_or_default())
            // Only live ones: the pid of an ended container may belong to someone else now.
            .filter(|c| c["state"] != "Terminated")
            .filter_map(|c| c["pid"].as_i64());
        for pid in pids {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // devcluster made this temporary directory and only removes it in `stop`.
        let _ = std::fs::remove_dir_all(cluster.work_dir());
    }
}

pub async fn start_cluster() -> Cluster {
    Cluster(Some(
        DevCluster::start(cluster_config())
            .await
            .expect("devcluster starts"),
    ))
}

/// The recorded FrameworkInfo (TASK_KILLING_STATE among its capabilities), checkpointing
/// as the fastdata scheduler does.
pub fn framework(checkpoint: bool) -> FrameworkInfo {
    FrameworkInfo {
        checkpoint: Some(checkpoint),
        ..crate::common::framework_info()
    }
}

fn scalar(name: &str, v: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: v }),
        allocation_info: Some(resource::AllocationInfo {
            role: Some("fastdata-role".into()),
        }),
        ..Default::default()
    }
}

/// How a test wants its task built.
#[derive(Debug, Clone, Default)]
pub struct TaskOptions {
    /// `TaskInfo.kill_policy.grace_period`.
    pub grace: Option<Duration>,
    /// A `pxd` DOCKER_VOLUME of this name at container path `spool`.
    pub volume: Option<String>,
    /// Variables for the executor (`CommandInfo.environment`).
    pub env: Vec<(String, String)>,
}

/// The executor id of a task in these tests.
pub fn executor_id(task_id: &str) -> String {
    format!("{task_id}.executor")
}

/// A task run by `fastdata-executor` with `data` as its spec, as the scheduler builds it.
pub fn executor_task(agent: &str, task_id: &str, data: Vec<u8>, options: &TaskOptions) -> TaskInfo {
    let mut variables: Vec<environment::Variable> = vec![environment::Variable {
        name: "RUST_LOG".into(),
        r#type: Some(environment::variable::Type::Value as i32),
        value: Some("info,scylla=off,fastdata_executor=debug".into()),
        secret: None,
    }];
    for (name, value) in &options.env {
        variables.push(environment::Variable {
            name: name.clone(),
            r#type: Some(environment::variable::Type::Value as i32),
            value: Some(value.clone()),
            secret: None,
        });
    }
    let container = options.volume.as_ref().map(|name| ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        volumes: vec![Volume {
            mode: volume::Mode::Rw as i32,
            container_path: "spool".into(),
            host_path: None,
            image: None,
            source: Some(volume::Source {
                r#type: Some(volume::source::Type::DockerVolume as i32),
                docker_volume: Some(volume::source::DockerVolume {
                    driver: Some("pxd".into()),
                    name: name.clone(),
                    driver_options: Some(Parameters {
                        parameter: vec![Parameter {
                            key: "size".into(),
                            value: "1".into(),
                        }],
                    }),
                }),
                ..Default::default()
            }),
        }],
        ..Default::default()
    });
    TaskInfo {
        name: task_id.into(),
        task_id: TaskId {
            value: task_id.into(),
        },
        agent_id: AgentId {
            value: agent.into(),
        },
        resources: vec![scalar("cpus", 0.5), scalar("mem", 256.0)],
        executor: Some(ExecutorInfo {
            r#type: Some(executor_info::Type::Custom as i32),
            executor_id: ExecutorId {
                value: executor_id(task_id),
            },
            name: Some(format!("fastdata executor of {task_id}")),
            command: Some(CommandInfo {
                uris: vec![command_info::Uri {
                    value: EXECUTOR.into(),
                    executable: Some(true),
                    extract: Some(false),
                    ..Default::default()
                }],
                environment: Some(Environment { variables }),
                value: Some("exec ./fastdata-executor".into()),
                shell: Some(true),
                ..Default::default()
            }),
            resources: vec![scalar("cpus", 0.1), scalar("mem", 64.0)],
            container,
            ..Default::default()
        }),
        data: Some(data),
        kill_policy: options.grace.map(|g| KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: g.as_nanos() as i64,
            }),
        }),
        ..Default::default()
    }
}

/// Takes an offer and launches `task` on it.
pub async fn launch(s: &mut Scheduler, task: TaskInfo) {
    while s.outstanding.is_empty() {
        s.offers().await;
    }
    let offers = s.take_outstanding();
    let ids = offers.iter().map(|o| o.id.clone()).collect();
    let op = Operation {
        r#type: Some(operation::Type::Launch as i32),
        launch: Some(operation::Launch {
            task_infos: vec![task],
        }),
        ..Default::default()
    };
    let answer = s.accept(ids, vec![op], Some(0.0)).await;
    assert_eq!(answer.status, 202, "ACCEPT: {}", answer.body);
}

/// The next event that is neither HEARTBEAT nor OFFERS/RESCIND (offers are kept), within
/// `within`.
pub async fn next_event(s: &mut Scheduler, within: Duration) -> scheduler::Event {
    if let Some(ev) = s.pending.pop_front() {
        return ev;
    }
    tokio::time::timeout(within, async {
        loop {
            let ev = s.stream.next_event().await.expect("scheduler stream open");
            match ev
                .r#type
                .and_then(|t| scheduler::event::Type::try_from(t).ok())
            {
                Some(scheduler::event::Type::Heartbeat) => {}
                Some(scheduler::event::Type::Offers) => {
                    s.outstanding
                        .extend(ev.offers.clone().expect("offers").offers);
                    s.offer_events.push(ev);
                }
                Some(scheduler::event::Type::Rescind) => {
                    let id = ev.rescind.expect("rescind").offer_id;
                    s.outstanding.retain(|o| o.id != id);
                }
                _ => return ev,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event within {within:?}"))
}

/// Every status update of a test run as the scheduler received it, acknowledged on arrival
/// (each delivery, as a Mesos scheduler must).
#[derive(Debug, Default)]
pub struct UpdateLog {
    /// Every delivery, in order (redeliveries included).
    pub deliveries: Vec<(Instant, TaskStatus)>,
    /// Other events seen while waiting for updates.
    pub others: Vec<scheduler::Event>,
}

impl UpdateLog {
    /// Waits for the next update of `task_id` (other events are kept in `others`).
    pub async fn next(&mut self, s: &mut Scheduler, task_id: &str, within: Duration) -> TaskStatus {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no update of {task_id} within {within:?}");
            let ev = next_event(s, left).await;
            let Some(update) = ev.update.clone() else {
                self.others.push(ev);
                continue;
            };
            let status = update.status;
            if status.uuid.is_some() {
                let answer = s.acknowledge(&status).await;
                assert_eq!(answer.status, 202, "ACKNOWLEDGE: {}", answer.body);
            }
            self.deliveries.push((Instant::now(), status.clone()));
            if status.task_id.value == task_id {
                return status;
            }
        }
    }

    /// Waits until `task_id` reaches `state`; fails on any other terminal state.
    pub async fn until(
        &mut self,
        s: &mut Scheduler,
        task_id: &str,
        state: TaskState,
        within: Duration,
    ) -> TaskStatus {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let status = self.next(s, task_id, left).await;
            let got = TaskState::try_from(status.state).expect("known state");
            if got == state {
                return status;
            }
            assert!(
                !got.is_terminal(),
                "{task_id} ended {} ({:?}) while waiting for {}",
                got.as_str_name(),
                status.message,
                state.as_str_name()
            );
        }
    }

    /// The distinct updates of `task_id` (a redelivered UUID counted once), in arrival order.
    pub fn distinct(&self, task_id: &str) -> Vec<TaskStatus> {
        let mut seen = HashSet::new();
        self.deliveries
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.task_id.value == task_id)
            .filter(|s| seen.insert(s.uuid.clone()))
            .cloned()
            .collect()
    }

    /// The states of [`UpdateLog::distinct`].
    pub fn states(&self, task_id: &str) -> Vec<TaskState> {
        self.distinct(task_id)
            .iter()
            .map(|s| TaskState::try_from(s.state).unwrap())
            .collect()
    }

    /// When the first delivery in `state` of `task_id` arrived.
    pub fn arrival(&self, task_id: &str, state: TaskState) -> Option<Instant> {
        self.deliveries
            .iter()
            .find(|(_, s)| s.task_id.value == task_id && s.state == state as i32)
            .map(|(at, _)| *at)
    }

    /// Checks what every executor update must carry: a valid 16-byte UUID, SOURCE_EXECUTOR
    /// and our executor id; and that no two deliveries of one UUID differ.
    pub fn check_executor_updates(&self, task_id: &str) {
        let mut by_uuid: BTreeMap<Vec<u8>, TaskStatus> = BTreeMap::new();
        for (_, status) in self
            .deliveries
            .iter()
            .filter(|(_, s)| s.task_id.value == task_id)
        {
            let uuid = status.uuid.clone().expect("executor updates carry a UUID");
            assert!(
                fastdata_proto::mesos_ext::is_valid_uuid(&uuid),
                "{status:?}"
            );
            assert_eq!(
                status.source,
                Some(fastdata_proto::v1::task_status::Source::Executor as i32),
                "{status:?}"
            );
            assert_eq!(
                status.executor_id.as_ref().map(|e| e.value.as_str()),
                Some(executor_id(task_id).as_str())
            );
            assert!(
                status.message.as_ref().is_some_and(|m| !m.is_empty()),
                "{status:?}"
            );
            if let Some(earlier) = by_uuid.insert(uuid, status.clone()) {
                assert_eq!(
                    (earlier.state, &earlier.message),
                    (status.state, &status.message),
                    "a redelivery is the same update"
                );
            }
        }
    }
}

/// Sends KILL for `task_id` (optionally with a kill policy grace).
pub async fn kill(s: &Scheduler, agent: &str, task_id: &str, grace: Option<Duration>) {
    let answer = s
        .call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Kill as i32),
            kill: Some(scheduler::call::Kill {
                task_id: TaskId {
                    value: task_id.into(),
                },
                agent_id: Some(AgentId {
                    value: agent.into(),
                }),
                kill_policy: grace.map(|g| KillPolicy {
                    grace_period: Some(DurationInfo {
                        nanoseconds: g.as_nanos() as i64,
                    }),
                }),
            }),
            ..Default::default()
        })
        .await;
    assert_eq!(answer.status, 202, "KILL: {}", answer.body);
}

/// Sends a framework MESSAGE to the executor of `task_id`.
pub async fn message(s: &Scheduler, agent: &str, task_id: &str, data: Vec<u8>) {
    let answer = s
        .call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Message as i32),
            message: Some(scheduler::call::Message {
                agent_id: AgentId {
                    value: agent.into(),
                },
                executor_id: ExecutorId {
                    value: executor_id(task_id),
                },
                data,
            }),
            ..Default::default()
        })
        .await;
    assert_eq!(answer.status, 202, "MESSAGE: {}", answer.body);
}

/// The stats reports the executor of `task_id` sent, taken out of `log.others`.
pub fn stats_reports(log: &mut UpdateLog, task_id: &str) -> Vec<StatsReport> {
    let mut reports = Vec::new();
    log.others.retain(|ev| {
        let Some(m) = &ev.message else { return true };
        if m.executor_id.value != executor_id(task_id) {
            return true;
        }
        reports.push(StatsReport::from_json(&m.data).expect("a stats report"));
        false
    });
    reports
}

/// Waits for a stats report of `task_id` that satisfies `accept`.
pub async fn wait_report(
    s: &mut Scheduler,
    log: &mut UpdateLog,
    task_id: &str,
    within: Duration,
    accept: impl Fn(&StatsReport) -> bool,
) -> StatsReport {
    let deadline = Instant::now() + within;
    loop {
        if let Some(r) = stats_reports(log, task_id).into_iter().find(|r| accept(r)) {
            return r;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no matching stats report of {task_id} within {within:?}"
        );
        let ev = next_event(s, left).await;
        if let Some(update) = &ev.update {
            panic!(
                "unexpected update while waiting for stats: {:?}",
                update.status
            );
        }
        log.others.push(ev);
    }
}

/// The executor's container in devcluster's state (the newest with this id).
fn container(cluster: &DevCluster, task_id: &str) -> Option<serde_json::Value> {
    let state = cluster.state();
    state["agents"]
        .as_array()?
        .iter()
        .flat_map(|a| a["containers"].as_array().cloned().unwrap_or_default())
        .rfind(|c| c["executor_id"] == executor_id(task_id).as_str())
}

/// The executor's process id, once it runs.
pub async fn executor_pid(cluster: &DevCluster, task_id: &str) -> i32 {
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(pid) = container(cluster, task_id).and_then(|c| c["pid"].as_i64()) {
            return pid as i32;
        }
        assert!(
            Instant::now() < deadline,
            "executor of {task_id} never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The executor's sandbox.
pub fn sandbox(cluster: &DevCluster, task_id: &str) -> PathBuf {
    let c = container(cluster, task_id).expect("the executor's container");
    PathBuf::from(c["sandbox"].as_str().expect("sandbox"))
}

/// True once the executor's process is gone.
pub fn executor_exited(cluster: &DevCluster, task_id: &str) -> bool {
    container(cluster, task_id).is_none_or(|c| c["state"] == "Terminated")
}

/// Waits until the executor's process is gone.
pub async fn wait_executor_exit(cluster: &DevCluster, task_id: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !executor_exited(cluster, task_id) {
        assert!(
            Instant::now() < deadline,
            "the executor of {task_id} still runs after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The executor's log (its sandbox `stderr`), read before the cluster is stopped.
pub fn executor_log(sandbox: &std::path::Path) -> String {
    std::fs::read_to_string(sandbox.join("stderr")).unwrap_or_default()
}

/// Checks that every log line names the task.
pub fn assert_lines_name_the_task(log: &str, task_id: &str) {
    let prefix = format!("task_id={task_id} executor_id={} ", executor_id(task_id));
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() >= 4,
        "the executor logged almost nothing:\n{log}"
    );
    for line in &lines {
        assert!(
            line.starts_with(&prefix),
            "a line without the task id: {line}"
        );
    }
}
