//! Migrating a v0.1 deployment on the real zone: the v0.1 contracts (built from commit
//! 26a6e9c, `tests/fixtures/v0.1`, see scripts/build-v0.1-fixtures.sh) are deployed and
//! used (members, a revocation, an open proposal, an offer, an escrow, a settled batch), then
//! migrated to this version with `MsgMigrateContract`: state is kept, v0.1 revocations
//! become compromise revocations, the escrow keeps its balance, v0.1 nonces can never be
//! replayed, and new attestations settle under the v0.2 rules.

use anyhow::Context;
use garden_e2e::localnet::repo_root;
use garden_e2e::settlement::{settle_msg, unix_now, AttestationSpec, Market};
use garden_e2e::{artifact, founder, founders, Chain, ChainConfig, TestAccount, Wallet};
use garden_wire::{Attestation, Domain};
use serde_json::{json, Value};

/// A v0.1 artifact, checked against the recorded sha256.
fn v01(name: &str) -> anyhow::Result<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let dir = repo_root().join("tests/fixtures/v0.1");
    let file = format!("garden_{name}.wasm.gz");
    let bytes = std::fs::read(dir.join(&file))
        .with_context(|| format!("{file} (scripts/build-v0.1-fixtures.sh)"))?;
    let sums = std::fs::read_to_string(dir.join("checksums.txt"))?;
    let want = sums
        .lines()
        .find(|l| l.ends_with(&file))
        .and_then(|l| l.split_whitespace().next());
    anyhow::ensure!(
        want == Some(hex::encode(Sha256::digest(&bytes)).as_str()),
        "{file} does not match checksums.txt"
    );
    Ok(bytes)
}

/// A v0.1 attestation: v0.1 accepted any nonce, so its sidecar counted from 0.
fn v01_attestation(spec: &AttestationSpec<'_>, nonce: u64) -> Attestation {
    use ed25519_dalek::Signer;
    let mut a = spec.sign(0);
    a.nonce = nonce;
    let domain = Domain {
        chain_id: spec.chain_id,
        contract: spec.settlement,
    };
    a.signature = spec.key.sign(&a.signing_bytes(&domain)).to_bytes();
    a
}

#[tokio::test]
async fn a_v0_1_deployment_migrates_with_its_state() -> anyhow::Result<()> {
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let admin = Wallet::test_account("admin")?;
    let provider = Wallet::test_account("provider")?;
    let consumer = Wallet::test_account("consumer")?;
    let signer = Wallet::test_account("signer")?;
    let admin_addr = admin.address.to_string();

    // v0.1, deployed and used.
    let (c01, _) = chain.store_code(&admin, v01("consortium")?).await?;
    let (s01, _) = chain.store_code(&admin, v01("settlement")?).await?;
    let mut members = Vec::new();
    for f in founders()?.into_iter().filter(|f| f.level == "l1") {
        let w = Wallet::test_account(&f.account)?;
        members.push(json!({"addr": w.address.to_string(), "pubkey": f.pubkey, "level": f.level, "weight": f.weight}));
    }
    let init = json!({"members": members, "params": null, "admin": admin_addr});
    let (consortium, _) = chain
        .instantiate(
            &admin,
            c01,
            &init,
            "v01-consortium",
            Some(admin.address.clone()),
            vec![],
        )
        .await?;
    let init = json!({"consortium": consortium.to_string(), "denom": chain.config.denom, "params": null, "admin": admin_addr});
    let (settlement, _) = chain
        .instantiate(
            &admin,
            s01,
            &init,
            "v01-settlement",
            Some(admin.address.clone()),
            vec![],
        )
        .await?;

    let signer_founder = founder("signer")?;
    let admit = json!({"admin_execute": {"action": {"admit": {"addr": signer.address.to_string(),
        "pubkey": signer_founder.pubkey, "level": "l1", "weight": 1, "endorsement": null}}}});
    chain.execute(&admin, &consortium, &admit, vec![]).await?;
    let revoke = json!({"admin_execute": {"action": {"revoke": {"addr": signer.address.to_string(), "reason": "left in v0.1"}}}});
    chain.execute(&admin, &consortium, &revoke, vec![]).await?;
    let propose = json!({"propose": {"title": "weight 2", "description": "open across the migration",
        "action": {"set_weight": {"addr": provider.address.to_string(), "weight": 2}}}});
    chain.execute(&admin, &consortium, &propose, vec![]).await?;
    let offer =
        json!({"set_offer": {"kind": Market::KIND, "unit": Market::UNIT, "unit_price": "3"}});
    chain
        .execute(&provider, &settlement, &offer, vec![])
        .await?;
    chain
        .execute(
            &consumer,
            &settlement,
            &json!({"deposit": {"lock_secs": null}}),
            vec![chain.coin(50_000)?],
        )
        .await?;
    let key = founder("consumer")?.attestation_key()?;
    let (chain_id, s_addr) = (chain.config.chain_id.clone(), settlement.to_string());
    let (p_addr, c_addr) = (provider.address.to_string(), consumer.address.to_string());
    let spec = AttestationSpec {
        chain_id: &chain_id,
        settlement: &s_addr,
        provider: &p_addr,
        consumer: &c_addr,
        key: &key,
        kind: Market::KIND,
        unit: Market::UNIT,
        max_unit_price: 3,
        quantity: 10,
        signed_at: unix_now() - 30,
    };
    let old_batch: Vec<Attestation> = (0..5).map(|n| v01_attestation(&spec, n)).collect();
    let out = chain
        .execute(&signer, &settlement, &settle_msg(&old_batch)?, vec![])
        .await?;
    assert_eq!(out.attribute("wasm", "settled"), Some("5"));

    // v0.2 code; the settlement cannot go first (it reads the consortium's v0.2 records).
    let (c02, _) = chain.store_code(&admin, artifact("consortium")?).await?;
    let (s02, _) = chain.store_code(&admin, artifact("settlement")?).await?;
    match chain.migrate(&admin, &settlement, s02, &json!({})).await {
        Ok(out) => anyhow::bail!(
            "the settlement migrated before the consortium: {:?}",
            out.events
        ),
        Err(e) => assert!(
            format!("{e:#}").contains("migrate it to 0.2 first"),
            "{e:#}"
        ),
    }
    let out = chain.migrate(&admin, &consortium, c02, &json!({})).await?;
    assert_eq!(out.attribute("wasm", "members_migrated"), Some("4"));
    let out = chain.migrate(&admin, &settlement, s02, &json!({})).await?;
    assert_eq!(out.attribute("wasm", "escrows_migrated"), Some("1"));
    eprintln!(
        "migrated consortium {consortium} to code {c02} and settlement {settlement} to code {s02}"
    );

    // Consortium state, in v0.2 terms.
    let revoked: Value = chain
        .query(
            &consortium,
            &json!({"member": {"addr": signer.address.to_string()}}),
        )
        .await?;
    assert_eq!(revoked["status"], "revoked", "{revoked}");
    assert_eq!(
        revoked["revocation"]["kind"], "compromise",
        "v0.1 paid nothing from a revoked key"
    );
    assert_eq!(revoked["revocation"]["reason"], "left in v0.1");
    assert_eq!(
        chain
            .query::<_, u64>(&consortium, &json!({"total_weight": {}}))
            .await?,
        3
    );
    let proposal: Value = chain
        .query(&consortium, &json!({"proposal": {"proposal_id": 1}}))
        .await?;
    assert_eq!(proposal["status"], "open", "{proposal}");
    assert_eq!(proposal["action"]["set_weight"]["weight"], 2);
    let cfg: Value = chain.query(&consortium, &json!({"config": {}})).await?;
    assert_eq!(cfg["admin"], admin_addr);
    assert_eq!(cfg["params"]["emergency_share"], "0.333333333333333333");

    // Settlement state.
    let cfg: Value = chain.query(&settlement, &json!({"config": {}})).await?;
    assert_eq!(
        cfg["params"]["withdrawal_notice_secs"],
        8 * 24 * 3600,
        "{cfg}"
    );
    assert_eq!(cfg["admin"], admin_addr);
    let escrow: Value = chain
        .query(&settlement, &json!({"escrow": {"consumer": c_addr}}))
        .await?;
    assert_eq!(
        escrow["balance"],
        (50_000 - 5 * 10 * 3).to_string(),
        "{escrow}"
    );
    assert!(escrow["withdrawal"].is_null());
    let totals: Value = chain.query(&settlement, &json!({"totals": {}})).await?;
    assert_eq!(totals["paid"], "150");
    let paid: String = chain
        .query(
            &settlement,
            &json!({"paid": {"consumer": c_addr, "provider": p_addr}}),
        )
        .await?;
    assert_eq!(paid, "150");

    // v0.1 attestations can never be replayed; v0.2 ones settle.
    let out = chain
        .execute(&signer, &settlement, &settle_msg(&old_batch)?, vec![])
        .await?;
    assert_eq!(out.attribute("wasm", "settled"), Some("0"));
    assert_eq!(
        out.attribute("wasm", "rejected_items"),
        Some("0:17,1:17,2:17,3:17,4:17")
    );
    let out = chain
        .execute(
            &signer,
            &settlement,
            &settle_msg(&spec.sign_range(0..3))?,
            vec![],
        )
        .await?;
    assert_eq!(
        out.attribute("wasm", "settled"),
        Some("3"),
        "{:?}",
        out.events
    );
    let v: Value = chain
        .query(&settlement, &json!({"batch": {"batch_id": 3}}))
        .await?;
    assert_eq!(v["settled"], 3);
    Ok(())
}
