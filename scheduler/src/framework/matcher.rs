//! The offer matcher: which offer gets which slot, and why the others are declined.
//!
//! [`plan`] is pure: offers and the [`Demand`] (slots waiting for a launch, reservations to
//! keep, how many consumers each agent and zone already has) in, one [`OfferPlan`] per offer
//! out, each with the intentions for that offer ([`Planned`]) or the reason it is declined, in
//! words an operator can act on ("needs 1.1 cpus and 576 MB, offer has 0.5 cpus and 3840 MB
//! unreserved"). The framework turns intentions into Mesos operations (task ids, TaskInfos);
//! this module never builds a TaskInfo and never talks to Mesos.
//!
//! Rules:
//! - A slot that has a reservation is launched on it, and only on it, when its agent offers
//!   it back. Our reservations that no slot wants (the slot was removed, or the reservation is
//!   an older one of the slot) are unreserved. Other frameworks' reservations are never
//!   touched, even in our role (the `framework_id` label tells them apart).
//! - A consumer slot without a reservation reserves its resources (task + executor) from the
//!   offer's unreserved `cpus` and `mem` and launches on them in the same ACCEPT. At most
//!   `max_per_agent` consumer slots go to one agent. With `spread_zones`, each slot goes to the
//!   offered agent whose zone has the fewest consumers, then the agent with the fewest (best
//!   effort: when only a busier zone has room, it is used rather than waiting).
//! - A producer slot launches on unreserved resources, preferring agents without consumers.

use std::collections::{BTreeMap, HashMap};

use fastdata_proto::v1::{Offer, Resource};

use super::resources::{Amount, OfferResources, offer_zone};
use super::slots::{SlotKind, SlotName};

/// A slot waiting to be launched.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchNeed {
    /// The slot.
    pub slot: SlotName,
    /// Its reservation (agent, resource id), if it has one to launch on.
    pub reservation: Option<(String, String)>,
}

/// What the matcher needs besides the offers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Demand {
    /// Slots to launch, in priority order (lowest index first).
    pub launches: Vec<LaunchNeed>,
    /// Reservations (by `resource_id`) that belong to a slot that still wants them; every
    /// other reservation of ours in an offer is unreserved.
    pub keep: HashMap<String, SlotName>,
    /// Reservations of removed slots, with the amount each holds in full: one is unreserved
    /// only once an offer carries all of it (a killed task's share comes back before its
    /// executor's, and unreserving the first part would leave the rest behind unseen).
    pub releasing: HashMap<String, (SlotName, Amount)>,
    /// Consumer slots placed on each agent (live task or held reservation).
    pub consumers_per_agent: HashMap<String, u32>,
    /// Consumer slots placed in each zone.
    pub consumers_per_zone: HashMap<String, u32>,
}

/// What a slot of each kind needs, and the placement rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Our role.
    pub role: String,
    /// Our framework id (the reservation label).
    pub framework_id: String,
    /// A consumer task plus its executor.
    pub consumer: Amount,
    /// A producer task plus its executor.
    pub producer: Amount,
    /// Most consumer slots per agent.
    pub max_per_agent: Option<u32>,
    /// Spread consumer slots across zones.
    pub spread_zones: bool,
}

/// One intention for one offer.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// Reserve `amount` from unreserved resources for the slot (labels with `resource_id`),
    /// then launch the slot's task on the reservation.
    ReserveAndLaunch {
        /// The slot.
        slot: SlotName,
        /// The new reservation's id.
        resource_id: String,
        /// What is reserved.
        amount: Amount,
    },
    /// Launch the slot's task on its existing reservation.
    LaunchOnReservation {
        /// The slot.
        slot: SlotName,
        /// The reservation's id.
        resource_id: String,
        /// The reserved resources exactly as offered.
        resources: Vec<Resource>,
    },
    /// Launch a producer on unreserved resources.
    LaunchUnreserved {
        /// The slot.
        slot: SlotName,
    },
    /// Give back a reservation no slot wants.
    Unreserve {
        /// The reservation's id.
        resource_id: String,
        /// The slot label it carried.
        slot: Option<String>,
        /// The resources exactly as offered.
        resources: Vec<Resource>,
    },
}

/// What to do with one offer.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferPlan {
    /// Index of the offer in the input.
    pub offer: usize,
    /// Intentions, in the order their operations must be applied.
    pub planned: Vec<Planned>,
    /// Why nothing was planned (set exactly when `planned` is empty).
    pub decline_reason: Option<String>,
}

/// The outcome of matching a batch of offers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matching {
    /// One plan per offer, in input order.
    pub offers: Vec<OfferPlan>,
    /// Slots whose reservation's agent made an offer without the reservation in it.
    pub reservation_missing: Vec<SlotName>,
    /// Removed slots whose reservation was offered only in part (its executor still holds
    /// the rest), so it was left for a later offer.
    pub reservation_partial: Vec<SlotName>,
    /// Slots still waiting after this batch, each with the best reason found.
    pub unplaced: Vec<(SlotName, String)>,
}

/// Per-offer working state.
struct Candidate<'a> {
    offer: &'a Offer,
    free: Amount,
    zone: Option<&'a str>,
    planned: Vec<Planned>,
}

/// Matches one batch of offers against the demand. `new_id` makes reservation ids.
pub fn plan(
    offers: &[Offer],
    demand: &Demand,
    rules: &Rules,
    mut new_id: impl FnMut() -> String,
) -> Matching {
    let mut candidates: Vec<Candidate<'_>> = Vec::with_capacity(offers.len());
    let mut waiting: Vec<&LaunchNeed> = Vec::new();
    let mut missing = Vec::new();
    let parsed: Vec<OfferResources> = offers
        .iter()
        .map(|o| OfferResources::of(o, &rules.role, &rules.framework_id))
        .collect();

    // 1. Reserved resources: launch slots on theirs, unreserve what nobody wants.
    let by_resource_id: HashMap<&str, &LaunchNeed> = demand
        .launches
        .iter()
        .filter_map(|n| n.reservation.as_ref().map(|(_, id)| (id.as_str(), n)))
        .collect();
    let mut launched_on_reservation: Vec<SlotName> = Vec::new();
    let mut partial: Vec<SlotName> = Vec::new();
    for (offer, seen) in offers.iter().zip(&parsed) {
        let mut planned = Vec::new();
        for (resource_id, group) in &seen.ours {
            if let Some(need) = by_resource_id.get(resource_id.as_str()) {
                planned.push(Planned::LaunchOnReservation {
                    slot: need.slot,
                    resource_id: resource_id.clone(),
                    resources: group.resources.clone(),
                });
                launched_on_reservation.push(need.slot);
            } else if let Some((slot, full)) = demand.releasing.get(resource_id)
                && !group.amount.covers(full)
            {
                partial.push(*slot);
            } else if !demand.keep.contains_key(resource_id) {
                planned.push(Planned::Unreserve {
                    resource_id: resource_id.clone(),
                    slot: group.slot.clone(),
                    resources: group.resources.clone(),
                });
            }
        }
        candidates.push(Candidate {
            offer,
            free: seen.unreserved,
            zone: offer_zone(offer),
            planned,
        });
    }
    for need in &demand.launches {
        if launched_on_reservation.contains(&need.slot) {
            continue;
        }
        match &need.reservation {
            Some((agent, _)) => {
                if offers.iter().any(|o| &o.agent_id.value == agent) {
                    missing.push(need.slot);
                }
            }
            None => waiting.push(need),
        }
    }

    // 2. Slots without a reservation: place them on unreserved resources.
    let mut per_agent = demand.consumers_per_agent.clone();
    let mut per_zone = demand.consumers_per_zone.clone();
    let mut unplaced = Vec::new();
    for need in waiting {
        let needed = match need.slot.kind {
            SlotKind::Consumer => rules.consumer,
            SlotKind::Producer => rules.producer,
        };
        let agent_count =
            |c: &Candidate<'_>| per_agent.get(&c.offer.agent_id.value).copied().unwrap_or(0);
        let zone_count =
            |c: &Candidate<'_>| c.zone.and_then(|z| per_zone.get(z)).copied().unwrap_or(0);
        let fits = |c: &Candidate<'_>| {
            c.free.covers(&needed)
                && (need.slot.kind == SlotKind::Producer
                    || rules.max_per_agent.is_none_or(|max| agent_count(c) < max))
        };
        let best = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| fits(c))
            .min_by_key(|(i, c)| match need.slot.kind {
                SlotKind::Consumer if rules.spread_zones => (zone_count(c), agent_count(c), *i),
                SlotKind::Consumer => (0, agent_count(c), *i),
                SlotKind::Producer => (0, agent_count(c), *i),
            })
            .map(|(i, _)| i);
        let Some(index) = best else {
            unplaced.push((
                need.slot,
                why_not(&candidates, need.slot.kind, &needed, rules, &per_agent),
            ));
            continue;
        };
        let chosen = &mut candidates[index];
        chosen.free = chosen.free.minus(&needed);
        match need.slot.kind {
            SlotKind::Consumer => {
                *per_agent
                    .entry(chosen.offer.agent_id.value.clone())
                    .or_insert(0) += 1;
                if let Some(zone) = chosen.zone {
                    *per_zone.entry(zone.to_owned()).or_insert(0) += 1;
                }
                chosen.planned.push(Planned::ReserveAndLaunch {
                    slot: need.slot,
                    resource_id: new_id(),
                    amount: needed,
                });
            }
            SlotKind::Producer => chosen
                .planned
                .push(Planned::LaunchUnreserved { slot: need.slot }),
        }
    }

    // 3. Reasons for the offers left without a plan.
    let first_unplaced = unplaced.first().map(|(slot, _)| *slot);
    let offers_out = candidates
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let decline_reason = c.planned.is_empty().then(|| match first_unplaced {
                None if demand.launches.is_empty() => "nothing to launch".to_owned(),
                None => "every waiting slot was placed elsewhere or waits for its reservation"
                    .to_owned(),
                Some(slot) => {
                    let needed = match slot.kind {
                        SlotKind::Consumer => rules.consumer,
                        SlotKind::Producer => rules.producer,
                    };
                    format!(
                        "{slot}: {}",
                        unfit(&c, slot.kind, &needed, rules, &per_agent)
                    )
                }
            });
            OfferPlan {
                offer: i,
                planned: c.planned,
                decline_reason,
            }
        })
        .collect();
    Matching {
        offers: offers_out,
        reservation_missing: missing,
        reservation_partial: partial,
        unplaced,
    }
}

/// Why this offer cannot take a slot of this kind.
fn unfit(
    c: &Candidate<'_>,
    kind: SlotKind,
    needed: &Amount,
    rules: &Rules,
    per_agent: &HashMap<String, u32>,
) -> String {
    let on_agent = per_agent.get(&c.offer.agent_id.value).copied().unwrap_or(0);
    if kind == SlotKind::Consumer
        && let Some(max) = rules.max_per_agent
        && on_agent >= max
    {
        return format!(
            "agent {} already runs {} (at most {max} per agent)",
            c.offer.hostname,
            plural(on_agent, "consumer")
        );
    }
    if !c.free.covers(needed) {
        return format!(
            "needs {needed} (task and executor), offer has {} unreserved",
            c.free
        );
    }
    "another slot took it".to_owned()
}

/// The reason a slot found no offer in this batch: the one of the best-fitting offer.
fn why_not(
    candidates: &[Candidate<'_>],
    kind: SlotKind,
    needed: &Amount,
    rules: &Rules,
    per_agent: &HashMap<String, u32>,
) -> String {
    if candidates.is_empty() {
        return "no offer".to_owned();
    }
    let best = candidates
        .iter()
        .max_by(|a, b| {
            let score = |c: &Candidate<'_>| {
                (c.free.cpus / needed.cpus.max(1e-9)).min(c.free.mem / needed.mem.max(1e-9))
            };
            score(a).total_cmp(&score(b))
        })
        .expect("not empty");
    let mut reasons: BTreeMap<String, u32> = BTreeMap::new();
    for c in candidates {
        *reasons
            .entry(unfit(c, kind, needed, rules, per_agent))
            .or_insert(0) += 1;
    }
    if reasons.len() == 1 {
        let (reason, n) = reasons.into_iter().next().expect("one");
        if n == 1 {
            return reason;
        }
        return format!("{reason} ({n} offers alike)");
    }
    format!(
        "{} (best offer, on {}); {} offers in all",
        unfit(best, kind, needed, rules, per_agent),
        best.offer.hostname,
        candidates.len()
    )
}

fn plural(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::resources::{ReservationLabels, resources};
    use fastdata_proto::v1::{AgentId, DomainInfo, FrameworkId, OfferId, domain_info};

    const ROLE: &str = "fastdata-role";

    fn rules() -> Rules {
        Rules {
            role: ROLE.into(),
            framework_id: "fw".into(),
            consumer: Amount::new(1.1, 576.0),
            producer: Amount::new(0.6, 320.0),
            max_per_agent: Some(1),
            spread_zones: true,
        }
    }

    fn offer(agent: &str, zone: &str, free: Amount, reserved: &[(&str, &str, &str)]) -> Offer {
        let mut all = resources(free, ROLE, None);
        for (framework, slot, id) in reserved {
            all.extend(resources(
                Amount::new(1.1, 576.0),
                ROLE,
                Some(&ReservationLabels {
                    role: ROLE.into(),
                    principal: "p".into(),
                    framework_id: (*framework).into(),
                    slot: (*slot).into(),
                    resource_id: (*id).into(),
                }),
            ));
        }
        Offer {
            id: OfferId {
                value: format!("offer-{agent}"),
            },
            framework_id: FrameworkId { value: "fw".into() },
            agent_id: AgentId {
                value: agent.into(),
            },
            hostname: format!("host-{agent}"),
            domain: Some(DomainInfo {
                fault_domain: Some(domain_info::FaultDomain {
                    region: domain_info::fault_domain::RegionInfo { name: "r".into() },
                    zone: domain_info::fault_domain::ZoneInfo { name: zone.into() },
                }),
            }),
            resources: all,
            ..Default::default()
        }
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("new-{n}")
        }
    }

    fn need(slot: SlotName) -> LaunchNeed {
        LaunchNeed {
            slot,
            reservation: None,
        }
    }

    /// `(offer index, short description of what was planned or the decline reason)`.
    fn summary(m: &Matching) -> Vec<String> {
        m.offers
            .iter()
            .map(|p| {
                if let Some(reason) = &p.decline_reason {
                    return format!("{}: decline: {reason}", p.offer);
                }
                let ops: Vec<String> = p
                    .planned
                    .iter()
                    .map(|op| match op {
                        Planned::ReserveAndLaunch {
                            slot, resource_id, ..
                        } => format!("reserve+launch {slot} ({resource_id})"),
                        Planned::LaunchOnReservation {
                            slot, resource_id, ..
                        } => format!("launch {slot} on {resource_id}"),
                        Planned::LaunchUnreserved { slot } => format!("launch {slot}"),
                        Planned::Unreserve { resource_id, .. } => {
                            format!("unreserve {resource_id}")
                        }
                    })
                    .collect();
                format!("{}: {}", p.offer, ops.join(", "))
            })
            .collect()
    }

    #[test]
    fn consumers_spread_over_zones_then_agents() {
        let offers = vec![
            offer("a0", "z0", Amount::new(4.0, 4096.0), &[]),
            offer("a1", "z0", Amount::new(4.0, 4096.0), &[]),
            offer("a2", "z1", Amount::new(4.0, 4096.0), &[]),
            offer("a3", "z2", Amount::new(4.0, 4096.0), &[]),
        ];
        let demand = Demand {
            launches: (0..4).map(|i| need(SlotName::consumer(i))).collect(),
            ..Demand::default()
        };
        let m = plan(&offers, &demand, &rules(), ids());
        assert_eq!(
            summary(&m),
            [
                "0: reserve+launch consumer-0 (new-1)",
                "1: reserve+launch consumer-3 (new-4)",
                "2: reserve+launch consumer-1 (new-2)",
                "3: reserve+launch consumer-2 (new-3)",
            ]
        );
        assert!(m.unplaced.is_empty());
    }

    #[test]
    fn existing_placements_count_toward_the_spread_and_the_cap() {
        let offers = vec![
            offer("a0", "z0", Amount::new(4.0, 4096.0), &[]),
            offer("a1", "z1", Amount::new(4.0, 4096.0), &[]),
        ];
        let demand = Demand {
            launches: vec![need(SlotName::consumer(2)), need(SlotName::consumer(3))],
            consumers_per_agent: HashMap::from([("a0".into(), 1)]),
            consumers_per_zone: HashMap::from([("z0".into(), 1)]),
            ..Demand::default()
        };
        let m = plan(&offers, &demand, &rules(), ids());
        assert_eq!(
            summary(&m),
            [
                "0: decline: consumer-3: agent host-a0 already runs 1 consumer (at most 1 per agent)",
                "1: reserve+launch consumer-2 (new-1)",
            ]
        );
        assert_eq!(m.unplaced.len(), 1);
        assert_eq!(m.unplaced[0].0, SlotName::consumer(3));
        assert!(
            m.unplaced[0].1.contains("already runs"),
            "{}",
            m.unplaced[0].1
        );
    }

    #[test]
    fn small_offers_are_declined_with_the_numbers() {
        let offers = vec![offer("a0", "z0", Amount::new(0.5, 3840.0), &[])];
        let demand = Demand {
            launches: vec![need(SlotName::consumer(0))],
            ..Demand::default()
        };
        let m = plan(&offers, &demand, &rules(), ids());
        assert_eq!(
            summary(&m),
            [
                "0: decline: consumer-0: needs 1.1 cpus and 576 MB (task and executor), offer has 0.5 cpus and 3840 MB unreserved"
            ]
        );
    }

    #[test]
    fn a_slot_relaunches_on_its_own_reservation_only() {
        let offers = vec![
            offer(
                "a0",
                "z0",
                Amount::new(4.0, 4096.0),
                &[("fw", "consumer-0", "r0")],
            ),
            offer("a1", "z1", Amount::new(4.0, 4096.0), &[]),
        ];
        let demand = Demand {
            launches: vec![LaunchNeed {
                slot: SlotName::consumer(0),
                reservation: Some(("a0".into(), "r0".into())),
            }],
            keep: HashMap::from([("r0".into(), SlotName::consumer(0))]),
            ..Demand::default()
        };
        let m = plan(&offers, &demand, &rules(), ids());
        assert_eq!(
            summary(&m),
            [
                "0: launch consumer-0 on r0",
                "1: decline: every waiting slot was placed elsewhere or waits for its reservation",
            ]
        );
        let Planned::LaunchOnReservation { resources, .. } = &m.offers[0].planned[0] else {
            panic!("launch on reservation expected");
        };
        assert_eq!(resources.len(), 2, "cpus and mem exactly as offered");
    }

    #[test]
    fn a_reservation_missing_from_its_agents_offer_is_reported() {
        let offers = vec![offer("a0", "z0", Amount::new(4.0, 4096.0), &[])];
        let demand = Demand {
            launches: vec![LaunchNeed {
                slot: SlotName::consumer(0),
                reservation: Some(("a0".into(), "r0".into())),
            }],
            keep: HashMap::from([("r0".into(), SlotName::consumer(0))]),
            ..Demand::default()
        };
        let m = plan(&offers, &demand, &rules(), ids());
        assert_eq!(m.reservation_missing, [SlotName::consumer(0)]);
        assert!(m.offers[0].planned.is_empty());
    }

    #[test]
    fn stale_and_orphaned_reservations_are_unreserved_but_not_foreign_ones() {
        let offers = vec![offer(
            "a0",
            "z0",
            Amount::new(4.0, 4096.0),
            &[
                ("fw", "consumer-5", "removed-slot"),
                ("fw", "consumer-1", "kept-running-elsewhere"),
                ("other-fw", "consumer-0", "foreign"),
            ],
        )];
        let demand = Demand {
            keep: HashMap::from([("kept-running-elsewhere".into(), SlotName::consumer(1))]),
            ..Demand::default()
        };
        let m = plan(&offers, &demand, &rules(), ids());
        assert_eq!(summary(&m), ["0: unreserve removed-slot"]);
    }

    #[test]
    fn a_removed_slots_reservation_is_unreserved_only_when_offered_whole() {
        let offers = vec![offer(
            "a0",
            "z0",
            Amount::new(1.0, 1000.0),
            &[("fw", "consumer-4", "r4")],
        )];
        let mut demand = Demand {
            releasing: HashMap::from([(
                "r4".into(),
                (SlotName::consumer(4), Amount::new(1.2, 600.0)),
            )]),
            ..Demand::default()
        };
        let m = plan(&offers, &demand, &rules(), ids());
        assert_eq!(
            summary(&m),
            ["0: decline: nothing to launch"],
            "1.1 of 1.2 cpus offered: the executor still holds the rest"
        );
        assert_eq!(m.reservation_partial, [SlotName::consumer(4)]);
        demand.releasing.insert(
            "r4".into(),
            (SlotName::consumer(4), Amount::new(1.1, 576.0)),
        );
        let m = plan(&offers, &demand, &rules(), ids());
        assert_eq!(summary(&m), ["0: unreserve r4"]);
    }

    #[test]
    fn producers_take_unreserved_resources_and_prefer_agents_without_consumers() {
        let offers = vec![
            offer("a0", "z0", Amount::new(4.0, 4096.0), &[]),
            offer("a1", "z1", Amount::new(4.0, 4096.0), &[]),
        ];
        let demand = Demand {
            launches: vec![need(SlotName::producer(0))],
            consumers_per_agent: HashMap::from([("a0".into(), 1)]),
            ..Demand::default()
        };
        let m = plan(&offers, &demand, &rules(), ids());
        assert_eq!(
            summary(&m),
            [
                "0: decline: every waiting slot was placed elsewhere or waits for its reservation",
                "1: launch producer-0",
            ]
        );
    }

    #[test]
    fn no_demand_declines_everything_and_several_slots_share_a_roomy_agent_without_a_cap() {
        let offers = vec![offer("a0", "z0", Amount::new(4.0, 4096.0), &[])];
        let m = plan(&offers, &Demand::default(), &rules(), ids());
        assert_eq!(summary(&m), ["0: decline: nothing to launch"]);

        let uncapped = Rules {
            max_per_agent: None,
            ..rules()
        };
        let demand = Demand {
            launches: (0..4).map(|i| need(SlotName::consumer(i))).collect(),
            ..Demand::default()
        };
        let m = plan(&offers, &demand, &uncapped, ids());
        assert_eq!(
            summary(&m),
            [
                "0: reserve+launch consumer-0 (new-1), reserve+launch consumer-1 (new-2), reserve+launch consumer-2 (new-3)"
            ],
            "4 cpus hold three slots of 1.1"
        );
        assert_eq!(m.unplaced.len(), 1);
    }
}
