//! IBC mode end to end (issue 17): consumption attestations signed by a consortium member's
//! key go from the signer's queue to the zone's gateway contract, which checks membership and
//! signatures and forwards them over the Garden channel, relayed by real Hermes (pull mode),
//! to the settlement contract on the settlement chain, which pays the provider from the
//! consumer's escrow there. Checked on both chains: paid exactly once, through a Hermes
//! outage, and through a packet timeout (the batch comes back and settles on a later try).
//!
//! Needs `scripts/deploy-ibc.sh` run on the two-chain localnet (scripts/test.sh does it) and
//! Hermes running (`scripts/relayer.sh start`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cosmrs::AccountId;
use garden_e2e::localnet::{repo_root, run_script, test_mnemonic};
use garden_e2e::settlement::{unix_now, AttestationSpec};
use garden_e2e::signer_files::{signer_bin, write_0600};
use garden_e2e::{founder, Chain, ChainConfig, TestAccount, Wallet};
use garden_signer::{SettlementKey, Signer, SubmitConfig, Submitter, Target, UsageInput};
use garden_wire::Domain;
use serde_json::{json, Value};

const KIND: &str = "ibc-cpu";
const UNIT: &str = "cpu-second";
const PRICE: u128 = 7;
const QTY: u64 = 3;

/// `$GARDEN_NET/deployment-ibc.json`, written by scripts/deploy-ibc.sh.
struct Deployment {
    consortium: AccountId,
    gateway: AccountId,
    settlement: AccountId,
}

fn net_dir() -> Result<PathBuf> {
    Ok(ChainConfig::load("garden-zone")?
        .home
        .parent()
        .context("GARDEN_NET")?
        .to_path_buf())
}

fn deployment() -> Result<Deployment> {
    let path = net_dir()?.join("deployment-ibc.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{} missing: run scripts/deploy-ibc.sh", path.display()))?;
    let v: Value = serde_json::from_str(&text)?;
    let addr = |p: &str| -> Result<AccountId> {
        v.pointer(p)
            .and_then(Value::as_str)
            .with_context(|| format!("no {p} in {}", path.display()))?
            .parse()
            .map_err(|e| anyhow::anyhow!("{p}: {e}"))
    };
    Ok(Deployment {
        consortium: addr("/zone/consortium/address")?,
        gateway: addr("/zone/gateway/address")?,
        settlement: addr("/settle/settlement/address")?,
    })
}

/// Runs one of the project's scripts; fails with its output.
fn script(name: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(repo_root().join("scripts").join(name))
        .args(args)
        .output()
        .with_context(|| format!("running scripts/{name}"))?;
    if !out.status.success() {
        bail!(
            "scripts/{name} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The consumer's signer, shared by every test of this file and kept with the localnet's
/// state (`$GARDEN_NET`, wiped by a reset, as the deployment is): one queue, so one
/// persistent nonce counter for the consumer's key against the one deployed gateway. Two
/// fresh queues in the same hour would hand out the same nonces, and the gateway would take
/// the second one's items for the first one's, already settled.
struct Site {
    dir: PathBuf,
    wallet: Wallet,
}

fn site() -> Result<&'static Site> {
    static SITE: OnceLock<Site> = OnceLock::new();
    if let Some(s) = SITE.get() {
        return Ok(s);
    }
    // One per gateway: a queue is bound to its signing domain (a redeploy is a new one).
    let dir = net_dir()?.join(format!("e2e-ibc-signer-{}", deployment()?.gateway));
    std::fs::create_dir_all(&dir)?;
    let key = dir.join("settlement.key");
    if !key.exists() {
        let seed = founder("consumer")?.attestation_key()?.to_bytes();
        SettlementKey::import(&key, &seed)?;
    }
    let account = dir.join("account.key");
    if !account.exists() {
        write_0600(&account, test_mnemonic("signer")?.as_bytes())?;
    }
    let wallet = Wallet::load(&account)?;
    let _ = SITE.set(Site { dir, wallet });
    Ok(SITE.get().expect("set"))
}

impl Site {
    /// The queue, bound to the gateway's signing domain (zone chain id + gateway address).
    fn open(&self, zone: &Chain, d: &Deployment) -> Result<Signer> {
        let key = SettlementKey::load(&self.dir.join("settlement.key"))?;
        let gateway = d.gateway.to_string();
        let domain = Domain {
            chain_id: &zone.config.chain_id,
            contract: &gateway,
        };
        Ok(Signer::open(&self.dir.join("queue.redb"), key, &domain)?)
    }
}

struct World {
    zone: Chain,
    settle: Chain,
    d: Deployment,
    provider: Wallet,
    consumer: Wallet,
}

/// Both chains, the deployment, and a market on the settlement chain: the provider's offer
/// and enough of the consumer's escrow for `items` attestations.
async fn world(items: u64) -> Result<World> {
    let zone = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let settle = Chain::connect(ChainConfig::load("garden-settle")?).await?;
    let d = deployment()?;
    let provider = Wallet::test_account("provider")?;
    let consumer = Wallet::test_account("consumer")?;
    let offer = json!({"set_offer": {"kind": KIND, "unit": UNIT, "unit_price": PRICE.to_string()}});
    settle
        .execute(&provider, &d.settlement, &offer, vec![])
        .await?;
    let deposit = items as u128 * QTY as u128 * PRICE;
    if deposit > 0 {
        settle
            .execute(
                &consumer,
                &d.settlement,
                &json!({"deposit": {}}),
                vec![settle.coin(deposit)?],
            )
            .await?;
    }
    Ok(World {
        zone,
        settle,
        d,
        provider,
        consumer,
    })
}

impl World {
    fn usage(&self, now: u64, i: u64) -> UsageInput {
        UsageInput {
            provider: self.provider.address.to_string(),
            consumer: self.consumer.address.to_string(),
            resource_id: format!("ibc-vm-{i}"),
            quantity: QTY,
            unit: UNIT.into(),
            price_ref: KIND.into(),
            max_unit_price: PRICE,
            period_start: now - 60,
            period_end: now - 1,
        }
    }

    async fn paid(&self) -> Result<u128> {
        let v: Value = self
            .settle
            .query(
                &self.d.settlement,
                &json!({"paid": {"consumer": self.consumer.address.to_string(), "provider": self.provider.address.to_string()}}),
            )
            .await?;
        Ok(v.as_str().unwrap_or("0").parse()?)
    }

    /// The shared queue, with whatever an earlier (failed) test left in flight settled
    /// first, so each test measures only its own items.
    async fn open_drained(&self, s: &Site) -> Result<Signer> {
        let signer = s.open(&self.zone, &self.d)?;
        self.drain(&signer, &s.wallet, Duration::from_secs(180))
            .await?;
        Ok(signer)
    }

    fn config(&self) -> SubmitConfig {
        let mut c = SubmitConfig::new(self.d.gateway.clone());
        c.target = Target::Gateway;
        c
    }

    /// Submitter passes until no item is in flight (or `limit` passes); returns the time
    /// from the first pass to the last item's payment being known.
    async fn drain(&self, signer: &Signer, wallet: &Wallet, limit: Duration) -> Result<Duration> {
        let t = Instant::now();
        loop {
            // A pass may fail while a chain restarts or Hermes catches up: try again.
            if let Err(e) = Submitter::new(signer, &self.zone, wallet, self.config())
                .pass(unix_now(), true)
                .await
            {
                println!("pass failed (retrying): {e:#}");
            }
            let st = signer.stats(unix_now())?;
            if st.signed + st.batched + st.submitted + st.relayed == 0 {
                return Ok(t.elapsed());
            }
            if t.elapsed() > limit {
                bail!("items still in flight after {limit:?}: {st:?}");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[tokio::test]
async fn usage_signed_on_the_zone_is_paid_once_on_the_settlement_chain() -> Result<()> {
    let n = 25;
    let w = world(n).await?;
    let s = site()?;
    let signer = w.open_drained(s).await?;
    let paid0 = w.paid().await?;
    let provider = w.provider.address.to_string();
    let bal0 = w.settle.balance(&provider, &w.settle.config.denom).await?;

    let now = unix_now();
    let mine: Vec<u64> = signer
        .sign_many((0..n).map(|i| w.usage(now, i)).collect(), now)?
        .iter()
        .map(|i| i.nonce)
        .collect();
    let took = w
        .drain(&signer, &s.wallet, Duration::from_secs(120))
        .await?;
    println!(
        "{n} attestations: signed -> paid on the settlement chain in {:.1} s",
        took.as_secs_f64()
    );
    for nonce in &mine {
        let state = signer.item(*nonce)?.expect("stored").state;
        assert!(
            matches!(state, garden_signer::ItemState::Final { .. }),
            "{nonce}: {state:?}"
        );
    }
    let due = n as u128 * QTY as u128 * PRICE;
    assert_eq!(w.paid().await? - paid0, due);
    assert_eq!(
        w.settle.balance(&provider, &w.settle.config.denom).await? - bal0,
        due,
        "the provider is paid on the settlement chain"
    );

    // The same attestations again, straight to the gateway: refused there (already
    // settled), and nothing more is paid.
    let again: Vec<_> = signer
        .items()?
        .into_iter()
        .rev()
        .take(n as usize)
        .map(|i| i.attestation)
        .collect();
    let bytes = garden_wire::batch::encode(&again)?;
    use base64::Engine;
    let msg =
        json!({"submit_batch": {"batch": base64::engine::general_purpose::STANDARD.encode(bytes)}});
    let out = w
        .zone
        .execute(&s.wallet, &w.d.gateway, &msg, vec![])
        .await?;
    assert_eq!(
        out.attribute("wasm", "forwarded"),
        Some("0"),
        "replays are refused at the gateway"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(w.paid().await? - paid0, due);
    Ok(())
}

#[tokio::test]
async fn a_batch_sent_while_hermes_is_down_settles_once_when_it_returns() -> Result<()> {
    let n = 10;
    let w = world(n).await?;
    let s = site()?;
    let signer = w.open_drained(s).await?;
    let paid0 = w.paid().await?;
    script("relayer.sh", &["stop"])?;
    let result = async {
        let now = unix_now();
        signer.sign_many((0..n).map(|i| w.usage(now, i)).collect(), now)?;
        let rep = Submitter::new(&signer, &w.zone, &s.wallet, w.config())
            .pass(unix_now(), true)
            .await?;
        assert_eq!(rep.items_relayed, n, "the gateway took them");
        tokio::time::sleep(Duration::from_secs(8)).await;
        // Nothing can move without the relayer: the items wait at the gateway.
        Submitter::new(&signer, &w.zone, &s.wallet, w.config())
            .pass(unix_now(), true)
            .await?;
        assert_eq!(signer.stats(unix_now())?.relayed, n);
        assert_eq!(w.paid().await?, paid0);
        anyhow::Ok(())
    }
    .await;
    script("relayer.sh", &["start"])?;
    result?;
    w.drain(&signer, &s.wallet, Duration::from_secs(120))
        .await?;
    assert_eq!(w.paid().await? - paid0, n as u128 * QTY as u128 * PRICE);
    Ok(())
}

/// The gateway's parameters with `packet_timeout_secs` changed, passed as a zone governance
/// proposal (the gateway's admin is the x/gov module account).
fn set_packet_timeout(w: &World, cfg: &Value, secs: u64) -> Result<()> {
    let mut params = cfg["params"].clone();
    params["packet_timeout_secs"] = json!(secs);
    let msg = json!({"update_params": {"params": params}}).to_string();
    script(
        "gov-proposal.sh",
        &["exec", w.d.gateway.as_ref(), &msg, "Gateway packet timeout"],
    )?;
    Ok(())
}

#[tokio::test]
async fn a_packet_that_times_out_comes_back_and_settles_once_later() -> Result<()> {
    let n = 8;
    let w = world(n).await?;
    let s = site()?;
    let signer = w.open_drained(s).await?;
    let paid0 = w.paid().await?;
    let cfg: Value = w.zone.query(&w.d.gateway, &json!({"config": {}})).await?;
    let timeout = 60; // the gateway's lowest packet_timeout_secs
    set_packet_timeout(&w, &cfg, timeout)?;
    script("relayer.sh", &["stop"])?;
    let result = async {
        let now = unix_now();
        signer.sign_many((0..n).map(|i| w.usage(now, i)).collect(), now)?;
        let rep = Submitter::new(&signer, &w.zone, &s.wallet, w.config())
            .pass(unix_now(), true)
            .await?;
        assert_eq!(rep.items_relayed, n);
        // Past the timeout on the settlement chain's clock, the packet can never be received.
        tokio::time::sleep(Duration::from_secs(timeout + 8)).await;
        anyhow::Ok(())
    }
    .await;
    // Hermes clears on start: it proves the timeout to the gateway, which releases the
    // nonces; the signer requeues the items and sends them again in a new packet.
    script("relayer.sh", &["start"])?;
    result?;
    set_packet_timeout(
        &w,
        &cfg,
        cfg["params"]["packet_timeout_secs"].as_u64().unwrap_or(600),
    )?;
    let t = Instant::now();
    let mut released = 0;
    loop {
        let rep = Submitter::new(&signer, &w.zone, &s.wallet, w.config())
            .pass(unix_now(), true)
            .await?;
        released += rep.items_released;
        let st = signer.stats(unix_now())?;
        if st.signed + st.batched + st.submitted + st.relayed == 0 {
            break;
        }
        if t.elapsed() > Duration::from_secs(150) {
            bail!("still in flight after the timeout: {st:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(released, n, "every item came back once");
    assert_eq!(
        w.paid().await? - paid0,
        n as u128 * QTY as u128 * PRICE,
        "and settled once"
    );
    Ok(())
}

/// Gas used by the transactions of block `height` that carry an IBC `recv_packet` (Hermes'
/// relay of our packet to the settlement chain).
async fn recv_gas(chain: &Chain, height: u64) -> Result<u64> {
    use tendermint_rpc::Client;
    let r = chain.rpc().block_results(u32::try_from(height)?).await?;
    Ok(r.txs_results
        .unwrap_or_default()
        .iter()
        .filter(|t| t.events.iter().any(|e| e.kind == "recv_packet"))
        .map(|t| t.gas_used as u64)
        .sum())
}

async fn block_time(chain: &Chain, height: u64) -> Result<f64> {
    use tendermint_rpc::Client;
    let b = chain.rpc().block(u32::try_from(height)?).await?;
    Ok(b.block.header.time.unix_timestamp_nanos() as f64 / 1e9)
}

/// Figures of the IBC path for docs/PERFORMANCE.md ("IBC settlement"): `GARDEN_IBC_ITEMS`
/// attestations (default 200; 1 000 for the table) in batches of up to 1 000, end to end,
/// with the gas each chain spends per item and the time from a batch's inclusion on the zone
/// to its payment on the settlement chain. Prints; asserts only that everything was paid.
#[tokio::test]
async fn ibc_settlement_figures() -> Result<()> {
    let n: u64 = std::env::var("GARDEN_IBC_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let w = world(n).await?;
    let s = site()?;
    let signer = w.open_drained(s).await?;
    let paid0 = w.paid().await?;
    let batches0: u64 = w
        .zone
        .query(&w.d.gateway, &json!({"batch_count": {}}))
        .await?;
    let now = unix_now();
    signer.sign_many((0..n).map(|i| w.usage(now, i)).collect(), now)?;

    let t = Instant::now();
    let mut cfg = w.config();
    cfg.max_items = 1_000;
    let rep = Submitter::new(&signer, &w.zone, &s.wallet, cfg)
        .pass(unix_now(), true)
        .await?;
    let submitted = t.elapsed();
    let took = w
        .drain(&signer, &s.wallet, Duration::from_secs(300))
        .await?
        + submitted;
    assert_eq!(w.paid().await? - paid0, n as u128 * QTY as u128 * PRICE);

    // Per gateway batch: inclusion on the zone -> the settlement chain's record of it.
    let batches1: u64 = w
        .zone
        .query(&w.d.gateway, &json!({"batch_count": {}}))
        .await?;
    let (mut recv_gas_total, mut lags) = (0u64, Vec::new());
    for id in batches0 + 1..=batches1 {
        let g: Value = w
            .zone
            .query(&w.d.gateway, &json!({"batch": {"batch_id": id}}))
            .await?;
        let Some(sid) = g["settlement_batch_id"].as_u64() else {
            continue;
        };
        let r: Value = w
            .settle
            .query(&w.d.settlement, &json!({"batch": {"batch_id": sid}}))
            .await?;
        let (hz, hs) = (
            g["height"].as_u64().unwrap_or(0),
            r["height"].as_u64().unwrap_or(0),
        );
        recv_gas_total += recv_gas(&w.settle, hs).await?;
        lags.push(block_time(&w.settle, hs).await? - block_time(&w.zone, hz).await?);
    }
    let (z0, z1) = (w.zone.height().await?, w.zone.height().await?);
    let zone_block = {
        let h = z1.max(z0);
        (block_time(&w.zone, h).await? - block_time(&w.zone, h - 20).await?) / 20.0
    };
    let lag = lags.iter().copied().fold(0.0, f64::max);
    println!(
        "IBC settlement: {n} attestations in {} gateway batches: signed -> paid on the settlement chain in {:.1} s ({:.0} attestations/min); \
         zone gas {:.0}/item (submit_batch), settlement-chain gas {:.0}/item (recv_packet, paid by the relayer); \
         inclusion on the zone -> payment on the settlement chain: max {lag:.1} s ≈ {:.0} zone blocks of {zone_block:.2} s",
        lags.len(),
        took.as_secs_f64(),
        n as f64 * 60.0 / took.as_secs_f64(),
        rep.gas_used as f64 / n as f64,
        recv_gas_total as f64 / n as f64,
        lag / zone_block,
    );
    Ok(())
}

/// The signer's settings for the binary, in IBC mode: the gateway as target.
fn signer_config(w: &World, s: &Site) -> Result<PathBuf> {
    let path = s.dir.join("signer.toml");
    let cfg = format!(
        "rpc_url = \"{}\"\nchain_id = \"{}\"\ndenom = \"{}\"\ncontract = \"{}\"\ntarget = \"gateway\"\nsettlement_key = \"{}\"\naccount_key = \"{}\"\nqueue = \"{}\"\n",
        w.zone.config.rpc_url,
        w.zone.config.chain_id,
        w.zone.config.denom,
        w.d.gateway,
        s.dir.join("settlement.key").display(),
        s.dir.join("account.key").display(),
        s.dir.join("queue.redb").display(),
    );
    std::fs::write(&path, cfg)?;
    Ok(path)
}

#[tokio::test]
async fn kill_9_of_the_signer_in_ibc_mode_loses_nothing_and_pays_nothing_twice() -> Result<()> {
    let n = 24u64;
    let w = world(n).await?;
    let s = site()?;
    let cfg = signer_config(&w, s)?;
    let paid0;
    {
        let signer = w.open_drained(s).await?;
        paid0 = w.paid().await?;
        let now = unix_now();
        signer.sign_many((0..n).map(|i| w.usage(now, i)).collect(), now)?;
    }
    // Batches of 2, killed at pseudo-random instants: between broadcast and confirmation,
    // while items are relayed, while the gateway is being asked about them.
    let mut kills = 0;
    for cycle in 0..5u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos() as u64;
        let delay = Duration::from_millis(300 + (nanos + cycle * 977) % 1_500);
        let mut child = Command::new(signer_bin()?)
            .args(["--json", "--max-items", "2", "submit", "--flush"])
            .env("GARDEN_SIGNER_CONFIG", &cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        tokio::time::sleep(delay).await;
        if child.try_wait()?.is_none() {
            child.kill()?; // SIGKILL
            kills += 1;
        }
        child.wait()?;
    }
    // Then passes until nothing is in flight.
    let signer = w.open_drained(s).await?;
    w.drain(&signer, &s.wallet, Duration::from_secs(120))
        .await?;
    let st = signer.stats(unix_now())?;
    println!("{kills} kills; queue {st:?}");
    assert_eq!(st.refused, 0, "{st:?}");
    assert_eq!(
        w.paid().await? - paid0,
        n as u128 * QTY as u128 * PRICE,
        "paid once"
    );
    Ok(())
}

/// Kills the zone's validator (its pid file under `$GARDEN_NET`).
fn stop_zone() -> Result<()> {
    let pid = std::fs::read_to_string(net_dir()?.join("garden-zone/wasmd.pid"))?;
    let st = Command::new("kill").arg(pid.trim()).status()?;
    anyhow::ensure!(st.success(), "kill {pid} failed");
    Ok(())
}

#[tokio::test]
async fn the_zone_down_the_queue_holds_then_drains() -> Result<()> {
    let n = 12u64;
    let w = world(n).await?;
    let s = site()?;
    drop(w.open_drained(s).await?);
    let paid0 = w.paid().await?;
    stop_zone()?;
    let result = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let signer = s.open(&w.zone, &w.d)?;
        // Sites keep producing: usage is signed offline, in two bursts.
        for burst in 0..2 {
            let now = unix_now();
            signer.sign_many(
                (0..n / 2).map(|i| w.usage(now, burst * 100 + i)).collect(),
                now,
            )?;
            let pass = Submitter::new(&signer, &w.zone, &s.wallet, w.config())
                .pass(unix_now(), true)
                .await;
            assert!(pass.is_err(), "no zone, no pass: {pass:?}");
        }
        let st = signer.stats(unix_now())?;
        assert_eq!(st.signed + st.batched, n, "the queue holds: {st:?}");
        anyhow::Ok(())
    }
    .await;
    script("localnet.sh", &["start", "--two-chain"])?;
    result?;
    let signer = w.open_drained(s).await?;
    w.drain(&signer, &s.wallet, Duration::from_secs(180))
        .await?;
    assert_eq!(w.paid().await? - paid0, n as u128 * QTY as u128 * PRICE);
    Ok(())
}

/// A site signing for `account` with the test attestation key of that name (seed =
/// sha256("garden/test-attestation-key/" + account), the founders' rule), its queue kept
/// per gateway like the consumer's.
fn site_for(account: &str) -> Result<(Site, ed25519_dalek::SigningKey)> {
    use sha2::{Digest, Sha256};
    let seed: [u8; 32] = Sha256::digest(format!("garden/test-attestation-key/{account}")).into();
    let dir = net_dir()?.join(format!("e2e-ibc-{account}-{}", deployment()?.gateway));
    std::fs::create_dir_all(&dir)?;
    let key = dir.join("settlement.key");
    if !key.exists() {
        SettlementKey::import(&key, &seed)?;
    }
    // Fees are paid by the `signer` account, as for the consumer's site.
    let wallet = Wallet::load(&site()?.dir.join("account.key"))?;
    Ok((
        Site { dir, wallet },
        ed25519_dalek::SigningKey::from_bytes(&seed),
    ))
}

/// One zone governance proposal executing `action` on the consortium as its admin.
fn consortium_admin(w: &World, action: Value) -> Result<()> {
    let msg = json!({"admin_execute": {"action": action}}).to_string();
    script(
        "gov-proposal.sh",
        &[
            "exec",
            w.d.consortium.as_ref(),
            &msg,
            "Consortium membership",
        ],
    )?;
    Ok(())
}

#[tokio::test]
async fn departure_after_signing_is_paid_compromise_is_refused() -> Result<()> {
    use base64::Engine;
    let n = 3u64;
    let w = world(0).await?;
    // Two more consumers: the `admin` founder (L1), and the `validator` account admitted
    // now as an L1 member with its own attestation key.
    let (departing, _) = site_for("admin")?;
    let (compromised, vkey) = site_for("validator")?;
    let admin = Wallet::test_account("admin")?;
    let validator = Wallet::test_account("validator")?;
    let pubkey = base64::engine::general_purpose::STANDARD.encode(vkey.verifying_key().as_bytes());
    let member: Value = w
        .zone
        .query(
            &w.d.consortium,
            &json!({"member": {"addr": validator.address.to_string()}}),
        )
        .await?;
    if member.is_null() {
        consortium_admin(
            &w,
            json!({"admit": {"addr": validator.address.to_string(), "pubkey": pubkey,
                "level": "l1", "weight": 1, "endorsement": null}}),
        )?;
        tokio::time::sleep(Duration::from_secs(2)).await; // sign after the admission block
    }
    for who in [&admin, &validator] {
        w.settle
            .execute(
                who,
                &w.d.settlement,
                &json!({"deposit": {}}),
                vec![w.settle.coin(n as u128 * QTY as u128 * PRICE)?],
            )
            .await?;
    }
    let usage = |consumer: &Wallet, now: u64, i: u64| UsageInput {
        consumer: consumer.address.to_string(),
        ..w.usage(now, i)
    };
    let paid_by = |consumer: &Wallet| {
        let q = json!({"paid": {"consumer": consumer.address.to_string(), "provider": w.provider.address.to_string()}});
        let settle = &w.settle;
        let contract = &w.d.settlement;
        async move {
            let v: Value = settle.query(contract, &q).await?;
            anyhow::Ok(v.as_str().unwrap_or("0").parse::<u128>()?)
        }
    };
    let (p_admin, p_validator) = (paid_by(&admin).await?, paid_by(&validator).await?);

    // Both sign while members in good standing (offline: nothing is submitted yet).
    let a = departing.open(&w.zone, &w.d)?;
    let v = compromised.open(&w.zone, &w.d)?;
    let now = unix_now();
    a.sign_many((0..n).map(|i| usage(&admin, now, i)).collect(), now)?;
    v.sign_many((0..n).map(|i| usage(&validator, now, i)).collect(), now)?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Then the admin founder departs, and the validator's key is declared compromised.
    consortium_admin(
        &w,
        json!({"revoke": {"addr": admin.address.to_string(), "reason": "left the consortium", "kind": "departure"}}),
    )?;
    consortium_admin(
        &w,
        json!({"revoke": {"addr": validator.address.to_string(), "reason": "key leaked", "kind": "compromise"}}),
    )?;

    // Submitted after the revocations: what the departed member signed before leaving is
    // paid; nothing a compromised key signed is, whenever it was signed.
    w.drain(&a, &departing.wallet, Duration::from_secs(120))
        .await?;
    w.drain(&v, &compromised.wallet, Duration::from_secs(120))
        .await?;
    let (sa, sv) = (a.stats(unix_now())?, v.stats(unix_now())?);
    assert_eq!((sa.final_, sa.refused), (n, 0), "departed: {sa:?}");
    assert_eq!((sv.final_, sv.refused), (0, n), "compromised: {sv:?}");
    for item in v.items()? {
        assert!(
            matches!(
                item.state,
                garden_signer::ItemState::Refused { code: 20, .. }
            ),
            "refused as SignerCompromised: {:?}",
            item.state
        );
    }
    assert_eq!(
        paid_by(&admin).await? - p_admin,
        n as u128 * QTY as u128 * PRICE
    );
    assert_eq!(paid_by(&validator).await? - p_validator, 0);
    Ok(())
}

/// `garden ARGS… --json` against `site`'s operator API (scripts/sidecars.sh), parsed.
fn garden(site: &str, args: &[&str]) -> Result<Value> {
    let out = run_script(&[&["scripts/sidecars.sh", "garden", site], args, &["--json"]].concat())?;
    serde_json::from_str(&out).with_context(|| format!("garden {args:?} at {site}: {out}"))
}

/// Retries `garden(site, args)` until it succeeds (a step waits for the other site's
/// previous one to arrive over the data plane), for up to two minutes.
async fn garden_until(site: &str, args: &[&str]) -> Result<Value> {
    let t = Instant::now();
    loop {
        match garden(site, args) {
            Ok(v) => return Ok(v),
            Err(e) if t.elapsed() > Duration::from_secs(120) => {
                return Err(e.context(format!("{site}: still failing after 120 s")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

struct SidecarsUp;
impl Drop for SidecarsUp {
    fn drop(&mut self) {
        let _ = run_script(&["scripts/sidecars.sh", "stop"]);
    }
}

/// The provider's half of a booking, then the consumer's confirmation: `consumer` books
/// `units` of `provider`'s resource `id` for the last minute, uses them, both sign.
async fn book_and_use(
    consumer: &str,
    provider: &str,
    owner: &str,
    id: &str,
    units: u64,
    nonce: u64,
) -> Result<String> {
    let now_ms = unix_now() * 1000;
    let (start, end) = ((now_ms - 90_000).to_string(), (now_ms + 60_000).to_string());
    let (used_from, used_to) = ((now_ms - 80_000).to_string(), (now_ms - 20_000).to_string());
    let units_s = units.to_string();
    let nonce_s = nonce.to_string();
    let r = garden_until(
        consumer,
        &[
            "bookings",
            "request",
            "--owner",
            owner,
            "--resource",
            id,
            "--start",
            &start,
            "--end",
            &end,
            "--units",
            &units_s,
            "--nonce",
            &nonce_s,
        ],
    )
    .await?;
    let booking = r["booking"]["id"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            let c = r["booking"]["id"]["consumer"].as_str()?;
            Some(format!("{c}#{nonce}"))
        })
        .with_context(|| format!("no booking id in {r}"))?;
    for step in [&["confirm"][..], &["start"]] {
        garden_until(
            provider,
            &[&["bookings"], step, &[booking.as_str()]].concat(),
        )
        .await?;
    }
    garden_until(
        provider,
        &[
            "bookings",
            "complete",
            &booking,
            "--units-used",
            &units_s,
            "--start",
            &used_from,
            "--end",
            &used_to,
        ],
    )
    .await?;
    garden_until(consumer, &["bookings", "confirm-usage", &booking]).await?;
    Ok(booking)
}

/// The whole path of issue 17: two sidecar processes (site-a, the `provider` member; site-b,
/// the `consumer` member) each book the other's resource over the data plane, the provider
/// reports the usage and the consumer countersigns; each site's `garden-signer take` pulls
/// its confirmed usage from its sidecar's API, signs it with its member key, and the
/// batches go through the gateway and Hermes to the settlement chain, which pays each
/// provider from the other's escrow, once. The sidecars keep nothing afterwards, and a
/// second take finds nothing. Each attestation is also copied to its provider's site: the
/// provider's signer forgets a copy its consumer settled, and settles one its consumer
/// signed but never submitted; the consumer's late submission is not paid again.
#[tokio::test]
async fn usage_reports_from_two_sites_become_payments() -> Result<()> {
    let w = world(0).await?;
    let (site_b, _) = (site()?, ()); // the `consumer` member's queue (shared, see `site`)
    let (site_a, _) = site_for("provider")?;
    // Offers and escrow on the settlement chain: each site's resource priced, each
    // consumer funded.
    let (a_price, b_price) = (5u128, 3u128);
    let (a_units, b_units) = (2u64, 4u64);
    w.settle
        .execute(
            &w.provider,
            &w.d.settlement,
            &json!({"set_offer": {"kind": "compute", "unit": "core", "unit_price": a_price.to_string()}}),
            vec![],
        )
        .await?;
    w.settle
        .execute(
            &w.consumer,
            &w.d.settlement,
            &json!({"set_offer": {"kind": "storage", "unit": "gib", "unit_price": b_price.to_string()}}),
            vec![],
        )
        .await?;
    for (who, amount) in [
        // Two bookings of site-a's resource: the second settled from the provider's copy.
        (&w.consumer, 2 * a_price * a_units as u128),
        (&w.provider, b_price * b_units as u128),
    ] {
        w.settle
            .execute(
                who,
                &w.d.settlement,
                &json!({"deposit": {}}),
                vec![w.settle.coin(amount)?],
            )
            .await?;
    }
    let paid = |consumer: &Wallet, provider: &Wallet| {
        let q = json!({"paid": {"consumer": consumer.address.to_string(), "provider": provider.address.to_string()}});
        let (settle, contract) = (&w.settle, &w.d.settlement);
        async move {
            let v: Value = settle.query(contract, &q).await?;
            anyhow::Ok(v.as_str().unwrap_or("0").parse::<u128>()?)
        }
    };
    let to_a0 = paid(&w.consumer, &w.provider).await?;
    let to_b0 = paid(&w.provider, &w.consumer).await?;
    // Anything an earlier failed run left in either queue settles first.
    for s in [site_a.dir.as_path(), site_b.dir.as_path()] {
        let st = Site {
            dir: s.to_path_buf(),
            wallet: Wallet::load(&site_b.dir.join("account.key"))?,
        };
        w.open_drained(&st).await?;
    }

    // The two sites, as processes, and their resources.
    run_script(&["scripts/sidecars.sh", "start"])?;
    let _up = SidecarsUp;
    let did_a = garden("site-a", &["bookings", "list"])?["me"]
        .as_str()
        .context("site-a DID")?
        .to_string();
    let did_b = garden("site-b", &["bookings", "list"])?["me"]
        .as_str()
        .context("site-b DID")?
        .to_string();
    let tag = unix_now();
    let (res_a, res_b) = (format!("cpu-{tag}"), format!("disk-{tag}"));
    let available = format!(
        "{}..{}",
        (unix_now() - 3_600) * 1000,
        (unix_now() + 86_400) * 1000
    );
    for (site, id, kind, unit, price, partner) in [
        ("site-a", &res_a, "compute", "core", a_price, &did_b),
        ("site-b", &res_b, "storage", "gib", b_price, &did_a),
    ] {
        garden(
            site,
            &[
                "resources",
                "create",
                id,
                "--kind",
                kind,
                "--name",
                id,
                "--capacity",
                "8",
                "--unit",
                unit,
                "--price",
                &price.to_string(),
                "--available",
                &available,
                "--partner",
                partner,
            ],
        )?;
    }
    let booking_b = book_and_use("site-b", "site-a", &did_a, &res_a, a_units, tag).await?;
    let booking_a = book_and_use("site-a", "site-b", &did_b, &res_b, b_units, tag + 1).await?;

    // Each site's signer takes its confirmed usage from its sidecar, by the DID → member map.
    let partners = format!(
        "[sites]\n\"{did_a}\" = \"{}\"\n\"{did_b}\" = \"{}\"\n",
        w.provider.address, w.consumer.address
    );
    for (s, site, booking) in [
        (&site_a, "site-a", &booking_a),
        (site_b, "site-b", &booking_b),
    ] {
        let t = signer_take(&w, s, site, &partners)?;
        assert_eq!(t["signed"][0][0], json!(booking), "{site}: {t}");
        assert_eq!(t["left"], json!([]), "{site}: {t}");
        let again = signer_take(&w, s, site, &partners)?;
        assert_eq!(
            again["listed"], 0,
            "{site}: the sidecar still lists usage: {again}"
        );
        let signer = s.open(&w.zone, &w.d)?;
        let nonce = t["signed"][0][1].as_u64().context("nonce")?;
        assert_eq!(signer.origin(booking)?, Some(nonce));
        w.drain(&signer, &s.wallet, Duration::from_secs(180))
            .await?;
        let item = signer.item(nonce)?.context("queued item")?;
        assert!(
            matches!(item.state, garden_signer::ItemState::Final { .. }),
            "{site}: {item:?}"
        );
    }
    assert_eq!(
        paid(&w.consumer, &w.provider).await? - to_a0,
        a_price * a_units as u128,
        "site-a paid once"
    );
    assert_eq!(
        paid(&w.provider, &w.consumer).await? - to_b0,
        b_price * b_units as u128,
        "site-b paid once"
    );

    // The provider's copy: site-b's sidecar sent site-a the attestation of booking_b;
    // site-a's signer holds it, finds it settled by site-b's signer, forgets it.
    let held = copies_taken(&w, &site_a, &partners, &booking_b).await?;
    assert_eq!(held["copies_discarded"], json!([]), "{held}");
    {
        let signer_a = site_a.open(&w.zone, &w.d)?;
        let rep = Submitter::new(&signer_a, &w.zone, &site_a.wallet, w.config())
            .settle_copies(unix_now(), 0)
            .await?;
        assert_eq!((rep.settled, rep.submitted), (1, 0), "{rep:?}");
    }

    // A consumer whose signer signs but never submits: the provider submits its copy.
    let booking_c = book_and_use("site-b", "site-a", &did_a, &res_a, a_units, tag + 2).await?;
    let t = signer_take(&w, site_b, "site-b", &partners)?;
    let nonce_c = t["signed"][0][1].as_u64().context("nonce")?;
    copies_taken(&w, &site_a, &partners, &booking_c).await?;
    {
        let signer_a = site_a.open(&w.zone, &w.d)?;
        let mut sub = Submitter::new(&signer_a, &w.zone, &site_a.wallet, w.config());
        let rep = sub.settle_copies(unix_now(), 0).await?;
        assert_eq!(rep.submitted, 1, "{rep:?}");
        let t0 = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            // Included, so pending or settled: never free again, never sent twice.
            let rep = sub.settle_copies(unix_now(), 0).await?;
            assert_eq!(rep.submitted, 0, "{rep:?}");
            if rep.settled == 1 {
                break;
            }
            if t0.elapsed() > Duration::from_secs(120) {
                bail!("site-a's copy of {booking_c} not settled after 120 s: {rep:?}");
            }
        }
    }
    assert_eq!(
        paid(&w.consumer, &w.provider).await? - to_a0,
        2 * a_price * a_units as u128,
        "the copy paid once"
    );
    // The consumer's signer comes back and submits its own: settled already, not paid again.
    let signer_b = site_b.open(&w.zone, &w.d)?;
    w.drain(&signer_b, &site_b.wallet, Duration::from_secs(180))
        .await?;
    let item = signer_b.item(nonce_c)?.context("queued item")?;
    assert!(
        matches!(item.state, garden_signer::ItemState::Final { .. }),
        "{item:?}"
    );
    assert_eq!(
        paid(&w.consumer, &w.provider).await? - to_a0,
        2 * a_price * a_units as u128,
        "paid once, whoever submitted"
    );

    // A copy signed longer ago than the gateway's window (7 days) can never be paid: the
    // provider's signer gives it up at its first look instead of retrying it forever.
    let stale_at = unix_now() - 8 * 24 * 3600;
    let gateway = w.d.gateway.to_string();
    let stale = AttestationSpec {
        chain_id: &w.zone.config.chain_id,
        settlement: &gateway,
        provider: w.provider.address.as_ref(),
        consumer: w.consumer.address.as_ref(),
        key: &founder("consumer")?.attestation_key()?,
        kind: "compute",
        unit: "core",
        max_unit_price: a_price,
        quantity: a_units,
        signed_at: stale_at,
    }
    .sign(0);
    let signer_a = site_a.open(&w.zone, &w.d)?;
    assert_eq!(signer_a.hold_copy(&stale, unix_now())?, Ok(true));
    let rep = Submitter::new(&signer_a, &w.zone, &site_a.wallet, w.config())
        .settle_copies(unix_now(), 0)
        .await?;
    assert_eq!((rep.expired, rep.submitted), (1, 0), "{rep:?}");
    assert_eq!(
        signer_a.copies(10)?,
        vec![],
        "the stale copy is no longer held"
    );
    Ok(())
}

/// `garden-signer --json take` for `site` (its sidecar's API and the partners file).
fn signer_take(w: &World, s: &Site, site: &str, partners: &str) -> Result<Value> {
    let cfg = signer_config(w, s)?;
    std::fs::write(s.dir.join("partners.toml"), partners)?;
    let port = if site == "site-a" { 7452 } else { 7453 };
    let out = Command::new(signer_bin()?)
        .args(["--json", "take"])
        .env("GARDEN_SIGNER_CONFIG", &cfg)
        .env(
            "GARDEN_SIGNER_USAGE_FROM",
            format!("http://127.0.0.1:{port}"),
        )
        .env("GARDEN_SIGNER_PARTNERS", s.dir.join("partners.toml"))
        .output()?;
    if !out.status.success() {
        bail!(
            "{site}: garden-signer take failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // One report for every page taken, on the last line.
    Ok(serde_json::from_str::<Value>(text.lines().last().unwrap_or(""))?["take"].clone())
}

/// Takes at site-a until its signer holds the copy of `booking` (the copy crosses the data
/// plane after site-b's signer took the usage); returns that take's report.
async fn copies_taken(w: &World, s: &Site, partners: &str, booking: &str) -> Result<Value> {
    let t0 = Instant::now();
    loop {
        let t = signer_take(w, s, "site-a", partners)?;
        let held = t["copies_held"]
            .as_array()
            .is_some_and(|h| h.iter().any(|c| c[0] == booking));
        if held {
            return Ok(t);
        }
        if t0.elapsed() > Duration::from_secs(90) {
            bail!("site-a holds no copy of {booking} after 90 s: {t}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
