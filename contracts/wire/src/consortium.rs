//! The consortium contract's read interface: its raw storage layout and a typed helper that
//! reads it from another contract (the cw4 `Cw4Contract` pattern).
//!
//! A smart query instantiates the consortium contract (~60 k gas each on wasmd); a raw read
//! costs a storage read. So the maps below are part of the consortium's interface: the
//! consortium contract stores its members through these very definitions, and a migration
//! must keep them readable.
//!
//! * `members`: address -> [`Member`] (the current membership of that address);
//! * `pubkeys`: attestation key -> address, for every key ever registered (never removed, so
//!   a revoked or rotated key is reported as such, not as unknown, and is never reused);
//! * `retired_keys`: attestation key -> [`Member`] snapshot, for keys an address no longer
//!   uses (re-admitted with a new key, or rotated on L2 renewal), with their revocation.

use cosmwasm_std::{from_json, Addr, QuerierWrapper, StdResult, Storage};
use cw_storage_plus::Map;

use crate::member::Member;

/// cw2 contract name of the consortium (checked by contracts that read its storage).
pub const CONTRACT_NAME: &str = "crates.io:garden-consortium";

pub const MEMBERS: Map<&Addr, Member> = Map::new("members");
pub const PUBKEYS: Map<&[u8], Addr> = Map::new("pubkeys");
pub const RETIRED_KEYS: Map<&[u8], Member> = Map::new("retired_keys");

/// A key's record: who owns it and the membership it was registered under.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub addr: Addr,
    pub member: Member,
}

/// Typed raw reads of a consortium contract's membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsortiumContract(pub Addr);

impl ConsortiumContract {
    /// The current membership of `addr`.
    pub fn member(&self, q: &QuerierWrapper, addr: &Addr) -> StdResult<Option<Member>> {
        q.query_wasm_raw(&self.0, MEMBERS.key(addr).to_vec())?
            .map(|b| from_json(&b))
            .transpose()
    }

    /// The membership attestation key `key` was registered under (current or retired).
    pub fn key_record(&self, q: &QuerierWrapper, key: &[u8]) -> StdResult<Option<KeyRecord>> {
        key_record_with(|k| q.query_wasm_raw(&self.0, k.to_vec()), key)
    }

    /// When `key` was revoked for compromise, if it was (what L2 endorsements it signed need).
    pub fn compromised_at(&self, q: &QuerierWrapper, key: &[u8]) -> StdResult<Option<u64>> {
        Ok(self
            .key_record(q, key)?
            .and_then(|r| r.member.compromised_at()))
    }
}

/// [`ConsortiumContract::key_record`] over the consortium's own storage (its queries).
pub fn key_record_in(storage: &dyn Storage, key: &[u8]) -> StdResult<Option<KeyRecord>> {
    key_record_with(|k| Ok(storage.get(k)), key)
}

/// The one lookup both paths share: `pubkeys[key]` -> address -> `members[address]` if it
/// still uses `key`, else `retired_keys[key]`. `get` reads a raw storage key.
fn key_record_with(
    get: impl Fn(&[u8]) -> StdResult<Option<Vec<u8>>>,
    key: &[u8],
) -> StdResult<Option<KeyRecord>> {
    let Some(owner) = get(&PUBKEYS.key(key))? else {
        return Ok(None);
    };
    let addr: Addr = from_json(&owner)?;
    let current: Option<Member> = get(&MEMBERS.key(&addr))?
        .map(|b| from_json(&b))
        .transpose()?;
    let member = match current.filter(|m| m.pubkey.as_slice() == key) {
        Some(m) => m,
        None => match get(&RETIRED_KEYS.key(key))? {
            Some(b) => from_json(&b)?,
            None => return Ok(None),
        },
    };
    Ok(Some(KeyRecord { addr, member }))
}
