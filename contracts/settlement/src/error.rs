use cosmwasm_std::StdError;
use cw_utils::PaymentError;
use garden_wire::DecodeError;
use thiserror::Error;

use crate::engine::ItemError;

/// Transaction-level errors (the whole message fails). Per-item rejections in a batch are
/// [`ItemError`] codes in the batch result; with `strict: true` the first one becomes
/// [`ContractError::Item`].
#[derive(Error, Debug)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),

    #[error("{0}")]
    Payment(#[from] PaymentError),

    #[error("only the governance admin may do this")]
    NotAdmin,

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

    #[error("escrow of {consumer} is locked until {locked_until} (now {now})")]
    EscrowLocked {
        consumer: String,
        locked_until: u64,
        now: u64,
    },

    #[error("withdrawal of {requested} exceeds escrow balance {balance}")]
    InsufficientEscrow { requested: String, balance: String },

    #[error("amount must be greater than zero")]
    ZeroAmount,

    #[error("lock period {requested}s is shorter than the minimum {min}s")]
    LockTooShort { requested: u64, min: u64 },

    #[error("{addr} is not a garden-consortium contract")]
    NotConsortium { addr: String },

    #[error("invalid parameters: {reason}")]
    InvalidParams { reason: String },
}
