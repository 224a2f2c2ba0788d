//! Pure tests of the settlement rules with an in-memory `Ledger` and ed25519-dalek.

use std::collections::{BTreeMap, BTreeSet};

use cosmwasm_std::Uint128;
use ed25519_dalek::{Signer, SigningKey};
use garden_wire::attestation::{Attestation, Domain};
use garden_wire::{batch, nonce, Batch};

use crate::types::{Escrow, Withdrawal};
use proptest::prelude::*;

use super::*;

struct Dalek;
impl Verifier for Dalek {
    fn verify(&self, msg: &[u8], sig: &[u8], key: &[u8]) -> bool {
        let (Ok(k), Ok(s)) = (<[u8; 32]>::try_from(key), <[u8; 64]>::try_from(sig)) else {
            return false;
        };
        ed25519_dalek::VerifyingKey::from_bytes(&k)
            .map(|vk| {
                vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&s))
                    .is_ok()
            })
            .unwrap_or(false)
    }
    fn verify_batch(&self, msgs: &[&[u8]], sigs: &[&[u8]], keys: &[&[u8]]) -> bool {
        msgs.iter()
            .zip(sigs)
            .zip(keys)
            .all(|((m, s), k)| self.verify(m, s, k))
    }
}

#[derive(Default)]
struct Mem {
    signers: BTreeMap<[u8; 32], Result<String, ItemError>>,
    providers: BTreeSet<String>,
    offers: BTreeMap<(String, String), OfferTerms>,
    nonces: BTreeSet<([u8; 32], u64)>,
    floors: BTreeMap<[u8; 32], u64>,
    escrow: BTreeMap<String, Uint128>,
    withdrawal: Option<Withdrawal>,
    paid: BTreeMap<String, Uint128>,
}

impl Membership for Mem {
    fn signer_at(&mut self, key: &[u8; 32], _t: u64) -> Result<String, ItemError> {
        self.signers
            .get(key)
            .cloned()
            .unwrap_or(Err(ItemError::UnknownSigner))
    }
    fn provider_at(&mut self, p: &str, _t: u64) -> Result<(), ItemError> {
        self.providers
            .contains(p)
            .then_some(())
            .ok_or(ItemError::ProviderNotMember)
    }
}

impl Ledger for Mem {
    fn offer(&mut self, p: &str, k: &str) -> Option<OfferTerms> {
        self.offers.get(&(p.into(), k.into())).cloned()
    }
    fn nonce_used(&mut self, key: &[u8; 32], n: u64) -> bool {
        self.nonces.contains(&(*key, n))
    }
    fn nonce_floor(&mut self, key: &[u8; 32]) -> u64 {
        self.floors.get(key).copied().unwrap_or(0)
    }
    fn escrow(&mut self, c: &str) -> Option<Escrow> {
        self.escrow.get(c).map(|b| Escrow {
            balance: *b,
            withdrawal: self.withdrawal.clone(),
        })
    }
    fn record_payment(&mut self, key: &[u8; 32], n: u64, c: &str, p: &str, amount: Uint128) {
        assert!(self.nonces.insert((*key, n)), "nonce recorded twice");
        *self.escrow.get_mut(c).unwrap() -= amount;
        *self.paid.entry(p.into()).or_default() += amount;
    }
}

const NOW: u64 = 1_800_000_000;
const CHAIN: &str = "garden-zone";
const CONTRACT: &str = "settlement";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn world() -> Mem {
    let mut m = Mem::default();
    m.signers
        .insert(key(1).verifying_key().to_bytes(), Ok("consumer".into()));
    m.signers.insert(
        key(2).verifying_key().to_bytes(),
        Err(ItemError::RevokedSigner),
    );
    m.signers.insert(
        key(3).verifying_key().to_bytes(),
        Err(ItemError::SignerNotTrusted),
    );
    m.signers
        .insert(key(4).verifying_key().to_bytes(), Ok("someone-else".into()));
    m.providers.insert("provider".into());
    m.offers.insert(
        ("provider".into(), "storage".into()),
        OfferTerms {
            unit: "gib-hour".into(),
            unit_price: Uint128::new(10),
        },
    );
    m.escrow.insert("consumer".into(), Uint128::new(1_000_000));
    m
}

fn att(seed: u8, nonce: u64, quantity: u64) -> Attestation {
    let mut a = Attestation {
        provider: "provider".into(),
        consumer: "consumer".into(),
        resource_id: "r1".into(),
        quantity,
        unit: "gib-hour".into(),
        price_ref: "storage".into(),
        max_unit_price: 10,
        period_start: NOW - 7200,
        period_end: NOW - 3600,
        nonce: nonce::first_nonce(nonce::epoch(NOW - 3600)) + nonce,
        signed_at: NOW - 3600,
        signer: key(seed).verifying_key().to_bytes(),
        signature: [0; 64],
    };
    sign(&mut a, seed);
    a
}

fn sign(a: &mut Attestation, seed: u8) {
    a.signature = key(seed)
        .sign(&a.signing_bytes(&Domain {
            chain_id: CHAIN,
            contract: CONTRACT,
        }))
        .to_bytes();
}

fn rules(chunk: usize) -> Rules<'static> {
    Rules {
        domain: Domain {
            chain_id: CHAIN,
            contract: CONTRACT,
        },
        now: NOW,
        window_secs: 7 * 86400,
        max_future_secs: 300,
        verify_chunk: chunk,
        pruned_below: 0,
    }
}

fn run(m: &mut Mem, items: &[Attestation], chunk: usize) -> Vec<ItemResult> {
    let bytes = batch::encode(items).unwrap();
    settle(
        m,
        &Dalek,
        &rules(chunk),
        &Batch::decode(&bytes, 10_000).unwrap(),
    )
}

#[test]
fn every_rejection_has_its_code() {
    let resign = |mut a: Attestation, f: &dyn Fn(&mut Attestation)| {
        f(&mut a);
        sign(&mut a, 1);
        a
    };
    let mut tampered = att(1, 100, 1);
    tampered.quantity = 2; // signature no longer matches
    let cases: Vec<(Attestation, Result<Uint128, ItemError>)> = vec![
        (att(1, 1, 3), Ok(Uint128::new(30))),
        (tampered, Err(ItemError::BadSignature)),
        (att(9, 2, 1), Err(ItemError::UnknownSigner)),
        (att(2, 3, 1), Err(ItemError::RevokedSigner)),
        (att(3, 4, 1), Err(ItemError::SignerNotTrusted)),
        (att(4, 5, 1), Err(ItemError::SignerNotConsumer)),
        (att(1, 1, 3), Err(ItemError::NonceReused)),
        (
            resign(att(1, 6, 1), &|a| {
                a.signed_at = NOW - 8 * 86400;
                a.period_end = a.signed_at;
                a.period_start = a.signed_at
            }),
            Err(ItemError::StaleTimestamp),
        ),
        (
            resign(att(1, 7, 1), &|a| a.signed_at = NOW + 301),
            Err(ItemError::FutureTimestamp),
        ),
        (att(1, 8, 200_000), Err(ItemError::InsufficientEscrow)),
        (
            resign(att(1, 9, 1), &|a| a.price_ref = "compute".into()),
            Err(ItemError::NoOffer),
        ),
        (
            resign(att(1, 10, 1), &|a| a.unit = "cpu-s".into()),
            Err(ItemError::UnitMismatch),
        ),
        (
            resign(att(1, 11, 1), &|a| a.max_unit_price = 9),
            Err(ItemError::PriceAboveCap),
        ),
        (
            resign(att(1, 12, 1), &|a| a.period_start = a.period_end + 1),
            Err(ItemError::InvalidPeriod),
        ),
        (
            resign(att(1, 13, 1), &|a| a.provider = "stranger".into()),
            Err(ItemError::ProviderNotMember),
        ),
        (att(1, 14, 0), Err(ItemError::ZeroQuantity)),
    ];
    let mut m = world();
    let items: Vec<_> = cases.iter().map(|(a, _)| a.clone()).collect();
    let got = run(&mut m, &items, 0);
    for (i, ((_, want), got)) in cases.iter().zip(&got).enumerate() {
        assert_eq!(got, want, "item {i}");
    }
    // only the first item moved money
    assert_eq!(m.paid["provider"], Uint128::new(30));
    assert_eq!(m.escrow["consumer"], Uint128::new(1_000_000 - 30));
    let mut m = world();
    let mut big = att(1, 16, u64::MAX);
    big.max_unit_price = u128::MAX;
    m.offers
        .get_mut(&("provider".into(), "storage".into()))
        .unwrap()
        .unit_price = Uint128::MAX;
    sign(&mut big, 1);
    assert_eq!(run(&mut m, &[big], 0), vec![Err(ItemError::AmountOverflow)]);
}

#[test]
fn chunked_batch_verify_isolates_bad_items() {
    for chunk in [0, 1, 3, 200] {
        let mut m = world();
        let mut items: Vec<_> = (0..10).map(|n| att(1, n, 1)).collect();
        items[4].signature[0] ^= 1;
        let got = run(&mut m, &items, chunk);
        for (i, r) in got.iter().enumerate() {
            if i == 4 {
                assert_eq!(*r, Err(ItemError::BadSignature), "chunk {chunk}");
            } else {
                assert_eq!(*r, Ok(Uint128::new(10)), "chunk {chunk} item {i}");
            }
        }
        assert!(
            !m.nonces
                .contains(&(key(1).verifying_key().to_bytes(), att(1, 4, 1).nonce)),
            "bad item's nonce stays free"
        );
    }
}

#[test]
fn escrow_exhaustion_rejects_only_what_does_not_fit() {
    let mut m = world();
    m.escrow.insert("consumer".into(), Uint128::new(50));
    // 30, then 30 (does not fit: 20 left), then 20 (fits)
    let got = run(&mut m, &[att(1, 0, 3), att(1, 1, 3), att(1, 2, 2)], 0);
    assert_eq!(
        got,
        vec![
            Ok(Uint128::new(30)),
            Err(ItemError::InsufficientEscrow),
            Ok(Uint128::new(20))
        ]
    );
    assert_eq!(m.escrow["consumer"], Uint128::zero());
    // after a top-up the rejected one settles: its nonce was not consumed
    m.escrow.insert("consumer".into(), Uint128::new(30));
    assert_eq!(run(&mut m, &[att(1, 1, 3)], 0), vec![Ok(Uint128::new(30))]);
}

#[test]
fn nonce_rule_floor_and_horizon() {
    let mut m = world();
    let k = key(1).verifying_key().to_bytes();
    let mut off_hour = att(1, 0, 1);
    off_hour.nonce = 5; // hour 0: not signed_at's hour
    sign(&mut off_hour, 1);
    m.floors.insert(k, att(1, 10, 1).nonce);
    let got = run(&mut m, &[off_hour, att(1, 9, 1), att(1, 10, 1)], 0);
    assert_eq!(
        got,
        vec![
            Err(ItemError::NonceOutOfEpoch),
            Err(ItemError::NonceCancelled),
            Ok(Uint128::new(10))
        ]
    );
    let mut r = rules(0);
    r.pruned_below = nonce::epoch(NOW);
    let bytes = batch::encode(&[att(1, 11, 1)]).unwrap();
    let got = settle(&mut m, &Dalek, &r, &Batch::decode(&bytes, 10).unwrap());
    assert_eq!(got, vec![Err(ItemError::NonceExpired)]);
}

#[test]
fn a_short_escrow_pays_the_oldest_work_first_whatever_the_batch_order() {
    let older = |n| {
        let mut a = att(1, n, 3);
        a.signed_at -= 60;
        a.period_end -= 60;
        a.nonce = nonce::first_nonce(nonce::epoch(a.signed_at)) + n;
        sign(&mut a, 1);
        a
    };
    for items in [vec![att(1, 0, 3), older(1)], vec![older(1), att(1, 0, 3)]] {
        let mut m = world();
        m.escrow.insert("consumer".into(), Uint128::new(30));
        let got = run(&mut m, &items, 0);
        let paid: Vec<u64> = items
            .iter()
            .zip(&got)
            .filter(|(_, r)| r.is_ok())
            .map(|(a, _)| a.signed_at)
            .collect();
        assert_eq!(paid, vec![NOW - 3660], "the older attestation is paid");
    }
}

#[test]
fn a_withdrawal_request_keeps_the_escrow_for_work_signed_before_it() {
    let mut m = world();
    m.escrow.insert("consumer".into(), Uint128::new(100));
    m.withdrawal = Some(Withdrawal {
        amount: None,
        requested_at: NOW - 1800,
        available_at: NOW + 1_000_000,
    });
    let mut after = att(1, 1, 1);
    after.signed_at = NOW - 60;
    after.period_end = NOW - 60;
    sign(&mut after, 1);
    let got = run(&mut m, &[att(1, 0, 1), after], 0);
    assert_eq!(
        got,
        vec![Ok(Uint128::new(10)), Err(ItemError::WithdrawalPending)]
    );
}

#[test]
fn forwarded_items_skip_membership_and_signatures_only() {
    // What an IBC gateway forwards was verified there; payment rules still all apply.
    let mut m = world();
    let mut unsigned = att(9, 0, 1); // a key this ledger does not know: not asked
    unsigned.signature = [0; 64];
    let replay = att(1, 1, 1);
    let items = [unsigned.clone(), replay.clone(), replay];
    let refs: Vec<_> = items.iter().map(|a| a.as_ref()).collect();
    let got = settle_verified(&mut m, &rules(0), &refs);
    assert_eq!(
        got,
        vec![
            Ok(Uint128::new(10)),
            Ok(Uint128::new(10)),
            Err(ItemError::NonceReused)
        ]
    );
}

proptest! {
    #[test]
    fn window_rule(signed_at in 0u64..4_000_000_000, now in 0u64..4_000_000_000,
                   window in 0u64..1_000_000_000, future in 0u64..100_000) {
        let r = check_window(signed_at, now, window, future);
        let lo = now.saturating_sub(window);
        let hi = now.saturating_add(future);
        prop_assert_eq!(r.is_ok(), lo <= signed_at && signed_at <= hi);
        if signed_at < lo { prop_assert_eq!(r, Err(ItemError::StaleTimestamp)); }
        if signed_at > hi { prop_assert_eq!(r, Err(ItemError::FutureTimestamp)); }
    }
}

proptest! {
    // Signing in a debug build is slow: keep the case count modest.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    // Across any sequence of batches (with repeats inside and across batches) each nonce is
    // paid exactly once, and escrow + paid stays equal to what was deposited.
    #[test]
    fn nonces_pay_once_and_money_is_conserved(
        batches in proptest::collection::vec(proptest::collection::vec((0u64..40, 1u64..50), 1..25), 1..6),
        deposit in 0u128..20_000,
        chunk in prop_oneof![Just(0usize), Just(4usize)],
    ) {
        let mut m = world();
        m.escrow.insert("consumer".into(), Uint128::new(deposit));
        let mut paid_nonces = BTreeSet::new();
        for b in &batches {
            let items: Vec<_> = b.iter().map(|(n, q)| att(1, *n, *q)).collect();
            let before = m.nonces.len();
            let got = run(&mut m, &items, chunk);
            for ((n, q), r) in b.iter().zip(&got) {
                match r {
                    Ok(amount) => {
                        prop_assert!(paid_nonces.insert(*n), "nonce {} paid twice", n);
                        prop_assert_eq!(amount.u128(), 10 * *q as u128);
                    }
                    Err(e) => prop_assert!(matches!(e, ItemError::NonceReused | ItemError::InsufficientEscrow)),
                }
            }
            prop_assert_eq!(m.nonces.len() - before, got.iter().filter(|r| r.is_ok()).count());
            let paid = m.paid.get("provider").copied().unwrap_or_default().u128();
            prop_assert_eq!(m.escrow["consumer"].u128() + paid, deposit);
        }
    }
}
