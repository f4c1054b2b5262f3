//! The executor's run loop: the thin I/O shell around [`Lifecycle`].
//!
//! Owns the event loop that feeds the state machine (stream events, call answers, workload
//! news, signals, its timers) and carries out its [`Action`]s with [`AgentClient`] and
//! [`crate::running`]. It also sends each workload's stats to the scheduler every
//! `stats_interval_ms` as a MESSAGE call while subscribed (messages are unreliable in Mesos:
//! one that cannot be sent is dropped, and a task's next report waits until its previous one
//! was answered, so reports never pile up).
//!
//! Must not: make decisions (that is [`Lifecycle`]); block the runtime.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fastdata_proto::validate::Validate as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::agent::{AgentClient, ClientError};
use crate::env::ExecutorEnv;
use crate::lifecycle::{Action, CallAnswer, Clock, ExitReason, Input, Lifecycle, LifecycleConfig};
use crate::logging::TaskLabel;
use crate::running::{self, RunningWorkload};

/// Inputs waiting for the state machine (events, answers, workload news).
const INPUT_QUEUE: usize = 256;

/// Why the executor could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The HTTP client could not be made.
    #[error(transparent)]
    Client(#[from] ClientError),
}

fn clock() -> Clock {
    Clock {
        now: Instant::now(),
        unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

struct Workload {
    running: RunningWorkload,
    next_stats: Instant,
    last_report: Option<JoinHandle<()>>,
}

/// Runs the executor until it exits; `signals` yields once per SIGTERM/SIGINT.
pub async fn run(
    env: ExecutorEnv,
    mut signals: mpsc::Receiver<()>,
    label: TaskLabel,
) -> Result<ExitReason, RunError> {
    tracing::info!(
        agent = %env.agent_endpoint,
        framework_id = %env.framework_id,
        agent_id = env.agent_id.as_deref().unwrap_or("-"),
        recovery = ?env.recovery,
        shutdown_grace = ?env.shutdown_grace_period,
        sandbox = %env.sandbox.display(),
        "fastdata-executor starting"
    );
    let client = AgentClient::new(env.executor_api_url(), env.authentication_token.clone())?;
    let config = LifecycleConfig {
        ids: crate::calls::CallIds {
            framework_id: env.framework_id.clone(),
            executor_id: env.executor_id.clone(),
        },
        sandbox: env.sandbox.clone(),
        shutdown_grace: env.shutdown_grace_period,
        recovery: env.recovery,
        env: Arc::new(|name: &str| std::env::var(name).ok()),
        seed: rand::random(),
    };
    let mut lifecycle = Lifecycle::new(config, clock());
    let (inputs_tx, mut inputs) = mpsc::channel::<Input>(INPUT_QUEUE);
    let mut shell = Shell {
        client,
        inputs: inputs_tx,
        stream: None,
        workloads: HashMap::new(),
        label,
        signals_open: true,
    };
    let mut actions = lifecycle.step(Input::Start, clock());
    loop {
        if let Some(reason) = shell.carry_out(actions) {
            shell.stop_stream();
            shell.label.set_tasks(&lifecycle.task_ids());
            shell.label.release();
            return Ok(reason);
        }
        shell.label.set_tasks(&lifecycle.task_ids());
        let wake = [
            lifecycle.next_deadline(),
            shell.next_stats(),
            shell.label.hold_until().map(Instant::from_std),
        ]
        .into_iter()
        .flatten()
        .min();
        let sleep = async move {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let input = tokio::select! {
            Some(input) = inputs.recv() => Some(input),
            signal = signals.recv(), if shell.signals_open => match signal {
                Some(()) => Some(Input::Terminate),
                None => { shell.signals_open = false; None }
            },
            () = sleep => Some(Input::Tick),
        };
        shell.label.release_if_due();
        if let Some(Input::WorkloadExited { task_id, .. }) = &input {
            shell.workloads.remove(task_id);
        }
        shell.send_stats(&lifecycle);
        actions = match input {
            Some(input) => lifecycle.step(input, clock()),
            None => Vec::new(),
        };
    }
}

struct Shell {
    client: AgentClient,
    inputs: mpsc::Sender<Input>,
    stream: Option<JoinHandle<()>>,
    workloads: HashMap<String, Workload>,
    label: TaskLabel,
    signals_open: bool,
}

impl Shell {
    /// Carries out actions; `Some` when the process must exit.
    fn carry_out(&mut self, actions: Vec<Action>) -> Option<ExitReason> {
        for action in actions {
            match action {
                Action::Subscribe { conn, call } => {
                    if let Err(e) = call.validate() {
                        tracing::error!(error = %e, "bug: our SUBSCRIBE is not valid");
                    }
                    self.stop_stream();
                    self.stream = Some(self.client.subscribe(conn, &call, self.inputs.clone()));
                }
                Action::CloseStream => self.stop_stream(),
                Action::Update { conn, uuid, call } => {
                    let client = self.client.clone();
                    let inputs = self.inputs.clone();
                    let invalid = call.validate().err();
                    tokio::spawn(async move {
                        let answer = match invalid {
                            // A bug of ours: treated as the agent's 400 would be.
                            Some(e) => CallAnswer::Refused {
                                status: 400,
                                body: format!("not sent, invalid: {e}"),
                            },
                            None => client.call(&call).await,
                        };
                        let _ = inputs
                            .send(Input::UpdateAnswered { conn, uuid, answer })
                            .await;
                    });
                }
                Action::StartWorkload { task_id, plan } => {
                    let running = running::start(task_id.clone(), *plan, self.inputs.clone());
                    let next_stats = Instant::now() + running.stats_interval;
                    self.workloads.insert(
                        task_id,
                        Workload {
                            running,
                            next_stats,
                            last_report: None,
                        },
                    );
                }
                Action::StopWorkload { task_id } => {
                    if let Some(w) = self.workloads.get_mut(&task_id) {
                        w.running.stop();
                    }
                }
                Action::AbortWorkload { task_id } => {
                    if let Some(w) = self.workloads.remove(&task_id) {
                        w.running.abort();
                    }
                }
                Action::Command { task_id, command } => {
                    if let Some(w) = self.workloads.get(&task_id) {
                        w.running.command(command);
                    }
                }
                Action::Exit(reason) => {
                    match &reason {
                        ExitReason::Done => tracing::info!("exiting"),
                        ExitReason::AgentLost(why) => {
                            tracing::error!(reason = %why, "exiting: lost the agent")
                        }
                        ExitReason::Interrupted => tracing::warn!("exiting at once"),
                    }
                    return Some(reason);
                }
            }
        }
        None
    }

    fn stop_stream(&mut self) {
        if let Some(stream) = self.stream.take() {
            stream.abort();
        }
    }

    fn next_stats(&self) -> Option<Instant> {
        self.workloads.values().map(|w| w.next_stats).min()
    }

    /// Sends the stats reports that are due, while subscribed.
    fn send_stats(&mut self, lifecycle: &Lifecycle) {
        let now = Instant::now();
        for (task_id, w) in &mut self.workloads {
            if w.next_stats > now {
                continue;
            }
            w.next_stats = now + w.running.stats_interval;
            if !lifecycle.is_subscribed()
                || w.last_report.as_ref().is_some_and(|h| !h.is_finished())
            {
                continue;
            }
            let Some(mut report) = w.running.stats() else {
                continue;
            };
            report.task_id.clone_from(task_id);
            report.at_unix_ms = unix_ms();
            let call = lifecycle.ids().message(report.to_json());
            let client = self.client.clone();
            w.last_report = Some(tokio::spawn(async move {
                match client.call(&call).await {
                    CallAnswer::Accepted => {}
                    other => tracing::debug!(answer = ?other, "stats report not delivered"),
                }
            }));
        }
    }
}
