//! The demo's command line ([`DemoArgs`]) and its check into a [`DemoPlan`]: every value
//! the run uses, or one sentence saying what to change (the binary prints it and exits 2).
//!
//! The scheduler settings the demo needs (shorter scaling timers, a bounded consumer, a
//! producer task) are derived here too ([`DemoPlan::scheduler_settings`]), so that what the
//! demo changes from the scheduler's defaults, and why, is written down in one place.

use std::time::Duration;

use clap::Parser;
use fastdata_proto::duration::parse_duration;

use super::schedule::Schedule;

/// Default events per second in the steady phases: 75% of what one consumer handles with the
/// default rate cap, so one consumer keeps up.
pub const DEFAULT_RATE: f64 = 750.0;
/// Default events per second during the burst: two capped consumers handle 2,000/s, so the
/// burst needs three (four while its backlog drains); 2,800 rows/s is well within what the
/// 2-core development machine sustains end to end (6,000-7,000).
pub const DEFAULT_BURST_RATE: f64 = 2800.0;
/// Default cap on what one consumer handles per second (`FASTDATA_CONSUMER_MAX_RATE`).
pub const DEFAULT_CONSUMER_RATE: f64 = 1_000.0;
/// Default length of the phase after the burst.
pub const DEFAULT_RECOVER: Duration = Duration::from_secs(120);
/// The scheduler's lag monitor measures rates over 30 s; proportional scaling needs one full
/// window of a settled group before it can size anything, so the first steady phase must
/// give it that window, plus some seconds for the first commits.
pub const MIN_STEADY: Duration = Duration::from_secs(35);
/// The longest rate the producer accepts (`check_producer_rate`).
pub const MAX_RATE: f64 = 1_000_000.0;

/// fastdata's local demo: Kafka → consumers → Cassandra on a local Mesos (devcluster), with
/// the scheduler adding consumers when a burst of sensor readings arrives and removing them
/// once it has drained.
///
/// The load goes through three phases: steady at --rate, a burst at --burst-rate that one
/// consumer cannot keep up with, and steady again. The terminal shows a live view; Ctrl-C
/// (or the end of the schedule) pauses the producer, lets the consumers drain for at most
/// --drain-timeout, stops everything and prints a summary. A second Ctrl-C stops at once.
///
/// Durations are a number with a unit: 500ms, 90s, 2m.
#[derive(Debug, Clone, Parser)]
#[command(name = "dev/demo", bin_name = "dev/demo", version)]
pub struct DemoArgs {
    /// Events per second in the steady phases (one producer task).
    #[arg(long, default_value_t = DEFAULT_RATE, value_name = "EVENTS/S")]
    pub rate: f64,
    /// Events per second during the burst.
    #[arg(long, default_value_t = DEFAULT_BURST_RATE, value_name = "EVENTS/S")]
    pub burst_rate: f64,
    /// Length of the first steady phase (at least 35s: the scheduler measures a consumer's
    /// throughput over 30 s before it sizes the group).
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub steady: Duration,
    /// Length of the burst.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub burst: Duration,
    /// Length of the steady phase after the burst [default: 120s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", conflicts_with = "duration")]
    pub recover: Option<Duration>,
    /// Total length of the load schedule instead of --recover: the phase after the burst gets
    /// what --steady and --burst leave.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Partitions of this run's topic (the consumer count never exceeds it).
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub partitions: i32,
    /// devcluster agents (each runs at most one consumer).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub agents: usize,
    /// Most events one consumer handles per second (the scheduler's
    /// FASTDATA_CONSUMER_MAX_RATE): a local Cassandra takes 3,400-6,000 rows/s from a single
    /// consumer, about what this whole machine sustains, so without a cap no burst it can
    /// produce would need a second consumer. 0 lifts the cap.
    #[arg(long, default_value_t = DEFAULT_CONSUMER_RATE, value_name = "EVENTS/S")]
    pub consumer_rate: f64,
    /// Cassandra writes in flight per consumer.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub max_in_flight: usize,
    /// Messages a consumer takes per poll (and holds waiting for a write slot).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub batch_size: usize,
    /// At the end, how long the consumers may drain after the producer is paused.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub drain_timeout: Duration,
    /// Leave Kafka, Cassandra and ZooKeeper running at the end even if dev/demo started them
    /// (services that were already running are always left running).
    #[arg(long)]
    pub keep_services: bool,
    /// Keep this run's topic, keyspace and ZooKeeper state (by default they are removed after
    /// the summary has counted them).
    #[arg(long)]
    pub keep_data: bool,
    /// Print a frame every 10 s instead of redrawing in place (the default when the output is
    /// not a terminal).
    #[arg(long)]
    pub plain: bool,
    /// Check the options and exit: 0 if usable, 2 with the problem (dev/demo does this before
    /// it starts any service).
    #[arg(long, hide = true)]
    pub check: bool,
}

/// Everything a demo run uses, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoPlan {
    /// The load phases.
    pub schedule: Schedule,
    /// Partitions of the topic.
    pub partitions: i32,
    /// devcluster agents.
    pub agents: usize,
    /// Most consumers: the partitions, and one per agent.
    pub max_consumers: u32,
    /// Cassandra writes in flight per consumer.
    pub max_in_flight: usize,
    /// Messages per poll.
    pub batch_size: usize,
    /// Events per second one consumer handles; 0: no cap.
    pub consumer_rate: f64,
    /// Drain bound at the end.
    pub drain_timeout: Duration,
    /// Keep the topic, keyspace and ZooKeeper state.
    pub keep_data: bool,
    /// No redrawing in place.
    pub plain: bool,
}

impl DemoArgs {
    /// The plan, or the one sentence that says what to change.
    pub fn check(&self) -> Result<DemoPlan, String> {
        let rate_ok = |r: f64| r.is_finite() && r > 0.0 && r <= MAX_RATE;
        if !rate_ok(self.rate) {
            return Err(format!(
                "--rate {} is not usable; give events per second above 0 and at most 1000000",
                self.rate
            ));
        }
        if !rate_ok(self.burst_rate) {
            return Err(format!(
                "--burst-rate {} is not usable; give events per second above 0 and at most 1000000",
                self.burst_rate
            ));
        }
        if self.burst_rate < self.rate * 2.0 {
            return Err(format!(
                "--burst-rate {} must be at least twice --rate {} for the burst to need more consumers than the steady load",
                self.burst_rate, self.rate
            ));
        }
        if self.steady < MIN_STEADY {
            return Err(format!(
                "--steady {} s is too short; give at least {} s, since the scheduler measures a consumer's throughput over 30 s before it sizes the group",
                self.steady.as_secs_f64(),
                MIN_STEADY.as_secs()
            ));
        }
        if self.burst < Duration::from_secs(10) {
            return Err(format!(
                "--burst {} s is too short for a backlog to build up; give at least 10s",
                self.burst.as_secs_f64()
            ));
        }
        let recover = match self.duration {
            Some(total) => {
                let needed = self.steady + self.burst + Duration::from_secs(10);
                if total < needed {
                    return Err(format!(
                        "--duration {} s leaves no time after the burst; give at least --steady + --burst + 10s = {} s",
                        total.as_secs_f64(),
                        needed.as_secs_f64()
                    ));
                }
                total - self.steady - self.burst
            }
            None => self.recover.unwrap_or(DEFAULT_RECOVER),
        };
        if recover < Duration::from_secs(10) {
            return Err(format!(
                "--recover {} s is too short to see the group shrink; give at least 10s",
                recover.as_secs_f64()
            ));
        }
        if !(1..=64).contains(&self.partitions) {
            return Err(format!(
                "--partitions {} is not usable; give 1 to 64 (the consumer count never exceeds it)",
                self.partitions
            ));
        }
        if !(2..=16).contains(&self.agents) {
            return Err(format!(
                "--agents {} is not usable; give 2 to 16 (each agent runs at most one consumer)",
                self.agents
            ));
        }
        if !(1..=256).contains(&self.max_in_flight) {
            return Err(format!(
                "--max-in-flight {} is not usable; give 1 to 256 writes per consumer",
                self.max_in_flight
            ));
        }
        if !(1..=10_000).contains(&self.batch_size) {
            return Err(format!(
                "--batch-size {} is not usable; give 1 to 10000 messages",
                self.batch_size
            ));
        }
        if !(self.consumer_rate.is_finite() && (0.0..=MAX_RATE).contains(&self.consumer_rate)) {
            return Err(format!(
                "--consumer-rate {} is not usable; give events per second up to 1000000, or 0 for no cap",
                self.consumer_rate
            ));
        }
        if self.drain_timeout > Duration::from_secs(600) {
            return Err(format!(
                "--drain-timeout {} s is too long; give at most 600s",
                self.drain_timeout.as_secs_f64()
            ));
        }
        // Both bounds are small positive integers (checked above).
        let max_consumers = (self.partitions as u32).min(self.agents as u32);
        Ok(DemoPlan {
            schedule: Schedule::new(self.rate, self.burst_rate, self.steady, self.burst, recover),
            partitions: self.partitions,
            agents: self.agents,
            max_consumers,
            max_in_flight: self.max_in_flight,
            batch_size: self.batch_size,
            consumer_rate: self.consumer_rate,
            drain_timeout: self.drain_timeout,
            keep_data: self.keep_data,
            plain: self.plain,
        })
    }
}

impl DemoPlan {
    /// The scheduler's environment for this plan, besides the addresses and names of the
    /// run: what the demo changes from the scheduler's defaults, each with the reason.
    pub fn scheduler_settings(&self) -> Vec<(&'static str, String)> {
        let steady = self.schedule.steady_rate();
        let mut settings = vec![
            // One producer task (the sensor simulator), started at the steady rate; the demo
            // changes its rate with PUT /v1/producers.
            ("FASTDATA_PRODUCER_COUNT", "1".to_owned()),
            ("FASTDATA_PRODUCER_RATE", number(steady)),
            ("FASTDATA_PARTITIONS", self.partitions.to_string()),
            (
                "FASTDATA_CONSUMER_MAX_IN_FLIGHT",
                self.max_in_flight.to_string(),
            ),
            ("FASTDATA_CONSUMER_BATCH_SIZE", self.batch_size.to_string()),
            ("FASTDATA_SCALING_MODE", "proportional".to_owned()),
            // The thresholds scale with the load: two seconds of steady production is a
            // backlog worth acting on; half a second's is what a keeping-up group holds.
            ("FASTDATA_SCALE_UP_LAG", number((steady * 2.0).max(1000.0))),
            ("FASTDATA_SCALE_DOWN_LAG", number((steady / 2.0).max(200.0))),
            ("FASTDATA_MIN_CONSUMERS", "1".to_owned()),
            ("FASTDATA_MAX_CONSUMERS", self.max_consumers.to_string()),
            // Defaults are 60 s and 120 s, sized for production where a flapping group costs
            // more than a few minutes of extra consumers. The demo shortens both so that
            // scaling down, one consumer per window while the per-consumer capacity is only
            // a lower bound, shows within its recovery phase, and a second scale-up, if the
            // first was not enough, within its burst. 30 s rather than less: each step down
            // probes whether one consumer fewer still keeps up, and a burst of 60 s should
            // see at most one such probe.
            ("FASTDATA_STABILIZATION_WINDOW", "30s".to_owned()),
            ("FASTDATA_COOLDOWN", "20s".to_owned()),
            // Drain a burst's backlog within 30 s (default 60 s) so that the scale-up is
            // visibly sized for the backlog as well as for the new rate.
            ("FASTDATA_TARGET_DRAIN_TIME", "30s".to_owned()),
            // Small tasks: several consumers and the producer fit on the agents.
            ("FASTDATA_CONSUMER_CPUS", "0.5".to_owned()),
            ("FASTDATA_CONSUMER_MEM", "256".to_owned()),
            ("FASTDATA_PRODUCER_CPUS", "0.5".to_owned()),
            ("FASTDATA_PRODUCER_MEM", "256".to_owned()),
            // A removed consumer commits and leaves its group within this.
            ("FASTDATA_CONSUMER_GRACE_PERIOD", "10s".to_owned()),
            // Workload stats (sink health, rows written) every 2 s instead of 5 s.
            ("FASTDATA_STATS_INTERVAL", "2s".to_owned()),
        ];
        if self.consumer_rate > 0.0 {
            // A consumer's throughput bounded by design, not by what the machine has left.
            settings.push(("FASTDATA_CONSUMER_MAX_RATE", number(self.consumer_rate)));
        }
        settings
    }
}

/// A rate or count as the scheduler's flags read it: no fraction when there is none.
fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as u64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::schedule::Load;

    fn parse(args: &[&str]) -> Result<DemoArgs, clap::Error> {
        let mut all = vec!["fastdata-demo"];
        all.extend_from_slice(args);
        DemoArgs::try_parse_from(all)
    }

    fn plan(args: &[&str]) -> Result<DemoPlan, String> {
        parse(args).expect("parses").check()
    }

    fn plan_of(args: &[&str]) -> DemoPlan {
        plan(args).expect("valid")
    }

    #[test]
    fn the_defaults_make_a_usable_plan() {
        let plan = plan(&[]).expect("the defaults are valid");
        let phases = plan.schedule.phases();
        let loads: Vec<(Load, f64, u64)> = phases
            .iter()
            .map(|p| (p.load, p.rate, p.length.as_secs()))
            .collect();
        assert_eq!(
            loads,
            [
                (Load::Steady, DEFAULT_RATE, 60),
                (Load::Burst, DEFAULT_BURST_RATE, 60),
                (Load::Recover, DEFAULT_RATE, 120)
            ]
        );
        assert_eq!(plan.schedule.total(), Duration::from_secs(240));
        assert_eq!(plan.max_consumers, 5, "5 agents, 6 partitions");
        assert_eq!(plan.consumer_rate, DEFAULT_CONSUMER_RATE);
        assert!(!plan.keep_data && !plan.plain);
    }

    #[test]
    fn duration_gives_the_last_phase_what_is_left() {
        let plan = plan(&[
            "--duration",
            "5m",
            "--steady",
            "40s",
            "--burst",
            "1m",
            "--rate",
            "500",
            "--burst-rate",
            "2500.5",
        ])
        .expect("valid");
        let phases = plan.schedule.phases();
        assert_eq!(phases[2].length, Duration::from_secs(200));
        assert_eq!(phases[2].start, Duration::from_secs(100));
        assert_eq!(phases[1].rate, 2500.5);
        assert_eq!(plan.schedule.total(), Duration::from_secs(300));
    }

    #[test]
    fn bad_options_get_one_sentence_naming_the_option() {
        let cases: [(&[&str], &str); 14] = [
            (&["--rate", "0"], "--rate 0 is not usable"),
            (&["--rate", "NaN"], "--rate NaN is not usable"),
            (
                &["--burst-rate", "2000000"],
                "--burst-rate 2000000 is not usable",
            ),
            (
                &["--rate", "1000", "--burst-rate", "1500"],
                "--burst-rate 1500 must be at least twice --rate 1000",
            ),
            (
                &["--steady", "20s"],
                "--steady 20 s is too short; give at least 35 s",
            ),
            (&["--burst", "5s"], "--burst 5 s is too short"),
            (
                &["--duration", "2m"],
                "--duration 120 s leaves no time after the burst; give at least --steady + --burst + 10s = 130 s",
            ),
            (&["--recover", "3s"], "--recover 3 s is too short"),
            (&["--partitions", "0"], "--partitions 0 is not usable"),
            (&["--agents", "1"], "--agents 1 is not usable"),
            (&["--max-in-flight", "0"], "--max-in-flight 0 is not usable"),
            (&["--batch-size", "0"], "--batch-size 0 is not usable"),
            (
                &["--drain-timeout", "1h"],
                "--drain-timeout 3600 s is too long",
            ),
            (&["--consumer-rate=-5"], "--consumer-rate -5 is not usable"),
        ];
        for (args, expected) in cases {
            let problem = plan(args).expect_err(expected);
            assert!(problem.starts_with(expected), "{args:?}: {problem}");
            assert!(!problem.contains('\n'), "one sentence: {problem}");
        }
    }

    #[test]
    fn the_command_line_itself_is_checked_by_clap() {
        for args in [
            &["--rate", "fast"][..],
            &["--steady", "1 fortnight"],
            &["--recover", "1m", "--duration", "5m"],
            &["--agents", "-2"],
            &["--surprise"],
        ] {
            let error = parse(args).expect_err("refused");
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
        let help = parse(&["--help"]).expect_err("help is an early exit");
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        let text = help.to_string();
        for option in [
            "--rate",
            "--burst-rate",
            "--steady",
            "--burst",
            "--recover",
            "--duration",
            "--partitions",
            "--agents",
            "--max-in-flight",
            "--keep-services",
            "--drain-timeout",
            "--consumer-rate",
        ] {
            assert!(text.contains(option), "--help lacks {option}");
        }
    }

    #[test]
    fn scheduler_settings_follow_the_plan() {
        let plan = plan(&[
            "--rate",
            "800",
            "--burst-rate",
            "3000",
            "--agents",
            "3",
            "--max-in-flight",
            "2",
        ])
        .expect("valid");
        let settings = plan.scheduler_settings();
        let get = |key: &str| {
            settings
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no {key}"))
        };
        assert_eq!(get("FASTDATA_PRODUCER_COUNT"), "1");
        assert_eq!(get("FASTDATA_PRODUCER_RATE"), "800");
        assert_eq!(get("FASTDATA_MAX_CONSUMERS"), "3", "one per agent");
        assert_eq!(get("FASTDATA_CONSUMER_MAX_IN_FLIGHT"), "2");
        assert_eq!(get("FASTDATA_SCALE_UP_LAG"), "1600");
        assert_eq!(get("FASTDATA_SCALE_DOWN_LAG"), "400");
        assert_eq!(get("FASTDATA_CONSUMER_MAX_RATE"), "1000");
        let keys: std::collections::BTreeSet<&str> = settings.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys.len(), settings.len(), "no variable set twice");
        let unbounded = plan_of(&["--consumer-rate", "0"]).scheduler_settings();
        assert!(
            unbounded
                .iter()
                .all(|(k, _)| *k != "FASTDATA_CONSUMER_MAX_RATE"),
            "0 lifts the cap"
        );
    }
}
