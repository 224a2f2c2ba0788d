//! The consortium contract on the real zone: stored by the admin (permissioned upload),
//! instantiated with the founders, then governed from Rust over CometBFT RPC: a proposal
//! admits a member, an emergency action by two L1 members suspends one (an L1 member is only
//! suspended until a proposal ratifies it), a proposal ratifies it as a compromise
//! revocation, and the queries the sidecars use (is member, trust level, list, revocations
//! since) reflect all of it.

use garden_e2e::{artifact, founders, Chain, ChainConfig, TestAccount, Wallet};
use serde_json::{json, Value};

#[tokio::test]
async fn consortium_admits_and_revokes_members_on_chain() -> anyhow::Result<()> {
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let admin = Wallet::test_account("admin")?;
    let provider = Wallet::test_account("provider")?;
    let consumer = Wallet::test_account("consumer")?;
    let signer = Wallet::test_account("signer")?;

    let (code_id, store) = chain.store_code(&admin, artifact("consortium")?).await?;
    assert!(code_id > 0);
    eprintln!(
        "stored consortium as code {code_id}: {} gas",
        store.gas_used
    );

    // Founders L1 (admin, provider, consumer), weight 1 each; the signer joins by proposal.
    let mut members = Vec::new();
    for f in founders()?.into_iter().filter(|f| f.level == "l1") {
        f.attestation_key()?; // the committed keys match their documented derivation
        let w = Wallet::test_account(&f.account)?;
        members.push(json!({"addr": w.address.to_string(), "pubkey": f.pubkey, "level": f.level, "weight": f.weight}));
    }
    let init = json!({"members": members, "params": null, "admin": null});
    let (contract, _) = chain
        .instantiate(
            &admin,
            code_id,
            &init,
            "consortium-e2e",
            Some(admin.address.clone()),
            vec![],
        )
        .await?;

    let signer_key = garden_e2e::founder("signer")?;
    let propose = json!({"propose": {
        "title": "admit the signer",
        "description": "sidecar settlement signer of site A",
        "action": {"admit": {"addr": signer.address.to_string(), "pubkey": signer_key.pubkey,
                              "level": "l1", "weight": 1, "endorsement": null}}}});
    let out = chain.execute(&admin, &contract, &propose, vec![]).await?;
    let proposal_id: u64 = out
        .attribute("wasm", "proposal_id")
        .ok_or_else(|| anyhow::anyhow!("no proposal_id attribute in {:?}", out.events))?
        .parse()?;

    let is_member = json!({"is_member": {"addr": signer.address.to_string(), "min_level": "l1", "scope": null}});
    assert!(
        !chain.query::<_, bool>(&contract, &is_member).await?,
        "not a member before the vote"
    );

    // 1 of 3 said yes at proposal time; the provider's yes makes 2/3: the proposal passes.
    chain
        .execute(
            &provider,
            &contract,
            &json!({"vote": {"proposal_id": proposal_id, "vote": "yes"}}),
            vec![],
        )
        .await?;
    let proposal: Value = chain
        .query(
            &contract,
            &json!({"proposal": {"proposal_id": proposal_id}}),
        )
        .await?;
    assert_eq!(proposal["status"], "passed", "{proposal}");
    // As in cw3, a passed proposal is applied by an explicit execute (by an active L1 member).
    chain
        .execute(
            &admin,
            &contract,
            &json!({"execute": {"proposal_id": proposal_id}}),
            vec![],
        )
        .await?;
    let proposal: Value = chain
        .query(
            &contract,
            &json!({"proposal": {"proposal_id": proposal_id}}),
        )
        .await?;
    assert_eq!(proposal["status"], "executed", "{proposal}");
    assert!(
        chain.query::<_, bool>(&contract, &is_member).await?,
        "admitted after 2/3 voted yes"
    );
    let level: Value = chain
        .query(
            &contract,
            &json!({"trust_level": {"addr": signer.address.to_string()}}),
        )
        .await?;
    assert_eq!(level["level"], "l1");
    let list: Value = chain
        .query(
            &contract,
            &json!({"list_members": {"start_after": null, "limit": null}}),
        )
        .await?;
    assert_eq!(list["members"].as_array().map(Vec::len), Some(4));

    // An emergency action against the consumer (an L1 member) needs two distinct L1
    // approvals, and only suspends it.
    let height_before = chain.height().await?;
    let revoke = json!({"emergency_revoke": {"addr": consumer.address.to_string(), "reason": "key compromised"}});
    chain.execute(&admin, &contract, &revoke, vec![]).await?;
    let consumer_member = json!({"is_member": {"addr": consumer.address.to_string(), "min_level": null, "scope": null}});
    assert!(
        chain.query::<_, bool>(&contract, &consumer_member).await?,
        "one approval is not enough"
    );
    let out = chain.execute(&provider, &contract, &revoke, vec![]).await?;
    assert_eq!(out.attribute("wasm", "outcome"), Some("suspended"));
    assert!(
        !chain.query::<_, bool>(&contract, &consumer_member).await?,
        "suspended after two L1 approvals"
    );
    let member: Value = chain
        .query(
            &contract,
            &json!({"member": {"addr": consumer.address.to_string()}}),
        )
        .await?;
    assert_eq!(member["status"], "suspended", "{member}");

    // A normal proposal ratifies the suspension as a compromise revocation (4 L1, 3 active:
    // admin, provider and signer say yes: 3 of 4 >= 2/3).
    let ratify = json!({"propose": {"title": "ratify", "description": "",
        "action": {"revoke": {"addr": consumer.address.to_string(), "reason": "key compromised", "kind": "compromise"}}}});
    let out = chain.execute(&admin, &contract, &ratify, vec![]).await?;
    let id: u64 = out
        .attribute("wasm", "proposal_id")
        .unwrap_or_default()
        .parse()?;
    for voter in [&provider, &signer] {
        chain
            .execute(
                voter,
                &contract,
                &json!({"vote": {"proposal_id": id, "vote": "yes"}}),
                vec![],
            )
            .await?;
    }
    chain
        .execute(
            &provider,
            &contract,
            &json!({"execute": {"proposal_id": id}}),
            vec![],
        )
        .await?;

    let revs: Value = chain
        .query(&contract, &json!({"revocations_since": {"height": height_before, "start_after": null, "limit": null}}))
        .await?;
    let revs = revs["revocations"].as_array().cloned().unwrap_or_default();
    assert_eq!(revs.len(), 1, "{revs:?}");
    assert_eq!(revs[0]["addr"], consumer.address.to_string());
    assert_eq!(revs[0]["kind"], "compromise");
    assert_eq!(revs[0]["emergency"], false, "ratified by a proposal");
    assert_eq!(
        member["suspension"]["at"], revs[0]["effective"],
        "effective from the suspension"
    );
    Ok(())
}
