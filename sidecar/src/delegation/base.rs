//! What both sides agree on: the resources' values and versions at the last sync.

use std::collections::BTreeMap;

/// A resource's id (a catalogue entry or a booking hosted by the nano).
pub type ResourceId = String;

/// One side of a delegation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Master,
    Nano,
}

/// What a resource holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// The resource's current body (opaque here).
    Present(Vec<u8>),
    /// Deleted: a tombstone (a delete is terminal).
    Deleted,
}

/// The resources a side holds (an id absent from the map was never known).
pub type State = BTreeMap<ResourceId, Value>;

/// Per resource, the latest version of each author's changes a base reflects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Versions {
    pub master: u64,
    pub nano: u64,
}

impl Versions {
    /// The version of `side`'s changes.
    pub fn of(&self, side: Side) -> u64 {
        match side {
            Side::Master => self.master,
            Side::Nano => self.nano,
        }
    }
}

/// The last point both sides agreed on: what they held, up to which versions, at which epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Base {
    /// Sync epoch: 0 at the start of a delegation, one more at every reconciliation.
    pub epoch: u64,
    pub state: State,
    /// Resources never changed since the delegation began are absent (versions 0, 0).
    pub versions: BTreeMap<ResourceId, Versions>,
}

impl Base {
    /// The version of `side`'s changes to `resource` this base reflects.
    pub fn version(&self, resource: &str, side: Side) -> u64 {
        self.versions.get(resource).map_or(0, |v| v.of(side))
    }
}
