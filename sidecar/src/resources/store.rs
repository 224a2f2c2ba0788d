//! Bookings persisted in redb (table `bookings`: (consumer DID, nonce) → CBOR booking), with
//! the planner's capacity check made in the same write transaction as the change it guards,
//! so two confirmations can never over-book a resource between them.

use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use super::booking::{Action, Actor, Booking, State, TransitionError};
use super::db::{db, StoreError};
use super::handoff;
use super::ids::{BookingId, ResourceRef};
use super::planner::{self, PlanError};
use super::resource::Resource;
use crate::time::Timestamp;

const BOOKINGS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("bookings");

/// Why a booking change was refused (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("no booking {0}")]
    NotFound(BookingId),
    #[error("booking {0} already exists")]
    Exists(BookingId),
    #[error("the booking is for another resource than the one given")]
    WrongResource,
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Transition(#[from] TransitionError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Checks [`BookingStore::update`] makes in its transaction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Guard<'a> {
    /// The booking's resource: a change that makes the booking hold capacity (a
    /// confirmation) is admitted by the planner against the other bookings first. `None`:
    /// no capacity check (a consumer mirroring its provider's decision).
    pub capacity: Option<&'a Resource>,
    /// Usage confirmed by this change is queued for settlement in the same transaction
    /// (`usage.pending`, [`super::handoff`]): the consumer's own confirmation.
    pub handoff: bool,
}

/// A booking before and after [`BookingStore::update`] (`after`: `None` when unchanged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Updated {
    pub before: Booking,
    pub after: Option<Booking>,
}

impl Updated {
    /// The usage this change confirmed, if it did.
    pub fn newly_confirmed_usage(&self) -> Option<&super::usage::ConfirmedUsage> {
        let after = self.after.as_ref()?;
        (self.before.state != State::UsageConfirmed && after.state == State::UsageConfirmed)
            .then_some(after.usage.as_ref())
            .flatten()
    }
}

/// The bookings of this node (as consumer, as provider, or both).
#[derive(Clone)]
pub struct BookingStore {
    db: Arc<Database>,
}

fn encode(b: &Booking) -> Vec<u8> {
    // Serialising plain structs into a Vec cannot fail.
    cbor4ii::serde::to_vec(Vec::new(), b).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Result<Booking, StoreError> {
    cbor4ii::serde::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table: "bookings",
        reason: e.to_string(),
    })
}

fn all_of(
    t: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    resource: &ResourceRef,
) -> Result<Vec<Booking>, StoreError> {
    let mut out = Vec::new();
    for e in t.iter().map_err(db)? {
        let (_, v) = e.map_err(db)?;
        let b = decode(v.value())?;
        if b.resource == *resource {
            out.push(b);
        }
    }
    Ok(out)
}

impl BookingStore {
    /// The store in `db` (table created if missing).
    pub fn new(db: Arc<Database>) -> Result<BookingStore, StoreError> {
        let tx = db.begin_write().map_err(super::db::db)?;
        tx.open_table(BOOKINGS).map_err(super::db::db)?;
        tx.commit().map_err(super::db::db)?;
        Ok(BookingStore { db })
    }

    /// Records a new request after the planner's check against the stored bookings of its
    /// resource (a request that could never be confirmed is refused at once).
    pub fn request(&self, resource: &Resource, booking: &Booking) -> Result<(), BookError> {
        if booking.resource != resource.reference() {
            return Err(BookError::WrongResource);
        }
        let key = (booking.id.consumer.as_str(), booking.id.nonce);
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut t = tx.open_table(BOOKINGS).map_err(db)?;
            if t.get(key).map_err(db)?.is_some() {
                return Err(BookError::Exists(booking.id.clone()));
            }
            let others = all_of(&t, &booking.resource)?;
            planner::admit(resource, &others, &booking.window, booking.units, None)?;
            t.insert(key, encode(booking).as_slice()).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(())
    }

    /// `actor` makes `action` on booking `id` of `resource` at `now`; a confirmation is
    /// admitted by the planner first. Returns the booking as stored.
    pub fn transition(
        &self,
        id: &BookingId,
        resource: &Resource,
        actor: &Actor,
        action: &Action,
        now: Timestamp,
    ) -> Result<Booking, BookError> {
        let guard = Guard {
            capacity: Some(resource),
            handoff: false,
        };
        let u = self.update(id, guard, |current| {
            if current.resource != resource.reference() {
                return Err(BookError::WrongResource);
            }
            Ok(Some(current.step(actor, action, now)?))
        })?;
        Ok(u.after.unwrap_or(u.before))
    }

    /// Replaces booking `id` by what `change` makes of it (`None`: leave it as it is), in one
    /// write transaction, under `guard`'s checks. Nothing is written when `change` or a
    /// check refuses.
    pub fn update(
        &self,
        id: &BookingId,
        guard: Guard<'_>,
        change: impl FnOnce(&Booking) -> Result<Option<Booking>, BookError>,
    ) -> Result<Updated, BookError> {
        let key = (id.consumer.as_str(), id.nonce);
        let tx = self.db.begin_write().map_err(db)?;
        let updated = {
            let mut t = tx.open_table(BOOKINGS).map_err(db)?;
            let before = match t.get(key).map_err(db)? {
                Some(v) => decode(v.value())?,
                None => return Err(BookError::NotFound(id.clone())),
            };
            let Some(after) = change(&before)? else {
                return Ok(Updated {
                    before,
                    after: None,
                });
            };
            if after.id != before.id || after.resource != before.resource {
                return Err(BookError::WrongResource);
            }
            if let Some(resource) = guard.capacity {
                if after.state.holds_capacity() && !before.state.holds_capacity() {
                    if before.resource != resource.reference() {
                        return Err(BookError::WrongResource);
                    }
                    let others = all_of(&t, &before.resource)?;
                    planner::admit(resource, &others, &after.window, after.units, Some(id))?;
                }
            }
            t.insert(key, encode(&after).as_slice()).map_err(db)?;
            Updated {
                before,
                after: Some(after),
            }
        };
        if guard.handoff {
            if let Some(usage) = updated.newly_confirmed_usage() {
                handoff::queue(&tx, usage)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(updated)
    }

    /// Bookings in key order (consumer, nonce), only those in `state` when given: at most
    /// `max`, and whether more matched.
    pub fn list(
        &self,
        state: Option<State>,
        max: usize,
    ) -> Result<(Vec<Booking>, bool), StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(BOOKINGS).map_err(db)?;
        let mut out = Vec::new();
        for e in t.iter().map_err(db)? {
            let (_, v) = e.map_err(db)?;
            let b = decode(v.value())?;
            if state.is_some_and(|s| s != b.state) {
                continue;
            }
            if out.len() == max {
                return Ok((out, true));
            }
            out.push(b);
        }
        Ok((out, false))
    }

    /// A booking by id.
    pub fn get(&self, id: &BookingId) -> Result<Option<Booking>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(BOOKINGS).map_err(db)?;
        let v = t.get((id.consumer.as_str(), id.nonce)).map_err(db)?;
        v.map(|v| decode(v.value())).transpose()
    }

    /// Holds `booking` as a nano/master reconciliation decided (no planner check: the
    /// master's bookings win; the reconciliation cancels what they overlap). The same booking
    /// already held (same resource, window, units) is left as it is, whatever its state;
    /// another booking under its id is replaced. Whether anything was written.
    pub fn put_reconciled(&self, booking: &Booking) -> Result<bool, StoreError> {
        let key = (booking.id.consumer.as_str(), booking.id.nonce);
        let tx = self.db.begin_write().map_err(db)?;
        let written = {
            let mut t = tx.open_table(BOOKINGS).map_err(db)?;
            let same = match t.get(key).map_err(db)? {
                Some(v) => {
                    let held = decode(v.value())?;
                    held.resource == booking.resource
                        && held.window == booking.window
                        && held.units == booking.units
                }
                None => false,
            };
            if !same {
                t.insert(key, encode(booking).as_slice()).map_err(db)?;
            }
            !same
        };
        tx.commit().map_err(db)?;
        Ok(written)
    }

    /// Cancels `booking` as a nano/master reconciliation decided: the held booking under its
    /// id goes to `cancelled` (unless terminal already); one not held is recorded cancelled.
    /// The booking as stored, and whether it changed.
    pub fn cancel_reconciled(
        &self,
        booking: &Booking,
        now: Timestamp,
    ) -> Result<(Booking, bool), StoreError> {
        let key = (booking.id.consumer.as_str(), booking.id.nonce);
        let tx = self.db.begin_write().map_err(db)?;
        let out = {
            let mut t = tx.open_table(BOOKINGS).map_err(db)?;
            let held = t.get(key).map_err(db)?.map(|v| decode(v.value()));
            let current = held.transpose()?.unwrap_or_else(|| booking.clone());
            if current.state.is_terminal() {
                (current, false)
            } else {
                let after = Booking {
                    state: State::Cancelled,
                    updated_at_ms: now.as_millis(),
                    ..current
                };
                t.insert(key, encode(&after).as_slice()).map_err(db)?;
                (after, true)
            }
        };
        tx.commit().map_err(db)?;
        Ok(out)
    }

    /// Every booking of `resource`.
    pub fn of_resource(&self, resource: &ResourceRef) -> Result<Vec<Booking>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(BOOKINGS).map_err(db)?;
        all_of(&t, resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::booking::tests::parties;
    use crate::resources::booking::State;
    use crate::resources::db;
    use crate::resources::resource::tests::w;

    #[test]
    fn bookings_survive_reopen_and_confirmations_never_over_book() {
        let p = parties();
        let dir = db::tempdir::TempDir::new();
        let path = dir.path().join("r.redb");
        let t = Timestamp::from_millis(1);
        let a = p.booking(1, w(2_000, 4_000), 5);
        let b = p.booking(2, w(3_000, 5_000), 5);
        {
            let store = BookingStore::new(db::open(&path).unwrap()).unwrap();
            store.request(&p.resource, &a).unwrap();
            store.request(&p.resource, &b).unwrap();
            assert!(matches!(
                store.request(&p.resource, &a),
                Err(BookError::Exists(_))
            ));
            store
                .transition(&a.id, &p.resource, &p.provider(), &Action::Confirm, t)
                .unwrap();
            // b fits alone but not beside a: its confirmation is refused, b stays requested.
            assert!(matches!(
                store.transition(&b.id, &p.resource, &p.provider(), &Action::Confirm, t),
                Err(BookError::Plan(PlanError::OverCapacity {
                    asked: 5,
                    free: 3
                }))
            ));
            // A new request that could never fit is refused at once.
            let c = p.booking(3, w(3_000, 3_500), 4);
            assert!(matches!(
                store.request(&p.resource, &c),
                Err(BookError::Plan(_))
            ));
            // A refused transition writes nothing.
            assert!(matches!(
                store.transition(&a.id, &p.resource, &p.consumer(), &Action::Start, t),
                Err(BookError::Transition(_))
            ));
        }
        let store = BookingStore::new(db::open(&path).unwrap()).unwrap();
        assert_eq!(store.get(&a.id).unwrap().unwrap().state, State::Confirmed);
        assert_eq!(store.get(&b.id).unwrap().unwrap().state, State::Requested);
        assert_eq!(store.of_resource(&p.resource.reference()).unwrap().len(), 2);
        // Once a is cancelled, b fits.
        store
            .transition(&a.id, &p.resource, &p.consumer(), &Action::Cancel, t)
            .unwrap();
        store
            .transition(&b.id, &p.resource, &p.provider(), &Action::Confirm, t)
            .unwrap();
        let missing = BookingId {
            consumer: a.id.consumer.clone(),
            nonce: 99,
        };
        assert!(matches!(
            store.transition(&missing, &p.resource, &p.provider(), &Action::Confirm, t),
            Err(BookError::NotFound(_))
        ));
        let mut other = p.resource.clone();
        other.id = crate::resources::ids::ResourceId::parse("other").unwrap();
        assert!(matches!(
            store.transition(&b.id, &other, &p.provider(), &Action::Start, t),
            Err(BookError::WrongResource)
        ));
    }

    #[test]
    fn a_confirmed_usage_is_queued_with_its_confirmation_and_listings_filter() {
        use crate::resources::handoff::Handoff;
        use crate::resources::usage::ConfirmedUsage;
        let p = parties();
        let database = db::temp();
        let store = BookingStore::new(database.clone()).unwrap();
        let handoff = Handoff::new(database).unwrap();
        let t = Timestamp::from_millis(2_000);
        let b = p.booking(1, w(2_000, 5_000), 2);
        store.request(&p.resource, &b).unwrap();
        store
            .request(&p.resource, &p.booking(2, w(2_000, 5_000), 1))
            .unwrap();
        for a in [Action::Confirm, Action::Start] {
            store
                .transition(&b.id, &p.resource, &p.provider(), &a, t)
                .unwrap();
        }
        let report = p.report(&b, 2, w(2_000, 4_000));
        let done = store
            .transition(
                &b.id,
                &p.resource,
                &p.provider(),
                &Action::Complete(report.clone()),
                t,
            )
            .unwrap();
        let usage = ConfirmedUsage::confirm(&p.consumer, &report, done.unit_price).unwrap();
        let confirm = Action::ConfirmUsage(usage.clone());
        let guard = Guard {
            capacity: None,
            handoff: true,
        };
        // A refused change queues nothing.
        let refused = store.update(&b.id, guard, |cur| {
            Ok(Some(cur.step(&p.provider(), &confirm, t)?))
        });
        assert!(matches!(refused, Err(BookError::Transition(_))));
        assert!(handoff.is_empty().unwrap());
        let u = store
            .update(&b.id, guard, |cur| {
                Ok(Some(cur.step(&p.consumer(), &confirm, t)?))
            })
            .unwrap();
        assert_eq!(u.newly_confirmed_usage(), Some(&usage));
        assert_eq!(handoff.pending(10, None).unwrap(), vec![usage.clone()]);
        // Unchanged (a duplicate): nothing more is queued.
        let same = store.update(&b.id, guard, |_| Ok(None)).unwrap();
        assert_eq!((&same.after, same.newly_confirmed_usage()), (&None, None));
        assert_eq!(handoff.len().unwrap(), 1);
        assert!(handoff.done(&b.id).unwrap());
        assert!(!handoff.done(&b.id).unwrap());
        // Listings: all, by state, bounded.
        let (all, more) = store.list(None, 10).unwrap();
        assert_eq!((all.len(), more), (2, false));
        let (req, _) = store.list(Some(State::Requested), 10).unwrap();
        assert_eq!(req.len(), 1);
        assert_eq!(req[0].id.nonce, 2);
        assert!(store.list(None, 1).unwrap().1);
        assert!(store.list(Some(State::Cancelled), 10).unwrap().0.is_empty());
    }
}
