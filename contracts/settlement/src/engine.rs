//! Settlement rules, behind a small interface.
//!
//! [`settle`] takes a decoded batch and runs every item through the same checks, in this
//! order (the first failing check is the item's [`ItemError`]):
//!
//! 1. static: `quantity > 0`, `period_start <= period_end <= signed_at`
//! 2. window: `now - window_secs <= signed_at <= now + max_future_secs`
//! 3. signer: the key belongs to an active member, trusted enough (level, L2 scope)
//! 4. the signer's member address is the attestation's consumer (its escrow pays)
//! 5. provider is an active member; offer (provider, price_ref) exists, same unit,
//!    unit price <= max_unit_price; amount = quantity x unit price fits in 128 bits
//! 6. nonce not settled before
//! 7. Ed25519 signature over the v1 signing bytes (domain = chain id + this contract)
//! 8. in batch order: nonce not already taken by an earlier item of this batch, escrow
//!    covers the amount; then the nonce is marked and the payment recorded.
//!
//! A rejected item changes nothing (its nonce stays free, so a corrected or re-funded
//! attestation can settle later); a settled one can never settle again (its nonce is taken).
//!
//! Anything implementing [`Ledger`] and [`Verifier`] can run these rules: the contract does
//! it over its storage and a consortium query ([`crate::ledger::ChainLedger`]); a
//! confidential backend (Secret Network, Penumbra) would do it over its own state.

use cosmwasm_std::Uint128;
use garden_wire::attestation::Domain;
use garden_wire::{AttestationRef, Batch};

/// Why one attestation was not settled. The discriminant is the code reported per item
/// (0 means settled). Codes are stable: new ones are appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum ItemError {
    #[error("signature does not verify")]
    BadSignature = 1,
    #[error("signer key is not a consortium member")]
    UnknownSigner = 2,
    #[error("signer was revoked")]
    RevokedSigner = 3,
    #[error("signer's trust level or L2 scope is insufficient")]
    SignerNotTrusted = 4,
    #[error("nonce already settled")]
    NonceReused = 5,
    #[error("signed_at is older than the settlement window")]
    StaleTimestamp = 6,
    #[error("signed_at is in the future beyond the tolerated skew")]
    FutureTimestamp = 7,
    #[error("consumer escrow does not cover the amount")]
    InsufficientEscrow = 8,
    #[error("provider has no offer for this price reference")]
    NoOffer = 9,
    #[error("unit differs from the offer's unit")]
    UnitMismatch = 10,
    #[error("offer price is above the consumer's max_unit_price")]
    PriceAboveCap = 11,
    #[error("signer is not the attestation's consumer")]
    SignerNotConsumer = 12,
    #[error("period is inconsistent (start <= end <= signed_at)")]
    InvalidPeriod = 13,
    #[error("provider is not an active, trusted member")]
    ProviderNotMember = 14,
    #[error("quantity is zero")]
    ZeroQuantity = 15,
    #[error("amount overflows")]
    AmountOverflow = 16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferTerms {
    pub unit: String,
    pub unit_price: Uint128,
}

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

/// State the rules read and change. Implementations cache as they like; `settle` calls
/// `record_payment` only for items that passed every check, in batch order.
pub trait Ledger {
    /// The member address owning `key`, if it may sign now; else UnknownSigner,
    /// RevokedSigner or SignerNotTrusted.
    fn signer(&mut self, key: &[u8; 32]) -> Result<String, ItemError>;
    /// Ok if `provider` may be paid (active, trusted member); else ProviderNotMember.
    fn check_provider(&mut self, provider: &str) -> Result<(), ItemError>;
    fn offer(&mut self, provider: &str, kind: &str) -> Option<OfferTerms>;
    fn nonce_used(&mut self, key: &[u8; 32], nonce: u64) -> bool;
    fn escrow_available(&mut self, consumer: &str) -> Uint128;
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
}

/// Per item: `Ok(amount paid)` or the rejection.
pub type ItemResult = Result<Uint128, ItemError>;

fn precheck<L: Ledger>(
    l: &mut L,
    r: &Rules<'_>,
    a: &AttestationRef<'_>,
) -> Result<Uint128, ItemError> {
    if a.quantity == 0 {
        return Err(ItemError::ZeroQuantity);
    }
    if a.period_start > a.period_end || a.period_end > a.signed_at {
        return Err(ItemError::InvalidPeriod);
    }
    check_window(a.signed_at, r.now, r.window_secs, r.max_future_secs)?;
    if l.signer(a.signer)? != a.consumer {
        return Err(ItemError::SignerNotConsumer);
    }
    l.check_provider(a.provider)?;
    let offer = l.offer(a.provider, a.price_ref).ok_or(ItemError::NoOffer)?;
    if offer.unit != a.unit {
        return Err(ItemError::UnitMismatch);
    }
    if offer.unit_price.u128() > a.max_unit_price {
        return Err(ItemError::PriceAboveCap);
    }
    let amount = offer
        .unit_price
        .checked_mul(Uint128::from(a.quantity))
        .map_err(|_| ItemError::AmountOverflow)?;
    if l.nonce_used(a.signer, a.nonce) {
        return Err(ItemError::NonceReused);
    }
    Ok(amount)
}

pub fn settle<L: Ledger, V: Verifier + ?Sized>(
    l: &mut L,
    v: &V,
    r: &Rules<'_>,
    batch: &Batch<'_>,
) -> Vec<ItemResult> {
    let n = batch.len();
    // Pass 1: everything but the signature (cheap, cached lookups).
    let mut results: Vec<ItemResult> = (0..n).map(|i| precheck(l, r, &batch.get(i))).collect();
    // Pass 2: signatures of the survivors.
    let todo: Vec<usize> = (0..n).filter(|i| results[*i].is_ok()).collect();
    let msgs: Vec<Vec<u8>> = todo
        .iter()
        .map(|i| batch.get(*i).signing_bytes(&r.domain))
        .collect();
    let chunk = if r.verify_chunk == 0 {
        1
    } else {
        r.verify_chunk
    };
    for (ids, ms) in todo.chunks(chunk).zip(msgs.chunks(chunk)) {
        let items: Vec<AttestationRef<'_>> = ids.iter().map(|i| batch.get(*i)).collect();
        if ids.len() > 1 {
            let m: Vec<&[u8]> = ms.iter().map(Vec::as_slice).collect();
            let s: Vec<&[u8]> = items.iter().map(|a| &a.signature[..]).collect();
            let k: Vec<&[u8]> = items.iter().map(|a| &a.signer[..]).collect();
            if v.verify_batch(&m, &s, &k) {
                continue;
            }
        }
        // One by one (also the fallback that finds the bad items of a failed chunk).
        for ((i, m), a) in ids.iter().zip(ms).zip(&items) {
            if !v.verify(m, a.signature, a.signer) {
                results[*i] = Err(ItemError::BadSignature);
            }
        }
    }
    // Pass 3: apply in batch order; duplicates inside the batch and escrow exhaustion show here.
    for (i, res) in results.iter_mut().enumerate() {
        let Ok(amount) = *res else { continue };
        let a = batch.get(i);
        if l.nonce_used(a.signer, a.nonce) {
            *res = Err(ItemError::NonceReused);
        } else if l.escrow_available(a.consumer) < amount {
            *res = Err(ItemError::InsufficientEscrow);
        } else {
            l.record_payment(a.signer, a.nonce, a.consumer, a.provider, amount);
        }
    }
    results
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
