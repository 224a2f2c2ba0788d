use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, Binary};

use crate::types::GatewayParams;

pub use garden_wire::ibc::{
    ChannelInfo, ChannelResponse, ItemState, ItemStatus, Route, SubmitResponse,
};

#[cw_serde]
pub struct InstantiateMsg {
    /// garden-consortium contract address on this chain (the zone).
    pub consortium: String,
    /// Defaults to `GatewayParams::default()`.
    pub params: Option<GatewayParams>,
    /// Governance admin (x/gov module account): params, route, admin.
    pub admin: Option<String>,
    /// The channel route: this chain's connection to the settlement chain and the settlement
    /// contract's port (`wasm.<settlement address>`). None: no channel until `set_route`.
    pub route: Option<Route>,
}

#[cw_serde]
pub enum ExecuteMsg {
    /// Anyone (a signer): a `GWAB` v1 batch of attestations signed for this chain and this
    /// gateway. Verified items are forwarded to the settlement chain and become pending; the
    /// response data is a `SubmitResponse`. Needs the open channel.
    SubmitBatch { batch: Binary },
    /// The sender (a consortium member) cancels every unforwarded nonce of its attestation key
    /// below `nonce` (the IBC pair keeps floors here: the settlement chain has no
    /// consortium). Only rises; at most the next hour's first nonce.
    SetNonceFloor { nonce: u64 },
    /// Anyone: delete up to `limit` (1..=1000) settled marks and item entries of hours older
    /// than the window (each submitted batch also deletes a few).
    Prune { limit: u32 },
    /// Admin only. An open channel that does not follow the new route is forgotten (nothing
    /// is forwarded on it any more; answers to its packets are still taken) so a new one can
    /// open.
    SetRoute { route: Route },
    /// Admin only.
    UpdateParams { params: GatewayParams },
    /// Admin only.
    UpdateAdmin { admin: Option<String> },
}

/// Migrates an earlier version of this contract (none yet: cw2 version check only).
#[cw_serde]
pub struct MigrateMsg {}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(ConfigResponse)]
    Config {},
    /// The route and the open channel, if any.
    #[returns(ChannelResponse)]
    Channel {},
    /// Where (signer key, nonce) stands: free, pending, settled or released.
    #[returns(ItemStatus)]
    Item { signer: Binary, nonce: u64 },
    /// A batch that forwarded something (the last 1 000, and every pending one).
    #[returns(Option<crate::types::BatchInfo>)]
    Batch { batch_id: u64 },
    /// Batches submitted so far (each got an id).
    #[returns(u64)]
    BatchCount {},
    /// The nonce floor of a signer key (0 if never set).
    #[returns(u64)]
    NonceFloor { signer: Binary },
}

#[cw_serde]
pub struct ConfigResponse {
    pub consortium: Addr,
    pub params: GatewayParams,
    pub admin: Option<Addr>,
    pub route: Option<Route>,
    /// Nonce hours below this were pruned (their items are refused, code 19).
    pub pruned_below: u64,
}
