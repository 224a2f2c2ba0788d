//! The chain client lives in garden-signer (`garden_signer::chain`), shared with the
//! submitter; this module adds what only the tests need: the localnet's test accounts and
//! the conversion from `chain-config/*.env`.

use anyhow::Result;
use garden_signer::chain::{Endpoint, Wallet};

use crate::localnet::ChainConfig;

/// Wallets of the localnet's test accounts (`chain-config/accounts.env`).
pub trait TestAccount: Sized {
    fn test_account(name: &str) -> Result<Self>;
}

impl TestAccount for Wallet {
    fn test_account(name: &str) -> Result<Self> {
        Wallet::from_mnemonic(&crate::localnet::test_mnemonic(name)?)
    }
}

impl From<ChainConfig> for Endpoint {
    fn from(c: ChainConfig) -> Self {
        Endpoint {
            chain_id: c.chain_id,
            denom: c.denom,
            rpc_url: c.rpc_url,
        }
    }
}
