//! The Mesos client against devcluster over real HTTP (tier 2): subscription, calls, and
//! coming back after a master restart, a dropped stream, a silent stream (heartbeat
//! watchdog) and garbage on the stream.
//!
//! Every reconnection prints how long it took; nothing is asserted on time.

mod common;

use std::time::Instant;

use common::{Events, Proxy, decline, eventually, frameworks, revive, stream_id};
use fastdata_devcluster::Fault;
use fastdata_proto::validate::Validate as _;
use fastdata_scheduler::mesos::{CallError, ConnectionState, MesosClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_receives_offers_and_declines_with_its_stream_id() {
    let cluster = common::cluster(2, |_| {}).await;
    let proxy = Proxy::start(cluster.master_addr()).await;
    let (client, rx) = MesosClient::start(common::client_config(vec![proxy.url()], None));
    let mut events = Events::new(rx);

    let started = Instant::now();
    let (framework_id, master) = events.subscribed().await;
    eprintln!("first subscription took {:?}", started.elapsed());
    assert_eq!(master, proxy.url());
    let ConnectionState::Subscribed {
        framework_id: state_id,
        stream_id,
        master: state_master,
    } = client.state().borrow().clone()
    else {
        panic!("not subscribed: {:?}", client.state().borrow());
    };
    assert_eq!(
        (state_id.as_str(), state_master.as_str()),
        (framework_id.as_str(), master.as_str())
    );

    let offers = events.offers().await;
    assert!(!offers.is_empty());
    client
        .call(common::decline(&offers))
        .await
        .expect("DECLINE accepted");

    // On the wire: SUBSCRIBE is protobuf both ways, valid, without a stream id, and for a
    // new framework carries no id; the DECLINE carries the id and the stream id, on another
    // connection than the stream.
    let requests = proxy.requests();
    let subscribe = &proxy.subscribes()[0];
    assert_eq!(subscribe.method, "POST");
    assert_eq!(subscribe.path, "/api/v1/scheduler");
    assert_eq!(
        subscribe.header("content-type"),
        Some("application/x-protobuf")
    );
    assert_eq!(subscribe.header("accept"), Some("application/x-protobuf"));
    assert_eq!(subscribe.header("mesos-stream-id"), None);
    let call = subscribe
        .call()
        .expect("the SUBSCRIBE body is a protobuf Call");
    call.validate().expect("the SUBSCRIBE call is valid");
    assert_eq!(call.framework_id, None);
    let info = &call.subscribe.as_ref().unwrap().framework_info;
    assert_eq!(info.roles, vec![common::ROLE.to_owned()]);
    assert_eq!(info.checkpoint, Some(true));
    let declined = requests
        .iter()
        .find(|r| r.call_type() == Some(fastdata_proto::v1::scheduler::call::Type::Decline))
        .expect("the DECLINE went through the proxy");
    assert_eq!(declined.header("mesos-stream-id"), Some(stream_id.as_str()));
    assert_eq!(
        declined.call().unwrap().framework_id.unwrap().value,
        framework_id
    );
    assert_ne!(
        declined.conn, subscribe.conn,
        "calls use their own connection"
    );

    // devcluster agrees: one framework, ours, on this stream, with our capabilities.
    let fws = frameworks(&cluster);
    assert_eq!(fws.len(), 1);
    assert_eq!(fws[0]["id"], framework_id.as_str());
    assert_eq!(fws[0]["stream_id"], stream_id.as_str());
    assert_eq!(fws[0]["connected"], true);
    assert_eq!(
        fws[0]["capabilities"],
        serde_json::json!([
            "MULTI_ROLE",
            "RESERVATION_REFINEMENT",
            "PARTITION_AWARE",
            "TASK_KILLING_STATE"
        ])
    );

    client.shutdown().await;
    assert_eq!(*client.state().borrow(), ConnectionState::Stopped);
    events.until_closed().await;
    assert!(matches!(
        client.call(common::revive()).await,
        Err(CallError::NotSubscribed)
    ));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_master_calls_are_refused_and_attempts_continue() {
    // Port 1 on loopback: connection refused.
    let (client, rx) = MesosClient::start(common::client_config(
        vec!["http://127.0.0.1:1".into()],
        None,
    ));
    let mut events = Events::new(rx);
    let error = common::wait_state(&client, "Subscribing, attempt 3", |s| match s {
        ConnectionState::Subscribing {
            attempt,
            last_error: Some(e),
        } if *attempt >= 3 => Some(e.clone()),
        _ => None,
    })
    .await;
    assert!(error.contains("http://127.0.0.1:1"), "{error}");
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert!(matches!(
        client.call(revive()).await,
        Err(CallError::NotSubscribed)
    ));
    // Nothing reached the run loop: failed attempts are not events.
    assert_eq!(
        events.within(std::time::Duration::from_millis(300)).await,
        Some(None)
    );
    client.shutdown().await;
    assert_eq!(events.until_closed().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_after_a_master_restart_and_a_dropped_stream() {
    let cluster = common::cluster(1, |_| {}).await;
    let proxy = Proxy::start(cluster.master_addr()).await;
    let (client, rx) = MesosClient::start(common::client_config(vec![proxy.url()], None));
    let mut events = Events::new(rx);
    let (framework_id, _) = events.subscribed().await;

    for (name, fault) in [
        ("master restart", Fault::RestartMaster),
        (
            "dropped stream",
            Fault::DropStream {
                framework_id: framework_id.clone(),
            },
        ),
    ] {
        let before = stream_id(&client).expect("subscribed");
        let started = Instant::now();
        cluster.inject(fault).expect("fault injected");
        let reason = events.disconnected().await;
        let (again, _) = events.subscribed().await;
        eprintln!(
            "{name}: back in {:?} (disconnected: {reason})",
            started.elapsed()
        );
        assert_eq!(again, framework_id, "{name}: the same framework id");
        let after = stream_id(&client).expect("subscribed again");
        assert_ne!(after, before, "{name}: a new stream id");

        // devcluster: still one framework, the same id, on the new stream.
        let fws = eventually("devcluster shows the new stream", || {
            let fws = frameworks(&cluster);
            (fws.len() == 1 && fws[0]["stream_id"] == after.as_str()).then_some(fws)
        })
        .await;
        assert_eq!(fws[0]["id"], framework_id.as_str());

        // Later calls use the new stream id (the master answers 400 to the old one).
        let offers = events.offers().await;
        client
            .call(decline(&offers))
            .await
            .unwrap_or_else(|e| panic!("{name}: DECLINE after reconnecting: {e}"));
        let last = proxy
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.call_type() == Some(fastdata_proto::v1::scheduler::call::Type::Decline))
            .unwrap();
        assert_eq!(last.header("mesos-stream-id"), Some(after.as_str()));
        assert!(
            last.call().unwrap().validate().is_ok(),
            "{name}: the DECLINE is valid"
        );
    }
    // Every SUBSCRIBE after the first carried the id in both places.
    for s in &proxy.subscribes()[1..] {
        let call = s.call().unwrap();
        assert_eq!(call.framework_id.as_ref().unwrap().value, framework_id);
        call.validate().expect("valid re-SUBSCRIBE");
    }
    client.shutdown().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_watchdog_drops_a_silent_stream() {
    // devcluster beats every 1 s; the client gives up after 3 silent intervals.
    let cluster = common::cluster(1, |_| {}).await;
    let proxy = Proxy::start(cluster.master_addr()).await;
    let (client, rx) = MesosClient::start(common::client_config(vec![proxy.url()], None));
    let mut events = Events::new(rx);
    let (framework_id, _) = events.subscribed().await;
    let before = stream_id(&client).unwrap();

    // A network partition: the stream stays open but no byte passes.
    assert_eq!(proxy.freeze_streams(), 1);
    let started = Instant::now();
    let reason = events.disconnected().await;
    let detected = started.elapsed();
    let (again, _) = events.subscribed().await;
    eprintln!(
        "silent stream: dropped after {detected:?} (window 3 x 1 s), back after {:?}",
        started.elapsed()
    );
    assert!(reason.contains("heartbeat watchdog"), "{reason}");
    assert_eq!(again, framework_id);
    let after = stream_id(&client).unwrap();
    assert_ne!(after, before);
    // The master failed the old (frozen) stream over to the new one.
    eventually("devcluster shows the new stream", || {
        let fws = frameworks(&cluster);
        (fws.len() == 1
            && fws[0]["stream_id"] == after.as_str()
            && fws[0]["id"] == framework_id.as_str())
        .then_some(())
    })
    .await;
    client
        .call(revive())
        .await
        .expect("REVIVE on the new stream");
    let last = proxy.requests().pop().unwrap();
    assert_eq!(last.header("mesos-stream-id"), Some(after.as_str()));
    client.shutdown().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_stream_drops_it_and_resubscribes() {
    let cluster = common::cluster(1, |_| {}).await;
    let proxy = Proxy::start(cluster.master_addr()).await;
    let (client, rx) = MesosClient::start(common::client_config(vec![proxy.url()], None));
    let mut events = Events::new(rx);
    let (framework_id, _) = events.subscribed().await;

    let garbage: [(&[u8], &str); 4] = [
        // Not a RecordIO length.
        (b"xyz\n", "not valid RecordIO"),
        // A length far above the cap.
        (b"99999999999999\n", "not valid RecordIO"),
        // A record that is not a protobuf Event.
        (b"3\n\x0f\xff\xff", "could not be decoded"),
        // A valid OFFERS event without offers.
        (b"2\n\x08\x02", "without its payload"),
    ];
    for (bytes, expected) in garbage {
        let before = stream_id(&client).unwrap();
        assert_eq!(proxy.inject_chunk(bytes), 1, "one open stream");
        let started = Instant::now();
        let reason = events.disconnected().await;
        let (again, _) = events.subscribed().await;
        eprintln!(
            "garbage {bytes:?}: back in {:?} ({reason})",
            started.elapsed()
        );
        assert!(reason.contains(expected), "{bytes:?}: {reason}");
        assert_eq!(again, framework_id);
        assert_ne!(stream_id(&client).unwrap(), before);
    }
    let offers = events.offers().await;
    client.call(decline(&offers)).await.expect("still usable");
    client.shutdown().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_on_a_call_means_resubscribe() {
    let cluster = common::cluster(1, |_| {}).await;
    let proxy = Proxy::start(cluster.master_addr()).await;
    let mut config = common::client_config(vec![proxy.url()], None);
    // Long enough that the watchdog cannot be what notices.
    config.heartbeat_misses = 30;
    let (client, rx) = MesosClient::start(config);
    let mut events = Events::new(rx);
    let (framework_id, _) = events.subscribed().await;
    let before = stream_id(&client).unwrap();

    // The master loses the stream, but the client does not see it end (the proxy holds it):
    // only the answer to its next call can tell it.
    assert_eq!(proxy.freeze_streams(), 1);
    cluster
        .inject(Fault::DropStream {
            framework_id: framework_id.clone(),
        })
        .unwrap();
    let started = Instant::now();
    match client.call(revive()).await {
        Err(CallError::Rejected { status: 403, body }) => {
            assert!(body.contains("not subscribed"), "{body}")
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    let reason = events.disconnected().await;
    assert!(reason.contains("answered 403"), "{reason}");
    let (again, _) = events.subscribed().await;
    eprintln!("403 on a call: back in {:?}", started.elapsed());
    assert_eq!(again, framework_id);
    assert_ne!(stream_id(&client).unwrap(), before);
    client.call(revive()).await.expect("calls work again");
    client.shutdown().await;
    cluster.stop().await;
}
