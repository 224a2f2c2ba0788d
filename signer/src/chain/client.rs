//! The RPC connection to one chain and its generic ABCI query.

use anyhow::{anyhow, bail, Context, Result};
use cosmrs::proto::prost::Message;
use cosmrs::rpc::{Client, HttpClient};

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
    pub(super) rpc: HttpClient,
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
}
