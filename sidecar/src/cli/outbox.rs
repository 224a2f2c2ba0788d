//! `garden outbox`: what the DTN outbox holds for which peers, from the running sidecar's
//! operator API (`GET /v1/outbox`).

use serde_json::Value;

use super::client::{print, ApiArgs};
use super::human::{age, cell, table};

/// The outbox: entries waiting for each peer (critical: on disk, retried until expiry;
/// moderate: in memory, a few tries), the oldest one's age, and the running totals.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub api: ApiArgs,
}

pub(super) async fn run(args: Args) -> anyhow::Result<()> {
    let answer = args.api.client()?.get("/v1/outbox").await?;
    print(&args.api, answer, show)
}

fn show(v: &Value) {
    let oldest = v["oldest_age_ms"]
        .as_u64()
        .map(age)
        .unwrap_or_else(|| "-".into());
    println!(
        "entries {} ({} critical, {} moderate), oldest {oldest}",
        cell(&v["depth"]),
        cell(&v["critical"]),
        cell(&v["moderate"]),
    );
    let t = &v["totals"];
    println!(
        "acked {}  expired {}  dropped {}  corrupted {}  refused {}  failed batches {}",
        cell(&t["acked"]),
        cell(&t["expired"]),
        cell(&t["dropped"]),
        cell(&t["corrupted"]),
        cell(&t["refused"]),
        cell(&t["failed_batches"]),
    );
    let rows: Vec<Vec<String>> = v["per_peer"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            ["peer", "entries", "critical", "moderate"]
                .iter()
                .map(|k| cell(&p[*k]))
                .collect()
        })
        .collect();
    if !rows.is_empty() {
        println!();
        table(&["PEER", "ENTRIES", "CRITICAL", "MODERATE"], &rows);
    }
}
