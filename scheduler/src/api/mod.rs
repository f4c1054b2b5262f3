//! The REST (axum) and gRPC (tonic) APIs, the OpenAPI document and the status page.
//!
//! Owns what operators and tools see of the scheduler: the JSON documents (pure views of the
//! latest [`crate::status::StatusSnapshot`]), the DC/OS SDK status-code contracts
//! (`/v1/health`, `/v1/plans/deploy`), the Prometheus exposition, the page, and the two
//! servers. It reads snapshots from a [`StatusReceiver`] and sends the two kinds of change
//! there are, a scaling patch and a producer rate, to the run loop as
//! [`crate::status::ApiRequest`]s. It must not touch ZooKeeper, Mesos or Kafka, and never
//! decides anything itself: the run loop validates (with
//! [`crate::status::ScalingPatch::apply`], [`crate::status::check_producer_rate`]), persists
//! the thresholds and answers.
//!
//! # Endpoints (REST, on `PORT_API`)
//!
//! | path | what |
//! |---|---|
//! | `GET /` | the status page: lag and consumers over the last hour, scaling changes marked |
//! | `GET /v1/status` | lag (total, per partition), rates, consumers, sink, held reason, last decisions |
//! | `GET`, `PUT /v1/scaling` | thresholds; a partial update; 400 lists every field and rule |
//! | `GET`, `PUT /v1/producers` | the simulated producers (`{"tasks", "rate"}`); `{"rate": R}` sets their rate at once |
//! | `GET /v1/tasks`, `/v1/decisions`, `/v1/history` | slots and tasks; the decision log; the page's data |
//! | `GET /v1/health` | SDK codes: 200 running, 202 deploying, 203 reconciling, 206 degraded, 208 re-subscribing, 318 initializing, 500 plan error, 503 fatal |
//! | `GET /v1/plans`, `/v1/plans/deploy` | SDK plan: 200 complete, 202 in progress, 417 error |
//! | `GET /v1/state/frameworkId` | `["<id>"]` (Cosmos' uninstall contract), 404 before one exists |
//! | `GET /v1/metrics/prometheus` | text exposition format |
//! | `GET /v1/debug/offers` | offer outcomes, newest first, with decline reasons counted |
//! | `GET /v1/openapi.json` | the OpenAPI 3.1 document (`scheduler/api/openapi.json`) |
//!
//! Errors are JSON everywhere (`{"error", "message", "problems"}`), including 404 for unknown
//! paths and 405 for wrong methods.
//!
//! # gRPC (on its own port)
//!
//! `fastdata.control.v1.Control`: `GetStatus`, `SetScaling`, `WatchStatus` (see [`grpc`]).

pub mod grpc;
pub mod health;
pub mod metrics;
pub mod page;
pub mod patch;
pub mod rest;
pub mod sample;
pub mod views;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::status::{ApiSender, StatusReceiver};

/// Where the APIs listen, and how long they wait for the run loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// REST API and status page (DC/OS: `PORT_API`). Port 0 picks a free port.
    pub rest_addr: SocketAddr,
    /// gRPC control API. Port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// How long a scaling change waits for the run loop's answer before the API answers 503
    /// (gRPC: UNAVAILABLE).
    pub request_timeout: Duration,
}

impl ApiConfig {
    /// Default wait for the run loop: it persists to ZooKeeper before it answers, which
    /// normally takes milliseconds; seconds mean something is wrong.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

    /// Both addresses, with the default request timeout.
    pub fn new(rest_addr: SocketAddr, grpc_addr: SocketAddr) -> ApiConfig {
        ApiConfig {
            rest_addr,
            grpc_addr,
            request_timeout: ApiConfig::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// The running servers.
#[derive(Debug)]
pub struct ApiServers {
    /// Where the REST API listens (the real port when 0 was asked for).
    pub rest_addr: SocketAddr,
    /// Where the gRPC API listens.
    pub grpc_addr: SocketAddr,
    rest: JoinHandle<Result<(), ApiError>>,
    grpc: JoinHandle<Result<(), ApiError>>,
}

impl ApiServers {
    /// Waits until both servers have stopped (after `shutdown` completed and their open
    /// connections closed); the first failure, if one failed.
    pub async fn stopped(self) -> Result<(), ApiError> {
        let rest = joined(self.rest.await, "REST");
        let grpc = joined(self.grpc.await, "gRPC");
        rest.and(grpc)
    }
}

fn joined(
    result: Result<Result<(), ApiError>, tokio::task::JoinError>,
    api: &'static str,
) -> Result<(), ApiError> {
    result.map_err(|e| ApiError::Serve {
        api,
        message: format!("the server task ended abnormally: {e}"),
    })?
}

/// Why the APIs could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A listener could not be bound.
    #[error(
        "cannot listen for the {api} API on {addr}: {source}; choose another address or port (--api-address, --api-port / PORT_API, --grpc-port / PORT_GRPC)"
    )]
    Bind {
        /// `REST` or `gRPC`.
        api: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A server failed while running.
    #[error("the {api} API server failed: {message}")]
    Serve {
        /// `REST` or `gRPC`.
        api: &'static str,
        /// What failed.
        message: String,
    },
}

/// Binds both listeners (an error names the address), spawns the REST and gRPC servers and
/// returns their addresses. Both stop when `shutdown` completes: they stop accepting, open
/// `WatchStatus` streams end, and in-flight requests finish.
pub async fn serve(
    config: ApiConfig,
    status: StatusReceiver,
    requests: ApiSender,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ApiServers, ApiError> {
    let rest_listener = bind("REST", config.rest_addr).await?;
    let grpc_listener = bind("gRPC", config.grpc_addr).await?;
    let rest_addr = local_addr("REST", config.rest_addr, &rest_listener)?;
    let grpc_addr = local_addr("gRPC", config.grpc_addr, &grpc_listener)?;

    // One signal for both servers and every stream: `shutdown` can only be awaited once.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        // Nobody listening any more is fine: the servers are already gone.
        let _ = stop_tx.send(true);
    });

    let shared = rest::RestState {
        status,
        requests,
        request_timeout: config.request_timeout,
    };
    let router = rest::router(shared.clone());
    let rest_stop = stopped(stop_rx.clone());
    let rest = tokio::spawn(async move {
        axum::serve(rest_listener, router)
            .with_graceful_shutdown(rest_stop)
            .await
            .map_err(|e| ApiError::Serve {
                api: "REST",
                message: e.to_string(),
            })
    });

    let control = grpc::ControlService::new(shared, stop_rx.clone());
    let grpc_stop = stopped(stop_rx);
    let grpc = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(control.into_server())
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
                grpc_stop,
            )
            .await
            .map_err(|e| ApiError::Serve {
                api: "gRPC",
                message: e.to_string(),
            })
    });
    tracing::info!(%rest_addr, %grpc_addr, "APIs listening");
    Ok(ApiServers {
        rest_addr,
        grpc_addr,
        rest,
        grpc,
    })
}

async fn bind(api: &'static str, addr: SocketAddr) -> Result<TcpListener, ApiError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ApiError::Bind { api, addr, source })
}

fn local_addr(
    api: &'static str,
    addr: SocketAddr,
    listener: &TcpListener,
) -> Result<SocketAddr, ApiError> {
    listener
        .local_addr()
        .map_err(|source| ApiError::Bind { api, addr, source })
}

/// Completes when the stop signal is set (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens after it sent `true`.
    let _ = stop.wait_for(|stop| *stop).await;
}
