//! Replays `scheduler.jsonl` steps 2-11 and 14 (everything but the custom executor) with
//! the recorded request bodies, only ids rewritten, and compares every event with the
//! recorded one, ids and timings aside.

mod common;

use std::time::Duration;

use common::*;
use fastdata_proto::v1::{Offer, TaskState, TaskStatus, scheduler};

const FILE: &str = "scheduler.jsonl";

/// Every UPDATE recorded in the file.
fn recorded_updates() -> Vec<TaskStatus> {
    transcript(FILE)
        .iter()
        .flat_map(|s| s.scheduler_events())
        .filter_map(|e| e.update.map(|u| u.status))
        .collect()
}

fn recorded_update(task: &str, state: TaskState) -> TaskStatus {
    recorded_updates()
        .into_iter()
        .find(|s| s.task_id.value == task && s.state == state as i32)
        .unwrap_or_else(|| panic!("no recorded {state:?} of {task}"))
}

fn recorded_offer(n: usize) -> Offer {
    transcript(FILE)
        .iter()
        .flat_map(|s| s.scheduler_events())
        .filter_map(|e| e.offers)
        .flat_map(|o| o.offers)
        .find(|o| o.id.value.ends_with(&format!("-O{n}")))
        .unwrap_or_else(|| panic!("no recorded offer O{n}"))
}

fn offers_event(offers: Vec<Offer>) -> scheduler::Event {
    scheduler::Event {
        r#type: Some(scheduler::event::Type::Offers as i32),
        offers: Some(scheduler::event::Offers { offers }),
        ..Default::default()
    }
}

/// Offers compared as a set, each with its resources as a multiset (ids aside).
fn same_offers(got: &[Offer], expected: &[Offer]) {
    let norm = |offers: &[Offer]| {
        let mut v: Vec<String> = offers
            .iter()
            .map(|o| normalise_event(offers_event(vec![o.clone()])).to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(norm(got), norm(expected));
}

fn same_status(got: &TaskStatus, expected: &TaskStatus) {
    let (mut g, mut e) = (got.clone(), expected.clone());
    normalise_status(&mut g);
    normalise_status(&mut e);
    assert_eq!(g, e);
}

fn has_reserved(offer: &Offer) -> bool {
    offer.resources.iter().any(|r| !r.reservations.is_empty())
}

/// Mesos `SchedulerTest.TaskRunning`, `ReconcileTask`, `KillTask`, `Decline`, `Suppress`,
/// `Revive`, and reference 2.5-2.7, as recorded in `scheduler.jsonl`: RESERVE with labels,
/// LAUNCH of command tasks on the reservation with TASK_STARTING/RUNNING/FINISHED from the
/// command executor, explicit RECONCILE of live/finished/unknown tasks, KILL with a kill
/// policy (TASK_KILLING, TASK_KILLED), UNRESERVE, DECLINE with a 30 s filter, SUPPRESS and
/// REVIVE, a task larger than its offer (TASK_ERROR with the recorded text), TEARDOWN.
#[tokio::test]
async fn replay_scheduler_transcript() {
    let cluster = start(fast_config(1)).await;
    let agent = cluster.agent_ids()[0].clone();
    let subscribe = step(FILE, "SUBSCRIBE").scheduler_call();
    let info = subscribe.subscribe.unwrap().framework_info;
    let mut s = Scheduler::subscribe(&cluster.master_url(), info).await;
    let fid = s.framework_id.clone();
    let replay = |name: &str, offers: &[Offer]| {
        let mut call = step(FILE, name).scheduler_call();
        let ids: Vec<String> = offers.iter().map(|o| o.id.value.clone()).collect();
        rewrite_ids(&mut call, &fid, &agent, &ids);
        call
    };

    // Step 2: the first offer.
    let o0 = s.offers().await;
    same_offers(&o0, &[recorded_offer(0)]);

    // Step 4: RESERVE; the next offer shows the reservation (O1).
    let used = s.take_outstanding();
    let a = s
        .call(replay(
            "ACCEPT RESERVE cpus:0.5 mem:256 labels{slot:0}",
            &used,
        ))
        .await;
    assert_eq!(a.status, 202);
    let o1 = s.offers().await;
    same_offers(&o1, &[recorded_offer(1)]);

    // Step 5: `sleep 3` on the reserved resources.
    let used = s.take_outstanding();
    let a = s
        .call(replay("ACCEPT LAUNCH sleep 3 (reserved resources)", &used))
        .await;
    assert_eq!(a.status, 202);
    for state in [
        TaskState::TaskStarting,
        TaskState::TaskRunning,
        TaskState::TaskFinished,
    ] {
        let got = s.update_of("fdx-sleep3").await;
        same_status(&got, &recorded_update("fdx-sleep3", state));
    }
    // The unused rest came back (O2), then the reservation once the task ended (O3).
    while !s.outstanding.iter().any(has_reserved) || s.outstanding.len() < 2 {
        s.offers().await;
    }
    same_offers(&s.outstanding, &[recorded_offer(2), recorded_offer(3)]);

    // Step 6: `sleep 300` on the reservation, given every outstanding offer.
    let used = s.take_outstanding();
    let a = s
        .call(replay(
            "ACCEPT LAUNCH sleep 300 (reserved resources)",
            &used,
        ))
        .await;
    assert_eq!(a.status, 202);
    for state in [TaskState::TaskStarting, TaskState::TaskRunning] {
        let got = s.update_of("fdx-sleep300").await;
        same_status(&got, &recorded_update("fdx-sleep300", state));
    }

    // Step 7: explicit reconciliation of four tasks.
    let a = s
        .call(replay(
            "RECONCILE explicit (live, finished, unknown, unknown+agent_id)",
            &[],
        ))
        .await;
    assert_eq!(a.status, 202);
    let expected: Vec<TaskStatus> = step(
        FILE,
        "RECONCILE explicit (live, finished, unknown, unknown+agent_id)",
    )
    .scheduler_events()
    .into_iter()
    .filter_map(|e| e.update.map(|u| u.status))
    .collect();
    assert_eq!(expected.len(), 4);
    for e in &expected {
        let ev = s.next_event().await.unwrap();
        let got = ev.update.expect("UPDATE").status;
        assert!(got.uuid.is_none(), "reconciliation updates carry no uuid");
        same_status(&got, e);
    }

    // Step 8: KILL with a 2 s grace period.
    while s.outstanding.is_empty() {
        s.offers().await;
    }
    let a = s
        .call(replay("KILL sleep 300 (kill_policy grace 2s)", &[]))
        .await;
    assert_eq!(a.status, 202);
    for state in [TaskState::TaskKilling, TaskState::TaskKilled] {
        let got = s.update_of("fdx-sleep300").await;
        same_status(&got, &recorded_update("fdx-sleep300", state));
    }

    // Step 9: UNRESERVE; the next offer is all unreserved (O6).
    while !s.outstanding.iter().any(has_reserved) {
        s.offers().await;
    }
    let used = s.take_outstanding();
    let a = s.call(replay("ACCEPT UNRESERVE", &used)).await;
    assert_eq!(a.status, 202);
    let o6 = s.offers().await;
    same_offers(&o6, &[recorded_offer(6)]);

    // Step 10: DECLINE for 30 s: nothing is offered, even across SUPPRESS; REVIVE offers.
    let used = s.take_outstanding();
    let a = s
        .call(replay(
            "DECLINE all outstanding offers (filters refuse_seconds 30)",
            &used,
        ))
        .await;
    assert_eq!(a.status, 202);
    let quiet = s.stream.collect_for(Duration::from_millis(600)).await;
    assert!(quiet.is_empty(), "nothing while declined: {quiet:?}");
    let a = s.call(replay("SUPPRESS roles [fastdata-role]", &[])).await;
    assert_eq!(a.status, 202);
    let a = s.call(replay("REVIVE roles [fastdata-role]", &[])).await;
    assert_eq!(a.status, 202);
    let o7 = s.offers().await;
    same_offers(&o7, &[recorded_offer(7)]);

    // Step 11: a task larger than the offer gets TASK_ERROR with the recorded text.
    let used = s.take_outstanding();
    let a = s
        .call(replay("ACCEPT LAUNCH exceeding the offer (cpus 64)", &used))
        .await;
    assert_eq!(a.status, 202);
    let got = s.update_of("fdx-too-big").await;
    assert!(got.uuid.is_none());
    same_status(&got, &recorded_update("fdx-too-big", TaskState::TaskError));

    // Step 14: TEARDOWN closes the stream.
    let a = s.call(replay("TEARDOWN", &[])).await;
    assert_eq!(a.status, 202);
    assert!(s.stream.ends_within(Duration::from_secs(3)).await);
    cluster.stop().await;
}
