//! L1 -> L2 endorsement: an L1 member vouches, with its Ed25519 attestation key, for a peer's
//! address and key, for a set of scopes and a validity period. The peer carries it (discovery
//! plane) and presents it to the consortium contract to be registered at L2.
//!
//! # Signing bytes, version 1 (big-endian, `str` = u8 length + UTF-8)
//! ```text
//! "garden/endorsement/v1" | str chain_id | str contract (consortium address)
//! | str subject (address) | [32] subject public key
//! | u8 n_scopes | n_scopes x str scope | u64 valid_from | u64 valid_until   (unix seconds)
//! ```

pub const ENDORSEMENT_TAG_V1: &[u8] = b"garden/endorsement/v1";
/// At most this many scopes per endorsement (keeps the signed message bounded).
pub const MAX_SCOPES: usize = 16;

use crate::attestation::{Domain, PUBKEY_LEN};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndorsementBody<'a> {
    pub subject: &'a str,
    pub subject_pubkey: &'a [u8; PUBKEY_LEN],
    pub scopes: &'a [String],
    pub valid_from: u64,
    pub valid_until: u64,
}

impl EndorsementBody<'_> {
    /// Canonical v1 signing bytes. Callers check scope count and lengths first
    /// (<= [`MAX_SCOPES`] scopes of 1..=[`crate::MAX_STR_LEN`] bytes).
    pub fn signing_bytes(&self, domain: &Domain<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(ENDORSEMENT_TAG_V1);
        crate::put_str(&mut out, domain.chain_id);
        crate::put_str(&mut out, domain.contract);
        crate::put_str(&mut out, self.subject);
        out.extend_from_slice(self.subject_pubkey);
        out.push(self.scopes.len() as u8);
        for s in self.scopes {
            crate::put_str(&mut out, s);
        }
        out.extend_from_slice(&self.valid_from.to_be_bytes());
        out.extend_from_slice(&self.valid_until.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let scopes = vec!["settle".to_string(), "discovery".to_string()];
        let b = EndorsementBody {
            subject: "addr",
            subject_pubkey: &[1; 32],
            scopes: &scopes,
            valid_from: 1,
            valid_until: 2,
        }
        .signing_bytes(&Domain {
            chain_id: "c",
            contract: "k",
        });
        assert!(b.starts_with(ENDORSEMENT_TAG_V1));
        assert_eq!(b.len(), 21 + 2 + 2 + 5 + 32 + 1 + 7 + 10 + 16);
        assert_eq!(&b[b.len() - 8..], &2u64.to_be_bytes());
    }
}
