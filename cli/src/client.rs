//! Talking to the scheduler: requests built as values ([`ApiCall`]), sent with reqwest, and
//! answers mapped to results or to a [`CliError`] a person can act on ([`interpret`]).
//!
//! Through a cluster the path is Admin Router's `<cluster>/service/<name>/v1/...` with
//! `Authorization: token=<token>`; Admin Router answers 401 for a missing or expired token,
//! 403 when the account may not reach the service, 404 (not JSON) for a service it does not
//! know, and 502/503/504 while the scheduler task is not reachable. The scheduler's own
//! errors are JSON with `error`, `message` and `problems`.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::cluster::{Target, Tls};
use crate::error::{CliError, Problem};
use crate::model::ErrorBody;

/// One HTTP request, before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// `GET` or `PUT`.
    pub method: &'static str,
    /// The API path (`/v1/status`), for messages.
    pub path: String,
    /// The full URL.
    pub url: String,
    /// Headers to send.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Option<String>,
}

/// An answer: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// The request for `method path` (with an optional JSON body) to `target`.
pub fn call(target: &Target, method: &'static str, path: &str, body: Option<String>) -> ApiCall {
    let mut headers = vec![
        ("accept", "application/json".to_owned()),
        (
            "user-agent",
            format!("dcos-fastdata/{}", env!("CARGO_PKG_VERSION")),
        ),
    ];
    if let Some(token) = &target.token {
        headers.push(("authorization", format!("token={token}")));
    }
    if body.is_some() {
        headers.push(("content-type", "application/json".to_owned()));
    }
    ApiCall {
        method,
        path: path.to_owned(),
        url: target.url(path),
        headers,
        body,
    }
}

/// The HTTP client for `target`'s TLS settings.
pub fn http_client(target: &Target) -> Result<reqwest::Client, CliError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30));
    match &target.tls {
        Tls::Verify => {}
        Tls::Insecure => builder = builder.danger_accept_invalid_certs(true),
        Tls::CaFile(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                CliError::Usage(format!(
                    "cannot read the CA bundle {} (DCOS_TLS_CA_PATH or core.ssl_verify): {e}",
                    path.display()
                ))
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                CliError::Usage(format!(
                    "{} is not a PEM CA bundle (DCOS_TLS_CA_PATH or core.ssl_verify): {e}",
                    path.display()
                ))
            })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
    }
    builder
        .build()
        .map_err(|e| CliError::Failure(format!("cannot set up the HTTP client: {e}")))
}

/// Sends `call`; network failures become [`CliError::Unreachable`].
pub async fn send(
    client: &reqwest::Client,
    target: &Target,
    call: &ApiCall,
) -> Result<Reply, CliError> {
    let method = match call.method {
        "PUT" => reqwest::Method::PUT,
        _ => reqwest::Method::GET,
    };
    let mut request = client.request(method, &call.url);
    for (name, value) in &call.headers {
        request = request.header(*name, value);
    }
    if let Some(body) = &call.body {
        request = request.body(body.clone());
    }
    let response = request
        .send()
        .await
        .map_err(|e| unreachable(target, call, &e))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| unreachable(target, call, &e))?
        .to_vec();
    Ok(Reply { status, body })
}

fn unreachable(target: &Target, call: &ApiCall, error: &reqwest::Error) -> CliError {
    // The chain carries the cause (refused, DNS, certificate) that the top level hides.
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    let hint = if detail.to_ascii_lowercase().contains("certificate") {
        "; the cluster's certificate is not trusted: set DCOS_TLS_CA_PATH to its CA bundle (or run `dcos cluster setup` again), or DCOS_TLS_INSECURE=1 to skip the check"
    } else if error.is_timeout() {
        "; it did not answer in time"
    } else if target.service.is_none() {
        "; is the scheduler running, and is --url its REST address?"
    } else {
        "; check the cluster URL (DCOS_URL or `dcos config show core.dcos_url`) and your network"
    };
    CliError::Unreachable(format!(
        "cannot reach {} ({}): {detail}{hint}",
        call.url, target.origin
    ))
}

/// The JSON body of a successful answer, or the error its status means.
pub fn interpret<T: DeserializeOwned>(
    target: &Target,
    call: &ApiCall,
    reply: &Reply,
) -> Result<T, CliError> {
    let error_body = || serde_json::from_slice::<ErrorBody>(&reply.body).ok();
    let server_message = || {
        error_body()
            .map(|b| b.message)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| excerpt(&reply.body))
    };
    match reply.status {
        200..=299 => serde_json::from_slice(&reply.body).map_err(|e| {
            CliError::Failure(format!(
                "{} {} answered {} with a body this CLI cannot read ({e}): {}",
                call.method,
                call.url,
                reply.status,
                excerpt(&reply.body)
            ))
        }),
        400 => {
            let body = error_body().unwrap_or_default();
            Err(CliError::Refused {
                summary: if body.message.is_empty() {
                    excerpt(&reply.body)
                } else {
                    body.message
                },
                problems: body
                    .problems
                    .into_iter()
                    .map(|p| Problem {
                        field: p.field,
                        message: p.message,
                    })
                    .collect(),
            })
        }
        401 => Err(CliError::Unauthorized(match &target.service {
            Some(_) => format!(
                "the cluster refused the request (401 Unauthorized): your login token is missing or has expired. Run `dcos auth login` and try again ({})",
                target.origin
            ),
            None => format!(
                "{} answered 401 Unauthorized: {}",
                call.url,
                server_message()
            ),
        })),
        403 => Err(CliError::Unauthorized(format!(
            "the cluster refused the request (403 Forbidden): your account may not use {}; ask an administrator for the permission dcos:adminrouter:service:{}",
            call.url,
            target.service.as_deref().unwrap_or("<name>")
        ))),
        404 => {
            let ours = error_body().is_some_and(|b| b.error == "not_found");
            Err(CliError::NotFound(match (&target.service, ours) {
                (_, true) => format!(
                    "the scheduler does not serve {} ({}); it may be older than this CLI",
                    call.path,
                    server_message()
                ),
                (Some(service), false) => format!(
                    "no service named {service:?} answers at {}: is it installed under another name? List services with `dcos service` and pass --name <name>",
                    target.base
                ),
                (None, false) => format!(
                    "nothing at {} serves {}: is --url the scheduler's REST address (its PORT_API)?",
                    target.base, call.path
                ),
            }))
        }
        502..=504 => Err(CliError::Unavailable(format!(
            "the service is not available right now ({} {}): {}; it may be starting or restarting, try again in a moment",
            reply.status,
            reason(reply.status),
            server_message()
        ))),
        status => Err(CliError::Failure(format!(
            "{} {} answered {status} {}: {}",
            call.method,
            call.url,
            reason(status),
            server_message()
        ))),
    }
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// The start of a body, for messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    let short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Target {
        Target {
            base: "https://c.example.com/service/fastdata".into(),
            token: Some("abc".into()),
            tls: Tls::Verify,
            service: Some("fastdata".into()),
            origin: "DCOS_URL".into(),
        }
    }

    #[test]
    fn requests_carry_the_token_and_json_headers() {
        let put = call(&cluster(), "PUT", "/v1/scaling", Some("{}".into()));
        assert_eq!(put.url, "https://c.example.com/service/fastdata/v1/scaling");
        assert!(put.headers.contains(&("authorization", "token=abc".into())));
        assert!(
            put.headers
                .contains(&("content-type", "application/json".into()))
        );
        let direct = Target {
            token: None,
            service: None,
            base: "http://127.0.0.1:8080".into(),
            ..cluster()
        };
        let get = call(&direct, "GET", "/v1/status", None);
        assert_eq!(get.url, "http://127.0.0.1:8080/v1/status");
        assert!(
            get.headers.iter().all(|(name, _)| *name != "authorization"),
            "no token, no header"
        );
        assert!(get.headers.iter().all(|(name, _)| *name != "content-type"));
    }

    fn error_for(status: u16, body: &str, target: &Target) -> CliError {
        let call = call(target, "GET", "/v1/status", None);
        interpret::<serde_json::Value>(
            target,
            &call,
            &Reply {
                status,
                body: body.as_bytes().to_vec(),
            },
        )
        .expect_err("an error")
    }

    #[test]
    fn each_status_becomes_an_actionable_error() {
        let t = cluster();
        let e = error_for(401, "<html>401</html>", &t);
        assert!(matches!(e, CliError::Unauthorized(_)));
        assert!(e.to_string().contains("dcos auth login"));
        let e = error_for(403, "", &t);
        assert!(e.to_string().contains("dcos:adminrouter:service:fastdata"));
        let e = error_for(404, "<html>404 Not Found</html>", &t);
        assert!(matches!(e, CliError::NotFound(_)));
        assert!(e.to_string().contains("--name"), "{e}");
        let e = error_for(
            404,
            r#"{"error":"not_found","message":"no such endpoint: /v1/status"}"#,
            &t,
        );
        assert!(e.to_string().contains("older than this CLI"), "{e}");
        let e = error_for(
            400,
            r#"{"error":"bad_request","message":"refused","problems":[{"field":"max_consumers","message":"max_consumers must be at least 1"}]}"#,
            &t,
        );
        match &e {
            CliError::Refused { problems, .. } => assert_eq!(
                problems,
                &vec![Problem {
                    field: "max_consumers".into(),
                    message: "max_consumers must be at least 1".into()
                }]
            ),
            other => panic!("{other:?}"),
        }
        for status in [502, 503, 504] {
            let e = error_for(status, r#"{"error":"unavailable","message":"busy"}"#, &t);
            assert!(
                matches!(e, CliError::Unavailable(ref m) if m.contains("busy")),
                "{e:?}"
            );
        }
        let e = error_for(500, "boom", &t);
        assert!(
            matches!(e, CliError::Failure(ref m) if m.contains("500 Internal Server Error: boom"))
        );
    }

    #[test]
    fn an_unreadable_success_is_a_failure_not_a_panic() {
        let t = cluster();
        let call = call(&t, "GET", "/v1/status", None);
        let e = interpret::<crate::model::Status>(
            &t,
            &call,
            &Reply {
                status: 200,
                body: b"<html>login</html>".to_vec(),
            },
        )
        .expect_err("not JSON");
        assert!(matches!(e, CliError::Failure(ref m) if m.contains("cannot read")));
    }
}
