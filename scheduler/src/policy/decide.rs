//! [`decide`]: one observation in, one [`Decision`] and the next [`PolicyState`] out.
//!
//! Pure: the caller passes the time, and the state comes back as a value. The order of the
//! rules is the order of the code in `evaluate`: bounds, stale data, rebalancing, the mode's
//! recommendation, then the guards on the direction of the change.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::config::{ScalingConfig, ScalingMode};
use super::{consumers, count, per_sec, secs};
use crate::lag::LagObservation;

/// What the policy needs from one lag observation plus what the scheduler knows about its
/// consumers. Small on purpose: it is stored with every audited decision.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScalingInput {
    /// When the offsets were sampled; `None` if never.
    #[serde(skip)]
    pub at: Option<Instant>,
    /// The same moment, wall clock, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Consumer tasks the scheduler has running.
    pub consumers: u32,
    /// Consumers that report failing sink (Cassandra) writes.
    pub unhealthy_consumers: u32,
    /// Partitions of the topic (0 when unknown).
    pub partitions: u32,
    /// Total lag (messages).
    pub total_lag: u64,
    /// Lag net of commit timing (see [`LagObservation::backlog`]); what the thresholds apply to.
    pub backlog: u64,
    /// The backlog is settled (the samples span the settle window).
    pub backlog_settled: bool,
    /// Partitions with a backlog.
    pub backlogged_partitions: u32,
    /// Produce rate over the rate window (messages/s).
    pub produce_rate: Option<f64>,
    /// Produce rate over the recent window (messages/s).
    pub produce_rate_recent: Option<f64>,
    /// Consume (commit) rate over the rate window (messages/s).
    pub consume_rate: Option<f64>,
    /// The rate window spans its configured length.
    pub rate_window_full: bool,
    /// When the rate window starts.
    #[serde(skip)]
    pub rate_window_start: Option<Instant>,
    /// Members of the consumer group, when known.
    pub group_members: Option<u32>,
    /// The group is rebalancing.
    pub rebalancing: bool,
    /// Why the observation is stale, if it is.
    pub stale: Option<String>,
}

impl ScalingInput {
    /// The policy's view of `observation`, with the scheduler's consumer count and the number
    /// of consumers reporting an unhealthy sink.
    pub fn new(
        observation: &LagObservation,
        consumers: u32,
        unhealthy_consumers: u32,
    ) -> ScalingInput {
        ScalingInput {
            at: observation.at,
            at_unix_ms: observation.at_unix_ms,
            consumers,
            unhealthy_consumers,
            partitions: observation.partitions.len() as u32,
            total_lag: observation.total_lag,
            backlog: observation.backlog,
            backlog_settled: observation.backlog_settled,
            backlogged_partitions: observation.backlogged_partitions,
            produce_rate: observation.produce_rate,
            produce_rate_recent: observation.produce_rate_recent,
            consume_rate: observation.consume_rate,
            rate_window_full: observation.rate_window_full,
            rate_window_start: observation.rate_window_start,
            group_members: observation.group.map(|g| g.members),
            rebalancing: observation.rebalancing,
            stale: observation.stale.as_ref().map(|s| s.reason.clone()),
        }
    }
}

/// Direction of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Keep the count.
    Hold,
    /// Add consumers.
    ScaleUp,
    /// Remove consumers.
    ScaleDown,
}

/// The guard that held a change back (or capped it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    /// The observation is stale or too old.
    Stale,
    /// The group is rebalancing.
    Rebalancing,
    /// Consumers report a failing sink: no scale-up.
    SinkUnhealthy,
    /// The consumers of the last change have not joined yet: no second scale-up.
    AwaitingJoin,
    /// Not every sample of the stabilization window agrees on scaling down.
    Stabilizing,
    /// `step` mode acts once per step interval.
    StepInterval,
    /// The count is at `max_consumers` or at the partition count.
    AtLimit,
    /// `proportional` mode has no per-consumer throughput yet.
    Measuring,
    /// The group consumes nothing although it has a backlog: more consumers cannot help.
    NotConsuming,
}

/// What to do, and why in an operator's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The consumer count to run.
    pub target: u32,
    /// The count before this decision.
    pub current: u32,
    /// Hold, scale up or scale down.
    pub action: Action,
    /// The guard that held back or capped the change, if one did.
    pub guard: Option<Guard>,
    /// One sentence with the numbers behind the decision.
    pub reason: String,
}

impl Decision {
    fn hold(current: u32, guard: Option<Guard>, reason: String) -> Decision {
        Decision {
            target: current,
            current,
            action: Action::Hold,
            guard,
            reason,
        }
    }

    fn change(current: u32, target: u32, guard: Option<Guard>, reason: String) -> Decision {
        Decision {
            target,
            current,
            action: if target > current {
                Action::ScaleUp
            } else {
                Action::ScaleDown
            },
            guard,
            reason,
        }
    }

    /// True when the target differs from the current count.
    pub fn is_change(&self) -> bool {
        self.target != self.current
    }
}

/// The last change the policy made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// When.
    pub at: Instant,
    /// Count before.
    pub from: u32,
    /// Count after.
    pub to: u32,
}

/// What one consumer can read per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// Messages per second per consumer.
    pub per_consumer: f64,
    /// Measured while the group had a backlog (so the consumers were busy). Otherwise it is
    /// only a lower bound: idle consumers read as fast as messages arrive, not as fast as they
    /// can.
    pub measured: bool,
}

/// What the policy remembers between decisions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyState {
    target: Option<u32>,
    last_change: Option<Change>,
    settled_at: Option<Instant>,
    last_step_at: Option<Instant>,
    recommendations: VecDeque<(Instant, u32)>,
    recording_since: Option<Instant>,
    capacity: Option<Capacity>,
    /// Since when every counted sample had a backlog above `scale_up_lag`.
    busy_since: Option<Instant>,
}

impl PolicyState {
    /// The count the policy last decided, if it decided anything yet.
    pub fn target(&self) -> Option<u32> {
        self.target
    }

    /// The last change.
    pub fn last_change(&self) -> Option<Change> {
        self.last_change
    }

    /// The per-consumer throughput estimate.
    pub fn capacity(&self) -> Option<Capacity> {
        self.capacity
    }

    /// Resumes at `target` consumers, as a restarted scheduler does with the slots it found:
    /// the next decision starts from that count, not from the consumers running at that moment
    /// (some may still be relaunching).
    pub fn resume(target: u32) -> PolicyState {
        PolicyState {
            target: Some(target),
            ..PolicyState::default()
        }
    }

    /// Starts from a known per-consumer capacity (a restarted scheduler, or a benchmark).
    pub fn with_capacity(mut self, capacity: Capacity) -> PolicyState {
        self.capacity = Some(capacity);
        self
    }

    /// True while a change has been made and the group has not settled on it yet.
    fn awaiting_join(&self) -> bool {
        self.last_change.is_some() && self.settled_at.is_none()
    }

    /// Marks the last change settled once the group shows the new count of members and is
    /// stable, or once the cooldown has passed.
    fn track_settling(&mut self, input: &ScalingInput, config: &ScalingConfig, now: Instant) {
        let Some(change) = self.last_change else {
            return;
        };
        if self.settled_at.is_some() {
            return;
        }
        let members_ok = |m: u32| {
            if change.to >= change.from {
                m >= change.to
            } else {
                m <= change.to
            }
        };
        let joined = !input.rebalancing
            && input.stale.is_none()
            && members_ok(input.consumers)
            && input.group_members.is_none_or(members_ok);
        if joined || now.saturating_duration_since(change.at) >= config.cooldown {
            self.settled_at = Some(now);
        }
    }

    /// Updates the per-consumer throughput from a full rate window of a settled group. It is
    /// a measurement when the backlog stayed above `scale_up_lag` on every partition over the
    /// whole window (no consumer ran dry), else a lower bound: with the backlog on a few
    /// partitions only, the consumers of the others idle and the average says little.
    fn update_capacity(&mut self, input: &ScalingInput, config: &ScalingConfig) {
        if input.backlog > config.scale_up_lag && input.backlogged_partitions >= input.partitions {
            if let Some(at) = input.at {
                self.busy_since.get_or_insert(at);
            }
        } else {
            self.busy_since = None;
        }
        let (Some(consumed), Some(window_start)) = (input.consume_rate, input.rate_window_start)
        else {
            return;
        };
        let settled = match (self.last_change, self.settled_at) {
            (None, _) => true,
            (Some(_), Some(settled_at)) => window_start >= settled_at,
            (Some(_), None) => false,
        };
        if !settled || !input.rate_window_full || input.consumers == 0 {
            return;
        }
        let per_consumer = consumed / f64::from(input.consumers);
        let busy = self.busy_since.is_some_and(|since| since <= window_start);
        self.capacity = Some(match self.capacity {
            _ if busy => Capacity {
                per_consumer,
                measured: true,
            },
            Some(known) if known.per_consumer >= per_consumer => known,
            Some(known) => Capacity {
                per_consumer,
                measured: known.measured,
            },
            None => Capacity {
                per_consumer,
                measured: false,
            },
        });
    }

    /// Records this sample's recommendation for the stabilization window.
    fn record(&mut self, now: Instant, target: u32, window: Duration) {
        self.recording_since.get_or_insert(now);
        self.recommendations.push_back((now, target));
        while self
            .recommendations
            .front()
            .is_some_and(|&(at, _)| now.saturating_duration_since(at) > window)
        {
            self.recommendations.pop_front();
        }
    }

    /// The highest recommendation in the window, and for how long samples have been recorded
    /// since the last change.
    fn stabilized(&self, now: Instant) -> (u32, Duration) {
        let highest = self
            .recommendations
            .iter()
            .map(|&(_, t)| t)
            .max()
            .unwrap_or(u32::MAX);
        let recorded = self
            .recording_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        (highest, recorded)
    }

    fn changed(&mut self, now: Instant, from: u32, to: u32) {
        self.target = Some(to);
        self.last_change = Some(Change { at: now, from, to });
        self.settled_at = None;
        self.recommendations.clear();
        self.recording_since = None;
    }
}

/// Decides the consumer count for one observation. Returns the decision and the state to pass
/// to the next call.
pub fn decide(
    input: &ScalingInput,
    config: &ScalingConfig,
    state: &PolicyState,
    now: Instant,
) -> (Decision, PolicyState) {
    let mut next = state.clone();
    let current = state.target.unwrap_or(input.consumers);
    next.target = Some(current);
    next.track_settling(input, config, now);
    let decision = evaluate(input, config, &mut next, current, now);
    if decision.is_change() {
        next.changed(now, current, decision.target);
        if config.mode == ScalingMode::Step {
            next.last_step_at = Some(now);
        }
    }
    (decision, next)
}

/// The mode's wish before bounds and guards.
struct Recommendation {
    target: u32,
    why: String,
    /// Set when the mode itself cannot recommend (nothing measured, nothing consumed).
    blocked: Option<Guard>,
}

fn evaluate(
    input: &ScalingInput,
    config: &ScalingConfig,
    state: &mut PolicyState,
    current: u32,
    now: Instant,
) -> Decision {
    if config.paused() {
        let why = "paused: min_consumers and max_consumers are 0; raise them to consume again";
        return if current == 0 {
            Decision::hold(current, Some(Guard::AtLimit), why.to_owned())
        } else {
            Decision::change(current, 0, Some(Guard::AtLimit), why.to_owned())
        };
    }
    // Bounds first: they follow from the configuration, not from the lag.
    let partitions = (input.partitions > 0 && input.stale.is_none()).then_some(input.partitions);
    let upper = partitions.map_or(config.max_consumers, |p| p.min(config.max_consumers));
    let lower = config.min_consumers.min(upper);
    if current > config.max_consumers {
        return Decision::change(
            current,
            upper,
            Some(Guard::AtLimit),
            format!(
                "{current} consumers exceed max_consumers {}: scaling down to {upper}",
                config.max_consumers
            ),
        );
    }
    if let Some(p) = partitions
        && current > p
    {
        return Decision::change(
            current,
            upper,
            Some(Guard::AtLimit),
            format!(
                "{current} consumers for {p} partitions: the extra ones would sit idle; scaling down to {upper}"
            ),
        );
    }
    if current < lower {
        return Decision::change(
            current,
            lower,
            None,
            format!(
                "{}, fewer than min_consumers {}: scaling up to {lower}",
                consumers(current),
                config.min_consumers
            ),
        );
    }

    // No change on stale data.
    if let Some(reason) = &input.stale {
        return Decision::hold(
            current,
            Some(Guard::Stale),
            format!("no change: the lag data is stale ({reason})"),
        );
    }
    let Some(at) = input.at else {
        return Decision::hold(
            current,
            Some(Guard::Stale),
            "no change: no lag observation yet".to_owned(),
        );
    };
    let age = now.saturating_duration_since(at);
    if age > config.max_observation_age {
        return Decision::hold(
            current,
            Some(Guard::Stale),
            format!(
                "no change: the latest lag observation is {} old (limit {})",
                secs(age),
                secs(config.max_observation_age)
            ),
        );
    }
    // Samples taken while partitions move say nothing about capacity or backlog.
    if input.rebalancing {
        let members = input
            .group_members
            .map_or(String::new(), |m| format!(" ({m} members)"));
        return Decision::hold(
            current,
            Some(Guard::Rebalancing),
            format!("no change: the group is rebalancing{members}; this sample does not count"),
        );
    }

    if !input.backlog_settled {
        return Decision::hold(
            current,
            Some(Guard::Measuring),
            "no change: the first samples cannot yet tell backlog from commit timing".to_owned(),
        );
    }
    state.update_capacity(input, config);
    // A group with a backlog throughout a full window that committed nothing is stuck.
    let stuck = input.rate_window_full
        && input.consume_rate.is_some_and(|c| c < 1e-9)
        && state
            .busy_since
            .zip(input.rate_window_start)
            .is_some_and(|(since, start)| since <= start);
    let recommendation = match config.mode {
        ScalingMode::Step => step(input, config, current),
        ScalingMode::Proportional => proportional(input, config, state.capacity, stuck, current),
    };
    if let Some(guard) = recommendation.blocked {
        return Decision::hold(current, Some(guard), recommendation.why);
    }
    let target = recommendation.target.clamp(lower, upper);
    state.record(now, target, config.stabilization_window);
    let why = recommendation.why;

    if config.mode == ScalingMode::Step {
        let due = state
            .last_step_at
            .is_none_or(|t| now.saturating_duration_since(t) >= config.step_interval);
        if !due {
            if target != current {
                let next_in = config.step_interval.saturating_sub(
                    now.saturating_duration_since(state.last_step_at.unwrap_or(now)),
                );
                return Decision::hold(
                    current,
                    Some(Guard::StepInterval),
                    format!(
                        "{why}; step mode acts every {}, next in {}",
                        secs(config.step_interval),
                        secs(next_in)
                    ),
                );
            }
        } else {
            state.last_step_at = Some(now);
        }
    }

    let limit = if partitions.is_some_and(|p| p <= config.max_consumers) {
        format!("the partition count {upper}")
    } else {
        format!("max_consumers {upper}")
    };
    if target > current {
        if input.unhealthy_consumers > 0 {
            return Decision::hold(
                current,
                Some(Guard::SinkUnhealthy),
                format!(
                    "{why}; but {} of {} consumers report failing Cassandra writes: not adding consumers to a failing sink",
                    input.unhealthy_consumers, input.consumers
                ),
            );
        }
        if state.awaiting_join() {
            let (waited, joined) = match state.last_change {
                Some(change) => (
                    now.saturating_duration_since(change.at),
                    input
                        .group_members
                        .map_or(String::new(), |m| format!(", {m} of {} members", change.to)),
                ),
                None => (Duration::ZERO, String::new()),
            };
            return Decision::hold(
                current,
                Some(Guard::AwaitingJoin),
                format!(
                    "{why}; but the last change ({} ago{joined}) has not joined the group yet; next scale-up once it has, or in {}",
                    secs(waited),
                    secs(config.cooldown.saturating_sub(waited))
                ),
            );
        }
        let capped = if recommendation.target > upper {
            format!("; capped at {limit}")
        } else {
            String::new()
        };
        return Decision::change(
            current,
            target,
            (!capped.is_empty()).then_some(Guard::AtLimit),
            format!("{why}{capped}"),
        );
    }
    if target < current {
        let window = config.stabilization_window;
        let (highest, recorded) = state.stabilized(now);
        if recorded < window {
            return Decision::hold(
                current,
                Some(Guard::Stabilizing),
                format!(
                    "{why}; scaling down to {target} once the {} stabilization window agrees ({} so far)",
                    secs(window),
                    secs(recorded)
                ),
            );
        }
        if highest >= current {
            return Decision::hold(
                current,
                Some(Guard::Stabilizing),
                format!(
                    "{why}; but a sample of the last {} asked for {highest}",
                    secs(window)
                ),
            );
        }
        return Decision::change(
            current,
            highest,
            None,
            format!(
                "{why}; every sample of the last {} agrees on {highest} or fewer",
                secs(window)
            ),
        );
    }
    if recommendation.target > upper {
        return Decision::hold(
            current,
            Some(Guard::AtLimit),
            format!("{why}; holding at {limit}"),
        );
    }
    Decision::hold(current, None, why)
}

/// The original rule: +1 above `scale_up_lag`, -1 below `scale_down_lag`.
fn step(input: &ScalingInput, config: &ScalingConfig, current: u32) -> Recommendation {
    let backlog = input.backlog;
    let (target, why) = if backlog > config.scale_up_lag && current < config.max_consumers {
        (
            current + 1,
            format!(
                "backlog {} > {} and {current} < max_consumers {}: one more consumer (step rule)",
                count(backlog),
                count(config.scale_up_lag),
                config.max_consumers
            ),
        )
    } else if backlog < config.scale_down_lag && current > config.min_consumers {
        (
            current - 1,
            format!(
                "backlog {} < {} and {current} > min_consumers {}: one consumer fewer (step rule)",
                count(backlog),
                count(config.scale_down_lag),
                config.min_consumers
            ),
        )
    } else {
        (
            current,
            format!(
                "backlog {} (scale up above {}, down below {}): holding {} (step rule)",
                count(backlog),
                count(config.scale_up_lag),
                count(config.scale_down_lag),
                consumers(current)
            ),
        )
    };
    Recommendation {
        target,
        why,
        blocked: None,
    }
}

/// The recent produce rate sizes a scale-up instead of the window's when it is at least this
/// much higher: a load step, not noise. Over 3 s, per-second noise of ±10% moves the rate by
/// up to about ±6%, which must not look like a need for one more consumer.
const LOAD_STEP: f64 = 1.25;

/// DS2-style sizing from the measured per-consumer throughput.
fn proportional(
    input: &ScalingInput,
    config: &ScalingConfig,
    capacity: Option<Capacity>,
    stuck: bool,
    current: u32,
) -> Recommendation {
    let backlog = input.backlog;
    let trend = match (input.produce_rate, input.consume_rate) {
        (Some(p), Some(c)) if p - c >= 0.5 => format!(" and rising {}", per_sec(p - c)),
        (Some(p), Some(c)) if c - p >= 0.5 => format!(" and falling {}", per_sec(c - p)),
        _ => String::new(),
    };
    let hold = |why: String| Recommendation {
        target: current,
        why,
        blocked: None,
    };
    if backlog > config.scale_up_lag {
        let head = format!(
            "backlog {} > {}{trend}",
            count(backlog),
            count(config.scale_up_lag)
        );
        if stuck {
            return Recommendation {
                target: current,
                why: format!(
                    "{head}; but the {} committed nothing over the rate window: more consumers cannot unstick them; check the consumers and the sink",
                    consumers(current)
                ),
                blocked: Some(Guard::NotConsuming),
            };
        }
        let Some(capacity) = capacity.filter(|c| c.per_consumer > 1e-9) else {
            return Recommendation {
                target: current,
                why: format!(
                    "{head}; but per-consumer throughput is not measured yet (it needs a full rate window of a settled group)"
                ),
                blocked: Some(Guard::Measuring),
            };
        };
        let arrival = match (input.produce_rate, input.produce_rate_recent) {
            (Some(window), Some(recent)) if recent >= window * LOAD_STEP => recent,
            (Some(window), _) => window,
            (None, recent) => recent.unwrap_or(0.0),
        };
        let drain = config.target_drain_time.as_secs_f64();
        let needed_rate = arrival + backlog as f64 / drain;
        let needed = (needed_rate / capacity.per_consumer).ceil().clamp(1.0, 1e6) as u32;
        let draining = input
            .consume_rate
            .unwrap_or(capacity.per_consumer * f64::from(current));
        let group = format!(
            "{} drain{} {}",
            consumers(current),
            if current == 1 { "s" } else { "" },
            per_sec(draining)
        );
        if needed <= current {
            return hold(format!(
                "{head}; {group} against {} produced: it clears within {}",
                per_sec(arrival),
                secs(config.target_drain_time)
            ));
        }
        return Recommendation {
            target: needed,
            why: format!(
                "{head}; {group} against {} produced; need {needed} to drain within {}",
                per_sec(arrival),
                secs(config.target_drain_time)
            ),
            blocked: None,
        };
    }
    if backlog < config.scale_down_lag {
        let head = format!(
            "backlog {} < {}",
            count(backlog),
            count(config.scale_down_lag)
        );
        let Some(produced) = input.produce_rate else {
            return hold(format!("{head}; produce rate not measured yet"));
        };
        let step_down = |why: &str| Recommendation {
            target: current.saturating_sub(1),
            why: format!(
                "{head}; per-consumer capacity unknown ({why}): one consumer fewer, then measure again"
            ),
            blocked: None,
        };
        let Some(capacity) = capacity.filter(|c| c.per_consumer > 0.0) else {
            return step_down("not measured yet");
        };
        let enough = (produced * (1.0 + config.headroom) / capacity.per_consumer)
            .ceil()
            .clamp(1.0, 1e6) as u32;
        let each = format!(
            "{} produced and one consumer reads {}{}",
            per_sec(produced),
            if capacity.measured { "" } else { "at least " },
            per_sec(capacity.per_consumer)
        );
        if enough < current {
            return Recommendation {
                target: enough,
                why: format!(
                    "{head}; {each}: {} enough with {}% headroom",
                    if enough == 1 {
                        "1 is".to_owned()
                    } else {
                        format!("{enough} are")
                    },
                    (config.headroom * 100.0).round()
                ),
                blocked: None,
            };
        }
        if !capacity.measured {
            return step_down("the consumers never had a backlog to show their speed");
        }
        return hold(format!("{head}; {each}: all {current} are needed"));
    }
    hold(format!(
        "backlog {} is between {} and {}: holding {}",
        count(backlog),
        count(config.scale_down_lag),
        count(config.scale_up_lag),
        consumers(current)
    ))
}
