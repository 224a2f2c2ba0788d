//! Reconciliation after a split brain: the master wins, and nothing of the nano's is lost
//! silently.
//!
//! [`reconcile`] takes the base both sides agreed on and each side's journal since, and
//! decides resource by resource:
//!
//! | master since the base | nano since the base | result |
//! |---|---|---|
//! | nothing | nothing | the base's value |
//! | changes | nothing | the master's latest value |
//! | nothing | changes | the nano's changes, in version order, as long as each fits the resource's life (create of an unknown id; update or delete of a present one); the first that does not, and every later one, rejected |
//! | changes | changes | the master's latest value; every nano change rejected: [`Reason::DeletedByMaster`] when the master deleted it (a master delete beats a nano update), else [`Reason::ChangedByMaster`] (a master update beats a nano delete) |
//!
//! A change in the nano's journal that names the master as its author is rejected as
//! [`Reason::ForgedAuthor`] whatever else holds: attribution is by the journal, and the claim is
//! reported. The result is a function of the sets of changes only (grouped by resource, ordered
//! by version), not of the order in which the journals list them.

use std::collections::BTreeMap;

use super::base::{Base, ResourceId, Side, State, Value, Versions};
use super::journal::{Change, Journal, Kind};

/// Why a nano change does not stand (reported to the nano's operator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The master created or updated the resource while the nano was away; its value stands.
    ChangedByMaster,
    /// The master deleted the resource while the nano was away.
    DeletedByMaster,
    /// The change came from the nano's journal but names the master as its author.
    ForgedAuthor,
    /// The change does not fit the resource's life (a create of a known id, an update or a
    /// delete of an absent or deleted one: a delete is terminal).
    Lifecycle,
    /// An earlier change of the nano to this resource (the given version) was rejected, and
    /// this one was made on top of it.
    AfterRejected { version: u64 },
}

/// A nano change that does not stand, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub resource: ResourceId,
    /// As the nano's journal held it.
    pub change: Change,
    pub reason: Reason,
}

/// What a side does to one resource to reach the merged state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create it with this body (it was absent, or deleted on this side only).
    Create(Vec<u8>),
    /// Replace its body.
    Update(Vec<u8>),
    /// Delete it (leaving a tombstone).
    Delete,
    /// Forget it without a tombstone: this side created it, and the creation was rejected.
    Discard,
}

/// One step of convergence for one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub resource: ResourceId,
    pub action: Action,
}

impl Step {
    /// Applies the step to a side's state.
    pub fn apply(&self, state: &mut State) {
        let r = self.resource.clone();
        match &self.action {
            Action::Create(b) | Action::Update(b) => {
                state.insert(r, Value::Present(b.clone()));
            }
            Action::Delete => {
                state.insert(r, Value::Deleted);
            }
            Action::Discard => {
                state.remove(&r);
            }
        }
    }
}

/// The result of a reconciliation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The base both sides adopt once converged: the merged state, the versions it reflects
    /// (rejected nano changes included, so they are never proposed again) and the next epoch
    /// (the same epoch when neither side changed anything).
    pub next: Base,
    /// Nano changes that stand (attributed to the nano), by resource then version.
    pub accepted: Vec<Change>,
    /// Nano changes that do not, by resource then version.
    pub rejected: Vec<Rejected>,
    /// What the master applies to reach the merged state, by resource.
    pub to_master: Vec<Step>,
    /// What the nano applies to reach the merged state (the master's changes, and the undoing
    /// of its rejected ones), by resource.
    pub to_nano: Vec<Step>,
}

impl Outcome {
    /// The state both sides must hold.
    pub fn merged(&self) -> &State {
        &self.next.state
    }

    /// Whether neither side has anything to do.
    pub fn is_quiet(&self) -> bool {
        self.accepted.is_empty()
            && self.rejected.is_empty()
            && self.to_master.is_empty()
            && self.to_nano.is_empty()
    }
}

/// Why two journals cannot be reconciled against a base: they do not continue from it (a
/// side missed a sync). The caller falls back to a full resynchronisation from the master.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("the {side:?} journal continues from epoch {journal}, the base is epoch {base}")]
    Epoch { side: Side, journal: u64, base: u64 },
    #[error(
        "the {side:?} journal skips changes to {resource:?}: expected {expected}, found {found}"
    )]
    Gap {
        side: Side,
        resource: ResourceId,
        expected: u64,
        found: u64,
    },
}

/// Reconciles the master's journal and the nano's journal since `base` (see the module docs).
/// The caller says which journal is whose by the argument position: `master` is the journal
/// the master holds, `nano` the one received from (or held by) the nano.
pub fn reconcile(master: &Journal, nano: &Journal, base: &Base) -> Result<Outcome, Mismatch> {
    let m = since(master, base, Side::Master)?;
    let n = since(nano, base, Side::Nano)?;
    let mut next = base.clone();
    let mut out = Outcome {
        next: Base::default(),
        accepted: Vec::new(),
        rejected: Vec::new(),
        to_master: Vec::new(),
        to_nano: Vec::new(),
    };
    let mut resources: Vec<&str> = m.keys().chain(n.keys()).copied().collect();
    resources.sort_unstable();
    resources.dedup();
    let none = Vec::new();
    for r in resources {
        let ms = m.get(r).unwrap_or(&none);
        let ns = n.get(r).unwrap_or(&none);
        let base_value = base.state.get(r);
        let mut versions = base.versions.get(r).copied().unwrap_or_default();
        if let Some(c) = ms.last() {
            versions.master = c.version;
        }
        if let Some(c) = ns.last() {
            versions.nano = c.version;
        }
        let master_now = ms.last().map(|c| c.value()).or_else(|| base_value.cloned());
        let nano_now = ns.last().map(|c| c.value()).or_else(|| base_value.cloned());
        let merged = if ms.is_empty() {
            nano_only(ns, base_value, &mut out)
        } else {
            let reason = match master_now {
                Some(Value::Deleted) => Reason::DeletedByMaster,
                _ => Reason::ChangedByMaster,
            };
            for c in ns {
                let reason = if c.author == Side::Master {
                    Reason::ForgedAuthor
                } else {
                    reason
                };
                reject(&mut out, c, reason);
            }
            master_now.clone()
        };
        if let Some(a) = step(master_now.as_ref(), merged.as_ref()) {
            out.to_master.push(Step {
                resource: r.to_string(),
                action: a,
            });
        }
        if let Some(a) = step(nano_now.as_ref(), merged.as_ref()) {
            out.to_nano.push(Step {
                resource: r.to_string(),
                action: a,
            });
        }
        match merged {
            Some(v) => next.state.insert(r.to_string(), v),
            None => next.state.remove(r),
        };
        if versions != Versions::default() {
            next.versions.insert(r.to_string(), versions);
        }
    }
    if !(m.is_empty() && n.is_empty()) {
        next.epoch = base.epoch + 1;
    }
    out.next = next;
    Ok(out)
}

/// A resource only the nano changed: its changes stand in version order while each fits the
/// resource's life; the first that does not (or is forged), and all after it, are rejected.
/// Returns the merged value.
fn nano_only(ns: &[&Change], base_value: Option<&Value>, out: &mut Outcome) -> Option<Value> {
    let mut now = base_value.cloned();
    let mut first_rejected = None;
    for c in ns {
        let reason = if let Some(version) = first_rejected {
            Some(Reason::AfterRejected { version })
        } else if c.author == Side::Master {
            Some(Reason::ForgedAuthor)
        } else if !fits(now.as_ref(), c.kind) {
            Some(Reason::Lifecycle)
        } else {
            None
        };
        match reason {
            Some(reason) => {
                first_rejected.get_or_insert(c.version);
                reject(out, c, reason);
            }
            None => {
                now = Some(c.value());
                out.accepted.push(Change {
                    author: Side::Nano,
                    ..(*c).clone()
                });
            }
        }
    }
    now
}

fn reject(out: &mut Outcome, c: &Change, reason: Reason) {
    out.rejected.push(Rejected {
        resource: c.resource.clone(),
        change: c.clone(),
        reason,
    });
}

/// Whether a nano change of `kind` fits a resource holding `now`.
fn fits(now: Option<&Value>, kind: Kind) -> bool {
    match kind {
        Kind::Create => now.is_none(),
        Kind::Update | Kind::Delete => matches!(now, Some(Value::Present(_))),
    }
}

/// What takes a side holding `now` to `merged`.
fn step(now: Option<&Value>, merged: Option<&Value>) -> Option<Action> {
    if now == merged {
        return None;
    }
    Some(match (now, merged) {
        (Some(Value::Present(_)), Some(Value::Present(b))) => Action::Update(b.clone()),
        (_, Some(Value::Present(b))) => Action::Create(b.clone()),
        (_, Some(Value::Deleted)) => Action::Delete,
        (_, None) => Action::Discard,
    })
}

/// A side's changes since the base, by resource, in version order, checked to continue
/// exactly from the base.
fn since<'a>(
    j: &'a Journal,
    base: &Base,
    side: Side,
) -> Result<BTreeMap<&'a str, Vec<&'a Change>>, Mismatch> {
    if j.epoch() != base.epoch {
        return Err(Mismatch::Epoch {
            side,
            journal: j.epoch(),
            base: base.epoch,
        });
    }
    let mut by: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for c in j.changes() {
        if c.version > base.version(&c.resource, side) {
            by.entry(&c.resource).or_default().push(c);
        }
    }
    for (r, cs) in by.iter_mut() {
        cs.sort_by_key(|c| c.version);
        let from = base.version(r, side);
        for (i, c) in cs.iter().enumerate() {
            let expected = from + 1 + i as u64;
            if c.version != expected {
                return Err(Mismatch::Gap {
                    side,
                    resource: r.to_string(),
                    expected,
                    found: c.version,
                });
            }
        }
    }
    Ok(by)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delegation::journal::Limits;
    use crate::time::Timestamp;

    /// A base at epoch 4 holding `a` and `b` (master version 2, nano version 3) and a deleted `z`.
    fn base() -> Base {
        let mut b = Base {
            epoch: 4,
            ..Base::default()
        };
        for (r, v) in [
            ("a", Value::Present(b"a0".to_vec())),
            ("b", Value::Present(b"b0".to_vec())),
            ("z", Value::Deleted),
        ] {
            b.state.insert(r.into(), v);
            b.versions.insert(r.into(), Versions { master: 2, nano: 3 });
        }
        b
    }

    /// `side`'s journal since `base`, each change authored as `author` claims.
    fn journal_as(base: &Base, side: Side, author: Side, cs: &[(&str, Kind, &str)]) -> Journal {
        let mut j = Journal::new(Limits::default(), base, side);
        for (i, (r, kind, body)) in cs.iter().enumerate() {
            let version = j.next_version(r);
            j.record(Change {
                resource: r.to_string(),
                version,
                author,
                kind: *kind,
                body: body.as_bytes().to_vec(),
                at: Timestamp::from_millis(1_000 + i as u64),
            })
            .unwrap();
        }
        j
    }

    fn journal(base: &Base, side: Side, cs: &[(&str, Kind, &str)]) -> Journal {
        journal_as(base, side, side, cs)
    }

    fn present(s: &str) -> Option<&'static Value> {
        Some(Box::leak(Box::new(Value::Present(s.as_bytes().to_vec()))))
    }

    fn reasons(o: &Outcome) -> Vec<(&str, u64, Reason)> {
        o.rejected
            .iter()
            .map(|x| (x.resource.as_str(), x.change.version, x.reason))
            .collect()
    }

    fn step(r: &str, action: Action) -> Step {
        Step {
            resource: r.into(),
            action,
        }
    }

    #[test]
    fn changes_made_on_one_side_only_are_kept() {
        let b = base();
        let m = journal(&b, Side::Master, &[("a", Kind::Update, "a1")]);
        let n = journal(
            &b,
            Side::Nano,
            &[("b", Kind::Update, "b1"), ("b", Kind::Update, "b2")],
        );
        let o = reconcile(&m, &n, &b).unwrap();
        assert!(o.rejected.is_empty());
        assert_eq!(o.merged().get("a"), present("a1"));
        assert_eq!(o.merged().get("b"), present("b2"));
        assert_eq!(o.accepted.len(), 2);
        assert_eq!(o.to_master, vec![step("b", Action::Update(b"b2".to_vec()))]);
        assert_eq!(o.to_nano, vec![step("a", Action::Update(b"a1".to_vec()))]);
        assert_eq!(o.next.epoch, 5);
        assert_eq!(o.next.versions["a"], Versions { master: 3, nano: 3 });
        assert_eq!(o.next.versions["b"], Versions { master: 2, nano: 5 });
    }

    #[test]
    fn a_nano_creation_of_an_id_unknown_to_the_master_is_accepted() {
        let b = base();
        let m = journal(&b, Side::Master, &[]);
        let n = journal(&b, Side::Nano, &[("booking/7", Kind::Create, "slot")]);
        let o = reconcile(&m, &n, &b).unwrap();
        assert!(o.rejected.is_empty());
        assert_eq!(o.merged().get("booking/7"), present("slot"));
        assert_eq!(
            o.to_master,
            vec![step("booking/7", Action::Create(b"slot".to_vec()))]
        );
        assert!(o.to_nano.is_empty());
        assert_eq!(
            o.next.versions["booking/7"],
            Versions { master: 0, nano: 1 }
        );
    }

    #[test]
    fn on_a_resource_changed_on_both_sides_the_master_wins() {
        let b = base();
        let m = journal(&b, Side::Master, &[("a", Kind::Update, "by master")]);
        let n = journal(
            &b,
            Side::Nano,
            &[("a", Kind::Update, "n1"), ("a", Kind::Update, "n2")],
        );
        let o = reconcile(&m, &n, &b).unwrap();
        assert_eq!(o.merged().get("a"), present("by master"));
        assert_eq!(
            reasons(&o),
            vec![
                ("a", 4, Reason::ChangedByMaster),
                ("a", 5, Reason::ChangedByMaster)
            ]
        );
        assert!(o.accepted.is_empty() && o.to_master.is_empty());
        assert_eq!(
            o.to_nano,
            vec![step("a", Action::Update(b"by master".to_vec()))]
        );
        // Rejected versions are part of the next base: never proposed again.
        assert_eq!(o.next.versions["a"], Versions { master: 3, nano: 5 });
    }

    #[test]
    fn both_sides_creating_the_same_id_is_a_conflict_the_master_wins() {
        let b = base();
        let m = journal(&b, Side::Master, &[("new", Kind::Create, "m")]);
        let n = journal(&b, Side::Nano, &[("new", Kind::Create, "n")]);
        let o = reconcile(&m, &n, &b).unwrap();
        assert_eq!(o.merged().get("new"), present("m"));
        assert_eq!(reasons(&o), vec![("new", 1, Reason::ChangedByMaster)]);
        assert_eq!(o.to_nano, vec![step("new", Action::Update(b"m".to_vec()))]);
    }

    #[test]
    fn a_master_delete_beats_a_nano_update() {
        let b = base();
        let m = journal(&b, Side::Master, &[("a", Kind::Delete, "")]);
        let n = journal(&b, Side::Nano, &[("a", Kind::Update, "kept?")]);
        let o = reconcile(&m, &n, &b).unwrap();
        assert_eq!(o.merged().get("a"), Some(&Value::Deleted));
        assert_eq!(reasons(&o), vec![("a", 4, Reason::DeletedByMaster)]);
        assert_eq!(o.to_nano, vec![step("a", Action::Delete)]);
        assert!(o.to_master.is_empty());
    }

    #[test]
    fn a_master_update_beats_a_nano_delete() {
        let b = base();
        let m = journal(&b, Side::Master, &[("a", Kind::Update, "booked")]);
        let n = journal(&b, Side::Nano, &[("a", Kind::Delete, "")]);
        let o = reconcile(&m, &n, &b).unwrap();
        assert_eq!(o.merged().get("a"), present("booked"));
        assert_eq!(reasons(&o), vec![("a", 4, Reason::ChangedByMaster)]);
        // The nano deleted it locally: it takes it back.
        assert_eq!(
            o.to_nano,
            vec![step("a", Action::Create(b"booked".to_vec()))]
        );
    }

    #[test]
    fn nano_changes_that_break_the_lifecycle_are_rejected_with_what_follows() {
        let b = base();
        let m = journal(&b, Side::Master, &[]);
        let n = journal(
            &b,
            Side::Nano,
            &[
                ("z", Kind::Update, "undead"), // deleted in the base: a delete is terminal
                ("z", Kind::Update, "again"),  // made on top of the rejected one
                ("a", Kind::Create, "twice"),  // already exists
                ("ghost", Kind::Delete, ""),   // never existed
                ("b", Kind::Update, "fine"),   // accepted
                ("b", Kind::Delete, ""),       // accepted
                ("b", Kind::Update, "too late"), // after its own delete
            ],
        );
        let o = reconcile(&m, &n, &b).unwrap();
        assert_eq!(
            reasons(&o),
            vec![
                ("a", 4, Reason::Lifecycle),
                ("b", 6, Reason::Lifecycle),
                ("ghost", 1, Reason::Lifecycle),
                ("z", 4, Reason::Lifecycle),
                ("z", 5, Reason::AfterRejected { version: 4 }),
            ]
        );
        assert_eq!(o.accepted.len(), 2);
        assert_eq!(o.merged().get("b"), Some(&Value::Deleted));
        assert_eq!(o.merged().get("z"), Some(&Value::Deleted));
        assert_eq!(o.merged().get("ghost"), None);
        assert_eq!(o.to_master, vec![step("b", Action::Delete)]);
        assert_eq!(
            o.to_nano,
            vec![
                step("a", Action::Update(b"a0".to_vec())),
                step("b", Action::Delete),
                step("ghost", Action::Discard),
                step("z", Action::Delete),
            ]
        );
    }

    #[test]
    fn a_rejected_creation_is_discarded_without_a_tombstone() {
        let b = base();
        let m = journal(&b, Side::Master, &[]);
        let n = journal_as(&b, Side::Nano, Side::Master, &[("c", Kind::Create, "x")]);
        let o = reconcile(&m, &n, &b).unwrap();
        assert_eq!(reasons(&o), vec![("c", 1, Reason::ForgedAuthor)]);
        assert_eq!(o.to_nano, vec![step("c", Action::Discard)]);
        assert_eq!(o.merged().get("c"), None);
    }

    #[test]
    fn a_nano_claiming_to_be_the_master_gains_nothing() {
        let b = base();
        // The master took a booking on `a`; the nano changed `a` and `b` and wrote "master" as
        // the author of every change, hoping to win the conflict.
        let m = journal(&b, Side::Master, &[("a", Kind::Update, "master's")]);
        let n = journal_as(
            &b,
            Side::Nano,
            Side::Master,
            &[("a", Kind::Update, "nano's"), ("b", Kind::Update, "nano's")],
        );
        let o = reconcile(&m, &n, &b).unwrap();
        assert_eq!(o.merged().get("a"), present("master's"));
        assert_eq!(o.merged().get("b"), present("b0"), "not taken either");
        assert_eq!(
            reasons(&o),
            vec![
                ("a", 4, Reason::ForgedAuthor),
                ("b", 4, Reason::ForgedAuthor)
            ]
        );
        assert!(o.accepted.is_empty() && o.to_master.is_empty());
        // The master's own journal is the master's whatever its fields say.
        let m2 = journal_as(&b, Side::Master, Side::Nano, &[("a", Kind::Update, "m")]);
        let n2 = journal(&b, Side::Nano, &[("a", Kind::Update, "n")]);
        let o2 = reconcile(&m2, &n2, &b).unwrap();
        assert_eq!(o2.merged().get("a"), present("m"));
        assert_eq!(reasons(&o2), vec![("a", 4, Reason::ChangedByMaster)]);
    }

    #[test]
    fn accepted_nano_changes_are_attributed_to_the_nano() {
        let b = base();
        let m = journal(&b, Side::Master, &[]);
        let n = journal(&b, Side::Nano, &[("b", Kind::Update, "x")]);
        let o = reconcile(&m, &n, &b).unwrap();
        assert!(o.accepted.iter().all(|c| c.author == Side::Nano));
    }

    #[test]
    fn journals_that_do_not_continue_from_the_base_are_refused() {
        let b = base();
        let m = journal(&b, Side::Master, &[]);
        let stale = Journal::new(Limits::default(), &Base::default(), Side::Nano);
        assert_eq!(
            reconcile(&m, &stale, &b),
            Err(Mismatch::Epoch {
                side: Side::Nano,
                journal: 0,
                base: 4
            })
        );
        let mut later = b.clone();
        later.versions.get_mut("a").unwrap().master = 5;
        let ahead = journal(&later, Side::Master, &[("a", Kind::Update, "x")]);
        let n = journal(&b, Side::Nano, &[]);
        assert_eq!(
            reconcile(&ahead, &n, &b),
            Err(Mismatch::Gap {
                side: Side::Master,
                resource: "a".into(),
                expected: 3,
                found: 6
            })
        );
    }

    #[test]
    fn the_order_journals_list_their_changes_in_does_not_matter() {
        let b = base();
        let m = journal(
            &b,
            Side::Master,
            &[
                ("b", Kind::Update, "1"),
                ("a", Kind::Delete, ""),
                ("b", Kind::Update, "2"),
            ],
        );
        let n = journal(
            &b,
            Side::Nano,
            &[
                ("c", Kind::Create, "1"),
                ("a", Kind::Update, "x"),
                ("c", Kind::Update, "2"),
                ("d", Kind::Create, "1"),
            ],
        );
        let o = reconcile(&m, &n, &b).unwrap();
        let rev = |j: &Journal| {
            let mut cs = j.changes().to_vec();
            cs.reverse();
            Journal::received(Limits::default(), j.epoch(), cs).unwrap()
        };
        assert_eq!(reconcile(&rev(&m), &rev(&n), &b).unwrap(), o);
    }

    #[test]
    fn after_convergence_there_is_nothing_left_to_do() {
        let b = base();
        let mut m = journal(&b, Side::Master, &[("a", Kind::Update, "m")]);
        let mut n = journal(
            &b,
            Side::Nano,
            &[("a", Kind::Update, "n"), ("c", Kind::Create, "c")],
        );
        let o = reconcile(&m, &n, &b).unwrap();
        // Without settling, the journals' changes are all covered by the next base.
        let again = reconcile(&m, &n, &o.next).unwrap_err();
        assert!(matches!(again, Mismatch::Epoch { .. }), "{again:?}");
        m.settle(&o.next, Side::Master);
        n.settle(&o.next, Side::Nano);
        assert!(m.is_empty() && n.is_empty());
        let o2 = reconcile(&m, &n, &o.next).unwrap();
        assert!(o2.is_quiet());
        assert_eq!(o2.next, o.next, "a fixed point, same epoch");
        // The nano numbers its next change to `a` after its rejected ones.
        assert_eq!(n.next_version("a"), 5);
    }
}
