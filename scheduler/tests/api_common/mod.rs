//! What the API tests share: the real servers of `fastdata_scheduler::api::serve` on
//! loopback, fed by a synthetic snapshot, with a small request loop standing in for the
//! framework's run loop (it applies patches with `ScalingPatch::apply` and publishes the
//! result, as the real loop does after persisting it), and the OpenAPI document's schemas.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fastdata_scheduler::api::{self, ApiConfig, ApiServers};
use fastdata_scheduler::status::{ApiRequest, StatusSnapshot};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

/// How the stand-in run loop answers scaling changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loop {
    /// Applies the patch to the published scaling and answers.
    Answering,
    /// Takes requests and never answers (a stuck loop).
    Silent,
    /// Is gone: the request channel is closed.
    Gone,
}

/// Running API servers and the handles to drive them.
pub struct TestApi {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The REST address.
    pub rest: SocketAddr,
    /// The gRPC address.
    pub grpc: SocketAddr,
    /// Publishes snapshots, as the run loop does.
    pub status: watch::Sender<Arc<StatusSnapshot>>,
    stop: Option<oneshot::Sender<()>>,
    servers: Option<ApiServers>,
    /// Requests the silent loop took (kept so their reply channels stay open).
    held: Arc<std::sync::Mutex<Vec<ApiRequest>>>,
}

impl TestApi {
    /// Starts the servers on loopback with `snapshot` and an answering loop.
    pub async fn start(snapshot: StatusSnapshot) -> TestApi {
        TestApi::start_with(
            snapshot,
            Loop::Answering,
            ApiConfig::DEFAULT_REQUEST_TIMEOUT,
        )
        .await
    }

    /// Starts the servers with a loop of the given behaviour.
    pub async fn start_with(
        snapshot: StatusSnapshot,
        behaviour: Loop,
        timeout: Duration,
    ) -> TestApi {
        let (status, status_rx) = watch::channel(Arc::new(snapshot));
        let (requests, mut inbox) = mpsc::channel::<ApiRequest>(8);
        let (stop, stopped) = oneshot::channel::<()>();
        let config = ApiConfig {
            request_timeout: timeout,
            ..ApiConfig::new(loopback(), loopback())
        };
        let servers = api::serve(config, status_rx, requests, async move {
            let _ = stopped.await;
        })
        .await
        .expect("the APIs bind to loopback");
        let held = Arc::new(std::sync::Mutex::new(Vec::new()));
        match behaviour {
            Loop::Answering => {
                let publish = status.clone();
                tokio::spawn(async move {
                    while let Some(request) = inbox.recv().await {
                        match request {
                            ApiRequest::SetScaling { patch, reply } => {
                                let current = publish.borrow().scaling.clone();
                                let answer = patch.apply(&current);
                                if let Ok(next) = &answer {
                                    publish
                                        .send_modify(|s| Arc::make_mut(s).scaling = next.clone());
                                }
                                let _ = reply.send(answer);
                            }
                            ApiRequest::SetProducerRate { rate, reply } => {
                                let answer = fastdata_scheduler::status::check_producer_rate(rate);
                                if let Ok(rate) = answer {
                                    publish.send_modify(|s| Arc::make_mut(s).producer_rate = rate);
                                }
                                let _ = reply.send(answer);
                            }
                        }
                    }
                });
            }
            Loop::Silent => {
                let held = held.clone();
                tokio::spawn(async move {
                    while let Some(request) = inbox.recv().await {
                        held.lock().expect("not poisoned").push(request);
                    }
                });
            }
            Loop::Gone => drop(inbox),
        }
        TestApi {
            base: format!("http://{}", servers.rest_addr),
            rest: servers.rest_addr,
            grpc: servers.grpc_addr,
            status,
            stop: Some(stop),
            servers: Some(servers),
            held,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Publishes a changed copy of the current snapshot.
    pub fn publish(&self, change: impl FnOnce(&mut StatusSnapshot)) {
        self.status.send_modify(|s| change(Arc::make_mut(s)));
    }

    /// Triggers the shutdown future and waits (bounded) until both servers stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let servers = self.servers.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), servers.stopped())
            .await
            .expect("the servers stop within 30 s of shutdown")
            .expect("the servers stop cleanly");
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The OpenAPI document the server serves.
pub fn openapi() -> Value {
    serde_json::from_str(fastdata_scheduler::api::rest::OPENAPI).expect("the document is JSON")
}

/// JSON-pointer escaping of one path segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Validates `instance` against the schema at `pointer` (a JSON pointer into the OpenAPI
/// document, e.g. `/components/schemas/Status`), resolving the document's `$ref`s; panics
/// with every violation.
pub fn assert_valid(doc: &Value, pointer: &str, instance: &Value, what: &str) {
    let errors = schema_errors(doc, pointer, instance);
    assert!(
        errors.is_empty(),
        "{what} does not match {pointer}:\n  {}\nbody: {instance:#}",
        errors.join("\n  ")
    );
}

/// Every violation of the schema at `pointer` by `instance` (formats checked too).
pub fn schema_errors(doc: &Value, pointer: &str, instance: &Value) -> Vec<String> {
    assert!(
        doc.pointer(pointer).is_some(),
        "the OpenAPI document has nothing at {pointer}"
    );
    let mut schema = doc.clone();
    let root = schema.as_object_mut().expect("an object");
    root.insert(
        "$schema".into(),
        "https://json-schema.org/draft/2020-12/schema".into(),
    );
    root.insert("$ref".into(), format!("#{}", fragment(pointer)).into());
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the schema at {pointer} does not compile: {e}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Checks one response against the document: the status code is listed for `method path`
/// (or, for an error, the operation's `default`), the content type is one the document gives
/// for it, and a JSON body matches its schema. Returns the parsed JSON body, if JSON.
pub fn assert_documented(
    doc: &Value,
    path: &str,
    method: &str,
    code: u16,
    content_type: &str,
    body: &[u8],
) -> Option<Value> {
    let what = format!("{} {path} -> {code}", method.to_uppercase());
    let operation = format!("/paths/{}/{method}/responses", escape(path));
    let responses = doc
        .pointer(&operation)
        .unwrap_or_else(|| panic!("{what}: the document has no {method} {path}"));
    let key = if responses.get(code.to_string()).is_some() {
        code.to_string()
    } else if code >= 400 && responses.get("default").is_some() {
        "default".to_owned()
    } else {
        panic!("{what}: status {code} is not documented");
    };
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let content = format!("{operation}/{key}/content/{}", escape(media));
    assert!(
        doc.pointer(&content).is_some(),
        "{what}: content type {content_type:?} is not documented for {key}"
    );
    if media != "application/json" {
        return None;
    }
    let value: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: the body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    assert_valid(doc, &format!("{content}/schema"), &value, &what);
    Some(value)
}

/// A JSON pointer as a URI fragment: characters a fragment may not hold (`{`, `}` of path
/// templates, spaces) percent-encoded.
fn fragment(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len());
    for byte in pointer.bytes() {
        let c = byte as char;
        if c.is_ascii_alphanumeric() || "-._~/!$&'()*+,;=:@".contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
