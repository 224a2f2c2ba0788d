//! Domain types used in messages and storage (`msg` and `state` import these, never each
//! other).

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Binary};
use garden_wire::TrustLevel;

pub use garden_settlement::types::{MAX_BATCH_CEILING, MAX_VERIFY_CHUNK};

/// Shortest and longest packet timeout: shorter than a relayer's round trip (measured send ->
/// ack ~5 s with Hermes in pull mode) releases everything; longer keeps items pending for
/// that long when the relayer is down.
pub const MIN_PACKET_TIMEOUT_SECS: u64 = 60;
pub const MAX_PACKET_TIMEOUT_SECS: u64 = 86_400;
/// Bounds of `max_packet_bytes`: CometBFT's default `max_tx_bytes` is 1 MB, and the relayer's
/// transaction carries the packet (and a proof) to each chain.
pub const MIN_PACKET_BYTES: u32 = 1_000;
pub const MAX_PACKET_BYTES: u32 = 1_000_000;

/// Gateway parameters (admin: `update_params`). The fields shared with the settlement
/// contract's `Params` mean the same; keep `window_secs` and `max_future_secs` equal on both
/// sides (an item forwarded at the edge of a longer gateway window comes back as code 6).
#[cw_serde]
pub struct GatewayParams {
    /// Most attestations in one submitted batch (and one packet). Default 1 000, at most
    /// 4 000.
    pub max_batch: u32,
    /// How far in the past `signed_at` may be, seconds. Default 7 days.
    pub window_secs: u64,
    /// Clock skew tolerated for `signed_at` in the future, seconds. Default 300.
    pub max_future_secs: u64,
    /// Least trusted level allowed to sign attestations and to be paid. Default L2.
    pub min_level: TrustLevel,
    /// Scope an L2 endorsement must carry. Default "settle".
    pub scope: String,
    /// `ed25519_batch_verify` chunk, 0 = one by one. Default 200 (at most 200).
    pub verify_chunk: u32,
    /// A packet not received by the settlement chain this long after it was sent (judged on
    /// the settlement chain's clock) times out and its items are released. Default 600,
    /// 60..=86400.
    pub packet_timeout_secs: u64,
    /// Largest packet (the re-encoded batch) sent, bytes; a submission that would forward more
    /// fails as a whole (the signer sends fewer items). The relayer must be able to carry it:
    /// Hermes refuses a message larger than its `max_tx_size` (default 180 000 bytes) and the
    /// packet travels with a proof of a few KB. Default 160 000 (1 000 items of one signer are
    /// ~133 KB), 1000..=1000000.
    pub max_packet_bytes: u32,
}

impl Default for GatewayParams {
    fn default() -> Self {
        GatewayParams {
            max_batch: 1_000,
            window_secs: 7 * 24 * 3600,
            max_future_secs: 300,
            min_level: TrustLevel::L2,
            scope: "settle".into(),
            verify_chunk: 200,
            packet_timeout_secs: 600,
            max_packet_bytes: 160_000,
        }
    }
}

/// Where a forwarded batch stands.
#[cw_serde]
pub enum BatchStatus {
    /// Sent; no answer yet.
    Pending,
    /// The settlement chain answered item by item (`ack_codes`).
    Acked,
    /// The settlement chain refused the packet as a whole (`error`).
    ErrorAck,
    /// The packet was not received in time.
    TimedOut,
}

/// A submitted batch that forwarded something (`batch {batch_id}`; the last 1 000 are kept,
/// and pending ones until their answer).
#[cw_serde]
pub struct BatchInfo {
    pub submitter: Addr,
    pub height: u64,
    /// Items in the submitted batch.
    pub items: u32,
    /// Items sent on (the packet's items, in input order).
    pub forwarded: u32,
    pub status: BatchStatus,
    /// One byte per submitted item: 0 = forwarded, else the gateway's refusal code.
    pub codes: Binary,
    /// Packet items settled / released after the answer.
    pub settled: u32,
    pub released: u32,
    /// The settlement contract's batch id and codes (one per forwarded item), once acked.
    pub settlement_batch_id: Option<u64>,
    pub ack_codes: Option<Binary>,
    /// The error ack's text (at most 256 bytes).
    pub error: Option<String>,
}
