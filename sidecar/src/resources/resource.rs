//! A resource a site offers its partners: typed common fields plus an opaque payload, and the
//! validation every resource passes before it is signed, stored or booked.
//!
//! Bounds: name ≤ 64 bytes, description ≤ 512, unit name 1–16 bytes, at most 32 availability
//! windows (sorted, non-overlapping, each `start < end`), a partners list of at most 64 DIDs
//! (no duplicates, not the owner), payload ≤ 16 KiB. Capacity is at least one unit; prices are
//! in micro-units of the consortium's currency per unit of capacity.

use serde::{Deserialize, Serialize};

use super::did::Did;
use super::ids::{ResourceId, ResourceRef};
use super::window::Window;
use crate::time::Timestamp;

pub const MAX_NAME_LEN: usize = 64;
pub const MAX_DESCRIPTION_LEN: usize = 512;
pub const MAX_UNIT_LEN: usize = 16;
pub const MAX_WINDOWS: usize = 32;
pub const MAX_PARTNERS: usize = 64;
pub const MAX_PAYLOAD: usize = 16 * 1024;

/// What a resource is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    Compute,
    Storage,
    Data,
    Workflow,
}

/// Who may see a resource (and receives its mutations).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    /// Only these partners.
    Partners(Vec<Did>),
    /// Every partner of the owner in the consortium.
    Consortium,
}

/// A resource (see the module docs for the bounds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub id: ResourceId,
    pub owner: Did,
    pub kind: Kind,
    pub name: String,
    pub description: String,
    /// Units that can be booked at the same time.
    pub capacity: u64,
    /// What one unit is ("core", "GiB", "dataset", "run").
    pub unit: String,
    /// Price of one unit, in micro-units.
    pub price_per_unit: u128,
    /// When the resource can be booked (empty: never).
    pub availability: Vec<Window>,
    pub visibility: Visibility,
    /// Kind-specific description the data plane does not interpret.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// Why a resource is invalid; every variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} has {len} bytes (at most {max})")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} has {count} entries (at most {max})")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{field} holds control characters")]
    Control { field: &'static str },
    #[error("capacity must be at least one unit")]
    ZeroCapacity,
    #[error("availability window {index} does not end after it starts")]
    EmptyWindow { index: usize },
    #[error("availability window {index} overlaps or precedes the one before it")]
    Unordered { index: usize },
    #[error("visibility lists {did} twice")]
    DuplicatePartner { did: Did },
    #[error("visibility lists the owner itself")]
    OwnerAsPartner,
}

impl Invalid {
    /// The field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Invalid::Empty { field }
            | Invalid::TooLong { field, .. }
            | Invalid::TooMany { field, .. }
            | Invalid::Control { field } => field,
            Invalid::ZeroCapacity => "capacity",
            Invalid::EmptyWindow { .. } | Invalid::Unordered { .. } => "availability",
            Invalid::DuplicatePartner { .. } | Invalid::OwnerAsPartner => "visibility",
        }
    }
}

fn text(field: &'static str, s: &str, max: usize, required: bool) -> Result<(), Invalid> {
    if required && s.is_empty() {
        return Err(Invalid::Empty { field });
    }
    if s.len() > max {
        return Err(Invalid::TooLong {
            field,
            len: s.len(),
            max,
        });
    }
    if s.chars().any(char::is_control) {
        return Err(Invalid::Control { field });
    }
    Ok(())
}

impl Resource {
    /// Checks every bound (see the module docs).
    pub fn validate(&self) -> Result<(), Invalid> {
        text("name", &self.name, MAX_NAME_LEN, true)?;
        // Descriptions may span lines.
        let flat = self.description.replace(['\n', '\t'], " ");
        text("description", &flat, MAX_DESCRIPTION_LEN, false)?;
        text("unit", &self.unit, MAX_UNIT_LEN, true)?;
        if self.capacity == 0 {
            return Err(Invalid::ZeroCapacity);
        }
        if self.availability.len() > MAX_WINDOWS {
            return Err(Invalid::TooMany {
                field: "availability",
                count: self.availability.len(),
                max: MAX_WINDOWS,
            });
        }
        for (index, w) in self.availability.iter().enumerate() {
            if !w.is_valid() {
                return Err(Invalid::EmptyWindow { index });
            }
            if index > 0 && self.availability[index - 1].end() > w.start() {
                return Err(Invalid::Unordered { index });
            }
        }
        if let Visibility::Partners(list) = &self.visibility {
            if list.len() > MAX_PARTNERS {
                return Err(Invalid::TooMany {
                    field: "visibility",
                    count: list.len(),
                    max: MAX_PARTNERS,
                });
            }
            let mut seen = std::collections::BTreeSet::new();
            for d in list {
                if *d == self.owner {
                    return Err(Invalid::OwnerAsPartner);
                }
                if !seen.insert(d) {
                    return Err(Invalid::DuplicatePartner { did: d.clone() });
                }
            }
        }
        if self.payload.len() > MAX_PAYLOAD {
            return Err(Invalid::TooLong {
                field: "payload",
                len: self.payload.len(),
                max: MAX_PAYLOAD,
            });
        }
        Ok(())
    }

    /// (owner, id).
    pub fn reference(&self) -> ResourceRef {
        ResourceRef {
            owner: self.owner.clone(),
            id: self.id.clone(),
        }
    }

    /// Whether some availability window contains `t`.
    pub fn available_at(&self, t: Timestamp) -> bool {
        self.availability.iter().any(|w| w.contains(t))
    }

    /// The availability window that holds all of `slot`, if one does.
    pub fn window_covering(&self, slot: &Window) -> Option<&Window> {
        self.availability.iter().find(|w| w.covers(slot))
    }

    /// Whether `did` may see this resource, given the owner's partners (`partners`).
    pub fn visible_to(&self, did: &Did, partners: &[Did]) -> bool {
        match &self.visibility {
            Visibility::Partners(list) => list.contains(did),
            Visibility::Consortium => partners.contains(did),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::NodeIdentity;

    pub(crate) fn w(a: u64, b: u64) -> Window {
        Window::new(Timestamp::from_millis(a), Timestamp::from_millis(b)).unwrap()
    }

    /// A valid compute resource of `owner`.
    pub(crate) fn sample(owner: &Did, id: &str) -> Resource {
        Resource {
            id: ResourceId::parse(id).unwrap(),
            owner: owner.clone(),
            kind: Kind::Compute,
            name: format!("GPU node {id}"),
            description: "8 × A100\nshared scratch".into(),
            capacity: 8,
            unit: "gpu".into(),
            price_per_unit: 1_500_000,
            availability: vec![w(1_000, 10_000), w(20_000, 30_000)],
            visibility: Visibility::Consortium,
            payload: vec![1, 2, 3],
        }
    }

    fn did() -> Did {
        Did::of(&NodeIdentity::generate())
    }

    #[test]
    fn a_sample_resource_is_valid_and_each_bound_names_its_field() {
        let owner = did();
        let ok = sample(&owner, "gpu");
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: &dyn Fn(&mut Resource)| {
            let mut r = ok.clone();
            f(&mut r);
            r.validate().unwrap_err()
        };
        assert_eq!(bad(&|r| r.name.clear()).field(), "name");
        assert_eq!(bad(&|r| r.name = "n".repeat(65)).field(), "name");
        assert_eq!(bad(&|r| r.name = "a\u{7}".into()).field(), "name");
        assert_eq!(
            bad(&|r| r.description = "d".repeat(513)).field(),
            "description"
        );
        assert_eq!(bad(&|r| r.unit.clear()).field(), "unit");
        assert_eq!(bad(&|r| r.unit = "u".repeat(17)).field(), "unit");
        assert_eq!(bad(&|r| r.capacity = 0), Invalid::ZeroCapacity);
        assert_eq!(
            bad(&|r| r.payload = vec![0; MAX_PAYLOAD + 1]),
            Invalid::TooLong {
                field: "payload",
                len: MAX_PAYLOAD + 1,
                max: MAX_PAYLOAD
            }
        );
        assert_eq!(
            bad(&|r| r.availability = (0..33).map(|i| w(i * 10, i * 10 + 5)).collect()).field(),
            "availability"
        );
        // Overlapping, unsorted, and empty windows.
        assert_eq!(
            bad(&|r| r.availability = vec![w(0, 10), w(5, 20)]),
            Invalid::Unordered { index: 1 }
        );
        assert_eq!(
            bad(&|r| r.availability = vec![w(20, 30), w(0, 10)]),
            Invalid::Unordered { index: 1 }
        );
        let empty: Window = serde_json::from_str(r#"{"start_ms":5,"end_ms":5}"#).unwrap();
        assert_eq!(
            bad(&|r| r.availability = vec![empty]),
            Invalid::EmptyWindow { index: 0 }
        );
        // Touching windows are fine.
        let mut touching = ok.clone();
        touching.availability = vec![w(0, 10), w(10, 20)];
        assert_eq!(touching.validate(), Ok(()));
        let p = did();
        assert_eq!(
            bad(&|r| r.visibility = Visibility::Partners(vec![p.clone(), p.clone()])),
            Invalid::DuplicatePartner { did: p.clone() }
        );
        assert_eq!(
            bad(&|r| r.visibility = Visibility::Partners(vec![r.owner.clone()])),
            Invalid::OwnerAsPartner
        );
        let many: Vec<Did> = (0..65).map(|_| did()).collect();
        assert_eq!(
            bad(&|r| r.visibility = Visibility::Partners(many.clone())).field(),
            "visibility"
        );
    }

    #[test]
    fn availability_and_visibility_queries() {
        let owner = did();
        let mut r = sample(&owner, "gpu");
        assert!(r.available_at(Timestamp::from_millis(1_000)));
        assert!(!r.available_at(Timestamp::from_millis(10_000)));
        assert_eq!(r.window_covering(&w(2_000, 9_000)), Some(&w(1_000, 10_000)));
        assert_eq!(r.window_covering(&w(9_000, 21_000)), None);
        let (a, b) = (did(), did());
        assert!(r.visible_to(&a, std::slice::from_ref(&a)));
        assert!(!r.visible_to(&b, std::slice::from_ref(&a)));
        r.visibility = Visibility::Partners(vec![b.clone()]);
        assert!(!r.visible_to(&a, std::slice::from_ref(&a)));
        assert!(r.visible_to(&b, &[]));
    }
}
