//! Scale (issue 5 "Evidence"): 1,000 agents offering to one framework. Prints the offer
//! round-trip times (no timed assertions: the numbers are for the report).

mod common;

use std::time::{Duration, Instant};

use common::*;
use fastdata_proto::v1::{
    Filters, Label, Labels, OfferId, Resource,
    offer::{Operation, operation},
    resource::{ReservationInfo, reservation_info},
    scheduler::{self, call},
    value,
};

/// 1,000 agents: all are offered in one OFFERS event after SUBSCRIBE; DECLINE of all with
/// `refuse_seconds: 0` gets them all again in the next allocation; ACCEPTs with a RESERVE
/// each are answered and reflected in the next offers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_agents() {
    const AGENTS: usize = 1000;
    let mut config = fast_config(AGENTS);
    config.allocation_interval = Duration::from_millis(50);
    config.heartbeat_interval = Duration::from_secs(5);
    let started = Instant::now();
    let cluster = start(config).await;
    let startup = started.elapsed();

    let t = Instant::now();
    let mut s = Scheduler::subscribe(&cluster.master_url(), framework_info()).await;
    let mut offers = s.offers().await;
    let first_offers = t.elapsed();
    assert_eq!(
        offers.len(),
        AGENTS,
        "one offer per agent in one OFFERS event"
    );

    let t = Instant::now();
    s.take_outstanding();
    let decline = scheduler::Call {
        r#type: Some(call::Type::Decline as i32),
        decline: Some(call::Decline {
            offer_ids: offers.iter().map(|o| o.id.clone()).collect(),
            filters: Some(Filters {
                refuse_seconds: Some(0.0),
            }),
        }),
        ..Default::default()
    };
    assert_eq!(s.call(decline).await.status, 202);
    let mut again = 0;
    while again < AGENTS {
        again += s.offers().await.len();
    }
    let decline_round_trip = t.elapsed();
    offers = s.take_outstanding();

    // One RESERVE per ACCEPT, one offer at a time, sequentially.
    const ACCEPTS: usize = 200;
    let reserved = |role: &str| {
        let mut r = Resource {
            name: "cpus".into(),
            r#type: value::Type::Scalar as i32,
            scalar: Some(value::Scalar { value: 0.5 }),
            ..Default::default()
        };
        r.reservations.push(ReservationInfo {
            r#type: Some(reservation_info::Type::Dynamic as i32),
            role: Some(role.into()),
            principal: Some("fastdata-principal".into()),
            labels: Some(Labels {
                labels: vec![Label {
                    key: "slot".into(),
                    value: Some("0".into()),
                }],
            }),
        });
        r
    };
    let t = Instant::now();
    for offer in offers.iter().take(ACCEPTS) {
        let op = Operation {
            r#type: Some(operation::Type::Reserve as i32),
            reserve: Some(operation::Reserve {
                resources: vec![reserved("fastdata-role")],
                ..Default::default()
            }),
            ..Default::default()
        };
        let ids: Vec<OfferId> = vec![offer.id.clone()];
        assert_eq!(s.accept(ids, vec![op], Some(0.0)).await.status, 202);
    }
    let accepts = t.elapsed();
    let t = Instant::now();
    let mut with_reservation = 0;
    while with_reservation < ACCEPTS {
        let batch = s.offers().await;
        with_reservation += batch
            .iter()
            .filter(|o| o.resources.iter().any(|r| !r.reservations.is_empty()))
            .count();
    }
    let reoffer = t.elapsed();
    println!(
        "devcluster scale ({AGENTS} agents): start {startup:?}; SUBSCRIBE -> OFFERS({AGENTS}) {first_offers:?}; \
         DECLINE({AGENTS}) -> re-offered {decline_round_trip:?}; {ACCEPTS} sequential ACCEPT(RESERVE) calls {accepts:?} \
         ({:?} each); reservations re-offered {reoffer:?}",
        accepts / ACCEPTS as u32
    );
    cluster.stop().await;
}
