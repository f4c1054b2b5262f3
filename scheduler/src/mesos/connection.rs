//! The subscription state machine: one [`Connection::step`] from an [`Input`] to the
//! [`Action`]s the connection task carries out.
//!
//! Owns every decision about the subscription: which master to try, when to retry and how
//! long to wait, when a stream has become a subscription, which events reach the run loop,
//! and what is fatal. It does no I/O and reads no clock (the backoff's jitter comes from a
//! seeded generator), so every path is tested below with plain values.
//!
//! ```text
//!  Disconnected ──Connect──▶ Subscribing{attempt} ──200 + SUBSCRIBED──▶ Subscribed{stream_id}
//!        ▲                    │   ▲      │ 307: follow at once                 │
//!        │                    │   └──────┘ 503/404/5xx/refused/garbage:         │ stream lost,
//!        │                    │            next master after a backoff          │ watchdog, 403
//!        │                    ▼                                                 ▼
//!        │        Fatal (ERROR event, 401, 4xx)              Subscribing (backoff, Disconnected)
//!  Stopped ◀── Shutdown / TEARDOWN accepted (from any state)
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use fastdata_proto::v1::{FrameworkInfo, scheduler};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

use super::backoff::Backoff;
use super::fatal::{self, AuthKind, FrameworkFacts};
use super::framework::subscribe_call;
use super::request::SubscribeFailure;
use super::stream::payload_present;
use super::watchdog::{heartbeat_interval, silence_window};
use super::{ConnectionState, Fatal, MesosEvent};

/// Redirects followed in a row without a wait. A standby redirects once; a stale leader
/// hint may add one more; beyond that the masters disagree about who leads (an election in
/// progress), and waiting is better than ping-pong.
pub const MAX_REDIRECTS_IN_A_ROW: u32 = 3;

/// What the machine is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Start, or start the next attempt after a [`Action::Wait`].
    Connect,
    /// The last SUBSCRIBE was answered 200 with this stream id; events follow.
    StreamOpened {
        /// The master that answered.
        master: String,
        /// Its `Mesos-Stream-Id`.
        stream_id: String,
    },
    /// The last SUBSCRIBE failed.
    SubscribeFailed {
        /// The master it went to.
        master: String,
        /// What happened.
        failure: SubscribeFailure,
    },
    /// An event decoded from the current stream.
    Event(Box<scheduler::Event>),
    /// The current stream ended or broke (EOF, transport error, bad RecordIO, undecodable
    /// event, or the watchdog's deadline passed).
    StreamLost {
        /// Why.
        reason: String,
    },
    /// A call made on subscription `stream_id` was answered 403 or 307: the master no longer
    /// has that subscription.
    CallLost {
        /// The stream id the call carried (a stale answer must not end a newer subscription).
        stream_id: String,
        /// What the master said.
        reason: String,
        /// The leader a 307 named.
        leader: Option<String>,
    },
    /// Our own TEARDOWN was accepted: Mesos removes the framework; re-subscribing could
    /// only be refused.
    TornDown,
    /// Stop now.
    Shutdown,
}

/// What the connection task must do, in order.
#[derive(Debug)]
pub enum Action {
    /// POST this SUBSCRIBE to this master and report the outcome.
    Subscribe {
        /// Base URL.
        master: String,
        /// The call (framework id in both places once known).
        call: Box<scheduler::Call>,
    },
    /// Sleep, then input [`Input::Connect`].
    Wait(Duration),
    /// Arm the watchdog: [`Input::StreamLost`] after this long without an event.
    ArmWatchdog(Duration),
    /// Hand this to the run loop.
    Emit(MesosEvent),
    /// Drop the current stream (and its watchdog).
    CloseStream,
    /// End the task.
    Stop,
}

/// Where to subscribe: the configured masters in turn, or the leader we learned of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masters {
    configured: Vec<String>,
    next: usize,
    leader: Option<String>,
}

impl Masters {
    /// The configured base URLs (at least one; checked by the client at start).
    pub fn new(configured: Vec<String>) -> Masters {
        Masters {
            configured,
            next: 0,
            leader: None,
        }
    }

    /// The master to try now.
    pub fn target(&self) -> String {
        self.leader
            .clone()
            .unwrap_or_else(|| self.configured.get(self.next).cloned().unwrap_or_default())
    }

    /// A 307 named the leader: go there next, and keep it for later calls.
    pub fn redirected(&mut self, leader: String) {
        self.leader = Some(leader);
    }

    /// Subscribed with `master`: after a disconnection, try it first (a master restart or a
    /// dropped connection most often leaves the leader where it was).
    pub fn subscribed(&mut self, master: &str) {
        self.leader = Some(master.to_owned());
    }

    /// `master` could not take us: forget it as leader, and move on to the next configured
    /// master if it was the current one.
    pub fn failed(&mut self, master: &str) {
        let was_leader = self.leader.as_deref() == Some(master);
        if was_leader {
            self.leader = None;
        }
        let current = self.configured.get(self.next).map(String::as_str);
        if current == Some(master) || !was_leader {
            self.next = (self.next + 1) % self.configured.len().max(1);
        }
    }
}

/// Everything the machine needs to know up front.
#[derive(Debug, Clone)]
pub struct ConnectionSetup {
    /// Master base URLs, tried in turn.
    pub masters: Vec<String>,
    /// The FrameworkInfo to subscribe with.
    pub framework_info: FrameworkInfo,
    /// The framework id from ZooKeeper, if any.
    pub framework_id: Option<String>,
    /// Heartbeat intervals of silence before the stream is dropped.
    pub heartbeat_misses: u32,
    /// First backoff.
    pub backoff_min: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// How long the first event (SUBSCRIBED) may take after the 200.
    pub first_event_timeout: Duration,
    /// How the client authenticates (for remedies).
    pub auth: AuthKind,
    /// Seed of the backoff jitter (random in production, fixed in tests).
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Opening {
    master: String,
    stream_id: String,
}

/// The state machine; see the module docs.
#[derive(Debug)]
pub struct Connection {
    state: ConnectionState,
    masters: Masters,
    backoff: Backoff,
    rng: SmallRng,
    framework_info: FrameworkInfo,
    framework_id: Option<String>,
    heartbeat_misses: u32,
    first_event_timeout: Duration,
    facts: FrameworkFacts,
    /// A stream answered 200 and is waiting for its SUBSCRIBED event.
    opening: Option<Opening>,
    /// SUBSCRIBE attempts since the last subscription.
    attempt: u32,
    redirects: u32,
    last_error: Option<String>,
    unknown_types: BTreeSet<i32>,
}

impl Connection {
    /// A machine in [`ConnectionState::Disconnected`]; input [`Input::Connect`] to begin.
    pub fn new(setup: ConnectionSetup) -> Connection {
        let facts = FrameworkFacts {
            name: setup.framework_info.name.clone(),
            principal: setup.framework_info.principal.clone(),
            roles: setup.framework_info.roles.clone(),
            auth: setup.auth,
        };
        Connection {
            state: ConnectionState::Disconnected,
            masters: Masters::new(setup.masters),
            backoff: Backoff::new(setup.backoff_min, setup.backoff_max),
            rng: SmallRng::seed_from_u64(setup.seed),
            framework_info: setup.framework_info,
            framework_id: setup.framework_id.filter(|id| !id.is_empty()),
            heartbeat_misses: setup.heartbeat_misses,
            first_event_timeout: setup.first_event_timeout,
            facts,
            opening: None,
            attempt: 0,
            redirects: 0,
            last_error: None,
            unknown_types: BTreeSet::new(),
        }
    }

    /// The current state (what the client publishes).
    pub fn state(&self) -> &ConnectionState {
        &self.state
    }

    /// Fatal or Stopped: no input changes anything any more.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            ConnectionState::Fatal(_) | ConnectionState::Stopped
        )
    }

    /// The framework id the next SUBSCRIBE will carry.
    pub fn framework_id(&self) -> Option<&str> {
        self.framework_id.as_deref()
    }

    /// Feeds one input; returns what to do, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        if self.is_finished() {
            return Vec::new();
        }
        match input {
            Input::Connect => self.connect(),
            Input::StreamOpened { master, stream_id } => {
                self.opening = Some(Opening { master, stream_id });
                vec![Action::ArmWatchdog(self.first_event_timeout)]
            }
            Input::SubscribeFailed { master, failure } => self.subscribe_failed(&master, failure),
            Input::Event(event) => self.event(*event),
            Input::StreamLost { reason } => self.stream_lost(reason),
            Input::CallLost {
                stream_id,
                reason,
                leader,
            } => match &self.state {
                ConnectionState::Subscribed {
                    stream_id: ours, ..
                } if *ours == stream_id => {
                    if let Some(leader) = leader {
                        self.masters.redirected(leader);
                    }
                    self.stream_lost(reason)
                }
                _ => Vec::new(),
            },
            Input::TornDown | Input::Shutdown => {
                self.opening = None;
                self.state = ConnectionState::Stopped;
                vec![Action::CloseStream, Action::Stop]
            }
        }
    }

    fn connect(&mut self) -> Vec<Action> {
        self.attempt += 1;
        self.state = ConnectionState::Subscribing {
            attempt: self.attempt,
            last_error: self.last_error.clone(),
        };
        vec![Action::Subscribe {
            master: self.masters.target(),
            call: Box::new(subscribe_call(
                &self.framework_info,
                self.framework_id.as_deref(),
            )),
        }]
    }

    /// Waits a backoff, then [`Input::Connect`].
    fn retry(&mut self, error: String) -> Vec<Action> {
        self.redirects = 0;
        let delay = self.backoff.next_delay(self.rng.random());
        self.last_error = Some(error.clone());
        self.state = ConnectionState::Subscribing {
            attempt: self.attempt,
            last_error: Some(error),
        };
        vec![Action::Wait(delay)]
    }

    fn fatal(&mut self, fatal: Fatal) -> Vec<Action> {
        self.opening = None;
        self.state = ConnectionState::Fatal(fatal.clone());
        vec![
            Action::CloseStream,
            Action::Emit(MesosEvent::Fatal(fatal)),
            Action::Stop,
        ]
    }

    fn subscribe_failed(&mut self, master: &str, failure: SubscribeFailure) -> Vec<Action> {
        self.opening = None;
        match failure {
            SubscribeFailure::Redirect { leader } => {
                self.redirects += 1;
                if self.redirects <= MAX_REDIRECTS_IN_A_ROW {
                    // Follow at once: the leader is known and up (reference 2.2).
                    self.masters.redirected(leader);
                    return self.connect();
                }
                self.masters.failed(master);
                self.retry(format!(
                    "the masters keep redirecting ({master} to {leader}); waiting for the \
                     election to settle"
                ))
            }
            SubscribeFailure::Unauthorized { body } => {
                self.fatal(fatal::unauthorized(master, &body, &self.facts))
            }
            SubscribeFailure::Refused { status, body } => {
                self.fatal(fatal::subscribe_refused(master, status, &body, &self.facts))
            }
            SubscribeFailure::LoginRefused { status, body } => {
                self.fatal(fatal::login_refused(status, &body, &self.facts))
            }
            // The master is not at fault: try it again after the wait.
            failure @ SubscribeFailure::LoginUnavailable(_) => self.retry(failure.to_string()),
            failure @ (SubscribeFailure::Unreachable(_)
            | SubscribeFailure::Unavailable { .. }
            | SubscribeFailure::Protocol(_)) => {
                self.masters.failed(master);
                self.retry(format!("{master} {failure}"))
            }
        }
    }

    fn event(&mut self, event: scheduler::Event) -> Vec<Action> {
        use scheduler::event::Type;
        let raw = event.r#type.unwrap_or(0);
        let kind = Type::try_from(raw).unwrap_or(Type::Unknown);
        if self.opening.is_some() {
            return match kind {
                Type::Subscribed => self.subscribed(event),
                Type::Error => self.error_event(&event),
                other => self.stream_lost(format!(
                    "the first event was {}, not SUBSCRIBED",
                    other.as_str_name()
                )),
            };
        }
        if !matches!(self.state, ConnectionState::Subscribed { .. }) {
            // Left over from a stream already given up.
            return Vec::new();
        }
        match kind {
            Type::Heartbeat => Vec::new(),
            Type::Error => self.error_event(&event),
            Type::Subscribed => {
                tracing::warn!("ignoring a second SUBSCRIBED event on the same stream");
                Vec::new()
            }
            Type::Unknown => {
                // A newer master may send types we do not know (reference 2.11).
                if self.unknown_types.insert(raw) {
                    tracing::debug!(event_type = raw, "ignoring an unknown event type");
                }
                Vec::new()
            }
            _ if !payload_present(&event) => self.stream_lost(format!(
                "an event of type {} came without its payload",
                kind.as_str_name()
            )),
            _ => vec![Action::Emit(MesosEvent::Event(Box::new(event)))],
        }
    }

    fn error_event(&mut self, event: &scheduler::Event) -> Vec<Action> {
        let message = event
            .error
            .as_ref()
            .map_or("(no message)", |e| e.message.as_str());
        let fatal = fatal::error_event(message, self.framework_id.as_deref(), &self.facts);
        self.fatal(fatal)
    }

    fn subscribed(&mut self, event: scheduler::Event) -> Vec<Action> {
        let Some(subscribed) = event
            .subscribed
            .filter(|s| !s.framework_id.value.is_empty())
        else {
            return self.stream_lost("SUBSCRIBED came without a framework id".into());
        };
        let opening = self.opening.take().expect("checked by the caller");
        let assigned = subscribed.framework_id.value;
        if let Some(ours) = &self.framework_id
            && *ours != assigned
        {
            let fatal = fatal::id_changed(ours, &assigned, &self.facts);
            return self.fatal(fatal);
        }
        self.framework_id = Some(assigned.clone());
        self.masters.subscribed(&opening.master);
        self.backoff.reset();
        self.attempt = 0;
        self.redirects = 0;
        self.last_error = None;
        let interval = heartbeat_interval(subscribed.heartbeat_interval_seconds);
        self.state = ConnectionState::Subscribed {
            framework_id: assigned.clone(),
            stream_id: opening.stream_id,
            master: opening.master.clone(),
        };
        vec![
            Action::ArmWatchdog(silence_window(interval, self.heartbeat_misses)),
            Action::Emit(MesosEvent::Subscribed {
                framework_id: assigned,
                master: opening.master,
                heartbeat_interval: interval,
            }),
        ]
    }

    fn stream_lost(&mut self, reason: String) -> Vec<Action> {
        if let Some(opening) = self.opening.take() {
            // Answered 200 but never became a subscription.
            self.masters.failed(&opening.master);
            let mut actions = vec![Action::CloseStream];
            actions.extend(self.retry(format!("{}: {reason}", opening.master)));
            return actions;
        }
        let ConnectionState::Subscribed { master, .. } = &self.state else {
            return Vec::new();
        };
        let error = format!("the subscription with {master} was lost: {reason}");
        let mut actions = vec![
            Action::CloseStream,
            Action::Emit(MesosEvent::Disconnected { reason }),
        ];
        actions.extend(self.retry(error));
        actions
    }
}

#[cfg(test)]
mod tests {
    use fastdata_proto::v1::{AgentId, FrameworkId, MasterInfo, Offer, OfferId};
    use scheduler::event;

    use super::*;

    const M1: &str = "http://m1:5050";
    const M2: &str = "http://m2:5050";
    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn setup(framework_id: Option<&str>) -> ConnectionSetup {
        ConnectionSetup {
            masters: vec![M1.into(), M2.into()],
            framework_info: FrameworkInfo {
                user: "nobody".into(),
                name: "fastdata".into(),
                principal: Some("fastdata-principal".into()),
                roles: vec!["fastdata-role".into()],
                ..Default::default()
            },
            framework_id: framework_id.map(String::from),
            heartbeat_misses: 5,
            backoff_min: MS(100),
            backoff_max: MS(1000),
            first_event_timeout: Duration::from_secs(10),
            auth: AuthKind::None,
            seed: 7,
        }
    }

    fn ev(kind: event::Type) -> Input {
        Input::Event(Box::new(scheduler::Event {
            r#type: Some(kind as i32),
            ..Default::default()
        }))
    }

    fn subscribed_event(id: &str, interval: Option<f64>) -> Input {
        Input::Event(Box::new(scheduler::Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                framework_id: FrameworkId { value: id.into() },
                heartbeat_interval_seconds: interval,
                master_info: Some(MasterInfo::default()),
            }),
            ..Default::default()
        }))
    }

    fn error_event(message: &str) -> Input {
        Input::Event(Box::new(scheduler::Event {
            r#type: Some(event::Type::Error as i32),
            error: Some(event::Error {
                message: message.into(),
            }),
            ..Default::default()
        }))
    }

    fn offers_event() -> scheduler::Event {
        scheduler::Event {
            r#type: Some(event::Type::Offers as i32),
            offers: Some(event::Offers {
                offers: vec![Offer {
                    id: OfferId { value: "o1".into() },
                    agent_id: AgentId { value: "a1".into() },
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }
    }

    /// A compact view of actions for table assertions.
    fn show(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Subscribe { master, call } => format!(
                    "subscribe {master} as {}",
                    call.framework_id
                        .as_ref()
                        .map_or("new", |id| id.value.as_str())
                ),
                // Jittered: tests check the delay itself with `waits`.
                Action::Wait(_) => "wait".into(),
                Action::ArmWatchdog(d) => format!("watchdog {}s", d.as_secs_f64()),
                Action::Emit(MesosEvent::Subscribed {
                    framework_id,
                    master,
                    heartbeat_interval,
                }) => format!(
                    "emit subscribed {framework_id} at {master} every {}s",
                    heartbeat_interval.as_secs_f64()
                ),
                Action::Emit(MesosEvent::Event(e)) => {
                    format!("emit event {}", e.r#type.unwrap_or(0))
                }
                Action::Emit(MesosEvent::Disconnected { reason }) => {
                    format!("emit disconnected: {reason}")
                }
                Action::Emit(MesosEvent::Fatal(f)) => format!("emit fatal: {}", f.message),
                Action::CloseStream => "close".into(),
                Action::Stop => "stop".into(),
            })
            .collect()
    }

    /// The delay of the (one) Wait among `actions`.
    fn waits(actions: &[Action]) -> Duration {
        match actions.iter().find_map(|a| match a {
            Action::Wait(d) => Some(*d),
            _ => None,
        }) {
            Some(d) => d,
            None => panic!("no wait in {actions:?}"),
        }
    }

    /// The bounds of the n-th consecutive failure's delay (min 100 ms, max 1 s): the
    /// ceiling `100 ms · 2ⁿ` jittered by ±50 %, clamped.
    fn within_backoff(n: u32, d: Duration) -> bool {
        let ceiling = (100 * 2u64.pow(n)).min(1000);
        let lo = (ceiling / 2).max(100);
        let hi = (ceiling * 3 / 2).min(1000);
        (MS(lo)..=MS(hi)).contains(&d)
    }

    fn opened(master: &str, stream: &str) -> Input {
        Input::StreamOpened {
            master: master.into(),
            stream_id: stream.into(),
        }
    }

    fn failed(master: &str, failure: SubscribeFailure) -> Input {
        Input::SubscribeFailed {
            master: master.into(),
            failure,
        }
    }

    fn subscribe(c: &mut Connection, master: &str, stream: &str, id: &str) {
        assert_eq!(
            show(&c.step(Input::Connect))[0],
            format!(
                "subscribe {master} as {}",
                c.framework_id().unwrap_or("new")
            )
        );
        c.step(opened(master, stream));
        let actions = show(&c.step(subscribed_event(id, Some(1.0))));
        assert_eq!(
            actions[1],
            format!("emit subscribed {id} at {master} every 1s")
        );
    }

    #[test]
    fn first_subscription_then_events_flow() {
        let mut c = Connection::new(setup(None));
        assert_eq!(c.state(), &ConnectionState::Disconnected);
        assert_eq!(
            show(&c.step(Input::Connect)),
            vec!["subscribe http://m1:5050 as new"]
        );
        assert_eq!(
            c.state(),
            &ConnectionState::Subscribing {
                attempt: 1,
                last_error: None
            }
        );
        assert_eq!(show(&c.step(opened(M1, "s1"))), vec!["watchdog 10s"]);
        assert_eq!(
            show(&c.step(subscribed_event("fw-1", Some(15.0)))),
            vec![
                "watchdog 75s",
                "emit subscribed fw-1 at http://m1:5050 every 15s"
            ]
        );
        assert_eq!(
            c.state(),
            &ConnectionState::Subscribed {
                framework_id: "fw-1".into(),
                stream_id: "s1".into(),
                master: M1.into()
            }
        );
        assert!(c.step(ev(event::Type::Heartbeat)).is_empty());
        assert_eq!(
            show(&c.step(Input::Event(Box::new(offers_event())))),
            vec!["emit event 2"]
        );
        // Unknown types (a newer master) and UNKNOWN are ignored, not fatal.
        let unknown = scheduler::Event {
            r#type: Some(99),
            ..Default::default()
        };
        assert!(c.step(Input::Event(Box::new(unknown.clone()))).is_empty());
        assert!(c.step(Input::Event(Box::new(unknown))).is_empty());
        assert!(c.step(ev(event::Type::Unknown)).is_empty());
        assert!(matches!(c.state(), ConnectionState::Subscribed { .. }));
    }

    #[test]
    fn reconnects_with_the_assigned_id_and_a_new_stream() {
        let mut c = Connection::new(setup(None));
        subscribe(&mut c, M1, "s1", "fw-1");
        let actions = c.step(Input::StreamLost {
            reason: "the master closed the stream".into(),
        });
        assert_eq!(
            show(&actions),
            vec![
                "close",
                "emit disconnected: the master closed the stream",
                "wait"
            ]
        );
        assert!(within_backoff(0, waits(&actions)), "{actions:?}");
        assert!(matches!(
            c.state(),
            ConnectionState::Subscribing { attempt: 0, last_error: Some(e) } if e.contains("lost")
        ));
        // Same master first, with the framework id in the call.
        assert_eq!(
            show(&c.step(Input::Connect)),
            vec!["subscribe http://m1:5050 as fw-1"]
        );
        c.step(opened(M1, "s2"));
        c.step(subscribed_event("fw-1", None));
        assert_eq!(
            c.state(),
            &ConnectionState::Subscribed {
                framework_id: "fw-1".into(),
                stream_id: "s2".into(),
                master: M1.into()
            }
        );
    }

    #[test]
    fn the_call_carries_the_id_in_both_places() {
        let mut c = Connection::new(setup(Some("fw-zk")));
        let actions = c.step(Input::Connect);
        let Action::Subscribe { call, .. } = &actions[0] else {
            panic!("{actions:?}")
        };
        let id = Some(FrameworkId {
            value: "fw-zk".into(),
        });
        assert_eq!(call.framework_id, id);
        assert_eq!(call.subscribe.as_ref().unwrap().framework_info.id, id);
    }

    #[test]
    fn failures_rotate_masters_with_growing_jittered_backoff() {
        let mut c = Connection::new(setup(None));
        let mut targets = Vec::new();
        let answers = [
            SubscribeFailure::Unreachable("connection refused".into()),
            SubscribeFailure::Unavailable {
                status: 503,
                body: "No leader elected".into(),
            },
            SubscribeFailure::Unavailable {
                status: 404,
                body: "404 Not Found.".into(),
            },
            SubscribeFailure::Protocol("no stream id".into()),
        ];
        for (n, answer) in answers.into_iter().enumerate() {
            let target = match &c.step(Input::Connect)[0] {
                Action::Subscribe { master, .. } => master.clone(),
                other => panic!("{other:?}"),
            };
            targets.push(target.clone());
            let actions = c.step(failed(&target, answer));
            assert_eq!(show(&actions), vec!["wait"]);
            let delay = waits(&actions);
            assert!(within_backoff(n as u32, delay), "failure {n}: {delay:?}");
        }
        assert_eq!(targets, vec![M1, M2, M1, M2]);
        assert!(matches!(
            c.state(),
            ConnectionState::Subscribing { attempt: 4, last_error: Some(e) } if e.contains("no stream id")
        ));
        // A subscription resets the backoff and the attempt count.
        c.step(Input::Connect);
        c.step(opened(M1, "s"));
        c.step(subscribed_event("fw", None));
        let again = c.step(Input::StreamLost { reason: "x".into() });
        assert!(within_backoff(0, waits(&again)), "{again:?}");
        let ConnectionState::Subscribing { attempt, .. } = c.state() else {
            panic!()
        };
        assert_eq!(*attempt, 0);
    }

    #[test]
    fn every_backoff_stays_within_min_and_max() {
        let mut c = Connection::new(setup(None));
        for i in 0..200 {
            let master = match &c.step(Input::Connect)[0] {
                Action::Subscribe { master, .. } => master.clone(),
                other => panic!("{other:?}"),
            };
            let actions = c.step(failed(&master, SubscribeFailure::Unreachable("x".into())));
            let [Action::Wait(d)] = actions.as_slice() else {
                panic!("{actions:?}")
            };
            assert!((MS(100)..=MS(1000)).contains(d), "attempt {i}: {d:?}");
        }
    }

    #[test]
    fn redirects_are_followed_at_once_and_remembered() {
        let mut c = Connection::new(setup(None));
        c.step(Input::Connect);
        let actions = show(&c.step(failed(
            M1,
            SubscribeFailure::Redirect {
                leader: "http://localhost:5051".into(),
            },
        )));
        assert_eq!(actions, vec!["subscribe http://localhost:5051 as new"]);
        c.step(opened("http://localhost:5051", "s1"));
        c.step(subscribed_event("fw", Some(1.0)));
        assert!(matches!(
            c.state(),
            ConnectionState::Subscribed { master, .. } if master == "http://localhost:5051"
        ));
        // After a disconnection the leader is tried first.
        c.step(Input::StreamLost {
            reason: "eof".into(),
        });
        assert_eq!(
            show(&c.step(Input::Connect)),
            vec!["subscribe http://localhost:5051 as fw"]
        );
        // It is gone: back to the configured masters (m1 redirected before, so the next
        // one is m1 again: the leader hint was not a configured master).
        let actions = show(&c.step(failed(
            "http://localhost:5051",
            SubscribeFailure::Unreachable("refused".into()),
        )));
        assert_eq!(actions.len(), 1);
        assert_eq!(
            show(&c.step(Input::Connect)),
            vec!["subscribe http://m1:5050 as fw"]
        );
    }

    #[test]
    fn redirect_loops_end_in_a_wait() {
        let mut c = Connection::new(setup(None));
        c.step(Input::Connect);
        let mut followed = 0;
        loop {
            let target = if followed % 2 == 0 { M2 } else { M1 };
            let actions = c.step(failed(
                if followed % 2 == 0 { M1 } else { M2 },
                SubscribeFailure::Redirect {
                    leader: target.into(),
                },
            ));
            match actions.as_slice() {
                [Action::Subscribe { .. }] => followed += 1,
                [Action::Wait(_)] => break,
                other => panic!("{other:?}"),
            }
            assert!(
                followed <= MAX_REDIRECTS_IN_A_ROW,
                "no end to the ping-pong"
            );
        }
        assert_eq!(followed, MAX_REDIRECTS_IN_A_ROW);
        assert!(matches!(
            c.state(),
            ConnectionState::Subscribing { last_error: Some(e), .. } if e.contains("keep redirecting")
        ));
    }

    #[test]
    fn refusals_are_fatal_and_final() {
        let table = [
            (
                SubscribeFailure::Unauthorized {
                    body: "401 Unauthorized.".into(),
                },
                "--mesos-secret-file",
            ),
            (
                SubscribeFailure::Refused {
                    status: 400,
                    body: "Failed to validate scheduler::Call: Authenticated principal 'a' does not match principal 'b' set in `FrameworkInfo`".into(),
                },
                "--principal",
            ),
            (
                SubscribeFailure::Refused {
                    status: 403,
                    body: String::new(),
                },
                "dcos:mesos:master:framework:role",
            ),
            (
                SubscribeFailure::LoginRefused {
                    status: 401,
                    body: "bad signature".into(),
                },
                "DCOS_SERVICE_ACCOUNT_CREDENTIAL",
            ),
        ];
        for (failure, in_remedy) in table {
            let mut c = Connection::new(setup(None));
            c.step(Input::Connect);
            let actions = c.step(failed(M1, failure.clone()));
            assert_eq!(show(&actions)[0], "close");
            let Some(Action::Emit(MesosEvent::Fatal(fatal))) = actions.get(1) else {
                panic!("{failure:?}: {actions:?}")
            };
            assert!(
                fatal.remedy.contains(in_remedy),
                "{failure:?}: {}",
                fatal.remedy
            );
            assert!(matches!(actions.last(), Some(Action::Stop)));
            assert!(c.is_finished());
            // Nothing brings it back.
            assert!(c.step(Input::Connect).is_empty());
            assert!(matches!(c.state(), ConnectionState::Fatal(_)));
        }
    }

    #[test]
    fn login_trouble_retries_without_blaming_the_master() {
        let mut c = Connection::new(setup(None));
        c.step(Input::Connect);
        let actions = c.step(failed(
            M1,
            SubscribeFailure::LoginUnavailable("IAM down".into()),
        ));
        assert!(matches!(actions.as_slice(), [Action::Wait(_)]));
        assert_eq!(
            show(&c.step(Input::Connect)),
            vec!["subscribe http://m1:5050 as new"]
        );
    }

    #[test]
    fn error_events_are_fatal_before_and_after_subscribed() {
        // First event ERROR: a removed framework re-subscribing.
        let mut c = Connection::new(setup(Some("fw-old")));
        c.step(Input::Connect);
        c.step(opened(M1, "s1"));
        let actions = c.step(error_event("Framework has been removed"));
        assert_eq!(
            show(&actions),
            vec![
                "close",
                "emit fatal: Mesos sent ERROR: Framework has been removed",
                "stop"
            ]
        );
        let ConnectionState::Fatal(fatal) = c.state() else {
            panic!()
        };
        assert!(fatal.remedy.contains("/dcos-service-fastdata"));
        assert!(fatal.remedy.contains("fw-old"));

        // ERROR while subscribed: another instance took over.
        let mut c = Connection::new(setup(None));
        subscribe(&mut c, M1, "s1", "fw-1");
        let actions = show(&c.step(error_event("Framework failed over")));
        assert_eq!(
            actions[1],
            "emit fatal: Mesos sent ERROR: Framework failed over"
        );
        assert!(c.is_finished());
    }

    #[test]
    fn a_first_event_other_than_subscribed_is_a_broken_stream() {
        let mut c = Connection::new(setup(None));
        c.step(Input::Connect);
        c.step(opened(M1, "s1"));
        let actions = show(&c.step(ev(event::Type::Heartbeat)));
        assert_eq!(actions[0], "close");
        assert!(actions[1].starts_with("wait"), "{actions:?}");
        assert!(matches!(
            c.state(),
            ConnectionState::Subscribing { last_error: Some(e), .. } if e.contains("not SUBSCRIBED")
        ));
        // And the next master is tried.
        assert_eq!(
            show(&c.step(Input::Connect)),
            vec!["subscribe http://m2:5050 as new"]
        );
    }

    #[test]
    fn garbage_events_drop_the_stream() {
        let mut c = Connection::new(setup(None));
        subscribe(&mut c, M1, "s1", "fw");
        // OFFERS without offers would leave the run loop guessing.
        let actions = show(&c.step(ev(event::Type::Offers)));
        assert_eq!(actions[0], "close");
        assert!(
            actions[1].contains("of type OFFERS came without its payload"),
            "{actions:?}"
        );
        // SUBSCRIBED without a framework id never makes a subscription.
        let mut c = Connection::new(setup(None));
        c.step(Input::Connect);
        c.step(opened(M1, "s1"));
        let actions = show(&c.step(ev(event::Type::Subscribed)));
        assert_eq!(actions[0], "close");
        assert!(!matches!(c.state(), ConnectionState::Subscribed { .. }));
    }

    #[test]
    fn another_framework_id_is_fatal() {
        let mut c = Connection::new(setup(Some("fw-1")));
        c.step(Input::Connect);
        c.step(opened(M1, "s1"));
        let actions = show(&c.step(subscribed_event("fw-2", None)));
        assert!(
            actions[1].contains("answered with framework fw-2"),
            "{actions:?}"
        );
        assert!(c.is_finished());
    }

    #[test]
    fn a_403_on_the_current_stream_resubscribes_and_a_stale_one_does_not() {
        let mut c = Connection::new(setup(None));
        subscribe(&mut c, M1, "s1", "fw");
        let stale = c.step(Input::CallLost {
            stream_id: "s0".into(),
            reason: "Framework is not subscribed".into(),
            leader: None,
        });
        assert!(stale.is_empty());
        let lost = show(&c.step(Input::CallLost {
            stream_id: "s1".into(),
            reason: "403 Framework is not subscribed".into(),
            leader: Some("http://m9:5050".into()),
        }));
        assert_eq!(lost[0], "close");
        assert_eq!(
            lost[1],
            "emit disconnected: 403 Framework is not subscribed"
        );
        // A 307 on a call names the leader: it is tried first.
        assert_eq!(
            show(&c.step(Input::Connect)),
            vec!["subscribe http://m9:5050 as fw"]
        );
    }

    #[test]
    fn shutdown_and_teardown_stop_from_any_state() {
        for input in [Input::Shutdown, Input::TornDown] {
            let mut c = Connection::new(setup(None));
            subscribe(&mut c, M1, "s1", "fw");
            assert_eq!(show(&c.step(input.clone())), vec!["close", "stop"]);
            assert_eq!(c.state(), &ConnectionState::Stopped);
            assert!(
                c.step(Input::StreamLost {
                    reason: "eof".into()
                })
                .is_empty()
            );

            let mut waiting = Connection::new(setup(None));
            waiting.step(Input::Connect);
            waiting.step(failed(M1, SubscribeFailure::Unreachable("x".into())));
            assert_eq!(show(&waiting.step(input)), vec!["close", "stop"]);
            assert!(waiting.step(Input::Connect).is_empty());
        }
    }

    #[test]
    fn events_of_an_abandoned_stream_are_ignored() {
        let mut c = Connection::new(setup(None));
        c.step(Input::Connect);
        c.step(failed(M1, SubscribeFailure::Unreachable("x".into())));
        assert!(c.step(Input::Event(Box::new(offers_event()))).is_empty());
        assert!(
            c.step(Input::StreamLost {
                reason: "late".into()
            })
            .is_empty()
        );
    }

    #[test]
    fn masters_rotation() {
        let mut m = Masters::new(vec![M1.into(), M2.into(), "http://m3:5050".into()]);
        assert_eq!(m.target(), M1);
        m.failed(M1);
        assert_eq!(m.target(), M2);
        m.redirected(M1.into());
        assert_eq!(m.target(), M1);
        // The leader hint m1 fails; m2 was next in line and stays so.
        m.failed(M1);
        assert_eq!(m.target(), M2);
        m.subscribed(M2);
        m.failed(M2);
        assert_eq!(m.target(), "http://m3:5050", "the dead leader is skipped");
        m.failed("http://m3:5050");
        assert_eq!(m.target(), M1, "wraps around");
    }
}
