//! The launch benchmark's baseline does the work it is compared on: against devcluster over
//! real HTTP, the bare driver launches slot 0, waits suppressed, then on the order to grow
//! reserves and launches one real noop executor task per agent with its Docker volume, and
//! every task reaches TASK_RUNNING on the cluster (its acknowledgements let the updates
//! through). No Kafka, Cassandra or ZooKeeper involved.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fastdata_devcluster::{ClusterConfig, DevCluster};
use fastdata_tests::bare_driver::{self, DriverCommand, DriverNews, TaskShape};
use fastdata_tests::binaries::binary;
use fastdata_tests::cluster::{docker_volumes, reservations, running, tasks};
use fastdata_tests::scheduler::eventually;
use fastdata_tests::unique_name;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bare_driver_launches_one_noop_executor_per_agent_after_the_first() {
    const SLOTS: usize = 4;
    let executor = binary("fastdata-executor", "fastdata-executor");
    // One agent more than slots: the surplus offer must be declined, not used.
    let cluster = DevCluster::start(ClusterConfig::with_agents(SLOTS + 1, 2.0, 2048.0).fast())
        .await
        .expect("devcluster starts");
    let service = unique_name("bare");
    let shape = TaskShape::new(
        &service,
        &executor,
        (0.5, 128.0),
        (0.1, 64.0),
        Duration::from_secs(3),
    );
    let (news_tx, mut news) = tokio::sync::mpsc::unbounded_channel();
    let (commands, commands_rx) = tokio::sync::mpsc::unbounded_channel();
    let count = Arc::new(AtomicUsize::new(0));
    let done = bare_driver::spawn(
        cluster.master_url(),
        shape,
        SLOTS,
        news_tx,
        commands_rx,
        Arc::clone(&count),
    );

    let Some(DriverNews::Subscribed(framework_id)) = news.recv().await else {
        panic!("SUBSCRIBED first");
    };
    let ready = tokio::time::timeout(WAIT, news.recv()).await;
    assert_eq!(ready, Ok(Some(DriverNews::Ready)), "slot 0 runs");
    let prefix = format!("{service}__consumer-");
    let state = cluster.state();
    assert_eq!(running(&state, &framework_id, &prefix).len(), 1);
    assert_eq!(
        tasks(&state, &framework_id, &prefix).len(),
        1,
        "nothing else launched before the order to grow"
    );

    commands
        .send(DriverCommand::Grow)
        .expect("the driver listens");
    let on_cluster = eventually(WAIT, "all slots running", || async {
        let state = cluster.state();
        let up = running(&state, &framework_id, &prefix);
        if up.len() == SLOTS {
            Ok(up)
        } else {
            Err(format!("{} running", up.len()))
        }
    })
    .await;
    let agents: BTreeSet<&String> = on_cluster.iter().map(|t| &t.agent_id).collect();
    assert_eq!(agents.len(), SLOTS, "one task per agent: {on_cluster:?}");

    let state = cluster.state();
    assert_eq!(
        tasks(&state, &framework_id, &prefix).len(),
        SLOTS,
        "the surplus agent got nothing"
    );
    let held = reservations(&state, &framework_id);
    let slots: BTreeSet<String> = (0..SLOTS).map(|i| format!("consumer-{i}")).collect();
    assert_eq!(held.keys().cloned().collect::<BTreeSet<_>>(), slots);
    let volumes = docker_volumes(&state);
    for i in 0..SLOTS {
        let name = format!("{service}-consumer-{i}");
        assert!(volumes.contains_key(&name), "volume {name} in {volumes:?}");
    }

    // The driver's own count follows the updates it acknowledged.
    eventually(WAIT, "the driver counts them", || async {
        let n = count.load(Ordering::Relaxed);
        if n == SLOTS {
            Ok(())
        } else {
            Err(format!("{n}"))
        }
    })
    .await;
    commands
        .send(DriverCommand::Stop)
        .expect("the driver listens");
    let report = done.await.expect("the driver's result").expect("no error");
    assert_eq!(report.launched, SLOTS);
    assert_eq!(report.running, SLOTS);
    assert!(report.calls as usize >= SLOTS, "{report:?}");
    cluster.stop().await;
}
