//! The on-chain [`Ledger`]: reads offers, escrows, floors and nonce bitmaps once per
//! distinct key of a batch, keeps every change in memory, and hands back the writes (one per
//! nonce bitmap, escrow and (consumer, provider) pair) for the contract to apply at the end.
//! Membership is a separate reader (`membership::ChainMembership`): the settlement chain of
//! the IBC pair has no consortium.

use std::collections::BTreeMap;

use cosmwasm_std::{Addr, StdError, Storage, Uint128};

use crate::engine::Ledger;
use crate::state::{load_nonce_chunk, nonce_slot, ESCROWS, NONCE_FLOORS, OFFERS};
use crate::types::{Escrow, OfferTerms};

/// (signer key, nonce hour, chunk) -> (bitmap, changed in this batch).
type NonceCache = BTreeMap<([u8; 32], u32, u32), Bitmap>;
/// A bitmap of 256 nonces and whether this batch changed it.
type Bitmap = ([u8; 32], bool);

pub struct ChainLedger<'a> {
    storage: &'a dyn Storage,
    offers: BTreeMap<(String, String), Option<OfferTerms>>,
    escrows: BTreeMap<String, (Option<Escrow>, bool)>,
    floors: BTreeMap<[u8; 32], u64>,
    nonces: NonceCache,
    paid: BTreeMap<(String, String), Uint128>,
    /// An overflow is not the item's fault: the whole transaction fails.
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
    pub fn new(storage: &'a dyn Storage) -> Self {
        ChainLedger {
            storage,
            offers: BTreeMap::new(),
            escrows: BTreeMap::new(),
            floors: BTreeMap::new(),
            nonces: BTreeMap::new(),
            paid: BTreeMap::new(),
            fatal: None,
        }
    }

    fn chunk(&mut self, key: &[u8; 32], nonce: u64) -> Option<(&mut Bitmap, usize, u8)> {
        let s = nonce_slot(nonce)?;
        let storage = self.storage;
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
            // An escrow is only read for a consumer that deposited: a validated address.
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
    fn offer(&mut self, provider: &str, kind: &str) -> Option<OfferTerms> {
        let key = (provider.to_owned(), kind.to_owned());
        if let Some(o) = self.offers.get(&key) {
            return o.clone();
        }
        // An offer exists only under an address this contract validated (its sender); any
        // other string finds none.
        let o = OFFERS
            .may_load(self.storage, (&Addr::unchecked(provider), kind))
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
        let storage = self.storage;
        *self.floors.entry(*key).or_insert_with(|| {
            NONCE_FLOORS
                .may_load(storage, key.as_slice())
                .ok()
                .flatten()
                .unwrap_or(0)
        })
    }

    fn escrow(&mut self, consumer: &str) -> Option<Escrow> {
        let storage = self.storage;
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
