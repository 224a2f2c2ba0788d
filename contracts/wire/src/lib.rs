//! Garden wire formats, shared by the settlement contracts (wasm32) and the sidecar (native).
//!
//! * [`attestation`]: a consumption attestation and its canonical, versioned, domain-separated
//!   signing bytes (`garden/attestation/v1`).
//! * [`batch`]: the compact binary batch (`GWAB` v1) that carries >= 1000 attestations in one
//!   transaction, with a strict decoder.
//! * [`endorsement`]: the L1 -> L2 endorsement signed offline and checked by the consortium.
//! * [`membership`]: trust levels and the membership answer sidecars read from the
//!   consortium contract.
//! * [`member`]: the consortium's stored member record and the rule that judges a key at
//!   an attestation's `signed_at` (departure, compromise, suspension, L2 endorsements).
//! * [`consortium`]: the consortium's raw storage layout and the typed helper
//!   ([`consortium::ConsortiumContract`]) other contracts read membership through.
//! * [`ibc`]: the channel rule, the packet acknowledgement and the gateway's answers shared
//!   by the IBC gateway (zone), the settlement contract (settlement chain) and signers.
//! * [`nonce`]: the nonce rule (nonces tied to the signing hour) that the settlement
//!   contract enforces and the sidecar's signer follows.
//!
//! The byte layouts are specified in `docs/CONTRACTS.md` and pinned by the test vectors in
//! `docs/vectors/attestation-v1.json` (checked by `tests/vectors.rs`).

pub mod attestation;
pub mod batch;
pub mod consortium;
pub mod endorsement;
pub mod ibc;
pub mod member;
pub mod membership;
pub mod nonce;

pub use attestation::{Attestation, AttestationRef, Domain, PUBKEY_LEN, SIGNATURE_LEN};
pub use batch::{Batch, DecodeError, EncodeError};
pub use member::{Member, MemberStatus, Moment, Refusal, Revocation, RevocationKind, TrustLevel};
pub use membership::MemberResponse;

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

/// The rule for free text stored on chain (proposal descriptions): at most `max` bytes,
/// possibly empty. Names and reasons follow [`check_str`].
pub fn check_text(s: &str, max: usize) -> Result<(), EncodeError> {
    if s.len() > max {
        return Err(EncodeError::BadString(s.chars().take(32).collect()));
    }
    Ok(())
}

/// Longest string field (address, resource id, unit, price reference, scope) on the wire.
/// Bech32 addresses are <= 90 chars; 128 leaves room and keeps items bounded.
pub const MAX_STR_LEN: usize = 128;
