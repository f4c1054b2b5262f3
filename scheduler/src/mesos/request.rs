//! Mesos scheduler API requests as values, and what each answer means.
//!
//! Owns the wire rules of `POST /api/v1/scheduler` (reference 1.1, 1.3, 2.1, 2.2): the
//! headers, the protobuf body, the 307 `Location` rule, and the classification of every
//! status code into what the client must do. Sends nothing: the connection task and
//! [`super::MesosClient::call`] turn these `http::Request`s into reqwest requests.

use std::str::FromStr;

use bytes::Bytes;
use fastdata_proto::v1::scheduler;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::uri::Authority;
use prost::Message as _;

/// Mesos compares `Content-Type` by exact string equality, and picks JSON for the event
/// stream unless `Accept` names protobuf alone (reference 1.1).
pub const PROTOBUF: &str = "application/x-protobuf";
/// The scheduler endpoint on a master.
pub const SCHEDULER_PATH: &str = "/api/v1/scheduler";
/// The subscription's id: in the SUBSCRIBE answer, and required on every other call.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// A request that could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The master base URL does not make a URI.
    #[error("{master:?} is not a usable Mesos master URL: {reason}")]
    BadMaster {
        /// The base URL given.
        master: String,
        /// What is wrong.
        reason: String,
    },
    /// The stream id cannot be sent as a header value.
    #[error("the Mesos-Stream-Id {0:?} cannot be sent as a header")]
    BadStreamId(String),
}

fn scheduler_uri(master: &str) -> Result<http::Uri, RequestError> {
    let uri = format!("{}{SCHEDULER_PATH}", master.trim_end_matches('/'));
    http::Uri::from_str(&uri).map_err(|e| RequestError::BadMaster {
        master: master.to_owned(),
        reason: e.to_string(),
    })
}

fn post(
    master: &str,
    authorization: Option<&HeaderValue>,
) -> Result<http::request::Builder, RequestError> {
    let mut builder = http::Request::post(scheduler_uri(master)?)
        .header(CONTENT_TYPE, PROTOBUF)
        .header(ACCEPT, PROTOBUF);
    if let Some(value) = authorization {
        builder = builder.header(AUTHORIZATION, value.clone());
    }
    Ok(builder)
}

/// The SUBSCRIBE request: protobuf both ways, and never a `Mesos-Stream-Id` (the master
/// answers 400 "Subscribe calls should not include the 'Mesos-Stream-Id' header").
pub fn subscribe_request(
    master: &str,
    call: &scheduler::Call,
    authorization: Option<&HeaderValue>,
) -> Result<http::Request<Bytes>, RequestError> {
    post(master, authorization)?
        .body(Bytes::from(call.encode_to_vec()))
        .map_err(|e| RequestError::BadMaster {
            master: master.to_owned(),
            reason: e.to_string(),
        })
}

/// Any other call: the subscription's `Mesos-Stream-Id` is required (400 without it, 400
/// with another subscription's id).
pub fn call_request(
    master: &str,
    stream_id: &str,
    call: &scheduler::Call,
    authorization: Option<&HeaderValue>,
) -> Result<http::Request<Bytes>, RequestError> {
    let stream_id = HeaderValue::from_str(stream_id)
        .map_err(|_| RequestError::BadStreamId(stream_id.to_owned()))?;
    post(master, authorization)?
        .header(STREAM_ID_HEADER, stream_id)
        .body(Bytes::from(call.encode_to_vec()))
        .map_err(|e| RequestError::BadMaster {
            master: master.to_owned(),
            reason: e.to_string(),
        })
}

/// Why a 307 could not be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// No `Location` header (or not text).
    #[error("the redirect has no Location header")]
    Missing,
    /// The `Location` names no host.
    #[error("the redirect's Location {0:?} names no host")]
    NoHost(String),
    /// The host:port part is not a valid authority.
    #[error("the redirect's Location {location:?} has an invalid host:port: {reason}")]
    BadAuthority {
        /// The header.
        location: String,
        /// What is wrong.
        reason: String,
    },
}

/// The leader's base URL from a 307 answer: host and port from `Location`, the scheme we
/// used for `current`.
///
/// A real master answers `Location: //localhost:5050/master/api/v1/scheduler`: protocol
/// relative, and with a path that depends on libprocess delegation (`redirect.jsonl`;
/// reference 2.2 and 7), so only host:port is trusted, as mesos-go and pymesos do. An
/// absolute `http://` or `https://` Location is read the same way (its host:port, our
/// scheme): the master only knows the leader's address, not how we reach it. We follow by
/// hand because an HTTP client that follows 307s by itself hides the new leader from us
/// (mesos-go#332), and later calls must go to it.
pub fn redirect_target(current: &str, location: Option<&str>) -> Result<String, LocationError> {
    let location = location.map(str::trim).ok_or(LocationError::Missing)?;
    let scheme = current.split_once("://").map_or("http", |(s, _)| s);
    let rest = if let Some(rest) = location.strip_prefix("//") {
        rest
    } else if let Some((_, rest)) = location.split_once("://") {
        rest
    } else {
        return Err(LocationError::NoHost(location.to_owned()));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(LocationError::NoHost(location.to_owned()));
    }
    let parsed = Authority::from_str(authority).map_err(|e| LocationError::BadAuthority {
        location: location.to_owned(),
        reason: e.to_string(),
    })?;
    if authority.contains('@') {
        // Credentials in a redirect would be sent to whoever the header names.
        return Err(LocationError::BadAuthority {
            location: location.to_owned(),
            reason: "user information is not allowed".into(),
        });
    }
    Ok(format!("{scheme}://{parsed}"))
}

/// The first bytes of an error body worth reporting (Mesos answers plain text).
pub const ERROR_BODY_LIMIT: usize = 2048;

/// What a non-stream answer to SUBSCRIBE (or a failure to get one) means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeFailure {
    /// The master could not be reached (refused, reset, DNS, timeout): try the next one.
    Unreachable(String),
    /// 307: another master leads; subscribe there at once.
    Redirect {
        /// The leader's base URL.
        leader: String,
    },
    /// The master exists but cannot take us now: 503 "No leader elected", 503 "Master has
    /// not finished recovery", 404 while it starts (`faults-master-restart.jsonl`), other
    /// 5xx, 408, 429. Retry with backoff, trying the next master.
    Unavailable {
        /// HTTP status.
        status: u16,
        /// Body text.
        body: String,
    },
    /// 401: our credentials were refused.
    Unauthorized {
        /// Body text.
        body: String,
    },
    /// Any other 4xx: the request itself is refused (400 with Mesos' validation text, 403,
    /// 405, 406, 415). Retrying the same request cannot help.
    Refused {
        /// HTTP status.
        status: u16,
        /// Body text.
        body: String,
    },
    /// The answer broke the protocol (a 307 without a usable Location, a 200 without a
    /// stream id or with another encoding): retry with backoff on the next master.
    Protocol(String),
    /// The DC/OS IAM login endpoint could not be reached or failed (5xx): retry later.
    LoginUnavailable(String),
    /// The DC/OS IAM refused the service account's login.
    LoginRefused {
        /// HTTP status from the login endpoint.
        status: u16,
        /// Its body.
        body: String,
    },
}

impl std::fmt::Display for SubscribeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscribeFailure::Unreachable(e) => write!(f, "unreachable: {e}"),
            SubscribeFailure::Redirect { leader } => write!(f, "redirected to {leader}"),
            SubscribeFailure::Unavailable { status, body } => {
                write!(f, "answered {status} {}", one_line(body))
            }
            SubscribeFailure::Unauthorized { body } => {
                write!(f, "answered 401 {}", one_line(body))
            }
            SubscribeFailure::Refused { status, body } => {
                write!(f, "answered {status} {}", one_line(body))
            }
            SubscribeFailure::Protocol(e) => write!(f, "broke the protocol: {e}"),
            SubscribeFailure::LoginUnavailable(e) => {
                write!(f, "the DC/OS IAM login failed: {e}")
            }
            SubscribeFailure::LoginRefused { status, body } => {
                write!(
                    f,
                    "the DC/OS IAM refused the login: {status} {}",
                    one_line(body)
                )
            }
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A 200 SUBSCRIBE answer's stream id, or why the answer is unusable.
///
/// The stream must be protobuf (we asked for nothing else; a JSON stream would not decode)
/// and carry `Mesos-Stream-Id` (every later call needs it; mesos-go fails the same way).
pub fn stream_id_of(headers: &http::HeaderMap) -> Result<String, SubscribeFailure> {
    if let Some(content_type) = headers.get(CONTENT_TYPE) {
        let text = content_type.to_str().unwrap_or_default();
        if !text.trim().eq_ignore_ascii_case(PROTOBUF) {
            return Err(SubscribeFailure::Protocol(format!(
                "the event stream is {text:?}, not {PROTOBUF}"
            )));
        }
    }
    let id = headers
        .get(STREAM_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    // Mesos stream ids are UUID strings (≤ 128 bytes); anything else cannot be trusted to
    // round-trip as a header on our calls.
    if id.is_empty() || id.len() > 128 {
        return Err(SubscribeFailure::Protocol(
            "the SUBSCRIBE answer has no usable Mesos-Stream-Id header".into(),
        ));
    }
    Ok(id.to_owned())
}

/// A non-200 SUBSCRIBE answer, classified. `current` is the master that answered.
pub fn classify_subscribe_answer(
    current: &str,
    status: u16,
    headers: &http::HeaderMap,
    body: &str,
) -> SubscribeFailure {
    let body = body.trim().to_owned();
    match status {
        307 | 301 | 302 | 303 | 308 => {
            let location = headers
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok());
            match redirect_target(current, location) {
                Ok(leader) if leader == current => {
                    SubscribeFailure::Protocol(format!("{current} redirected to itself"))
                }
                Ok(leader) => SubscribeFailure::Redirect { leader },
                Err(e) => SubscribeFailure::Protocol(e.to_string()),
            }
        }
        401 => SubscribeFailure::Unauthorized { body },
        404 | 408 | 429 | 500..=599 => SubscribeFailure::Unavailable { status, body },
        400..=499 => SubscribeFailure::Refused { status, body },
        _ => SubscribeFailure::Protocol(format!("unexpected answer {status} {}", one_line(&body))),
    }
}

/// What the answer to a (non-SUBSCRIBE) call means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAnswer {
    /// 202 (or 200 for the synchronous calls): taken.
    Accepted,
    /// The master no longer has our subscription: 403 "Framework is not subscribed" (its
    /// stream was closed), or a 307 because it no longer leads. The client must
    /// re-subscribe (reference 5.4 item 7; mesos-go `CodesIndicatingSubscriptionLoss`).
    SubscriptionLost {
        /// HTTP status.
        status: u16,
        /// Body text.
        body: String,
        /// The leader named by a 307.
        leader: Option<String>,
    },
    /// 401: credentials refused (a service account refreshes its token and retries once).
    Unauthorized {
        /// Body text.
        body: String,
    },
    /// Anything else (400 with the validation text, 5xx): the call failed; the
    /// subscription stands.
    Failed {
        /// HTTP status.
        status: u16,
        /// Body text.
        body: String,
    },
}

/// Classifies a call's answer. `current` is the master the call went to.
pub fn classify_call_answer(
    current: &str,
    status: u16,
    headers: &http::HeaderMap,
    body: &str,
) -> CallAnswer {
    let body = body.trim().to_owned();
    match status {
        200 | 202 => CallAnswer::Accepted,
        403 => CallAnswer::SubscriptionLost {
            status,
            body,
            leader: None,
        },
        307 => {
            let location = headers
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok());
            CallAnswer::SubscriptionLost {
                status,
                body,
                leader: redirect_target(current, location).ok(),
            }
        }
        401 => CallAnswer::Unauthorized { body },
        _ => CallAnswer::Failed { status, body },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastdata_proto::v1::FrameworkId;
    use fastdata_proto::v1::scheduler::call;

    fn revive() -> scheduler::Call {
        scheduler::Call {
            framework_id: Some(FrameworkId {
                value: "fw-1".into(),
            }),
            r#type: Some(call::Type::Revive as i32),
            ..Default::default()
        }
    }

    fn header<'a>(req: &'a http::Request<Bytes>, name: &str) -> Option<&'a str> {
        req.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn subscribe_has_protobuf_both_ways_and_no_stream_id() {
        let call = scheduler::Call {
            r#type: Some(call::Type::Subscribe as i32),
            ..Default::default()
        };
        let auth = HeaderValue::from_static("Basic cDpz");
        let req = subscribe_request("http://m1:5050", &call, Some(&auth)).unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().to_string(), "http://m1:5050/api/v1/scheduler");
        assert_eq!(header(&req, "content-type"), Some(PROTOBUF));
        assert_eq!(header(&req, "accept"), Some(PROTOBUF));
        assert_eq!(header(&req, "authorization"), Some("Basic cDpz"));
        assert_eq!(header(&req, "mesos-stream-id"), None);
        assert_eq!(
            scheduler::Call::decode(req.body().clone()).unwrap(),
            call,
            "the body is the protobuf Call"
        );
        let anonymous = subscribe_request("https://m1:5050/", &call, None).unwrap();
        assert_eq!(
            anonymous.uri().to_string(),
            "https://m1:5050/api/v1/scheduler"
        );
        assert_eq!(header(&anonymous, "authorization"), None);
    }

    #[test]
    fn calls_carry_the_stream_id() {
        let req = call_request("http://m1:5050", "a6f1-stream", &revive(), None).unwrap();
        assert_eq!(req.uri().path(), SCHEDULER_PATH);
        assert_eq!(header(&req, "mesos-stream-id"), Some("a6f1-stream"));
        assert_eq!(header(&req, "content-type"), Some(PROTOBUF));
        assert_eq!(header(&req, "accept"), Some(PROTOBUF));
        assert_eq!(
            scheduler::Call::decode(req.body().clone()).unwrap(),
            revive()
        );
        assert_eq!(
            call_request("http://m1:5050", "bad\nid", &revive(), None).unwrap_err(),
            RequestError::BadStreamId("bad\nid".into())
        );
        assert!(matches!(
            call_request("http://m 1:5050", "s", &revive(), None).unwrap_err(),
            RequestError::BadMaster { .. }
        ));
    }

    #[test]
    fn redirects_keep_our_scheme_and_take_host_port() {
        let table: [(&str, Option<&str>, Result<&str, &str>); 10] = [
            // What a real master sends (redirect.jsonl).
            (
                "http://127.0.0.1:5051",
                Some("//localhost:5050/master/api/v1/scheduler"),
                Ok("http://localhost:5050"),
            ),
            (
                "https://m2.example:5050",
                Some("//m1.example:5050/api/v1/scheduler"),
                Ok("https://m1.example:5050"),
            ),
            (
                "http://m2:5050",
                Some("https://m1:5050/master/api/v1/scheduler"),
                Ok("http://m1:5050"),
            ),
            ("http://m2:5050", Some("//10.0.0.7"), Ok("http://10.0.0.7")),
            (
                "http://m2:5050",
                Some(" //[::1]:5050/x "),
                Ok("http://[::1]:5050"),
            ),
            ("http://m2:5050", None, Err("no Location")),
            (
                "http://m2:5050",
                Some("/master/api/v1/scheduler"),
                Err("names no host"),
            ),
            ("http://m2:5050", Some("//"), Err("names no host")),
            (
                "http://m2:5050",
                Some("//bad host:5050/"),
                Err("invalid host:port"),
            ),
            (
                "http://m2:5050",
                Some("//user:pw@m1:5050/"),
                Err("user information"),
            ),
        ];
        for (current, location, expected) in table {
            let got = redirect_target(current, location);
            match expected {
                Ok(url) => assert_eq!(got.as_deref(), Ok(url), "{location:?}"),
                Err(text) => {
                    let e = got.expect_err("must fail").to_string();
                    assert!(e.contains(text), "{location:?}: {e}");
                }
            }
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn subscribe_answers_map_to_actions() {
        let m = "http://127.0.0.1:5051";
        let redirect = headers(&[("location", "//localhost:5050/master/api/v1/scheduler")]);
        let none = http::HeaderMap::new();
        let table = [
            (
                307,
                &redirect,
                "",
                SubscribeFailure::Redirect {
                    leader: "http://localhost:5050".into(),
                },
            ),
            (
                307,
                &none,
                "",
                SubscribeFailure::Protocol("the redirect has no Location header".into()),
            ),
            (
                503,
                &none,
                "No leader elected",
                SubscribeFailure::Unavailable {
                    status: 503,
                    body: "No leader elected".into(),
                },
            ),
            (
                503,
                &none,
                "Master has not finished recovery",
                SubscribeFailure::Unavailable {
                    status: 503,
                    body: "Master has not finished recovery".into(),
                },
            ),
            (
                404,
                &none,
                "404 Not Found.",
                SubscribeFailure::Unavailable {
                    status: 404,
                    body: "404 Not Found.".into(),
                },
            ),
            (
                401,
                &none,
                "401 Unauthorized.",
                SubscribeFailure::Unauthorized {
                    body: "401 Unauthorized.".into(),
                },
            ),
            (
                400,
                &none,
                "Failed to validate scheduler::Call: Authenticated principal 'a' does not match principal 'b' set in `FrameworkInfo`\n",
                SubscribeFailure::Refused {
                    status: 400,
                    body: "Failed to validate scheduler::Call: Authenticated principal 'a' does not match principal 'b' set in `FrameworkInfo`".into(),
                },
            ),
            (
                415,
                &none,
                "",
                SubscribeFailure::Refused {
                    status: 415,
                    body: String::new(),
                },
            ),
            (
                502,
                &none,
                "bad gateway",
                SubscribeFailure::Unavailable {
                    status: 502,
                    body: "bad gateway".into(),
                },
            ),
        ];
        for (status, headers, body, expected) in table {
            assert_eq!(
                classify_subscribe_answer(m, status, headers, body),
                expected,
                "{status} {body}"
            );
        }
        let to_self = headers_to_self();
        assert!(matches!(
            classify_subscribe_answer("http://localhost:5050", 307, &to_self, ""),
            SubscribeFailure::Protocol(_)
        ));
    }

    fn headers_to_self() -> http::HeaderMap {
        headers(&[("location", "//localhost:5050/api/v1/scheduler")])
    }

    #[test]
    fn a_stream_needs_protobuf_and_a_stream_id() {
        let good = headers(&[
            ("content-type", PROTOBUF),
            ("mesos-stream-id", "7fc28bf1-c051-4646-bed4-509620f3f8e5"),
        ]);
        assert_eq!(
            stream_id_of(&good),
            Ok("7fc28bf1-c051-4646-bed4-509620f3f8e5".into())
        );
        let json = headers(&[
            ("content-type", "application/json"),
            ("mesos-stream-id", "x"),
        ]);
        assert!(
            matches!(stream_id_of(&json), Err(SubscribeFailure::Protocol(e)) if e.contains("application/json"))
        );
        let missing = headers(&[("content-type", PROTOBUF)]);
        assert!(matches!(
            stream_id_of(&missing),
            Err(SubscribeFailure::Protocol(_))
        ));
        let long = "x".repeat(129);
        let too_long = headers(&[("mesos-stream-id", long.as_str())]);
        assert!(stream_id_of(&too_long).is_err());
    }

    #[test]
    fn call_answers_map_to_actions() {
        let m = "http://127.0.0.1:5050";
        let none = http::HeaderMap::new();
        let redirect = headers(&[("location", "//localhost:5051/master/api/v1/scheduler")]);
        assert_eq!(
            classify_call_answer(m, 202, &none, ""),
            CallAnswer::Accepted
        );
        assert_eq!(
            classify_call_answer(m, 200, &none, ""),
            CallAnswer::Accepted
        );
        assert_eq!(
            classify_call_answer(m, 403, &none, "Framework is not subscribed"),
            CallAnswer::SubscriptionLost {
                status: 403,
                body: "Framework is not subscribed".into(),
                leader: None
            }
        );
        assert_eq!(
            classify_call_answer(m, 307, &redirect, ""),
            CallAnswer::SubscriptionLost {
                status: 307,
                body: String::new(),
                leader: Some("http://localhost:5051".into())
            }
        );
        assert_eq!(
            classify_call_answer(m, 401, &none, "401 Unauthorized."),
            CallAnswer::Unauthorized {
                body: "401 Unauthorized.".into()
            }
        );
        // A wrong stream id is a 400, not a 403 (reference 1.3): the call failed, and
        // the subscription is not declared lost on its account.
        assert_eq!(
            classify_call_answer(
                m,
                400,
                &none,
                "The stream ID 'x' included in this request didn't match"
            ),
            CallAnswer::Failed {
                status: 400,
                body: "The stream ID 'x' included in this request didn't match".into()
            }
        );
    }
}
