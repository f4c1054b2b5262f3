//! The run loop: the I/O shell around [`super::core::Framework`] and the policy.
//!
//! [`run`] starts the APIs, connects to ZooKeeper and takes the scheduler lock (waiting while
//! another instance holds it), loads the framework id, thresholds, slots and decision log,
//! starts the lag monitor and the Mesos client, and then loops: every Mesos event, lag
//! observation, API request and 1 s tick goes into the core or the policy, and what comes
//! back is carried out (ZooKeeper writes first, then Mesos calls, in order, on a sender task
//! so that a slow call never stalls the loop). After each step a fresh [`StatusSnapshot`] is
//! published for the APIs.
//!
//! What it does not do: decide anything. Where to launch, what to kill and when to
//! reconcile is the core's; how many consumers is the policy's.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fastdata_proto::v1::scheduler;
use futures::StreamExt as _;
use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant, MissedTickBehavior};

use super::core::{CoreConfig, Effects, Framework, Now, Timings, Write};
use super::slots::{SlotName, SlotRecord};
use super::tasks::TaskTemplate;
use crate::api::{self, ApiConfig};
use crate::config::SchedulerConfig;
use crate::lag::{
    KafkaOffsetSampler, LagConfig, LagMonitor, LagObservation, LagTracker, MonitorConfig,
    ObservationReceiver, SamplerConfig,
};
use crate::mesos::{ClientConfig, MesosClient, MesosEvent, framework_info};
use crate::policy::{DecisionLog, PolicyState, ScalingConfig, ScalingInput, decide};
use crate::state::{StateError, StateStore};
use crate::status::{ApiRequest, HistoryPoint, Phase, PlanStatus, StatusSnapshot};

/// Why the scheduler stopped with an error (a graceful shutdown is `Ok`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The APIs could not start.
    #[error(transparent)]
    Api(#[from] api::ApiError),
    /// ZooKeeper failed in a way the scheduler cannot go on from.
    #[error(transparent)]
    State(#[from] StateError),
    /// Another instance took over, or the session ended: this one must stop acting at once.
    #[error(
        "lost the scheduler lock in ZooKeeper ({0}); stopping so that only one scheduler acts (Marathon restarts it)"
    )]
    LockLost(crate::state::LockLost),
}

/// Where the APIs listen, once they are up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    /// REST.
    pub rest: std::net::SocketAddr,
    /// gRPC.
    pub grpc: std::net::SocketAddr,
}

/// How long the history of the status page reaches back, and its resolution.
const HISTORY_SPAN: Duration = Duration::from_secs(3600);
const HISTORY_STEP: Duration = Duration::from_secs(5);
/// Decisions shown in the status (the full log is `/v1/decisions`).
const RECENT_DECISIONS: usize = 20;
/// The longest the published status lags the loop while Mesos events keep arriving.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(250);
/// ZooKeeper writes in flight at once.
const WRITES_IN_FLIGHT: usize = 64;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn now() -> Now {
    Now {
        at: Instant::now(),
        unix_ms: unix_ms(),
    }
}

/// Runs the scheduler until `shutdown` completes (or a fatal ZooKeeper error). `listening`
/// is told where the APIs are as soon as they are bound.
pub async fn run(
    config: SchedulerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    listening: Option<tokio::sync::oneshot::Sender<Listening>>,
) -> Result<(), RunError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = {
        let stop_rx = stop_rx.clone();
        move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        }
    };

    let service = config.framework.service_name.clone();
    let (status_tx, status_rx) = watch::channel(Arc::new(StatusSnapshot::starting(
        &service,
        config.scaling.clone(),
    )));
    let (api_tx, mut api_rx) = mpsc::channel::<ApiRequest>(16);
    let servers = api::serve(
        ApiConfig::new(config.api_addr, config.grpc_addr),
        status_rx,
        api_tx,
        stopped(),
    )
    .await?;
    tracing::info!(rest = %servers.rest_addr, grpc = %servers.grpc_addr, "APIs listening");
    if let Some(tell) = listening {
        let _ = tell.send(Listening {
            rest: servers.rest_addr,
            grpc: servers.grpc_addr,
        });
    }
    let publish_phase = |phase: Phase| {
        status_tx.send_modify(|s| {
            let mut next = (**s).clone();
            next.phase = phase;
            next.at_unix_ms = unix_ms();
            *s = Arc::new(next);
        });
    };

    // ZooKeeper: connect (retrying while it is not there) and take the lock.
    let store = loop {
        match StateStore::connect(&config.zk_connect, &service).await {
            Ok(store) => break store,
            Err(e) => {
                tracing::error!(error = %e, "ZooKeeper not available; retrying in 5 s");
                publish_phase(Phase::Starting {
                    last_error: Some(e.to_string()),
                });
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    () = stopped() => return Ok(()),
                }
            }
        }
    };
    let owner = format!(
        "{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        std::process::id()
    );
    publish_phase(Phase::Starting { last_error: None });
    let on_wait = |holder: &str| {
        tracing::warn!(holder, "another scheduler holds the lock; waiting");
        publish_phase(Phase::WaitingForLock);
    };
    let lock = tokio::select! {
        lock = store.acquire_lock(&owner, on_wait) => lock?,
        () = stopped() => return Ok(()),
    };
    tracing::info!(root = store.root(), "holding the scheduler lock");

    let framework_id = store.framework_id().await?;
    if config.uninstall && framework_id.is_none() {
        // Uninstall after the state was already deleted (a restart during uninstall): there
        // is nothing left; report completion as the SDK's skeleton scheduler does.
        store.delete_all().await?;
        status_tx.send_modify(|s| {
            let mut next = (**s).clone();
            next.phase = Phase::Uninstalled;
            next.plan = PlanStatus::Complete;
            next.plan_message = "uninstalled: nothing was left to clean up".into();
            *s = Arc::new(next);
        });
        stopped().await;
        lock.release().await;
        return Ok(());
    }
    let scaling = match store.scaling().await? {
        Some(stored) => {
            tracing::info!("using the scaling thresholds stored in ZooKeeper (set at runtime)");
            stored
        }
        None => {
            store.set_scaling(&config.scaling).await?;
            config.scaling.clone()
        }
    };
    let decisions = store.decisions().await?.unwrap_or_default();
    let mut records: Vec<SlotRecord> = Vec::new();
    for (name, record) in store.slots::<SlotRecord>().await? {
        if name.parse::<SlotName>().ok() == Some(record.name()) {
            records.push(record);
        } else {
            tracing::warn!(node = %name, "a slot record whose name does not match its content; ignored");
        }
    }
    tracing::info!(
        framework_id = framework_id.as_deref().unwrap_or("(new)"),
        slots = records.len(),
        "state loaded"
    );

    let template = TaskTemplate {
        service_name: service.clone(),
        tasks: config.tasks.clone(),
        pipeline: config.pipeline.clone(),
    };
    let timings = Timings {
        reconcile_interval: config.framework.reconcile_interval,
        ..Timings::default()
    };
    let mut core = Framework::new(
        CoreConfig {
            role: config.framework.role.clone(),
            principal: config.framework.principal.clone(),
            template,
            timings,
        },
        records,
        framework_id.clone(),
        rand::random(),
    );
    let resume = core.consumer_slots_wanted();
    let initial = if resume > 0 {
        resume
    } else {
        scaling.min_consumers
    };
    core.set_target(initial);
    if config.uninstall {
        tracing::warn!(
            "uninstall mode: killing every task, unreserving, then tearing the framework down"
        );
        core.start_uninstall();
    }

    let lag_rx = if config.uninstall {
        None
    } else {
        Some(start_lag_monitor(&config, stopped()))
    };

    let (client, mut events) = MesosClient::start(ClientConfig {
        masters: config.framework.masters.clone(),
        framework_info: framework_info(&config.framework, framework_id.as_deref()),
        framework_id: framework_id.clone(),
        auth: config.framework.auth.clone(),
        heartbeat_misses: config.framework.heartbeat_misses,
        backoff_min: Duration::from_millis(500),
        backoff_max: config.framework.subscribe_backoff_max,
        request_timeout: Duration::from_secs(30),
    });
    let calls = CallSender::start(client.clone());
    let (decision_log, decision_logs) = watch::channel(None);
    tokio::spawn(store_decisions(store.clone(), decision_logs));

    let mut state = Loop {
        config,
        store,
        core,
        scaling,
        policy: PolicyState::resume(initial),
        decisions,
        held_reason: None,
        history: VecDeque::new(),
        lag: None,
        master: None,
        last_error: None,
        fatal: None,
        uninstalled: false,
        scaling_changes: 0,
        calls,
        state_failure: None,
        decision_log,
    };
    let mut lag_rx = lag_rx;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut history_tick = tokio::time::interval(HISTORY_STEP);
    history_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut published_at = Instant::now();
    let mut events_open = true;
    let stop = stopped();
    tokio::pin!(stop);
    let result = {
        let lost = lock.lost();
        tokio::pin!(lost);
        loop {
            tokio::select! {
                () = &mut stop => break Ok(()),
                // Uninstalling deletes the lock node with the rest of the state.
                why = &mut lost, if !state.uninstalled => break Err(RunError::LockLost(why)),
                event = events.recv(), if events_open => match event {
                    Some(event) => state.on_mesos(event).await,
                    None => {
                        // A closed channel would be ready forever: stop polling it.
                        events_open = false;
                        // After our own TEARDOWN (uninstall) the client is meant to stop.
                        if state.fatal.is_none() && !state.uninstalled {
                            state.fatal = Some(("the Mesos client stopped".into(), "restart the scheduler".into()));
                        }
                    }
                },
                changed = changed(&mut lag_rx) => {
                    if let Some(observation) = changed {
                        state.on_observation(observation).await;
                    }
                }
                request = api_rx.recv() => {
                    if let Some(request) = request {
                        let reply = state.on_api(request).await;
                        // The answer goes out only once the snapshot shows the change, so a
                        // GET right after the PUT reads the new value.
                        status_tx.send_replace(Arc::new(state.snapshot()));
                        published_at = Instant::now();
                        reply.send();
                        continue;
                    }
                }
                _ = tick.tick() => state.on_tick().await,
                _ = history_tick.tick() => state.sample_history(),
            }
            // A snapshot holds every task and partition, so building one per event is
            // quadratic in a burst (1,000 launches bring ~3,000 events). One is built when the
            // burst is drained, and at least every SNAPSHOT_EVERY while it lasts.
            if events.is_empty() || published_at.elapsed() >= SNAPSHOT_EVERY {
                status_tx.send_replace(Arc::new(state.snapshot()));
                published_at = Instant::now();
            }
            if let Some(e) = state.state_failure.take() {
                break Err(RunError::State(e));
            }
        }
    };
    tracing::info!(
        "stopping: closing the Mesos subscription (tasks keep running until the failover timeout)"
    );
    client.shutdown().await;
    lock.release().await;
    if let Err(e) = servers.stopped().await {
        tracing::warn!(error = %e, "the APIs did not stop cleanly");
    }
    result
}

/// The next lag observation, or never when there is no monitor.
async fn changed(rx: &mut Option<ObservationReceiver>) -> Option<Arc<LagObservation>> {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            rx.borrow_and_update().clone()
        }
        None => std::future::pending().await,
    }
}

fn start_lag_monitor(
    config: &SchedulerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> ObservationReceiver {
    let pipeline = &config.pipeline;
    let mut sampler_config =
        SamplerConfig::new(&pipeline.kafka_brokers, &pipeline.topic, &pipeline.group);
    sampler_config.client_properties = pipeline
        .kafka_properties
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let monitor_config = MonitorConfig {
        tick: config.lag_tick,
        ..MonitorConfig::default()
    };
    let (publish, receiver) = watch::channel(None);
    let brokers = pipeline.kafka_brokers.clone();
    tokio::spawn(async move {
        // The Kafka client is created off the runtime's workers (librdkafka resolves and
        // connects in its constructor) and retried: Kafka may come up after the scheduler.
        let sampler = loop {
            let attempt = sampler_config.clone();
            match tokio::task::spawn_blocking(move || KafkaOffsetSampler::new(attempt)).await {
                Ok(Ok(sampler)) => break sampler,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, brokers = %brokers, "cannot create the lag monitor's Kafka client; retrying in 5 s")
                }
                Err(e) => {
                    tracing::error!(error = %e, "creating the Kafka client panicked; retrying in 5 s")
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        };
        let (monitor, mut inner) = LagMonitor::new(
            sampler,
            LagTracker::new(LagConfig::default()),
            monitor_config,
        );
        let forward = async move {
            while inner.changed().await.is_ok() {
                let latest = inner.borrow_and_update().clone();
                if publish.send(latest).is_err() {
                    return;
                }
            }
        };
        tokio::select! {
            () = monitor.run(shutdown) => {}
            () = forward => {}
        }
    });
    receiver
}

/// Sends calls in order on its own task, so that the loop never waits for Mesos.
#[derive(Debug, Clone)]
struct CallSender {
    queue: mpsc::UnboundedSender<scheduler::Call>,
}

impl CallSender {
    fn start(client: MesosClient) -> CallSender {
        let (queue, mut rx) = mpsc::unbounded_channel::<scheduler::Call>();
        tokio::spawn(async move {
            while let Some(call) = rx.recv().await {
                let kind = call
                    .r#type
                    .and_then(|t| scheduler::call::Type::try_from(t).ok());
                if let Err(e) = client.call(call).await {
                    match e {
                        crate::mesos::CallError::NotSubscribed => {
                            tracing::debug!(call = ?kind, "not subscribed; call dropped (the next reconciliation redoes it)")
                        }
                        e => tracing::warn!(call = ?kind, error = %e, "Mesos call failed"),
                    }
                }
            }
        });
        CallSender { queue }
    }

    fn send(&self, call: scheduler::Call) {
        // The sender task lives as long as the client; a closed queue means shutdown.
        let _ = self.queue.send(call);
    }
}

/// An API answer waiting for the snapshot that shows its effect.
enum Reply {
    /// `None` drops the sender: the API answers 503.
    Scaling(
        tokio::sync::oneshot::Sender<Result<ScalingConfig, crate::status::ScalingRejected>>,
        Option<Result<ScalingConfig, crate::status::ScalingRejected>>,
    ),
    /// The producer rate in force, or why not.
    ProducerRate(
        tokio::sync::oneshot::Sender<Result<f64, crate::status::ScalingRejected>>,
        Result<f64, crate::status::ScalingRejected>,
    ),
}

impl Reply {
    fn send(self) {
        match self {
            Reply::Scaling(sender, Some(answer)) => {
                // The API may have given up waiting (it answered 503 then).
                let _ = sender.send(answer);
            }
            Reply::Scaling(_, None) => {}
            Reply::ProducerRate(sender, answer) => {
                let _ = sender.send(answer);
            }
        }
    }
}

/// Everything the loop holds besides its channels.
struct Loop {
    config: SchedulerConfig,
    store: StateStore,
    core: Framework,
    scaling: ScalingConfig,
    policy: PolicyState,
    decisions: DecisionLog,
    held_reason: Option<String>,
    history: VecDeque<HistoryPoint>,
    lag: Option<Arc<LagObservation>>,
    master: Option<String>,
    last_error: Option<String>,
    fatal: Option<(String, String)>,
    uninstalled: bool,
    scaling_changes: u64,
    calls: CallSender,
    /// A ZooKeeper failure the scheduler must stop on (see `StateError::stops_the_scheduler`).
    state_failure: Option<StateError>,
    /// The decision log to store, picked up by [`store_decisions`].
    decision_log: watch::Sender<Option<DecisionLog>>,
}

/// Stores the decision log whenever it changes, one write at a time (two writes of one node
/// in flight would conflict), the latest log winning. Best effort: a failed write is logged
/// and the next change writes the whole log again.
async fn store_decisions(store: StateStore, mut logs: watch::Receiver<Option<DecisionLog>>) {
    while logs.changed().await.is_ok() {
        let log = logs.borrow_and_update().clone();
        if let Some(log) = log
            && let Err(e) = store.set_decisions(&log).await
        {
            tracing::warn!(error = %e, "could not store the decision log");
        }
    }
}

impl Loop {
    async fn on_mesos(&mut self, event: MesosEvent) {
        if self.fatal.is_some() {
            return;
        }
        let effects = match event {
            MesosEvent::Subscribed {
                framework_id,
                master,
                ..
            } => {
                tracing::info!(framework_id = %framework_id, master = %master, "subscribed");
                if self.core.framework_id() != Some(framework_id.as_str())
                    && let Err(e) = self.store.set_framework_id(&framework_id).await
                {
                    // Without the id stored, a restart would register a new framework and
                    // orphan every task: better to stop here, loudly.
                    self.fatal = Some((
                        format!("could not store the framework id in ZooKeeper: {e}"),
                        "check ZooKeeper (FASTDATA_ZK_CONNECT), then restart the scheduler".into(),
                    ));
                    return;
                }
                self.master = Some(master);
                self.last_error = None;
                self.core.on_subscribed(&framework_id, now())
            }
            MesosEvent::Event(event) => self.core.on_event(*event, now()),
            MesosEvent::Disconnected { reason } => {
                tracing::warn!(reason = %reason, "disconnected from Mesos; re-subscribing");
                self.core.on_disconnected();
                self.last_error = Some(reason);
                Effects::default()
            }
            MesosEvent::Fatal(fatal) => {
                // The client logged it (once); from here it is shown on /v1/health.
                self.core.on_disconnected();
                self.fatal = Some((fatal.message, fatal.remedy));
                Effects::default()
            }
        };
        self.carry_out(effects).await;
    }

    async fn on_tick(&mut self) {
        if self.fatal.is_some() || self.uninstalled {
            return;
        }
        let now = now();
        let effects = self.core.tick(now);
        self.carry_out(effects).await;
        if self.core.uninstall_done(now.at) {
            self.finish_uninstall().await;
        }
    }

    async fn finish_uninstall(&mut self) {
        tracing::info!(
            "uninstall: every task killed and every reservation released; tearing the framework down"
        );
        self.calls.send(scheduler::Call {
            r#type: Some(scheduler::call::Type::Teardown as i32),
            ..Default::default()
        });
        // Give the sender a moment to deliver TEARDOWN before the state goes.
        tokio::time::sleep(Duration::from_secs(1)).await;
        match self.store.delete_all().await {
            Ok(()) => {
                self.uninstalled = true;
                tracing::info!("uninstall complete: framework torn down, ZooKeeper state deleted");
            }
            Err(e) => {
                tracing::error!(error = %e, "uninstall: deleting the ZooKeeper state failed; retrying on the next tick")
            }
        }
    }

    async fn on_observation(&mut self, observation: Arc<LagObservation>) {
        self.lag = Some(Arc::clone(&observation));
        if !self.core.reconciled() || self.config.uninstall || self.fatal.is_some() {
            return;
        }
        let now = now();
        let (_, unhealthy, _) = self.core.sink_health(now.at);
        let input = ScalingInput::new(&observation, self.core.running_consumers(), unhealthy);
        let (decision, next) = decide(&input, &self.scaling, &self.policy, now.at);
        self.policy = next;
        if decision.is_change() {
            self.scaling_changes += 1;
            tracing::info!(from = decision.current, to = decision.target, reason = %decision.reason, "scaling decision");
        }
        self.held_reason =
            (!decision.is_change() && decision.guard.is_some()).then(|| decision.reason.clone());
        self.core.set_target(decision.target);
        if self
            .decisions
            .record(now.unix_ms, self.scaling.mode, input, decision)
        {
            self.decision_log.send_replace(Some(self.decisions.clone()));
        }
        let effects = self.core.tick(now);
        self.carry_out(effects).await;
    }

    /// Serves an API request; returns the answer, to be sent after the next snapshot.
    async fn on_api(&mut self, request: ApiRequest) -> Reply {
        match request {
            ApiRequest::SetScaling { patch, reply } => {
                let next = match patch.apply(&self.scaling) {
                    Ok(next) => next,
                    Err(rejected) => return Reply::Scaling(reply, Some(Err(rejected))),
                };
                match self.store.set_scaling(&next).await {
                    Ok(()) => {
                        tracing::info!(scaling = ?next, "scaling thresholds changed at runtime");
                        self.scaling = next.clone();
                        Reply::Scaling(reply, Some(Ok(next)))
                    }
                    Err(e) => {
                        // No answer is a 503: the change was not stored, so it is not applied
                        // either.
                        tracing::error!(error = %e, "could not store the new scaling thresholds; refused");
                        Reply::Scaling(reply, None)
                    }
                }
            }
            ApiRequest::SetProducerRate { rate, reply } => {
                let answer = crate::status::check_producer_rate(rate);
                if let Ok(rate) = answer {
                    tracing::info!(rate, "producer rate changed at runtime");
                    let effects = self.core.set_producer_rate(rate);
                    for call in effects.calls {
                        self.calls.send(call);
                    }
                }
                Reply::ProducerRate(reply, answer)
            }
        }
    }

    /// Writes first (all of them, a bounded number at once), then the calls; a launch whose
    /// record could not be written is not sent (its offer is declined instead).
    async fn carry_out(&mut self, mut effects: Effects) {
        if effects.is_empty() {
            return;
        }
        let store = self.store.clone();
        let failed: Vec<(SlotName, StateError)> = futures::stream::iter(effects.last_writes())
            .map(|write| {
                let store = store.clone();
                async move {
                    let (name, result) = match &write {
                        Write::PutSlot(name, record) => (
                            *name,
                            store.put_slot(&name.to_string(), record.as_ref()).await,
                        ),
                        Write::DeleteSlot(name) => {
                            (*name, store.delete_slot(&name.to_string()).await)
                        }
                    };
                    result.err().map(|e| {
                        tracing::error!(slot = %name, error = %e, "ZooKeeper write failed");
                        (name, e)
                    })
                }
            })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .filter_map(|failed| async move { failed })
            .collect()
            .await;
        if let Some((_, e)) = failed.iter().find(|(_, e)| e.stops_the_scheduler()) {
            // Another writer, or the session is over: acting on would risk a second
            // scheduler's launches and kills meeting ours. Stop; Marathon restarts us and the
            // restart re-reads the state under the lock.
            self.state_failure.get_or_insert_with(|| e.clone());
        }
        let failed: Vec<SlotName> = failed.into_iter().map(|(name, _)| name).collect();
        if !failed.is_empty() {
            self.core.writes_failed(&failed);
        }
        for call in effects.calls {
            match withhold(&call, &failed, &self.core) {
                Some(decline) => self.calls.send(decline),
                None => self.calls.send(call),
            }
        }
    }

    fn sample_history(&mut self) {
        let at_unix_ms = unix_ms();
        self.history.push_back(HistoryPoint {
            at_unix_ms,
            total_lag: self.lag.as_ref().map_or(0, |l| l.total_lag),
            running: self.core.running_consumers(),
            desired: self.core.target(),
        });
        let span = HISTORY_SPAN.as_millis() as u64;
        while self
            .history
            .front()
            .is_some_and(|p| at_unix_ms.saturating_sub(p.at_unix_ms) > span)
        {
            self.history.pop_front();
        }
    }

    fn phase(&self) -> Phase {
        if let Some((message, remedy)) = &self.fatal {
            return Phase::Fatal {
                message: message.clone(),
                remedy: remedy.clone(),
            };
        }
        if self.uninstalled {
            return Phase::Uninstalled;
        }
        if self.config.uninstall {
            return Phase::Uninstalling {
                remaining: self.core.plan().1,
            };
        }
        if self.master.is_none() || self.last_error.is_some() {
            return Phase::Subscribing {
                last_error: self.last_error.clone(),
            };
        }
        if !self.core.reconciled() {
            return Phase::Reconciling {
                pending: self.core.reconciling_pending(),
            };
        }
        Phase::Running
    }

    fn snapshot(&self) -> StatusSnapshot {
        let now = now();
        let (healthy, unhealthy, sink_error) = self.core.sink_health(now.at);
        let (mut plan, mut plan_message) = self.core.plan();
        let phase = self.phase();
        match &phase {
            Phase::Fatal { message, .. } => {
                plan = PlanStatus::Error;
                plan_message = message.clone();
            }
            Phase::Uninstalled => {
                plan = PlanStatus::Complete;
                plan_message = "uninstalled: framework torn down and its state deleted".into();
            }
            Phase::Uninstalling { .. } => plan = PlanStatus::InProgress,
            _ => {}
        }
        let mut counters = self.core.counters().clone();
        counters.scaling_changes = self.scaling_changes;
        let held_reason = self
            .held_reason
            .clone()
            .or_else(|| self.core.waiting_reason().map(str::to_owned));
        let skip = self.decisions.len().saturating_sub(RECENT_DECISIONS);
        let decisions = self.decisions.iter().skip(skip).cloned().collect();
        StatusSnapshot {
            service_name: self.config.framework.service_name.clone(),
            at_unix_ms: now.unix_ms,
            phase,
            framework_id: self.core.framework_id().map(str::to_owned),
            master: self.master.clone(),
            lag: self.lag.as_deref().cloned(),
            scaling: self.scaling.clone(),
            desired_consumers: self.core.target(),
            running_consumers: self.core.running_consumers(),
            sink_healthy_consumers: healthy,
            sink_unhealthy_consumers: unhealthy,
            sink_error,
            held_reason,
            decisions,
            tasks: self.core.task_views(now),
            offers: self.core.outcomes(),
            plan,
            plan_message,
            history: self.history.iter().copied().collect(),
            producer_tasks: self.config.tasks.producer_count,
            producer_rate: self.core.producer_rate(),
            counters,
        }
    }
}

/// An ACCEPT that launches a slot whose record failed to be written becomes a DECLINE of its
/// offers: launching an unrecorded task could launch it twice after a restart.
fn withhold(
    call: &scheduler::Call,
    failed: &[SlotName],
    core: &Framework,
) -> Option<scheduler::Call> {
    let accept = call.accept.as_ref()?;
    if failed.is_empty() {
        return None;
    }
    let launches_failed = accept
        .operations
        .iter()
        .filter_map(|o| o.launch.as_ref())
        .flat_map(|l| l.task_infos.iter())
        .any(|t| {
            failed.iter().any(|name| {
                core.slot(*name)
                    .is_none_or(|s| s.record.task_id.as_deref() == Some(t.task_id.value.as_str()))
            })
        });
    launches_failed.then(|| scheduler::Call {
        r#type: Some(scheduler::call::Type::Decline as i32),
        decline: Some(scheduler::call::Decline {
            offer_ids: accept.offer_ids.clone(),
            filters: None,
        }),
        ..Default::default()
    })
}
