use cosmwasm_std::{to_json_binary, Addr, Binary, BlockInfo, Deps, Env, Order, StdResult};
use cw_storage_plus::Bound;
use garden_wire::membership::{MemberResponse, MemberStatus};
use garden_wire::TrustLevel;

use crate::msg::{
    ConfigResponse, EmergencyResponse, MembersResponse, ProposalResponse, ProposalsResponse,
    QueryMsg, RevocationInfo, RevocationsResponse, TrustLevelResponse, VoteInfo, VotesResponse,
};
use crate::state::{
    Member, Proposal, Status, BALLOTS, CONFIG, EMERGENCY, MEMBERS, PROPOSALS, PUBKEYS, REVOCATIONS,
    TOTAL_WEIGHT,
};
use crate::tally::{is_passed, is_rejected};

pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 30;

fn limit(l: Option<u32>) -> usize {
    l.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT) as usize
}

pub fn dispatch(deps: Deps, env: Env, msg: QueryMsg) -> StdResult<Binary> {
    let now = env.block.time.seconds();
    match msg {
        QueryMsg::Config {} => {
            let c = CONFIG.load(deps.storage)?;
            to_json_binary(&ConfigResponse {
                params: c.params,
                admin: c.admin,
            })
        }
        QueryMsg::Member { addr } => to_json_binary(&query_member(deps, &addr, now)?),
        QueryMsg::MemberByPubkey { pubkey } => {
            let owner = PUBKEYS.may_load(deps.storage, pubkey.as_slice())?;
            let m = match owner {
                Some(a) => query_member(deps, a.as_str(), now)?,
                None => None,
            };
            to_json_binary(&m)
        }
        QueryMsg::IsMember {
            addr,
            min_level,
            scope,
        } => {
            let ok = query_member(deps, &addr, now)?.is_some_and(|m| match &scope {
                Some(s) => m.allows(min_level.unwrap_or(TrustLevel::L3), s),
                None => {
                    m.status == MemberStatus::Active
                        && m.effective_level
                            .at_least(min_level.unwrap_or(TrustLevel::L3))
                }
            });
            to_json_binary(&ok)
        }
        QueryMsg::TrustLevel { addr } => {
            let level = query_member(deps, &addr, now)?
                .filter(|m| m.status == MemberStatus::Active)
                .map(|m| m.effective_level);
            to_json_binary(&TrustLevelResponse { level })
        }
        QueryMsg::ListMembers {
            start_after,
            limit: l,
        } => {
            let start = start_after.map(Addr::unchecked);
            let members = MEMBERS
                .range(
                    deps.storage,
                    start.as_ref().map(Bound::exclusive),
                    None,
                    Order::Ascending,
                )
                .take(limit(l))
                .map(|r| r.map(|(a, m)| member_response(a, m, now)))
                .collect::<StdResult<_>>()?;
            to_json_binary(&MembersResponse { members })
        }
        QueryMsg::TotalWeight {} => to_json_binary(&TOTAL_WEIGHT.load(deps.storage)?),
        QueryMsg::RevocationsSince {
            height,
            start_after,
            limit: l,
        } => {
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
                        emergency: v.emergency,
                    })
                })
                .collect::<StdResult<_>>()?;
            to_json_binary(&RevocationsResponse { revocations })
        }
        QueryMsg::Proposal { proposal_id } => {
            let p = PROPOSALS.load(deps.storage, proposal_id)?;
            to_json_binary(&proposal_response(proposal_id, p, &env.block))
        }
        QueryMsg::ListProposals {
            start_after,
            limit: l,
        } => {
            let proposals = PROPOSALS
                .range(
                    deps.storage,
                    start_after.map(Bound::exclusive),
                    None,
                    Order::Ascending,
                )
                .take(limit(l))
                .map(|r| r.map(|(id, p)| proposal_response(id, p, &env.block)))
                .collect::<StdResult<_>>()?;
            to_json_binary(&ProposalsResponse { proposals })
        }
        QueryMsg::Vote { proposal_id, voter } => {
            let voter = deps.api.addr_validate(&voter)?;
            let b = BALLOTS.may_load(deps.storage, (proposal_id, &voter))?;
            to_json_binary(&b.map(|b| VoteInfo {
                proposal_id,
                voter,
                vote: b.vote,
                weight: b.weight,
            }))
        }
        QueryMsg::ListVotes {
            proposal_id,
            start_after,
            limit: l,
        } => {
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
            to_json_binary(&VotesResponse { votes })
        }
        QueryMsg::Emergency { addr } => {
            let a = deps.api.addr_validate(&addr)?;
            let e = EMERGENCY
                .may_load(deps.storage, &a)?
                .map(|s| EmergencyResponse {
                    reason: s.reason,
                    approvers: s.approvers,
                    started_at: s.started_at.seconds(),
                });
            to_json_binary(&e)
        }
    }
}

fn query_member(deps: Deps, addr: &str, now: u64) -> StdResult<Option<MemberResponse>> {
    let addr = deps.api.addr_validate(addr)?;
    Ok(MEMBERS
        .may_load(deps.storage, &addr)?
        .map(|m| member_response(addr, m, now)))
}

/// Effective level: an L2 endorsement outside [valid_from, valid_until) degrades to L3.
pub fn member_response(addr: Addr, m: Member, now: u64) -> MemberResponse {
    let effective_level = match (&m.level, &m.endorsement) {
        (TrustLevel::L2, Some(e)) if now >= e.valid_from && now < e.valid_until => TrustLevel::L2,
        (TrustLevel::L2, _) => TrustLevel::L3,
        (l, _) => *l,
    };
    MemberResponse {
        addr,
        status: if m.is_active() {
            MemberStatus::Active
        } else {
            MemberStatus::Revoked
        },
        pubkey: m.pubkey,
        level: m.level,
        effective_level,
        weight: m.weight,
        revoked_at_height: m.revoked_at_height,
        endorsement: m.endorsement,
    }
}

/// Status with expiry applied (cw3's `Proposal::current_status`).
pub fn current_status(p: &Proposal, block: &BlockInfo) -> Status {
    if p.status != Status::Open {
        return p.status.clone();
    }
    let expired = p.expires.is_expired(block);
    if is_passed(&p.threshold, &p.votes, p.total_weight, expired) {
        Status::Passed
    } else if is_rejected(&p.threshold, &p.votes, p.total_weight, expired) {
        Status::Rejected
    } else {
        Status::Open
    }
}

fn proposal_response(id: u64, p: Proposal, block: &BlockInfo) -> ProposalResponse {
    let status = current_status(&p, block);
    ProposalResponse {
        id,
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
