//! Reads membership straight from the consortium's storage with raw queries, as cw-plus's
//! `Cw4Contract` reads a cw4 group. A smart query instantiates the consortium contract
//! (~60 k gas each on wasmd); a raw read costs a storage read. The two maps read here
//! (`members`, `pubkeys`) are therefore part of the consortium's interface
//! (docs/CONTRACTS.md): a consortium migration must keep their layout.

use cosmwasm_std::{from_json, Addr, QuerierWrapper, StdResult};
use garden_consortium::query::member_response;
use garden_consortium::state::{Member, MEMBERS, PUBKEYS};
use garden_wire::MemberResponse;

/// The member at `addr` as the consortium's `member {addr}` query would answer at `now`.
pub fn member(
    q: &QuerierWrapper,
    consortium: &Addr,
    addr: &Addr,
    now: u64,
) -> StdResult<Option<MemberResponse>> {
    let raw = q.query_wasm_raw(consortium, MEMBERS.key(addr).to_vec())?;
    raw.map(|bytes| from_json::<Member>(&bytes).map(|m| member_response(addr.clone(), m, now)))
        .transpose()
}

/// The member owning attestation key `key`, like `member_by_pubkey {pubkey}`.
pub fn member_by_key(
    q: &QuerierWrapper,
    consortium: &Addr,
    key: &[u8],
    now: u64,
) -> StdResult<Option<MemberResponse>> {
    match q.query_wasm_raw(consortium, PUBKEYS.key(key).to_vec())? {
        None => Ok(None),
        Some(bytes) => member(q, consortium, &from_json::<Addr>(&bytes)?, now),
    }
}
