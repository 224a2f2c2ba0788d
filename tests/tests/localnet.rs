//! The local zone is what `chain-config/` says it is: funded test accounts, a real block gas
//! limit, and permissioned code upload (only the consortium admin stores code directly).

use cosmrs::rpc::Client;
use garden_e2e::{Chain, ChainConfig, TestAccount, Wallet};

#[tokio::test]
async fn zone_has_funded_accounts_and_block_gas_limit() -> anyhow::Result<()> {
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    for name in ["admin", "provider", "consumer", "signer", "relayer"] {
        let w = Wallet::test_account(name)?;
        let bal = chain
            .balance(w.address.as_ref(), &chain.config.denom)
            .await?;
        assert!(
            bal > 1_000_000_000,
            "{name} ({}) holds only {bal}",
            w.address
        );
    }
    let params = chain.rpc().latest_consensus_params().await?;
    assert_eq!(params.consensus_params.block.max_gas, 100_000_000);
    Ok(())
}

#[tokio::test]
async fn code_upload_is_reserved_to_the_admin() -> anyhow::Result<()> {
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let outsider = Wallet::test_account("provider")?;
    // A minimal wasm module header: the permission check comes before any compilation.
    let err = chain
        .store_code(&outsider, b"\0asm\x01\0\0\0".to_vec())
        .await
        .expect_err("a non-admin account must not be able to store code");
    let text = format!("{err:#}");
    eprintln!("refused as expected: {text}");
    assert!(
        text.contains("unauthorized") || text.contains("can not create code"),
        "unexpected error: {text}"
    );
    Ok(())
}

#[tokio::test]
async fn settlement_chain_is_separate() -> anyhow::Result<()> {
    let zone = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let settle = Chain::connect(ChainConfig::load("garden-settle")?).await?;
    assert_ne!(zone.config.chain_id, settle.config.chain_id);
    assert!(settle.height().await? > 0);
    Ok(())
}
