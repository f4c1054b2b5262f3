//! Offers and ACCEPT operations beyond the recorded run (reference 2.5, 2.7, 2.9).

mod common;

use std::time::Duration;

use common::*;
use fastdata_proto::v1::{
    AgentId, CommandInfo, ExecutorId, ExecutorInfo, Filters, FrameworkInfo, Label, Labels, Offer,
    OfferId, Resource, TaskGroupInfo, TaskId, TaskInfo, TaskState, executor_info,
    framework_info::{Capability, capability::Type as Cap},
    offer::{Operation, operation},
    resource::{ReservationInfo, reservation_info},
    scheduler::{self, call},
    task_status, value,
};

fn scalar(name: &str, v: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: v }),
        ..Default::default()
    }
}

fn command_task(id: &str, agent: &AgentId, cmd: &str, resources: Vec<Resource>) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        agent_id: agent.clone(),
        resources,
        command: Some(CommandInfo {
            value: Some(cmd.into()),
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

fn ids(offers: &[Offer]) -> Vec<OfferId> {
    offers.iter().map(|o| o.id.clone()).collect()
}

/// A framework without MULTI_ROLE or RESERVATION_REFINEMENT (role `*` / `fastdata-role`).
fn old_style_info(role: &str) -> FrameworkInfo {
    #[allow(deprecated)] // the pre-MULTI_ROLE way is the subject
    FrameworkInfo {
        user: "root".into(),
        name: "old-style".into(),
        principal: Some("fastdata-principal".into()),
        role: Some(role.into()),
        ..Default::default()
    }
}

/// Reference 2.5 / mesos.proto "Resource Format": a framework without MULTI_ROLE sees no
/// `allocation_info`; without RESERVATION_REFINEMENT it sees `role: "*"` on unreserved
/// resources and `role` + `reservation` on its reservations, and may RESERVE in that format.
#[tokio::test]
#[allow(deprecated)]
async fn pre_refinement_format() {
    let cluster = start(fast_config(1)).await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), old_style_info("fastdata-role")).await;
    let offers = s.offers().await;
    let offer = &offers[0];
    assert!(offer.allocation_info.is_none());
    for r in &offer.resources {
        assert!(r.allocation_info.is_none());
        assert!(r.reservations.is_empty());
        assert_eq!(r.role.as_deref(), Some("*"));
    }
    let mut reserved = scalar("cpus", 1.0);
    reserved.role = Some("fastdata-role".into());
    reserved.reservation = Some(ReservationInfo {
        principal: Some("fastdata-principal".into()),
        labels: Some(Labels {
            labels: vec![Label {
                key: "slot".into(),
                value: Some("3".into()),
            }],
        }),
        ..Default::default()
    });
    let reserve = Operation {
        r#type: Some(operation::Type::Reserve as i32),
        reserve: Some(operation::Reserve {
            resources: vec![reserved.clone()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let used = s.take_outstanding();
    let a = s.accept(ids(&used), vec![reserve], Some(0.0)).await;
    assert_eq!(a.status, 202);
    let offers = s.offers().await;
    let res = offers[0]
        .resources
        .iter()
        .find(|r| r.role.as_deref() == Some("fastdata-role"))
        .expect("reserved cpus offered");
    assert_eq!(res.reservation, reserved.reservation);
    assert_eq!(res.scalar.as_ref().unwrap().value, 1.0);
    // The state document shows the reservation in the internal (refined) format.
    let state = cluster.state();
    assert_eq!(state["reservations"].as_array().unwrap().len(), 1);
    assert_eq!(
        state["reservations"][0]["resource"]["reservations"][0]["type"],
        "DYNAMIC"
    );
    cluster.stop().await;
}

/// Reference 2.5 (M: master.cpp `accept`): an ACCEPT naming an offer that no longer exists
/// answers 202, and its tasks get TASK_DROPPED (partition-aware) or TASK_LOST with
/// REASON_INVALID_OFFERS, SOURCE_MASTER and no uuid; the same offer cannot be used twice.
#[tokio::test]
async fn invalid_offers() {
    let cluster = start(fast_config(1)).await;
    let agent = AgentId {
        value: cluster.agent_ids()[0].clone(),
    };
    for (info, expected) in [
        (framework_info(), TaskState::TaskDropped),
        (old_style_info("*"), TaskState::TaskLost),
    ] {
        let mut s = Scheduler::subscribe(&cluster.master_url(), info).await;
        let offers = s.offers().await;
        let task = command_task("t1", &agent, "true", vec![scalar("cpus", 0.1)]);
        let a = s
            .accept(ids(&offers), vec![launch(vec![task.clone()])], Some(0.0))
            .await;
        assert_eq!(a.status, 202);
        let first = s.update_of("t1").await;
        // Used again: the offer is gone.
        let a = s.accept(ids(&offers), vec![launch(vec![task])], None).await;
        assert_eq!(a.status, 202);
        let status = loop {
            let st = s.update_of("t1").await;
            if st.reason == Some(task_status::Reason::InvalidOffers as i32) {
                break st;
            }
        };
        assert!(first.uuid.is_some());
        assert_eq!(status.state, expected as i32);
        assert_eq!(status.source, Some(task_status::Source::Master as i32));
        assert!(status.uuid.is_none());
        assert!(
            status
                .message
                .unwrap()
                .starts_with("Task launched with invalid offers: Offer")
        );
        let a = s
            .call(scheduler::Call {
                r#type: Some(call::Type::Teardown as i32),
                ..Default::default()
            })
            .await;
        assert_eq!(a.status, 202);
    }
    cluster.stop().await;
}

/// Mesos `SchedulerTest.Decline` (refuse_seconds 0: the same resources again after one
/// allocation interval), `Revive` (a long filter holds until REVIVE), `Suppress`, and
/// `NoOffersOnReregistrationWithAllRolesSuppressed`.
#[tokio::test]
async fn filters_suppress_and_revive() {
    let cluster = start(fast_config(1)).await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let offers = s.offers().await;
    let decline = |offers: Vec<OfferId>, refuse: f64| scheduler::Call {
        r#type: Some(call::Type::Decline as i32),
        decline: Some(call::Decline {
            offer_ids: offers,
            filters: Some(Filters {
                refuse_seconds: Some(refuse),
            }),
        }),
        ..Default::default()
    };
    s.take_outstanding();
    assert_eq!(s.call(decline(ids(&offers), 0.0)).await.status, 202);
    let again = s.offers().await;
    assert_eq!(again[0].resources.len(), offers[0].resources.len());
    s.take_outstanding();
    assert_eq!(s.call(decline(ids(&again), 3600.0)).await.status, 202);
    assert!(
        s.stream
            .collect_for(Duration::from_millis(500))
            .await
            .is_empty()
    );
    let revive = scheduler::Call {
        r#type: Some(call::Type::Revive as i32),
        ..Default::default()
    };
    assert_eq!(s.call(revive.clone()).await.status, 202);
    let revived = s.offers().await;
    s.take_outstanding();
    // SUPPRESS: declined with no filter, nothing comes back until REVIVE.
    let suppress = scheduler::Call {
        r#type: Some(call::Type::Suppress as i32),
        ..Default::default()
    };
    assert_eq!(s.call(suppress).await.status, 202);
    assert_eq!(s.call(decline(ids(&revived), 0.0)).await.status, 202);
    assert!(
        s.stream
            .collect_for(Duration::from_millis(500))
            .await
            .is_empty()
    );
    // A REVIVE naming a role the framework does not have is dropped whole.
    let bad = scheduler::Call {
        r#type: Some(call::Type::Revive as i32),
        revive: Some(call::Revive {
            roles: vec!["other-role".into()],
        }),
        ..Default::default()
    };
    assert_eq!(s.call(bad).await.status, 202);
    assert!(
        s.stream
            .collect_for(Duration::from_millis(300))
            .await
            .is_empty()
    );
    assert_eq!(s.call(revive).await.status, 202);
    s.offers().await;
    drop(s);

    // Subscribing with every role suppressed: no offers.
    let url = format!("{}/api/v1/scheduler", cluster.master_url());
    let mut call = subscribe_call(framework_info());
    call.subscribe.as_mut().unwrap().suppressed_roles = vec!["fastdata-role".into()];
    let mut stream = open_stream(&url, &proto_headers(), prost::Message::encode_to_vec(&call))
        .await
        .expect("200");
    let first = stream.next_event().await.unwrap();
    assert!(first.subscribed.is_some());
    assert!(
        stream
            .collect_for(Duration::from_millis(500))
            .await
            .is_empty()
    );
    cluster.stop().await;
}

/// Reference 2.7: one OFFERS event carries one offer per agent; each offer names its agent's
/// endpoint, zone (DomainInfo) and attributes.
#[tokio::test]
async fn offers_from_many_agents() {
    let mut config = fast_config(3);
    for (i, agent) in config.agents.iter_mut().enumerate() {
        agent.zone = Some(format!("zone-{i}"));
        agent.attributes = vec![(
            "rack".into(),
            fastdata_devcluster::AttributeValue::Text(format!("r{i}")),
        )];
    }
    let cluster = start(config).await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let offers = s.offers().await;
    assert_eq!(offers.len(), 3);
    let endpoints = cluster.agent_endpoints();
    for offer in &offers {
        let i = cluster
            .agent_ids()
            .iter()
            .position(|a| *a == offer.agent_id.value)
            .expect("a known agent");
        let url = offer.url.as_ref().unwrap();
        assert_eq!(url.address.port, i32::from(endpoints[i].port()));
        assert_eq!(url.path.as_deref(), Some("/slave(1)"));
        let zone = &offer
            .domain
            .as_ref()
            .unwrap()
            .fault_domain
            .as_ref()
            .unwrap()
            .zone
            .name;
        assert_eq!(zone, &format!("zone-{i}"));
        assert_eq!(
            offer.attributes[0].text.as_ref().unwrap().value,
            format!("r{i}")
        );
    }
    cluster.stop().await;
}

/// Reference 2.5: task validation failures are TASK_ERROR with REASON_TASK_INVALID and no
/// uuid: duplicate task id, wrong agent, neither command nor executor, bad id characters.
#[tokio::test]
async fn task_validation() {
    let cluster = start(fast_config(1)).await;
    let agent = AgentId {
        value: cluster.agent_ids()[0].clone(),
    };
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let offers = s.offers().await;
    s.take_outstanding();
    let ok = command_task("dup", &agent, "sleep 30", vec![scalar("cpus", 0.1)]);
    let dup = ok.clone();
    let wrong_agent = command_task(
        "wrong-agent",
        &AgentId {
            value: "nope-S9".into(),
        },
        "true",
        vec![scalar("cpus", 0.1)],
    );
    let mut neither = command_task("neither", &agent, "true", vec![scalar("cpus", 0.1)]);
    neither.command = None;
    let slash = command_task("a/b", &agent, "true", vec![scalar("cpus", 0.1)]);
    let a = s
        .accept(
            ids(&offers),
            vec![launch(vec![ok, dup, wrong_agent, neither, slash])],
            Some(0.0),
        )
        .await;
    assert_eq!(a.status, 202);
    let mut errors = Vec::new();
    while errors.len() < 4 {
        let ev = s.next_event().await.unwrap();
        let status = ev.update.unwrap().status;
        if status.state == TaskState::TaskError as i32 {
            assert_eq!(status.reason, Some(task_status::Reason::TaskInvalid as i32));
            assert!(status.uuid.is_none());
            errors.push((status.task_id.value, status.message.unwrap()));
        } else if status.uuid.is_some() {
            s.acknowledge(&status).await;
        }
    }
    errors.sort();
    assert_eq!(
        errors[0],
        (
            "a/b".into(),
            "'TaskInfo.task_id' is invalid: 'a/b' contains invalid characters".into()
        )
    );
    assert_eq!(
        errors[1],
        ("dup".into(), "Task has duplicate ID: dup".into())
    );
    assert_eq!(
        errors[2],
        (
            "neither".into(),
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
                .into()
        )
    );
    assert_eq!(
        errors[3],
        (
            "wrong-agent".into(),
            "Task uses invalid agent: nope-S9".into()
        )
    );
    cluster.stop().await;
}

/// Reference 2.5 LAUNCH_GROUP with the DEFAULT executor: every task runs, updates carry the
/// executor's id; an executor below the minimum resources fails the whole group with
/// REASON_TASK_GROUP_INVALID.
#[tokio::test]
async fn launch_group_with_the_default_executor() {
    let cluster = start(fast_config(1)).await;
    let agent = AgentId {
        value: cluster.agent_ids()[0].clone(),
    };
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let offers = s.offers().await;
    s.take_outstanding();
    let executor = |cpus: f64| ExecutorInfo {
        r#type: Some(executor_info::Type::Default as i32),
        executor_id: ExecutorId {
            value: "group-exec".into(),
        },
        resources: vec![
            scalar("cpus", cpus),
            scalar("mem", 32.0),
            scalar("disk", 10.0),
        ],
        ..Default::default()
    };
    let group = |suffix: &str| TaskGroupInfo {
        tasks: vec![
            command_task(
                &format!("g1{suffix}"),
                &agent,
                "exit 0",
                vec![scalar("cpus", 0.1)],
            ),
            command_task(
                &format!("g2{suffix}"),
                &agent,
                "exit 3",
                vec![scalar("cpus", 0.1)],
            ),
        ],
    };
    let bad = Operation {
        r#type: Some(operation::Type::LaunchGroup as i32),
        launch_group: Some(operation::LaunchGroup {
            executor: executor(0.001),
            task_group: group("-bad"),
        }),
        ..Default::default()
    };
    let good = Operation {
        r#type: Some(operation::Type::LaunchGroup as i32),
        launch_group: Some(operation::LaunchGroup {
            executor: executor(0.1),
            task_group: group(""),
        }),
        ..Default::default()
    };
    assert_eq!(
        s.accept(ids(&offers), vec![bad, good], Some(0.0))
            .await
            .status,
        202
    );
    for task in ["g1-bad", "g2-bad"] {
        let st = s.update_of(task).await;
        assert_eq!(st.state, TaskState::TaskError as i32);
        assert_eq!(
            st.reason,
            Some(task_status::Reason::TaskGroupInvalid as i32)
        );
    }
    for (task, last) in [
        ("g1", TaskState::TaskFinished),
        ("g2", TaskState::TaskFailed),
    ] {
        let mut states = Vec::new();
        loop {
            let st = s.update_of(task).await;
            assert_eq!(st.executor_id.as_ref().unwrap().value, "group-exec");
            states.push(st.state);
            if st.state == last as i32 {
                break;
            }
        }
        assert_eq!(
            states,
            vec![
                TaskState::TaskStarting as i32,
                TaskState::TaskRunning as i32,
                last as i32
            ]
        );
    }
    // The default executor exits once its tasks are done: FAILURE with status 0.
    let ev = s.next_event().await.unwrap();
    let failure = ev.failure.expect("FAILURE");
    assert_eq!(failure.executor_id.unwrap().value, "group-exec");
    assert_eq!(failure.status, Some(0));
    cluster.stop().await;
}

/// Capabilities of the framework used in offers (reference 2.9): MULTI_ROLE frameworks get
/// `allocation_info` on the offer and every resource.
#[tokio::test]
async fn multi_role_allocation_info() {
    let cluster = start(fast_config(1)).await;
    let mut info = framework_info();
    info.capabilities = vec![Capability {
        r#type: Some(Cap::MultiRole as i32),
    }];
    let mut s = Scheduler::subscribe(&cluster.master_url(), info).await;
    let offers = s.offers().await;
    assert_eq!(
        offers[0].allocation_info.as_ref().unwrap().role.as_deref(),
        Some("fastdata-role")
    );
    assert!(
        offers[0]
            .resources
            .iter()
            .all(|r| r.allocation_info.is_some())
    );
    let _ = reservation_info::Type::Dynamic;
    cluster.stop().await;
}

/// Reference 2.3 UPDATE_FRAMEWORK: 200 on success (new roles get offers, removed roles'
/// offers are rescinded); 400 when the principal would change.
#[tokio::test]
async fn update_framework() {
    let cluster = start(fast_config(1)).await;
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let offers = s.offers().await;
    let mut info = framework_info();
    info.id = s.framework_id();
    info.roles = vec!["other-role".into()];
    let update = |info: FrameworkInfo| scheduler::Call {
        r#type: Some(call::Type::UpdateFramework as i32),
        update_framework: Some(call::UpdateFramework {
            framework_info: info,
            ..Default::default()
        }),
        ..Default::default()
    };
    let a = s.call(update(info.clone())).await;
    assert_eq!((a.status, a.body.as_str()), (200, ""));
    let rescind = s.stream.wait_for(scheduler::event::Type::Rescind).await;
    assert_eq!(rescind.rescind.unwrap().offer_id, offers[0].id);
    let next = s.offers().await;
    assert_eq!(
        next[0].allocation_info.as_ref().unwrap().role.as_deref(),
        Some("other-role")
    );
    info.principal = Some("someone-else".into());
    let a = s.call(update(info)).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Changing framework's principal is not allowed.")
    );
    cluster.stop().await;
}
