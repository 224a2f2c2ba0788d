//! The catalogue: our own resources and our partners' resources, in redb.
//!
//! Tables: `resources.own` (id → signed mutation), `resources.partners` ((owner, id) → signed
//! mutation), `resources.versions` ((owner, id) → last applied version) and
//! `resources.tombstones` ((owner, id) → the signed delete). Live values are the signed
//! mutation bytes as received, so they can be forwarded verbatim and re-verified by anyone.
//!
//! [`Catalogue::apply`] is what every mutation goes through, ours and our partners':
//! * the signature must be the owner's (the owner is a `did:key`, see [`super::did`]) and the
//!   carried resource must pass its bounds;
//! * a mutation issued more than [`MAX_CLOCK_SKEW_MS`] in our future is refused for now;
//! * the version must be newer than the last applied one: an older or redelivered mutation is
//!   a [`Outcome::Duplicate`] (acknowledged, so the sender's outbox stops, but not applied
//!   again); the same version with *other* content is an equivocation;
//! * a delete is terminal: after it, nothing about the resource is applied again (a later
//!   create or update is refused, an older one is a duplicate);
//! * a create is refused once the resource exists (an update is never followed by a create),
//!   an update of a resource we do not know is refused *for now* (its create may still be on
//!   its way) — unless it stands for the creation ([`Catalogue::apply_creating`]: the sender's
//!   outbox replaced the create we never got by it), a delete of a resource we never saw is
//!   applied (it leaves a tombstone, so the create arriving late is refused).
//!
//! Everything is decided and written in one redb write transaction.

use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use super::db::{db, StoreError};
use super::did::Did;
use super::ids::ResourceRef;
use super::mutation::{DecodeError, Op, SignedMutation};
use super::resource::{Kind, Resource};
use crate::offence::Offence;
use crate::time::Timestamp;

const OWN: TableDefinition<&str, &[u8]> = TableDefinition::new("resources.own");
const PARTNERS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("resources.partners");
const VERSIONS: TableDefinition<(&str, &str), u64> = TableDefinition::new("resources.versions");
const TOMBSTONES: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("resources.tombstones");

/// Tolerated clock skew of a mutation's `issued_at` (as for peer records).
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;

/// What [`Catalogue::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The mutation is now the resource's state.
    Applied,
    /// Already applied, or older than what is applied: acknowledged, nothing changed.
    Duplicate,
    /// Not applied (see [`Refusal::is_final`] for whether it may be retried).
    Refused(Refusal),
}

/// Why a mutation was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not signed by the resource owner")]
    BadSignature,
    #[error("{0}")]
    Invalid(#[from] DecodeError),
    #[error("issued more than the tolerated skew in the future")]
    FromTheFuture,
    #[error("the resource was deleted (deletion is terminal)")]
    Deleted,
    #[error("an update of a resource not known here")]
    Unknown,
    #[error("a create of a resource that already exists")]
    Exists,
    #[error("version {version} was already applied with other content")]
    Equivocation { version: u64 },
}

impl Refusal {
    /// False when the same mutation may be applied later (its create not yet received, a
    /// clock ahead of ours): the sender's outbox should keep it.
    pub fn is_final(&self) -> bool {
        !matches!(self, Refusal::Unknown | Refusal::FromTheFuture)
    }

    /// What the peer that *sent* the mutation did wrong, if anything. A relayed mutation is
    /// still the relay's responsibility for forgeries and malformed content; races and
    /// lifecycle refusals are not offences.
    pub fn offence(&self) -> Option<Offence> {
        match self {
            Refusal::BadSignature => Some(Offence::Forged),
            Refusal::Invalid(_) => Some(Offence::Malformed),
            Refusal::FromTheFuture
            | Refusal::Deleted
            | Refusal::Unknown
            | Refusal::Exists
            | Refusal::Equivocation { .. } => None,
        }
    }
}

/// A search over the catalogue; `None` fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<Kind>,
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    pub owner: Option<Did>,
    /// Available (inside an availability window) at this time.
    pub available_at: Option<Timestamp>,
}

impl Filter {
    pub fn matches(&self, r: &Resource) -> bool {
        self.kind.is_none_or(|k| r.kind == k)
            && self.owner.as_ref().is_none_or(|o| r.owner == *o)
            && self
                .name
                .as_ref()
                .is_none_or(|n| r.name.to_lowercase().contains(&n.to_lowercase()))
            && self.available_at.is_none_or(|t| r.available_at(t))
    }
}

/// The catalogue (see the module docs).
#[derive(Clone)]
pub struct Catalogue {
    db: Arc<Database>,
    me: Did,
}

fn corrupt(table: &'static str) -> impl Fn(DecodeError) -> StoreError {
    move |e| StoreError::Corrupt {
        table,
        reason: e.to_string(),
    }
}

impl Catalogue {
    /// The catalogue of the node whose DID is `me`, in `db` (tables created if missing).
    pub fn new(db: Arc<Database>, me: Did) -> Result<Catalogue, StoreError> {
        let tx = db.begin_write().map_err(super::db::db)?;
        tx.open_table(OWN).map_err(super::db::db)?;
        tx.open_table(PARTNERS).map_err(super::db::db)?;
        tx.open_table(VERSIONS).map_err(super::db::db)?;
        tx.open_table(TOMBSTONES).map_err(super::db::db)?;
        tx.commit().map_err(super::db::db)?;
        Ok(Catalogue { db, me })
    }

    /// Our DID (our resources go to the `own` table).
    pub fn me(&self) -> &Did {
        &self.me
    }

    /// Applies a mutation received (or made) at `now` (see the module docs).
    pub fn apply(&self, m: &SignedMutation, now: Timestamp) -> Result<Outcome, StoreError> {
        self.apply_as(m, now, false, &|_| Ok(()))
    }

    /// [`Catalogue::apply`], writing `also` (the caller's own tables of this file) in the
    /// same transaction when the mutation is applied: both are committed, or neither.
    pub fn apply_with(
        &self,
        m: &SignedMutation,
        now: Timestamp,
        also: &dyn Fn(&redb::WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<Outcome, StoreError> {
        self.apply_as(m, now, false, also)
    }

    /// [`Catalogue::apply`] of a mutation that stands for the resource's creation: an update
    /// of a resource not known here is applied as its first version instead of refused
    /// ([`Refusal::Unknown`]). The sender's outbox does this when a create the receiver never
    /// got is still queued as an update is made (`dtn::lifecycle`: CREATE then UPDATE →
    /// CREATE with the latest body): the create is gone from the queue, so the update is all
    /// the receiver will ever get. An update carries the whole resource, signed by its owner;
    /// a tombstone still refuses it, and a late copy of the original create is a duplicate.
    pub fn apply_creating(
        &self,
        m: &SignedMutation,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        self.apply_as(m, now, true, &|_| Ok(()))
    }

    fn apply_as(
        &self,
        m: &SignedMutation,
        now: Timestamp,
        creating: bool,
        also: &dyn Fn(&redb::WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<Outcome, StoreError> {
        let refuse = |r| Ok(Outcome::Refused(r));
        if m.verify().is_err() {
            return refuse(Refusal::BadSignature);
        }
        let mu = m.mutation();
        if let Err(e) = mu.check() {
            return refuse(Refusal::Invalid(e));
        }
        if mu.issued_at_ms > now.as_millis().saturating_add(MAX_CLOCK_SKEW_MS) {
            return refuse(Refusal::FromTheFuture);
        }
        let key = (mu.owner.as_str(), mu.id.as_str());
        let own = mu.owner == self.me;
        let tx = self.db.begin_write().map_err(db)?;
        let outcome = {
            let mut versions = tx.open_table(VERSIONS).map_err(db)?;
            let mut tombstones = tx.open_table(TOMBSTONES).map_err(db)?;
            let mut own_t = tx.open_table(OWN).map_err(db)?;
            let mut partners = tx.open_table(PARTNERS).map_err(db)?;
            let tomb = match tombstones.get(key).map_err(db)? {
                Some(v) => Some(SignedMutation::decode(v.value()).map_err(corrupt("tombstones"))?),
                None => None,
            };
            let last = versions.get(key).map_err(db)?.map(|v| v.value());
            let stored = if own {
                own_t.get(key.1).map_err(db)?.map(|v| v.value().to_vec())
            } else {
                partners.get(key).map_err(db)?.map(|v| v.value().to_vec())
            };
            let same_as = |other: &SignedMutation| other.body_bytes() == m.body_bytes();
            if let Some(t) = tomb {
                let tv = t.mutation().version;
                if mu.version < tv || (mu.version == tv && same_as(&t)) {
                    Outcome::Duplicate
                } else if mu.version == tv {
                    Outcome::Refused(Refusal::Equivocation { version: tv })
                } else {
                    Outcome::Refused(Refusal::Deleted)
                }
            } else if let Some(last) = last.filter(|l| mu.version <= *l) {
                let stored = match stored {
                    Some(b) => Some(SignedMutation::decode(&b).map_err(corrupt("live"))?),
                    None => None,
                };
                if mu.version == last && stored.as_ref().is_some_and(|s| !same_as(s)) {
                    Outcome::Refused(Refusal::Equivocation { version: last })
                } else {
                    Outcome::Duplicate
                }
            } else {
                match (&mu.op, last) {
                    (Op::Create(_), Some(_)) => Outcome::Refused(Refusal::Exists),
                    (Op::Update(_), None) if !creating => Outcome::Refused(Refusal::Unknown),
                    _ => {
                        let bytes = m.encode();
                        versions.insert(key, mu.version).map_err(db)?;
                        if let Op::Delete = mu.op {
                            if own {
                                own_t.remove(key.1).map_err(db)?;
                            } else {
                                partners.remove(key).map_err(db)?;
                            }
                            tombstones.insert(key, bytes.as_slice()).map_err(db)?;
                        } else if own {
                            own_t.insert(key.1, bytes.as_slice()).map_err(db)?;
                        } else {
                            partners.insert(key, bytes.as_slice()).map_err(db)?;
                        }
                        Outcome::Applied
                    }
                }
            }
        };
        if outcome == Outcome::Applied {
            also(&tx)?;
            tx.commit().map_err(db)?;
        } else {
            tx.abort().map_err(db)?;
        }
        Ok(outcome)
    }

    /// The live signed mutation of a resource (to forward it verbatim).
    pub fn signed(&self, r: &ResourceRef) -> Result<Option<SignedMutation>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let bytes = if r.owner == self.me {
            let t = tx.open_table(OWN).map_err(db)?;
            let v = t.get(r.id.as_str()).map_err(db)?;
            v.map(|v| v.value().to_vec())
        } else {
            let t = tx.open_table(PARTNERS).map_err(db)?;
            let v = t.get((r.owner.as_str(), r.id.as_str())).map_err(db)?;
            v.map(|v| v.value().to_vec())
        };
        bytes
            .map(|b| SignedMutation::decode(&b).map_err(corrupt("live")))
            .transpose()
    }

    /// The live resource, if any.
    pub fn get(&self, r: &ResourceRef) -> Result<Option<Resource>, StoreError> {
        Ok(self
            .signed(r)?
            .and_then(|m| m.mutation().op.resource().cloned()))
    }

    /// The last applied version (a deleted resource keeps its delete's version).
    pub fn version(&self, r: &ResourceRef) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(VERSIONS).map_err(db)?;
        let v = t.get((r.owner.as_str(), r.id.as_str())).map_err(db)?;
        Ok(v.map(|v| v.value()))
    }

    /// Whether the resource was deleted.
    pub fn is_deleted(&self, r: &ResourceRef) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(TOMBSTONES).map_err(db)?;
        let v = t.get((r.owner.as_str(), r.id.as_str())).map_err(db)?;
        Ok(v.is_some())
    }

    /// Live resources (ours, then our partners'), in (owner, id) order within each table,
    /// that match `filter`.
    pub fn search(&self, filter: &Filter) -> Result<Vec<Resource>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let mut out = Vec::new();
        let mut keep = |bytes: &[u8]| -> Result<(), StoreError> {
            let m = SignedMutation::decode(bytes).map_err(corrupt("live"))?;
            if let Some(r) = m.mutation().op.resource().filter(|r| filter.matches(r)) {
                out.push(r.clone());
            }
            Ok(())
        };
        if filter.owner.as_ref().is_none_or(|o| *o == self.me) {
            let t = tx.open_table(OWN).map_err(db)?;
            for e in t.iter().map_err(db)? {
                let (_, v) = e.map_err(db)?;
                keep(v.value())?;
            }
        }
        let t = tx.open_table(PARTNERS).map_err(db)?;
        let range = match &filter.owner {
            Some(o) if *o == self.me => return Ok(out),
            Some(o) => t
                .range((o.as_str(), "")..=(o.as_str(), "\u{10ffff}"))
                .map_err(db)?,
            None => t.iter().map_err(db)?,
        };
        for e in range {
            let (_, v) = e.map_err(db)?;
            keep(v.value())?;
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::NodeIdentity;
    use crate::resources::db;
    use crate::resources::ids::ResourceId;
    use crate::resources::mutation::Mutation;
    use crate::resources::resource::tests::sample;

    const NOW: Timestamp = Timestamp::from_millis(1_000_000);

    pub(crate) fn mutation(id: &NodeIdentity, rid: &str, version: u64, op: &str) -> SignedMutation {
        let owner = Did::of(id);
        let mut r = sample(&owner, rid);
        r.name = format!("{rid} v{version}");
        let op = match op {
            "create" => Op::Create(r),
            "update" => Op::Update(r),
            _ => Op::Delete,
        };
        Mutation {
            owner,
            id: ResourceId::parse(rid).unwrap(),
            version,
            issued_at_ms: 1_000 + version,
            op,
        }
        .sign(id)
    }

    fn rref(id: &NodeIdentity, rid: &str) -> ResourceRef {
        ResourceRef {
            owner: Did::of(id),
            id: ResourceId::parse(rid).unwrap(),
        }
    }

    fn catalogue(me: &NodeIdentity) -> ((), Catalogue) {
        ((), Catalogue::new(db::temp(), Did::of(me)).unwrap())
    }

    #[test]
    fn the_lifecycle_create_update_delete_with_duplicates_acknowledged() {
        let (me, owner) = (NodeIdentity::generate(), NodeIdentity::generate());
        let (_d, c) = catalogue(&me);
        let r = rref(&owner, "gpu");
        let create = mutation(&owner, "gpu", 1, "create");
        assert_eq!(c.apply(&create, NOW).unwrap(), Outcome::Applied);
        assert_eq!(c.apply(&create, NOW).unwrap(), Outcome::Duplicate);
        assert_eq!(c.get(&r).unwrap().unwrap().name, "gpu v1");
        let u3 = mutation(&owner, "gpu", 3, "update");
        assert_eq!(c.apply(&u3, NOW).unwrap(), Outcome::Applied);
        // A replayed older version is acknowledged, not applied.
        assert_eq!(
            c.apply(&mutation(&owner, "gpu", 2, "update"), NOW).unwrap(),
            Outcome::Duplicate
        );
        assert_eq!(c.get(&r).unwrap().unwrap().name, "gpu v3");
        assert_eq!(c.version(&r).unwrap(), Some(3));
        // A create of an existing resource is refused (no re-create over an update).
        assert_eq!(
            c.apply(&mutation(&owner, "gpu", 4, "create"), NOW).unwrap(),
            Outcome::Refused(Refusal::Exists)
        );
        assert_eq!(
            c.apply(&mutation(&owner, "gpu", 5, "delete"), NOW).unwrap(),
            Outcome::Applied
        );
        assert_eq!(c.get(&r).unwrap(), None);
        assert!(c.is_deleted(&r).unwrap());
        // No resurrection, whatever the version.
        for (v, op) in [(6, "create"), (7, "update")] {
            assert_eq!(
                c.apply(&mutation(&owner, "gpu", v, op), NOW).unwrap(),
                Outcome::Refused(Refusal::Deleted)
            );
        }
        assert_eq!(c.apply(&create, NOW).unwrap(), Outcome::Duplicate);
        assert_eq!(
            c.apply(&mutation(&owner, "gpu", 5, "delete"), NOW).unwrap(),
            Outcome::Duplicate
        );
        assert_eq!(c.version(&r).unwrap(), Some(5));
    }

    #[test]
    fn updates_of_unknown_resources_wait_and_early_deletes_are_terminal() {
        let (me, owner) = (NodeIdentity::generate(), NodeIdentity::generate());
        let (_d, c) = catalogue(&me);
        let refused = c.apply(&mutation(&owner, "a", 2, "update"), NOW).unwrap();
        assert_eq!(refused, Outcome::Refused(Refusal::Unknown));
        assert!(!Refusal::Unknown.is_final());
        // The same update standing for the creation (the sender's outbox collapsed the
        // create into it): applied as the first version; the late create is a duplicate, a
        // later update applies, a tombstone still wins.
        let r = ResourceRef {
            owner: Did::of(&owner),
            id: ResourceId::parse("a").unwrap(),
        };
        let creating = c.apply_creating(&mutation(&owner, "a", 2, "update"), NOW);
        assert_eq!(creating.unwrap(), Outcome::Applied);
        assert_eq!(c.version(&r).unwrap(), Some(2));
        assert_eq!(
            c.apply(&mutation(&owner, "a", 1, "create"), NOW).unwrap(),
            Outcome::Duplicate
        );
        assert_eq!(
            c.apply_creating(&mutation(&owner, "a", 2, "update"), NOW)
                .unwrap(),
            Outcome::Duplicate
        );
        assert_eq!(
            c.apply(&mutation(&owner, "a", 3, "update"), NOW).unwrap(),
            Outcome::Applied
        );
        assert_eq!(
            c.apply(&mutation(&owner, "a", 4, "delete"), NOW).unwrap(),
            Outcome::Applied
        );
        assert_eq!(
            c.apply_creating(&mutation(&owner, "a", 5, "update"), NOW)
                .unwrap(),
            Outcome::Refused(Refusal::Deleted)
        );
        // A delete overtaking its create leaves a tombstone; the create is then a duplicate.
        assert_eq!(
            c.apply(&mutation(&owner, "b", 2, "delete"), NOW).unwrap(),
            Outcome::Applied
        );
        assert_eq!(
            c.apply(&mutation(&owner, "b", 1, "create"), NOW).unwrap(),
            Outcome::Duplicate
        );
        assert_eq!(c.get(&rref(&owner, "b")).unwrap(), None);
    }

    #[test]
    fn forged_invalid_future_and_equivocating_mutations_are_refused() {
        let (me, owner, thief) = (
            NodeIdentity::generate(),
            NodeIdentity::generate(),
            NodeIdentity::generate(),
        );
        let (_d, c) = catalogue(&me);
        // Signed by another key than the owner's.
        let good = mutation(&owner, "gpu", 1, "create");
        let forged = good.mutation().sign(&thief);
        let out = c.apply(&forged, NOW).unwrap();
        assert_eq!(out, Outcome::Refused(Refusal::BadSignature));
        assert_eq!(Refusal::BadSignature.offence(), Some(Offence::Forged));
        assert_eq!(
            c.version(&rref(&owner, "gpu")).unwrap(),
            None,
            "nothing applied"
        );
        // An invalid resource that was signed anyway (never decodes from the wire either).
        let mut m = good.mutation().clone();
        if let Op::Create(r) = &mut m.op {
            r.capacity = 0;
        }
        assert!(matches!(
            c.apply(&m.sign(&owner), NOW).unwrap(),
            Outcome::Refused(Refusal::Invalid(_))
        ));
        let mut m = good.mutation().clone();
        m.issued_at_ms = NOW.as_millis() + MAX_CLOCK_SKEW_MS + 1;
        assert_eq!(
            c.apply(&m.sign(&owner), NOW).unwrap(),
            Outcome::Refused(Refusal::FromTheFuture)
        );
        // Same version, other content.
        assert_eq!(c.apply(&good, NOW).unwrap(), Outcome::Applied);
        let mut m = good.mutation().clone();
        if let Op::Create(r) = &mut m.op {
            r.name = "other".into();
        }
        assert_eq!(
            c.apply(&m.sign(&owner), NOW).unwrap(),
            Outcome::Refused(Refusal::Equivocation { version: 1 })
        );
        assert!(Refusal::Equivocation { version: 1 }.is_final());
    }

    #[test]
    fn search_filters_and_the_catalogue_survives_reopen() {
        let (me, owner) = (NodeIdentity::generate(), NodeIdentity::generate());
        let dir = db::tempdir::TempDir::new();
        let path = dir.path().join("cat.redb");
        {
            let c = Catalogue::new(db::open(&path).unwrap(), Did::of(&me)).unwrap();
            c.apply(&mutation(&me, "mine", 1, "create"), NOW).unwrap();
            c.apply(&mutation(&owner, "gpu", 1, "create"), NOW).unwrap();
            let mut m = mutation(&owner, "disk", 1, "create").mutation().clone();
            if let Op::Create(r) = &mut m.op {
                r.kind = Kind::Storage;
                r.name = "Big DISK".into();
                r.availability.clear();
            }
            c.apply(&m.sign(&owner), NOW).unwrap();
            c.apply(&mutation(&owner, "gone", 1, "create"), NOW)
                .unwrap();
            c.apply(&mutation(&owner, "gone", 2, "delete"), NOW)
                .unwrap();
        }
        let c = Catalogue::new(db::open(&path).unwrap(), Did::of(&me)).unwrap();
        let ids = |f: Filter| -> Vec<String> {
            c.search(&f)
                .unwrap()
                .into_iter()
                .map(|r| r.id.to_string())
                .collect()
        };
        assert_eq!(ids(Filter::default()).len(), 3);
        assert_eq!(
            ids(Filter {
                kind: Some(Kind::Storage),
                ..Filter::default()
            }),
            vec!["disk"]
        );
        assert_eq!(
            ids(Filter {
                name: Some("disk".into()),
                ..Filter::default()
            }),
            vec!["disk"]
        );
        assert_eq!(
            ids(Filter {
                owner: Some(Did::of(&me)),
                ..Filter::default()
            }),
            vec!["mine"]
        );
        let mut theirs = ids(Filter {
            owner: Some(Did::of(&owner)),
            ..Filter::default()
        });
        theirs.sort();
        assert_eq!(theirs, vec!["disk", "gpu"]);
        let at = |ms| Filter {
            available_at: Some(Timestamp::from_millis(ms)),
            ..Filter::default()
        };
        assert_eq!(ids(at(1_500)).len(), 2, "the disk has no availability");
        assert!(ids(at(15_000)).is_empty());
        assert!(c.is_deleted(&rref(&owner, "gone")).unwrap());
        assert_eq!(
            c.apply(&mutation(&owner, "gone", 3, "create"), NOW)
                .unwrap(),
            Outcome::Refused(Refusal::Deleted)
        );
        // The stored value is the signed mutation, forwardable and verifiable as is.
        let s = c.signed(&rref(&owner, "gpu")).unwrap().unwrap();
        assert_eq!(s.verify(), Ok(()));
    }
}
