//! Property tests of the catalogue's lifecycle, the booking state machine and the planner.
//! Case counts: [`CATALOGUE_CASES`], [`BOOKING_CASES`], [`PLANNER_CASES`], [`CODEC_CASES`].

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::booking::{Action, Actor, Booking, Role, State, TransitionError};
use super::catalogue::{Catalogue, Outcome, Refusal};
use super::db;
use super::did::Did;
use super::ids::{BookingId, ResourceId, ResourceRef};
use super::mutation::{Mutation, Op, SignedMutation};
use super::planner;
use super::resource::tests::sample;
use super::usage::{ConfirmedUsage, UsageReport};
use super::window::Window;
use crate::keys::NodeIdentity;
use crate::time::Timestamp;

pub(crate) const CATALOGUE_CASES: u32 = 64;
pub(crate) const BOOKING_CASES: u32 = 256;
pub(crate) const PLANNER_CASES: u32 = 256;
pub(crate) const CODEC_CASES: u32 = 128;

const NOW: Timestamp = Timestamp::from_millis(1_000_000);

/// One resource's history as its owner issues it: a create, updates, maybe a delete, with
/// strictly increasing (not necessarily consecutive) versions.
#[derive(Clone, Debug)]
struct History {
    owner: usize,
    id: String,
    /// Version steps: the first is the create, then updates.
    steps: Vec<u64>,
    delete: bool,
}

fn histories() -> impl Strategy<Value = Vec<History>> {
    // Two owners, up to three resources each.
    proptest::collection::vec(
        (
            0..2usize,
            proptest::collection::vec(1..4u64, 1..5),
            any::<bool>(),
        ),
        1..6,
    )
    .prop_map(|hs| {
        hs.into_iter()
            .enumerate()
            .map(|(i, (owner, steps, delete))| History {
                owner,
                id: format!("r{i}"),
                steps,
                delete,
            })
            .collect()
    })
}

static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn shared_db() -> std::sync::Arc<db::Database> {
    static DB: std::sync::OnceLock<std::sync::Arc<db::Database>> = std::sync::OnceLock::new();
    DB.get_or_init(db::temp).clone()
}

fn signed(owner: &NodeIdentity, id: &str, version: u64, op: &str) -> SignedMutation {
    let did = Did::of(owner);
    let mut r = sample(&did, id);
    r.name = format!("{id} v{version}");
    let op = match op {
        "create" => Op::Create(r),
        "update" => Op::Update(r),
        _ => Op::Delete,
    };
    Mutation {
        owner: did,
        id: ResourceId::parse(id).unwrap(),
        version,
        issued_at_ms: version,
        op,
    }
    .sign(owner)
}

/// The mutations of every history, with the resource each belongs to.
fn issue(owners: &[NodeIdentity], hs: &[History]) -> Vec<(usize, u64, SignedMutation)> {
    let mut out = Vec::new();
    for (h_i, h) in hs.iter().enumerate() {
        let o = &owners[h.owner];
        let mut v = 0;
        for (k, step) in h.steps.iter().enumerate() {
            v += step;
            let op = if k == 0 { "create" } else { "update" };
            out.push((h_i, v, signed(o, &h.id, v, op)));
        }
        if h.delete {
            v += 1;
            out.push((h_i, v, signed(o, &h.id, v, "delete")));
        }
    }
    out
}

fn deliveries() -> impl Strategy<Value = (Vec<History>, Vec<usize>)> {
    histories().prop_flat_map(|hs| {
        let n: usize = hs
            .iter()
            .map(|h| h.steps.len() + usize::from(h.delete))
            .sum();
        // Every mutation at least once, plus duplicates, in any order.
        let extra = proptest::collection::vec(0..n, 0..n * 2);
        (Just(hs), extra).prop_flat_map(move |(hs, extra)| {
            let mut order: Vec<usize> = (0..n).chain(extra).collect();
            order.sort();
            (Just(hs), Just(order).prop_shuffle())
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CATALOGUE_CASES, ..ProptestConfig::default() })]

    /// (a) Whatever the order and duplication of two owners' mutations, the catalogue ends
    /// where applying the last version of each resource once would leave it; no version is
    /// applied twice, nothing is applied after a delete (a later create or update by the
    /// owner is refused), a newer version signed by the other owner is refused, and a second
    /// delivery of everything changes nothing.
    #[test]
    fn catalogue_is_idempotent_and_respects_the_lifecycle((hs, order) in deliveries()) {
        let owners = [NodeIdentity::generate(), NodeIdentity::generate()];
        let me = NodeIdentity::generate();
        // Half the time the first owner is "us": its resources go to the own table.
        let c = Catalogue::new(shared_db(), if hs.len() % 2 == 0 { Did::of(&owners[0]) } else { Did::of(&me) }).unwrap();
        // Cases share the database: fresh owners and per-case ids keep them apart.
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hs: Vec<History> = hs.into_iter().map(|h| History { id: format!("c{case}-{}", h.id), ..h }).collect();
        let ms = issue(&owners, &hs);
        let mut applied: BTreeMap<(usize, u64), u32> = BTreeMap::new();
        let mut deleted: BTreeSet<usize> = BTreeSet::new();
        let mut pending: Vec<usize> = Vec::new();
        let mut deliver = |i: usize, pending: &mut Vec<usize>| {
            let (h, v, m) = &ms[i];
            match c.apply(m, NOW).unwrap() {
                Outcome::Applied => {
                    prop_assert!(!deleted.contains(h), "applied after the delete");
                    *applied.entry((*h, *v)).or_default() += 1;
                    if matches!(m.mutation().op, Op::Delete) {
                        deleted.insert(*h);
                    }
                }
                Outcome::Duplicate => {}
                Outcome::Refused(Refusal::Unknown) => pending.push(i),
                Outcome::Refused(r) => prop_assert!(false, "refused {:?}", r),
            }
            Ok(())
        };
        for &i in &order {
            deliver(i, &mut pending)?;
        }
        // The outbox retries what may succeed later, until nothing changes.
        loop {
            let before = pending.len();
            for i in std::mem::take(&mut pending) {
                deliver(i, &mut pending)?;
            }
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        prop_assert!(applied.values().all(|n| *n == 1), "a version applied twice");
        for (h_i, h) in hs.iter().enumerate() {
            let r = ResourceRef { owner: Did::of(&owners[h.owner]), id: ResourceId::parse(&h.id).unwrap() };
            let last = ms.iter().filter(|(x, _, _)| *x == h_i).map(|(_, v, _)| *v).max().unwrap();
            prop_assert_eq!(c.version(&r).unwrap(), Some(last));
            // The other owner's key cannot move the resource on.
            let forged = signed(&owners[h.owner], &h.id, last + 1, "update")
                .mutation()
                .sign(&owners[1 - h.owner]);
            prop_assert_eq!(
                c.apply(&forged, NOW).unwrap(),
                Outcome::Refused(Refusal::BadSignature)
            );
            prop_assert_eq!(c.version(&r).unwrap(), Some(last));
            if h.delete {
                prop_assert!(c.is_deleted(&r).unwrap());
                prop_assert_eq!(c.get(&r).unwrap(), None);
                // A later create or update by the owner is refused for good.
                for op in ["create", "update"] {
                    let again = signed(&owners[h.owner], &h.id, last + 1, op);
                    prop_assert_eq!(c.apply(&again, NOW).unwrap(), Outcome::Refused(Refusal::Deleted));
                }
            } else {
                let got = c.get(&r).unwrap().unwrap();
                prop_assert_eq!(got.name, format!("{} v{}", h.id, last));
            }
        }
        // Everything again: nothing more is applied.
        for (_, _, m) in &ms {
            prop_assert_eq!(c.apply(m, NOW).unwrap(), Outcome::Duplicate);
        }
    }
}

/// What a random actor attempts.
#[derive(Clone, Copy, Debug)]
enum Attempt {
    Confirm,
    Decline,
    Start,
    Complete { units: u64, honest: bool },
    ConfirmUsage { honest: bool },
    Settle,
    Cancel,
}

fn attempt() -> impl Strategy<Value = Attempt> {
    // Ending moves are rarer, so that runs get far into the lifecycle.
    prop_oneof![
        3 => Just(Attempt::Confirm),
        1 => Just(Attempt::Decline),
        3 => Just(Attempt::Start),
        3 => (0..6u64, any::<bool>()).prop_map(|(units, honest)| Attempt::Complete { units, honest }),
        3 => any::<bool>().prop_map(|honest| Attempt::ConfirmUsage { honest }),
        3 => Just(Attempt::Settle),
        1 => Just(Attempt::Cancel),
    ]
}

const RIGHT_ACTOR: usize = 99;

fn legal(from: State, to: State) -> bool {
    use State::*;
    matches!(
        (from, to),
        (Requested, Confirmed)
            | (Requested, Cancelled)
            | (Confirmed, Running)
            | (Confirmed, Cancelled)
            | (Running, Completed)
            | (Running, Cancelled)
            | (Completed, UsageConfirmed)
            | (UsageConfirmed, Settled)
    )
}

/// (b) Random transition attempts by random actors only ever make legal transitions, by
/// the party allowed to; cancelled and settled are terminal; the report and the confirmed
/// usage are there exactly when the state says so. The runs must also reach every state.
#[test]
fn bookings_never_reach_an_illegal_state() {
    let steps = proptest::collection::vec(
        (
            prop_oneof![1 => 0..4usize, 3 => Just(RIGHT_ACTOR)],
            attempt(),
            0..6_000u64,
        ),
        1..60,
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: BOOKING_CASES,
        ..ProptestConfig::default()
    });
    let reached = std::cell::RefCell::new([0u32; 7]);
    let result = runner.run(&steps, |steps| {
        let visited = booking_case(steps)?;
        let mut r = reached.borrow_mut();
        for s in visited {
            r[s as usize] += 1;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let reached = reached.into_inner();
    eprintln!(
        "booking runs that visited each state: {reached:?} \
         (Requested, Confirmed, Running, Completed, UsageConfirmed, Settled, Cancelled)"
    );
    assert!(
        reached.iter().all(|n| *n > 0),
        "a state never reached: {reached:?}"
    );
}

/// One run; returns the states it visited.
fn booking_case(
    steps: Vec<(usize, Attempt, u64)>,
) -> Result<std::collections::HashSet<State>, TestCaseError> {
    {
        let provider = NodeIdentity::generate();
        let consumer = NodeIdentity::generate();
        let stranger = NodeIdentity::generate();
        let resource = sample(&Did::of(&provider), "gpu");
        let window =
            Window::new(Timestamp::from_millis(2_000), Timestamp::from_millis(5_000)).unwrap();
        let id = BookingId {
            consumer: Did::of(&consumer),
            nonce: 1,
        };
        let mut b =
            Booking::request(id, &resource, window, 4, 10, Timestamp::from_millis(0)).unwrap();
        let mut visited = std::collections::HashSet::from([b.state]);
        let actors = [
            Actor::Party(Did::of(&consumer)),
            Actor::Party(Did::of(&provider)),
            Actor::Party(Did::of(&stranger)),
            Actor::Settlement,
        ];
        for (who, a, t) in steps {
            let now = Timestamp::from_millis(t);
            let action = match a {
                Attempt::Confirm => Action::Confirm,
                Attempt::Decline => Action::Decline,
                Attempt::Start => Action::Start,
                Attempt::Complete { units, honest } => {
                    let signer = if honest { &provider } else { &stranger };
                    let w =
                        Window::new(Timestamp::from_millis(2_000), Timestamp::from_millis(3_000))
                            .unwrap();
                    Action::Complete(UsageReport::sign(
                        signer,
                        b.id.clone(),
                        b.resource.clone(),
                        units,
                        w,
                    ))
                }
                Attempt::ConfirmUsage { honest } => {
                    let report = b.report.clone().unwrap_or_else(|| {
                        UsageReport::sign(&provider, b.id.clone(), b.resource.clone(), 1, window)
                    });
                    let price = if honest {
                        b.unit_price
                    } else {
                        b.unit_price + 1
                    };
                    Action::ConfirmUsage(
                        ConfirmedUsage::confirm(&consumer, &report, price).unwrap(),
                    )
                }
                Attempt::Settle => Action::Settle,
                Attempt::Cancel => Action::Cancel,
            };
            // Most attempts are made by the party the action belongs to, so that runs get
            // far into the lifecycle; the others by anyone, strangers included.
            let who = if who == RIGHT_ACTOR {
                match action.allowed() {
                    Role::Consumer => 0,
                    Role::Provider => 1,
                    Role::Settlement => 3,
                }
            } else {
                who
            };
            let actor = &actors[who];
            match b.step(actor, &action, now) {
                Ok(next) => {
                    prop_assert!(!b.state.is_terminal(), "left terminal {:?}", b.state);
                    prop_assert!(
                        legal(b.state, next.state),
                        "{:?} -> {:?}",
                        b.state,
                        next.state
                    );
                    prop_assert_eq!(b.role_of(actor).unwrap(), action.allowed());
                    let reported = matches!(
                        next.state,
                        State::Completed | State::UsageConfirmed | State::Settled
                    );
                    prop_assert_eq!(next.report.is_some(), reported);
                    let confirmed = matches!(next.state, State::UsageConfirmed | State::Settled);
                    prop_assert_eq!(next.usage.is_some(), confirmed);
                    if let Some(u) = &next.usage {
                        prop_assert_eq!(u.price, u128::from(u.units) * next.unit_price);
                        prop_assert!(u.units <= next.units);
                    }
                    b = next;
                    visited.insert(b.state);
                }
                // Every refusal has its stated reason.
                Err(e) => match e {
                    TransitionError::NotAParty(_) => prop_assert_eq!(who, 2),
                    TransitionError::Forbidden { by, allowed, .. } => {
                        prop_assert_ne!(by, allowed)
                    }
                    TransitionError::InvalidFrom { state, .. } => {
                        prop_assert!(action.next(state).is_none())
                    }
                    TransitionError::WindowOver => {
                        prop_assert!(matches!(action, Action::Start) && now >= window.end())
                    }
                    TransitionError::Report(_) => prop_assert!(matches!(
                        action,
                        Action::Complete(_) | Action::ConfirmUsage(_)
                    )),
                },
            }
        }
        Ok(visited)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: PLANNER_CASES, ..ProptestConfig::default() })]

    /// (c) Requests, confirmations and cancellations in any order never put more units on a
    /// resource at one time than its capacity, and the planner refuses only what would.
    #[test]
    fn the_planner_never_over_books(
        capacity in 1..6u64,
        ops in proptest::collection::vec((0..12_000u64, 1..4_000u64, 1..6u64, 0..4u8), 1..30),
    ) {
        let provider = NodeIdentity::generate();
        let consumer = NodeIdentity::generate();
        let mut resource = sample(&Did::of(&provider), "gpu");
        resource.capacity = capacity;
        let p = Actor::Party(Did::of(&provider));
        let c = Actor::Party(Did::of(&consumer));
        let t = Timestamp::from_millis(1);
        let span = Window::new(Timestamp::ZERO, Timestamp::from_millis(40_000)).unwrap();
        let mut bookings: Vec<Booking> = Vec::new();
        for (nonce, (start, len, units, kind)) in ops.into_iter().enumerate() {
            if kind == 0 && !bookings.is_empty() {
                // Cancel some booking.
                let i = (start as usize) % bookings.len();
                if let Ok(next) = bookings[i].step(&c, &Action::Cancel, t) {
                    bookings[i] = next;
                }
                continue;
            }
            let Some(w) = Window::new(Timestamp::from_millis(start), Timestamp::from_millis(start + len)) else { continue };
            let id = BookingId { consumer: Did::of(&consumer), nonce: nonce as u64 };
            let Ok(b) = Booking::request(id, &resource, w, units.min(capacity), 10, Timestamp::ZERO) else { continue };
            let admitted = planner::admit(&resource, &bookings, &b.window, b.units, None);
            let confirmed = b.step(&p, &Action::Confirm, t).unwrap();
            let mut with = bookings.clone();
            with.push(confirmed.clone());
            let fits = planner::peak_load(&resource, &with, &span) <= capacity;
            prop_assert_eq!(admitted.is_ok(), fits, "planner {:?}, fits {}", admitted, fits);
            bookings.push(if admitted.is_ok() { confirmed } else { b });
            prop_assert!(planner::peak_load(&resource, &bookings, &span) <= capacity);
            // The published availability agrees with the load.
            for s in planner::availability(&resource, &bookings, span.start(), span.end()) {
                prop_assert_eq!(s.free + planner::peak_load(&resource, &bookings, &s.window), capacity);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CODEC_CASES, ..ProptestConfig::default() })]

    /// Hostile bytes: garbage never decodes into anything that verifies, and a valid mutation
    /// with one bit flipped or cut anywhere is refused (or, if the change falls outside what
    /// is signed and decoded, yields the very same mutation).
    #[test]
    fn hostile_encodings_never_pass_as_another_mutation(
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
        flip in any::<proptest::sample::Index>(),
        bit in 0..8u8,
        cut in any::<proptest::sample::Index>(),
    ) {
        if let Ok(m) = SignedMutation::decode(&garbage) {
            prop_assert!(m.verify().is_err());
        }
        let owner = NodeIdentity::generate();
        let good = signed(&owner, "gpu", 3, "update");
        let bytes = good.encode();
        let mut flipped = bytes.clone();
        flipped[flip.index(bytes.len())] ^= 1 << bit;
        let cut = &bytes[..cut.index(bytes.len())];
        for variant in [flipped.as_slice(), cut] {
            if let Ok(m) = SignedMutation::decode(variant) {
                if m.verify().is_ok() {
                    prop_assert_eq!(m.mutation(), good.mutation());
                }
            }
        }
    }
}
