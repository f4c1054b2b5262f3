//! Table-driven tests of [`decide`]: every mode, every guard.

use std::time::Duration;

use tokio::time::Instant;

use super::config::{ScalingConfig, ScalingMode};
use super::decide::{Action, Capacity, Decision, Guard, PolicyState, ScalingInput, decide};

const SEC: Duration = Duration::from_secs(1);

/// 3 consumers on 12 partitions, 3,000/s in and out, no backlog, fresh observation at `t`.
fn input(t: Instant) -> ScalingInput {
    ScalingInput {
        at: Some(t),
        at_unix_ms: 1,
        consumers: 3,
        unhealthy_consumers: 0,
        partitions: 12,
        total_lag: 0,
        backlog: 0,
        backlog_settled: true,
        backlogged_partitions: 12,
        produce_rate: Some(3000.0),
        produce_rate_recent: Some(3000.0),
        consume_rate: Some(3000.0),
        rate_window_full: true,
        rate_window_start: Some(t),
        group_members: Some(3),
        rebalancing: false,
        stale: None,
    }
}

fn measured(per_consumer: f64) -> PolicyState {
    PolicyState::default().with_capacity(Capacity {
        per_consumer,
        measured: true,
    })
}

type Edit<T> = fn(&mut T);

struct Case {
    name: &'static str,
    config: Edit<ScalingConfig>,
    state: fn() -> PolicyState,
    input: Edit<ScalingInput>,
    want: (u32, Action, Option<Guard>),
    reason: &'static str,
}

fn run(cases: &[Case]) {
    let t = Instant::now();
    for case in cases {
        let mut config = ScalingConfig::default();
        (case.config)(&mut config);
        assert_eq!(config.validate(), Ok(()), "{}: config", case.name);
        let mut i = input(t);
        (case.input)(&mut i);
        let (d, _) = decide(&i, &config, &(case.state)(), t);
        assert_eq!(
            (d.target, d.action, d.guard),
            case.want,
            "{}: {}",
            case.name,
            d.reason
        );
        assert!(
            d.reason.contains(case.reason),
            "{}: {:?} should contain {:?}",
            case.name,
            d.reason,
            case.reason
        );
    }
}

fn no_edit<T>(_: &mut T) {}
fn step_mode(c: &mut ScalingConfig) {
    c.mode = ScalingMode::Step;
}
fn no_stabilization(c: &mut ScalingConfig) {
    c.stabilization_window = Duration::ZERO;
}
fn step_no_stabilization(c: &mut ScalingConfig) {
    step_mode(c);
    no_stabilization(c);
}

#[test]
fn proportional_mode() {
    use Action::*;
    run(&[
        Case {
            name: "sizes the group in one step",
            config: no_edit,
            state: || measured(1000.0),
            input: |i| {
                i.backlog = 12_400;
                i.total_lag = 13_000;
                i.produce_rate = Some(4000.0);
                i.produce_rate_recent = Some(4000.0);
                i.consume_rate = Some(3100.0);
            },
            // (4,000 + 12,400 / 60) / 1,000 = 4.2 -> 5
            want: (5, ScaleUp, None),
            reason: "backlog 12,400 > 500 and rising 900/s; 3 consumers drain 3,100/s against 4,000/s produced; need 5 to drain within 60 s",
        },
        Case {
            name: "the recent produce rate sizes a load step",
            config: no_edit,
            state: || measured(1000.0),
            input: |i| {
                i.backlog = 6_000;
                i.produce_rate = Some(2000.0);
                i.produce_rate_recent = Some(8500.0);
            },
            want: (9, ScaleUp, None),
            reason: "need 9",
        },
        Case {
            name: "capped at max_consumers",
            config: no_edit,
            state: || measured(1000.0),
            input: |i| {
                i.backlog = 60_000;
                i.produce_rate_recent = Some(20_000.0);
            },
            want: (10, ScaleUp, Some(Guard::AtLimit)),
            reason: "need 21 to drain within 60 s; capped at max_consumers 10",
        },
        Case {
            name: "never more consumers than partitions",
            config: no_edit,
            state: || measured(1000.0),
            input: |i| {
                i.partitions = 6;
                i.backlog = 60_000;
                i.produce_rate_recent = Some(20_000.0);
            },
            want: (6, ScaleUp, Some(Guard::AtLimit)),
            reason: "capped at the partition count 6",
        },
        Case {
            name: "holds when the current group drains the backlog in time",
            config: no_edit,
            state: || measured(1000.0),
            input: |i| {
                i.backlog = 6_000;
                i.produce_rate = Some(2000.0);
                i.produce_rate_recent = Some(2000.0);
            },
            want: (3, Hold, None),
            reason: "it clears within 60 s",
        },
        Case {
            name: "holds in the hysteresis band",
            config: no_edit,
            state: || measured(1000.0),
            input: |i| i.backlog = 300,
            want: (3, Hold, None),
            reason: "backlog 300 is between 100 and 500",
        },
        Case {
            name: "scale-down waits for the stabilization window",
            config: no_edit,
            state: || measured(1000.0),
            input: |i| {
                i.backlog = 50;
                i.produce_rate = Some(1000.0);
            },
            want: (3, Hold, Some(Guard::Stabilizing)),
            reason: "scaling down to 2 once the 60 s stabilization window agrees (0 s so far)",
        },
        Case {
            name: "scale-down sized from capacity with headroom",
            config: no_stabilization,
            state: || measured(1000.0),
            input: |i| {
                i.backlog = 50;
                i.produce_rate = Some(1000.0);
            },
            // 1,000 × 1.05 / 1,000 = 1.05 -> 2
            want: (2, ScaleDown, None),
            reason: "1,000/s produced and one consumer reads 1,000/s: 2 are enough with 5% headroom",
        },
        Case {
            name: "keeps every consumer the load needs",
            config: no_stabilization,
            state: || measured(1000.0),
            input: |i| i.backlog = 50,
            want: (3, Hold, None),
            reason: "all 3 are needed",
        },
        Case {
            name: "with only a lower bound of capacity, steps down by one",
            config: no_stabilization,
            state: || {
                PolicyState::default().with_capacity(Capacity {
                    per_consumer: 900.0,
                    measured: false,
                })
            },
            input: |i| {
                i.backlog = 50;
                i.consume_rate = Some(2700.0);
                i.produce_rate = Some(2700.0);
            },
            want: (2, ScaleDown, None),
            reason: "capacity unknown (the consumers never had a backlog to show their speed): one consumer fewer",
        },
        Case {
            name: "no throughput measured yet: no scale-up",
            config: no_edit,
            state: PolicyState::default,
            input: |i| {
                i.backlog = 50_000;
                i.rate_window_full = false;
            },
            want: (3, Hold, Some(Guard::Measuring)),
            reason: "per-consumer throughput is not measured yet",
        },
        Case {
            name: "a group that consumes nothing gets no more consumers",
            config: no_edit,
            state: PolicyState::default,
            input: |i| {
                i.backlog = 50_000;
                i.consume_rate = Some(0.0);
            },
            want: (3, Hold, Some(Guard::NotConsuming)),
            reason: "the 3 consumers committed nothing over the rate window",
        },
        Case {
            name: "capacity is measured from this very sample when busy",
            config: no_edit,
            state: PolicyState::default,
            input: |i| {
                i.backlog = 30_000;
                i.consume_rate = Some(3000.0);
                i.produce_rate_recent = Some(5500.0);
            },
            // (5,500 + 500) / 1,000 = 6
            want: (6, ScaleUp, None),
            reason: "need 6",
        },
    ]);
}

#[test]
fn step_mode_is_the_original_rule() {
    use Action::*;
    run(&[
        Case {
            name: "backlog above scale_up_lag: +1",
            config: step_mode,
            state: PolicyState::default,
            input: |i| i.backlog = 501,
            want: (4, ScaleUp, None),
            reason: "backlog 501 > 500 and 3 < max_consumers 10: one more consumer (step rule)",
        },
        Case {
            name: "any backlog: still only +1",
            config: step_mode,
            state: PolicyState::default,
            input: |i| i.backlog = 1_000_000,
            want: (4, ScaleUp, None),
            reason: "one more consumer",
        },
        Case {
            name: "exactly scale_up_lag: hold",
            config: step_mode,
            state: PolicyState::default,
            input: |i| i.backlog = 500,
            want: (3, Hold, None),
            reason: "holding 3 consumers (step rule)",
        },
        Case {
            name: "at max: hold",
            config: step_mode,
            state: PolicyState::default,
            input: |i| {
                i.consumers = 10;
                i.backlog = 5000;
            },
            want: (10, Hold, None),
            reason: "holding 10",
        },
        Case {
            name: "backlog below scale_down_lag: -1",
            config: step_no_stabilization,
            state: PolicyState::default,
            input: |i| i.backlog = 99,
            want: (2, ScaleDown, None),
            reason: "backlog 99 < 100 and 3 > min_consumers 1: one consumer fewer (step rule)",
        },
        Case {
            name: "exactly scale_down_lag: hold",
            config: step_no_stabilization,
            state: PolicyState::default,
            input: |i| i.backlog = 100,
            want: (3, Hold, None),
            reason: "holding",
        },
        Case {
            name: "at min: hold",
            config: step_no_stabilization,
            state: PolicyState::default,
            input: |i| i.consumers = 1,
            want: (1, Hold, None),
            reason: "holding 1",
        },
        Case {
            name: "step mode obeys the stabilization window too",
            config: step_mode,
            state: PolicyState::default,
            input: |i| i.backlog = 0,
            want: (3, Hold, Some(Guard::Stabilizing)),
            reason: "stabilization window",
        },
        Case {
            name: "step mode obeys the partition cap",
            config: step_mode,
            state: PolicyState::default,
            input: |i| {
                i.partitions = 3;
                i.backlog = 5000;
            },
            want: (3, Hold, Some(Guard::AtLimit)),
            reason: "holding at the partition count 3",
        },
    ]);
}

#[test]
fn guards_in_every_mode() {
    use Action::*;
    for mode in [ScalingMode::Step, ScalingMode::Proportional] {
        let cases = [
            Case {
                name: "stale observation",
                config: no_edit,
                state: || measured(1000.0),
                input: |i| {
                    i.backlog = 50_000;
                    i.stale = Some("Kafka brokers 127.0.0.1:9092 unreachable".into());
                },
                want: (3, Hold, Some(Guard::Stale)),
                reason: "no change: the lag data is stale (Kafka brokers 127.0.0.1:9092 unreachable)",
            },
            Case {
                name: "old observation",
                config: no_edit,
                state: || measured(1000.0),
                input: |i| {
                    i.backlog = 50_000;
                    i.at = i.at.map(|t| t - Duration::from_secs(11));
                },
                want: (3, Hold, Some(Guard::Stale)),
                reason: "is 11 s old (limit 10 s)",
            },
            Case {
                name: "no observation yet",
                config: no_edit,
                state: || measured(1000.0),
                input: |i| i.at = None,
                want: (3, Hold, Some(Guard::Stale)),
                reason: "no lag observation yet",
            },
            Case {
                name: "rebalancing",
                config: no_edit,
                state: || measured(1000.0),
                input: |i| {
                    i.backlog = 50_000;
                    i.rebalancing = true;
                    i.group_members = Some(4);
                },
                want: (3, Hold, Some(Guard::Rebalancing)),
                reason: "the group is rebalancing (4 members); this sample does not count",
            },
            Case {
                name: "first seconds: backlog not settled",
                config: no_edit,
                state: || measured(1000.0),
                input: |i| {
                    i.backlog = 50_000;
                    i.backlog_settled = false;
                },
                want: (3, Hold, Some(Guard::Measuring)),
                reason: "cannot yet tell backlog from commit timing",
            },
            Case {
                name: "unhealthy sink: no scale-up",
                config: no_edit,
                state: || measured(1000.0),
                input: |i| {
                    i.backlog = 50_000;
                    i.unhealthy_consumers = 2;
                },
                want: (3, Hold, Some(Guard::SinkUnhealthy)),
                reason: "but 2 of 3 consumers report failing Cassandra writes: not adding consumers to a failing sink",
            },
            Case {
                name: "unhealthy sink: scale-down still allowed",
                config: no_stabilization,
                state: || measured(1000.0),
                input: |i| {
                    i.backlog = 0;
                    i.produce_rate = Some(1500.0);
                    i.unhealthy_consumers = 3;
                },
                want: (2, ScaleDown, None),
                reason: "",
            },
            Case {
                name: "above max_consumers: down at once, even on stale data",
                config: |c| c.max_consumers = 2,
                state: PolicyState::default,
                input: |i| {
                    i.stale = Some("timeout".into());
                },
                want: (2, ScaleDown, Some(Guard::AtLimit)),
                reason: "3 consumers exceed max_consumers 2: scaling down to 2",
            },
            Case {
                name: "more consumers than partitions: down at once",
                config: no_edit,
                state: PolicyState::default,
                input: |i| {
                    i.partitions = 2;
                    i.backlog = 50_000;
                },
                want: (2, ScaleDown, Some(Guard::AtLimit)),
                reason: "3 consumers for 2 partitions: the extra ones would sit idle",
            },
            Case {
                name: "below min_consumers: up at once",
                config: |c| c.min_consumers = 5,
                state: PolicyState::default,
                input: no_edit,
                want: (5, ScaleUp, None),
                reason: "3 consumers, fewer than min_consumers 5: scaling up to 5",
            },
            Case {
                name: "paused: down to 0 whatever the backlog",
                config: |c| {
                    c.min_consumers = 0;
                    c.max_consumers = 0;
                },
                state: PolicyState::default,
                input: |i| i.backlog = 50_000,
                want: (0, ScaleDown, Some(Guard::AtLimit)),
                reason: "paused: min_consumers and max_consumers are 0",
            },
            Case {
                name: "paused with none running: hold at 0",
                config: |c| {
                    c.min_consumers = 0;
                    c.max_consumers = 0;
                },
                state: PolicyState::default,
                input: |i| {
                    i.consumers = 0;
                    i.backlog = 50_000;
                },
                want: (0, Hold, Some(Guard::AtLimit)),
                reason: "raise them to consume again",
            },
        ];
        for case in cases {
            let t = Instant::now();
            let mut config = ScalingConfig::default();
            (case.config)(&mut config);
            config.mode = mode;
            let mut i = input(t);
            (case.input)(&mut i);
            let (d, _) = decide(&i, &config, &(case.state)(), t);
            assert_eq!(
                (d.target, d.action, d.guard),
                case.want,
                "{mode}: {}: {}",
                case.name,
                d.reason
            );
            assert!(
                d.reason.contains(case.reason),
                "{mode}: {}: {:?}",
                case.name,
                d.reason
            );
        }
    }
}

/// Runs `decide` once per second for `inputs`, threading the state; returns the decisions.
fn drive(
    config: &ScalingConfig,
    state: PolicyState,
    t0: Instant,
    inputs: impl IntoIterator<Item = ScalingInput>,
) -> (Vec<Decision>, PolicyState) {
    let mut state = state;
    let mut out = Vec::new();
    for (k, mut i) in inputs.into_iter().enumerate() {
        let now = t0 + SEC * k as u32;
        i.at = Some(now);
        let (d, next) = decide(&i, config, &state, now);
        state = next;
        out.push(d);
    }
    (out, state)
}

fn summary(decisions: &[Decision]) -> Vec<(usize, u32, Option<Guard>)> {
    decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.is_change())
        .map(|(k, d)| (k, d.target, d.guard))
        .collect()
}

#[test]
fn no_second_scale_up_until_the_new_consumers_joined() {
    let t0 = Instant::now();
    let config = ScalingConfig::default();
    let busy = |consumers: u32, members: u32, rebalancing: bool| {
        let mut i = input(t0);
        i.backlog = 60_000;
        i.consumers = consumers;
        i.group_members = Some(members);
        i.rebalancing = rebalancing;
        i.produce_rate_recent = Some(5000.0);
        i
    };
    // t=0: 3 -> 6. The load keeps growing; t=1..4: launching (3 members); t=5..6:
    // rebalancing; t=7: joined, so the next scale-up goes through.
    let mut inputs = vec![busy(3, 3, false)];
    inputs.extend((1..5).map(|_| busy(3, 3, false)));
    inputs.extend((5..7).map(|_| busy(6, 6, true)));
    inputs.push(busy(6, 6, false));
    for i in &mut inputs[1..] {
        i.produce_rate_recent = Some(9000.0);
    }
    let (decisions, _) = drive(&config, measured(1000.0), t0, inputs);
    assert_eq!(summary(&decisions), vec![(0, 6, None), (7, 10, None)]);
    assert_eq!(decisions[1].guard, Some(Guard::AwaitingJoin));
    assert!(
        decisions[1].reason.contains("(1 s ago, 3 of 6 members) has not joined the group yet; next scale-up once it has, or in 119 s"),
        "{}",
        decisions[1].reason
    );
    assert_eq!(decisions[5].guard, Some(Guard::Rebalancing));
}

#[test]
fn cooldown_ends_the_wait_for_consumers_that_never_join() {
    let t0 = Instant::now();
    let config = ScalingConfig {
        cooldown: Duration::from_secs(30),
        ..ScalingConfig::default()
    };
    let inputs = (0..40).map(|k| {
        let mut i = input(t0);
        i.backlog = 60_000;
        i.produce_rate_recent = Some(if k == 0 { 5000.0 } else { 9000.0 });
        i
    });
    // The consumers never reach 6 (say the offers never come): the next scale-up waits 30 s.
    let (decisions, _) = drive(&config, measured(1000.0), t0, inputs);
    assert_eq!(summary(&decisions), vec![(0, 6, None), (30, 10, None)]);
    assert_eq!(decisions[29].guard, Some(Guard::AwaitingJoin));
}

#[test]
fn scale_down_needs_every_sample_of_the_window() {
    let t0 = Instant::now();
    let config = ScalingConfig::default();
    let quiet = || {
        let mut i = input(t0);
        i.backlog = 10;
        i.produce_rate = Some(1000.0);
        i.consume_rate = Some(1000.0);
        i
    };
    // 60 quiet seconds then down; but a single busy sample (backlog in the band: "hold 3")
    // at t=30 pushes the scale-down to t=91 (the window includes both ends), and a
    // rebalancing sample is ignored.
    let mut inputs: Vec<ScalingInput> = (0..100).map(|_| quiet()).collect();
    inputs[30].backlog = 300;
    inputs[45].rebalancing = true;
    inputs[45].backlog = 50_000;
    let (decisions, _) = drive(&config, measured(1000.0), t0, inputs);
    assert_eq!(summary(&decisions), vec![(91, 2, None)]);
    assert!(
        decisions[60]
            .reason
            .contains("but a sample of the last 60 s asked for 3"),
        "{}",
        decisions[60].reason
    );
    assert!(
        decisions[91]
            .reason
            .contains("every sample of the last 60 s agrees on 2 or fewer"),
        "{}",
        decisions[91].reason
    );
}

#[test]
fn scale_down_goes_to_the_highest_recommendation_of_the_window() {
    let t0 = Instant::now();
    let config = ScalingConfig {
        max_consumers: 12,
        ..ScalingConfig::default()
    };
    // 10 consumers; the produce rate falls from 6,000/s to 1,000/s halfway through the window.
    let inputs = (0..61).map(|k| {
        let mut i = input(t0);
        i.consumers = 10;
        i.group_members = Some(10);
        i.backlog = 0;
        i.produce_rate = Some(if k < 30 { 6000.0 } else { 1000.0 });
        i
    });
    let (decisions, _) = drive(&config, measured(1000.0), t0, inputs);
    // 6,000 × 1.05 / 1,000 = 6.3 -> 7 was asked for within the window.
    assert_eq!(summary(&decisions), vec![(60, 7, None)]);
}

#[test]
fn step_mode_acts_every_interval_exactly() {
    let t0 = Instant::now();
    // The original rule: no stabilization window, no waiting for joins.
    let config = ScalingConfig {
        mode: ScalingMode::Step,
        stabilization_window: Duration::ZERO,
        cooldown: Duration::ZERO,
        ..ScalingConfig::default()
    };
    let mut backlog: Vec<u64> = vec![5000; 60];
    backlog.extend([300; 30]);
    backlog.extend([0; 45]);
    let inputs = backlog.iter().map(|&b| {
        let mut i = input(t0);
        i.backlog = b;
        i
    });
    let (decisions, _) = drive(&config, PolicyState::default(), t0, inputs);
    assert_eq!(
        summary(&decisions),
        vec![
            (0, 4, None),
            (15, 5, None),
            (30, 6, None),
            (45, 7, None),
            (90, 6, None),
            (105, 5, None),
            (120, 4, None)
        ]
    );
    assert_eq!(decisions[5].guard, Some(Guard::StepInterval));
    assert!(
        decisions[5]
            .reason
            .contains("step mode acts every 15 s, next in 10 s"),
        "{}",
        decisions[5].reason
    );
}

#[test]
fn capacity_is_measured_only_from_settled_full_windows() {
    let t0 = Instant::now();
    let config = ScalingConfig::default();
    let at = |k: u64| t0 + SEC * k as u32;
    // (backlog already at t=0, window full, window start, backlog at t=20, consume rate)
    //   -> capacity after the decision at t=20
    let cases = [
        (
            "backlog throughout the window: a measurement",
            true,
            true,
            0,
            50_000,
            3300.0,
            Some((1100.0, true)),
        ),
        (
            "backlog only at its end: a lower bound",
            false,
            true,
            0,
            50_000,
            3300.0,
            Some((1100.0, false)),
        ),
        (
            "idle: a lower bound",
            false,
            true,
            0,
            0,
            2400.0,
            Some((800.0, false)),
        ),
        ("window not full", true, false, 0, 50_000, 3300.0, None),
    ];
    for (name, busy_before, full, start, backlog, consumed, want) in cases {
        let mut state = PolicyState::default();
        if busy_before {
            let mut before = input(at(0));
            before.backlog = 50_000;
            before.rate_window_full = false;
            state = decide(&before, &config, &state, at(0)).1;
        }
        let mut i = input(at(20));
        i.rate_window_full = full;
        i.rate_window_start = Some(at(start));
        i.backlog = backlog;
        i.consume_rate = Some(consumed);
        i.produce_rate_recent = Some(0.0);
        i.produce_rate = Some(0.0);
        let (_, state) = decide(&i, &config, &state, at(20));
        assert_eq!(
            state.capacity().map(|c| (c.per_consumer, c.measured)),
            want,
            "{name}"
        );
    }

    // A lower bound never lowers a measurement; a busy window replaces it (the sink got slower).
    let mut idle = input(at(20));
    idle.consume_rate = Some(1500.0);
    let (_, state) = decide(&idle, &config, &measured(1000.0), at(20));
    assert_eq!(
        state.capacity(),
        Some(Capacity {
            per_consumer: 1000.0,
            measured: true
        })
    );
    let mut busy = input(at(20));
    busy.backlog = 50_000;
    busy.consume_rate = Some(1500.0);
    let (_, state) = decide(&busy, &config, &measured(1000.0), at(20));
    assert_eq!(
        state.capacity(),
        Some(Capacity {
            per_consumer: 500.0,
            measured: true
        })
    );

    // After a change, windows that began before the group settled do not count.
    let mut grow = input(at(0));
    grow.backlog = 50_000;
    grow.produce_rate_recent = Some(5000.0);
    let (d, state) = decide(&grow, &config, &measured(1000.0), at(0));
    assert_eq!(d.target, 6);
    let mut joined = input(at(8));
    joined.consumers = 6;
    joined.group_members = Some(6);
    joined.backlog = 50_000;
    joined.consume_rate = Some(1200.0);
    joined.rate_window_start = Some(at(0));
    let (_, state) = decide(&joined, &config, &state, at(8));
    assert_eq!(
        state.capacity().map(|c| c.per_consumer),
        Some(1000.0),
        "window started before the join"
    );
    let mut later = joined;
    later.at = Some(at(18));
    later.rate_window_start = Some(at(8));
    later.consume_rate = Some(6600.0);
    let (_, state) = decide(&later, &config, &state, at(18));
    assert_eq!(state.capacity().map(|c| c.per_consumer), Some(1100.0));
}
