//! Emergency action: L1 members react to a compromised key without waiting for a vote.
//!
//! It needs approvals from at least two distinct L1 members that together hold
//! `emergency_share` of the L1 weight (the target's own weight excluded), gathered within
//! `emergency_window`; every approver is re-checked (still an active, unsuspended L1 member,
//! with its current weight) each time the approvals are counted. Against an L1 member the
//! action is only a suspension that lapses after `suspension_period` unless a normal `revoke`
//! proposal ratifies it; against any other member it is a compromise revocation. A few L1
//! keys therefore cannot take the consortium: they can hold other L1 members back for a
//! while, but removing them needs the normal quorum, in which the suspended members' weight
//! still counts.

use cosmwasm_std::{Addr, DepsMut, Env, MessageInfo, Response, Storage};
use garden_wire::{RevocationKind, TrustLevel};

use crate::members::{revoke, suspend};
use crate::state::{
    active_l1, load_unrevoked, moment, EmergencyState, CONFIG, EMERGENCY, MEMBERS, TOTAL_WEIGHT,
};
use crate::tally::votes_needed;
use crate::ContractError;

pub fn execute_emergency_revoke(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    addr: String,
    reason: String,
) -> Result<Response, ContractError> {
    let now = env.block.time;
    active_l1(deps.storage, &info.sender, now.seconds())?;
    ContractError::check_str("reason", &reason)?;
    let target_addr = deps.api.addr_validate(&addr)?;
    if target_addr == info.sender {
        return Err(ContractError::SelfEmergencyRevoke);
    }
    let target = load_unrevoked(deps.storage, &target_addr)?;
    if let Some(s) = target
        .suspension
        .as_ref()
        .filter(|_| target.is_suspended(now.seconds()))
    {
        return Err(ContractError::Suspended {
            addr: target_addr.to_string(),
            until: s.until,
        });
    }
    let params = CONFIG.load(deps.storage)?.params;
    let mut state = EMERGENCY
        .may_load(deps.storage, &target_addr)?
        // approvals older than the window no longer count: start a new round
        .filter(|s| {
            now.seconds()
                < s.started_at
                    .seconds()
                    .saturating_add(params.emergency_window)
        })
        .unwrap_or(EmergencyState {
            reason: reason.clone(),
            approvers: vec![],
            started_at: now,
        });
    if state.approvers.contains(&info.sender) {
        return Err(ContractError::AlreadyApproved {
            addr: info.sender.to_string(),
            target: target_addr.to_string(),
        });
    }
    state.approvers.push(info.sender.clone());
    let (count, weight) = standing_approvals(deps.storage, &state.approvers, now.seconds())?;
    let total = TOTAL_WEIGHT
        .load(deps.storage)?
        .saturating_sub(target.voting_weight());
    let needed = votes_needed(total, params.emergency_share);
    let res = Response::new()
        .add_attribute("action", "emergency_revoke")
        .add_attribute("target", &target_addr)
        .add_attribute("approvals", count.to_string())
        .add_attribute("approval_weight", weight.to_string())
        .add_attribute("weight_needed", needed.to_string());
    if count < 2 || weight < needed {
        EMERGENCY.save(deps.storage, &target_addr, &state)?;
        return Ok(res.add_attribute("outcome", "pending"));
    }
    let at = moment(&env);
    if target.level == TrustLevel::L1 {
        let until = suspend(
            deps.storage,
            at,
            &target_addr,
            params.suspension_period,
            state.reason,
        )?;
        return Ok(res
            .add_attribute("outcome", "suspended")
            .add_attribute("suspended_until", until.to_string()));
    }
    revoke(
        deps.storage,
        at,
        &target_addr,
        RevocationKind::Compromise,
        state.reason,
        true,
    )?;
    Ok(res.add_attribute("outcome", "revoked"))
}

/// Approvers that still stand (active, unsuspended L1 now) and their current total weight.
fn standing_approvals(
    storage: &dyn Storage,
    approvers: &[Addr],
    now: u64,
) -> Result<(usize, u64), ContractError> {
    let mut count = 0;
    let mut weight = 0u64;
    for a in approvers {
        if let Some(m) = MEMBERS.may_load(storage, a)? {
            if m.level == TrustLevel::L1 && m.is_active(now) {
                count += 1;
                weight = weight.saturating_add(m.weight);
            }
        }
    }
    Ok((count, weight))
}
