//! Signer throughput (prints figures, asserts nothing):
//!   cargo run --release -p garden-signer --example sign_throughput
//! Signs and enqueues N items (default 10 000, env `GARDEN_SIGNER_BENCH_ITEMS`) three ways —
//! `sign()` one durable commit per item, `sign_many()` in chunks of 100 and of 1 000 — then
//! builds batches of 1 000 (`next_batch`, GWAB payload) and marks them submitted and included.
//! The queue lives in a temporary directory (set TMPDIR to measure another disk).

use std::time::Instant;

use garden_signer::{SettlementKey, Signer, UsageInput};
use garden_wire::Domain;

const DOMAIN: Domain<'static> = Domain {
    chain_id: "garden-zone-1",
    contract: "wasm1qg5ega6dykkxc307y25pecuufrjkxkaggkkxh7nad0vhyhtuhw3sqaa3c5",
};

fn input(i: u64, now: u64) -> UsageInput {
    UsageInput {
        provider: format!("garden1provider{:03}", i % 20),
        consumer: "garden1consumerxxxxxxxxxxxxxxxxxxxxxxxxxxx".into(),
        resource_id: format!("resource-{:04}", i % 500),
        quantity: 1 + i % 1000,
        unit: "gib-hour".into(),
        price_ref: "storage".into(),
        max_unit_price: 1_000_000,
        period_start: now - 3600,
        period_end: now,
    }
}

fn main() {
    let n: u64 = std::env::var("GARDEN_SIGNER_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let now = 1_767_229_260;
    println!("garden-signer throughput, {n} items per run, batches of 1000");
    for (label, chunk) in [
        ("sign() (1 commit/item)", 1usize),
        ("sign_many(100)", 100),
        ("sign_many(1000)", 1000),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let s = Signer::open(
            &dir.path().join("q.redb"),
            SettlementKey::generate(),
            &DOMAIN,
        )
        .unwrap();
        let t = Instant::now();
        let mut i = 0u64;
        while i < n {
            let k = (chunk as u64).min(n - i);
            if chunk == 1 {
                s.sign(input(i, now), now).unwrap();
            } else {
                s.sign_many((i..i + k).map(|j| input(j, now)).collect(), now)
                    .unwrap();
            }
            i += k;
        }
        let sign_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (mut batches, mut bytes) = (0, 0);
        while let Some(b) = s.next_batch(1000, 0, now).unwrap() {
            batches += 1;
            bytes += b.payload.len();
        }
        let batch_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for id in 0..batches {
            s.mark_submitted(id, "0123456789ABCDEF").unwrap();
            s.mark_included(id, &[0; 1000]).unwrap();
        }
        let settle_s = t.elapsed().as_secs_f64();
        let st = s.stats(now).unwrap();
        assert_eq!(st.final_, n);
        let db_size = std::fs::metadata(dir.path().join("q.redb")).unwrap().len();
        println!(
            "{label:<24} sign+enqueue {:>9.0} items/s ({:.2} s) | next_batch {:>9.0} items/s ({batches} batches, {:.0} KB/batch) | submitted+included {:>9.0} items/s | db {:.1} MB",
            n as f64 / sign_s,
            sign_s,
            n as f64 / batch_s,
            bytes as f64 / batches as f64 / 1024.0,
            n as f64 / settle_s,
            db_size as f64 / 1e6,
        );
    }
}
