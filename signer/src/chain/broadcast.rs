//! Broadcast (sync: the answer of CheckTx) and confirmation by transaction hash.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use cosmrs::rpc::Client;
use cosmrs::tendermint::Hash;
use sha2::{Digest, Sha256};

use super::client::{Chain, CODE_TX_IN_MEMPOOL};

/// How long [`Chain::send`] waits for a broadcast transaction to be committed.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(250);

/// What a committed transaction produced.
#[derive(Debug, Clone)]
pub struct TxOutcome {
    pub hash: String,
    pub height: u64,
    pub gas_wanted: u64,
    pub gas_used: u64,
    /// `(event type, attribute key, attribute value)` in emission order.
    pub events: Vec<(String, String, String)>,
    /// The same events, grouped: `(event type, attributes)`.
    pub grouped: Vec<(String, Vec<(String, String)>)>,
    /// Size of the signed transaction in bytes (0 when only looked up by hash).
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
#[derive(Debug, Clone, thiserror::Error)]
#[error("transaction failed with code {code} ({codespace}): {log}")]
pub struct TxError {
    pub code: u32,
    pub codespace: String,
    pub log: String,
}

/// The answer of CheckTx to a broadcast.
#[derive(Debug, Clone)]
pub enum Broadcast {
    /// In the mempool (or already there: same bytes, same hash).
    Accepted,
    /// Refused: the transaction never entered the mempool.
    Refused(TxError),
}

/// What a lookup by hash found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Committed with code 0.
    Committed(TxOutcome),
    /// Committed with a failing code: none of its messages took effect.
    Failed { height: u64, error: TxError },
    /// Not (yet) in a block, as far as the node's tx index knows.
    NotFound,
}

impl Lookup {
    /// The outcome of a committed transaction, or an error.
    pub fn into_result(self) -> Result<TxOutcome> {
        match self {
            Lookup::Committed(o) => Ok(o),
            Lookup::Failed { error, .. } => Err(error.into()),
            Lookup::NotFound => bail!("transaction not found"),
        }
    }
}

/// The CometBFT hash of a transaction (SHA-256 of its bytes, upper-case hex).
pub fn tx_hash(tx_bytes: &[u8]) -> String {
    hex_upper(&Sha256::digest(tx_bytes))
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

impl Chain {
    /// Broadcasts (sync). `Err` is a transport failure: the outcome is unknown (the
    /// transaction may have reached the mempool).
    pub async fn broadcast(&self, tx_bytes: Vec<u8>) -> Result<Broadcast> {
        let res = self
            .rpc
            .broadcast_tx_sync(tx_bytes)
            .await
            .context("broadcast")?;
        if res.code.is_err() && res.code.value() != CODE_TX_IN_MEMPOOL {
            return Ok(Broadcast::Refused(TxError {
                code: res.code.value(),
                codespace: res.codespace,
                log: res.log,
            }));
        }
        Ok(Broadcast::Accepted)
    }

    /// Looks a transaction up by hash. `Err` is a transport failure (outcome unknown).
    pub async fn find_tx(&self, hash: &str) -> Result<Lookup> {
        let h: Hash = Hash::from_hex_upper(cosmrs::tendermint::hash::Algorithm::Sha256, hash)
            .map_err(|e| anyhow!("tx hash {hash}: {e}"))?;
        let found = match self.rpc.tx(h, false).await {
            Ok(f) => f,
            Err(e) if e.to_string().contains("not found") => return Ok(Lookup::NotFound),
            Err(e) => return Err(anyhow!(e).context(format!("looking up tx {hash}"))),
        };
        let r = found.tx_result;
        let height = found.height.value();
        if r.code.is_err() {
            return Ok(Lookup::Failed {
                height,
                error: TxError {
                    code: r.code.value(),
                    codespace: r.codespace,
                    log: r.log,
                },
            });
        }
        let grouped: Vec<(String, Vec<(String, String)>)> = r
            .events
            .iter()
            .map(|ev| {
                (
                    ev.kind.clone(),
                    ev.attributes
                        .iter()
                        .map(|a| {
                            (
                                a.key_str().unwrap_or_default().to_string(),
                                a.value_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        let events = grouped
            .iter()
            .flat_map(|(k, attrs)| {
                attrs
                    .iter()
                    .map(move |(a, v)| (k.clone(), a.clone(), v.clone()))
            })
            .collect();
        Ok(Lookup::Committed(TxOutcome {
            hash: hash.to_string(),
            height,
            gas_wanted: r.gas_wanted as u64,
            gas_used: r.gas_used as u64,
            events,
            grouped,
            tx_bytes: 0,
        }))
    }

    /// Polls [`Chain::find_tx`] until the transaction is found or `timeout` passes (then
    /// `Ok(Lookup::NotFound)`). Transport errors are retried until the timeout.
    pub async fn wait_tx(&self, hash: &str, timeout: Duration) -> Result<Lookup> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self.find_tx(hash).await;
            let late = tokio::time::Instant::now() >= deadline;
            match r {
                Ok(Lookup::NotFound) if late => return Ok(Lookup::NotFound),
                Ok(Lookup::NotFound) => {}
                Ok(found) => return Ok(found),
                Err(e) if late => return Err(e),
                Err(_) => {}
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tx_hash_is_upper_hex_sha256() {
        assert_eq!(
            super::tx_hash(b""),
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        );
    }
}
