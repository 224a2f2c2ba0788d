//! `Did`: a validated `did:key` of an Ed25519 key, the identity of an owner, a consumer or a
//! provider in the data plane.
//!
//! The DID *is* the public key (multibase base58btc of the multicodec `ed25519-pub` prefix
//! `0xed 0x01` and the 32 key bytes, as [`crate::keys::identity::did_key`] builds it), so a
//! signature by the owner of a DID is checked against the DID alone: nobody can claim a DID
//! without its key, and no key directory is needed.
//!
//! Parsing checks the form only (prefix, multicodec, 32 bytes); the key bytes are decoded as
//! a curve point when a signature is checked, and a DID whose bytes are not a point verifies
//! nothing. Decoding a stored catalogue entry (many DIDs) thus costs no point decompression.

use std::fmt;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::keys::NodeIdentity;

const PREFIX: &str = "did:key:z";
/// Longest textual DID accepted (an Ed25519 `did:key` is 56 bytes).
pub const MAX_DID_LEN: usize = 64;

/// Why a string is not an Ed25519 `did:key`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidError {
    #[error("a DID longer than {MAX_DID_LEN} bytes")]
    TooLong,
    #[error("not a did:key (base58btc multibase)")]
    Scheme,
    #[error("the did:key is not an Ed25519 public key (multicodec 0xed01, 32 bytes)")]
    NotEd25519,
}

/// An Ed25519 `did:key`, checked on construction (and on deserialisation).
///
/// Equality, order and hash are those of the text (the key is derived from it).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Did {
    text: String,
    key: [u8; 32],
}

impl PartialEq for Did {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for Did {}
impl PartialOrd for Did {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Did {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}
impl std::hash::Hash for Did {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state)
    }
}

impl Did {
    /// Parses and checks a `did:key:z…` string.
    pub fn parse(s: &str) -> Result<Did, DidError> {
        if s.len() > MAX_DID_LEN {
            return Err(DidError::TooLong);
        }
        let b58 = s.strip_prefix(PREFIX).ok_or(DidError::Scheme)?;
        let raw = bs58::decode(b58).into_vec().map_err(|_| DidError::Scheme)?;
        let key: [u8; 32] = match raw.as_slice() {
            [0xed, 0x01, rest @ ..] => rest.try_into().map_err(|_| DidError::NotEd25519)?,
            _ => return Err(DidError::NotEd25519),
        };
        Ok(Did {
            text: s.to_string(),
            key,
        })
    }

    /// The DID of a node identity.
    pub fn of(identity: &NodeIdentity) -> Did {
        let key = identity.ed25519().public().to_bytes();
        let mut buf = vec![0xed, 0x01];
        buf.extend_from_slice(&key);
        Did {
            text: format!("{PREFIX}{}", bs58::encode(buf).into_string()),
            key,
        }
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The public key the DID names, if its bytes are a curve point.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.key).ok()
    }

    /// The libp2p peer id of the node whose identity key this DID names (where its
    /// mutations and bookings are delivered), if the key is a valid Ed25519 key.
    pub fn peer_id(&self) -> Option<libp2p::PeerId> {
        let pk = libp2p::identity::ed25519::PublicKey::try_from_bytes(&self.key).ok()?;
        Some(libp2p::identity::PublicKey::from(pk).to_peer_id())
    }

    /// Whether `signature` by this DID's key covers `msg`.
    pub fn verifies(&self, msg: &[u8], signature: &[u8]) -> bool {
        use ed25519_dalek::Verifier as _;
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.verifying_key()
            .is_some_and(|k| k.verify(msg, &sig).is_ok())
    }
}

impl TryFrom<String> for Did {
    type Error = DidError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Did::parse(&s)
    }
}

impl From<Did> for String {
    fn from(d: Did) -> String {
        d.text
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_did_names_the_peer_id_of_its_identity() {
        let id = NodeIdentity::generate();
        assert_eq!(Did::of(&id).peer_id(), Some(id.peer_id()));
    }

    #[test]
    fn a_did_round_trips_and_names_the_identity_key() {
        let id = NodeIdentity::generate();
        let did = Did::of(&id);
        assert_eq!(did.as_str(), id.did());
        assert_eq!(Did::parse(&id.did()).unwrap(), did);
        let sig = id.sign(b"m");
        assert!(did.verifies(b"m", &sig));
        assert!(!did.verifies(b"n", &sig));
        assert!(!did.verifies(b"m", &sig[..63]));
    }

    #[test]
    fn other_strings_are_refused() {
        assert_eq!(Did::parse("did:web:example.org"), Err(DidError::Scheme));
        assert_eq!(Did::parse("did:key:z0OIl"), Err(DidError::Scheme));
        // Base58 of something that is not the ed25519-pub multicodec.
        let other = format!(
            "did:key:z{}",
            bs58::encode([0x12, 0x00, 1, 2]).into_string()
        );
        assert_eq!(Did::parse(&other), Err(DidError::NotEd25519));
        assert_eq!(Did::parse(&"x".repeat(65)), Err(DidError::TooLong));
    }
}
