//! Property tests of the reconciliation of bookings: random booking histories on both sides
//! (three resources, slots on a twelve-hour grid so overlaps are frequent) delivered in random
//! orders. For every case:
//!
//! * (a) order independence: each list shuffled, with redeliveries, and all bookings received
//!   one by one through an [`Exchange`] in a random interleaving, give the same outcome;
//! * (b) the master's bookings all survive, as the master holds them;
//! * (c) no two survivors of the same resource overlap, and every survivor's slot is valid;
//! * (d) every cancelled booking has exactly one notification, to its requester, and no
//!   survivor is notified; nothing of the nano's disappears without a cancellation, and every
//!   cancellation's reason holds; once each side applies its steps, both hold the survivors;
//! * (e) idempotence: the survivors reconciled against no new bookings change nothing, and a
//!   reconciliation retried with the notification log notifies nobody again.
//!
//! The honest run has a nano that took only bookings free in its own view (so its bookings are
//! cancelled only where they overlap the master's); the hostile run's nano also overlaps its
//! own bookings, reuses the master's ids, copies the master's bookings, forges the master as
//! taker and sends empty slots.
//!
//! Cases per property: 1024, or `PROPTEST_CASES`.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::time::Timestamp;

const HOUR: u64 = 3_600_000;

/// A booking to be: resource, start hour, length in hours, requester, and a pick of what the
/// hostile nano does with it.
type Raw = (u8, u8, u8, u8, u8);

fn raws(max: usize) -> impl Strategy<Value = Vec<Raw>> {
    proptest::collection::vec((0u8..3, 0u8..12, 0u8..5, 0u8..4, any::<u8>()), 0..max)
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

fn booking(id: String, (r, start, len, who, _): Raw, side: Side, at: u64) -> Booking {
    let start = u64::from(start) * HOUR;
    Booking {
        id,
        resource: format!("r{r}"),
        slot: Slot {
            start: Timestamp::from_millis(start),
            end: Timestamp::from_millis(start + u64::from(len.max(1)) * HOUR),
        },
        requester: format!("did:key:u{who}"),
        taken_by: side,
        taken_at: Timestamp::from_millis(at),
    }
}

fn free(b: &Booking, taken: &[Booking]) -> bool {
    taken
        .iter()
        .all(|t| t.resource != b.resource || !t.slot.overlaps(&b.slot))
}

/// Bookings taken by an honest side: each free in `seen` (what the side already holds).
fn honest(prefix: &str, raws: &[Raw], side: Side, seen: &mut Vec<Booking>) -> Vec<Booking> {
    let mut out = Vec::new();
    for (i, raw) in raws.iter().enumerate() {
        let b = booking(format!("{prefix}{i}"), *raw, side, i as u64);
        if free(&b, seen) {
            seen.push(b.clone());
            out.push(b);
        }
    }
    out
}

/// The hostile nano's bookings: ids unique (a list repeating an id with another content is
/// refused whole, see the unit tests), anything else goes.
fn hostile(raws: &[Raw], master_side: &[Booking]) -> Vec<Booking> {
    let mut out: Vec<Booking> = Vec::new();
    for (i, raw) in raws.iter().enumerate() {
        let (_, start, len, _, pick) = *raw;
        let victim = (!master_side.is_empty())
            .then(|| master_side[usize::from(pick) % master_side.len()].clone());
        let mut b = booking(format!("n{i}"), *raw, Side::Nano, i as u64);
        match (pick % 8, victim) {
            (0, Some(v)) => b = v, // a copy of the master's booking
            (1, Some(v)) => {
                // The same booking, recorded differently.
                b = Booking {
                    taken_by: Side::Nano,
                    taken_at: Timestamp::from_millis(99),
                    ..v
                }
            }
            (2, Some(v)) => b.id = v.id, // the master's id, another booking
            (3, _) => b.taken_by = Side::Master,
            (4, _) => {
                let s = u64::from(start) * HOUR;
                b.slot.end = Timestamp::from_millis(s.saturating_sub(u64::from(len) * HOUR));
            }
            _ => {}
        }
        if out.iter().all(|o| o.id != b.id) {
            out.push(b);
        }
    }
    out
}

struct Rng(u64);

impl Rng {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }

    /// `v` shuffled, with some bookings delivered twice.
    fn delivered<T: Clone>(&mut self, v: &[T]) -> Vec<T> {
        let mut out = v.to_vec();
        for b in v {
            if self.next(4) == 0 {
                out.push(b.clone());
            }
        }
        for i in (1..out.len()).rev() {
            out.swap(i, self.next(i + 1));
        }
        out
    }
}

fn check(base: &[Booking], mn: &[Booking], nn: &[Booking], honest_nano: bool, seed: u64) {
    let o = reconcile_bookings(base, mn, nn).expect("well-formed lists");
    let mut rng = Rng(seed);

    // (a) order independence.
    for _ in 0..3 {
        let again =
            reconcile_bookings(&rng.delivered(base), &rng.delivered(mn), &rng.delivered(nn));
        assert_eq!(again.as_ref(), Ok(&o), "shuffled lists");
    }
    let mut msgs: Vec<(List, Booking)> = Vec::new();
    for (list, v) in [(List::Base, base), (List::Master, mn), (List::Nano, nn)] {
        msgs.extend(v.iter().map(|b| (list, b.clone())));
    }
    let mut x = Exchange::new(Bounds::default());
    for (list, b) in rng.delivered(&msgs) {
        x.receive(list, b).expect("within bounds");
    }
    assert_eq!(x.reconcile().as_ref(), Ok(&o), "received one by one");

    let survivors: Held = o
        .survivors
        .iter()
        .map(|b| (b.id.clone(), b.clone()))
        .collect();
    assert_eq!(survivors.len(), o.survivors.len(), "survivor ids unique");
    let master_side = held(base, mn);

    // (b) the master's bookings all survive.
    for (id, b) in &master_side {
        assert_eq!(survivors.get(id), Some(b), "master's {id} survives");
    }

    // (c) no two survivors of a resource overlap.
    for (i, a) in o.survivors.iter().enumerate() {
        assert!(a.slot.is_valid(), "{a:?}");
        for b in &o.survivors[i + 1..] {
            assert!(
                a.resource != b.resource || !a.slot.overlaps(&b.slot),
                "{a:?} overlaps {b:?}"
            );
        }
    }

    // (d) exactly one notification per cancelled booking, to its requester; no survivor told.
    assert_eq!(o.notifications.len(), o.cancelled.len());
    let keys: BTreeSet<(BookingId, Side)> = o.notifications.iter().map(|n| n.key()).collect();
    assert_eq!(
        keys.len(),
        o.notifications.len(),
        "one notification per booking"
    );
    for (c, n) in o.cancelled.iter().zip(&o.notifications) {
        assert_eq!(n.to, c.booking.requester);
        assert_eq!(n.booking, c.booking.id);
        assert_eq!(
            (n.from, &n.resource, n.slot),
            (c.from, &c.booking.resource, c.booking.slot)
        );
        assert_eq!(n.reason, c.reason);
        assert!(
            o.survivors.iter().all(|s| !s.same_as(&c.booking)),
            "a survivor notified: {c:?}"
        );
        assert_eq!(c.from, Side::Nano, "an honest master loses nothing: {c:?}");
        assert!(nn.contains(&c.booking), "cancelled as the nano sent it");
        let overlapping = |with: &str| {
            let w = &survivors[with];
            w.resource == c.booking.resource && w.slot.overlaps(&c.booking.slot)
        };
        match &c.reason {
            CancelReason::OverlapsMaster { with } => {
                assert!(master_side.contains_key(with) && overlapping(with), "{c:?}")
            }
            CancelReason::OverlapsNano { with } => {
                assert!(
                    !master_side.contains_key(with) && overlapping(with),
                    "{c:?}"
                );
                let w = &survivors[with];
                assert!((w.slot.start, &w.id) < (c.booking.slot.start, &c.booking.id));
            }
            CancelReason::ConflictingId => {
                assert!(!master_side[&c.booking.id].same_as(&c.booking))
            }
            CancelReason::Invalid(Defect::EmptySlot) => assert!(!c.booking.slot.is_valid()),
            CancelReason::Invalid(Defect::ForgedSide) => {
                assert_eq!(c.booking.taken_by, Side::Master)
            }
        }
        if honest_nano {
            assert!(
                matches!(c.reason, CancelReason::OverlapsMaster { .. }),
                "an honest nano booking cancelled without a master overlap: {c:?}"
            );
        }
    }
    // Nothing of the nano's is lost silently.
    for b in nn {
        let kept = o.survivors.iter().any(|s| s.same_as(b));
        let told = o
            .cancelled
            .iter()
            .any(|c| c.from == Side::Nano && &c.booking == b);
        assert!(kept != told, "{b:?}: kept {kept}, told {told}");
    }
    if honest_nano {
        let master: Vec<Booking> = master_side.values().cloned().collect();
        for b in nn {
            let kept = o.survivors.contains(b);
            assert_eq!(kept, free(b, &master), "{b:?}");
        }
    }
    // Convergence.
    for (new, steps) in [(mn, &o.to_master), (nn, &o.to_nano)] {
        let mut h = held(base, new);
        for s in steps {
            s.apply(&mut h);
        }
        assert_eq!(h, survivors, "converged");
    }

    // (e) idempotence.
    let settled = reconcile_bookings(&o.survivors, &[], &[]).unwrap();
    assert!(settled.is_quiet(), "{settled:?}");
    assert_eq!(settled.survivors, o.survivors);
    let mut log = Notified::new();
    assert_eq!(pending_notifications(&o, &log), o.notifications);
    // Crash after telling some of them; the retry tells the rest, then nobody.
    for n in o.notifications.iter().step_by(2) {
        log.mark(n);
    }
    let retried = reconcile_bookings(base, mn, nn).unwrap();
    let rest = pending_notifications(&retried, &log);
    assert_eq!(rest.len(), o.notifications.len() / 2);
    for n in &rest {
        assert!(!log.contains(n));
        log.mark(n);
    }
    assert!(pending_notifications(&retried, &log).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn honest_sides_the_master_wins_and_nobody_is_lost(
        base in raws(12),
        master in raws(16),
        nano in raws(16),
        seed in 1u64..,
    ) {
        let mut seen = Vec::new();
        let base = honest("b", &base, Side::Master, &mut seen);
        let mut master_seen = seen.clone();
        let mn = honest("m", &master, Side::Master, &mut master_seen);
        let nn = honest("n", &nano, Side::Nano, &mut seen);
        check(&base, &mn, &nn, true, seed);
    }

    #[test]
    fn a_hostile_nano_wins_nothing_and_loses_nothing_silently(
        base in raws(12),
        master in raws(16),
        nano in raws(24),
        seed in 1u64..,
    ) {
        let mut seen = Vec::new();
        let base = honest("b", &base, Side::Master, &mut seen);
        let mn = honest("m", &master, Side::Master, &mut seen);
        let master_side: Vec<Booking> = held(&base, &mn).into_values().collect();
        let nn = hostile(&nano, &master_side);
        check(&base, &mn, &nn, false, seed);
    }
}
