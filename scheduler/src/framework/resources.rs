//! Reading and building Mesos resources in the RESERVATION_REFINEMENT format (a `reservations`
//! stack on each resource; reference 2.5 and the recorded RESERVE/LAUNCH/UNRESERVE in
//! `scheduler.jsonl`).
//!
//! Pure helpers over `Resource` values. The scheduler only ever reserves `cpus` and `mem`
//! dynamically for its role, labelled with `framework_id`, `slot` and `resource_id`, so that
//! it recognises its own reservations in offers, leaves other frameworks' alone even when they
//! share the role, and can tell a stale reservation (an old `resource_id`) from the current one.

use std::collections::BTreeMap;

use fastdata_proto::v1::{
    Label, Labels, Offer, Resource,
    resource::{AllocationInfo, ReservationInfo, reservation_info},
    value,
};

/// Label keys on our reservations.
pub const LABEL_FRAMEWORK_ID: &str = "framework_id";
/// The slot the reservation belongs to (`consumer-3`).
pub const LABEL_SLOT: &str = "slot";
/// One id per reservation made, so a stale reservation is told from the slot's current one.
pub const LABEL_RESOURCE_ID: &str = "resource_id";

/// CPUs and memory (MB).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Amount {
    /// CPUs.
    pub cpus: f64,
    /// Memory, MB.
    pub mem: f64,
}

impl Amount {
    /// `cpus` and `mem`.
    pub fn new(cpus: f64, mem: f64) -> Amount {
        Amount { cpus, mem }
    }

    /// Both at least those of `need` (with a little slack for float sums).
    pub fn covers(&self, need: &Amount) -> bool {
        self.cpus + 1e-9 >= need.cpus && self.mem + 1e-9 >= need.mem
    }

    /// `self - other`, not below zero.
    pub fn minus(&self, other: &Amount) -> Amount {
        Amount {
            cpus: (self.cpus - other.cpus).max(0.0),
            mem: (self.mem - other.mem).max(0.0),
        }
    }

    /// `self + other`.
    pub fn plus(&self, other: &Amount) -> Amount {
        Amount {
            cpus: self.cpus + other.cpus,
            mem: self.mem + other.mem,
        }
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} cpus and {} MB", trim(self.cpus), trim(self.mem))
    }
}

/// `1.1`, `576` (no `576.0`, no float noise).
fn trim(value: f64) -> String {
    let rounded = (value * 1000.0).round() / 1000.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded}")
    }
}

/// A reservation of ours found in an offer: every resource carrying one `resource_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservedGroup {
    /// The `resource_id` label.
    pub resource_id: String,
    /// The `slot` label.
    pub slot: Option<String>,
    /// The resources, exactly as offered (what UNRESERVE and LAUNCH must name).
    pub resources: Vec<Resource>,
    /// Their CPUs and memory.
    pub amount: Amount,
}

/// An offer's resources as the scheduler sees them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OfferResources {
    /// Unreserved CPUs and memory.
    pub unreserved: Amount,
    /// Our reservations, by `resource_id`.
    pub ours: BTreeMap<String, ReservedGroup>,
}

/// The labels of the innermost (last) reservation of a resource.
fn top_labels(resource: &Resource) -> Option<&Labels> {
    resource.reservations.last()?.labels.as_ref()
}

/// A label's value on the innermost reservation.
pub fn reservation_label<'a>(resource: &'a Resource, key: &str) -> Option<&'a str> {
    top_labels(resource)?
        .labels
        .iter()
        .find(|l| l.key == key)
        .and_then(|l| l.value.as_deref())
}

fn scalar(resource: &Resource) -> f64 {
    resource.scalar.as_ref().map_or(0.0, |s| s.value)
}

impl OfferResources {
    /// Sorts an offer's `cpus` and `mem` into unreserved and our reservations (innermost
    /// reservation for `role` labelled with `framework_id`). Other resources, other roles'
    /// and other frameworks' reservations are ignored.
    pub fn of(offer: &Offer, role: &str, framework_id: &str) -> OfferResources {
        let mut out = OfferResources::default();
        for resource in &offer.resources {
            let amount = match resource.name.as_str() {
                "cpus" => Amount::new(scalar(resource), 0.0),
                "mem" => Amount::new(0.0, scalar(resource)),
                _ => continue,
            };
            if resource.reservations.is_empty() {
                out.unreserved = out.unreserved.plus(&amount);
                continue;
            }
            let top = resource.reservations.last();
            let ours = top.and_then(|r| r.role.as_deref()) == Some(role)
                && reservation_label(resource, LABEL_FRAMEWORK_ID) == Some(framework_id);
            let Some(resource_id) = reservation_label(resource, LABEL_RESOURCE_ID) else {
                continue;
            };
            if !ours {
                continue;
            }
            let group = out
                .ours
                .entry(resource_id.to_owned())
                .or_insert_with(|| ReservedGroup {
                    resource_id: resource_id.to_owned(),
                    slot: reservation_label(resource, LABEL_SLOT).map(str::to_owned),
                    resources: Vec::new(),
                    amount: Amount::default(),
                });
            group.amount = group.amount.plus(&amount);
            group.resources.push(resource.clone());
        }
        out
    }
}

/// The zone of an offer's agent, if it has a fault domain.
pub fn offer_zone(offer: &Offer) -> Option<&str> {
    offer
        .domain
        .as_ref()?
        .fault_domain
        .as_ref()
        .map(|f| f.zone.name.as_str())
}

/// Who a reservation is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationLabels {
    /// The role.
    pub role: String,
    /// The framework's principal (Mesos requires it to match FrameworkInfo.principal).
    pub principal: String,
    /// The framework id.
    pub framework_id: String,
    /// The slot name.
    pub slot: String,
    /// The reservation's id.
    pub resource_id: String,
}

fn scalar_resource(
    name: &str,
    amount: f64,
    role: &str,
    reservation: Option<&ReservationLabels>,
) -> Resource {
    Resource {
        name: name.to_owned(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        allocation_info: Some(AllocationInfo {
            role: Some(role.to_owned()),
        }),
        reservations: reservation
            .map(|r| {
                vec![ReservationInfo {
                    r#type: Some(reservation_info::Type::Dynamic as i32),
                    role: Some(r.role.clone()),
                    principal: Some(r.principal.clone()),
                    labels: Some(Labels {
                        labels: [
                            (LABEL_FRAMEWORK_ID, &r.framework_id),
                            (LABEL_SLOT, &r.slot),
                            (LABEL_RESOURCE_ID, &r.resource_id),
                        ]
                        .into_iter()
                        .map(|(k, v)| Label {
                            key: k.to_owned(),
                            value: Some(v.clone()),
                        })
                        .collect(),
                    }),
                }]
            })
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// `cpus` and `mem` resources, reserved with `labels` or unreserved, allocated to `role`.
pub fn resources(amount: Amount, role: &str, labels: Option<&ReservationLabels>) -> Vec<Resource> {
    vec![
        scalar_resource("cpus", amount.cpus, role, labels),
        scalar_resource("mem", amount.mem, role, labels),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastdata_proto::v1::{AgentId, FrameworkId, OfferId};

    pub(crate) fn offer(resources: Vec<Resource>) -> Offer {
        Offer {
            id: OfferId { value: "o1".into() },
            framework_id: FrameworkId { value: "fw".into() },
            agent_id: AgentId { value: "a1".into() },
            hostname: "h1".into(),
            resources,
            ..Default::default()
        }
    }

    fn labels(framework: &str, id: &str) -> ReservationLabels {
        ReservationLabels {
            role: "fastdata-role".into(),
            principal: "fastdata-principal".into(),
            framework_id: framework.into(),
            slot: "consumer-0".into(),
            resource_id: id.into(),
        }
    }

    #[test]
    fn offers_are_sorted_into_unreserved_and_ours() {
        let mut all = resources(Amount::new(3.0, 3000.0), "fastdata-role", None);
        all.extend(resources(
            Amount::new(1.1, 576.0),
            "fastdata-role",
            Some(&labels("fw", "r1")),
        ));
        all.extend(resources(
            Amount::new(2.0, 100.0),
            "fastdata-role",
            Some(&labels("another-framework", "r2")),
        ));
        let seen = OfferResources::of(&offer(all), "fastdata-role", "fw");
        assert_eq!(seen.unreserved, Amount::new(3.0, 3000.0));
        assert_eq!(
            seen.ours.len(),
            1,
            "another framework's reservation is not ours"
        );
        let group = &seen.ours["r1"];
        assert_eq!(group.amount, Amount::new(1.1, 576.0));
        assert_eq!(group.slot.as_deref(), Some("consumer-0"));
        assert_eq!(group.resources.len(), 2);
    }

    #[test]
    fn amounts_print_like_an_operator_writes_them() {
        assert_eq!(Amount::new(1.1, 576.0).to_string(), "1.1 cpus and 576 MB");
        assert_eq!(
            Amount::new(0.1 + 0.2, 64.0).to_string(),
            "0.3 cpus and 64 MB"
        );
        assert!(Amount::new(1.1, 576.0).covers(&Amount::new(1.0 + 0.1, 512.0 + 64.0)));
        assert!(!Amount::new(1.0, 576.0).covers(&Amount::new(1.1, 576.0)));
    }

    #[test]
    fn reserved_resources_carry_the_recorded_shape() {
        let built = resources(
            Amount::new(0.5, 256.0),
            "fastdata-role",
            Some(&labels("fw", "r")),
        );
        let cpus = &built[0];
        assert_eq!(cpus.name, "cpus");
        assert_eq!(cpus.r#type, value::Type::Scalar as i32);
        assert_eq!(
            cpus.allocation_info
                .as_ref()
                .and_then(|a| a.role.as_deref()),
            Some("fastdata-role")
        );
        let reservation = &cpus.reservations[0];
        assert_eq!(
            reservation.r#type,
            Some(reservation_info::Type::Dynamic as i32)
        );
        assert_eq!(reservation.principal.as_deref(), Some("fastdata-principal"));
        assert_eq!(reservation_label(cpus, LABEL_RESOURCE_ID), Some("r"));
        assert_eq!(reservation_label(cpus, LABEL_FRAMEWORK_ID), Some("fw"));
    }
}
