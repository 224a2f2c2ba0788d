//! Gas and size of attested settlement on the real zone (wasmd v0.61 localnet).
//!
//! Run with the localnet up and the contracts built:
//!   scripts/localnet.sh start && scripts/build-contracts.sh
//!   cargo bench -p garden-e2e --bench settlement_gas
//!
//! Prints, for batch sizes 1 .. 2 500, the gas used by one `settle_batch` transaction, the gas
//! per attestation and the signed transaction size; then the gas of one transaction per
//! attestation, the batching gain, and the largest safe batch derived from the measured
//! marginal cost against the block gas limit and CometBFT's 1 MB RPC body / max_tx_bytes.

use anyhow::Result;
use garden_e2e::settlement::{settle_msg, Market};
use garden_e2e::{Chain, ChainConfig};
use serde_json::json;

/// CometBFT defaults: `rpc.max_body_bytes` and `mempool.max_tx_bytes` are both 1 MB.
const MAX_BODY_BYTES: u64 = 1_000_000;
const MAX_TX_BYTES: u64 = 1_048_576;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; any other argument is a filter we do not use.
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let m = Market::open(&chain, "gas-bench", 1, 1_000_000_000).await?;
    let (d, admin, submitter) = (&m.deployment, &m.admin, &m.submitter);
    // Let the benchmark go past the default max_batch (1 000) up to the contract's ceiling.
    let params: serde_json::Value = chain.query(&d.settlement, &json!({"config": {}})).await?;
    let mut p = params["params"].clone();
    p["max_batch"] = json!(4000);
    chain
        .execute(
            admin,
            &d.settlement,
            &json!({"update_params": {"params": p}}),
            vec![],
        )
        .await?;
    let spec = m.spec(&chain, 1, 7);

    let block_gas: u64 = chain_block_max_gas(&chain).await?;
    println!(
        "settlement gas on {} (block max_gas {block_gas})",
        chain.config.chain_id
    );
    println!("| attestations per tx | gas used | gas per attestation | signed tx bytes | bytes per attestation |");
    println!("|---:|---:|---:|---:|---:|");
    let mut nonce = 0u64;
    let mut rows = Vec::new();
    for n in [1u64, 10, 100, 1_000, 2_000, 2_500] {
        let items = spec.sign_range(nonce..nonce + n);
        nonce += n;
        let out = chain
            .execute(submitter, &d.settlement, &settle_msg(&items)?, vec![])
            .await?;
        println!(
            "| {n} | {} | {} | {} | {} |",
            out.gas_used,
            out.gas_used / n,
            out.tx_bytes,
            out.tx_bytes as u64 / n
        );
        rows.push((n, out.gas_used, out.tx_bytes as u64));
    }

    // One transaction per attestation, 10 times.
    let mut single = Vec::new();
    for _ in 0..10 {
        let out = chain
            .execute(
                submitter,
                &d.settlement,
                &settle_msg(&[spec.sign(nonce)])?,
                vec![],
            )
            .await?;
        nonce += 1;
        single.push(out.gas_used);
    }
    let single_mean = single.iter().sum::<u64>() / single.len() as u64;
    let (_, g1000, _) = rows
        .iter()
        .find(|r| r.0 == 1_000)
        .copied()
        .unwrap_or_default();
    println!();
    println!(
        "one tx per attestation: mean {single_mean} gas over {} txs",
        single.len()
    );
    println!(
        "batching gain at 1 000: {:.1}x less gas per attestation",
        single_mean as f64 / (g1000 as f64 / 1000.0)
    );

    // Marginal cost between 1 000 and 2 500 items; fixed part from the 1 000 row.
    let (n_a, g_a, b_a) = rows[3];
    let (n_b, g_b, b_b) = rows[5];
    let gas_slope = (g_b - g_a) as f64 / (n_b - n_a) as f64;
    let byte_slope = (b_b - b_a) as f64 / (n_b - n_a) as f64;
    let gas_fixed = g_a as f64 - gas_slope * n_a as f64;
    let byte_fixed = b_a as f64 - byte_slope * n_a as f64;
    // broadcast_tx_sync carries the tx base64-encoded inside a JSON-RPC body; gas simulation
    // (abci_query) carries it hex-encoded, so simulating over RPC binds first.
    let by_body = ((MAX_BODY_BYTES as f64 - 200.0) * 3.0 / 4.0 - byte_fixed) / byte_slope;
    let by_simulate = ((MAX_BODY_BYTES as f64 - 200.0) / 2.0 - byte_fixed) / byte_slope;
    let by_tx = (MAX_TX_BYTES as f64 - byte_fixed) / byte_slope;
    // Simulated gas is adjusted by 1.3 before signing: keep gas_wanted within half a block.
    let by_gas = (block_gas as f64 / 2.0 / 1.3 - gas_fixed) / gas_slope;
    println!("marginal: {gas_slope:.0} gas and {byte_slope:.1} tx bytes per attestation (fixed {gas_fixed:.0} gas, {byte_fixed:.0} bytes)");
    println!(
        "largest batch by simulation over RPC (1 MB body, hex): {by_simulate:.0}; by broadcast (1 MB body, base64): {by_body:.0}; \
         by max_tx_bytes: {by_tx:.0}; by half the block gas: {by_gas:.0}"
    );
    println!(
        "=> safe maximum {:.0} attestations per batch",
        by_simulate.min(by_body).min(by_tx).min(by_gas).floor()
    );
    Ok(())
}

async fn chain_block_max_gas(chain: &Chain) -> Result<u64> {
    use cosmrs::rpc::Client;
    Ok(chain
        .rpc()
        .latest_consensus_params()
        .await?
        .consensus_params
        .block
        .max_gas as u64)
}
