//! The Mesos v1 HTTP scheduler client: subscription, leader following, heartbeat watchdog,
//! authentication, and calls.
//!
//! Owns the connection to the master and nothing else: it never decides what to launch or
//! kill (that is the framework's run loop, which reads [`MesosEvent`]s and sends calls through
//! [`MesosClient::call`]), and it never persists the framework id (the run loop stores the id
//! of [`MesosEvent::Subscribed`] in ZooKeeper and passes it back in
//! [`ClientConfig::framework_id`] after a restart).
//!
//! In outline, as the run loop uses it:
//!
//! ```text
//! let info = framework_info(&config.framework, stored_id.as_deref());
//! let (client, mut events) = MesosClient::start(ClientConfig::new(&config.framework, info, stored_id));
//! while let Some(event) = events.recv().await {
//!     match event {
//!         MesosEvent::Subscribed { framework_id, .. } => { /* persist id, reconcile */ }
//!         MesosEvent::Event(event) => { /* OFFERS, UPDATE, RESCIND, FAILURE, MESSAGE, ... */ }
//!         MesosEvent::Disconnected { reason } => { /* the client re-subscribes by itself */ }
//!         MesosEvent::Fatal(fatal) => { /* stopped; report on /v1/health */ }
//!     }
//! }
//! client.call(call).await?; // fills framework_id and Mesos-Stream-Id
//! client.shutdown().await;   // closes the stream
//! ```
//!
//! # How it behaves (reference `mesos-v1.md` §1, §2, §5.4; `mesos-transcripts/`)
//!
//! - **Wire**: SUBSCRIBE and calls are `POST /api/v1/scheduler` with
//!   `Content-Type: application/x-protobuf` and `Accept: application/x-protobuf`; the event
//!   stream is RecordIO of protobuf `Event`s, decoded from bytes whatever the chunking
//!   ([`stream`]). Calls go on separate connections and carry the subscription's
//!   `Mesos-Stream-Id`; SUBSCRIBE never does. Requests are built as `http::Request` values
//!   ([`request`]).
//! - **Subscription** ([`connection`], one `step` function, state published on a `watch`):
//!   `Disconnected → Subscribing{attempt} → Subscribed{framework_id, stream_id, master}`;
//!   the framework id Mesos assigns is used in `Call.framework_id` and
//!   `framework_info.id` of every later SUBSCRIBE.
//! - **Leader following**: a 307 is followed at once to host:port of `Location` (a real
//!   master answers `//localhost:5050/master/api/v1/scheduler`), with our scheme; the new
//!   leader is remembered, so calls go there and it is tried first after a disconnection.
//!   At most [`connection::MAX_REDIRECTS_IN_A_ROW`] redirects in a row, then a backoff.
//! - **Retries**: connection errors, timeouts, 503 ("No leader elected", "Master has not
//!   finished recovery"), 404 (a master that is starting), other 5xx, 408, 429, and a
//!   stream that breaks the protocol are retried on the next configured master after a
//!   jittered exponential backoff ([`backoff`]: `backoff_min..=backoff_max`, reset by a
//!   successful subscription).
//! - **Heartbeat watchdog** ([`watchdog`]): no event at all for `heartbeat_misses ×
//!   heartbeat_interval_seconds` (and no SUBSCRIBED within `request_timeout` after the 200)
//!   drops the stream and re-subscribes. Garbage on the stream (bad RecordIO, an
//!   undecodable event, an event without its payload, a first event other than SUBSCRIBED)
//!   does the same; it never panics.
//! - **Fatal, never a crash loop** ([`fatal`]): every ERROR event ("Framework has been
//!   removed", "Framework failed over", a principal change, an invalid FrameworkInfo); a 401
//!   that fresh credentials do not cure (decision: the secret is read at start, so retrying
//!   cannot help; the operator fixes it and restarts); any other 4xx on SUBSCRIBE (400 with
//!   Mesos' validation text, 403, 405, 406, 415); a refused DC/OS login; another framework
//!   id than ours in SUBSCRIBED; a configuration it cannot use. The client emits one
//!   [`MesosEvent::Fatal`] with a remedy for the operator, logs it once, publishes
//!   [`ConnectionState::Fatal`], and stops: no further SUBSCRIBE is sent.
//! - **Calls**: a call answered 403 ("Framework is not subscribed") or 307 means the master
//!   lost our subscription: the client drops the stream and re-subscribes. A 400 (wrong
//!   stream id, invalid call) fails that call only. An accepted TEARDOWN stops the client.
//! - **Authentication** ([`auth`]): HTTP Basic with principal and secret, or a DC/OS
//!   service account (RS256 login token exchanged at the IAM, refreshed 30 s before expiry
//!   and once after a 401, sent as `Authorization: token=...`). Secrets never reach a log.
//!
//! # What the run loop must do
//!
//! - Persist `framework_id` from every [`MesosEvent::Subscribed`] (it stays the same on
//!   re-subscription) and reconcile after each one (offers are regenerated; SUBSCRIBE also
//!   un-suppresses offers, so SUPPRESS again if nothing is needed).
//! - Treat [`MesosEvent::Disconnected`] as "calls fail with `NotSubscribed` until the next
//!   Subscribed"; outstanding offers are void after a re-subscription.
//! - Show [`MesosEvent::Fatal`] on `/v1/health` and stop acting; the receiver then ends.
//! - Call [`MesosClient::shutdown`] at exit.

pub mod auth;
pub mod backoff;
mod client;
pub mod connection;
pub mod fatal;
pub mod framework;
pub mod request;
pub mod stream;
pub mod watchdog;

use std::time::Duration;

use fastdata_proto::v1::{FrameworkInfo, scheduler};

use crate::config::{FrameworkConfig, MesosAuth};

pub use client::{EVENT_QUEUE, MesosClient};
pub use framework::{framework_info, subscribe_call};

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
    /// Timeout of a call (and of connecting for SUBSCRIBE, of its answer's head, and of the
    /// SUBSCRIBED event after it; also of the IAM login).
    pub request_timeout: Duration,
}

/// The first backoff [`ClientConfig::new`] uses: short enough to be back "within seconds"
/// after a master failover, long enough that a restarting master is not hammered.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(500);
/// The request timeout [`ClientConfig::new`] uses (Mesos suggests about the watchdog's 75 s
/// for requests; a master that does not answer a call in 30 s is better given up on).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl ClientConfig {
    /// The client configuration for a checked [`FrameworkConfig`]: its masters, auth,
    /// heartbeat misses and backoff cap, [`DEFAULT_BACKOFF_MIN`] and
    /// [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn new(
        framework: &FrameworkConfig,
        framework_info: FrameworkInfo,
        framework_id: Option<String>,
    ) -> ClientConfig {
        ClientConfig {
            masters: framework.masters.clone(),
            framework_info,
            framework_id,
            auth: framework.auth.clone(),
            heartbeat_misses: framework.heartbeat_misses,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: framework.subscribe_backoff_max,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// The connection's state, published on a `watch` channel ([`MesosClient::state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not started yet.
    Disconnected,
    /// Subscribing, or waiting to try again.
    Subscribing {
        /// SUBSCRIBE attempts since the last subscription (0 while waiting after losing one).
        attempt: u32,
        /// Why the last attempt (or the last subscription) failed.
        last_error: Option<String>,
    },
    /// Subscribed: calls go to `master` with `stream_id`.
    Subscribed {
        /// The framework id.
        framework_id: String,
        /// The subscription's `Mesos-Stream-Id`.
        stream_id: String,
        /// The master it is subscribed to (`http://host:port`).
        master: String,
    },
    /// Mesos refused the framework for good; the client has stopped.
    Fatal(Fatal),
    /// Shut down (or torn down by our own TEARDOWN).
    Stopped,
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
    /// Any event other than SUBSCRIBED, HEARTBEAT and ERROR, with the payload its type
    /// announces (an OFFERS event has `offers`, an UPDATE has `update`, ...): the client
    /// drops streams that break this.
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
    /// The call is not one Mesos would accept (a required field missing, a SUBSCRIBE); it
    /// was not sent. A bug in the caller.
    #[error("the call was not sent: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn framework() -> FrameworkConfig {
        FrameworkConfig {
            framework_name: "fastdata".into(),
            service_name: "fastdata".into(),
            role: "fastdata-role".into(),
            principal: "fastdata-principal".into(),
            user: "nobody".into(),
            failover_timeout: Duration::from_secs(3600),
            webui_url: None,
            masters: vec!["http://m1:5050".into(), "http://m2:5050".into()],
            auth: MesosAuth::Basic {
                principal: "fastdata-principal".into(),
                secret: Secret::new("s"),
            },
            heartbeat_misses: 4,
            subscribe_backoff_max: Duration::from_secs(20),
            reconcile_interval: Duration::from_secs(900),
        }
    }

    #[test]
    fn client_config_follows_the_framework_config() {
        let f = framework();
        let config = ClientConfig::new(&f, framework_info(&f, Some("fw")), Some("fw".into()));
        assert_eq!(config.masters, f.masters);
        assert_eq!(config.auth, f.auth);
        assert_eq!(config.heartbeat_misses, 4);
        assert_eq!(config.backoff_min, DEFAULT_BACKOFF_MIN);
        assert_eq!(config.backoff_max, Duration::from_secs(20));
        assert_eq!(config.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(config.framework_id.as_deref(), Some("fw"));
        assert_eq!(config.framework_info.id.unwrap().value, "fw");
    }

    /// A configuration the client cannot use is one Fatal at once, naming the setting.
    #[tokio::test]
    async fn unusable_configurations_are_fatal_at_start() {
        let f = framework();
        let good = ClientConfig::new(&f, framework_info(&f, None), None);
        type Breakage = fn(&mut ClientConfig);
        let table: [(Breakage, &str); 4] = [
            (|c| c.masters.clear(), "--mesos-master"),
            (
                |c| c.masters = vec!["leader.mesos:5050".into()],
                "is not http(s)://host:port",
            ),
            (|c| c.heartbeat_misses = 0, "FASTDATA_HEARTBEAT_MISSES"),
            (|c| c.backoff_min = Duration::ZERO, "backoff"),
        ];
        for (breaks, expected) in table {
            let mut config = good.clone();
            breaks(&mut config);
            let (client, mut events) = MesosClient::start(config);
            let Some(MesosEvent::Fatal(fatal)) = events.recv().await else {
                panic!("{expected}: no Fatal");
            };
            assert!(fatal.message.contains(expected), "{}", fatal.message);
            assert!(events.recv().await.is_none(), "nothing after the Fatal");
            assert!(matches!(
                *client.state().borrow(),
                ConnectionState::Fatal(_)
            ));
            assert!(matches!(
                client.call(scheduler::Call::default()).await,
                Err(CallError::NotSubscribed)
            ));
            client.shutdown().await;
        }
    }
}
