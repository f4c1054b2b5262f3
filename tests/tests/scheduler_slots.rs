//! The scheduler on devcluster (issue 6 "Evidence"): slots follow commanded targets
//! (0 → 5 → 2 → 0, the last a pause) with their reservations and volumes, move off a removed
//! agent with their volume, survive a scheduler SIGKILL without a duplicate launch, and
//! uninstall leaves nothing behind.
//!
//! The scheduler and its executors run as real processes; devcluster plays Mesos; ZooKeeper
//! and Kafka are the real ones of `dev/services`. Consumer slots run the `noop` workload here
//! (the slot mechanics are the subject; the pipeline's end-to-end tests run real consumers).
//! Targets are commanded through the real API: `min_consumers = max_consumers = N`.

use std::collections::BTreeSet;
use std::time::Duration;

use fastdata_devcluster::{ClusterConfig, DevCluster, Fault};
use fastdata_tests::cluster::{
    TaskOnCluster, docker_volumes, framework, reservations, running, sandbox_of, tasks,
};
use fastdata_tests::scheduler::{SchedulerProcess, Stage, eventually};
use fastdata_tests::zk_connect;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

async fn setup(agents: usize, consumers: u32) -> Stage {
    let cluster = DevCluster::start(ClusterConfig::with_agents(agents, 2.0, 2048.0).fast())
        .await
        .expect("devcluster starts");
    let mut stage = Stage::new("fdslots", cluster, 12, "noop").await;
    stage.set("FASTDATA_MIN_CONSUMERS", consumers.to_string());
    stage.set("FASTDATA_MAX_CONSUMERS", consumers.to_string());
    stage.set("FASTDATA_CONSUMER_GRACE_PERIOD", "3s");
    stage
}

/// Waits until exactly `slots` consumer slots run, one task each, each on its own
/// reservation; returns the running tasks.
async fn converged(
    setup: &Stage,
    fw: &str,
    slots: u32,
    scheduler: &SchedulerProcess,
) -> Vec<TaskOnCluster> {
    let prefix = setup.consumer_prefix();
    eventually(WAIT, &format!("{slots} consumer slots running"), || async {
        let state = setup.cluster.state();
        let all = tasks(&state, fw, &prefix);
        let live: Vec<_> = all
            .iter()
            .filter(|t| !is_terminal(&t.state))
            .cloned()
            .collect();
        let up = running(&state, fw, &prefix);
        let held = reservations(&state, fw);
        let wanted: BTreeSet<String> = (0..slots).map(|i| format!("consumer-{i}")).collect();
        let reserved: BTreeSet<String> = held.keys().cloned().collect();
        if up.len() == slots as usize
            && live.len() == slots as usize
            && reserved == wanted
            && held.values().all(|r| r.len() == 1)
        {
            Ok(up)
        } else {
            Err(format!(
                "running {:?}, live {}, reservations {held:?}; scheduler log:\n{}",
                up.iter().map(|t| &t.id).collect::<Vec<_>>(),
                live.len(),
                scheduler.log_tail()
            ))
        }
    })
    .await
}

fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "TASK_FINISHED"
            | "TASK_FAILED"
            | "TASK_KILLED"
            | "TASK_ERROR"
            | "TASK_LOST"
            | "TASK_DROPPED"
            | "TASK_GONE"
            | "TASK_GONE_BY_OPERATOR"
    )
}

fn slot_of(task_id: &str) -> String {
    task_id.split("__").nth(1).unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slots_follow_targets_move_off_lost_agents_and_uninstall_leaves_nothing() {
    let setup = setup(6, 5).await;
    let mut scheduler = setup.scheduler("scheduler-1").await;
    let fw = scheduler.framework_id().await;

    // 0 → 5: five slots, each reserved on its own agent, each with its volume.
    let five = converged(&setup, &fw, 5, &scheduler).await;
    let agents: BTreeSet<&String> = five.iter().map(|t| &t.agent_id).collect();
    assert_eq!(agents.len(), 5, "at most one consumer per agent: {five:?}");
    let volumes = docker_volumes(&setup.cluster.state());
    for i in 0..5 {
        let name = format!("{}-consumer-{i}", setup.service);
        let dir = volumes
            .get(&name)
            .unwrap_or_else(|| panic!("volume {name} in {volumes:?}"));
        assert!(dir.is_dir(), "{}", dir.display());
    }

    // 5 → 2 through the real API: the highest slots go, with their reservations.
    let (code, body) = scheduler
        .put(
            "/v1/scaling",
            &json!({"min_consumers": 2, "max_consumers": 2}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let two = converged(&setup, &fw, 2, &scheduler).await;
    let slots: BTreeSet<String> = two.iter().map(|t| slot_of(&t.id)).collect();
    assert_eq!(
        slots,
        BTreeSet::from(["consumer-0".to_owned(), "consumer-1".to_owned()])
    );
    assert_eq!(
        docker_volumes(&setup.cluster.state()).len(),
        5,
        "volumes outlive their tasks"
    );

    // The agent of consumer-1 is removed: the slot comes back elsewhere with the same volume.
    let state = setup.cluster.state();
    let lost = two
        .iter()
        .find(|t| slot_of(&t.id) == "consumer-1")
        .unwrap()
        .clone();
    let volume_dir = docker_volumes(&state)[&format!("{}-consumer-1", setup.service)].clone();
    let index = state["agents"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["id"] == lost.agent_id.as_str())
        .expect("the agent");
    setup
        .cluster
        .inject(Fault::RemoveAgent {
            agent: index,
            gone: false,
        })
        .expect("agent removed");
    let moved = eventually(WAIT, "consumer-1 relaunched on another agent", || async {
        let up = converged(&setup, &fw, 2, &scheduler).await;
        let again = up
            .iter()
            .find(|t| slot_of(&t.id) == "consumer-1")
            .unwrap()
            .clone();
        if again.agent_id != lost.agent_id {
            Ok(again)
        } else {
            Err(format!("still {again:?}"))
        }
    })
    .await;
    let sandbox = sandbox_of(&setup.cluster.state(), &moved.id).expect("its sandbox");
    let spool = std::fs::canonicalize(sandbox.join("spool")).expect("spool is linked");
    assert_eq!(
        spool,
        std::fs::canonicalize(&volume_dir).unwrap(),
        "the same volume directory"
    );

    // 2 → 0 (paused): every task killed and every reservation released; the volumes stay
    // for the next time; the deploy plan is complete with nothing to run.
    let (code, body) = scheduler
        .put(
            "/v1/scaling",
            &json!({"min_consumers": 0, "max_consumers": 0}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    converged(&setup, &fw, 0, &scheduler).await;
    assert_eq!(
        docker_volumes(&setup.cluster.state()).len(),
        5,
        "volumes outlive a pause"
    );
    let status = eventually(WAIT, "the status shows the pause", || async {
        let (_, status) = scheduler.get("/v1/status").await;
        let (plan, _) = scheduler.get("/v1/plans/deploy").await;
        // Decisions are listed newest first.
        let paused = status["decisions"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("paused"))
            && status["held_reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("paused"));
        if plan == 200 && status["consumers"]["desired"] == 0 && paused {
            Ok(status)
        } else {
            Err(format!("plan {plan}, {status}"))
        }
    })
    .await;
    assert_eq!(status["consumers"]["running"], 0, "{status}");

    // Uninstall: a restarted scheduler with SDK_UNINSTALL kills, unreserves, tears down,
    // deletes its ZooKeeper node, and reports the deploy plan complete.
    assert_eq!(scheduler.stop().await, Some(0), "graceful stop");
    let mut env = setup.env.clone();
    env.push(("SDK_UNINSTALL".into(), "true".into()));
    let mut uninstaller =
        SchedulerProcess::start(&env, &setup.logs.join("scheduler-uninstall.log")).await;
    eventually(WAIT, "uninstall complete", || async {
        let (code, body) = uninstaller.get("/v1/plans/deploy").await;
        if code == 200 {
            Ok(())
        } else {
            Err(format!("{code} {body}\n{}", uninstaller.log_tail()))
        }
    })
    .await;
    let state = setup.cluster.state();
    assert!(
        reservations(&state, &fw).is_empty(),
        "no reservation left: {:?}",
        reservations(&state, &fw)
    );
    let live: Vec<_> = tasks(&state, &fw, "")
        .into_iter()
        .filter(|t| !is_terminal(&t.state))
        .collect();
    assert!(live.is_empty(), "no task left: {live:?}");
    assert!(
        framework(&state, &fw).is_none_or(
            |f| f["connected"] == false && f["tasks"].as_array().is_none_or(Vec::is_empty)
        ),
        "the framework is torn down"
    );
    let zk = zookeeper_client::Client::connect(&zk_connect())
        .await
        .expect("ZooKeeper");
    let root = format!("/dcos-service-{}", setup.service);
    assert!(
        zk.check_stat(&root).await.expect("stat").is_none(),
        "{root} deleted"
    );
    let (code, body) = uninstaller.get("/v1/plans/deploy").await;
    assert_eq!(
        code, 200,
        "still complete once the client has stopped: {body}"
    );
    assert_eq!(
        uninstaller.stop().await,
        Some(0),
        "an uninstalled scheduler stops cleanly"
    );
    setup.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_scheduler_comes_back_with_its_id_tasks_and_thresholds() {
    let setup = setup(4, 3).await;
    let mut scheduler = setup.scheduler("scheduler-1").await;
    let fw = scheduler.framework_id().await;
    let before = converged(&setup, &fw, 3, &scheduler).await;
    let (code, body) = scheduler
        .put("/v1/scaling", &json!({"min_consumers": 3, "max_consumers": 3, "scale_up_lag": 4321, "scale_down_lag": 1234}))
        .await;
    assert_eq!(code, 200, "{body}");

    scheduler.kill().await;
    let restarted = std::time::Instant::now();
    let scheduler = setup.scheduler("scheduler-2").await;
    assert_eq!(scheduler.framework_id().await, fw, "the same framework id");
    scheduler.health_becomes(200, WAIT).await;
    println!(
        "scheduler back (subscribed, reconciled) {:?} after SIGKILL",
        restarted.elapsed()
    );
    let after = converged(&setup, &fw, 3, &scheduler).await;
    assert_eq!(
        after, before,
        "the running tasks were adopted, none relaunched"
    );
    let prefix = format!("{}__consumer-", setup.service);
    assert_eq!(
        tasks(&setup.cluster.state(), &fw, &prefix).len(),
        3,
        "no task launched twice"
    );
    let (_, scaling) = scheduler.get("/v1/scaling").await;
    assert_eq!(scaling["scale_up_lag"], 4321, "{scaling}");
    assert_eq!(scaling["scale_down_lag"], 1234, "{scaling}");
    setup.cluster.stop().await;
}
