//! Domain types used in messages, storage and the engine (`msg` and `state` import these,
//! never each other).

use cosmwasm_schema::cw_serde;
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
    /// Most attestations in one batch. Default 1 000 (~132 KB of batch). At most 4 000.
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
    /// Notice between a withdrawal request and the money leaving the escrow, seconds; at
    /// least `window_secs`, so every attestation signed before the request can still settle.
    /// Default 8 days.
    pub withdrawal_notice_secs: u64,
    /// 0 = verify signatures one by one. 1..=200 = `ed25519_batch_verify` in chunks of this
    /// size, falling back to one by one inside a chunk that fails. Default 200 (~4 % less gas
    /// at 1 000 items on wasmd v0.61.14; the VM refuses more than ~250 items per call).
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
            withdrawal_notice_secs: 8 * 24 * 3600,
            verify_chunk: 200,
        }
    }
}

#[cw_serde]
pub struct Offer {
    pub unit: String,
    /// Native denom base units per `unit`.
    pub unit_price: Uint128,
}

/// An offer's terms as the engine sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferTerms {
    pub unit: String,
    pub unit_price: Uint128,
}

/// A consumer's escrow.
#[cw_serde]
#[derive(Default)]
pub struct Escrow {
    pub balance: Uint128,
    /// A pending withdrawal request, if any.
    pub withdrawal: Option<Withdrawal>,
}

#[cw_serde]
pub struct Withdrawal {
    /// Amount requested; `None` = everything left when the notice ends.
    pub amount: Option<Uint128>,
    /// Unix seconds. Attestations signed up to this second still draw on the whole balance.
    pub requested_at: u64,
    /// Unix seconds from which the money can leave.
    pub available_at: u64,
}

/// Running totals for the invariant `sum(escrow) + paid + withdrawn == deposited`.
#[cw_serde]
#[derive(Default)]
pub struct Totals {
    pub deposited: Uint128,
    pub paid: Uint128,
    pub withdrawn: Uint128,
}

#[cw_serde]
pub struct BatchRecord {
    pub submitter: Addr,
    pub height: u64,
    pub settled: u32,
    pub rejected: u32,
    pub paid: Uint128,
    /// One byte per item: 0 = settled, otherwise the `ItemError` code.
    pub codes: Binary,
}

/// Why one attestation was not settled. The discriminant is the code reported per item
/// (0 means settled). Codes are stable: new ones are appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum ItemError {
    #[error("signature does not verify")]
    BadSignature = 1,
    #[error("signer key is not a consortium member")]
    UnknownSigner = 2,
    #[error("signer was revoked (departure) at or before signed_at")]
    RevokedSigner = 3,
    #[error("signer's trust level or L2 endorsement (scope, validity, endorser) at signed_at is insufficient")]
    SignerNotTrusted = 4,
    #[error("nonce already settled")]
    NonceReused = 5,
    #[error("signed_at is older than the settlement window")]
    StaleTimestamp = 6,
    #[error("signed_at is in the future beyond the tolerated skew")]
    FutureTimestamp = 7,
    #[error("consumer escrow does not cover the amount")]
    InsufficientEscrow = 8,
    #[error("provider has no offer for this price reference")]
    NoOffer = 9,
    #[error("unit differs from the offer's unit")]
    UnitMismatch = 10,
    #[error("offer price is above the consumer's max_unit_price")]
    PriceAboveCap = 11,
    #[error("signer is not the attestation's consumer")]
    SignerNotConsumer = 12,
    #[error("period is inconsistent (start <= end <= signed_at)")]
    InvalidPeriod = 13,
    #[error("provider was not a trusted member in good standing at signed_at")]
    ProviderNotMember = 14,
    #[error("quantity is zero")]
    ZeroQuantity = 15,
    #[error("amount overflows")]
    AmountOverflow = 16,
    #[error("nonce is not in signed_at's hour (garden-wire nonce rule)")]
    NonceOutOfEpoch = 17,
    #[error("nonce is below the consumer's nonce floor (cancelled)")]
    NonceCancelled = 18,
    #[error("nonce's hour is older than the pruned horizon")]
    NonceExpired = 19,
    #[error("signer's key was revoked for compromise: nothing unsettled from it is paid")]
    SignerCompromised = 20,
    #[error("signer is suspended (emergency); retry after the suspension lapses")]
    SignerSuspended = 21,
    #[error("signed_at is before the signer's membership started")]
    SignedBeforeAdmission = 22,
    #[error("provider was revoked for compromise")]
    ProviderCompromised = 23,
    #[error("signed after the consumer requested withdrawal of the funds it needs")]
    WithdrawalPending = 24,
    /// Only from the IBC gateway: the item was forwarded and the settlement chain has not
    /// answered yet (query the gateway's `item` for when it settles or comes back).
    #[error("nonce is pending at the gateway: forwarded, awaiting the settlement chain's answer")]
    NoncePending = 25,
}
