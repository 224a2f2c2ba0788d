//! The libp2p node identity (Ed25519), loaded from a key file or generated on first start.

use std::path::Path;

use libp2p::identity::{ed25519, Keypair, PeerId, PublicKey};

use super::{write_secret_file, Error};

/// The discovery-plane identity. Signs peer records; gives the libp2p `PeerId`.
pub struct NodeIdentity {
    keypair: Keypair,
    ed: ed25519::Keypair,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// A fresh random identity (tests, `garden keygen`).
    pub fn generate() -> Self {
        Self::from_ed25519(ed25519::Keypair::generate())
    }

    fn from_ed25519(ed: ed25519::Keypair) -> Self {
        Self {
            keypair: Keypair::from(ed.clone()),
            ed,
        }
    }

    /// Loads the identity from `path`, or generates one and writes it there (mode 0600) when
    /// the file does not exist.
    pub fn load_or_generate(path: &Path) -> Result<Self, Error> {
        if !path.exists() {
            let id = Self::generate();
            id.write(path)?;
            tracing::info!(path = %path.display(), peer_id = %id.peer_id(), "generated a new node identity");
            return Ok(id);
        }
        let bytes = super::read_secret_file(path)?;
        Self::from_protobuf(path, &bytes)
    }

    /// Writes the identity to a new file (refuses to overwrite).
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let bytes = self
            .keypair
            .to_protobuf_encoding()
            .map_err(|e| Error::Invalid {
                path: path.to_path_buf(),
                what: "libp2p keypair",
                reason: e.to_string(),
            })?;
        write_secret_file(path, &bytes)
    }

    fn from_protobuf(path: &Path, bytes: &[u8]) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Invalid {
            path: path.to_path_buf(),
            what: "Ed25519 libp2p keypair",
            reason,
        };
        let keypair = Keypair::from_protobuf_encoding(bytes).map_err(|e| invalid(e.to_string()))?;
        let ed = keypair
            .try_into_ed25519()
            .map_err(|_| invalid("not an Ed25519 key".into()))?;
        Ok(Self::from_ed25519(ed))
    }

    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    pub fn public(&self) -> PublicKey {
        self.keypair.public()
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.ed.sign(msg)
    }

    /// The Ed25519 keypair (membership heartbeats are signed with it).
    pub fn ed25519(&self) -> &ed25519::Keypair {
        &self.ed
    }

    /// The libp2p keypair, for the swarm builder and GossipSub message signing.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// A 32-byte key derived from this identity's secret with HKDF-SHA256 (no salt, `label` as
    /// the info string). Each use names its own label, so derived keys never coincide with each
    /// other or with the signing key; the secret itself never leaves this type.
    pub fn derive_key(&self, label: &str) -> zeroize::Zeroizing<[u8; 32]> {
        // `SecretKey` wraps ed25519-dalek's signing key, which zeroizes itself on drop.
        let secret = self.ed.secret();
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, secret.as_ref());
        let mut out = zeroize::Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 255 × 32 limit, so expand cannot fail.
        let _ = hk.expand(label.as_bytes(), out.as_mut());
        out
    }

    /// `did:key` of this identity (see [`did_key`]).
    pub fn did(&self) -> String {
        did_key(&self.public()).unwrap_or_default()
    }
}

/// `did:key:z…` for an Ed25519 public key: multibase base58btc of the multicodec
/// `ed25519-pub` (0xed 0x01) followed by the 32 key bytes. `None` for other key types.
pub fn did_key(public: &PublicKey) -> Option<String> {
    let ed: ed25519::PublicKey = public.clone().try_into_ed25519().ok()?;
    let mut buf = Vec::with_capacity(34);
    buf.extend_from_slice(&[0xed, 0x01]);
    buf.extend_from_slice(&ed.to_bytes());
    Some(format!("did:key:z{}", bs58::encode(buf).into_string()))
}

/// The public key inside an Ed25519 `PeerId` (identity multihash of the protobuf key).
pub fn public_key_of(peer: &PeerId) -> Option<PublicKey> {
    let mh = multihash_digest(peer)?;
    PublicKey::try_decode_protobuf(mh).ok()
}

fn multihash_digest(peer: &PeerId) -> Option<&[u8]> {
    // PeerId::as_ref() gives the multihash; code 0x00 (identity) is what Ed25519 ids use.
    let mh: &libp2p::multihash::Multihash<64> = peer.as_ref();
    (mh.code() == 0).then(|| mh.digest())
}

/// `did:key` of a peer, derived from its (Ed25519) peer id alone.
pub fn did_of_peer(peer: &PeerId) -> Option<String> {
    did_key(&public_key_of(peer)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_round_trips_through_its_file() {
        let dir = std::env::temp_dir().join(format!("garden-keys-{}", std::process::id()));
        let path = dir.join("id.key");
        let _ = std::fs::remove_file(&path);
        let a = NodeIdentity::load_or_generate(&path).unwrap();
        let b = NodeIdentity::load_or_generate(&path).unwrap();
        assert_eq!(a.peer_id(), b.peer_id());
        assert!(a.write(&path).is_err(), "must not overwrite an identity");
        let _ = std::fs::remove_file(dir.join("bad.key"));
        super::super::write_secret_file(&dir.join("bad.key"), b"garbage").unwrap();
        assert!(matches!(
            NodeIdentity::load_or_generate(&dir.join("bad.key")),
            Err(Error::Invalid { .. })
        ));
        // A private key others can read is refused.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            NodeIdentity::load_or_generate(&path),
            Err(Error::Exposed { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn derived_keys_are_stable_and_label_specific() {
        let id = NodeIdentity::generate();
        assert_eq!(*id.derive_key("a"), *id.derive_key("a"));
        assert_ne!(*id.derive_key("a"), *id.derive_key("b"));
        assert_ne!(
            *id.derive_key("a"),
            *NodeIdentity::generate().derive_key("a")
        );
    }

    #[test]
    fn did_is_derivable_from_the_peer_id() {
        let id = NodeIdentity::generate();
        assert!(id.did().starts_with("did:key:z6Mk"));
        assert_eq!(
            did_of_peer(&id.peer_id()).as_deref(),
            Some(id.did().as_str())
        );
    }
}
