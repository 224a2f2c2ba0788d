use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Binary, Storage, Uint128};
use cw_storage_plus::{Item, Map};

use crate::msg::Params;

#[cw_serde]
pub struct Config {
    pub consortium: Addr,
    pub denom: String,
    pub params: Params,
    /// Governance admin (typically the x/gov module account).
    pub admin: Option<Addr>,
}

#[cw_serde]
pub struct Offer {
    pub unit: String,
    /// Native denom base units per `unit`.
    pub unit_price: Uint128,
}

#[cw_serde]
pub struct Escrow {
    pub balance: Uint128,
    /// Unix seconds before which the consumer cannot withdraw (attestations it signed can
    /// still settle against it until then).
    pub locked_until: u64,
}

/// Running totals for the invariant `sum(escrow) + paid + withdrawn == deposited`.
#[cw_serde]
#[derive(Default)]
pub struct Totals {
    pub deposited: Uint128,
    pub paid: Uint128,
    pub withdrawn: Uint128,
}

#[cw_serde]
pub struct BatchRecord {
    pub submitter: Addr,
    pub height: u64,
    pub settled: u32,
    pub rejected: u32,
    pub paid: Uint128,
    /// One byte per item: 0 = settled, otherwise the `ItemError` code.
    pub codes: Binary,
}

pub const CONFIG: Item<Config> = Item::new("config");
pub const OFFERS: Map<(&Addr, &str), Offer> = Map::new("offers");
pub const ESCROWS: Map<&Addr, Escrow> = Map::new("escrows");
/// Cumulative payments per (consumer, provider); written once per pair per batch.
pub const PAID: Map<(&Addr, &Addr), Uint128> = Map::new("paid");
pub const TOTALS: Item<Totals> = Item::new("totals");
pub const BATCHES: Map<u64, BatchRecord> = Map::new("batches");
pub const BATCH_COUNT: Item<u64> = Item::new("batch_count");

/// Used nonces live in raw storage as 256-bit bitmaps: key `"nb" | signer(32) | chunk(u64 BE)`
/// with `chunk = nonce >> 8`, value 32 bytes. A signer counting its nonces up (as the sidecar
/// signer does) marks 256 of them with one write, instead of one write per attestation
/// (~2 000 + 30/byte gas each), which is what keeps an attestation near the signature cost.
pub const NONCE_PREFIX: &[u8] = b"nb";

pub fn nonce_key(signer: &[u8; 32], chunk: u64) -> [u8; 42] {
    let mut k = [0u8; 42];
    k[..2].copy_from_slice(NONCE_PREFIX);
    k[2..34].copy_from_slice(signer);
    k[34..].copy_from_slice(&chunk.to_be_bytes());
    k
}

/// (chunk, byte index, bit mask) of a nonce in its bitmap.
pub fn nonce_slot(nonce: u64) -> (u64, usize, u8) {
    let bit = (nonce & 0xff) as usize;
    (nonce >> 8, bit / 8, 1u8 << (bit % 8))
}

pub fn load_nonce_chunk(storage: &dyn Storage, signer: &[u8; 32], chunk: u64) -> [u8; 32] {
    let mut bits = [0u8; 32];
    if let Some(v) = storage.get(&nonce_key(signer, chunk)) {
        if v.len() == 32 {
            bits.copy_from_slice(&v);
        }
    }
    bits
}

pub fn nonce_used(storage: &dyn Storage, signer: &[u8; 32], nonce: u64) -> bool {
    let (chunk, byte, mask) = nonce_slot(nonce);
    load_nonce_chunk(storage, signer, chunk)[byte] & mask != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_slots() {
        assert_eq!(nonce_slot(0), (0, 0, 1));
        assert_eq!(nonce_slot(9), (0, 1, 2));
        assert_eq!(nonce_slot(255), (0, 31, 128));
        assert_eq!(nonce_slot(256), (1, 0, 1));
        assert_eq!(nonce_slot(u64::MAX), (u64::MAX >> 8, 31, 128));
    }
}
