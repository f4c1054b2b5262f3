//! The HTTP servers (axum on hyper, HTTP/1.1): the master address(es) and one listener per
//! agent. Handlers only pick the headers out of the request, call the core through
//! [`Shared::step`], and write its answer; an event stream is a chunked body fed by the
//! stream's queue, and the body's drop tells the core the connection is gone.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::cluster::{ConnId, ExecutorRequest, Fault, MasterAddress, Reply, SchedulerRequest};
use crate::runtime::{Shared, now};
use crate::wire::{Answer, RequestParts};

/// Ends the core's view of a stream when hyper drops its body (the client went away, or
/// the stream ended).
#[derive(Debug)]
struct StreamGuard {
    shared: Arc<Shared>,
    conn: ConnId,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.shared.stream_dropped(self.conn);
    }
}

/// A chunked body of RecordIO records.
#[derive(Debug)]
struct EventStream {
    rx: mpsc::Receiver<Bytes>,
    _guard: StreamGuard,
}

impl futures::Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|item| item.map(Ok))
    }
}

fn answer_response(answer: Answer) -> Response {
    let mut builder = Response::builder().status(answer.status);
    if let Some(ct) = answer.content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    for (name, value) in &answer.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Body::from(answer.body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn stream_response(
    shared: &Arc<Shared>,
    conn: ConnId,
    rx: mpsc::Receiver<Bytes>,
    encoding: crate::wire::Encoding,
    stream_id: Option<String>,
) -> Response {
    let body = EventStream {
        rx,
        _guard: StreamGuard {
            shared: Arc::clone(shared),
            conn,
        },
    };
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, encoding.media_type());
    if let Some(id) = stream_id {
        builder = builder.header("Mesos-Stream-Id", id);
    }
    builder
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Registers the event stream a [`Reply::Stream`] needs, in the same step that produced the
/// reply, so no event can be emitted before its stream exists.
fn open_stream_for(
    inner: &mut crate::runtime::Inner,
    conn: ConnId,
    reply: &Reply,
) -> Option<mpsc::Receiver<Bytes>> {
    match reply {
        Reply::Stream { encoding, .. } => Some(Shared::open_stream(inner, conn, *encoding)),
        Reply::Answer(_) => None,
    }
}

/// The HTTP response for a core reply (and its stream, when it opened one).
fn reply_response(
    shared: &Arc<Shared>,
    conn: ConnId,
    reply: Reply,
    rx: Option<mpsc::Receiver<Bytes>>,
) -> Response {
    match (reply, rx) {
        (
            Reply::Stream {
                encoding,
                stream_id,
            },
            Some(rx),
        ) => stream_response(shared, conn, rx, encoding, stream_id),
        (Reply::Answer(answer), _) => answer_response(answer),
        // Invariant broken only if `open_stream_for` was skipped for a stream reply.
        (Reply::Stream { .. }, None) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// State of a master address's handlers.
#[derive(Debug, Clone)]
struct MasterCtx {
    shared: Arc<Shared>,
    address: MasterAddress,
}

async fn scheduler(
    State(ctx): State<MasterCtx>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let conn = ctx.shared.next_conn();
    let req = SchedulerRequest {
        parts: RequestParts {
            method: method.as_str(),
            content_type: header_str(&headers, "content-type"),
            accept: header_str(&headers, "accept"),
            body: &body,
        },
        stream_id: header_str(&headers, "mesos-stream-id"),
        authorization: header_str(&headers, "authorization"),
        conn,
    };
    let (reply, rx) = ctx.shared.step(|inner| {
        let reply = inner.cluster.scheduler_request(now(), ctx.address, req);
        let rx = open_stream_for(inner, conn, &reply);
        (reply, rx)
    });
    reply_response(&ctx.shared, conn, reply, rx)
}

async fn state(State(ctx): State<MasterCtx>) -> Response {
    let doc = ctx.shared.with_cluster(|c| c.state());
    axum::Json(doc).into_response()
}

async fn fault(State(ctx): State<MasterCtx>, body: Bytes) -> Response {
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return answer_response(Answer::bad_request(format!("invalid fault: {e}"))),
    };
    match ctx.shared.step(|inner| inner.cluster.fault(now(), fault)) {
        Ok(()) => axum::Json(serde_json::json!({"ok": true})).into_response(),
        Err(e) => answer_response(Answer::bad_request(e)),
    }
}

/// The router of a master address.
fn master_router(shared: Arc<Shared>, address: MasterAddress) -> Router {
    Router::new()
        .route("/api/v1/scheduler", any(scheduler))
        // Where a 307 from the other master address points (`redirect.jsonl`).
        .route("/master/api/v1/scheduler", any(scheduler))
        .route("/state", get(state))
        .route("/master/state", get(state))
        .route("/devcluster/fault", post(fault))
        .with_state(MasterCtx { shared, address })
}

/// Serves a master address until shutdown.
pub(crate) async fn serve_master(
    shared: Arc<Shared>,
    listener: TcpListener,
    address: MasterAddress,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let router = master_router(Arc::clone(&shared), address);
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "master listener failed");
    }
}

/// State of an agent's handlers.
#[derive(Debug, Clone)]
struct AgentCtx {
    shared: Arc<Shared>,
    agent: usize,
}

async fn executor(
    State(ctx): State<AgentCtx>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let conn = ctx.shared.next_conn();
    let req = ExecutorRequest {
        parts: RequestParts {
            method: method.as_str(),
            content_type: header_str(&headers, "content-type"),
            accept: header_str(&headers, "accept"),
            body: &body,
        },
        conn,
    };
    let (reply, rx) = ctx.shared.step(|inner| {
        if !inner.cluster.agent_is_up(ctx.agent) {
            // A keep-alive connection that outlived the agent's listener.
            return (
                Reply::Answer(Answer::text(503, "Agent has not finished recovery")),
                None,
            );
        }
        let reply = inner.cluster.executor_request(now(), ctx.agent, req);
        let rx = open_stream_for(inner, conn, &reply);
        (reply, rx)
    });
    reply_response(&ctx.shared, conn, reply, rx)
}

fn agent_router(shared: Arc<Shared>, agent: usize) -> Router {
    Router::new()
        .route("/api/v1/executor", any(executor))
        // The path the C++ executor library builds from MESOS_SLAVE_PID.
        .route("/slave(1)/api/v1/executor", any(executor))
        .with_state(AgentCtx { shared, agent })
}

/// Serves an agent's listener, closing it while the agent is down and reopening it on the
/// same port when it comes back.
pub(crate) async fn serve_agent(shared: Arc<Shared>, agent: usize, first: TcpListener) {
    let Ok(addr) = first.local_addr() else {
        return;
    };
    let mut shutdown = shared.shutdown.subscribe();
    let mut up = shared.agent_up[agent].subscribe();
    let mut listener = Some(first);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let current = match listener.take() {
            Some(l) => l,
            None => {
                let stop = tokio::select! {
                    r = up.wait_for(|u| *u) => r.map(|_| false).unwrap_or(true),
                    r = shutdown.wait_for(|s| *s) => r.map(|_| true).unwrap_or(true),
                };
                if stop {
                    return;
                }
                match TcpListener::bind(addr).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(agent, %addr, error = %e, "could not reopen agent listener");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
        };
        let router = agent_router(Arc::clone(&shared), agent);
        let mut down = shared.agent_up[agent].subscribe();
        let mut stop = shared.shutdown.subscribe();
        let serving = axum::serve(current, router).with_graceful_shutdown(async move {
            tokio::select! {
                _ = down.wait_for(|u| !*u) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
        // Connections still open after the listener closes finish on their own.
        let handle = tokio::spawn(async move {
            let _ = serving.await;
        });
        let stop = tokio::select! {
            r = up.wait_for(|u| !*u) => r.map(|_| false).unwrap_or(true),
            r = shutdown.wait_for(|s| *s) => r.map(|_| true).unwrap_or(true),
        };
        if stop {
            let _ = handle.await;
            return;
        }
        // Give the old listener a moment to be dropped before rebinding.
        tokio::task::yield_now().await;
    }
}
