//! What the CLI tests share: the real scheduler API (`fastdata_scheduler::api::serve`) fed
//! by a synthetic snapshot, with a small request loop standing in for the framework's run
//! loop (it applies patches with `ScalingPatch::apply`); a tiny Admin Router stand-in that
//! serves it under `/service/<name>/` and checks `Authorization: token=...`; and a runner for
//! the real `dcos-fastdata` binary with a clean environment.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use fastdata_scheduler::api::sample::sample_snapshot;
use fastdata_scheduler::api::{ApiConfig, ApiServers, serve};
use fastdata_scheduler::status::{ApiRequest, StatusSnapshot};
use tokio::sync::{mpsc, oneshot, watch};

/// The real API server with an answering (or silent) loop.
pub struct Scheduler {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Publishes snapshots.
    pub status: watch::Sender<Arc<StatusSnapshot>>,
    stop: Option<oneshot::Sender<()>>,
    servers: Option<ApiServers>,
    held: Arc<Mutex<Vec<ApiRequest>>>,
}

impl Scheduler {
    /// Starts the API on loopback with the sample snapshot; `answering: false` makes a loop
    /// that never answers (with a short timeout, so the API answers 503 quickly).
    pub async fn start(answering: bool) -> Scheduler {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (status, status_rx) = watch::channel(Arc::new(sample_snapshot(now)));
        let (requests, mut inbox) = mpsc::channel::<ApiRequest>(8);
        let (stop, stopped) = oneshot::channel::<()>();
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = ApiConfig {
            request_timeout: if answering {
                ApiConfig::DEFAULT_REQUEST_TIMEOUT
            } else {
                Duration::from_millis(300)
            },
            ..ApiConfig::new(loopback, loopback)
        };
        let servers = serve(config, status_rx, requests, async move {
            let _ = stopped.await;
        })
        .await
        .expect("the API binds to loopback");
        let held = Arc::new(Mutex::new(Vec::new()));
        let publish = status.clone();
        let keep = held.clone();
        tokio::spawn(async move {
            while let Some(request) = inbox.recv().await {
                if !answering {
                    keep.lock().expect("not poisoned").push(request);
                    continue;
                }
                match request {
                    ApiRequest::SetScaling { patch, reply } => {
                        let current = publish.borrow().scaling.clone();
                        let answer = patch.apply(&current);
                        if let Ok(next) = &answer {
                            publish.send_modify(|s| Arc::make_mut(s).scaling = next.clone());
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
        Scheduler {
            base: format!("http://{}", servers.rest_addr),
            status,
            stop: Some(stop),
            servers: Some(servers),
            held,
        }
    }

    /// Stops the servers (bounded wait).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let servers = self.servers.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), servers.stopped())
            .await
            .expect("the API stops")
            .expect("cleanly");
    }
}

/// One request as the Admin Router stand-in saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path, as received (with `/service/<name>`).
    pub path: String,
    /// The Authorization header, if any.
    pub authorization: Option<String>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    services: Vec<String>,
    token: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    http: reqwest::Client,
}

/// A stand-in for DC/OS Admin Router: `/service/<name>/<path>` goes to the scheduler's
/// `/<path>` for the known names, after the token check; like the real one it answers 401
/// (HTML) without a valid `Authorization: token=...`, 404 (HTML) for unknown services, and
/// 502 when the scheduler does not answer.
pub struct AdminRouter {
    /// `http://127.0.0.1:<port>`: what DCOS_URL points at.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl AdminRouter {
    /// Serves `services` (names, possibly with folders) in front of `upstream`, accepting
    /// only `token`.
    pub async fn start(upstream: &str, services: &[&str], token: &str) -> AdminRouter {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            upstream: upstream.to_owned(),
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            token: token.to_owned(),
            seen: seen.clone(),
            http: reqwest::Client::new(),
        };
        let app = Router::new().fallback(proxy).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        AdminRouter { url, seen, task }
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

impl Drop for AdminRouter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy(State(state): State<ProxyState>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let headers: HeaderMap = request.headers().clone();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.seen.lock().expect("not poisoned").push(Seen {
        method: method.to_string(),
        path: path.clone(),
        authorization: authorization.clone(),
    });
    if authorization.as_deref() != Some(&format!("token={}", state.token)) {
        return (
            StatusCode::UNAUTHORIZED,
            [("content-type", "text/html")],
            "<html><body><h1>401 Unauthorized</h1></body></html>",
        )
            .into_response();
    }
    let Some(rest) = state.services.iter().find_map(|name| {
        path.strip_prefix(&format!("/service/{name}"))
            .filter(|r| r.is_empty() || r.starts_with('/'))
    }) else {
        return (
            StatusCode::NOT_FOUND,
            [("content-type", "text/html")],
            "<html><body><h1>404 Not Found</h1><p>service not found</p></body></html>",
        )
            .into_response();
    };
    let body: Bytes = match axum::body::to_bytes(request.into_body(), 1 << 20).await {
        Ok(body) => body,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let mut forward = state
        .http
        .request(
            method,
            format!(
                "{}{}",
                state.upstream,
                if rest.is_empty() { "/" } else { rest }
            ),
        )
        .body(body);
    if let Some(ct) = headers.get("content-type") {
        forward = forward.header("content-type", ct);
    }
    match forward.send().await {
        Ok(response) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let ct = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_owned();
            let bytes = response.bytes().await.unwrap_or_default();
            (status, [("content-type", ct)], bytes).into_response()
        }
        Err(_) => (
            StatusCode::BAD_GATEWAY,
            [("content-type", "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
    }
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `dcos-fastdata args...` with exactly `env` (plus a HOME that has no `.dcos`).
pub async fn dcos_fastdata(args: &[&str], env: &[(&str, &str)]) -> Run {
    let home = scratch("home");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcos-fastdata"));
    command
        .args(args)
        .env_clear()
        .env("HOME", &home)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the CLI finishes within 60 s")
        .expect("the CLI starts");
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8"),
    }
}

/// A fresh directory under the test target's temp directory.
pub fn scratch(label: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(format!("{label}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Writes `~/.dcos`-style cluster directories under `dir`: (id, attached, dcos.toml).
pub fn dcos_dir(clusters: &[(&str, bool, &str)]) -> PathBuf {
    let dir = scratch("dcos");
    for (id, attached, toml) in clusters {
        let cluster = dir.join("clusters").join(id);
        std::fs::create_dir_all(&cluster).expect("a cluster directory");
        std::fs::write(cluster.join("dcos.toml"), toml).expect("dcos.toml");
        if *attached {
            std::fs::write(cluster.join("attached"), "").expect("attached marker");
        }
    }
    dir
}

/// The environment as a map, for messages.
pub fn env_map(env: &[(&str, &str)]) -> BTreeMap<String, String> {
    env.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
