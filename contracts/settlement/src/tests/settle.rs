//! Batch settlement through the real contracts (consortium cross-contract queries, bank).

use cosmwasm_std::{Binary, Uint128};
use garden_wire::batch;
use proptest::prelude::*;

use super::suite::{assert_err, attr, Suite, PRICE};
use crate::msg::*;
use crate::types::*;
use crate::ContractError;

#[test]
fn settles_and_never_pays_twice() {
    let mut s = Suite::new();
    let (alice, bob, provider) = (s.alice.clone(), s.bob.clone(), s.provider.clone());
    s.deposit(&alice, 10_000).unwrap();
    s.deposit(&bob, 10_000).unwrap();
    let items: Vec<_> = (0..20)
        .map(|n| s.att(&alice, 2, n, 10))
        .chain((0..5).map(|n| s.att(&bob, 3, n, 1)))
        .collect();
    let before = s.balance(&provider);
    let (res, data) = s.settle(&items, false).unwrap();
    assert_eq!((data.batch_id, data.settled, data.rejected), (1, 25, 0));
    assert_eq!(data.paid.u128(), (200 + 5) * PRICE);
    assert_eq!(data.codes, Binary::from(vec![0u8; 25]));
    assert_eq!(attr(&res, "settled").as_deref(), Some("25"));
    assert!(attr(&res, "rejected_items").is_none());
    assert_eq!(s.balance(&provider), before + 205 * PRICE);
    let e: Option<Escrow> = s.query(QueryMsg::Escrow {
        consumer: alice.to_string(),
    });
    assert_eq!(e.unwrap().balance.u128(), 10_000 - 200 * PRICE);
    let paid: Uint128 = s.query(QueryMsg::Paid {
        consumer: bob.to_string(),
        provider: provider.to_string(),
    });
    assert_eq!(paid.u128(), 5 * PRICE);
    let key = Binary::from(super::suite::key(2).verifying_key().to_bytes().to_vec());
    assert!(s.query::<bool>(QueryMsg::NonceUsed {
        signer: key.clone(),
        nonce: items[19].nonce
    }));
    assert!(!s.query::<bool>(QueryMsg::NonceUsed {
        signer: key,
        nonce: items[19].nonce + 1
    }));

    // the same batch again: every item NonceReused, nothing paid
    let (res, data) = s.settle(&items, false).unwrap();
    assert_eq!((data.settled, data.rejected, data.paid.u128()), (0, 25, 0));
    assert!(data
        .codes
        .iter()
        .all(|c| *c == ItemError::NonceReused as u8));
    assert_eq!(s.balance(&provider), before + 205 * PRICE);
    assert!(attr(&res, "rejected_items").unwrap().starts_with("0:5,1:5"));
    // a batch that settles nothing leaves no record (anyone can submit one)
    let rec: Option<BatchRecord> = s.query(QueryMsg::Batch { batch_id: 2 });
    assert!(rec.is_none());
    let rec: Option<BatchRecord> = s.query(QueryMsg::Batch { batch_id: 1 });
    assert_eq!(rec.unwrap().settled, 25);
    assert_eq!(s.query::<u64>(QueryMsg::BatchCount {}), 2);
    let t: Totals = s.query(QueryMsg::Totals {});
    assert_eq!(t.deposited.u128(), 20_000);
    assert_eq!(t.paid.u128(), 205 * PRICE);
    assert_eq!(s.balance(&s.settlement.clone()), 20_000 - 205 * PRICE);
}

#[test]
fn each_rejection_is_reported_per_item() {
    let mut s = Suite::new();
    let (alice, bob, carol, dave, provider) = (
        s.alice.clone(),
        s.bob.clone(),
        s.carol.clone(),
        s.dave.clone(),
        s.provider.clone(),
    );
    s.deposit(&alice, 1_000).unwrap();
    // a member that will be revoked
    let eve = s.app.api().addr_make("eve");
    s.admit_l1(&eve, 9);
    s.advance(60);
    s.revoke(&eve, garden_wire::RevocationKind::Departure);
    s.advance(120);

    let now = s.now();
    let resign =
        |s: &Suite, mut a: garden_wire::Attestation, f: &dyn Fn(&mut garden_wire::Attestation)| {
            f(&mut a);
            s.domain_sign(&mut a, 2);
            a
        };
    let mut bad_sig = s.att(&alice, 2, 1, 1);
    bad_sig.signature[10] ^= 0xff;
    // signed for a different contract (domain separation)
    let mut other_domain = s.att(&alice, 2, 2, 1);
    {
        use ed25519_dalek::Signer;
        let chain_id = s.app.block_info().chain_id;
        let d = garden_wire::Domain {
            chain_id: &chain_id,
            contract: s.consortium.as_str(),
        };
        other_domain.signature = super::suite::key(2)
            .sign(&other_domain.signing_bytes(&d))
            .to_bytes();
    }
    let cases: Vec<(garden_wire::Attestation, u8)> = vec![
        (s.att(&alice, 2, 0, 1), 0),
        (bad_sig, ItemError::BadSignature as u8),
        (other_domain, ItemError::BadSignature as u8),
        (s.att(&alice, 77, 3, 1), ItemError::UnknownSigner as u8),
        (s.att(&eve, 9, 4, 1), ItemError::RevokedSigner as u8), // signed after its departure
        (s.att(&carol, 5, 5, 1), ItemError::SignerNotTrusted as u8),
        (s.att(&dave, 6, 6, 1), ItemError::SignerNotTrusted as u8),
        (s.att(&bob, 2, 7, 1), ItemError::SignerNotConsumer as u8),
        (s.att(&alice, 2, 0, 1), ItemError::NonceReused as u8),
        (
            resign(&s, s.att(&alice, 2, 8, 1), &|a| {
                a.signed_at = now - 8 * 86400;
                a.period_end = a.signed_at;
                a.period_start = a.signed_at
            }),
            ItemError::StaleTimestamp as u8,
        ),
        (
            resign(&s, s.att(&alice, 2, 9, 1), &|a| a.signed_at = now + 301),
            ItemError::FutureTimestamp as u8,
        ),
        (
            s.att(&alice, 2, 10, 1_000),
            ItemError::InsufficientEscrow as u8,
        ),
        (
            resign(&s, s.att(&alice, 2, 11, 1), &|a| a.price_ref = "gpu".into()),
            ItemError::NoOffer as u8,
        ),
        (
            resign(&s, s.att(&alice, 2, 12, 1), &|a| a.unit = "tib-day".into()),
            ItemError::UnitMismatch as u8,
        ),
        (
            resign(&s, s.att(&alice, 2, 13, 1), &|a| {
                a.max_unit_price = PRICE - 1
            }),
            ItemError::PriceAboveCap as u8,
        ),
        (
            resign(&s, s.att(&alice, 2, 14, 1), &|a| {
                a.period_end = a.signed_at + 1
            }),
            ItemError::InvalidPeriod as u8,
        ),
        (
            resign(&s, s.att(&alice, 2, 15, 1), &|a| {
                a.provider = carol.to_string()
            }),
            ItemError::ProviderNotMember as u8,
        ),
        (
            resign(&s, s.att(&alice, 2, 16, 1), &|a| {
                a.provider = "not-an-address".into()
            }),
            ItemError::ProviderNotMember as u8,
        ),
        (s.att(&alice, 2, 17, 0), ItemError::ZeroQuantity as u8),
        (s.att(&alice, 2, 18, 2), 0),
    ];
    let items: Vec<_> = cases.iter().map(|(a, _)| a.clone()).collect();
    let want: Vec<u8> = cases.iter().map(|(_, c)| *c).collect();
    let before = s.balance(&provider);
    let (res, data) = s.settle(&items, false).unwrap();
    assert_eq!(data.codes.to_vec(), want);
    let _ = now;
    assert_eq!((data.settled, data.rejected), (2, want.len() as u32 - 2));
    assert_eq!(s.balance(&provider), before + 3 * PRICE);
    assert!(attr(&res, "rejected_items").unwrap().contains("10:7"));
    // a rejected item's nonce stays free: after a top-up the escrow-limited one settles
    s.deposit(&alice, 10_000).unwrap();
    let (_, data) = s.settle(&[s.att(&alice, 2, 10, 1_000)], false).unwrap();
    assert_eq!(data.settled, 1);
}

#[test]
fn strict_mode_and_batch_errors() {
    let mut s = Suite::new();
    let (alice, gov, provider) = (s.alice.clone(), s.gov.clone(), s.provider.clone());
    s.deposit(&alice, 1_000).unwrap();
    let mut bad = s.att(&alice, 2, 1, 1);
    bad.signature[0] ^= 1;
    let err = s.settle(&[s.att(&alice, 2, 0, 1), bad], true).unwrap_err();
    assert_err(
        err,
        ContractError::Item {
            index: 1,
            error: ItemError::BadSignature,
        },
    );
    // nothing was applied: nonce 0 still settles
    let (_, data) = s.settle(&[s.att(&alice, 2, 0, 1)], true).unwrap();
    assert_eq!(data.settled, 1);

    let garbage = ExecuteMsg::SettleBatch {
        batch: Binary::from(b"GW".to_vec()),
        strict: None,
    };
    assert_err(
        s.exec(&provider, garbage).unwrap_err(),
        "batch rejected: batch truncated",
    );
    let wrong_magic = ExecuteMsg::SettleBatch {
        batch: Binary::from(b"XXXX\x01\0\0\0\0".to_vec()),
        strict: None,
    };
    assert_err(
        s.exec(&provider, wrong_magic).unwrap_err(),
        ContractError::BatchDecode(garden_wire::DecodeError::BadMagic),
    );
    let empty = ExecuteMsg::SettleBatch {
        batch: batch::encode(&[]).unwrap().into(),
        strict: None,
    };
    assert_err(
        s.exec(&provider, empty).unwrap_err(),
        ContractError::BatchDecode(garden_wire::DecodeError::Empty),
    );

    s.exec(
        &gov,
        ExecuteMsg::UpdateParams {
            params: Params {
                max_batch: 3,
                ..Params::default()
            },
        },
    )
    .unwrap();
    let four: Vec<_> = (10..14).map(|n| s.att(&alice, 2, n, 1)).collect();
    assert_err(
        s.settle(&four, false).unwrap_err(),
        ContractError::BatchTooLarge { size: 4, max: 3 },
    );
    let (_, data) = s.settle(&four[..3], false).unwrap();
    assert_eq!(data.settled, 3);
}

#[test]
fn thousand_attestations_in_one_message() {
    let mut s = Suite::new();
    let (alice, gov) = (s.alice.clone(), s.gov.clone());
    s.deposit(&alice, 10_000_000).unwrap();
    let items: Vec<_> = (0..1000).map(|n| s.att(&alice, 2, n, 1 + n % 7)).collect();
    let bytes = batch::encode(&items).unwrap();
    let msg = ExecuteMsg::SettleBatch {
        batch: bytes.clone().into(),
        strict: Some(true),
    };
    let json = cosmwasm_std::to_json_vec(&msg).unwrap();
    // 132 bytes per item; the JSON execute message stays far below CometBFT's 1 MB body
    assert!(
        bytes.len() < 1000 * 132 + 1_000,
        "batch {} bytes",
        bytes.len()
    );
    assert!(json.len() < 180_000, "execute msg {} bytes", json.len());
    // chunked batch verification gives the same result
    s.exec(
        &gov,
        ExecuteMsg::UpdateParams {
            params: Params {
                verify_chunk: 200,
                ..Params::default()
            },
        },
    )
    .unwrap();
    let (_, data) = s.settle(&items, true).unwrap();
    assert_eq!(data.settled, 1000);
    let t: Totals = s.query(QueryMsg::Totals {});
    let expected: u128 = (0..1000u128).map(|n| (1 + n % 7) * PRICE).sum();
    assert_eq!(t.paid.u128(), expected);
}

#[derive(Debug, Clone)]
enum Op {
    Deposit(bool, u128),
    Settle(bool, Vec<(u64, u64)>),
    Wait(u64),
    Withdraw(bool, Option<u128>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), 1u128..5_000).prop_map(|(w, a)| Op::Deposit(w, a)),
        (
            any::<bool>(),
            proptest::collection::vec((0u64..30, 1u64..40), 1..12)
        )
            .prop_map(|(w, v)| Op::Settle(w, v)),
        (0u64..10 * 86400).prop_map(Op::Wait),
        (any::<bool>(), proptest::option::of(1u128..3_000)).prop_map(|(w, a)| Op::Withdraw(w, a)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    /// Whatever happens: sum(escrow) + paid + withdrawn == deposited, the contract holds
    /// exactly sum(escrow), and no (signer, nonce) is ever paid twice.
    #[test]
    fn money_is_conserved(ops in proptest::collection::vec(op(), 1..14)) {
        let mut s = Suite::new();
        let (alice, bob) = (s.alice.clone(), s.bob.clone());
        let contract = s.settlement.clone();
        let mut paid_nonces = std::collections::BTreeSet::new();
        for op in ops {
            match op {
                Op::Deposit(w, a) => { s.deposit(if w { &alice } else { &bob }, a).unwrap(); }
                Op::Settle(w, items) => {
                    let (who, seed) = if w { (&alice, 2) } else { (&bob, 3) };
                    let atts: Vec<_> = items.iter().map(|(n, q)| s.att(who, seed, *n, *q)).collect();
                    let (_, data) = s.settle(&atts, false).unwrap();
                    // Keyed by the attestation's nonce, not the sequence drawn: the nonce
                    // carries the signing hour, so the same sequence an hour later is a new nonce.
                    for (a, code) in atts.iter().zip(data.codes.iter()) {
                        if *code == 0 { prop_assert!(paid_nonces.insert((seed, a.nonce)), "paid twice"); }
                        else {
                            let expected = [ItemError::NonceReused, ItemError::InsufficientEscrow, ItemError::WithdrawalPending];
                            prop_assert!(expected.iter().any(|e| *e as u8 == *code), "code {}", code);
                        }
                    }
                }
                Op::Wait(secs) => s.advance(secs),
                Op::Withdraw(w, a) => {
                    let who = if w { &alice } else { &bob };
                    let _ = s.exec(who, ExecuteMsg::RequestWithdrawal { amount: a.map(Uint128::new) });
                    let _ = s.exec(who, ExecuteMsg::Withdraw {});
                }
            }
            let t: Totals = s.query(QueryMsg::Totals {});
            let escrows: u128 = [&alice, &bob].iter().map(|c| {
                s.query::<Option<Escrow>>(QueryMsg::Escrow { consumer: c.to_string() }).map_or(0, |e| e.balance.u128())
            }).sum();
            prop_assert_eq!(escrows + t.paid.u128() + t.withdrawn.u128(), t.deposited.u128());
            prop_assert_eq!(s.balance(&contract), escrows);
        }
    }
}
