//! The single-scheduler lock: the ephemeral node `lock/owner`, holding the active
//! scheduler's name for as long as its ZooKeeper session lives.
//!
//! Owns taking the lock (waiting on a watch while another session holds it), watching that
//! it is still held, and releasing it. It does not decide what the scheduler does when the
//! lock is lost; [`LockGuard::lost`] only says so, at once.
//!
//! One fixed node name rather than a sequential node per contender: a create whose answer
//! is lost with the connection leaves no orphan to find, because the node's
//! `ephemeralOwner` says whether it is ours (ZooKeeper sets it to the creating session's
//! id). Only a handful of instances ever wait (Marathon runs one, a second only while it
//! replaces the first), so the herd a single watched node wakes is small.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zookeeper_client::{
    Acls, CreateMode, CreateOptions, Error as ZkError, EventType, SessionState, StateWatcher,
};

use super::StateError;
use super::codec::check_size;
use super::store::{Inner, StateStore};

/// Ephemeral: ZooKeeper deletes the node when the session that created it ends.
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());

/// Pause before asking again after a lost connection. The client queues requests until it
/// reconnects, so this only keeps a surprise from becoming a busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Where a store is with its one lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockPhase {
    /// No guard.
    Free,
    /// `acquire_lock` is running.
    Acquiring,
    /// A guard exists.
    Held,
    /// A dropped guard's node is being deleted.
    Releasing,
}

/// Why a held lock is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockLost {
    /// ZooKeeper expired the session: its ephemeral nodes, the lock among them, are gone.
    SessionExpired,
    /// The session was closed: every clone of the [`StateStore`] was dropped.
    SessionClosed,
    /// The client failed to authenticate when reconnecting; the session is unusable.
    AuthFailed,
    /// Disconnected from ZooKeeper for `grace`: the session may already have expired on the
    /// server, so another instance may hold the lock.
    Disconnected {
        /// How long the client was disconnected.
        grace: Duration,
    },
    /// The lock node was deleted (by an operator, or by `delete_all`).
    NodeDeleted,
    /// The lock node now belongs to another session.
    TakenOver {
        /// What the new holder wrote in it.
        holder: String,
    },
    /// The task that watches the lock stopped (the runtime is shutting down).
    WatchStopped,
}

impl fmt::Display for LockLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockLost::SessionExpired => f.write_str("the ZooKeeper session expired"),
            LockLost::SessionClosed => {
                f.write_str("the ZooKeeper session was closed (the state store was dropped)")
            }
            LockLost::AuthFailed => f.write_str("ZooKeeper authentication failed on reconnect"),
            LockLost::Disconnected { grace } => write!(
                f,
                "disconnected from ZooKeeper for {grace:.1?}, long enough for the session to expire"
            ),
            LockLost::NodeDeleted => f.write_str("the lock node was deleted"),
            LockLost::TakenOver { holder } => write!(f, "the lock is now held by {holder}"),
            LockLost::WatchStopped => f.write_str("the lock watch stopped"),
        }
    }
}

/// The decisions of the lock watch, apart from its I/O: from what was seen of the node and
/// the session, whether the lock is still held. Pure, so the rules are tested without
/// ZooKeeper.
#[derive(Debug, Clone)]
pub(crate) struct LockWatch {
    /// Our session id (`ephemeralOwner` of our node).
    session: i64,
    /// How long a disconnection may last before the lock counts as lost.
    grace: Duration,
    disconnected_since: Option<Instant>,
}

impl LockWatch {
    /// A watch for the lock held by `session`, whose granted timeout is `session_timeout`.
    /// The client declares a connection dead after 2/5 of the session timeout without an
    /// answer, so 3/5 after that ZooKeeper may have expired the session: the grace.
    pub fn new(session: i64, session_timeout: Duration) -> LockWatch {
        LockWatch {
            session,
            grace: session_timeout * 3 / 5,
            disconnected_since: None,
        }
    }

    /// The node was read: its ephemeral owner and data.
    pub fn on_node(&self, owner: i64, data: &[u8]) -> Option<LockLost> {
        (owner != self.session).then(|| LockLost::TakenOver {
            holder: String::from_utf8_lossy(data).into_owned(),
        })
    }

    /// The node is gone. Closing a session deletes its ephemeral nodes and notifies their
    /// watchers, our own session's watch included, before the close is answered: when the
    /// store was dropped, the deletion is its session closing.
    pub fn on_node_deleted(&self, store_dropped: bool) -> LockLost {
        if store_dropped {
            LockLost::SessionClosed
        } else {
            LockLost::NodeDeleted
        }
    }

    /// The session changed state at `now`.
    pub fn on_session(&mut self, state: SessionState, now: Instant) -> Option<LockLost> {
        match state {
            SessionState::Expired => Some(LockLost::SessionExpired),
            SessionState::Closed => Some(LockLost::SessionClosed),
            SessionState::AuthFailed => Some(LockLost::AuthFailed),
            // A read-only server cannot keep our session's writes: as good as disconnected.
            SessionState::Disconnected | SessionState::ConnectedReadOnly => {
                self.disconnected_since.get_or_insert(now);
                None
            }
            SessionState::SyncConnected => {
                self.disconnected_since = None;
                None
            }
        }
    }

    /// When the current disconnection, if any, loses the lock.
    pub fn deadline(&self) -> Option<Instant> {
        self.disconnected_since.map(|since| since + self.grace)
    }

    /// The deadline timer fired at `now`.
    pub fn on_deadline(&self, now: Instant) -> Option<LockLost> {
        match self.deadline() {
            Some(deadline) if now >= deadline => Some(LockLost::Disconnected { grace: self.grace }),
            _ => None,
        }
    }
}

/// Proof that this scheduler holds the lock. Keep it for as long as the scheduler acts, and
/// stop acting when [`LockGuard::lost`] completes.
///
/// The guard does not keep the ZooKeeper session alive: dropping every clone of the
/// [`StateStore`] ends the session, which releases the lock (and `lost()` completes).
pub struct LockGuard {
    store: Weak<Inner>,
    path: String,
    owner: String,
    session: i64,
    lost: watch::Receiver<Option<LockLost>>,
    monitor: JoinHandle<()>,
    released: bool,
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("path", &self.path)
            .field("owner", &self.owner)
            .field("session", &format_args!("{:#x}", self.session))
            .field("lost", &*self.lost.borrow())
            .finish()
    }
}

impl LockGuard {
    /// The lock node.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What this scheduler wrote in the lock node.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Completes when the lock is lost, with the reason: the session expired or was closed,
    /// the client was disconnected long enough for the session to expire, or the node was
    /// deleted or taken over. The scheduler must stop acting at once (see the module docs
    /// of [`crate::state`] for what to do next). Cancel-safe and cheap: call it in every
    /// turn of a `select!` loop; once lost, it completes immediately.
    pub async fn lost(&self) -> LockLost {
        let mut lost = self.lost.clone();
        match lost.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or(LockLost::WatchStopped),
            Err(_) => LockLost::WatchStopped,
        }
    }

    /// The reason, if the lock is lost already.
    pub fn is_lost(&self) -> Option<LockLost> {
        self.lost.borrow().clone()
    }

    /// Releases the lock: deletes the node if it is still ours, so a waiting instance takes
    /// over at once instead of after our session ends. Failures are logged, not returned:
    /// the node is ephemeral and goes with the session anyway.
    pub async fn release(mut self) {
        self.monitor.abort();
        self.released = true;
        if let Some(inner) = self.store.upgrade() {
            inner.lock_phase.send_replace(LockPhase::Releasing);
            delete_if_ours(&inner, &self.path, self.session).await;
            inner.lock_phase.send_replace(LockPhase::Free);
        }
    }
}

impl Drop for LockGuard {
    /// Releases in the background where a runtime is at hand; otherwise the node goes when
    /// the session ends.
    fn drop(&mut self) {
        self.monitor.abort();
        if self.released {
            return;
        }
        let Some(inner) = self.store.upgrade() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                inner.lock_phase.send_replace(LockPhase::Releasing);
                let (path, session) = (self.path.clone(), self.session);
                runtime.spawn(async move {
                    delete_if_ours(&inner, &path, session).await;
                    inner.lock_phase.send_replace(LockPhase::Free);
                });
            }
            Err(_) => {
                inner.lock_phase.send_replace(LockPhase::Free);
            }
        }
    }
}

/// Deletes the lock node if our session owns it. While our node exists no other session
/// can create one at that path, so the version read here is our node's (short of an
/// operator deleting it between the two requests and another instance creating its own).
async fn delete_if_ours(inner: &Inner, path: &str, session: i64) {
    match inner.client.check_stat(path).await {
        Ok(Some(stat)) if stat.ephemeral_owner == session => {
            match inner.client.delete(path, Some(stat.version)).await {
                Ok(()) | Err(ZkError::NoNode) => info!(lock = %path, "released the lock"),
                Err(error) => warn!(
                    lock = %path,
                    error = %error,
                    "could not delete the lock node; ZooKeeper deletes it when the session ends"
                ),
            }
        }
        Ok(_) => debug!(lock = %path, "the lock node is no longer ours; nothing to release"),
        Err(error) => warn!(
            lock = %path,
            error = %error,
            "could not check the lock node; ZooKeeper deletes it when the session ends"
        ),
    }
}

/// Marks the store's lock as being acquired; back to free if acquisition fails or is
/// cancelled.
struct AcquiringClaim<'a> {
    inner: &'a Inner,
    done: bool,
}

impl<'a> AcquiringClaim<'a> {
    async fn claim(inner: &'a Inner, path: &str) -> Result<AcquiringClaim<'a>, StateError> {
        loop {
            let mut phases = inner.lock_phase.subscribe();
            let mut current = LockPhase::Free;
            let claimed = inner.lock_phase.send_if_modified(|phase| {
                current = *phase;
                let free = *phase == LockPhase::Free;
                if free {
                    *phase = LockPhase::Acquiring;
                }
                free
            });
            if claimed {
                return Ok(AcquiringClaim { inner, done: false });
            }
            if current != LockPhase::Releasing {
                return Err(StateError::LockAlreadyHeld {
                    path: path.to_owned(),
                });
            }
            // A dropped guard's node is being deleted: one round trip.
            let _ = phases
                .wait_for(|phase| *phase != LockPhase::Releasing)
                .await;
        }
    }

    fn held(mut self) {
        self.inner.lock_phase.send_replace(LockPhase::Held);
        self.done = true;
    }
}

impl Drop for AcquiringClaim<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.inner.lock_phase.send_replace(LockPhase::Free);
        }
    }
}

impl StateStore {
    /// Takes the lock: creates the ephemeral node `lock/owner` holding `owner` (e.g.
    /// `hostname:pid`). While another live session holds it, waits on a watch of the node,
    /// calling `on_wait(holder)` once per change of holder so the caller can report
    /// "waiting for the lock held by X"; ZooKeeper deletes the holder's node when its
    /// session ends, at the latest a session timeout after it stops answering. Fails when
    /// the session ends while waiting, or when this store already holds the lock.
    ///
    /// Read every value the scheduler will write after this returns (see the module docs).
    pub async fn acquire_lock(
        &self,
        owner: &str,
        mut on_wait: impl FnMut(&str),
    ) -> Result<LockGuard, StateError> {
        let inner = self.inner();
        let path = inner.paths.lock_owner();
        if owner.trim().is_empty() {
            return Err(StateError::InvalidValue {
                path,
                reason: "the lock owner is empty; use e.g. hostname:pid".to_owned(),
            });
        }
        check_size(&path, owner.len())?;
        let claim = AcquiringClaim::claim(inner, &path).await?;
        let session = inner.client.session_id().0;
        let mut last_holder = None;
        loop {
            match inner
                .client
                .create(&path, owner.as_bytes(), &EPHEMERAL)
                .await
            {
                Ok(_) => break,
                Err(ZkError::NodeExists) => {}
                // Maybe created, maybe not: the read below tells by the node's owner.
                Err(ZkError::ConnectionLoss) => tokio::time::sleep(RETRY_PAUSE).await,
                Err(ZkError::NoNode) => return Err(inner.missing(&inner.paths.lock())),
                Err(error) => return Err(inner.zk_error("create", &path, error)),
            }
            match inner.client.get_and_watch_data(&path).await {
                Ok((_, stat, _)) if stat.ephemeral_owner == session => {
                    // Ours: created by an attempt whose answer was lost, or left by a guard
                    // of this store that could not delete it. We hold it either way.
                    break;
                }
                Ok((holder, stat, watcher)) => {
                    if last_holder != Some(stat.ephemeral_owner) {
                        last_holder = Some(stat.ephemeral_owner);
                        let holder = String::from_utf8_lossy(&holder);
                        info!(lock = %path, %holder, "waiting for the lock");
                        on_wait(&holder);
                    }
                    // Fires when the node is deleted or changed, or the session ends (then
                    // the next create says so).
                    watcher.changed().await;
                }
                // Released between our create and our read.
                Err(ZkError::NoNode) => {}
                Err(ZkError::ConnectionLoss) => tokio::time::sleep(RETRY_PAUSE).await,
                Err(error) => return Err(inner.zk_error("read", &path, error)),
            }
        }
        // Watch from here on: a state change from now is seen by the watch task.
        let states = inner.client.state_watcher();
        let mut lock_watch = LockWatch::new(session, inner.client.session_timeout());
        let initial = lock_watch.on_session(states.peek_state(), Instant::now());
        let (publish, lost) = watch::channel(initial);
        let monitor = tokio::spawn(watch_lock(
            Arc::downgrade(inner),
            path.clone(),
            states,
            lock_watch,
            publish,
        ));
        claim.held();
        info!(lock = %path, owner, session = %inner.client.session_id(), "holding the lock");
        Ok(LockGuard {
            store: Arc::downgrade(inner),
            path,
            owner: owner.to_owned(),
            session,
            lost,
            monitor,
            released: false,
        })
    }
}

/// The lock watch task: publishes the reason once the lock is lost, then ends.
async fn watch_lock(
    store: Weak<Inner>,
    path: String,
    mut states: StateWatcher,
    mut lock_watch: LockWatch,
    publish: watch::Sender<Option<LockLost>>,
) {
    if publish.borrow().is_some() {
        return;
    }
    let lost = watch_until_lost(&store, &path, &mut states, &mut lock_watch).await;
    warn!(lock = %path, reason = %lost, "lost the lock");
    publish.send_replace(Some(lost));
}

/// Sleeps until `deadline`, or forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn watch_until_lost(
    store: &Weak<Inner>,
    path: &str,
    states: &mut StateWatcher,
    lock_watch: &mut LockWatch,
) -> LockLost {
    loop {
        // Read the node, leaving a watch on it. The client is held only for the request, so
        // the guard never keeps the session alive on its own.
        let Some(client) = store.upgrade().map(|inner| inner.client.clone()) else {
            return LockLost::SessionClosed;
        };
        let read = tokio::select! {
            read = client.get_and_watch_data(path) => read,
            state = states.changed() => {
                if let Some(lost) = lock_watch.on_session(state, Instant::now()) {
                    return lost;
                }
                continue;
            }
            () = until(lock_watch.deadline()) => {
                if let Some(lost) = lock_watch.on_deadline(Instant::now()) {
                    return lost;
                }
                continue;
            }
        };
        drop(client);
        let watcher = match read {
            Ok((data, stat, watcher)) => {
                if let Some(lost) = lock_watch.on_node(stat.ephemeral_owner, &data) {
                    return lost;
                }
                watcher
            }
            Err(ZkError::NoNode) => return lock_watch.on_node_deleted(store.strong_count() == 0),
            Err(ZkError::SessionExpired | ZkError::SessionMoved) => {
                return LockLost::SessionExpired;
            }
            Err(ZkError::ClientClosed) => return LockLost::SessionClosed,
            Err(ZkError::AuthFailed) => return LockLost::AuthFailed,
            Err(error) => {
                debug!(lock = %path, error = %error, "reading the lock node again");
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        // Wait for the node or the session to change. After a reconnection the client
        // re-registers the watch with the last zxid it saw, so a deletion while
        // disconnected is still reported.
        let changed = watcher.changed();
        tokio::pin!(changed);
        loop {
            tokio::select! {
                event = &mut changed => {
                    match event.event_type {
                        EventType::NodeDeleted => {
                            return lock_watch.on_node_deleted(store.strong_count() == 0);
                        }
                        EventType::Session => {
                            if let Some(lost) = lock_watch.on_session(event.session_state, Instant::now()) {
                                return lost;
                            }
                        }
                        // Changed: read it again (and watch again).
                        _ => {}
                    }
                    break;
                }
                state = states.changed() => {
                    if let Some(lost) = lock_watch.on_session(state, Instant::now()) {
                        return lost;
                    }
                }
                () = until(lock_watch.deadline()) => {
                    if let Some(lost) = lock_watch.on_deadline(Instant::now()) {
                        return lost;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: i64 = 0x1001;

    #[test]
    fn the_node_tells_whether_we_hold_the_lock() {
        let watch = LockWatch::new(OURS, Duration::from_secs(10));
        assert_eq!(watch.on_node(OURS, b"me:1"), None);
        assert_eq!(
            watch.on_node(0x2002, b"other-host:7"),
            Some(LockLost::TakenOver {
                holder: "other-host:7".into()
            })
        );
        assert_eq!(watch.on_node_deleted(false), LockLost::NodeDeleted);
        assert_eq!(watch.on_node_deleted(true), LockLost::SessionClosed);
    }

    #[test]
    fn a_session_that_ends_loses_the_lock() {
        let now = Instant::now();
        let cases = [
            (SessionState::Expired, Some(LockLost::SessionExpired)),
            (SessionState::Closed, Some(LockLost::SessionClosed)),
            (SessionState::AuthFailed, Some(LockLost::AuthFailed)),
            (SessionState::SyncConnected, None),
            (SessionState::Disconnected, None),
            (SessionState::ConnectedReadOnly, None),
        ];
        for (state, expected) in cases {
            let mut watch = LockWatch::new(OURS, Duration::from_secs(10));
            assert_eq!(watch.on_session(state, now), expected, "{state:?}");
        }
    }

    #[test]
    fn a_long_disconnection_loses_the_lock_a_short_one_does_not() {
        let start = Instant::now();
        let mut watch = LockWatch::new(OURS, Duration::from_secs(10));
        assert_eq!(watch.deadline(), None);
        assert_eq!(watch.on_session(SessionState::Disconnected, start), None);
        // 3/5 of the session timeout.
        assert_eq!(watch.deadline(), Some(start + Duration::from_secs(6)));
        // A second Disconnected (a failed reconnect) does not move the deadline.
        let later = start + Duration::from_secs(2);
        assert_eq!(watch.on_session(SessionState::Disconnected, later), None);
        assert_eq!(watch.deadline(), Some(start + Duration::from_secs(6)));
        assert_eq!(watch.on_deadline(start + Duration::from_secs(5)), None);
        // Reconnected in time: no deadline any more.
        assert_eq!(watch.on_session(SessionState::SyncConnected, later), None);
        assert_eq!(watch.deadline(), None);
        assert_eq!(watch.on_deadline(start + Duration::from_secs(60)), None);
        // Disconnected again, for too long.
        let again = start + Duration::from_secs(20);
        watch.on_session(SessionState::Disconnected, again);
        assert_eq!(
            watch.on_deadline(again + Duration::from_secs(6)),
            Some(LockLost::Disconnected {
                grace: Duration::from_secs(6)
            })
        );
    }

    #[test]
    fn reasons_read_as_sentences() {
        let reasons = [
            (LockLost::SessionExpired, "session expired"),
            (LockLost::SessionClosed, "state store was dropped"),
            (
                LockLost::Disconnected {
                    grace: Duration::from_secs(6),
                },
                "disconnected from ZooKeeper for 6.0s",
            ),
            (
                LockLost::TakenOver {
                    holder: "b:2".into(),
                },
                "held by b:2",
            ),
        ];
        for (reason, text) in reasons {
            assert!(reason.to_string().contains(text), "{reason}");
        }
    }
}
