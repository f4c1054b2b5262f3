//! Conformance of `POST /api/v1/scheduler`: the HTTP rules, SUBSCRIBE and the subscription
//! lifecycle, against `scheduler.jsonl` and the inventory of Mesos'
//! `scheduler_http_api_tests.cpp` (reference 5.2).

mod common;

use std::time::Duration;

use common::*;
use fastdata_proto::v1::scheduler::{self, call, event};
use prost::Message as _;

const FILE: &str = "scheduler.jsonl";

fn recorded_errors_before_subscribe() -> Vec<Step> {
    transcript(FILE)
        .into_iter()
        .take_while(|s| s.name != "SUBSCRIBE")
        .collect()
}

/// `scheduler.jsonl` step 1: every recorded error case before SUBSCRIBE (no Content-Type,
/// `text/plain`, a non-protobuf body, SUBSCRIBE without `subscribe`, SUBSCRIBE with a
/// `Mesos-Stream-Id`, `Accept: text/plain`, unknown framework with and without a stream id)
/// gets the recorded status, body and `Content-Type`.
#[tokio::test]
async fn recorded_error_cases_before_subscribe() {
    let cluster = start(fast_config(1)).await;
    let url = format!("{}/api/v1/scheduler", cluster.master_url());
    let steps = recorded_errors_before_subscribe();
    assert_eq!(steps.len(), 8);
    for step in steps {
        let answer = replay(&url, &step, &[]).await;
        assert_eq!(answer.status, step.status(), "{}", step.name);
        assert_eq!(Some(answer.body.clone()), step.body_text(), "{}", step.name);
        assert_eq!(
            answer.header("content-type"),
            step.response_headers()
                .get("content-type")
                .map(String::as_str),
            "{}",
            step.name
        );
    }
    cluster.stop().await;
}

/// `scheduler.jsonl` step 2 (and Mesos `SchedulerHttpApiTest.Subscribe`): the recorded
/// SUBSCRIBE gets 200, chunked, `Content-Type: application/x-protobuf`, a UUID
/// `Mesos-Stream-Id`, then SUBSCRIBED, HEARTBEAT and OFFERS equal to the recorded ones (ids
/// aside) for an agent with the recorded resources.
#[tokio::test]
async fn recorded_subscribe() {
    let cluster = start(fast_config(1)).await;
    let url = format!("{}/api/v1/scheduler", cluster.master_url());
    let step = step(FILE, "SUBSCRIBE");
    let headers: Vec<(String, String)> = step.headers();
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut stream = open_stream(&url, &refs, step.body()).await.expect("200");
    assert_eq!(stream.header("transfer-encoding"), Some("chunked"));
    assert_eq!(stream.header("content-type"), Some(PROTOBUF));
    let stream_id = stream.stream_id();
    assert!(uuid::Uuid::parse_str(&stream_id).is_ok(), "{stream_id}");
    let recorded = step.scheduler_events();
    assert_eq!(recorded.len(), 3);
    for expected in recorded {
        let got = stream.next_event().await.expect("event");
        assert_eq!(
            normalise_event(got.clone()),
            normalise_event(expected.clone())
        );
        if let Some(s) = got.subscribed {
            let id = s.framework_id.value;
            let master = s.master_info.expect("master_info").id;
            assert_eq!(
                id,
                format!("{master}-0000"),
                "framework ids are <master id>-NNNN"
            );
        }
    }
    cluster.stop().await;
}

/// `scheduler.jsonl` step 3: after subscribing, REVIVE without `Mesos-Stream-Id`, with a
/// wrong one, and ACKNOWLEDGE with a 5-byte uuid get the recorded 400s and texts.
#[tokio::test]
async fn recorded_error_cases_after_subscribe() {
    let cluster = start(fast_config(1)).await;
    let sched = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    for name in [
        "error: REVIVE without Mesos-Stream-Id",
        "error: REVIVE with wrong Mesos-Stream-Id",
        "error: ACKNOWLEDGE with 5-byte uuid",
    ] {
        let step = step(FILE, name);
        let mut call = step.scheduler_call();
        rewrite_ids(&mut call, &sched.framework_id, &cluster.agent_ids()[0], &[]);
        let recorded_stream = step
            .headers()
            .into_iter()
            .find(|(k, _)| k == "Mesos-Stream-Id")
            .map(|(_, v)| v);
        let mut headers = proto_headers();
        let stream_id = match &recorded_stream {
            // The recorded run used its own valid stream id for the uuid case.
            Some(_) if name.contains("ACKNOWLEDGE") => Some(sched.stream_id.clone()),
            other => other.clone(),
        };
        if let Some(id) = &stream_id {
            headers.push(("Mesos-Stream-Id", id));
        }
        let answer = post(&sched.url, &headers, call.encode_to_vec()).await;
        let expected = step.body_text().unwrap().replace(
            "0b7730e5-9ad7-43dc-8238-dfd1185d5a85-0000",
            &sched.framework_id,
        );
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (step.status(), expected.as_str()),
            "{name}"
        );
    }
    cluster.stop().await;
}

fn subscribe_body() -> Vec<u8> {
    subscribe_call(framework_info()).encode_to_vec()
}

/// Mesos `NoContentType`, `MalformedContent`, `UnsupportedContentMediaType`, `GetRequest`
/// and `ValidJsonButInvalidProtobuf`.
#[tokio::test]
async fn header_and_body_rules() {
    let cluster = start(fast_config(1)).await;
    let url = format!("{}/api/v1/scheduler", cluster.master_url());
    let a = post(&url, &[("Accept", PROTOBUF)], subscribe_body()).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Expecting 'Content-Type' to be present")
    );
    let a = post(
        &url,
        &[("Content-Type", PROTOBUF)],
        b"MALFORMED_CONTENT".to_vec(),
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Failed to parse body into Call protobuf")
    );
    let a = post(
        &url,
        &[("Content-Type", "application/unknown-media-type")],
        subscribe_body(),
    )
    .await;
    assert_eq!(a.status, 415);
    let a = post(
        &url,
        &[("Content-Type", JSON)],
        br#"{"string":"valid_json"}"#.to_vec(),
    )
    .await;
    assert_eq!(a.status, 400);
    let a = post(
        &url,
        &[("Content-Type", JSON)],
        b"MALFORMED_CONTENT".to_vec(),
    )
    .await;
    assert_eq!(a.status, 400);
    let a = request(reqwest::Method::GET, &url, &[], Vec::new()).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST"));
    cluster.stop().await;
}

/// Mesos `NoAcceptHeader`, `DefaultAccept` (JSON when Accept is missing or `*/*`),
/// `NotAcceptable` (406), and a JSON subscription whose events are JSON records.
#[tokio::test]
async fn accept_rules_and_json_streams() {
    let cluster = start(fast_config(1)).await;
    let url = format!("{}/api/v1/scheduler", cluster.master_url());
    for accept in [None, Some("*/*")] {
        let mut headers = vec![("Content-Type", PROTOBUF)];
        if let Some(a) = accept {
            headers.push(("Accept", a));
        }
        let mut stream = open_stream(&url, &headers, subscribe_body())
            .await
            .expect("200");
        assert_eq!(
            stream.header("content-type"),
            Some(JSON),
            "Accept {accept:?}"
        );
        let first = stream.next_event().await.unwrap();
        assert_eq!(first.r#type, Some(event::Type::Subscribed as i32));
        drop(stream);
    }
    let a = open_stream(
        &url,
        &[("Content-Type", PROTOBUF), ("Accept", "foo")],
        subscribe_body(),
    )
    .await
    .err()
    .expect("406");
    assert_eq!(a.status, 406);
    // A JSON request body and JSON events.
    let json_body = fastdata_proto::json::to_json(&subscribe_call(framework_info()))
        .unwrap()
        .to_string()
        .into_bytes();
    let mut stream = open_stream(&url, &[("Content-Type", JSON), ("Accept", JSON)], json_body)
        .await
        .expect("200");
    let first = stream.next_record().await.unwrap();
    let value: serde_json::Value = serde_json::from_slice(&first).expect("a JSON record");
    assert_eq!(value["type"], "SUBSCRIBED");
    assert_eq!(value["subscribed"]["heartbeat_interval_seconds"], 1.0);
    cluster.stop().await;
}

/// Mesos `Subscribe`: SUBSCRIBED, an immediate HEARTBEAT, then one every interval (1 s in
/// this configuration).
#[tokio::test]
async fn heartbeats_at_the_configured_interval() {
    let mut config = fast_config(0);
    config.heartbeat_interval = Duration::from_millis(300);
    let cluster = start(config).await;
    let mut sched = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let started = std::time::Instant::now();
    for _ in 0..3 {
        let ev = sched.stream.next_event().await.unwrap();
        assert_eq!(ev.r#type, Some(event::Type::Heartbeat as i32));
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(550), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    cluster.stop().await;
}

/// Mesos `SubscribeWithStreamId` and `RejectFrameworkWithInvalidRole` (200, then one ERROR
/// event, then the stream ends).
#[tokio::test]
async fn subscribe_errors() {
    let cluster = start(fast_config(1)).await;
    let url = format!("{}/api/v1/scheduler", cluster.master_url());
    let mut headers = proto_headers();
    headers.push(("Mesos-Stream-Id", "4bbae25f-03bc-4c0c-93f1-0b87b3875c38"));
    let a = post(&url, &headers, subscribe_body()).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            400,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header"
        )
    );
    let mut info = framework_info();
    info.roles = vec!["/test/test1".into()];
    let mut stream = open_stream(&url, &proto_headers(), subscribe_call(info).encode_to_vec())
        .await
        .expect("200");
    let ev = stream.next_event().await.unwrap();
    assert_eq!(ev.r#type, Some(event::Type::Error as i32));
    assert!(ev.error.unwrap().message.contains("/test/test1"));
    assert!(stream.ends_within(Duration::from_secs(2)).await);
    // Roles without MULTI_ROLE.
    let mut info = framework_info();
    info.capabilities.clear();
    let mut stream = open_stream(&url, &proto_headers(), subscribe_call(info).encode_to_vec())
        .await
        .expect("200");
    let ev = stream.next_event().await.unwrap();
    assert_eq!(ev.r#type, Some(event::Type::Error as i32));
    cluster.stop().await;
}

/// Mesos `SubscribedOnRetry` and `TeardownWrongStreamId`, and `scheduler.jsonl` step 13:
/// a second SUBSCRIBE with the framework id in both places keeps the framework, the old
/// stream gets ERROR "Framework failed over" and ends, the new stream gets SUBSCRIBED (same
/// id) and HEARTBEAT under a new stream id, and the old stream id is refused with 400.
#[tokio::test]
async fn failover_resubscribe() {
    let cluster = start(fast_config(1)).await;
    let mut first = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let mut info = framework_info();
    info.id = first.framework_id();
    let mut second = Scheduler::subscribe(&cluster.master_url(), info).await;
    assert_eq!(second.framework_id, first.framework_id);
    assert_ne!(second.stream_id, first.stream_id);
    let ev = first.stream.next_event_skipping(true).await.expect("ERROR");
    assert_eq!(ev.error.expect("ERROR").message, "Framework failed over");
    assert!(first.stream.ends_within(Duration::from_secs(2)).await);
    let ev = second.stream.next_event().await.unwrap();
    assert_eq!(ev.r#type, Some(event::Type::Heartbeat as i32));
    // TEARDOWN with the first stream id: 400 with the recorded wording.
    let teardown = scheduler::Call {
        r#type: Some(call::Type::Teardown as i32),
        ..Default::default()
    };
    let a = first.call(teardown.clone()).await;
    assert_eq!(a.status, 400);
    assert!(a.body.starts_with(&format!(
        "The stream ID '{}' included in this request didn't match",
        first.stream_id
    )));
    // TeardownWithoutStreamId.
    let mut call = teardown.clone();
    call.framework_id = second.framework_id();
    let a = post(&second.url, &proto_headers(), call.encode_to_vec()).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            400,
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
        )
    );
    // TEARDOWN on the new stream: 202, the stream ends, the framework is gone.
    let a = second.call(teardown.clone()).await;
    assert_eq!(a.status, 202);
    assert!(second.stream.ends_within(Duration::from_secs(2)).await);
    let a = second.call(teardown).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Framework cannot be found")
    );
    cluster.stop().await;
}

/// Reference 2.2 and Mesos `SchedulerSubscribeAfterFailoverTimeout`: when the stream
/// closes, calls get 403 "Framework is not subscribed" until the failover timeout removes
/// the framework; re-subscribing after that gets ERROR "Framework has been removed".
#[tokio::test]
async fn failover_timeout_removes_the_framework() {
    let cluster = start(fast_config(1)).await;
    let mut info = framework_info();
    info.failover_timeout = Some(1.0);
    let sched = Scheduler::subscribe(&cluster.master_url(), info.clone()).await;
    let (url, framework_id, stream_id) = (
        sched.url.clone(),
        sched.framework_id(),
        sched.stream_id.clone(),
    );
    drop(sched);
    // The server notices the closed connection at its next write (a heartbeat, 1 s here).
    let revive = scheduler::Call {
        framework_id: framework_id.clone(),
        r#type: Some(call::Type::Revive as i32),
        ..Default::default()
    };
    let mut headers = proto_headers();
    headers.push(("Mesos-Stream-Id", &stream_id));
    let mut saw_403 = false;
    for _ in 0..40 {
        let a = post(&url, &headers, revive.encode_to_vec()).await;
        if a.status == 403 {
            assert_eq!(a.body, "Framework is not subscribed");
            saw_403 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_403, "the closed stream was never noticed");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let a = post(&url, &headers, revive.encode_to_vec()).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Framework cannot be found")
    );
    info.id = framework_id;
    let body = subscribe_call(info).encode_to_vec();
    let mut stream = open_stream(&url, &proto_headers(), body)
        .await
        .expect("200");
    let ev = stream.next_event().await.unwrap();
    assert_eq!(
        ev.error.expect("ERROR").message,
        "Framework has been removed"
    );
    cluster.stop().await;
}

/// Reference 1.3: a call of type UNKNOWN from a subscribed framework gets 501; REQUEST,
/// SUPPRESS, REVIVE get 202.
#[tokio::test]
async fn unknown_call_type_is_not_implemented() {
    let cluster = start(fast_config(1)).await;
    let sched = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let a = sched
        .call(scheduler::Call {
            r#type: Some(call::Type::Unknown as i32),
            ..Default::default()
        })
        .await;
    assert_eq!(a.status, 501);
    for kind in [call::Type::Suppress, call::Type::Revive] {
        let a = sched
            .call(scheduler::Call {
                r#type: Some(kind as i32),
                ..Default::default()
            })
            .await;
        assert_eq!(a.status, 202);
        assert_eq!(a.header("content-length"), Some("0"));
    }
    let a = sched
        .call(scheduler::Call {
            r#type: Some(call::Type::Request as i32),
            request: Some(call::Request::default()),
            ..Default::default()
        })
        .await;
    assert_eq!(a.status, 202);
    cluster.stop().await;
}

/// Reference 2.1: re-subscribing with a different principal is refused with an ERROR;
/// `framework_id` differing from `framework_info.id` is a 400.
#[tokio::test]
async fn resubscribe_rules() {
    let cluster = start(fast_config(0)).await;
    let sched = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let mut info = framework_info();
    info.id = sched.framework_id();
    info.principal = Some("someone-else".into());
    let mut stream = open_stream(
        &sched.url,
        &proto_headers(),
        subscribe_call(info.clone()).encode_to_vec(),
    )
    .await
    .expect("200");
    let ev = stream.next_event().await.unwrap();
    assert_eq!(
        ev.error.unwrap().message,
        "Changing framework's principal is not allowed."
    );
    let mut call = subscribe_call(framework_info());
    call.framework_id = sched.framework_id();
    let a = post(&sched.url, &proto_headers(), call.encode_to_vec()).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            400,
            "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'"
        )
    );
    cluster.stop().await;
}
