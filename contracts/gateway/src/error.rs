use cosmwasm_std::StdError;
use garden_wire::ibc::ChannelError;
use garden_wire::{DecodeError, EncodeError};
use thiserror::Error;

/// Transaction-level errors (the whole message fails). Per-item refusals of a submitted
/// batch are `ItemError` codes in its `SubmitResponse`.
#[derive(Error, Debug)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),

    #[error("{0}")]
    Admin(#[from] cw_controllers::AdminError),

    /// The settlement contract's rules the gateway shares: nonce floors (`NotMember`,
    /// `FloorNotRaised`, `FloorTooHigh`) and the consortium check (`NotConsortium`).
    #[error("{0}")]
    Settlement(#[from] garden_settlement::ContractError),

    #[error("{0}")]
    Channel(#[from] ChannelError),

    #[error(
        "no channel is open to the settlement chain: nothing can be forwarded (route: {route})"
    )]
    NoChannel { route: String },

    #[error("batch rejected: {0}")]
    BatchDecode(#[from] DecodeError),

    #[error("batch of {size} items exceeds the maximum of {max}")]
    BatchTooLarge { size: usize, max: usize },

    #[error("the forwarded items would make a packet of {bytes} bytes, the limit is {max}: submit fewer items")]
    PacketTooLarge { bytes: usize, max: u32 },

    #[error("forwarded batch could not be encoded: {0}")]
    Encode(#[from] EncodeError),

    #[error("prune limit must be 1..=1000")]
    InvalidPruneLimit,

    #[error("invalid parameters: {reason}")]
    InvalidParams { reason: String },
}
