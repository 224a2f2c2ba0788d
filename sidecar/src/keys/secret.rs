//! Keys of the other planes. Defined here so the three key kinds are distinct types from the
//! start; the data plane (record encryption) and the settlement plane (chain signing) load
//! them from their own files. Nothing in `discovery/` or `net/` takes these types.

use std::path::Path;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{write_secret_file, Error};

/// Symmetric key for optional record payload encryption (AES-256-GCM key material, derived
/// from the consortium key by the data plane). 32 bytes, zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RecordKey([u8; 32]);

impl RecordKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut b = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut b);
        Self(b)
    }
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordKey(<redacted>)")
    }
}

/// Ed25519 key that signs settlement attestations and chain transactions. Separate file,
/// separate type: no discovery path can reach it (README "Plane isolation").
pub struct SettlementKey(ed25519_dalek::SigningKey);

impl SettlementKey {
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Loads a 32-byte raw secret from `path`, or generates and writes one (mode 0600).
    pub fn load_or_generate(path: &Path) -> Result<Self, Error> {
        match std::fs::read(path) {
            Ok(mut bytes) => {
                let res = <[u8; 32]>::try_from(bytes.as_slice())
                    .map(|b| Self(ed25519_dalek::SigningKey::from_bytes(&b)))
                    .map_err(|_| Error::Invalid {
                        path: path.to_path_buf(),
                        what: "settlement key (32 raw bytes)",
                        reason: format!("{} bytes", bytes.len()),
                    });
                bytes.zeroize();
                res
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = Self::generate();
                write_secret_file(path, k.0.as_bytes())?;
                Ok(k)
            }
            Err(source) => Err(Error::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.0.verifying_key()
    }

    pub fn sign(&self, msg: &[u8]) -> ed25519_dalek::Signature {
        use ed25519_dalek::Signer;
        self.0.sign(msg)
    }
}

impl std::fmt::Debug for SettlementKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SettlementKey(pub={})",
            hex::encode(self.verifying_key().as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secrets() {
        let rk = RecordKey::from_bytes([7u8; 32]);
        assert_eq!(format!("{rk:?}"), "RecordKey(<redacted>)");
        let sk = SettlementKey::generate();
        let secret_hex = hex::encode(sk.0.to_bytes());
        assert!(!format!("{sk:?}").contains(&secret_hex));
    }

    #[test]
    fn settlement_key_rejects_wrong_length() {
        let p = std::env::temp_dir().join(format!("garden-sk-{}", std::process::id()));
        std::fs::write(&p, [1u8; 5]).unwrap();
        assert!(matches!(
            SettlementKey::load_or_generate(&p),
            Err(Error::Invalid { .. })
        ));
        let _ = std::fs::remove_file(&p);
    }
}
