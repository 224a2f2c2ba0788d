//! The settle-later promise on the real zone: work attested before a consumer asks for its
//! money back is still paid from the escrow during the notice, while work attested after
//! the request is not; and a departed member's earlier attestations settle while a
//! compromised one's do not. Parameters are shortened (window and notice of 20 s) through
//! the settlement's governance admin so that the notice runs out during the test.

use std::time::Duration;

use garden_e2e::settlement::{settle_msg, unix_now, Market};
use garden_e2e::{founder, Chain, ChainConfig, TestAccount, Wallet};
use serde_json::{json, Value};

const PRICE: u128 = 2;
const NOTICE: u64 = 20;

async fn short_window(chain: &Chain, m: &Market) -> anyhow::Result<()> {
    let cfg: Value = chain
        .query(&m.deployment.settlement, &json!({"config": {}}))
        .await?;
    let mut p = cfg["params"].clone();
    p["window_secs"] = json!(NOTICE);
    p["withdrawal_notice_secs"] = json!(NOTICE);
    chain
        .execute(
            &m.admin,
            &m.deployment.settlement,
            &json!({"update_params": {"params": p}}),
            vec![],
        )
        .await?;
    Ok(())
}

fn codes(out: &garden_e2e::TxOutcome) -> String {
    out.attribute("wasm", "rejected_items")
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn withdrawal_notice_keeps_the_escrow_for_earlier_work() -> anyhow::Result<()> {
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let deposit = 10_000u128;
    let m = Market::open(&chain, "notice-e2e", PRICE, deposit).await?;
    short_window(&chain, &m).await?;
    let s = &m.deployment.settlement;
    let consumer = m.consumer.address.to_string();

    // Work attested now, then the consumer asks for everything back.
    let earlier = m.spec_at(&chain, PRICE, 100, unix_now() - 2).sign(0);
    chain
        .execute(
            &m.consumer,
            s,
            &json!({"request_withdrawal": {"amount": null}}),
            vec![],
        )
        .await?;
    let err = chain
        .execute(&m.consumer, s, &json!({"withdraw": {}}), vec![])
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("notice runs until"), "{err:#}");

    // Work attested after the request may not draw on the leaving funds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = m.spec_at(&chain, PRICE, 1, unix_now()).sign(1);
    // Settled late, during the notice: the earlier work is paid, the later refused (24).
    let out = chain
        .execute(&m.submitter, s, &settle_msg(&[earlier, later])?, vec![])
        .await?;
    assert_eq!(out.attribute("wasm", "settled"), Some("1"));
    assert_eq!(codes(&out), "1:24");

    // Once the notice is over the rest goes back to the consumer.
    tokio::time::sleep(Duration::from_secs(NOTICE)).await;
    let before = chain.balance(&consumer, &chain.config.denom).await?;
    let out = chain
        .execute(
            &m.provider,
            s,
            &json!({"refund": {"consumer": consumer}}),
            vec![],
        )
        .await;
    assert!(out.is_err(), "a third party cannot refund");
    chain
        .execute(&m.consumer, s, &json!({"withdraw": {}}), vec![])
        .await?;
    let after = chain.balance(&consumer, &chain.config.denom).await?;
    assert_eq!(
        after - before,
        deposit - 100 * PRICE,
        "the rest, fees are zero on the localnet"
    );
    let escrow: Value = chain
        .query(s, &json!({"escrow": {"consumer": consumer}}))
        .await?;
    assert!(escrow.is_null(), "{escrow}");
    Ok(())
}

#[tokio::test]
async fn departure_and_compromise_are_judged_at_signing_time() -> anyhow::Result<()> {
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let m = Market::open(&chain, "revocation-e2e", PRICE, 10_000).await?;
    let (c, s) = (&m.deployment.consortium, &m.deployment.settlement);
    // The signer account joins at L1 with its founder key and funds an escrow too.
    let signer = Wallet::test_account("signer")?;
    let signer_founder = founder("signer")?;
    let admit = json!({"admin_execute": {"action": {"admit": {"addr": signer.address.to_string(),
        "pubkey": signer_founder.pubkey, "level": "l1", "weight": 1, "endorsement": null}}}});
    chain.execute(&m.admin, c, &admit, vec![]).await?;
    chain
        .execute(
            &signer,
            s,
            &json!({"deposit": {}}),
            vec![chain.coin(10_000)?],
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let signer_key = signer_founder.attestation_key()?;
    let signer_addr = signer.address.to_string();
    let consumer_before = m.spec_at(&chain, PRICE, 1, unix_now()).sign(0);
    let mut stolen = m.spec_at(&chain, PRICE, 1, unix_now());
    stolen.consumer = &signer_addr;
    stolen.key = &signer_key;
    let signer_before = stolen.sign(0);

    // The consumer leaves; the signer's key is reported stolen.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let revoke = |addr: &str, kind: &str| json!({"admin_execute": {"action": {"revoke": {"addr": addr, "reason": "e2e", "kind": kind}}}});
    chain
        .execute(
            &m.admin,
            c,
            &revoke(m.consumer.address.as_ref(), "departure"),
            vec![],
        )
        .await?;
    chain
        .execute(&m.admin, c, &revoke(&signer_addr, "compromise"), vec![])
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let consumer_after = m.spec_at(&chain, PRICE, 1, unix_now()).sign(1);

    let out = chain
        .execute(
            &m.submitter,
            s,
            &settle_msg(&[consumer_before, signer_before, consumer_after])?,
            vec![],
        )
        .await?;
    // 0 settles (signed before the departure); 1 refused: compromised (20);
    // 2 refused: signed after the departure (3).
    assert_eq!(
        out.attribute("wasm", "settled"),
        Some("1"),
        "{:?}",
        out.events
    );
    assert_eq!(codes(&out), "1:20,2:3");
    let member: Value = chain
        .query(c, &json!({"member": {"addr": signer_addr}}))
        .await?;
    assert_eq!(member["revocation"]["kind"], "compromise", "{member}");
    Ok(())
}
