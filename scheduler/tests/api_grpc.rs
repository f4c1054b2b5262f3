//! The gRPC control API over a real socket with the generated client: `GetStatus`,
//! `SetScaling` (the same validation as REST), and `WatchStatus` (a snapshot now, then every
//! interval, each new decision as it appears; the stream ends when the client goes away or
//! the server shuts down).

mod api_common;

use std::time::Duration;

use api_common::{Loop, TestApi, now_ms};
use fastdata_proto::control::v1 as pb;
use fastdata_proto::control::v1::control_client::ControlClient;
use fastdata_scheduler::api::sample::sample_snapshot;
use fastdata_scheduler::policy::{Action, Decision, DecisionRecord, Guard, ScalingMode};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

/// Generous bound for anything a loaded 2-core machine should do in well under a second.
const PATIENCE: Duration = Duration::from_secs(30);

async fn client(api: &TestApi) -> ControlClient<Channel> {
    ControlClient::connect(format!("http://{}", api.grpc))
        .await
        .expect("the gRPC server accepts connections")
}

#[tokio::test]
async fn get_status_returns_the_snapshot() {
    let snapshot = sample_snapshot(now_ms());
    let api = TestApi::start(snapshot.clone()).await;
    let status = client(&api)
        .await
        .get_status(pb::GetStatusRequest {})
        .await
        .expect("GetStatus answers")
        .into_inner();
    assert_eq!(status.service_name, "fastdata");
    assert_eq!(status.total_lag, 12_400);
    assert_eq!(status.partitions.len(), 6);
    assert_eq!(status.partitions[0].lag, 4_100);
    assert_eq!(
        status.partitions[0].state,
        pb::PartitionState::Lagging as i32
    );
    assert_eq!(status.partitions[5].committed_offset, None);
    assert_eq!(status.desired_consumers, 4);
    assert_eq!(status.running_consumers, 3);
    assert!(status.sink_healthy);
    assert_eq!(status.produce_rate, 3_100.4);
    assert_eq!(status.recent_decisions.len(), 10);
    assert_eq!(
        status.recent_decisions[0].reason,
        snapshot
            .decisions
            .last()
            .expect("decisions")
            .decision
            .reason
    );
    assert_eq!(status.held_reason, snapshot.held_reason.unwrap_or_default());
    assert_eq!(status.plan_status, pb::PlanStatus::InProgress as i32);
    let scaling = status.scaling.expect("scaling");
    assert_eq!(scaling.scale_up_lag, 500);
    assert_eq!(scaling.mode, pb::ScalingMode::Proportional as i32);
    api.shutdown().await;
}

#[tokio::test]
async fn set_scaling_applies_a_partial_change_and_refuses_bad_ones_by_field() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let mut control = client(&api).await;
    let config = control
        .set_scaling(pb::SetScalingRequest {
            scale_up_lag: Some(3_000),
            mode: Some(pb::ScalingMode::Step as i32),
            interval_seconds: Some(5.0),
            ..pb::SetScalingRequest::default()
        })
        .await
        .expect("a valid change")
        .into_inner();
    assert_eq!(config.scale_up_lag, 3_000);
    assert_eq!(config.mode, pb::ScalingMode::Step as i32);
    assert_eq!(config.interval_seconds, 5.0);
    assert_eq!(config.scale_down_lag, 100, "untouched");
    let status = control
        .get_status(pb::GetStatusRequest {})
        .await
        .expect("GetStatus")
        .into_inner();
    assert_eq!(status.scaling, Some(config));
    // The REST API sees the same change.
    let rest: serde_json::Value = reqwest::get(api.url("/v1/scaling"))
        .await
        .expect("REST answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(rest["scale_up_lag"], 3_000);
    assert_eq!(rest["mode"], "step");

    let refused = control
        .set_scaling(pb::SetScalingRequest {
            scale_down_lag: Some(5_000),
            max_consumers: Some(0),
            cooldown_seconds: Some(-1.0),
            ..pb::SetScalingRequest::default()
        })
        .await
        .expect_err("invalid");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let message = refused.message();
    for part in [
        "cooldown_seconds: cooldown_secs must not be negative",
        "scale_down_lag: scale_down_lag (5000) must be below scale_up_lag (3000)",
        "max_consumers: min_consumers (1) must not exceed max_consumers (0); to pause consumption set min_consumers to 0 as well",
    ] {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
    let unspecified = control
        .set_scaling(pb::SetScalingRequest {
            mode: Some(pb::ScalingMode::Unspecified as i32),
            ..pb::SetScalingRequest::default()
        })
        .await
        .expect_err("an unspecified mode");
    assert_eq!(unspecified.code(), Code::InvalidArgument);
    assert!(
        unspecified
            .message()
            .contains("mode: mode must be SCALING_MODE_STEP")
    );
    // Nothing of the refused changes was applied.
    let after = control
        .get_status(pb::GetStatusRequest {})
        .await
        .expect("GetStatus")
        .into_inner()
        .scaling
        .expect("scaling");
    assert_eq!(after, config);
    api.shutdown().await;
}

#[tokio::test]
async fn set_scaling_is_unavailable_when_the_loop_does_not_answer() {
    let api = TestApi::start_with(
        sample_snapshot(now_ms()),
        Loop::Silent,
        Duration::from_millis(300),
    )
    .await;
    let error = client(&api)
        .await
        .set_scaling(pb::SetScalingRequest {
            scale_up_lag: Some(900),
            ..pb::SetScalingRequest::default()
        })
        .await
        .expect_err("no answer");
    assert_eq!(error.code(), Code::Unavailable);
    assert!(error.message().contains("did not answer within"));
    api.shutdown().await;
}

fn new_decision(at_unix_ms: u64, reason: &str) -> DecisionRecord {
    DecisionRecord {
        at_unix_ms,
        mode: ScalingMode::Proportional,
        input: Default::default(),
        decision: Decision {
            target: 5,
            current: 4,
            action: Action::ScaleUp,
            guard: Some(Guard::AtLimit),
            reason: reason.to_owned(),
        },
        repeats: 0,
        last_at_unix_ms: at_unix_ms,
    }
}

async fn next_event(
    stream: &mut tonic::Streaming<pb::StatusEvent>,
) -> Option<pb::status_event::Event> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("an event (or the end) within the patience bound")
        .map(|e| e.expect("no stream error").event.expect("an event"))
}

#[tokio::test]
async fn watch_status_streams_snapshots_and_each_new_decision_then_ends_on_shutdown() {
    let snapshot = sample_snapshot(now_ms());
    let api = TestApi::start(snapshot.clone()).await;
    let mut stream = client(&api)
        .await
        .watch_status(pb::WatchStatusRequest { interval_ms: 100 })
        .await
        .expect("WatchStatus starts")
        .into_inner();

    // A snapshot now; decisions already in it are not repeated as events.
    match next_event(&mut stream).await {
        Some(pb::status_event::Event::Snapshot(status)) => {
            assert_eq!(status.total_lag, 12_400);
        }
        other => panic!("the first event is a snapshot, not {other:?}"),
    }
    // Then snapshots every interval.
    let mut snapshots = 0;
    while snapshots < 3 {
        match next_event(&mut stream).await {
            Some(pb::status_event::Event::Snapshot(_)) => snapshots += 1,
            other => panic!("only snapshots while nothing is decided, not {other:?}"),
        }
    }

    // Two decisions appear: each comes once, in order, as it appears.
    let at = snapshot.at_unix_ms + 1_000;
    api.publish(|s| {
        s.decisions.push(new_decision(at, "first new decision"));
        s.decisions
            .push(new_decision(at + 1, "second new decision"));
    });
    let mut seen = Vec::new();
    let mut later_snapshots = 0;
    while later_snapshots < 3 {
        match next_event(&mut stream).await {
            Some(pb::status_event::Event::Decision(d)) => seen.push(d),
            Some(pb::status_event::Event::Snapshot(s)) => {
                if !seen.is_empty() {
                    later_snapshots += 1;
                    assert_eq!(
                        s.recent_decisions[0].reason, "second new decision",
                        "snapshots carry the new decisions too"
                    );
                }
            }
            None => panic!("the stream ended early"),
        }
    }
    let reasons: Vec<&str> = seen.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons, ["first new decision", "second new decision"]);
    assert_eq!(seen[0].action, pb::ScalingAction::ScaleUp as i32);
    assert_eq!(seen[0].guard, "at_limit");
    assert_eq!((seen[0].from_consumers, seen[0].target_consumers), (4, 5));

    // A fold (the same record repeated) is not a new decision.
    api.publish(|s| s.decisions.last_mut().expect("a decision").repeats += 3);
    for _ in 0..3 {
        match next_event(&mut stream).await {
            Some(pb::status_event::Event::Snapshot(_)) => {}
            other => panic!("a fold is not a decision event: {other:?}"),
        }
    }

    // Shutdown ends the stream, and the servers stop although a stream was open.
    let shutdown = tokio::spawn(api.shutdown());
    let mut ended = false;
    for _ in 0..50 {
        if next_event(&mut stream).await.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended, "the stream ends on shutdown");
    tokio::time::timeout(PATIENCE, shutdown)
        .await
        .expect("shutdown completes")
        .expect("shutdown task");
}

#[tokio::test]
async fn watch_status_stops_when_the_client_goes_away() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let baseline = api.status.receiver_count();
    let mut control = client(&api).await;
    let mut stream = control
        .watch_status(pb::WatchStatusRequest { interval_ms: 0 })
        .await
        .expect("WatchStatus starts")
        .into_inner();
    assert!(matches!(
        next_event(&mut stream).await,
        Some(pb::status_event::Event::Snapshot(_))
    ));
    // The stream holds a receiver of the snapshots while it runs.
    assert_eq!(api.status.receiver_count(), baseline + 1);
    drop(stream);
    drop(control);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while api.status.receiver_count() > baseline {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server still runs the stream of a client that left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api.shutdown().await;
}
