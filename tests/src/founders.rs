//! The founding members of the local consortium (`chain-config/founders.json`): chain
//! account, trust level, weight and the test Ed25519 attestation key of each.

use anyhow::{anyhow, ensure, Context, Result};
use base64::Engine;
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::localnet::repo_root;

#[derive(Debug, Clone, Deserialize)]
pub struct Founder {
    pub account: String,
    /// `l1` | `l2` | `l3`, as the consortium contract spells trust levels.
    pub level: String,
    pub weight: u64,
    pub seed_hex: String,
    /// Base64 of the 32-byte Ed25519 public key.
    pub pubkey: String,
}

impl Founder {
    /// The attestation signing key: seed = sha256("garden/test-attestation-key/" + account).
    /// Checked against the recorded seed and public key, so the file cannot drift.
    pub fn attestation_key(&self) -> Result<SigningKey> {
        let seed: [u8; 32] =
            Sha256::digest(format!("garden/test-attestation-key/{}", self.account)).into();
        ensure!(
            hex::encode(seed) == self.seed_hex,
            "founders.json: seed of {} does not match its derivation",
            self.account
        );
        let key = SigningKey::from_bytes(&seed);
        let pubkey =
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes());
        ensure!(
            pubkey == self.pubkey,
            "founders.json: pubkey of {} does not match its seed",
            self.account
        );
        Ok(key)
    }
}

pub fn founders() -> Result<Vec<Founder>> {
    #[derive(Deserialize)]
    struct File {
        members: Vec<Founder>,
    }
    let path = repo_root().join("chain-config/founders.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str::<File>(&text)
        .with_context(|| format!("parsing {}", path.display()))?
        .members)
}

pub fn founder(account: &str) -> Result<Founder> {
    founders()?
        .into_iter()
        .find(|f| f.account == account)
        .ok_or_else(|| anyhow!("no founder '{account}'"))
}
