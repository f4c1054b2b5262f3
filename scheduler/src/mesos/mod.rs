//! The Mesos v1 HTTP scheduler client: subscription, leader following, heartbeat watchdog,
//! authentication, and calls.
//!
//! Owns the connection to the master and nothing else: it never decides what to launch or
//! kill (that is the framework's run loop, which reads [`MesosEvent`]s and sends calls through
//! [`MesosClient::call`]).
//!
//! INTERFACE CONTRACT (skeleton; the implementation replaces this paragraph with its own docs):
//!
//! ```ignore
//! let (client, mut events) = MesosClient::start(ClientConfig { .. });
//! while let Some(event) = events.recv().await {
//!     match event {
//!         MesosEvent::Subscribed { framework_id, .. } => { /* persist id, reconcile */ }
//!         MesosEvent::Event(event) => { /* OFFERS, UPDATE, RESCIND, FAILURE, MESSAGE, ... */ }
//!         MesosEvent::Disconnected { reason } => { /* the client re-subscribes by itself */ }
//!         MesosEvent::Fatal(fatal) => { /* stop; report on /v1/health */ }
//!     }
//! }
//! client.call(call).await?; // fills framework_id and Mesos-Stream-Id
//! client.shutdown().await;   // closes the stream
//! ```

use std::time::Duration;

use fastdata_proto::v1::{FrameworkInfo, scheduler};

use crate::config::MesosAuth;

/// What the client needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Master base URLs (`http://host:port`), tried in turn.
    pub masters: Vec<String>,
    /// The FrameworkInfo to subscribe with (its `id` is set by the client when it knows one).
    pub framework_info: FrameworkInfo,
    /// The framework id stored in ZooKeeper, if any: used in both `Call.framework_id` and
    /// `framework_info.id` on every SUBSCRIBE.
    pub framework_id: Option<String>,
    /// Authentication.
    pub auth: MesosAuth,
    /// A stream with no event for this many heartbeat intervals is dropped and re-subscribed.
    pub heartbeat_misses: u32,
    /// First backoff between subscription attempts.
    pub backoff_min: Duration,
    /// Longest backoff between subscription attempts.
    pub backoff_max: Duration,
    /// Timeout of a call (and of connecting for SUBSCRIBE).
    pub request_timeout: Duration,
}

/// What the client tells the run loop.
#[derive(Debug)]
pub enum MesosEvent {
    /// A subscription is established (first time or again).
    Subscribed {
        /// The framework id Mesos assigned (or confirmed).
        framework_id: String,
        /// The master it is subscribed to (`http://host:port`).
        master: String,
        /// `heartbeat_interval_seconds` from SUBSCRIBED.
        heartbeat_interval: Duration,
    },
    /// Any event other than SUBSCRIBED, HEARTBEAT and ERROR.
    Event(Box<scheduler::Event>),
    /// The subscription is gone (stream closed, heartbeats missed, 403 on a call); the client
    /// is re-subscribing with backoff.
    Disconnected {
        /// Why, in words.
        reason: String,
    },
    /// Mesos refused the framework for good; the client has stopped.
    Fatal(Fatal),
}

/// A refusal the scheduler cannot recover from by retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatal {
    /// What Mesos said (the ERROR event's message).
    pub message: String,
    /// What the operator must do.
    pub remedy: String,
}

/// Why a call did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// There is no subscription right now (the call was not sent).
    #[error("not subscribed to a Mesos master")]
    NotSubscribed,
    /// The master answered with an error status.
    #[error("Mesos answered {status}: {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
    /// The request failed on the way.
    #[error("calling Mesos failed: {0}")]
    Transport(String),
}
