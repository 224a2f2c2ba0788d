//! Drain of a critical backlog to a connected peer, end to end over the network: prints
//! figures, asserts only that every entry was applied exactly once.
//!
//!     nice cargo run --release -p garden-sidecar --example dtn_drain
//!
//! Site A holds `GARDEN_BENCH_ENTRIES` critical entries (default 10 000, `GARDEN_BENCH_PAYLOAD`
//! bytes each, default 512) for B, pushed while B was away with `Handle::push_all` in
//! transactions of `GARDEN_BENCH_PUSH_BATCH` (default 1 000): persisted in redb, each sealed
//! with AES-256-GCM. Then B comes up, dials A and says hello (what the wake-up does), and A
//! drains: `due` (read + decrypt), batches of up to 256 entries on `/garden/dtn/1.0.0` (one
//! in flight per peer) over loopback TCP with the production transport (pnet + Noise +
//! Yamux); B hands each entry to its application (which counts it and says done), records
//! the batch in its inbox (`accept_all`, one transaction) and acknowledges; A removes the
//! acknowledged entries (`ack_all`, one transaction). The figure is from the hello to the last
//! acknowledgement at A.
//!
//! fsync policy: redb's default durability (`Immediate`), every commit fsynced before it
//! returns: one fsync per pushed transaction, and per drained batch one at B (inbox) and one
//! at A (outbox).
//!
//! `GARDEN_BENCH_SERVICE=1`: the same with the data plane's service on both sites (what a
//! site runs with NATS or the API): the backlog is `GARDEN_BENCH_ENTRIES` (default 1 000 in
//! this mode) resource creates made through A's service (each signed, applied to A's
//! catalogue, pushed: one transaction each), and B's application is its service, which
//! applies each delivered mutation to its catalogue in its own transaction before saying
//! done.

#[path = "support/links.rs"]
mod links;

use std::time::{Duration, Instant};

use garden_sidecar::config::Role;
use garden_sidecar::dtn::Outcome;
use links::*;

#[tokio::main]
async fn main() {
    init_tracing();
    let service = std::env::var("GARDEN_BENCH_SERVICE").as_deref() == Ok("1");
    let n = env_usize("GARDEN_BENCH_ENTRIES", if service { 1_000 } else { 10_000 });
    let size = env_usize("GARDEN_BENCH_PAYLOAD", 512);
    let per_tx = env_usize("GARDEN_BENCH_PUSH_BATCH", 1_000).max(1);
    let dir = Scratch::new("dtn-drain");
    if service {
        println!("dtn_drain: {n} resource creates through the service on both sites");
    } else {
        println!("dtn_drain: {n} critical entries of {size} B, pushed {per_tx} per transaction");
    }

    let (pa, pb) = (free_port(), free_port());
    let site = |port| {
        let mut c = config(&dir.0, Role::Node, port, None, &[], 20);
        if service {
            c.api.listen = "127.0.0.1:0".into();
        }
        c
    };
    let a = start(&site(pa), pa).await;
    let plane = a.app.data_plane.clone().expect("A's data plane");
    // (With the service on, this takes its outcomes over: without NATS it only drops them.)
    let mut outcomes = plane.watch(n + 16).await.expect("watch");
    // B's identity is needed to address entries before it runs: start it, stop it (its
    // files stay), push, start it again over the same files.
    let b_cfg = site(pb);
    let b0 = start(&b_cfg, pb).await;
    let b_id = b0.id.clone();
    b0.app.shutdown().await;

    let t = Instant::now();
    if service {
        let ops = a.app.ops.clone().expect("A's service");
        let partner = garden_sidecar::resources::Did::of(&b_id);
        for i in 0..n {
            let body = serde_json::json!({
                "id": format!("r-{i}"), "kind": "compute", "name": "GPU box",
                "capacity": 4, "unit": "gpu",
                "visibility": {"partners": [partner.as_str()]},
            });
            let req = garden_sidecar::events::request::parse_request(
                garden_sidecar::events::subjects::Inbound::Create,
                body.to_string().as_bytes(),
                ops.me(),
            )
            .expect("a create");
            let r = ops.call(req).await;
            assert!(r.error.is_none(), "{}", r.value);
        }
    } else {
        let mut k = 0;
        while k < n {
            let batch: Vec<_> = (k..(k + per_tx).min(n))
                .map(|i| entry(b_id.peer_id(), "drain", i, size))
                .collect();
            k += batch.len();
            for r in plane.push_all(batch).await.expect("pushed") {
                r.expect("queued");
            }
        }
    }
    let pushed = t.elapsed();
    let depth = plane.stats().await.unwrap().outbox.depth;
    assert_eq!(depth, n);

    let app = garden_sidecar::app::App::launch(
        b_id.clone(),
        libp2p::pnet::PreSharedKey::new([42u8; 32]),
        &b_cfg,
        garden_sidecar::app::Launch {
            clock: garden_sidecar::time::Clock::system(),
            ..Default::default()
        },
        |_| {},
    )
    .await
    .expect("B starts again");
    let mut b = Site {
        app,
        id: b_id,
        port: pb,
    };
    // Without the service, the harness is B's application; with it, the service is.
    let applied = (!service).then(|| apply_all(&mut b));
    b.app.client.dial(a.addr()).await.expect("B dials A");
    let t0 = Instant::now();
    b.app
        .data_plane
        .as_ref()
        .unwrap()
        .wake(vec![a.peer()])
        .await
        .expect("hello");
    let mut acked = 0;
    let mut first = None;
    while acked < n {
        match tokio::time::timeout(Duration::from_secs(120), outcomes.recv()).await {
            Ok(Some(Outcome::Delivered { .. })) => {
                acked += 1;
                first.get_or_insert_with(Instant::now);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("the drain stalled at {acked} of {n}"),
        }
    }
    let drained = t0.elapsed();
    if let Some(applied) = &applied {
        assert_eq!(applied.total(), n, "every entry applied");
        assert_eq!(applied.twice(), 0, "none applied twice");
    }
    let (sa, sb) = (
        plane.stats().await.unwrap(),
        b.app.data_plane.as_ref().unwrap().stats().await.unwrap(),
    );
    let first = first.unwrap().duration_since(t0);
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| push (persist + seal), {} | {:.0} msg/s ({:.2} s) |",
        if service {
            "one create per transaction".to_string()
        } else {
            format!("{per_tx} per transaction")
        },
        n as f64 / pushed.as_secs_f64(),
        pushed.as_secs_f64()
    );
    println!(
        "| **drain end to end** (hello → last ack at A) | **{:.0} msg/s** ({:.2} s) |",
        n as f64 / drained.as_secs_f64(),
        drained.as_secs_f64()
    );
    println!(
        "| first acknowledgement after the hello | {:.1} ms |",
        first.as_secs_f64() * 1e3
    );
    println!(
        "| batches | {} ({:.0} entries each) |",
        n.div_ceil(256),
        n as f64 / n.div_ceil(256) as f64
    );
    println!(
        "| A acked / failed batches; B delivered / duplicates | {} / {} ; {} / {} |",
        sa.acked, sa.failed_batches, sb.delivered, sb.duplicates
    );
    a.app.shutdown().await;
    b.app.shutdown().await;
}
