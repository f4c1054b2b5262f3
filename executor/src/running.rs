//! Running a task's workload in-process.
//!
//! Owns the runners that drive `fastdata-workloads` for one task each: they start the
//! workload from its [`Plan`], say when it really runs ([`Input::WorkloadReady`]: the consumer
//! has joined its group and reached Cassandra, the producer's topic exists and events go out,
//! the check and the noop at once), pass it a graceful stop, apply the scheduler's commands,
//! expose its numbers as a [`StatsReport`], and say how it ended ([`Input::WorkloadExited`]).
//! A cut-off aborts the workload's task; the state machine does not wait for it.
//!
//! The producer's pause: a rate of 0 stops the running producer (it flushes) and a rate above
//! 0 starts a new one, so a paused producer holds no Kafka client; its `seq` keeps increasing
//! across runs (it starts at the run's start time in microseconds).
//!
//! Must not: decide task states (that is [`crate::lifecycle`]), or create any client for a
//! noop task.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastdata_proto::task::{ExecutorCommand, StatsReport};
use fastdata_workloads::cassandra::TABLE;
use fastdata_workloads::cassandra_check::{self, CheckConfig, CheckRound};
use fastdata_workloads::consumer::{ConsumerHandle, SinkConsumer};
use fastdata_workloads::pacing::{MAX_RATE, TargetRate};
use fastdata_workloads::producer::{ProducerConfig, SensorProducer};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::lifecycle::Input;
use crate::plan::{Plan, WorkloadPlan};
use crate::report::{self, ProducerTotals, WorkloadOutcome};

/// Commands waiting for a workload (the scheduler sends one now and then).
const COMMAND_QUEUE: usize = 16;

/// A started workload.
#[derive(Debug)]
pub struct RunningWorkload {
    stop: Option<oneshot::Sender<()>>,
    abort: AbortHandle,
    commands: Option<mpsc::Sender<ExecutorCommand>>,
    stats: StatsSource,
    /// How often its stats go to the scheduler.
    pub stats_interval: Duration,
}

#[derive(Debug)]
enum StatsSource {
    /// Nothing to report (noop).
    Silent,
    /// The consumer's own live stats.
    Consumer(ConsumerHandle),
    /// Reports the runner keeps up to date.
    Published(watch::Receiver<StatsReport>),
}

impl RunningWorkload {
    /// Asks for a graceful stop (once).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Cuts the workload off: its task is aborted where it stands.
    pub fn abort(&self) {
        self.abort.abort();
    }

    /// Passes a scheduler command; dropped (with a warning) when the workload takes none or
    /// its queue is full.
    pub fn command(&self, command: ExecutorCommand) {
        match &self.commands {
            Some(tx) => {
                if tx.try_send(command).is_err() {
                    tracing::warn!("the workload is not taking commands right now; dropped one");
                }
            }
            None => tracing::info!(?command, "this workload takes no commands; ignored"),
        }
    }

    /// The workload's numbers now (task id and time are the caller's), if it reports any.
    pub fn stats(&self) -> Option<StatsReport> {
        match &self.stats {
            StatsSource::Silent => None,
            StatsSource::Consumer(handle) => Some(report::consumer_stats(&handle.stats())),
            StatsSource::Published(rx) => Some(rx.borrow().clone()),
        }
    }
}

/// Sends the workload's news to the state machine.
#[derive(Debug, Clone)]
struct Notifier {
    task_id: String,
    inputs: mpsc::Sender<Input>,
}

impl Notifier {
    async fn ready(&self, detail: String) {
        let _ = self
            .inputs
            .send(Input::WorkloadReady {
                task_id: self.task_id.clone(),
                detail,
            })
            .await;
    }
}

/// Starts the workload of `plan` for `task_id`; news goes to `inputs`.
pub fn start(task_id: String, plan: Plan, inputs: mpsc::Sender<Input>) -> RunningWorkload {
    let notify = Notifier {
        task_id: task_id.clone(),
        inputs: inputs.clone(),
    };
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    // Completes on stop() and also if the handle is dropped: a lost handle stops gracefully.
    let stop = async move {
        let _ = stop_rx.await;
    };
    let stats_interval = plan.stats_interval;
    let (future, stats, commands): (BoxedRun, StatsSource, _) = match plan.workload {
        WorkloadPlan::Noop => (
            Box::pin(async move {
                notify
                    .ready("holding its slot (noop workload)".into())
                    .await;
                stop.await;
                WorkloadOutcome::Stopped("the noop workload stopped".into())
            }),
            StatsSource::Silent,
            None,
        ),
        WorkloadPlan::Consumer(config) => {
            let group = config.group_id.clone();
            let detail = format!(
                "joined consumer group {} on topic {} and reached Cassandra (keyspace {})",
                config.group_id, config.topic, config.cassandra.keyspace
            );
            match SinkConsumer::new(config) {
                Err(e) => (
                    failed(format!("the consumer cannot start: {e}")),
                    StatsSource::Silent,
                    None,
                ),
                Ok(consumer) => {
                    let handle = consumer.handle();
                    let watcher = handle.clone();
                    (
                        Box::pin(async move {
                            let ready = tokio::spawn(async move {
                                if watcher.ready().await.is_ok() {
                                    notify.ready(detail).await;
                                }
                            });
                            let result = consumer.run(stop).await;
                            ready.abort();
                            match result {
                                Ok(report) => WorkloadOutcome::Stopped(report::consumer_stopped(
                                    &report, &group,
                                )),
                                Err(e) => {
                                    WorkloadOutcome::Failed(format!("the consumer failed: {e}"))
                                }
                            }
                        }),
                        StatsSource::Consumer(handle),
                        None,
                    )
                }
            }
        }
        WorkloadPlan::Producer { config, rate } => {
            let (stats_tx, stats_rx) =
                watch::channel(report::producer_stats(ProducerTotals::default(), None));
            let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
            (
                Box::pin(run_producer(
                    config,
                    rate,
                    notify,
                    stop,
                    commands_rx,
                    stats_tx,
                )),
                StatsSource::Published(stats_rx),
                Some(commands_tx),
            )
        }
        WorkloadPlan::CassandraCheck { config, attempts } => {
            let (stats_tx, stats_rx) = watch::channel(report::check_stats(None, 0));
            (
                Box::pin(run_check(config, attempts, notify, stop, stats_tx)),
                StatsSource::Published(stats_rx),
                None,
            )
        }
    };
    RunningWorkload {
        stop: Some(stop_tx),
        abort: supervise(task_id, inputs, future),
        commands,
        stats,
        stats_interval,
    }
}

type BoxedRun = std::pin::Pin<Box<dyn Future<Output = WorkloadOutcome> + Send>>;

fn failed(reason: String) -> BoxedRun {
    Box::pin(async move { WorkloadOutcome::Failed(reason) })
}

/// Runs the workload on its own task and reports how it ended (not when it was aborted).
fn supervise(task_id: String, inputs: mpsc::Sender<Input>, run: BoxedRun) -> AbortHandle {
    let span = tracing::info_span!("workload", task_id = %task_id);
    let inner = tokio::spawn(tracing::Instrument::instrument(run, span));
    let abort = inner.abort_handle();
    tokio::spawn(async move {
        let outcome = match inner.await {
            Ok(outcome) => outcome,
            // Cut off: the state machine already reported the task.
            Err(e) if e.is_cancelled() => return,
            Err(e) => WorkloadOutcome::Failed(format!("the workload crashed: {e}")),
        };
        let _ = inputs
            .send(Input::WorkloadExited { task_id, outcome })
            .await;
    });
    abort
}

/// A valid new rate from a command, or why not.
fn commanded_rate(command: &ExecutorCommand) -> Option<f64> {
    let rate = command.set_rate?;
    if rate.is_finite() && (0.0..=MAX_RATE).contains(&rate) {
        Some(rate)
    } else {
        tracing::warn!(
            rate,
            "set_rate must be 0 (pause) up to {MAX_RATE} events/s; ignored"
        );
        None
    }
}

async fn run_producer(
    base: ProducerConfig,
    mut rate: f64,
    notify: Notifier,
    stop: impl Future<Output = ()>,
    mut commands: mpsc::Receiver<ExecutorCommand>,
    stats: watch::Sender<StatsReport>,
) -> WorkloadOutcome {
    tokio::pin!(stop);
    let mut totals = ProducerTotals::default();
    let mut announced = false;
    loop {
        if rate == 0.0 {
            stats.send_replace(report::producer_stats(totals, None));
            if !announced {
                announced = true;
                notify
                    .ready(format!("producer paused (rate 0) for topic {}", base.topic))
                    .await;
            }
            tracing::info!("producer paused");
            loop {
                tokio::select! {
                    () = &mut stop => return WorkloadOutcome::Stopped(report::producer_stopped(totals)),
                    Some(command) = commands.recv() => {
                        if let Some(new) = commanded_rate(&command) {
                            rate = new;
                            break;
                        }
                    }
                }
            }
            continue;
        }
        let mut config = base.clone();
        config.rate = TargetRate::PerSecond(rate);
        let producer = match SensorProducer::new(config) {
            Ok(p) => p,
            Err(e) => return WorkloadOutcome::Failed(format!("the producer cannot start: {e}")),
        };
        let handle = producer.handle();
        let (halt_tx, halt_rx) = oneshot::channel::<()>();
        let mut run = tokio::spawn(producer.run(async move {
            let _ = halt_rx.await;
        }));
        let mut ready_seen = false;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut halt = Some(halt_tx);
        let mut stopping_for_good = false;
        let outcome = loop {
            tokio::select! {
                ready = handle.ready(), if !ready_seen => {
                    ready_seen = true;
                    if ready && !announced {
                        announced = true;
                        notify.ready(format!(
                            "producing {rate} events/s to topic {}", base.topic
                        )).await;
                    }
                }
                () = &mut stop, if !stopping_for_good => {
                    stopping_for_good = true;
                    if let Some(h) = halt.take() { let _ = h.send(()); }
                }
                Some(command) = commands.recv(), if halt.is_some() => {
                    match commanded_rate(&command) {
                        Some(0.0) => {
                            rate = 0.0;
                            if let Some(h) = halt.take() { let _ = h.send(()); }
                        }
                        Some(new) => match handle.set_rate(TargetRate::PerSecond(new)) {
                            Ok(()) => rate = new,
                            Err(e) => tracing::warn!(error = %e, "rate not changed"),
                        },
                        None => {}
                    }
                }
                _ = tick.tick() => {
                    stats.send_replace(report::producer_stats(totals, Some(&handle.stats())));
                }
                result = &mut run => break result,
            }
        };
        match outcome {
            Ok(Ok(report)) => totals.add(&report),
            Ok(Err(e)) => return WorkloadOutcome::Failed(format!("the producer failed: {e}")),
            Err(e) => return WorkloadOutcome::Failed(format!("the producer crashed: {e}")),
        }
        stats.send_replace(report::producer_stats(totals, None));
        if stopping_for_good {
            return WorkloadOutcome::Stopped(report::producer_stopped(totals));
        }
        if halt.is_some() {
            // Ended without being asked: it only does that when Kafka refused it for good.
            return WorkloadOutcome::Stopped(report::producer_stopped(totals));
        }
        // Paused by a command: loop to wait for a rate above 0.
    }
}

#[derive(Debug, Default)]
struct CheckProgress {
    failures: u32,
    last_error: Option<String>,
    /// The passed round: whether the written reading was read back, and how long it took.
    passed: Option<(bool, Duration)>,
}

async fn run_check(
    config: CheckConfig,
    attempts: u32,
    notify: Notifier,
    stop: impl Future<Output = ()>,
    stats: watch::Sender<StatsReport>,
) -> WorkloadOutcome {
    let keyspace = config.cassandra.keyspace.clone();
    let sensor = config.sensor_id.clone();
    notify
        .ready(format!(
            "checking Cassandra at {} (keyspace {keyspace}), up to {attempts} rounds",
            config.cassandra.contact_points.join(",")
        ))
        .await;
    let progress = Arc::new(Mutex::new(CheckProgress::default()));
    let give_up = Arc::new(Notify::new());
    let on_round = {
        let (progress, give_up) = (progress.clone(), give_up.clone());
        move |round: &CheckRound| {
            let Ok(mut p) = progress.lock() else { return };
            match round {
                CheckRound::Ok {
                    found_written,
                    took,
                    ..
                } => {
                    p.passed = Some((*found_written, *took));
                    p.last_error = None;
                    stats.send_replace(report::check_stats(None, 1));
                }
                CheckRound::Failed { error } => {
                    p.failures += 1;
                    p.last_error = Some(error.clone());
                    stats.send_replace(report::check_stats(Some(error), 0));
                    if p.failures >= attempts {
                        give_up.notify_one();
                    }
                }
            }
        }
    };
    let asked_to_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let shutdown = {
        let asked = asked_to_stop.clone();
        async move {
            tokio::select! {
                () = stop => asked.store(true, std::sync::atomic::Ordering::Relaxed),
                () = give_up.notified() => {}
            }
        }
    };
    if let Err(e) = cassandra_check::run(config, on_round, shutdown).await {
        return WorkloadOutcome::Failed(format!("the Cassandra check cannot run: {e}"));
    }
    let p = progress
        .lock()
        .map(|p| (p.failures, p.last_error.clone(), p.passed));
    let Ok((failures, last_error, passed)) = p else {
        return WorkloadOutcome::Failed("the Cassandra check lost its progress".into());
    };
    match passed {
        Some((true, took)) => WorkloadOutcome::Finished(format!(
            "Cassandra check passed: wrote a reading of {sensor} into {keyspace}.{TABLE} and read it back in {} ms",
            took.as_millis()
        )),
        Some((false, _)) => WorkloadOutcome::Failed(format!(
            "Cassandra check failed: wrote a reading of {sensor} into {keyspace}.{TABLE} but did not read it back"
        )),
        None if asked_to_stop.load(std::sync::atomic::Ordering::Relaxed) => {
            WorkloadOutcome::Stopped(format!(
                "the Cassandra check stopped after {failures} failed rounds"
            ))
        }
        None => WorkloadOutcome::Failed(format!(
            "Cassandra check failed {failures} times; last error: {}",
            last_error.unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commanded_rates_are_checked() {
        let with = |r: f64| ExecutorCommand {
            version: 1,
            set_rate: Some(r),
        };
        assert_eq!(commanded_rate(&with(0.0)), Some(0.0));
        assert_eq!(commanded_rate(&with(250.0)), Some(250.0));
        assert_eq!(commanded_rate(&with(-1.0)), None);
        assert_eq!(commanded_rate(&with(f64::NAN)), None);
        assert_eq!(commanded_rate(&with(MAX_RATE * 2.0)), None);
        assert_eq!(commanded_rate(&ExecutorCommand::default()), None);
    }

    /// The noop workload: ready at once, stopped when asked, no stats, no commands.
    #[tokio::test]
    async fn noop_runs_until_stopped() {
        let (tx, mut rx) = mpsc::channel(8);
        let plan = Plan {
            kind: fastdata_proto::task::WorkloadKind::Noop,
            workload: WorkloadPlan::Noop,
            stats_interval: Duration::from_secs(5),
            grace: None,
        };
        let mut running = start("t1".into(), plan, tx);
        assert!(running.stats().is_none());
        let ready = rx.recv().await.unwrap();
        assert!(matches!(ready, Input::WorkloadReady { ref task_id, .. } if task_id == "t1"));
        running.stop();
        let Input::WorkloadExited { task_id, outcome } = rx.recv().await.unwrap() else {
            panic!("expected the exit")
        };
        assert_eq!(task_id, "t1");
        assert!(matches!(outcome, WorkloadOutcome::Stopped(_)));
    }

    /// A consumer whose spool directory cannot be made fails with that reason.
    #[tokio::test]
    async fn a_consumer_that_cannot_open_its_spool_fails_with_the_reason() {
        let file = std::env::temp_dir().join(format!("fastdata-exec-test-{}", std::process::id()));
        std::fs::write(&file, b"not a directory").unwrap();
        let config = fastdata_workloads::consumer::ConsumerConfig::new(
            "127.0.0.1:9",
            vec!["127.0.0.1:9".into()],
            file.join("spool"),
        );
        let plan = Plan {
            kind: fastdata_proto::task::WorkloadKind::Consumer,
            workload: WorkloadPlan::Consumer(config),
            stats_interval: Duration::from_secs(5),
            grace: None,
        };
        let (tx, mut rx) = mpsc::channel(8);
        let _running = start("t1".into(), plan, tx);
        let Input::WorkloadExited { outcome, .. } = rx.recv().await.unwrap() else {
            panic!("expected the exit")
        };
        let WorkloadOutcome::Failed(reason) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(reason.contains("dead-letter store"), "{reason}");
        let _ = std::fs::remove_file(file);
    }

    /// A cut-off workload reports nothing (the state machine already did).
    #[tokio::test]
    async fn an_aborted_workload_reports_nothing() {
        let (tx, mut rx) = mpsc::channel(8);
        let plan = Plan {
            kind: fastdata_proto::task::WorkloadKind::Noop,
            workload: WorkloadPlan::Noop,
            stats_interval: Duration::from_secs(5),
            grace: None,
        };
        let running = start("t1".into(), plan, tx);
        assert!(matches!(rx.recv().await, Some(Input::WorkloadReady { .. })));
        running.abort();
        drop(running);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .map_or(true, |input| input.is_none()),
            "no WorkloadExited after an abort"
        );
    }
}
