//! The framework's state in ZooKeeper, under `/dcos-service-<escaped name>` as DC/OS SDK
//! services keep theirs.
//!
//! Owns the layout of the znodes, the encoding of their values, versioned writes and the lock
//! that lets only one scheduler instance act. It does not decide what to store or when: the
//! framework loop reads and writes through [`StateStore`] and stops acting when its
//! [`LockGuard`] is lost. Nothing here talks to Mesos or Kafka.
//!
//! # Layout
//!
//! ```text
//! /dcos-service-<name>/          (a DC/OS folder /a/b is escaped to a__b, as the SDK does)
//!   FrameworkID     the Mesos framework id, text; empty until the first SUBSCRIBED
//!   SchemaVersion   "1"; a scheduler refuses state written with a schema it does not know
//!   lock/           persistent; its ephemeral child `owner` holds the active scheduler's
//!                   name (e.g. hostname:pid) for as long as its ZooKeeper session lives
//!   scaling         JSON of policy::ScalingConfig; empty until an operator sets one
//!   decisions       JSON of policy::DecisionLog (bounded by the log itself)
//!   slots/<name>    one JSON document per consumer/producer slot (the caller's type)
//! ```
//!
//! [`StateStore::connect`] creates every node that is missing (empty means "never set", so
//! reads then return `None` or an empty map). Values are limited to [`MAX_VALUE_BYTES`]
//! (1,000,000 bytes, the DC/OS SDK's limit, set below ZooKeeper's `jute.maxbuffer` of 1 MiB
//! after "Len error" incidents where a too-large node made every client's reads fail).
//!
//! # Versioned writes
//!
//! Every write is conditional on the version this store last read or wrote for that node
//! (`setData` with a version, or `create` when the store believes the node absent), so an
//! update made by another writer in between is never overwritten silently: the write fails
//! with [`StateError::Conflict`]. The versions live in a small per-path map behind a
//! synchronous mutex that is never held across an `.await`, so one store can be used from
//! several tasks at once (the loop may persist many slots concurrently). Two concurrent
//! writes to the *same* node through one store race like two writers: one gets `Conflict`.
//! The fixed nodes' versions are read at connect; slots' versions are read by
//! [`StateStore::slots`]. A scheduler must therefore read everything it will write *after*
//! [`StateStore::acquire_lock`] returns: a version seen before it took the lock may belong to
//! the previous holder's writes and makes the next write a `Conflict`.
//!
//! A write whose answer is lost with the connection is retried; if the retry is refused,
//! the node is read back to tell "our first attempt was applied" (same bytes, next version)
//! from a real conflict, so a flaky connection does not report false conflicts.
//!
//! # The lock
//!
//! [`StateStore::acquire_lock`] creates the ephemeral node `lock/owner`; while another live
//! session holds it, the call waits on a ZooKeeper watch of that node and reports the holder
//! through its `on_wait` callback. ZooKeeper deletes the node when the holder's session ends
//! (closed, or expired after its session timeout), which wakes the waiter. The lock lives
//! with the store's session: dropping every clone of the [`StateStore`] closes the session
//! and so releases the lock even while a [`LockGuard`] exists.
//!
//! # Failures, and how the caller reacts
//!
//! - An operation during a disconnection waits for the client to reconnect (the ZooKeeper
//!   client queues it); if the session does not survive, it fails with
//!   [`StateError::SessionExpired`] at the latest about 1.4 × the session timeout after the
//!   last contact. A request in flight when the connection drops fails with
//!   [`StateError::ConnectionLoss`] (writes are retried first, see above): retry it later.
//! - [`LockGuard::lost`] completes when the lock node is deleted or taken over, when the
//!   session expires or is closed, or when the client has been disconnected for 3/5 of the
//!   session timeout: the client notices a dead connection after at most 2/5 of it, so by
//!   then ZooKeeper may have expired the session and another instance may hold the lock.
//! - On `lost()`, [`StateError::SessionExpired`], [`StateError::Conflict`] or
//!   [`StateError::Missing`] (see [`StateError::stops_the_scheduler`]) the scheduler must stop
//!   acting at once: no more offers accepted, tasks launched or killed, state written. The
//!   simplest correct reaction is the DC/OS SDK's: exit, and let Marathon restart it; a
//!   restarted scheduler connects anew, waits for the lock and re-reads all state. Staying
//!   up instead means dropping the store and the guard, connecting a new [`StateStore`],
//!   calling `acquire_lock` again and re-reading everything before acting. Mesos itself
//!   tolerates a short overlap: a second SUBSCRIBE with the same framework id fails the
//!   first connection over.

mod codec;
mod lock;
mod paths;
mod store;
mod versions;

use std::time::Duration;

pub use codec::MAX_VALUE_BYTES;
pub use lock::{LockGuard, LockLost};
pub use paths::{
    DECISIONS, FRAMEWORK_ID, LOCK, LOCK_OWNER, SCALING, SCHEMA_VERSION, SCHEMA_VERSION_VALUE,
    SLOTS, StatePaths,
};
pub use store::{StateStore, StateStoreOptions};

/// Why a state operation failed. Every message says what failed and what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateError {
    /// The service name cannot be part of a znode path.
    #[error(
        "service name {name:?} cannot name a ZooKeeper node ({reason}); use letters, digits, '-', '_' or '.' (folders with '/' are allowed)"
    )]
    InvalidServiceName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A slot name cannot be a znode name.
    #[error("slot name {name:?} cannot name a ZooKeeper node ({reason})")]
    InvalidSlotName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The connect string does not parse, or its chroot does not exist.
    #[error(
        "ZooKeeper connect string {connect:?} is not usable ({reason}); set --zk (FASTDATA_ZK_CONNECT) to host:port[,host:port...][/chroot], e.g. master.mesos:2181"
    )]
    BadConnectString {
        /// The connect string.
        connect: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No session could be established.
    #[error(
        "no ZooKeeper session with {connect} after {waited:.1?} ({reason}); check that ZooKeeper runs there and is reachable from this host, or set --zk (FASTDATA_ZK_CONNECT) to the right host:port list (on DC/OS: master.mesos:2181)"
    )]
    Unreachable {
        /// The connect string.
        connect: String,
        /// How long we tried.
        waited: Duration,
        /// The client's last error.
        reason: String,
    },
    /// A versioned write was refused: someone else changed the node.
    #[error(
        "{path} was changed by another writer since this scheduler last read it, so the write was refused rather than overwrite that change; only one scheduler may be active per service: check that no second instance runs without the lock, then restart this one"
    )]
    Conflict {
        /// The node.
        path: String,
    },
    /// A value over [`MAX_VALUE_BYTES`].
    #[error(
        "refusing to write {size} bytes to {path}: ZooKeeper values are limited to {limit} bytes here (the DC/OS SDK limit, below ZooKeeper's 1 MiB jute.maxbuffer); keep the value smaller"
    )]
    TooLarge {
        /// The node.
        path: String,
        /// Bytes we were asked to write.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A node holds something this version cannot read.
    #[error(
        "{path} holds a value this scheduler cannot read ({reason}); it may have been written by a newer fastdata: upgrade the scheduler, or fix or delete the node"
    )]
    Unreadable {
        /// The node.
        path: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A slot's record cannot be read.
    #[error(
        "slot {slot:?} ({path}) holds a record this scheduler cannot read ({reason}); it may have been written by a newer fastdata: upgrade the scheduler, or fix or delete the node"
    )]
    UnreadableSlot {
        /// The slot's name.
        slot: String,
        /// The node.
        path: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A value refused before writing it (it would be unreadable or is meaningless).
    #[error("refusing to write {path}: {reason}")]
    InvalidValue {
        /// The node.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The state was written with another schema.
    #[error(
        "{path} says the state was written with schema version {found:?}, but this scheduler understands only {expected:?}; run a fastdata version that knows it, or uninstall the service to start afresh"
    )]
    UnsupportedSchema {
        /// The SchemaVersion node.
        path: String,
        /// What it holds.
        found: String,
        /// What we understand.
        expected: &'static str,
    },
    /// A node of the layout is gone while the scheduler runs.
    #[error(
        "{path} is missing: the service's state under {root} was deleted while this scheduler ran (uninstalled?); stop, and restart the scheduler to recreate it"
    )]
    Missing {
        /// The node.
        path: String,
        /// The state root.
        root: String,
    },
    /// `acquire_lock` on a store whose lock is held (or being taken) by another call.
    #[error(
        "this scheduler already holds (or is taking) the lock {path} through the same store; keep one LockGuard"
    )]
    LockAlreadyHeld {
        /// The lock node.
        path: String,
    },
    /// The session is over.
    #[error(
        "the ZooKeeper session with {connect} expired or was closed, so its ephemeral nodes (the lock among them) are gone; the scheduler must stop acting, then connect again, take the lock and re-read its state"
    )]
    SessionExpired {
        /// The connect string.
        connect: String,
    },
    /// The connection dropped while a request was in flight; the session may live on.
    #[error(
        "the connection to ZooKeeper {connect} dropped during {op} of {path}; the session may still be alive: retry"
    )]
    ConnectionLoss {
        /// The connect string.
        connect: String,
        /// The operation.
        op: &'static str,
        /// The node.
        path: String,
    },
    /// ZooKeeper's ACLs refuse us.
    #[error(
        "ZooKeeper {connect} refused {op} of {path}: not authorized; check the ACLs of {path} and the scheduler's ZooKeeper credentials"
    )]
    NotAuthorized {
        /// The connect string.
        connect: String,
        /// The operation.
        op: &'static str,
        /// The node.
        path: String,
    },
    /// Anything else ZooKeeper reports.
    #[error("ZooKeeper {connect}: {op} of {path} failed: {source}")]
    ZooKeeper {
        /// The connect string.
        connect: String,
        /// The operation.
        op: &'static str,
        /// The node.
        path: String,
        /// The client's error.
        source: zookeeper_client::Error,
    },
}

impl StateError {
    /// True when the scheduler must stop acting (see the module docs): another writer, a
    /// session that is over, or state deleted under it. Other errors (a lost connection, a
    /// value refused) concern one operation.
    pub fn stops_the_scheduler(&self) -> bool {
        matches!(
            self,
            StateError::Conflict { .. }
                | StateError::SessionExpired { .. }
                | StateError::Missing { .. }
                | StateError::UnsupportedSchema { .. }
        )
    }
}
