use cosmwasm_std::StdError;
use cw_utils::PaymentError;
use garden_wire::ibc::ChannelError;
use garden_wire::DecodeError;
use thiserror::Error;

use crate::types::ItemError;

/// Transaction-level errors (the whole message fails). Per-item rejections in a batch are
/// [`ItemError`] codes in the batch result; with `strict: true` the first one becomes
/// [`ContractError::Item`].
#[derive(Error, Debug)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),

    #[error("{0}")]
    Payment(#[from] PaymentError),

    #[error("{0}")]
    Admin(#[from] cw_controllers::AdminError),

    #[error("only {consumer} or the governance admin may refund its escrow")]
    NotConsumerOrAdmin { consumer: String },

    #[error("batch rejected: {0}")]
    BatchDecode(#[from] DecodeError),

    #[error("batch of {size} items exceeds the maximum of {max}")]
    BatchTooLarge { size: usize, max: usize },

    #[error("item {index} rejected (code {code}): {error}", code = *.error as u8)]
    Item { index: usize, error: ItemError },

    #[error("{addr} is not an active consortium member allowed to offer")]
    ProviderNotMember { addr: String },

    #[error("offer field {field} is invalid (1..=128 bytes, price > 0)")]
    InvalidOffer { field: String },

    #[error("no offer {kind} from {provider}")]
    OfferNotFound { provider: String, kind: String },

    #[error("no escrow for {consumer}")]
    NoEscrow { consumer: String },

    #[error("no withdrawal was requested")]
    NoWithdrawalRequested,

    #[error("the withdrawal notice runs until {available_at} (now {now})")]
    NoticeRunning { available_at: u64, now: u64 },

    #[error("amount must be greater than zero")]
    ZeroAmount,

    #[error("{addr} is not a consortium member: it has no attestation key")]
    NotMember { addr: String },

    #[error("nonce floor {requested} is not above the current floor {current}")]
    FloorNotRaised { requested: u64, current: u64 },

    #[error("nonce floor {requested} is beyond the next hour's first nonce {max}")]
    FloorTooHigh { requested: u64, max: u64 },

    #[error("prune limit must be 1..=1000")]
    InvalidPruneLimit,

    #[error("amount or total overflows")]
    Overflow,

    #[error("cannot migrate: {reason}")]
    Migration { reason: String },

    #[error("{addr} is not a garden-consortium contract")]
    NotConsortium { addr: String },

    #[error("invalid parameters: {reason}")]
    InvalidParams { reason: String },

    #[error("{what} needs a consortium: this contract settles over IBC only (batches come from the gateway over its channel)")]
    NoConsortium { what: &'static str },

    #[error("{0}")]
    Channel(#[from] ChannelError),
}
