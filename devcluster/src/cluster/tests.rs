//! Table tests of the cluster state machine, without sockets or a real clock: inputs go
//! in, effects and answers are compared.

use std::path::PathBuf;
use std::time::Duration;

use fastdata_proto::v1::{
    AgentId, CommandInfo, Filters, FrameworkId, FrameworkInfo, OfferId, Resource, TaskId, TaskInfo,
    TaskState, TaskStatus,
    framework_info::{Capability, capability::Type as Cap},
    offer::{Operation, operation},
    scheduler::{self, call, event},
    value,
};
use prost::Message as _;

use super::*;
use crate::config::{AgentConfig, ClusterConfig};
use crate::wire::{PROTOBUF, RequestParts};

fn start_time() -> Now {
    Now {
        at: Instant::now(),
        unix: 1_795_577_021.0,
    }
}

fn cluster(config: ClusterConfig) -> (Cluster, Now) {
    let now = start_time();
    let ports = Ports {
        master: 5050,
        standby: Some(5052),
        agents: (0..config.agents.len())
            .map(|i| 5051 + 10 * i as u16)
            .collect(),
    };
    (
        Cluster::new(config, ports, PathBuf::from("/devcluster-test"), now),
        now,
    )
}

fn one_agent() -> ClusterConfig {
    ClusterConfig {
        agents: vec![AgentConfig::default()],
        ..ClusterConfig::default()
    }
}

fn info() -> FrameworkInfo {
    FrameworkInfo {
        user: "root".into(),
        name: "t".into(),
        failover_timeout: Some(10.0),
        principal: Some("p".into()),
        roles: vec!["r".into()],
        capabilities: [Cap::MultiRole, Cap::PartitionAware, Cap::TaskKillingState]
            .into_iter()
            .map(|t| Capability {
                r#type: Some(t as i32),
            })
            .collect(),
        ..Default::default()
    }
}

fn subscribe_bytes(info: FrameworkInfo) -> Vec<u8> {
    scheduler::Call {
        framework_id: info.id.clone(),
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: info,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn request<'a>(body: &'a [u8], stream_id: Option<&'a str>, conn: ConnId) -> SchedulerRequest<'a> {
    SchedulerRequest {
        parts: RequestParts {
            method: "POST",
            content_type: Some(PROTOBUF),
            accept: Some(PROTOBUF),
            body,
        },
        stream_id,
        authorization: None,
        conn,
    }
}

fn events_on(effects: &[Effect], on: ConnId) -> Vec<event::Type> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SchedulerEvent { conn, event } if *conn == on => {
                event.r#type.and_then(|t| event::Type::try_from(t).ok())
            }
            _ => None,
        })
        .collect()
}

struct Subscribed {
    framework_id: String,
    stream_id: String,
    conn: ConnId,
}

fn subscribe(c: &mut Cluster, now: Now, conn: ConnId) -> (Subscribed, Vec<Effect>) {
    let body = subscribe_bytes(info());
    let reply = c.scheduler_request(now, MasterAddress::Primary, request(&body, None, conn));
    let Reply::Stream {
        stream_id: Some(stream_id),
        encoding,
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!(encoding, crate::wire::Encoding::Protobuf);
    let effects = c.take_effects();
    let framework_id = c.master.conns[&conn].clone();
    (
        Subscribed {
            framework_id,
            stream_id,
            conn,
        },
        effects,
    )
}

fn call_bytes(framework_id: &str, mut call: scheduler::Call) -> Vec<u8> {
    call.framework_id = Some(FrameworkId {
        value: framework_id.to_owned(),
    });
    call.encode_to_vec()
}

fn status(reply: Reply) -> (u16, String) {
    match reply {
        Reply::Answer(a) => (a.status, a.body),
        Reply::Stream { .. } => (200, String::new()),
    }
}

/// SUBSCRIBE: SUBSCRIBED, then HEARTBEAT at once, then OFFERS in the same step (the
/// allocator runs when a framework is added); HEARTBEAT again only when the interval has
/// passed on the clock given to `tick`.
#[test]
fn subscribe_heartbeat_and_first_offers() {
    let (mut c, now) = cluster(one_agent());
    let (s, effects) = subscribe(&mut c, now, 7);
    assert_eq!(
        events_on(&effects, 7),
        [
            event::Type::Subscribed,
            event::Type::Heartbeat,
            event::Type::Offers
        ]
    );
    assert!(s.framework_id.ends_with("-0000"));
    c.tick(now.after(Duration::from_secs(14)));
    assert!(events_on(&c.take_effects(), 7).is_empty());
    c.tick(now.after(Duration::from_secs(15)));
    assert_eq!(events_on(&c.take_effects(), 7), [event::Type::Heartbeat]);
}

/// Reference 1.3, in Mesos' order: the checks after SUBSCRIBE, each failing alone.
#[test]
fn call_checks_in_order() {
    let (mut c, now) = cluster(one_agent());
    let (s, _) = subscribe(&mut c, now, 1);
    let revive = scheduler::Call {
        r#type: Some(call::Type::Revive as i32),
        ..Default::default()
    };
    let good = call_bytes(&s.framework_id, revive.clone());
    let unknown = call_bytes("nope", revive);
    let table: Vec<(&[u8], Option<&str>, u16, &str)> = vec![
        (
            &unknown,
            Some(&s.stream_id),
            400,
            "Framework cannot be found",
        ),
        (
            &good,
            None,
            400,
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
        ),
        (
            &good,
            Some("x"),
            400,
            "The stream ID 'x' included in this request didn't match the stream ID currently associated with framework ID ",
        ),
        (&good, Some(&s.stream_id), 202, ""),
    ];
    for (body, stream_id, code, text) in table {
        let (got, body) =
            status(c.scheduler_request(now, MasterAddress::Primary, request(body, stream_id, 2)));
        assert_eq!(got, code);
        assert!(body.starts_with(text), "{body}");
    }
    // Disconnected: 403 before any stream id check.
    c.stream_closed(now, s.conn);
    let (got, body) =
        status(c.scheduler_request(now, MasterAddress::Primary, request(&good, None, 2)));
    assert_eq!((got, body.as_str()), (403, "Framework is not subscribed"));
}

/// Leadership and authentication come before everything else: 401 without credentials,
/// then 307 to the leader or 503 without one.
#[test]
fn auth_and_leadership_first() {
    let mut config = one_agent();
    config.credentials = vec![("p".into(), "s".into())];
    let (mut c, now) = cluster(config);
    let mut req = request(b"junk", None, 1);
    req.parts.method = "GET";
    let reply = c.scheduler_request(now, MasterAddress::Standby, req);
    let Reply::Answer(a) = reply else { panic!() };
    assert_eq!(a.status, 401);
    assert_eq!(
        a.headers,
        vec![(
            "WWW-Authenticate".to_owned(),
            "Basic realm=\"mesos-master-scheduler\"".to_owned()
        )]
    );
    req.authorization = Some("Basic cDpz"); // p:s
    let Reply::Answer(a) = c.scheduler_request(now, MasterAddress::Standby, req) else {
        panic!()
    };
    assert_eq!(a.status, 307);
    assert_eq!(a.headers[0].1, "//localhost:5050/master/api/v1/scheduler");
    c.fault(now, Fault::ElectLeader { leader: None }).unwrap();
    let Reply::Answer(a) = c.scheduler_request(now, MasterAddress::Primary, req) else {
        panic!()
    };
    assert_eq!((a.status, a.body.as_str()), (503, "No leader elected"));
    c.fault(
        now,
        Fault::ElectLeader {
            leader: Some(MasterAddress::Standby),
        },
    )
    .unwrap();
    let Reply::Answer(a) = c.scheduler_request(now, MasterAddress::Primary, req) else {
        panic!()
    };
    assert_eq!(a.headers[0].1, "//localhost:5052/master/api/v1/scheduler");
    let Reply::Answer(a) = c.scheduler_request(now, MasterAddress::Standby, req) else {
        panic!()
    };
    assert_eq!(a.status, 405, "the new leader handles it");
}

/// Reference 2.7: refuse_seconds rules.
#[test]
fn filter_durations() {
    let (c, _) = cluster(one_agent());
    let f = |s: Option<f64>| Filters { refuse_seconds: s };
    let table = [
        (None, Some(Duration::from_secs(5))),
        (Some(f(None)), Some(Duration::from_secs(5))),
        (Some(f(Some(0.0))), None),
        (Some(f(Some(-3.0))), Some(Duration::from_secs(5))),
        (Some(f(Some(f64::NAN))), Some(Duration::from_secs(5))),
        (Some(f(Some(0.2))), Some(Duration::from_secs(1))),
        (Some(f(Some(30.0))), Some(Duration::from_secs(30))),
        (
            Some(f(Some(1e12))),
            Some(Duration::from_secs(365 * 24 * 3600)),
        ),
    ];
    for (filters, expected) in table {
        assert_eq!(c.filter_duration(filters.as_ref()), expected, "{filters:?}");
    }
}

/// The failover timeout removes a disconnected framework and shuts its tasks down; a
/// re-subscription before it keeps everything.
#[test]
fn failover_timeout_on_the_clock() {
    let (mut c, now) = cluster(one_agent());
    let (s, _) = subscribe(&mut c, now, 1);
    c.stream_closed(now, 1);
    c.tick(now.after(Duration::from_secs(9)));
    assert!(c.master.frameworks.contains_key(&s.framework_id));
    c.tick(now.after(Duration::from_secs(10)));
    assert!(!c.master.frameworks.contains_key(&s.framework_id));
    assert!(c.master.offers.is_empty());
    assert!(c.master.agents[0].offered.is_empty());
}

fn scalar(name: &str, v: f64) -> Resource {
    crate::resources::allocated_to(&crate::resources::scalar_resource(name, v), "r")
}

/// LAUNCH of a command task: the agent starts a process; its start gives TASK_STARTING
/// and TASK_RUNNING (only the first forwarded until acknowledged); its exit TASK_FINISHED;
/// the resources come back once the task is terminal.
#[test]
fn command_task_lifecycle() {
    let (mut c, now) = cluster(one_agent());
    let (s, effects) = subscribe(&mut c, now, 1);
    let offer_id = effects
        .iter()
        .find_map(|e| match e {
            Effect::SchedulerEvent { event, .. } => {
                event.offers.as_ref().map(|o| o.offers[0].id.clone())
            }
            _ => None,
        })
        .unwrap();
    let agent_id = c.master.agents[0].id.clone();
    let task = TaskInfo {
        name: "t".into(),
        task_id: TaskId { value: "t".into() },
        agent_id: AgentId { value: agent_id },
        resources: vec![scalar("cpus", 1.0)],
        command: Some(CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let accept = call_bytes(
        &s.framework_id,
        scheduler::Call {
            r#type: Some(call::Type::Accept as i32),
            accept: Some(call::Accept {
                offer_ids: vec![OfferId {
                    value: offer_id.value,
                }],
                operations: vec![Operation {
                    r#type: Some(operation::Type::Launch as i32),
                    launch: Some(operation::Launch {
                        task_infos: vec![task],
                    }),
                    ..Default::default()
                }],
                filters: None,
            }),
            ..Default::default()
        },
    );
    let (code, _) = status(c.scheduler_request(
        now,
        MasterAddress::Primary,
        request(&accept, Some(&s.stream_id), 2),
    ));
    assert_eq!(code, 202);
    let effects = c.take_effects();
    let spec = effects
        .iter()
        .find_map(|e| match e {
            Effect::Launch(spec) => Some(spec.clone()),
            _ => None,
        })
        .expect("a process to start");
    assert!(spec.shell && spec.value == "true");
    assert_eq!(c.master.agents[0].used.scalar_total("cpus"), 1.0);
    c.process_started(now, 0, &spec.process, 42);
    let updates: Vec<TaskStatus> = c
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::SchedulerEvent { event, .. } => event.update.map(|u| u.status),
            _ => None,
        })
        .collect();
    assert_eq!(updates.len(), 1, "only the head of the stream is forwarded");
    assert_eq!(updates[0].state, TaskState::TaskStarting as i32);
    assert_eq!(
        updates[0].container_status.as_ref().unwrap().executor_pid,
        Some(42)
    );
    let ack = |st: &TaskStatus| {
        call_bytes(
            &s.framework_id,
            scheduler::Call {
                r#type: Some(call::Type::Acknowledge as i32),
                acknowledge: Some(call::Acknowledge {
                    agent_id: st.agent_id.clone().unwrap(),
                    task_id: st.task_id.clone(),
                    uuid: st.uuid.clone().unwrap(),
                }),
                ..Default::default()
            },
        )
    };
    let body = ack(&updates[0]);
    c.scheduler_request(
        now,
        MasterAddress::Primary,
        request(&body, Some(&s.stream_id), 2),
    );
    let next: Vec<i32> = c
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::SchedulerEvent { event, .. } => event.update.map(|u| u.status.state),
            _ => None,
        })
        .collect();
    assert_eq!(next, [TaskState::TaskRunning as i32]);
    c.process_exited(
        now,
        0,
        &spec.process,
        ExitInfo {
            code: Some(0),
            signal: None,
            raw: 0,
        },
    );
    // As in Mesos, the master learns the latest state with the next forwarded update: the
    // RUNNING head is still unacknowledged, so nothing is forwarded yet.
    assert!(c.take_effects().is_empty());
    assert_eq!(
        c.master.frameworks[&s.framework_id].tasks["t"].state,
        TaskState::TaskRunning
    );
    let running = c.master.frameworks[&s.framework_id].tasks["t"]
        .status
        .clone()
        .unwrap();
    let body = ack(&running);
    c.scheduler_request(
        now,
        MasterAddress::Primary,
        request(&body, Some(&s.stream_id), 2),
    );
    let finished: Vec<TaskStatus> = c
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::SchedulerEvent { event, .. } => event.update.map(|u| u.status),
            _ => None,
        })
        .collect();
    assert_eq!(finished[0].state, TaskState::TaskFinished as i32);
    assert_eq!(
        finished[0].message.as_deref(),
        Some("Command exited with status 0")
    );
    assert_eq!(
        c.master.frameworks[&s.framework_id].tasks["t"].state,
        TaskState::TaskFinished
    );
    assert_eq!(
        c.master.agents[0].used.scalar_total("cpus"),
        0.0,
        "released once terminal"
    );
    // The unacknowledged head is retried 10 s after it was sent.
    c.tick(now.after(Duration::from_secs(10)));
    let retried: Vec<TaskStatus> = c
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::SchedulerEvent { event, .. } => event.update.map(|u| u.status),
            _ => None,
        })
        .collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].uuid, finished[0].uuid);
}

/// Removing an agent (reference 2.7, `faults-agent-lost.jsonl`): RESCIND, TASK_UNREACHABLE
/// without uuid for partition-aware frameworks, FAILURE{agent_id}, and the agent's listener
/// closes.
#[test]
fn removing_an_agent() {
    let (mut c, now) = cluster(one_agent());
    let (_s, _) = subscribe(&mut c, now, 1);
    c.fault(
        now,
        Fault::RemoveAgent {
            agent: 0,
            gone: false,
        },
    )
    .unwrap();
    let effects = c.take_effects();
    assert!(events_on(&effects, 1).contains(&event::Type::Rescind));
    assert!(events_on(&effects, 1).contains(&event::Type::Failure));
    assert!(effects.contains(&Effect::AgentListener {
        agent: 0,
        up: false
    }));
    assert!(
        c.fault(
            now,
            Fault::RemoveAgent {
                agent: 0,
                gone: false
            }
        )
        .is_err()
    );
    assert!(
        c.fault(
            now,
            Fault::RemoveAgent {
                agent: 5,
                gone: false
            }
        )
        .is_err()
    );
}

/// A master failover ends every stream without an ERROR and invalidates offers; the
/// framework re-subscribes with its id and keeps it.
#[test]
fn master_failover() {
    let (mut c, now) = cluster(one_agent());
    let (s, _) = subscribe(&mut c, now, 1);
    let old_master = c.master.id.clone();
    c.fault(now, Fault::RestartMaster).unwrap();
    let effects = c.take_effects();
    assert_eq!(effects, vec![Effect::CloseStream { conn: 1 }]);
    assert_ne!(c.master.id, old_master);
    assert!(c.master.offers.is_empty());
    let mut again = info();
    again.id = Some(FrameworkId {
        value: s.framework_id.clone(),
    });
    let body = subscribe_bytes(again);
    let reply = c.scheduler_request(now, MasterAddress::Primary, request(&body, None, 3));
    assert!(matches!(reply, Reply::Stream { .. }));
    assert_eq!(c.master.conns[&3], s.framework_id);
    let offer_prefix = format!("{}-O", c.master.id);
    assert!(c.master.offers.keys().all(|k| k.starts_with(&offer_prefix)));
    let _ = value::Type::Scalar;
}
