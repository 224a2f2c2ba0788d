//! The node → indexer heartbeat protocol `/garden/heartbeat/1.0.0`.
//!
//! One request-response exchange per tick (Go used one long-lived JSON stream; a
//! request-response per tick gives the same semantics with bounded frames, timeouts and
//! reconnects handled by `libp2p::request_response`). The request is a [`SignedHeartbeat`]:
//! the encoded [`Heartbeat`] followed by an Ed25519 signature of the node's libp2p identity key
//! over `DOMAIN ‖ recipient peer id ‖ body`. Binding the recipient stops a heartbeat sent to
//! one indexer from being replayed to another; the strictly increasing `seq` stops replays to
//! the same indexer.

mod message;

pub use message::{
    ChallengeEntry, DhtAnswer, Heartbeat, HeartbeatResponse, MAX_BOUND, MAX_CHALLENGE_ANSWERS,
    MAX_DHT_PAYLOAD, MAX_DID, MAX_EVENTS, MAX_NAME, MAX_OTHER_CHALLENGES, MAX_PENDING, MAX_RECORD,
    MAX_SUGGESTIONS, MAX_WITNESSES,
};

use std::time::Duration;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use libp2p::{PeerId, StreamProtocol};

use crate::membership::wire::{self, DecodeError};

/// Protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/garden/heartbeat/1.0.0");
/// Maximum encoded signed heartbeat (the largest legal heartbeat is ~7.5 KiB).
pub const MAX_REQUEST: usize = 8 * 1024;
/// Maximum encoded response (the largest legal response is ~11 KiB).
pub const MAX_RESPONSE: usize = 16 * 1024;
/// Default heartbeat interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(20);
/// Signature domain separator.
pub const DOMAIN: &[u8] = b"garden/heartbeat/1\0";
/// Signature length.
pub const SIGNATURE_LEN: usize = 64;

/// Why a signed heartbeat was refused before any membership logic ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Malformed bytes.
    #[error("malformed heartbeat: {0}")]
    Decode(#[from] DecodeError),
    /// The sender's peer id does not embed an Ed25519 key, so the signature cannot be checked.
    #[error("peer {0} has no Ed25519 identity key")]
    NotEd25519(PeerId),
    /// The signature does not verify for this sender and recipient.
    #[error("bad heartbeat signature from {0}")]
    BadSignature(PeerId),
}

impl Error {
    /// What the sender did wrong: every heartbeat error is the sender's (a peer without an
    /// Ed25519 key cannot be a Garden node).
    pub fn offence(&self) -> crate::offence::Offence {
        match self {
            Error::Decode(_) | Error::NotEd25519(_) => crate::offence::Offence::Malformed,
            Error::BadSignature(_) => crate::offence::Offence::Forged,
        }
    }
}

/// A heartbeat as it travels: body bytes + signature. Decoding checks the body's shape;
/// [`SignedHeartbeat::verify`] checks the signature against the authenticated sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeartbeat {
    body: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
    heartbeat: Heartbeat,
}

impl SignedHeartbeat {
    /// Wire bytes: body ‖ signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.body.len() + SIGNATURE_LEN);
        v.extend_from_slice(&self.body);
        v.extend_from_slice(&self.signature);
        v
    }

    /// Parse wire bytes (size bound, then body structure). The signature is not checked here.
    pub fn from_bytes(b: &[u8]) -> Result<SignedHeartbeat, DecodeError> {
        crate::membership::wire::check_len(b, MAX_REQUEST)?;
        let split = b
            .len()
            .checked_sub(SIGNATURE_LEN)
            .ok_or(DecodeError::Truncated { field: "signature" })?;
        let (body, sig) = b.split_at(split);
        let heartbeat = Heartbeat::decode(body)?;
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(sig);
        Ok(SignedHeartbeat {
            body: body.to_vec(),
            signature,
            heartbeat,
        })
    }

    /// The decoded heartbeat (unauthenticated until [`SignedHeartbeat::verify`] succeeds).
    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// Check the signature of `sender`'s key for `recipient`.
    pub fn verify(
        &self,
        sender: &VerifyingKey,
        recipient: &PeerId,
    ) -> Result<(), ed25519_dalek::SignatureError> {
        let msg = signing_bytes(recipient, &self.body);
        sender.verify_strict(&msg, &Signature::from_bytes(&self.signature))
    }

    /// Decode and verify in one step, deriving the key from the authenticated `sender`.
    pub fn open(bytes: &[u8], sender: &PeerId, recipient: &PeerId) -> Result<Heartbeat, Error> {
        let signed = SignedHeartbeat::from_bytes(bytes)?;
        let key = verifying_key_of(sender).ok_or(Error::NotEd25519(*sender))?;
        signed
            .verify(&key, recipient)
            .map_err(|_| Error::BadSignature(*sender))?;
        Ok(signed.heartbeat)
    }

    /// Encoded size on the wire (without the codec's length prefix).
    pub fn wire_len(&self) -> usize {
        self.body.len() + SIGNATURE_LEN
    }
}

fn signing_bytes(recipient: &PeerId, body: &[u8]) -> Vec<u8> {
    let r = recipient.to_bytes();
    let mut msg = Vec::with_capacity(DOMAIN.len() + r.len() + body.len());
    msg.extend_from_slice(DOMAIN);
    msg.extend_from_slice(&r);
    msg.extend_from_slice(body);
    msg
}

/// Signs heartbeats with the node's libp2p Ed25519 identity key.
///
/// Built from the raw 32-byte secret (`libp2p::identity::ed25519::Keypair::secret()`), so the
/// discovery plane's key never leaves `keys::NodeIdentity` in any other form.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    peer: PeerId,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The signing key (offline heartbeats sign with it too, under their own tag).
    pub(crate) fn key(&self) -> &SigningKey {
        &self.key
    }

    /// A signer for `key`.
    pub fn new(key: SigningKey) -> Self {
        let peer = peer_id_of(&key.verifying_key());
        Signer { key, peer }
    }

    /// From a libp2p Ed25519 keypair.
    pub fn from_libp2p(kp: &libp2p::identity::ed25519::Keypair) -> Self {
        let secret = kp.secret();
        // The copy is wiped on drop; the `SigningKey` zeroizes itself.
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(secret.as_ref());
        Signer::new(SigningKey::from_bytes(&bytes))
    }

    /// The signer's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer
    }

    /// Encode and sign `hb` for `recipient`.
    pub fn sign(&self, hb: Heartbeat, recipient: &PeerId) -> SignedHeartbeat {
        let body = hb.encode();
        let sig = self.key.sign(&signing_bytes(recipient, &body));
        SignedHeartbeat {
            body,
            signature: sig.to_bytes(),
            heartbeat: hb,
        }
    }
}

/// The libp2p peer id of an Ed25519 key.
pub fn peer_id_of(key: &VerifyingKey) -> PeerId {
    let mut b = [0u8; 38];
    b[..6].copy_from_slice(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
    b[6..].copy_from_slice(key.as_bytes());
    PeerId::from_bytes(&b).expect("an identity multihash of 36 bytes is always a valid peer id")
}

/// The Ed25519 key embedded in a peer id, if it is an Ed25519 identity id with a valid point.
pub fn verifying_key_of(peer: &PeerId) -> Option<VerifyingKey> {
    let bytes = peer.to_bytes();
    let k = wire::ed25519_key_of(&bytes)?;
    let arr: [u8; 32] = k.try_into().ok()?;
    VerifyingKey::from_bytes(&arr).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::testutil::key;
    use crate::membership::Timestamp;

    fn hb() -> Heartbeat {
        Heartbeat {
            seq: 1,
            timestamp: Timestamp::from_millis(10),
            need: 1,
            ..Default::default()
        }
    }

    #[test]
    fn signed_heartbeat_opens_for_sender_and_recipient() {
        let (sk, node) = key(1);
        let (_, indexer) = key(2);
        let s = Signer::new(sk).sign(hb(), &indexer);
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), s.wire_len());
        assert_eq!(
            SignedHeartbeat::open(&bytes, &node, &indexer).unwrap(),
            hb()
        );
    }

    #[test]
    fn signature_binds_sender_recipient_and_body() {
        let (sk, node) = key(1);
        let (_, indexer) = key(2);
        let (_, other) = key(3);
        let bytes = Signer::new(sk).sign(hb(), &indexer).to_bytes();
        assert_eq!(
            SignedHeartbeat::open(&bytes, &node, &other),
            Err(Error::BadSignature(node))
        );
        assert_eq!(
            SignedHeartbeat::open(&bytes, &other, &indexer),
            Err(Error::BadSignature(other))
        );
        let mut tampered = bytes.clone();
        tampered[2] ^= 1; // seq
        assert!(SignedHeartbeat::open(&tampered, &node, &indexer).is_err());
    }

    #[test]
    fn oversized_and_short_inputs_are_rejected() {
        let (_, node) = key(1);
        let (_, indexer) = key(2);
        let big = vec![0u8; MAX_REQUEST + 1];
        assert!(matches!(
            SignedHeartbeat::open(&big, &node, &indexer),
            Err(Error::Decode(DecodeError::Oversized { .. }))
        ));
        assert!(matches!(
            SignedHeartbeat::from_bytes(&[1, 0, 0]),
            Err(DecodeError::Truncated { field: "signature" })
        ));
    }

    #[test]
    fn non_ed25519_sender_is_refused() {
        let (sk, _) = key(1);
        let (_, indexer) = key(2);
        let random = PeerId::random();
        let bytes = Signer::new(sk).sign(hb(), &indexer).to_bytes();
        assert_eq!(
            SignedHeartbeat::open(&bytes, &random, &indexer),
            Err(Error::NotEd25519(random))
        );
    }

    #[test]
    fn libp2p_key_and_dalek_key_give_the_same_peer_id() {
        let kp = libp2p::identity::ed25519::Keypair::generate();
        let lp = libp2p::identity::PublicKey::from(kp.public()).to_peer_id();
        assert_eq!(Signer::from_libp2p(&kp).peer_id(), lp);
        assert!(verifying_key_of(&lp).is_some());
    }
}
