//! garden-settlement: offers, consumer escrow and batch settlement of signed consumption
//! attestations (garden-wire `GWAB` batches) for the consortium zone.
//!
//! * [`engine`]: the settlement rules behind a small interface (`Ledger` + `Verifier`
//!   traits): anything that can answer "who signed", "what is the offer", "is this nonce
//!   used", "how much escrow is left" can run them, a confidential backend included.
//! * [`ledger`]: the on-chain `Ledger` (storage + consortium reads, cached per batch,
//!   written once per key at the end).
//! * [`membership`]: raw reads of the consortium's member maps (cw4 `Cw4Contract` style).
//! * [`contract`]: entry points; escrow and offers.
//!
//! See `docs/CONTRACTS.md` for messages, errors and the trust model.

pub mod contract;
pub mod engine;
mod error;
pub mod ledger;
pub mod membership;
pub mod msg;
pub mod state;

#[cfg(test)]
mod tests;

pub use crate::engine::ItemError;
pub use crate::error::ContractError;
