//! Garden settlement plane: the signer core (issue 17, points 1–2).
//!
//! * [`key`]: the [`SettlementKey`] (Ed25519 member key of the consortium), loaded from its
//!   own owner-only file; this crate is the only one that can name it.
//! * [`input`]: [`UsageInput`], the plain data a usage report carries into the signer (the
//!   sidecar will hand these over a typed channel; it never sees the key).
//! * [`queue`]: the [`Signer`]: persistent nonce counter, deferred (offline) signing and the
//!   durable attestation queue in redb, with checked state transitions.
//!
//! * [`chain`]: the chain client (cosmrs over tendermint-rpc), shared with the e2e tests.
//! * [`submit`]: the [`Submitter`]: batches → settlement transactions → confirmed results.
//!
//! Not built yet: the IBC gateway. See docs/ARCHITECTURE.md.

pub mod chain;
pub mod input;
pub mod key;
pub mod queue;
pub mod submit;
pub mod take;

pub use input::UsageInput;
pub use key::{KeyError, SettlementKey};
pub use queue::{
    BatchInfo, BatchState, BuiltBatch, Error, ItemState, Keyed, QueuedItem, Relay, RetryCause,
    Signer, Stats, MAX_BATCH_ITEMS,
};
pub use submit::{PassReport, SubmitConfig, Submitter, Target};
