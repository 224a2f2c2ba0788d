//! `garden-signer`: the settlement signer's command line.
//!
//! * `keygen <path>` / `pubkey <path>`: create / show the settlement (attestation) key.
//! * `sign [--file F]`: sign usage reports (one JSON object or an array; stdin by default)
//!   into the queue. Offline: needs no chain.
//! * `submit [--watch] [--flush]`: send due batches to the settlement contract and confirm them.
//! * `take`: sign the usage a sidecar confirmed (`--usage-from` its API, `--partners` the
//!   DID → member address file) into the queue; `submit --watch` also takes at each pass.
//! * `status`: queue counts.
//! * `queue [--state S] [--limit N]`: the queued attestations, newest first.
//! * `query JSON`: a smart query of `--contract` over `--rpc-url` (settlement, gateway or
//!   consortium; point the flags at the settlement chain to read payments there).
//!
//! Settings come from flags, else `GARDEN_SIGNER_*` environment variables (a namespace the sidecar's `GARDEN_<SECTION>_<KEY>` overrides leave alone), else the TOML config
//! file (`--config`, `GARDEN_SIGNER_CONFIG`), whose keys are the flag names with `_`:
//! `rpc_url`, `chain_id`, `denom`, `contract`, `target`, `settlement_key`, `account_key`, `queue`,
//! `gas_price`, `fee_denom`, `gas_adjustment`, `max_items`, `max_age`, `pipeline`, `usage_from`,
//! `partners`, `copy_grace`. `--json` prints one
//! JSON object per command (per pass with `--watch`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use garden_signer::chain::{Chain, Endpoint, Wallet};
use garden_signer::take::{take, Desk, Partners, TakeReport};
use garden_signer::{
    ItemState, SettlementKey, Signer, Stats, SubmitConfig, Submitter, Target, UsageInput,
};
use garden_wire::Domain;
use serde::Deserialize;
use serde_json::json;

#[derive(Parser)]
#[command(name = "garden-signer", about = "Garden settlement signer")]
struct Cli {
    /// TOML config file.
    #[arg(long, env = "GARDEN_SIGNER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    #[arg(long, env = "GARDEN_SIGNER_RPC_URL", global = true)]
    rpc_url: Option<String>,
    #[arg(long, env = "GARDEN_SIGNER_CHAIN_ID", global = true)]
    chain_id: Option<String>,
    /// Native denom of the settlement chain.
    #[arg(long, env = "GARDEN_SIGNER_DENOM", global = true)]
    denom: Option<String>,
    /// Settlement contract address, or the zone's gateway with `--target gateway`. It is
    /// also the attestations' signing domain: a queue stays bound to one contract.
    #[arg(long, env = "GARDEN_SIGNER_CONTRACT", global = true)]
    contract: Option<String>,
    /// What `--contract` is: `settlement` (single-chain mode, default) or `gateway` (IBC
    /// mode: the gateway forwards batches to the settlement chain).
    #[arg(long, value_enum, env = "GARDEN_SIGNER_TARGET", global = true)]
    target: Option<Target>,
    /// Settlement (Ed25519 attestation) key file, mode 0600.
    #[arg(long, env = "GARDEN_SIGNER_SETTLEMENT_KEY", global = true)]
    settlement_key: Option<PathBuf>,
    /// Chain account (secp256k1) key file, mode 0600: 32 raw bytes or a BIP-39 mnemonic.
    #[arg(long, env = "GARDEN_SIGNER_ACCOUNT_KEY", global = true)]
    account_key: Option<PathBuf>,
    /// Queue database (redb).
    #[arg(long, env = "GARDEN_SIGNER_QUEUE", global = true)]
    queue: Option<PathBuf>,
    /// Fee per unit of gas, in `fee_denom` base units (default 0).
    #[arg(long, env = "GARDEN_SIGNER_GAS_PRICE", global = true)]
    gas_price: Option<f64>,
    #[arg(long, env = "GARDEN_SIGNER_FEE_DENOM", global = true)]
    fee_denom: Option<String>,
    /// Multiplier on simulated gas, clamped to 1.0..=3.0 (default 1.3).
    #[arg(long, env = "GARDEN_SIGNER_GAS_ADJUSTMENT", global = true)]
    gas_adjustment: Option<f64>,
    /// Items per batch (default 1 000; bounded by the contract's max_batch).
    #[arg(long, env = "GARDEN_SIGNER_MAX_ITEMS", global = true)]
    max_items: Option<usize>,
    /// Seconds before a smaller batch leaves (default 30).
    #[arg(long, env = "GARDEN_SIGNER_MAX_AGE", global = true)]
    max_age: Option<u64>,
    /// Batches broadcast before confirming them (default 4; 1 = one at a time).
    #[arg(long, env = "GARDEN_SIGNER_PIPELINE", global = true)]
    pipeline: Option<usize>,
    /// Seconds a held copy of a consumer's attestation waits for the consumer's signer
    /// before this signer submits it itself (default 3 600).
    #[arg(long, env = "GARDEN_SIGNER_COPY_GRACE", global = true)]
    copy_grace: Option<u64>,
    /// A sidecar's operator API (`http://127.0.0.1:7450`) to take confirmed usage from
    /// (`take`, and each pass of `submit --watch`).
    #[arg(long, env = "GARDEN_SIGNER_USAGE_FROM", global = true)]
    usage_from: Option<String>,
    /// Partners file (TOML, `[sites]` DID = member address) that names the members behind
    /// the sidecar's DIDs, this site's own included.
    #[arg(long, env = "GARDEN_SIGNER_PARTNERS", global = true)]
    partners: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a settlement key file (0600) and print its public key (hex).
    Keygen { path: PathBuf },
    /// Print the public key (hex) of a settlement key file.
    Pubkey { path: PathBuf },
    /// Sign usage reports (JSON object or array) into the queue.
    Sign {
        /// Read from this file instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Take the usage a sidecar confirmed (`--usage-from`) into the queue: sign each one
    /// with the members the partners file names, then tell the sidecar. Offline from the
    /// chain; repeat-safe (a usage signed before is recognised by its booking).
    Take,
    /// List queued attestations (newest first).
    Queue {
        /// Only items in this state.
        #[arg(long, value_enum)]
        state: Option<StateFilter>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Smart-query `--contract` over `--rpc-url`, e.g.
    /// `'{"paid":{"consumer":"wasm1…","provider":"wasm1…"}}'` or `'{"escrow":{"consumer":"wasm1…"}}'`
    /// on the settlement contract, `'{"item":{"signer":"<base64>","nonce":N}}'` on the gateway.
    Query {
        /// The query message (JSON).
        msg: String,
    },
    /// Submit due batches and confirm them.
    Submit {
        /// Keep running: one pass every `--interval` seconds.
        #[arg(long)]
        watch: bool,
        #[arg(long, default_value_t = 5)]
        interval: u64,
        /// Send every signed item now, regardless of batch age.
        #[arg(long)]
        flush: bool,
    },
    /// Queue counts.
    Status,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StateFilter {
    Signed,
    Batched,
    Submitted,
    Relayed,
    Final,
    Refused,
}

fn state_name(s: &ItemState) -> (&'static str, Option<u64>, Option<u32>) {
    match *s {
        ItemState::Signed => ("signed", None, None),
        ItemState::Batched { batch } => ("batched", Some(batch), None),
        ItemState::Submitted { batch } => ("submitted", Some(batch), None),
        ItemState::Relayed { batch } => ("relayed", Some(batch), None),
        ItemState::Final { batch } => ("final", Some(batch), None),
        ItemState::Refused { batch, code } => ("refused", Some(batch), Some(code)),
    }
}

fn queue_cmd(
    c: &FileConfig,
    json_out: bool,
    state: Option<StateFilter>,
    limit: usize,
) -> Result<()> {
    let items = open_queue(c)?.items()?;
    let want = state.map(|f| match f {
        StateFilter::Signed => "signed",
        StateFilter::Batched => "batched",
        StateFilter::Submitted => "submitted",
        StateFilter::Relayed => "relayed",
        StateFilter::Final => "final",
        StateFilter::Refused => "refused",
    });
    let rows: Vec<_> = items
        .iter()
        .rev()
        .filter(|i| want.is_none_or(|w| state_name(&i.state).0 == w))
        .take(limit)
        .collect();
    if json_out {
        let v: Vec<_> = rows
            .iter()
            .map(|i| {
                let (state, batch, code) = state_name(&i.state);
                let a = &i.attestation;
                json!({"nonce": i.nonce, "state": state, "batch": batch, "code": code,
                    "provider": a.provider, "consumer": a.consumer, "resource_id": a.resource_id,
                    "quantity": a.quantity, "unit": a.unit, "signed_at": a.signed_at})
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    println!(
        "{:<20} {:<9} {:>6} {:>4} {:>10} {:<16} {:<24}",
        "NONCE", "STATE", "BATCH", "CODE", "QUANTITY", "UNIT", "RESOURCE"
    );
    for i in rows {
        let (state, batch, code) = state_name(&i.state);
        let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let a = &i.attestation;
        println!(
            "{:<20} {:<9} {:>6} {:>4} {:>10} {:<16} {:<24}",
            i.nonce,
            state,
            dash(batch.map(|b| b.to_string())),
            dash(code.map(|c| c.to_string())),
            a.quantity,
            a.unit,
            a.resource_id
        );
    }
    Ok(())
}

async fn query_cmd(c: &FileConfig, msg: &str) -> Result<()> {
    let q: serde_json::Value =
        serde_json::from_str(msg).with_context(|| format!("the query is not JSON: {msg}"))?;
    let chain = Chain::connect(Endpoint {
        chain_id: need(&c.chain_id, "chain_id")?.clone(),
        denom: c.denom.clone().unwrap_or_default(),
        rpc_url: need(&c.rpc_url, "rpc_url")?.clone(),
    })
    .await?;
    let contract = need(&c.contract, "contract")?
        .parse()
        .map_err(|e| anyhow!("contract address: {e}"))?;
    let v: serde_json::Value = chain.query(&contract, &q).await?;
    println!("{v}");
    Ok(())
}

/// The config file (every key optional).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    rpc_url: Option<String>,
    chain_id: Option<String>,
    denom: Option<String>,
    contract: Option<String>,
    target: Option<Target>,
    settlement_key: Option<PathBuf>,
    account_key: Option<PathBuf>,
    queue: Option<PathBuf>,
    gas_price: Option<f64>,
    fee_denom: Option<String>,
    gas_adjustment: Option<f64>,
    max_items: Option<usize>,
    max_age: Option<u64>,
    pipeline: Option<usize>,
    usage_from: Option<String>,
    partners: Option<PathBuf>,
    copy_grace: Option<u64>,
}

/// Flags and environment over the file.
fn merge(cli: &Cli) -> Result<FileConfig> {
    let f: FileConfig = match &cli.config {
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("parsing {}", p.display()))?,
        None => FileConfig::default(),
    };
    Ok(FileConfig {
        rpc_url: cli.rpc_url.clone().or(f.rpc_url),
        chain_id: cli.chain_id.clone().or(f.chain_id),
        denom: cli.denom.clone().or(f.denom),
        contract: cli.contract.clone().or(f.contract),
        target: cli.target.or(f.target),
        settlement_key: cli.settlement_key.clone().or(f.settlement_key),
        account_key: cli.account_key.clone().or(f.account_key),
        queue: cli.queue.clone().or(f.queue),
        gas_price: cli.gas_price.or(f.gas_price),
        fee_denom: cli.fee_denom.clone().or(f.fee_denom),
        gas_adjustment: cli.gas_adjustment.or(f.gas_adjustment),
        max_items: cli.max_items.or(f.max_items),
        max_age: cli.max_age.or(f.max_age),
        pipeline: cli.pipeline.or(f.pipeline),
        usage_from: cli.usage_from.clone().or(f.usage_from),
        partners: cli.partners.clone().or(f.partners),
        copy_grace: cli.copy_grace.or(f.copy_grace),
    })
}

fn need<'a, T>(v: &'a Option<T>, name: &str) -> Result<&'a T> {
    v.as_ref().ok_or_else(|| {
        anyhow!(
            "missing setting {name}: pass --{} or set GARDEN_SIGNER_{} or put `{name}` in the config file",
            name.replace('_', "-"),
            name.to_uppercase()
        )
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn open_queue(c: &FileConfig) -> Result<Signer> {
    let key = SettlementKey::load(need(&c.settlement_key, "settlement_key")?)?;
    let domain = Domain {
        chain_id: need(&c.chain_id, "chain_id")?,
        contract: need(&c.contract, "contract")?,
    };
    Ok(Signer::open(need(&c.queue, "queue")?, key, &domain)?)
}

/// A usage report as JSON: the fields of [`UsageInput`]; `max_unit_price` may be a number
/// (up to u64) or a decimal string (u128).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    provider: String,
    consumer: String,
    resource_id: String,
    quantity: u64,
    unit: String,
    price_ref: String,
    max_unit_price: serde_json::Value,
    period_start: u64,
    period_end: u64,
}

fn parse_reports(text: &str) -> Result<Vec<UsageInput>> {
    let v: serde_json::Value = serde_json::from_str(text).context("usage report JSON")?;
    let reports: Vec<Report> = match v {
        serde_json::Value::Array(_) => serde_json::from_value(v),
        one => serde_json::from_value(one).map(|r| vec![r]),
    }
    .context("usage report")?;
    reports
        .into_iter()
        .map(|r| {
            let max_unit_price = match &r.max_unit_price {
                serde_json::Value::Number(n) if n.is_u64() => n.as_u64().unwrap_or(0) as u128,
                serde_json::Value::String(s) => {
                    s.parse().with_context(|| format!("max_unit_price '{s}'"))?
                }
                other => {
                    bail!("max_unit_price must be an integer or a decimal string, not {other}")
                }
            };
            Ok(UsageInput {
                provider: r.provider,
                consumer: r.consumer,
                resource_id: r.resource_id,
                quantity: r.quantity,
                unit: r.unit,
                price_ref: r.price_ref,
                max_unit_price,
                period_start: r.period_start,
                period_end: r.period_end,
            })
        })
        .collect()
}

fn stats_json(s: &Stats) -> serde_json::Value {
    json!({"signed": s.signed, "batched": s.batched, "submitted": s.submitted,
        "relayed": s.relayed, "final": s.final_, "refused": s.refused,
        "oldest_signed_age": s.oldest_signed_age, "oldest_pending_age": s.oldest_pending_age})
}

async fn submit(
    c: &FileConfig,
    json_out: bool,
    watch: bool,
    interval: u64,
    flush: bool,
) -> Result<()> {
    let signer = open_queue(c)?;
    let wallet = Wallet::load(need(&c.account_key, "account_key")?)?;
    let chain = Chain::connect(Endpoint {
        chain_id: need(&c.chain_id, "chain_id")?.clone(),
        denom: need(&c.denom, "denom")?.clone(),
        rpc_url: need(&c.rpc_url, "rpc_url")?.clone(),
    })
    .await?;
    let contract = need(&c.contract, "contract")?
        .parse()
        .map_err(|e| anyhow!("contract address: {e}"))?;
    let mut cfg = SubmitConfig::new(contract);
    cfg.target = c.target.unwrap_or_default();
    if let Some(v) = c.max_items {
        cfg.max_items = v;
    }
    if let Some(v) = c.max_age {
        cfg.max_age = v;
    }
    if let Some(v) = c.pipeline {
        cfg.pipeline = v;
    }
    if let Some(v) = c.gas_adjustment {
        cfg.gas.adjustment = v;
    }
    if let Some(v) = c.gas_price {
        cfg.gas_price = v;
    }
    cfg.fee_denom = c.fee_denom.clone();
    if let Some(v) = c.copy_grace {
        cfg.copy_grace = v;
    }
    let grace = cfg.copy_grace;
    let mut sub = Submitter::new(&signer, &chain, &wallet, cfg);
    // A backlog drains with a progress bar on a terminal (never in --json output).
    let backlog = {
        let s = signer.stats(now())?;
        s.signed + s.batched + s.submitted + s.relayed
    };
    let bar = (!json_out && backlog > 0 && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| {
            let b = indicatif::ProgressBar::new(backlog);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {pos}/{len} attestations settled or refused [{bar:30}] {eta} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
    let done0 = {
        let s = signer.stats(now())?;
        s.final_ + s.refused
    };
    if let Some(b) = &bar {
        sub.on_progress(b.clone(), done0);
    }
    let taker = match &c.usage_from {
        Some(_) => Some(taker(c)?),
        None => None,
    };
    loop {
        if let Some((desk, partners)) = &taker {
            match take(&signer, desk, partners, now()).await {
                Ok(t) => print_take(&t, json_out),
                Err(e) if watch => eprintln!("garden-signer: taking usage failed: {e:#}"),
                Err(e) => return Err(e),
            }
        }
        let rep = sub.pass(now(), flush).await;
        // The copies this site holds as provider: forgotten once settled, submitted by us
        // once the consumer's signer let the grace pass.
        let copies = match sub.settle_copies(now(), grace).await {
            Ok(c) => Some(c),
            Err(e) if watch => {
                eprintln!("garden-signer: held copies not settled: {e:#}");
                None
            }
            Err(e) => return Err(e),
        };
        let stats = signer.stats(now())?;
        if let Some(b) = &bar {
            b.set_position((stats.final_ + stats.refused).saturating_sub(done0));
            b.set_message(format!("{} relayed", stats.relayed));
        }
        match rep {
            Ok(rep) if json_out => println!(
                "{}",
                json!({"pass": serde_json::to_value(&rep)?, "copies": copies, "queue": stats_json(&stats)})
            ),
            Ok(rep) => {
                println!(
                "broadcast {} batches, {} included ({} items final, {} relayed, {} released, {} refused), {} requeued, {} pending; queue: {} signed, {} submitted, {} relayed, {} final, {} refused",
                rep.broadcast, rep.included, rep.items_final, rep.items_relayed, rep.items_released,
                rep.items_refused, rep.requeued, rep.pending, stats.signed, stats.submitted,
                stats.relayed, stats.final_, stats.refused
            );
                if let Some(c) = copies.filter(|c| c.settled + c.submitted + c.expired > 0) {
                    println!(
                        "held copies: {} settled and forgotten, {} submitted, {} waiting, {} given up (past the contract's window)",
                        c.settled, c.submitted, c.waiting, c.expired
                    );
                }
                if let Some(r) = &rep.last_refusal {
                    eprintln!("garden-signer: last refusal: {r}");
                }
            }
            Err(e) if watch => eprintln!("garden-signer: pass failed: {e:#}"),
            Err(e) => return Err(e),
        }
        if !watch {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
    }
}

fn taker(c: &FileConfig) -> Result<(Desk, Partners)> {
    Ok((
        Desk::new(need(&c.usage_from, "usage_from")?)?,
        Partners::load(need(&c.partners, "partners")?)?,
    ))
}

fn print_take(t: &TakeReport, json_out: bool) {
    if json_out {
        println!("{}", json!({"take": t}));
        return;
    }
    if t.listed > 0 {
        println!(
            "took {} confirmed usages: {} signed, {} signed before, {} with nothing to pay, {} left",
            t.listed,
            t.signed.len(),
            t.already.len(),
            t.nothing.len(),
            t.left.len()
        );
    }
    if !t.copies_held.is_empty() {
        println!(
            "holding {} attestation copies as provider",
            t.copies_held.len()
        );
    }
    for (id, why) in &t.copies_discarded {
        eprintln!("garden-signer: attestation copy {id} discarded: {why}");
    }
    for (id, why) in &t.left {
        eprintln!("garden-signer: usage {id} left in the sidecar: {why}");
    }
    for (id, why) in &t.untold {
        eprintln!(
            "garden-signer: usage {id} signed, the sidecar not told (taken again next time): {why}"
        );
    }
}

fn key_cmd(path: &Path, create: bool) -> Result<()> {
    let k = if create {
        SettlementKey::keygen(path)?
    } else {
        SettlementKey::load(path)?
    };
    println!("{}", hex(&k.public_key()));
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    let c = merge(&cli)?;
    match &cli.cmd {
        Cmd::Keygen { path } => key_cmd(path, true),
        Cmd::Pubkey { path } => key_cmd(path, false),
        Cmd::Sign { file } => {
            let text = match file {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?,
                None => std::io::read_to_string(std::io::stdin()).context("reading stdin")?,
            };
            let inputs = parse_reports(&text)?;
            if inputs.is_empty() {
                bail!("no usage report in the input");
            }
            let signer = open_queue(&c)?;
            let items = signer.sign_many(inputs, now())?;
            if cli.json {
                let nonces: Vec<u64> = items.iter().map(|i| i.nonce).collect();
                println!("{}", json!({"signed": items.len(), "nonces": nonces}));
            } else {
                println!("signed {} attestations", items.len());
            }
            Ok(())
        }
        Cmd::Submit {
            watch,
            interval,
            flush,
        } => submit(&c, cli.json, *watch, *interval, *flush).await,
        Cmd::Take => {
            let signer = open_queue(&c)?;
            let (desk, partners) = taker(&c)?;
            // Every page the sidecar lists, in one report.
            let t = take(&signer, &desk, &partners, now()).await?;
            print_take(&t, cli.json);
            Ok(())
        }
        Cmd::Queue { state, limit } => queue_cmd(&c, cli.json, *state, *limit),
        Cmd::Query { msg } => query_cmd(&c, msg).await,
        Cmd::Status => {
            let s = open_queue(&c)?.stats(now())?;
            if cli.json {
                println!("{}", stats_json(&s));
            } else {
                let age = |a: Option<u64>| a.map_or("-".to_string(), |a| format!("{a} s"));
                println!(
                    "signed {}, batched {}, submitted {}, relayed {}, final {}, refused {}; oldest signed {}, oldest pending {}",
                    s.signed, s.batched, s.submitted, s.relayed, s.final_, s.refused,
                    age(s.oldest_signed_age), age(s.oldest_pending_age)
                );
            }
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("garden-signer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse_as_one_or_many_with_price_as_number_or_string() {
        let one = r#"{"provider":"p","consumer":"c","resource_id":"r","quantity":2,"unit":"u",
            "price_ref":"k","max_unit_price":"340282366920938463463374607431768211455","period_start":1,"period_end":2}"#;
        let v = parse_reports(one).unwrap();
        assert_eq!(v[0].max_unit_price, u128::MAX);
        let many = format!(
            "[{}, {}]",
            one,
            one.replace("\"340282366920938463463374607431768211455\"", "7")
        );
        let v = parse_reports(&many).unwrap();
        assert_eq!((v.len(), v[1].max_unit_price), (2, 7));
        assert!(parse_reports(r#"{"provider":"p"}"#).is_err());
    }

    #[test]
    fn flags_and_env_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("signer.toml");
        std::fs::write(&p, "chain_id = \"file\"\nmax_items = 10\nqueue = \"/q\"\n").unwrap();
        let cli = Cli::try_parse_from([
            "garden-signer",
            "--config",
            p.to_str().unwrap(),
            "--chain-id",
            "flag",
            "status",
        ])
        .unwrap();
        let c = merge(&cli).unwrap();
        assert_eq!(c.chain_id.as_deref(), Some("flag"));
        assert_eq!(c.max_items, Some(10));
        assert_eq!(c.queue, Some(PathBuf::from("/q")));
        let e = need(&c.contract, "contract").unwrap_err().to_string();
        assert!(
            e.contains("--contract") && e.contains("GARDEN_SIGNER_CONTRACT"),
            "{e}"
        );
    }
}
