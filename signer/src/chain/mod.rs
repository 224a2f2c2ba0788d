//! A small Cosmos chain client over CometBFT RPC (cosmrs + tendermint-rpc), shared by the
//! [`crate::submit`] submitter and the e2e tests (`tests/`, crate garden-e2e).
//!
//! * [`wallet`]: the chain account key (secp256k1) from its own owner-only file, or a mnemonic.
//! * [`account`]: account number and sequence, queried and tracked locally.
//! * [`gas`]: transaction encoding and gas simulation with a bounded adjustment.
//! * [`broadcast`]: broadcast (sync) and confirmation by hash.
//!
//! The one-call [`Chain::send`] follows the signer shape of Hermes' cosmos client: encode,
//! simulate, sign, broadcast (sync), then poll for the committed result; one retry after
//! refreshing the account when the chain reports a sequence mismatch (SDK error code 32).
//! The submitter uses the steps separately: it records the hash before broadcasting.

pub mod account;
pub mod broadcast;
pub mod client;
pub mod gas;
pub mod wallet;

use anyhow::{anyhow, Context, Result};
use cosmrs::proto::cosmos::bank::v1beta1::{QueryBalanceRequest, QueryBalanceResponse};
use cosmrs::proto::cosmwasm::wasm::v1::{
    QuerySmartContractStateRequest, QuerySmartContractStateResponse,
};
use cosmrs::tx::Msg;
use cosmrs::{AccountId, Any, Coin, Denom};
use serde::{de::DeserializeOwned, Serialize};

pub use account::Account;
pub use broadcast::{Broadcast, Lookup, TxError, TxOutcome};
pub use client::{Chain, Endpoint, CODE_TX_IN_MEMPOOL, CODE_WRONG_SEQUENCE};
pub use gas::{GasPolicy, MAX_RPC_BODY};
pub use wallet::{TxDraft, Wallet, ACCOUNT_PREFIX};

impl Chain {
    pub async fn balance(&self, address: &str, denom: &str) -> Result<u128> {
        let res: QueryBalanceResponse = self
            .abci_query(
                "/cosmos.bank.v1beta1.Query/Balance",
                QueryBalanceRequest {
                    address: address.to_string(),
                    denom: denom.to_string(),
                },
            )
            .await?;
        let amount = res.balance.map(|c| c.amount).unwrap_or_default();
        amount
            .parse()
            .with_context(|| format!("balance '{amount}' is not an integer"))
    }

    /// `amount` of the chain's native denom.
    pub fn coin(&self, amount: u128) -> Result<Coin> {
        let denom: Denom = self
            .config
            .denom
            .parse()
            .map_err(|e| anyhow!("denom: {e}"))?;
        Ok(Coin { denom, amount })
    }

    /// Simulates, signs and broadcasts `msgs` (gas by the default [`GasPolicy`], zero fee),
    /// then waits until they are committed. One retry on a sequence mismatch.
    pub async fn send(&self, wallet: &Wallet, msgs: Vec<Any>, memo: &str) -> Result<TxOutcome> {
        match self.send_once(wallet, &msgs, memo).await {
            Err(e)
                if e.downcast_ref::<TxError>()
                    .is_some_and(|t| t.code == CODE_WRONG_SEQUENCE) =>
            {
                // Another transaction from this account landed in between: refresh and retry once.
                self.send_once(wallet, &msgs, memo).await
            }
            other => other,
        }
    }

    async fn send_once(&self, wallet: &Wallet, msgs: &[Any], memo: &str) -> Result<TxOutcome> {
        let account = self.account(&wallet.address).await?;
        let policy = GasPolicy::default();
        let tx = TxDraft {
            msgs,
            memo,
            timeout_height: 0,
        };
        let gas = match self.simulate(wallet, &tx, account).await {
            Ok(used) => policy.limit(used),
            // A large code upload cannot be simulated over RPC (hex doubles it past the
            // 1 MB body limit): store code costs about 7 gas per byte on wasmd 0.61
            // (3.56 M for 506 KB), so pay a bound well above that instead.
            Err(e) if e.to_string().contains("too large to simulate") => {
                let bytes: usize = msgs.iter().map(|m| m.value.len()).sum();
                1_000_000 + 30 * bytes as u64
            }
            Err(e) => return Err(e),
        };
        let fee = self.coin(0)?;
        let tx_bytes = wallet.sign_tx(&self.config.chain_id, &tx, account, gas, fee)?;
        let size = tx_bytes.len();
        let hash = broadcast::tx_hash(&tx_bytes);
        match self.broadcast(tx_bytes).await? {
            Broadcast::Accepted => {}
            Broadcast::Refused(e) => return Err(e.into()),
        }
        let mut out = self
            .wait_tx(&hash, broadcast::CONFIRM_TIMEOUT)
            .await?
            .into_result()?;
        out.tx_bytes = size;
        Ok(out)
    }

    /// Stores wasm code; returns its code id.
    pub async fn store_code(&self, wallet: &Wallet, wasm: Vec<u8>) -> Result<(u64, TxOutcome)> {
        let msg = cosmrs::cosmwasm::MsgStoreCode {
            sender: wallet.address.clone(),
            wasm_byte_code: wasm,
            instantiate_permission: None,
        };
        let out = self
            .send(
                wallet,
                vec![msg.to_any().map_err(|e| anyhow!("{e}"))?],
                "store code",
            )
            .await?;
        let id = out
            .attribute("store_code", "code_id")
            .ok_or_else(|| anyhow!("store_code event missing in tx {}", out.hash))?
            .parse()?;
        Ok((id, out))
    }

    /// Instantiates a stored code with `admin` as the contract admin; returns the address.
    pub async fn instantiate<M: Serialize>(
        &self,
        wallet: &Wallet,
        code_id: u64,
        msg: &M,
        label: &str,
        admin: Option<AccountId>,
        funds: Vec<Coin>,
    ) -> Result<(AccountId, TxOutcome)> {
        let msg = cosmrs::cosmwasm::MsgInstantiateContract {
            sender: wallet.address.clone(),
            admin,
            code_id,
            label: Some(label.to_string()),
            msg: serde_json::to_vec(msg)?,
            funds,
        };
        let out = self
            .send(
                wallet,
                vec![msg.to_any().map_err(|e| anyhow!("{e}"))?],
                "instantiate",
            )
            .await?;
        let addr = out
            .attribute("instantiate", "_contract_address")
            .ok_or_else(|| anyhow!("instantiate event missing in tx {}", out.hash))?
            .parse()
            .map_err(|e| anyhow!("contract address: {e}"))?;
        Ok((addr, out))
    }

    /// Migrates `contract` to `code_id` (the wallet must be the contract's wasm admin).
    pub async fn migrate<M: Serialize>(
        &self,
        wallet: &Wallet,
        contract: &AccountId,
        code_id: u64,
        msg: &M,
    ) -> Result<TxOutcome> {
        let msg = cosmrs::cosmwasm::MsgMigrateContract {
            sender: wallet.address.clone(),
            contract: contract.clone(),
            code_id,
            msg: serde_json::to_vec(msg)?,
        };
        self.send(
            wallet,
            vec![msg.to_any().map_err(|e| anyhow!("{e}"))?],
            "migrate",
        )
        .await
    }

    /// The `Any` of a MsgExecuteContract, to batch several in one transaction.
    pub fn execute_msg<M: Serialize>(
        &self,
        wallet: &Wallet,
        contract: &AccountId,
        msg: &M,
        funds: Vec<Coin>,
    ) -> Result<Any> {
        execute_any(&wallet.address, contract, msg, funds)
    }

    pub async fn execute<M: Serialize>(
        &self,
        wallet: &Wallet,
        contract: &AccountId,
        msg: &M,
        funds: Vec<Coin>,
    ) -> Result<TxOutcome> {
        let any = self.execute_msg(wallet, contract, msg, funds)?;
        self.send(wallet, vec![any], "").await
    }

    /// A smart query, answered by the contract as JSON.
    pub async fn query<Q: Serialize, R: DeserializeOwned>(
        &self,
        contract: &AccountId,
        query: &Q,
    ) -> Result<R> {
        let res: QuerySmartContractStateResponse = self
            .abci_query(
                "/cosmwasm.wasm.v1.Query/SmartContractState",
                QuerySmartContractStateRequest {
                    address: contract.to_string(),
                    query_data: serde_json::to_vec(query)?,
                },
            )
            .await?;
        serde_json::from_slice(&res.data).with_context(|| {
            format!(
                "decoding smart query answer: {}",
                String::from_utf8_lossy(&res.data)
            )
        })
    }
}

/// A MsgExecuteContract from `sender` as an `Any`.
pub fn execute_any<M: Serialize>(
    sender: &AccountId,
    contract: &AccountId,
    msg: &M,
    funds: Vec<Coin>,
) -> Result<Any> {
    cosmrs::cosmwasm::MsgExecuteContract {
        sender: sender.clone(),
        contract: contract.clone(),
        msg: serde_json::to_vec(msg)?,
        funds,
    }
    .to_any()
    .map_err(|e| anyhow!("{e}"))
}
