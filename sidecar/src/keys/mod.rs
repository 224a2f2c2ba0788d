//! Key material of the three planes, as distinct types that cannot be confused:
//!
//! * [`NodeIdentity`]: the libp2p Ed25519 identity (discovery plane: transport, record signing);
//! * [`RecordKey`]: a symmetric key for optional record payload encryption (data plane);
//! * [`SettlementKey`]: the Ed25519 key that signs chain transactions and attestations.
//!
//! None converts into another, none implements `Clone` for its secret, `Debug` never prints
//! secrets, and all are zeroized on drop. Discovery code only ever receives a `NodeIdentity`;
//! the settlement plane loads its own key from its own file. [`psk`] loads the private-network
//! pre-shared key.

pub mod identity;
pub mod psk;
pub mod secret;

pub use identity::NodeIdentity;
pub use psk::load_psk;
pub use secret::{RecordKey, SettlementKey};

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
