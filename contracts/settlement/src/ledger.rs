//! The on-chain [`Ledger`] and [`Membership`]: reads storage and the consortium's raw
//! storage once per distinct key of a batch (a signer's record is read once and each item is
//! judged at its own `signed_at` from it), keeps every change in memory, and hands back the
//! writes (one per nonce bitmap, escrow and (consumer, provider) pair) for the contract to
//! apply at the end.

use std::collections::BTreeMap;

use cosmwasm_std::{Addr, Binary, Deps, StdError, StdResult, Uint128};
use garden_wire::consortium::ConsortiumContract;
use garden_wire::{Member, TrustLevel};

use crate::engine::{provider_error, signer_error, ItemError, Ledger, Membership};
use crate::state::{load_nonce_chunk, nonce_slot, ESCROWS, NONCE_FLOORS, OFFERS};
use crate::types::{Escrow, OfferTerms};

/// (signer key, nonce hour, chunk) -> (bitmap, changed in this batch).
type NonceCache = BTreeMap<([u8; 32], u32, u32), Bitmap>;
/// A bitmap of 256 nonces and whether this batch changed it.
type Bitmap = ([u8; 32], bool);

/// A member record with the compromise times of its endorsers' keys, fetched together.
struct Record {
    addr: Addr,
    member: Member,
    endorsers: Vec<(Binary, Option<u64>)>,
}

impl Record {
    fn standing_at(
        &self,
        t: u64,
        now: u64,
        min: TrustLevel,
        scope: &str,
    ) -> Result<(), garden_wire::Refusal> {
        self.member.standing_at(t, now, min, scope, |k| {
            self.endorsers
                .iter()
                .find(|(e, _)| e.as_slice() == k)
                .and_then(|(_, c)| *c)
        })
    }
}

pub struct ChainLedger<'a> {
    deps: Deps<'a>,
    consortium: ConsortiumContract,
    /// Block time: suspensions are judged now.
    now: u64,
    min_level: TrustLevel,
    scope: &'a str,
    signers: BTreeMap<[u8; 32], Option<Record>>,
    providers: BTreeMap<String, Option<Record>>,
    compromised: BTreeMap<Vec<u8>, Option<u64>>,
    offers: BTreeMap<(String, String), Option<OfferTerms>>,
    escrows: BTreeMap<String, (Option<Escrow>, bool)>,
    floors: BTreeMap<[u8; 32], u64>,
    nonces: NonceCache,
    paid: BTreeMap<(String, String), Uint128>,
    /// A failed consortium read (or an overflow) is not the item's fault: the whole
    /// transaction fails.
    fatal: Option<StdError>,
}

/// Everything a batch changes, applied by the contract in one go.
pub struct Writes {
    pub nonces: Vec<([u8; 32], u32, u32, [u8; 32])>,
    pub escrows: Vec<(Addr, Escrow)>,
    /// (consumer, provider) -> amount paid in this batch.
    pub paid: Vec<(Addr, Addr, Uint128)>,
}

impl<'a> ChainLedger<'a> {
    pub fn new(
        deps: Deps<'a>,
        consortium: &Addr,
        now: u64,
        min_level: TrustLevel,
        scope: &'a str,
    ) -> Self {
        ChainLedger {
            deps,
            consortium: ConsortiumContract(consortium.clone()),
            now,
            min_level,
            scope,
            signers: BTreeMap::new(),
            providers: BTreeMap::new(),
            compromised: BTreeMap::new(),
            offers: BTreeMap::new(),
            escrows: BTreeMap::new(),
            floors: BTreeMap::new(),
            nonces: BTreeMap::new(),
            paid: BTreeMap::new(),
            fatal: None,
        }
    }

    fn keep<T>(&mut self, r: StdResult<Option<T>>) -> Option<T> {
        r.unwrap_or_else(|e| {
            self.fatal.get_or_insert(e);
            None
        })
    }

    /// Completes a member record with its endorsers' compromise times (cached per key).
    fn record(&mut self, addr: Addr, member: Member) -> Record {
        let mut endorsers = Vec::new();
        for e in &member.endorsements {
            let key = e.endorser_key.to_vec();
            let c = match self.compromised.get(&key) {
                Some(c) => *c,
                None => {
                    let q = self.deps.querier;
                    let c = self
                        .keep(self.consortium.compromised_at(&q, &key).map(Some))
                        .flatten();
                    self.compromised.insert(key, c);
                    c
                }
            };
            endorsers.push((e.endorser_key.clone(), c));
        }
        Record {
            addr,
            member,
            endorsers,
        }
    }

    fn chunk(&mut self, key: &[u8; 32], nonce: u64) -> Option<(&mut Bitmap, usize, u8)> {
        let s = nonce_slot(nonce)?;
        let storage = self.deps.storage;
        let entry = self
            .nonces
            .entry((*key, s.epoch, s.chunk))
            .or_insert_with(|| (load_nonce_chunk(storage, key, s.epoch, s.chunk), false));
        Some((entry, s.byte, s.mask))
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
                .map(|((k, e, c), (b, _))| (k, e, c, b))
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

impl Membership for ChainLedger<'_> {
    fn signer_at(&mut self, key: &[u8; 32], signed_at: u64) -> Result<String, ItemError> {
        if !self.signers.contains_key(key) {
            let q = self.deps.querier;
            let found = self.consortium.key_record(&q, key);
            let rec = self.keep(found).map(|r| self.record(r.addr, r.member));
            self.signers.insert(*key, rec);
        }
        let rec = self.signers[key].as_ref().ok_or(ItemError::UnknownSigner)?;
        rec.standing_at(signed_at, self.now, self.min_level, self.scope)
            .map_err(signer_error)?;
        Ok(rec.addr.to_string())
    }

    fn provider_at(&mut self, provider: &str, signed_at: u64) -> Result<(), ItemError> {
        if !self.providers.contains_key(provider) {
            // Validate locally first: a malformed address is the item's problem, not a
            // failed read.
            let rec = match self.deps.api.addr_validate(provider) {
                Ok(addr) if addr.as_str() == provider => {
                    let q = self.deps.querier;
                    let found = self.consortium.member(&q, &addr);
                    self.keep(found).map(|m| self.record(addr, m))
                }
                _ => None,
            };
            self.providers.insert(provider.to_owned(), rec);
        }
        let rec = self.providers[provider]
            .as_ref()
            .ok_or(ItemError::ProviderNotMember)?;
        rec.standing_at(signed_at, self.now, self.min_level, self.scope)
            .map_err(provider_error)
    }
}

impl Ledger for ChainLedger<'_> {
    fn offer(&mut self, provider: &str, kind: &str) -> Option<OfferTerms> {
        let key = (provider.to_owned(), kind.to_owned());
        if let Some(o) = self.offers.get(&key) {
            return o.clone();
        }
        // provider_at ran first, so `provider` is a valid, canonical address.
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
        match self.chunk(key, nonce) {
            Some(((bits, _), byte, mask)) => bits[byte] & mask != 0,
            None => true,
        }
    }

    fn nonce_floor(&mut self, key: &[u8; 32]) -> u64 {
        let storage = self.deps.storage;
        *self.floors.entry(*key).or_insert_with(|| {
            NONCE_FLOORS
                .may_load(storage, key.as_slice())
                .ok()
                .flatten()
                .unwrap_or(0)
        })
    }

    fn escrow(&mut self, consumer: &str) -> Option<Escrow> {
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
        e.clone()
    }

    fn record_payment(
        &mut self,
        key: &[u8; 32],
        nonce: u64,
        consumer: &str,
        provider: &str,
        amount: Uint128,
    ) {
        if let Some(((bits, dirty), byte, mask)) = self.chunk(key, nonce) {
            bits[byte] |= mask;
            *dirty = true;
        }
        // escrow() was read for this consumer just before and covered `amount`.
        if let Some((Some(e), dirty)) = self.escrows.get_mut(consumer) {
            e.balance = e.balance.saturating_sub(amount);
            *dirty = true;
        }
        let paid = self
            .paid
            .entry((consumer.to_owned(), provider.to_owned()))
            .or_default();
        match paid.checked_add(amount) {
            Ok(p) => *paid = p,
            Err(e) => {
                self.fatal.get_or_insert(e.into());
            }
        }
    }
}
