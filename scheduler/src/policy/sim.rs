//! A closed-loop simulation of a topic, its consumer group and the policy, to compare modes.
//!
//! Owns a deterministic model, nothing else: no I/O, no clock, a seeded generator. The loop is
//! the real one minus Kafka and Mesos: every tick the model's offsets go through the real
//! [`LagTracker`] and the real [`decide`], and the model carries out the decision.
//!
//! The model: `partitions` partitions, a produce rate that follows a [`LoadProfile`] with
//! per-tick noise, spread evenly over the partitions (keys are uniform). Joined consumers get
//! partitions round-robin; each reads up to its capacity (with per-tick noise), sharing it
//! between its partitions with a backlog. Each consumer commits its positions every
//! `commit_interval` (at its own phase) and when partitions are revoked. A new consumer joins
//! `launch_delay` after the decision; every join or leave pauses the whole group for
//! `rebalance_pause` (eager rebalance), during which the coordinator reports
//! `PreparingRebalance`.
//!
//! [`compare`] runs the comparison the issue asks for and [`table`] prints it
//! (`cargo run -p fastdata-scheduler --example policy_sim`).

use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use super::config::{ScalingConfig, ScalingMode};
use super::decide::{PolicyState, ScalingInput, decide};
use crate::lag::{GroupPhase, GroupState, LagConfig, LagTracker, OffsetSample, PartitionOffsets};

/// The simulated topic and consumers.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Partitions of the topic.
    pub partitions: u32,
    /// Messages per second one consumer can write to the sink.
    pub consumer_capacity: f64,
    /// Per-tick relative noise of each consumer's capacity (uniform ±).
    pub capacity_noise: f64,
    /// Per-tick relative noise of the produce rate (uniform ±).
    pub produce_noise: f64,
    /// Auto-commit interval of the consumers.
    pub commit_interval: Duration,
    /// From a scale-up decision to the new consumer joining the group.
    pub launch_delay: Duration,
    /// Consumption pause of the whole group on every join or leave.
    pub rebalance_pause: Duration,
    /// Sampling and decision interval.
    pub tick: Duration,
    /// Model steps per tick.
    pub substeps: u32,
    /// Seed of the generator.
    pub seed: u64,
    /// The lag tracker's windows.
    pub lag: LagConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            // 60 partitions split evenly over 10, 11 or 12 consumers; with 10,000/s the
            // needed count is ceil(10,000 / 1,080) = 10 however they are assigned.
            partitions: 60,
            consumer_capacity: 1080.0,
            capacity_noise: 0.05,
            produce_noise: 0.10,
            commit_interval: Duration::from_secs(5),
            launch_delay: Duration::from_secs(5),
            rebalance_pause: Duration::from_secs(3),
            tick: Duration::from_secs(1),
            substeps: 10,
            seed: 0x5eed_fa57_da7a,
            lag: LagConfig::default(),
        }
    }
}

/// A piecewise-constant produce rate: `(from second, messages per second)`, sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadProfile(pub Vec<(f64, f64)>);

impl LoadProfile {
    /// The same rate throughout.
    pub fn constant(rate: f64) -> LoadProfile {
        LoadProfile(vec![(0.0, rate)])
    }

    /// The nominal rate at second `t`.
    pub fn rate_at(&self, t: f64) -> f64 {
        self.0
            .iter()
            .take_while(|&&(from, _)| from <= t)
            .last()
            .map_or(0.0, |&(_, rate)| rate)
    }
}

/// One tick of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimTick {
    /// Seconds since the start.
    pub t: f64,
    /// Nominal produce rate.
    pub rate: f64,
    /// The policy's target.
    pub target: u32,
    /// Consumers in the group.
    pub members: u32,
    /// Total lag.
    pub total_lag: u64,
    /// Backlog (see the lag tracker).
    pub backlog: u64,
}

/// One change decided during a run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimDecision {
    /// Seconds since the start.
    pub t: f64,
    /// Count before.
    pub from: u32,
    /// Count after.
    pub to: u32,
    /// The decision's reason.
    pub reason: String,
}

/// What happened in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRun {
    /// Every tick.
    pub ticks: Vec<SimTick>,
    /// Every change.
    pub decisions: Vec<SimDecision>,
}

/// SplitMix64: small, deterministic, good enough for noise.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [1 - spread, 1 + spread].
    fn around(&mut self, spread: f64) -> f64 {
        1.0 + spread * (2.0 * self.uniform() - 1.0)
    }
}

/// The topic and the group.
#[derive(Debug)]
struct Model {
    end: Vec<f64>,
    position: Vec<f64>,
    committed: Vec<f64>,
    /// Commit phase (seconds) of each joined consumer.
    members: Vec<f64>,
    /// When each launched consumer joins.
    pending: Vec<f64>,
    rebalance_until: f64,
    next_phase: f64,
}

impl Model {
    fn commit(&mut self, consumer: usize) {
        let n = self.members.len();
        for p in (consumer..self.end.len()).step_by(n) {
            self.committed[p] = self.position[p];
        }
    }

    fn commit_all(&mut self) {
        self.committed.clone_from(&self.position);
    }

    fn rebalance(&mut self, t: f64, pause: f64) {
        self.commit_all();
        self.rebalance_until = t + pause;
    }

    fn join(&mut self, commit_interval: f64) {
        self.members.push(self.next_phase);
        // Spread the commit phases over the interval.
        self.next_phase = (self.next_phase + 0.37 * commit_interval) % commit_interval;
    }
}

/// Runs `profile` for `duration` with `initial` consumers under `scaling`.
pub fn simulate(
    sim: &SimConfig,
    scaling: &ScalingConfig,
    profile: &LoadProfile,
    duration: Duration,
    initial: u32,
) -> SimRun {
    let mut rng = Rng(sim.seed);
    let partitions = sim.partitions as usize;
    let tick = sim.tick.as_secs_f64();
    let dt = tick / f64::from(sim.substeps.max(1));
    let commit_interval = sim.commit_interval.as_secs_f64();
    let pause = sim.rebalance_pause.as_secs_f64();
    let mut model = Model {
        end: vec![0.0; partitions],
        position: vec![0.0; partitions],
        committed: vec![0.0; partitions],
        members: Vec::new(),
        pending: Vec::new(),
        rebalance_until: 0.0,
        next_phase: 0.0,
    };
    for _ in 0..initial {
        model.join(commit_interval);
    }
    let mut tracker = LagTracker::new(sim.lag.clone());
    let mut state = PolicyState::default();
    let mut target = initial;
    let base = Instant::now();
    let mut run = SimRun {
        ticks: Vec::new(),
        decisions: Vec::new(),
    };
    let ticks = (duration.as_secs_f64() / tick).round() as u64;
    let mut t = 0.0f64;
    for _ in 0..ticks {
        let rate = profile.rate_at(t);
        let produce_factor = rng.around(sim.produce_noise);
        let capacity: Vec<f64> = (0..model.members.len())
            .map(|_| sim.consumer_capacity * rng.around(sim.capacity_noise))
            .collect();
        for _ in 0..sim.substeps.max(1) {
            // Produce.
            let per_partition = rate * produce_factor * dt / partitions as f64;
            for end in &mut model.end {
                *end += per_partition * rng.around(0.02);
            }
            // Consumers whose launch completed join; the group rebalances.
            let before = model.pending.len();
            model.pending.retain(|&ready| ready > t);
            let joined = before - model.pending.len();
            if joined > 0 {
                for _ in 0..joined {
                    model.join(commit_interval);
                }
                model.rebalance(t, pause);
            }
            // Consume, unless the group is rebalancing.
            let n = model.members.len();
            if t >= model.rebalance_until && n > 0 {
                for (consumer, &cap) in capacity.iter().enumerate().take(n) {
                    let mut budget = cap * dt;
                    let mut active: Vec<usize> = (consumer..partitions)
                        .step_by(n)
                        .filter(|&p| model.end[p] > model.position[p])
                        .collect();
                    while budget > 1e-9 && !active.is_empty() {
                        let share = budget / active.len() as f64;
                        active.retain(|&p| {
                            let take = share.min(model.end[p] - model.position[p]);
                            model.position[p] += take;
                            budget -= take;
                            model.end[p] - model.position[p] > 1e-9
                        });
                    }
                }
                // Auto-commit, each consumer at its own phase.
                for consumer in 0..n {
                    let phase = model.members[consumer];
                    let before = ((t + phase) / commit_interval).floor();
                    let after = ((t + dt + phase) / commit_interval).floor();
                    if after > before {
                        model.commit(consumer);
                    }
                }
            }
            t += dt;
        }
        // Sample, as the lag monitor would.
        let sample = OffsetSample {
            at: base + Duration::from_secs_f64(t),
            at_unix_ms: (t * 1000.0) as u64,
            partitions: (0..partitions)
                .map(|p| PartitionOffsets {
                    partition: p as i32,
                    committed: Some(model.committed[p].floor() as i64),
                    log_start: 0,
                    log_end: model.end[p].floor() as i64,
                })
                .collect(),
            group: Some(GroupState {
                phase: if t < model.rebalance_until {
                    GroupPhase::PreparingRebalance
                } else if model.members.is_empty() {
                    GroupPhase::Empty
                } else {
                    GroupPhase::Stable
                },
                members: model.members.len() as u32,
            }),
        };
        let observation = tracker.observe(sample);
        let input = ScalingInput::new(&observation, model.members.len() as u32, 0);
        let (decision, next) = decide(&input, scaling, &state, base + Duration::from_secs_f64(t));
        state = next;
        if decision.is_change() {
            run.decisions.push(SimDecision {
                t,
                from: target,
                to: decision.target,
                reason: decision.reason.clone(),
            });
            if decision.target > target {
                let ready = t + sim.launch_delay.as_secs_f64();
                model
                    .pending
                    .extend((target..decision.target).map(|_| ready));
            } else {
                let mut remove = (target - decision.target) as usize;
                let cancel = remove.min(model.pending.len());
                model.pending.truncate(model.pending.len() - cancel);
                remove -= cancel;
                if remove > 0 {
                    model.commit_all();
                    let keep = model.members.len().saturating_sub(remove);
                    model.members.truncate(keep);
                    model.rebalance(t, pause);
                }
            }
            target = decision.target;
        }
        run.ticks.push(SimTick {
            t,
            rate,
            target,
            members: model.members.len() as u32,
            total_lag: observation.total_lag,
            backlog: observation.backlog,
        });
    }
    run
}

/// The comparison of one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    /// Which configuration.
    pub label: String,
    /// Consumers needed at the high rate: `ceil(rate / capacity)`.
    pub needed_high: u32,
    /// Seconds from the step up until that many consumers were in the group.
    pub time_to_needed_up: Option<f64>,
    /// Changes decided from the step up until the target first reached the needed count.
    pub decisions_to_needed_up: Option<usize>,
    /// Highest target during the high phase minus the needed count.
    pub overshoot: i64,
    /// Consumers needed at the low rate.
    pub needed_low: u32,
    /// Seconds from the step down until the group was down to the needed count.
    pub time_to_needed_down: Option<f64>,
    /// Changes decided from the step down until the target first reached the needed count.
    pub decisions_to_needed_down: Option<usize>,
    /// Changes decided over the whole profile.
    pub decisions: usize,
    /// Integral of the total lag over the profile, in message-seconds.
    pub lag_seconds: f64,
    /// Changes decided under steady noisy load after the warm-up.
    pub steady_decisions: usize,
    /// Direction reversals among them (up after down, or down after up).
    pub steady_reversals: usize,
}

/// Phases of the comparison: 1,000/s, then 10,000/s, then 1,000/s again.
pub const STEP_UP_AT: f64 = 120.0;
/// When the load falls back.
pub const STEP_DOWN_AT: f64 = 720.0;
/// End of the profile.
pub const PROFILE_END: f64 = 1320.0;
/// Length of the steady-load run.
pub const STEADY_DURATION: f64 = 3600.0;
/// Decisions before this second of the steady run are the warm-up.
pub const STEADY_WARM_UP: f64 = 600.0;

/// Runs one configuration through the step profile and the steady run.
pub fn report(sim: &SimConfig, label: &str, scaling: &ScalingConfig) -> SimReport {
    let (low, high) = (1_000.0, 10_000.0);
    let needed = |rate: f64| {
        ((rate / sim.consumer_capacity).ceil() as u32)
            .clamp(scaling.min_consumers, scaling.max_consumers)
    };
    let (needed_low, needed_high) = (needed(low), needed(high));
    let profile = LoadProfile(vec![(0.0, low), (STEP_UP_AT, high), (STEP_DOWN_AT, low)]);
    let run = simulate(
        sim,
        scaling,
        &profile,
        Duration::from_secs_f64(PROFILE_END),
        needed_low,
    );

    let phase = |from: f64, to: f64, reached: &dyn Fn(u32) -> bool| {
        let changes: Vec<&SimDecision> = run
            .decisions
            .iter()
            .filter(|d| d.t >= from && d.t < to)
            .collect();
        let decisions = changes.iter().position(|d| reached(d.to)).map(|i| i + 1);
        let time = run
            .ticks
            .iter()
            .find(|k| k.t >= from && k.t < to && reached(k.members))
            .map(|k| k.t - from);
        (decisions, time)
    };
    let (decisions_to_needed_up, time_to_needed_up) =
        phase(STEP_UP_AT, STEP_DOWN_AT, &|n| n >= needed_high);
    let (decisions_to_needed_down, time_to_needed_down) =
        phase(STEP_DOWN_AT, PROFILE_END, &|n| n <= needed_low);
    let highest = run
        .ticks
        .iter()
        .filter(|k| k.t >= STEP_UP_AT && k.t < STEP_DOWN_AT)
        .map(|k| k.target)
        .max()
        .unwrap_or(0);
    let tick = sim.tick.as_secs_f64();
    let lag_seconds = run.ticks.iter().map(|k| k.total_lag as f64 * tick).sum();

    let steady = simulate(
        sim,
        scaling,
        &LoadProfile::constant(high),
        Duration::from_secs_f64(STEADY_DURATION),
        needed_low,
    );
    let directions: Vec<bool> = steady
        .decisions
        .iter()
        .filter(|d| d.t >= STEADY_WARM_UP)
        .map(|d| d.to > d.from)
        .collect();
    let steady_reversals = directions.windows(2).filter(|w| w[0] != w[1]).count();

    SimReport {
        label: label.to_owned(),
        needed_high,
        time_to_needed_up,
        decisions_to_needed_up,
        overshoot: i64::from(highest) - i64::from(needed_high),
        needed_low,
        time_to_needed_down,
        decisions_to_needed_down,
        decisions: run.decisions.len(),
        lag_seconds,
        steady_decisions: directions.len(),
        steady_reversals,
    }
}

/// The three configurations compared: the original rule as it was (no stabilization, no
/// waiting for joins), the step rule with our guards, and proportional. All with
/// `max_consumers` 12, so that overshoot shows.
pub fn configurations() -> Vec<(&'static str, ScalingConfig)> {
    let base = ScalingConfig {
        max_consumers: 12,
        ..ScalingConfig::default()
    };
    vec![
        (
            "step, original (no guards)",
            ScalingConfig {
                mode: ScalingMode::Step,
                stabilization_window: Duration::ZERO,
                cooldown: Duration::ZERO,
                ..base.clone()
            },
        ),
        (
            "step + guards",
            ScalingConfig {
                mode: ScalingMode::Step,
                ..base.clone()
            },
        ),
        ("proportional", base),
    ]
}

/// Runs every configuration of [`configurations`].
pub fn compare(sim: &SimConfig) -> Vec<SimReport> {
    configurations()
        .iter()
        .map(|(label, scaling)| report(sim, label, scaling))
        .collect()
}

/// The comparison as a text table.
pub fn table(sim: &SimConfig, reports: &[SimReport]) -> String {
    let opt_t = |v: Option<f64>| v.map_or("never".to_owned(), |s| format!("{s:.0} s"));
    let opt_n = |v: Option<usize>| v.map_or("-".to_owned(), |n| n.to_string());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} partitions, {:.0}/s per consumer (±{:.0}%), produce noise ±{:.0}%, commit every {} s, launch {} s, rebalance pause {} s, seed {:#x}",
        sim.partitions,
        sim.consumer_capacity,
        sim.capacity_noise * 100.0,
        sim.produce_noise * 100.0,
        sim.commit_interval.as_secs(),
        sim.launch_delay.as_secs(),
        sim.rebalance_pause.as_secs(),
        sim.seed
    );
    let _ = writeln!(
        out,
        "load 1,000/s -> 10,000/s at {STEP_UP_AT:.0} s -> 1,000/s at {STEP_DOWN_AT:.0} s, until {PROFILE_END:.0} s; steady 10,000/s for {STEADY_DURATION:.0} s (reversals after {STEADY_WARM_UP:.0} s)"
    );
    let _ = writeln!(out);
    let header = [
        "mode",
        "up: needed",
        "time",
        "decisions",
        "overshoot",
        "down: needed",
        "time",
        "decisions",
        "decisions (all)",
        "lag·s (M msg·s)",
        "steady: decisions",
        "reversals",
    ];
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.label.clone(),
                r.needed_high.to_string(),
                opt_t(r.time_to_needed_up),
                opt_n(r.decisions_to_needed_up),
                format!("{:+}", r.overshoot),
                r.needed_low.to_string(),
                opt_t(r.time_to_needed_down),
                opt_n(r.decisions_to_needed_down),
                r.decisions.to_string(),
                format!("{:.1}", r.lag_seconds / 1e6),
                r.steady_decisions.to_string(),
                r.steady_reversals.to_string(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let _ = writeln!(
        out,
        "{}",
        line(header.iter().map(|h| (*h).to_owned()).collect())
    );
    let _ = writeln!(
        out,
        "|{}|",
        widths
            .iter()
            .map(|&w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in rows {
        let _ = writeln!(out, "{}", line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_and_rng_are_deterministic() {
        let p = LoadProfile(vec![(0.0, 1.0), (10.0, 2.0)]);
        assert_eq!(
            (p.rate_at(0.0), p.rate_at(9.9), p.rate_at(10.0)),
            (1.0, 1.0, 2.0)
        );
        let (mut a, mut b) = (Rng(7), Rng(7));
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert!((0..1000).all(|_| (0.9..=1.1).contains(&a.around(0.1))));
    }

    #[test]
    fn model_conserves_messages_and_keeps_up_when_it_can() {
        let sim = SimConfig::default();
        let scaling = ScalingConfig {
            min_consumers: 2,
            max_consumers: 2,
            ..ScalingConfig::default()
        };
        // 2 consumers of 1,080/s against 1,500/s: they keep up; the backlog stays small.
        let run = simulate(
            &sim,
            &scaling,
            &LoadProfile::constant(1500.0),
            Duration::from_secs(120),
            2,
        );
        let last = run.ticks.last().expect("ticks");
        assert_eq!(run.decisions, vec![]);
        assert!(last.backlog < 500, "{last:?}");
        // Against 3,000/s they cannot: the lag grows by about 840/s.
        let run = simulate(
            &sim,
            &scaling,
            &LoadProfile::constant(3000.0),
            Duration::from_secs(120),
            2,
        );
        let lag = run.ticks.last().expect("ticks").total_lag as f64;
        assert!((lag - 840.0 * 120.0).abs() < 0.1 * 840.0 * 120.0, "{lag}");
    }
}
