//! Storage: config, offers, escrows, payments, totals, bounded batch records, and the
//! used-nonce bitmaps (raw keys, pruned by hour).

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Order, Storage, Uint128};
use cw_controllers::Admin;
use cw_storage_plus::{Item, Map};
use garden_wire::ibc::Route;
use garden_wire::nonce;

use crate::types::{BatchRecord, Escrow, Offer, Params, Totals};

#[cw_serde]
pub struct Config {
    /// None: an IBC-only settlement chain; batches arrive from the gateway over the channel
    /// (membership and signatures were verified there).
    pub consortium: Option<Addr>,
    pub denom: String,
    pub params: Params,
    /// Where the gateway's channel may come from (v0.2 configs have none: missing = None).
    pub route: Option<Route>,
}

pub const CONFIG: Item<Config> = Item::new("config");
/// The gateway's open channel: packets are accepted from it only.
pub use garden_wire::ibc::CHANNEL;
/// Governance admin (typically the x/gov module account).
pub const ADMIN: Admin = Admin::new("admin");
pub const OFFERS: Map<(&Addr, &str), Offer> = Map::new("offers");
pub const ESCROWS: Map<&Addr, Escrow> = Map::new("escrows");
/// Cumulative payments per (consumer, provider); written once per pair per batch.
pub const PAID: Map<(&Addr, &Addr), Uint128> = Map::new("paid");
pub const TOTALS: Item<Totals> = Item::new("totals");
/// The last [`MAX_BATCH_RECORDS`] batches that settled something (others leave no record).
pub const BATCHES: Map<u64, BatchRecord> = Map::new("batches");
pub const BATCH_COUNT: Item<u64> = Item::new("batch_count");
/// Per signer key: nonces below this were cancelled by the key's owner.
pub const NONCE_FLOORS: Map<&[u8], u64> = Map::new("nonce_floors");
/// Nonce hours below this were pruned (their nonces are refused even if the window grows).
pub const PRUNED_BELOW: Item<u64> = Item::new("pruned_below");

/// Batch records kept (older ones are deleted as new ones are written).
pub const MAX_BATCH_RECORDS: u64 = 1_000;
/// Nonce bitmaps deleted at most per submitted batch (incremental pruning).
pub const PRUNE_PER_BATCH: usize = 16;

/// Used nonces live in raw storage as 256-bit bitmaps, grouped by nonce hour so whole hours
/// can be deleted once older than the window:
/// key `"nt" | hour (u32 BE) | signer (32) | seq >> 8 (u32 BE)`, value 32 bytes.
/// A signer counting its nonces up marks 256 of them with one write.
pub const NONCE_PREFIX: &[u8] = b"nt";
/// v0.1 bitmaps (`"nb" | signer | nonce >> 8`): no v0.1 nonce passes the v0.2 rule, so they
/// are garbage, deleted by the same incremental pruning.
pub const LEGACY_NONCE_PREFIX: &[u8] = b"nb";

/// Where a nonce's bit lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NonceSlot {
    pub epoch: u32,
    pub chunk: u32,
    pub byte: usize,
    pub mask: u8,
}

/// The bitmap slot of a nonce; `None` for an hour beyond u32 (refused by the nonce rule).
pub fn nonce_slot(n: u64) -> Option<NonceSlot> {
    let epoch = u32::try_from(nonce::nonce_epoch(n)).ok()?;
    let seq = nonce::nonce_seq(n);
    let bit = (seq & 0xff) as usize;
    Some(NonceSlot {
        epoch,
        chunk: (seq >> 8) as u32,
        byte: bit / 8,
        mask: 1u8 << (bit % 8),
    })
}

pub fn nonce_key(signer: &[u8; 32], epoch: u32, chunk: u32) -> [u8; 42] {
    let mut k = [0u8; 42];
    k[..2].copy_from_slice(NONCE_PREFIX);
    k[2..6].copy_from_slice(&epoch.to_be_bytes());
    k[6..38].copy_from_slice(signer);
    k[38..].copy_from_slice(&chunk.to_be_bytes());
    k
}

pub fn load_nonce_chunk(
    storage: &dyn Storage,
    signer: &[u8; 32],
    epoch: u32,
    chunk: u32,
) -> [u8; 32] {
    let mut bits = [0u8; 32];
    if let Some(v) = storage.get(&nonce_key(signer, epoch, chunk)) {
        if v.len() == 32 {
            bits.copy_from_slice(&v);
        }
    }
    bits
}

pub fn nonce_used(storage: &dyn Storage, signer: &[u8; 32], n: u64) -> bool {
    nonce_slot(n)
        .is_some_and(|s| load_nonce_chunk(storage, signer, s.epoch, s.chunk)[s.byte] & s.mask != 0)
}

/// The nonce floor of a key (0 if never set).
pub fn nonce_floor(storage: &dyn Storage, key: &[u8]) -> cosmwasm_std::StdResult<u64> {
    Ok(NONCE_FLOORS.may_load(storage, key)?.unwrap_or(0))
}

/// Deletes up to `limit` bitmaps of hours below `horizon` (v0.1 leftovers first) and records
/// the horizon. Returns how many were deleted.
pub fn prune_nonces(
    storage: &mut dyn Storage,
    horizon: u64,
    limit: usize,
) -> cosmwasm_std::StdResult<usize> {
    let below = PRUNED_BELOW.may_load(storage)?.unwrap_or(0);
    if horizon > below {
        PRUNED_BELOW.save(storage, &horizon)?;
    }
    let end_epoch = u32::try_from(horizon).unwrap_or(u32::MAX);
    let mut end = NONCE_PREFIX.to_vec();
    end.extend_from_slice(&end_epoch.to_be_bytes());
    let ranges: [(Vec<u8>, Vec<u8>); 2] = [
        (LEGACY_NONCE_PREFIX.to_vec(), b"nc".to_vec()),
        (NONCE_PREFIX.to_vec(), end),
    ];
    let mut keys = Vec::new();
    for (start, end) in ranges {
        if keys.len() >= limit {
            break;
        }
        keys.extend(
            storage
                .range_keys(Some(&start), Some(&end), Order::Ascending)
                .take(limit - keys.len()),
        );
    }
    for k in &keys {
        storage.remove(k);
    }
    Ok(keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::testing::MockStorage;

    #[test]
    fn nonce_slots() {
        let n = nonce::first_nonce(490_897);
        assert_eq!(
            nonce_slot(n + 9),
            Some(NonceSlot {
                epoch: 490_897,
                chunk: 0,
                byte: 1,
                mask: 2
            })
        );
        assert_eq!(nonce_slot(n + 256).unwrap().chunk, 1);
        assert_eq!(nonce_slot(u64::MAX).unwrap().chunk, (u32::MAX >> 8));
    }

    #[test]
    fn pruning_is_incremental_and_spares_recent_hours() {
        let mut s = MockStorage::new();
        for epoch in 10..20u32 {
            for signer in 0..3u8 {
                s.set(&nonce_key(&[signer; 32], epoch, 0), &[1; 32]);
            }
        }
        s.set(b"nb-legacy-bitmap", &[1; 32]);
        assert_eq!(prune_nonces(&mut s, 15, 4).unwrap(), 4);
        assert!(
            s.get(b"nb-legacy-bitmap").is_none(),
            "v0.1 leftovers go first"
        );
        assert_eq!(prune_nonces(&mut s, 15, 100).unwrap(), 15 - 3);
        assert_eq!(prune_nonces(&mut s, 15, 100).unwrap(), 0);
        assert!(s.get(&nonce_key(&[0; 32], 15, 0)).is_some());
        assert_eq!(PRUNED_BELOW.load(&s).unwrap(), 15);
        // a smaller horizon later (window raised) never lowers the recorded one
        prune_nonces(&mut s, 12, 100).unwrap();
        assert_eq!(PRUNED_BELOW.load(&s).unwrap(), 15);
    }
}
