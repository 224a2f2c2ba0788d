//! Property tests: the outbox under random orders of create/update/delete/message pushes,
//! deliveries (ack, fail, or silence), time, expiry, wake-ups and restarts, against a model;
//! and the inbox under random redeliveries and restarts.
//!
//! Outbox invariants, checked after every step:
//! * the ids held are exactly the model's: no entry lost unless acknowledged, replaced by a
//!   newer one for its key, expired and reported, dropped and reported (moderate), or lost on
//!   restart (moderate, by design);
//! * per key, the mutations accepted and the ones acknowledged never show CREATE after UPDATE
//!   nor anything after DELETE;
//! * `due` never hands out an expired entry, and each item carries the op the model expects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use libp2p::PeerId;
use proptest::prelude::*;

use super::outbox::{Failed, Limits, Outbox};
use super::tests::{entry, t, TempDir, KEY};
use super::*;
use crate::time::Timestamp;

#[derive(Clone, Debug)]
enum Action {
    Push {
        peer: usize,
        res: usize,
        op: Op,
        ttl_s: u64,
    },
    /// Deliver what is due; per item: 0 ack, 1 fail, 2 no answer.
    Deliver(Vec<u8>),
    Advance(u64),
    Expire,
    Wake(usize),
    Restart,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        5 => (0..2usize, 0..3usize, prop_oneof![
            Just(Op::Create), Just(Op::Update), Just(Op::Delete), Just(Op::Message)
        ], 1..400u64)
            .prop_map(|(peer, res, op, ttl_s)| Action::Push { peer, res, op, ttl_s }),
        3 => proptest::collection::vec(0..3u8, 0..6).prop_map(Action::Deliver),
        2 => (0..120_000u64).prop_map(Action::Advance),
        1 => Just(Action::Expire),
        1 => (0..2usize).prop_map(Action::Wake),
        1 => Just(Action::Restart),
    ]
}

#[derive(Clone, Debug)]
struct Queued {
    key: (usize, usize, bool),
    op: Op,
    level: Level,
    expires_at: Timestamp,
    body: Vec<u8>,
}

fn check_stream(ops: &[Op]) -> Result<(), TestCaseError> {
    for w in ops.windows(2) {
        prop_assert!(w[0] != Op::Delete, "{:?} after DELETE in {:?}", w[1], ops);
        prop_assert!(
            !(w[0] == Op::Update && w[1] == Op::Create),
            "CREATE after UPDATE in {ops:?}"
        );
    }
    Ok(())
}

fn run(actions: Vec<Action>) -> Result<(), TestCaseError> {
    let dir = TempDir::new();
    let path = dir.file("outbox.redb");
    let open = || Outbox::open(&path, &KEY, Limits::default()).unwrap();
    let peers = [PeerId::random(), PeerId::random()];
    let mut o = open();
    let mut now = t(0);
    let mut model: BTreeMap<Id, Queued> = BTreeMap::new();
    let mut accepted: HashMap<(usize, usize), Vec<Op>> = HashMap::new();
    let mut acked: HashMap<(usize, usize), Vec<Op>> = HashMap::new();
    for a in actions {
        match a {
            Action::Push {
                peer,
                res,
                op,
                ttl_s,
            } => {
                let mut e = entry(peers[peer], op, &format!("r{res}"), &format!("{op:?}"));
                e.expires_at = now.plus(Duration::from_secs(ttl_s));
                let key = (peer, res, op.is_mutation());
                let queued_op = model.values().find(|q| q.key == key).map(|q| q.op);
                match o.push(e.clone(), now) {
                    Ok(id) => {
                        model.retain(|_, q| q.key != key);
                        let expect = if queued_op == Some(Op::Create) && op == Op::Update {
                            Op::Create
                        } else {
                            op
                        };
                        model.insert(
                            id,
                            Queued {
                                key,
                                op: expect,
                                level: e.level(),
                                expires_at: e.expires_at,
                                body: e.payload.clone(),
                            },
                        );
                        if op.is_mutation() {
                            accepted.entry((peer, res)).or_default().push(op);
                        }
                    }
                    Err(outbox::Error::Refused(_)) => {
                        prop_assert!(op.is_mutation());
                        let hist = accepted.get(&(peer, res)).and_then(|v| v.last());
                        prop_assert!(matches!(
                            (hist, op),
                            (Some(Op::Delete), _) | (Some(Op::Update), Op::Create)
                        ));
                    }
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }
            Action::Deliver(answers) => {
                let items: Vec<(PeerId, Item)> = o
                    .due(now)
                    .unwrap()
                    .into_iter()
                    .flat_map(|d| d.items.into_iter().map(move |i| (d.peer, i)))
                    .collect();
                for (n, (peer, item)) in items.into_iter().enumerate() {
                    let q = model.get(&item.id).cloned();
                    prop_assert!(q.is_some(), "delivered an unknown id {}", item.id);
                    let q = q.unwrap();
                    prop_assert!(q.expires_at > now, "delivered an expired entry");
                    prop_assert_eq!(peer, peers[q.key.0]);
                    prop_assert_eq!(item.op, q.op);
                    prop_assert_eq!(&item.payload, &q.body);
                    match answers.get(n).copied().unwrap_or(2) {
                        0 => {
                            prop_assert!(o.ack(item.id).unwrap());
                            model.remove(&item.id);
                            if q.op.is_mutation() {
                                acked.entry((q.key.0, q.key.1)).or_default().push(q.op);
                            }
                        }
                        1 => match o.failed(item.id, now) {
                            Failed::Retry { at } => prop_assert!(at > now),
                            Failed::Dropped(g) => {
                                prop_assert_eq!(g.level, Level::Moderate);
                                prop_assert_eq!(g.failures, 3);
                                model.remove(&item.id);
                            }
                            Failed::Unknown => prop_assert!(false, "unknown"),
                        },
                        _ => {}
                    }
                }
            }
            Action::Advance(ms) => now = now.plus(Duration::from_millis(ms)),
            Action::Expire => {
                let gone: BTreeSet<Id> = o.expire(now).unwrap().into_iter().map(|g| g.id).collect();
                let want: BTreeSet<Id> = model
                    .iter()
                    .filter(|(_, q)| q.expires_at <= now)
                    .map(|(id, _)| *id)
                    .collect();
                prop_assert_eq!(&gone, &want);
                model.retain(|id, _| !gone.contains(id));
            }
            Action::Wake(p) => {
                o.wake(&peers[p], now);
            }
            Action::Restart => {
                drop(o);
                o = open();
                prop_assert!(o.take_corrupted().is_empty());
                // Moderate entries live in memory only.
                model.retain(|_, q| q.level == Level::Critical);
            }
        }
        let held: Vec<Id> = o.ids();
        let want: Vec<Id> = model.keys().copied().collect();
        prop_assert_eq!(held, want);
        for ops in accepted.values().chain(acked.values()) {
            check_stream(ops)?;
        }
    }
    Ok(())
}

fn inbox_run(steps: Vec<(usize, u128, bool)>) -> Result<(), TestCaseError> {
    let dir = TempDir::new();
    let path = dir.file("inbox.redb");
    let h = Duration::from_secs(24 * 3600);
    let senders = [PeerId::random(), PeerId::random(), PeerId::random()];
    let mut inbox = Inbox::open(&path, h).unwrap();
    let mut applied: BTreeSet<(usize, u128)> = BTreeSet::new();
    for (n, (s, id, restart)) in steps.into_iter().enumerate() {
        if restart {
            drop(inbox);
            inbox = Inbox::open(&path, h).unwrap();
        }
        let got = inbox.accept(&senders[s], Id(id), t(n as u64)).unwrap();
        let fresh = applied.insert((s, id));
        prop_assert_eq!(got == Accepted::Fresh, fresh);
    }
    prop_assert_eq!(inbox.len().unwrap(), applied.len() as u64);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_outbox_loses_nothing_and_keeps_the_lifecycle(
        actions in proptest::collection::vec(action(), 1..60)
    ) {
        run(actions)?;
    }

    #[test]
    fn the_inbox_applies_each_entry_once(
        steps in proptest::collection::vec((0..3usize, 0..12u128, proptest::bool::weighted(0.1)), 1..80)
    ) {
        inbox_run(steps)?;
    }
}
