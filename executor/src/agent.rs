//! The HTTP side of the executor API: the subscription stream and the calls.
//!
//! Owns the sockets to the agent. A SUBSCRIBE answered 200 becomes a stream of RecordIO
//! records (reference 1.2; chunk boundaries mean nothing) decoded into executor events and
//! handed to the state machine as [`Input`]s, ending with [`Input::StreamEnded`]; anything
//! else becomes [`Input::SubscribeFailed`]. Other calls go on other connections (the stream
//! holds its own) and answer with a [`CallAnswer`]. Protocol garbage (a bad length header, a
//! record that is not an `Event`, a wrong content type) ends the stream with an error; it
//! never panics the process.
//!
//! Must not: decide anything (retries, ordering, what an answer means) — that is
//! [`crate::lifecycle`]'s.

use std::time::Duration;

use bytes::BytesMut;
use fastdata_proto::recordio::RecordIoDecoder;
use fastdata_proto::v1::executor;
use futures::StreamExt as _;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::calls::{PROTOBUF, request};
use crate::connection::ConnId;
use crate::lifecycle::{CallAnswer, Input};

/// Longest wait for an answer's headers (SUBSCRIBE) or a whole answer (other calls).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a TCP connection to the agent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP keepalive on every connection: the agent's own heartbeats come only every 30 min
/// (reference 3.2), so a silently dead peer is found by TCP instead.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Largest event accepted (a LAUNCH carries one TaskInfo; far below this).
const MAX_EVENT_LEN: usize = 4 * 1024 * 1024;

/// Why the client could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the HTTP client for the agent: {0}")]
pub struct ClientError(#[source] reqwest::Error);

/// Talks to one agent.
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl AgentClient {
    /// A client for `url` (`http://host:port/api/v1/executor`) with an optional bearer token.
    pub fn new(url: String, token: Option<String>) -> Result<AgentClient, ClientError> {
        let http = reqwest::Client::builder()
            // The agent never redirects (reference 1.3).
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_keepalive(KEEPALIVE)
            .tcp_nodelay(true)
            .build()
            .map_err(ClientError)?;
        Ok(AgentClient { http, url, token })
    }

    fn prepare(&self, call: &executor::Call) -> Result<reqwest::Request, String> {
        reqwest::Request::try_from(request(&self.url, call, self.token.as_deref()))
            .map_err(|e| format!("cannot build the request: {e}"))
    }

    /// Sends SUBSCRIBE on attempt `conn`; its events and end go to `inputs`. Abort the
    /// returned task to close the stream.
    pub fn subscribe(
        &self,
        conn: ConnId,
        call: &executor::Call,
        inputs: mpsc::Sender<Input>,
    ) -> JoinHandle<()> {
        let request = self.prepare(call);
        let http = self.http.clone();
        tokio::spawn(async move {
            let response = match request {
                Ok(req) => match tokio::time::timeout(CALL_TIMEOUT, http.execute(req)).await {
                    Ok(Ok(response)) => Ok(response),
                    Ok(Err(e)) => Err(describe(&e)),
                    Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
                },
                Err(e) => Err(e),
            };
            let response = match response {
                Ok(r) => r,
                Err(error) => {
                    let failed = Input::SubscribeFailed {
                        conn,
                        status: None,
                        error,
                    };
                    let _ = inputs.send(failed).await;
                    return;
                }
            };
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if status != 200 {
                let body = body_text(response).await;
                let error = format!("the agent answered SUBSCRIBE with {status}: {body}");
                let failed = Input::SubscribeFailed {
                    conn,
                    status: Some(status),
                    error,
                };
                let _ = inputs.send(failed).await;
                return;
            }
            if content_type != PROTOBUF {
                let error = format!(
                    "the agent's event stream is {content_type:?}, not the {PROTOBUF} asked for"
                );
                let failed = Input::SubscribeFailed {
                    conn,
                    status: None,
                    error,
                };
                let _ = inputs.send(failed).await;
                return;
            }
            let error = read_events(conn, response, &inputs).await;
            let _ = inputs.send(Input::StreamEnded { conn, error }).await;
        })
    }

    /// Sends a non-SUBSCRIBE call and waits for its answer.
    pub async fn call(&self, call: &executor::Call) -> CallAnswer {
        let request = match self.prepare(call) {
            Ok(r) => r,
            Err(e) => return CallAnswer::Unreachable(e),
        };
        let answer = tokio::time::timeout(CALL_TIMEOUT, async {
            let response = self.http.execute(request).await?;
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            Ok::<_, reqwest::Error>((status, body))
        })
        .await;
        match answer {
            Err(_) => CallAnswer::Unreachable(format!("no answer within {CALL_TIMEOUT:?}")),
            Ok(Err(e)) => CallAnswer::Unreachable(describe(&e)),
            Ok(Ok((202, _))) => CallAnswer::Accepted,
            Ok(Ok((status, body))) => CallAnswer::Refused { status, body },
        }
    }
}

/// Reads records until the stream ends; `Some(error)` if it broke or carried garbage.
async fn read_events(
    conn: ConnId,
    response: reqwest::Response,
    inputs: &mpsc::Sender<Input>,
) -> Option<String> {
    let mut body = response.bytes_stream();
    let mut buf = BytesMut::new();
    let mut decoder = RecordIoDecoder::new(MAX_EVENT_LEN);
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(record)) => match executor::Event::decode(record) {
                    Ok(event) => {
                        let input = Input::Event {
                            conn,
                            event: Box::new(event),
                        };
                        if inputs.send(input).await.is_err() {
                            return None;
                        }
                    }
                    Err(e) => {
                        return Some(format!(
                            "the agent sent a record that is not an executor event: {e}"
                        ));
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    return Some(format!(
                        "the agent's event stream is not valid RecordIO: {e}"
                    ));
                }
            }
        }
        match body.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(e)) => return Some(format!("the event stream broke: {}", describe(&e))),
            None => {
                return match decoder.decode_eof(&mut buf) {
                    Ok(_) => None,
                    Err(e) => Some(format!("the event stream ended mid-record: {e}")),
                };
            }
        }
    }
}

async fn body_text(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        "(no body)".to_owned()
    } else {
        text.chars().take(500).collect()
    }
}

/// The error and its causes on one line (reqwest's Display hides the cause, e.g.
/// "Connection refused").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;
    use crate::calls::CallIds;

    /// Serves one raw HTTP answer to the first request on a fresh port; returns the URL.
    async fn answering(head: &'static str, body: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/executor", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                request.extend_from_slice(&buf[..n]);
            }
            socket.write_all(head.as_bytes()).await.unwrap();
            // One chunk holding the whole body, then the end of the stream.
            let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
            chunked.extend_from_slice(&body);
            chunked.extend_from_slice(b"\r\n0\r\n\r\n");
            if !body.is_empty() {
                socket.write_all(&chunked).await.unwrap();
            }
            let _ = socket.shutdown().await;
        });
        url
    }

    const STREAM: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n";

    async fn subscribe_to(url: String) -> Vec<Input> {
        let client = AgentClient::new(url, None).unwrap();
        let call = CallIds {
            framework_id: "f".into(),
            executor_id: "e".into(),
        }
        .subscribe(Default::default());
        let (tx, mut rx) = mpsc::channel(16);
        let reader = client.subscribe(ConnId(1), &call, tx);
        let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        let mut inputs = Vec::new();
        while let Ok(input) = rx.try_recv() {
            inputs.push(input);
        }
        inputs
    }

    fn ended_with(inputs: &[Input]) -> Option<String> {
        match inputs.last() {
            Some(Input::StreamEnded { error, .. }) => error.clone(),
            other => panic!("the stream did not end: {other:?}"),
        }
    }

    #[tokio::test]
    async fn events_are_decoded_from_recordio() {
        let event = executor::Event {
            r#type: Some(executor::event::Type::Heartbeat as i32),
            ..Default::default()
        };
        let mut body = fastdata_proto::recordio::encode_message(&event).to_vec();
        body.extend_from_slice(&fastdata_proto::recordio::encode_message(&event));
        let inputs = subscribe_to(answering(STREAM, body).await).await;
        assert_eq!(inputs.len(), 3, "{inputs:?}");
        for input in &inputs[..2] {
            assert!(
                matches!(input, Input::Event { conn: ConnId(1), event: got } if **got == event),
                "{input:?}"
            );
        }
        assert_eq!(ended_with(&inputs), None, "a clean end");
    }

    #[tokio::test]
    async fn garbage_ends_the_stream_with_an_error_and_never_panics() {
        let cases: Vec<(&'static str, Vec<u8>, &str)> = vec![
            (STREAM, b"xyz\nabc".to_vec(), "not valid RecordIO"),
            (STREAM, b"3\n\xff\xff\xff".to_vec(), "not an executor event"),
            (STREAM, b"10\nabc".to_vec(), "ended mid-record"),
            (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"{}".to_vec(),
                "not the application/x-protobuf asked for",
            ),
        ];
        for (head, body, words) in cases {
            let inputs = subscribe_to(answering(head, body.clone()).await).await;
            let error = match inputs.last() {
                Some(Input::StreamEnded { error, .. }) => error.clone().unwrap_or_default(),
                Some(Input::SubscribeFailed { error, .. }) => error.clone(),
                other => panic!("{body:?}: {other:?}"),
            };
            assert!(error.contains(words), "{body:?}: {error}");
        }
    }

    #[tokio::test]
    async fn refusals_carry_the_status_and_the_agents_words() {
        let url = answering(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 31\r\n\r\nAgent has not finished recovery",
            Vec::new(),
        )
        .await;
        let inputs = subscribe_to(url).await;
        let Some(Input::SubscribeFailed { status, error, .. }) = inputs.last() else {
            panic!("{inputs:?}")
        };
        assert_eq!(*status, Some(503));
        assert!(
            error.ends_with("503: Agent has not finished recovery"),
            "{error}"
        );

        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/executor", closed.local_addr().unwrap());
        drop(closed);
        let inputs = subscribe_to(url.clone()).await;
        let Some(Input::SubscribeFailed {
            status: None,
            error,
            ..
        }) = inputs.last()
        else {
            panic!("{inputs:?}")
        };
        assert!(
            error.contains("Connection refused"),
            "the cause is named: {error}"
        );
        let client = AgentClient::new(url, None).unwrap();
        let call = CallIds {
            framework_id: "f".into(),
            executor_id: "e".into(),
        }
        .message(b"x".to_vec());
        assert!(matches!(
            client.call(&call).await,
            CallAnswer::Unreachable(_)
        ));
    }
}
