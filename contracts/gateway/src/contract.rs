//! Entry points and dispatch; route, nonce floors, pruning and governance.

#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdResult};
use cw2::set_contract_version;
use garden_settlement::contract::{checked_consortium, rules_params_error};
use garden_settlement::settle::raise_nonce_floor;
use garden_wire::ibc::{on_set_route, Route};

use crate::items;
use crate::msg::{ExecuteMsg, InstantiateMsg, MigrateMsg, QueryMsg};
use crate::query::*;
use crate::state::{Config, ADMIN, BATCH_COUNT, CONFIG};
use crate::submit::execute_submit_batch;
use crate::types::{
    GatewayParams, MAX_PACKET_BYTES, MAX_PACKET_TIMEOUT_SECS, MIN_PACKET_BYTES,
    MIN_PACKET_TIMEOUT_SECS,
};
use crate::ContractError;

pub const CONTRACT_NAME: &str = "crates.io:garden-gateway";
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
    if let Some(route) = &msg.route {
        route.validate()?;
    }
    let consortium = checked_consortium(deps.as_ref(), msg.consortium)?;
    let cfg = Config {
        consortium,
        params,
        route: msg.route,
    };
    CONFIG.save(deps.storage, &cfg)?;
    let admin = msg.admin.map(|a| deps.api.addr_validate(&a)).transpose()?;
    ADMIN.set(deps.branch(), admin)?;
    BATCH_COUNT.save(deps.storage, &0)?;
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("consortium", cfg.consortium))
}

pub fn validate_params(p: &GatewayParams) -> Result<(), ContractError> {
    let reason = rules_params_error(p.max_batch, p.verify_chunk, p.window_secs, &p.scope)
        .or_else(|| {
            (!(MIN_PACKET_TIMEOUT_SECS..=MAX_PACKET_TIMEOUT_SECS).contains(&p.packet_timeout_secs))
                .then_some("packet_timeout_secs must be 60..=86400")
        })
        .or_else(|| {
            (!(MIN_PACKET_BYTES..=MAX_PACKET_BYTES).contains(&p.max_packet_bytes))
                .then_some("max_packet_bytes must be 1000..=1000000")
        });
    match reason {
        Some(reason) => Err(ContractError::InvalidParams {
            reason: reason.into(),
        }),
        None => Ok(()),
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
        ExecuteMsg::SubmitBatch { batch } => execute_submit_batch(deps, env, info, batch),
        ExecuteMsg::SetNonceFloor { nonce } => execute_set_nonce_floor(deps, env, info, nonce),
        ExecuteMsg::Prune { limit } => execute_prune(deps, env, limit),
        ExecuteMsg::SetRoute { route } => execute_set_route(deps, info, route),
        ExecuteMsg::UpdateParams { params } => execute_update_params(deps, info, params),
        ExecuteMsg::UpdateAdmin { admin } => execute_update_admin(deps, info, admin),
    }
}

/// The sender cancels its attestation key's nonces below `floor` that were not forwarded yet
/// (the settlement contract's rule, kept here for the IBC pair).
pub fn execute_set_nonce_floor(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    floor: u64,
) -> Result<Response, ContractError> {
    let cfg = CONFIG.load(deps.storage)?;
    let latest = env
        .block
        .time
        .seconds()
        .saturating_add(cfg.params.max_future_secs);
    Ok(raise_nonce_floor(
        deps,
        &cfg.consortium,
        &info.sender,
        floor,
        latest,
    )?)
}

pub fn execute_prune(deps: DepsMut, env: Env, limit: u32) -> Result<Response, ContractError> {
    if limit == 0 || limit > 1_000 {
        return Err(ContractError::InvalidPruneLimit);
    }
    let window = CONFIG.load(deps.storage)?.params.window_secs;
    let horizon = items::horizon(env.block.time.seconds(), window);
    let pruned = items::prune(deps.storage, horizon, limit as usize)?;
    Ok(Response::new()
        .add_attribute("action", "prune")
        .add_attribute("pruned", pruned.to_string())
        .add_attribute("horizon", horizon.to_string()))
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

pub fn execute_update_params(
    deps: DepsMut,
    info: MessageInfo,
    params: GatewayParams,
) -> Result<Response, ContractError> {
    ADMIN.assert_admin(deps.as_ref(), &info.sender)?;
    validate_params(&params)?;
    let mut cfg = CONFIG.load(deps.storage)?;
    cfg.params = params;
    CONFIG.save(deps.storage, &cfg)?;
    Ok(Response::new().add_attribute("action", "update_params"))
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
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Config {} => to_json_binary(&query_config(deps)?),
        QueryMsg::Channel {} => to_json_binary(&query_channel(deps)?),
        QueryMsg::Item { signer, nonce } => to_json_binary(&query_item(deps, &signer, nonce)?),
        QueryMsg::Batch { batch_id } => to_json_binary(&query_batch(deps, batch_id)?),
        QueryMsg::BatchCount {} => to_json_binary(&query_batch_count(deps)?),
        QueryMsg::NonceFloor { signer } => to_json_binary(&query_nonce_floor(deps, &signer)?),
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn migrate(deps: DepsMut, _env: Env, _msg: MigrateMsg) -> Result<Response, ContractError> {
    let from = cw2::get_contract_version(deps.storage)?.version;
    cw2::ensure_from_older_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    Ok(Response::new()
        .add_attribute("action", "migrate")
        .add_attribute("from_version", from)
        .add_attribute("to_version", CONTRACT_VERSION))
}
