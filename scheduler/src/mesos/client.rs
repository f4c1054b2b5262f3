//! The I/O shell around the [`Connection`] state machine: the connection task and
//! [`MesosClient`].
//!
//! Owns the sockets, the clock and the channels, and nothing that needs deciding: the task
//! feeds what happens (answers, events, stream ends, the watchdog's deadline, 403s seen by
//! calls) into [`Connection::step`] and carries out the actions it returns, publishing the
//! state on a `watch` channel after every step. Calls go on their own connection pool,
//! never on the subscription's connection (reference 1.1: the subscription response never
//! ends, so a call behind it would wait forever).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fastdata_proto::v1::{FrameworkId, scheduler};
use fastdata_proto::validate::Validate as _;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::auth::{AuthError, Authenticator};
use super::connection::{Action, Connection, ConnectionSetup, Input};
use super::fatal;
use super::request::{
    CallAnswer, ERROR_BODY_LIMIT, SubscribeFailure, call_request, classify_call_answer,
    classify_subscribe_answer, stream_id_of, subscribe_request,
};
use super::stream::{EventDecoder, StreamError};
use super::watchdog::Watchdog;
use super::{CallError, ClientConfig, ConnectionState, Fatal, MesosEvent};

/// Capacity of the event channel to the run loop. When it is full the connection task stops
/// reading the stream (TCP pushes back on the master) instead of buffering without bound.
pub const EVENT_QUEUE: usize = 1024;
/// Capacity of the channel from calls to the connection task (403s and TEARDOWNs; a full
/// channel drops a 403 report, which is harmless: the subscription is being replaced).
const CONTROL_QUEUE: usize = 64;

/// A handle on the connection to Mesos: cheap to clone, usable from any task.
#[derive(Debug, Clone)]
pub struct MesosClient {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: watch::Receiver<ConnectionState>,
    controls: mpsc::Sender<Input>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// `None` when the configuration was unusable (the client is Fatal from the start).
    calls: Option<CallPath>,
}

/// What calls need: their own HTTP client (separate from the subscription's connection;
/// also used for the IAM login) and the credentials.
#[derive(Debug)]
struct CallPath {
    http: reqwest::Client,
    auth: Arc<Authenticator>,
}

/// What the connection task uses to open streams.
struct StreamOpener {
    http: reqwest::Client,
    auth: Arc<Authenticator>,
    timeout: Duration,
}

/// Everything `start` prepares before spawning, or why it cannot start.
struct Prepared {
    machine: Connection,
    opener: StreamOpener,
    calls: CallPath,
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn check(config: &ClientConfig) -> Result<Vec<String>, String> {
    let masters: Vec<String> = config
        .masters
        .iter()
        .map(|m| m.trim().trim_end_matches('/').to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if masters.is_empty() {
        return Err("no Mesos master given; set --mesos-master (FASTDATA_MESOS_MASTERS)".into());
    }
    for master in &masters {
        let ok = master.split_once("://").is_some_and(|(scheme, rest)| {
            (scheme == "http" || scheme == "https") && !rest.is_empty() && !rest.contains('/')
        }) && master.parse::<http::Uri>().is_ok();
        if !ok {
            return Err(format!(
                "Mesos master {master:?} is not http(s)://host:port; fix --mesos-master (FASTDATA_MESOS_MASTERS)"
            ));
        }
    }
    if config.heartbeat_misses == 0 {
        return Err("FASTDATA_HEARTBEAT_MISSES must be at least 1".into());
    }
    if config.backoff_min.is_zero() {
        return Err("the minimum subscription backoff must be above zero".into());
    }
    if config.request_timeout.is_zero() {
        return Err("the Mesos request timeout must be above zero".into());
    }
    Ok(masters)
}

fn prepare(config: ClientConfig) -> Result<Prepared, Fatal> {
    let masters = check(&config).map_err(|e| fatal::bad_config(&e))?;
    let no_client =
        |e: reqwest::Error| fatal::bad_config(&format!("no HTTP client: {}", error_chain(&e)));
    // Calls and the IAM login: pooled connections, a total timeout, no redirect following
    // (a 307 on a call tells us the leader moved).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.request_timeout)
        .timeout(config.request_timeout)
        .tcp_nodelay(true)
        .build()
        .map_err(no_client)?;
    // The subscription's own client: no pooling (its connection is never reusable: the
    // response does not end), no redirect following (307s are ours to read), and a connect
    // timeout only (a total timeout would cut the stream).
    let subscribe_http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .connect_timeout(config.request_timeout)
        .tcp_nodelay(true)
        .build()
        .map_err(no_client)?;
    let auth = Authenticator::new(&config.auth, http.clone(), config.request_timeout)
        .map(Arc::new)
        .map_err(|e| fatal::bad_config(&e.to_string()))?;
    let machine = Connection::new(ConnectionSetup {
        masters,
        framework_info: config.framework_info,
        framework_id: config.framework_id,
        heartbeat_misses: config.heartbeat_misses,
        backoff_min: config.backoff_min,
        backoff_max: config.backoff_max,
        first_event_timeout: config.request_timeout,
        auth: auth.kind().clone(),
        seed: rand::random(),
    });
    Ok(Prepared {
        machine,
        opener: StreamOpener {
            http: subscribe_http,
            auth: Arc::clone(&auth),
            timeout: config.request_timeout,
        },
        calls: CallPath { http, auth },
    })
}

impl MesosClient {
    /// Spawns the connection task (on the current tokio runtime); returns a cloneable
    /// handle and the event receiver (bounded, [`EVENT_QUEUE`]). Subscribes at once, and
    /// again after every disconnection, with jittered exponential backoff
    /// (`backoff_min..backoff_max`, reset after a successful subscription). A configuration
    /// it cannot work with is reported as an immediate [`MesosEvent::Fatal`]. The task
    /// ends after a Fatal, after [`MesosClient::shutdown`], when the event receiver is
    /// dropped, or when every handle is dropped; the receiver then yields `None`.
    pub fn start(config: ClientConfig) -> (MesosClient, mpsc::Receiver<MesosEvent>) {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (state_tx, state_rx) = watch::channel(ConnectionState::Disconnected);
        let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (task, calls) = match prepare(config) {
            Ok(Prepared {
                machine,
                opener,
                calls,
            }) => {
                let task = ConnectionTask {
                    machine,
                    opener,
                    events: events_tx,
                    state: state_tx,
                    controls: control_rx,
                    shutdown: shutdown_rx,
                    stream: None,
                    watchdog: None,
                };
                (tokio::spawn(task.run()), Some(calls))
            }
            Err(fatal) => {
                tracing::error!(error = %fatal.message, remedy = %fatal.remedy, "the Mesos client cannot start");
                state_tx.send_replace(ConnectionState::Fatal(fatal.clone()));
                let task = tokio::spawn(async move {
                    let _ = events_tx.send(MesosEvent::Fatal(fatal)).await;
                    drop(state_tx);
                });
                (task, None)
            }
        };
        let client = MesosClient {
            shared: Arc::new(Shared {
                state: state_rx,
                controls: control_tx,
                shutdown: shutdown_tx,
                task: Mutex::new(Some(task)),
                calls,
            }),
        };
        (client, events_rx)
    }

    /// The connection state, for health reporting. Calls read it too: they go to the
    /// master and stream of the current subscription.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.clone()
    }

    /// Sends a call on a separate connection: fills `framework_id` and `Mesos-Stream-Id`,
    /// protobuf body, auth header. 202/200 → Ok. 403 (or 307) → the subscription is
    /// treated as lost (the client re-subscribes) and `Err(Rejected)`. Not subscribed →
    /// `Err(NotSubscribed)` without sending. A call Mesos would refuse as malformed →
    /// `Err(Invalid)` without sending. An accepted TEARDOWN stops the client (it will not
    /// re-subscribe a framework it removed itself).
    pub async fn call(&self, mut call: scheduler::Call) -> Result<(), CallError> {
        use scheduler::call::Type;
        let kind = call
            .r#type
            .and_then(|t| Type::try_from(t).ok())
            .unwrap_or(Type::Unknown);
        if kind == Type::Subscribe {
            return Err(CallError::Invalid(
                "SUBSCRIBE is the client's own call; it subscribes by itself".into(),
            ));
        }
        let (framework_id, stream_id, master) = match &*self.shared.state.borrow() {
            ConnectionState::Subscribed {
                framework_id,
                stream_id,
                master,
            } => (framework_id.clone(), stream_id.clone(), master.clone()),
            _ => return Err(CallError::NotSubscribed),
        };
        let Some(CallPath { http, auth }) = &self.shared.calls else {
            return Err(CallError::NotSubscribed);
        };
        call.framework_id = Some(FrameworkId {
            value: framework_id,
        });
        call.validate()
            .map_err(|e| CallError::Invalid(e.to_string()))?;
        let mut retried = false;
        loop {
            let authorization = auth
                .authorization()
                .await
                .map_err(|e| CallError::Transport(e.to_string()))?;
            let request = call_request(&master, &stream_id, &call, authorization.as_ref())
                .map_err(|e| CallError::Transport(e.to_string()))?;
            let request = reqwest::Request::try_from(request)
                .map_err(|e| CallError::Transport(error_chain(&e)))?;
            let response = http
                .execute(request)
                .await
                .map_err(|e| CallError::Transport(error_chain(&e)))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = read_text(response, ERROR_BODY_LIMIT).await;
            match classify_call_answer(&master, status, &headers, &body) {
                CallAnswer::Accepted => {
                    if kind == Type::Teardown
                        && self.shared.controls.try_send(Input::TornDown).is_err()
                    {
                        tracing::warn!(
                            "TEARDOWN accepted but the connection task did not hear of it"
                        );
                    }
                    return Ok(());
                }
                CallAnswer::Unauthorized { .. }
                    if !retried && auth.refresh_after_unauthorized() =>
                {
                    retried = true;
                }
                CallAnswer::Unauthorized { body } => {
                    return Err(CallError::Rejected { status, body });
                }
                CallAnswer::SubscriptionLost {
                    status,
                    body,
                    leader,
                } => {
                    tracing::warn!(call = kind.as_str_name(), status, body = %body, "Mesos no longer has our subscription");
                    let _ = self.shared.controls.try_send(Input::CallLost {
                        stream_id: stream_id.clone(),
                        reason: format!(
                            "a {} call was answered {status} {body}",
                            kind.as_str_name()
                        ),
                        leader,
                    });
                    return Err(CallError::Rejected { status, body });
                }
                CallAnswer::Failed { status, body } => {
                    return Err(CallError::Rejected { status, body });
                }
            }
        }
    }

    /// Closes the subscription stream and stops the task (used at shutdown and after
    /// TEARDOWN). Waits for the task to end; a second caller returns at once.
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        let task = self
            .shared
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// How many times the DC/OS IAM answered a login (0 without a service account).
    pub fn iam_logins(&self) -> u64 {
        self.shared.calls.as_ref().map_or(0, |c| c.auth.logins())
    }
}

/// Reads up to `limit` bytes of a (non-stream) body as text.
async fn read_text(mut response: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())])
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// An open subscription: the response body and the decoder over it.
struct EventStream {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    decoder: EventDecoder,
}

impl EventStream {
    fn new(response: reqwest::Response) -> EventStream {
        EventStream {
            body: response.bytes_stream().boxed(),
            decoder: EventDecoder::default(),
        }
    }

    /// The next event. Cancel-safe: bytes are only moved into the decoder between awaits.
    async fn next(&mut self) -> Result<scheduler::Event, StreamError> {
        loop {
            if let Some(event) = self.decoder.next_event()? {
                return Ok(event);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.decoder.push(&chunk),
                Some(Err(e)) => return Err(StreamError::Transport(error_chain(&e))),
                None => return self.decoder.finish()?.ok_or(StreamError::Closed),
            }
        }
    }
}

impl StreamOpener {
    /// POSTs SUBSCRIBE; on 200 returns the stream id and the open stream. A 401 with a
    /// service account logs in again and retries once (the token may have been revoked or
    /// the clock skewed).
    async fn open(
        &self,
        master: &str,
        call: &scheduler::Call,
    ) -> Result<(String, EventStream), SubscribeFailure> {
        let mut retried = false;
        loop {
            let authorization = self.auth.authorization().await.map_err(|e| match e {
                AuthError::Unavailable { .. } => SubscribeFailure::LoginUnavailable(e.to_string()),
                AuthError::Refused { status, body, .. } => {
                    SubscribeFailure::LoginRefused { status, body }
                }
                AuthError::BadKey { .. } => SubscribeFailure::LoginRefused {
                    status: 0,
                    body: e.to_string(),
                },
            })?;
            let request = subscribe_request(master, call, authorization.as_ref())
                .map_err(|e| SubscribeFailure::Protocol(e.to_string()))?;
            let request = reqwest::Request::try_from(request)
                .map_err(|e| SubscribeFailure::Protocol(error_chain(&e)))?;
            // The timeout covers connecting and the response head; the body is the stream.
            let response = tokio::time::timeout(self.timeout, self.http.execute(request))
                .await
                .map_err(|_| {
                    SubscribeFailure::Unreachable(format!("no answer within {:?}", self.timeout))
                })?
                .map_err(|e| SubscribeFailure::Unreachable(error_chain(&e)))?;
            let status = response.status().as_u16();
            if status == 200 {
                let stream_id = stream_id_of(response.headers())?;
                return Ok((stream_id, EventStream::new(response)));
            }
            let headers = response.headers().clone();
            let body = tokio::time::timeout(self.timeout, read_text(response, ERROR_BODY_LIMIT))
                .await
                .unwrap_or_default();
            let failure = classify_subscribe_answer(master, status, &headers, &body);
            if matches!(failure, SubscribeFailure::Unauthorized { .. })
                && !retried
                && self.auth.refresh_after_unauthorized()
            {
                retried = true;
                continue;
            }
            return Err(failure);
        }
    }
}

/// The connection task's state: the machine and the I/O it drives.
struct ConnectionTask {
    machine: Connection,
    opener: StreamOpener,
    events: mpsc::Sender<MesosEvent>,
    state: watch::Sender<ConnectionState>,
    controls: mpsc::Receiver<Input>,
    shutdown: watch::Receiver<bool>,
    stream: Option<EventStream>,
    watchdog: Option<Watchdog>,
}

/// Resolves when shutdown is requested or every client handle is gone.
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

async fn next_event(stream: &mut Option<EventStream>) -> Result<scheduler::Event, StreamError> {
    match stream {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

async fn deadline(watchdog: Option<Watchdog>) {
    match watchdog {
        Some(dog) => tokio::time::sleep_until(dog.deadline()).await,
        None => std::future::pending().await,
    }
}

impl ConnectionTask {
    async fn run(mut self) {
        let mut inputs = VecDeque::from([Input::Connect]);
        loop {
            while let Some(input) = inputs.pop_front() {
                let actions = self.machine.step(input);
                self.publish();
                for action in actions {
                    if let Some(next) = self.carry_out(action).await {
                        inputs.push_back(next);
                        // An interruption (shutdown) replaces what was left to do.
                        if matches!(inputs.back(), Some(Input::Shutdown)) {
                            break;
                        }
                    }
                }
            }
            if self.machine.is_finished() {
                return;
            }
            inputs.push_back(self.wait_for_input().await);
        }
    }

    fn publish(&self) {
        let state = self.machine.state();
        self.state.send_if_modified(|published| {
            if published == state {
                false
            } else {
                *published = state.clone();
                true
            }
        });
    }

    /// What happens next while the stream is open (or nothing is going on).
    async fn wait_for_input(&mut self) -> Input {
        let watchdog = self.watchdog;
        tokio::select! {
            biased;
            () = shutdown_requested(&mut self.shutdown) => Input::Shutdown,
            Some(control) = self.controls.recv() => control,
            // Bytes already here win over the deadline: they are events the master sent.
            next = next_event(&mut self.stream) => match next {
                Ok(event) => {
                    if let Some(dog) = self.watchdog.as_mut() {
                        dog.saw_event(Instant::now());
                    }
                    Input::Event(Box::new(event))
                }
                Err(e) => Input::StreamLost { reason: e.to_string() },
            },
            () = deadline(watchdog) => {
                let window = watchdog.map(|w| w.window()).unwrap_or_default();
                Input::StreamLost {
                    reason: format!("no event from the master for {window:?} (heartbeat watchdog)"),
                }
            }
        }
    }

    /// Carries out one action; returns the input it leads to, if any.
    async fn carry_out(&mut self, action: Action) -> Option<Input> {
        match action {
            Action::Subscribe { master, call } => {
                tracing::debug!(master = %master, framework_id = ?call.framework_id.as_ref().map(|f| &f.value), "subscribing");
                let opened = tokio::select! {
                    biased;
                    () = shutdown_requested(&mut self.shutdown) => return Some(Input::Shutdown),
                    opened = self.opener.open(&master, &call) => opened,
                };
                Some(match opened {
                    Ok((stream_id, stream)) => {
                        self.stream = Some(stream);
                        Input::StreamOpened { master, stream_id }
                    }
                    Err(failure) => {
                        tracing::debug!(master = %master, error = %failure, "SUBSCRIBE failed");
                        Input::SubscribeFailed { master, failure }
                    }
                })
            }
            Action::Wait(delay) => {
                if let ConnectionState::Subscribing {
                    attempt,
                    last_error,
                } = self.machine.state()
                {
                    tracing::info!(
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        last_error = last_error.as_deref().unwrap_or(""),
                        "re-subscribing after a backoff"
                    );
                }
                let sleep = tokio::time::sleep(delay);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        biased;
                        () = shutdown_requested(&mut self.shutdown) => return Some(Input::Shutdown),
                        Some(control) = self.controls.recv() => {
                            // A TEARDOWN accepted meanwhile must stop us before we
                            // re-subscribe; a 403 report is stale while not subscribed.
                            if control == Input::TornDown {
                                return Some(control);
                            }
                        }
                        () = &mut sleep => return Some(Input::Connect),
                    }
                }
            }
            Action::ArmWatchdog(window) => {
                self.watchdog = Some(Watchdog::armed(window, Instant::now()));
                None
            }
            Action::CloseStream => {
                self.stream = None;
                self.watchdog = None;
                None
            }
            Action::Emit(event) => {
                match &event {
                    MesosEvent::Subscribed {
                        framework_id,
                        master,
                        heartbeat_interval,
                    } => {
                        tracing::info!(framework_id = %framework_id, master = %master, heartbeat_s = heartbeat_interval.as_secs_f64(), "subscribed to Mesos");
                    }
                    MesosEvent::Disconnected { reason } => {
                        tracing::warn!(reason = %reason, "the Mesos subscription was lost; re-subscribing");
                    }
                    MesosEvent::Fatal(fatal) => {
                        tracing::error!(error = %fatal.message, remedy = %fatal.remedy, "Mesos refused the framework; the scheduler stops trying");
                    }
                    MesosEvent::Event(_) => {}
                }
                tokio::select! {
                    biased;
                    () = shutdown_requested(&mut self.shutdown) => Some(Input::Shutdown),
                    sent = self.events.send(event) => match sent {
                        Ok(()) => {
                            // Time spent waiting for a slow run loop is not the master's
                            // silence: the stream was not being read meanwhile.
                            if let Some(dog) = self.watchdog.as_mut() {
                                dog.saw_event(Instant::now());
                            }
                            None
                        }
                        // The run loop is gone: nobody to subscribe for.
                        Err(_) => Some(Input::Shutdown),
                    },
                }
            }
            Action::Stop => None,
        }
    }
}
