//! What the store knows of each record it holds, kept beside the values so that a search, a
//! quota or a tombstone rule never decodes or re-verifies a signature.
//!
//! * `nodes`: every `/node/` record's owner, DID, lower-cased name, expiry and kind, so a
//!   search is a scan of small structs (one gossiped search over 50 000 records used to
//!   verify 50 000 signatures);
//! * `names`: the one `/name/` key each owner holds — a new name replaces the owner's old one,
//!   so squatting N names costs N identities (each needing its own connection);
//! * `floors`: for each key that held a tombstone, the tombstone's issue time, remembered for
//!   the longest record lifetime, so an older record replayed after the tombstone itself
//!   expired (10 minutes) is still refused.

use std::collections::HashMap;

use libp2p::kad::RecordKey as KadKey;
use libp2p::PeerId;

use crate::discovery::record::{self, RecordKind, Verified};

/// A `/node/` record as the search sees it.
#[derive(Debug, Clone)]
pub(super) struct NodeEntry {
    pub(super) owner: PeerId,
    pub(super) did: String,
    pub(super) name_lower: String,
    pub(super) name: String,
    pub(super) expires_ms: u64,
    pub(super) tombstone: bool,
}

#[derive(Debug, Default)]
pub(super) struct Index {
    pub(super) nodes: HashMap<KadKey, NodeEntry>,
    names: HashMap<PeerId, KadKey>,
    /// key → (tombstone issued at, remembered until), both protocol ms.
    floors: HashMap<KadKey, (u64, u64)>,
}

impl Index {
    /// The issue time a new record under `key` must exceed (a tombstone floor), if any.
    pub(super) fn floor(&self, key: &KadKey, now_ms: u64) -> Option<u64> {
        self.floors
            .get(key)
            .filter(|(_, until)| *until > now_ms)
            .map(|(t, _)| *t)
    }

    /// The `/name/` key `owner` holds now, if another than `key`: storing `key` replaces it.
    pub(super) fn replaced_name(&self, key: &KadKey, v: &Verified) -> Option<KadKey> {
        if !key.as_ref().starts_with(record::NAME_PREFIX.as_bytes()) {
            return None;
        }
        self.names
            .get(&v.peer_id)
            .filter(|old| *old != key)
            .cloned()
    }

    /// `v` was stored under `key`.
    pub(super) fn on_stored(&mut self, key: &KadKey, v: &Verified, now_ms: u64) {
        let k = key.as_ref();
        if v.body.kind == RecordKind::Tombstone {
            let until = now_ms.saturating_add(record::MAX_TTL.as_millis() as u64);
            self.floors
                .insert(key.clone(), (v.body.issued_at_ms, until));
        }
        if k.starts_with(record::NAME_PREFIX.as_bytes()) {
            self.names.insert(v.peer_id, key.clone());
        } else if k.starts_with(record::NODE_PREFIX.as_bytes()) {
            self.nodes.insert(
                key.clone(),
                NodeEntry {
                    owner: v.peer_id,
                    did: v.body.did.clone(),
                    name_lower: v.body.name.to_lowercase(),
                    name: v.body.name.clone(),
                    expires_ms: record::expiry_ms(v),
                    tombstone: v.is_tombstone(),
                },
            );
        }
    }

    /// `key` left the store.
    pub(super) fn on_removed(&mut self, key: &KadKey) {
        self.nodes.remove(key);
        self.names.retain(|_, k| k != key);
    }

    /// Forgets floors past their time (called as the store is written to, so it stays bounded
    /// by what the store accepted in the last `MAX_TTL`).
    pub(super) fn prune(&mut self, now_ms: u64) {
        if self.floors.len() > 1024 {
            self.floors.retain(|_, (_, until)| *until > now_ms);
        }
    }

    /// Keys of live node records matching `needle` (equal DID, peer id or name; name substring
    /// when `substring`), at most `max`.
    pub(super) fn search(
        &self,
        needle: &str,
        substring: bool,
        max: usize,
        now_ms: u64,
    ) -> Vec<KadKey> {
        let lower = needle.to_lowercase();
        let peer: Option<PeerId> = needle.parse().ok();
        self.nodes
            .iter()
            .filter(|(_, e)| !e.tombstone && e.expires_ms > now_ms)
            .filter(|(_, e)| {
                e.did == needle
                    || e.name == needle
                    || (substring && e.name_lower.contains(&lower))
                    || Some(e.owner) == peer
            })
            .take(max)
            .map(|(k, _)| k.clone())
            .collect()
    }
}
