//! Settlement rules, behind a small interface.
//!
//! [`settle`] takes a decoded batch and runs every item through the same checks, in this
//! order (the first failing check is the item's [`ItemError`]):
//!
//! 1. static ([`check_static`]): `quantity > 0`, `period_start <= period_end <= signed_at`;
//!    window `now - window_secs <= signed_at <= now + max_future_secs`; the garden-wire nonce
//!    rule (the nonce lies in `signed_at`'s hour) and the nonce's hour not pruned
//! 2. membership at `signed_at` ([`check_membership`]): the signer key's standing (not
//!    compromised, not suspended now, admitted before `signed_at`, not departed before it,
//!    trusted enough with its L2 endorsement valid then); the signer's member address is the
//!    consumer; the provider's standing at `signed_at` likewise
//! 3. terms ([`check_terms`]): nonce at or above the consumer's floor and not settled before;
//!    offer (provider, price_ref) exists, same unit, unit price <= max_unit_price,
//!    amount = quantity x unit price fits in 128 bits
//! 4. Ed25519 signature over the v1 signing bytes (domain = chain id + this contract)
//! 5. apply ([`apply`]), oldest `signed_at` first (then signer key, nonce): nonce not taken by
//!    an item applied before; the escrow covers the amount with what an attestation signed
//!    then may draw (a pending withdrawal is off limits to attestations signed after its
//!    request); then the nonce is marked and the payment recorded.
//!
//! A rejected item changes nothing (its nonce stays free, so a corrected or re-funded
//! attestation can settle later); a settled one can never settle again (its nonce is taken).
//! Applying oldest first makes who is paid from a short escrow independent of how the
//! submitter ordered the batch.
//!
//! Membership (steps 2 and 4) and payment (steps 1, 3 and 5) are separable: an IBC gateway on
//! the zone can run [`check_static`], [`check_membership`] and the signatures, and the
//! settlement chain then runs [`settle_verified`] on what it forwards.

use cosmwasm_std::Uint128;
use garden_wire::attestation::Domain;
use garden_wire::{nonce, AttestationRef, Batch, Refusal};

pub use crate::types::ItemError;
use crate::types::{Escrow, OfferTerms};

/// Window rule for `signed_at` (pure; `now` explicit).
pub fn check_window(
    signed_at: u64,
    now: u64,
    window_secs: u64,
    max_future_secs: u64,
) -> Result<(), ItemError> {
    if signed_at < now.saturating_sub(window_secs) {
        Err(ItemError::StaleTimestamp)
    } else if signed_at > now.saturating_add(max_future_secs) {
        Err(ItemError::FutureTimestamp)
    } else {
        Ok(())
    }
}

/// Who may sign and be paid, judged at an attestation's `signed_at`.
pub trait Membership {
    /// The member address owning `key` if it may sign for something dated `signed_at`.
    fn signer_at(&mut self, key: &[u8; 32], signed_at: u64) -> Result<String, ItemError>;
    /// Ok if `provider` may be paid for work dated `signed_at`.
    fn provider_at(&mut self, provider: &str, signed_at: u64) -> Result<(), ItemError>;
}

/// Signer refusals as item codes.
pub fn signer_error(r: Refusal) -> ItemError {
    match r {
        Refusal::Compromised => ItemError::SignerCompromised,
        Refusal::Suspended => ItemError::SignerSuspended,
        Refusal::NotYetMember => ItemError::SignedBeforeAdmission,
        Refusal::Departed => ItemError::RevokedSigner,
        Refusal::NotTrusted => ItemError::SignerNotTrusted,
    }
}

/// Provider refusals as item codes.
pub fn provider_error(r: Refusal) -> ItemError {
    match r {
        Refusal::Compromised => ItemError::ProviderCompromised,
        _ => ItemError::ProviderNotMember,
    }
}

/// State the payment rules read and change. Implementations cache as they like; `apply`
/// calls `record_payment` only for items that passed every check.
pub trait Ledger {
    fn offer(&mut self, provider: &str, kind: &str) -> Option<OfferTerms>;
    fn nonce_used(&mut self, key: &[u8; 32], nonce: u64) -> bool;
    /// Nonces below this were cancelled by the key's owner.
    fn nonce_floor(&mut self, key: &[u8; 32]) -> u64;
    /// The consumer's escrow as it stands (after the payments recorded so far).
    fn escrow(&mut self, consumer: &str) -> Option<Escrow>;
    /// Mark the nonce, debit the consumer, credit the provider (all in the same step).
    fn record_payment(
        &mut self,
        key: &[u8; 32],
        nonce: u64,
        consumer: &str,
        provider: &str,
        amount: Uint128,
    );
}

pub trait Verifier {
    fn verify(&self, msg: &[u8], sig: &[u8], key: &[u8]) -> bool;
    fn verify_batch(&self, msgs: &[&[u8]], sigs: &[&[u8]], keys: &[&[u8]]) -> bool;
}

impl Verifier for dyn cosmwasm_std::Api + '_ {
    fn verify(&self, msg: &[u8], sig: &[u8], key: &[u8]) -> bool {
        self.ed25519_verify(msg, sig, key).unwrap_or(false)
    }
    fn verify_batch(&self, msgs: &[&[u8]], sigs: &[&[u8]], keys: &[&[u8]]) -> bool {
        self.ed25519_batch_verify(msgs, sigs, keys).unwrap_or(false)
    }
}

pub struct Rules<'a> {
    pub domain: Domain<'a>,
    pub now: u64,
    pub window_secs: u64,
    pub max_future_secs: u64,
    /// 0 = one by one; else chunked batch verification with fallback.
    pub verify_chunk: usize,
    /// Nonce hours below this were pruned: their nonces are refused whatever the window.
    pub pruned_below: u64,
}

/// Per item: `Ok(amount paid)` or the rejection.
pub type ItemResult = Result<Uint128, ItemError>;

pub fn check_static(r: &Rules<'_>, a: &AttestationRef<'_>) -> Result<(), ItemError> {
    if a.quantity == 0 {
        return Err(ItemError::ZeroQuantity);
    }
    if a.period_start > a.period_end || a.period_end > a.signed_at {
        return Err(ItemError::InvalidPeriod);
    }
    check_window(a.signed_at, r.now, r.window_secs, r.max_future_secs)?;
    nonce::check(a.nonce, a.signed_at).map_err(|_| ItemError::NonceOutOfEpoch)?;
    if nonce::nonce_epoch(a.nonce) < r.pruned_below {
        return Err(ItemError::NonceExpired);
    }
    Ok(())
}

pub fn check_membership<M: Membership + ?Sized>(
    m: &mut M,
    a: &AttestationRef<'_>,
) -> Result<(), ItemError> {
    if m.signer_at(a.signer, a.signed_at)? != a.consumer {
        return Err(ItemError::SignerNotConsumer);
    }
    m.provider_at(a.provider, a.signed_at)
}

pub fn check_terms<L: Ledger + ?Sized>(l: &mut L, a: &AttestationRef<'_>) -> ItemResult {
    if a.nonce < l.nonce_floor(a.signer) {
        return Err(ItemError::NonceCancelled);
    }
    if l.nonce_used(a.signer, a.nonce) {
        return Err(ItemError::NonceReused);
    }
    let offer = l.offer(a.provider, a.price_ref).ok_or(ItemError::NoOffer)?;
    if offer.unit != a.unit {
        return Err(ItemError::UnitMismatch);
    }
    if offer.unit_price.u128() > a.max_unit_price {
        return Err(ItemError::PriceAboveCap);
    }
    offer
        .unit_price
        .checked_mul(Uint128::from(a.quantity))
        .map_err(|_| ItemError::AmountOverflow)
}

/// Signatures of the items still `Ok`, in chunks (`verify_chunk`), one by one inside a chunk
/// that fails so the bad items are found.
pub fn verify_signatures<V: Verifier + ?Sized>(
    v: &V,
    r: &Rules<'_>,
    items: &[AttestationRef<'_>],
    results: &mut [ItemResult],
) {
    let todo: Vec<usize> = (0..items.len()).filter(|i| results[*i].is_ok()).collect();
    let msgs: Vec<Vec<u8>> = todo
        .iter()
        .map(|i| items[*i].signing_bytes(&r.domain))
        .collect();
    let chunk = r.verify_chunk.max(1);
    for (ids, ms) in todo.chunks(chunk).zip(msgs.chunks(chunk)) {
        if ids.len() > 1 {
            let m: Vec<&[u8]> = ms.iter().map(Vec::as_slice).collect();
            let s: Vec<&[u8]> = ids.iter().map(|i| &items[*i].signature[..]).collect();
            let k: Vec<&[u8]> = ids.iter().map(|i| &items[*i].signer[..]).collect();
            if v.verify_batch(&m, &s, &k) {
                continue;
            }
        }
        for (i, m) in ids.iter().zip(ms) {
            let a = &items[*i];
            if !v.verify(m, a.signature, a.signer) {
                results[*i] = Err(ItemError::BadSignature);
            }
        }
    }
}

/// Applies the items still `Ok`, oldest `signed_at` first (ties: signer key, nonce, position).
pub fn apply<L: Ledger + ?Sized>(
    l: &mut L,
    items: &[AttestationRef<'_>],
    results: &mut [ItemResult],
) {
    let mut order: Vec<usize> = (0..items.len()).filter(|i| results[*i].is_ok()).collect();
    order.sort_by_key(|i| (items[*i].signed_at, items[*i].signer, items[*i].nonce, *i));
    for i in order {
        let Ok(amount) = results[i] else { continue };
        let a = &items[i];
        let escrow = l.escrow(a.consumer).unwrap_or_default();
        results[i] = if l.nonce_used(a.signer, a.nonce) {
            Err(ItemError::NonceReused)
        } else if escrow.available_for(a.signed_at) >= amount {
            l.record_payment(a.signer, a.nonce, a.consumer, a.provider, amount);
            Ok(amount)
        } else if escrow.balance >= amount {
            Err(ItemError::WithdrawalPending)
        } else {
            Err(ItemError::InsufficientEscrow)
        };
    }
}

/// The whole rule set over a decoded batch.
pub fn settle<L, V>(l: &mut L, v: &V, r: &Rules<'_>, batch: &Batch<'_>) -> Vec<ItemResult>
where
    L: Ledger + Membership,
    V: Verifier + ?Sized,
{
    let items: Vec<AttestationRef<'_>> = batch.iter().collect();
    let mut results: Vec<ItemResult> = items
        .iter()
        .map(|a| {
            check_static(r, a)?;
            check_membership(l, a)?;
            check_terms(l, a)
        })
        .collect();
    verify_signatures(v, r, &items, &mut results);
    apply(l, &items, &mut results);
    results
}

/// A [`Membership`] and a [`Ledger`] kept apart (the chain reads them from different
/// places: the consortium and this contract's storage) seen as one, for [`settle`].
pub struct Split<'x, M: ?Sized, L: ?Sized>(pub &'x mut M, pub &'x mut L);

impl<M: Membership + ?Sized, L: ?Sized> Membership for Split<'_, M, L> {
    fn signer_at(&mut self, key: &[u8; 32], signed_at: u64) -> Result<String, ItemError> {
        self.0.signer_at(key, signed_at)
    }
    fn provider_at(&mut self, provider: &str, signed_at: u64) -> Result<(), ItemError> {
        self.0.provider_at(provider, signed_at)
    }
}

impl<M: ?Sized, L: Ledger + ?Sized> Ledger for Split<'_, M, L> {
    fn offer(&mut self, provider: &str, kind: &str) -> Option<OfferTerms> {
        self.1.offer(provider, kind)
    }
    fn nonce_used(&mut self, key: &[u8; 32], nonce: u64) -> bool {
        self.1.nonce_used(key, nonce)
    }
    fn nonce_floor(&mut self, key: &[u8; 32]) -> u64 {
        self.1.nonce_floor(key)
    }
    fn escrow(&mut self, consumer: &str) -> Option<Escrow> {
        self.1.escrow(consumer)
    }
    fn record_payment(
        &mut self,
        key: &[u8; 32],
        nonce: u64,
        consumer: &str,
        provider: &str,
        amount: Uint128,
    ) {
        self.1
            .record_payment(key, nonce, consumer, provider, amount)
    }
}

/// Payment rules only, for items whose signature and membership at `signed_at` a trusted
/// source (an IBC gateway reading the consortium) already verified.
pub fn settle_verified<L: Ledger + ?Sized>(
    l: &mut L,
    r: &Rules<'_>,
    items: &[AttestationRef<'_>],
) -> Vec<ItemResult> {
    let mut results: Vec<ItemResult> = items
        .iter()
        .map(|a| {
            check_static(r, a)?;
            check_terms(l, a)
        })
        .collect();
    apply(l, items, &mut results);
    results
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
