//! The sidecar's key material:
//!
//! * [`NodeIdentity`]: the libp2p Ed25519 identity (discovery plane: transport, record
//!   signing). Keys of the data plane are derived from it under their own labels
//!   ([`NodeIdentity::derive_key`]: location noise, the DTN outbox), never the key itself;
//! * [`psk`]: the private-network pre-shared key.
//!
//! The settlement plane's attestation key is not here: it lives only in the `garden-signer`
//! crate, which the sidecar does not depend on (`signer/tests/isolation.rs` checks the crate
//! graph), so no discovery or data-plane code can name it.

pub mod identity;
pub mod psk;

pub use identity::NodeIdentity;
pub use psk::load_psk;

use std::path::PathBuf;

/// Errors loading or creating key files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} is not a valid {what}: {reason}")]
    Invalid {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error(
        "key file {path} is readable or writable by others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Exposed { path: PathBuf, mode: u32 },
}

/// Reads a secret file, refusing one that others could read or change (a PSK or a private key
/// in a world-readable file is a leaked key). The bytes are zeroized when dropped.
pub(crate) fn read_secret_file(
    path: &std::path::Path,
) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(read)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Exposed {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    std::fs::read(path)
        .map(zeroize::Zeroizing::new)
        .map_err(read)
}

/// Writes `bytes` to `path` with owner-only permissions, creating parent directories.
pub(crate) fn write_secret_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(path).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}
