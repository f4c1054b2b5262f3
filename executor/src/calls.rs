//! Executor API calls and their HTTP requests, built as values.
//!
//! Owns the shape of what goes to `POST http://$MESOS_AGENT_ENDPOINT/api/v1/executor`
//! (reference 1.1, 3.2-3.4, and the recorded calls of `executor-events.jsonl`): both ids on
//! every call (they are `required`), SUBSCRIBE with an explicit `subscribe` message even when
//! empty (400 otherwise), protobuf both ways (`Content-Type` and `Accept` exactly
//! `application/x-protobuf`; Mesos compares the strings), and `Authorization: Bearer` when the
//! agent gave a token. Pure: the functions return values that tests compare without a socket.

use bytes::Bytes;
use fastdata_proto::v1::{ExecutorId, FrameworkId, TaskStatus, executor};
use http::{HeaderValue, Method, Request, header};
use prost::Message as _;

/// The media type of every body, both ways.
pub const PROTOBUF: &str = "application/x-protobuf";

/// The two ids every call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallIds {
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: String,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: String,
}

impl CallIds {
    fn call(&self, kind: executor::call::Type) -> executor::Call {
        executor::Call {
            executor_id: ExecutorId {
                value: self.executor_id.clone(),
            },
            framework_id: FrameworkId {
                value: self.framework_id.clone(),
            },
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    /// SUBSCRIBE carrying what is still unacknowledged (empty on the first one).
    pub fn subscribe(&self, subscribe: executor::call::Subscribe) -> executor::Call {
        executor::Call {
            subscribe: Some(subscribe),
            ..self.call(executor::call::Type::Subscribe)
        }
    }

    /// UPDATE of one status.
    pub fn update(&self, status: TaskStatus) -> executor::Call {
        executor::Call {
            update: Some(executor::call::Update { status }),
            ..self.call(executor::call::Type::Update)
        }
    }

    /// MESSAGE to the scheduler (unreliable: Mesos may drop it).
    pub fn message(&self, data: Vec<u8>) -> executor::Call {
        executor::Call {
            message: Some(executor::call::Message { data }),
            ..self.call(executor::call::Type::Message)
        }
    }
}

/// The HTTP request for `call` to the executor API at `url`.
pub fn request(url: &str, call: &executor::Call, token: Option<&str>) -> Request<Bytes> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(header::CONTENT_TYPE, PROTOBUF)
        .header(header::ACCEPT, PROTOBUF);
    if let Some(token) = token
        && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        value.set_sensitive(true);
        builder = builder.header(header::AUTHORIZATION, value);
    }
    builder
        .body(Bytes::from(call.encode_to_vec()))
        // Invariant: the URL comes from a validated `host:port`, the headers are constants.
        .expect("an executor API request is always well formed")
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use fastdata_proto::mesos_ext::executor_status;
    use fastdata_proto::v1::TaskState;
    use fastdata_proto::validate::Validate as _;

    use super::*;

    fn ids() -> CallIds {
        CallIds {
            framework_id: "0b7730e5-9ad7-43dc-8238-dfd1185d5a85-0000".into(),
            executor_id: "fdx-custom-executor".into(),
        }
    }

    /// The body of a recorded step of `executor-events.jsonl`.
    fn recorded_body(step: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../proto/tests/data/mesos-transcripts/executor-events.jsonl");
        let text = std::fs::read_to_string(path).unwrap();
        let line = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["step"] == step)
            .unwrap_or_else(|| panic!("no step {step}"));
        base64::engine::general_purpose::STANDARD
            .decode(line["request"]["body_b64"].as_str().unwrap())
            .unwrap()
    }

    #[test]
    fn first_subscribe_is_byte_for_byte_the_recorded_one() {
        let call = ids().subscribe(executor::call::Subscribe::default());
        assert_eq!(call.encode_to_vec(), recorded_body("SUBSCRIBE"));
        call.validate().unwrap();
    }

    #[test]
    fn update_matches_the_recorded_one_but_for_uuid_and_executor_id() {
        let recorded =
            executor::Call::decode(recorded_body("UPDATE TASK_RUNNING").as_slice()).unwrap();
        let mut status = recorded.update.clone().unwrap().status;
        let call = ids().update(status.clone());
        assert_eq!(call, recorded);
        call.validate().unwrap();

        // Ours also carries the executor id in the status (checked by the agent).
        status.executor_id = Some(ExecutorId {
            value: "fdx-custom-executor".into(),
        });
        ids().update(status).validate().unwrap();
        let fresh = ids().update(executor_status("t", TaskState::TaskKilled));
        fresh.validate().unwrap();
    }

    #[test]
    fn message_matches_the_recorded_one() {
        let call = ids().message(b"hello from fdx-custom-executor".to_vec());
        assert_eq!(call.encode_to_vec(), recorded_body("MESSAGE"));
        call.validate().unwrap();
    }

    #[test]
    fn requests_carry_the_exact_headers() {
        let call = ids().subscribe(Default::default());
        let url = "http://127.0.0.1:5051/api/v1/executor";
        let req = request(url, &call, None);
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), url);
        assert_eq!(
            req.headers()[header::CONTENT_TYPE],
            "application/x-protobuf"
        );
        assert_eq!(req.headers()[header::ACCEPT], "application/x-protobuf");
        assert!(req.headers().get(header::AUTHORIZATION).is_none());
        assert_eq!(
            executor::Call::decode(req.body().clone()).unwrap(),
            call,
            "body is the encoded call"
        );

        let req = request(url, &call, Some("tok"));
        let auth = &req.headers()[header::AUTHORIZATION];
        assert_eq!(auth, "Bearer tok");
        assert!(auth.is_sensitive(), "never printed by http's Debug");
    }
}
