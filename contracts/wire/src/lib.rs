//! Garden wire formats, shared by the settlement contracts (wasm32) and the sidecar (native).
//!
//! * [`attestation`]: a consumption attestation and its canonical, versioned, domain-separated
//!   signing bytes (`garden/attestation/v1`).
//! * [`batch`]: the compact binary batch (`GWAB` v1) that carries >= 1000 attestations in one
//!   transaction, with a strict decoder.
//! * [`endorsement`]: the L1 -> L2 endorsement signed offline and checked by the consortium.
//! * [`membership`]: trust levels and the membership answer sidecars and the settlement
//!   contract read from the consortium contract.
//!
//! The byte layouts are specified in `docs/CONTRACTS.md` and pinned by the test vectors in
//! `docs/vectors/attestation-v1.json` (checked by `tests/vectors.rs`).

pub mod attestation;
pub mod batch;
pub mod endorsement;
pub mod membership;

pub use attestation::{Attestation, AttestationRef, Domain, PUBKEY_LEN, SIGNATURE_LEN};
pub use batch::{Batch, DecodeError, EncodeError};
pub use membership::{MemberResponse, MemberStatus, TrustLevel};

/// Appends a string with a one-byte length prefix. Callers guarantee `s.len() <= 255`
/// (the batch encoder and the constructors check [`MAX_STR_LEN`]).
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.len() <= u8::MAX as usize);
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Longest string field (address, resource id, unit, price reference, scope) on the wire.
/// Bech32 addresses are <= 90 chars; 128 leaves room and keeps items bounded.
pub const MAX_STR_LEN: usize = 128;
