//! The demo's text: what it reads from the scheduler's `GET /v1/status` ([`StatusReading`]),
//! the live view ([`render_frame`]) and the summary ([`render_summary`]). Pure: values in, a
//! `String` out.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use super::schedule::{Offsets, Phase, Rates};

/// The parts of `GET /v1/status` the demo shows. Read tolerantly: a missing field is a
/// default, never a failure, so the view degrades instead of stopping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusReading {
    /// `running`, `subscribing`, ...
    pub phase: String,
    /// The phase in a sentence.
    pub phase_message: String,
    /// The deploy plan's status and message.
    pub plan: String,
    /// Consumers the policy wants.
    pub desired: u32,
    /// Consumers running.
    pub running: u32,
    /// Most consumers allowed.
    pub max: u32,
    /// Total lag, once measured.
    pub lag: Option<u64>,
    /// Worst partition status.
    pub lag_status: String,
    /// Age of the oldest unconsumed message, seconds.
    pub seconds_behind: Option<f64>,
    /// The topic's offsets, once measured.
    pub offsets: Option<Offsets>,
    /// No consumer reports failing writes.
    pub sink_healthy: bool,
    /// Sink health in a sentence.
    pub sink_summary: String,
    /// Why nothing changes although it could.
    pub held_reason: Option<String>,
    /// The most recent decisions, newest first.
    pub decisions: Vec<DecisionSeen>,
    /// Producer tasks and their rate.
    pub producer_tasks: u32,
    /// Events per second per producer task.
    pub producer_rate: f64,
}

/// One decision of the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionSeen {
    /// When, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// `hold`, `scale_up` or `scale_down`.
    pub action: String,
    /// Consumers before.
    pub from: u32,
    /// Consumers wanted after.
    pub to: u32,
    /// Why (for a folded hold: as first recorded).
    pub reason: String,
    /// Identical holds folded into this record after it (the scheduler's audit log keeps one
    /// record for a run of holds with the same target and guard).
    pub repeats: u32,
}

impl DecisionSeen {
    /// From one entry of `decisions` in `/v1/status` or `/v1/decisions`.
    pub fn from_json(value: &Value) -> DecisionSeen {
        DecisionSeen {
            at_unix_ms: value["at_unix_ms"].as_u64().unwrap_or(0),
            action: text(&value["action"]),
            from: count32(&value["from"]),
            to: count32(&value["to"]),
            reason: text(&value["reason"]),
            repeats: count32(&value["repeats"]),
        }
    }

    /// True when it changed the consumer count.
    pub fn is_change(&self) -> bool {
        self.from != self.to
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn count32(value: &Value) -> u32 {
    value
        .as_u64()
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

impl StatusReading {
    /// From the JSON of `GET /v1/status`.
    pub fn from_json(status: &Value) -> StatusReading {
        let lag = &status["lag"];
        let partitions = lag["partitions"].as_array();
        let offsets = partitions.map(|partitions| Offsets {
            produced: partitions
                .iter()
                .map(|p| p["log_end_offset"].as_i64().unwrap_or(0))
                .sum(),
            // A partition the group never committed has consumed nothing yet (the topic is
            // this run's own, so its log starts at 0).
            consumed: partitions
                .iter()
                .map(|p| p["committed_offset"].as_i64().unwrap_or(0))
                .sum(),
        });
        StatusReading {
            phase: text(&status["phase"]["state"]),
            phase_message: text(&status["phase"]["message"]),
            plan: format!(
                "{}: {}",
                text(&status["plan"]["status"]),
                text(&status["plan"]["message"])
            ),
            desired: count32(&status["consumers"]["desired"]),
            running: count32(&status["consumers"]["running"]),
            max: count32(&status["consumers"]["max"]),
            lag: lag["total"].as_u64(),
            lag_status: text(&lag["status"]),
            seconds_behind: lag["seconds_behind"].as_f64(),
            offsets,
            sink_healthy: status["sink"]["healthy"].as_bool().unwrap_or(true),
            sink_summary: text(&status["sink"]["summary"]),
            held_reason: status["held_reason"].as_str().map(str::to_owned),
            decisions: status["decisions"]
                .as_array()
                .map(|d| d.iter().map(DecisionSeen::from_json).collect())
                .unwrap_or_default(),
            producer_tasks: count32(&status["producers"]["tasks"]),
            producer_rate: status["producers"]["rate"].as_f64().unwrap_or(0.0),
        }
    }
}

/// Where the demo's parts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `http://127.0.0.1:<port>` of the scheduler's REST API (and status page).
    pub rest: String,
    /// `http://127.0.0.1:<port>` of its gRPC API.
    pub grpc: String,
    /// devcluster's master.
    pub master: String,
    /// Agents.
    pub agents: usize,
    /// The CLI binary, if built.
    pub cli: Option<String>,
    /// Where the logs are.
    pub logs: String,
}

/// Where the load is.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadNow {
    /// Before the schedule: waiting for the scheduler, the producer and the first consumer.
    WarmingUp {
        /// What it waits for.
        waiting_for: String,
    },
    /// A phase of the schedule.
    Running {
        /// 0, 1 or 2.
        index: usize,
        /// The phase.
        phase: Phase,
        /// Time left in it.
        left: Duration,
        /// The next phase.
        next: Option<Phase>,
    },
    /// The producer is paused; the consumers drain.
    Draining {
        /// Time left before the demo stops anyway.
        left: Duration,
    },
}

/// A decision placed on the demo's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedDecision {
    /// Time since the schedule started; `None` for a change during the warm-up.
    pub at: Option<Duration>,
    /// The decision.
    pub decision: DecisionSeen,
}

/// One frame of the live view.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    /// The run's name (service, topic, keyspace).
    pub run: &'a str,
    /// Time since the schedule started (zero while warming up).
    pub elapsed: Duration,
    /// Length of the schedule.
    pub total: Duration,
    /// Where the load is.
    pub load: LoadNow,
    /// Rates measured from the offsets.
    pub rates: Rates,
    /// The scheduler's status, if it answered.
    pub status: Result<&'a StatusReading, &'a str>,
    /// Most consumers seen running at once.
    pub max_running: u32,
    /// Scaling changes so far, oldest first.
    pub changes: &'a [TimedDecision],
    /// The scheduler's latest decision record.
    pub latest: Option<&'a TimedDecision>,
    /// Where things are.
    pub endpoints: &'a Endpoints,
}

/// `75 s` → `1:15`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// `12400` → `12,400`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_sec(rate: f64) -> String {
    format!("{}/s", count(rate.max(0.0).round() as u64))
}

fn maybe_rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "…".to_owned(), per_sec)
}

fn arrow(decision: &DecisionSeen) -> String {
    if decision.to > decision.from {
        format!("▲ {} → {}", decision.from, decision.to)
    } else if decision.to < decision.from {
        format!("▼ {} → {}", decision.from, decision.to)
    } else {
        format!("= {}", decision.to)
    }
}

fn when(at: Option<Duration>) -> String {
    at.map_or_else(|| "warm-up".to_owned(), clock)
}

/// The latest decision record. A run of holds is one record whose reason is the first
/// one's, so the line says how often it was repeated since rather than pretending the
/// reason is current.
fn latest_decision(latest: &TimedDecision) -> String {
    let d = &latest.decision;
    match d.repeats {
        0 => format!("{} at {}: {}", arrow(d), when(latest.at), d.reason),
        n => format!(
            "{} since {}, held {n} more time{} (reason as first given): {}",
            arrow(d),
            when(latest.at),
            if n == 1 { "" } else { "s" },
            d.reason
        ),
    }
}

const LABEL: usize = 15;

fn line(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "{label:<LABEL$}{value}");
}

/// The live view, drawn whole each time.
pub fn render_frame(frame: &Frame<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fastdata demo · {} · {} of {} · Ctrl-C stops",
        frame.run,
        clock(frame.elapsed),
        clock(frame.total)
    );
    out.push('\n');
    let load = match &frame.load {
        LoadNow::WarmingUp { waiting_for } => format!("warming up: {waiting_for}"),
        LoadNow::Running {
            index,
            phase,
            left,
            next,
        } => {
            let mut text = format!(
                "{} {} · phase {} of 3 · {} left",
                phase.load.name(),
                per_sec(phase.rate),
                index + 1,
                clock(*left)
            );
            if let Some(next) = next {
                let _ = write!(text, " · then {} {}", next.load.name(), per_sec(next.rate));
            }
            text
        }
        LoadNow::Draining { left } => format!(
            "producer paused; consumers draining (stopping in {} at most)",
            clock(*left)
        ),
    };
    line(&mut out, "Load", &load);
    line(
        &mut out,
        "Rates",
        &format!(
            "produce {} · consume {} (last 5 s, from the topic's offsets)",
            maybe_rate(frame.rates.produce),
            maybe_rate(frame.rates.consume)
        ),
    );
    match frame.status {
        Err(problem) => line(&mut out, "Scheduler", &format!("not answering: {problem}")),
        Ok(status) => {
            let lag = match status.lag {
                None => "not measured yet".to_owned(),
                Some(total) => {
                    let mut text = format!("{} messages · {}", count(total), status.lag_status);
                    if let Some(behind) = status.seconds_behind.filter(|s| *s >= 0.05) {
                        let _ = write!(text, " · oldest unread {behind:.1} s old");
                    }
                    text
                }
            };
            line(&mut out, "Lag", &lag);
            line(
                &mut out,
                "Consumers",
                &format!(
                    "{} running · {} desired · most so far {} (limit {})",
                    status.running, status.desired, frame.max_running, status.max
                ),
            );
            let last_change = frame.changes.last().map_or_else(
                || "none yet".to_owned(),
                |c| {
                    format!(
                        "{} at {}: {}",
                        arrow(&c.decision),
                        when(c.at),
                        c.decision.reason
                    )
                },
            );
            line(&mut out, "Last change", &last_change);
            if let Some(latest) = frame.latest {
                line(&mut out, "Last decision", &latest_decision(latest));
            }
            if let Some(held) = &status.held_reason {
                line(&mut out, "Held", held);
            }
            line(
                &mut out,
                "Sink",
                &format!(
                    "{}{}",
                    if status.sink_healthy {
                        ""
                    } else {
                        "UNHEALTHY: "
                    },
                    status.sink_summary
                ),
            );
            let mut scheduler = format!("{} · deploy {}", status.phase, status.plan);
            if status.phase != "running" && !status.phase_message.is_empty() {
                let _ = write!(scheduler, " · {}", status.phase_message);
            }
            line(&mut out, "Scheduler", &scheduler);
        }
    }
    let changes = if frame.changes.is_empty() {
        "none yet".to_owned()
    } else {
        frame
            .changes
            .iter()
            .map(|c| format!("{} {}", when(c.at), arrow(&c.decision)))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    line(&mut out, "Scaling", &changes);
    out.push('\n');
    let e = frame.endpoints;
    line(&mut out, "Status page", &format!("{}/", e.rest));
    line(
        &mut out,
        "REST API",
        &format!(
            "{}/v1/status · {}/v1/producers · all: {}/v1/openapi.json",
            e.rest, e.rest, e.rest
        ),
    );
    line(
        &mut out,
        "gRPC API",
        &format!("{} (fastdata.control.v1.Control)", e.grpc),
    );
    if let Some(cli) = &e.cli {
        line(
            &mut out,
            "CLI",
            &format!("{cli} --url {} status --watch", e.rest),
        );
    }
    line(
        &mut out,
        "Mesos",
        &format!("{}/state (devcluster, {} agents)", e.master, e.agents),
    );
    line(&mut out, "Logs", &e.logs);
    out
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The schedule ran to its end.
    Completed,
    /// Ctrl-C (or SIGTERM) at this point of the schedule.
    Interrupted {
        /// Time since the schedule started.
        at: Duration,
    },
}

/// How the final drain went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// The lag reached 0 after this long.
    Drained(Duration),
    /// The drain bound passed with this lag left.
    TimedOut {
        /// Messages left.
        lag: u64,
        /// The bound.
        after: Duration,
    },
    /// The lag could not be read.
    Unknown,
    /// Not needed: the demo stopped before the load schedule started.
    Skipped,
}

/// What the summary reports.
#[derive(Debug, Clone)]
pub struct Summary<'a> {
    /// The run's name.
    pub run: &'a str,
    /// How it ended.
    pub ending: Ending,
    /// The topic's partitions.
    pub partitions: i32,
    /// Events produced: the topic's log-end offsets, or why they could not be read.
    pub produced: Result<u64, String>,
    /// Rows in the run's table, or why they could not be counted.
    pub rows: Result<u64, String>,
    /// Dead letters in the slots' stores, or why they could not be read.
    pub dead_letters: Result<u64, String>,
    /// The final drain.
    pub drain: Drain,
    /// Every scaling change seen, oldest first.
    pub changes: &'a [TimedDecision],
    /// Most consumers seen running at once.
    pub max_running: u32,
    /// Most consumers allowed.
    pub max_consumers: u32,
    /// What became of the run's data, in a sentence.
    pub data: String,
}

/// The summary printed at the end.
pub fn render_summary(summary: &Summary<'_>) -> String {
    let mut out = String::new();
    let ending = match summary.ending {
        Ending::Completed => "the load schedule ran to its end".to_owned(),
        Ending::Interrupted { at } => format!("stopped by Ctrl-C at {}", clock(at)),
    };
    let _ = writeln!(out, "fastdata demo summary · {} · {ending}", summary.run);
    out.push('\n');
    let fail = |e: &String| format!("unknown ({e})");
    line(
        &mut out,
        "Produced",
        &summary.produced.as_ref().map_or_else(fail, |n| {
            format!(
                "{} events (log-end offsets of the {} partitions)",
                count(*n),
                summary.partitions
            )
        }),
    );
    let rows = match (&summary.rows, &summary.produced) {
        (Err(e), _) => fail(e),
        (Ok(rows), Ok(produced)) if rows == produced => {
            format!("{} rows: every produced event, once", count(*rows))
        }
        (Ok(rows), Ok(produced)) if rows < produced => format!(
            "{} rows: {} events not written yet when the consumers stopped (at-least-once: a next run of the group would write them)",
            count(*rows),
            count(produced - rows)
        ),
        (Ok(rows), Ok(produced)) => format!(
            "{} rows: {} more than produced, which should be impossible (one row per event key); look at the consumers' logs",
            count(*rows),
            count(rows - produced)
        ),
        (Ok(rows), Err(_)) => format!("{} rows", count(*rows)),
    };
    line(&mut out, "Cassandra", &rows);
    line(
        &mut out,
        "Dead letters",
        &summary
            .dead_letters
            .as_ref()
            .map_or_else(fail, |n| count(*n)),
    );
    let drain = match summary.drain {
        Drain::Drained(after) => format!(
            "lag 0 {:.0} s after the producer was paused",
            after.as_secs_f64()
        ),
        Drain::TimedOut { lag, after } => format!(
            "{} messages still unconsumed after {:.0} s",
            count(lag),
            after.as_secs_f64()
        ),
        Drain::Unknown => "unknown: the scheduler did not report the lag".to_owned(),
        Drain::Skipped => "skipped: stopped during the warm-up".to_owned(),
    };
    line(&mut out, "Drain", &drain);
    let ups = summary
        .changes
        .iter()
        .filter(|c| c.decision.to > c.decision.from)
        .count();
    let downs = summary.changes.len() - ups;
    line(
        &mut out,
        "Decisions",
        &format!(
            "{} scaling change{} ({ups} up, {downs} down)",
            summary.changes.len(),
            if summary.changes.len() == 1 { "" } else { "s" }
        ),
    );
    for change in summary.changes {
        let _ = writeln!(
            out,
            "{:LABEL$}{:>7}  {:<9}  {}",
            "",
            when(change.at),
            arrow(&change.decision),
            change.decision.reason
        );
    }
    line(
        &mut out,
        "Most consumers",
        &format!(
            "{} running at once (limit {})",
            summary.max_running, summary.max_consumers
        ),
    );
    line(&mut out, "Data", &summary.data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::schedule::Load;
    use serde_json::json;

    fn status_json() -> Value {
        json!({
            "phase": {"state": "running", "message": "subscribed and scaling"},
            "plan": {"status": "IN_PROGRESS", "message": "3 of 4 consumers running"},
            "consumers": {"desired": 4, "running": 3, "min": 1, "max": 5},
            "lag": {
                "total": 12_400, "status": "lagging", "seconds_behind": 4.25,
                "partitions": [
                    {"partition": 0, "log_end_offset": 5000, "committed_offset": 3000},
                    {"partition": 1, "log_end_offset": 4000, "committed_offset": null}
                ]
            },
            "sink": {"healthy": true, "summary": "Cassandra healthy on 3 of 3 consumers"},
            "held_reason": null,
            "producers": {"tasks": 1, "rate": 1600.0},
            "decisions": [
                {"at_unix_ms": 2_000, "action": "hold", "from": 4, "to": 4, "repeats": 3,
                 "reason": "backlog 12,400 > 1,000; but the last change has not joined"},
                {"at_unix_ms": 1_000, "action": "scale_up", "from": 1, "to": 4,
                 "reason": "backlog 8,000 > 1,000; need 4"}
            ]
        })
    }

    #[test]
    fn the_status_is_read_tolerantly() {
        let reading = StatusReading::from_json(&status_json());
        assert_eq!(reading.running, 3);
        assert_eq!(reading.desired, 4);
        assert_eq!(reading.max, 5);
        assert_eq!(reading.lag, Some(12_400));
        assert_eq!(
            reading.offsets,
            Some(Offsets {
                produced: 9000,
                consumed: 3000
            }),
            "a partition without a commit has consumed nothing"
        );
        assert_eq!(reading.decisions.len(), 2);
        assert!(reading.decisions[1].is_change());
        assert_eq!(reading.producer_rate, 1600.0);
        let empty = StatusReading::from_json(&json!({"lag": null}));
        assert_eq!(empty.lag, None);
        assert_eq!(empty.offsets, None);
        assert!(empty.decisions.is_empty());
    }

    fn endpoints() -> Endpoints {
        Endpoints {
            rest: "http://127.0.0.1:4000".into(),
            grpc: "http://127.0.0.1:4001".into(),
            master: "http://127.0.0.1:5050".into(),
            agents: 5,
            cli: Some("target/release/dcos-fastdata".into()),
            logs: "/tmp/demo".into(),
        }
    }

    #[test]
    fn a_frame_shows_load_rates_lag_consumers_decisions_and_where_things_are() {
        let reading = StatusReading::from_json(&status_json());
        let burst = Phase {
            load: Load::Burst,
            rate: 1600.0,
            start: Duration::from_secs(60),
            length: Duration::from_secs(90),
        };
        let after = Phase {
            load: Load::Recover,
            rate: 400.0,
            start: Duration::from_secs(150),
            length: Duration::from_secs(120),
        };
        let changes = vec![TimedDecision {
            at: Some(Duration::from_secs(64)),
            decision: reading.decisions[1].clone(),
        }];
        let latest = TimedDecision {
            at: Some(Duration::from_secs(66)),
            decision: reading.decisions[0].clone(),
        };
        let endpoints = endpoints();
        let frame = Frame {
            run: "fddemo_1",
            elapsed: Duration::from_secs(75),
            total: Duration::from_secs(270),
            load: LoadNow::Running {
                index: 1,
                phase: burst,
                left: Duration::from_secs(75),
                next: Some(after),
            },
            rates: Rates {
                produce: Some(1598.4),
                consume: Some(1210.0),
            },
            status: Ok(&reading),
            max_running: 3,
            changes: &changes,
            latest: Some(&latest),
            endpoints: &endpoints,
        };
        let text = render_frame(&frame);
        let expected = "\
fastdata demo · fddemo_1 · 1:15 of 4:30 · Ctrl-C stops

Load           BURST 1,600/s · phase 2 of 3 · 1:15 left · then steady again 400/s
Rates          produce 1,598/s · consume 1,210/s (last 5 s, from the topic's offsets)
Lag            12,400 messages · lagging · oldest unread 4.2 s old
Consumers      3 running · 4 desired · most so far 3 (limit 5)
Last change    ▲ 1 → 4 at 1:04: backlog 8,000 > 1,000; need 4
Last decision  = 4 since 1:06, held 3 more times (reason as first given): backlog 12,400 > 1,000; but the last change has not joined
Sink           Cassandra healthy on 3 of 3 consumers
Scheduler      running · deploy IN_PROGRESS: 3 of 4 consumers running
Scaling        1:04 ▲ 1 → 4

Status page    http://127.0.0.1:4000/
REST API       http://127.0.0.1:4000/v1/status · http://127.0.0.1:4000/v1/producers · all: http://127.0.0.1:4000/v1/openapi.json
gRPC API       http://127.0.0.1:4001 (fastdata.control.v1.Control)
CLI            target/release/dcos-fastdata --url http://127.0.0.1:4000 status --watch
Mesos          http://127.0.0.1:5050/state (devcluster, 5 agents)
Logs           /tmp/demo
";
        assert_eq!(text, expected);

        // Before the schedule, and with a scheduler that does not answer.
        let frame = Frame {
            load: LoadNow::WarmingUp {
                waiting_for: "the first consumer".into(),
            },
            status: Err("connection refused"),
            changes: &[],
            latest: Some(&changes[0]),
            ..frame
        };
        let text = render_frame(&frame);
        assert!(text.contains("Load           warming up: the first consumer\n"));
        assert!(text.contains("Scheduler      not answering: connection refused\n"));
        assert!(text.contains("Scaling        none yet\n"));
        assert!(!text.contains("Consumers"));
        assert!(
            !text.contains("Last decision"),
            "decisions are shown with the scheduler's status"
        );
    }

    #[test]
    fn the_summary_compares_rows_with_events_and_lists_changes() {
        let up = TimedDecision {
            at: Some(Duration::from_secs(64)),
            decision: DecisionSeen {
                at_unix_ms: 1,
                action: "scale_up".into(),
                from: 1,
                to: 4,
                reason: "backlog 8,000 > 1,000; need 4".into(),
                repeats: 0,
            },
        };
        let down = TimedDecision {
            at: Some(Duration::from_secs(190)),
            decision: DecisionSeen {
                at_unix_ms: 2,
                action: "scale_down".into(),
                from: 4,
                to: 1,
                reason: "backlog 0 < 200; 1 is enough".into(),
                repeats: 0,
            },
        };
        let changes = [up, down];
        let summary = Summary {
            run: "fddemo_1",
            ending: Ending::Completed,
            partitions: 6,
            produced: Ok(152_340),
            rows: Ok(152_340),
            dead_letters: Ok(0),
            drain: Drain::Drained(Duration::from_secs(3)),
            changes: &changes,
            max_running: 4,
            max_consumers: 5,
            data: "removed".into(),
        };
        let expected = "\
fastdata demo summary · fddemo_1 · the load schedule ran to its end

Produced       152,340 events (log-end offsets of the 6 partitions)
Cassandra      152,340 rows: every produced event, once
Dead letters   0
Drain          lag 0 3 s after the producer was paused
Decisions      2 scaling changes (1 up, 1 down)
                  1:04  ▲ 1 → 4    backlog 8,000 > 1,000; need 4
                  3:10  ▼ 4 → 1    backlog 0 < 200; 1 is enough
Most consumers 4 running at once (limit 5)
Data           removed
";
        assert_eq!(render_summary(&summary), expected);

        let short = Summary {
            ending: Ending::Interrupted {
                at: Duration::from_secs(100),
            },
            rows: Ok(150_000),
            dead_letters: Err("no volumes".into()),
            drain: Drain::TimedOut {
                lag: 2_340,
                after: Duration::from_secs(60),
            },
            changes: &[],
            ..summary
        };
        let text = render_summary(&short);
        assert!(text.contains("stopped by Ctrl-C at 1:40"));
        assert!(text.contains("150,000 rows: 2,340 events not written yet"));
        assert!(text.contains("Dead letters   unknown (no volumes)"));
        assert!(text.contains("2,340 messages still unconsumed after 60 s"));
        assert!(text.contains("0 scaling changes (0 up, 0 down)"));
        let early = Summary {
            drain: Drain::Skipped,
            ..short
        };
        assert!(
            render_summary(&early).contains("Drain          skipped: stopped during the warm-up\n")
        );
    }
}
