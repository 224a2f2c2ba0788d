//! The chain account key (secp256k1): pays the fees of settlement transactions. Loaded from
//! its own file, with the same owner-only rule as the attestation key ([`crate::key`]).
//!
//! File format: either the 32 raw bytes of the secret key, or a BIP-39 mnemonic (UTF-8 text)
//! derived on the Cosmos path m/44'/118'/0'/0/0. `Wallet` is not `Debug` or `Clone`.

use std::path::Path;

use anyhow::{anyhow, Result};
use cosmrs::bip32::{DerivationPath, Language, Mnemonic};
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::tx::{self, Fee, SignDoc, SignerInfo};
use cosmrs::{AccountId, Any, Coin};

use crate::key::{read_private_file, KeyError};

/// Address prefix of wasmd chains.
pub const ACCOUNT_PREFIX: &str = "wasm";

/// What a transaction carries, before gas, fee and signature.
pub struct TxDraft<'a> {
    pub msgs: &'a [Any],
    pub memo: &'a str,
    /// Last height at which the transaction may be included (0 = none). Past it, a
    /// transaction not found by hash can never be included.
    pub timeout_height: u64,
}

/// A secp256k1 account key and its address.
pub struct Wallet {
    key: SigningKey,
    pub address: AccountId,
}

impl Wallet {
    fn from_key(key: SigningKey) -> Result<Self> {
        let address = key
            .public_key()
            .account_id(ACCOUNT_PREFIX)
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Self { key, address })
    }

    /// The key derived from a BIP-39 mnemonic on the Cosmos path m/44'/118'/0'/0/0.
    pub fn from_mnemonic(phrase: &str) -> Result<Self> {
        let mnemonic = Mnemonic::new(phrase.trim(), Language::English)
            .map_err(|e| anyhow!("bad mnemonic: {e}"))?;
        let seed = mnemonic.to_seed("");
        let path: DerivationPath = "m/44'/118'/0'/0/0".parse().map_err(|e| anyhow!("{e}"))?;
        let key = SigningKey::derive_from_path(seed, &path)
            .map_err(|e| anyhow!("key derivation: {e}"))?;
        Self::from_key(key)
    }

    /// Loads the account key file (32 raw bytes or a mnemonic), refusing a file accessible
    /// by group or others.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = read_private_file(path, "chain account key")?;
        if bytes.len() == 32 {
            let key = SigningKey::from_slice(&bytes).map_err(|e| anyhow!("{e}"))?;
            return Self::from_key(key);
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::BadLength {
            kind: "chain account key",
            path: path.to_path_buf(),
            len: bytes.len(),
        })?;
        Self::from_mnemonic(text)
            .map_err(|e| anyhow!("chain account key file {}: {e}", path.display()))
    }

    /// Signs a transaction (SIGN_MODE_DIRECT) and returns its bytes.
    pub fn sign_tx(
        &self,
        chain_id: &str,
        tx: &TxDraft<'_>,
        account: (u64, u64),
        gas: u64,
        fee: Coin,
    ) -> Result<Vec<u8>> {
        let timeout = cosmrs::tendermint::block::Height::try_from(tx.timeout_height)
            .map_err(|e| anyhow!("timeout height: {e}"))?;
        let body = tx::Body::new(tx.msgs.to_vec(), tx.memo, timeout);
        let fee = Fee::from_amount_and_gas(fee, gas);
        let auth = SignerInfo::single_direct(Some(self.key.public_key()), account.1).auth_info(fee);
        let chain_id = chain_id.parse().map_err(|e| anyhow!("chain id: {e}"))?;
        let doc = SignDoc::new(&body, &auth, &chain_id, account.0).map_err(|e| anyhow!("{e}"))?;
        doc.sign(&self.key)
            .map_err(|e| anyhow!("{e}"))?
            .to_bytes()
            .map_err(|e| anyhow!("{e}"))
    }
}
