//! Chain governance drives Garden's contracts: the operator scripts deploy them with the
//! chain CLI (x/gov module account as admin), then an x/gov proposal executed by the module
//! account changes the settlement parameters and the consortium's member weights.

use anyhow::{Context, Result};
use garden_e2e::localnet::run_script as script;
use garden_e2e::{Chain, ChainConfig, TestAccount, Wallet};
use serde_json::{json, Value};

#[tokio::test]
async fn gov_proposals_change_contract_parameters() -> Result<()> {
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let deployment: Value =
        serde_json::from_str(&script(&["scripts/deploy-contracts.sh", "--json"])?)?;
    let address = |name: &str| -> Result<cosmrs::AccountId> {
        let a = deployment[name]["address"]
            .as_str()
            .with_context(|| format!("{name} address"))?;
        a.parse()
            .map_err(|e| anyhow::anyhow!("{name} address {a}: {e}"))
    };
    let (settlement, consortium) = (address("settlement")?, address("consortium")?);

    let config: Value = chain.query(&settlement, &json!({"config": {}})).await?;
    assert_eq!(
        config["admin"], deployment["governance"],
        "x/gov is the settlement admin"
    );
    let mut params = config["params"].clone();
    assert_eq!(
        params["window_secs"],
        7 * 24 * 3600,
        "documented default window"
    );
    params["window_secs"] = json!(10 * 24 * 3600);
    params["withdrawal_notice_secs"] = json!(11 * 24 * 3600);
    let msg = json!({"update_params": {"params": params}}).to_string();
    script(&[
        "scripts/gov-proposal.sh",
        "exec",
        settlement.as_ref(),
        &msg,
        "Ten-day settlement window",
    ])?;
    let config: Value = chain.query(&settlement, &json!({"config": {}})).await?;
    assert_eq!(config["params"]["window_secs"], 10 * 24 * 3600);

    // The consortium's governance admin is x/gov too: it can act without a member vote.
    let provider = Wallet::test_account("provider")?.address.to_string();
    let msg = json!({"admin_execute": {"action": {"set_weight": {"addr": provider, "weight": 5}}}})
        .to_string();
    script(&[
        "scripts/gov-proposal.sh",
        "exec",
        consortium.as_ref(),
        &msg,
        "Provider weight 5",
    ])?;
    let member: Value = chain
        .query(&consortium, &json!({"member": {"addr": provider}}))
        .await?;
    assert_eq!(member["weight"], 5, "{member}");
    Ok(())
}
