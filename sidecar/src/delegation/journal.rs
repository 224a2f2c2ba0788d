//! A side's journal of changes to the nano's resources since the last sync.
//!
//! Versions count per resource and per author: a side's next change to a resource is one
//! more than its last (journaled or, once settled, synced) change to it. The journal is
//! bounded — entries, bytes per body, bytes in all — so a long cut, or a hostile peer's
//! journal received on reconnection, cannot grow without limit; what does not fit is refused
//! with a typed [`JournalError`], never dropped.

use std::collections::BTreeMap;

use crate::time::Timestamp;

use super::base::{Base, ResourceId, Side, State, Value};

/// Changes one journal holds by default (a day of one change every ten seconds).
pub const MAX_ENTRIES: usize = 8_640;
/// Largest body of one change by default.
pub const MAX_BODY: usize = 64 * 1024;
/// Body bytes one journal holds by default.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;
/// Longest resource id, bytes.
pub const MAX_ID: usize = 256;

/// What a change does to its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Create,
    Update,
    Delete,
}

/// One change to one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub resource: ResourceId,
    /// The author's counter for this resource (1 for its first change).
    pub version: u64,
    /// Who claims to have made it. Informative only: [`super::reconcile()`] attributes a change
    /// to the side whose journal holds it.
    pub author: Side,
    pub kind: Kind,
    /// The resource's new body (empty for a delete).
    pub body: Vec<u8>,
    /// When it was made, by its author's clock (reported, never compared).
    pub at: Timestamp,
}

impl Change {
    /// The value the resource holds once this change is applied.
    pub fn value(&self) -> Value {
        match self.kind {
            Kind::Create | Kind::Update => Value::Present(self.body.clone()),
            Kind::Delete => Value::Deleted,
        }
    }

    /// Applies the change to `state` (last writer: a create or update sets the body, a delete
    /// leaves a tombstone).
    pub fn apply(&self, state: &mut State) {
        state.insert(self.resource.clone(), self.value());
    }
}

/// A journal's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: usize,
    pub max_body: usize,
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: MAX_ENTRIES,
            max_body: MAX_BODY,
            max_bytes: MAX_BYTES,
        }
    }
}

/// Why a change, or a received journal, is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("the journal holds {max} changes already")]
    Full { max: usize },
    #[error("a body of {len} bytes exceeds the {max}-byte maximum")]
    BodyTooLarge { len: usize, max: usize },
    #[error("the journal's bodies would exceed {max} bytes")]
    TooManyBytes { max: usize },
    #[error("a resource id must be 1 to {MAX_ID} bytes")]
    BadId,
    #[error("change {found} of {resource:?} out of sequence (expected {expected})")]
    OutOfSequence {
        resource: ResourceId,
        expected: u64,
        found: u64,
    },
    #[error("a delete carries no body")]
    DeleteWithBody,
}

/// A side's changes since the last sync, in the order they were made (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Journal {
    limits: Limits,
    /// Sync epoch of the base this journal continues from.
    epoch: u64,
    /// Per resource: the holder's last version the other side has (changes numbered after it).
    synced: BTreeMap<ResourceId, u64>,
    /// Per resource: the highest version journaled.
    head: BTreeMap<ResourceId, u64>,
    changes: Vec<Change>,
    bytes: usize,
}

impl Journal {
    /// An empty journal for `side`, continuing from `base`.
    pub fn new(limits: Limits, base: &Base, side: Side) -> Self {
        Journal {
            limits,
            epoch: base.epoch,
            synced: synced_of(base, side),
            head: BTreeMap::new(),
            changes: Vec::new(),
            bytes: 0,
        }
    }

    /// A journal received from the other side: `changes` in any order, each resource's
    /// versions unique and consecutive. Its synced versions are those just before each
    /// resource's first change; [`super::reconcile()`] checks them against the base.
    pub fn received(
        limits: Limits,
        epoch: u64,
        changes: Vec<Change>,
    ) -> Result<Self, JournalError> {
        if changes.len() > limits.max_entries {
            return Err(JournalError::Full {
                max: limits.max_entries,
            });
        }
        let mut bytes = 0usize;
        let mut versions: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for c in &changes {
            check_shape(&limits, c)?;
            bytes = bytes.saturating_add(c.body.len());
            if bytes > limits.max_bytes {
                return Err(JournalError::TooManyBytes {
                    max: limits.max_bytes,
                });
            }
            versions.entry(&c.resource).or_default().push(c.version);
        }
        let mut synced = BTreeMap::new();
        let mut head = BTreeMap::new();
        for (resource, mut vs) in versions {
            vs.sort_unstable();
            let first = vs[0];
            if first == 0 {
                return Err(out_of_sequence(resource, 1, 0));
            }
            for (i, &v) in vs.iter().enumerate() {
                let expected = first + i as u64;
                if v != expected {
                    return Err(out_of_sequence(resource, expected, v));
                }
            }
            synced.insert(resource.to_string(), first - 1);
            head.insert(resource.to_string(), first + vs.len() as u64 - 1);
        }
        Ok(Journal {
            limits,
            epoch,
            synced,
            head,
            changes,
            bytes,
        })
    }

    /// The version the holder's next change to `resource` must carry.
    pub fn next_version(&self, resource: &str) -> u64 {
        self.head
            .get(resource)
            .or_else(|| self.synced.get(resource))
            .copied()
            .unwrap_or(0)
            .saturating_add(1)
    }

    /// Journals a change made by the holder (its version must be [`Journal::next_version`]).
    pub fn record(&mut self, change: Change) -> Result<(), JournalError> {
        check_shape(&self.limits, &change)?;
        if self.changes.len() >= self.limits.max_entries {
            return Err(JournalError::Full {
                max: self.limits.max_entries,
            });
        }
        let bytes = self.bytes.saturating_add(change.body.len());
        if bytes > self.limits.max_bytes {
            return Err(JournalError::TooManyBytes {
                max: self.limits.max_bytes,
            });
        }
        let expected = self.next_version(&change.resource);
        if change.version != expected {
            return Err(out_of_sequence(&change.resource, expected, change.version));
        }
        self.bytes = bytes;
        self.head.insert(change.resource.clone(), change.version);
        self.changes.push(change);
        Ok(())
    }

    /// After a reconciliation, as `side`: continues from the next base, dropping the changes
    /// it covers (changes made since the outcome was computed stay).
    pub fn settle(&mut self, next: &Base, side: Side) {
        self.epoch = next.epoch;
        for (r, v) in synced_of(next, side) {
            let e = self.synced.entry(r).or_default();
            *e = (*e).max(v);
        }
        let synced = &self.synced;
        self.changes
            .retain(|c| c.version > synced.get(&c.resource).copied().unwrap_or(0));
        self.bytes = self.changes.iter().map(|c| c.body.len()).sum();
        self.head
            .retain(|r, v| *v > synced.get(r).copied().unwrap_or(0));
    }

    /// The changes, in the order they were journaled.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Sync epoch of the base this journal continues from.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The holder's last synced version of `resource`.
    pub fn synced(&self, resource: &str) -> u64 {
        self.synced.get(resource).copied().unwrap_or(0)
    }

    /// Body bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

fn synced_of(base: &Base, side: Side) -> BTreeMap<ResourceId, u64> {
    base.versions
        .iter()
        .filter(|(_, v)| v.of(side) > 0)
        .map(|(r, v)| (r.clone(), v.of(side)))
        .collect()
}

fn check_shape(limits: &Limits, c: &Change) -> Result<(), JournalError> {
    if c.resource.is_empty() || c.resource.len() > MAX_ID {
        return Err(JournalError::BadId);
    }
    if c.body.len() > limits.max_body {
        return Err(JournalError::BodyTooLarge {
            len: c.body.len(),
            max: limits.max_body,
        });
    }
    if c.kind == Kind::Delete && !c.body.is_empty() {
        return Err(JournalError::DeleteWithBody);
    }
    Ok(())
}

fn out_of_sequence(resource: &str, expected: u64, found: u64) -> JournalError {
    JournalError::OutOfSequence {
        resource: resource.to_string(),
        expected,
        found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delegation::Versions;

    fn change(r: &str, version: u64, kind: Kind, body: &[u8]) -> Change {
        Change {
            resource: r.into(),
            version,
            author: Side::Nano,
            kind,
            body: body.to_vec(),
            at: Timestamp::from_millis(1_000 * version),
        }
    }

    #[test]
    fn versions_count_per_resource_from_the_base() {
        let mut base = Base::default();
        base.versions
            .insert("a".into(), Versions { master: 7, nano: 3 });
        let mut j = Journal::new(Limits::default(), &base, Side::Nano);
        assert_eq!(j.next_version("a"), 4);
        assert_eq!(j.next_version("b"), 1);
        j.record(change("a", 4, Kind::Update, b"x")).unwrap();
        j.record(change("b", 1, Kind::Create, b"y")).unwrap();
        assert_eq!(j.next_version("a"), 5);
        assert_eq!(
            j.record(change("a", 4, Kind::Update, b"z")),
            Err(JournalError::OutOfSequence {
                resource: "a".into(),
                expected: 5,
                found: 4
            }),
            "a replayed version"
        );
        assert!(
            j.record(change("b", 3, Kind::Update, b"z")).is_err(),
            "a gap"
        );
        assert_eq!(j.len(), 2);
        assert_eq!(j.bytes(), 2);
    }

    #[test]
    fn bounds_are_typed_errors() {
        let limits = Limits {
            max_entries: 2,
            max_body: 4,
            max_bytes: 6,
        };
        let mut j = Journal::new(limits, &Base::default(), Side::Nano);
        assert_eq!(
            j.record(change("a", 1, Kind::Create, b"12345")),
            Err(JournalError::BodyTooLarge { len: 5, max: 4 })
        );
        j.record(change("a", 1, Kind::Create, b"1234")).unwrap();
        assert_eq!(
            j.record(change("a", 2, Kind::Update, b"123")),
            Err(JournalError::TooManyBytes { max: 6 })
        );
        j.record(change("a", 2, Kind::Update, b"12")).unwrap();
        assert_eq!(
            j.record(change("a", 3, Kind::Delete, b"")),
            Err(JournalError::Full { max: 2 })
        );
        assert_eq!(
            j.record(change("", 1, Kind::Create, b"")),
            Err(JournalError::BadId)
        );
        assert_eq!(
            j.record(change(&"x".repeat(MAX_ID + 1), 1, Kind::Create, b"")),
            Err(JournalError::BadId)
        );
        assert_eq!(
            Journal::new(Limits::default(), &Base::default(), Side::Nano).record(change(
                "a",
                1,
                Kind::Delete,
                b"x"
            )),
            Err(JournalError::DeleteWithBody)
        );
    }

    #[test]
    fn a_received_journal_may_come_in_any_order_but_without_holes_or_repeats() {
        let cs = vec![
            change("b", 5, Kind::Update, b"2"),
            change("a", 1, Kind::Create, b"1"),
            change("b", 4, Kind::Update, b"1"),
        ];
        let j = Journal::received(Limits::default(), 3, cs.clone()).unwrap();
        assert_eq!(j.synced("b"), 3);
        assert_eq!(j.synced("a"), 0);
        assert_eq!(j.next_version("b"), 6);
        assert_eq!(j.epoch(), 3);
        let mut hole = cs.clone();
        hole.push(change("b", 7, Kind::Update, b"3"));
        assert!(matches!(
            Journal::received(Limits::default(), 3, hole),
            Err(JournalError::OutOfSequence {
                expected: 6,
                found: 7,
                ..
            })
        ));
        let mut repeat = cs.clone();
        repeat.push(change("b", 5, Kind::Delete, b""));
        assert!(Journal::received(Limits::default(), 3, repeat).is_err());
        let zero = vec![change("a", 0, Kind::Create, b"")];
        assert!(Journal::received(Limits::default(), 3, zero).is_err());
        let small = Limits {
            max_entries: 2,
            ..Limits::default()
        };
        assert_eq!(
            Journal::received(small, 3, cs),
            Err(JournalError::Full { max: 2 })
        );
    }

    #[test]
    fn settling_drops_what_the_next_base_covers_and_keeps_the_rest() {
        let mut j = Journal::new(Limits::default(), &Base::default(), Side::Master);
        for v in 1..=3 {
            j.record(change("a", v, Kind::Update, b"ab")).unwrap();
        }
        let mut next = Base {
            epoch: 1,
            ..Base::default()
        };
        next.versions
            .insert("a".into(), Versions { master: 2, nano: 9 });
        j.settle(&next, Side::Master);
        assert_eq!(j.epoch(), 1);
        assert_eq!(j.len(), 1, "change 3 was made after the outcome");
        assert_eq!(j.changes()[0].version, 3);
        assert_eq!(j.bytes(), 2);
        assert_eq!(j.synced("a"), 2);
        assert_eq!(j.next_version("a"), 4);
    }
}
