//! Volumes: persistent volumes from CREATE on per-agent directories (`volumes.jsonl`), and
//! `DOCKER_VOLUME` sources with driver `pxd` on directories that belong to the cluster.

mod common;

use std::time::Duration;

use common::*;
use fastdata_proto::v1::{
    AgentId, CommandInfo, ContainerInfo, Offer, Parameter, Parameters, Resource, TaskId, TaskInfo,
    TaskState, Volume, container_info,
    offer::{Operation, operation},
    value, volume,
};

const FILE: &str = "volumes.jsonl";

fn volume_of(offers: &[Offer]) -> Option<Resource> {
    offers
        .iter()
        .flat_map(|o| o.resources.iter())
        .find(|r| r.disk.as_ref().is_some_and(|d| d.persistence.is_some()))
        .cloned()
}

fn recorded_volume() -> Resource {
    transcript(FILE)
        .iter()
        .flat_map(|s| s.scheduler_events())
        .filter_map(|e| e.offers)
        .find_map(|o| volume_of(&o.offers))
        .expect("a recorded offer with the volume")
}

fn recorded_status(task: &str, state: TaskState) -> fastdata_proto::v1::TaskStatus {
    transcript(FILE)
        .iter()
        .flat_map(|s| s.scheduler_events())
        .filter_map(|e| e.update.map(|u| u.status))
        .find(|s| s.task_id.value == task && s.state == state as i32)
        .unwrap_or_else(|| panic!("no recorded {state:?} of {task}"))
}

fn same_status(got: &fastdata_proto::v1::TaskStatus, expected: &fastdata_proto::v1::TaskStatus) {
    let (mut g, mut e) = (got.clone(), expected.clone());
    normalise_status(&mut g);
    normalise_status(&mut e);
    assert_eq!(g, e);
}

/// `volumes.jsonl` replayed (the recorded calls, ids rewritten): RESERVE cpus/mem/disk,
/// CREATE a persistent volume (the next offer shows it exactly as the recorded one), a
/// writer task and a reader task on it (the data persists across tasks, the volume is a
/// per-agent directory linked at `spool` in the sandbox), DESTROY (the directory goes, the
/// disk stays reserved), UNRESERVE (all unreserved again), and a `DOCKER_VOLUME` task on
/// an agent without the volume driver: one TASK_FAILED, REASON_CONTAINER_LAUNCH_FAILED,
/// SOURCE_AGENT, "Failed to launch container: Volumes in ContainerInfo is not supported".
#[tokio::test]
async fn replay_volumes_transcript() {
    let mut config = fast_config(1);
    config.agents[0].volume_drivers.clear();
    let cluster = start(config).await;
    let agent = cluster.agent_ids()[0].clone();
    let info = step(FILE, "SUBSCRIBE")
        .scheduler_call()
        .subscribe
        .unwrap()
        .framework_info;
    let mut s = Scheduler::subscribe(&cluster.master_url(), info).await;
    let fid = s.framework_id.clone();
    let replay = |name: &str, offers: &[Offer]| {
        let mut call = step(FILE, name).scheduler_call();
        let ids: Vec<String> = offers.iter().map(|o| o.id.value.clone()).collect();
        rewrite_ids(&mut call, &fid, &agent, &ids);
        call
    };
    s.offers().await;
    let used = s.take_outstanding();
    assert_eq!(
        s.call(replay("ACCEPT RESERVE cpus:1 mem:256 disk:100", &used))
            .await
            .status,
        202
    );
    s.offers().await;
    let used = s.take_outstanding();
    assert_eq!(
        s.call(replay(
            "ACCEPT CREATE persistent volume slot-0-spool (disk 100, reserved)",
            &used
        ))
        .await
        .status,
        202
    );
    while volume_of(&s.outstanding).is_none() {
        s.offers().await;
    }
    assert_eq!(volume_of(&s.outstanding).unwrap(), recorded_volume());

    for (step_name, task) in [
        ("ACCEPT LAUNCH writer task on volume", "fdx-vol-writer"),
        ("ACCEPT LAUNCH reader task on same volume", "fdx-vol-reader"),
    ] {
        while volume_of(&s.outstanding).is_none() {
            s.offers().await;
        }
        let used = s.take_outstanding();
        assert_eq!(s.call(replay(step_name, &used)).await.status, 202);
        for state in [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished,
        ] {
            let got = s.update_of(task).await;
            same_status(&got, &recorded_status(task, state));
        }
    }
    let volume_dir = cluster
        .work_dir()
        .join("agents/0/volumes/roles/fastdata-role/slot-0-spool");
    assert_eq!(
        std::fs::read_to_string(volume_dir.join("hello.txt")).unwrap(),
        "written by fdx-vol-writer\n"
    );
    let reader_runs = cluster
        .work_dir()
        .join("agents/0/slaves")
        .join(&agent)
        .join("frameworks")
        .join(&fid)
        .join("executors/fdx-vol-reader/runs");
    let sandbox = std::fs::read_dir(reader_runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
        "written by fdx-vol-writer\n",
        "the reader's stdout, as recorded"
    );
    let state = cluster.state();
    assert_eq!(
        state["volumes"]["persistent"][0]["persistence_id"],
        "slot-0-spool"
    );

    // DESTROY: the directory goes, the disk stays reserved.
    while volume_of(&s.outstanding).is_none() {
        s.offers().await;
    }
    let used = s.take_outstanding();
    assert_eq!(
        s.call(replay("ACCEPT DESTROY volume slot-0-spool", &used))
            .await
            .status,
        202
    );
    let offers = s.offers().await;
    assert!(volume_of(&offers).is_none());
    let reserved_disk = offers
        .iter()
        .flat_map(|o| o.resources.iter())
        .any(|r| r.name == "disk" && !r.reservations.is_empty());
    assert!(reserved_disk);
    for _ in 0..40 {
        if !volume_dir.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!volume_dir.exists(), "the volume directory is deleted");

    // UNRESERVE: everything unreserved again.
    let all = s.take_outstanding();
    assert_eq!(
        s.call(replay("ACCEPT UNRESERVE cpus:1 mem:256 disk:100", &all))
            .await
            .status,
        202
    );
    let offers = s.offers().await;
    assert!(
        offers
            .iter()
            .flat_map(|o| o.resources.iter())
            .all(|r| r.reservations.is_empty())
    );
    let cpus: f64 = offers
        .iter()
        .flat_map(|o| o.resources.iter())
        .filter(|r| r.name == "cpus")
        .map(|r| r.scalar.as_ref().unwrap().value)
        .sum();
    assert_eq!(cpus, 4.0);

    // DOCKER_VOLUME on an agent without the driver.
    let used = s.take_outstanding();
    let step_name = "ACCEPT LAUNCH task with DOCKER_VOLUME (driver pxd) on agent without docker/volume isolator";
    assert_eq!(s.call(replay(step_name, &used)).await.status, 202);
    let got = s.update_of("fdx-dockervol-task").await;
    same_status(
        &got,
        &recorded_status("fdx-dockervol-task", TaskState::TaskFailed),
    );
    cluster.stop().await;
}

fn pxd_task(agent: &str, id: &str, cmd: &str) -> TaskInfo {
    let role = |r: Resource| fastdata_proto::v1::Resource {
        allocation_info: Some(fastdata_proto::v1::resource::AllocationInfo {
            role: Some("fastdata-role".into()),
        }),
        ..r
    };
    let scalar = |name: &str, v: f64| Resource {
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
        resources: vec![role(scalar("cpus", 0.5)), role(scalar("mem", 128.0))],
        command: Some(CommandInfo {
            value: Some(cmd.into()),
            shell: Some(true),
            ..Default::default()
        }),
        container: Some(ContainerInfo {
            r#type: container_info::Type::Mesos as i32,
            volumes: vec![Volume {
                mode: volume::Mode::Rw as i32,
                container_path: "spool".into(),
                host_path: None,
                image: None,
                source: Some(volume::Source {
                    r#type: Some(volume::source::Type::DockerVolume as i32),
                    docker_volume: Some(volume::source::DockerVolume {
                        driver: Some("pxd".into()),
                        name: "fastdata-consumer-0".into(),
                        driver_options: Some(Parameters {
                            parameter: vec![Parameter {
                                key: "size".into(),
                                value: "1".into(),
                            }],
                        }),
                    }),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// DESIGN "Portworx volume": a `pxd` DOCKER_VOLUME maps its name to a directory of the
/// cluster, linked at the container path, so a task relaunched on another agent finds the
/// data its predecessor wrote.
#[tokio::test]
async fn pxd_volumes_follow_the_task_across_agents() {
    let cluster = start(fast_config(2)).await;
    let agents = cluster.agent_ids();
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let mut offers = s.offers().await;
    while offers.len() < 2 {
        offers.extend(s.offers().await);
    }
    s.take_outstanding();
    let on = |agent: &str| {
        offers
            .iter()
            .find(|o| o.agent_id.value == agent)
            .unwrap()
            .id
            .clone()
    };
    let launch = |task: TaskInfo| Operation {
        r#type: Some(operation::Type::Launch as i32),
        launch: Some(operation::Launch {
            task_infos: vec![task],
        }),
        ..Default::default()
    };
    let writer = pxd_task(&agents[0], "writer", "echo dead-letter-7 > spool/dlq.txt");
    assert_eq!(
        s.accept(vec![on(&agents[0])], vec![launch(writer)], Some(0.0))
            .await
            .status,
        202
    );
    let mut last = s.update_of("writer").await;
    while last.state != TaskState::TaskFinished as i32 {
        assert!(last.state != TaskState::TaskFailed as i32, "{last:?}");
        last = s.update_of("writer").await;
    }
    let reader = pxd_task(&agents[1], "reader", "grep -q dead-letter-7 spool/dlq.txt");
    assert_eq!(
        s.accept(vec![on(&agents[1])], vec![launch(reader)], Some(0.0))
            .await
            .status,
        202
    );
    let mut last = s.update_of("reader").await;
    while !TaskState::try_from(last.state).unwrap().is_terminal() {
        last = s.update_of("reader").await;
    }
    assert_eq!(last.state, TaskState::TaskFinished as i32, "{last:?}");
    let state = cluster.state();
    assert_eq!(
        state["volumes"]["docker"][0]["name"],
        "pxd/fastdata-consumer-0"
    );
    assert!(
        cluster
            .work_dir()
            .join("volumes/pxd/fastdata-consumer-0/dlq.txt")
            .exists()
    );
    cluster.stop().await;
}
