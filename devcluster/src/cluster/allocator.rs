//! Offers (reference 2.7): the allocation round, offer filters (DECLINE, the unused part of
//! an ACCEPT), SUPPRESS and REVIVE per role, and RESCIND.
//!
//! Simplification (documented in the crate docs): a plain round robin over frameworks
//! instead of DRF, and quota, weights and offer constraints are not implemented.

use std::time::Duration;

use fastdata_proto::v1::{
    ExecutorId, Filters, FrameworkId, Offer, OfferId, Resource, Url, framework_info,
    resource::AllocationInfo, scheduler::event,
};

use super::master::{Framework, OfferFilter, OfferRec, Presence, scheduler_event};
use super::{Cluster, Now};
use crate::resources::{self, Resources};

/// `refuse_seconds` is capped at one year (M: hierarchical.cpp).
const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Mesos' default `--min_allocatable_resources=cpus:0.01|mem:32`.
fn allocatable(candidate: &Resources) -> bool {
    candidate.scalar_total("cpus") >= 0.01 || candidate.scalar_total("mem") >= 32.0
}

/// True when `r` may be offered to `role` of a framework: unreserved, or reserved for that
/// role; refined reservations only to RESERVATION_REFINEMENT frameworks.
fn offerable(r: &Resource, role: &str, refinement: bool) -> bool {
    match r.reservations.len() {
        0 => true,
        1 => resources::reservation_role(r) == Some(role),
        _ => refinement && resources::reservation_role(r) == Some(role),
    }
}

impl Cluster {
    /// How long declined resources stay filtered: absent filters 5 s, `refuse_seconds` 0
    /// none, negative or not a number 5 s, more than a year a year, otherwise at least the
    /// allocation interval.
    pub(crate) fn filter_duration(&self, filters: Option<&Filters>) -> Option<Duration> {
        let seconds = filters.and_then(|f| f.refuse_seconds).unwrap_or(5.0);
        let seconds = if seconds.is_nan() || seconds < 0.0 {
            5.0
        } else {
            seconds
        };
        if seconds == 0.0 {
            return None;
        }
        let d = Duration::try_from_secs_f64(seconds).unwrap_or(MAX_REFUSE);
        Some(d.min(MAX_REFUSE).max(self.config.allocation_interval))
    }

    /// One allocation round: every active agent's free resources go, role by role, to the
    /// connected frameworks that want them and have not filtered them, one OFFERS event per
    /// framework.
    pub(crate) fn allocate(&mut self, now: Now) {
        let framework_ids: Vec<String> = self
            .master
            .frameworks
            .values()
            .filter(|f| f.conn.is_some())
            .map(|f| f.id.clone())
            .collect();
        if framework_ids.is_empty() {
            return;
        }
        for framework in self.master.frameworks.values_mut() {
            framework.filters.retain(|f| f.until > now.at);
        }
        let start = self.master.allocation_cursor % framework_ids.len();
        self.master.allocation_cursor = self.master.allocation_cursor.wrapping_add(1);
        let mut batches: Vec<(String, Vec<Offer>)> = framework_ids
            .iter()
            .map(|id| (id.clone(), Vec::new()))
            .collect();
        for agent in 0..self.master.agents.len() {
            if self.master.agents[agent].presence != Presence::Active {
                continue;
            }
            let mut available = self.master.agents[agent].available();
            if available.is_empty() {
                continue;
            }
            for k in 0..framework_ids.len() {
                let slot = (start + k) % framework_ids.len();
                let framework = &self.master.frameworks[&framework_ids[slot]];
                let refinement =
                    framework.has(framework_info::capability::Type::ReservationRefinement);
                let roles: Vec<String> = framework
                    .roles()
                    .into_iter()
                    .filter(|r| !framework.suppressed.contains(r))
                    .collect();
                for role in roles {
                    let candidate = available.filter(|r| offerable(r, &role, refinement));
                    if candidate.is_empty() || !allocatable(&candidate) {
                        continue;
                    }
                    let framework = &self.master.frameworks[&framework_ids[slot]];
                    let filtered = framework.filters.iter().any(|f| {
                        f.agent == agent
                            && f.role == role
                            && f.resources.contains(candidate.as_slice())
                    });
                    if filtered {
                        continue;
                    }
                    let _ = available.subtract_all(candidate.as_slice());
                    let offer = self.create_offer(&framework_ids[slot], agent, &role, &candidate);
                    batches[slot].1.push(offer);
                }
            }
        }
        for (framework_id, offers) in batches {
            if offers.is_empty() {
                continue;
            }
            let mut ev = scheduler_event(event::Type::Offers);
            ev.offers = Some(event::Offers { offers });
            self.send_to_framework(&framework_id, ev);
        }
    }

    /// Records an offer of `candidate` (free resources of `agent`) and returns it as the
    /// framework will see it.
    fn create_offer(
        &mut self,
        framework_id: &str,
        agent: usize,
        role: &str,
        candidate: &Resources,
    ) -> Offer {
        let id = format!("{}-O{}", self.master.id, self.master.next_offer);
        self.master.next_offer += 1;
        let agent_rec = &mut self.master.agents[agent];
        agent_rec.offered.add_all(candidate.as_slice());
        let allocated: Vec<Resource> = candidate
            .as_slice()
            .iter()
            .map(|r| resources::allocated_to(r, role))
            .collect();
        self.master.offers.insert(
            id.clone(),
            OfferRec {
                framework_id: framework_id.to_owned(),
                agent,
                role: role.to_owned(),
                resources: allocated,
            },
        );
        let framework = &self.master.frameworks[framework_id];
        self.offer_as_seen_by(&id, framework)
    }

    /// An outstanding offer in the format its framework expects (reference 2.5: no
    /// `allocation_info` without MULTI_ROLE, `role`/`reservation` without
    /// RESERVATION_REFINEMENT).
    pub(crate) fn offer_as_seen_by(&self, offer_id: &str, framework: &Framework) -> Offer {
        let rec = &self.master.offers[offer_id];
        let agent = &self.master.agents[rec.agent];
        let multi_role = framework.has(framework_info::capability::Type::MultiRole);
        let refinement = framework.has(framework_info::capability::Type::ReservationRefinement);
        let resources = rec
            .resources
            .iter()
            .filter_map(|r| {
                let r = if multi_role {
                    r.clone()
                } else {
                    resources::unallocated(r)
                };
                if refinement {
                    Some(r)
                } else {
                    resources::downgrade(&r)
                }
            })
            .collect();
        let executor_ids = framework
            .executors
            .keys()
            .filter(|(a, _)| *a == rec.agent)
            .map(|(_, e)| ExecutorId { value: e.clone() })
            .collect();
        Offer {
            id: OfferId {
                value: offer_id.to_owned(),
            },
            framework_id: FrameworkId {
                value: framework.id.clone(),
            },
            agent_id: fastdata_proto::v1::AgentId {
                value: agent.id.clone(),
            },
            hostname: agent.info.hostname.clone(),
            url: Some(Url {
                scheme: "http".into(),
                address: fastdata_proto::v1::Address {
                    hostname: Some(agent.info.hostname.clone()),
                    ip: Some("127.0.0.1".into()),
                    port: i32::from(agent.port),
                },
                path: Some("/slave(1)".into()),
                query: Vec::new(),
                fragment: None,
            }),
            domain: agent.info.domain.clone(),
            resources,
            attributes: agent.info.attributes.clone(),
            executor_ids,
            unavailability: None,
            allocation_info: multi_role.then(|| AllocationInfo {
                role: Some(rec.role.clone()),
            }),
        }
    }

    /// Removes an offer and returns its resources to the agent's free pool.
    pub(crate) fn remove_offer(&mut self, offer_id: &str) -> Option<OfferRec> {
        let rec = self.master.offers.remove(offer_id)?;
        let stripped: Vec<Resource> = rec.resources.iter().map(resources::unallocated).collect();
        let _ = self.master.agents[rec.agent]
            .offered
            .subtract_all(&stripped);
        Some(rec)
    }

    /// Drops every offer of a framework without telling it (failover, disconnection).
    pub(crate) fn discard_offers_of(&mut self, framework_id: &str) {
        let ids: Vec<String> = self
            .master
            .offers
            .iter()
            .filter(|(_, o)| o.framework_id == framework_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.remove_offer(&id);
        }
    }

    /// Withdraws an offer with a RESCIND event.
    pub(crate) fn rescind_offer(&mut self, offer_id: &str) {
        if let Some(rec) = self.remove_offer(offer_id) {
            let mut ev = scheduler_event(event::Type::Rescind);
            ev.rescind = Some(event::Rescind {
                offer_id: OfferId {
                    value: offer_id.to_owned(),
                },
            });
            self.send_to_framework(&rec.framework_id, ev);
        }
    }

    /// Rescinds every offer of an agent (it disconnected or went away).
    pub(crate) fn rescind_offers_on(&mut self, agent: usize) {
        let ids: Vec<String> = self
            .master
            .offers
            .iter()
            .filter(|(_, o)| o.agent == agent)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.rescind_offer(&id);
        }
    }

    /// Installs a filter on resources a framework declined on an agent.
    pub(crate) fn add_filter(
        &mut self,
        now: Now,
        framework_id: &str,
        agent: usize,
        role: &str,
        declined: &[Resource],
        refuse: Option<Duration>,
    ) {
        let Some(refuse) = refuse else {
            return;
        };
        let Some(framework) = self.master.frameworks.get_mut(framework_id) else {
            return;
        };
        let resources: Resources = declined
            .iter()
            .map(resources::unallocated)
            .collect::<Vec<_>>()
            .into();
        if resources.is_empty() {
            return;
        }
        framework.filters.push(OfferFilter {
            role: role.to_owned(),
            agent,
            resources,
            until: now.at + refuse,
        });
    }

    /// DECLINE of one offer; unknown offers are ignored.
    pub(crate) fn decline_offer(
        &mut self,
        now: Now,
        framework_id: &str,
        offer_id: &str,
        refuse: Option<Duration>,
    ) {
        let belongs = self
            .master
            .offers
            .get(offer_id)
            .is_some_and(|o| o.framework_id == framework_id);
        if !belongs {
            return;
        }
        if let Some(rec) = self.remove_offer(offer_id) {
            self.add_filter(
                now,
                framework_id,
                rec.agent,
                &rec.role,
                &rec.resources,
                refuse,
            );
        }
    }

    /// The roles a SUPPRESS or REVIVE applies to: all the framework's roles when empty;
    /// `None` (the whole call is dropped) when one is not a framework role.
    fn call_roles(&self, framework_id: &str, roles: Vec<String>) -> Option<Vec<String>> {
        let own = self.master.frameworks[framework_id].roles();
        if roles.is_empty() {
            return Some(own);
        }
        roles.iter().all(|r| own.contains(r)).then_some(roles)
    }

    /// SUPPRESS: no more offers for these roles until REVIVE.
    pub(crate) fn suppress(&mut self, framework_id: &str, roles: Vec<String>) {
        let Some(roles) = self.call_roles(framework_id, roles) else {
            return;
        };
        if let Some(framework) = self.master.frameworks.get_mut(framework_id) {
            framework.suppressed.extend(roles);
        }
    }

    /// REVIVE: un-suppress the roles, clear their filters, and allocate at once.
    pub(crate) fn revive(&mut self, now: Now, framework_id: &str, roles: Vec<String>) {
        let Some(roles) = self.call_roles(framework_id, roles) else {
            return;
        };
        if let Some(framework) = self.master.frameworks.get_mut(framework_id) {
            for role in &roles {
                framework.suppressed.remove(role);
            }
            framework.filters.retain(|f| !roles.contains(&f.role));
        }
        self.allocate(now);
    }
}
