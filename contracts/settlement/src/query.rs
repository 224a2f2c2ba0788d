//! Queries, one `query_<x>` per `QueryMsg` arm.

use cosmwasm_std::{Binary, Deps, Order, StdError, StdResult, Uint128};
use cw_storage_plus::Bound;

use crate::msg::{ChannelResponse, ConfigResponse, OfferInfo, OffersResponse};
use crate::state::{
    nonce_floor, nonce_used, ADMIN, BATCHES, BATCH_COUNT, CHANNEL, CONFIG, ESCROWS, OFFERS, PAID,
    PRUNED_BELOW, TOTALS,
};
use crate::types::{BatchRecord, Escrow, Offer, Totals};

pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 30;

pub fn query_config(deps: Deps) -> StdResult<ConfigResponse> {
    let c = CONFIG.load(deps.storage)?;
    Ok(ConfigResponse {
        consortium: c.consortium,
        denom: c.denom,
        params: c.params,
        admin: ADMIN.get(deps)?,
        pruned_below: PRUNED_BELOW.may_load(deps.storage)?.unwrap_or(0),
        route: c.route,
    })
}

pub fn query_channel(deps: Deps) -> StdResult<ChannelResponse> {
    Ok(ChannelResponse {
        route: CONFIG.load(deps.storage)?.route,
        channel: CHANNEL.may_load(deps.storage)?,
    })
}

pub fn query_offer(deps: Deps, provider: &str, kind: &str) -> StdResult<Option<Offer>> {
    let p = deps.api.addr_validate(provider)?;
    OFFERS.may_load(deps.storage, (&p, kind))
}

pub fn query_list_offers(
    deps: Deps,
    provider: &str,
    start_after: Option<String>,
    limit: Option<u32>,
) -> StdResult<OffersResponse> {
    let p = deps.api.addr_validate(provider)?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT) as usize;
    let offers = OFFERS
        .prefix(&p)
        .range(
            deps.storage,
            start_after.as_deref().map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(limit)
        .map(|r| {
            r.map(|(kind, o)| OfferInfo {
                kind,
                unit: o.unit,
                unit_price: o.unit_price,
            })
        })
        .collect::<StdResult<_>>()?;
    Ok(OffersResponse { offers })
}

pub fn query_escrow(deps: Deps, consumer: &str) -> StdResult<Option<Escrow>> {
    let c = deps.api.addr_validate(consumer)?;
    ESCROWS.may_load(deps.storage, &c)
}

pub fn query_paid(deps: Deps, consumer: &str, provider: &str) -> StdResult<Uint128> {
    let c = deps.api.addr_validate(consumer)?;
    let p = deps.api.addr_validate(provider)?;
    Ok(PAID.may_load(deps.storage, (&c, &p))?.unwrap_or_default())
}

pub fn query_totals(deps: Deps) -> StdResult<Totals> {
    TOTALS.load(deps.storage)
}

fn key32(signer: &Binary) -> StdResult<[u8; 32]> {
    signer
        .as_slice()
        .try_into()
        .map_err(|_| StdError::msg("signer must be 32 bytes"))
}

pub fn query_nonce_used(deps: Deps, signer: &Binary, nonce: u64) -> StdResult<bool> {
    Ok(nonce_used(deps.storage, &key32(signer)?, nonce))
}

pub fn query_nonce_floor(deps: Deps, signer: &Binary) -> StdResult<u64> {
    nonce_floor(deps.storage, &key32(signer)?)
}

pub fn query_batch(deps: Deps, batch_id: u64) -> StdResult<Option<BatchRecord>> {
    BATCHES.may_load(deps.storage, batch_id)
}

pub fn query_batch_count(deps: Deps) -> StdResult<u64> {
    BATCH_COUNT.load(deps.storage)
}
