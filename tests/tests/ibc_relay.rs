//! Hermes (relayer-config/hermes.toml) relays between the local zone and the settlement
//! chain: an ICS-20 transfer sent from the zone over the `transfer` channel that
//! scripts/test.sh creates arrives on the settlement chain as an IBC voucher.
//! This proves the relayer toolchain the attestation channel will use.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cosmrs::Any;
use garden_e2e::{Chain, ChainConfig, TestAccount, Wallet};
use ibc_proto::cosmos::base::v1beta1::Coin as ProtoCoin;
use ibc_proto::ibc::apps::transfer::v1::MsgTransfer;
use sha2::{Digest, Sha256};

/// `(zone side, settlement side)` channel ids that scripts/relayer.sh recorded when it
/// created the transfer channel.
fn transfer_channels(_zone: &Chain) -> anyhow::Result<(String, String)> {
    let path = ChainConfig::load("garden-zone")?
        .home
        .parent()
        .context("GARDEN_NET")?
        .join("hermes/channel-transfer-transfer.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} missing: create the channel with scripts/relayer.sh channel transfer transfer",
            path.display()
        )
    })?;
    let ids: serde_json::Value = serde_json::from_str(&text)?;
    let side = |k: &str| {
        ids[k]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no '{k}' channel id in {}", path.display()))
    };
    Ok((side("zone")?, side("settle")?))
}

#[tokio::test]
async fn ics20_transfer_is_relayed_by_hermes() -> anyhow::Result<()> {
    let zone = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let settle = Chain::connect(ChainConfig::load("garden-settle")?).await?;
    let sender = Wallet::test_account("consumer")?;
    let receiver = Wallet::test_account("provider")?;
    // The voucher denom on the receiving side: ibc/<sha256("transfer/<its channel>/<denom>")>.
    let (channel, settle_channel) = transfer_channels(&zone)?;
    let trace = format!("transfer/{settle_channel}/{}", zone.config.denom);
    let voucher = format!(
        "ibc/{}",
        hex::encode_upper(Sha256::digest(trace.as_bytes()))
    );
    let before = settle.balance(receiver.address.as_ref(), &voucher).await?;

    let timeout_ns = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?
        + Duration::from_secs(600))
    .as_nanos() as u64;
    let msg = MsgTransfer {
        source_port: "transfer".into(),
        source_channel: channel,
        token: Some(ProtoCoin {
            denom: zone.config.denom.clone(),
            amount: "12345".into(),
        }),
        sender: sender.address.to_string(),
        receiver: receiver.address.to_string(),
        timeout_height: None,
        timeout_timestamp: timeout_ns,
        memo: "garden relayer smoke test".into(),
    };
    let any = Any {
        type_url: "/ibc.applications.transfer.v1.MsgTransfer".into(),
        value: prost_encode(&msg),
    };
    zone.send(&sender, vec![any], "")
        .await
        .context("sending the ICS-20 transfer")?;

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = settle.balance(receiver.address.as_ref(), &voucher).await?;
        if now == before + 12345 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("voucher {voucher} balance still {now} (was {before}) after 90 s: is Hermes running (scripts/relayer.sh status)?");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn prost_encode(msg: &MsgTransfer) -> Vec<u8> {
    cosmrs::proto::prost::Message::encode_to_vec(msg)
}
