//! The on-chain [`Ledger`]: reads storage and the consortium contract once per distinct key
//! of a batch, keeps every change in memory, and hands back the writes (one per nonce
//! bitmap, escrow and (consumer, provider) pair) for the contract to apply at the end.

use std::collections::BTreeMap;

use cosmwasm_std::{Addr, Deps, StdError, StdResult, Uint128};
use garden_wire::membership::{MemberResponse, MemberStatus};
use garden_wire::TrustLevel;

use crate::engine::{ItemError, Ledger, OfferTerms};
use crate::state::{load_nonce_chunk, nonce_slot, Escrow, ESCROWS, OFFERS};

pub struct ChainLedger<'a> {
    deps: Deps<'a>,
    consortium: &'a Addr,
    /// Block time, for L2 endorsement validity.
    now: u64,
    min_level: TrustLevel,
    scope: &'a str,
    signers: BTreeMap<[u8; 32], Result<String, ItemError>>,
    providers: BTreeMap<String, Result<(), ItemError>>,
    offers: BTreeMap<(String, String), Option<OfferTerms>>,
    escrows: BTreeMap<String, (Option<Escrow>, bool)>,
    nonces: BTreeMap<([u8; 32], u64), ([u8; 32], bool)>,
    paid: BTreeMap<(String, String), Uint128>,
    /// A failed consortium query is not the item's fault: the whole transaction fails.
    fatal: Option<StdError>,
}

/// Everything a batch changes, applied by the contract in one go.
pub struct Writes {
    pub nonces: Vec<([u8; 32], u64, [u8; 32])>,
    pub escrows: Vec<(Addr, Escrow)>,
    /// (consumer, provider) -> amount paid in this batch.
    pub paid: Vec<(Addr, Addr, Uint128)>,
}

impl<'a> ChainLedger<'a> {
    pub fn new(
        deps: Deps<'a>,
        consortium: &'a Addr,
        now: u64,
        min_level: TrustLevel,
        scope: &'a str,
    ) -> Self {
        ChainLedger {
            deps,
            consortium,
            now,
            min_level,
            scope,
            signers: BTreeMap::new(),
            providers: BTreeMap::new(),
            offers: BTreeMap::new(),
            escrows: BTreeMap::new(),
            nonces: BTreeMap::new(),
            paid: BTreeMap::new(),
            fatal: None,
        }
    }

    fn keep(&mut self, r: StdResult<Option<MemberResponse>>) -> Option<MemberResponse> {
        r.unwrap_or_else(|e| {
            self.fatal.get_or_insert(e);
            None
        })
    }

    fn chunk(&mut self, key: &[u8; 32], nonce: u64) -> (&mut ([u8; 32], bool), usize, u8) {
        let (chunk, byte, mask) = nonce_slot(nonce);
        let storage = self.deps.storage;
        let entry = self
            .nonces
            .entry((*key, chunk))
            .or_insert_with(|| (load_nonce_chunk(storage, key, chunk), false));
        (entry, byte, mask)
    }

    pub fn finish(self) -> Result<Writes, StdError> {
        if let Some(e) = self.fatal {
            return Err(e);
        }
        Ok(Writes {
            nonces: self
                .nonces
                .into_iter()
                .filter(|(_, (_, d))| *d)
                .map(|((k, c), (b, _))| (k, c, b))
                .collect(),
            // Member addresses come from the consortium, which validated them.
            escrows: self
                .escrows
                .into_iter()
                .filter_map(|(c, (e, dirty))| e.filter(|_| dirty).map(|e| (Addr::unchecked(c), e)))
                .collect(),
            paid: self
                .paid
                .into_iter()
                .map(|((c, p), a)| (Addr::unchecked(c), Addr::unchecked(p), a))
                .collect(),
        })
    }
}

impl Ledger for ChainLedger<'_> {
    fn signer(&mut self, key: &[u8; 32]) -> Result<String, ItemError> {
        if let Some(r) = self.signers.get(key) {
            return r.clone();
        }
        let m =
            crate::membership::member_by_key(&self.deps.querier, self.consortium, key, self.now);
        let r = match self.keep(m) {
            None => Err(ItemError::UnknownSigner),
            Some(m) if m.status == MemberStatus::Revoked => Err(ItemError::RevokedSigner),
            Some(m) if !m.allows(self.min_level, self.scope) => Err(ItemError::SignerNotTrusted),
            Some(m) => Ok(m.addr.into_string()),
        };
        self.signers.insert(*key, r.clone());
        r
    }

    fn check_provider(&mut self, provider: &str) -> Result<(), ItemError> {
        if let Some(r) = self.providers.get(provider) {
            return *r;
        }
        // Validate locally first: a malformed address is the item's problem, not a query failure.
        let r = if self.deps.api.addr_validate(provider).is_err() {
            Err(ItemError::ProviderNotMember)
        } else {
            let addr = Addr::unchecked(provider);
            let m = crate::membership::member(&self.deps.querier, self.consortium, &addr, self.now);
            match self.keep(m) {
                Some(m) if m.addr.as_str() == provider && m.allows(self.min_level, self.scope) => {
                    Ok(())
                }
                _ => Err(ItemError::ProviderNotMember),
            }
        };
        self.providers.insert(provider.to_owned(), r);
        r
    }

    fn offer(&mut self, provider: &str, kind: &str) -> Option<OfferTerms> {
        let key = (provider.to_owned(), kind.to_owned());
        if let Some(o) = self.offers.get(&key) {
            return o.clone();
        }
        // check_provider ran first, so `provider` is a valid, canonical address.
        let o = OFFERS
            .may_load(self.deps.storage, (&Addr::unchecked(provider), kind))
            .ok()
            .flatten()
            .map(|o| OfferTerms {
                unit: o.unit,
                unit_price: o.unit_price,
            });
        self.offers.insert(key, o.clone());
        o
    }

    fn nonce_used(&mut self, key: &[u8; 32], nonce: u64) -> bool {
        let ((bits, _), byte, mask) = self.chunk(key, nonce);
        bits[byte] & mask != 0
    }

    fn escrow_available(&mut self, consumer: &str) -> Uint128 {
        let storage = self.deps.storage;
        let (e, _) = self.escrows.entry(consumer.to_owned()).or_insert_with(|| {
            (
                ESCROWS
                    .may_load(storage, &Addr::unchecked(consumer))
                    .ok()
                    .flatten(),
                false,
            )
        });
        e.as_ref().map(|e| e.balance).unwrap_or_default()
    }

    fn record_payment(
        &mut self,
        key: &[u8; 32],
        nonce: u64,
        consumer: &str,
        provider: &str,
        amount: Uint128,
    ) {
        let ((bits, dirty), byte, mask) = self.chunk(key, nonce);
        bits[byte] |= mask;
        *dirty = true;
        // escrow_available() was called for this consumer just before and covered `amount`.
        if let Some((Some(e), dirty)) = self.escrows.get_mut(consumer) {
            e.balance -= amount;
            *dirty = true;
        }
        *self
            .paid
            .entry((consumer.to_owned(), provider.to_owned()))
            .or_default() += amount;
    }
}
