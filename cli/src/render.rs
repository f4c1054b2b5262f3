//! Text for a terminal: the status summary, the thresholds, the decision log. Pure: values
//! in, a `String` out, so every layout is tested without a server.

use std::fmt::Write as _;

use crate::model::{Decision, Producers, Scaling, Status};

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

fn rate(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{}/s", count(r.max(0.0).round() as u64)),
        _ => "not measured yet".to_owned(),
    }
}

fn seconds(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.0} min", s / 60.0)
    } else if s >= 10.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// `2026-11-25T10:00:00.123Z` → `10:00:00`; anything else as it is.
fn clock(at: &str) -> &str {
    at.get(11..19).unwrap_or(at)
}

/// The human summary of `GET /v1/status`.
pub fn status(status: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} · {} · deploy {}",
        status.service_name,
        status.phase.state.replace('_', " "),
        status.plan.status
    );
    if !status.plan.message.is_empty() {
        let _ = writeln!(out, "  {}", status.plan.message);
    }
    if status.phase.state == "fatal" {
        let _ = writeln!(out, "\nSTOPPED: {}", status.phase.message);
        if let Some(remedy) = &status.phase.remedy {
            let _ = writeln!(out, "To fix:  {remedy}");
        }
    } else if status.phase.state != "running" && !status.phase.message.is_empty() {
        let _ = writeln!(out, "  {}", status.phase.message);
    }
    out.push('\n');
    match &status.lag {
        None => {
            let _ = writeln!(out, "Lag        not measured yet");
        }
        Some(lag) => {
            let mut line = format!(
                "Lag        {} messages (backlog {}) · {}",
                count(lag.total),
                count(lag.backlog),
                lag.status
            );
            if let Some(behind) = lag.seconds_behind {
                let _ = write!(line, " · oldest unread {} old", seconds(behind));
            }
            if let Some(drain) = lag.seconds_to_drain {
                let _ = write!(line, " · drains in {}", seconds(drain));
            }
            if lag.rebalancing {
                line.push_str(" · group rebalancing");
            }
            let _ = writeln!(out, "{line}");
            if let Some(stale) = &lag.stale {
                let _ = writeln!(
                    out,
                    "           STALE after {} failed reads: {}",
                    stale.failures, stale.reason
                );
            }
            let _ = writeln!(
                out,
                "Rates      produce {} · consume {}",
                rate(lag.produce_rate_per_sec),
                rate(lag.consume_rate_per_sec)
            );
        }
    }
    let _ = writeln!(
        out,
        "Consumers  {} running · {} desired · bounds {}..{} · mode {}",
        status.consumers.running,
        status.consumers.desired,
        status.consumers.min,
        status.consumers.max,
        status.scaling.mode.as_deref().unwrap_or("?")
    );
    if let (Some(up), Some(down)) = (status.scaling.scale_up_lag, status.scaling.scale_down_lag) {
        let _ = writeln!(
            out,
            "Thresholds grow above {} · shrink below {} (backlog, messages)",
            count(up),
            count(down)
        );
    }
    if status.producers.tasks > 0 {
        let _ = writeln!(out, "Producers  {}", producer_line(&status.producers));
    }
    let _ = writeln!(
        out,
        "Sink       {}{}",
        if status.sink.healthy {
            ""
        } else {
            "UNHEALTHY: "
        },
        status.sink.summary
    );
    if let Some(held) = &status.held_reason {
        let _ = writeln!(out, "Held       {held}");
    }
    if let Some(lag) = status.lag.as_ref().filter(|l| !l.partitions.is_empty()) {
        let _ = writeln!(out, "\nPARTITION         LAG  STATUS    OLDEST UNREAD");
        for p in &lag.partitions {
            let behind = p.seconds_behind.map_or_else(|| "-".to_owned(), seconds);
            let note = if p.committed_offset.is_none() {
                "  (never committed)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{:>9}  {:>10}  {:<8}  {behind}{note}",
                p.partition,
                count(p.lag),
                p.status
            );
        }
    }
    if !status.decisions.is_empty() {
        let _ = writeln!(out, "\nRecent decisions (newest first, UTC)");
        out.push_str(&decision_lines(&status.decisions));
    }
    out
}

/// A rate in events per second: `2,500/s`, `0.5/s`.
fn events(rate: f64) -> String {
    if rate >= 100.0 || rate.fract() == 0.0 {
        format!("{}/s", count(rate.max(0.0).round() as u64))
    } else {
        format!("{rate:.1}/s")
    }
}

/// `2 producer tasks · 800/s each · 1,600/s in all`, or `... · paused`.
fn producer_line(producers: &Producers) -> String {
    let tasks = if producers.tasks == 1 {
        "1 producer task".to_owned()
    } else {
        format!("{} producer tasks", producers.tasks)
    };
    if producers.rate <= 0.0 {
        return format!("{tasks} · paused (rate 0)");
    }
    let mut line = format!("{tasks} · {} each", events(producers.rate));
    if producers.tasks > 1 {
        let _ = write!(
            line,
            " · {} in all",
            events(producers.rate * f64::from(producers.tasks))
        );
    }
    line
}

/// `producers`: the simulated producer tasks and their rate.
pub fn producers(producers: &Producers) -> String {
    if producers.tasks == 0 {
        return "No producer tasks: this scheduler runs none (FASTDATA_PRODUCER_COUNT is 0, as on a real cluster whose sensors produce by themselves).\n".to_owned();
    }
    format!("{}\n", producer_line(producers))
}

/// `producers set-rate`: what is in force now.
pub fn producer_rate_set(producers: &Producers) -> String {
    let now = if producers.tasks == 0 {
        format!(
            "Producer rate set to {} per task, but this scheduler runs no producer tasks.",
            events(producers.rate)
        )
    } else {
        format!(
            "Producer rate set: {}. Running producers changed at once.",
            producer_line(producers)
        )
    };
    format!(
        "{now}\nNot persisted: a restarted scheduler starts its producers at the configured rate (FASTDATA_PRODUCER_RATE).\n"
    )
}

/// One line per decision: time, change, guard, reason.
pub fn decision_lines(decisions: &[Decision]) -> String {
    let mut out = String::new();
    for d in decisions {
        let change = match d.action.as_str() {
            "scale_up" => format!("▲ {} → {}", d.from, d.to),
            "scale_down" => format!("▼ {} → {}", d.from, d.to),
            _ => format!("= {}", d.to),
        };
        let repeats = if d.repeats > 0 {
            format!(" (×{})", u64::from(d.repeats) + 1)
        } else {
            String::new()
        };
        let guard = d
            .guard
            .as_deref()
            .map(|g| format!("[{}] ", g.replace('_', " ")))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}  {:<9}  {guard}{}{repeats}",
            clock(&d.at),
            change,
            d.reason
        );
    }
    out
}

/// The thresholds as a table; fields in `changed` are marked with `*`.
pub fn scaling(scaling: &Scaling, changed: &[&str]) -> String {
    let secs = |v: Option<f64>| v.map(|s| format!("{s} s"));
    let rows: Vec<(&str, Option<String>, &str)> = vec![
        (
            "mode",
            scaling.mode.clone(),
            "step: +1/-1 per interval; proportional: sized from throughput",
        ),
        (
            "scale_up_lag",
            scaling.scale_up_lag.map(count),
            "grow above this backlog (messages)",
        ),
        (
            "scale_down_lag",
            scaling.scale_down_lag.map(count),
            "shrink below this backlog",
        ),
        (
            "min_consumers",
            scaling.min_consumers.map(|n| n.to_string()),
            "fewest consumers",
        ),
        (
            "max_consumers",
            scaling.max_consumers.map(|n| n.to_string()),
            "most consumers (the partition count caps it too)",
        ),
        (
            "step_interval_secs",
            secs(scaling.step_interval_secs),
            "step mode acts once per interval",
        ),
        (
            "stabilization_window_secs",
            secs(scaling.stabilization_window_secs),
            "scale down only when the whole window agrees",
        ),
        (
            "cooldown_secs",
            secs(scaling.cooldown_secs),
            "wait after a change before growing again",
        ),
        (
            "target_drain_time_secs",
            secs(scaling.target_drain_time_secs),
            "proportional: drain the backlog within",
        ),
        (
            "headroom",
            scaling.headroom.map(|h| h.to_string()),
            "proportional: spare capacity kept",
        ),
        (
            "max_observation_age_secs",
            secs(scaling.max_observation_age_secs),
            "older lag readings are stale",
        ),
    ];
    let mut out = String::new();
    for (name, value, help) in rows {
        let Some(value) = value else { continue };
        let mark = if changed.contains(&name) { "*" } else { " " };
        let flag = crate::error::flag_of(name).unwrap_or("");
        let _ = writeln!(out, "{mark} {name:<26} {value:<14} {flag:<23} {help}");
    }
    for (name, value) in &scaling.other {
        let mark = if changed.contains(&name.as_str()) {
            "*"
        } else {
            " "
        };
        let _ = writeln!(out, "{mark} {name:<26} {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Consumers, Lag, Partition, Phase, Plan, Producers, Sink};

    fn sample() -> Status {
        Status {
            service_name: "fastdata".into(),
            at: "2026-11-25T10:00:00.000Z".into(),
            summary: String::new(),
            phase: Phase {
                state: "running".into(),
                message: "subscribed and scaling".into(),
                remedy: None,
            },
            consumers: Consumers {
                desired: 4,
                running: 3,
                min: 1,
                max: 10,
            },
            lag: Some(Lag {
                total: 12_400,
                backlog: 11_900,
                status: "lagging".into(),
                produce_rate_per_sec: Some(3_100.4),
                consume_rate_per_sec: Some(2_890.2),
                seconds_behind: Some(7.9),
                seconds_to_drain: Some(4.29),
                rebalancing: false,
                stale: None,
                partitions: vec![
                    Partition {
                        partition: 0,
                        lag: 4_100,
                        status: "lagging".into(),
                        committed_offset: Some(1),
                        log_end_offset: 4_101,
                        seconds_behind: Some(7.9),
                    },
                    Partition {
                        partition: 1,
                        lag: 400,
                        status: "ok".into(),
                        committed_offset: None,
                        log_end_offset: 400,
                        seconds_behind: None,
                    },
                ],
            }),
            sink: Sink {
                healthy: false,
                summary: "Cassandra writes failing on 2 of 3 consumers: timeout".into(),
            },
            held_reason: Some("scale-up held: Cassandra unhealthy on 2 of 3 consumers".into()),
            scaling: Scaling {
                mode: Some("proportional".into()),
                scale_up_lag: Some(5_000),
                scale_down_lag: Some(500),
                ..Scaling::default()
            },
            producers: Producers::default(),
            plan: Plan {
                status: "IN_PROGRESS".into(),
                message: "3 of 4 consumers running".into(),
            },
            decisions: vec![
                Decision {
                    at: "2026-11-25T09:59:58.000Z".into(),
                    repeats: 4,
                    action: "hold".into(),
                    from: 3,
                    to: 3,
                    guard: Some("sink_unhealthy".into()),
                    reason: "scale-up held: Cassandra unhealthy".into(),
                    mode: "proportional".into(),
                },
                Decision {
                    at: "2026-11-25T09:51:00.000Z".into(),
                    repeats: 0,
                    action: "scale_up".into(),
                    from: 2,
                    to: 3,
                    guard: None,
                    reason: "backlog 6,100 above 500".into(),
                    mode: "proportional".into(),
                },
            ],
        }
    }

    #[test]
    fn the_status_reads_like_an_operator_summary() {
        let text = status(&sample());
        let expected = "\
fastdata · running · deploy IN_PROGRESS
  3 of 4 consumers running

Lag        12,400 messages (backlog 11,900) · lagging · oldest unread 7.9 s old · drains in 4.3 s
Rates      produce 3,100/s · consume 2,890/s
Consumers  3 running · 4 desired · bounds 1..10 · mode proportional
Thresholds grow above 5,000 · shrink below 500 (backlog, messages)
Sink       UNHEALTHY: Cassandra writes failing on 2 of 3 consumers: timeout
Held       scale-up held: Cassandra unhealthy on 2 of 3 consumers

PARTITION         LAG  STATUS    OLDEST UNREAD
        0       4,100  lagging   7.9 s
        1         400  ok        -  (never committed)

Recent decisions (newest first, UTC)
  09:59:58  = 3        [sink unhealthy] scale-up held: Cassandra unhealthy (×5)
  09:51:00  ▲ 2 → 3    backlog 6,100 above 500
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_fatal_scheduler_says_what_to_do() {
        let mut s = sample();
        s.phase = Phase {
            state: "fatal".into(),
            message: "Framework has been removed".into(),
            remedy: Some("run `dcos package uninstall fastdata`".into()),
        };
        let text = status(&s);
        assert!(text.contains("\nSTOPPED: Framework has been removed\nTo fix:  run `dcos package uninstall fastdata`\n"));
    }

    #[test]
    fn the_scaling_table_marks_changes() {
        let table = scaling(
            &Scaling {
                mode: Some("step".into()),
                scale_up_lag: Some(2_000),
                step_interval_secs: Some(7.5),
                ..Scaling::default()
            },
            &["scale_up_lag"],
        );
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("* scale_up_lag"), "{table}");
        assert!(lines[1].contains("2,000") && lines[1].contains("--scale-up-lag"));
        assert!(lines[2].contains("7.5 s"));
    }

    #[test]
    fn producers_read_as_tasks_and_rates() {
        let one = Producers {
            tasks: 1,
            rate: 2_500.0,
        };
        assert_eq!(producers(&one), "1 producer task · 2,500/s each\n");
        let three = Producers {
            tasks: 3,
            rate: 0.5,
        };
        assert_eq!(
            producers(&three),
            "3 producer tasks · 0.5/s each · 1.5/s in all\n"
        );
        let paused = Producers {
            tasks: 2,
            rate: 0.0,
        };
        assert_eq!(producers(&paused), "2 producer tasks · paused (rate 0)\n");
        assert!(producers(&Producers::default()).starts_with("No producer tasks"));
        assert!(
            producer_rate_set(&one)
                .starts_with("Producer rate set: 1 producer task · 2,500/s each. Running producers changed at once.\n")
        );
        assert!(
            producer_rate_set(&Producers {
                tasks: 0,
                rate: 10.0
            })
            .contains("runs no producer tasks")
        );

        // The status shows them only when there are any.
        let mut s = sample();
        assert!(!status(&s).contains("Producers"));
        s.producers = one;
        assert!(
            status(&s)
                .contains("(backlog, messages)\nProducers  1 producer task · 2,500/s each\nSink"),
            "{}",
            status(&s)
        );
    }

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
