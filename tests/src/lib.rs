//! End-to-end harness for Garden: talks to the real wasmd chains started by
//! `scripts/localnet.sh` (and, in later waves, to nats-server, Hermes and sidecars).
//! A miniature of Hermes' test framework: configuration from `chain-config/`, a chain
//! client over CometBFT RPC, and the test accounts of `chain-config/accounts.env`.

pub mod chain;
pub mod founders;
pub mod localnet;
pub mod settlement;
pub mod signer_files;

pub use chain::TestAccount;
pub use founders::{founder, founders, Founder};
pub use garden_signer::chain::{Chain, TxError, TxOutcome, Wallet};
pub use localnet::{artifact, ChainConfig};
