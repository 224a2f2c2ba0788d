//! Queries, one `query_<x>` per `QueryMsg` arm.

use cosmwasm_std::{Binary, Deps, StdError, StdResult};
use garden_settlement::state::nonce_floor;
use garden_wire::ibc::{ChannelResponse, ItemStatus};

use crate::items;
use crate::msg::ConfigResponse;
use crate::state::{ADMIN, BATCHES, BATCH_COUNT, CHANNEL, CONFIG, PRUNED_BELOW};
use crate::types::BatchInfo;

pub fn query_config(deps: Deps) -> StdResult<ConfigResponse> {
    let c = CONFIG.load(deps.storage)?;
    Ok(ConfigResponse {
        consortium: c.consortium,
        params: c.params,
        admin: ADMIN.get(deps)?,
        route: c.route,
        pruned_below: PRUNED_BELOW.may_load(deps.storage)?.unwrap_or(0),
    })
}

pub fn query_channel(deps: Deps) -> StdResult<ChannelResponse> {
    Ok(ChannelResponse {
        route: CONFIG.load(deps.storage)?.route,
        channel: CHANNEL.may_load(deps.storage)?,
    })
}

fn key32(signer: &Binary) -> StdResult<[u8; 32]> {
    signer
        .as_slice()
        .try_into()
        .map_err(|_| StdError::msg(format!("signer must be 32 bytes, got {}", signer.len())))
}

pub fn query_item(deps: Deps, signer: &Binary, nonce: u64) -> StdResult<ItemStatus> {
    Ok(items::status(deps.storage, &key32(signer)?, nonce))
}

pub fn query_batch(deps: Deps, batch_id: u64) -> StdResult<Option<BatchInfo>> {
    BATCHES.may_load(deps.storage, batch_id)
}

pub fn query_batch_count(deps: Deps) -> StdResult<u64> {
    BATCH_COUNT.load(deps.storage)
}

pub fn query_nonce_floor(deps: Deps, signer: &Binary) -> StdResult<u64> {
    nonce_floor(deps.storage, &key32(signer)?)
}
