//! The HTTP rules both Mesos endpoints apply before a call reaches the master or the agent.
//!
//! Pure functions from a request's method, headers and body to either a decoded, validated
//! call or the exact answer Mesos 1.12 gives (reference 1.1 and 1.3; `scheduler.jsonl` and
//! `executor-events.jsonl` record the texts). No sockets here: the servers in
//! [`crate::server`] only feed these functions and write what they return.

use base64::Engine as _;
use fastdata_proto::v1::{executor, scheduler};
use fastdata_proto::validate::{Problem, Validate, check_encoded};

/// `application/x-protobuf`.
pub const PROTOBUF: &str = "application/x-protobuf";
/// `application/json`.
pub const JSON: &str = "application/json";
/// The content type of every Mesos error body.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// How a body or an event stream is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (protobuf JSON mapping with proto field names).
    Json,
}

impl Encoding {
    /// The media type of this encoding.
    pub fn media_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }

    /// Encodes one message in this encoding (the payload of one RecordIO record).
    pub fn encode<M: prost::Message + prost::Name>(self, message: &M) -> Vec<u8> {
        match self {
            Encoding::Protobuf => message.encode_to_vec(),
            Encoding::Json => match fastdata_proto::json::to_json(message) {
                Ok(value) => value.to_string().into_bytes(),
                // Only a message type missing from the proto crate's descriptor set gets
                // here, a bug there; an empty object keeps the stream well-formed.
                Err(_) => b"{}".to_vec(),
            },
        }
    }
}

/// A complete non-streaming answer, as Mesos writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// Extra headers (name, value), beyond `Content-Type`.
    pub headers: Vec<(String, String)>,
    /// `Content-Type`, when there is a body to describe.
    pub content_type: Option<&'static str>,
    /// The body.
    pub body: String,
}

impl Answer {
    /// An error answer with a `text/plain; charset=utf-8` body.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            content_type: Some(TEXT_PLAIN),
            body: body.into(),
        }
    }

    /// `202 Accepted`, empty body (the answer to every queued call).
    pub fn accepted() -> Self {
        Answer {
            status: 202,
            headers: Vec::new(),
            content_type: None,
            body: String::new(),
        }
    }

    /// `200 OK` with an empty body.
    pub fn ok_empty() -> Self {
        Answer {
            status: 200,
            headers: Vec::new(),
            content_type: None,
            body: String::new(),
        }
    }

    /// `400 Bad Request` with a text body.
    pub fn bad_request(body: impl Into<String>) -> Self {
        Self::text(400, body)
    }

    /// `405 Method Not Allowed` as libprocess writes it (`MethodNotAllowed({"POST"})`).
    pub fn method_not_allowed(method: &str) -> Self {
        let mut answer = Self::text(
            405,
            format!("Expecting one of {{ 'POST' }}, but received '{method}'"),
        );
        answer.headers.push(("Allow".into(), "POST".into()));
        answer
    }

    /// `401 Unauthorized` exactly as recorded in `auth-basic.jsonl`.
    pub fn unauthorized(realm: &str) -> Self {
        let mut answer = Self::text(401, "401 Unauthorized.");
        answer.headers.push((
            "WWW-Authenticate".into(),
            format!("Basic realm=\"{realm}\""),
        ));
        answer
    }

    /// `307 Temporary Redirect` with a protocol-relative `Location` and no body
    /// (`redirect.jsonl`: no Content-Type, `Content-Length: 0`).
    pub fn redirect(location: String) -> Self {
        Answer {
            status: 307,
            headers: vec![("Location".into(), location)],
            content_type: None,
            body: String::new(),
        }
    }

    /// `501 Not Implemented` (calls of type UNKNOWN).
    pub fn not_implemented() -> Self {
        Answer {
            status: 501,
            headers: Vec::new(),
            content_type: None,
            body: String::new(),
        }
    }
}

/// The parts of an HTTP request the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The `Content-Type` header, when present.
    pub content_type: Option<&'a str>,
    /// The `Accept` header, when present.
    pub accept: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// A call that passed the content-type, parse and validation rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<C> {
    /// The call.
    pub call: C,
    /// The encoding of the request body.
    pub content: Encoding,
}

/// Which endpoint's wording to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Scheduler,
    Executor,
}

impl Api {
    fn full_name(self) -> &'static str {
        match self {
            Api::Scheduler => "mesos.v1.scheduler.Call",
            Api::Executor => "mesos.v1.executor.Call",
        }
    }

    /// The prefix Mesos puts before a validation error (`scheduler.jsonl` and
    /// `executor-events.jsonl`).
    fn validation_prefix(self) -> &'static str {
        match self {
            Api::Scheduler => "Failed to validate scheduler::Call: ",
            Api::Executor => "Failed to validate Executor::Call: ",
        }
    }
}

/// The scheduler endpoint's rules up to and including call validation: 405, 400/415 for the
/// `Content-Type`, 400 for a body that does not parse, 400 for a call that fails
/// `validation::scheduler::call::validate` (M: src/master/http.cpp L468-560).
pub fn decode_scheduler_call(req: RequestParts<'_>) -> Result<Decoded<scheduler::Call>, Answer> {
    let (call, content) = decode::<scheduler::Call>(req, Api::Scheduler)?;
    if let Err(e) = call.validate() {
        return Err(validation_failure(Api::Scheduler, &e.problems));
    }
    Ok(Decoded { call, content })
}

/// The executor endpoint's rules up to and including `validateExecutorCall`
/// (M: src/slave/http.cpp L730-780).
pub fn decode_executor_call(req: RequestParts<'_>) -> Result<Decoded<executor::Call>, Answer> {
    let (call, content) = decode::<executor::Call>(req, Api::Executor)?;
    if let Err(e) = call.validate() {
        return Err(validation_failure(Api::Executor, &e.problems));
    }
    Ok(Decoded { call, content })
}

/// Mesos reports the first rule that fails; required-field problems cannot get here for a
/// protobuf body (the parse already failed), so the first `Rule` is what Mesos would say.
fn validation_failure(api: Api, problems: &[Problem]) -> Answer {
    let text = problems
        .iter()
        .find_map(|p| match p {
            Problem::Rule(text) => Some(text.clone()),
            _ => None,
        })
        .or_else(|| problems.first().map(|p| format!("Not initialized: {p}")))
        .unwrap_or_default();
    Answer::bad_request(format!("{}{text}", api.validation_prefix()))
}

fn decode<C>(req: RequestParts<'_>, api: Api) -> Result<(C, Encoding), Answer>
where
    C: prost::Message + prost::Name + Default,
{
    if req.method != "POST" {
        return Err(Answer::method_not_allowed(req.method));
    }
    let content = content_encoding(req.content_type)?;
    let call = match content {
        Encoding::Protobuf => {
            // A proto2 parser fails on a missing required field or an unknown value in an
            // enum field; prost does not, so check the bytes as the C++ parser would.
            let parses = matches!(check_encoded(api.full_name(), req.body), Ok(problems) if problems.is_empty());
            match C::decode(req.body) {
                Ok(call) if parses => call,
                _ => {
                    return Err(Answer::bad_request(
                        "Failed to parse body into Call protobuf",
                    ));
                }
            }
        }
        Encoding::Json => {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(req.body) {
                return Err(Answer::bad_request(format!(
                    "Failed to parse body into JSON: {e}"
                )));
            }
            let convert_error = |e: &dyn std::fmt::Display| {
                Answer::bad_request(format!("Failed to convert JSON into Call protobuf: {e}"))
            };
            // `from_json` refuses missing required fields before prost could fill them in.
            fastdata_proto::json::from_json::<C>(req.body).map_err(|e| convert_error(&e))?
        }
    };
    Ok((call, content))
}

/// The `Content-Type` rule: exact string equality (Mesos has a TODO for case-insensitivity),
/// 400 when absent, 415 otherwise.
pub fn content_encoding(content_type: Option<&str>) -> Result<Encoding, Answer> {
    match content_type {
        None => Err(Answer::bad_request(
            "Expecting 'Content-Type' to be present",
        )),
        Some(PROTOBUF) => Ok(Encoding::Protobuf),
        Some(JSON) => Ok(Encoding::Json),
        Some(_) => Err(Answer::text(
            415,
            "Expecting 'Content-Type' of application/json or application/x-protobuf",
        )),
    }
}

/// The response encoding of a SUBSCRIBE: JSON is tested first, so a missing `Accept`, `*/*`
/// or a list naming both gives JSON; neither acceptable gives 406.
pub fn response_encoding(accept: Option<&str>) -> Result<Encoding, Answer> {
    if accepts(accept, JSON) {
        Ok(Encoding::Json)
    } else if accepts(accept, PROTOBUF) {
        Ok(Encoding::Protobuf)
    } else {
        Err(Answer::text(
            406,
            "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
        ))
    }
}

/// libprocess `Request::acceptsMediaType`: no header accepts everything; otherwise a media
/// range matches exactly, by `type/*` or by `*/*`, and a `q=0` parameter excludes it.
pub fn accepts(accept: Option<&str>, media_type: &str) -> bool {
    let Some(accept) = accept else {
        return true;
    };
    let (wanted_type, _) = media_type.split_once('/').unwrap_or((media_type, ""));
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let candidate = parts.next().unwrap_or_default();
        let quality = parts
            .filter_map(|p| p.strip_prefix("q="))
            .filter_map(|q| q.parse::<f64>().ok())
            .next()
            .unwrap_or(1.0);
        if quality <= 0.0 {
            return false;
        }
        let (ctype, csub) = candidate.split_once('/').unwrap_or((candidate, ""));
        candidate == "*/*"
            || candidate.eq_ignore_ascii_case(media_type)
            || (csub == "*" && ctype.eq_ignore_ascii_case(wanted_type))
    })
}

/// The principal of an `Authorization: Basic ...` header, when its secret matches one of
/// `credentials` (principal, secret). Anything else is `None` (a 401 for the caller).
pub fn basic_principal(
    authorization: Option<&str>,
    credentials: &[(String, String)],
) -> Option<String> {
    let encoded = authorization?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (principal, secret) = text.split_once(':')?;
    credentials
        .iter()
        .any(|(p, s)| p == principal && s == secret)
        .then(|| principal.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastdata_proto::v1::{FrameworkId, FrameworkInfo};
    use prost::Message as _;
    use scheduler::call::Type;

    fn subscribe_bytes() -> Vec<u8> {
        scheduler::Call {
            r#type: Some(Type::Subscribe as i32),
            subscribe: Some(scheduler::call::Subscribe {
                framework_info: FrameworkInfo {
                    user: "root".into(),
                    name: "t".into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn post<'a>(ct: Option<&'a str>, body: &'a [u8]) -> RequestParts<'a> {
        RequestParts {
            method: "POST",
            content_type: ct,
            accept: None,
            body,
        }
    }

    /// Reference 1.3 (and `scheduler.jsonl` step 1): each header and body rule, in order,
    /// with the recorded status and text.
    #[test]
    fn scheduler_rules_table() {
        let good = subscribe_bytes();
        let cases: Vec<(RequestParts<'_>, u16, &str)> = vec![
            (
                RequestParts {
                    method: "GET",
                    ..post(Some(PROTOBUF), &good)
                },
                405,
                "Expecting one of { 'POST' }, but received 'GET'",
            ),
            (
                post(None, &good),
                400,
                "Expecting 'Content-Type' to be present",
            ),
            (
                post(Some("text/plain"), &good),
                415,
                "Expecting 'Content-Type' of application/json or application/x-protobuf",
            ),
            (
                post(Some("application/x-protobuf; charset=utf-8"), &good),
                415,
                "Expecting 'Content-Type' of application/json or application/x-protobuf",
            ),
            (
                post(Some(PROTOBUF), b"MALFORMED_CONTENT_XYZ\xff\xff"),
                400,
                "Failed to parse body into Call protobuf",
            ),
            (
                post(Some(PROTOBUF), &[0x10, 0x01]),
                400,
                "Failed to validate scheduler::Call: Expecting 'subscribe' to be present",
            ),
        ];
        for (req, status, body) in cases {
            let answer = decode_scheduler_call(req).unwrap_err();
            assert_eq!((answer.status, answer.body.as_str()), (status, body));
            assert_eq!(answer.content_type, Some(TEXT_PLAIN));
        }
        let ok = decode_scheduler_call(post(Some(PROTOBUF), &good)).unwrap();
        assert_eq!(ok.content, Encoding::Protobuf);
    }

    /// `ValidJsonButInvalidProtobuf`, `MalformedContent` (JSON flavour), and a good JSON call.
    #[test]
    fn json_bodies() {
        let a = decode_scheduler_call(post(Some(JSON), br#"{"string":"valid_json"}"#)).unwrap_err();
        assert_eq!(a.status, 400);
        assert!(
            a.body
                .starts_with("Failed to convert JSON into Call protobuf")
        );
        let a = decode_scheduler_call(post(Some(JSON), b"MALFORMED_CONTENT")).unwrap_err();
        assert_eq!(a.status, 400);
        assert!(a.body.starts_with("Failed to parse body into JSON"));
        let body =
            br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}"#;
        let ok = decode_scheduler_call(post(Some(JSON), body)).unwrap();
        assert_eq!(ok.content, Encoding::Json);
        // A required field missing in JSON is a conversion failure, as for stout's parser.
        let body = br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u"}}}"#;
        let a = decode_scheduler_call(post(Some(JSON), body)).unwrap_err();
        assert!(
            a.body
                .starts_with("Failed to convert JSON into Call protobuf")
        );
    }

    /// `MalformedUUID`: ACKNOWLEDGE with a uuid that is not 16 bytes.
    #[test]
    fn malformed_uuid() {
        let call = scheduler::Call {
            framework_id: Some(FrameworkId { value: "f".into() }),
            r#type: Some(Type::Acknowledge as i32),
            acknowledge: Some(scheduler::call::Acknowledge {
                agent_id: Default::default(),
                task_id: Default::default(),
                uuid: b"bad-uuid".to_vec(),
            }),
            ..Default::default()
        }
        .encode_to_vec();
        let a = decode_scheduler_call(post(Some(PROTOBUF), &call)).unwrap_err();
        assert_eq!(
            a.body,
            "Failed to validate scheduler::Call: Not a valid UUID"
        );
    }

    /// `NoAcceptHeader`, `DefaultAccept`, `NotAcceptable`, and protobuf when asked for.
    #[test]
    fn accept_rules() {
        let cases = [
            (None, Ok(Encoding::Json)),
            (Some("*/*"), Ok(Encoding::Json)),
            (Some("application/*"), Ok(Encoding::Json)),
            (Some(PROTOBUF), Ok(Encoding::Protobuf)),
            (
                Some("application/x-protobuf, application/json"),
                Ok(Encoding::Json),
            ),
            (
                Some("application/json;q=0, application/x-protobuf"),
                Ok(Encoding::Protobuf),
            ),
            (Some("foo"), Err(406)),
            (Some("text/plain"), Err(406)),
        ];
        for (accept, expected) in cases {
            let got = response_encoding(accept).map_err(|a| a.status);
            assert_eq!(got, expected, "Accept: {accept:?}");
        }
        assert_eq!(
            response_encoding(Some("text/plain")).unwrap_err().body,
            "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'"
        );
    }

    #[test]
    fn executor_validation_prefix() {
        let call = executor::Call {
            executor_id: Default::default(),
            framework_id: Default::default(),
            r#type: Some(executor::call::Type::Subscribe as i32),
            ..Default::default()
        }
        .encode_to_vec();
        let a = decode_executor_call(post(Some(PROTOBUF), &call)).unwrap_err();
        assert_eq!(
            a.body,
            "Failed to validate Executor::Call: Expecting 'subscribe' to be present"
        );
    }

    #[test]
    fn basic_auth() {
        let creds = vec![("fastdata-principal".to_owned(), "s3cret".to_owned())];
        // Values recorded in auth-basic.jsonl.
        assert_eq!(
            basic_principal(Some("Basic ZmFzdGRhdGEtcHJpbmNpcGFsOnMzY3JldA=="), &creds),
            Some("fastdata-principal".into())
        );
        assert_eq!(
            basic_principal(
                Some("Basic ZmFzdGRhdGEtcHJpbmNpcGFsOndyb25nLXNlY3JldA=="),
                &creds
            ),
            None
        );
        assert_eq!(basic_principal(None, &creds), None);
        assert_eq!(basic_principal(Some("Bearer x"), &creds), None);
    }
}
