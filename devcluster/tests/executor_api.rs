//! Conformance of the agent side: executors started as processes with the Mesos
//! environment, `POST /api/v1/executor` (reference 3, `executor-events.jsonl`, the inventory
//! of Mesos' `executor_http_api_tests.cpp` in reference 5.3), and the status update path.
//!
//! The process the agent starts for a custom executor is a small shell script that records
//! its environment and waits; the test itself speaks the executor API in its place, with
//! the ids the agent gave it.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use fastdata_proto::v1::{
    AgentId, CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, Offer, OfferId, Resource, TaskId,
    TaskInfo, TaskState, TaskStatus, command_info, executor, executor_info,
    offer::{Operation, operation},
    scheduler::{self, call},
    task_status, value,
};
use prost::Message as _;

const EVENTS: &str = "executor-events.jsonl";

/// The executor program: records its environment, then waits until the test creates `done`
/// in its sandbox (exit 0) or `fail` (exit 3).
const SCRIPT: &str = "env > env.txt\nwhile [ ! -e done ] && [ ! -e fail ]; do sleep 0.05; done\n[ -e done ] || exit 3\n";

fn scalar(name: &str, v: f64, role: &str) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: v }),
        allocation_info: Some(fastdata_proto::v1::resource::AllocationInfo {
            role: Some(role.into()),
        }),
        ..Default::default()
    }
}

/// Serves `SCRIPT` over HTTP on an ephemeral port (the recorded run fetched its executor
/// from `http://127.0.0.1:8765/...`).
async fn script_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/fdx_custom_executor.py",
        axum::routing::get(|| async { SCRIPT }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://127.0.0.1:{port}/fdx_custom_executor.py")
}

/// The recorded custom-executor LAUNCH of `scheduler.jsonl`, with our ids, the script
/// served by `script_url` instead of the recorded python file, and `sh` instead of
/// `python3`.
fn recorded_launch(agent: &str, task_id: &str, executor_id: &str, script_url: &str) -> TaskInfo {
    let step = step(
        "scheduler.jsonl",
        "custom executor: ACCEPT LAUNCH (ExecutorInfo type CUSTOM)",
    );
    let call = step.scheduler_call();
    let op = &call.accept.unwrap().operations[0];
    let mut task = op.launch.as_ref().unwrap().task_infos[0].clone();
    task.agent_id.value = agent.into();
    task.task_id.value = task_id.into();
    let executor = task.executor.as_mut().unwrap();
    executor.executor_id.value = executor_id.into();
    let command = executor.command.as_mut().unwrap();
    command.value = Some("sh fdx_custom_executor.py".into());
    command.uris[0].value = script_url.into();
    task
}

fn launch_op(tasks: Vec<TaskInfo>) -> Operation {
    Operation {
        r#type: Some(operation::Type::Launch as i32),
        launch: Some(operation::Launch { task_infos: tasks }),
        ..Default::default()
    }
}

fn ids(offers: &[Offer]) -> Vec<OfferId> {
    offers.iter().map(|o| o.id.clone()).collect()
}

/// Polls the state document until a container of this executor exists and its program has
/// written `env.txt`; returns the sandbox.
async fn sandbox_of(cluster: &fastdata_devcluster::DevCluster, executor_id: &str) -> PathBuf {
    for _ in 0..200 {
        let state = cluster.state();
        for agent in state["agents"].as_array().unwrap() {
            for c in agent["containers"].as_array().unwrap() {
                if c["executor_id"] == executor_id
                    && c["state"] != "Terminated"
                    && let Some(path) = c["sandbox"].as_str()
                {
                    let path = PathBuf::from(path);
                    if path.join("env.txt").exists() {
                        return path;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("executor {executor_id} never started");
}

fn read_env(sandbox: &std::path::Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(sandbox.join("env.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The test's stand-in for the executor program.
struct Executor {
    url: String,
    framework_id: String,
    executor_id: String,
}

impl Executor {
    fn from_env(env: &BTreeMap<String, String>) -> Executor {
        Executor {
            url: format!("http://{}/api/v1/executor", env["MESOS_AGENT_ENDPOINT"]),
            framework_id: env["MESOS_FRAMEWORK_ID"].clone(),
            executor_id: env["MESOS_EXECUTOR_ID"].clone(),
        }
    }

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

    async fn subscribe(&self, subscribe: executor::call::Subscribe) -> Stream {
        let mut call = self.call(executor::call::Type::Subscribe);
        call.subscribe = Some(subscribe);
        open_stream(&self.url, &proto_headers(), call.encode_to_vec())
            .await
            .unwrap_or_else(|a| panic!("SUBSCRIBE: {} {}", a.status, a.body))
    }

    async fn send(&self, call: &executor::Call) -> Answer {
        post(&self.url, &proto_headers(), call.encode_to_vec()).await
    }

    async fn update(&self, status: TaskStatus) -> Answer {
        let mut call = self.call(executor::call::Type::Update);
        call.update = Some(executor::call::Update { status });
        self.send(&call).await
    }
}

fn running(task_id: &str, state: TaskState) -> TaskStatus {
    fastdata_proto::mesos_ext::executor_status(task_id, state)
}

/// Subscribes a scheduler with the recorded FrameworkInfo and launches one task on a custom
/// executor that runs [`SCRIPT`]; returns the scheduler, the executor stand-in and sandbox.
async fn start_custom(
    cluster: &fastdata_devcluster::DevCluster,
    executor_id: &str,
    checkpoint: bool,
) -> (Scheduler, Executor, PathBuf) {
    let mut info = step("scheduler.jsonl", "SUBSCRIBE")
        .scheduler_call()
        .subscribe
        .unwrap()
        .framework_info;
    info.checkpoint = checkpoint.then_some(true);
    let mut s = Scheduler::subscribe(&cluster.master_url(), info).await;
    let offers = s.offers().await;
    s.take_outstanding();
    let url = script_server().await;
    let task = recorded_launch(
        &cluster.agent_ids()[0],
        "fdx-custom-task-1",
        executor_id,
        &url,
    );
    let a = s
        .accept(ids(&offers), vec![launch_op(vec![task])], Some(0.0))
        .await;
    assert_eq!(a.status, 202);
    let sandbox = sandbox_of(cluster, executor_id).await;
    let exec = Executor::from_env(&read_env(&sandbox));
    (s, exec, sandbox)
}

fn strip_ids_executor_event(mut ev: executor::Event) -> executor::Event {
    if let Some(s) = ev.subscribed.as_mut() {
        s.executor_info.framework_id = None;
        s.executor_info.command = None;
        s.framework_info.id = None;
        s.agent_info.id = None;
        s.agent_info.port = None;
        s.container_id = None;
    }
    if let Some(l) = ev.launch.as_mut() {
        l.task.agent_id.value.clear();
        if let Some(e) = l.task.executor.as_mut() {
            e.framework_id = None;
            e.command = None;
        }
    }
    if let Some(a) = ev.acknowledged.as_mut() {
        a.uuid.clear();
    }
    ev
}

/// `executor-events.jsonl` and `scheduler.jsonl` step 12, replayed with the test as the
/// executor: SUBSCRIBED (executor, framework and agent info, container id) then the queued
/// LAUNCH; UPDATE TASK_RUNNING → ACKNOWLEDGED from the agent at once and UPDATE at the
/// scheduler; UPDATE without source and with TASK_STAGING → the recorded 400s; MESSAGE →
/// scheduler MESSAGE; scheduler KILL → executor KILL; TASK_KILLING/TASK_KILLED; the
/// executor exits 0 → FAILURE{agent_id, executor_id, status 0}.
#[tokio::test]
async fn replay_executor_transcript() {
    let cluster = start(fast_config(1)).await;
    let (mut s, exec, sandbox) = start_custom(&cluster, "fdx-custom-executor", false).await;
    let recorded_fid = "0b7730e5-9ad7-43dc-8238-dfd1185d5a85-0000";

    // SUBSCRIBE, recorded body with our framework id.
    let sub_step = step(EVENTS, "SUBSCRIBE");
    let mut call = executor::Call::decode(sub_step.body().as_slice()).unwrap();
    call.framework_id.value = exec.framework_id.clone();
    let mut stream = open_stream(&exec.url, &proto_headers(), call.encode_to_vec())
        .await
        .expect("200");
    assert_eq!(stream.header("transfer-encoding"), Some("chunked"));
    assert_eq!(stream.header("content-type"), Some(PROTOBUF));
    assert!(stream.header("mesos-stream-id").is_none());
    for expected in sub_step.executor_events() {
        let got = stream.next_executor_event().await.unwrap();
        if let Some(sub) = &got.subscribed {
            assert!(sub.container_id.is_some());
            assert_eq!(
                sub.framework_info.id.as_ref().unwrap().value,
                exec.framework_id
            );
            assert_eq!(
                sub.agent_info.port,
                Some(i32::from(cluster.agent_endpoints()[0].port()))
            );
        }
        let mut got = strip_ids_executor_event(got);
        if let Some(l) = got.launch.as_mut() {
            l.task.executor.as_mut().unwrap().command = None;
        }
        let mut expected = strip_ids_executor_event(expected);
        if let Some(s) = expected.subscribed.as_mut() {
            s.framework_info.name = got.subscribed.as_ref().unwrap().framework_info.name.clone();
        }
        assert_eq!(got, expected);
    }

    // UPDATE TASK_RUNNING (recorded bytes): 202, ACKNOWLEDGED, UPDATE at the scheduler.
    for name in [
        "UPDATE TASK_RUNNING",
        "UPDATE without source (TASK_RUNNING)",
        "UPDATE TASK_STAGING",
        "MESSAGE",
    ] {
        let step = step(EVENTS, name);
        let mut call = executor::Call::decode(step.body().as_slice()).unwrap();
        call.framework_id.value = exec.framework_id.clone();
        let a = exec.send(&call).await;
        let expected = step
            .body_text()
            .unwrap()
            .replace(recorded_fid, &exec.framework_id);
        assert_eq!(
            (a.status, a.body.as_str()),
            (step.status(), expected.as_str()),
            "{name}"
        );
        for recorded in step.executor_events() {
            let got = stream.next_executor_event().await.unwrap();
            assert_eq!(got, recorded, "{name}");
        }
    }
    let status = s.update_of("fdx-custom-task-1").await;
    let recorded = step(
        "scheduler.jsonl",
        "custom executor: ACCEPT LAUNCH (ExecutorInfo type CUSTOM)",
    )
    .scheduler_events()[0]
        .clone();
    let mut want = recorded.update.unwrap().status;
    let mut got = status.clone();
    normalise_status(&mut want);
    normalise_status(&mut got);
    assert_eq!(got, want);
    // The executor's MESSAGE reaches the scheduler.
    let ev = s.next_event().await.unwrap();
    let message = ev.message.expect("MESSAGE");
    assert_eq!(message.executor_id.value, "fdx-custom-executor");
    assert_eq!(message.agent_id.value, cluster.agent_ids()[0]);
    assert_eq!(message.data, b"hello from fdx-custom-executor");

    // Offers name the running executor.
    while s.outstanding.is_empty() {
        s.offers().await;
    }
    assert_eq!(
        s.outstanding[0].executor_ids[0].value,
        "fdx-custom-executor"
    );

    // A plain KILL reaches the executor as KILL{task_id} without a kill policy.
    let kill = scheduler::Call {
        r#type: Some(call::Type::Kill as i32),
        kill: Some(call::Kill {
            task_id: TaskId {
                value: "fdx-custom-task-1".into(),
            },
            agent_id: Some(AgentId {
                value: cluster.agent_ids()[0].clone(),
            }),
            kill_policy: None,
        }),
        ..Default::default()
    };
    assert_eq!(s.call(kill).await.status, 202);
    let ev = stream.next_executor_event().await.unwrap();
    assert_eq!(ev, step(EVENTS, "waiting for KILL").executor_events()[0]);
    for name in ["UPDATE TASK_KILLING", "UPDATE TASK_KILLED"] {
        let step = step(EVENTS, name);
        let mut call = executor::Call::decode(step.body().as_slice()).unwrap();
        call.framework_id.value = exec.framework_id.clone();
        assert_eq!(exec.send(&call).await.status, 202);
        assert_eq!(
            stream.next_executor_event().await.unwrap(),
            step.executor_events()[0]
        );
    }
    for state in [TaskState::TaskKilling, TaskState::TaskKilled] {
        let st = s.update_of("fdx-custom-task-1").await;
        assert_eq!(st.state, state as i32);
        assert_eq!(st.source, Some(task_status::Source::Executor as i32));
    }

    // The executor exits 0: FAILURE {agent_id, executor_id, status: 0}.
    std::fs::write(sandbox.join("done"), b"").unwrap();
    let ev = s.next_event().await.unwrap();
    let failure = ev.failure.expect("FAILURE");
    assert_eq!(failure.executor_id.unwrap().value, "fdx-custom-executor");
    assert_eq!(failure.agent_id.unwrap().value, cluster.agent_ids()[0]);
    assert_eq!(failure.status, Some(0));
    assert!(
        stream.ends_within(Duration::from_secs(3)).await,
        "the agent closes the stream"
    );
    cluster.stop().await;
}

/// `executor-env.json` and `executor-env-checkpoint.json` (reference 3.1): the variables a
/// Mesos agent gives an executor, with MESOS_RECOVERY_TIMEOUT and
/// MESOS_SUBSCRIPTION_BACKOFF_MAX only for checkpointing frameworks.
#[tokio::test]
async fn executor_environment_as_recorded() {
    let recorded: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(transcript_dir().join("executor-env.json")).unwrap(),
    )
    .unwrap();
    let recorded_ckpt: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(transcript_dir().join("executor-env-checkpoint.json")).unwrap(),
    )
    .unwrap();
    for (checkpoint, expected) in [(false, recorded), (true, recorded_ckpt)] {
        let mut config = fast_config(1);
        config.executor_shutdown_grace_period = Duration::from_secs(5);
        config.executor_reregistration_timeout = Duration::from_secs(2);
        let cluster = start(config).await;
        let (s, exec, sandbox) = start_custom(&cluster, "fdx-custom-executor", checkpoint).await;
        let env: BTreeMap<String, String> = read_env(&sandbox)
            .into_iter()
            .filter(|(k, _)| k.starts_with("MESOS_") || k.starts_with("LIBPROCESS_"))
            .collect();
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "checkpoint {checkpoint}"
        );
        let agent_id = cluster.agent_ids()[0].clone();
        let port = cluster.agent_endpoints()[0].port();
        for (k, v) in &expected {
            let want = match k.as_str() {
                "MESOS_AGENT_ENDPOINT" => format!("127.0.0.1:{port}"),
                "MESOS_SLAVE_PID" => format!("slave(1)@127.0.0.1:{port}"),
                "MESOS_SLAVE_ID" => agent_id.clone(),
                "MESOS_EXECUTOR_ID" => "fdx-custom-executor".into(),
                "MESOS_FRAMEWORK_ID" => s.framework_id.clone(),
                "MESOS_DIRECTORY" | "MESOS_SANDBOX" => sandbox.display().to_string(),
                _ => v.clone(),
            };
            assert_eq!(env[k], want, "{k} (checkpoint {checkpoint})");
        }
        let tail = format!(
            "slaves/{agent_id}/frameworks/{}/executors/fdx-custom-executor/runs/",
            s.framework_id
        );
        assert!(
            env["MESOS_SANDBOX"].contains(&tail),
            "{}",
            env["MESOS_SANDBOX"]
        );
        assert_eq!(exec.executor_id, "fdx-custom-executor");
        // Nothing else is inherited but PATH and HOME.
        let all = read_env(&sandbox);
        assert!(
            all.keys().all(|k| k.starts_with("MESOS_")
                || k.starts_with("LIBPROCESS_")
                || ["PATH", "HOME", "PWD", "SHLVL", "_", "OLDPWD"].contains(&k.as_str())),
            "{all:?}"
        );
        cluster.stop().await;
    }
}

/// Mesos `ExecutorHttpApiTest`: NoContentType, ValidJsonButInvalidProtobuf,
/// MalformedContent, UnsupportedContentMediaType, MessageFromUnknownFramework, GetRequest,
/// NotAcceptable, ValidProtobufInvalidCall, StatusUpdateCallFailedValidation, and the
/// executor endpoint's own errors (unknown executor, not yet subscribed) and HEARTBEAT.
#[tokio::test]
async fn executor_endpoint_rules() {
    let cluster = start(fast_config(1)).await;
    let (_s, exec, _sandbox) = start_custom(&cluster, "rules-executor", false).await;
    let url = exec.url.clone();
    let message = {
        let mut c = exec.call(executor::call::Type::Message);
        c.message = Some(executor::call::Message {
            data: b"x".to_vec(),
        });
        c
    };
    let a = post(&url, &[], message.encode_to_vec()).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Expecting 'Content-Type' to be present")
    );
    let a = post(
        &url,
        &[("Content-Type", JSON)],
        br#"{"string":"valid_json"}"#.to_vec(),
    )
    .await;
    assert_eq!(a.status, 400);
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
        message.encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 415);
    let a = request(reqwest::Method::GET, &url, &[], Vec::new()).await;
    assert_eq!(a.status, 405);
    // Unknown framework, unknown executor.
    let mut unknown = message.clone();
    unknown.framework_id.value = "nope-0000".into();
    let a = exec.send(&unknown).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Framework cannot be found")
    );
    let mut unknown = message.clone();
    unknown.executor_id.value = "nope".into();
    let a = exec.send(&unknown).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Executor cannot be found")
    );
    // Before SUBSCRIBE: 403.
    let a = exec.send(&message).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (403, "Executor is not subscribed")
    );
    // HEARTBEAT: 202 before any lookup (the C++ library sends dummy ids).
    let mut hb = exec.call(executor::call::Type::Heartbeat);
    hb.framework_id.value = "unused".into();
    hb.executor_id.value = "unused".into();
    assert_eq!(exec.send(&hb).await.status, 202);
    // ValidProtobufInvalidCall.
    for (kind, field) in [
        (executor::call::Type::Subscribe, "subscribe"),
        (executor::call::Type::Update, "update"),
        (executor::call::Type::Message, "message"),
    ] {
        let a = exec.send(&exec.call(kind)).await;
        assert_eq!(
            (a.status, a.body),
            (
                400,
                format!("Failed to validate Executor::Call: Expecting '{field}' to be present")
            )
        );
    }
    // NotAcceptable.
    let mut sub = exec.call(executor::call::Type::Subscribe);
    sub.subscribe = Some(Default::default());
    let a = post(
        &url,
        &[("Content-Type", PROTOBUF), ("Accept", "foo")],
        sub.encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 406);
    // StatusUpdateCallFailedValidation.
    let mut other_executor = running("fdx-custom-task-1", TaskState::TaskRunning);
    other_executor.executor_id = Some(ExecutorId {
        value: "other".into(),
    });
    let mut bad_uuid = running("fdx-custom-task-1", TaskState::TaskRunning);
    bad_uuid.uuid = Some(b"dummy_uuid".to_vec());
    let staging = running("fdx-custom-task-1", TaskState::TaskStaging);
    let mut master_source = running("fdx-custom-task-1", TaskState::TaskRunning);
    master_source.source = Some(task_status::Source::Master as i32);
    for (status, text) in [
        (
            other_executor,
            "ExecutorID in Call: rules-executor does not match ExecutorID in TaskStatus: other"
                .to_owned(),
        ),
        (bad_uuid, "Not a valid UUID".to_owned()),
        (
            staging,
            format!(
                "Received TASK_STAGING from executor rules-executor of framework {} which is not allowed",
                exec.framework_id
            ),
        ),
        (
            master_source,
            format!(
                "Received Call from executor rules-executor of framework {} with invalid source, expecting 'SOURCE_EXECUTOR'",
                exec.framework_id
            ),
        ),
    ] {
        let a = exec.update(status).await;
        assert_eq!(
            (a.status, a.body),
            (400, format!("Failed to validate Executor::Call: {text}"))
        );
    }
    // DefaultAccept / NoAcceptHeader: JSON events; Subscribe: SUBSCRIBED names the executor.
    let mut stream = open_stream(
        &url,
        &[("Content-Type", PROTOBUF), ("Accept", "*/*")],
        sub.encode_to_vec(),
    )
    .await
    .expect("200");
    assert_eq!(stream.header("content-type"), Some(JSON));
    let ev = stream.next_executor_event().await.unwrap();
    let subscribed = ev.subscribed.expect("SUBSCRIBED");
    assert_eq!(subscribed.executor_info.executor_id.value, "rules-executor");
    assert!(subscribed.container_id.is_some());
    cluster.stop().await;
}

/// Reference 2.4 and 5.4 case 9: one unacknowledged update per task at a time, retried
/// until acknowledged, the next one only after; ACKNOWLEDGED to the executor right after
/// the agent accepts each update, whatever the scheduler does; duplicates by uuid ignored.
#[tokio::test]
async fn status_updates_one_at_a_time() {
    let cluster = start(fast_config(1)).await;
    let (mut s, exec, _sandbox) = start_custom(&cluster, "hol-executor", false).await;
    let mut stream = exec.subscribe(Default::default()).await;
    let first = stream.next_executor_event().await.unwrap();
    assert!(first.subscribed.is_some());
    let _launch = stream.next_executor_event().await.unwrap();
    let running_update = running("fdx-custom-task-1", TaskState::TaskRunning);
    let finished = running("fdx-custom-task-1", TaskState::TaskFinished);
    for status in [&running_update, &finished, &running_update] {
        assert_eq!(exec.update(status.clone()).await.status, 202);
        let ack = stream
            .next_executor_event()
            .await
            .unwrap()
            .acknowledged
            .expect("ACKNOWLEDGED");
        assert_eq!(ack.uuid, status.uuid.clone().unwrap());
    }
    // The scheduler sees TASK_RUNNING, again and again (retries), never TASK_FINISHED.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1800);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), s.next_event()).await
            && let Some(u) = ev.update
        {
            seen.push(u.status);
        }
    }
    assert!(seen.len() >= 2, "retried: {seen:?}");
    assert!(seen.iter().all(|st| st.uuid == running_update.uuid));
    s.acknowledge(&seen[0]).await;
    let next = s.update_of("fdx-custom-task-1").await;
    assert_eq!(next.state, TaskState::TaskFinished as i32);
    assert_eq!(next.uuid, finished.uuid);
    cluster.stop().await;
}

/// Reference 3.2: a second SUBSCRIBE closes the first stream; its
/// `unacknowledged_updates` are accepted (ACKNOWLEDGED after SUBSCRIBED) and forwarded;
/// HEARTBEAT events follow at the executor heartbeat interval (Mesos `HeartbeatEvents`).
#[tokio::test]
async fn resubscribe_with_unacknowledged_updates() {
    let mut config = fast_config(1);
    config.executor_heartbeat_interval = Duration::from_millis(400);
    let cluster = start(config).await;
    let (mut s, exec, _sandbox) = start_custom(&cluster, "resub-executor", true).await;
    let mut first = exec.subscribe(Default::default()).await;
    assert!(
        first
            .next_executor_event()
            .await
            .unwrap()
            .subscribed
            .is_some()
    );
    assert!(first.next_executor_event().await.unwrap().launch.is_some());
    let pending = running("fdx-custom-task-1", TaskState::TaskRunning);
    let mut second = exec
        .subscribe(executor::call::Subscribe {
            unacknowledged_tasks: Vec::new(),
            unacknowledged_updates: vec![executor::call::Update {
                status: pending.clone(),
            }],
        })
        .await;
    assert!(first.ends_within(Duration::from_secs(2)).await);
    let ev = second.next_executor_event().await.unwrap();
    assert!(ev.subscribed.is_some());
    let ev = second.next_executor_event().await.unwrap();
    assert_eq!(
        ev.acknowledged.expect("ACKNOWLEDGED").uuid,
        pending.uuid.clone().unwrap()
    );
    let st = s.update_of("fdx-custom-task-1").await;
    assert_eq!(st.uuid, pending.uuid);
    let ev = second.next_executor_event().await.unwrap();
    assert_eq!(ev.r#type, Some(executor::event::Type::Heartbeat as i32));
    cluster.stop().await;
}

/// Reference 3.3 SHUTDOWN and 2.3: the scheduler's SHUTDOWN reaches the executor; one that
/// does not exit is killed after the grace period; its live task becomes TASK_KILLED and
/// the scheduler gets FAILURE. An executor that exits by itself with tasks running: its
/// tasks fail with REASON_EXECUTOR_TERMINATED.
#[tokio::test]
async fn executor_shutdown_and_exit() {
    let cluster = start(fast_config(1)).await;
    let (mut s, exec, _sandbox) = start_custom(&cluster, "shut-executor", false).await;
    let mut stream = exec.subscribe(Default::default()).await;
    stream.next_executor_event().await.unwrap();
    stream.next_executor_event().await.unwrap();
    assert_eq!(
        exec.update(running("fdx-custom-task-1", TaskState::TaskRunning))
            .await
            .status,
        202
    );
    s.update_of("fdx-custom-task-1").await;
    let shutdown = scheduler::Call {
        r#type: Some(call::Type::Shutdown as i32),
        shutdown: Some(call::Shutdown {
            executor_id: ExecutorId {
                value: "shut-executor".into(),
            },
            agent_id: AgentId {
                value: cluster.agent_ids()[0].clone(),
            },
        }),
        ..Default::default()
    };
    assert_eq!(s.call(shutdown).await.status, 202);
    loop {
        let ev = stream.next_executor_event().await.expect("SHUTDOWN");
        if ev.r#type == Some(executor::event::Type::Shutdown as i32) {
            break;
        }
    }
    let st = s.update_of("fdx-custom-task-1").await;
    assert_eq!(st.state, TaskState::TaskKilled as i32);
    assert_eq!(st.source, Some(task_status::Source::Agent as i32));
    assert_eq!(
        st.reason,
        Some(task_status::Reason::ExecutorTerminated as i32)
    );
    let failure = s.next_event().await.unwrap().failure.expect("FAILURE");
    assert_eq!(failure.status, Some(9), "SIGKILL after the grace period");
    cluster.stop().await;

    // An executor that fails on its own.
    let cluster = start(fast_config(1)).await;
    let (mut s, exec, sandbox) = start_custom(&cluster, "crash-executor", false).await;
    let mut stream = exec.subscribe(Default::default()).await;
    stream.next_executor_event().await.unwrap();
    std::fs::write(sandbox.join("fail"), b"").unwrap();
    let st = s.update_of("fdx-custom-task-1").await;
    assert_eq!(st.state, TaskState::TaskFailed as i32);
    assert_eq!(
        st.reason,
        Some(task_status::Reason::ExecutorTerminated as i32)
    );
    let failure = s.next_event().await.unwrap().failure.expect("FAILURE");
    assert_eq!(failure.status, Some(3 << 8), "wait status of exit code 3");
    cluster.stop().await;
}

/// Reference 3.2: an executor that never subscribes is killed after
/// `executor_registration_timeout`; its task fails with REASON_EXECUTOR_REGISTRATION_TIMEOUT.
#[tokio::test]
async fn executor_registration_timeout() {
    let mut config = fast_config(1);
    config.executor_registration_timeout = Duration::from_millis(800);
    let cluster = start(config).await;
    let (mut s, _exec, _sandbox) = start_custom(&cluster, "silent-executor", false).await;
    let st = s.update_of("fdx-custom-task-1").await;
    assert_eq!(st.state, TaskState::TaskFailed as i32);
    assert_eq!(
        st.reason,
        Some(task_status::Reason::ExecutorRegistrationTimeout as i32)
    );
    cluster.stop().await;
}

fn command_task(agent: &str, id: &str, cmd: &str, uris: Vec<command_info::Uri>) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        agent_id: AgentId {
            value: agent.into(),
        },
        resources: vec![
            scalar("cpus", 0.1, "fastdata-role"),
            scalar("mem", 32.0, "fastdata-role"),
        ],
        command: Some(CommandInfo {
            value: Some(cmd.into()),
            shell: Some(true),
            uris,
            environment: Some(fastdata_proto::v1::Environment {
                variables: vec![fastdata_proto::v1::environment::Variable {
                    name: "FROM_TASK".into(),
                    value: Some("yes".into()),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Command tasks (reference 3.1, `scheduler.jsonl` steps 5 and 8): the command runs in its
/// sandbox with the fetched URIs and the CommandInfo environment; a nonzero exit is
/// TASK_FAILED "Command exited with status N"; a task that ignores SIGTERM is killed after
/// its kill policy's grace period; a URI that cannot be fetched fails the launch with
/// REASON_CONTAINER_LAUNCH_FAILED.
#[tokio::test]
async fn command_tasks() {
    let cluster = start(fast_config(1)).await;
    let agent = cluster.agent_ids()[0].clone();
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let offers = s.offers().await;
    s.take_outstanding();
    let input = std::env::temp_dir().join(format!("devcluster-input-{}", uuid::Uuid::new_v4()));
    std::fs::write(&input, b"payload\n").unwrap();
    let fetch = command_task(
        &agent,
        "fetcher",
        "cat devcluster-input-* > out.txt && echo \"$FROM_TASK $MESOS_SANDBOX\" >> out.txt && exit 4",
        vec![command_info::Uri {
            value: format!("file://{}", input.display()),
            ..Default::default()
        }],
    );
    let stubborn = command_task(&agent, "stubborn", "trap '' TERM; sleep 30", Vec::new());
    let missing = command_task(
        &agent,
        "missing",
        "true",
        vec![command_info::Uri {
            value: "/nonexistent/devcluster-file".into(),
            ..Default::default()
        }],
    );
    let a = s
        .accept(
            ids(&offers),
            vec![launch_op(vec![fetch, stubborn, missing])],
            Some(0.0),
        )
        .await;
    assert_eq!(a.status, 202);
    let st = s.update_of("missing").await;
    assert_eq!(st.state, TaskState::TaskFailed as i32);
    assert_eq!(
        st.reason,
        Some(task_status::Reason::ContainerLaunchFailed as i32)
    );
    assert_eq!(st.source, Some(task_status::Source::Agent as i32));
    assert!(
        st.message
            .unwrap()
            .starts_with("Failed to launch container: Failed to fetch all URIs")
    );
    let mut last = None;
    for _ in 0..3 {
        last = Some(s.update_of("fetcher").await);
    }
    let last = last.unwrap();
    assert_eq!(last.state, TaskState::TaskFailed as i32);
    assert_eq!(
        last.message.as_deref(),
        Some("Command exited with status 4")
    );
    let runs = cluster
        .work_dir()
        .join("agents/0/slaves")
        .join(&agent)
        .join("frameworks")
        .join(&s.framework_id)
        .join("executors/fetcher/runs");
    let sandbox = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = std::fs::read_to_string(sandbox.join("out.txt")).unwrap();
    assert_eq!(out, format!("payload\nyes {}\n", sandbox.display()));
    assert!(sandbox.join("stdout").exists() && sandbox.join("stderr").exists());
    // Kill with a 300 ms grace period: TASK_KILLING, then SIGKILL.
    for state in [TaskState::TaskStarting, TaskState::TaskRunning] {
        assert_eq!(s.update_of("stubborn").await.state, state as i32);
    }
    let kill = scheduler::Call {
        r#type: Some(call::Type::Kill as i32),
        kill: Some(call::Kill {
            task_id: TaskId {
                value: "stubborn".into(),
            },
            agent_id: None,
            kill_policy: Some(fastdata_proto::v1::KillPolicy {
                grace_period: Some(fastdata_proto::v1::DurationInfo {
                    nanoseconds: 300_000_000,
                }),
            }),
        }),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    assert_eq!(s.call(kill).await.status, 202);
    assert_eq!(
        s.update_of("stubborn").await.state,
        TaskState::TaskKilling as i32
    );
    let killed = s.update_of("stubborn").await;
    assert_eq!(killed.state, TaskState::TaskKilled as i32);
    assert_eq!(
        killed.message.as_deref(),
        Some("Command terminated with signal Killed")
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    let _ = std::fs::remove_file(input);
    cluster.stop().await;
}

/// Executor info types: a LAUNCH whose executor is DEFAULT is a TASK_ERROR.
#[tokio::test]
async fn launch_with_default_executor_is_invalid() {
    let cluster = start(fast_config(1)).await;
    let agent = cluster.agent_ids()[0].clone();
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let offers = s.offers().await;
    s.take_outstanding();
    let mut task = command_task(&agent, "bad-exec", "true", Vec::new());
    task.command = None;
    task.executor = Some(ExecutorInfo {
        r#type: Some(executor_info::Type::Default as i32),
        executor_id: ExecutorId { value: "e".into() },
        ..Default::default()
    });
    s.accept(ids(&offers), vec![launch_op(vec![task])], Some(0.0))
        .await;
    let st = s.update_of("bad-exec").await;
    assert_eq!(st.state, TaskState::TaskError as i32);
    cluster.stop().await;
}
