//! Helpers for the Mesos client's tests over real HTTP against devcluster: a test
//! framework configuration, waits on the client's events and state, and [`Proxy`], a TCP
//! proxy that sits between the client and devcluster to record every request, freeze
//! streams (stop forwarding without closing: a network partition) and inject bytes into
//! event streams.
//!
//! devcluster is the only Mesos stand-in; the proxy forwards its bytes unchanged unless a
//! test asks otherwise.

#![allow(dead_code, clippy::missing_panics_doc)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastdata_devcluster::{ClusterConfig, DevCluster};
use fastdata_proto::v1::scheduler;
use fastdata_scheduler::config::{FrameworkConfig, MesosAuth};
use fastdata_scheduler::mesos::{
    ClientConfig, ConnectionState, MesosClient, MesosEvent, framework_info,
};
use prost::Message as _;
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// How long any single wait may take before the test fails (a loaded 2-core machine).
pub const WAIT: Duration = Duration::from_secs(30);

pub const PRINCIPAL: &str = "fastdata-principal";
pub const ROLE: &str = "fastdata-role";

/// The framework the tests subscribe as.
pub fn framework_config(name: &str) -> FrameworkConfig {
    FrameworkConfig {
        framework_name: name.into(),
        service_name: name.into(),
        role: ROLE.into(),
        principal: PRINCIPAL.into(),
        user: "nobody".into(),
        failover_timeout: Duration::from_secs(7 * 86_400),
        webui_url: None,
        masters: Vec::new(),
        auth: MesosAuth::None,
        heartbeat_misses: 3,
        subscribe_backoff_max: Duration::from_secs(1),
        reconcile_interval: Duration::from_secs(900),
    }
}

/// Test timings: backoff 100 ms .. 1 s, 3 missed heartbeats, 5 s requests.
pub fn client_config(masters: Vec<String>, framework_id: Option<String>) -> ClientConfig {
    let framework = framework_config("fastdata-test");
    ClientConfig {
        masters,
        framework_info: framework_info(&framework, framework_id.as_deref()),
        framework_id,
        auth: MesosAuth::None,
        heartbeat_misses: 3,
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
    }
}

/// A fast devcluster (1 s heartbeats) with `agents` agents of 4 cpus and 4 GB.
pub async fn cluster(agents: usize, tweak: impl FnOnce(&mut ClusterConfig)) -> DevCluster {
    let mut config = ClusterConfig::with_agents(agents, 4.0, 4096.0).fast();
    tweak(&mut config);
    DevCluster::start(config).await.expect("devcluster starts")
}

/// The frameworks in devcluster's state document.
pub fn frameworks(cluster: &DevCluster) -> Vec<Json> {
    cluster.state()["frameworks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The client's events, with everything seen kept for later assertions.
pub struct Events {
    rx: mpsc::Receiver<MesosEvent>,
    pub seen: Vec<String>,
}

impl Events {
    pub fn new(rx: mpsc::Receiver<MesosEvent>) -> Events {
        Events {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next event that `want` accepts, skipping (and noting) others. Panics after
    /// [`WAIT`] or when the channel ends first.
    pub async fn next_matching<T>(
        &mut self,
        what: &str,
        mut want: impl FnMut(&MesosEvent) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}; saw {:?}", self.seen))
                .unwrap_or_else(|| {
                    panic!("the event channel ended before {what}; saw {:?}", self.seen)
                });
            self.seen.push(describe(&event));
            if let Some(found) = want(&event) {
                return found;
            }
        }
    }

    /// The next Subscribed: (framework id, master).
    pub async fn subscribed(&mut self) -> (String, String) {
        self.next_matching("Subscribed", |e| match e {
            MesosEvent::Subscribed {
                framework_id,
                master,
                ..
            } => Some((framework_id.clone(), master.clone())),
            MesosEvent::Fatal(f) => panic!("fatal instead of Subscribed: {f:?}"),
            _ => None,
        })
        .await
    }

    /// The next Disconnected reason.
    pub async fn disconnected(&mut self) -> String {
        self.next_matching("Disconnected", |e| match e {
            MesosEvent::Disconnected { reason } => Some(reason.clone()),
            MesosEvent::Fatal(f) => panic!("fatal instead of Disconnected: {f:?}"),
            _ => None,
        })
        .await
    }

    /// The next Fatal.
    pub async fn fatal(&mut self) -> fastdata_scheduler::mesos::Fatal {
        self.next_matching("Fatal", |e| match e {
            MesosEvent::Fatal(f) => Some(f.clone()),
            _ => None,
        })
        .await
    }

    /// The next OFFERS event's offers.
    pub async fn offers(&mut self) -> Vec<fastdata_proto::v1::Offer> {
        self.next_matching("OFFERS", |e| match e {
            MesosEvent::Event(ev) if ev.r#type == Some(scheduler::event::Type::Offers as i32) => {
                ev.offers.as_ref().map(|o| o.offers.clone())
            }
            MesosEvent::Fatal(f) => panic!("fatal instead of offers: {f:?}"),
            _ => None,
        })
        .await
    }

    /// Whatever arrives within `wait` (nothing is also an answer); `None` once the channel
    /// has ended.
    pub async fn within(&mut self, wait: Duration) -> Option<Option<String>> {
        match tokio::time::timeout(wait, self.rx.recv()).await {
            Err(_) => Some(None),
            Ok(None) => None,
            Ok(Some(event)) => {
                let text = describe(&event);
                self.seen.push(text.clone());
                Some(Some(text))
            }
        }
    }

    /// Waits for the channel to end (the client stopped), collecting what comes first.
    pub async fn until_closed(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.rx.recv()).await {
                Err(_) => panic!("the event channel did not end within {WAIT:?}; got {rest:?}"),
                Ok(None) => return rest,
                Ok(Some(event)) => {
                    let text = describe(&event);
                    self.seen.push(text.clone());
                    rest.push(text);
                }
            }
        }
    }
}

pub fn describe(event: &MesosEvent) -> String {
    match event {
        MesosEvent::Subscribed {
            framework_id,
            master,
            ..
        } => format!("Subscribed({framework_id} at {master})"),
        MesosEvent::Event(ev) => format!(
            "Event({})",
            ev.r#type
                .and_then(|t| scheduler::event::Type::try_from(t).ok())
                .map_or("?", |t| t.as_str_name())
        ),
        MesosEvent::Disconnected { reason } => format!("Disconnected({reason})"),
        MesosEvent::Fatal(f) => format!("Fatal({})", f.message),
    }
}

/// Polls the client's state until `want` accepts it.
pub async fn wait_state<T>(
    client: &MesosClient,
    what: &str,
    mut want: impl FnMut(&ConnectionState) -> Option<T>,
) -> T {
    let mut rx = client.state();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = want(&rx.borrow_and_update()) {
            return found;
        }
        let last = rx.borrow().clone();
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .unwrap_or_else(|_| panic!("state never became {what} within {WAIT:?}; last {last:?}"))
            .expect("the state channel is open");
    }
}

/// The stream id of the current subscription.
pub fn stream_id(client: &MesosClient) -> Option<String> {
    match &*client.state().borrow() {
        ConnectionState::Subscribed { stream_id, .. } => Some(stream_id.clone()),
        _ => None,
    }
}

/// Polls `check` until it returns `Some` (for devcluster's state, which has no channel).
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A DECLINE of these offers.
pub fn decline(offers: &[fastdata_proto::v1::Offer]) -> scheduler::Call {
    scheduler::Call {
        r#type: Some(scheduler::call::Type::Decline as i32),
        decline: Some(scheduler::call::Decline {
            offer_ids: offers.iter().map(|o| o.id.clone()).collect(),
            filters: Some(fastdata_proto::v1::Filters {
                refuse_seconds: Some(0.0),
            }),
        }),
        ..Default::default()
    }
}

/// A REVIVE of every role.
pub fn revive() -> scheduler::Call {
    scheduler::Call {
        r#type: Some(scheduler::call::Type::Revive as i32),
        ..Default::default()
    }
}

// ---- the proxy ----

/// One HTTP request as the proxy forwarded it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Which accepted connection carried it (0, 1, ...).
    pub conn: usize,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as a scheduler Call, if it is one.
    pub fn call(&self) -> Option<scheduler::Call> {
        scheduler::Call::decode(self.body.as_slice()).ok()
    }

    pub fn call_type(&self) -> Option<scheduler::call::Type> {
        self.call()?
            .r#type
            .and_then(|t| scheduler::call::Type::try_from(t).ok())
    }
}

struct ConnControl {
    frozen: AtomicBool,
    /// The server side is in the middle of a chunked response (an event stream).
    streaming: AtomicBool,
    closed: AtomicBool,
    inject: Mutex<Vec<Vec<u8>>>,
    wake: Notify,
}

struct ProxyShared {
    upstream: SocketAddr,
    requests: Mutex<Vec<Recorded>>,
    conns: Mutex<Vec<Arc<ConnControl>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    accepted: AtomicUsize,
}

/// A TCP proxy to one upstream address; see the module docs.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for task in self.shared.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(ProxyShared {
            upstream,
            requests: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let n = accept_shared.accepted.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(accept_shared.upstream).await else {
                    continue; // the client sees the connection close, as with a dead master
                };
                let control = Arc::new(ConnControl {
                    frozen: AtomicBool::new(false),
                    streaming: AtomicBool::new(false),
                    closed: AtomicBool::new(false),
                    inject: Mutex::new(Vec::new()),
                    wake: Notify::new(),
                });
                accept_shared
                    .conns
                    .lock()
                    .unwrap()
                    .push(Arc::clone(&control));
                let conn_shared = Arc::clone(&accept_shared);
                let task = tokio::spawn(async move {
                    serve(n, client, server, control, conn_shared).await;
                });
                accept_shared.tasks.lock().unwrap().push(task);
            }
        });
        shared.tasks.lock().unwrap().push(accept);
        Proxy { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Every request forwarded so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The SUBSCRIBE requests forwarded so far.
    pub fn subscribes(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.call_type() == Some(scheduler::call::Type::Subscribe))
            .collect()
    }

    /// Open event streams stop forwarding in both directions, without closing: to the
    /// client the master has gone silent (a network partition). New connections pass.
    pub fn freeze_streams(&self) -> usize {
        let mut frozen = 0;
        for c in self.shared.conns.lock().unwrap().iter() {
            if c.streaming.load(Ordering::SeqCst) && !c.closed.load(Ordering::SeqCst) {
                c.frozen.store(true, Ordering::SeqCst);
                c.wake.notify_one();
                frozen += 1;
            }
        }
        frozen
    }

    /// Sends `payload` to the client of every open event stream as one extra HTTP chunk,
    /// at the next chunk boundary (the HTTP framing stays valid; what is inside is up to
    /// the test). Returns how many streams will get it.
    pub fn inject_chunk(&self, payload: &[u8]) -> usize {
        let mut n = 0;
        for c in self.shared.conns.lock().unwrap().iter() {
            if c.streaming.load(Ordering::SeqCst) && !c.closed.load(Ordering::SeqCst) {
                c.inject.lock().unwrap().push(payload.to_vec());
                c.wake.notify_one();
                n += 1;
            }
        }
        n
    }
}

async fn serve(
    n: usize,
    client: TcpStream,
    server: TcpStream,
    control: Arc<ConnControl>,
    shared: Arc<ProxyShared>,
) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = upstream_pump(n, client_read, server_write, &control, &shared) => {}
        () = downstream_pump(server_read, client_write, &control) => {}
    }
    control.closed.store(true, Ordering::SeqCst);
}

async fn hold_if_frozen(control: &ConnControl) {
    if control.frozen.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
}

/// Client → server, parsing requests on the way to record them.
async fn upstream_pump(
    n: usize,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    control: &ConnControl,
    shared: &ProxyShared,
) {
    let mut parser = RequestParser::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                // A partition does not pass on the client's close either.
                hold_if_frozen(control).await;
                return;
            }
            Ok(read) => read,
        };
        hold_if_frozen(control).await;
        for (method, path, headers, body) in parser.feed(&buf[..read]) {
            shared.requests.lock().unwrap().push(Recorded {
                conn: n,
                method,
                path,
                headers,
                body,
            });
        }
        if to.write_all(&buf[..read]).await.is_err() {
            return;
        }
    }
}

/// Server → client, tracking chunked framing to know event streams and chunk boundaries.
async fn downstream_pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    control: &ConnControl,
) {
    let mut tracker = ChunkTracker::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if tracker.at_boundary() {
            let pending: Vec<Vec<u8>> = std::mem::take(&mut *control.inject.lock().unwrap());
            for payload in pending {
                let mut chunk = format!("{:x}\r\n", payload.len()).into_bytes();
                chunk.extend_from_slice(&payload);
                chunk.extend_from_slice(b"\r\n");
                if to.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
        let read = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    hold_if_frozen(control).await;
                    return;
                }
                Ok(read) => read,
            },
            () = control.wake.notified() => {
                hold_if_frozen(control).await;
                continue;
            }
        };
        hold_if_frozen(control).await;
        tracker.feed(&buf[..read]);
        control
            .streaming
            .store(tracker.in_chunked_response(), Ordering::SeqCst);
        if to.write_all(&buf[..read]).await.is_err() {
            return;
        }
    }
}

/// Minimal HTTP/1.1 request framing (Content-Length bodies, as our client sends).
#[derive(Default)]
struct RequestParser {
    buf: Vec<u8>,
    broken: bool,
}

type Parsed = (String, String, Vec<(String, String)>, Vec<u8>);

impl RequestParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<Parsed> {
        let mut out = Vec::new();
        if self.broken {
            return out;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                return out;
            };
            let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut request_line = lines.next().unwrap_or_default().split(' ');
            let method = request_line.next().unwrap_or_default().to_owned();
            let path = request_line.next().unwrap_or_default().to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            if headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
            {
                self.broken = true;
                return out;
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if self.buf.len() < end + 4 + len {
                return out;
            }
            let body = self.buf[end + 4..end + 4 + len].to_vec();
            self.buf.drain(..end + 4 + len);
            out.push((method, path, headers, body));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where the server → client bytes are in HTTP/1.1 response framing.
#[derive(Debug)]
enum Phase {
    /// Reading a response head.
    Head(Vec<u8>),
    /// Reading a chunk-size line (empty: at a chunk boundary).
    Size(Vec<u8>),
    /// Inside a chunk: bytes left, CRLF included.
    Data(usize),
    /// A response that is not chunked, or after the last chunk: not tracked further.
    Untracked,
}

impl Default for Phase {
    fn default() -> Self {
        Phase::Head(Vec::new())
    }
}

#[derive(Default)]
struct ChunkTracker {
    phase: Phase,
}

impl ChunkTracker {
    fn at_boundary(&self) -> bool {
        matches!(&self.phase, Phase::Size(line) if line.is_empty())
    }

    fn in_chunked_response(&self) -> bool {
        matches!(self.phase, Phase::Size(_) | Phase::Data(_))
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.phase {
                Phase::Head(head) => {
                    head.extend_from_slice(bytes);
                    bytes = &[];
                    if let Some(end) = find(head, b"\r\n\r\n") {
                        let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
                        let rest = head[end + 4..].to_vec();
                        self.phase = if text.contains("transfer-encoding: chunked") {
                            Phase::Size(Vec::new())
                        } else {
                            Phase::Untracked
                        };
                        self.feed(&rest);
                    }
                }
                Phase::Size(line) => {
                    let take = bytes.iter().position(|&b| b == b'\n').map(|p| p + 1);
                    match take {
                        None => {
                            line.extend_from_slice(bytes);
                            bytes = &[];
                        }
                        Some(p) => {
                            line.extend_from_slice(&bytes[..p]);
                            bytes = &bytes[p..];
                            let text = String::from_utf8_lossy(line);
                            let size = text.trim().split(';').next().unwrap_or_default();
                            self.phase = match usize::from_str_radix(size, 16) {
                                Ok(0) | Err(_) => Phase::Untracked,
                                Ok(n) => Phase::Data(n + 2),
                            };
                        }
                    }
                }
                Phase::Data(left) => {
                    let take = (*left).min(bytes.len());
                    *left -= take;
                    bytes = &bytes[take..];
                    if *left == 0 {
                        self.phase = Phase::Size(Vec::new());
                    }
                }
                Phase::Untracked => return,
            }
        }
    }
}
