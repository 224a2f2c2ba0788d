//! Unit and model-based property tests of the queue.

use super::*;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use garden_wire::batch::Batch;
use garden_wire::nonce::{self, NonceError};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};

const T0: u64 = 1_767_229_260; // 2026-01-01T00:41:00Z
const DOMAIN: Domain<'static> = Domain {
    chain_id: "garden-zone-1",
    contract: "wasm1settlement",
};

fn key() -> SettlementKey {
    SettlementKey::from_seed([7; 32])
}

fn open(dir: &tempfile::TempDir) -> Signer {
    Signer::open(&dir.path().join("q.redb"), key(), &DOMAIN).unwrap()
}

fn input(n: u64, now: u64) -> UsageInput {
    UsageInput {
        provider: "garden1provider".into(),
        consumer: "garden1consumer".into(),
        resource_id: format!("res-{}", n % 5),
        quantity: n + 1,
        unit: "gib-hour".into(),
        price_ref: "storage".into(),
        max_unit_price: 1_000,
        period_start: now.saturating_sub(600),
        period_end: now,
    }
}

#[test]
fn sign_builds_a_verifiable_attestation_under_the_nonce_rule() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let a = s.sign(input(1, T0), T0).unwrap();
    let b = s.sign(input(2, T0), T0 + 5).unwrap();
    assert_eq!(a.nonce, 2_108_386_560_704_512, "ATTESTATION-VECTORS nonce");
    assert_eq!(b.nonce, a.nonce + 1);
    assert_eq!(a.state, ItemState::Signed);
    let att = &a.attestation;
    nonce::check(att.nonce, att.signed_at).unwrap();
    assert_eq!(att.signer, s.public_key());
    let vk = VerifyingKey::from_bytes(&att.signer).unwrap();
    vk.verify(
        &att.signing_bytes(&DOMAIN),
        &Signature::from_bytes(&att.signature),
    )
    .unwrap();
    // signed for this domain only
    let other = Domain {
        chain_id: "other",
        contract: DOMAIN.contract,
    };
    assert!(vk
        .verify(
            &att.signing_bytes(&other),
            &Signature::from_bytes(&att.signature)
        )
        .is_err());
    assert_eq!(s.item(a.nonce).unwrap().unwrap(), a);
    // next hour restarts the sequence; clock going back is refused and consumes nothing
    let c = s.sign(input(3, T0), T0 + 3600).unwrap();
    assert_eq!(nonce::nonce_seq(c.nonce), 0);
    assert!(matches!(
        s.sign(input(4, T0), T0),
        Err(Error::Nonce(NonceError::ClockWentBack { .. }))
    ));
    assert_eq!(s.items().unwrap().len(), 3);
    assert!(counter_floor(&s.counter().unwrap()) > c.nonce);
}

#[test]
fn invalid_input_names_the_field_and_consumes_no_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let mut i = input(1, T0);
    i.unit = String::new();
    let e = s.sign(i, T0).unwrap_err();
    assert!(
        matches!(e, Error::InvalidField { field: "unit", .. }),
        "{e}"
    );
    let mut i = input(1, T0);
    i.price_ref = "x".repeat(129);
    assert!(matches!(
        s.sign(i, T0),
        Err(Error::InvalidField {
            field: "price_ref",
            ..
        })
    ));
    let mut i = input(1, T0);
    i.period_end = T0 + 1;
    assert!(matches!(
        s.sign(i, T0),
        Err(Error::InvalidField {
            field: "period_end",
            ..
        })
    ));
    let mut i = input(1, T0);
    i.period_start = T0;
    i.period_end = T0 - 1;
    assert!(matches!(
        s.sign(i, T0),
        Err(Error::InvalidField {
            field: "period_start",
            ..
        })
    ));
    assert_eq!(s.counter().unwrap(), Counter::default());
    assert!(s.items().unwrap().is_empty());
}

#[test]
fn a_database_is_bound_to_its_key_and_domain() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("q.redb");
    drop(Signer::open(&p, key(), &DOMAIN).unwrap());
    let e = Signer::open(&p, SettlementKey::from_seed([8; 32]), &DOMAIN)
        .err()
        .unwrap();
    assert!(matches!(e, Error::Binding { what: "signer", .. }), "{e}");
    let d2 = Domain {
        chain_id: DOMAIN.chain_id,
        contract: "wasm1other",
    };
    let e = Signer::open(&p, key(), &d2).err().unwrap();
    assert!(
        matches!(
            e,
            Error::Binding {
                what: "contract",
                ..
            }
        ),
        "{e}"
    );
    assert!(Signer::open(&p, key(), &DOMAIN).is_ok());
}

#[test]
fn batches_by_size_and_age_and_the_payload_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    for n in 0..5 {
        s.sign(input(n, T0), T0).unwrap();
    }
    // 5 < 10 items and younger than 60 s: wait
    assert!(s.next_batch(10, 60, T0 + 59).unwrap().is_none());
    // size reached
    let b = s.next_batch(3, 60, T0 + 1).unwrap().unwrap();
    assert_eq!(b.nonces.len(), 3);
    let dec = Batch::decode(&b.payload, 3).unwrap();
    for (i, n) in b.nonces.iter().enumerate() {
        assert_eq!(
            dec.get(i).to_owned(),
            s.item(*n).unwrap().unwrap().attestation
        );
    }
    assert_eq!(s.batch_payload(b.id).unwrap(), b.payload);
    // age reached: the 2 left go
    let b2 = s.next_batch(10, 60, T0 + 60).unwrap().unwrap();
    assert_eq!(b2.nonces.len(), 2);
    assert!(b2.nonces[0] > b.nonces[2], "oldest first");
    assert!(s.next_batch(10, 0, T0 + 60).unwrap().is_none(), "empty");
    assert!(matches!(s.next_batch(0, 0, T0), Err(Error::BatchSize(0))));
    assert!(matches!(
        s.next_batch(MAX_BATCH_ITEMS + 1, 0, T0),
        Err(Error::BatchSize(_))
    ));
    let st = s.stats(T0 + 100).unwrap();
    assert_eq!((st.signed, st.batched), (0, 5));
    assert_eq!(st.oldest_pending_age, Some(100));
    assert_eq!(st.oldest_signed_age, None);
}

#[test]
fn transitions_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    for n in 0..4 {
        s.sign(input(n, T0), T0).unwrap();
    }
    let b = s.next_batch(4, 0, T0).unwrap().unwrap();
    let illegal = |r: Result<(), Error>, from: &str| match r {
        Err(Error::IllegalTransition { from: f, .. }) => assert_eq!(f, from),
        other => panic!("{other:?}"),
    };
    illegal(s.mark_included(b.id, &[0, 0, 0, 0]), "built");
    assert!(matches!(
        s.mark_submitted(99, "tx"),
        Err(Error::UnknownBatch(99))
    ));
    s.mark_submitted(b.id, "ABCD").unwrap();
    illegal(s.mark_submitted(b.id, "EF"), "submitted");
    assert_eq!(
        s.batch(b.id).unwrap().unwrap().state,
        BatchState::Submitted {
            tx_hash: "ABCD".into()
        }
    );
    assert!(matches!(
        s.mark_included(b.id, &[0]),
        Err(Error::CodeCount {
            items: 4,
            codes: 1,
            ..
        })
    ));
    s.mark_included(b.id, &[0, 7, 0, 0]).unwrap();
    let states: Vec<_> = b
        .nonces
        .iter()
        .map(|n| s.item(*n).unwrap().unwrap().state)
        .collect();
    assert_eq!(states[0], ItemState::Final { batch: b.id });
    assert_eq!(
        states[1],
        ItemState::Refused {
            batch: b.id,
            code: 7
        }
    );
    assert!(matches!(
        s.requeue(b.id, RetryCause::TxFailed),
        Err(Error::IllegalTransition {
            from: "included",
            ..
        })
    ));
    illegal(s.mark_included(b.id, &[0, 0, 0, 0]), "included");
    let st = s.stats(T0).unwrap();
    assert_eq!((st.final_, st.refused, st.submitted), (3, 1, 0));
}

#[test]
fn requeue_returns_items_with_the_same_signature_and_kills_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    for n in 0..3 {
        s.sign(input(n, T0), T0).unwrap();
    }
    let b = s.next_batch(3, 0, T0).unwrap().unwrap();
    s.mark_submitted(b.id, "T1").unwrap();
    assert_eq!(s.requeue(b.id, RetryCause::IbcTimeout).unwrap(), 3);
    assert!(matches!(
        s.mark_submitted(b.id, "T2"),
        Err(Error::IllegalTransition {
            from: "requeued",
            ..
        })
    ));
    let b2 = s.next_batch(3, 0, T0).unwrap().unwrap();
    assert_ne!(b2.id, b.id);
    assert_eq!(b2.nonces, b.nonces);
    assert_eq!(b2.payload, b.payload, "same attestations, same bytes");
    // a built (never broadcast) batch may be requeued too
    assert_eq!(s.requeue(b2.id, RetryCause::BroadcastRefused).unwrap(), 3);
    assert_eq!(s.stats(T0).unwrap().signed, 3);
}

#[test]
fn relayed_items_end_final_refused_or_back_in_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    for n in 0..4 {
        s.sign(input(n, T0), T0).unwrap();
    }
    let b = s.next_batch(4, 0, T0).unwrap().unwrap();
    s.mark_submitted(b.id, "T1").unwrap();
    // the gateway refused the last item itself (e.g. signer revoked)
    s.mark_relayed(b.id, &[0, 0, 0, 12]).unwrap();
    let st = s.stats(T0).unwrap();
    assert_eq!((st.relayed, st.refused, st.submitted), (3, 1, 0));
    assert_eq!(
        st.oldest_pending_age,
        Some(0),
        "relayed items are unfinished"
    );
    let r = s.relayed(10).unwrap();
    assert_eq!(r, b.nonces[..3].to_vec());

    assert_eq!(
        s.resolve_relayed(r[0], Relay::Settled).unwrap(),
        ItemState::Final { batch: b.id }
    );
    assert_eq!(
        s.resolve_relayed(r[1], Relay::Refused(9)).unwrap(),
        ItemState::Refused {
            batch: b.id,
            code: 9
        }
    );
    assert_eq!(
        s.resolve_relayed(r[2], Relay::Released).unwrap(),
        ItemState::Signed
    );
    // a stale or repeated answer changes nothing
    for n in [r[0], r[1], r[2]] {
        assert!(matches!(
            s.resolve_relayed(n, Relay::Released),
            Err(Error::IllegalItemTransition { .. })
        ));
    }
    let st = s.stats(T0).unwrap();
    assert_eq!((st.final_, st.refused, st.signed, st.relayed), (1, 2, 1, 0));
    // the released item goes out again with its nonce and signature
    let again = s.next_batch(4, 0, T0).unwrap().unwrap();
    assert_eq!(again.nonces, vec![r[2]]);
    s.mark_submitted(again.id, "T2").unwrap();
    s.mark_relayed(again.id, &[0]).unwrap();
    assert_eq!(
        s.resolve_relayed(r[2], Relay::Settled).unwrap(),
        ItemState::Final { batch: again.id }
    );
    // survives a reopen
    drop(s);
    let s = open(&dir);
    assert_eq!(s.stats(T0).unwrap().final_, 2);
}

#[test]
fn the_timeout_height_is_stored_with_the_hash_and_expiry_requeues() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.sign(input(0, T0), T0).unwrap();
    let b = s.next_batch(1, 0, T0).unwrap().unwrap();
    assert_eq!(s.tx_timeout(b.id).unwrap(), None);
    s.mark_submitted_until(b.id, "AB", Some(140)).unwrap();
    drop(s);
    let s = open(&dir);
    assert_eq!(s.tx_timeout(b.id).unwrap(), Some(140));
    s.requeue(b.id, RetryCause::TxExpired).unwrap();
    assert_eq!(
        s.batch(b.id).unwrap().unwrap().state,
        BatchState::Requeued {
            cause: RetryCause::TxExpired
        }
    );
    // a refused transition writes no timeout
    assert!(s.mark_submitted_until(b.id, "CD", Some(9)).is_err());
    assert_eq!(s.tx_timeout(b.id).unwrap(), Some(140));
}

#[test]
fn sign_many_is_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let mut v: Vec<_> = (0..10).map(|n| input(n, T0)).collect();
    let ok = s.sign_many(v.clone(), T0).unwrap();
    assert_eq!(ok.len(), 10);
    v[5].consumer = String::new();
    assert!(s.sign_many(v, T0).is_err());
    assert_eq!(s.items().unwrap().len(), 10);
    assert_eq!(s.counter().unwrap().next_seq, 10);
}

// ---- model-based property test -----------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Sign(u8),
    Tick(u16),
    NextBatch {
        max: usize,
        max_age: u64,
    },
    Submit(usize),
    Include(usize, u8),
    Requeue(usize),
    /// IBC mode: the gateway's codes for a submitted batch.
    Relay(usize, u8),
    /// The gateway's answer for the i-th relayed item: 0 settled, 1 refused, 2 released.
    Resolve(usize, u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..4).prop_map(Op::Sign),
        2 => (0u16..5000).prop_map(Op::Tick),
        2 => (1usize..6, 0u64..100).prop_map(|(max, max_age)| Op::NextBatch { max, max_age }),
        2 => (0usize..8).prop_map(Op::Submit),
        2 => (0usize..8, any::<u8>()).prop_map(|(b, c)| Op::Include(b, c)),
        1 => (0usize..8).prop_map(Op::Requeue),
        2 => (0usize..8, any::<u8>()).prop_map(|(b, c)| Op::Relay(b, c)),
        2 => (0usize..8, 0u8..3).prop_map(|(i, o)| Op::Resolve(i, o)),
        1 => Just(Op::Reopen),
    ]
}

fn check_invariants(s: &Signer, issued: &HashSet<u64>, ever_included: &HashSet<u64>) {
    let items = s.items().unwrap();
    let stored: HashSet<u64> = items.iter().map(|i| i.nonce).collect();
    assert_eq!(&stored, issued, "every signed item is stored, exactly once");
    let floor = counter_floor(&s.counter().unwrap());
    assert!(items.iter().all(|i| i.nonce < floor), "counter ahead");
    // an item is in at most one live (built/submitted) batch, and its state agrees
    let mut live: BTreeMap<u64, u64> = BTreeMap::new();
    for b in s.batches().unwrap() {
        if matches!(b.state, BatchState::Built | BatchState::Submitted { .. }) {
            for n in &b.nonces {
                assert!(live.insert(*n, b.id).is_none(), "item {n} in two batches");
            }
        }
    }
    let mut counts = [0u64; 6];
    for i in &items {
        counts[i.state.tag() as usize] += 1;
        match i.state {
            ItemState::Signed => assert!(!live.contains_key(&i.nonce)),
            ItemState::Batched { batch } | ItemState::Submitted { batch } => {
                assert_eq!(live.get(&i.nonce), Some(&batch))
            }
            _ => assert!(ever_included.contains(&i.nonce)),
        }
        if ever_included.contains(&i.nonce) {
            assert!(
                i.state.is_terminal() || matches!(i.state, ItemState::Relayed { .. }),
                "an included item was requeued without being released"
            );
        }
    }
    let st = s.stats(u64::MAX).unwrap();
    assert_eq!(
        [
            st.signed,
            st.batched,
            st.submitted,
            st.final_,
            st.refused,
            st.relayed
        ],
        counts
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn queue_invariants_hold(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.redb");
        let mut s = Some(Signer::open(&path, key(), &DOMAIN).unwrap());
        let mut now = T0;
        let mut issued = HashSet::new();
        let mut ever_included = HashSet::new();
        for op in ops {
            let sg = s.as_ref().unwrap();
            let batches = sg.batches().unwrap();
            let pick = |i: usize| (!batches.is_empty()).then(|| batches[i % batches.len()].clone());
            match op {
                Op::Sign(n) => {
                    for item in sg.sign_many((0..n as u64).map(|k| input(k, now)).collect(), now).unwrap() {
                        prop_assert!(issued.insert(item.nonce), "nonce {} issued twice", item.nonce);
                    }
                }
                Op::Tick(d) => now += d as u64,
                Op::NextBatch { max, max_age } => {
                    let before = sg.stats(now).unwrap();
                    if let Some(b) = sg.next_batch(max, max_age, now).unwrap() {
                        prop_assert!(!b.nonces.is_empty() && b.nonces.len() <= max);
                        prop_assert_eq!(Batch::decode(&b.payload, max).unwrap().len(), b.nonces.len());
                    } else {
                        prop_assert!(before.signed < max as u64);
                    }
                }
                Op::Submit(i) => if let Some(b) = pick(i) {
                    let r = sg.mark_submitted(b.id, "TX");
                    prop_assert_eq!(r.is_ok(), b.state == BatchState::Built);
                },
                Op::Include(i, c) => if let Some(b) = pick(i) {
                    let codes: Vec<u32> = (0..b.nonces.len()).map(|k| if (k as u8) < c % 4 { 5 } else { 0 }).collect();
                    let r = sg.mark_included(b.id, &codes);
                    let ok = matches!(b.state, BatchState::Submitted { .. });
                    prop_assert_eq!(r.is_ok(), ok);
                    if ok { ever_included.extend(b.nonces.iter().copied()); }
                },
                Op::Requeue(i) => if let Some(b) = pick(i) {
                    let r = sg.requeue(b.id, RetryCause::IbcErrorAck);
                    prop_assert_eq!(r.is_ok(), matches!(b.state, BatchState::Built | BatchState::Submitted { .. }));
                },
                Op::Relay(i, c) => if let Some(b) = pick(i) {
                    let codes: Vec<u32> = (0..b.nonces.len()).map(|k| if (k as u8) < c % 3 { 12 } else { 0 }).collect();
                    let r = sg.mark_relayed(b.id, &codes);
                    let ok = matches!(b.state, BatchState::Submitted { .. });
                    prop_assert_eq!(r.is_ok(), ok);
                    if ok { ever_included.extend(b.nonces.iter().copied()); }
                },
                Op::Resolve(i, o) => {
                    let relayed = sg.relayed(100).unwrap();
                    if !relayed.is_empty() {
                        let n = relayed[i % relayed.len()];
                        let outcome = [Relay::Settled, Relay::Refused(9), Relay::Released][o as usize];
                        let to = sg.resolve_relayed(n, outcome).unwrap();
                        if outcome == Relay::Released {
                            prop_assert_eq!(to, ItemState::Signed);
                            ever_included.remove(&n);
                        } else {
                            prop_assert!(to.is_terminal());
                            prop_assert!(sg.resolve_relayed(n, Relay::Released).is_err());
                        }
                    }
                }
                Op::Reopen => {
                    drop(s.take());
                    s = Some(Signer::open(&path, key(), &DOMAIN).unwrap());
                }
            }
            check_invariants(s.as_ref().unwrap(), &issued, &ever_included);
        }
    }
}

#[test]
fn keyed_usage_is_signed_once_across_calls_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let now = 1_700_000_000;
    let s = open(&dir);
    let mut late = input(3, now);
    late.period_end = now + 60; // ends after signing: refused, no nonce spent
    let out = s
        .sign_keyed(
            vec![
                ("did:key:a#1".into(), input(1, now)),
                ("did:key:a#2".into(), input(2, now)),
                ("did:key:a#1".into(), input(1, now)),
                ("did:key:a#3".into(), late),
                (String::new(), input(4, now)),
            ],
            now,
        )
        .unwrap();
    let Keyed::Signed(first) = &out[0].1 else {
        panic!("{out:?}")
    };
    assert!(matches!(out[1].1, Keyed::Signed(_)), "{out:?}");
    assert_eq!(out[2].1, Keyed::Already { nonce: first.nonce });
    assert!(
        matches!(&out[3].1, Keyed::Invalid(r) if r.contains("period_end")),
        "{out:?}"
    );
    assert!(matches!(&out[4].1, Keyed::Invalid(r) if r.starts_with("origin")));
    assert_eq!(s.items().unwrap().len(), 2);
    let counter = s.counter().unwrap();
    drop(s);

    // After a restart (the sidecar was not told and lists the same usage again).
    let s = open(&dir);
    let out = s
        .sign_keyed(vec![("did:key:a#1".into(), input(1, now + 5))], now + 5)
        .unwrap();
    assert_eq!(out[0].1, Keyed::Already { nonce: first.nonce });
    assert!(s.origin("did:key:a#2").unwrap().is_some());
    assert_eq!(
        s.counter().unwrap(),
        counter,
        "no nonce spent on known usage"
    );
    assert_eq!(s.items().unwrap().len(), 2);
}

#[test]
fn a_copy_is_held_only_if_another_key_signed_it_for_our_domain() {
    let (mine, theirs, elsewhere) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let me = open(&mine);
    let consumer = Signer::open(
        &theirs.path().join("q.redb"),
        SettlementKey::from_seed([9; 32]),
        &DOMAIN,
    )
    .unwrap();
    let other_domain = Signer::open(
        &elsewhere.path().join("q.redb"),
        SettlementKey::from_seed([9; 32]),
        &Domain {
            chain_id: "garden-zone-1",
            contract: "wasm1othergateway",
        },
    )
    .unwrap();
    let att = consumer.sign(input(1, T0), T0).unwrap().attestation;
    let received = decode_copy(&copy_bytes(&att).unwrap()).unwrap();
    assert_eq!(received, att);
    assert_eq!(me.hold_copy(&received, T0 + 1).unwrap(), Ok(true));
    assert_eq!(
        me.hold_copy(&received, T0 + 2).unwrap(),
        Ok(false),
        "held once"
    );

    // Refused: a forged figure, another signing domain, our own key, not one item.
    let mut forged = att.clone();
    forged.quantity += 1;
    assert!(matches!(
        me.hold_copy(&forged, T0).unwrap(),
        Err(CopyRefusal::Signature { .. })
    ));
    let foreign = other_domain.sign(input(2, T0), T0).unwrap().attestation;
    assert!(matches!(
        me.hold_copy(&foreign, T0).unwrap(),
        Err(CopyRefusal::Signature { .. })
    ));
    let own = me.sign(input(3, T0), T0).unwrap().attestation;
    assert_eq!(me.hold_copy(&own, T0).unwrap(), Err(CopyRefusal::Own));
    let two = garden_wire::batch::encode(&[att.clone(), foreign]).unwrap();
    assert!(matches!(decode_copy(&two), Err(CopyRefusal::Malformed(_))));
    assert!(matches!(
        decode_copy(b"GWAB"),
        Err(CopyRefusal::Malformed(_))
    ));

    // Held across a restart, its grace restarted by a submission, then forgotten.
    drop(me);
    let me = open(&mine);
    let held = me.copies(10).unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!((&held[0].attestation, held[0].since), (&att, T0 + 1));
    me.touch_copy(&att.signer, att.nonce, T0 + 99).unwrap();
    assert_eq!(me.copies(10).unwrap()[0].since, T0 + 99);
    assert!(me.drop_copy(&att.signer, att.nonce).unwrap());
    assert!(me.copies(10).unwrap().is_empty());
    assert_eq!(
        me.items().unwrap().len(),
        1,
        "copies never enter the own queue"
    );
}
