//! garden-consortium: the consortium zone's membership and governance contract.
//!
//! Members carry a chain address, an Ed25519 attestation key, a trust level (L1/L2/L3) and a
//! weight. L1 members govern: they propose and vote (cw3-style, cw-utils `Threshold`, default
//! 2/3 quorum and threshold) on admissions, revocations, level/weight changes and parameter
//! changes; several L1 members together can revoke at once (emergency). L2 members are
//! admitted by a signed L1 endorsement (scopes + validity). Sidecars and the settlement
//! contract query membership (by address or by attestation key) and revocations since a height.
//! See `docs/CONTRACTS.md`.

pub mod contract;
pub mod endorse;
mod error;
pub mod msg;
pub mod query;
pub mod state;
pub mod tally;

#[cfg(test)]
mod tests;

pub use crate::error::ContractError;
