//! The launch benchmark's baseline: a bare Mesos v1 scheduler that only launches.
//!
//! It subscribes, RESERVEs and LAUNCHes on each offer the same noop executor task the
//! fastdata scheduler launches for a consumer slot (same executor command, same Docker volume,
//! same kill policy, same spec in `TaskInfo.data`, same reservation amounts), one per agent,
//! as fast as offers come, and acknowledges every update that carries a UUID. Nothing else:
//! no ZooKeeper, no policy, no reconciliation, no relaunches, no bookkeeping beyond a count.
//! What the fastdata scheduler takes beyond this for the same launches is its own overhead.
//!
//! Shape: [`DriverCore`] is the pure part (offers and updates in, calls out, unit-tested with
//! values); [`run`] is the I/O around it (one subscription stream, calls on a bounded number
//! of concurrent requests). It never uses fastdata-scheduler code, only the proto crate's
//! messages and RecordIO codec.
//!
//! The sequence mirrors the benchmark of the scheduler: one task first (slot 0), then
//! SUPPRESS and wait; on [`DriverCommand::Grow`] REVIVE and launch the rest.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use fastdata_proto::mesos_ext::mesos_container;
use fastdata_proto::recordio::RecordIoDecoder;
use fastdata_proto::task::{TaskSpec, Workload};
use fastdata_proto::v1::{
    AgentId, CommandInfo, DurationInfo, ExecutorId, ExecutorInfo, Filters, FrameworkId,
    FrameworkInfo, KillPolicy, Label, Labels, Offer, Parameter, Parameters, Resource, TaskId,
    TaskInfo, TaskState, TaskStatus, Volume, executor_info, framework_info,
    offer::{Operation, operation},
    resource::{AllocationInfo, ReservationInfo, reservation_info},
    scheduler::{self, call, event},
    value, volume,
};
use futures::StreamExt as _;
use prost::Message as _;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Filters for resources the driver will never want again (one task per agent).
const REFUSE_SECONDS: f64 = 3600.0;
/// Calls sent at once (each its own HTTP request on a pooled connection).
pub const CALLS_IN_FLIGHT: usize = 16;
const PROTOBUF: &str = "application/x-protobuf";

/// What each launched task looks like; the benchmark sets it to what the scheduler launches.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskShape {
    /// Prefix of task ids and volume names.
    pub service: String,
    /// Role of the framework and its reservations.
    pub role: String,
    /// Principal of the framework and its reservations.
    pub principal: String,
    /// Absolute path of `fastdata-executor` on the agents (nothing fetched).
    pub executor_path: String,
    /// CPUs and memory (MB) of the task.
    pub task: (f64, f64),
    /// CPUs and memory (MB) of the executor beside it.
    pub executor: (f64, f64),
    /// Docker volume driver of the slot volume.
    pub volume_driver: String,
    /// Kill grace period.
    pub grace: Duration,
}

impl TaskShape {
    /// The shape the scheduler gives a consumer slot of `service` (role and principal named as
    /// the DC/OS SDK names them, Portworx volume), with the executor at `executor_path`.
    pub fn new(
        service: &str,
        executor_path: &std::path::Path,
        task: (f64, f64),
        executor: (f64, f64),
        grace: Duration,
    ) -> TaskShape {
        TaskShape {
            service: service.to_owned(),
            role: format!("{service}-role"),
            principal: format!("{service}-principal"),
            executor_path: executor_path.display().to_string(),
            task,
            executor,
            volume_driver: "pxd".into(),
            grace,
        }
    }

    fn total(&self) -> (f64, f64) {
        (self.task.0 + self.executor.0, self.task.1 + self.executor.1)
    }
}

/// Where the driver is in the benchmark's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Launching slot 0.
    First,
    /// Slot 0 launched (running or not); offers suppressed; waiting for the order to grow.
    Idle,
    /// Launching the other slots on every offer.
    Growing,
}

/// The pure driver: decides what to call for each offer and update.
#[derive(Debug)]
pub struct DriverCore {
    shape: TaskShape,
    framework_id: String,
    wanted: usize,
    next_slot: usize,
    used_agents: HashSet<String>,
    running: HashSet<String>,
    phase: Phase,
    failures: Vec<String>,
}

/// The FrameworkInfo the driver subscribes with: the same role, principal and capabilities
/// as fastdata's scheduler (offers then come in the same format).
pub fn framework_info(name: &str, role: &str, principal: &str) -> FrameworkInfo {
    use framework_info::capability::Type;
    FrameworkInfo {
        user: "nobody".into(),
        name: name.into(),
        failover_timeout: Some(3600.0),
        checkpoint: Some(true),
        roles: vec![role.into()],
        principal: Some(principal.into()),
        capabilities: [
            Type::MultiRole,
            Type::ReservationRefinement,
            Type::PartitionAware,
            Type::TaskKillingState,
        ]
        .into_iter()
        .map(|t| framework_info::Capability {
            r#type: Some(t as i32),
        })
        .collect(),
        ..Default::default()
    }
}

/// SUBSCRIBE for a new framework.
pub fn subscribe_call(info: FrameworkInfo) -> scheduler::Call {
    scheduler::Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: info,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn scalar(name: &str, amount: f64, role: &str, reservation: Option<&ReservationInfo>) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        allocation_info: Some(AllocationInfo {
            role: Some(role.into()),
        }),
        reservations: reservation.cloned().into_iter().collect(),
        ..Default::default()
    }
}

/// Unreserved CPUs and memory of an offer.
fn unreserved(offer: &Offer) -> (f64, f64) {
    let sum = |name: &str| {
        offer
            .resources
            .iter()
            .filter(|r| r.name == name && r.reservations.is_empty())
            .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
            .sum::<f64>()
    };
    (sum("cpus"), sum("mem"))
}

impl DriverCore {
    /// A driver for `wanted` tasks (slot 0 first, the rest on [`DriverCore::grow`]).
    pub fn new(shape: TaskShape, framework_id: &str, wanted: usize) -> DriverCore {
        DriverCore {
            shape,
            framework_id: framework_id.to_owned(),
            wanted,
            next_slot: 0,
            used_agents: HashSet::new(),
            running: HashSet::new(),
            phase: Phase::First,
            failures: Vec::new(),
        }
    }

    /// Tasks reported TASK_RUNNING (and not ended since).
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Tasks launched so far.
    pub fn launched(&self) -> usize {
        self.next_slot
    }

    /// Tasks that ended, with their state and message (the baseline launches each once).
    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    fn call(&self, kind: call::Type) -> scheduler::Call {
        scheduler::Call {
            framework_id: Some(FrameworkId {
                value: self.framework_id.clone(),
            }),
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    /// The calls for one OFFERS event: RESERVE+LAUNCH on each usable offer while slots are
    /// wanted, a long DECLINE of the rest.
    pub fn on_offers(&mut self, offers: &[Offer]) -> Vec<scheduler::Call> {
        let mut calls = Vec::new();
        let mut declined = Vec::new();
        let limit = match self.phase {
            Phase::First => 1,
            Phase::Idle => 0,
            Phase::Growing => self.wanted,
        };
        let (cpus, mem) = self.shape.total();
        for offer in offers {
            let (free_cpus, free_mem) = unreserved(offer);
            let usable = self.next_slot < limit
                && !self.used_agents.contains(&offer.agent_id.value)
                && free_cpus + 1e-9 >= cpus
                && free_mem + 1e-9 >= mem;
            if usable {
                calls.push(self.reserve_and_launch(offer));
            } else {
                declined.push(offer.id.clone());
            }
        }
        if !declined.is_empty() {
            let mut decline = self.call(call::Type::Decline);
            decline.decline = Some(call::Decline {
                offer_ids: declined,
                filters: Some(Filters {
                    refuse_seconds: Some(REFUSE_SECONDS),
                }),
            });
            calls.push(decline);
        }
        if self.phase == Phase::First && self.next_slot == 1 {
            self.phase = Phase::Idle;
        }
        calls
    }

    /// ACCEPT of one offer: RESERVE the slot's cpus and mem for the role, then LAUNCH the
    /// noop task on them (task and executor shares of the reservation).
    fn reserve_and_launch(&mut self, offer: &Offer) -> scheduler::Call {
        let slot = self.next_slot;
        self.next_slot += 1;
        self.used_agents.insert(offer.agent_id.value.clone());
        let shape = &self.shape;
        let role = shape.role.as_str();
        let reservation = ReservationInfo {
            r#type: Some(reservation_info::Type::Dynamic as i32),
            role: Some(role.into()),
            principal: Some(shape.principal.clone()),
            labels: Some(Labels {
                labels: vec![
                    label("framework_id", &self.framework_id),
                    label("slot", &format!("consumer-{slot}")),
                ],
            }),
        };
        let (cpus, mem) = shape.total();
        let reserve = Operation {
            r#type: Some(operation::Type::Reserve as i32),
            reserve: Some(operation::Reserve {
                resources: vec![
                    scalar("cpus", cpus, role, Some(&reservation)),
                    scalar("mem", mem, role, Some(&reservation)),
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        let task_id = format!(
            "{}__consumer-{slot}__{}",
            shape.service,
            uuid::Uuid::new_v4()
        );
        let mut container = mesos_container();
        container.volumes.push(Volume {
            mode: volume::Mode::Rw as i32,
            container_path: "spool".into(),
            source: Some(volume::Source {
                r#type: Some(volume::source::Type::DockerVolume as i32),
                docker_volume: Some(volume::source::DockerVolume {
                    driver: Some(shape.volume_driver.clone()),
                    name: format!("{}-consumer-{slot}", shape.service),
                    driver_options: Some(Parameters {
                        parameter: vec![Parameter {
                            key: "size".into(),
                            value: "1".into(),
                        }],
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let executor = ExecutorInfo {
            r#type: Some(executor_info::Type::Custom as i32),
            executor_id: ExecutorId {
                value: format!("{task_id}.executor"),
            },
            framework_id: Some(FrameworkId {
                value: self.framework_id.clone(),
            }),
            command: Some(CommandInfo {
                shell: Some(false),
                value: Some(shape.executor_path.clone()),
                arguments: vec!["fastdata-executor".into()],
                ..Default::default()
            }),
            container: Some(container),
            resources: vec![
                scalar("cpus", shape.executor.0, role, Some(&reservation)),
                scalar("mem", shape.executor.1, role, Some(&reservation)),
            ],
            name: Some(format!("{} executor for consumer-{slot}", shape.service)),
            ..Default::default()
        };
        let task = TaskInfo {
            name: format!("{}-consumer-{slot}", shape.service),
            task_id: TaskId { value: task_id },
            agent_id: AgentId {
                value: offer.agent_id.value.clone(),
            },
            resources: vec![
                scalar("cpus", shape.task.0, role, Some(&reservation)),
                scalar("mem", shape.task.1, role, Some(&reservation)),
            ],
            executor: Some(executor),
            kill_policy: Some(KillPolicy {
                grace_period: Some(DurationInfo {
                    nanoseconds: i64::try_from(shape.grace.as_nanos()).unwrap_or(i64::MAX),
                }),
            }),
            data: Some(TaskSpec::new(Workload::Noop).to_json()),
            labels: Some(Labels {
                labels: vec![
                    label("slot", &format!("consumer-{slot}")),
                    label("kind", "consumer"),
                ],
            }),
            ..Default::default()
        };
        let launch = Operation {
            r#type: Some(operation::Type::Launch as i32),
            launch: Some(operation::Launch {
                task_infos: vec![task],
            }),
            ..Default::default()
        };
        let mut accept = self.call(call::Type::Accept);
        accept.accept = Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![reserve, launch],
            filters: Some(Filters {
                refuse_seconds: Some(REFUSE_SECONDS),
            }),
        });
        accept
    }

    /// The calls for one UPDATE: an ACKNOWLEDGE when it carries a UUID (reference 2.4: only
    /// agent-originated updates do, and only those may be acknowledged).
    pub fn on_update(&mut self, status: &TaskStatus) -> Vec<scheduler::Call> {
        let id = status.task_id.value.clone();
        match TaskState::try_from(status.state) {
            Ok(TaskState::TaskRunning) => {
                self.running.insert(id);
            }
            Ok(state) if state.is_terminal() || state == TaskState::TaskUnreachable => {
                self.running.remove(&id);
                self.failures.push(format!(
                    "{id}: {} {}",
                    state.as_str_name(),
                    status.message.as_deref().unwrap_or_default()
                ));
            }
            _ => {}
        }
        match (&status.uuid, &status.agent_id) {
            (Some(uuid), Some(agent_id)) if !uuid.is_empty() => {
                let mut ack = self.call(call::Type::Acknowledge);
                ack.acknowledge = Some(call::Acknowledge {
                    agent_id: agent_id.clone(),
                    task_id: status.task_id.clone(),
                    uuid: uuid.clone(),
                });
                vec![ack]
            }
            _ => Vec::new(),
        }
    }

    /// SUPPRESS: slot 0 is placed, nothing more wanted until [`DriverCore::grow`].
    pub fn suppress(&mut self) -> scheduler::Call {
        let mut suppress = self.call(call::Type::Suppress);
        suppress.suppress = Some(call::Suppress {
            roles: vec![self.shape.role.clone()],
        });
        suppress
    }

    /// REVIVE (clears the long filters too): the other slots are wanted now.
    pub fn grow(&mut self) -> scheduler::Call {
        self.phase = Phase::Growing;
        let mut revive = self.call(call::Type::Revive);
        revive.revive = Some(call::Revive {
            roles: vec![self.shape.role.clone()],
        });
        revive
    }
}

fn label(key: &str, value: &str) -> Label {
    Label {
        key: key.into(),
        value: Some(value.into()),
    }
}

/// Why the driver stopped short.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The master could not be reached or answered something unexpected.
    #[error("{what}: {detail}")]
    Master {
        /// Which request.
        what: String,
        /// What went wrong.
        detail: String,
    },
    /// The event stream broke or ended.
    #[error("the subscription stream ended: {0}")]
    Stream(String),
    /// The master sent an ERROR event.
    #[error("the master sent ERROR: {0}")]
    Refused(String),
    /// A task ended (the baseline launches each slot once; a failure spoils the comparison).
    #[error("a task ended instead of running: {0}")]
    TaskEnded(String),
}

/// What the benchmark tells the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverCommand {
    /// REVIVE and launch the remaining slots.
    Grow,
    /// Stop and report.
    Stop,
}

/// What the driver tells the benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverNews {
    /// Subscribed with this framework id.
    Subscribed(String),
    /// Slot 0 runs and offers are suppressed: ready to grow.
    Ready,
}

/// What the driver did, measured on its own thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DriverReport {
    /// Tasks launched.
    pub launched: usize,
    /// Tasks it saw TASK_RUNNING.
    pub running: usize,
    /// CPU time of the driver's thread from [`DriverCommand::Grow`] to
    /// [`DriverCommand::Stop`] (the driver runs on a current-thread runtime, so its HTTP
    /// connections, decoding and encoding are all on that thread).
    pub cpu: Duration,
    /// Calls sent.
    pub calls: u64,
}

fn calls_url(master: &str) -> String {
    format!("{}/api/v1/scheduler", master.trim_end_matches('/'))
}

/// Runs the driver against `master` for `wanted` slots. Run it on a current-thread runtime of
/// its own thread for [`DriverReport::cpu`] to be the driver's alone.
/// `running` is kept equal to the number of tasks the driver saw TASK_RUNNING, for the
/// benchmark to poll without disturbing it.
pub async fn run(
    master: &str,
    shape: TaskShape,
    wanted: usize,
    news: mpsc::UnboundedSender<DriverNews>,
    mut commands: mpsc::UnboundedReceiver<DriverCommand>,
    running: Arc<AtomicUsize>,
) -> Result<DriverReport, DriverError> {
    let ticks = crate::procfs::clock_ticks_per_second();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CALLS_IN_FLIGHT)
        .build()
        .map_err(|e| DriverError::Master {
            what: "HTTP client".into(),
            detail: e.to_string(),
        })?;
    let url = calls_url(master);
    let info = framework_info(&shape.service, &shape.role, &shape.principal);
    let response = client
        .post(&url)
        .header("Content-Type", PROTOBUF)
        .header("Accept", PROTOBUF)
        .body(subscribe_call(info).encode_to_vec())
        .send()
        .await
        .map_err(|e| DriverError::Master {
            what: format!("SUBSCRIBE to {url}"),
            detail: e.to_string(),
        })?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(DriverError::Master {
            what: format!("SUBSCRIBE to {url}"),
            detail: format!(
                "{} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            ),
        });
    }
    let stream_id = response
        .headers()
        .get("mesos-stream-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (events_tx, mut events) = mpsc::channel::<Result<scheduler::Event, DriverError>>(1024);
    tokio::spawn(read_events(response, events_tx));

    let (errors_tx, mut errors) = mpsc::unbounded_channel::<DriverError>();
    let in_flight = Arc::new(Semaphore::new(CALLS_IN_FLIGHT));
    let mut calls_sent = 0u64;
    let mut send = |call: scheduler::Call| {
        calls_sent += 1;
        let (client, url, stream_id) = (client.clone(), url.clone(), stream_id.clone());
        let (in_flight, errors) = (in_flight.clone(), errors_tx.clone());
        tokio::spawn(async move {
            let Ok(_permit) = in_flight.acquire_owned().await else {
                return;
            };
            let kind = call.r#type.unwrap_or_default();
            let result = client
                .post(&url)
                .header("Content-Type", PROTOBUF)
                .header("Mesos-Stream-Id", stream_id)
                .body(call.encode_to_vec())
                .send()
                .await;
            let problem = match result {
                Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => None,
                Ok(r) => Some(format!(
                    "{} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )),
                Err(e) => Some(e.to_string()),
            };
            if let Some(detail) = problem {
                let what = format!(
                    "call {:?}",
                    call::Type::try_from(kind).map_or("unknown", |t| t.as_str_name())
                );
                let _ = errors.send(DriverError::Master { what, detail });
            }
        });
    };

    let mut core: Option<DriverCore> = None;
    let mut grow_cpu = None;
    loop {
        tokio::select! {
            event = events.recv() => {
                let event = match event {
                    Some(Ok(event)) => event,
                    Some(Err(e)) => return Err(e),
                    None => return Err(DriverError::Stream("no more events".into())),
                };
                match event::Type::try_from(event.r#type.unwrap_or_default()) {
                    Ok(event::Type::Subscribed) => {
                        let id = event
                            .subscribed
                            .map(|s| s.framework_id.value)
                            .unwrap_or_default();
                        core = Some(DriverCore::new(shape.clone(), &id, wanted));
                        let _ = news.send(DriverNews::Subscribed(id));
                    }
                    Ok(event::Type::Offers) => {
                        let (Some(core), Some(offers)) = (core.as_mut(), event.offers) else {
                            continue;
                        };
                        for call in core.on_offers(&offers.offers) {
                            send(call);
                        }
                    }
                    Ok(event::Type::Update) => {
                        let (Some(core), Some(update)) = (core.as_mut(), event.update) else {
                            continue;
                        };
                        for call in core.on_update(&update.status) {
                            send(call);
                        }
                        running.store(core.running(), Ordering::Relaxed);
                        if let Some(failure) = core.failures().first() {
                            return Err(DriverError::TaskEnded(failure.clone()));
                        }
                        if core.phase() == Phase::Idle && core.running() == 1 && grow_cpu.is_none() {
                            send(core.suppress());
                            let _ = news.send(DriverNews::Ready);
                        }
                    }
                    Ok(event::Type::Error) => {
                        return Err(DriverError::Refused(
                            event.error.map(|e| e.message).unwrap_or_default(),
                        ));
                    }
                    _ => {}
                }
            }
            command = commands.recv() => match command {
                Some(DriverCommand::Grow) => {
                    let Some(core) = core.as_mut() else { continue };
                    grow_cpu = crate::procfs::this_thread_cpu(ticks).ok();
                    send(core.grow());
                }
                Some(DriverCommand::Stop) | None => {
                    let end = crate::procfs::this_thread_cpu(ticks).unwrap_or_default();
                    let core = core.as_ref();
                    return Ok(DriverReport {
                        launched: core.map_or(0, DriverCore::launched),
                        running: core.map_or(0, DriverCore::running),
                        cpu: grow_cpu.map_or(Duration::ZERO, |start| end.saturating_sub(start)),
                        calls: calls_sent,
                    });
                }
            },
            Some(error) = errors.recv() => return Err(error),
        }
    }
}

/// Decodes the subscription's RecordIO stream into events.
async fn read_events(
    response: reqwest::Response,
    events: mpsc::Sender<Result<scheduler::Event, DriverError>>,
) {
    let mut body = response.bytes_stream();
    let mut buf = BytesMut::new();
    let mut decoder = RecordIoDecoder::default();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(record)) => {
                let event = scheduler::Event::decode(record)
                    .map_err(|e| DriverError::Stream(format!("undecodable event: {e}")));
                let stop = event.is_err();
                if events.send(event).await.is_err() || stop {
                    return;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                let _ = events
                    .send(Err(DriverError::Stream(format!("bad RecordIO: {e}"))))
                    .await;
                return;
            }
        }
        match body.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(e)) => {
                let _ = events.send(Err(DriverError::Stream(e.to_string()))).await;
                return;
            }
            None => {
                let _ = events
                    .send(Err(DriverError::Stream("closed by the master".into())))
                    .await;
                return;
            }
        }
    }
}

/// Runs [`run`] on a thread of its own (current-thread runtime); the handle gives its result.
pub fn spawn(
    master: String,
    shape: TaskShape,
    wanted: usize,
    news: mpsc::UnboundedSender<DriverNews>,
    commands: mpsc::UnboundedReceiver<DriverCommand>,
    running: Arc<AtomicUsize>,
) -> oneshot::Receiver<Result<DriverReport, DriverError>> {
    let (done_tx, done) = oneshot::channel();
    std::thread::Builder::new()
        .name("bare-driver".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| DriverError::Master {
                    what: "runtime".into(),
                    detail: e.to_string(),
                })
                .and_then(|runtime| {
                    runtime.block_on(run(&master, shape, wanted, news, commands, running))
                });
            let _ = done_tx.send(result);
        })
        .expect("a thread for the bare driver");
    done
}

#[cfg(test)]
mod tests {
    use fastdata_proto::mesos_ext::new_status_uuid;
    use fastdata_proto::v1::OfferId;
    use fastdata_proto::validate::Validate as _;

    use super::*;

    fn shape() -> TaskShape {
        TaskShape {
            service: "bare".into(),
            role: "bare-role".into(),
            principal: "bare-principal".into(),
            executor_path: "/opt/fastdata-executor".into(),
            task: (0.5, 128.0),
            executor: (0.1, 64.0),
            volume_driver: "pxd".into(),
            grace: Duration::from_secs(3),
        }
    }

    fn offer(id: &str, agent: &str, cpus: f64, mem: f64) -> Offer {
        Offer {
            id: OfferId { value: id.into() },
            framework_id: FrameworkId { value: "fw".into() },
            agent_id: AgentId {
                value: agent.into(),
            },
            hostname: "localhost".into(),
            resources: vec![
                scalar("cpus", cpus, "bare-role", None),
                scalar("mem", mem, "bare-role", None),
            ],
            ..Default::default()
        }
    }

    fn kinds(calls: &[scheduler::Call]) -> Vec<call::Type> {
        calls
            .iter()
            .map(|c| call::Type::try_from(c.r#type.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn one_task_first_then_suppressed_then_one_per_agent() {
        let mut core = DriverCore::new(shape(), "fw", 3);
        let calls = core.on_offers(&[
            offer("o1", "a1", 2.0, 2048.0),
            offer("o2", "a2", 2.0, 2048.0),
        ]);
        assert_eq!(kinds(&calls), [call::Type::Accept, call::Type::Decline]);
        assert_eq!(core.phase(), Phase::Idle);
        assert_eq!(core.launched(), 1);
        for c in &calls {
            c.validate().expect("a valid call");
        }
        // Idle: everything is declined, long.
        let calls = core.on_offers(&[offer("o3", "a2", 2.0, 2048.0)]);
        assert_eq!(kinds(&calls), [call::Type::Decline]);
        let refuse = calls[0]
            .decline
            .as_ref()
            .unwrap()
            .filters
            .unwrap()
            .refuse_seconds;
        assert_eq!(refuse, Some(REFUSE_SECONDS));
        assert_eq!(kinds(&[core.suppress()]), [call::Type::Suppress]);

        let revive = core.grow();
        assert_eq!(revive.revive.unwrap().roles, ["bare-role"]);
        // a1 already has slot 0; a3 is too small; a2 and a4 get slots 1 and 2; a5 is surplus.
        let calls = core.on_offers(&[
            offer("o4", "a1", 1.4, 1856.0),
            offer("o5", "a2", 2.0, 2048.0),
            offer("o6", "a3", 0.5, 2048.0),
            offer("o7", "a4", 2.0, 2048.0),
            offer("o8", "a5", 2.0, 2048.0),
        ]);
        assert_eq!(
            kinds(&calls),
            [call::Type::Accept, call::Type::Accept, call::Type::Decline]
        );
        let declined: Vec<&str> = calls[2]
            .decline
            .as_ref()
            .unwrap()
            .offer_ids
            .iter()
            .map(|o| o.value.as_str())
            .collect();
        assert_eq!(declined, ["o4", "o6", "o8"]);
        assert_eq!(core.launched(), 3);
    }

    #[test]
    fn the_launch_reserves_and_runs_the_noop_executor_with_its_volume() {
        let mut core = DriverCore::new(shape(), "fw", 1);
        let calls = core.on_offers(&[offer("o1", "a1", 2.0, 2048.0)]);
        let accept = calls[0].accept.as_ref().unwrap();
        assert_eq!(accept.offer_ids[0].value, "o1");
        let [reserve, launch] = &accept.operations[..] else {
            panic!("RESERVE then LAUNCH: {accept:?}");
        };
        let reserved = &reserve.reserve.as_ref().unwrap().resources;
        let amounts: Vec<(String, f64)> = reserved
            .iter()
            .map(|r| (r.name.clone(), r.scalar.unwrap().value))
            .collect();
        assert_eq!(amounts, [("cpus".into(), 0.6), ("mem".into(), 192.0)]);
        assert_eq!(
            reserved[0].reservations[0].principal.as_deref(),
            Some("bare-principal")
        );
        let task = &launch.launch.as_ref().unwrap().task_infos[0];
        assert!(task.task_id.value.starts_with("bare__consumer-0__"));
        assert_eq!(task.agent_id.value, "a1");
        let spec = TaskSpec::from_json(task.data.as_deref().unwrap()).expect("a spec");
        assert_eq!(spec.workload, Workload::Noop);
        let executor = task.executor.as_ref().unwrap();
        let command = executor.command.as_ref().unwrap();
        assert_eq!(command.value.as_deref(), Some("/opt/fastdata-executor"));
        assert!(command.uris.is_empty(), "nothing fetched");
        let volume = &executor.container.as_ref().unwrap().volumes[0];
        let docker = volume
            .source
            .as_ref()
            .unwrap()
            .docker_volume
            .as_ref()
            .unwrap();
        assert_eq!(docker.name, "bare-consumer-0");
        assert_eq!(docker.driver.as_deref(), Some("pxd"));
        assert_eq!(volume.container_path, "spool");
        calls[0].validate().expect("a valid ACCEPT");
    }

    #[test]
    fn updates_with_a_uuid_are_acknowledged_and_counted() {
        let mut core = DriverCore::new(shape(), "fw", 2);
        let mut status = TaskStatus {
            task_id: TaskId { value: "t1".into() },
            state: TaskState::TaskRunning as i32,
            agent_id: Some(AgentId { value: "a1".into() }),
            uuid: Some(new_status_uuid()),
            ..Default::default()
        };
        let acks = core.on_update(&status);
        assert_eq!(kinds(&acks), [call::Type::Acknowledge]);
        acks[0].validate().expect("a valid ACKNOWLEDGE");
        assert_eq!(core.running(), 1);
        // A reconciliation answer has no uuid: counted, never acknowledged.
        status.uuid = None;
        assert!(core.on_update(&status).is_empty());
        assert_eq!(core.running(), 1);
        status.state = TaskState::TaskFailed as i32;
        status.message = Some("boom".into());
        core.on_update(&status);
        assert_eq!(core.running(), 0);
        assert_eq!(core.failures(), ["t1: TASK_FAILED boom"]);
    }
}
