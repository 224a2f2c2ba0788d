//! Senders to an intermittent destination through a scripted link: prints figures, asserts
//! only that every message was applied exactly once.
//!
//!     nice cargo run --release -p garden-sidecar --example dtn_ferry
//!
//! Garden's data plane has no relay hop yet (an entry goes from its sender to its
//! destination; the nano/master proxy is not a generic forwarder), so this measures what
//! exists: `GARDEN_BENCH_SENDERS` senders (default 2) each producing
//! `GARDEN_BENCH_MESSAGES` critical messages (default 10 000, `GARDEN_BENCH_PAYLOAD` bytes,
//! default 512) for one destination D that is reachable only through a contact proxy whose
//! link is up `GARDEN_BENCH_UP_MS` (default 2 000) out of every
//! `GARDEN_BENCH_UP_MS + GARDEN_BENCH_DOWN_MS` (down default 3 000). Senders produce at
//! `GARDEN_BENCH_RATE` messages per second each (default 2 000) in bursts of 100
//! (`Handle::push_all`: one transaction, one fsync), whatever the link does. D applies each
//! message (counts it by its tag) and says so; the plane records and acknowledges it.
//! Heartbeats every `GARDEN_BENCH_HEARTBEAT_SECS` (default 1). All in this process, on
//! loopback TCP with the production transport and the system clock; an indexer runs the
//! wake-up.

#[path = "../tests/common/contact.rs"]
mod contact;
#[path = "support/links.rs"]
mod links;

use std::time::{Duration, Instant};

use contact::{Contact, Plan};
use garden_sidecar::config::Role;
use links::*;

#[tokio::main]
async fn main() {
    init_tracing();
    let senders = env_usize("GARDEN_BENCH_SENDERS", 2);
    let messages = env_usize("GARDEN_BENCH_MESSAGES", 10_000);
    let size = env_usize("GARDEN_BENCH_PAYLOAD", 512);
    let up = Duration::from_millis(env_usize("GARDEN_BENCH_UP_MS", 2_000) as u64);
    let down = Duration::from_millis(env_usize("GARDEN_BENCH_DOWN_MS", 3_000) as u64);
    let rate = env_usize("GARDEN_BENCH_RATE", 2_000);
    let hb = env_usize("GARDEN_BENCH_HEARTBEAT_SECS", 1) as u64;
    let burst = 100;
    let dir = Scratch::new("dtn-ferry");
    println!(
        "dtn_ferry: {senders} senders x {messages} messages of {size} B at {rate}/s each, \
         link up {up:?} / down {down:?}, heartbeats every {hb} s"
    );

    let ip = free_port();
    let ix = start(&config(&dir.0, Role::Indexer, ip, None, &[], hb), ip).await;
    let seeds = [ix.addr()];
    // Starts up; 10 000 cycles is "for ever" here.
    let mut link = Contact::start(Plan::periodic(Duration::ZERO, up, down, 10_000));
    let pd = free_port();
    let rd = link.route(([127, 0, 0, 1], pd).into()).await;
    let mut d = start(&config(&dir.0, Role::Node, pd, Some(rd), &seeds, hb), pd).await;
    let applied = apply_all(&mut d);
    let mut ss = Vec::new();
    for _ in 0..senders {
        let p = free_port();
        let r = link.route(([127, 0, 0, 1], p).into()).await;
        ss.push(start(&config(&dir.0, Role::Node, p, Some(r), &seeds, hb), p).await);
    }

    let t0 = Instant::now();
    let to = d.peer();
    let mut producers = Vec::new();
    for (i, s) in ss.iter().enumerate() {
        let plane = s.app.data_plane.clone().expect("a data plane");
        producers.push(tokio::spawn(async move {
            let tag = format!("s{i}");
            let mut tick =
                tokio::time::interval(Duration::from_secs_f64(burst as f64 / rate as f64));
            let mut n = 0;
            let mut max_depth = 0;
            while n < messages {
                tick.tick().await;
                let batch: Vec<_> = (n..(n + burst).min(messages))
                    .map(|k| entry(to, &tag, k, size))
                    .collect();
                n += batch.len();
                for r in plane.push_all(batch).await.expect("pushed") {
                    r.expect("queued");
                }
                max_depth = max_depth.max(plane.stats().await.unwrap().outbox.depth);
            }
            (Instant::now(), max_depth)
        }));
    }
    let mut produced_at = t0;
    let mut max_depth = 0;
    for p in producers {
        let (t, m) = p.await.unwrap();
        produced_at = produced_at.max(t);
        max_depth = max_depth.max(m);
    }
    let total = senders * messages;
    let done = loop {
        if applied.total() >= total {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = done.duration_since(t0);
    // Time the link was up during the run.
    let period = up + down;
    let cycles = elapsed.as_secs_f64() / period.as_secs_f64();
    let up_time = cycles.floor() * up.as_secs_f64()
        + (elapsed.as_secs_f64() - cycles.floor() * period.as_secs_f64()).min(up.as_secs_f64());
    // Let late acknowledgements land, then read the figures.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(applied.total(), total, "every message applied");
    assert_eq!(applied.twice(), 0, "none applied twice");
    let sd = d.app.data_plane.as_ref().unwrap().stats().await.unwrap();
    let mut failed = 0;
    let mut acked = 0;
    for s in &ss {
        let st = s.app.data_plane.as_ref().unwrap().stats().await.unwrap();
        failed += st.failed_batches;
        acked += st.acked;
    }
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| messages | {total} ({senders} senders x {messages}) |");
    println!(
        "| applied once at D / applied twice | {} / 0 |",
        applied.total()
    );
    println!(
        "| produced in | {:.1} s |",
        produced_at.duration_since(t0).as_secs_f64()
    );
    println!(
        "| all delivered in (first push to last applied) | {:.1} s |",
        elapsed.as_secs_f64()
    );
    println!(
        "| throughput over the run / over the up time ({:.1} s up) | {:.0} / {:.0} msg/s |",
        up_time,
        total as f64 / elapsed.as_secs_f64(),
        total as f64 / up_time
    );
    println!(
        "| duplicates suppressed by D's inbox (redeliveries) | {} |",
        sd.duplicates
    );
    println!("| acknowledged at the senders | {acked} |");
    println!("| senders' failed batches (cut or refused) | {failed} |");
    println!("| largest backlog of one sender | {max_depth} |");
    println!("| proxy | {:?} |", link.figures());
    for s in ss {
        s.app.shutdown().await;
    }
    d.app.shutdown().await;
    ix.app.shutdown().await;
}
