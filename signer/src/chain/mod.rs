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
pub mod gas;
pub mod wallet;

use anyhow::{anyhow, bail, Context, Result};
use cosmrs::proto::cosmos::bank::v1beta1::{QueryBalanceRequest, QueryBalanceResponse};
use cosmrs::proto::cosmwasm::wasm::v1::{
    QuerySmartContractStateRequest, QuerySmartContractStateResponse,
};
use cosmrs::proto::prost::Message;
use cosmrs::rpc::{Client, HttpClient};
use cosmrs::tx::Msg;
use cosmrs::{AccountId, Any, Coin, Denom};
use serde::{de::DeserializeOwned, Serialize};

pub use account::Account;
pub use broadcast::{Broadcast, Lookup, TxError, TxOutcome};
pub use gas::{GasPolicy, MAX_RPC_BODY};
pub use wallet::{Wallet, ACCOUNT_PREFIX};

/// Cosmos SDK "incorrect account sequence".
pub const CODE_WRONG_SEQUENCE: u32 = 32;
/// Cosmos SDK "tx already in mempool" (ErrTxInMempoolCache): the same bytes were accepted.
pub const CODE_TX_IN_MEMPOOL: u32 = 19;

/// Where a chain is: its id, native denom and CometBFT RPC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub chain_id: String,
    pub denom: String,
    pub rpc_url: String,
}

fn is_stale_connection(e: &cosmrs::rpc::Error) -> bool {
    let text = e.to_string();
    text.contains("connection closed") || text.contains("error sending request")
}

pub struct Chain {
    pub config: Endpoint,
    rpc: HttpClient,
}

impl Chain {
    /// Connects and checks the node answers; the error says how to start the localnet.
    pub async fn connect(config: impl Into<Endpoint>) -> Result<Self> {
        let config = config.into();
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
        let tx = gas::TxDraft {
            msgs,
            memo,
            timeout_height: 0,
        };
        let used = self.simulate(wallet, &tx, account).await?;
        let gas = policy.limit(used);
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
