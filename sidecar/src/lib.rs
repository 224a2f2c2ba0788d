//! Garden sidecar library: the discovery plane (libp2p), and later the DTN data plane and the
//! settlement signer. The `garden` binary is a thin wrapper around it so tests can start
//! several nodes in one process.

pub mod membership;
