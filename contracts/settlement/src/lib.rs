//! garden-settlement: offers, consumer escrow and batch settlement of signed consumption
//! attestations (garden-wire `GWAB` batches) for the consortium zone.
//!
//! * [`engine`]: the settlement rules behind small interfaces (`Membership`, `Ledger`,
//!   `Verifier`): anything that can answer "who could sign at that time", "what is the
//!   offer", "is this nonce used", "what may this escrow pay" can run them, an IBC gateway
//!   (membership and signatures) and a remote settlement chain (payment) included.
//! * [`ledger`]: the on-chain `Ledger` + `Membership` (storage, and the consortium read raw
//!   through `garden_wire::consortium`, cached per batch, written once per key at the end).
//! * [`escrow`]: deposit, withdrawal request and notice, refund.
//! * [`settle`]: batch settlement, nonce pruning, nonce floors.
//! * [`contract`]: entry points; offers and governance.
//!
//! Imports go one way: `types` <- `msg`, `state` <- `engine`, `escrow` <- `ledger` <-
//! `settle`, `query`, `migrations` <- `contract`. See `docs/CONTRACTS.md` for messages,
//! errors, the trust model and the guarantees.

pub mod contract;
pub mod engine;
mod error;
pub mod escrow;
pub mod ledger;
pub mod migrations;
pub mod msg;
pub mod query;
pub mod settle;
pub mod state;
pub mod types;

#[cfg(test)]
mod tests;

pub use crate::error::ContractError;
pub use crate::types::ItemError;
