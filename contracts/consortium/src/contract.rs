#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{Addr, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdResult, Storage};
use cw2::{ensure_from_older_version, set_contract_version};
use garden_wire::TrustLevel;

use crate::endorse::verify_endorsement;
use crate::msg::{Action, Ballot, ExecuteMsg, InstantiateMsg, MigrateMsg, Params, QueryMsg};
use crate::state::{
    next_proposal_id, Config, EmergencyState, Member, Proposal, Revocation, Status, BALLOTS,
    CONFIG, EMERGENCY, MEMBERS, PROPOSALS, PUBKEYS, REVOCATIONS, TOTAL_WEIGHT, VOTING_WEIGHTS,
};
use crate::tally::{is_passed, is_rejected, Vote, Votes};
use crate::{query, ContractError};

pub const CONTRACT_NAME: &str = "crates.io:garden-consortium";
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");
const MAX_TITLE: usize = 140;

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    deps: DepsMut,
    env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    TOTAL_WEIGHT.save(deps.storage, &0)?;
    for m in &msg.members {
        if m.level == TrustLevel::L2 {
            // L2 exists only through an L1 endorsement (RegisterEndorsed or a proposal).
            return Err(ContractError::EndorsementRequired);
        }
        let addr = deps.api.addr_validate(&m.addr)?;
        if MEMBERS.has(deps.storage, &addr) {
            return Err(ContractError::AlreadyMember {
                addr: m.addr.clone(),
            });
        }
        let member = Member {
            pubkey: valid_pubkey(&m.pubkey)?.to_vec().into(),
            level: m.level,
            weight: m.weight,
            endorsement: None,
            since_height: env.block.height,
            revoked_at_height: None,
        };
        save_member(deps.storage, env.block.height, &addr, &member, None)?;
    }
    let total = TOTAL_WEIGHT.load(deps.storage)?;
    if total == 0 {
        return Err(ContractError::NoInitialL1);
    }
    let params = msg.params.unwrap_or_default();
    validate_params(&params, total)?;
    let admin = msg.admin.map(|a| deps.api.addr_validate(&a)).transpose()?;
    CONFIG.save(deps.storage, &Config { params, admin })?;
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("members", msg.members.len().to_string())
        .add_attribute("total_weight", total.to_string()))
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, ContractError> {
    match msg {
        ExecuteMsg::Propose {
            title,
            description,
            action,
        } => execute_propose(deps, env, info, title, description, action),
        ExecuteMsg::Vote { proposal_id, vote } => execute_vote(deps, env, info, proposal_id, vote),
        ExecuteMsg::Execute { proposal_id } => execute_execute(deps, env, proposal_id),
        ExecuteMsg::Close { proposal_id } => execute_close(deps, env, proposal_id),
        ExecuteMsg::EmergencyRevoke { addr, reason } => {
            execute_emergency_revoke(deps, env, info, addr, reason)
        }
        ExecuteMsg::RegisterEndorsed {
            pubkey,
            endorsement,
        } => {
            let key = valid_pubkey(&pubkey)?;
            let addr = info.sender;
            let existing = MEMBERS.may_load(deps.storage, &addr)?;
            match &existing {
                Some(m) if !m.is_active() => {
                    return Err(ContractError::Revoked {
                        addr: addr.to_string(),
                    })
                }
                Some(m) if m.level != TrustLevel::L2 => {
                    return Err(ContractError::AlreadyMember {
                        addr: addr.to_string(),
                    })
                }
                _ => {}
            }
            let e = verify_endorsement(deps.as_ref(), &env, &addr, &key, &endorsement)?;
            let member = Member {
                pubkey: key.to_vec().into(),
                level: TrustLevel::L2,
                weight: existing.as_ref().map(|m| m.weight).unwrap_or(0),
                endorsement: Some(e),
                since_height: existing
                    .as_ref()
                    .map(|m| m.since_height)
                    .unwrap_or(env.block.height),
                revoked_at_height: None,
            };
            save_member(
                deps.storage,
                env.block.height,
                &addr,
                &member,
                existing.as_ref(),
            )?;
            Ok(Response::new()
                .add_attribute("action", "register_endorsed")
                .add_attribute("member", addr)
                .add_attribute("endorser", endorsement.endorser))
        }
        ExecuteMsg::AdminExecute { action } => {
            ensure_admin(deps.as_ref(), &info.sender)?;
            let mut res = Response::new().add_attribute("action", "admin_execute");
            res = apply_action(deps, &env, &action, res)?;
            Ok(res)
        }
        ExecuteMsg::UpdateAdmin { admin } => {
            ensure_admin(deps.as_ref(), &info.sender)?;
            let mut cfg = CONFIG.load(deps.storage)?;
            cfg.admin = admin.map(|a| deps.api.addr_validate(&a)).transpose()?;
            CONFIG.save(deps.storage, &cfg)?;
            Ok(Response::new().add_attribute("action", "update_admin"))
        }
    }
}

fn ensure_admin(deps: Deps, sender: &Addr) -> Result<(), ContractError> {
    match CONFIG.load(deps.storage)?.admin {
        Some(a) if a == *sender => Ok(()),
        _ => Err(ContractError::NotAdmin),
    }
}

fn active_l1(storage: &dyn Storage, addr: &Addr) -> Result<Member, ContractError> {
    MEMBERS
        .may_load(storage, addr)?
        .filter(|m| m.is_active() && m.level == TrustLevel::L1)
        .ok_or_else(|| ContractError::NotL1Member {
            addr: addr.to_string(),
        })
}

pub fn valid_pubkey(b: &Binary) -> Result<[u8; 32], ContractError> {
    b.as_slice()
        .try_into()
        .map_err(|_| ContractError::InvalidPubkey { len: b.len() })
}

pub fn validate_params(p: &Params, total_weight: u64) -> Result<(), ContractError> {
    p.threshold.validate(total_weight)?;
    let bad = |reason: &str| {
        Err(ContractError::InvalidParams {
            reason: reason.into(),
        })
    };
    if p.emergency_quorum < 2 {
        return bad("emergency_quorum must be at least 2");
    }
    if p.emergency_window == 0 {
        return bad("emergency_window must be > 0");
    }
    let zero = match p.voting_period {
        cw_utils::Duration::Height(h) => h == 0,
        cw_utils::Duration::Time(t) => t == 0,
    };
    if zero {
        return bad("voting_period must be > 0");
    }
    Ok(())
}

/// Writes a member and keeps the derived indexes in step: attestation-key index, voting
/// weight snapshot and total voting weight.
fn save_member(
    storage: &mut dyn Storage,
    height: u64,
    addr: &Addr,
    new: &Member,
    old: Option<&Member>,
) -> Result<(), ContractError> {
    if let Some(owner) = PUBKEYS.may_load(storage, new.pubkey.as_slice())? {
        if owner != *addr {
            return Err(ContractError::DuplicatePubkey {
                owner: owner.to_string(),
            });
        }
    }
    if let Some(old) = old.filter(|o| o.pubkey != new.pubkey) {
        PUBKEYS.remove(storage, old.pubkey.as_slice());
    }
    PUBKEYS.save(storage, new.pubkey.as_slice(), addr)?;
    let (old_w, new_w) = (
        old.map(Member::voting_weight).unwrap_or(0),
        new.voting_weight(),
    );
    if old_w != new_w {
        let total = TOTAL_WEIGHT.load(storage)? - old_w + new_w;
        if total == 0 && old_w > 0 {
            return Err(ContractError::LastL1Member);
        }
        TOTAL_WEIGHT.save(storage, &total)?;
        VOTING_WEIGHTS.save(storage, addr, &new_w, height)?;
    }
    MEMBERS.save(storage, addr, new)?;
    Ok(())
}

fn revoke(
    storage: &mut dyn Storage,
    height: u64,
    addr: &Addr,
    reason: String,
    emergency: bool,
) -> Result<(), ContractError> {
    let old = MEMBERS
        .may_load(storage, addr)?
        .ok_or_else(|| ContractError::UnknownMember {
            addr: addr.to_string(),
        })?;
    if !old.is_active() {
        return Err(ContractError::AlreadyRevoked {
            addr: addr.to_string(),
        });
    }
    let new = Member {
        revoked_at_height: Some(height),
        ..old.clone()
    };
    save_member(storage, height, addr, &new, Some(&old))?;
    REVOCATIONS.save(storage, (height, addr), &Revocation { reason, emergency })?;
    EMERGENCY.remove(storage, addr);
    Ok(())
}

/// Applies an action (from a passed proposal or the admin). All checks that depend on the
/// state at application time happen here.
pub fn apply_action(
    deps: DepsMut,
    env: &Env,
    action: &Action,
    res: Response,
) -> Result<Response, ContractError> {
    let h = env.block.height;
    let level_endorsement =
        |deps: Deps, addr: &Addr, key: &[u8; 32], level, e: &Option<_>| match (level, e) {
            (TrustLevel::L2, Some(e)) => verify_endorsement(deps, env, addr, key, e).map(Some),
            (TrustLevel::L2, None) => Err(ContractError::EndorsementRequired),
            (_, Some(_)) => Err(ContractError::UnexpectedEndorsement),
            (_, None) => Ok(None),
        };
    match action {
        Action::Admit {
            addr,
            pubkey,
            level,
            weight,
            endorsement,
        } => {
            let addr = deps.api.addr_validate(addr)?;
            let key = valid_pubkey(pubkey)?;
            let old = MEMBERS.may_load(deps.storage, &addr)?;
            if old.as_ref().is_some_and(Member::is_active) {
                return Err(ContractError::AlreadyMember {
                    addr: addr.to_string(),
                });
            }
            let endorsement = level_endorsement(deps.as_ref(), &addr, &key, *level, endorsement)?;
            let m = Member {
                pubkey: key.to_vec().into(),
                level: *level,
                weight: *weight,
                endorsement,
                since_height: h,
                revoked_at_height: None,
            };
            save_member(deps.storage, h, &addr, &m, old.as_ref())?;
            Ok(res.add_attribute("admitted", addr))
        }
        Action::Revoke { addr, reason } => {
            let addr = deps.api.addr_validate(addr)?;
            revoke(deps.storage, h, &addr, reason.clone(), false)?;
            Ok(res.add_attribute("revoked", addr))
        }
        Action::SetTrustLevel {
            addr,
            level,
            endorsement,
        } => {
            let addr = deps.api.addr_validate(addr)?;
            let old = load_active(deps.storage, &addr)?;
            let key = valid_pubkey(&old.pubkey)?;
            let endorsement = level_endorsement(deps.as_ref(), &addr, &key, *level, endorsement)?;
            let new = Member {
                level: *level,
                endorsement,
                ..old.clone()
            };
            save_member(deps.storage, h, &addr, &new, Some(&old))?;
            Ok(res.add_attribute("trust_level_changed", addr))
        }
        Action::SetWeight { addr, weight } => {
            let addr = deps.api.addr_validate(addr)?;
            let old = load_active(deps.storage, &addr)?;
            let new = Member {
                weight: *weight,
                ..old.clone()
            };
            save_member(deps.storage, h, &addr, &new, Some(&old))?;
            Ok(res.add_attribute("weight_changed", addr))
        }
        Action::UpdateParams { params } => {
            validate_params(params, TOTAL_WEIGHT.load(deps.storage)?)?;
            CONFIG.update(deps.storage, |mut c| -> StdResult<_> {
                c.params = params.clone();
                Ok(c)
            })?;
            Ok(res.add_attribute("params_updated", "true"))
        }
    }
}

fn load_active(storage: &dyn Storage, addr: &Addr) -> Result<Member, ContractError> {
    let m = MEMBERS
        .may_load(storage, addr)?
        .ok_or_else(|| ContractError::UnknownMember {
            addr: addr.to_string(),
        })?;
    if !m.is_active() {
        return Err(ContractError::Revoked {
            addr: addr.to_string(),
        });
    }
    Ok(m)
}

fn execute_propose(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    title: String,
    description: String,
    action: Action,
) -> Result<Response, ContractError> {
    let proposer = active_l1(deps.storage, &info.sender)?;
    if title.is_empty() || title.len() > MAX_TITLE {
        return Err(ContractError::InvalidTitle);
    }
    // Cheap, state-independent checks now, so a malformed proposal never reaches a vote.
    precheck_action(deps.as_ref(), &action)?;
    let cfg = CONFIG.load(deps.storage)?;
    let total_weight = TOTAL_WEIGHT.load(deps.storage)?;
    let mut votes = Votes::default();
    votes.add(Vote::Yes, proposer.voting_weight());
    let mut prop = Proposal {
        title,
        description,
        action,
        proposer: info.sender.clone(),
        start_height: env.block.height,
        expires: cfg.params.voting_period.after(&env.block),
        threshold: cfg.params.threshold,
        total_weight,
        votes,
        status: Status::Open,
    };
    if is_passed(&prop.threshold, &prop.votes, total_weight, false) {
        prop.status = Status::Passed;
    }
    let id = next_proposal_id(deps.storage)?;
    PROPOSALS.save(deps.storage, id, &prop)?;
    let ballot = Ballot {
        weight: proposer.voting_weight(),
        vote: Vote::Yes,
    };
    BALLOTS.save(deps.storage, (id, &info.sender), &ballot)?;
    Ok(Response::new()
        .add_attribute("action", "propose")
        .add_attribute("proposal_id", id.to_string())
        .add_attribute("status", prop.status.to_string()))
}

fn precheck_action(deps: Deps, action: &Action) -> Result<(), ContractError> {
    match action {
        Action::Admit { addr, pubkey, .. } => {
            deps.api.addr_validate(addr)?;
            valid_pubkey(pubkey)?;
        }
        Action::Revoke { addr, .. }
        | Action::SetTrustLevel { addr, .. }
        | Action::SetWeight { addr, .. } => {
            deps.api.addr_validate(addr)?;
        }
        Action::UpdateParams { params } => {
            validate_params(params, TOTAL_WEIGHT.load(deps.storage)?)?;
        }
    }
    Ok(())
}

fn load_proposal(storage: &dyn Storage, id: u64) -> Result<Proposal, ContractError> {
    PROPOSALS
        .may_load(storage, id)?
        .ok_or(ContractError::ProposalNotFound { id })
}

fn wrong_status(id: u64, status: &Status, expected: &str) -> ContractError {
    ContractError::WrongProposalStatus {
        id,
        status: status.to_string(),
        expected: expected.into(),
    }
}

fn execute_vote(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    id: u64,
    vote: Vote,
) -> Result<Response, ContractError> {
    let mut prop = load_proposal(deps.storage, id)?;
    if prop.status != Status::Open {
        return Err(wrong_status(id, &prop.status, "open"));
    }
    if prop.expires.is_expired(&env.block) {
        return Err(ContractError::ProposalExpired { id });
    }
    // Weight as of the end of the proposal's opening block (a snapshot read at height h
    // shows the state before h's changes): members admitted later cannot vote.
    let weight = VOTING_WEIGHTS
        .may_load_at_height(deps.storage, &info.sender, prop.start_height + 1)?
        .unwrap_or(0);
    if weight == 0 {
        return Err(ContractError::NoVotingWeight {
            id,
            voter: info.sender.to_string(),
        });
    }
    if BALLOTS.has(deps.storage, (id, &info.sender)) {
        return Err(ContractError::AlreadyVoted {
            id,
            voter: info.sender.to_string(),
        });
    }
    BALLOTS.save(deps.storage, (id, &info.sender), &Ballot { weight, vote })?;
    prop.votes.add(vote, weight);
    if is_passed(&prop.threshold, &prop.votes, prop.total_weight, false) {
        prop.status = Status::Passed;
    } else if is_rejected(&prop.threshold, &prop.votes, prop.total_weight, false) {
        prop.status = Status::Rejected;
    }
    PROPOSALS.save(deps.storage, id, &prop)?;
    Ok(Response::new()
        .add_attribute("action", "vote")
        .add_attribute("proposal_id", id.to_string())
        .add_attribute("voter", info.sender)
        .add_attribute("status", prop.status.to_string()))
}

fn execute_execute(deps: DepsMut, env: Env, id: u64) -> Result<Response, ContractError> {
    let mut prop = load_proposal(deps.storage, id)?;
    let status = query::current_status(&prop, &env.block);
    if status != Status::Passed {
        return Err(wrong_status(id, &status, "passed"));
    }
    prop.status = Status::Executed;
    PROPOSALS.save(deps.storage, id, &prop)?;
    let res = Response::new()
        .add_attribute("action", "execute")
        .add_attribute("proposal_id", id.to_string());
    apply_action(deps, &env, &prop.action, res)
}

fn execute_close(deps: DepsMut, env: Env, id: u64) -> Result<Response, ContractError> {
    let mut prop = load_proposal(deps.storage, id)?;
    if prop.status != Status::Open {
        return Err(wrong_status(id, &prop.status, "open"));
    }
    if query::current_status(&prop, &env.block) != Status::Rejected {
        return Err(ContractError::ProposalNotExpired { id });
    }
    prop.status = Status::Rejected;
    PROPOSALS.save(deps.storage, id, &prop)?;
    Ok(Response::new()
        .add_attribute("action", "close")
        .add_attribute("proposal_id", id.to_string()))
}

fn execute_emergency_revoke(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    addr: String,
    reason: String,
) -> Result<Response, ContractError> {
    active_l1(deps.storage, &info.sender)?;
    let target = deps.api.addr_validate(&addr)?;
    if target == info.sender {
        return Err(ContractError::SelfEmergencyRevoke);
    }
    load_active(deps.storage, &target)?;
    let params = CONFIG.load(deps.storage)?.params;
    let now = env.block.time;
    let mut state = EMERGENCY
        .may_load(deps.storage, &target)?
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
            target: target.to_string(),
        });
    }
    state.approvers.push(info.sender.clone());
    let res = Response::new()
        .add_attribute("action", "emergency_revoke")
        .add_attribute("target", &target)
        .add_attribute("approvals", state.approvers.len().to_string());
    if state.approvers.len() >= params.emergency_quorum as usize {
        revoke(deps.storage, env.block.height, &target, state.reason, true)?;
        return Ok(res.add_attribute("revoked", "true"));
    }
    EMERGENCY.save(deps.storage, &target, &state)?;
    Ok(res.add_attribute("revoked", "false"))
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, env: Env, msg: QueryMsg) -> StdResult<Binary> {
    query::dispatch(deps, env, msg)
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn migrate(deps: DepsMut, _env: Env, _msg: MigrateMsg) -> Result<Response, ContractError> {
    ensure_from_older_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    Ok(Response::new().add_attribute("action", "migrate"))
}
