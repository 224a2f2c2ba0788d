use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, Binary, Uint128};
use garden_wire::TrustLevel;

/// Hard ceiling on `max_batch`: 4 000 items are ~528 KB of batch, ~940 KB once base64'd in
/// the JSON message and again in the RPC body — the edge of CometBFT's 1 MB `max_body_bytes`.
pub const MAX_BATCH_CEILING: u32 = 4_000;
/// `ed25519_batch_verify` fails past ~250 items (VM region limit, TOOLCHAIN.md).
pub const MAX_VERIFY_CHUNK: u32 = 200;

/// Settlement parameters, changed by the governance admin (`UpdateParams`).
#[cw_serde]
pub struct Params {
    /// Most attestations in one batch. Default 1 000 (the spec's target; ~132 KB of batch,
    /// ~8 M gas). At most 4 000.
    pub max_batch: u32,
    /// How far in the past `signed_at` may be, seconds. Default 7 days: long enough for a
    /// site isolated for days to settle what it signed offline.
    pub window_secs: u64,
    /// Clock skew tolerated for `signed_at` in the future, seconds. Default 300.
    pub max_future_secs: u64,
    /// Least trusted level allowed to sign attestations and to offer. Default L2.
    pub min_level: TrustLevel,
    /// Scope an L2 endorsement must carry to sign or offer. Default "settle".
    pub scope: String,
    /// Minimum escrow lock after a deposit, seconds. Default 8 days (window + 1 day), so an
    /// attestation signed against a locked escrow can settle before it is withdrawn.
    pub min_lock_secs: u64,
    /// 0 = verify signatures one by one. 1..=200 = `ed25519_batch_verify` in chunks of this
    /// size, falling back to one by one inside a chunk that fails (a bad signature, or a VM
    /// that refuses the call). Default 200: measured on wasmd v0.61.14 with 1 000 items it
    /// saves ~4 % of the transaction's gas (2 326 k vs 2 426 k); the VM refuses more than
    /// ~250 items per call, hence the 200 ceiling.
    pub verify_chunk: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            max_batch: 1_000,
            window_secs: 7 * 24 * 3600,
            max_future_secs: 300,
            min_level: TrustLevel::L2,
            scope: "settle".into(),
            min_lock_secs: 8 * 24 * 3600,
            verify_chunk: 200,
        }
    }
}

#[cw_serde]
pub struct InstantiateMsg {
    /// garden-consortium contract address.
    pub consortium: String,
    /// The zone's native denom used for escrow and payment (e.g. "stake").
    pub denom: String,
    /// Defaults to `Params::default()`.
    pub params: Option<Params>,
    /// Governance admin (x/gov module account) allowed to `UpdateParams`, if any.
    pub admin: Option<String>,
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
    /// Add the attached native coins to the sender's escrow; the lock becomes
    /// `max(current, now + lock_secs)` (`lock_secs` defaults to and must be >= `min_lock_secs`).
    Deposit {
        lock_secs: Option<u64>,
    },
    /// Consumer takes back unused escrow (all if `amount` is None) once the lock has passed.
    Withdraw {
        amount: Option<Uint128>,
    },
    /// Anyone: return an expired escrow in full to its consumer.
    Refund {
        consumer: String,
    },
    /// Settle a `GWAB` v1 batch (see garden-wire). Each item settles or is rejected on its
    /// own; the response data is a `SettleBatchResponse`. `strict: true` fails the whole
    /// transaction on the first rejected item (for clients that want all-or-nothing).
    SettleBatch {
        batch: Binary,
        strict: Option<bool>,
    },
    /// Admin only.
    UpdateParams {
        params: Params,
    },
    /// Admin only.
    UpdateAdmin {
        admin: Option<String>,
    },
}

#[cw_serde]
pub struct MigrateMsg {}

/// Response data of `SettleBatch` (also stored, see `QueryMsg::Batch`).
#[cw_serde]
pub struct SettleBatchResponse {
    pub batch_id: u64,
    pub settled: u32,
    pub rejected: u32,
    pub paid: Uint128,
    /// One byte per item in batch order: 0 = settled, else the `ItemError` code.
    pub codes: Binary,
}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(ConfigResponse)]
    Config {},
    #[returns(Option<crate::state::Offer>)]
    Offer { provider: String, kind: String },
    #[returns(OffersResponse)]
    ListOffers {
        provider: String,
        start_after: Option<String>,
        limit: Option<u32>,
    },
    #[returns(Option<crate::state::Escrow>)]
    Escrow { consumer: String },
    /// Total paid so far by `consumer` to `provider`.
    #[returns(Uint128)]
    Paid { consumer: String, provider: String },
    #[returns(crate::state::Totals)]
    Totals {},
    /// Has this (signer key, nonce) been settled?
    #[returns(bool)]
    NonceUsed { signer: Binary, nonce: u64 },
    /// Per-item result codes of a settled batch.
    #[returns(crate::state::BatchRecord)]
    Batch { batch_id: u64 },
    #[returns(u64)]
    BatchCount {},
}

#[cw_serde]
pub struct ConfigResponse {
    pub consortium: Addr,
    pub denom: String,
    pub params: Params,
    pub admin: Option<Addr>,
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
