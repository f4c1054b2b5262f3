//! Resource arithmetic as the Mesos master does it (M: src/common/resources.cpp), on
//! `mesos.v1.Resource` values.
//!
//! Everything inside devcluster is kept in the "post-refinement" format: a reservation is a
//! `reservations` stack, never `role` + `reservation`. Frameworks without the
//! RESERVATION_REFINEMENT capability send and receive the old format; [`upgrade`] and
//! [`downgrade`] convert at the edge, as the master does (`convertResourceFormat`).
//! Scalars are compared with Mesos' fixed-point precision of three decimals.

use std::fmt;

use fastdata_proto::v1::{
    Resource,
    resource::{AllocationInfo, ReservationInfo, reservation_info},
    value,
};

/// Rounds to Mesos' fixed-point precision (three decimals).
pub fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A subtraction of resources that are not all there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the resources are not contained")]
pub struct NotContained;

/// A bag of resources; resources of the same shape are merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources(Vec<Resource>);

/// Everything of a resource except its value: two resources merge when their shapes match.
#[allow(deprecated)] // the pre-refinement fields are part of a resource's shape
fn same_shape(a: &Resource, b: &Resource) -> bool {
    a.name == b.name
        && a.r#type == b.r#type
        && a.role == b.role
        && a.reservation == b.reservation
        && a.reservations == b.reservations
        && a.allocation_info == b.allocation_info
        && a.disk == b.disk
        && a.revocable == b.revocable
        && a.shared == b.shared
        && a.provider_id == b.provider_id
}

fn is_scalar(r: &Resource) -> bool {
    r.r#type == value::Type::Scalar as i32
}

fn is_ranges(r: &Resource) -> bool {
    r.r#type == value::Type::Ranges as i32
}

fn is_set(r: &Resource) -> bool {
    r.r#type == value::Type::Set as i32
}

fn scalar(r: &Resource) -> f64 {
    r.scalar.as_ref().map_or(0.0, |s| s.value)
}

/// True when the resource holds nothing (zero scalar, no ranges, empty set).
fn is_empty(r: &Resource) -> bool {
    if is_scalar(r) {
        round(scalar(r)) <= 0.0
    } else if is_ranges(r) {
        r.ranges.as_ref().is_none_or(|x| x.range.is_empty())
    } else if is_set(r) {
        r.set.as_ref().is_none_or(|x| x.item.is_empty())
    } else {
        true
    }
}

/// Normalised, sorted, merged ranges.
fn normalise(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.retain(|(b, e)| b <= e);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (b, e) in ranges {
        match out.last_mut() {
            Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((b, e)),
        }
    }
    out
}

fn ranges_of(r: &Resource) -> Vec<(u64, u64)> {
    r.ranges
        .as_ref()
        .map(|x| x.range.iter().map(|r| (r.begin, r.end)).collect())
        .unwrap_or_default()
}

fn set_ranges(r: &mut Resource, ranges: Vec<(u64, u64)>) {
    r.ranges = Some(value::Ranges {
        range: ranges
            .into_iter()
            .map(|(begin, end)| value::Range { begin, end })
            .collect(),
    });
}

/// `a ⊇ b` for two normalised range lists.
fn ranges_contain(a: &[(u64, u64)], b: &[(u64, u64)]) -> bool {
    b.iter()
        .all(|(bb, be)| a.iter().any(|(ab, ae)| ab <= bb && be <= ae))
}

fn ranges_minus(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(ab, ae) in a {
        let mut pieces = vec![(ab, ae)];
        for &(bb, be) in b {
            let mut next = Vec::new();
            for (pb, pe) in pieces {
                if be < pb || bb > pe {
                    next.push((pb, pe));
                    continue;
                }
                if bb > pb {
                    next.push((pb, bb - 1));
                }
                if be < pe {
                    next.push((be + 1, pe));
                }
            }
            pieces = next;
        }
        out.extend(pieces);
    }
    normalise(out)
}

impl Resources {
    /// An empty bag.
    pub fn new() -> Self {
        Self::default()
    }

    /// The resources, in the order they were first added.
    pub fn as_slice(&self) -> &[Resource] {
        &self.0
    }

    /// The resources as a vector.
    pub fn into_vec(self) -> Vec<Resource> {
        self.0
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds one resource, merging it into one of the same shape.
    pub fn add(&mut self, r: &Resource) {
        if is_empty(r) {
            return;
        }
        if let Some(existing) = self.0.iter_mut().find(|e| same_shape(e, r)) {
            if is_scalar(r) {
                let sum = round(scalar(existing) + scalar(r));
                existing.scalar = Some(value::Scalar { value: sum });
            } else if is_ranges(r) {
                let mut all = ranges_of(existing);
                all.extend(ranges_of(r));
                set_ranges(existing, normalise(all));
            } else if is_set(r) {
                let set = existing.set.get_or_insert_with(Default::default);
                for item in r.set.iter().flat_map(|s| s.item.iter()) {
                    if !set.item.contains(item) {
                        set.item.push(item.clone());
                    }
                }
            }
            return;
        }
        let mut r = r.clone();
        if is_scalar(&r) {
            r.scalar = Some(value::Scalar {
                value: round(scalar(&r)),
            });
        } else if is_ranges(&r) {
            let normal = normalise(ranges_of(&r));
            set_ranges(&mut r, normal);
        }
        self.0.push(r);
    }

    /// Adds every resource of `other`.
    pub fn add_all(&mut self, other: &[Resource]) {
        for r in other {
            self.add(r);
        }
    }

    /// True when one resource of the same shape holds at least `r`.
    pub fn contains_one(&self, r: &Resource) -> bool {
        if is_empty(r) {
            return true;
        }
        self.0.iter().any(|e| {
            same_shape(e, r)
                && if is_scalar(r) {
                    round(scalar(e)) >= round(scalar(r))
                } else if is_ranges(r) {
                    ranges_contain(&ranges_of(e), &normalise(ranges_of(r)))
                } else if is_set(r) {
                    let have = e.set.as_ref().map(|s| &s.item);
                    r.set
                        .iter()
                        .flat_map(|s| s.item.iter())
                        .all(|i| have.is_some_and(|h| h.contains(i)))
                } else {
                    false
                }
        })
    }

    /// `self ⊇ other`.
    pub fn contains(&self, other: &[Resource]) -> bool {
        let mut rest = self.clone();
        other.iter().all(|r| rest.subtract(r).is_ok())
    }

    /// Removes one resource; `Err` (and no change) when it is not contained.
    pub fn subtract(&mut self, r: &Resource) -> Result<(), NotContained> {
        if is_empty(r) {
            return Ok(());
        }
        if !self.contains_one(r) {
            return Err(NotContained);
        }
        let Some(index) = self.0.iter().position(|e| same_shape(e, r)) else {
            return Err(NotContained);
        };
        let existing = &mut self.0[index];
        if is_scalar(r) {
            let left = round(scalar(existing) - scalar(r));
            existing.scalar = Some(value::Scalar { value: left });
        } else if is_ranges(r) {
            let left = ranges_minus(&ranges_of(existing), &normalise(ranges_of(r)));
            set_ranges(existing, left);
        } else if is_set(r) {
            let remove: Vec<&String> = r.set.iter().flat_map(|s| s.item.iter()).collect();
            if let Some(set) = existing.set.as_mut() {
                set.item.retain(|i| !remove.contains(&i));
            }
        }
        if is_empty(&self.0[index]) {
            self.0.remove(index);
        }
        Ok(())
    }

    /// Removes every resource of `other`; `Err` (and no change) unless all are contained.
    pub fn subtract_all(&mut self, other: &[Resource]) -> Result<(), NotContained> {
        let mut next = self.clone();
        for r in other {
            next.subtract(r)?;
        }
        *self = next;
        Ok(())
    }

    /// The total scalar amount of resources with this name, whatever their shape.
    pub fn scalar_total(&self, name: &str) -> f64 {
        round(
            self.0
                .iter()
                .filter(|r| r.name == name && is_scalar(r))
                .map(scalar)
                .sum(),
        )
    }

    /// The resources that satisfy `keep`.
    pub fn filter(&self, keep: impl Fn(&Resource) -> bool) -> Resources {
        Resources(self.0.iter().filter(|r| keep(r)).cloned().collect())
    }

    /// Every resource mapped through `f` and merged again.
    pub fn map(&self, f: impl Fn(&Resource) -> Resource) -> Resources {
        let mut out = Resources::new();
        for r in &self.0 {
            out.add(&f(r));
        }
        out
    }
}

impl From<Vec<Resource>> for Resources {
    fn from(v: Vec<Resource>) -> Self {
        let mut out = Resources::new();
        out.add_all(&v);
        out
    }
}

impl From<&[Resource]> for Resources {
    fn from(v: &[Resource]) -> Self {
        let mut out = Resources::new();
        out.add_all(v);
        out
    }
}

/// A scalar resource, unreserved.
pub fn scalar_resource(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.to_owned(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar {
            value: round(amount),
        }),
        ..Default::default()
    }
}

/// A ranges resource (e.g. `ports`), unreserved.
pub fn ranges_resource(name: &str, ranges: &[(u64, u64)]) -> Resource {
    let mut r = Resource {
        name: name.to_owned(),
        r#type: value::Type::Ranges as i32,
        ..Default::default()
    };
    set_ranges(&mut r, normalise(ranges.to_vec()));
    r
}

/// The role a resource is reserved for (its innermost reservation), if any.
pub fn reservation_role(r: &Resource) -> Option<&str> {
    r.reservations.last().and_then(|x| x.role.as_deref())
}

/// True when the innermost reservation is dynamic.
pub fn is_dynamically_reserved(r: &Resource) -> bool {
    r.reservations
        .last()
        .is_some_and(|x| x.r#type == Some(reservation_info::Type::Dynamic as i32))
}

/// True for a persistent volume (a disk with `disk.persistence`).
pub fn is_persistent_volume(r: &Resource) -> bool {
    r.disk.as_ref().is_some_and(|d| d.persistence.is_some())
}

/// The resource with its innermost reservation removed (what UNRESERVE gives back).
pub fn pop_reservation(r: &Resource) -> Resource {
    let mut r = r.clone();
    r.reservations.pop();
    r
}

/// The resource with `allocation_info.role` set.
pub fn allocated_to(r: &Resource, role: &str) -> Resource {
    let mut r = r.clone();
    r.allocation_info = Some(AllocationInfo {
        role: Some(role.to_owned()),
    });
    r
}

/// The resource without `allocation_info`.
pub fn unallocated(r: &Resource) -> Resource {
    let mut r = r.clone();
    r.allocation_info = None;
    r
}

/// The resource a CREATE consumes for this volume: the same disk without `persistence` and
/// `volume` (a disk `source` stays).
pub fn volume_source(volume: &Resource) -> Resource {
    let mut r = volume.clone();
    if let Some(disk) = r.disk.as_mut() {
        disk.persistence = None;
        disk.volume = None;
        if disk.source.is_none() {
            r.disk = None;
        }
    }
    r
}

/// Converts a resource a framework sent in the pre-refinement format (`role`, `reservation`)
/// to the `reservations` stack, as the master does for frameworks without
/// RESERVATION_REFINEMENT (M: src/common/resources_utils.cpp `upgradeResource`).
#[allow(deprecated)] // `role` and `reservation` are exactly what this converts
pub fn upgrade(r: &Resource) -> Result<Resource, String> {
    let mut r = r.clone();
    let old_style = r.role.is_some() || r.reservation.is_some();
    if old_style && !r.reservations.is_empty() {
        return Err(format!(
            "Invalid resource format: resource '{}' sets 'reservations' and also 'role' or 'reservation'",
            r.name
        ));
    }
    let role = r.role.take();
    let reservation = r.reservation.take();
    match role.as_deref() {
        None | Some("*") => {
            if reservation.is_some() {
                return Err(
                    "Invalid reservation: 'reservation' set on an unreserved resource".into(),
                );
            }
        }
        Some(role) => {
            let dynamic = reservation.is_some();
            let reservation = reservation.unwrap_or_default();
            r.reservations.push(ReservationInfo {
                r#type: Some(if dynamic {
                    reservation_info::Type::Dynamic as i32
                } else {
                    reservation_info::Type::Static as i32
                }),
                role: Some(role.to_owned()),
                principal: reservation.principal,
                labels: reservation.labels,
            });
        }
    }
    Ok(r)
}

/// Converts to the pre-refinement format a framework without RESERVATION_REFINEMENT sees:
/// unreserved resources get `role: "*"`; one reservation becomes `role` plus (if dynamic)
/// `reservation{principal, labels}` (M: `convertResourceFormat(PRE_RESERVATION_REFINEMENT)`).
/// `None` for refined reservations, which such frameworks are never offered.
#[allow(deprecated)] // `role` and `reservation` are exactly what this produces
pub fn downgrade(r: &Resource) -> Option<Resource> {
    let mut r = r.clone();
    match r.reservations.len() {
        0 => r.role = Some("*".into()),
        1 => {
            let source = r.reservations.remove(0);
            if source.r#type == Some(reservation_info::Type::Dynamic as i32) {
                r.reservation = Some(ReservationInfo {
                    r#type: None,
                    role: None,
                    principal: source.principal,
                    labels: source.labels,
                });
            }
            r.role = source.role;
        }
        _ => return None,
    }
    Some(r)
}

/// Mesos' `operator<<(Resource)`: `name(allocated: role)(reservations: [...])[disk]:value`.
#[derive(Debug)]
pub struct Display<'a>(pub &'a Resource);

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        f.write_str(&r.name)?;
        if let Some(role) = r.allocation_info.as_ref().and_then(|a| a.role.as_deref()) {
            write!(f, "(allocated: {role})")?;
        }
        if !r.reservations.is_empty() {
            f.write_str("(reservations: [")?;
            for (i, res) in r.reservations.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                let kind = match res
                    .r#type
                    .and_then(|t| reservation_info::Type::try_from(t).ok())
                {
                    Some(reservation_info::Type::Static) => "STATIC",
                    Some(reservation_info::Type::Dynamic) => "DYNAMIC",
                    _ => "UNKNOWN",
                };
                write!(f, "({kind},{}", res.role.as_deref().unwrap_or("*"))?;
                if let Some(p) = &res.principal {
                    write!(f, ",{p}")?;
                }
                if let Some(labels) = &res.labels {
                    let text: Vec<String> = labels
                        .labels
                        .iter()
                        .map(|l| format!("{}: {}", l.key, l.value.as_deref().unwrap_or("")))
                        .collect();
                    write!(f, ",{{{}}}", text.join(", "))?;
                }
                f.write_str(")")?;
            }
            f.write_str("])")?;
        }
        if let Some(disk) = &r.disk {
            f.write_str("[")?;
            if let Some(p) = &disk.persistence {
                f.write_str(&p.id)?;
            }
            if let Some(v) = &disk.volume {
                write!(f, ":{}", v.container_path)?;
            }
            f.write_str("]")?;
        }
        if r.revocable.is_some() {
            f.write_str("{REV}")?;
        }
        if r.shared.is_some() {
            f.write_str("<SHARED>")?;
        }
        f.write_str(":")?;
        if is_scalar(r) {
            f.write_str(&format_scalar(scalar(r)))
        } else if is_ranges(r) {
            let parts: Vec<String> = ranges_of(r)
                .iter()
                .map(|(b, e)| format!("{b}-{e}"))
                .collect();
            write!(f, "[{}]", parts.join(", "))
        } else if is_set(r) {
            let items = r
                .set
                .as_ref()
                .map(|s| s.item.join(", "))
                .unwrap_or_default();
            write!(f, "{{{items}}}")
        } else {
            Ok(())
        }
    }
}

/// A scalar as C++ `ostream` prints a double of at most three decimals (`64`, `0.5`, `3.4`).
pub fn format_scalar(v: f64) -> String {
    let v = round(v);
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Resources joined as Mesos prints a `Resources` (`a; b; c`).
pub fn format_list(resources: &[Resource]) -> String {
    resources
        .iter()
        .map(|r| Display(r).to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastdata_proto::v1::{Label, Labels};

    fn reserved(name: &str, amount: f64) -> Resource {
        let mut r = scalar_resource(name, amount);
        r.reservations.push(ReservationInfo {
            r#type: Some(reservation_info::Type::Dynamic as i32),
            role: Some("fastdata-role".into()),
            principal: Some("fastdata-principal".into()),
            labels: Some(Labels {
                labels: vec![Label {
                    key: "slot".into(),
                    value: Some("0".into()),
                }],
            }),
        });
        r
    }

    #[test]
    fn scalar_arithmetic_uses_three_decimals() {
        let mut r = Resources::from(vec![scalar_resource("cpus", 4.0)]);
        r.subtract(&scalar_resource("cpus", 0.5)).unwrap();
        r.subtract(&scalar_resource("cpus", 0.1)).unwrap();
        assert_eq!(r.scalar_total("cpus"), 3.4);
        assert!(r.subtract(&scalar_resource("cpus", 3.5)).is_err());
        assert_eq!(
            r.scalar_total("cpus"),
            3.4,
            "a failed subtract changes nothing"
        );
        r.subtract(&scalar_resource("cpus", 3.4)).unwrap();
        assert!(r.is_empty());
    }

    #[test]
    fn ranges_split_and_merge() {
        let mut r = Resources::from(vec![ranges_resource("ports", &[(31000, 32000)])]);
        r.subtract(&ranges_resource("ports", &[(31005, 31005)]))
            .unwrap();
        assert_eq!(
            format_list(r.as_slice()),
            "ports:[31000-31004, 31006-32000]"
        );
        assert!(!r.contains(&[ranges_resource("ports", &[(31004, 31006)])]));
        r.add(&ranges_resource("ports", &[(31005, 31005)]));
        assert_eq!(format_list(r.as_slice()), "ports:[31000-32000]");
    }

    #[test]
    fn reserved_and_unreserved_do_not_mix() {
        let mut r = Resources::from(vec![scalar_resource("cpus", 4.0), reserved("cpus", 0.5)]);
        assert_eq!(r.as_slice().len(), 2);
        assert!(r.contains(&[reserved("cpus", 0.5), scalar_resource("cpus", 4.0)]));
        assert!(!r.contains(&[reserved("cpus", 1.0)]));
        r.subtract(&reserved("cpus", 0.5)).unwrap();
        r.add(&pop_reservation(&reserved("cpus", 0.5)));
        assert_eq!(r.as_slice(), &[scalar_resource("cpus", 4.5)]);
    }

    /// The TASK_ERROR text of `scheduler.jsonl` step 11 is built from this formatting.
    #[test]
    fn mesos_formatting() {
        let role = "fastdata-role";
        let offered = [
            allocated_to(&ranges_resource("ports", &[(31000, 32000)]), role),
            allocated_to(&scalar_resource("cpus", 4.0), role),
            allocated_to(&scalar_resource("mem", 4096.0), role),
            allocated_to(&scalar_resource("disk", 10000.0), role),
        ];
        assert_eq!(
            format_list(&offered),
            "ports(allocated: fastdata-role):[31000-32000]; cpus(allocated: fastdata-role):4; mem(allocated: fastdata-role):4096; disk(allocated: fastdata-role):10000"
        );
        assert_eq!(format_scalar(0.5), "0.5");
        assert_eq!(format_scalar(3.4), "3.4");
    }

    #[test]
    #[allow(deprecated)] // the pre-refinement fields are the subject
    fn format_conversion_round_trips() {
        let post = reserved("mem", 256.0);
        let pre = downgrade(&post).unwrap();
        assert_eq!(pre.role.as_deref(), Some("fastdata-role"));
        assert!(pre.reservations.is_empty());
        assert_eq!(
            pre.reservation.as_ref().unwrap().principal.as_deref(),
            Some("fastdata-principal")
        );
        assert_eq!(upgrade(&pre).unwrap(), post);
        let unreserved = downgrade(&scalar_resource("cpus", 1.0)).unwrap();
        assert_eq!(unreserved.role.as_deref(), Some("*"));
        assert_eq!(upgrade(&unreserved).unwrap(), scalar_resource("cpus", 1.0));
        let mut both = post;
        both.role = Some("x".into());
        assert!(upgrade(&both).is_err());
    }
}
