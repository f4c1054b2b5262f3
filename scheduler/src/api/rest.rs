//! The REST API (axum): routes, and handlers that read the latest snapshot, call the pure
//! views, and set the status codes DC/OS tooling expects.
//!
//! Handlers never block the run loop and never hold the snapshot across an `.await`: they
//! clone the `Arc` out of the `watch` channel. The two writes, `PUT /v1/scaling` and
//! `PUT /v1/producers`, are parsed here (every field problem at once, see [`super::patch`])
//! and forwarded to the run loop, which validates (and for thresholds persists) and answers;
//! a loop that does not answer in time gives a 503.
//! Every error, including axum's own rejections, unknown paths and wrong methods, is a JSON
//! [`ErrorBody`] (never plain text or a 422).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::oneshot;

use super::health::{HealthView, PlanView};
use super::views::{DecisionsView, HistoryView, OffersView, ProducersView, StatusView, TasksView};
use super::{metrics, page, patch};
use crate::policy::ScalingConfig;
use crate::status::{
    ApiRequest, ApiSender, FieldProblem, ScalingRejected, StatusReceiver, StatusSnapshot,
};

/// The OpenAPI document of this API, served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

/// The largest `PUT /v1/scaling` body read (a full patch is about 400 bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct RestState {
    /// The latest snapshot.
    pub status: StatusReceiver,
    /// To the run loop.
    pub requests: ApiSender,
    /// How long to wait for the run loop's answer.
    pub request_timeout: Duration,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// `bad_request`, `not_found`, `method_not_allowed`, `payload_too_large` or
    /// `unavailable`.
    pub error: &'static str,
    /// What went wrong and what to do, in a sentence.
    pub message: String,
    /// For a refused change: every field and the rule it breaks.
    pub problems: Vec<FieldProblem>,
}

/// The router of the REST API and the status page.
pub fn router(state: RestState) -> Router {
    Router::new()
        .route("/", get(get_page))
        .route("/v1/status", get(get_status))
        .route("/v1/scaling", get(get_scaling).put(put_scaling))
        .route("/v1/producers", get(get_producers).put(put_producers))
        .route("/v1/tasks", get(get_tasks))
        .route("/v1/decisions", get(get_decisions))
        .route("/v1/history", get(get_history))
        .route("/v1/health", get(get_health))
        .route("/v1/plans", get(get_plans))
        .route("/v1/plans/{plan}", get(get_plan))
        .route("/v1/state/frameworkId", get(get_framework_id))
        .route("/v1/metrics/prometheus", get(get_metrics))
        .route("/v1/debug/offers", get(get_offers))
        .route("/v1/openapi.json", get(get_openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(no_store))
        .with_state(state)
}

/// Every answer describes the scheduler now: no cache (Admin Router or a browser) may serve
/// an old one.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn snapshot(state: &RestState) -> std::sync::Arc<StatusSnapshot> {
    state.status.borrow().clone()
}

/// A JSON response with a status code.
fn json<T: Serialize>(code: StatusCode, body: &T) -> Response {
    (code, Json(body)).into_response()
}

/// A JSON error response.
pub fn error(code: StatusCode, error: &'static str, message: String) -> Response {
    json(
        code,
        &ErrorBody {
            error,
            message,
            problems: Vec::new(),
        },
    )
}

fn sdk_code(code: u16) -> StatusCode {
    // Every code used is a valid status code (100..=999); a broken invariant otherwise.
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn get_page(State(state): State<RestState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page::render(&snapshot(&state)),
    )
        .into_response()
}

async fn get_status(State(state): State<RestState>) -> Response {
    json(StatusCode::OK, &StatusView::of(&snapshot(&state)))
}

async fn get_scaling(State(state): State<RestState>) -> Response {
    json(StatusCode::OK, &snapshot(&state).scaling)
}

async fn put_scaling(
    State(state): State<RestState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return unreadable(&rejection, Write::Scaling),
    };
    // The content type is not checked: `curl -d` sends form encoding by default, and the
    // body either parses as the JSON object we need or gets a 400 saying why.
    let change = match patch::parse_patch(&body) {
        Ok(change) => change,
        Err(rejected) => return refused(Write::Scaling, rejected),
    };
    match forward(&state, "REST", change).await {
        Ok(config) => json(StatusCode::OK, &config),
        Err(failed) => failure(Write::Scaling, failed),
    }
}

async fn get_producers(State(state): State<RestState>) -> Response {
    json(StatusCode::OK, &ProducersView::of(&snapshot(&state)))
}

async fn put_producers(
    State(state): State<RestState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return unreadable(&rejection, Write::ProducerRate),
    };
    let rate = match patch::parse_rate(&body) {
        Ok(rate) => rate,
        Err(rejected) => return refused(Write::ProducerRate, rejected),
    };
    match forward_rate(&state, "REST", rate).await {
        // The loop answers after publishing the snapshot with the new rate.
        Ok(rate) => json(
            StatusCode::OK,
            &ProducersView {
                rate,
                ..ProducersView::of(&snapshot(&state))
            },
        ),
        Err(failed) => failure(Write::ProducerRate, failed),
    }
}

/// The two writes, for their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// `PUT /v1/scaling`.
    Scaling,
    /// `PUT /v1/producers`.
    ProducerRate,
}

impl Write {
    /// `scaling change`, `producer rate change`.
    fn noun(self) -> &'static str {
        match self {
            Write::Scaling => "scaling change",
            Write::ProducerRate => "producer rate change",
        }
    }

    /// Where to look whether it was applied.
    fn check(self) -> &'static str {
        match self {
            Write::Scaling => "GET /v1/scaling",
            Write::ProducerRate => "GET /v1/producers",
        }
    }
}

/// The JSON error for the body of a write that is too large or could not be read.
fn unreadable(rejection: &BytesRejection, write: Write) -> Response {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body is larger than {MAX_BODY_BYTES} bytes; a {} is a small JSON object",
                write.noun()
            ),
        );
    }
    refused(
        write,
        ScalingRejected {
            problems: vec![FieldProblem {
                field: patch::BODY.to_owned(),
                message: format!("the body could not be read: {}", rejection.body_text()),
            }],
        },
    )
}

/// The answer for a write the run loop refused or did not answer.
fn failure(write: Write, failed: Forwarded) -> Response {
    match failed {
        Forwarded::Rejected(rejected) => refused(write, rejected),
        Forwarded::Unavailable(message) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }
}

/// Logs what became of a change (it holds no secret) and passes the result on.
fn logged(
    api: &'static str,
    change: &crate::status::ScalingPatch,
    result: Result<ScalingConfig, Forwarded>,
) -> Result<ScalingConfig, Forwarded> {
    match &result {
        Ok(config) => tracing::info!(api, ?change, mode = %config.mode, "scaling change applied"),
        Err(Forwarded::Rejected(rejected)) => {
            tracing::info!(api, ?change, problems = %rejected, "scaling change refused");
        }
        Err(Forwarded::Unavailable(reason)) => {
            tracing::warn!(api, ?change, %reason, "scaling change not answered by the run loop");
        }
    }
    result
}

/// A 400 listing every problem.
fn refused(write: Write, rejected: ScalingRejected) -> Response {
    let count = rejected.problems.len();
    json(
        StatusCode::BAD_REQUEST,
        &ErrorBody {
            error: "bad_request",
            message: format!(
                "the {} was refused ({count} problem{}): {rejected}",
                write.noun(),
                if count == 1 { "" } else { "s" }
            ),
            problems: rejected.problems,
        },
    )
}

/// Why a forwarded change did not go through.
#[derive(Debug)]
pub enum Forwarded {
    /// The run loop refused it.
    Rejected(ScalingRejected),
    /// The run loop did not answer (busy, stopping): try again.
    Unavailable(String),
}

/// Sends a change to the run loop and waits for its answer, at most `request_timeout` in all;
/// logs the outcome with `api` (`REST` or `gRPC`).
pub async fn forward(
    state: &RestState,
    api: &'static str,
    change: crate::status::ScalingPatch,
) -> Result<ScalingConfig, Forwarded> {
    let logged_change = change.clone();
    let result = exchange(state, Write::Scaling, |reply| ApiRequest::SetScaling {
        patch: change,
        reply,
    })
    .await;
    logged(api, &logged_change, result)
}

/// Sends a producer rate to the run loop and waits for its answer, as [`forward`] does;
/// answers with the rate in force.
pub async fn forward_rate(
    state: &RestState,
    api: &'static str,
    rate: f64,
) -> Result<f64, Forwarded> {
    let result = exchange(state, Write::ProducerRate, |reply| {
        ApiRequest::SetProducerRate { rate, reply }
    })
    .await;
    match &result {
        Ok(rate) => tracing::info!(api, rate, "producer rate change applied"),
        Err(Forwarded::Rejected(rejected)) => {
            tracing::info!(api, rate, problems = %rejected, "producer rate change refused");
        }
        Err(Forwarded::Unavailable(reason)) => {
            tracing::warn!(api, rate, %reason, "producer rate change not answered by the run loop");
        }
    }
    result
}

/// One request to the run loop and its answer, bounded by `request_timeout`.
async fn exchange<T>(
    state: &RestState,
    write: Write,
    request: impl FnOnce(oneshot::Sender<Result<T, ScalingRejected>>) -> ApiRequest,
) -> Result<T, Forwarded> {
    let (reply, answer) = oneshot::channel();
    let timeout = state.request_timeout;
    let check = write.check();
    let exchange = async {
        state.requests.send(request(reply)).await.map_err(|_| {
            Forwarded::Unavailable(
                "the scheduler is shutting down and takes no changes; try again when it is back"
                    .to_owned(),
            )
        })?;
        answer.await.map_err(|_| {
            Forwarded::Unavailable(format!(
                "the scheduler dropped the change without answering (it may be restarting); check {check} and try again"
            ))
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(rejected))) => Err(Forwarded::Rejected(rejected)),
        Ok(Err(unavailable)) => Err(unavailable),
        Err(_) => Err(Forwarded::Unavailable(format!(
            "the scheduler did not answer within {} s (it may be busy persisting state to ZooKeeper); check {check} and try again",
            timeout.as_secs_f64()
        ))),
    }
}

async fn get_tasks(State(state): State<RestState>) -> Response {
    json(StatusCode::OK, &TasksView::of(&snapshot(&state)))
}

async fn get_decisions(State(state): State<RestState>) -> Response {
    json(StatusCode::OK, &DecisionsView::of(&snapshot(&state)))
}

async fn get_history(State(state): State<RestState>) -> Response {
    json(StatusCode::OK, &HistoryView::of(&snapshot(&state)))
}

async fn get_health(State(state): State<RestState>) -> Response {
    let health = HealthView::of(&snapshot(&state));
    json(sdk_code(health.value), &health)
}

async fn get_plans() -> Response {
    json(StatusCode::OK, &["deploy"])
}

async fn get_plan(State(state): State<RestState>, Path(plan): Path<String>) -> Response {
    if plan != "deploy" {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no plan {plan:?}; this service has one plan, \"deploy\""),
        );
    }
    let view = PlanView::deploy(&snapshot(&state));
    json(sdk_code(view.status.http_code()), &view)
}

async fn get_framework_id(State(state): State<RestState>) -> Response {
    match &snapshot(&state).framework_id {
        Some(id) => json(StatusCode::OK, &[id]),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the scheduler has no framework id yet: it has not subscribed to Mesos".to_owned(),
        ),
    }
}

async fn get_metrics(State(state): State<RestState>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&snapshot(&state)),
    )
        .into_response()
}

async fn get_offers(State(state): State<RestState>) -> Response {
    json(StatusCode::OK, &OffersView::of(&snapshot(&state)))
}

async fn get_openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.to_owned(),
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no such endpoint: {}; the API is described at /v1/openapi.json",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let allowed = if ["/v1/scaling", "/v1/producers"].contains(&uri.path()) {
        "GET, PUT"
    } else {
        "GET"
    };
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept {method}; use {allowed}", uri.path()),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route this module serves is in the OpenAPI document, and every path of the
    /// document is served: the document cannot drift from the router.
    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let source = include_str!("rest.rs");
        let start = source.find("pub fn router").expect("router");
        let end = start + source[start..].find(".fallback(").expect("fallback");
        let mut routes: Vec<String> = source[start..end]
            .split(".route(\"")
            .skip(1)
            .map(|rest| rest[..rest.find('"').expect("closing quote")].to_owned())
            .collect();
        routes.sort();
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        let mut paths: Vec<String> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect();
        paths.sort();
        assert_eq!(routes, paths);
    }
}
