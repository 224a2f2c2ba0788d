//! Transaction drafts and gas: simulation over RPC, and the bounded adjustment applied to it.

use super::client::Chain;
use super::wallet::{TxDraft, Wallet};
use anyhow::{bail, Context, Result};
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};

/// CometBFT's default `rpc.max_body_bytes`. Simulation sends the tx hex-encoded in an
/// `abci_query` JSON body, broadcast sends it base64-encoded: both must fit (see
/// docs/PERFORMANCE.md: 2 836 settlement items by simulation, 4 256 by broadcast).
pub const MAX_RPC_BODY: usize = 1_000_000;
/// JSON-RPC envelope around the hex of a simulated transaction.
const SIMULATE_ENVELOPE: usize = 512;

/// Gas limit from a simulation: `used × adjustment + margin`, capped at `max`.
/// The adjustment is clamped to `1.0..=MAX_ADJUSTMENT` (simulation under-counts signature
/// verification, but a large factor would only waste block space).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GasPolicy {
    pub adjustment: f64,
    pub margin: u64,
    pub max: u64,
}

impl GasPolicy {
    pub const MAX_ADJUSTMENT: f64 = 3.0;

    pub fn limit(&self, simulated: u64) -> u64 {
        let adj = if self.adjustment.is_finite() {
            self.adjustment.clamp(1.0, Self::MAX_ADJUSTMENT)
        } else {
            1.0
        };
        ((simulated as f64 * adj).ceil() as u64)
            .saturating_add(self.margin)
            .min(self.max)
    }
}

impl Default for GasPolicy {
    fn default() -> Self {
        GasPolicy {
            adjustment: 1.3,
            margin: 20_000,
            max: 100_000_000,
        }
    }
}

/// Whether a signed transaction of `len` bytes can be simulated over CometBFT RPC.
pub fn fits_simulation(len: usize) -> bool {
    len * 2 + SIMULATE_ENVELOPE <= MAX_RPC_BODY
}

impl Chain {
    /// Gas used by `tx` in a simulation (signed with gas 0 and no fee).
    pub async fn simulate(
        &self,
        wallet: &Wallet,
        tx: &TxDraft<'_>,
        account: (u64, u64),
    ) -> Result<u64> {
        let probe = wallet.sign_tx(&self.config.chain_id, tx, account, 0, self.coin(0)?)?;
        if !fits_simulation(probe.len()) {
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
        Ok(sim.gas_info.map(|g| g.gas_used).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjustment_is_bounded_and_the_limit_capped() {
        let p = |adjustment, max| GasPolicy {
            adjustment,
            margin: 1_000,
            max,
        };
        assert_eq!(p(1.5, u64::MAX).limit(100_000), 151_000);
        assert_eq!(p(0.2, u64::MAX).limit(100_000), 101_000, "at least 1.0");
        assert_eq!(p(50.0, u64::MAX).limit(100_000), 301_000, "at most 3.0");
        assert_eq!(p(f64::NAN, u64::MAX).limit(100_000), 101_000);
        assert_eq!(p(1.5, 120_000).limit(100_000), 120_000, "capped");
        assert!(fits_simulation(400_000) && !fits_simulation(500_000));
    }
}
