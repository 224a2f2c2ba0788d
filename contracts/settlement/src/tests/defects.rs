//! The settlement defects of v0.1, each as the scenario that broke the settle-later promise.

use cosmwasm_std::Binary;
use garden_wire::{nonce, RevocationKind};

use super::suite::{assert_err, attr, key, Suite, PRICE};
use crate::msg::*;
use crate::types::*;
use crate::ContractError;

const DAY: u64 = 86_400;

/// A consumer signs for work, then asks for its money back before the provider submits:
/// the attestation is still paid, and only what is left leaves after the notice.
#[test]
fn a_withdrawal_cannot_race_a_pending_attestation() {
    let mut s = Suite::new();
    let alice = s.alice.clone();
    s.deposit(&alice, 1_000).unwrap();
    s.advance(9 * DAY); // long after the deposit: v0.1's lock would have ended
    let work = s.att(&alice, 2, 0, 100); // 700 owed
    s.advance(60);
    s.exec(&alice, ExecuteMsg::RequestWithdrawal { amount: None })
        .unwrap();
    assert!(s.exec(&alice, ExecuteMsg::Withdraw {}).is_err());
    // signed after the request: the escrow is off limits to it
    s.advance(120);
    let late = s.att(&alice, 2, 1, 1);
    s.advance(6 * DAY);
    let (_, data) = s.settle(&[work, late], false).unwrap();
    assert_eq!(
        data.codes.to_vec(),
        vec![0, ItemError::WithdrawalPending as u8]
    );
    s.advance(2 * DAY);
    let before = s.balance(&alice);
    s.exec(&alice, ExecuteMsg::Withdraw {}).unwrap();
    assert_eq!(s.balance(&alice), before + 1_000 - 100 * PRICE);
}

/// Anyone could push a consumer's escrow back to it; now only the consumer or governance.
#[test]
fn a_third_party_cannot_refund_an_escrow() {
    let mut s = Suite::new();
    let (alice, carol) = (s.alice.clone(), s.carol.clone());
    s.deposit(&alice, 1_000).unwrap();
    s.advance(30 * DAY);
    assert_err(
        s.exec(
            &carol,
            ExecuteMsg::Refund {
                consumer: alice.to_string(),
            },
        )
        .unwrap_err(),
        ContractError::NotConsumerOrAdmin {
            consumer: alice.to_string(),
        },
    );
    let e: Option<Escrow> = s.query(QueryMsg::Escrow {
        consumer: alice.to_string(),
    });
    assert_eq!(e.unwrap().balance.u128(), 1_000);
}

/// Work signed before a member's departure settles after it, within the window; nothing
/// signed after the departure does.
#[test]
fn signed_before_a_departure_settles_after_it() {
    let mut s = Suite::new();
    let alice = s.alice.clone();
    s.deposit(&alice, 10_000).unwrap();
    let before = s.att(&alice, 2, 0, 1);
    s.advance(120);
    s.revoke(&alice, RevocationKind::Departure);
    s.advance(120);
    let after = s.att(&alice, 2, 1, 1);
    s.advance(3 * DAY);
    let (_, data) = s.settle(&[before, after], false).unwrap();
    assert_eq!(data.codes.to_vec(), vec![0, ItemError::RevokedSigner as u8]);
}

/// After a compromise nothing unsettled from the key is paid, whenever it claims to be signed.
#[test]
fn signed_before_a_compromise_is_refused_after_it() {
    let mut s = Suite::new();
    let alice = s.alice.clone();
    s.deposit(&alice, 10_000).unwrap();
    let before = s.att(&alice, 2, 0, 1);
    s.advance(120);
    s.revoke(&alice, RevocationKind::Compromise);
    let (_, data) = s.settle(&[before], false).unwrap();
    assert_eq!(
        data.codes.to_vec(),
        vec![ItemError::SignerCompromised as u8]
    );
}

/// A provider revoked for compromise is not paid (its account may be the thief's); one that
/// departed is paid for work signed before it left.
#[test]
fn provider_status_is_judged_at_signing_time() {
    let mut s = Suite::new();
    let (alice, provider) = (s.alice.clone(), s.provider.clone());
    s.deposit(&alice, 10_000).unwrap();
    let work = s.att(&alice, 2, 0, 1);
    s.advance(120);
    s.revoke(&provider, RevocationKind::Departure);
    s.advance(120);
    let after = s.att(&alice, 2, 1, 1);
    let (_, data) = s.settle(&[work, after], false).unwrap();
    assert_eq!(
        data.codes.to_vec(),
        vec![0, ItemError::ProviderNotMember as u8]
    );
}

/// bob is L2 by alice's endorsement. Once alice's key is revoked for compromise, bob's
/// attestations signed after that time no longer count; those signed before still do.
#[test]
fn an_endorser_revoked_for_compromise_voids_what_its_endorsements_allow_from_then() {
    let mut s = Suite::new();
    let (alice, bob) = (s.alice.clone(), s.bob.clone());
    s.deposit(&bob, 10_000).unwrap();
    let before = s.att(&bob, 3, 0, 1);
    s.advance(120);
    s.revoke(&alice, RevocationKind::Compromise);
    s.advance(120);
    let after = s.att(&bob, 3, 1, 1);
    let (_, data) = s.settle(&[before, after], false).unwrap();
    assert_eq!(
        data.codes.to_vec(),
        vec![0, ItemError::SignerNotTrusted as u8]
    );
}

/// A consumer cancels leaked, unsettled nonces with a floor; the floor only rises.
#[test]
fn a_nonce_floor_cancels_unsettled_nonces() {
    let mut s = Suite::new();
    let alice = s.alice.clone();
    s.deposit(&alice, 10_000).unwrap();
    let leaked = s.att(&alice, 2, 0, 1);
    let kept = s.att(&alice, 2, 5, 1);
    s.exec(&alice, ExecuteMsg::SetNonceFloor { nonce: kept.nonce })
        .unwrap();
    let (_, data) = s.settle(&[leaked, kept.clone()], false).unwrap();
    assert_eq!(
        data.codes.to_vec(),
        vec![ItemError::NonceCancelled as u8, 0]
    );
    assert_err(
        s.exec(&alice, ExecuteMsg::SetNonceFloor { nonce: kept.nonce })
            .unwrap_err(),
        ContractError::FloorNotRaised {
            requested: kept.nonce,
            current: kept.nonce,
        },
    );
    let far = nonce::first_nonce(nonce::epoch(s.now()) + 5);
    assert!(s
        .exec(&alice, ExecuteMsg::SetNonceFloor { nonce: far })
        .is_err());
    let signer = Binary::from(key(2).verifying_key().to_bytes().to_vec());
    assert_eq!(s.query::<u64>(QueryMsg::NonceFloor { signer }), kept.nonce);
    let outsider = s.app.api().addr_make("outsider");
    assert_err(
        s.exec(&outsider, ExecuteMsg::SetNonceFloor { nonce: 1 })
            .unwrap_err(),
        ContractError::NotMember {
            addr: outsider.to_string(),
        },
    );
}

/// Nonce bitmaps older than the window are deleted a few per batch, and their nonces stay
/// refused even if governance widens the window afterwards.
#[test]
fn old_nonce_bitmaps_are_pruned_and_stay_refused() {
    let mut s = Suite::new();
    let (alice, gov) = (s.alice.clone(), s.gov.clone());
    s.deposit(&alice, 10_000).unwrap();
    let first = s.att(&alice, 2, 0, 1);
    s.settle(std::slice::from_ref(&first), false).unwrap();
    let signer = Binary::from(key(2).verifying_key().to_bytes().to_vec());
    let used = |s: &Suite| {
        s.query::<bool>(QueryMsg::NonceUsed {
            signer: signer.clone(),
            nonce: first.nonce,
        })
    };
    assert!(used(&s));
    s.advance(8 * DAY);
    let (res, _) = s.settle(&[s.att(&alice, 2, 0, 1)], false).unwrap();
    assert_eq!(attr(&res, "pruned").as_deref(), Some("1"));
    assert!(!used(&s), "the bitmap is gone");
    // widen the window: the old attestation is still refused (its hour was pruned)
    let wide = Params {
        window_secs: 30 * DAY,
        withdrawal_notice_secs: 30 * DAY,
        ..Params::default()
    };
    s.exec(&gov, ExecuteMsg::UpdateParams { params: wide })
        .unwrap();
    let (_, data) = s.settle(&[first], false).unwrap();
    assert_eq!(data.codes.to_vec(), vec![ItemError::NonceExpired as u8]);
    let res = s.exec(&alice, ExecuteMsg::Prune { limit: 10 }).unwrap();
    assert_eq!(attr(&res, "pruned").as_deref(), Some("0"));
    assert_err(
        s.exec(&alice, ExecuteMsg::Prune { limit: 0 }).unwrap_err(),
        ContractError::InvalidPruneLimit,
    );
}
