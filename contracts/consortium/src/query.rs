//! Queries, one `query_<x>` per `QueryMsg` arm.

use cosmwasm_std::{Addr, Binary, Deps, Env, Order, StdResult};
use cw_storage_plus::Bound;
use garden_wire::consortium::key_record_in;
use garden_wire::membership::{MemberResponse, MemberStatus};
use garden_wire::TrustLevel;

use crate::msg::{
    ConfigResponse, EmergencyResponse, MembersResponse, ProposalResponse, ProposalsResponse,
    RevocationInfo, RevocationsResponse, TrustLevelResponse, VoteInfo, VotesResponse,
};
use crate::proposals::{current_status, execute_by};
use crate::state::{
    ADMIN, BALLOTS, CONFIG, EMERGENCY, MEMBERS, PROPOSALS, REVOCATIONS, TOTAL_WEIGHT,
};
use crate::types::{Params, Proposal};

pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 30;

fn limit(l: Option<u32>) -> usize {
    l.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT) as usize
}

pub fn query_config(deps: Deps) -> StdResult<ConfigResponse> {
    Ok(ConfigResponse {
        params: CONFIG.load(deps.storage)?.params,
        admin: ADMIN.get(deps)?,
    })
}

/// The answer for one record: the effective level accounts for endorsers revoked for
/// compromise (their endorsements stop counting from that time).
fn response(deps: Deps, addr: Addr, m: &garden_wire::Member, now: u64) -> MemberResponse {
    m.to_response(addr, now, |k| {
        key_record_in(deps.storage, k)
            .ok()
            .flatten()
            .and_then(|r| r.member.compromised_at())
    })
}

pub fn query_member(deps: Deps, env: &Env, addr: &str) -> StdResult<Option<MemberResponse>> {
    let addr = deps.api.addr_validate(addr)?;
    let now = env.block.time.seconds();
    Ok(MEMBERS
        .may_load(deps.storage, &addr)?
        .map(|m| response(deps, addr, &m, now)))
}

pub fn query_member_by_pubkey(
    deps: Deps,
    env: &Env,
    pubkey: &Binary,
) -> StdResult<Option<MemberResponse>> {
    let now = env.block.time.seconds();
    Ok(key_record_in(deps.storage, pubkey.as_slice())?
        .map(|r| response(deps, r.addr, &r.member, now)))
}

pub fn query_is_member(
    deps: Deps,
    env: &Env,
    addr: &str,
    min_level: Option<TrustLevel>,
    scope: Option<String>,
) -> StdResult<bool> {
    let min = min_level.unwrap_or(TrustLevel::L3);
    Ok(
        query_member(deps, env, addr)?.is_some_and(|m| match &scope {
            Some(s) => m.allows(min, s),
            None => m.status == MemberStatus::Active && m.effective_level.at_least(min),
        }),
    )
}

pub fn query_trust_level(deps: Deps, env: &Env, addr: &str) -> StdResult<TrustLevelResponse> {
    let level = query_member(deps, env, addr)?
        .filter(|m| m.status == MemberStatus::Active)
        .map(|m| m.effective_level);
    Ok(TrustLevelResponse { level })
}

pub fn query_list_members(
    deps: Deps,
    env: &Env,
    start_after: Option<String>,
    l: Option<u32>,
) -> StdResult<MembersResponse> {
    let now = env.block.time.seconds();
    let start = start_after.map(Addr::unchecked);
    let members = MEMBERS
        .range(
            deps.storage,
            start.as_ref().map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(limit(l))
        .map(|r| r.map(|(a, m)| response(deps, a, &m, now)))
        .collect::<StdResult<_>>()?;
    Ok(MembersResponse { members })
}

pub fn query_total_weight(deps: Deps) -> StdResult<u64> {
    TOTAL_WEIGHT.load(deps.storage)
}

pub fn query_revocations_since(
    deps: Deps,
    height: u64,
    start_after: Option<(u64, String)>,
    l: Option<u32>,
) -> StdResult<RevocationsResponse> {
    let after = start_after.map(|(h, a)| (h, Addr::unchecked(a)));
    let empty = Addr::unchecked("");
    let min = match &after {
        Some((h, a)) => Bound::exclusive((*h, a)),
        None => Bound::inclusive((height, &empty)),
    };
    let revocations = REVOCATIONS
        .range(deps.storage, Some(min), None, Order::Ascending)
        .filter(|r| r.as_ref().map_or(true, |((h, _), _)| *h >= height))
        .take(limit(l))
        .map(|r| {
            r.map(|((height, addr), v)| RevocationInfo {
                height,
                addr,
                reason: v.reason,
                kind: v.kind,
                effective: v.effective,
                emergency: v.emergency,
            })
        })
        .collect::<StdResult<_>>()?;
    Ok(RevocationsResponse { revocations })
}

pub fn query_proposal(deps: Deps, env: &Env, id: u64) -> StdResult<ProposalResponse> {
    let params = CONFIG.load(deps.storage)?.params;
    let p = PROPOSALS.load(deps.storage, id)?;
    Ok(proposal_response(id, p, env, &params))
}

pub fn query_list_proposals(
    deps: Deps,
    env: &Env,
    start_after: Option<u64>,
    l: Option<u32>,
) -> StdResult<ProposalsResponse> {
    let params = CONFIG.load(deps.storage)?.params;
    let proposals = PROPOSALS
        .range(
            deps.storage,
            start_after.map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(limit(l))
        .map(|r| r.map(|(id, p)| proposal_response(id, p, env, &params)))
        .collect::<StdResult<_>>()?;
    Ok(ProposalsResponse { proposals })
}

pub fn query_vote(deps: Deps, proposal_id: u64, voter: &str) -> StdResult<Option<VoteInfo>> {
    let voter = deps.api.addr_validate(voter)?;
    let b = BALLOTS.may_load(deps.storage, (proposal_id, &voter))?;
    Ok(b.map(|b| VoteInfo {
        proposal_id,
        voter,
        vote: b.vote,
        weight: b.weight,
    }))
}

pub fn query_list_votes(
    deps: Deps,
    proposal_id: u64,
    start_after: Option<String>,
    l: Option<u32>,
) -> StdResult<VotesResponse> {
    let start = start_after.map(Addr::unchecked);
    let votes = BALLOTS
        .prefix(proposal_id)
        .range(
            deps.storage,
            start.as_ref().map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(limit(l))
        .map(|r| {
            r.map(|(voter, b)| VoteInfo {
                proposal_id,
                voter,
                vote: b.vote,
                weight: b.weight,
            })
        })
        .collect::<StdResult<_>>()?;
    Ok(VotesResponse { votes })
}

pub fn query_emergency(deps: Deps, addr: &str) -> StdResult<Option<EmergencyResponse>> {
    let a = deps.api.addr_validate(addr)?;
    Ok(EMERGENCY
        .may_load(deps.storage, &a)?
        .map(|s| EmergencyResponse {
            reason: s.reason,
            approvers: s.approvers,
            started_at: s.started_at.seconds(),
        }))
}

fn proposal_response(id: u64, p: Proposal, env: &Env, params: &Params) -> ProposalResponse {
    let status = current_status(&p, &env.block, params);
    ProposalResponse {
        id,
        execute_by: execute_by(&p, params),
        title: p.title,
        description: p.description,
        action: p.action,
        proposer: p.proposer,
        start_height: p.start_height,
        expires: p.expires,
        threshold: p.threshold,
        total_weight: p.total_weight,
        votes: p.votes,
        status,
    }
}
