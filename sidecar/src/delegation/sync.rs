//! The exchange of booking lists between a nano and its master, in rounds the master leads
//! (pure: no clock, no I/O; the glue persists both sides' state and carries the messages over
//! the critical DTN outbox, which may delay, repeat or lose none of them but deliver them in
//! any order with respect to each other).
//!
//! Both sides hold the same base (the bookings of the nano's resources agreed at the last
//! round, `epoch`) and the bookings each took since: the nano the ones requesters brought to
//! it directly, the master the ones it took in proxy. A round:
//!
//! 1. The nano [`SyncMessage::Report`]s its new bookings for its epoch — at every start, and
//!    whenever it takes one (a newer report replaces one still queued).
//! 2. The master settles a round when it has something to settle and is not waiting: on a
//!    proxy booking (with the nano's last report of this epoch, possibly none) or on a report
//!    of this epoch. It runs [`reconcile_bookings`] on (base, its new bookings, the nano's
//!    reported ones), applies its side of the outcome, adopts the survivors as the next base
//!    (epoch + 1) and sends [`SyncMessage::Settle`] with exactly the two lists it used. It
//!    then *waits*: it settles nothing more until the nano reports at the new epoch (which
//!    says it adopted this round); proxy bookings taken meanwhile wait for the next round.
//! 3. The nano, on the settle of its epoch, checks that every booking the master says it
//!    reported is one it holds as new, runs the same [`reconcile_bookings`] on the same lists
//!    (same outcome: the function is pure and order-free), applies its side, adopts the
//!    survivors (epoch + 1), keeps as new those it took since its report, and reports again.
//! 4. A settle of an older epoch is a redelivery: ignored. A report one epoch behind while
//!    waiting means the settle has not arrived (or was lost with a crash before it was
//!    queued): the master sends it again (the same bytes, under the same outbox key).
//!
//! The master wins every overlap (see [`reconcile_bookings`]); the side whose booking is
//! cancelled tells its requester ([`Cancelled::tell`]), once: its requester dealt with it.

use serde::{Deserialize, Serialize};

use super::base::Side;
use super::bookings::{
    self, reconcile_bookings, BookingOutcome, BookingStep, BookingsError, CancelReason, Slot,
};
use std::collections::BTreeSet;

use crate::resources::booking::Booking;
use crate::resources::{BookingId, Did};
use crate::time::Timestamp;

/// Bookings one list of a message holds at most (a side with more new bookings since the
/// last round takes no more until a round settles them).
pub const MAX_SYNC_BOOKINGS: usize = 1024;
/// Largest encoded message (a booking with its report and usage is under 1 KiB).
pub const MAX_SYNC_BYTES: usize = 2 * MAX_SYNC_BOOKINGS * 1024 + 1024;

/// What the two sides send each other (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMessage {
    /// Nano → master: the bookings the nano took since the base of `epoch`, and the base
    /// bookings that ended on its side (cancelled, settled).
    Report {
        epoch: u64,
        taken: Vec<Booking>,
        gone: Vec<BookingId>,
    },
    /// Master → nano: round `epoch`, reconciled from exactly these lists, after dropping the
    /// `gone` bookings from the base.
    Settle {
        epoch: u64,
        master: Vec<Booking>,
        nano: Vec<Booking>,
        gone: Vec<BookingId>,
    },
}

/// Why a message or a round is refused (nothing changes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("{0} bytes (at most {MAX_SYNC_BYTES})")]
    TooLarge(usize),
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("a list of {0} bookings (at most {MAX_SYNC_BOOKINGS})")]
    TooMany(usize),
    #[error("booking {id}: {why}")]
    NotOfTheNano { id: String, why: &'static str },
    #[error("a report is sent by the nano only, a settle by the master only")]
    WrongDirection,
    #[error("the master says the nano reported booking {0}, which the nano does not hold as new")]
    NotReported(String),
    #[error("epoch {got} is ahead of ours ({ours}): a round we never saw")]
    Ahead { got: u64, ours: u64 },
    #[error("{0}")]
    Bookings(#[from] BookingsError),
}

impl SyncMessage {
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain structs into a Vec cannot fail.
        cbor4ii::serde::to_vec(Vec::new(), self).unwrap_or_default()
    }

    /// Parses a message about `nano`'s resources, bounded and checked: list sizes, and every
    /// booking of a resource of the nano's with the nano as provider and a valid slot.
    pub fn decode(bytes: &[u8], nano: &Did) -> Result<SyncMessage, SyncError> {
        if bytes.len() > MAX_SYNC_BYTES {
            return Err(SyncError::TooLarge(bytes.len()));
        }
        let m: SyncMessage =
            cbor4ii::serde::from_slice(bytes).map_err(|e| SyncError::Malformed(e.to_string()))?;
        for list in m.lists() {
            check_list(list, nano)?;
        }
        let gone = match &m {
            SyncMessage::Report { gone, .. } | SyncMessage::Settle { gone, .. } => gone.len(),
        };
        if gone > MAX_SYNC_BOOKINGS {
            return Err(SyncError::TooMany(gone));
        }
        Ok(m)
    }

    fn lists(&self) -> Vec<&Vec<Booking>> {
        match self {
            SyncMessage::Report { taken, .. } => vec![taken],
            SyncMessage::Settle { master, nano, .. } => vec![master, nano],
        }
    }
}

fn check_list(list: &[Booking], nano: &Did) -> Result<(), SyncError> {
    if list.len() > MAX_SYNC_BOOKINGS {
        return Err(SyncError::TooMany(list.len()));
    }
    for b in list {
        let why = if b.provider != *nano || b.resource.owner != *nano {
            Some("not a booking of the nano's resource")
        } else if b.id.consumer != b.consumer {
            Some("its id is not its consumer's")
        } else if !b.window.is_valid() {
            Some("an empty window")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(SyncError::NotOfTheNano {
                id: b.id.to_string(),
                why,
            });
        }
    }
    Ok(())
}

/// A booking as [`reconcile_bookings`] sees it: id `<consumer>#<nonce>`, the resource id, the
/// booked window, the consumer as requester, who took it, when it was requested.
pub fn slot_booking(b: &Booking, taken_by: Side) -> bookings::Booking {
    bookings::Booking {
        id: b.id.to_string(),
        resource: b.resource.id.as_str().to_string(),
        slot: Slot {
            start: b.window.start(),
            end: b.window.end(),
        },
        requester: b.consumer.as_str().to_string(),
        taken_by,
        taken_at: Timestamp::from_millis(b.requested_at_ms),
    }
}

/// A booking that does not stand, for the side applying a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancelled {
    pub booking: Booking,
    /// Whose version it is.
    pub from: Side,
    pub reason: CancelReason,
    /// Whether this side tells the requester (its version, so its requester dealt with it).
    pub tell: bool,
    /// Whether this side holds the booking (it cancels it; otherwise it records it cancelled,
    /// unless another version survives under its id).
    pub held: bool,
    /// Another booking survives under the same id (a consumer that reused a nonce on both
    /// sides): the record is the survivor's, nothing is recorded for this one.
    pub id_survives: bool,
}

/// One side's part of a settled round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    /// The round's epoch (the base it started from).
    pub epoch: u64,
    /// The bookings both sides hold from now on (the next base).
    pub survivors: Vec<Booking>,
    /// Bookings this side now holds as given: the other side's survivors, or the master's
    /// version under an id it held another booking under.
    pub put: Vec<Booking>,
    /// Every booking the round cancelled, in the outcome's order.
    pub cancelled: Vec<Cancelled>,
}

/// What [`reconcile_bookings`] decides on these lists, as `side` applies it.
fn settle(
    side: Side,
    epoch: u64,
    base: &[Booking],
    master: &[Booking],
    nano: &[Booking],
) -> Result<Settled, SyncError> {
    if base.len() > bookings::MAX_BASE_BOOKINGS {
        return Err(SyncError::TooMany(base.len()));
    }
    let conv = |list: &[Booking], s: Side| -> Vec<bookings::Booking> {
        list.iter().map(|b| slot_booking(b, s)).collect()
    };
    let outcome: BookingOutcome = reconcile_bookings(
        &conv(base, Side::Master),
        &conv(master, Side::Master),
        &conv(nano, Side::Nano),
    )?;
    // Full bookings by (list, id): the master side's version of an id first.
    let find = |id: &str, from: Side| -> Option<Booking> {
        let lists: [&[Booking]; 3] = match from {
            Side::Master => [master, base, nano],
            Side::Nano => [nano, base, master],
        };
        lists
            .iter()
            .flat_map(|l| l.iter())
            .find(|b| b.id.to_string() == id)
            .cloned()
    };
    // The survivor's record: the booking of the lists whose conversion is exactly it (the
    // master side's first, as `reconcile_bookings` keeps the master's record).
    let survivor_of = |s: &bookings::Booking| {
        [master, base, nano]
            .iter()
            .flat_map(|l| l.iter())
            .find(|b| slot_booking(b, s.taken_by) == *s)
            .cloned()
    };
    let survivors: Vec<Booking> = outcome.survivors.iter().filter_map(survivor_of).collect();
    let steps = match side {
        Side::Master => &outcome.to_master,
        Side::Nano => &outcome.to_nano,
    };
    let put: Vec<Booking> = steps
        .iter()
        .filter_map(|s| match s {
            BookingStep::Put(b) => survivor_of(b),
            BookingStep::Cancel(_) => None,
        })
        .collect();
    let in_base = |id: &str| base.iter().any(|b| b.id.to_string() == id);
    let cancelled = outcome
        .cancelled
        .iter()
        .filter_map(|c| {
            let booking = find(&c.booking.id, c.from)?;
            Some(Cancelled {
                // Its own version, or a base booking (the base counts as the master's).
                held: c.from == side || (side == Side::Nano && in_base(&c.booking.id)),
                id_survives: outcome.survivors.iter().any(|s| s.id == c.booking.id),
                booking,
                from: c.from,
                reason: c.reason.clone(),
                tell: c.from == side,
            })
        })
        .collect();
    Ok(Settled {
        epoch,
        survivors,
        put,
        cancelled,
    })
}

/// The master's side of the exchange with one nano (persisted by the glue).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterSync {
    pub epoch: u64,
    pub base: Vec<Booking>,
    /// Taken in proxy since the base.
    pub new: Vec<Booking>,
    /// The nano's last report of this epoch.
    pub report: Vec<Booking>,
    /// A settle was sent and the nano has not reported at the new epoch yet.
    pub awaiting: bool,
    /// That settle, sent again when the nano reports one epoch behind.
    pub last: Option<SyncMessage>,
}

/// What the master does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterStep {
    /// Nothing to send.
    Quiet,
    /// Send this settle (again).
    Resend(SyncMessage),
    /// A round was settled: apply it, then send the settle.
    Settled(Box<(SyncMessage, Settled)>),
}

impl MasterSync {
    /// Whether another proxy booking fits the next round.
    pub fn has_room(&self) -> bool {
        self.new.len() < MAX_SYNC_BOOKINGS
    }

    /// A booking taken in proxy (the caller checked [`MasterSync::has_room`]); `gone`: the
    /// base bookings ended here.
    pub fn take(
        &mut self,
        b: Booking,
        gone: &BTreeSet<BookingId>,
    ) -> Result<MasterStep, SyncError> {
        add_new(&mut self.new, b)?;
        if self.awaiting {
            Ok(MasterStep::Quiet)
        } else {
            self.settle(gone, &BTreeSet::new())
        }
    }

    /// A report from the nano; `gone`: the base bookings ended here.
    pub fn on_report(
        &mut self,
        epoch: u64,
        taken: Vec<Booking>,
        reported_gone: &[BookingId],
        gone: &BTreeSet<BookingId>,
    ) -> Result<MasterStep, SyncError> {
        if epoch > self.epoch {
            return Err(SyncError::Ahead {
                got: epoch,
                ours: self.epoch,
            });
        }
        if epoch < self.epoch {
            return Ok(
                match (&self.last, self.awaiting && epoch + 1 == self.epoch) {
                    (Some(m), true) => MasterStep::Resend(m.clone()),
                    _ => MasterStep::Quiet,
                },
            );
        }
        self.awaiting = false;
        self.report = taken;
        let theirs: BTreeSet<BookingId> = reported_gone.iter().cloned().collect();
        let ends = self
            .base
            .iter()
            .any(|b| gone.contains(&b.id) || theirs.contains(&b.id));
        if self.new.is_empty() && self.report.is_empty() && !ends {
            return Ok(MasterStep::Quiet);
        }
        self.settle(gone, &theirs)
    }

    fn settle(
        &mut self,
        gone: &BTreeSet<BookingId>,
        theirs: &BTreeSet<BookingId>,
    ) -> Result<MasterStep, SyncError> {
        // The base bookings that ended on either side, at most a message's worth per round.
        let gone: Vec<BookingId> = self
            .base
            .iter()
            .map(|b| &b.id)
            .filter(|id| gone.contains(*id) || theirs.contains(*id))
            .take(MAX_SYNC_BOOKINGS)
            .cloned()
            .collect();
        let base = without(&self.base, &gone);
        let s = settle(Side::Master, self.epoch, &base, &self.new, &self.report)?;
        let msg = SyncMessage::Settle {
            epoch: self.epoch,
            master: std::mem::take(&mut self.new),
            nano: std::mem::take(&mut self.report),
            gone,
        };
        self.epoch += 1;
        self.base = s.survivors.clone();
        self.awaiting = true;
        self.last = Some(msg.clone());
        Ok(MasterStep::Settled(Box::new((msg, s))))
    }
}

/// Adds `b` to a side's new bookings (replacing a version under its id), within the bound.
fn add_new(new: &mut Vec<Booking>, b: Booking) -> Result<(), SyncError> {
    new.retain(|x| x.id != b.id);
    if new.len() >= MAX_SYNC_BOOKINGS {
        return Err(SyncError::TooMany(new.len() + 1));
    }
    new.push(b);
    Ok(())
}

/// `base` without the bookings of `gone`.
fn without(base: &[Booking], gone: &[BookingId]) -> Vec<Booking> {
    base.iter()
        .filter(|b| !gone.contains(&b.id))
        .cloned()
        .collect()
}

/// The nano's side of the exchange (persisted by the glue).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NanoSync {
    pub epoch: u64,
    pub base: Vec<Booking>,
    /// Taken here since the base.
    pub new: Vec<Booking>,
}

/// What the nano does with a settle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NanoStep {
    /// A redelivery of a round already applied.
    Stale,
    /// Apply this round, then send the report.
    Settled(Box<(Settled, SyncMessage)>),
}

impl NanoSync {
    /// The report of what it holds as new, and of the base bookings in `gone` (ended here).
    pub fn report(&self, gone: &BTreeSet<BookingId>) -> SyncMessage {
        SyncMessage::Report {
            epoch: self.epoch,
            taken: self.new.clone(),
            gone: self
                .base
                .iter()
                .map(|b| &b.id)
                .filter(|id| gone.contains(*id))
                .take(MAX_SYNC_BOOKINGS)
                .cloned()
                .collect(),
        }
    }

    /// Whether another booking fits the next report.
    pub fn has_room(&self) -> bool {
        self.new.len() < MAX_SYNC_BOOKINGS
    }

    /// A booking taken here; the report to send.
    pub fn take(
        &mut self,
        b: Booking,
        gone: &BTreeSet<BookingId>,
    ) -> Result<SyncMessage, SyncError> {
        add_new(&mut self.new, b)?;
        Ok(self.report(gone))
    }

    /// The master's settle of round `epoch`; `gone_here`: the base bookings ended here (for
    /// the next report).
    pub fn on_settle(
        &mut self,
        epoch: u64,
        master: &[Booking],
        nano: &[Booking],
        gone: &[BookingId],
        gone_here: &BTreeSet<BookingId>,
    ) -> Result<NanoStep, SyncError> {
        if epoch < self.epoch {
            return Ok(NanoStep::Stale);
        }
        if epoch > self.epoch {
            return Err(SyncError::Ahead {
                got: epoch,
                ours: self.epoch,
            });
        }
        for b in nano {
            let mine = self
                .new
                .iter()
                .any(|x| slot_booking(x, Side::Nano) == slot_booking(b, Side::Nano));
            if !mine {
                return Err(SyncError::NotReported(b.id.to_string()));
            }
        }
        let base = without(&self.base, gone);
        let s = settle(Side::Nano, epoch, &base, master, nano)?;
        self.epoch += 1;
        self.base = s.survivors.clone();
        self.new.retain(|x| !nano.iter().any(|b| b.id == x.id));
        Ok(NanoStep::Settled(Box::new((s, self.report(gone_here)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeIdentity;
    use crate::resources::booking::State;
    use crate::resources::resource::tests::{sample, w};
    use crate::resources::{BookingId, ResourceId, ResourceRef};

    struct World {
        nano: Did,
        consumers: Vec<Did>,
    }

    fn world() -> World {
        World {
            nano: Did::of(&NodeIdentity::generate()),
            consumers: (0..3).map(|_| Did::of(&NodeIdentity::generate())).collect(),
        }
    }

    /// Booking `nonce` of consumer `c` on resource `r` for `[start, end)` seconds.
    fn bk(wd: &World, c: usize, nonce: u64, r: &str, start: u64, end: u64) -> Booking {
        let consumer = wd.consumers[c].clone();
        let resource = sample(&wd.nano, r);
        Booking {
            id: BookingId {
                consumer: consumer.clone(),
                nonce,
            },
            resource: ResourceRef {
                owner: wd.nano.clone(),
                id: ResourceId::parse(r).unwrap(),
            },
            consumer,
            provider: wd.nano.clone(),
            window: w(start * 1000, end * 1000),
            units: 1,
            unit_price: resource.price_per_unit,
            state: State::Confirmed,
            requested_at_ms: nonce,
            updated_at_ms: nonce,
            report: None,
            usage: None,
        }
    }

    fn none() -> BTreeSet<BookingId> {
        BTreeSet::new()
    }

    fn settled(step: MasterStep) -> (SyncMessage, Settled) {
        match step {
            MasterStep::Settled(b) => *b,
            other => panic!("not settled: {other:?}"),
        }
    }

    fn apply_at_nano(n: &mut NanoSync, msg: &SyncMessage) -> NanoStep {
        let SyncMessage::Settle {
            epoch,
            master,
            nano,
            gone,
        } = msg
        else {
            panic!("not a settle");
        };
        n.on_settle(*epoch, master, nano, gone, &none()).unwrap()
    }

    fn report_at_master(m: &mut MasterSync, msg: &SyncMessage) -> MasterStep {
        let SyncMessage::Report { epoch, taken, gone } = msg else {
            panic!("not a report");
        };
        m.on_report(*epoch, taken.clone(), gone, &none()).unwrap()
    }

    #[test]
    fn split_brain_both_orders_end_in_the_same_state_with_one_cancellation() {
        let wd = world();
        let proxy = bk(&wd, 0, 1, "cam", 100, 200);
        let direct = bk(&wd, 1, 2, "cam", 150, 250);
        let apart = bk(&wd, 2, 3, "cam", 300, 400);
        // Order 1: the master's settle reaches the nano before its report reaches the master.
        // Order 2: the nano's report reaches the master first.
        for report_first in [false, true] {
            let (mut m, mut n) = (MasterSync::default(), NanoSync::default());
            let first = settled(m.take(proxy.clone(), &none()).unwrap());
            assert_eq!(first.1.put, Vec::<Booking>::new());
            n.take(direct.clone(), &none()).unwrap();
            let report = n.take(apart.clone(), &none()).unwrap();
            let mut cancelled = Vec::new();
            let mut notified = 0;
            if report_first {
                // One epoch behind while waiting: the settle is sent again, nothing decided.
                assert_eq!(
                    report_at_master(&mut m, &report),
                    MasterStep::Resend(first.0.clone())
                );
            }
            let NanoStep::Settled(b) = apply_at_nano(&mut n, &first.0) else {
                panic!("stale")
            };
            let (s0, report1) = *b;
            assert_eq!(
                s0.put,
                vec![proxy.clone()],
                "the proxy booking reaches the nano"
            );
            // A redelivered settle changes nothing.
            assert_eq!(apply_at_nano(&mut n, &first.0), NanoStep::Stale);
            let (msg1, ms1) = settled(report_at_master(&mut m, &report1));
            for c in &ms1.cancelled {
                notified += usize::from(c.tell);
                cancelled.push((c.booking.id.clone(), c.held));
            }
            assert_eq!(
                ms1.put,
                vec![apart.clone()],
                "the master holds the nano's survivor"
            );
            let NanoStep::Settled(b) = apply_at_nano(&mut n, &msg1) else {
                panic!("stale")
            };
            let (ns1, report2) = *b;
            for c in &ns1.cancelled {
                notified += usize::from(c.tell);
            }
            assert_eq!(ns1.cancelled.len(), 1);
            assert_eq!(ns1.cancelled[0].booking, direct);
            assert!(ns1.cancelled[0].tell && ns1.cancelled[0].held);
            assert!(matches!(
                ns1.cancelled[0].reason,
                CancelReason::OverlapsMaster { .. }
            ));
            // The master records it without telling anyone: the nano's requester dealt with
            // the nano.
            assert_eq!(cancelled, vec![(direct.id.clone(), false)]);
            assert_eq!(notified, 1, "exactly one notification");
            assert_eq!(m.base, n.base, "both hold the survivors");
            assert_eq!(
                m.base.iter().map(|b| b.id.nonce).collect::<Vec<_>>(),
                [1, 3]
            );
            // The nano's next report (nothing new) ends the wait; nothing more to settle.
            assert_eq!(report_at_master(&mut m, &report2), MasterStep::Quiet);
            assert!(!m.awaiting && n.new.is_empty());
        }
    }

    #[test]
    fn bookings_taken_after_a_report_wait_for_the_next_round() {
        let wd = world();
        let (mut m, mut n) = (MasterSync::default(), NanoSync::default());
        let early = bk(&wd, 0, 1, "cam", 0, 10);
        let late = bk(&wd, 1, 2, "cam", 5, 15);
        let report = n.take(early.clone(), &none()).unwrap();
        let (msg, s) = settled(report_at_master(&mut m, &report));
        assert_eq!(s.put, vec![early.clone()]);
        // Taken after the report, before the settle arrives: kept as new, not judged.
        n.take(late.clone(), &none()).unwrap();
        let NanoStep::Settled(b) = apply_at_nano(&mut n, &msg) else {
            panic!()
        };
        let (ns, next) = *b;
        assert!(ns.cancelled.is_empty());
        assert_eq!(n.new, vec![late.clone()]);
        // The next round cancels it: it overlaps a base booking.
        let (msg2, ms2) = settled(report_at_master(&mut m, &next));
        assert_eq!(ms2.cancelled.len(), 1);
        assert!(!ms2.cancelled[0].tell);
        let NanoStep::Settled(b) = apply_at_nano(&mut n, &msg2) else {
            panic!()
        };
        assert_eq!(b.0.cancelled.len(), 1);
        assert!(b.0.cancelled[0].tell, "the nano tells its requester");
        assert_eq!(m.base, n.base);
    }

    #[test]
    fn proxy_bookings_taken_while_waiting_go_in_the_next_round() {
        let wd = world();
        let (mut m, mut n) = (MasterSync::default(), NanoSync::default());
        let (a, b2) = (bk(&wd, 0, 1, "cam", 0, 10), bk(&wd, 1, 2, "cam", 20, 30));
        let (first, _) = settled(m.take(a.clone(), &none()).unwrap());
        assert_eq!(
            m.take(b2.clone(), &none()).unwrap(),
            MasterStep::Quiet,
            "waiting"
        );
        let NanoStep::Settled(x) = apply_at_nano(&mut n, &first) else {
            panic!()
        };
        let (msg, s) = settled(report_at_master(&mut m, &x.1));
        assert_eq!(s.put, Vec::<Booking>::new());
        let NanoStep::Settled(y) = apply_at_nano(&mut n, &msg) else {
            panic!()
        };
        assert_eq!(y.0.put, vec![b2.clone()]);
        assert_eq!(n.base, vec![a, b2]);
    }

    #[test]
    fn a_base_booking_that_ended_frees_its_slot_on_both_sides() {
        let wd = world();
        let (mut m, mut n) = (MasterSync::default(), NanoSync::default());
        let old = bk(&wd, 0, 1, "cam", 0, 10);
        let (first, _) = settled(m.take(old.clone(), &none()).unwrap());
        let NanoStep::Settled(x) = apply_at_nano(&mut n, &first) else {
            panic!()
        };
        assert_eq!(report_at_master(&mut m, &x.1), MasterStep::Quiet);
        // Its consumer cancelled it (the step reached both); the nano takes the slot again.
        let ended: BTreeSet<BookingId> = [old.id.clone()].into();
        let again = bk(&wd, 1, 2, "cam", 5, 15);
        let report = n.take(again.clone(), &ended).unwrap();
        let SyncMessage::Report { epoch, taken, gone } = &report else {
            panic!()
        };
        assert_eq!(gone, &vec![old.id.clone()]);
        let (msg, s) = settled(m.on_report(*epoch, taken.clone(), gone, &ended).unwrap());
        assert!(s.cancelled.is_empty(), "the ended booking blocks nobody");
        let NanoStep::Settled(y) = apply_at_nano(&mut n, &msg) else {
            panic!()
        };
        assert!(y.0.cancelled.is_empty());
        assert_eq!(m.base, vec![again.clone()]);
        assert_eq!(n.base, m.base);
    }

    #[test]
    fn forged_or_foreign_messages_are_refused_whole() {
        let wd = world();
        let mut n = NanoSync::default();
        let b = bk(&wd, 0, 1, "cam", 0, 10);
        // The master claims the nano reported a booking it never took.
        assert_eq!(
            n.on_settle(0, &[], std::slice::from_ref(&b), &[], &none()),
            Err(SyncError::NotReported(b.id.to_string()))
        );
        assert_eq!(
            n.on_settle(3, &[], &[], &[], &none()),
            Err(SyncError::Ahead { got: 3, ours: 0 })
        );
        let mut m = MasterSync::default();
        assert!(matches!(
            m.on_report(1, vec![], &[], &none()),
            Err(SyncError::Ahead { .. })
        ));
        // Decoding checks every booking against the nano.
        let msg = SyncMessage::Report {
            epoch: 0,
            taken: vec![b.clone()],
            gone: vec![],
        };
        assert_eq!(
            SyncMessage::decode(&msg.encode(), &wd.nano),
            Ok(msg.clone())
        );
        let other = Did::of(&NodeIdentity::generate());
        assert!(matches!(
            SyncMessage::decode(&msg.encode(), &other),
            Err(SyncError::NotOfTheNano { .. })
        ));
        let mut stolen = b.clone();
        stolen.id.consumer = other;
        let msg = SyncMessage::Report {
            epoch: 0,
            taken: vec![stolen],
            gone: vec![],
        };
        assert!(SyncMessage::decode(&msg.encode(), &wd.nano).is_err());
        let many = SyncMessage::Report {
            epoch: 0,
            taken: vec![b; MAX_SYNC_BOOKINGS + 1],
            gone: vec![],
        };
        assert_eq!(
            SyncMessage::decode(&many.encode(), &wd.nano),
            Err(SyncError::TooMany(MAX_SYNC_BOOKINGS + 1))
        );
        assert!(matches!(
            SyncMessage::decode(&vec![0; MAX_SYNC_BYTES + 1], &wd.nano),
            Err(SyncError::TooLarge(_))
        ));
        assert!(matches!(
            SyncMessage::decode(b"\xa1", &wd.nano),
            Err(SyncError::Malformed(_))
        ));
    }
}
