//! What the signer e2e tests share: the `garden-signer` binary and owner-only key files.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::localnet::repo_root;

/// The `garden-signer` binary the unit step built (`GARDEN_SIGNER_BIN` overrides).
pub fn signer_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("GARDEN_SIGNER_BIN") {
        return Ok(p.into());
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let p = target.join("debug/garden-signer");
    anyhow::ensure!(
        p.exists(),
        "{} missing: build it with cargo build -p garden-signer (or set GARDEN_SIGNER_BIN)",
        p.display()
    );
    Ok(p)
}

/// Creates `path` with mode 0600 (the signer refuses key files others can read).
pub fn write_0600(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    Ok(())
}
