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

/// Appends a string with a one-byte length prefix. Callers check [`check_str`] first (the
/// batch decoder and encoder, [`Attestation::validate`]); a longer string would make the
/// prefix wrap and two different messages share signing bytes, so it is refused loudly.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u8::try_from(s.len()).expect("wire string longer than 255 bytes: validate first");
    out.push(len);
    out.extend_from_slice(s.as_bytes());
}

/// The rule every string field on the wire follows: non-empty, at most [`MAX_STR_LEN`] bytes.
pub fn check_str(s: &str) -> Result<(), EncodeError> {
    if s.is_empty() || s.len() > MAX_STR_LEN {
        return Err(EncodeError::BadString(s.to_owned()));
    }
    Ok(())
}

/// Longest string field (address, resource id, unit, price reference, scope) on the wire.
/// Bech32 addresses are <= 90 chars; 128 leaves room and keeps items bounded.
pub const MAX_STR_LEN: usize = 128;
