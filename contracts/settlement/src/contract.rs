//! Entry points and dispatch; offers and governance.

#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{
    to_json_binary, Addr, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdResult, Uint128,
};
use cw2::set_contract_version;
use garden_wire::consortium::{ConsortiumContract, CONTRACT_NAME as CONSORTIUM_NAME};
use garden_wire::ibc::on_set_route;

use crate::escrow::{
    execute_cancel_withdrawal, execute_deposit, execute_refund, execute_request_withdrawal,
    execute_withdraw,
};
use crate::msg::{ExecuteMsg, InstantiateMsg, MigrateMsg, QueryMsg, Route};
use crate::query::*;
use crate::settle::{execute_prune, execute_set_nonce_floor, execute_settle_batch};
use crate::state::{Config, ADMIN, BATCH_COUNT, CONFIG, OFFERS, TOTALS};
use crate::types::{Offer, Params, Totals, MAX_BATCH_CEILING, MAX_VERIFY_CHUNK};
use crate::ContractError;

pub const CONTRACT_NAME: &str = "crates.io:garden-settlement";
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    mut deps: DepsMut,
    _env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    let params = msg.params.unwrap_or_default();
    validate_params(&params)?;
    if garden_wire::check_str(&msg.denom).is_err() {
        return Err(ContractError::InvalidParams {
            reason: "denom must be 1..=128 bytes".into(),
        });
    }
    let consortium = match msg.consortium {
        Some(c) => Some(checked_consortium(deps.as_ref(), c)?),
        None => None,
    };
    if let Some(route) = &msg.route {
        route.validate()?;
    }
    let cfg = Config {
        consortium,
        denom: msg.denom,
        params,
        route: msg.route,
    };
    CONFIG.save(deps.storage, &cfg)?;
    let admin = msg.admin.map(|a| deps.api.addr_validate(&a)).transpose()?;
    ADMIN.set(deps.branch(), admin)?;
    TOTALS.save(deps.storage, &Totals::default())?;
    BATCH_COUNT.save(deps.storage, &0)?;
    let mode = match &cfg.consortium {
        Some(c) => c.to_string(),
        None => "none (IBC only)".into(),
    };
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("consortium", mode))
}

/// Membership is read from the consortium's storage (raw queries), which answer "nothing"
/// for a wrong address instead of failing: check the cw2 name once, at instantiation (here
/// and in the gateway).
pub fn checked_consortium(deps: Deps, addr: String) -> Result<Addr, ContractError> {
    let consortium = deps.api.addr_validate(&addr)?;
    let is_consortium = cw2::query_contract_info(&deps.querier, &consortium)
        .is_ok_and(|v| v.contract == CONSORTIUM_NAME);
    if !is_consortium {
        return Err(ContractError::NotConsortium { addr });
    }
    Ok(consortium)
}

pub fn validate_params(p: &Params) -> Result<(), ContractError> {
    let bad = |reason: &str| {
        Err(ContractError::InvalidParams {
            reason: reason.into(),
        })
    };
    if let Some(reason) = rules_params_error(p.max_batch, p.verify_chunk, p.window_secs, &p.scope) {
        return bad(reason);
    }
    // Everything signed before a withdrawal request must be able to settle before the money
    // leaves: the notice covers the whole window.
    if p.withdrawal_notice_secs < p.window_secs {
        return bad("withdrawal_notice_secs must be >= window_secs");
    }
    Ok(())
}

/// The bounds of the parameters the settlement rules take, shared with the IBC gateway's:
/// what is wrong, if anything.
pub fn rules_params_error(
    max_batch: u32,
    verify_chunk: u32,
    window_secs: u64,
    scope: &str,
) -> Option<&'static str> {
    if max_batch == 0 || max_batch > MAX_BATCH_CEILING {
        Some("max_batch must be 1..=4000")
    } else if verify_chunk > MAX_VERIFY_CHUNK {
        Some("verify_chunk must be 0..=200")
    } else if window_secs == 0 {
        Some("window_secs must be > 0")
    } else if garden_wire::check_str(scope).is_err() {
        Some("scope must be 1..=128 bytes")
    } else {
        None
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, ContractError> {
    match msg {
        ExecuteMsg::SetOffer {
            kind,
            unit,
            unit_price,
        } => execute_set_offer(deps, env, info, kind, unit, unit_price),
        ExecuteMsg::RemoveOffer { kind } => execute_remove_offer(deps, info, kind),
        ExecuteMsg::Deposit {} => execute_deposit(deps, info),
        ExecuteMsg::RequestWithdrawal { amount } => {
            execute_request_withdrawal(deps, env, &info.sender, amount)
        }
        ExecuteMsg::CancelWithdrawal {} => execute_cancel_withdrawal(deps, &info.sender),
        ExecuteMsg::Withdraw {} => execute_withdraw(deps, env, &info.sender, "withdraw"),
        ExecuteMsg::Refund { consumer } => execute_refund(deps, env, info, consumer),
        ExecuteMsg::SetNonceFloor { nonce } => execute_set_nonce_floor(deps, env, info, nonce),
        ExecuteMsg::SettleBatch { batch, strict } => {
            execute_settle_batch(deps, env, info, batch, strict.unwrap_or(false))
        }
        ExecuteMsg::Prune { limit } => execute_prune(deps, env, limit),
        ExecuteMsg::UpdateParams { params } => execute_update_params(deps, info, params),
        ExecuteMsg::SetRoute { route } => execute_set_route(deps, info, route),
        ExecuteMsg::UpdateAdmin { admin } => execute_update_admin(deps, info, admin),
    }
}

pub fn execute_update_admin(
    deps: DepsMut,
    info: MessageInfo,
    admin: Option<String>,
) -> Result<Response, ContractError> {
    let admin = admin.map(|a| deps.api.addr_validate(&a)).transpose()?;
    Ok(ADMIN.execute_update_admin(deps, info, admin)?)
}

pub fn execute_set_offer(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    kind: String,
    unit: String,
    unit_price: Uint128,
) -> Result<Response, ContractError> {
    for (field, v) in [("kind", &kind), ("unit", &unit)] {
        if garden_wire::check_str(v).is_err() {
            return Err(ContractError::InvalidOffer {
                field: field.into(),
            });
        }
    }
    if unit_price.is_zero() {
        return Err(ContractError::InvalidOffer {
            field: "unit_price".into(),
        });
    }
    let cfg = CONFIG.load(deps.storage)?;
    let now = env.block.time.seconds();
    // IBC-only: no consortium here. The gateway judges every provider's standing at the
    // attestation's signed_at, so an offer of a non-member is never used.
    let allowed = match &cfg.consortium {
        None => true,
        Some(c) => provider_allowed(deps.as_ref(), &cfg, c, &info.sender, now)?,
    };
    if !allowed {
        return Err(ContractError::ProviderNotMember {
            addr: info.sender.into(),
        });
    }
    OFFERS.save(
        deps.storage,
        (&info.sender, &kind),
        &Offer { unit, unit_price },
    )?;
    Ok(Response::new()
        .add_attribute("action", "set_offer")
        .add_attribute("provider", info.sender)
        .add_attribute("kind", kind)
        .add_attribute("unit_price", unit_price))
}

/// A member in good standing now (`min_level`, `scope`) may offer.
fn provider_allowed(
    deps: Deps,
    cfg: &Config,
    consortium: &Addr,
    sender: &Addr,
    now: u64,
) -> StdResult<bool> {
    let consortium = ConsortiumContract(consortium.clone());
    let member = consortium.member(&deps.querier, sender)?;
    Ok(member.is_some_and(|m| {
        let compromised = |k: &[u8]| consortium.compromised_at(&deps.querier, k).ok().flatten();
        m.standing_at(
            now,
            now,
            cfg.params.min_level,
            &cfg.params.scope,
            compromised,
        )
        .is_ok()
    }))
}

pub fn execute_remove_offer(
    deps: DepsMut,
    info: MessageInfo,
    kind: String,
) -> Result<Response, ContractError> {
    if !OFFERS.has(deps.storage, (&info.sender, &kind)) {
        return Err(ContractError::OfferNotFound {
            provider: info.sender.into(),
            kind,
        });
    }
    OFFERS.remove(deps.storage, (&info.sender, &kind));
    Ok(Response::new()
        .add_attribute("action", "remove_offer")
        .add_attribute("kind", kind))
}

pub fn execute_update_params(
    deps: DepsMut,
    info: MessageInfo,
    params: Params,
) -> Result<Response, ContractError> {
    ADMIN.assert_admin(deps.as_ref(), &info.sender)?;
    validate_params(&params)?;
    let mut cfg = CONFIG.load(deps.storage)?;
    cfg.params = params;
    CONFIG.save(deps.storage, &cfg)?;
    Ok(Response::new().add_attribute("action", "update_params"))
}

pub fn execute_set_route(
    deps: DepsMut,
    info: MessageInfo,
    route: Route,
) -> Result<Response, ContractError> {
    ADMIN.assert_admin(deps.as_ref(), &info.sender)?;
    let res = on_set_route::<ContractError>(deps.storage, &route)?;
    let mut cfg = CONFIG.load(deps.storage)?;
    cfg.route = Some(route);
    CONFIG.save(deps.storage, &cfg)?;
    Ok(res)
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Config {} => to_json_binary(&query_config(deps)?),
        QueryMsg::Offer { provider, kind } => to_json_binary(&query_offer(deps, &provider, &kind)?),
        QueryMsg::ListOffers {
            provider,
            start_after,
            limit,
        } => to_json_binary(&query_list_offers(deps, &provider, start_after, limit)?),
        QueryMsg::Escrow { consumer } => to_json_binary(&query_escrow(deps, &consumer)?),
        QueryMsg::Paid { consumer, provider } => {
            to_json_binary(&query_paid(deps, &consumer, &provider)?)
        }
        QueryMsg::Totals {} => to_json_binary(&query_totals(deps)?),
        QueryMsg::NonceUsed { signer, nonce } => {
            to_json_binary(&query_nonce_used(deps, &signer, nonce)?)
        }
        QueryMsg::NonceFloor { signer } => to_json_binary(&query_nonce_floor(deps, &signer)?),
        QueryMsg::Batch { batch_id } => to_json_binary(&query_batch(deps, batch_id)?),
        QueryMsg::BatchCount {} => to_json_binary(&query_batch_count(deps)?),
        QueryMsg::Channel {} => to_json_binary(&query_channel(deps)?),
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
        res = res.add_attribute("escrows_migrated", n.to_string());
    }
    Ok(res)
}
