//! `garden search`: starts an ephemeral client node (fresh identity, no published records)
//! with the configured PSK and seeds, runs one search and prints hits as they arrive.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::ConfigArgs;
use crate::app::App;
use crate::discovery::record::Verified;
use crate::discovery::search::Needle;
use crate::keys::{self, NodeIdentity};
use crate::membership::PeerInfo;
use crate::time::Clock;

/// Search by name (substring), DID (`did:key:…`) or peer id.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name, DID or peer id to look for.
    pub needle: String,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Stop after this many seconds without a new hit [default: discovery.search_idle_timeout_secs].
    #[arg(long)]
    pub idle: Option<u64>,
    /// One JSON object per hit instead of text.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn run(args: Args) -> anyhow::Result<()> {
    let (app, mut hits) = start(&args).await?;
    let mut n = 0;
    while let Some(v) = hits.recv().await {
        n += 1;
        if args.json {
            println!("{}", to_json(&v));
        } else {
            println!("{}  {}  {}", v.body.name, v.peer_id, v.body.did);
            for a in v.addrs() {
                println!("    {a}");
            }
        }
    }
    if !args.json {
        eprintln!("{n} result(s)");
    }
    app.shutdown().await;
    Ok(())
}

/// Starts the ephemeral client and its search; the hits arrive on the receiver, which closes
/// after `idle` without a new one. The caller shuts the app down.
pub(super) async fn start(
    args: &Args,
) -> anyhow::Result<(App, tokio::sync::mpsc::Receiver<Verified>)> {
    let mut cfg = args.config.load()?;
    // A one-shot command: only warnings unless RUST_LOG asks for more.
    cfg.log.filter = "warn".into();
    super::init_tracing(&cfg.log);
    anyhow::ensure!(
        !cfg.network.seeds.is_empty(),
        "no seeds configured (network.seeds)"
    );
    cfg.network.role = crate::config::Role::Node;
    // Results come back over the connections this client dials; it never needs to be
    // reachable, so it listens on loopback only.
    cfg.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    // An ephemeral client holds nothing for anyone.
    cfg.data_plane.enabled = false;
    let psk = keys::load_psk(&cfg.identity.psk_file)
        .with_context(|| format!("loading {}", cfg.identity.psk_file.display()))?;
    let identity = Arc::new(NodeIdentity::generate());
    let app = App::start_with_clock(identity, psk, &cfg, Clock::system(), |nc| {
        nc.settings.publish = false
    })
    .await?;
    let needle = Needle::parse(&args.needle).context("parsing the needle")?;
    let idle = Duration::from_secs(args.idle.unwrap_or(cfg.discovery.search_idle_timeout_secs));
    // Give the seed connections a moment: wait for the first dial to a seed.
    for seed in &cfg.network.seeds {
        if let Ok(addr) = seed.parse() {
            let _ = tokio::time::timeout(Duration::from_secs(10), app.client.dial(addr)).await;
        }
    }
    // Indexers cannot reach this ephemeral client (it publishes no record and listens on
    // loopback): find them in the DHT registry and ask each directly, so every indexer's
    // answer arrives, not only those of the seeds it is connected to.
    let indexers = app
        .client
        .discover_indexers()
        .await
        .map(|found| {
            found
                .into_iter()
                .map(|c| PeerInfo::new(c.peer_id, c.addrs))
                .collect()
        })
        .unwrap_or_default();
    let hits = app.client.search_at(needle, idle, indexers).await?;
    Ok((app, hits))
}

/// One hit as the JSON object both `search --json` and `peers --json` print.
pub(super) fn to_json(v: &Verified) -> serde_json::Value {
    serde_json::json!({
        "peer_id": v.peer_id.to_string(),
        "did": v.body.did,
        "name": v.body.name,
        "addrs": v.addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "expires_at_ms": v.body.expires_at_ms,
        "location": v.body.location.map(|l| serde_json::json!({
            "granularity": l.granularity, "latitude": l.latitude, "longitude": l.longitude
        })),
        "profile": v.body.links.profile.unwrap_or_default(),
        "master": v.body.links.master,
        "nanos": v.body.links.nanos,
    })
}
