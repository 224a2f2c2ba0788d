use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, Binary, Uint128};

use crate::types::Params;

pub use cw_controllers::AdminResponse;
pub use garden_wire::ibc::{ChannelInfo, ChannelResponse, Route, SettleAck};

#[cw_serde]
pub struct InstantiateMsg {
    /// garden-consortium contract address, on this chain. None: an IBC-only settlement chain
    /// (`settle_batch` and `set_nonce_floor` refused; batches come from the gateway).
    pub consortium: Option<String>,
    /// The zone's native denom used for escrow and payment (e.g. "stake").
    pub denom: String,
    /// Defaults to `Params::default()`.
    pub params: Option<Params>,
    /// Governance admin (x/gov module account) allowed to `UpdateParams`, if any.
    pub admin: Option<String>,
    /// The gateway's channel route (its connection here and its port `wasm.<gateway>`).
    /// None: no channel can open until the admin sends `set_route`.
    pub route: Option<Route>,
}

#[cw_serde]
pub enum ExecuteMsg {
    /// Create or replace the sender's offer for a resource kind.
    SetOffer {
        kind: String,
        unit: String,
        unit_price: Uint128,
    },
    RemoveOffer {
        kind: String,
    },
    /// Add the attached native coins to the sender's escrow.
    Deposit {},
    /// Consumer: ask for `amount` (everything if None) back; it can leave after
    /// `withdrawal_notice_secs`. Replaces a pending request (its notice restarts).
    RequestWithdrawal {
        amount: Option<Uint128>,
    },
    /// Consumer: drop a pending request.
    CancelWithdrawal {},
    /// Consumer: take the requested amount (what is left of it) once the notice has ended.
    Withdraw {},
    /// The consumer or the governance admin: return the whole escrow to the consumer. Files
    /// a request for everything if none is pending; pays out once the notice has ended.
    Refund {
        consumer: String,
    },
    /// The sender (a consortium member) cancels every unsettled nonce of its attestation key
    /// below `nonce`. Floors only rise, and at most to the first nonce of the next hour.
    SetNonceFloor {
        nonce: u64,
    },
    /// Settle a `GWAB` v1 batch (see garden-wire). Each item settles or is rejected on its
    /// own; the response data is a `SettleBatchResponse`. `strict: true` fails the whole
    /// transaction on the first rejected item (for clients that want all-or-nothing).
    SettleBatch {
        batch: Binary,
        strict: Option<bool>,
    },
    /// Anyone: delete up to `limit` (1..=1000) used-nonce bitmaps of hours older than the
    /// window (each settled batch also deletes a few).
    Prune {
        limit: u32,
    },
    /// Admin only.
    UpdateParams {
        params: Params,
    },
    /// Admin only: the gateway's channel route. An open channel that does not follow the new
    /// route is forgotten (its packets are refused from then on) so a new one can open.
    SetRoute {
        route: Route,
    },
    /// Admin only.
    UpdateAdmin {
        admin: Option<String>,
    },
}

/// Migrates a v0.1, v0.2 or v0.3 deployment to this version (see `docs/CONTRACTS.md`); the
/// consortium must be migrated first.
#[cw_serde]
pub struct MigrateMsg {}

/// Response data of `SettleBatch` (also stored when something settled, see `QueryMsg::Batch`).
/// A packet from the gateway is answered with the same fields as a [`SettleAck`].
#[cw_serde]
pub struct SettleBatchResponse {
    pub batch_id: u64,
    pub settled: u32,
    pub rejected: u32,
    pub paid: Uint128,
    /// One byte per item in batch order: 0 = settled, else the `ItemError` code.
    pub codes: Binary,
}

impl From<SettleBatchResponse> for SettleAck {
    fn from(r: SettleBatchResponse) -> Self {
        SettleAck {
            batch_id: r.batch_id,
            settled: r.settled,
            rejected: r.rejected,
            paid: r.paid,
            codes: r.codes,
        }
    }
}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(ConfigResponse)]
    Config {},
    #[returns(Option<crate::types::Offer>)]
    Offer { provider: String, kind: String },
    #[returns(OffersResponse)]
    ListOffers {
        provider: String,
        start_after: Option<String>,
        limit: Option<u32>,
    },
    #[returns(Option<crate::types::Escrow>)]
    Escrow { consumer: String },
    /// Total paid so far by `consumer` to `provider`.
    #[returns(Uint128)]
    Paid { consumer: String, provider: String },
    #[returns(crate::types::Totals)]
    Totals {},
    /// Has this (signer key, nonce) been settled? (False once its hour was pruned: such a
    /// nonce is refused anyway.)
    #[returns(bool)]
    NonceUsed { signer: Binary, nonce: u64 },
    /// The nonce floor of a signer key (0 if never set).
    #[returns(u64)]
    NonceFloor { signer: Binary },
    /// Per-item result codes of one of the last 1 000 batches that settled something.
    #[returns(Option<crate::types::BatchRecord>)]
    Batch { batch_id: u64 },
    /// Batches submitted so far (each got an id).
    #[returns(u64)]
    BatchCount {},
    /// The route and the gateway's open channel, if any.
    #[returns(ChannelResponse)]
    Channel {},
}

#[cw_serde]
pub struct ConfigResponse {
    /// None on an IBC-only settlement chain.
    pub consortium: Option<Addr>,
    pub denom: String,
    pub params: Params,
    pub admin: Option<Addr>,
    /// Nonce hours below this were pruned.
    pub pruned_below: u64,
    pub route: Option<Route>,
}

#[cw_serde]
pub struct OfferInfo {
    pub kind: String,
    pub unit: String,
    pub unit_price: Uint128,
}

#[cw_serde]
pub struct OffersResponse {
    pub offers: Vec<OfferInfo>,
}
