//! Attested settlement on the real zone: a provider's offer, a consumer's escrow, then
//! batches of Ed25519-signed attestations settled per item (bad items rejected with their
//! own code, good ones paid once), and a batch of 1 000 attestations in one transaction.

use base64::Engine;
use garden_e2e::settlement::{settle_msg, Market};
use garden_e2e::{Chain, ChainConfig};
use serde_json::{json, Value};

const UNIT_PRICE: u128 = 3;
const QUANTITY: u64 = 10;

#[tokio::test]
async fn batches_settle_per_item_and_1000_fit_in_one_transaction() -> anyhow::Result<()> {
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let deposit = 1_000_000u128;
    let m = Market::open(&chain, "settle-e2e", UNIT_PRICE, deposit).await?;
    let (d, submitter) = (&m.deployment, &m.submitter);
    let (provider_s, consumer_s) = (
        m.provider.address.to_string(),
        m.consumer.address.to_string(),
    );
    let spec = m.spec(&chain, UNIT_PRICE, QUANTITY);

    // A batch of 10 where item 3 has a forged signature and item 7 repeats item 0's nonce.
    let mut items = spec.sign_range(0..10);
    items[3].signature[0] ^= 0xff;
    items[7] = spec.sign(0);
    let out = chain
        .execute(submitter, &d.settlement, &settle_msg(&items)?, vec![])
        .await?;
    eprintln!("batch of 10 (2 bad): {} gas", out.gas_used);
    let record: Value = chain
        .query(&d.settlement, &json!({"batch": {"batch_id": 1}}))
        .await?;
    assert_eq!(record["settled"], 8, "{record}");
    assert_eq!(record["rejected"], 2, "{record}");
    let codes = base64::engine::general_purpose::STANDARD
        .decode(record["codes"].as_str().unwrap_or_default())?;
    assert_eq!(codes[3], 1, "item 3: bad signature");
    assert_eq!(codes[7], 5, "item 7: nonce reused");
    assert!(
        codes
            .iter()
            .enumerate()
            .all(|(i, c)| i == 3 || i == 7 || *c == 0),
        "{codes:?}"
    );

    // Submitting the same batch again pays nothing: every nonce is used or the item is bad.
    chain
        .execute(submitter, &d.settlement, &settle_msg(&items)?, vec![])
        .await?;
    let paid: String = chain
        .query(
            &d.settlement,
            &json!({"paid": {"consumer": consumer_s, "provider": provider_s}}),
        )
        .await?;
    let expected_paid = 8 * QUANTITY as u128 * UNIT_PRICE;
    assert_eq!(paid.parse::<u128>()?, expected_paid);

    // 1 000 attestations in one transaction.
    let big = spec.sign_range(1_000..2_000);
    let out = chain
        .execute(submitter, &d.settlement, &settle_msg(&big)?, vec![])
        .await?;
    eprintln!(
        "batch of 1000: {} gas ({} per item), tx {} bytes",
        out.gas_used,
        out.gas_used / 1000,
        out.tx_bytes
    );
    let record: Value = chain
        .query(&d.settlement, &json!({"batch": {"batch_id": 3}}))
        .await?;
    assert_eq!(record["settled"], 1000, "{}", record["rejected"]);

    // Escrow + paid = deposited, on chain.
    let escrow: Value = chain
        .query(&d.settlement, &json!({"escrow": {"consumer": consumer_s}}))
        .await?;
    let balance: u128 = escrow["balance"].as_str().unwrap_or_default().parse()?;
    let total_paid = expected_paid + 1000 * QUANTITY as u128 * UNIT_PRICE;
    assert_eq!(balance + total_paid, deposit);
    let totals: Value = chain.query(&d.settlement, &json!({"totals": {}})).await?;
    assert_eq!(totals["paid"], total_paid.to_string());
    Ok(())
}
