//! garden-gateway: the attestation gateway on the consortium zone, one end of the IBC pair.
//!
//! Signers submit `GWAB` batches of attestations signed for this chain and this contract.
//! The gateway checks what needs the consortium (the static rules on this chain's clock,
//! membership and trust at `signed_at`, the signature), holds each verified (key, nonce) as
//! *pending* and forwards the verified items, re-encoded as one `GWAB` batch, in an IBC packet
//! to the settlement contract on the settlement chain (offers, escrow, payment). The
//! settlement chain answers item by item; the gateway then marks each item settled (final)
//! or releases it (the signer submits it again). See `docs/CONTRACTS.md`.
//!
//! * [`submit`]: `submit_batch` (the checks, pending entries, the packet).
//! * [`ack`]: the answer to a packet (acknowledgement, error ack, timeout).
//! * [`items`]: the item life cycle in storage (free, pending, settled, released).
//! * [`ibc`]: IBC entry points (handshake rules from `garden_wire::ibc`).
//! * [`contract`]: entry points; route, floors and governance.
//!
//! The rules are the settlement contract's (`garden_settlement::engine`, `membership`),
//! used as a library. Imports go one way: `types` <- `msg`, `state` <- `items` <- `submit`,
//! `ack`, `query` <- `ibc`, `contract`.

pub mod ack;
pub mod contract;
mod error;
pub mod ibc;
pub mod items;
pub mod msg;
pub mod query;
pub mod state;
pub mod submit;
pub mod types;

#[cfg(test)]
mod tests;

pub use crate::error::ContractError;
pub use garden_settlement::ItemError;
