//! The signer's submitter against the real zone (issue 17, item 3): usage signed with a
//! founder's attestation key through the signer's queue, submitted as settlement batches by
//! the `Submitter` with the chain account key loaded from its own 0600 file, and checked on
//! chain: the provider is paid exactly once, across a stop between broadcast and
//! confirmation and when the provider already settled a copy.
//!
//! `GARDEN_SUBMIT_ITEMS` (default 200), `GARDEN_SUBMIT_BATCH` and `GARDEN_SUBMIT_PIPELINE` set
//! the throughput run, which prints items/s, tx/s and gas per item (docs/PERFORMANCE.md,
//! "Signer").

use std::time::{Duration, Instant};

use garden_e2e::settlement::{settle_msg, unix_now, Market};
use garden_e2e::signer_files::{signer_bin, write_0600};
use garden_e2e::{founder, localnet::test_mnemonic, Chain, ChainConfig};
use garden_signer::chain::Wallet;
use garden_signer::{ItemState, SettlementKey, Signer, SubmitConfig, Submitter, UsageInput};
use garden_wire::Domain;
use serde_json::{json, Value};

const PRICE: u128 = 3;
const QTY: u64 = 5;

/// The consumer's signer: its founder attestation key and the `signer` test account's
/// chain key, each in its own owner-only file under `dir`.
struct Site {
    dir: tempfile::TempDir,
    wallet: Wallet,
    chain_id: String,
    contract: String,
}

impl Site {
    fn new(chain: &Chain, m: &Market) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let seed = founder("consumer")?.attestation_key()?.to_bytes();
        SettlementKey::import(&dir.path().join("settlement.key"), &seed)?;
        let account = dir.path().join("account.key");
        write_0600(&account, test_mnemonic("signer")?.as_bytes())?;
        let wallet = Wallet::load(&account)?;
        assert_eq!(wallet.address, m.submitter.address);
        Ok(Site {
            dir,
            wallet,
            chain_id: chain.config.chain_id.clone(),
            contract: m.deployment.settlement.to_string(),
        })
    }

    /// Opens the queue (as a restarted process would: the key loaded from its file).
    fn open(&self) -> anyhow::Result<Signer> {
        let key = SettlementKey::load(&self.dir.path().join("settlement.key"))?;
        let domain = Domain {
            chain_id: &self.chain_id,
            contract: &self.contract,
        };
        Ok(Signer::open(
            &self.dir.path().join("queue.redb"),
            key,
            &domain,
        )?)
    }
}

fn usage(m: &Market, now: u64, i: u64) -> UsageInput {
    UsageInput {
        provider: m.provider.address.to_string(),
        consumer: m.consumer.address.to_string(),
        resource_id: format!("vm-{i}"),
        quantity: QTY,
        unit: Market::UNIT.into(),
        price_ref: Market::KIND.into(),
        max_unit_price: PRICE,
        period_start: now - 60,
        period_end: now - 1,
    }
}

async fn paid(chain: &Chain, m: &Market) -> anyhow::Result<u128> {
    let v: Value = chain
        .query(
            &m.deployment.settlement,
            &json!({"paid": {"consumer": m.consumer.address.to_string(), "provider": m.provider.address.to_string()}}),
        )
        .await?;
    Ok(v.as_str().unwrap_or("0").parse()?)
}

async fn open_market(chain: &Chain, label: &str, items: u64) -> anyhow::Result<Market> {
    let m = Market::open(chain, label, PRICE, items as u128 * QTY as u128 * PRICE * 2).await?;
    // Attestations are judged at signed_at: sign after the founders' admission block.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(m)
}

fn config(m: &Market) -> SubmitConfig {
    SubmitConfig::new(m.deployment.settlement.clone())
}

#[tokio::test]
async fn signed_usage_is_paid_exactly_once() -> anyhow::Result<()> {
    let n: u64 = std::env::var("GARDEN_SUBMIT_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let m = open_market(&chain, "submit-e2e", n).await?;
    let site = Site::new(&chain, &m)?;
    let signer = site.open()?;
    let now = unix_now();
    signer.sign_many((0..n).map(|i| usage(&m, now, i)).collect(), now)?;
    let provider = m.provider.address.to_string();
    let before = chain.balance(&provider, &chain.config.denom).await?;

    let mut cfg = config(&m);
    let knob = |k: &str| std::env::var(k).ok().and_then(|v| v.parse().ok());
    if let Some(v) = knob("GARDEN_SUBMIT_BATCH") {
        cfg.max_items = v;
    }
    if let Some(v) = knob("GARDEN_SUBMIT_PIPELINE") {
        cfg.pipeline = v;
    }
    let pipeline = cfg.pipeline;
    let t = Instant::now();
    let rep = Submitter::new(&signer, &chain, &site.wallet, cfg)
        .pass(unix_now(), true)
        .await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "submitted {n} items in {} batches (pipeline {pipeline}) in {secs:.1} s: {:.0} items/s, {:.1} tx/s, {} batches requeued (refused or deferred); gas used {} ({:.0} per item), wanted {}",
        rep.included,
        n as f64 / secs,
        rep.broadcast as f64 / secs,
        rep.requeued,
        rep.gas_used,
        rep.gas_used as f64 / n as f64,
        rep.gas_wanted
    );
    assert_eq!((rep.items_final, rep.items_refused, rep.pending), (n, 0, 0));
    let st = signer.stats(unix_now())?;
    assert_eq!((st.final_, st.signed, st.submitted), (n, 0, 0));
    let due = n as u128 * QTY as u128 * PRICE;
    assert_eq!(paid(&chain, &m).await?, due);
    assert_eq!(
        chain.balance(&provider, &chain.config.denom).await? - before,
        due
    );

    // A second pass has nothing to send and pays nothing more.
    let rep = Submitter::new(&signer, &chain, &site.wallet, config(&m))
        .pass(unix_now(), true)
        .await?;
    assert_eq!(rep.broadcast, 0);
    assert_eq!(paid(&chain, &m).await?, due);
    Ok(())
}

#[tokio::test]
async fn a_batch_broadcast_before_a_stop_is_confirmed_on_reopen_not_resent() -> anyhow::Result<()> {
    let n = 20;
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let m = open_market(&chain, "submit-restart-e2e", n).await?;
    let site = Site::new(&chain, &m)?;
    let now = unix_now();
    let (id, hash) = {
        let signer = site.open()?;
        signer.sign_many((0..n).map(|i| usage(&m, now, i)).collect(), now)?;
        let mut sub = Submitter::new(&signer, &chain, &site.wallet, config(&m));
        let sent = sub.broadcast_next(unix_now()).await?.expect("a batch");
        // The process stops here: the batch is `submitted` with its hash, unconfirmed.
        assert!(matches!(
            signer.batch(sent.0)?.unwrap().state,
            garden_signer::BatchState::Submitted { .. }
        ));
        sent
    };
    let signer = site.open()?;
    let rep = Submitter::new(&signer, &chain, &site.wallet, config(&m))
        .pass(unix_now(), true)
        .await?;
    assert_eq!(rep.broadcast, 0, "confirmed by its hash {hash}, not resent");
    assert_eq!((rep.included, rep.items_final), (1, n));
    for item in signer.items()? {
        assert_eq!(item.state, ItemState::Final { batch: id });
    }
    assert_eq!(paid(&chain, &m).await?, n as u128 * QTY as u128 * PRICE);
    Ok(())
}

#[tokio::test]
async fn a_copy_settled_first_makes_the_resubmission_a_harmless_duplicate() -> anyhow::Result<()> {
    let n = 10;
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let m = open_market(&chain, "submit-dup-e2e", n).await?;
    let site = Site::new(&chain, &m)?;
    let signer = site.open()?;
    let now = unix_now();
    signer.sign_many((0..n).map(|i| usage(&m, now, i)).collect(), now)?;
    // The provider got a copy of the attestations and settles them first.
    let copy: Vec<_> = signer.items()?.into_iter().map(|i| i.attestation).collect();
    let out = chain
        .execute(
            &m.provider,
            &m.deployment.settlement,
            &settle_msg(&copy)?,
            vec![],
        )
        .await?;
    assert_eq!(out.attribute("wasm", "settled"), Some("10"));
    let due = n as u128 * QTY as u128 * PRICE;
    assert_eq!(paid(&chain, &m).await?, due);

    // The signer's own submission is refused item by item (nonce already settled) and
    // recorded as settled: nothing is paid twice, nothing is counted twice.
    let rep = Submitter::new(&signer, &chain, &site.wallet, config(&m))
        .pass(unix_now(), true)
        .await?;
    assert_eq!(
        (rep.broadcast, rep.items_final, rep.items_refused),
        (1, n, 0)
    );
    let st = signer.stats(unix_now())?;
    assert_eq!((st.final_, st.refused, st.signed), (n, 0, 0));
    assert_eq!(paid(&chain, &m).await?, due);
    Ok(())
}

fn run_cli(site: &Site, args: &[&str], stdin: &str) -> anyhow::Result<Value> {
    use std::io::Write;
    let mut child = std::process::Command::new(signer_bin()?)
        .arg("--json")
        .args(args)
        .env("GARDEN_SIGNER_CONFIG", site.dir.path().join("signer.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().unwrap().write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "garden-signer {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::test]
async fn the_cli_signs_reports_and_submits_them() -> anyhow::Result<()> {
    let n = 5u64;
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let m = open_market(&chain, "submit-cli-e2e", n).await?;
    let site = Site::new(&chain, &m)?;
    write_config(&chain, &site)?;
    let now = unix_now();
    let reports: Vec<Value> = (0..n)
        .map(|i| {
            let u = usage(&m, now, i);
            json!({"provider": u.provider, "consumer": u.consumer, "resource_id": u.resource_id,
                "quantity": u.quantity, "unit": u.unit, "price_ref": u.price_ref,
                "max_unit_price": u.max_unit_price.to_string(),
                "period_start": u.period_start, "period_end": u.period_end})
        })
        .collect();
    let signed = run_cli(&site, &["sign"], &Value::Array(reports).to_string())?;
    assert_eq!(signed["signed"], n);
    let st = run_cli(&site, &["status"], "")?;
    assert_eq!(st["signed"], n);
    let out = run_cli(&site, &["submit", "--flush"], "")?;
    assert_eq!(out["pass"]["items_final"], n, "{out}");
    assert_eq!(out["queue"]["final"], n, "{out}");
    assert_eq!(paid(&chain, &m).await?, n as u128 * QTY as u128 * PRICE);
    Ok(())
}

#[tokio::test]
async fn a_sequence_moved_behind_the_submitters_back_is_resynced() -> anyhow::Result<()> {
    let n = 6u64;
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let m = open_market(&chain, "submit-seq-e2e", n).await?;
    let site = Site::new(&chain, &m)?;
    let signer = site.open()?;
    let mut sub = Submitter::new(&signer, &chain, &site.wallet, config(&m));
    let now = unix_now();
    signer.sign_many((0..n / 2).map(|i| usage(&m, now, i)).collect(), now)?;
    let rep = sub.pass(unix_now(), true).await?;
    assert_eq!(rep.items_final, n / 2);
    // Another transaction from the same account: the submitter's local sequence is stale.
    chain
        .execute(
            &site.wallet,
            &m.deployment.settlement,
            &json!({"deposit": {}}),
            vec![chain.coin(1)?],
        )
        .await?;
    let now = unix_now();
    signer.sign_many((n / 2..n).map(|i| usage(&m, now, i)).collect(), now)?;
    let rep = sub.pass(unix_now(), true).await?;
    // The stale sequence is caught by the simulation (re-read, simulated again) or, failing
    // that, by CheckTx (requeued, re-read, sent again in the same pass).
    println!("pass after a foreign transaction: {rep:?}");
    assert_eq!((rep.included, rep.items_final), (1, n / 2), "{rep:?}");
    assert!(rep.requeued <= 1, "{rep:?}");
    assert_eq!(signer.stats(unix_now())?.final_, n);
    assert_eq!(paid(&chain, &m).await?, n as u128 * QTY as u128 * PRICE);
    Ok(())
}

#[tokio::test]
async fn a_transaction_never_seen_past_its_timeout_height_is_requeued_and_sent_again(
) -> anyhow::Result<()> {
    let n = 4u64;
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let m = open_market(&chain, "submit-expiry-e2e", n).await?;
    let site = Site::new(&chain, &m)?;
    let signer = site.open()?;
    let now = unix_now();
    signer.sign_many((0..n).map(|i| usage(&m, now, i)).collect(), now)?;
    // A batch recorded as submitted whose transaction never reached the chain (the process
    // died between recording the hash and broadcasting), with a timeout height now past.
    let b = signer.next_batch(100, 0, now)?.expect("a batch");
    let h = chain.height().await?;
    signer.mark_submitted_until(b.id, &"AB".repeat(32), Some(h))?;
    let rep = Submitter::new(&signer, &chain, &site.wallet, config(&m))
        .pass(unix_now(), true)
        .await?;
    assert_eq!(
        signer.batch(b.id)?.unwrap().state,
        garden_signer::BatchState::Requeued {
            cause: garden_signer::RetryCause::TxExpired
        }
    );
    assert_eq!((rep.requeued, rep.broadcast, rep.items_final), (1, 1, n));
    assert_eq!(paid(&chain, &m).await?, n as u128 * QTY as u128 * PRICE);
    Ok(())
}

#[tokio::test]
async fn kill_9_of_the_submitting_process_loses_nothing_and_pays_nothing_twice(
) -> anyhow::Result<()> {
    let n = 40u64;
    let chain = Chain::connect(ChainConfig::load("garden-zone")?).await?;
    let m = open_market(&chain, "submit-kill-e2e", n).await?;
    let site = Site::new(&chain, &m)?;
    write_config(&chain, &site)?;
    {
        let signer = site.open()?;
        let now = unix_now();
        signer.sign_many((0..n).map(|i| usage(&m, now, i)).collect(), now)?;
    }
    // Batches of 2: twenty transactions, up to 4 in flight (the default pipeline); the
    // process is killed at pseudo-random instants (before, during and after broadcasts and
    // confirmations).
    let mut kills = 0;
    for cycle in 0..5u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos() as u64;
        let delay = Duration::from_millis(200 + (nanos + cycle * 977) % 1_300);
        let mut child = std::process::Command::new(signer_bin()?)
            .args(["--json", "--max-items", "2", "submit", "--flush"])
            .env("GARDEN_SIGNER_CONFIG", site.dir.path().join("signer.toml"))
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
    let out = run_cli(&site, &["submit", "--flush"], "")?;
    println!("{kills} kills; last pass: {out}");
    assert_eq!(out["queue"]["final"], n, "{out}");
    assert_eq!(out["queue"]["refused"], 0, "{out}");
    assert_eq!(paid(&chain, &m).await?, n as u128 * QTY as u128 * PRICE);
    Ok(())
}

fn write_config(chain: &Chain, site: &Site) -> anyhow::Result<()> {
    let cfg = format!(
        "rpc_url = \"{}\"\nchain_id = \"{}\"\ndenom = \"{}\"\ncontract = \"{}\"\nsettlement_key = \"{}\"\naccount_key = \"{}\"\nqueue = \"{}\"\n",
        chain.config.rpc_url,
        chain.config.chain_id,
        chain.config.denom,
        site.contract,
        site.dir.path().join("settlement.key").display(),
        site.dir.path().join("account.key").display(),
        site.dir.path().join("queue.redb").display(),
    );
    std::fs::write(site.dir.path().join("signer.toml"), cfg)?;
    Ok(())
}
