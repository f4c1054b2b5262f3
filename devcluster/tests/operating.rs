//! Operating devcluster: fault injection (`faults-*.jsonl`), HTTP Basic authentication
//! (`auth-basic.jsonl`), a non-leading master address (`redirect.jsonl`), the state
//! document and the binary.

mod common;

use std::time::Duration;

use common::*;
use fastdata_devcluster::{Fault, MasterAddress};
use fastdata_proto::v1::{
    AgentId, CommandInfo, Offer, OfferId, Resource, TaskId, TaskInfo, TaskState, executor,
    offer::{Operation, operation},
    scheduler::{self, call, event},
    task_status, value,
};
use prost::Message as _;

fn sleep_task(agent: &str, id: &str) -> TaskInfo {
    let r = |name: &str, v: f64| Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: v }),
        ..Default::default()
    };
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        agent_id: AgentId {
            value: agent.into(),
        },
        resources: vec![r("cpus", 0.5), r("mem", 128.0)],
        command: Some(CommandInfo {
            value: Some("sleep 600".into()),
            shell: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn launch(tasks: Vec<TaskInfo>) -> Operation {
    Operation {
        r#type: Some(operation::Type::Launch as i32),
        launch: Some(operation::Launch { task_infos: tasks }),
        ..Default::default()
    }
}

/// One SUBSCRIBE attempt on a fresh connection; `None` when refused (agent down).
async fn connect_and_subscribe(
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Option<Stream> {
    let mut req = client().post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.ok()?;
    if resp.status() != 200 {
        return None;
    }
    Some(stream_of(resp))
}

fn ids(offers: &[Offer]) -> Vec<OfferId> {
    offers.iter().map(|o| o.id.clone()).collect()
}

fn reconcile(tasks: Vec<(&str, Option<&str>)>) -> scheduler::Call {
    scheduler::Call {
        r#type: Some(call::Type::Reconcile as i32),
        reconcile: Some(call::Reconcile {
            tasks: tasks
                .into_iter()
                .map(|(t, a)| call::reconcile::Task {
                    task_id: TaskId { value: t.into() },
                    agent_id: a.map(|a| AgentId { value: a.into() }),
                })
                .collect(),
        }),
        ..Default::default()
    }
}

/// Subscribes with the recorded fault-run FrameworkInfo (checkpoint on) and runs
/// `sleep 600` on agent 0 until TASK_RUNNING (acknowledged).
async fn running_task(cluster: &fastdata_devcluster::DevCluster, task: &str) -> Scheduler {
    let info = step("faults-agent-lost.jsonl", "SUBSCRIBE")
        .scheduler_call()
        .subscribe
        .unwrap()
        .framework_info;
    let mut s = Scheduler::subscribe(&cluster.master_url(), info).await;
    let agent = cluster.agent_ids()[0].clone();
    let offers = loop {
        s.offers().await;
        let on_agent: Vec<Offer> = s
            .outstanding
            .iter()
            .filter(|o| o.agent_id.value == agent)
            .cloned()
            .collect();
        if !on_agent.is_empty() {
            break on_agent;
        }
    };
    s.outstanding.retain(|o| o.agent_id.value != agent);
    assert_eq!(
        s.accept(
            ids(&offers),
            vec![launch(vec![sleep_task(&agent, task)])],
            Some(0.0)
        )
        .await
        .status,
        202
    );
    while s.update_of(task).await.state != TaskState::TaskRunning as i32 {}
    s
}

fn recorded(
    file: &str,
    task: &str,
    state: TaskState,
    message: &str,
) -> fastdata_proto::v1::TaskStatus {
    transcript(file)
        .iter()
        .flat_map(|s| s.scheduler_events())
        .filter_map(|e| e.update.map(|u| u.status))
        .find(|s| {
            s.task_id.value == task
                && s.state == state as i32
                && s.message.as_deref() == Some(message)
        })
        .unwrap_or_else(|| panic!("no recorded {state:?} '{message}'"))
}

fn same_status(got: &fastdata_proto::v1::TaskStatus, expected: &fastdata_proto::v1::TaskStatus) {
    let (mut g, mut e) = (got.clone(), expected.clone());
    normalise_status(&mut g);
    normalise_status(&mut e);
    assert_eq!(g, e);
}

/// `faults-agent-lost.jsonl`: the agent goes away; its offer is rescinded; its task becomes
/// TASK_UNREACHABLE ("health check timed out", REASON_AGENT_REMOVED, SOURCE_MASTER,
/// `unreachable_time`, no uuid); FAILURE carries only the agent id; explicit RECONCILE with
/// the agent id answers TASK_UNREACHABLE "Reconciliation: Task is unreachable" with the same
/// `unreachable_time`, without it TASK_UNKNOWN "Reconciliation: Task is unknown"; RECONCILE
/// without `reconcile` is the recorded 400; implicit RECONCILE leaves unreachable tasks out.
#[tokio::test]
async fn agent_lost() {
    const FILE: &str = "faults-agent-lost.jsonl";
    let cluster = start(fast_config(1)).await;
    let agent = cluster.agent_ids()[0].clone();
    let mut s = running_task(&cluster, "fdx-lost-task-1").await;
    while s.outstanding.is_empty() {
        s.offers().await;
    }
    // Over HTTP, as an operator would.
    let a = post(
        &format!("{}/devcluster/fault", cluster.master_url()),
        &[("Content-Type", "application/json")],
        br#"{"kind":"remove_agent","agent":0}"#.to_vec(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let mut saw = (false, None, false);
    while !(saw.0 && saw.1.is_some() && saw.2) {
        let ev = s.stream.next_event().await.unwrap();
        match ev.r#type.and_then(|t| event::Type::try_from(t).ok()) {
            Some(event::Type::Rescind) => saw.0 = true,
            Some(event::Type::Update) => saw.1 = Some(ev.update.unwrap().status),
            Some(event::Type::Failure) => {
                let f = ev.failure.unwrap();
                assert_eq!(f.agent_id.unwrap().value, agent);
                assert!(f.executor_id.is_none() && f.status.is_none());
                saw.2 = true;
            }
            _ => {}
        }
    }
    let unreachable = saw.1.unwrap();
    same_status(
        &unreachable,
        &recorded(
            FILE,
            "fdx-lost-task-1",
            TaskState::TaskUnreachable,
            "health check timed out",
        ),
    );
    let a = s
        .call(reconcile(vec![("fdx-lost-task-1", Some(&agent))]))
        .await;
    assert_eq!(a.status, 202);
    let st = s.next_event().await.unwrap().update.unwrap().status;
    same_status(
        &st,
        &recorded(
            FILE,
            "fdx-lost-task-1",
            TaskState::TaskUnreachable,
            "Reconciliation: Task is unreachable",
        ),
    );
    assert_eq!(st.unreachable_time, unreachable.unreachable_time);
    s.call(reconcile(vec![("fdx-lost-task-1", None)])).await;
    let st = s.next_event().await.unwrap().update.unwrap().status;
    same_status(
        &st,
        &recorded(
            FILE,
            "fdx-lost-task-1",
            TaskState::TaskUnknown,
            "Reconciliation: Task is unknown",
        ),
    );
    let step = step(FILE, "error: RECONCILE without the reconcile field");
    let mut call = step.scheduler_call();
    call.framework_id = s.framework_id();
    let mut headers = proto_headers();
    headers.push(("Mesos-Stream-Id", &s.stream_id));
    let a = post(&s.url, &headers, call.encode_to_vec()).await;
    assert_eq!((a.status, Some(a.body)), (step.status(), step.body_text()));
    s.call(reconcile(vec![])).await;
    assert!(
        s.stream
            .collect_for(Duration::from_millis(500))
            .await
            .is_empty()
    );
    // The agent's listener is closed.
    let endpoint = cluster.agent_endpoints()[0];
    assert!(
        reqwest::get(format!("http://{endpoint}/api/v1/executor"))
            .await
            .is_err()
    );
    cluster.stop().await;
}

/// `faults-master-restart.jsonl` (replicated log): the stream ends without ERROR; the
/// framework re-subscribes with its id and gets SUBSCRIBED with the same id and a new
/// master id; its task survived; explicit and implicit RECONCILE answer TASK_RUNNING
/// "Reconciliation: Latest task state"; offers carry the new master's prefix.
#[tokio::test]
async fn master_restart() {
    let cluster = start(fast_config(1)).await;
    let mut s = running_task(&cluster, "fdx-mr-task-1").await;
    cluster.inject(Fault::RestartMaster).unwrap();
    let mut saw_error = false;
    while let Some(ev) = s.stream.next_event().await {
        saw_error |= ev.r#type == Some(event::Type::Error as i32);
    }
    assert!(!saw_error, "no ERROR on a master failover");
    let mut info = step("faults-agent-lost.jsonl", "SUBSCRIBE")
        .scheduler_call()
        .subscribe
        .unwrap()
        .framework_info;
    info.id = s.framework_id();
    let mut again = Scheduler::subscribe(&cluster.master_url(), info).await;
    assert_eq!(again.framework_id, s.framework_id);
    again
        .call(reconcile(vec![(
            "fdx-mr-task-1",
            Some(&cluster.agent_ids()[0]),
        )]))
        .await;
    let st = again.next_event().await.unwrap().update.unwrap().status;
    assert_eq!(st.state, TaskState::TaskRunning as i32);
    assert_eq!(
        st.message.as_deref(),
        Some("Reconciliation: Latest task state")
    );
    assert!(st.uuid.is_none());
    again.call(reconcile(vec![])).await;
    let st = again.next_event().await.unwrap().update.unwrap().status;
    assert_eq!(st.task_id.value, "fdx-mr-task-1");
    let state = cluster.state();
    let master_id = state["master"]["id"].as_str().unwrap().to_owned();
    while again.outstanding.is_empty() {
        again.offers().await;
    }
    let offer = &again.outstanding[0];
    assert!(offer.id.value.starts_with(&master_id));
    assert!(
        again.framework_id.starts_with(&offer.agent_id.value[..36]),
        "ids keep their prefix"
    );
    cluster.stop().await;
}

/// `faults-checkpoint-executor.jsonl`: an agent restart with a checkpointing framework.
/// The executor's stream ends and its calls are refused while the agent is down; the
/// offer is rescinded; the executor re-subscribes with its unacknowledged update, gets
/// SUBSCRIBED then ACKNOWLEDGED; after the re-registration window the scheduler receives
/// the update it had not acknowledged again, then the one sent while the agent was down.
#[tokio::test]
async fn agent_restart_with_a_checkpointing_executor() {
    let mut config = fast_config(1);
    config.executor_reregistration_timeout = Duration::from_millis(500);
    let cluster = start(config).await;
    let agent = cluster.agent_ids()[0].clone();
    let info = step("faults-checkpoint-executor.jsonl", "SUBSCRIBE")
        .scheduler_call()
        .subscribe
        .unwrap()
        .framework_info;
    let mut s = Scheduler::subscribe(&cluster.master_url(), info).await;
    let offers = s.offers().await;
    s.take_outstanding();
    let mut task = sleep_task(&agent, "fdx-ckpt-task-1");
    task.command = None;
    task.executor = Some(fastdata_proto::v1::ExecutorInfo {
        r#type: Some(fastdata_proto::v1::executor_info::Type::Custom as i32),
        executor_id: fastdata_proto::v1::ExecutorId {
            value: "fdx-fault-executor".into(),
        },
        command: Some(CommandInfo {
            value: Some("sleep 60".into()),
            shell: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(
        s.accept(ids(&offers), vec![launch(vec![task])], Some(0.0))
            .await
            .status,
        202
    );
    let url = format!("http://{}/api/v1/executor", cluster.agent_endpoints()[0]);
    let framework_id = s.framework_id.clone();
    let call = |kind: executor::call::Type| executor::Call {
        executor_id: fastdata_proto::v1::ExecutorId {
            value: "fdx-fault-executor".into(),
        },
        framework_id: fastdata_proto::v1::FrameworkId {
            value: framework_id.clone(),
        },
        r#type: Some(kind as i32),
        ..Default::default()
    };
    let mut sub = call(executor::call::Type::Subscribe);
    sub.subscribe = Some(Default::default());
    let mut stream = loop {
        match open_stream(&url, &proto_headers(), sub.encode_to_vec()).await {
            Ok(stream) => break stream,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(
        stream
            .next_executor_event()
            .await
            .unwrap()
            .subscribed
            .is_some()
    );
    assert!(stream.next_executor_event().await.unwrap().launch.is_some());
    let update = |status: fastdata_proto::v1::TaskStatus| {
        let mut c = call(executor::call::Type::Update);
        c.update = Some(executor::call::Update { status });
        c
    };
    let first =
        fastdata_proto::mesos_ext::executor_status("fdx-ckpt-task-1", TaskState::TaskRunning);
    let mut second =
        fastdata_proto::mesos_ext::executor_status("fdx-ckpt-task-1", TaskState::TaskRunning);
    second.message = Some("second TASK_RUNNING".into());
    assert_eq!(
        post(&url, &proto_headers(), update(first).encode_to_vec())
            .await
            .status,
        202
    );
    s.update_of("fdx-ckpt-task-1").await;
    assert_eq!(
        post(
            &url,
            &proto_headers(),
            update(second.clone()).encode_to_vec()
        )
        .await
        .status,
        202
    );
    let unacked = loop {
        let ev = s.next_event().await.unwrap();
        if let Some(u) = ev.update {
            break u.status;
        }
    };
    assert_eq!(unacked.uuid, second.uuid);
    while s.outstanding.is_empty() {
        s.offers().await;
    }
    cluster
        .inject(Fault::RestartAgent {
            agent: 0,
            down_ms: 700,
        })
        .unwrap();
    assert!(stream.ends_within(Duration::from_secs(2)).await);
    let rescind = s.stream.wait_for(event::Type::Rescind).await;
    assert!(rescind.rescind.is_some());
    let mut during =
        fastdata_proto::mesos_ext::executor_status("fdx-ckpt-task-1", TaskState::TaskRunning);
    during.message = Some("TASK_RUNNING sent while agent was down".into());
    let refused = reqwest::Client::new()
        .post(&url)
        .header("Content-Type", PROTOBUF)
        .body(update(during.clone()).encode_to_vec())
        .send()
        .await;
    assert!(
        refused.is_err(),
        "connection refused while the agent is down"
    );
    let mut resub = call(executor::call::Type::Subscribe);
    resub.subscribe = Some(executor::call::Subscribe {
        unacknowledged_tasks: Vec::new(),
        unacknowledged_updates: vec![executor::call::Update {
            status: during.clone(),
        }],
    });
    let mut stream = loop {
        let headers = proto_headers();
        match connect_and_subscribe(&url, &headers, resub.encode_to_vec()).await {
            Some(stream) => break stream,
            None => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    };
    assert!(
        stream
            .next_executor_event()
            .await
            .unwrap()
            .subscribed
            .is_some()
    );
    let ack = stream
        .next_executor_event()
        .await
        .unwrap()
        .acknowledged
        .expect("ACKNOWLEDGED");
    assert_eq!(ack.uuid, during.uuid.clone().unwrap());
    let again = s.update_of("fdx-ckpt-task-1").await;
    assert_eq!(
        again.uuid, second.uuid,
        "the unacknowledged update is resent"
    );
    let next = s.update_of("fdx-ckpt-task-1").await;
    assert_eq!(
        next.uuid, during.uuid,
        "then the one sent while the agent was down"
    );
    assert_eq!(next.source, Some(task_status::Source::Executor as i32));
    while s.outstanding.is_empty() {
        s.offers().await;
    }
    cluster.stop().await;
}

/// `auth-basic.jsonl` replayed: 401 with `WWW-Authenticate: Basic
/// realm="mesos-master-scheduler"` and body `401 Unauthorized.` without or with wrong
/// credentials, on SUBSCRIBE and on every other call; 400 with the recorded text when the
/// principal differs from FrameworkInfo.principal; 200/202 with the right credentials.
#[tokio::test]
async fn replay_basic_auth() {
    const FILE: &str = "auth-basic.jsonl";
    let mut config = fast_config(0);
    config.credentials = vec![("fastdata-principal".into(), "s3cret".into())];
    let cluster = start(config).await;
    let url = format!("{}/api/v1/scheduler", cluster.master_url());
    let mut open: Option<Stream> = None;
    let mut framework_id = String::new();
    for step in transcript(FILE) {
        if step.status() == 200 {
            let headers = step.headers();
            let refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut stream = open_stream(&url, &refs, step.body()).await.expect("200");
            let ev = stream.next_event().await.unwrap();
            framework_id = ev.subscribed.unwrap().framework_id.value;
            open = Some(stream);
            continue;
        }
        let stream_id = open.as_ref().map(|s| s.stream_id()).unwrap_or_default();
        let mut call = step.scheduler_call();
        if call.framework_id.is_some() {
            call.framework_id = Some(fastdata_proto::v1::FrameworkId {
                value: framework_id.clone(),
            });
        }
        let headers: Vec<(String, String)> = step
            .headers()
            .into_iter()
            .map(|(k, v)| {
                if k == "Mesos-Stream-Id" {
                    (k, stream_id.clone())
                } else {
                    (k, v)
                }
            })
            .collect();
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let a = post(&url, &refs, call.encode_to_vec()).await;
        assert_eq!(
            (a.status, Some(a.body.clone())),
            (step.status(), step.body_text()),
            "{}",
            step.name
        );
        let recorded = step.response_headers();
        for h in ["www-authenticate", "content-type"] {
            assert_eq!(
                a.header(h),
                recorded.get(h).map(String::as_str),
                "{}: {h}",
                step.name
            );
        }
    }
    let stream = open.as_mut().unwrap();
    assert!(
        stream.ends_within(Duration::from_secs(2)).await,
        "TEARDOWN closed the stream"
    );
    cluster.stop().await;
}

/// `redirect.jsonl`: the non-leading address answers 307 with `Location:
/// //localhost:<leader port>/master/api/v1/scheduler`, no body, for SUBSCRIBE and any other
/// call (no stream id or framework check); the Location path works on the leader; after a
/// leader change the old leader redirects and the framework re-subscribes at the new one
/// with the same id; with no leader both answer 503 "No leader elected".
#[tokio::test]
async fn redirects_to_the_leader() {
    let mut config = fast_config(0);
    config.standby_master = true;
    let cluster = start(config).await;
    let primary = cluster.master_url();
    let standby = cluster.standby_url().unwrap();
    let primary_port = cluster.master_addr().port();
    let body = subscribe_call(framework_info()).encode_to_vec();
    let a = post(
        &format!("{standby}/api/v1/scheduler"),
        &proto_headers(),
        body.clone(),
    )
    .await;
    assert_eq!(a.status, 307);
    let location = a.header("location").unwrap().to_owned();
    assert_eq!(
        location,
        format!("//localhost:{primary_port}/master/api/v1/scheduler")
    );
    assert_eq!(a.body, "");
    assert_eq!(a.header("content-length"), Some("0"));
    assert!(a.header("content-type").is_none());
    // Follow it as a client should: keep the scheme, take host:port and the path.
    let followed = format!("http:{location}");
    let mut s = Scheduler::subscribe(
        &followed
            .replace("/api/v1/scheduler", "")
            .replace("localhost", "127.0.0.1"),
        framework_info(),
    )
    .await;
    let revive = scheduler::Call {
        framework_id: s.framework_id(),
        r#type: Some(call::Type::Revive as i32),
        ..Default::default()
    };
    let a = post(
        &format!("{standby}/api/v1/scheduler"),
        &proto_headers(),
        revive.encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 307);
    cluster
        .inject(Fault::ElectLeader {
            leader: Some(MasterAddress::Standby),
        })
        .unwrap();
    assert!(s.stream.ends_within(Duration::from_secs(2)).await);
    let a = post(
        &format!("{primary}/api/v1/scheduler"),
        &proto_headers(),
        body.clone(),
    )
    .await;
    assert_eq!(a.status, 307);
    let standby_port = standby.rsplit(':').next().unwrap();
    assert_eq!(
        a.header("location").unwrap(),
        format!("//localhost:{standby_port}/master/api/v1/scheduler")
    );
    let mut info = framework_info();
    info.id = s.framework_id();
    let mut again = Scheduler::subscribe(&standby, info).await;
    assert_eq!(again.framework_id, s.framework_id);
    let ev = again.stream.next_event().await.unwrap();
    assert_eq!(ev.r#type, Some(event::Type::Heartbeat as i32));
    cluster.inject(Fault::ElectLeader { leader: None }).unwrap();
    for url in [&primary, &standby] {
        let a = post(
            &format!("{url}/api/v1/scheduler"),
            &proto_headers(),
            body.clone(),
        )
        .await;
        assert_eq!((a.status, a.body.as_str()), (503, "No leader elected"));
    }
    s.stream_id.clear();
    cluster.stop().await;
}

/// The fault endpoint's `drop_stream` (a broken connection: the failover timeout starts and
/// calls get 403) and the state document's sections.
#[tokio::test]
async fn drop_stream_and_state_document() {
    let cluster = start(fast_config(2)).await;
    let mut s = running_task(&cluster, "state-task").await;
    let text = reqwest::get(format!("{}/state", cluster.master_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in [
        "frameworks",
        "agents",
        "offers",
        "tasks",
        "reservations",
        "volumes",
    ] {
        assert!(!doc[key].is_null(), "{key}");
    }
    assert_eq!(doc["agents"].as_array().unwrap().len(), 2);
    assert_eq!(doc["tasks"][0]["id"], "state-task");
    assert_eq!(doc["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(doc["frameworks"][0]["connected"], true);
    let fault = serde_json::json!({"kind": "drop_stream", "framework_id": s.framework_id});
    let a = post(
        &format!("{}/devcluster/fault", cluster.master_url()),
        &[("Content-Type", "application/json")],
        fault.to_string().into_bytes(),
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(s.stream.ends_within(Duration::from_secs(2)).await);
    let a = s
        .call(scheduler::Call {
            r#type: Some(call::Type::Revive as i32),
            ..Default::default()
        })
        .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (403, "Framework is not subscribed")
    );
    let a = post(
        &format!("{}/devcluster/fault", cluster.master_url()),
        &[("Content-Type", "application/json")],
        br#"{"kind":"remove_agent","agent":9}"#.to_vec(),
    )
    .await;
    assert_eq!((a.status, a.body.as_str()), (400, "no agent 9"));
    cluster.stop().await;
}

/// The binary prints its master address and serves the state document.
#[tokio::test]
async fn the_binary() {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_devcluster"))
        .args([
            "--agents", "2", "--port", "0", "--cpus", "2", "--mem", "1024",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = first
        .strip_prefix("devcluster master ")
        .expect(&first)
        .to_owned();
    let text = reqwest::get(format!("{url}/state"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["agents"].as_array().unwrap().len(), 2);
    assert_eq!(doc["agents"][1]["zone"], "zone-b");
    child.kill().await.unwrap();
}
