//! Split-brain reconciliation of bookings: on any overlap the master's booking stands, the
//! nano-only one is cancelled and its requester told.
//!
//! [`reconcile()`](super::reconcile()) decides per resource id. Two bookings of the same slot
//! carry *different* ids, so they need a rule of their own: [`reconcile_bookings`] takes the
//! bookings both sides agreed on before the cut (the base), the bookings the master took since
//! and those the nano took since, and decides which stand. Which list is whose is said by the
//! argument position, never by [`Booking::taken_by`].
//!
//! In this order (every step is over sorted data, so the result does not depend on the order
//! the lists hold their bookings in):
//!
//! 1. Each list is checked: at most [`Bounds`] bookings, well-formed ids, resource ids and
//!    requesters, and no id twice with different content (exact repeats count once). Anything
//!    else refuses the reconciliation with a typed [`BookingsError`].
//! 2. The master side is the base with the master's new bookings over it (a new version of a
//!    base booking replaces it). Its bookings are taken in the order base first, then earliest
//!    start, then lowest id: one with an empty slot is cancelled ([`Defect::EmptySlot`]); one
//!    overlapping a booking already taken on the same resource is cancelled
//!    ([`CancelReason::OverlapsMaster`]: the master's own bookings overlap each other, which its
//!    booking layer never lets happen); every other one stands.
//! 3. The nano's new bookings are taken in the order earliest start, then lowest id. One that
//!    is the same booking (same id, resource, slot, requester) as the master side's, or as the
//!    base's, of its id is not new: it stands or falls with that one. Otherwise it is
//!    cancelled when its slot is empty ([`Defect::EmptySlot`]), when it says the master took it
//!    ([`Defect::ForgedSide`]), when the master side holds another booking under its id
//!    ([`CancelReason::ConflictingId`]), when it overlaps a master-side booking that stands
//!    ([`CancelReason::OverlapsMaster`]) or a nano booking taken before it
//!    ([`CancelReason::OverlapsNano`]: a faulty or hostile nano); else it stands.
//! 4. Every cancelled booking gets exactly one [`Notification`], to its requester; the steps
//!    each side applies to hold exactly the survivors are the difference between what it holds
//!    (the base with its own new bookings over it) and the survivors.
//!
//! The survivors are the next base. Reconciling them again against no new bookings changes
//! nothing; a [`Notified`] log makes a retried reconciliation (after a crash) notify nobody
//! twice ([`pending_notifications`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::time::Timestamp;

use super::base::{ResourceId, Side};
use super::journal::MAX_ID;

/// A booking's id (unique per booking, chosen by the side that took it).
pub type BookingId = String;

/// Longest booking id, bytes (a data-plane booking's `<did:key>#<nonce>` is at most
/// 56 + 1 + 20 = 77).
pub const MAX_BOOKING_ID: usize = 96;
/// Longest requester DID, bytes.
pub const MAX_REQUESTER: usize = 128;
/// Bookings one side's new list holds at most by default (a day of one every ten seconds).
pub const MAX_NEW_BOOKINGS: usize = 8_640;
/// Bookings the base holds at most by default.
pub const MAX_BASE_BOOKINGS: usize = 65_536;

/// A half-open interval of time `[start, end)`; valid when `start < end`.
///
/// The fields are public so a decoder can build any slot; [`reconcile_bookings`] cancels a
/// booking whose slot is not valid ([`Defect::EmptySlot`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Slot {
    /// A slot from `start` (included) to `end` (excluded), refused when empty or reversed.
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Slot, Defect> {
        let s = Slot { start, end };
        if s.is_valid() {
            Ok(s)
        } else {
            Err(Defect::EmptySlot)
        }
    }

    pub fn is_valid(&self) -> bool {
        self.start < self.end
    }

    /// Whether the two slots share an instant (touching ends do not overlap).
    pub fn overlaps(&self, other: &Slot) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// A booking of a resource of the nano's for a slot.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Booking {
    /// 1 to [`MAX_BOOKING_ID`] bytes.
    pub id: BookingId,
    /// 1 to [`MAX_ID`] bytes.
    pub resource: ResourceId,
    pub slot: Slot,
    /// The DID of whoever asked for it (`did:…`, at most [`MAX_REQUESTER`] bytes).
    pub requester: String,
    /// Who says they took it. Informative: [`reconcile_bookings`] attributes a booking to the
    /// list that holds it, and cancels a nano booking that claims the master took it.
    pub taken_by: Side,
    /// When, by the taker's clock (reported, never compared).
    pub taken_at: Timestamp,
}

impl Booking {
    /// Whether `other` is the same booking: same id, resource, slot and requester (who
    /// recorded it, and when, may differ: the requester holds the same thing).
    pub fn same_as(&self, other: &Booking) -> bool {
        self.id == other.id
            && self.resource == other.resource
            && self.slot == other.slot
            && self.requester == other.requester
    }
}

/// One of the three lists a reconciliation takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum List {
    /// Agreed by both sides before the cut.
    Base,
    /// Taken by the master since.
    Master,
    /// Taken by the nano since.
    Nano,
}

/// What is wrong with a booking that is cancelled as [`CancelReason::Invalid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Defect {
    /// Its slot is empty or reversed (`start >= end`).
    EmptySlot,
    /// It comes from the nano's list but says the master took it, and the master has no such
    /// booking.
    ForgedSide,
}

/// Why a booking is cancelled.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CancelReason {
    /// It overlaps this master-side booking, which stands.
    OverlapsMaster {
        with: BookingId,
    },
    /// A nano booking overlapping this other nano booking, which started earlier (or at the
    /// same time with a lower id) and stands.
    OverlapsNano {
        with: BookingId,
    },
    /// A nano booking under an id the master side holds another booking under.
    ConflictingId,
    Invalid(Defect),
}

/// A booking that does not stand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancellation {
    /// As the list it came from held it.
    pub booking: Booking,
    /// The side whose list held it (the base counts as the master's).
    pub from: Side,
    pub reason: CancelReason,
}

/// What the requester of a cancelled booking is told (one per cancellation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The requester's DID.
    pub to: String,
    pub booking: BookingId,
    /// The side whose version of the booking is cancelled.
    pub from: Side,
    pub resource: ResourceId,
    pub slot: Slot,
    pub reason: CancelReason,
}

impl Notification {
    /// What identifies it in a [`Notified`] log: the booking id and the side whose version is
    /// cancelled (both sides may hold a booking under one id, and each version is told of once).
    pub fn key(&self) -> (BookingId, Side) {
        (self.booking.clone(), self.from)
    }
}

/// One step of convergence for one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BookingStep {
    /// Hold this booking under its id (adding it, or replacing the version held).
    Put(Booking),
    /// Drop the booking held under this id.
    Cancel(BookingId),
}

/// What a side holds, by booking id.
pub type Held = BTreeMap<BookingId, Booking>;

impl BookingStep {
    pub fn apply(&self, held: &mut Held) {
        match self {
            BookingStep::Put(b) => {
                held.insert(b.id.clone(), b.clone());
            }
            BookingStep::Cancel(id) => {
                held.remove(id);
            }
        }
    }
}

/// What a side holds after a cut: the base with its own new bookings over it (a new version of
/// a base booking replaces it). Exact repeats count once; for an id listed twice with different
/// content (refused by [`reconcile_bookings`]) the greater version is kept.
pub fn held(base: &[Booking], new: &[Booking]) -> Held {
    let mut h = Held::new();
    for list in [base, new] {
        let mut sorted: Vec<&Booking> = list.iter().collect();
        sorted.sort();
        for b in sorted {
            h.insert(b.id.clone(), b.clone());
        }
    }
    h
}

/// The result of a reconciliation of bookings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookingOutcome {
    /// The bookings that stand (the next base), by resource, start, then id.
    pub survivors: Vec<Booking>,
    /// The bookings that do not, by resource, start, id, then side.
    pub cancelled: Vec<Cancellation>,
    /// One per cancellation, in the same order.
    pub notifications: Vec<Notification>,
    /// What the master does to hold exactly the survivors, by booking id.
    pub to_master: Vec<BookingStep>,
    /// What the nano does to hold exactly the survivors, by booking id.
    pub to_nano: Vec<BookingStep>,
}

impl BookingOutcome {
    /// Whether nobody has anything to do or to be told.
    pub fn is_quiet(&self) -> bool {
        self.cancelled.is_empty() && self.to_master.is_empty() && self.to_nano.is_empty()
    }
}

/// How many bookings each list may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub base: usize,
    /// Each side's new list.
    pub new: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            base: MAX_BASE_BOOKINGS,
            new: MAX_NEW_BOOKINGS,
        }
    }
}

impl Bounds {
    fn of(&self, list: List) -> usize {
        match list {
            List::Base => self.base,
            List::Master | List::Nano => self.new,
        }
    }
}

/// Why lists of bookings are refused as a whole (a malformed message: the side resends).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookingsError {
    #[error("the {list:?} list holds more than {max} bookings")]
    TooMany { list: List, max: usize },
    #[error("a booking id in the {list:?} list is not 1 to {MAX_BOOKING_ID} bytes")]
    BadId { list: List },
    #[error("booking {id:?} in the {list:?} list: its resource id is not 1 to {MAX_ID} bytes")]
    BadResource { list: List, id: BookingId },
    #[error(
        "booking {id:?} in the {list:?} list: its requester is not a DID of at most {MAX_REQUESTER} bytes"
    )]
    BadRequester { list: List, id: BookingId },
    #[error("the {list:?} list holds booking {id:?} twice with different content")]
    DuplicateId { list: List, id: BookingId },
}

/// Reconciles the bookings the master and the nano took while cut off, within the default
/// [`Bounds`] (see the module docs). `base`: the bookings both held before the cut;
/// `master_new`: those the master took since; `nano_new`: those received from the nano.
pub fn reconcile_bookings(
    base: &[Booking],
    master_new: &[Booking],
    nano_new: &[Booking],
) -> Result<BookingOutcome, BookingsError> {
    reconcile_bookings_within(Bounds::default(), base, master_new, nano_new)
}

/// [`reconcile_bookings`] within the given bounds.
pub fn reconcile_bookings_within(
    bounds: Bounds,
    base: &[Booking],
    master_new: &[Booking],
    nano_new: &[Booking],
) -> Result<BookingOutcome, BookingsError> {
    // Step 1.
    let base = checked(List::Base, base, bounds.base)?;
    let master_new = checked(List::Master, master_new, bounds.new)?;
    let nano_new = checked(List::Nano, nano_new, bounds.new)?;

    let mut survivors: BTreeMap<&str, &Booking> = BTreeMap::new();
    let mut cancelled: Vec<Cancellation> = Vec::new();
    let mut cancel = |b: &Booking, from: Side, reason: CancelReason| {
        cancelled.push(Cancellation {
            booking: b.clone(),
            from,
            reason,
        })
    };

    // Step 2: the master side.
    let mut master_side: BTreeMap<&str, (bool, &Booking)> =
        base.iter().map(|(id, b)| (*id, (false, *b))).collect();
    for (id, b) in &master_new {
        master_side.insert(id, (true, b));
    }
    let mut order: Vec<(bool, &Booking)> = master_side.values().copied().collect();
    order.sort_by(|(na, a), (nb, b)| (na, a.slot.start, &a.id).cmp(&(nb, b.slot.start, &b.id)));
    let mut by_master = Taken::default();
    for (_, b) in order {
        if !b.slot.is_valid() {
            cancel(b, Side::Master, CancelReason::Invalid(Defect::EmptySlot));
        } else if let Some(w) = by_master.first_overlap(b) {
            let with = w.id.clone();
            cancel(b, Side::Master, CancelReason::OverlapsMaster { with });
        } else {
            by_master.insert(b);
            survivors.insert(&b.id, b);
        }
    }

    // Step 3: the nano's new bookings.
    let mut order: Vec<&Booking> = nano_new.values().copied().collect();
    order.sort_by(|a, b| (a.slot.start, &a.id).cmp(&(b.slot.start, &b.id)));
    let mut by_nano = Taken::default();
    for b in order {
        let master_version = master_side.get(b.id.as_str()).map(|(_, m)| *m);
        let base_version = base.get(b.id.as_str());
        if master_version.is_some_and(|m| m.same_as(b))
            || base_version.is_some_and(|o| o.same_as(b))
        {
            continue; // not new: it stands or falls with the master side's
        }
        let reason = if !b.slot.is_valid() {
            Some(CancelReason::Invalid(Defect::EmptySlot))
        } else if b.taken_by == Side::Master {
            Some(CancelReason::Invalid(Defect::ForgedSide))
        } else if master_version.is_some() {
            Some(CancelReason::ConflictingId)
        } else if let Some(w) = by_master.first_overlap(b) {
            Some(CancelReason::OverlapsMaster { with: w.id.clone() })
        } else {
            by_nano
                .first_overlap(b)
                .map(|w| CancelReason::OverlapsNano { with: w.id.clone() })
        };
        match reason {
            Some(reason) => cancel(b, Side::Nano, reason),
            None => {
                by_nano.insert(b);
                survivors.insert(&b.id, b);
            }
        }
    }

    // Step 4.
    cancelled.sort_by(|a, b| cancel_order(a).cmp(&cancel_order(b)));
    let notifications = cancelled
        .iter()
        .map(|c| Notification {
            to: c.booking.requester.clone(),
            booking: c.booking.id.clone(),
            from: c.from,
            resource: c.booking.resource.clone(),
            slot: c.booking.slot,
            reason: c.reason.clone(),
        })
        .collect();
    let master_held = over(&base, &master_new);
    let nano_held = over(&base, &nano_new);
    let to_master = steps(&master_held, &survivors);
    let to_nano = steps(&nano_held, &survivors);
    let mut survivors: Vec<Booking> = survivors.into_values().cloned().collect();
    survivors.sort_by(|a, b| {
        (&a.resource, a.slot.start, &a.id).cmp(&(&b.resource, b.slot.start, &b.id))
    });
    Ok(BookingOutcome {
        survivors,
        cancelled,
        notifications,
        to_master,
        to_nano,
    })
}

/// The order of cancellations: by resource, start, id, then side.
fn cancel_order(c: &Cancellation) -> (&str, Timestamp, &str, Side) {
    let b = &c.booking;
    (b.resource.as_str(), b.slot.start, b.id.as_str(), c.from)
}

/// A list checked (step 1), by id.
fn checked(
    list: List,
    bookings: &[Booking],
    max: usize,
) -> Result<BTreeMap<&str, &Booking>, BookingsError> {
    if bookings.len() > max {
        return Err(BookingsError::TooMany { list, max });
    }
    let mut sorted: Vec<&Booking> = bookings.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut by_id = BTreeMap::new();
    for b in sorted {
        check_shape(list, b)?;
        if by_id.insert(b.id.as_str(), b).is_some() {
            return Err(BookingsError::DuplicateId {
                list,
                id: b.id.clone(),
            });
        }
    }
    Ok(by_id)
}

fn check_shape(list: List, b: &Booking) -> Result<(), BookingsError> {
    if b.id.is_empty() || b.id.len() > MAX_BOOKING_ID {
        return Err(BookingsError::BadId { list });
    }
    if b.resource.is_empty() || b.resource.len() > MAX_ID {
        return Err(BookingsError::BadResource {
            list,
            id: b.id.clone(),
        });
    }
    if !b.requester.starts_with("did:") || b.requester.len() > MAX_REQUESTER {
        return Err(BookingsError::BadRequester {
            list,
            id: b.id.clone(),
        });
    }
    Ok(())
}

/// `new` over `base`, by id.
fn over<'a>(
    base: &BTreeMap<&'a str, &'a Booking>,
    new: &BTreeMap<&'a str, &'a Booking>,
) -> BTreeMap<&'a str, &'a Booking> {
    let mut h = base.clone();
    h.extend(new.iter().map(|(id, b)| (*id, *b)));
    h
}

/// What takes a side holding `held` to holding exactly `target`, by id.
fn steps(held: &BTreeMap<&str, &Booking>, target: &BTreeMap<&str, &Booking>) -> Vec<BookingStep> {
    let ids: BTreeSet<&str> = held.keys().chain(target.keys()).copied().collect();
    ids.into_iter()
        .filter_map(|id| match (held.get(id), target.get(id)) {
            (Some(h), Some(t)) if h == t => None,
            (_, Some(t)) => Some(BookingStep::Put((*t).clone())),
            (Some(_), None) => Some(BookingStep::Cancel(id.to_string())),
            (None, None) => None,
        })
        .collect()
}

/// The bookings that stand on each resource, pairwise disjoint, by start.
#[derive(Default)]
struct Taken<'a> {
    by: BTreeMap<&'a str, BTreeMap<Timestamp, &'a Booking>>,
}

impl<'a> Taken<'a> {
    /// The earliest booking taken on `b`'s resource that overlaps `b` (a valid slot). Those
    /// taken are disjoint, so their ends grow with their starts: the last one starting at or
    /// before `b` overlaps it if any starting at or before it does, else the first one starting
    /// after `b`'s start may.
    fn first_overlap(&self, b: &Booking) -> Option<&'a Booking> {
        let on = self.by.get(b.resource.as_str())?;
        if let Some((_, x)) = on.range(..=b.slot.start).next_back() {
            if x.slot.end > b.slot.start {
                return Some(x);
            }
        }
        let (_, x) = on
            .range((Bound::Excluded(b.slot.start), Bound::Unbounded))
            .next()?;
        (x.slot.start < b.slot.end).then_some(*x)
    }

    fn insert(&mut self, b: &'a Booking) {
        self.by
            .entry(b.resource.as_str())
            .or_default()
            .insert(b.slot.start, b);
    }
}

/// The notifications already sent, by [`Notification::key`]: a reconciliation retried after a
/// crash gives the same outcome, and nobody is told twice. Kept until both sides have adopted
/// the survivors as their base (a reconciliation from there cancels nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notified {
    sent: BTreeSet<(BookingId, Side)>,
}

impl Notified {
    pub fn new() -> Self {
        Notified::default()
    }

    /// Records `n` as sent.
    pub fn mark(&mut self, n: &Notification) {
        self.sent.insert(n.key());
    }

    pub fn contains(&self, n: &Notification) -> bool {
        self.sent.contains(&n.key())
    }

    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Forgets everything (once the survivors are both sides' base).
    pub fn clear(&mut self) {
        self.sent.clear();
    }
}

/// The notifications of `outcome` not sent yet.
pub fn pending_notifications(outcome: &BookingOutcome, already: &Notified) -> Vec<Notification> {
    outcome
        .notifications
        .iter()
        .filter(|n| !already.contains(n))
        .cloned()
        .collect()
}

/// The three lists as their bookings arrive, in any order and any interleaving, redeliveries
/// counted once; bounded as they arrive.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    bounds: Bounds,
    base: BTreeSet<Booking>,
    master: BTreeSet<Booking>,
    nano: BTreeSet<Booking>,
}

impl Exchange {
    pub fn new(bounds: Bounds) -> Self {
        Exchange {
            bounds,
            ..Exchange::default()
        }
    }

    /// Adds a booking of `list` (an exact repeat is ignored).
    pub fn receive(&mut self, list: List, booking: Booking) -> Result<(), BookingsError> {
        check_shape(list, &booking)?;
        let max = self.bounds.of(list);
        let set = match list {
            List::Base => &mut self.base,
            List::Master => &mut self.master,
            List::Nano => &mut self.nano,
        };
        if set.contains(&booking) {
            return Ok(());
        }
        if set.len() >= max {
            return Err(BookingsError::TooMany { list, max });
        }
        set.insert(booking);
        Ok(())
    }

    /// Reconciles what has arrived.
    pub fn reconcile(&self) -> Result<BookingOutcome, BookingsError> {
        let v = |s: &BTreeSet<Booking>| s.iter().cloned().collect::<Vec<_>>();
        reconcile_bookings_within(
            self.bounds,
            &v(&self.base),
            &v(&self.master),
            &v(&self.nano),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    /// Booking `id` of `resource` for `[start, end)` hours, asked for by `did:key:<who>`.
    fn bk(id: &str, resource: &str, start: u64, end: u64, who: &str, side: Side) -> Booking {
        Booking {
            id: id.into(),
            resource: resource.into(),
            slot: Slot {
                start: t(start * 3_600_000),
                end: t(end * 3_600_000),
            },
            requester: format!("did:key:{who}"),
            taken_by: side,
            taken_at: t(7),
        }
    }

    fn m(id: &str, resource: &str, start: u64, end: u64) -> Booking {
        bk(id, resource, start, end, id, Side::Master)
    }

    fn n(id: &str, resource: &str, start: u64, end: u64) -> Booking {
        bk(id, resource, start, end, id, Side::Nano)
    }

    fn ids(bs: &[Booking]) -> Vec<&str> {
        bs.iter().map(|b| b.id.as_str()).collect()
    }

    fn reasons(o: &BookingOutcome) -> Vec<(&str, Side, CancelReason)> {
        o.cancelled
            .iter()
            .map(|c| (c.booking.id.as_str(), c.from, c.reason.clone()))
            .collect()
    }

    fn over_master(with: &str) -> CancelReason {
        CancelReason::OverlapsMaster { with: with.into() }
    }

    fn over_nano(with: &str) -> CancelReason {
        CancelReason::OverlapsNano { with: with.into() }
    }

    /// Checks convergence: each side, applying its steps to what it holds, holds the survivors.
    fn converges(o: &BookingOutcome, base: &[Booking], mn: &[Booking], nn: &[Booking]) {
        let target: Held = o
            .survivors
            .iter()
            .map(|b| (b.id.clone(), b.clone()))
            .collect();
        for (new, steps) in [(mn, &o.to_master), (nn, &o.to_nano)] {
            let mut h = held(base, new);
            for s in steps {
                s.apply(&mut h);
            }
            assert_eq!(h, target);
        }
    }

    #[test]
    fn slots_are_half_open() {
        assert_eq!(Slot::new(t(5), t(5)), Err(Defect::EmptySlot));
        assert_eq!(Slot::new(t(6), t(5)), Err(Defect::EmptySlot));
        let a = Slot::new(t(0), t(10)).unwrap();
        let b = Slot::new(t(10), t(20)).unwrap();
        let c = Slot::new(t(9), t(11)).unwrap();
        assert!(!a.overlaps(&b) && !b.overlaps(&a), "touching ends");
        assert!(a.overlaps(&c) && c.overlaps(&a) && b.overlaps(&c));
        assert!(a.overlaps(&a));
    }

    #[test]
    fn bookings_taken_on_one_side_only_stand() {
        let base = [m("b0", "room", 0, 1)];
        let mn = [m("m1", "room", 1, 2), m("m2", "desk", 0, 5)];
        let nn = [n("n1", "room", 2, 3), n("n2", "van", 0, 5)];
        let o = reconcile_bookings(&base, &mn, &nn).unwrap();
        assert!(o.cancelled.is_empty() && o.notifications.is_empty());
        assert_eq!(ids(&o.survivors), ["m2", "b0", "m1", "n1", "n2"]);
        assert_eq!(
            o.to_master,
            vec![
                BookingStep::Put(nn[0].clone()),
                BookingStep::Put(nn[1].clone())
            ]
        );
        assert_eq!(
            o.to_nano,
            vec![
                BookingStep::Put(mn[0].clone()),
                BookingStep::Put(mn[1].clone())
            ]
        );
        converges(&o, &base, &mn, &nn);
    }

    #[test]
    fn on_an_overlap_the_master_wins_and_the_nano_requester_is_told() {
        let base = [m("b0", "room", 0, 2)];
        let mn = [m("m1", "room", 4, 6)];
        let nn = [
            bk("n1", "room", 5, 7, "alice", Side::Nano), // overlaps m1
            bk("n2", "room", 1, 3, "bob", Side::Nano),   // overlaps the base's b0
            n("n3", "room", 2, 4),                       // fits between them
            n("n4", "desk", 4, 6),                       // another resource
        ];
        let o = reconcile_bookings(&base, &mn, &nn).unwrap();
        assert_eq!(ids(&o.survivors), ["n4", "b0", "n3", "m1"]);
        assert_eq!(
            reasons(&o),
            vec![
                ("n2", Side::Nano, over_master("b0")),
                ("n1", Side::Nano, over_master("m1")),
            ]
        );
        assert_eq!(
            o.notifications,
            vec![
                Notification {
                    to: "did:key:bob".into(),
                    booking: "n2".into(),
                    from: Side::Nano,
                    resource: "room".into(),
                    slot: nn[1].slot,
                    reason: over_master("b0"),
                },
                Notification {
                    to: "did:key:alice".into(),
                    booking: "n1".into(),
                    from: Side::Nano,
                    resource: "room".into(),
                    slot: nn[0].slot,
                    reason: over_master("m1"),
                },
            ]
        );
        assert_eq!(
            o.to_nano,
            vec![
                BookingStep::Put(mn[0].clone()),
                BookingStep::Cancel("n1".into()),
                BookingStep::Cancel("n2".into()),
            ]
        );
        assert_eq!(
            o.to_master,
            vec![
                BookingStep::Put(nn[2].clone()),
                BookingStep::Put(nn[3].clone())
            ]
        );
        converges(&o, &base, &mn, &nn);
    }

    #[test]
    fn overlapping_nano_bookings_keep_the_earliest_start_then_the_lowest_id() {
        // A chain a [0,2) b [1,3) c [2,4): a stands, b overlaps it, c overlaps only b, which
        // does not stand, so c stands too. Same start: the lowest id stands.
        let nn = [
            n("c", "room", 2, 4),
            n("b", "room", 1, 3),
            n("a", "room", 0, 2),
            n("y", "desk", 0, 1),
            n("x", "desk", 0, 3),
        ];
        let o = reconcile_bookings(&[], &[], &nn).unwrap();
        assert_eq!(ids(&o.survivors), ["x", "a", "c"]);
        assert_eq!(
            reasons(&o),
            vec![
                ("y", Side::Nano, over_nano("x")),
                ("b", Side::Nano, over_nano("a")),
            ]
        );
        converges(&o, &[], &[], &nn);
    }

    #[test]
    fn a_nano_booking_cancelled_by_the_master_blocks_no_other() {
        let mn = [m("m", "room", 0, 2)];
        let nn = [n("n1", "room", 1, 3), n("n2", "room", 2, 4)];
        let o = reconcile_bookings(&[], &mn, &nn).unwrap();
        assert_eq!(ids(&o.survivors), ["m", "n2"]);
        assert_eq!(reasons(&o), vec![("n1", Side::Nano, over_master("m"))]);
    }

    #[test]
    fn the_same_booking_on_both_sides_is_kept_once() {
        let b = n("x", "room", 0, 2);
        let o =
            reconcile_bookings(&[], std::slice::from_ref(&b), std::slice::from_ref(&b)).unwrap();
        assert_eq!(o.survivors, vec![b.clone()]);
        assert!(o.is_quiet());
        // Only the record differs (who took it, when): the requester holds the same thing;
        // the master's record stands and nobody is told.
        let mut mine = b.clone();
        mine.taken_at = t(99);
        mine.taken_by = Side::Master;
        let o =
            reconcile_bookings(&[], std::slice::from_ref(&mine), std::slice::from_ref(&b)).unwrap();
        assert_eq!(o.survivors, vec![mine.clone()]);
        assert!(o.cancelled.is_empty());
        assert_eq!(o.to_nano, vec![BookingStep::Put(mine)]);
        assert!(o.to_master.is_empty());
        // A nano re-sending a base booking is no change either.
        let o =
            reconcile_bookings(std::slice::from_ref(&b), &[], std::slice::from_ref(&b)).unwrap();
        assert!(o.is_quiet());
    }

    #[test]
    fn an_id_held_by_both_sides_with_different_content_is_the_masters() {
        let mine = m("x", "room", 0, 2);
        let theirs = bk("x", "room", 5, 6, "carol", Side::Nano);
        let o = reconcile_bookings(
            &[],
            std::slice::from_ref(&mine),
            std::slice::from_ref(&theirs),
        )
        .unwrap();
        assert_eq!(o.survivors, vec![mine.clone()]);
        assert_eq!(
            reasons(&o),
            vec![("x", Side::Nano, CancelReason::ConflictingId)]
        );
        assert_eq!(o.notifications[0].to, "did:key:carol");
        assert_eq!(o.notifications[0].slot, theirs.slot, "the nano's version");
        assert_eq!(o.to_nano, vec![BookingStep::Put(mine.clone())]);
        assert!(o.to_master.is_empty());
        converges(
            &o,
            &[],
            std::slice::from_ref(&mine),
            std::slice::from_ref(&theirs),
        );
        // The same against a base booking the nano changed.
        let o = reconcile_bookings(
            std::slice::from_ref(&mine),
            &[],
            std::slice::from_ref(&theirs),
        )
        .unwrap();
        assert_eq!(o.survivors, vec![mine.clone()]);
        assert_eq!(
            reasons(&o),
            vec![("x", Side::Nano, CancelReason::ConflictingId)]
        );
        converges(&o, &[mine], &[], &[theirs]);
    }

    #[test]
    fn a_new_master_version_of_a_base_booking_replaces_it() {
        let old = m("x", "room", 0, 2);
        let new = m("x", "room", 3, 4);
        let o = reconcile_bookings(
            std::slice::from_ref(&old),
            std::slice::from_ref(&new),
            std::slice::from_ref(&old),
        )
        .unwrap();
        assert_eq!(o.survivors, vec![new.clone()]);
        assert!(
            o.cancelled.is_empty(),
            "the nano re-sent the base's version"
        );
        assert_eq!(o.to_nano, vec![BookingStep::Put(new.clone())]);
        let base = [old.clone()];
        converges(&o, &base, &[new], &[old]);
    }

    #[test]
    fn a_nano_claiming_the_master_took_its_booking_gains_nothing() {
        let forged = bk("f", "room", 0, 2, "eve", Side::Master);
        let o = reconcile_bookings(&[], &[], std::slice::from_ref(&forged)).unwrap();
        assert!(o.survivors.is_empty());
        assert_eq!(
            reasons(&o),
            vec![("f", Side::Nano, CancelReason::Invalid(Defect::ForgedSide))]
        );
        assert_eq!(o.to_nano, vec![BookingStep::Cancel("f".into())]);
        // A forged booking blocks nobody: an honest nano booking over it stands.
        let honest = n("h", "room", 1, 3);
        let o = reconcile_bookings(&[], &[], &[forged.clone(), honest.clone()]).unwrap();
        assert_eq!(o.survivors, vec![honest]);
        // A master booking the nano has learnt of is no forgery.
        let mine = m("g", "room", 0, 2);
        let o = reconcile_bookings(
            &[],
            std::slice::from_ref(&mine),
            std::slice::from_ref(&mine),
        )
        .unwrap();
        assert!(o.is_quiet());
        // And the master's list is the master's whatever its bookings say.
        let o = reconcile_bookings(&[], &[n("k", "room", 0, 2)], &[n("l", "room", 1, 2)]).unwrap();
        assert_eq!(ids(&o.survivors), ["k"]);
        assert_eq!(reasons(&o), vec![("l", Side::Nano, over_master("k"))]);
    }

    #[test]
    fn bookings_with_empty_slots_are_cancelled_on_either_side() {
        let bad_m = m("bm", "room", 3, 3);
        let bad_n = n("bn", "room", 5, 4);
        let o = reconcile_bookings(
            &[],
            std::slice::from_ref(&bad_m),
            &[bad_n.clone(), n("ok", "room", 3, 5)],
        )
        .unwrap();
        assert_eq!(ids(&o.survivors), ["ok"]);
        assert_eq!(
            reasons(&o),
            vec![
                ("bm", Side::Master, CancelReason::Invalid(Defect::EmptySlot)),
                ("bn", Side::Nano, CancelReason::Invalid(Defect::EmptySlot)),
            ]
        );
        assert_eq!(o.notifications.len(), 2);
        assert_eq!(o.to_master[0], BookingStep::Cancel("bm".into()));
        converges(&o, &[], &[bad_m], &[bad_n, n("ok", "room", 3, 5)]);
    }

    #[test]
    fn overlapping_master_bookings_keep_the_base_first() {
        // Never made by an honest master; resolved all the same, the agreed one first.
        let base = [m("b", "room", 2, 4)];
        let mn = [m("a", "room", 0, 3), m("c", "room", 4, 5)];
        let o = reconcile_bookings(&base, &mn, &[]).unwrap();
        assert_eq!(ids(&o.survivors), ["b", "c"]);
        assert_eq!(reasons(&o), vec![("a", Side::Master, over_master("b"))]);
        assert_eq!(o.to_master, vec![BookingStep::Cancel("a".into())]);
    }

    #[test]
    fn malformed_lists_are_refused_whole() {
        let ok = n("a", "room", 0, 1);
        let bounds = Bounds { base: 3, new: 2 };
        let three = [ok.clone(), n("b", "room", 1, 2), n("c", "room", 2, 3)];
        assert_eq!(
            reconcile_bookings_within(bounds, &[], &[], &three),
            Err(BookingsError::TooMany {
                list: List::Nano,
                max: 2
            })
        );
        assert!(reconcile_bookings_within(bounds, &three, &[], &[]).is_ok());
        let with = |f: &dyn Fn(&mut Booking)| {
            let mut b = ok.clone();
            f(&mut b);
            reconcile_bookings(&[], &[b], &[])
        };
        assert_eq!(
            with(&|b| b.id.clear()),
            Err(BookingsError::BadId { list: List::Master })
        );
        assert_eq!(
            with(&|b| b.id = "i".repeat(MAX_BOOKING_ID + 1)),
            Err(BookingsError::BadId { list: List::Master })
        );
        assert!(with(&|b| b.id = "i".repeat(MAX_BOOKING_ID)).is_ok());
        assert!(matches!(
            with(&|b| b.resource = "r".repeat(MAX_ID + 1)),
            Err(BookingsError::BadResource { .. })
        ));
        assert!(matches!(
            with(&|b| b.requester = "alice".into()),
            Err(BookingsError::BadRequester { .. })
        ));
        assert!(matches!(
            with(&|b| b.requester = format!("did:{}", "k".repeat(MAX_REQUESTER))),
            Err(BookingsError::BadRequester { .. })
        ));
        // The same id twice: once when repeated exactly, refused when the content differs.
        let o = reconcile_bookings(&[], &[], &[ok.clone(), ok.clone()]).unwrap();
        assert_eq!(o.survivors, vec![ok.clone()]);
        let other = n("a", "room", 4, 5);
        assert_eq!(
            reconcile_bookings(&[], &[], &[other, ok]),
            Err(BookingsError::DuplicateId {
                list: List::Nano,
                id: "a".into()
            })
        );
    }

    #[test]
    fn a_retried_reconciliation_notifies_nobody_twice() {
        let mn = [m("m", "room", 0, 2), m("x", "desk", 0, 1)];
        let nn = [n("n", "room", 1, 3), n("x", "desk", 2, 3)];
        let o = reconcile_bookings(&[], &mn, &nn).unwrap();
        let mut log = Notified::new();
        let first = pending_notifications(&o, &log);
        assert_eq!(first, o.notifications);
        assert_eq!(first.len(), 2);
        // Crash after telling the first requester only.
        log.mark(&first[0]);
        let again = reconcile_bookings(&[], &mn, &nn).unwrap();
        assert_eq!(pending_notifications(&again, &log), vec![first[1].clone()]);
        log.mark(&first[1]);
        assert!(pending_notifications(&again, &log).is_empty());
        assert_eq!(log.len(), 2);
        // Once both sides hold the survivors, there is nothing left to do or to tell.
        let settled = reconcile_bookings(&o.survivors, &[], &[]).unwrap();
        assert!(settled.is_quiet());
        assert_eq!(settled.survivors, o.survivors);
    }

    #[test]
    fn the_order_bookings_arrive_in_does_not_matter() {
        let base = vec![m("b0", "room", 0, 1), m("b1", "desk", 0, 1)];
        let mn = vec![m("m1", "room", 1, 3), m("m2", "desk", 2, 4)];
        let nn = vec![
            n("n1", "room", 2, 4),
            n("n2", "room", 3, 5),
            n("n3", "room", 4, 6),
            n("m2", "desk", 2, 5),
            n("n4", "desk", 1, 2),
        ];
        let o = reconcile_bookings(&base, &mn, &nn).unwrap();
        let rev = |v: &[Booking]| v.iter().rev().cloned().collect::<Vec<_>>();
        assert_eq!(
            reconcile_bookings(&rev(&base), &rev(&mn), &rev(&nn)).unwrap(),
            o
        );
        // Through an exchange, interleaved, with redeliveries.
        let mut x = Exchange::new(Bounds::default());
        let mut msgs: Vec<(List, &Booking)> = Vec::new();
        for i in 0..nn.len() {
            msgs.push((List::Nano, &nn[nn.len() - 1 - i]));
            if let Some(b) = mn.get(i) {
                msgs.push((List::Master, b));
                msgs.push((List::Master, b));
            }
            if let Some(b) = base.get(i) {
                msgs.push((List::Base, b));
            }
            msgs.push((List::Nano, &nn[0]));
        }
        for (l, b) in msgs {
            x.receive(l, b.clone()).unwrap();
        }
        assert_eq!(x.reconcile().unwrap(), o);
        let mut small = Exchange::new(Bounds { base: 1, new: 1 });
        small.receive(List::Nano, nn[0].clone()).unwrap();
        small.receive(List::Nano, nn[0].clone()).unwrap();
        assert_eq!(
            small.receive(List::Nano, nn[1].clone()),
            Err(BookingsError::TooMany {
                list: List::Nano,
                max: 1
            })
        );
    }

    #[test]
    fn full_lists_reconcile_quickly() {
        // Full lists on three resources, every nano booking overlapping a master one.
        let hour = |i: usize| i as u64;
        let res = |i: usize| ["room", "desk", "van"][i % 3];
        let base: Vec<Booking> = (0..MAX_BASE_BOOKINGS)
            .map(|i| m(&format!("b{i}"), res(i), 2 * hour(i), 2 * hour(i) + 1))
            .collect();
        let off = 2 * MAX_BASE_BOOKINGS;
        let mn: Vec<Booking> = (0..MAX_NEW_BOOKINGS)
            .map(|i| {
                m(
                    &format!("m{i}"),
                    res(i),
                    hour(off + 2 * i),
                    hour(off + 2 * i + 1),
                )
            })
            .collect();
        let nn: Vec<Booking> = (0..MAX_NEW_BOOKINGS)
            .map(|i| {
                n(
                    &format!("n{i}"),
                    res(i),
                    hour(off + 2 * i),
                    hour(off + 2 * i + 2),
                )
            })
            .collect();
        let started = std::time::Instant::now();
        let o = reconcile_bookings(&base, &mn, &nn).unwrap();
        let took = started.elapsed();
        assert_eq!(o.survivors.len(), MAX_BASE_BOOKINGS + MAX_NEW_BOOKINGS);
        assert_eq!(o.notifications.len(), MAX_NEW_BOOKINGS);
        println!("full lists reconciled in {took:?}");
        assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    }
}
