//! garden-consortium: the consortium zone's membership and governance contract.
//!
//! Members carry a chain address, an Ed25519 attestation key, a trust level (L1/L2/L3) and a
//! weight. L1 members govern: they propose and vote (cw3-style, cw-utils `Threshold`, default
//! 2/3 quorum and threshold) on admissions, revocations (departure or compromise),
//! level/weight changes and parameter changes. An emergency action by a share of the L1
//! weight suspends an L1 member (until a proposal ratifies it or it lapses) or revokes any
//! other member for compromise. L2 members are admitted by a signed L1 endorsement (scopes,
//! validity period within a governed maximum). The settlement contract reads membership raw
//! through `garden_wire::consortium`; sidecars query it. See `docs/CONTRACTS.md`.
//!
//! Modules, imports going one way: `types`, `tally` (pure) <- `msg`, `state` <- `endorse`
//! <- `members` <- `proposals`, `emergency`, `query`, `migrations` <- `contract`.

pub mod contract;
pub mod emergency;
pub mod endorse;
mod error;
pub mod members;
pub mod migrations;
pub mod msg;
pub mod proposals;
pub mod query;
pub mod state;
pub mod tally;
pub mod types;

#[cfg(test)]
mod tests;

pub use crate::error::ContractError;
