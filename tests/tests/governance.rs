//! Chain governance drives Garden's contracts: the operator scripts deploy them with the
//! chain CLI (x/gov module account as admin), then an x/gov proposal executed by the module
//! account changes the settlement parameters and the consortium's member weights.

use std::process::Command;

use anyhow::{bail, Context, Result};
use garden_e2e::localnet::repo_root;
use garden_e2e::{Chain, ChainConfig, Wallet};
use serde_json::{json, Value};

fn script(args: &[&str]) -> Result<String> {
    let out = Command::new("bash")
        .args(args)
        .current_dir(repo_root())
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if !out.status.success() {
        bail!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

#[tokio::test]
async fn gov_proposals_change_contract_parameters() -> Result<()> {
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let deployment: Value = serde_json::from_str(&script(&["scripts/deploy-contracts.sh", "--json"])?)?;
    let settlement: cosmrs::AccountId = deployment["settlement"]["address"].as_str().context("settlement address")?.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let consortium: cosmrs::AccountId = deployment["consortium"]["address"].as_str().context("consortium address")?.parse().map_err(|e| anyhow::anyhow!("{e}"))?;

    let config: Value = chain.query(&settlement, &json!({"config": {}})).await?;
    assert_eq!(config["admin"], deployment["governance"], "x/gov is the settlement admin");
    let mut params = config["params"].clone();
    assert_eq!(params["window_secs"], 7 * 24 * 3600, "documented default window");
    params["window_secs"] = json!(10 * 24 * 3600);
    params["min_lock_secs"] = json!(11 * 24 * 3600);
    let msg = json!({"update_params": {"params": params}}).to_string();
    script(&["scripts/gov-proposal.sh", "exec", settlement.as_ref(), &msg, "Ten-day settlement window"])?;
    let config: Value = chain.query(&settlement, &json!({"config": {}})).await?;
    assert_eq!(config["params"]["window_secs"], 10 * 24 * 3600);

    // The consortium's governance admin is x/gov too: it can act without a member vote.
    let provider = Wallet::test_account("provider")?.address.to_string();
    let msg = json!({"admin_execute": {"action": {"set_weight": {"addr": provider, "weight": 5}}}}).to_string();
    script(&["scripts/gov-proposal.sh", "exec", consortium.as_ref(), &msg, "Provider weight 5"])?;
    let member: Value = chain.query(&consortium, &json!({"member": {"addr": provider}})).await?;
    assert_eq!(member["weight"], 5, "{member}");
    Ok(())
}
