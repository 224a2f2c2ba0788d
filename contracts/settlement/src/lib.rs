//! garden-settlement: offers, consumer escrow and batch settlement of signed consumption
//! attestations (garden-wire `GWAB` batches) for the consortium zone.
//!
//! * [`engine`]: the settlement rules behind small interfaces (`Membership`, `Ledger`,
//!   `Verifier`): anything that can answer "who could sign at that time", "what is the
//!   offer", "is this nonce used", "what may this escrow pay" can run them, an IBC gateway
//!   (membership and signatures) and a remote settlement chain (payment) included.
//! * [`ledger`]: the on-chain `Ledger` (storage, cached per batch, written once per key at
//!   the end); [`membership`]: the on-chain `Membership` (the consortium read raw through
//!   `garden_wire::consortium`), also used by the IBC gateway on the zone.
//! * [`escrow`]: deposit, withdrawal request and notice, refund.
//! * [`settle`]: batch settlement (a `settle_batch` or a packet from the gateway share the
//!   write step), nonce pruning, nonce floors.
//! * [`ibc`]: the settlement end of the gateway's channel (IBC entry points).
//! * [`contract`]: entry points; offers and governance.
//!
//! Two modes: with a consortium on this chain (single-chain: `settle_batch`), or without
//! (`consortium: null`, the settlement chain of the IBC pair: batches come from the gateway
//! over the channel of the configured route). Both at once are possible.
//!
//! Imports go one way: `types` <- `msg`, `state` <- `engine`, `escrow` <- `ledger`,
//! `membership` <- `settle` <- `ibc`, `query`, `migrations` <- `contract`. See `docs/CONTRACTS.md` for messages,
//! errors, the trust model and the guarantees.

pub mod contract;
pub mod engine;
mod error;
pub mod escrow;
pub mod ibc;
pub mod ledger;
pub mod membership;
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
