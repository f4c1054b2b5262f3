//! The scheduler against Mesos faults (issue 6 "Evidence"): a master restart, a dropped
//! stream and a leader change through a 307 each bring it back within seconds with the same
//! framework id and its tasks untouched; a framework Mesos removed is reported on
//! `/v1/health` once, without a crash loop.
//!
//! (A stream that goes silent without closing is the Mesos client's heartbeat watchdog's
//! business and is tested there, `scheduler/tests/mesos_subscription.rs`, through a proxy that
//! freezes the stream.)

use std::time::{Duration, Instant};

use fastdata_devcluster::{ClusterConfig, DevCluster, Fault, MasterAddress};
use fastdata_proto::v1::{FrameworkId, scheduler};
use fastdata_tests::cluster::{TaskOnCluster, framework, running};
use fastdata_tests::scheduler::{SchedulerProcess, Stage, eventually};
use prost::Message as _;

const WAIT: Duration = Duration::from_secs(60);

async fn stage(standby: bool) -> Stage {
    let mut config = ClusterConfig::with_agents(3, 2.0, 2048.0).fast();
    config.standby_master = standby;
    let cluster = DevCluster::start(config).await.expect("devcluster starts");
    let mut stage = Stage::new("fdmesos", cluster, 6, "noop").await;
    stage.set("FASTDATA_MIN_CONSUMERS", "2");
    stage.set("FASTDATA_MAX_CONSUMERS", "2");
    stage
}

/// The framework's current stream id in devcluster, once it is connected.
fn stream_id(cluster: &DevCluster, framework_id: &str) -> Option<String> {
    let state = cluster.state();
    let f = framework(&state, framework_id)?;
    (f["connected"] == true)
        .then(|| f["stream_id"].as_str().map(str::to_owned))
        .flatten()
}

/// Waits until the scheduler is subscribed on a stream other than `old`, healthy, and runs
/// exactly `tasks`; returns how long that took since `since`.
async fn back(
    stage: &Stage,
    scheduler: &SchedulerProcess,
    fw: &str,
    old: &str,
    tasks: &[TaskOnCluster],
    since: Instant,
) -> Duration {
    eventually(
        WAIT,
        "the scheduler re-subscribed with the same id",
        || async {
            match stream_id(&stage.cluster, fw) {
                Some(stream) if stream != old => Ok(()),
                other => Err(format!("stream {other:?}\n{}", scheduler.log_tail())),
            }
        },
    )
    .await;
    scheduler.health_becomes(200, WAIT).await;
    let took = since.elapsed();
    let now = running(&stage.cluster.state(), fw, &stage.consumer_prefix());
    assert_eq!(now, tasks, "the same tasks, none relaunched");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn master_restart_dropped_stream_and_leader_change_leave_the_tasks_running() {
    let stage = stage(true).await;
    // The standby first: the scheduler must follow its 307 to the leader.
    let mut stage = stage;
    let standby = stage.cluster.standby_url().expect("a standby address");
    stage.set(
        "FASTDATA_MESOS_MASTERS",
        format!("{standby},{}", stage.cluster.master_url()),
    );
    let scheduler = stage.scheduler("scheduler").await;
    let fw = scheduler.framework_id().await;
    scheduler.health_becomes(200, WAIT).await;
    let tasks = running(&stage.cluster.state(), &fw, &stage.consumer_prefix());
    assert_eq!(tasks.len(), 2, "{tasks:?}");

    let old = stream_id(&stage.cluster, &fw).expect("connected");
    let at = Instant::now();
    stage
        .cluster
        .inject(Fault::RestartMaster)
        .expect("master restarted");
    let restart = back(&stage, &scheduler, &fw, &old, &tasks, at).await;

    let old = stream_id(&stage.cluster, &fw).expect("connected");
    let at = Instant::now();
    stage
        .cluster
        .inject(Fault::DropStream {
            framework_id: fw.clone(),
        })
        .expect("stream dropped");
    let dropped = back(&stage, &scheduler, &fw, &old, &tasks, at).await;

    let old = stream_id(&stage.cluster, &fw).expect("connected");
    let at = Instant::now();
    stage
        .cluster
        .inject(Fault::ElectLeader {
            leader: Some(MasterAddress::Standby),
        })
        .expect("leader changed");
    let leader = back(&stage, &scheduler, &fw, &old, &tasks, at).await;
    println!(
        "scheduler back after: master restart {restart:?}, dropped stream {dropped:?}, leader change (307) {leader:?}"
    );
    stage.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_framework_is_reported_on_health_without_a_crash_loop() {
    let stage = stage(false).await;
    let mut scheduler = stage.scheduler("scheduler").await;
    let fw = scheduler.framework_id().await;
    scheduler.health_becomes(200, WAIT).await;

    // The operator tears the framework down behind the scheduler's back.
    let stream = stream_id(&stage.cluster, &fw).expect("connected");
    let teardown = scheduler::Call {
        framework_id: Some(FrameworkId { value: fw.clone() }),
        r#type: Some(scheduler::call::Type::Teardown as i32),
        ..Default::default()
    };
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v1/scheduler", stage.cluster.master_url()))
        .header("Content-Type", "application/x-protobuf")
        .header("Accept", "application/x-protobuf")
        .header("Mesos-Stream-Id", stream)
        .body(teardown.encode_to_vec())
        .send()
        .await
        .expect("TEARDOWN sent");
    assert_eq!(answer.status(), 202);

    let health = scheduler.health_becomes(503, WAIT).await;
    let message = health["message"].as_str().unwrap_or_default();
    let remedy = health["remedy"].as_str().unwrap_or_default();
    assert!(message.contains("Framework has been removed"), "{health}");
    assert!(
        remedy.contains(&format!("/dcos-service-{}", stage.service)),
        "the remedy names the ZooKeeper node to delete: {health}"
    );
    let (code, plan) = scheduler.get("/v1/plans/deploy").await;
    assert_eq!(code, 417, "the deploy plan is in error: {plan}");

    // No crash loop: the process stays up, serving the reason, and stops subscribing.
    let log = scheduler.log.clone();
    let subscribes = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("subscribing master=")
            .count()
    };
    let before = subscribes();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(scheduler.alive(), "the scheduler did not exit");
    assert_eq!(subscribes(), before, "no SUBSCRIBE after the Fatal");
    assert_eq!(scheduler.get("/v1/health").await.0, 503);
    assert_eq!(
        std::fs::read_to_string(&scheduler.log)
            .unwrap_or_default()
            .matches("Mesos refused the framework")
            .count(),
        1,
        "logged once"
    );
    assert_eq!(scheduler.stop().await, Some(0));
    stage.cluster.stop().await;
}
