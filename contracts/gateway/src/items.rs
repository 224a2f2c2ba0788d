//! The item life cycle at the gateway, per (signer key, nonce):
//!
//! ```text
//! free ──submit──▶ pending ──ack code 0──────────────▶ settled (final)
//!                     │
//!                     └──ack code ≠ 0, error ack, timeout──▶ released ──submit──▶ pending …
//! ```
//! A released item is free again: its signer submits it anew (after a rejection it may still
//! fail the same way; the code says why).
//!
//! Storage, keyed by nonce hour first so whole hours older than the window can be deleted
//! (a nonce's hour is its `signed_at` hour, so those items are stale anyway):
//! * settled: the settlement contract's used-nonce bitmaps (`"nt" | hour | signer | seq >> 8`,
//!   32 bytes), one write per touched 256 nonces per answer;
//! * pending and released: one raw entry per item, `"gi" | hour (u32) | signer (32) | seq
//!   (u32)` -> `tag (1 pending, 2 released) | batch id (u64) | code (0 = none)`: 10 bytes.

use std::collections::BTreeMap;

use cosmwasm_std::{Order, StdResult, Storage};
use garden_settlement::state::{load_nonce_chunk, nonce_key, nonce_slot, nonce_used, prune_nonces};
use garden_wire::ibc::{ItemState, ItemStatus};
use garden_wire::nonce;

pub const ENTRY_PREFIX: &[u8] = b"gi";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Pending {
        batch_id: u64,
    },
    /// `code`: the settlement's refusal; None after an error ack or a timeout.
    Released {
        batch_id: u64,
        code: Option<u8>,
    },
}

impl Entry {
    fn encode(self) -> [u8; 10] {
        let (tag, batch_id, code) = match self {
            Entry::Pending { batch_id } => (1, batch_id, 0),
            Entry::Released { batch_id, code } => (2, batch_id, code.unwrap_or(0)),
        };
        let mut v = [0u8; 10];
        v[0] = tag;
        v[1..9].copy_from_slice(&batch_id.to_be_bytes());
        v[9] = code;
        v
    }

    fn decode(v: &[u8]) -> Option<Entry> {
        let v: &[u8; 10] = v.try_into().ok()?;
        let batch_id = u64::from_be_bytes(v[1..9].try_into().ok()?);
        match v[0] {
            1 => Some(Entry::Pending { batch_id }),
            2 => Some(Entry::Released {
                batch_id,
                code: (v[9] != 0).then_some(v[9]),
            }),
            _ => None,
        }
    }
}

fn entry_key(signer: &[u8; 32], n: u64) -> [u8; 42] {
    let mut k = [0u8; 42];
    k[..2].copy_from_slice(ENTRY_PREFIX);
    k[2..6].copy_from_slice(&((n >> 32) as u32).to_be_bytes());
    k[6..38].copy_from_slice(signer);
    k[38..].copy_from_slice(&(n as u32).to_be_bytes());
    k
}

pub fn load(storage: &dyn Storage, signer: &[u8; 32], n: u64) -> Option<Entry> {
    storage
        .get(&entry_key(signer, n))
        .and_then(|v| Entry::decode(&v))
}

pub fn save(storage: &mut dyn Storage, signer: &[u8; 32], n: u64, e: Entry) {
    storage.set(&entry_key(signer, n), &e.encode());
}

pub fn remove(storage: &mut dyn Storage, signer: &[u8; 32], n: u64) {
    storage.remove(&entry_key(signer, n));
}

pub fn is_settled(storage: &dyn Storage, signer: &[u8; 32], n: u64) -> bool {
    nonce_used(storage, signer, n)
}

/// The answer to `item {signer, nonce}`.
pub fn status(storage: &dyn Storage, signer: &[u8; 32], n: u64) -> ItemStatus {
    let (state, batch_id, code) = match load(storage, signer, n) {
        Some(Entry::Pending { batch_id }) => (ItemState::Pending, Some(batch_id), None),
        Some(Entry::Released { batch_id, code }) => (ItemState::Released, Some(batch_id), code),
        None if is_settled(storage, signer, n) => (ItemState::Settled, None, None),
        None => (ItemState::Free, None, None),
    };
    ItemStatus {
        state,
        batch_id,
        code,
    }
}

/// Settled marks of one answer, written once per bitmap by [`SettledMarks::write`].
#[derive(Default)]
pub struct SettledMarks {
    bitmaps: BTreeMap<([u8; 32], u32, u32), [u8; 32]>,
}

impl SettledMarks {
    pub fn mark(&mut self, storage: &dyn Storage, signer: &[u8; 32], n: u64) {
        let Some(s) = nonce_slot(n) else { return };
        let bits = self
            .bitmaps
            .entry((*signer, s.epoch, s.chunk))
            .or_insert_with(|| load_nonce_chunk(storage, signer, s.epoch, s.chunk));
        bits[s.byte] |= s.mask;
    }

    pub fn write(self, storage: &mut dyn Storage) {
        for ((signer, epoch, chunk), bits) in self.bitmaps {
            storage.set(&nonce_key(&signer, epoch, chunk), &bits);
        }
    }
}

/// Deletes up to `limit` settled bitmaps and entries of nonce hours below `horizon`
/// (`nonce::prune_horizon(now, window)`), recording the horizon (`PRUNED_BELOW`: items of
/// those hours are refused from then on, even if the window grows). Returns how many keys
/// were deleted.
pub fn prune(storage: &mut dyn Storage, horizon: u64, limit: usize) -> StdResult<usize> {
    let bitmaps = prune_nonces(storage, horizon, limit)?;
    let mut end = ENTRY_PREFIX.to_vec();
    end.extend_from_slice(&u32::try_from(horizon).unwrap_or(u32::MAX).to_be_bytes());
    let keys: Vec<Vec<u8>> = storage
        .range_keys(Some(ENTRY_PREFIX), Some(&end), Order::Ascending)
        .take(limit.saturating_sub(bitmaps))
        .collect();
    for k in &keys {
        storage.remove(k);
    }
    Ok(bitmaps + keys.len())
}

/// `nonce::prune_horizon`, re-exported for the callers of [`prune`].
pub fn horizon(now: u64, window_secs: u64) -> u64 {
    nonce::prune_horizon(now, window_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::testing::MockStorage;

    #[test]
    fn entries_round_trip_and_settled_wins_only_without_entry() {
        let mut s = MockStorage::new();
        let (k, n) = ([7u8; 32], nonce::first_nonce(490_000) + 5);
        assert_eq!(status(&s, &k, n).state, ItemState::Free);
        save(&mut s, &k, n, Entry::Pending { batch_id: 9 });
        let st = status(&s, &k, n);
        assert_eq!(
            (st.state, st.batch_id, st.code),
            (ItemState::Pending, Some(9), None)
        );
        for code in [None, Some(8)] {
            save(&mut s, &k, n, Entry::Released { batch_id: 9, code });
            assert_eq!(load(&s, &k, n), Some(Entry::Released { batch_id: 9, code }));
        }
        remove(&mut s, &k, n);
        let mut marks = SettledMarks::default();
        marks.mark(&s, &k, n);
        marks.mark(&s, &k, n + 1);
        marks.write(&mut s);
        assert_eq!(status(&s, &k, n).state, ItemState::Settled);
        assert_eq!(status(&s, &k, n + 2).state, ItemState::Free);
        // a garbage value reads as no entry (never a panic)
        s.set(&entry_key(&k, n + 2), b"x");
        assert_eq!(load(&s, &k, n + 2), None);
    }

    #[test]
    fn pruning_deletes_old_hours_only() {
        let mut s = MockStorage::new();
        for hour in 100..110u64 {
            let n = nonce::first_nonce(hour);
            save(&mut s, &[1; 32], n, Entry::Pending { batch_id: 1 });
            let mut marks = SettledMarks::default();
            marks.mark(&s, &[2; 32], n);
            marks.write(&mut s);
        }
        assert_eq!(prune(&mut s, 105, 3).unwrap(), 3);
        assert_eq!(prune(&mut s, 105, 100).unwrap(), 10 - 3);
        assert_eq!(prune(&mut s, 105, 100).unwrap(), 0);
        let n = nonce::first_nonce(105);
        assert!(load(&s, &[1; 32], n).is_some());
        assert!(is_settled(&s, &[2; 32], n));
        assert!(load(&s, &[1; 32], nonce::first_nonce(104)).is_none());
    }
}
