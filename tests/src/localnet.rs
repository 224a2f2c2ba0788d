//! The local chains started by `scripts/localnet.sh`, described by `chain-config/*.env`.
//!
//! Tests never start a chain themselves: `scripts/test.sh` starts the localnet once, and a
//! test that finds it down fails with one line saying how to start it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

/// Root of the repository (the parent of this crate).
pub fn repo_root() -> PathBuf {
    // Read at run time: cargo sets it for tests and benches. The compile-time value is where
    // the binary was first built; with a shared CARGO_TARGET_DIR, cargo reuses a binary built
    // from another checkout, which would then read that checkout's artifacts.
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    Path::new(&dir)
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Parses the `KEY=VALUE` / `KEY="VALUE"` lines of a chain-config env file (comments and
/// blank lines ignored); the same files are sourced by the shell scripts.
pub fn read_env_file(path: &Path) -> Result<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| anyhow!("{}:{}: expected KEY=VALUE", path.display(), i + 1))?;
        out.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
    }
    Ok(out)
}

/// One local chain as configured in `chain-config/<name>.env`.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    pub chain_id: String,
    pub denom: String,
    pub rpc_url: String,
    /// The chain's home directory (keyring, logs), under `$GARDEN_NET`.
    pub home: PathBuf,
}

impl ChainConfig {
    /// Loads `chain-config/<name>.env`, e.g. `ChainConfig::load("garden-zone")`.
    pub fn load(name: &str) -> Result<Self> {
        let env = read_env_file(&repo_root().join("chain-config").join(format!("{name}.env")))?;
        let get = |k: &str| {
            env.get(k)
                .cloned()
                .ok_or_else(|| anyhow!("chain-config/{name}.env lacks {k}"))
        };
        let chain_id = get("CHAIN_ID")?;
        let net = std::env::var("GARDEN_NET")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                    .join(".cache/garden/localnet")
            });
        Ok(Self {
            home: net.join(&chain_id),
            rpc_url: format!("http://127.0.0.1:{}", get("RPC_PORT")?),
            denom: get("DENOM")?,
            chain_id,
        })
    }
}

/// The mnemonic of a test account from `chain-config/accounts.env` (public, test only).
pub fn test_mnemonic(account: &str) -> Result<String> {
    let env = read_env_file(&repo_root().join("chain-config/accounts.env"))?;
    env.get(&format!("MNEMONIC_{}", account.to_uppercase()))
        .cloned()
        .ok_or_else(|| anyhow!("chain-config/accounts.env has no account '{account}'"))
}

/// Runs `bash <args...>` from the repository root (e.g. `["scripts/sidecars.sh", "start"]`)
/// and returns its standard output; a failure carries the script's standard error.
pub fn run_script(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("bash")
        .args(args)
        .current_dir(repo_root())
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if !out.status.success() {
        anyhow::bail!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A built contract artifact (`artifacts/garden_<name>.wasm`, by scripts/build-contracts.sh).
pub fn artifact(name: &str) -> Result<Vec<u8>> {
    let path = repo_root()
        .join("artifacts")
        .join(format!("garden_{name}.wasm"));
    std::fs::read(&path).with_context(|| {
        format!(
            "{} missing: build the contracts with scripts/build-contracts.sh",
            path.display()
        )
    })
}
