//! The subscription to the agent as an explicit state machine.
//!
//! `Disconnected → Subscribing → Subscribed → Disconnected …`, following Mesos' executor
//! library (reference 3.5, M: src/executor/executor.cpp `disconnected`/`backoff`):
//!
//! - A broken subscription of a checkpointing framework starts **one** recovery timer of
//!   `MESOS_RECOVERY_TIMEOUT` (further failed attempts do not restart it) and re-subscribes
//!   after random waits; a successful SUBSCRIBED cancels the timer; its expiry means giving
//!   up. The waits are drawn from `[0, MESOS_SUBSCRIPTION_BACKOFF_MAX / 2)` rather than up to
//!   the maximum: a restarted agent waits exactly that maximum for its executors before
//!   destroying them, and halving it puts at least two attempts into that window even when a
//!   loaded machine delays one.
//! - Without checkpointing the executor dies with its agent, so a broken subscription means
//!   giving up at once.
//! - Before the first SUBSCRIBED (the agent may answer 503 while it recovers, or the
//!   listener may not be up yet) attempts are retried the same way, for at most the recovery
//!   timeout, or [`FIRST_SUBSCRIBE_WINDOW`] without checkpointing (the agent kills an
//!   executor that has not subscribed within `--executor_registration_timeout`, 1 min).
//!
//! Every attempt gets a fresh [`ConnId`]; news about an older one is stale and ignored, so a
//! slow answer from a dead connection can never disturb the current one. Pure: time and the
//! random draw come in as arguments.

use std::time::Duration;

use tokio::time::Instant;

use crate::env::Recovery;

/// How long the first subscription may take without checkpointing (the agent's default
/// `--executor_registration_timeout`).
pub const FIRST_SUBSCRIBE_WINDOW: Duration = Duration::from_secs(60);

/// Longest wait between first-subscription attempts without checkpointing (there is no
/// `MESOS_SUBSCRIPTION_BACKOFF_MAX` then; this is Mesos' default for it).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Identifies one subscription attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Where the subscription is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not connected; the next attempt is due at `retry_at` (`None`: none will be made).
    Disconnected {
        /// When to try again.
        retry_at: Option<Instant>,
    },
    /// SUBSCRIBE sent, SUBSCRIBED not yet received.
    Subscribing(ConnId),
    /// SUBSCRIBED received on this connection.
    Subscribed(ConnId),
}

/// What losing a connection means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// News about an old connection: nothing changes.
    Stale,
    /// Try again at this time.
    Retry(Instant),
    /// Stop trying; the text says why.
    GiveUp(String),
}

/// The subscription state machine.
#[derive(Debug, Clone)]
pub struct Connection {
    link: Link,
    recovery: Recovery,
    ever_subscribed: bool,
    /// Give up if not subscribed again by then.
    deadline: Option<Instant>,
    next_id: u64,
    gave_up: bool,
}

impl Connection {
    /// A connection that has not tried yet.
    pub fn new(recovery: Recovery) -> Self {
        Connection {
            link: Link::Disconnected { retry_at: None },
            recovery,
            ever_subscribed: false,
            deadline: None,
            next_id: 0,
            gave_up: false,
        }
    }

    /// Where it is.
    pub fn link(&self) -> Link {
        self.link
    }

    /// True while SUBSCRIBED holds on the current connection.
    pub fn is_subscribed(&self) -> bool {
        matches!(self.link, Link::Subscribed(_))
    }

    /// True when `conn` is the connection being made or in use.
    pub fn is_current(&self, conn: ConnId) -> bool {
        matches!(self.link, Link::Subscribing(c) | Link::Subscribed(c) if c == conn)
    }

    /// True once it stopped trying for good.
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// Starts an attempt now: the caller sends SUBSCRIBE on it.
    pub fn attempt(&mut self, now: Instant) -> ConnId {
        if self.deadline.is_none() && !self.ever_subscribed {
            self.deadline = Some(now + self.first_window());
        }
        self.next_id += 1;
        let id = ConnId(self.next_id);
        self.link = Link::Subscribing(id);
        id
    }

    /// SUBSCRIBED arrived on `conn`. `false` if it is stale.
    pub fn subscribed(&mut self, conn: ConnId) -> bool {
        if !self.is_current(conn) {
            return false;
        }
        self.link = Link::Subscribed(conn);
        self.ever_subscribed = true;
        self.deadline = None;
        true
    }

    /// The attempt failed or the stream ended, on `conn`. `jitter` is a draw from `[0, 1)`.
    pub fn lost(&mut self, conn: ConnId, now: Instant, jitter: f64) -> Lost {
        if !self.is_current(conn) {
            return Lost::Stale;
        }
        let (timeout, backoff_max) = match self.recovery {
            Recovery::Exit if self.ever_subscribed => {
                return self.give_up(
                    "the connection to the agent broke and the framework does not checkpoint, \
                     so this executor does not outlive its agent"
                        .to_owned(),
                );
            }
            Recovery::Exit => (FIRST_SUBSCRIBE_WINDOW, DEFAULT_BACKOFF_MAX),
            Recovery::Checkpointed {
                timeout,
                backoff_max,
            } => (timeout, backoff_max),
        };
        let deadline = *self.deadline.get_or_insert(now + timeout);
        if now >= deadline {
            return self.give_up(format!(
                "could not subscribe to the agent within {}",
                humantime(timeout)
            ));
        }
        let wait = backoff_max.mul_f64(jitter.clamp(0.0, 1.0) / 2.0);
        let retry_at = (now + wait).min(deadline);
        self.link = Link::Disconnected {
            retry_at: Some(retry_at),
        };
        Lost::Retry(retry_at)
    }

    /// Time passed: `Some(conn)` when an attempt is due now (the caller sends SUBSCRIBE),
    /// `Err` when the recovery timeout ran out.
    pub fn tick(&mut self, now: Instant) -> Result<Option<ConnId>, String> {
        let Link::Disconnected {
            retry_at: Some(retry_at),
        } = self.link
        else {
            return Ok(None);
        };
        if let Some(deadline) = self.deadline
            && now >= deadline
        {
            let timeout = match self.recovery {
                Recovery::Checkpointed { timeout, .. } => timeout,
                Recovery::Exit => FIRST_SUBSCRIBE_WINDOW,
            };
            return match self.give_up(format!(
                "could not subscribe to the agent within {}",
                humantime(timeout)
            )) {
                Lost::GiveUp(why) => Err(why),
                _ => Ok(None),
            };
        }
        if now >= retry_at {
            return Ok(Some(self.attempt(now)));
        }
        Ok(None)
    }

    /// Stops any further attempt (shutting down).
    pub fn close(&mut self) {
        self.link = Link::Disconnected { retry_at: None };
    }

    /// Gives up for a reason found elsewhere (the agent refused us): no further attempt, and
    /// nothing more can be delivered.
    pub fn abandon(&mut self) {
        self.gave_up = true;
        self.close();
    }

    /// The next time [`Connection::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.link {
            Link::Disconnected {
                retry_at: Some(at), ..
            } => Some(self.deadline.map_or(at, |d| d.min(at))),
            _ => None,
        }
    }

    fn first_window(&self) -> Duration {
        match self.recovery {
            Recovery::Checkpointed { timeout, .. } => timeout,
            Recovery::Exit => FIRST_SUBSCRIBE_WINDOW,
        }
    }

    fn give_up(&mut self, why: String) -> Lost {
        self.gave_up = true;
        self.link = Link::Disconnected { retry_at: None };
        Lost::GiveUp(why)
    }
}

/// `15mins`-style text for log lines and messages.
pub fn humantime(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms >= 60_000 {
        format!("{} min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKPOINTED: Recovery = Recovery::Checkpointed {
        timeout: Duration::from_secs(10),
        backoff_max: Duration::from_secs(2),
    };

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn checkpointed_retries_within_half_the_backoff_until_the_recovery_timeout() {
        let t0 = Instant::now();
        let mut c = Connection::new(CHECKPOINTED);
        let first = c.attempt(t0);
        assert!(c.subscribed(first));
        assert!(c.is_subscribed());

        // The stream ends at t0+1s: the recovery timer (10 s) starts then.
        let lost_at = t0 + secs(1.0);
        let (mut now, mut conn, mut attempts) = (lost_at, first, 0);
        let jitters = [0.0, 0.5, 0.999, 0.3, 0.9, 0.1];
        loop {
            let jitter = jitters[attempts % jitters.len()];
            let at = match c.lost(conn, now, jitter) {
                Lost::Retry(at) => at,
                Lost::GiveUp(why) => {
                    assert!(now >= lost_at + secs(10.0), "gave up early: {why}");
                    assert!(why.contains("10 s"), "{why}");
                    break;
                }
                Lost::Stale => panic!("current connection"),
            };
            assert!(at - now <= secs(1.0), "at most half of backoff_max");
            assert!(
                at <= lost_at + secs(10.0),
                "never past the recovery deadline"
            );
            assert_eq!(c.next_deadline(), Some(at));
            if at > now {
                assert_eq!(c.tick(now), Ok(None), "not before its time");
            }
            now = at;
            match c.tick(now) {
                Ok(Some(next)) => {
                    assert_ne!(next, conn, "a new connection id each time");
                    conn = next;
                    attempts += 1;
                }
                Err(why) => {
                    assert!(now >= lost_at + secs(10.0), "gave up early: {why}");
                    break;
                }
                Ok(None) => panic!("an attempt is due at {at:?}"),
            }
        }
        assert!(attempts >= 10, "only {attempts} attempts");
        assert!(c.gave_up());
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn subscribing_again_cancels_the_recovery_timer() {
        let t0 = Instant::now();
        let mut c = Connection::new(CHECKPOINTED);
        let a = c.attempt(t0);
        c.subscribed(a);
        let Lost::Retry(at) = c.lost(a, t0 + secs(1.0), 0.5) else {
            panic!()
        };
        let b = c.tick(at).unwrap().unwrap();
        assert!(c.subscribed(b));
        // Lost again 20 s later: a fresh 10 s timer, not the old one.
        assert!(matches!(c.lost(b, t0 + secs(21.0), 0.5), Lost::Retry(_)));
    }

    #[test]
    fn news_about_old_connections_is_stale() {
        let t0 = Instant::now();
        let mut c = Connection::new(CHECKPOINTED);
        let a = c.attempt(t0);
        c.subscribed(a);
        let Lost::Retry(at) = c.lost(a, t0, 0.2) else {
            panic!()
        };
        let b = c.tick(at).unwrap().unwrap();
        assert_eq!(c.lost(a, at, 0.2), Lost::Stale);
        assert!(!c.subscribed(a));
        assert!(c.subscribed(b));
    }

    #[test]
    fn without_checkpointing_a_broken_subscription_gives_up_at_once() {
        let t0 = Instant::now();
        let mut c = Connection::new(Recovery::Exit);
        let a = c.attempt(t0);
        // Before the first SUBSCRIBED, refusals are retried (agent not ready yet).
        let Lost::Retry(at) = c.lost(a, t0, 0.99) else {
            panic!("first subscription is retried")
        };
        assert!(at - t0 < DEFAULT_BACKOFF_MAX);
        let b = c.tick(at).unwrap().unwrap();
        assert!(c.subscribed(b));
        let Lost::GiveUp(why) = c.lost(b, at + secs(5.0), 0.5) else {
            panic!("must give up")
        };
        assert!(why.contains("does not checkpoint"), "{why}");
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn a_first_subscription_that_never_works_gives_up_after_the_window() {
        let t0 = Instant::now();
        let mut c = Connection::new(Recovery::Exit);
        let mut conn = c.attempt(t0);
        let mut now = t0;
        loop {
            match c.lost(conn, now, 0.99) {
                Lost::Retry(at) => {
                    now = at;
                    match c.tick(now) {
                        Ok(Some(next)) => conn = next,
                        Ok(None) => panic!("due"),
                        Err(_) => break,
                    }
                }
                Lost::GiveUp(_) => break,
                Lost::Stale => panic!(),
            }
        }
        assert!(now >= t0 + FIRST_SUBSCRIBE_WINDOW);
        assert!(now < t0 + FIRST_SUBSCRIBE_WINDOW + DEFAULT_BACKOFF_MAX);
    }

    #[test]
    fn closing_stops_the_attempts() {
        let t0 = Instant::now();
        let mut c = Connection::new(CHECKPOINTED);
        let a = c.attempt(t0);
        c.lost(a, t0, 0.5);
        c.close();
        assert_eq!(c.next_deadline(), None);
        assert_eq!(c.tick(t0 + secs(100.0)), Ok(None));
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(humantime(Duration::from_secs(900)), "15 min");
        assert_eq!(humantime(Duration::from_secs(2)), "2 s");
        assert_eq!(humantime(Duration::from_millis(1500)), "1500 ms");
    }
}
