//! The conformance suite's plain HTTP client: requests as raw bytes and headers, event
//! streams decoded with the proto crate's RecordIO decoder, and the recorded transcripts of
//! a real Mesos 1.12 master and agent (`proto/tests/data/mesos-transcripts/`).
//!
//! Nothing here uses fastdata's scheduler or executor code.

#![allow(dead_code, clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use bytes::BytesMut;
use fastdata_devcluster::{ClusterConfig, DevCluster};
use fastdata_proto::recordio::RecordIoDecoder;
use fastdata_proto::v1::{executor, scheduler};
use futures::StreamExt as _;
use prost::Message as _;
use serde_json::Value as Json;

pub const PROTOBUF: &str = "application/x-protobuf";
pub const JSON: &str = "application/json";

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A fast cluster with `n` default agents (4 cpus, 4096 mem, 10000 disk, ports
/// 31000-32000, as the recorded agent).
pub fn fast_config(n: usize) -> ClusterConfig {
    let mut config = ClusterConfig::default().fast();
    config.agents = (0..n)
        .map(|_| fastdata_devcluster::AgentConfig::default())
        .collect();
    config
}

pub async fn start(config: ClusterConfig) -> DevCluster {
    DevCluster::start(config).await.expect("devcluster starts")
}

/// A client that never follows redirects (a 307 must be seen, reference 2.2).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A complete (non-streaming) answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// POSTs raw bytes with exactly these headers.
pub async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    request(reqwest::Method::POST, url, headers, body).await
}

pub async fn request(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut req = client().request(method, url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("answer in time")
        .expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.expect("body");
    Answer {
        status,
        headers,
        body,
    }
}

/// An open event stream.
pub struct Stream {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub content_type: String,
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: BytesMut,
    decoder: RecordIoDecoder,
    pub ended: bool,
}

impl Stream {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn stream_id(&self) -> String {
        self.header("mesos-stream-id")
            .expect("Mesos-Stream-Id")
            .to_owned()
    }

    /// The next record's payload, or `None` when the server ended the stream.
    pub async fn next_record(&mut self) -> Option<bytes::Bytes> {
        loop {
            if let Some(record) = self.decoder.decode(&mut self.buf).expect("valid RecordIO") {
                return Some(record);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout(WAIT, self.body.next()).await {
                Err(_) => panic!("no event within {WAIT:?}"),
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                Ok(Some(Err(_))) | Ok(None) => {
                    self.ended = true;
                    assert!(
                        self.decoder
                            .decode_eof(&mut self.buf)
                            .expect("no truncated record")
                            .is_none()
                    );
                }
            }
        }
    }

    /// The next scheduler event (decoded by the stream's content type).
    pub async fn next_event(&mut self) -> Option<scheduler::Event> {
        let record = self.next_record().await?;
        Some(if self.content_type == JSON {
            fastdata_proto::json::from_json(&record).expect("JSON event")
        } else {
            scheduler::Event::decode(record).expect("protobuf event")
        })
    }

    /// The next executor event.
    pub async fn next_executor_event(&mut self) -> Option<executor::Event> {
        let record = self.next_record().await?;
        Some(if self.content_type == JSON {
            fastdata_proto::json::from_json(&record).expect("JSON event")
        } else {
            executor::Event::decode(record).expect("protobuf event")
        })
    }

    /// The next scheduler event that is not a HEARTBEAT (nor OFFERS/RESCIND when
    /// `skip_offers`).
    pub async fn next_event_skipping(&mut self, skip_offers: bool) -> Option<scheduler::Event> {
        loop {
            let ev = self.next_event().await?;
            let kind = ev.r#type.unwrap_or(0);
            let heartbeat = kind == scheduler::event::Type::Heartbeat as i32;
            let offers = kind == scheduler::event::Type::Offers as i32
                || kind == scheduler::event::Type::Rescind as i32;
            if heartbeat || (skip_offers && offers) {
                continue;
            }
            return Some(ev);
        }
    }

    /// Waits for an event of this type, skipping others.
    pub async fn wait_for(&mut self, kind: scheduler::event::Type) -> scheduler::Event {
        tokio::time::timeout(WAIT, async {
            loop {
                let ev = self.next_event().await.expect("stream open");
                if ev.r#type == Some(kind as i32) {
                    return ev;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {kind:?} within {WAIT:?}"))
    }

    /// Waits for the next UPDATE, skipping other events.
    pub async fn next_update(&mut self) -> fastdata_proto::v1::TaskStatus {
        self.wait_for(scheduler::event::Type::Update)
            .await
            .update
            .expect("update")
            .status
    }

    /// Waits until no event but heartbeats arrives for `quiet`; returns what did arrive.
    pub async fn collect_for(&mut self, quiet: Duration) -> Vec<scheduler::Event> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                return out;
            }
            match tokio::time::timeout(remaining, self.next_event()).await {
                Ok(Some(ev)) => {
                    if ev.r#type != Some(scheduler::event::Type::Heartbeat as i32) {
                        out.push(ev);
                    }
                }
                Ok(None) | Err(_) => return out,
            }
        }
    }

    /// True when the server ends the stream within `within`.
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, async {
            while self.next_record().await.is_some() {}
        })
        .await
        .is_ok()
    }
}

/// POSTs a request whose answer is expected to be a stream.
pub async fn open_stream(
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Stream, Answer> {
    let mut req = client().post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("answer in time")
        .expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    if status != 200 {
        let body = resp.text().await.unwrap_or_default();
        return Err(Answer {
            status,
            headers,
            body,
        });
    }
    Ok(stream_of(resp))
}

/// The event stream of a 200 answer.
pub fn stream_of(resp: reqwest::Response) -> Stream {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Stream {
        status,
        headers,
        content_type,
        body: resp.bytes_stream().boxed(),
        buf: BytesMut::new(),
        decoder: RecordIoDecoder::default(),
        ended: false,
    }
}

/// A scheduler for tests: a subscription stream plus call helpers, speaking protobuf.
pub struct Scheduler {
    pub url: String,
    pub stream: Stream,
    pub framework_id: String,
    pub stream_id: String,
    /// Offers received and not rescinded (tests remove the ones they use).
    pub outstanding: Vec<fastdata_proto::v1::Offer>,
    /// Every OFFERS event, in order.
    pub offer_events: Vec<scheduler::Event>,
    /// Events read while looking for another one, delivered first by `next_event`.
    pub pending: std::collections::VecDeque<scheduler::Event>,
}

/// The FrameworkInfo of the recordings: user root, role `fastdata-role`, principal
/// `fastdata-principal`, failover_timeout 3600, MULTI_ROLE + RESERVATION_REFINEMENT +
/// PARTITION_AWARE + TASK_KILLING_STATE.
pub fn framework_info() -> fastdata_proto::v1::FrameworkInfo {
    use fastdata_proto::v1::framework_info::{Capability, capability::Type};
    fastdata_proto::v1::FrameworkInfo {
        user: "root".into(),
        name: "devcluster-conformance".into(),
        failover_timeout: Some(3600.0),
        principal: Some("fastdata-principal".into()),
        capabilities: [
            Type::MultiRole,
            Type::ReservationRefinement,
            Type::PartitionAware,
            Type::TaskKillingState,
        ]
        .into_iter()
        .map(|t| Capability {
            r#type: Some(t as i32),
        })
        .collect(),
        roles: vec!["fastdata-role".into()],
        ..Default::default()
    }
}

pub fn subscribe_call(info: fastdata_proto::v1::FrameworkInfo) -> scheduler::Call {
    scheduler::Call {
        framework_id: info.id.clone(),
        r#type: Some(scheduler::call::Type::Subscribe as i32),
        subscribe: Some(scheduler::call::Subscribe {
            framework_info: info,
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn proto_headers() -> Vec<(&'static str, &'static str)> {
    vec![("Content-Type", PROTOBUF), ("Accept", PROTOBUF)]
}

impl Scheduler {
    /// Subscribes with this FrameworkInfo and reads SUBSCRIBED.
    pub async fn subscribe(master_url: &str, info: fastdata_proto::v1::FrameworkInfo) -> Scheduler {
        let url = format!("{master_url}/api/v1/scheduler");
        let body = subscribe_call(info).encode_to_vec();
        let mut stream = open_stream(&url, &proto_headers(), body)
            .await
            .unwrap_or_else(|a| panic!("SUBSCRIBE refused: {} {}", a.status, a.body));
        let stream_id = stream.stream_id();
        let first = stream.next_event().await.expect("SUBSCRIBED");
        let subscribed = first
            .subscribed
            .clone()
            .unwrap_or_else(|| panic!("first event {first:?}"));
        Scheduler {
            url,
            stream,
            framework_id: subscribed.framework_id.value,
            stream_id,
            outstanding: Vec::new(),
            offer_events: Vec::new(),
            pending: std::collections::VecDeque::new(),
        }
    }

    pub fn framework_id(&self) -> Option<fastdata_proto::v1::FrameworkId> {
        Some(fastdata_proto::v1::FrameworkId {
            value: self.framework_id.clone(),
        })
    }

    /// Sends a call with this framework's id and stream id.
    pub async fn call(&self, mut call: scheduler::Call) -> Answer {
        call.framework_id = self.framework_id();
        let mut headers = proto_headers();
        headers.push(("Mesos-Stream-Id", &self.stream_id));
        post(&self.url, &headers, call.encode_to_vec()).await
    }

    /// The next event that is neither HEARTBEAT nor OFFERS/RESCIND; offers are kept in
    /// `outstanding`. Panics after [`WAIT`] without one.
    pub async fn next_event(&mut self) -> Option<scheduler::Event> {
        if let Some(ev) = self.pending.pop_front() {
            return Some(ev);
        }
        tokio::time::timeout(WAIT, self.read_event())
            .await
            .unwrap_or_else(|_| panic!("no event but heartbeats and offers within {WAIT:?}"))
    }

    async fn read_event(&mut self) -> Option<scheduler::Event> {
        loop {
            let ev = self.stream.next_event().await?;
            match ev
                .r#type
                .and_then(|t| scheduler::event::Type::try_from(t).ok())
            {
                Some(scheduler::event::Type::Heartbeat) => {}
                Some(scheduler::event::Type::Offers) => {
                    self.outstanding
                        .extend(ev.offers.clone().expect("offers").offers);
                    self.offer_events.push(ev);
                }
                Some(scheduler::event::Type::Rescind) => {
                    let id = ev.rescind.expect("rescind").offer_id;
                    self.outstanding.retain(|o| o.id != id);
                }
                _ => return Some(ev),
            }
        }
    }

    /// Waits for the next OFFERS event and returns its offers (also kept in `outstanding`).
    pub async fn offers(&mut self) -> Vec<fastdata_proto::v1::Offer> {
        tokio::time::timeout(WAIT, self.read_offers())
            .await
            .unwrap_or_else(|_| panic!("no offers within {WAIT:?}"))
    }

    async fn read_offers(&mut self) -> Vec<fastdata_proto::v1::Offer> {
        let seen = self.offer_events.len();
        loop {
            if self.offer_events.len() > seen {
                return self.offer_events[seen]
                    .offers
                    .clone()
                    .expect("offers")
                    .offers;
            }
            let ev = self.stream.next_event().await.expect("stream open");
            match ev
                .r#type
                .and_then(|t| scheduler::event::Type::try_from(t).ok())
            {
                Some(scheduler::event::Type::Offers) => {
                    self.outstanding
                        .extend(ev.offers.clone().expect("offers").offers);
                    self.offer_events.push(ev);
                }
                Some(scheduler::event::Type::Rescind) => {
                    let id = ev.rescind.expect("rescind").offer_id;
                    self.outstanding.retain(|o| o.id != id);
                }
                Some(scheduler::event::Type::Heartbeat) => {}
                _ => self.pending.push_back(ev),
            }
        }
    }

    /// Takes every outstanding offer (for an ACCEPT or DECLINE that answers them all).
    pub fn take_outstanding(&mut self) -> Vec<fastdata_proto::v1::Offer> {
        std::mem::take(&mut self.outstanding)
    }

    pub async fn accept(
        &self,
        offer_ids: Vec<fastdata_proto::v1::OfferId>,
        operations: Vec<fastdata_proto::v1::offer::Operation>,
        refuse_seconds: Option<f64>,
    ) -> Answer {
        self.call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Accept as i32),
            accept: Some(scheduler::call::Accept {
                offer_ids,
                operations,
                filters: refuse_seconds.map(|s| fastdata_proto::v1::Filters {
                    refuse_seconds: Some(s),
                }),
            }),
            ..Default::default()
        })
        .await
    }

    pub async fn acknowledge(&self, status: &fastdata_proto::v1::TaskStatus) -> Answer {
        self.call(scheduler::Call {
            r#type: Some(scheduler::call::Type::Acknowledge as i32),
            acknowledge: Some(scheduler::call::Acknowledge {
                agent_id: status.agent_id.clone().expect("agent_id"),
                task_id: status.task_id.clone(),
                uuid: status.uuid.clone().expect("uuid"),
            }),
            ..Default::default()
        })
        .await
    }

    /// Waits for the next UPDATE of this task (other events are kept for later),
    /// acknowledging it when it has a uuid.
    pub async fn update_of(&mut self, task_id: &str) -> fastdata_proto::v1::TaskStatus {
        let is_it = |ev: &scheduler::Event| {
            ev.update
                .as_ref()
                .is_some_and(|u| u.status.task_id.value == task_id)
        };
        let found = match self.pending.iter().position(is_it) {
            Some(i) => self.pending.remove(i).expect("indexed"),
            None => tokio::time::timeout(WAIT, async {
                loop {
                    let ev = self.read_event().await.expect("stream open");
                    if is_it(&ev) {
                        return ev;
                    }
                    self.pending.push_back(ev);
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no update of {task_id} within {WAIT:?}")),
        };
        let status = found.update.expect("update").status;
        if status.uuid.is_some() {
            let a = self.acknowledge(&status).await;
            assert_eq!(a.status, 202, "ACKNOWLEDGE: {}", a.body);
        }
        status
    }
}

// ---- transcripts ----

pub fn transcript_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("proto/tests/data/mesos-transcripts")
}

/// One recorded exchange.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub raw: Json,
}

impl Step {
    pub fn request(&self) -> &Json {
        &self.raw["request"]
    }

    /// The request body bytes exactly as sent.
    pub fn body(&self) -> Vec<u8> {
        let b64 = self.request()["body_b64"].as_str().unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("body_b64")
    }

    /// The request headers as recorded, without Host and Content-Length.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.request()["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .filter(|(k, _)| {
                        !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length")
                    })
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn status(&self) -> u16 {
        self.raw["response"]["status"].as_u64().unwrap_or(0) as u16
    }

    pub fn body_text(&self) -> Option<String> {
        self.raw["response"]["body_text"].as_str().map(String::from)
    }

    pub fn response_headers(&self) -> BTreeMap<String, String> {
        self.raw["response"]["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| {
                        (
                            k.to_ascii_lowercase(),
                            v.as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The recorded events as decoded scheduler events.
    pub fn scheduler_events(&self) -> Vec<scheduler::Event> {
        self.raw["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .map(|e| {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(e["record_b64"].as_str().unwrap_or_default())
                            .expect("record_b64");
                        scheduler::Event::decode(bytes.as_slice()).expect("recorded event")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn executor_events(&self) -> Vec<executor::Event> {
        self.raw["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .map(|e| {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(e["record_b64"].as_str().unwrap_or_default())
                            .expect("record_b64");
                        executor::Event::decode(bytes.as_slice()).expect("recorded event")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The recorded call (decoded from the exact bytes).
    pub fn scheduler_call(&self) -> scheduler::Call {
        scheduler::Call::decode(self.body().as_slice()).expect("recorded call")
    }
}

/// All steps of a transcript file.
pub fn transcript(file: &str) -> Vec<Step> {
    let text = std::fs::read_to_string(transcript_dir().join(file)).expect("transcript");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let raw: Json = serde_json::from_str(l).expect("jsonl");
            Step {
                name: raw["step"].as_str().unwrap_or_default().to_owned(),
                raw,
            }
        })
        .collect()
}

/// The first step with this name.
pub fn step(file: &str, name: &str) -> Step {
    transcript(file)
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step '{name}' in {file}"))
}

/// Replays a recorded request against `url`, with its headers (minus Host and
/// Content-Length) and exact body; `rewrite` may replace header values (stream ids).
pub async fn replay(url: &str, step: &Step, rewrite: &[(&str, &str)]) -> Answer {
    let headers: Vec<(String, String)> = step
        .headers()
        .into_iter()
        .map(|(k, v)| {
            let v = rewrite
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(&k))
                .map(|(_, new)| (*new).to_owned())
                .unwrap_or(v);
            (k, v)
        })
        .collect();
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post(url, &refs, step.body()).await
}

/// A scheduler event with the ids, stream-dependent and time-dependent fields blanked, so
/// two runs can be compared ("ids and timings aside").
pub fn normalise_event(mut ev: scheduler::Event) -> Json {
    if let Some(s) = ev.subscribed.as_mut() {
        s.framework_id.value = "<framework>".into();
        s.heartbeat_interval_seconds = None;
        if let Some(m) = s.master_info.as_mut() {
            m.id = "<master>".into();
            m.port = 0;
            m.pid = None;
            if let Some(a) = m.address.as_mut() {
                a.port = 0;
            }
        }
    }
    if let Some(offers) = ev.offers.as_mut() {
        for o in &mut offers.offers {
            o.id.value = "<offer>".into();
            o.framework_id.value = "<framework>".into();
            o.agent_id.value = "<agent>".into();
            if let Some(url) = o.url.as_mut() {
                url.address.port = 0;
            }
            o.domain = None;
            o.resources.sort_by_key(|r| format!("{r:?}"));
        }
    }
    if let Some(u) = ev.update.as_mut() {
        normalise_status(&mut u.status);
    }
    if let Some(r) = ev.rescind.as_mut() {
        r.offer_id.value = "<offer>".into();
    }
    if let Some(m) = ev.message.as_mut() {
        m.agent_id.value = "<agent>".into();
    }
    if let Some(f) = ev.failure.as_mut()
        && let Some(a) = f.agent_id.as_mut()
    {
        a.value = "<agent>".into();
    }
    fastdata_proto::json::to_json(&ev).expect("json")
}

pub fn normalise_status(s: &mut fastdata_proto::v1::TaskStatus) {
    if let Some(a) = s.agent_id.as_mut() {
        a.value = "<agent>".into();
    }
    s.timestamp = None;
    if s.uuid.is_some() {
        s.uuid = Some(b"<uuid>".to_vec());
    }
    if let Some(c) = s.container_status.as_mut() {
        c.executor_pid = Some(0);
        if let Some(id) = c.container_id.as_mut() {
            id.value = "<container>".into();
        }
    }
    if let Some(t) = s.unreachable_time.as_mut() {
        t.nanoseconds = 0;
    }
    if let Some(m) = s.message.as_mut()
        && m.contains("Task launched with invalid offers")
    {
        *m = "Task launched with invalid offers".into();
    }
}

/// Replaces the ids of the recorded run with ours inside a recorded call, so it can be
/// replayed: framework id, agent id and offer ids.
pub fn rewrite_ids(
    call: &mut scheduler::Call,
    framework_id: &str,
    agent_id: &str,
    offers: &[String],
) {
    let recorded_agent = |v: &mut String| {
        if v.contains("-S") {
            *v = agent_id.to_owned();
        }
    };
    if let Some(f) = call.framework_id.as_mut() {
        f.value = framework_id.to_owned();
    }
    if let Some(accept) = call.accept.as_mut() {
        accept.offer_ids = offers
            .iter()
            .map(|o| fastdata_proto::v1::OfferId { value: o.clone() })
            .collect();
        for op in &mut accept.operations {
            if let Some(l) = op.launch.as_mut() {
                for t in &mut l.task_infos {
                    recorded_agent(&mut t.agent_id.value);
                    if let Some(e) = t.executor.as_mut()
                        && let Some(f) = e.framework_id.as_mut()
                    {
                        f.value = framework_id.to_owned();
                    }
                }
            }
        }
    }
    if let Some(d) = call.decline.as_mut() {
        d.offer_ids = offers
            .iter()
            .map(|o| fastdata_proto::v1::OfferId { value: o.clone() })
            .collect();
    }
    if let Some(k) = call.kill.as_mut()
        && let Some(a) = k.agent_id.as_mut()
    {
        recorded_agent(&mut a.value);
    }
    if let Some(r) = call.reconcile.as_mut() {
        for t in &mut r.tasks {
            if let Some(a) = t.agent_id.as_mut() {
                recorded_agent(&mut a.value);
            }
        }
    }
    if let Some(a) = call.acknowledge.as_mut() {
        recorded_agent(&mut a.agent_id.value);
    }
}
