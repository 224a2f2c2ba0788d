//! The settlement key: the Ed25519 attestation key registered as the member key in the
//! consortium contract. It lives only in this crate (plane isolation, spec README): the
//! discovery and data planes (crate `garden-sidecar`, libp2p) cannot name this type.
//!
//! File format: the 32 raw bytes of the Ed25519 secret seed, mode 0600. A file that the
//! group or others can read or write is refused (the error names the `chmod` to run).
//! `SettlementKey` does not implement `Debug`, `Clone` or `Display`; the secret is zeroized
//! on drop (ed25519-dalek's `SigningKey` is `ZeroizeOnDrop`, and every buffer that held the
//! seed on the way in or out is zeroized too).
//!
//! ```compile_fail
//! fn leak(k: &garden_signer::SettlementKey) -> String {
//!     format!("{k:?}") // SettlementKey is not Debug
//! }
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::Signer as _;
use zeroize::Zeroizing;

/// Errors loading or creating a key file (`kind` names which key: the settlement key or
/// the chain account key).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {kind} file {path}: {source}")]
    Read {
        kind: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} already exists; refusing to overwrite a key")]
    Exists { path: PathBuf },
    #[error("{kind} file {path} must hold 32 raw bytes, it holds {len}")]
    BadLength {
        kind: &'static str,
        path: PathBuf,
        len: usize,
    },
    #[error(
        "{kind} file {path} is accessible by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Exposed {
        kind: &'static str,
        path: PathBuf,
        mode: u32,
    },
}

const SETTLEMENT: &str = "settlement key";

/// Creates `path` (mode 0600, fsynced) holding `bytes`; refuses to overwrite a file.
pub(crate) fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let werr = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            werr(e)
        }
    })?;
    f.write_all(bytes).map_err(werr)?;
    f.sync_all().map_err(werr)
}

/// Reads a secret file, refusing one that group or others can access (mode & 0o077 != 0).
pub(crate) fn read_private_file(
    path: &Path,
    kind: &'static str,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let rerr = |source| KeyError::Read {
        kind,
        path: path.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(rerr)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                kind,
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    Ok(Zeroizing::new(std::fs::read(path).map_err(rerr)?))
}

/// The member's Ed25519 attestation key. Not `Debug`, not `Clone`; zeroized on drop.
pub struct SettlementKey(ed25519_dalek::SigningKey);

impl SettlementKey {
    /// A fresh key from the OS random generator (not written anywhere).
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    #[cfg(test)]
    pub(crate) fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Generates a key and writes it to `path` (created, mode 0600, fsynced). Refuses to
    /// overwrite an existing file.
    pub fn keygen(path: &Path) -> Result<Self, KeyError> {
        let key = Self::generate();
        write_new_private(path, key.0.as_bytes())?;
        Ok(key)
    }

    /// Loads the key from `path`, refusing a file accessible by group or others.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bytes = read_private_file(path, SETTLEMENT)?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(bytes.as_slice().try_into().map_err(
            |_| KeyError::BadLength {
                kind: SETTLEMENT,
                path: path.to_path_buf(),
                len: bytes.len(),
            },
        )?);
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Writes a known seed to a new owner-only key file (test accounts and imports).
    pub fn import(path: &Path, seed: &[u8; 32]) -> Result<Self, KeyError> {
        write_new_private(path, seed)?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(seed)))
    }

    /// The public key, as registered in the consortium contract.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs `msg` (attestation signing bytes). Crate-private: only the signer signs.
    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_then_load_roundtrips_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("settlement.key");
        let k = SettlementKey::keygen(&p).unwrap();
        let l = SettlementKey::load(&p).unwrap();
        assert_eq!(k.public_key(), l.public_key());
        assert_eq!(std::fs::read(&p).unwrap().len(), 32);
        assert!(matches!(
            SettlementKey::keygen(&p),
            Err(KeyError::Exists { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn exposed_file_is_refused_with_the_chmod_to_run() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("settlement.key");
        SettlementKey::keygen(&p).unwrap();
        for mode in [0o640, 0o604, 0o660, 0o644] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = SettlementKey::load(&p).err().expect("refused");
            assert!(matches!(e, KeyError::Exposed { .. }), "{e}");
            assert!(
                e.to_string()
                    .contains(&format!("run `chmod 600 {}`", p.display())),
                "{e}"
            );
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(SettlementKey::load(&p).is_ok());
    }

    #[test]
    fn wrong_length_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, [1u8; 31]).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(
            SettlementKey::load(&p),
            Err(KeyError::BadLength { len: 31, .. })
        ));
    }
}
