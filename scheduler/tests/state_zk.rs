//! The state store against a real ZooKeeper (tier 3): start it with `dev/services up
//! zookeeper` (or `dev/services up`), then `eval "$(dev/services env)"`.
//!
//! Nothing is mocked. Every test uses its own service name (so its own
//! `/dcos-service-<name>` root) and deletes it at the end; a [`Cleanup`] deletes it too if
//! the test fails half-way. A raw ZooKeeper client plays the operator and the other
//! processes: it reads what the store wrote, corrupts nodes, and deletes the lock node.
//! Timings are printed, never asserted; waits are generous, for a loaded 2-core machine.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use fastdata_scheduler::policy::decide::{Action, Decision, ScalingInput};
use fastdata_scheduler::policy::{DecisionLog, ScalingConfig, ScalingMode};
use fastdata_scheduler::state::{
    LockLost, MAX_VALUE_BYTES, StateError, StateStore, StateStoreOptions,
};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream as AsyncTcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use zookeeper_client::{Acls, Client, CreateMode};

/// Generous bound on every wait for something that should happen.
const WAIT: Duration = Duration::from_secs(60);

/// ZooKeeper's connect string from `FASTDATA_ZK_CONNECT` (default `127.0.0.1:2181`); panics
/// with instructions when nothing listens there.
fn require_zk() -> String {
    let connect =
        std::env::var("FASTDATA_ZK_CONNECT").unwrap_or_else(|_| "127.0.0.1:2181".to_owned());
    let first = connect
        .split(',')
        .next()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let reachable = first.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
    });
    assert!(
        reachable,
        "ZooKeeper is not reachable at {first} (FASTDATA_ZK_CONNECT). Start it with \
         `dev/services up zookeeper` (then `eval \"$(dev/services env)\"`), or point \
         FASTDATA_ZK_CONNECT at a running ZooKeeper."
    );
    connect
}

/// A service name unique to this run and test.
fn unique_service(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "state-test-{test}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn raw_client(connect: &str) -> Result<Client> {
    Client::connect(connect)
        .await
        .with_context(|| format!("connecting a raw ZooKeeper client to {connect}"))
}

/// Deletes `root` and everything under it with a raw client; a missing root is fine.
async fn raw_delete_tree(client: &Client, root: &str) -> Result<()> {
    let mut order = Vec::new();
    let mut level = vec![root.to_owned()];
    while !level.is_empty() {
        let mut next = Vec::new();
        for path in &level {
            match client.list_children(path).await {
                Ok(children) => next.extend(children.iter().map(|c| format!("{path}/{c}"))),
                Err(zookeeper_client::Error::NoNode) => {}
                Err(e) => bail!("listing {path}: {e}"),
            }
        }
        order.extend(level);
        level = next;
    }
    for path in order.iter().rev() {
        match client.delete(path, None).await {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
            Err(e) => bail!("deleting {path}: {e}"),
        }
    }
    Ok(())
}

/// Deletes a test's root when dropped (also when the test fails), on a thread of its own
/// because `Drop` cannot await.
struct Cleanup {
    connect: String,
    root: String,
}

impl Cleanup {
    fn new(connect: &str, service: &str) -> Cleanup {
        Cleanup {
            connect: connect.to_owned(),
            root: format!("/dcos-service-{service}"),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (connect, root) = (self.connect.clone(), self.root.clone());
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let client = raw_client(&connect).await?;
                raw_delete_tree(&client, &root).await
            })
        })
        .join();
        if !matches!(cleaned, Ok(Ok(()))) {
            eprintln!("could not clean up {}: {cleaned:?}", self.root);
        }
    }
}

/// Waits at most [`WAIT`] for `future`.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(WAIT, future)
        .await
        .map_err(|_| anyhow::anyhow!("{what}: nothing after {WAIT:?}"))
}

/// A slot record as the framework loop might keep one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SlotRecord {
    task_id: String,
    agent_id: String,
    volume: String,
    reservation_labels: BTreeMap<String, String>,
    incarnation: u32,
}

fn slot_record(slot: u32, incarnation: u32) -> SlotRecord {
    SlotRecord {
        task_id: format!("fastdata-consumer-{slot}__{incarnation}-6f1c2e0a"),
        agent_id: format!("b1c4e2f0-7a5d-4c39-9a51-0d3f8e6b2c11-S{}", slot % 97),
        volume: format!("fastdata-consumer-{slot}"),
        reservation_labels: [
            ("framework_id".to_owned(), "fw-0001".to_owned()),
            ("slot".to_owned(), slot.to_string()),
        ]
        .into(),
        incarnation,
    }
}

fn decision_log() -> DecisionLog {
    let mut log = DecisionLog::new(10);
    for (i, target) in [(1u32, 3u32), (3, 3), (3, 2)] {
        log.record(
            1_700_000_000_000 + u64::from(i),
            ScalingMode::Proportional,
            ScalingInput {
                consumers: i,
                backlog: 1_000 * u64::from(i),
                ..ScalingInput::default()
            },
            Decision {
                target,
                current: i,
                action: match target.cmp(&i) {
                    std::cmp::Ordering::Greater => Action::ScaleUp,
                    std::cmp::Ordering::Less => Action::ScaleDown,
                    std::cmp::Ordering::Equal => Action::Hold,
                },
                guard: None,
                reason: format!("{i} -> {target}"),
            },
        );
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_round_trips_and_absent_values_read_as_defaults() -> Result<()> {
    let zk = require_zk();
    let service = unique_service("roundtrip");
    let _cleanup = Cleanup::new(&zk, &service);
    let store = StateStore::connect(&zk, &service).await?;
    assert_eq!(store.root(), format!("/dcos-service-{service}"));

    // A fresh root: every node exists, none holds a value.
    assert_eq!(store.framework_id().await?, None);
    assert_eq!(store.scaling().await?, None);
    assert_eq!(store.decisions().await?, None);
    assert!(store.slots::<SlotRecord>().await?.is_empty());
    let raw = raw_client(&zk).await?;
    let (schema, _) = raw.get_data(&store.paths().schema_version()).await?;
    assert_eq!(schema, b"1");
    let mut children = raw.list_children(store.root()).await?;
    children.sort();
    assert_eq!(
        children,
        [
            "FrameworkID",
            "SchemaVersion",
            "decisions",
            "lock",
            "scaling",
            "slots"
        ]
    );

    let scaling = ScalingConfig {
        mode: ScalingMode::Step,
        scale_up_lag: 900,
        scale_down_lag: 50,
        max_consumers: 12,
        cooldown: Duration::from_millis(2_500),
        ..ScalingConfig::default()
    };
    let log = decision_log();
    store
        .set_framework_id("7c4d1a2e-0b1f-4e8e-9a3c-5d2f1e0c9b8a-0001")
        .await?;
    store.set_scaling(&scaling).await?;
    store.set_decisions(&log).await?;
    store.put_slot("0", &slot_record(0, 1)).await?;
    store.put_slot("1", &slot_record(1, 1)).await?;

    // What another session (a restarted scheduler) finds.
    let restarted = StateStore::connect(&zk, &service).await?;
    assert_eq!(
        restarted.framework_id().await?.as_deref(),
        Some("7c4d1a2e-0b1f-4e8e-9a3c-5d2f1e0c9b8a-0001")
    );
    assert_eq!(restarted.scaling().await?, Some(scaling.clone()));
    assert_eq!(restarted.decisions().await?, Some(log.clone()));
    let slots: BTreeMap<String, SlotRecord> = restarted.slots().await?;
    assert_eq!(
        slots,
        BTreeMap::from([
            ("0".to_owned(), slot_record(0, 1)),
            ("1".to_owned(), slot_record(1, 1))
        ])
    );
    // The framework id is plain text, as the DC/OS SDK stores it.
    let (id, _) = raw.get_data(&store.paths().framework_id()).await?;
    assert_eq!(id, b"7c4d1a2e-0b1f-4e8e-9a3c-5d2f1e0c9b8a-0001");

    // Overwrite, delete, delete again (already gone is fine).
    restarted.put_slot("1", &slot_record(1, 2)).await?;
    restarted.delete_slot("0").await?;
    restarted.delete_slot("0").await?;
    restarted.delete_slot("never-existed").await?;
    let slots: BTreeMap<String, SlotRecord> = store.slots().await?;
    assert_eq!(slots, BTreeMap::from([("1".to_owned(), slot_record(1, 2))]));

    // Refused before anything is written.
    let err = store
        .put_slot("a/b", &slot_record(2, 1))
        .await
        .expect_err("a slot name with '/'");
    assert!(matches!(err, StateError::InvalidSlotName { .. }), "{err:?}");
    let invalid = ScalingConfig {
        scale_down_lag: 1_000,
        ..scaling.clone()
    };
    let err = store
        .set_scaling(&invalid)
        .await
        .expect_err("an invalid configuration");
    assert!(
        matches!(err, StateError::InvalidValue { .. }) && err.to_string().contains("invalid"),
        "{err}"
    );
    let err = store.set_framework_id(" ").await.expect_err("an empty id");
    assert!(matches!(err, StateError::InvalidValue { .. }), "{err}");
    assert_eq!(store.scaling().await?, Some(scaling));

    store.delete_all().await?;
    ensure!(
        raw.check_stat(store.root()).await?.is_none(),
        "{} still exists",
        store.root()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_write_is_refused_with_conflict() -> Result<()> {
    let zk = require_zk();
    let service = unique_service("conflict");
    let _cleanup = Cleanup::new(&zk, &service);
    let a = StateStore::connect(&zk, &service).await?;
    let b = StateStore::connect(&zk, &service).await?;

    // Both saw the fixed nodes at connect; the first write wins, the second is stale.
    a.set_framework_id("fw-a").await?;
    let err = b
        .set_framework_id("fw-b")
        .await
        .expect_err("b's view is stale");
    assert!(matches!(err, StateError::Conflict { .. }), "{err:?}");
    assert_eq!(b.framework_id().await?.as_deref(), Some("fw-a"));

    let config = |up: u64| ScalingConfig {
        scale_up_lag: up,
        ..ScalingConfig::default()
    };
    assert_eq!(a.scaling().await?, None);
    assert_eq!(b.scaling().await?, None);
    a.set_scaling(&config(1_000)).await?;
    let err = b
        .set_scaling(&config(2_000))
        .await
        .expect_err("b read before a wrote");
    let message = err.to_string();
    assert!(
        matches!(&err, StateError::Conflict { path } if *path == b.paths().scaling()),
        "{err:?}"
    );
    assert!(
        message.contains("another writer") && message.contains("only one scheduler may be active"),
        "{message}"
    );
    assert!(err.stops_the_scheduler());
    // Nothing of b's reached ZooKeeper; after reading, b may write, and now a is stale.
    assert_eq!(b.scaling().await?, Some(config(1_000)));
    b.set_scaling(&config(2_000)).await?;
    let err = a
        .set_scaling(&config(3_000))
        .await
        .expect_err("a is stale now");
    assert!(matches!(err, StateError::Conflict { .. }), "{err:?}");
    assert_eq!(a.scaling().await?, Some(config(2_000)));

    // Slots: a create over a slot this store never saw is refused too.
    a.put_slot("3", &slot_record(3, 1)).await?;
    let err = b
        .put_slot("3", &slot_record(3, 9))
        .await
        .expect_err("b never saw slot 3");
    assert!(matches!(err, StateError::Conflict { .. }), "{err:?}");
    let seen: BTreeMap<String, SlotRecord> = b.slots().await?;
    assert_eq!(seen.get("3"), Some(&slot_record(3, 1)));
    b.put_slot("3", &slot_record(3, 2)).await?;
    let err = a.delete_slot("3").await.expect_err("a's version is stale");
    assert!(matches!(err, StateError::Conflict { .. }), "{err:?}");
    let _: BTreeMap<String, SlotRecord> = a.slots().await?;
    a.delete_slot("3").await?;
    let err = b
        .put_slot("3", &slot_record(3, 3))
        .await
        .expect_err("b updates a slot a deleted");
    assert!(matches!(err, StateError::Conflict { .. }), "{err:?}");
    // b lists the slots again: the slot is gone, so b may create it afresh.
    let seen: BTreeMap<String, SlotRecord> = b.slots().await?;
    assert!(seen.is_empty(), "{seen:?}");
    b.put_slot("3", &slot_record(3, 4)).await?;

    // One store, many concurrent writes to different nodes: none conflicts.
    let writes = (10..60u32).map(|slot| {
        let a = a.clone();
        async move { a.put_slot(&slot.to_string(), &slot_record(slot, 1)).await }
    });
    for written in futures::future::join_all(writes).await {
        written?;
    }
    let all: BTreeMap<String, SlotRecord> = a.slots().await?;
    assert_eq!(all.len(), 51);
    assert_eq!(all.get("3"), Some(&slot_record(3, 4)));

    a.delete_all().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_scheduler_waits_for_the_lock_and_takes_it_on_release() -> Result<()> {
    let zk = require_zk();
    let service = unique_service("lock-release");
    let _cleanup = Cleanup::new(&zk, &service);
    let a = StateStore::connect(&zk, &service).await?;
    let b = StateStore::connect(&zk, &service).await?;
    let raw = raw_client(&zk).await?;

    let mut a_waited = Vec::new();
    let guard_a = a
        .acquire_lock("host-a:101", |holder| a_waited.push(holder.to_owned()))
        .await?;
    assert!(a_waited.is_empty(), "nobody held the lock: {a_waited:?}");
    let owner_path = a.paths().lock_owner();
    let (data, stat) = raw.get_data(&owner_path).await?;
    assert_eq!(data, b"host-a:101");
    assert_eq!(format!("{:#x}", stat.ephemeral_owner), a.session_id());
    assert_eq!(guard_a.owner(), "host-a:101");

    let err = a
        .acquire_lock("host-a:101", |_| {})
        .await
        .expect_err("one guard per store");
    assert!(matches!(err, StateError::LockAlreadyHeld { .. }), "{err:?}");

    let (waits, mut waited) = mpsc::unbounded_channel();
    let waiting = tokio::spawn({
        let b = b.clone();
        async move {
            b.acquire_lock("host-b:202", move |holder| {
                let _ = waits.send(holder.to_owned());
            })
            .await
        }
    });
    let holder = within("b reports the holder", waited.recv()).await?;
    assert_eq!(holder.as_deref(), Some("host-a:101"));
    // Still a's, and b still waiting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "b took a lock a holds");
    let (data, _) = raw.get_data(&owner_path).await?;
    assert_eq!(data, b"host-a:101");
    assert!(guard_a.is_lost().is_none());

    let released = Instant::now();
    guard_a.release().await;
    let guard_b = within("b takes the lock", waiting).await???;
    println!(
        "lock: taken over {} ms after the holder released it",
        released.elapsed().as_millis()
    );
    let (data, stat) = raw.get_data(&owner_path).await?;
    assert_eq!(data, b"host-b:202");
    assert_eq!(format!("{:#x}", stat.ephemeral_owner), b.session_id());
    // One holder, one report.
    assert!(waited.try_recv().is_err(), "on_wait called again");
    assert!(guard_b.is_lost().is_none());

    // a waits in turn, and is told who holds it now.
    let (waits, mut waited) = mpsc::unbounded_channel();
    let waiting = tokio::spawn({
        let a = a.clone();
        async move {
            a.acquire_lock("host-a:101", move |holder| {
                let _ = waits.send(holder.to_owned());
            })
            .await
        }
    });
    let holder = within("a reports the holder", waited.recv()).await?;
    assert_eq!(holder.as_deref(), Some("host-b:202"));
    // Dropping a guard releases the lock too.
    drop(guard_b);
    let guard_a = within("a takes the lock back", waiting).await???;
    let (data, _) = raw.get_data(&owner_path).await?;
    assert_eq!(data, b"host-a:101");

    a.delete_all().await?;
    let lost = within("lost after delete_all", guard_a.lost()).await?;
    assert_eq!(lost, LockLost::NodeDeleted);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_passes_on_when_the_holders_session_closes() -> Result<()> {
    let zk = require_zk();
    let service = unique_service("lock-session");
    let _cleanup = Cleanup::new(&zk, &service);
    let a = StateStore::connect(&zk, &service).await?;
    let b = StateStore::connect(&zk, &service).await?;
    let guard_a = a.acquire_lock("host-a:1", |_| {}).await?;

    let (waits, mut waited) = mpsc::unbounded_channel();
    let waiting = tokio::spawn({
        let b = b.clone();
        async move {
            b.acquire_lock("host-b:2", move |holder| {
                let _ = waits.send(holder.to_owned());
            })
            .await
        }
    });
    let holder = within("b reports the holder", waited.recv()).await?;
    assert_eq!(holder.as_deref(), Some("host-a:1"));

    // The holder's process goes away: its client is dropped, its session closed. The guard
    // does not keep the session alive.
    let closed = Instant::now();
    drop(a);
    let lost = within("a's guard reports the loss", guard_a.lost()).await?;
    assert_eq!(lost, LockLost::SessionClosed);
    let guard_b = within("b takes the lock", waiting).await???;
    println!(
        "lock: taken over {} ms after the holder's session was closed",
        closed.elapsed().as_millis()
    );
    assert!(guard_b.is_lost().is_none());
    drop(guard_a);

    b.delete_all().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_fires_when_the_lock_node_is_deleted_and_a_new_lock_can_be_taken() -> Result<()> {
    let zk = require_zk();
    let service = unique_service("lock-deleted");
    let _cleanup = Cleanup::new(&zk, &service);
    let store = StateStore::connect(&zk, &service).await?;
    let guard = store.acquire_lock("host-a:1", |_| {}).await?;
    let raw = raw_client(&zk).await?;

    // An operator deletes the node out from under the scheduler.
    raw.delete(&store.paths().lock_owner(), None).await?;
    let lost = within("lost", guard.lost()).await?;
    assert_eq!(lost, LockLost::NodeDeleted);
    assert_eq!(guard.is_lost(), Some(LockLost::NodeDeleted));
    // Lost stays lost: a second call answers at once.
    assert_eq!(
        within("lost again", guard.lost()).await?,
        LockLost::NodeDeleted
    );

    // Someone else takes it: a guard taken afterwards by this store waits, as it should.
    let other = StateStore::connect(&zk, &service).await?;
    drop(guard);
    let taken = other.acquire_lock("host-b:2", |_| {}).await?;
    let (waits, mut waited) = mpsc::unbounded_channel();
    let waiting = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .acquire_lock("host-a:1", move |holder| {
                    let _ = waits.send(holder.to_owned());
                })
                .await
        }
    });
    let holder = within("the holder reported", waited.recv()).await?;
    assert_eq!(holder.as_deref(), Some("host-b:2"));
    taken.release().await;
    let again = within("taken again", waiting).await???;
    assert!(again.is_lost().is_none());

    store.delete_all().await?;
    Ok(())
}

/// A TCP proxy in front of ZooKeeper that can cut the network: a partition between the
/// scheduler and ZooKeeper, with the real ZooKeeper behind it.
struct Proxy {
    addr: SocketAddr,
    accept: AbortHandle,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let upstream = upstream.to_owned();
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = tokio::spawn({
            let connections = connections.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let upstream = upstream.clone();
                    let forward = tokio::spawn(async move {
                        if let Ok(mut outbound) = AsyncTcpStream::connect(&upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    if let Ok(mut connections) = connections.lock() {
                        connections.push(forward.abort_handle());
                    }
                }
            }
        })
        .abort_handle();
        Ok(Proxy {
            addr,
            accept,
            connections,
        })
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        self.accept.abort();
        if let Ok(connections) = self.connections.lock() {
            for connection in connections.iter() {
                connection.abort();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_from_zookeeper_loses_the_lock_and_fails_operations_clearly() -> Result<()> {
    let zk = require_zk();
    let upstream = zk.split(',').next().unwrap_or_default().to_owned();
    let service = unique_service("partition");
    let _cleanup = Cleanup::new(&zk, &service);
    let proxy = Proxy::start(&upstream).await?;
    let options = StateStoreOptions {
        // The shortest ZooKeeper grants with its default tickTime (2 s).
        session_timeout: Duration::from_secs(4),
        ..StateStoreOptions::default()
    };
    let a = StateStore::connect_with(&proxy.addr.to_string(), &service, &options).await?;
    let guard_a = a.acquire_lock("host-a:1", |_| {}).await?;
    let b = StateStore::connect(&zk, &service).await?;
    let (waits, mut waited) = mpsc::unbounded_channel();
    let waiting = tokio::spawn({
        let b = b.clone();
        async move {
            b.acquire_lock("host-b:2", move |holder| {
                let _ = waits.send(holder.to_owned());
            })
            .await
        }
    });
    let holder = within("b reports the holder", waited.recv()).await?;
    assert_eq!(holder.as_deref(), Some("host-a:1"));

    let cut = Instant::now();
    proxy.cut();
    let lost = within("a notices", guard_a.lost()).await?;
    let lost_after = cut.elapsed();
    assert!(
        matches!(
            lost,
            LockLost::Disconnected { .. } | LockLost::SessionExpired
        ),
        "{lost:?}"
    );
    // Operations fail with an error that says what happened and what to do.
    let err = within("a's read fails", a.framework_id())
        .await?
        .expect_err("no ZooKeeper behind the proxy");
    assert!(
        matches!(
            err,
            StateError::SessionExpired { .. } | StateError::ConnectionLoss { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&proxy.addr.to_string()), "{err}");
    // ZooKeeper expires a's session and deletes its node: b takes over.
    let guard_b = within("b takes the lock", waiting).await???;
    let taken_after = cut.elapsed();
    println!(
        "partition (session timeout {:?}): holder gave up after {} ms ({lost}), standby took the lock after {} ms",
        a.session_timeout(),
        lost_after.as_millis(),
        taken_after.as_millis()
    );
    // Once expired, a's session stays unusable: every operation says so.
    let err = within("a's write fails", a.set_framework_id("fw-late"))
        .await?
        .expect_err("the session is over");
    assert!(
        matches!(err, StateError::SessionExpired { .. }) && err.stops_the_scheduler(),
        "{err:?}"
    );
    assert_eq!(b.framework_id().await?, None, "a's late write was applied");
    assert!(guard_b.is_lost().is_none());
    b.delete_all().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slots_are_written_and_read_back() -> Result<()> {
    let zk = require_zk();
    let service = unique_service("thousand");
    let _cleanup = Cleanup::new(&zk, &service);
    let store = StateStore::connect(&zk, &service).await?;
    let expected: BTreeMap<String, SlotRecord> = (0..1_000u32)
        .map(|slot| (slot.to_string(), slot_record(slot, 1)))
        .collect();
    let bytes: usize = expected
        .values()
        .map(|r| serde_json::to_vec(r).map_or(0, |v| v.len()))
        .sum();

    let started = Instant::now();
    futures::stream::iter(expected.iter())
        .map(|(name, record)| store.put_slot(name, record))
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await?;
    let written = started.elapsed();

    let started = Instant::now();
    let read: BTreeMap<String, SlotRecord> = store.slots().await?;
    let read_same_session = started.elapsed();
    assert_eq!(read, expected);

    let restarted = StateStore::connect(&zk, &service).await?;
    let started = Instant::now();
    let read: BTreeMap<String, SlotRecord> = restarted.slots().await?;
    let read_new_session = started.elapsed();
    assert_eq!(read, expected);

    // Update every slot once more: versioned writes after a read.
    let started = Instant::now();
    futures::stream::iter(0..1_000u32)
        .map(|slot| {
            let restarted = restarted.clone();
            async move {
                restarted
                    .put_slot(&slot.to_string(), &slot_record(slot, 2))
                    .await
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await?;
    let updated = started.elapsed();
    let read: BTreeMap<String, SlotRecord> = store.slots().await?;
    assert!(read.values().all(|r| r.incarnation == 2));
    assert_eq!(read.len(), 1_000);

    let started = Instant::now();
    store.delete_all().await?;
    let deleted = started.elapsed();
    let raw = raw_client(&zk).await?;
    ensure!(raw.check_stat(store.root()).await?.is_none(), "root left");
    println!(
        "1,000 slots ({bytes} bytes of JSON): written in {} ms (64 in flight), read back in {} ms \
         (same session) / {} ms (new session), updated in {} ms, delete_all in {} ms",
        written.as_millis(),
        read_same_session.as_millis(),
        read_new_session.as_millis(),
        updated.as_millis(),
        deleted.as_millis()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_over_a_million_bytes_are_refused() -> Result<()> {
    let zk = require_zk();
    let service = unique_service("size");
    let _cleanup = Cleanup::new(&zk, &service);
    let store = StateStore::connect(&zk, &service).await?;

    // A JSON string of n characters is n + 2 bytes: exactly the limit fits.
    let fits = "x".repeat(MAX_VALUE_BYTES - 2);
    store.put_slot("big", &fits).await?;
    let slots: BTreeMap<String, String> = store.slots().await?;
    assert_eq!(slots.get("big").map(String::len), Some(MAX_VALUE_BYTES - 2));

    let too_big = "x".repeat(MAX_VALUE_BYTES - 1);
    let err = store
        .put_slot("bigger", &too_big)
        .await
        .expect_err("over the limit");
    let message = err.to_string();
    assert!(
        matches!(
            err,
            StateError::TooLarge {
                size: 1_000_001,
                limit: 1_000_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        message.contains("/slots/bigger") && message.contains("1000000"),
        "{message}"
    );
    // Nothing was written.
    let slots: BTreeMap<String, String> = store.slots().await?;
    assert_eq!(slots.keys().collect::<Vec<_>>(), ["big"]);
    // An update of an existing node is refused the same way, and leaves it as it was.
    let err = store
        .put_slot("big", &too_big)
        .await
        .expect_err("over the limit");
    assert!(matches!(err, StateError::TooLarge { .. }), "{err:?}");
    let slots: BTreeMap<String, String> = store.slots().await?;
    assert_eq!(slots.get("big"), Some(&fits));

    store.delete_all().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_all_leaves_nothing() -> Result<()> {
    let zk = require_zk();
    let service = unique_service("delete-all");
    let _cleanup = Cleanup::new(&zk, &service);
    let store = StateStore::connect(&zk, &service).await?;
    store.set_framework_id("fw-1").await?;
    store.set_scaling(&ScalingConfig::default()).await?;
    store.set_decisions(&decision_log()).await?;
    for slot in 0..20u32 {
        store
            .put_slot(&slot.to_string(), &slot_record(slot, 1))
            .await?;
    }
    let guard = store.acquire_lock("host-a:1", |_| {}).await?;
    // Something deeper that the store did not create (an operator's note, a future
    // version's node) goes too.
    let raw = raw_client(&zk).await?;
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    raw.create(&format!("{}/extra", store.root()), b"", &options)
        .await?;
    raw.create(&format!("{}/extra/deeper", store.root()), b"x", &options)
        .await?;

    store.delete_all().await?;
    ensure!(
        raw.check_stat(store.root()).await?.is_none(),
        "{} still exists after delete_all",
        store.root()
    );
    assert_eq!(within("lost", guard.lost()).await?, LockLost::NodeDeleted);
    // Deleting nothing is fine; writing after uninstall is a clear error.
    store.delete_all().await?;
    let err = store
        .set_framework_id("fw-2")
        .await
        .expect_err("the state is gone");
    assert!(
        matches!(err, StateError::Missing { .. }) && err.stops_the_scheduler(),
        "{err:?}"
    );
    let err = store.framework_id().await.expect_err("the state is gone");
    assert!(err.to_string().contains("deleted"), "{err}");
    ensure!(
        raw.check_stat(store.root()).await?.is_none(),
        "a failed write recreated the root"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_nodes_are_errors_that_name_them() -> Result<()> {
    let zk = require_zk();
    let service = unique_service("unreadable");
    let _cleanup = Cleanup::new(&zk, &service);
    let store = StateStore::connect(&zk, &service).await?;
    let raw = raw_client(&zk).await?;
    let paths = store.paths().clone();

    raw.set_data(&paths.scaling(), br#"{"scale_up_lag":"lots"}"#, None)
        .await?;
    let err = store.scaling().await.expect_err("not a ScalingConfig");
    assert!(
        matches!(&err, StateError::Unreadable { path, .. } if *path == paths.scaling()),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer fastdata"), "{err}");

    raw.set_data(
        &paths.scaling(),
        br#"{"scale_up_lag":10,"scale_down_lag":20}"#,
        None,
    )
    .await?;
    let err = store.scaling().await.expect_err("an invalid configuration");
    assert!(
        err.to_string().contains("invalid scaling configuration"),
        "{err}"
    );

    raw.set_data(&paths.decisions(), b"[1,2,3", None).await?;
    let err = store.decisions().await.expect_err("not a DecisionLog");
    assert!(err.to_string().contains(&paths.decisions()), "{err}");

    raw.set_data(&paths.framework_id(), &[0xff, 0xfe], None)
        .await?;
    let err = store.framework_id().await.expect_err("not UTF-8");
    assert!(matches!(err, StateError::Unreadable { .. }), "{err:?}");

    store.put_slot("2", &slot_record(2, 1)).await?;
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    raw.create(
        &paths.slot("7")?,
        br#"{"format":"from the future"}"#,
        &options,
    )
    .await?;
    raw.create(&paths.slot("8")?, b"", &options).await?;
    let err = store
        .slots::<SlotRecord>()
        .await
        .expect_err("slots 7 and 8 do not parse");
    assert!(
        matches!(&err, StateError::UnreadableSlot { slot, .. } if slot == "7"),
        "{err:?}"
    );
    assert!(err.to_string().contains("slot \"7\""), "{err}");

    // After fixing the bad nodes, reading works again (and nothing panicked).
    store.delete_slot("7").await?;
    store.delete_slot("8").await?;
    let slots: BTreeMap<String, SlotRecord> = store.slots().await?;
    assert_eq!(slots.keys().collect::<Vec<_>>(), ["2"]);

    store.delete_all().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_from_a_newer_schema_is_refused() -> Result<()> {
    let zk = require_zk();
    let service = unique_service("schema");
    let _cleanup = Cleanup::new(&zk, &service);
    let raw = raw_client(&zk).await?;
    let root = format!("/dcos-service-{service}");
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    raw.create(&root, b"", &options).await?;
    raw.create(&format!("{root}/SchemaVersion"), b"2", &options)
        .await?;
    let err = StateStore::connect(&zk, &service)
        .await
        .expect_err("schema 2 is unknown");
    assert!(
        matches!(&err, StateError::UnsupportedSchema { found, .. } if found == "2"),
        "{err:?}"
    );
    assert!(err.to_string().contains("understands only \"1\""), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_zookeeper_is_a_clear_error_within_a_bounded_time() -> Result<()> {
    // A port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.port()
    };
    let connect = format!("127.0.0.1:{port}");
    let options = StateStoreOptions {
        connect_timeout: Duration::from_secs(3),
        ..StateStoreOptions::default()
    };
    let started = Instant::now();
    let err = within(
        "connect gives up",
        StateStore::connect_with(&connect, "fastdata", &options),
    )
    .await?
    .expect_err("nothing listens there");
    println!(
        "closed port: connect gave up after {} ms: {err}",
        started.elapsed().as_millis()
    );
    assert!(matches!(err, StateError::Unreachable { .. }), "{err:?}");
    let message = err.to_string();
    for needle in [connect.as_str(), "--zk", "FASTDATA_ZK_CONNECT"] {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }

    let err = StateStore::connect_with("127.0.0.1:notaport", "fastdata", &options)
        .await
        .expect_err("not a port");
    assert!(
        matches!(err, StateError::BadConnectString { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("FASTDATA_ZK_CONNECT"), "{err}");
    Ok(())
}
