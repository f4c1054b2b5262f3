//! [`StateStore`]: the thin I/O shell over ZooKeeper. It builds paths with
//! [`super::paths`], encodes with [`super::codec`], keeps versions with
//! [`super::versions`], and only sends requests and maps their answers. The lock's calls
//! live in [`super::lock`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error as ZkError, Stat};

use super::StateError;
use super::codec::{check_size, decode_json, decode_text, encode_json};
use super::lock::LockPhase;
use super::paths::{SCHEMA_VERSION_VALUE, StatePaths};
use super::versions::{NodeVersion, VersionMap, first_attempt_applied};
use crate::policy::{DecisionLog, ScalingConfig};

/// Persistent nodes with the open ACL (`world:anyone`): the scheduler does not
/// authenticate to ZooKeeper.
const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());

/// At most this many requests in flight at once from one call (reads of `slots/`,
/// `delete_all`); the client pipelines them on its one connection.
const FAN_OUT: usize = 256;

/// A write whose answer is lost with the connection is sent this many times in all.
const WRITE_ATTEMPTS: usize = 3;

/// `delete_all` lists and deletes again this many times when nodes appear while it runs.
const DELETE_ALL_ATTEMPTS: usize = 5;

/// Connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateStoreOptions {
    /// Session timeout asked of ZooKeeper (default 10 s). The server clamps it to between
    /// 2 and 20 times its `tickTime` (4 s to 40 s with the default tick). ZooKeeper expires
    /// the session, deleting the lock node, this long after the scheduler stops talking to
    /// it, so a standby takes over after about this time.
    pub session_timeout: Duration,
    /// How long [`StateStore::connect`] waits for a first session (default 15 s).
    pub connect_timeout: Duration,
}

impl Default for StateStoreOptions {
    fn default() -> Self {
        StateStoreOptions {
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// The framework's state in ZooKeeper; see the [module docs](super). Cheap to clone: the
/// clones share one ZooKeeper session, which ends when the last clone is dropped.
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

/// What the clones of a store share.
pub(super) struct Inner {
    pub(super) client: Client,
    pub(super) connect: String,
    pub(super) paths: StatePaths,
    versions: Mutex<VersionMap>,
    /// Whether this store holds the lock; one guard per store at a time.
    pub(super) lock_phase: watch::Sender<LockPhase>,
}

impl Inner {
    /// The error for a ZooKeeper failure of `op` on `path`.
    pub(super) fn zk_error(&self, op: &'static str, path: &str, error: ZkError) -> StateError {
        zk_error(&self.connect, op, path, error)
    }

    /// The error for a node of the layout that is gone.
    pub(super) fn missing(&self, path: &str) -> StateError {
        StateError::Missing {
            path: path.to_owned(),
            root: self.paths.root().to_owned(),
        }
    }

    fn versions(&self) -> MutexGuard<'_, VersionMap> {
        // The map holds plain values and no method of it can panic half-way through an
        // update, so a poisoned lock still guards a consistent map.
        self.versions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn observe(&self, path: &str, stat: &Stat) {
        self.versions().observe(path, NodeVersion::from(stat));
    }
}

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore")
            .field("root", &self.inner.paths.root())
            .field("connect", &self.inner.connect)
            .field("session", &self.inner.client.session_id())
            .finish()
    }
}

impl StateStore {
    /// Connects with the default options (10 s session timeout), and creates the root and
    /// its children where missing; see [`StateStore::connect_with`].
    pub async fn connect(connect: &str, service_name: &str) -> Result<StateStore, StateError> {
        StateStore::connect_with(connect, service_name, &StateStoreOptions::default()).await
    }

    /// Connects to the ZooKeeper ensemble `connect` (`host:port[,host:port...][/chroot]`),
    /// and creates `/dcos-service-<escaped service_name>` and its children where missing.
    /// Fails with [`StateError::Unreachable`] (naming the connect string and the flag to fix
    /// it) when no session is established within `options.connect_timeout`, and with
    /// [`StateError::UnsupportedSchema`] when the state was written with another schema.
    pub async fn connect_with(
        connect: &str,
        service_name: &str,
        options: &StateStoreOptions,
    ) -> Result<StateStore, StateError> {
        let paths = StatePaths::for_service(service_name)?;
        let started = Instant::now();
        // The client retries every host with backoff until its session timeout; the outer
        // timeout bounds the wait whatever the client does.
        let connecting = Client::connector()
            .with_session_timeout(options.session_timeout)
            .connect(connect);
        let client = match tokio::time::timeout(options.connect_timeout, connecting).await {
            Ok(Ok(client)) => client,
            Ok(Err(ZkError::BadArguments(reason))) => {
                return Err(StateError::BadConnectString {
                    connect: connect.to_owned(),
                    reason: (*reason).to_owned(),
                });
            }
            Ok(Err(error)) => {
                return Err(StateError::Unreachable {
                    connect: connect.to_owned(),
                    waited: started.elapsed(),
                    reason: match error {
                        ZkError::Timeout => "no server answered".to_owned(),
                        ZkError::NoHosts => "no host could be reached".to_owned(),
                        other => other.to_string(),
                    },
                });
            }
            Err(_elapsed) => {
                return Err(StateError::Unreachable {
                    connect: connect.to_owned(),
                    waited: started.elapsed(),
                    reason: "no server answered".to_owned(),
                });
            }
        };
        let (lock_phase, _) = watch::channel(LockPhase::Free);
        let store = StateStore {
            inner: Arc::new(Inner {
                client,
                connect: connect.to_owned(),
                paths,
                versions: Mutex::new(VersionMap::default()),
                lock_phase,
            }),
        };
        store.ensure_layout().await?;
        info!(
            zk = %connect,
            root = %store.root(),
            session = %store.inner.client.session_id(),
            session_timeout_ms = store.session_timeout().as_millis() as u64,
            "connected to ZooKeeper"
        );
        Ok(store)
    }

    pub(super) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// `/dcos-service-<escaped name>`.
    pub fn root(&self) -> &str {
        self.inner.paths.root()
    }

    /// Every path of the layout.
    pub fn paths(&self) -> &StatePaths {
        &self.inner.paths
    }

    /// The connect string this store uses.
    pub fn connect_string(&self) -> &str {
        &self.inner.connect
    }

    /// The ZooKeeper session id, as ZooKeeper's own logs print it (`0x…`).
    pub fn session_id(&self) -> String {
        self.inner.client.session_id().to_string()
    }

    /// The session timeout ZooKeeper granted.
    pub fn session_timeout(&self) -> Duration {
        self.inner.client.session_timeout()
    }

    /// Creates the root and its children where missing, records the versions of the fixed
    /// nodes, and checks the schema version.
    async fn ensure_layout(&self) -> Result<(), StateError> {
        let inner = &self.inner;
        let root = inner.paths.root();
        match inner.client.create(root, b"", &PERSISTENT).await {
            Ok(_) | Err(ZkError::NodeExists) => {}
            Err(ZkError::NoNode) => {
                return Err(StateError::BadConnectString {
                    connect: inner.connect.clone(),
                    reason:
                        "its chroot path does not exist in ZooKeeper; create it or leave it out"
                            .to_owned(),
                });
            }
            Err(error) => return Err(inner.zk_error("create", root, error)),
        }
        let layout = inner.paths.layout();
        let creates = layout
            .iter()
            .map(|(path, data)| inner.client.create(path, data, &PERSISTENT));
        for ((path, _), created) in layout.iter().zip(join_all(creates).await) {
            match created {
                Ok((stat, _)) => inner.observe(path, &stat),
                Err(ZkError::NodeExists) => {}
                Err(error) => return Err(inner.zk_error("create", path, error)),
            }
        }
        // The versions of the value nodes that existed already: "read by this store" from
        // here on, so that a write without an explicit read is still versioned.
        let values = [
            inner.paths.framework_id(),
            inner.paths.scaling(),
            inner.paths.decisions(),
        ];
        let stats = join_all(values.iter().map(|path| inner.client.check_stat(path))).await;
        for (path, stat) in values.iter().zip(stats) {
            match stat {
                Ok(Some(stat)) => inner.observe(path, &stat),
                Ok(None) => return Err(inner.missing(path)),
                Err(error) => return Err(inner.zk_error("stat", path, error)),
            }
        }
        self.check_schema().await
    }

    async fn check_schema(&self) -> Result<(), StateError> {
        let path = self.inner.paths.schema_version();
        let data = self.read_fixed(&path).await?;
        match decode_text(&data) {
            Ok(Some(found)) if found == SCHEMA_VERSION_VALUE => Ok(()),
            // Created by something that left it empty: claim it for our schema.
            Ok(None) => self.write(&path, SCHEMA_VERSION_VALUE.as_bytes()).await,
            Ok(Some(found)) => Err(StateError::UnsupportedSchema {
                path,
                found,
                expected: SCHEMA_VERSION_VALUE,
            }),
            Err(_) => Err(StateError::UnsupportedSchema {
                path,
                found: String::from_utf8_lossy(&data).into_owned(),
                expected: SCHEMA_VERSION_VALUE,
            }),
        }
    }

    /// The framework id stored on the first SUBSCRIBED; `None` before that.
    pub async fn framework_id(&self) -> Result<Option<String>, StateError> {
        let path = self.inner.paths.framework_id();
        let data = self.read_fixed(&path).await?;
        decode_text(&data).map_err(|reason| StateError::Unreadable { path, reason })
    }

    /// Stores the framework id (versioned, like every write).
    pub async fn set_framework_id(&self, id: &str) -> Result<(), StateError> {
        let path = self.inner.paths.framework_id();
        if id.trim().is_empty() || id.trim() != id {
            return Err(StateError::InvalidValue {
                path,
                reason: format!("framework id {id:?} is empty or has surrounding spaces"),
            });
        }
        self.write(&path, id.as_bytes()).await
    }

    /// The scaling configuration an operator set; `None` when never set. A stored
    /// configuration that does not validate is [`StateError::Unreadable`].
    pub async fn scaling(&self) -> Result<Option<ScalingConfig>, StateError> {
        let path = self.inner.paths.scaling();
        let data = self.read_fixed(&path).await?;
        let config: Option<ScalingConfig> =
            decode_json(&data).map_err(|reason| StateError::Unreadable {
                path: path.clone(),
                reason,
            })?;
        if let Some(config) = &config {
            config.validate().map_err(|e| StateError::Unreadable {
                path,
                reason: format!("an invalid scaling configuration: {e}"),
            })?;
        }
        Ok(config)
    }

    /// Stores the scaling configuration; refuses one that does not validate.
    pub async fn set_scaling(&self, config: &ScalingConfig) -> Result<(), StateError> {
        let path = self.inner.paths.scaling();
        config.validate().map_err(|e| StateError::InvalidValue {
            path: path.clone(),
            reason: format!("the scaling configuration is invalid: {e}"),
        })?;
        let bytes = encode_json(&path, config)?;
        self.write(&path, &bytes).await
    }

    /// The decision audit log; `None` when never stored.
    pub async fn decisions(&self) -> Result<Option<DecisionLog>, StateError> {
        let path = self.inner.paths.decisions();
        let data = self.read_fixed(&path).await?;
        decode_json(&data).map_err(|reason| StateError::Unreadable { path, reason })
    }

    /// Stores the decision audit log (bounded by its own capacity).
    pub async fn set_decisions(&self, log: &DecisionLog) -> Result<(), StateError> {
        let path = self.inner.paths.decisions();
        let bytes = encode_json(&path, log)?;
        self.write(&path, &bytes).await
    }

    /// Every slot record, by slot name. Records the version of each, so that later writes
    /// are checked against what was read. A record that does not parse as `T` fails the
    /// whole call with [`StateError::UnreadableSlot`] naming the first such slot (in name
    /// order), rather than hide a slot from the scheduler.
    pub async fn slots<T: DeserializeOwned>(&self) -> Result<BTreeMap<String, T>, StateError> {
        let inner = &self.inner;
        let dir = inner.paths.slots();
        let (mut names, dir_stat) = match inner.client.get_children(&dir).await {
            Ok(listing) => listing,
            Err(ZkError::NoNode) => return Err(inner.missing(&dir)),
            Err(error) => return Err(inner.zk_error("list", &dir, error)),
        };
        names.sort();
        let mut records = BTreeMap::new();
        let mut unreadable = None;
        for chunk in names.chunks(FAN_OUT) {
            let paths: Vec<String> = chunk.iter().map(|name| format!("{dir}/{name}")).collect();
            let reads = join_all(paths.iter().map(|path| inner.client.get_data(path))).await;
            for ((name, path), read) in chunk.iter().zip(paths).zip(reads) {
                let data = match read {
                    Ok((data, stat)) => {
                        inner.observe(&path, &stat);
                        data
                    }
                    // Deleted since the listing.
                    Err(ZkError::NoNode) => continue,
                    Err(error) => return Err(inner.zk_error("read", &path, error)),
                };
                match decode_json::<T>(&data) {
                    Ok(Some(record)) => {
                        records.insert(name.clone(), record);
                    }
                    Ok(None) => {
                        unreadable.get_or_insert((name.clone(), path, "empty".to_owned()));
                    }
                    Err(reason) => {
                        unreadable.get_or_insert((name.clone(), path, reason));
                    }
                }
            }
        }
        let present: BTreeSet<String> = names.into_iter().collect();
        inner.versions().listed(&dir, &present, dir_stat.pzxid);
        if let Some((slot, path, reason)) = unreadable {
            return Err(StateError::UnreadableSlot { slot, path, reason });
        }
        Ok(records)
    }

    /// Stores the record of slot `name` (creating it when this store has not seen it).
    pub async fn put_slot<T: Serialize>(&self, name: &str, record: &T) -> Result<(), StateError> {
        let path = self.inner.paths.slot(name)?;
        let bytes = encode_json(&path, record)?;
        self.write(&path, &bytes).await
    }

    /// Deletes the record of slot `name`. Deleting a slot that is already gone succeeds; one
    /// changed (or created) by another writer since this store saw it is a
    /// [`StateError::Conflict`].
    pub async fn delete_slot(&self, name: &str) -> Result<(), StateError> {
        let path = self.inner.paths.slot(name)?;
        self.delete(&path).await
    }

    /// Uninstall: deletes everything under the root, then the root. The lock goes last but
    /// one, so the scheduler keeps it while its state is deleted; a [`super::LockGuard`]
    /// held through this store reports [`super::LockLost::NodeDeleted`] afterwards.
    /// Succeeds when the root is already gone.
    pub async fn delete_all(&self) -> Result<(), StateError> {
        let inner = &self.inner;
        for attempt in 1..=DELETE_ALL_ATTEMPTS {
            let tree = self.tree().await?;
            let mut complete = true;
            'plan: for batch in inner.paths.deletion_plan(&tree) {
                for chunk in batch.chunks(FAN_OUT) {
                    let deletes =
                        join_all(chunk.iter().map(|path| inner.client.delete(path, None)));
                    for (path, deleted) in chunk.iter().zip(deletes.await) {
                        match deleted {
                            Ok(()) | Err(ZkError::NoNode) => {}
                            // A node appeared under one we delete, or the answer was lost:
                            // list again.
                            Err(ZkError::NotEmpty | ZkError::ConnectionLoss) => complete = false,
                            Err(error) => return Err(inner.zk_error("delete", path, error)),
                        }
                    }
                    if !complete {
                        break 'plan;
                    }
                }
            }
            if complete {
                inner.versions().clear();
                info!(root = %self.root(), nodes = tree.len(), "deleted the service's state");
                return Ok(());
            }
            debug!(root = %self.root(), attempt, "state changed while it was deleted; listing again");
        }
        Err(StateError::Conflict {
            path: self.root().to_owned(),
        })
    }

    /// Every node under the root (the root included), mapped to its children's names;
    /// empty when the root is gone.
    async fn tree(&self) -> Result<BTreeMap<String, Vec<String>>, StateError> {
        let inner = &self.inner;
        let mut tree = BTreeMap::new();
        let mut level = vec![self.root().to_owned()];
        while !level.is_empty() {
            let mut next = Vec::new();
            for chunk in level.chunks(FAN_OUT) {
                let lists = join_all(chunk.iter().map(|path| inner.client.list_children(path)));
                for (path, listed) in chunk.iter().zip(lists.await) {
                    match listed {
                        Ok(children) => {
                            next.extend(children.iter().map(|child| format!("{path}/{child}")));
                            tree.insert(path.clone(), children);
                        }
                        Err(ZkError::NoNode) => {}
                        Err(error) => return Err(inner.zk_error("list", path, error)),
                    }
                }
            }
            level = next;
        }
        Ok(tree)
    }

    /// Reads a node of the fixed layout, recording its version.
    async fn read_fixed(&self, path: &str) -> Result<Vec<u8>, StateError> {
        let inner = &self.inner;
        match inner.client.get_data(path).await {
            Ok((data, stat)) => {
                inner.observe(path, &stat);
                Ok(data)
            }
            Err(ZkError::NoNode) => {
                inner.versions().deleted(path);
                Err(inner.missing(path))
            }
            Err(error) => Err(inner.zk_error("read", path, error)),
        }
    }

    /// Writes `data` to `path`, conditional on the version this store last saw: `setData`
    /// with that version, or `create` when it believes the node absent.
    async fn write(&self, path: &str, data: &[u8]) -> Result<(), StateError> {
        check_size(path, data.len())?;
        let inner = &self.inner;
        let expected = inner.versions().expected(path);
        let mut answer_lost = false;
        for _ in 0..WRITE_ATTEMPTS {
            let written = match expected {
                Some(version) => inner.client.set_data(path, data, Some(version)).await,
                None => inner
                    .client
                    .create(path, data, &PERSISTENT)
                    .await
                    .map(|(stat, _)| stat),
            };
            match written {
                Ok(stat) => {
                    inner.observe(path, &stat);
                    return Ok(());
                }
                Err(ZkError::ConnectionLoss) => {
                    // The write may or may not have been applied; sending it again with the
                    // same expected version is safe, and a refusal is checked below.
                    warn!(
                        path,
                        "connection to ZooKeeper lost during a write; sending it again"
                    );
                    answer_lost = true;
                }
                // `create` under a parent that is gone.
                Err(ZkError::NoNode) if expected.is_none() => {
                    return Err(inner.missing(parent(path)));
                }
                Err(ZkError::BadVersion | ZkError::NoNode | ZkError::NodeExists) => {
                    if answer_lost && let Some(stat) = self.applied(path, expected, data).await? {
                        inner.observe(path, &stat);
                        return Ok(());
                    }
                    warn!(
                        path,
                        ?expected,
                        "write refused: the node was changed by another writer"
                    );
                    return Err(StateError::Conflict {
                        path: path.to_owned(),
                    });
                }
                Err(error) => return Err(inner.zk_error("write", path, error)),
            }
        }
        Err(inner.zk_error("write", path, ZkError::ConnectionLoss))
    }

    /// After a lost answer and a refused retry: the node's stat when the first attempt was
    /// in fact applied.
    async fn applied(
        &self,
        path: &str,
        expected: Option<i32>,
        written: &[u8],
    ) -> Result<Option<Stat>, StateError> {
        match self.inner.client.get_data(path).await {
            Ok((data, stat)) => {
                Ok(
                    first_attempt_applied(expected, written, Some((&data, stat.version)))
                        .map(|_| stat),
                )
            }
            Err(ZkError::NoNode) => Ok(None),
            Err(error) => Err(self.inner.zk_error("read", path, error)),
        }
    }

    /// Deletes `path`, conditional on the version this store last saw.
    async fn delete(&self, path: &str) -> Result<(), StateError> {
        let inner = &self.inner;
        let Some(version) = inner.versions().expected(path) else {
            // Believed absent: fine if it is; a node there is someone else's.
            return match inner.client.check_stat(path).await {
                Ok(None) => Ok(()),
                Ok(Some(_)) => Err(StateError::Conflict {
                    path: path.to_owned(),
                }),
                Err(error) => Err(inner.zk_error("stat", path, error)),
            };
        };
        for _ in 0..WRITE_ATTEMPTS {
            match inner.client.delete(path, Some(version)).await {
                // Gone already (our lost-answer attempt, or someone else): the goal is met.
                Ok(()) | Err(ZkError::NoNode) => {
                    inner.versions().deleted(path);
                    return Ok(());
                }
                Err(ZkError::ConnectionLoss) => {
                    warn!(
                        path,
                        "connection to ZooKeeper lost during a delete; sending it again"
                    );
                }
                Err(ZkError::BadVersion) => {
                    warn!(
                        path,
                        version, "delete refused: the node was changed by another writer"
                    );
                    return Err(StateError::Conflict {
                        path: path.to_owned(),
                    });
                }
                Err(error) => return Err(inner.zk_error("delete", path, error)),
            }
        }
        Err(inner.zk_error("delete", path, ZkError::ConnectionLoss))
    }
}

/// The error for a ZooKeeper failure of `op` on `path`: the session and connection cases
/// get their own variants, because the caller reacts to them differently.
fn zk_error(connect: &str, op: &'static str, path: &str, error: ZkError) -> StateError {
    let connect = connect.to_owned();
    let path = path.to_owned();
    match error {
        ZkError::SessionExpired | ZkError::SessionMoved | ZkError::ClientClosed => {
            StateError::SessionExpired { connect }
        }
        ZkError::ConnectionLoss => StateError::ConnectionLoss { connect, op, path },
        ZkError::NoAuth | ZkError::AuthFailed => StateError::NotAuthorized { connect, op, path },
        source => StateError::ZooKeeper {
            connect,
            op,
            path,
            source,
        },
    }
}

/// The parent of an absolute path (`/` for a child of the root).
fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The framework loop spawns these: the store, the guard and every future must be
    /// `Send` (checked at compile time; the closure is never called).
    #[test]
    fn the_store_and_its_futures_can_move_between_threads() {
        fn send<T: Send>(_: &T) {}
        fn send_sync<T: Send + Sync>() {}
        send_sync::<StateStore>();
        send_sync::<super::super::LockGuard>();
        send_sync::<StateError>();
        let _ = |store: StateStore, guard: super::super::LockGuard| async move {
            send(&store.framework_id());
            send(&store.set_framework_id("id"));
            send(&store.scaling());
            send(&store.set_scaling(&ScalingConfig::default()));
            send(&store.decisions());
            send(&store.set_decisions(&DecisionLog::default()));
            send(&store.slots::<String>());
            send(&store.put_slot("0", &"record"));
            send(&store.delete_slot("0"));
            send(&store.delete_all());
            send(&store.acquire_lock("owner", |_| {}));
            send(&guard.lost());
            send(&guard.release());
        };
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/dcos-service-x/slots/3"), "/dcos-service-x/slots");
        assert_eq!(parent("/dcos-service-x"), "/");
    }

    #[test]
    fn zookeeper_errors_become_sentences_that_say_what_to_do() {
        let path = "/dcos-service-x/scaling";
        let error = |e: ZkError| zk_error("zk-1:2181", "write", path, e);
        for e in [
            ZkError::SessionExpired,
            ZkError::SessionMoved,
            ZkError::ClientClosed,
        ] {
            let mapped = error(e);
            assert!(
                matches!(mapped, StateError::SessionExpired { .. }),
                "{mapped:?}"
            );
            assert!(mapped.stops_the_scheduler());
            let message = mapped.to_string();
            assert!(
                message.contains("zk-1:2181") && message.contains("must stop acting"),
                "{message}"
            );
        }
        let lost = error(ZkError::ConnectionLoss);
        assert!(!lost.stops_the_scheduler());
        let message = lost.to_string();
        assert!(
            message.contains("write of /dcos-service-x/scaling") && message.contains("retry"),
            "{message}"
        );
        let denied = error(ZkError::NoAuth).to_string();
        assert!(
            denied.contains("not authorized") && denied.contains("ACLs"),
            "{denied}"
        );
        let other = error(ZkError::QuotaExceeded);
        assert!(matches!(other, StateError::ZooKeeper { .. }), "{other:?}");
        assert!(other.to_string().contains("exceed path quota"), "{other}");

        let conflict = StateError::Conflict { path: path.into() };
        assert!(conflict.stops_the_scheduler());
        let message = conflict.to_string();
        assert!(
            message.contains(path)
                && message.contains("another writer")
                && message.contains("only one scheduler may be active"),
            "{message}"
        );
    }
}
