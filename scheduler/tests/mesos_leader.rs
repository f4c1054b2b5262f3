//! Leader following against devcluster over real HTTP (tier 2): a 307 from a non-leading
//! master is followed at once and remembered for calls; a leader change and "no leader
//! elected" (503) are ridden out with backoff until a leader answers.
//!
//! Every reconnection prints how long it took; nothing is asserted on time.

mod common;

use std::time::{Duration, Instant};

use common::{Events, decline, eventually, frameworks, revive, wait_state};
use fastdata_devcluster::{DevCluster, Fault, MasterAddress};
use fastdata_scheduler::mesos::{CallError, ConnectionState, MesosClient};

fn port(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

async fn with_standby() -> (DevCluster, String, String) {
    let cluster = common::cluster(1, |c| c.standby_master = true).await;
    let primary = cluster.master_url();
    let standby = cluster.standby_url().expect("a standby address");
    (cluster, primary, standby)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_redirects_to_the_leader_and_rides_out_elections() {
    let (cluster, primary, standby) = with_standby().await;
    // The standby is listed first: it answers 307 `//localhost:<primary>/master/api/v1/scheduler`.
    let (client, rx) = MesosClient::start(common::client_config(
        vec![standby.clone(), primary.clone()],
        None,
    ));
    let mut events = Events::new(rx);
    let (framework_id, master) = events.subscribed().await;
    let leader = format!("http://localhost:{}", port(&primary));
    assert_eq!(master, leader, "subscribed at the Location's host:port");
    // Calls go to the leader too (the standby would answer 307 again).
    let offers = events.offers().await;
    client
        .call(decline(&offers))
        .await
        .expect("DECLINE at the leader");

    // The leader moves to the standby address: the stream ends, the old leader now
    // redirects, and the client follows.
    let started = Instant::now();
    cluster
        .inject(Fault::ElectLeader {
            leader: Some(MasterAddress::Standby),
        })
        .unwrap();
    events.disconnected().await;
    let (again, master) = events.subscribed().await;
    eprintln!(
        "leader moved to the standby: back in {:?}",
        started.elapsed()
    );
    assert_eq!(again, framework_id);
    assert_eq!(master, format!("http://localhost:{}", port(&standby)));
    let offers = events.offers().await;
    client
        .call(decline(&offers))
        .await
        .expect("DECLINE at the new leader");

    // No leader at all: both addresses answer 503 "No leader elected"; the client keeps
    // trying (and calls are refused without being sent).
    cluster.inject(Fault::ElectLeader { leader: None }).unwrap();
    events.disconnected().await;
    let error = wait_state(&client, "Subscribing after two 503s", |s| match s {
        ConnectionState::Subscribing {
            attempt,
            last_error: Some(e),
        } if *attempt >= 2 && e.contains("No leader elected") => Some(e.clone()),
        _ => None,
    })
    .await;
    assert!(error.contains("503"), "{error}");
    assert!(matches!(
        client.call(revive()).await,
        Err(CallError::NotSubscribed)
    ));

    // The primary is elected again.
    let started = Instant::now();
    cluster
        .inject(Fault::ElectLeader {
            leader: Some(MasterAddress::Primary),
        })
        .unwrap();
    let (again, master) = events.subscribed().await;
    eprintln!(
        "a leader elected after none: back in {:?}",
        started.elapsed()
    );
    assert_eq!(again, framework_id);
    assert_eq!(port(&master), port(&primary));
    client.call(revive()).await.expect("REVIVE at the leader");

    // One framework all along, on the current stream.
    let current = common::stream_id(&client).unwrap();
    eventually(
        "devcluster shows one framework on the current stream",
        || {
            let fws = frameworks(&cluster);
            (fws.len() == 1
                && fws[0]["id"] == framework_id.as_str()
                && fws[0]["stream_id"] == current.as_str())
            .then_some(())
        },
    )
    .await;
    client.shutdown().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_no_leader_elected_until_one_is() {
    let (cluster, primary, _standby) = with_standby().await;
    cluster.inject(Fault::ElectLeader { leader: None }).unwrap();
    let (client, rx) = MesosClient::start(common::client_config(vec![primary], None));
    let mut events = Events::new(rx);
    wait_state(&client, "three attempts answered 503", |s| match s {
        ConnectionState::Subscribing {
            attempt,
            last_error: Some(e),
        } if *attempt >= 3 && e.contains("503 No leader elected") => Some(()),
        _ => None,
    })
    .await;
    assert!(frameworks(&cluster).is_empty(), "nothing subscribed yet");
    // Failed attempts are not events.
    assert_eq!(events.within(Duration::from_millis(200)).await, Some(None));

    let started = Instant::now();
    cluster
        .inject(Fault::ElectLeader {
            leader: Some(MasterAddress::Primary),
        })
        .unwrap();
    let (framework_id, _) = events.subscribed().await;
    eprintln!(
        "503 until elected: subscribed {:?} after the election",
        started.elapsed()
    );
    assert_eq!(frameworks(&cluster)[0]["id"], framework_id.as_str());
    client.shutdown().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_past_an_unreachable_master() {
    let cluster = common::cluster(1, |_| {}).await;
    // The first master refuses connections (port 1 on loopback).
    let dead = "http://127.0.0.1:1".to_owned();
    let started = Instant::now();
    let (client, rx) = MesosClient::start(common::client_config(
        vec![dead, cluster.master_url()],
        None,
    ));
    let mut events = Events::new(rx);
    let (framework_id, master) = events.subscribed().await;
    eprintln!(
        "past an unreachable master: subscribed after {:?}",
        started.elapsed()
    );
    assert_eq!(master, cluster.master_url());
    assert_eq!(frameworks(&cluster)[0]["id"], framework_id.as_str());
    client.shutdown().await;
    cluster.stop().await;
}
