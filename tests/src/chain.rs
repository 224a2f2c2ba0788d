//! A small Cosmos chain client over CometBFT RPC (cosmrs + tendermint-rpc): accounts,
//! gas simulation, signing, broadcast and confirmation, and the wasm messages the tests use.
//!
//! It follows the signer shape of Hermes' cosmos client: encode, simulate, sign, broadcast
//! (sync), then poll for the committed result; one retry after refreshing the account when
//! the chain reports a sequence mismatch (SDK error code 32).

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use cosmrs::bip32::{DerivationPath, Language, Mnemonic};
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, QueryAccountResponse,
};
use cosmrs::proto::cosmos::bank::v1beta1::{QueryBalanceRequest, QueryBalanceResponse};
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};
use cosmrs::proto::cosmwasm::wasm::v1::{
    QuerySmartContractStateRequest, QuerySmartContractStateResponse,
};
use cosmrs::proto::prost::Message;
use cosmrs::rpc::{Client, HttpClient};
use cosmrs::tx::{self, Fee, Msg, SignDoc, SignerInfo};
use cosmrs::{AccountId, Any, Coin, Denom};
use serde::{de::DeserializeOwned, Serialize};

use crate::localnet::ChainConfig;

/// Address prefix of wasmd chains.
pub const ACCOUNT_PREFIX: &str = "wasm";
/// Cosmos SDK "incorrect account sequence".
const CODE_WRONG_SEQUENCE: u32 = 32;
/// Simulated gas is multiplied by this, then `GAS_MARGIN` is added (simulation under-counts
/// signature verification).
const GAS_ADJUSTMENT: f64 = 1.3;
const GAS_MARGIN: u64 = 20_000;
/// How long to wait for a broadcast transaction to be committed.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// CometBFT's default `rpc.max_body_bytes`. Simulation sends the tx hex-encoded in an
/// `abci_query` JSON body, broadcast sends it base64-encoded: both must fit.
pub const MAX_RPC_BODY: usize = 1_000_000;

fn is_stale_connection(e: &cosmrs::rpc::Error) -> bool {
    let text = e.to_string();
    text.contains("connection closed") || text.contains("error sending request")
}

/// A secp256k1 account key derived from a BIP-39 mnemonic on the Cosmos path m/44'/118'/0'/0/0.
pub struct Wallet {
    key: SigningKey,
    pub address: AccountId,
}

impl Wallet {
    pub fn from_mnemonic(phrase: &str) -> Result<Self> {
        let mnemonic = Mnemonic::new(phrase.trim(), Language::English)
            .map_err(|e| anyhow!("bad mnemonic: {e}"))?;
        let seed = mnemonic.to_seed("");
        let path: DerivationPath = "m/44'/118'/0'/0/0".parse().map_err(|e| anyhow!("{e}"))?;
        let key = SigningKey::derive_from_path(seed, &path)
            .map_err(|e| anyhow!("key derivation: {e}"))?;
        let address = key
            .public_key()
            .account_id(ACCOUNT_PREFIX)
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Self { key, address })
    }

    /// A test account of the localnet (`chain-config/accounts.env`).
    pub fn test_account(name: &str) -> Result<Self> {
        Self::from_mnemonic(&crate::localnet::test_mnemonic(name)?)
    }
}

/// What a committed transaction produced.
#[derive(Debug, Clone)]
pub struct TxOutcome {
    pub hash: String,
    pub height: u64,
    pub gas_wanted: u64,
    pub gas_used: u64,
    /// `(event type, attribute key, attribute value)` in emission order.
    pub events: Vec<(String, String, String)>,
    /// Size of the signed transaction in bytes.
    pub tx_bytes: usize,
}

impl TxOutcome {
    /// The first value of attribute `key` in an event of type `kind`.
    pub fn attribute(&self, kind: &str, key: &str) -> Option<&str> {
        self.events
            .iter()
            .find(|(k, a, _)| k == kind && a == key)
            .map(|(_, _, v)| v.as_str())
    }
}

/// A transaction the chain refused (at CheckTx or DeliverTx), with its code and log.
#[derive(Debug, thiserror::Error)]
#[error("transaction failed with code {code} ({codespace}): {log}")]
pub struct TxError {
    pub code: u32,
    pub codespace: String,
    pub log: String,
}

pub struct Chain {
    pub config: ChainConfig,
    rpc: HttpClient,
}

impl Chain {
    /// Connects and checks the node answers; the error says how to start the localnet.
    pub async fn connect(config: ChainConfig) -> Result<Self> {
        let rpc = HttpClient::new(config.rpc_url.as_str()).context("RPC client")?;
        let status = rpc.status().await.map_err(|e| {
            anyhow!(
                "{} is not reachable at {} ({e}); start it with scripts/localnet.sh start",
                config.chain_id,
                config.rpc_url
            )
        })?;
        if status.node_info.network.as_str() != config.chain_id {
            bail!(
                "node at {} runs {}, expected {}",
                config.rpc_url,
                status.node_info.network,
                config.chain_id
            );
        }
        Ok(Self { config, rpc })
    }

    pub fn rpc(&self) -> &HttpClient {
        &self.rpc
    }

    pub async fn height(&self) -> Result<u64> {
        Ok(self
            .rpc
            .status()
            .await?
            .sync_info
            .latest_block_height
            .value())
    }

    /// Runs a gRPC query through ABCI (`path` like `/cosmos.bank.v1beta1.Query/Balance`).
    pub async fn abci_query<Req: Message, Resp: Message + Default>(
        &self,
        path: &str,
        req: Req,
    ) -> Result<Resp> {
        let data = req.encode_to_vec();
        // CometBFT closes idle keep-alive connections; the pooled HTTP client only finds out
        // on the next request. A query is idempotent, so retry such transport errors.
        let mut attempt = 0;
        let res = loop {
            match self
                .rpc
                .abci_query(Some(path.to_string()), data.clone(), None, false)
                .await
            {
                Ok(r) => break r,
                Err(e) if attempt < 2 && is_stale_connection(&e) => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        };
        if res.code.is_err() {
            return Err(anyhow!(
                "query {path} failed (code {}): {}",
                res.code.value(),
                res.log
            ));
        }
        Resp::decode(res.value.as_slice()).with_context(|| format!("decoding the answer of {path}"))
    }

    /// `(account_number, sequence)` of an existing account.
    pub async fn account(&self, address: &AccountId) -> Result<(u64, u64)> {
        let res: QueryAccountResponse = self
            .abci_query(
                "/cosmos.auth.v1beta1.Query/Account",
                QueryAccountRequest {
                    address: address.to_string(),
                },
            )
            .await
            .with_context(|| format!("account {address} (is it funded?)"))?;
        let any = res
            .account
            .ok_or_else(|| anyhow!("account {address} not found"))?;
        let base = BaseAccount::decode(any.value.as_slice()).context("decoding BaseAccount")?;
        Ok((base.account_number, base.sequence))
    }

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

    pub fn coin(&self, amount: u128) -> Result<Coin> {
        let denom: Denom = self
            .config
            .denom
            .parse()
            .map_err(|e| anyhow!("denom: {e}"))?;
        Ok(Coin { denom, amount })
    }

    fn sign(
        &self,
        wallet: &Wallet,
        msgs: &[Any],
        memo: &str,
        account: (u64, u64),
        gas: u64,
    ) -> Result<Vec<u8>> {
        let body = tx::Body::new(msgs.to_vec(), memo, 0u32);
        let fee = Fee::from_amount_and_gas(self.coin(0)?, gas);
        let auth =
            SignerInfo::single_direct(Some(wallet.key.public_key()), account.1).auth_info(fee);
        let chain_id = self
            .config
            .chain_id
            .parse()
            .map_err(|e| anyhow!("chain id: {e}"))?;
        let doc = SignDoc::new(&body, &auth, &chain_id, account.0).map_err(|e| anyhow!("{e}"))?;
        doc.sign(&wallet.key)
            .map_err(|e| anyhow!("{e}"))?
            .to_bytes()
            .map_err(|e| anyhow!("{e}"))
    }

    /// Simulates, signs and broadcasts `msgs`, then waits until they are committed.
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
        let probe = self.sign(wallet, msgs, memo, account, 0)?;
        if probe.len() * 2 + 512 > MAX_RPC_BODY {
            bail!(
                "transaction of {} bytes is too large to simulate over CometBFT RPC (hex-encoded it exceeds the {} byte max_body_bytes); send a smaller batch",
                probe.len(),
                MAX_RPC_BODY
            );
        }
        #[allow(deprecated)] // `tx` (the Tx message) is deprecated in favour of `tx_bytes`.
        let sim: SimulateResponse = self
            .abci_query(
                "/cosmos.tx.v1beta1.Service/Simulate",
                SimulateRequest {
                    tx: None,
                    tx_bytes: probe,
                },
            )
            .await
            .context("gas simulation")?;
        let used = sim.gas_info.map(|g| g.gas_used).unwrap_or_default();
        let gas = (used as f64 * GAS_ADJUSTMENT) as u64 + GAS_MARGIN;
        let tx_bytes = self.sign(wallet, msgs, memo, account, gas)?;
        let size = tx_bytes.len();
        let res = self
            .rpc
            .broadcast_tx_sync(tx_bytes)
            .await
            .context("broadcast")?;
        if res.code.is_err() {
            return Err(TxError {
                code: res.code.value(),
                codespace: res.codespace,
                log: res.log,
            }
            .into());
        }
        let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
        loop {
            match self.rpc.tx(res.hash, false).await {
                Ok(found) => {
                    let r = found.tx_result;
                    if r.code.is_err() {
                        return Err(TxError {
                            code: r.code.value(),
                            codespace: r.codespace,
                            log: r.log,
                        }
                        .into());
                    }
                    let events = r
                        .events
                        .iter()
                        .flat_map(|ev| {
                            ev.attributes.iter().map(move |a| {
                                (
                                    ev.kind.clone(),
                                    a.key_str().unwrap_or_default().to_string(),
                                    a.value_str().unwrap_or_default().to_string(),
                                )
                            })
                        })
                        .collect();
                    return Ok(TxOutcome {
                        hash: res.hash.to_string(),
                        height: found.height.value(),
                        gas_wanted: r.gas_wanted as u64,
                        gas_used: r.gas_used as u64,
                        events,
                        tx_bytes: size,
                    });
                }
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await
                }
                Err(e) => bail!(
                    "tx {} not committed within {:?}: {e}",
                    res.hash,
                    CONFIRM_TIMEOUT
                ),
            }
        }
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
        cosmrs::cosmwasm::MsgExecuteContract {
            sender: wallet.address.clone(),
            contract: contract.clone(),
            msg: serde_json::to_vec(msg)?,
            funds,
        }
        .to_any()
        .map_err(|e| anyhow!("{e}"))
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
