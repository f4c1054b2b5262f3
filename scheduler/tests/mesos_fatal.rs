//! Refusals the client must not retry, against devcluster over real HTTP (tier 2):
//! "Framework has been removed" and "Framework failed over" end in exactly one Fatal with a
//! remedy and no further SUBSCRIBE; our own TEARDOWN stops the client quietly.

mod common;

use std::time::Duration;

use common::{Events, Proxy, eventually, frameworks, stream_id};
use fastdata_proto::v1::{FrameworkId, scheduler};
use fastdata_scheduler::mesos::{ConnectionState, MesosClient};
use prost::Message as _;

/// Longer than several backoff periods (max 1 s in the tests): a client that was going to
/// try again would have.
const QUIET: Duration = Duration::from_secs(3);

fn teardown() -> scheduler::Call {
    scheduler::Call {
        r#type: Some(scheduler::call::Type::Teardown as i32),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_framework_is_one_fatal_and_no_more_subscribes() {
    let cluster = common::cluster(1, |_| {}).await;
    let proxy = Proxy::start(cluster.master_addr()).await;
    let (client, rx) = MesosClient::start(common::client_config(vec![proxy.url()], None));
    let mut events = Events::new(rx);
    let (framework_id, _) = events.subscribed().await;

    // The operator tears the framework down behind the scheduler's back (the same TEARDOWN
    // the Mesos operator tools send, with the framework's stream id).
    let mut call = teardown();
    call.framework_id = Some(FrameworkId {
        value: framework_id.clone(),
    });
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v1/scheduler", cluster.master_url()))
        .header("Content-Type", "application/x-protobuf")
        .header("Accept", "application/x-protobuf")
        .header("Mesos-Stream-Id", stream_id(&client).unwrap())
        .body(call.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);

    // The stream ends, the client re-subscribes once, Mesos answers ERROR, and that is it.
    events.disconnected().await;
    let fatal = events.fatal().await;
    eprintln!("removed: {fatal:?}");
    assert_eq!(
        fatal.message,
        "Mesos sent ERROR: Framework has been removed"
    );
    assert!(
        fatal.remedy.contains("/dcos-service-fastdata-test"),
        "{}",
        fatal.remedy
    );
    assert!(fatal.remedy.contains(&framework_id), "{}", fatal.remedy);
    assert_eq!(
        events.until_closed().await,
        Vec::<String>::new(),
        "nothing after the Fatal"
    );
    assert_eq!(
        *client.state().borrow(),
        ConnectionState::Fatal(fatal.clone())
    );
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        proxy.subscribes().len(),
        2,
        "the first SUBSCRIBE and one retry only"
    );

    // A restarted scheduler with the id from ZooKeeper: one SUBSCRIBE, one Fatal.
    let (restarted, rx) = MesosClient::start(common::client_config(
        vec![proxy.url()],
        Some(framework_id.clone()),
    ));
    let mut events = Events::new(rx);
    let fatal = events.fatal().await;
    assert_eq!(
        fatal.message,
        "Mesos sent ERROR: Framework has been removed"
    );
    assert_eq!(events.until_closed().await, Vec::<String>::new());
    tokio::time::sleep(QUIET).await;
    let subscribes = proxy.subscribes();
    assert_eq!(
        subscribes.len(),
        3,
        "exactly one SUBSCRIBE from the restarted client"
    );
    assert_eq!(
        subscribes[2].call().unwrap().framework_id.unwrap().value,
        framework_id
    );
    assert!(matches!(
        *restarted.state().borrow(),
        ConnectionState::Fatal(_)
    ));
    // shutdown after a Fatal is harmless.
    restarted.shutdown().await;
    client.shutdown().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_takes_over_and_the_first_stops() {
    let cluster = common::cluster(1, |_| {}).await;
    let (first, rx) = MesosClient::start(common::client_config(vec![cluster.master_url()], None));
    let mut first_events = Events::new(rx);
    let (framework_id, _) = first_events.subscribed().await;

    let (second, rx) = MesosClient::start(common::client_config(
        vec![cluster.master_url()],
        Some(framework_id.clone()),
    ));
    let mut second_events = Events::new(rx);
    let (same, _) = second_events.subscribed().await;
    assert_eq!(same, framework_id);

    let fatal = first_events.fatal().await;
    eprintln!("failed over: {fatal:?}");
    assert_eq!(fatal.message, "Mesos sent ERROR: Framework failed over");
    assert!(
        fatal.remedy.contains("Only one instance"),
        "{}",
        fatal.remedy
    );
    assert_eq!(first_events.until_closed().await, Vec::<String>::new());

    // The second one keeps the framework; the first never fights back.
    let current = stream_id(&second).unwrap();
    tokio::time::sleep(QUIET).await;
    assert_eq!(stream_id(&second).as_deref(), Some(current.as_str()));
    let fws = frameworks(&cluster);
    assert_eq!(fws.len(), 1);
    assert_eq!(fws[0]["stream_id"], current.as_str());
    second
        .call(common::revive())
        .await
        .expect("the survivor works");
    first.shutdown().await;
    second.shutdown().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_own_teardown_stops_the_client_without_a_fatal() {
    let cluster = common::cluster(1, |_| {}).await;
    let proxy = Proxy::start(cluster.master_addr()).await;
    let (client, rx) = MesosClient::start(common::client_config(vec![proxy.url()], None));
    let mut events = Events::new(rx);
    let (framework_id, _) = events.subscribed().await;
    client.call(teardown()).await.expect("TEARDOWN accepted");
    let rest = events.until_closed().await;
    assert!(
        rest.iter().all(|e| !e.starts_with("Fatal")),
        "no Fatal after our own TEARDOWN: {rest:?}"
    );
    assert_eq!(*client.state().borrow(), ConnectionState::Stopped);
    tokio::time::sleep(QUIET).await;
    assert_eq!(proxy.subscribes().len(), 1, "no re-subscription");
    eventually("devcluster removed the framework", || {
        frameworks(&cluster)
            .iter()
            .all(|f| f["id"] != framework_id.as_str() || f["connected"] == false)
            .then_some(())
    })
    .await;
    cluster.stop().await;
}
