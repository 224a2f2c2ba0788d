//! Entry points and dispatch; member registration by endorsement and the admin path.

#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdResult};
use cw2::set_contract_version;
use garden_wire::{Member, TrustLevel};

use crate::emergency::execute_emergency_revoke;
use crate::endorse::verify_endorsement;
use crate::members::{apply_action, push_endorsement, save_member, validate_params};
use crate::msg::{ExecuteMsg, InstantiateMsg, MigrateMsg, QueryMsg};
use crate::proposals::{execute_close, execute_execute, execute_propose, execute_vote};
use crate::query::*;
use crate::state::{moment, valid_pubkey, Config, ADMIN, CONFIG, MEMBERS, TOTAL_WEIGHT};
use crate::types::{Action, SignedEndorsement};
use crate::ContractError;

pub use garden_wire::consortium::CONTRACT_NAME;
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    mut deps: DepsMut,
    env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    TOTAL_WEIGHT.save(deps.storage, &0)?;
    let at = moment(&env);
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
            endorsements: vec![],
            since: at,
            suspension: None,
            revocation: None,
        };
        save_member(deps.storage, at, &addr, &member, None)?;
    }
    let total = TOTAL_WEIGHT.load(deps.storage)?;
    if total == 0 {
        return Err(ContractError::NoInitialL1);
    }
    let params = msg.params.unwrap_or_default();
    validate_params(&params, total)?;
    CONFIG.save(deps.storage, &Config { params })?;
    let admin = msg.admin.map(|a| deps.api.addr_validate(&a)).transpose()?;
    ADMIN.set(deps.branch(), admin)?;
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
        ExecuteMsg::Execute { proposal_id } => execute_execute(deps, env, info, proposal_id),
        ExecuteMsg::Close { proposal_id } => execute_close(deps, env, proposal_id),
        ExecuteMsg::EmergencyRevoke { addr, reason } => {
            execute_emergency_revoke(deps, env, info, addr, reason)
        }
        ExecuteMsg::RegisterEndorsed {
            pubkey,
            endorsement,
        } => execute_register_endorsed(deps, env, info, pubkey, endorsement),
        ExecuteMsg::AdminExecute { action } => execute_admin_execute(deps, env, info, action),
        ExecuteMsg::UpdateAdmin { admin } => execute_update_admin(deps, info, admin),
    }
}

/// The sender registers itself at L2, or renews: the new endorsement joins its history (the
/// last few stay judgeable). A new key retires the old one as of now.
pub fn execute_register_endorsed(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    pubkey: Binary,
    endorsement: SignedEndorsement,
) -> Result<Response, ContractError> {
    let key = valid_pubkey(&pubkey)?;
    let addr = info.sender;
    let existing = MEMBERS.may_load(deps.storage, &addr)?;
    match &existing {
        Some(m) if m.is_revoked() => {
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
    let at = moment(&env);
    let mut member = existing.clone().unwrap_or(Member {
        pubkey: pubkey.clone(),
        level: TrustLevel::L2,
        weight: 0,
        endorsements: vec![],
        since: at,
        suspension: None,
        revocation: None,
    });
    if member.pubkey.as_slice() != key {
        // A rotated key starts a new membership period for the new key.
        member.pubkey = key.to_vec().into();
        member.endorsements.clear();
        member.since = at;
    }
    push_endorsement(&mut member, e);
    save_member(deps.storage, at, &addr, &member, existing.as_ref())?;
    Ok(Response::new()
        .add_attribute("action", "register_endorsed")
        .add_attribute("member", addr)
        .add_attribute("endorser", endorsement.endorser))
}

pub fn execute_admin_execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    action: Action,
) -> Result<Response, ContractError> {
    ADMIN.assert_admin(deps.as_ref(), &info.sender)?;
    let res = Response::new().add_attribute("action", "admin_execute");
    apply_action(deps, &env, &action, res)
}

pub fn execute_update_admin(
    deps: DepsMut,
    info: MessageInfo,
    admin: Option<String>,
) -> Result<Response, ContractError> {
    let admin = admin.map(|a| deps.api.addr_validate(&a)).transpose()?;
    Ok(ADMIN.execute_update_admin(deps, info, admin)?)
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Config {} => to_json_binary(&query_config(deps)?),
        QueryMsg::Member { addr } => to_json_binary(&query_member(deps, &env, &addr)?),
        QueryMsg::MemberByPubkey { pubkey } => {
            to_json_binary(&query_member_by_pubkey(deps, &env, &pubkey)?)
        }
        QueryMsg::IsMember {
            addr,
            min_level,
            scope,
        } => to_json_binary(&query_is_member(deps, &env, &addr, min_level, scope)?),
        QueryMsg::TrustLevel { addr } => to_json_binary(&query_trust_level(deps, &env, &addr)?),
        QueryMsg::ListMembers { start_after, limit } => {
            to_json_binary(&query_list_members(deps, &env, start_after, limit)?)
        }
        QueryMsg::TotalWeight {} => to_json_binary(&query_total_weight(deps)?),
        QueryMsg::RevocationsSince {
            height,
            start_after,
            limit,
        } => to_json_binary(&query_revocations_since(deps, height, start_after, limit)?),
        QueryMsg::Proposal { proposal_id } => {
            to_json_binary(&query_proposal(deps, &env, proposal_id)?)
        }
        QueryMsg::ListProposals { start_after, limit } => {
            to_json_binary(&query_list_proposals(deps, &env, start_after, limit)?)
        }
        QueryMsg::Vote { proposal_id, voter } => {
            to_json_binary(&query_vote(deps, proposal_id, &voter)?)
        }
        QueryMsg::ListVotes {
            proposal_id,
            start_after,
            limit,
        } => to_json_binary(&query_list_votes(deps, proposal_id, start_after, limit)?),
        QueryMsg::Emergency { addr } => to_json_binary(&query_emergency(deps, &addr)?),
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn migrate(deps: DepsMut, env: Env, _msg: MigrateMsg) -> Result<Response, ContractError> {
    let from = cw2::get_contract_version(deps.storage)?.version;
    cw2::ensure_from_older_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    let mut res = Response::new()
        .add_attribute("action", "migrate")
        .add_attribute("from_version", &from)
        .add_attribute("to_version", CONTRACT_VERSION);
    if from.starts_with("0.1.") {
        let n = crate::migrations::v0_1::migrate(deps, &env)?;
        res = res.add_attribute("members_migrated", n.to_string());
    }
    Ok(res)
}
