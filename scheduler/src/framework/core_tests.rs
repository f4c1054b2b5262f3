//! Scenario tests of the slot lifecycle: plain values in, writes and calls out.

use fastdata_proto::v1::{
    AgentId, DomainInfo, FrameworkId, Offer, OfferId, TaskId, TaskState, TaskStatus, domain_info,
    offer::operation,
    scheduler::call,
    task_status::{Reason, Source},
};
use tokio::time::{Duration, Instant};

use super::core::{CoreConfig, Effects, Framework, Now, Timings, Write};
use super::resources::{Amount, ReservationLabels, resources};
use super::slots::{Goal, SlotName, SlotRecord};
use super::tasks::TaskTemplate;
use crate::status::PlanStatus;

const ROLE: &str = "fastdata-role";
const FW: &str = "fw-1";

fn template(producers: u32) -> TaskTemplate {
    let mut template = super::tasks::tests::template();
    template.tasks.producer_count = producers;
    template
}

fn framework(records: Vec<SlotRecord>, producers: u32) -> Framework {
    Framework::new(
        CoreConfig {
            role: ROLE.into(),
            principal: "fastdata-principal".into(),
            template: template(producers),
            // The sweep after subscribing has its own test; elsewhere it would only add a
            // REVIVE and delay the SUPPRESS.
            timings: Timings {
                sweep_after_subscribe: Duration::ZERO,
                ..Timings::default()
            },
        },
        records,
        Some(FW.into()),
        7,
    )
}

/// A clock the test advances by hand.
struct Clock {
    start: Instant,
    elapsed: Duration,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            start: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }
    fn now(&self) -> Now {
        Now {
            at: self.start + self.elapsed,
            unix_ms: 1_800_000_000_000 + self.elapsed.as_millis() as u64,
        }
    }
    fn advance(&mut self, secs: u64) -> Now {
        self.elapsed += Duration::from_secs(secs);
        self.now()
    }
}

fn offer(n: u32, free: Amount, reserved: &[(&str, &str)]) -> Offer {
    let mut all = resources(free, ROLE, None);
    for (slot, id) in reserved {
        all.extend(resources(
            Amount::new(1.1, 576.0),
            ROLE,
            Some(&ReservationLabels {
                role: ROLE.into(),
                principal: "fastdata-principal".into(),
                framework_id: FW.into(),
                slot: (*slot).into(),
                resource_id: (*id).into(),
            }),
        ));
    }
    Offer {
        id: OfferId {
            value: format!("o-{n}-{}", uuid::Uuid::new_v4().simple()),
        },
        framework_id: FrameworkId { value: FW.into() },
        agent_id: AgentId {
            value: format!("agent-{n}"),
        },
        hostname: format!("host-{n}"),
        domain: Some(DomainInfo {
            fault_domain: Some(domain_info::FaultDomain {
                region: domain_info::fault_domain::RegionInfo { name: "r".into() },
                zone: domain_info::fault_domain::ZoneInfo {
                    name: format!("zone-{}", n % 3),
                },
            }),
        }),
        resources: all,
        ..Default::default()
    }
}

fn big(n: u32) -> Offer {
    offer(n, Amount::new(4.0, 4096.0), &[])
}

fn update(
    task_id: &str,
    agent: &str,
    state: TaskState,
    uuid: bool,
    reason: Option<Reason>,
) -> TaskStatus {
    TaskStatus {
        task_id: TaskId {
            value: task_id.into(),
        },
        state: state as i32,
        agent_id: Some(AgentId {
            value: agent.into(),
        }),
        source: Some(if uuid {
            Source::Executor
        } else {
            Source::Master
        } as i32),
        uuid: uuid.then(fastdata_proto::mesos_ext::new_status_uuid),
        reason: reason.map(|r| r as i32),
        ..Default::default()
    }
}

fn kinds(effects: &Effects) -> Vec<String> {
    effects
        .calls
        .iter()
        .map(|c| {
            let kind = call::Type::try_from(c.r#type.unwrap_or(0))
                .map_or("?".into(), |t| t.as_str_name().to_owned());
            match c.accept.as_ref() {
                Some(accept) => {
                    let ops: Vec<&str> = accept
                        .operations
                        .iter()
                        .map(|o| match operation::Type::try_from(o.r#type.unwrap_or(0)) {
                            Ok(operation::Type::Reserve) => "RESERVE",
                            Ok(operation::Type::Launch) => "LAUNCH",
                            Ok(operation::Type::Unreserve) => "UNRESERVE",
                            _ => "?",
                        })
                        .collect();
                    format!("ACCEPT({})", ops.join("+"))
                }
                None => kind,
            }
        })
        .collect()
}

fn launched(effects: &Effects) -> Vec<(String, String)> {
    effects
        .calls
        .iter()
        .filter_map(|c| c.accept.as_ref())
        .flat_map(|a| a.operations.iter())
        .filter_map(|o| o.launch.as_ref())
        .flat_map(|l| l.task_infos.iter())
        .map(|t| (t.task_id.value.clone(), t.agent_id.value.clone()))
        .collect()
}

fn task_of(f: &Framework, slot: SlotName) -> (String, String) {
    let record = &f.slot(slot).expect("slot").record;
    (
        record.task_id.clone().expect("task"),
        record.agent_id.clone().expect("agent"),
    )
}

/// Runs a framework up to `n` running consumers on agents 0..n.
fn running(n: u32) -> (Framework, Clock) {
    let mut clock = Clock::new();
    let mut f = framework(Vec::new(), 0);
    f.on_subscribed(FW, clock.now());
    f.set_target(n);
    f.tick(clock.now());
    let effects = f.on_offers(&(0..n).map(big).collect::<Vec<_>>(), clock.advance(1));
    assert_eq!(launched(&effects).len(), n as usize);
    for i in 0..n {
        let (task, agent) = task_of(&f, SlotName::consumer(i));
        f.on_update(
            update(&task, &agent, TaskState::TaskRunning, true, None),
            clock.now(),
        );
    }
    assert_eq!(f.running_consumers(), n);
    (f, clock)
}

#[test]
fn growing_reserves_and_launches_persisting_first_then_suppresses() {
    let mut clock = Clock::new();
    let mut f = framework(Vec::new(), 0);
    let effects = f.on_subscribed(FW, clock.now());
    assert_eq!(
        kinds(&effects),
        ["SUPPRESS"],
        "nothing known, nothing wanted"
    );
    f.set_target(2);
    let effects = f.tick(clock.now());
    assert_eq!(kinds(&effects), ["REVIVE"]);
    assert_eq!(
        effects.writes,
        [
            Write::PutSlot(
                SlotName::consumer(0),
                Box::new(SlotRecord::new(
                    SlotName::consumer(0),
                    Some("fastdata-consumer-0".into())
                ))
            ),
            Write::PutSlot(
                SlotName::consumer(1),
                Box::new(SlotRecord::new(
                    SlotName::consumer(1),
                    Some("fastdata-consumer-1".into())
                ))
            ),
        ]
    );

    let effects = f.on_offers(&[big(0), big(3), big(1)], clock.advance(1));
    assert_eq!(
        kinds(&effects),
        [
            "ACCEPT(RESERVE+LAUNCH)",
            "ACCEPT(RESERVE+LAUNCH)",
            "DECLINE",
            "SUPPRESS"
        ],
        "every slot placed: no more offers wanted"
    );
    // agent-0 and agent-3 share zone-0: the spread takes agent-1 (zone-1) for the second slot.
    let agents: Vec<String> = launched(&effects).into_iter().map(|(_, a)| a).collect();
    assert_eq!(agents, ["agent-0", "agent-1"]);
    let recorded: Vec<Option<String>> = effects
        .writes
        .iter()
        .map(|w| match w {
            Write::PutSlot(_, r) => r.task_id.clone(),
            Write::DeleteSlot(_) => None,
        })
        .collect();
    let ids: Vec<Option<String>> = launched(&effects)
        .into_iter()
        .map(|(t, _)| Some(t))
        .collect();
    assert_eq!(
        recorded, ids,
        "each task id is written before its LAUNCH is sent"
    );

    for i in 0..2 {
        let (task, agent) = task_of(&f, SlotName::consumer(i));
        let effects = f.on_update(
            update(&task, &agent, TaskState::TaskStarting, true, None),
            clock.now(),
        );
        assert_eq!(kinds(&effects), ["ACKNOWLEDGE"]);
        let effects = f.on_update(
            update(&task, &agent, TaskState::TaskRunning, true, None),
            clock.now(),
        );
        assert_eq!(kinds(&effects), ["ACKNOWLEDGE"]);
    }
    assert_eq!(f.running_consumers(), 2);
    assert_eq!(f.plan().0, PlanStatus::Complete);
    assert!(f.tick(clock.advance(1)).is_empty(), "suppressed once");
}

#[test]
fn offers_that_do_not_fit_are_declined_with_the_reason() {
    let mut clock = Clock::new();
    let mut f = framework(Vec::new(), 0);
    f.on_subscribed(FW, clock.now());
    f.set_target(1);
    f.tick(clock.now());
    let effects = f.on_offers(&[offer(0, Amount::new(0.5, 4096.0), &[])], clock.advance(1));
    assert_eq!(kinds(&effects), ["DECLINE"]);
    let decline = effects.calls[0].decline.as_ref().unwrap();
    assert_eq!(
        decline.filters.as_ref().unwrap().refuse_seconds,
        Some(5.0),
        "short: something is needed"
    );
    let outcome = f.outcomes().pop().unwrap();
    assert_eq!(outcome.outcome, "declined");
    assert_eq!(
        outcome.reason,
        "consumer-0: needs 1.1 cpus and 576 MB (task and executor), offer has 0.5 cpus and 4096 MB unreserved"
    );
    assert!(
        f.plan()
            .1
            .contains("consumer-0 waits for an offer: needs 1.1 cpus"),
        "{}",
        f.plan().1
    );
}

#[test]
fn shrinking_kills_with_grace_then_unreserves_then_forgets_the_slot() {
    let (mut f, mut clock) = running(2);
    f.tick(clock.now());
    f.set_target(1);
    let effects = f.tick(clock.advance(1));
    assert_eq!(kinds(&effects), ["KILL"]);
    let kill = effects.calls[0].kill.as_ref().unwrap();
    let (task, agent) = task_of(&f, SlotName::consumer(1));
    assert_eq!(kill.task_id.value, task, "the highest index goes");
    assert_eq!(
        kill.kill_policy
            .as_ref()
            .unwrap()
            .grace_period
            .as_ref()
            .unwrap()
            .nanoseconds,
        30_000_000_000
    );
    assert!(
        matches!(&effects.writes[0], Write::PutSlot(n, r) if *n == SlotName::consumer(1) && r.goal == Goal::Remove)
    );
    assert!(
        f.tick(clock.advance(5)).calls.is_empty(),
        "no second KILL before the retry interval"
    );
    assert_eq!(
        kinds(&f.tick(clock.advance(30))),
        ["KILL"],
        "re-sent while the task is not gone"
    );

    f.on_update(
        update(&task, &agent, TaskState::TaskKilling, true, None),
        clock.now(),
    );
    let effects = f.on_update(
        update(&task, &agent, TaskState::TaskKilled, true, None),
        clock.now(),
    );
    assert_eq!(
        kinds(&effects),
        ["ACKNOWLEDGE", "REVIVE"],
        "offers are needed to unreserve"
    );
    let resource_id = f
        .slot(SlotName::consumer(1))
        .unwrap()
        .record
        .reservation
        .clone()
        .unwrap()
        .resource_id;
    let effects = f.on_offers(
        &[offer(
            1,
            Amount::new(2.9, 3520.0),
            &[("consumer-1", &resource_id)],
        )],
        clock.advance(1),
    );
    assert_eq!(kinds(&effects), ["ACCEPT(UNRESERVE)", "SUPPRESS"]);
    assert!(
        effects
            .writes
            .contains(&Write::DeleteSlot(SlotName::consumer(1))),
        "{:?}",
        effects.writes
    );
    assert!(f.slot(SlotName::consumer(1)).is_none());
    assert_eq!(f.plan().0, PlanStatus::Complete);
}

#[test]
fn a_failed_task_relaunches_on_its_reservation_after_backoff() {
    let (mut f, mut clock) = running(1);
    f.tick(clock.now());
    let (task, agent) = task_of(&f, SlotName::consumer(0));
    let resource_id = f
        .slot(SlotName::consumer(0))
        .unwrap()
        .record
        .reservation
        .clone()
        .unwrap()
        .resource_id;
    let mut failed = update(&task, &agent, TaskState::TaskFailed, true, None);
    failed.message = Some("Cassandra refused the schema".into());
    let effects = f.on_update(failed, clock.now());
    assert_eq!(
        kinds(&effects),
        ["ACKNOWLEDGE"],
        "backing off: no REVIVE yet"
    );
    let slot = f.slot(SlotName::consumer(0)).unwrap();
    assert_eq!(slot.record.failures, 1);
    assert!(slot.relaunch_at.is_some());
    assert_eq!(
        kinds(&f.tick(clock.advance(2))),
        ["REVIVE"],
        "backoff over (at most 1.5 s)"
    );
    let effects = f.on_offers(
        &[
            big(2),
            offer(0, Amount::new(2.9, 3520.0), &[("consumer-0", &resource_id)]),
        ],
        clock.advance(1),
    );
    assert_eq!(kinds(&effects), ["ACCEPT(LAUNCH)", "DECLINE", "SUPPRESS"]);
    let relaunched = launched(&effects);
    assert_eq!(relaunched.len(), 1);
    assert_eq!(relaunched[0].1, "agent-0", "same agent, same reservation");
    assert_ne!(relaunched[0].0, task, "a new task id");

    // Crash-looping: each quick failure doubles the wait.
    let (task, agent) = task_of(&f, SlotName::consumer(0));
    f.on_update(
        update(&task, &agent, TaskState::TaskFailed, true, None),
        clock.now(),
    );
    let slot = f.slot(SlotName::consumer(0)).unwrap();
    assert_eq!(slot.record.failures, 2);
    let wait = slot.relaunch_at.unwrap() - clock.now().at;
    assert!(
        wait >= Duration::from_secs(1) && wait <= Duration::from_secs(3),
        "{wait:?}"
    );
}

#[test]
fn a_task_lost_with_its_agent_relaunches_elsewhere_at_once() {
    let (mut f, mut clock) = running(2);
    f.tick(clock.now());
    let (task, agent) = task_of(&f, SlotName::consumer(0));
    let effects = f.on_update(
        update(
            &task,
            &agent,
            TaskState::TaskUnreachable,
            false,
            Some(Reason::AgentRemoved),
        ),
        clock.advance(1),
    );
    assert_eq!(
        kinds(&effects),
        ["REVIVE"],
        "no uuid: no ACK; relaunch wanted at once"
    );
    assert_eq!(
        f.slot(SlotName::consumer(0)).unwrap().record.reservation,
        None,
        "the reservation went with the agent"
    );
    assert_eq!(f.running_consumers(), 1);
    let effects = f.on_offers(&[big(1), big(2)], clock.advance(1));
    assert_eq!(
        kinds(&effects),
        ["ACCEPT(RESERVE+LAUNCH)", "DECLINE", "SUPPRESS"]
    );
    assert_eq!(
        launched(&effects)[0].1,
        "agent-2",
        "agent-1 already has a consumer"
    );
    // The old task reappears (the agent came back): it is no slot's task any more.
    let effects = f.on_update(
        update(
            &task,
            &agent,
            TaskState::TaskRunning,
            false,
            Some(Reason::AgentReregistered),
        ),
        clock.advance(1),
    );
    assert_eq!(kinds(&effects), ["KILL"]);
}

#[test]
fn a_restarted_scheduler_reconciles_first_adopts_and_launches_nothing_twice() {
    let mut clock = Clock::new();
    let mut record = SlotRecord::new(SlotName::consumer(0), Some("fastdata-consumer-0".into()));
    record.task_id = Some("fastdata__consumer-0__aaa".into());
    record.agent_id = Some("agent-0".into());
    let mut gone = SlotRecord::new(SlotName::consumer(1), Some("fastdata-consumer-1".into()));
    gone.task_id = Some("fastdata__consumer-1__bbb".into());
    gone.agent_id = Some("agent-1".into());
    let mut f = framework(vec![record, gone], 0);
    f.set_target(f.consumer_slots_wanted());
    assert_eq!(f.target(), 2);
    let effects = f.on_subscribed(FW, clock.now());
    assert_eq!(kinds(&effects), ["RECONCILE"]);
    let tasks: Vec<&str> = effects.calls[0]
        .reconcile
        .as_ref()
        .unwrap()
        .tasks
        .iter()
        .map(|t| t.task_id.value.as_str())
        .collect();
    assert_eq!(
        tasks,
        ["fastdata__consumer-0__aaa", "fastdata__consumer-1__bbb"]
    );

    let effects = f.on_offers(&[big(5)], clock.advance(1));
    assert_eq!(
        kinds(&effects),
        ["DECLINE"],
        "no offer is used before reconciliation completes"
    );
    assert!(
        f.outcomes()[0]
            .reason
            .starts_with("waiting for task reconciliation")
    );

    let mut answer = update(
        "fastdata__consumer-0__aaa",
        "agent-0",
        TaskState::TaskRunning,
        false,
        Some(Reason::Reconciliation),
    );
    answer.message = Some("Reconciliation: Latest task state".into());
    let effects = f.on_update(answer, clock.now());
    assert!(
        effects.calls.is_empty(),
        "no uuid, no ACK, no launch: adopted"
    );
    assert_eq!(f.running_consumers(), 1);
    assert!(!f.reconciled());
    assert_eq!(
        kinds(&f.tick(clock.advance(3))),
        ["RECONCILE"],
        "the unanswered one is asked again"
    );

    let effects = f.on_update(
        update(
            "fastdata__consumer-1__bbb",
            "agent-1",
            TaskState::TaskGone,
            false,
            Some(Reason::Reconciliation),
        ),
        clock.now(),
    );
    assert!(f.reconciled());
    assert_eq!(
        kinds(&effects),
        ["REVIVE"],
        "the gone task is relaunched at once"
    );
    let effects = f.on_offers(&[big(1), big(0)], clock.advance(1));
    let relaunched = launched(&effects);
    assert_eq!(
        relaunched.len(),
        1,
        "exactly one launch: the adopted task keeps running"
    );
    assert!(relaunched[0].0.starts_with("fastdata__consumer-1__"));
}

#[test]
fn only_updates_with_a_uuid_are_acknowledged_and_unknown_tasks_are_killed() {
    let (mut f, mut clock) = running(1);
    let (task, agent) = task_of(&f, SlotName::consumer(0));
    let with = f.on_update(
        update(&task, &agent, TaskState::TaskRunning, true, None),
        clock.now(),
    );
    let ack = with.calls[0].acknowledge.as_ref().unwrap();
    assert_eq!(
        (ack.agent_id.value.as_str(), ack.task_id.value.as_str()),
        ("agent-0", task.as_str())
    );
    assert_eq!(ack.uuid.len(), 16);
    let without = f.on_update(
        update(
            &task,
            &agent,
            TaskState::TaskRunning,
            false,
            Some(Reason::Reconciliation),
        ),
        clock.now(),
    );
    assert!(without.calls.is_empty());

    let effects = f.on_update(
        update(
            "someone-else",
            "agent-9",
            TaskState::TaskRunning,
            true,
            None,
        ),
        clock.advance(1),
    );
    assert_eq!(kinds(&effects), ["ACKNOWLEDGE", "KILL"]);
    assert!(
        f.on_update(
            update(
                "someone-else",
                "agent-9",
                TaskState::TaskRunning,
                true,
                None
            ),
            clock.now()
        )
        .calls
        .len()
            == 1,
        "killed once, then retried on the timer"
    );
}

#[test]
fn a_launch_the_master_refused_drops_its_fresh_reservation() {
    let mut clock = Clock::new();
    let mut f = framework(Vec::new(), 0);
    f.on_subscribed(FW, clock.now());
    f.set_target(1);
    f.tick(clock.now());
    f.on_offers(&[big(0)], clock.advance(1));
    let (task, agent) = task_of(&f, SlotName::consumer(0));
    assert!(
        f.slot(SlotName::consumer(0))
            .unwrap()
            .record
            .reservation
            .is_some()
    );
    f.on_update(
        update(
            &task,
            &agent,
            TaskState::TaskDropped,
            false,
            Some(Reason::InvalidOffers),
        ),
        clock.now(),
    );
    let slot = f.slot(SlotName::consumer(0)).unwrap();
    assert_eq!(
        slot.record.reservation, None,
        "the RESERVE of a refused ACCEPT never happened"
    );
    assert_eq!(slot.record.failures, 0, "not the workload's fault");
    assert!(slot.needs_launch(clock.now().at));
}

#[test]
fn a_reservation_its_agent_stops_offering_is_given_up() {
    let (mut f, mut clock) = running(1);
    f.tick(clock.now());
    let (task, agent) = task_of(&f, SlotName::consumer(0));
    f.on_update(
        update(&task, &agent, TaskState::TaskFailed, true, None),
        clock.now(),
    );
    clock.advance(5);
    for _ in 0..3 {
        let effects = f.on_offers(&[big(0)], clock.advance(1));
        assert!(launched(&effects).is_empty());
    }
    assert_eq!(
        f.slot(SlotName::consumer(0)).unwrap().record.reservation,
        None
    );
    let effects = f.on_offers(&[big(0)], clock.advance(1));
    assert_eq!(kinds(&effects), ["ACCEPT(RESERVE+LAUNCH)", "SUPPRESS"]);
}

#[test]
fn stats_reports_reach_their_slot_and_count_unhealthy_sinks() {
    let (mut f, clock) = running(2);
    let (task, _) = task_of(&f, SlotName::consumer(1));
    let report = fastdata_proto::task::StatsReport {
        version: 1,
        task_id: task,
        sink: fastdata_proto::task::SinkState::Unhealthy,
        sink_error: Some("Cassandra 127.0.0.1:9042 unreachable".into()),
        ..Default::default()
    };
    f.on_message(&report.to_json(), clock.now());
    f.on_message(b"not json", clock.now());
    let (healthy, unhealthy, error) = f.sink_health(clock.now().at);
    assert_eq!((healthy, unhealthy), (0, 1));
    assert_eq!(
        error.as_deref(),
        Some("Cassandra 127.0.0.1:9042 unreachable")
    );
    assert!(
        f.sink_health(clock.now().at + Duration::from_secs(16)).1 == 0,
        "stale reports do not count"
    );
}

#[test]
fn producers_run_beside_consumers_without_reservations() {
    let mut clock = Clock::new();
    let mut f = framework(Vec::new(), 1);
    f.on_subscribed(FW, clock.now());
    f.set_target(1);
    f.tick(clock.now());
    let effects = f.on_offers(&[big(0), big(1)], clock.advance(1));
    assert_eq!(
        kinds(&effects),
        ["ACCEPT(RESERVE+LAUNCH)", "ACCEPT(LAUNCH)", "SUPPRESS"]
    );
    let producer = f.slot(SlotName::producer(0)).unwrap();
    assert_eq!(producer.record.reservation, None);
    assert_eq!(producer.record.volume, None);
    assert_eq!(
        producer.record.agent_id.as_deref(),
        Some("agent-1"),
        "away from the consumer"
    );
}

#[test]
fn uninstall_kills_unreserves_and_then_is_done() {
    let (mut f, mut clock) = running(2);
    f.start_uninstall();
    let effects = f.tick(clock.advance(1));
    assert_eq!(kinds(&effects), ["KILL", "KILL", "REVIVE"]);
    for i in 0..2 {
        let (task, agent) = task_of(&f, SlotName::consumer(i));
        f.on_update(
            update(&task, &agent, TaskState::TaskKilled, true, None),
            clock.now(),
        );
    }
    let ids: Vec<String> = (0..2)
        .map(|i| {
            f.slot(SlotName::consumer(i))
                .unwrap()
                .record
                .reservation
                .clone()
                .unwrap()
                .resource_id
        })
        .collect();
    let effects = f.on_offers(
        &[
            offer(0, Amount::new(2.9, 3520.0), &[("consumer-0", &ids[0])]),
            offer(
                1,
                Amount::new(2.9, 3520.0),
                &[("consumer-1", &ids[1]), ("consumer-7", "left-over")],
            ),
        ],
        clock.advance(1),
    );
    assert_eq!(
        kinds(&effects),
        ["ACCEPT(UNRESERVE)", "ACCEPT(UNRESERVE+UNRESERVE)"]
    );
    assert!(!f.uninstall_done(clock.now().at));
    f.tick(clock.advance(1));
    assert!(
        !f.uninstall_done(clock.now().at),
        "one clean offer round first"
    );
    let effects = f.on_offers(&[big(0), big(1)], clock.advance(1));
    assert_eq!(kinds(&effects), ["DECLINE"]);
    assert!(f.uninstall_done(clock.now().at));
    assert_eq!(f.plan().0, PlanStatus::Complete);
}

#[test]
fn after_subscribing_offers_are_taken_for_a_while_to_release_leftover_reservations() {
    let mut clock = Clock::new();
    let mut f = Framework::new(
        CoreConfig {
            role: ROLE.into(),
            principal: "fastdata-principal".into(),
            template: template(0),
            timings: Timings::default(),
        },
        Vec::new(),
        Some(FW.into()),
        7,
    );
    let effects = f.on_subscribed(FW, clock.now());
    assert_eq!(
        kinds(&effects),
        ["REVIVE"],
        "no SUPPRESS yet: offers may show leftovers"
    );
    let effects = f.on_offers(
        &[offer(
            0,
            Amount::new(2.9, 3520.0),
            &[("consumer-9", "left-by-an-earlier-run")],
        )],
        clock.advance(1),
    );
    assert_eq!(kinds(&effects), ["ACCEPT(UNRESERVE)"]);
    assert!(f.tick(clock.advance(1)).is_empty());
    assert_eq!(
        kinds(&f.tick(clock.advance(5))),
        ["SUPPRESS"],
        "then nothing is wanted"
    );
}

#[test]
fn a_removed_slot_waits_for_its_whole_reservation_before_unreserving() {
    let (mut f, mut clock) = running(2);
    f.set_target(1);
    f.tick(clock.advance(1));
    let (task, agent) = task_of(&f, SlotName::consumer(1));
    f.on_update(
        update(&task, &agent, TaskState::TaskKilled, true, None),
        clock.now(),
    );
    let id = f
        .slot(SlotName::consumer(1))
        .unwrap()
        .record
        .reservation
        .clone()
        .unwrap()
        .resource_id;
    // The task's share is back, its executor still holds 0.1 cpus and 64 MB.
    let mut partial = offer(1, Amount::new(2.9, 3520.0), &[]);
    partial.resources.extend(resources(
        Amount::new(1.0, 512.0),
        ROLE,
        Some(&ReservationLabels {
            role: ROLE.into(),
            principal: "fastdata-principal".into(),
            framework_id: FW.into(),
            slot: "consumer-1".into(),
            resource_id: id.clone(),
        }),
    ));
    let effects = f.on_offers(&[partial], clock.advance(1));
    assert_eq!(
        kinds(&effects),
        ["DECLINE"],
        "not yet: half a reservation would be left behind"
    );
    assert!(f.slot(SlotName::consumer(1)).is_some());
    let effects = f.on_offers(
        &[offer(1, Amount::new(2.9, 3520.0), &[("consumer-1", &id)])],
        clock.advance(1),
    );
    assert_eq!(kinds(&effects), ["ACCEPT(UNRESERVE)", "SUPPRESS"]);
    assert!(f.slot(SlotName::consumer(1)).is_none());
}

#[test]
fn only_the_last_write_of_each_slot_is_made() {
    let record = |goal| {
        let mut r = SlotRecord::new(SlotName::consumer(1), None);
        r.goal = goal;
        Box::new(r)
    };
    let mut effects = Effects {
        writes: vec![
            Write::PutSlot(SlotName::consumer(1), record(Goal::Run)),
            Write::PutSlot(SlotName::consumer(0), record(Goal::Run)),
            Write::PutSlot(SlotName::consumer(1), record(Goal::Remove)),
            Write::DeleteSlot(SlotName::consumer(1)),
        ],
        calls: Vec::new(),
    };
    assert_eq!(
        effects.last_writes(),
        [
            Write::PutSlot(SlotName::consumer(0), record(Goal::Run)),
            Write::DeleteSlot(SlotName::consumer(1)),
        ]
    );
}

#[test]
fn a_new_producer_rate_reaches_running_producers_and_later_launches() {
    let mut clock = Clock::new();
    let mut f = framework(Vec::new(), 1);
    f.on_subscribed(FW, clock.now());
    f.set_target(1);
    f.tick(clock.now());
    f.on_offers(&[big(0), big(1)], clock.advance(1));
    let (task, agent) = task_of(&f, SlotName::producer(0));
    f.on_update(
        update(&task, &agent, TaskState::TaskRunning, true, None),
        clock.now(),
    );
    let effects = f.set_producer_rate(4000.0);
    assert_eq!(kinds(&effects), ["MESSAGE"]);
    let message = effects.calls[0].message.as_ref().unwrap();
    assert_eq!(message.executor_id.value, format!("{task}.executor"));
    assert_eq!(message.agent_id.value, agent);
    let command = fastdata_proto::task::ExecutorCommand::from_json(&message.data).unwrap();
    assert_eq!(command.set_rate, Some(4000.0));
    assert_eq!(f.producer_rate(), 4000.0);
}
