//! DTN outbox throughput: prints figures, asserts nothing.
//!
//!     nice cargo run --release -p garden-sidecar --example outbox_drain [-- ENTRIES [PAYLOAD_BYTES]]
//!
//! Critical entries (sealed with AES-256-GCM, written to redb) for 8 peers, default 10 000
//! entries of 512 bytes, in a fresh file under the temp directory:
//! 1. seal + open alone (no disk), to separate the cipher from the store;
//! 2. push one entry per transaction (one fsync each: what `Outbox::push` costs), on a
//!    sample of 500;
//! 3. push in batches (`Outbox::push_all`, one transaction and one fsync per batch);
//! 4. drain: `due` (read + decrypt) then `ack_all` of everything due (one transaction);
//! 5. drain one by one: `ack` per entry (one fsync each), on a sample of 500;
//! 6. inbox: `accept` per entry (one fsync each), on a sample of 500;
//! 7. end to end, per peer as the glue would: `due`, then for each peer's delivery the
//!    receiver's `Inbox::accept_all` (one transaction) and the sender's `ack_all` (one
//!    transaction): 2 fsyncs per peer and round.
//!
//! redb commits with its default durability (`Immediate`: the data is fsynced before the call
//! returns), so the single-entry figures are bounded by the disk's fsync latency.

use std::time::{Duration, Instant};

use garden_sidecar::dtn::seal::{Header, Sealer};
use garden_sidecar::dtn::{Entry, Id, Inbox, Level, Limits, Op, Outbox};
use garden_sidecar::time::Timestamp;
use libp2p::PeerId;

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{n:>6} in {:>8.1} ms = {:>9.0} msg/s",
        d.as_secs_f64() * 1e3,
        n as f64 / d.as_secs_f64()
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(512);
    let sample = n.min(500);
    let dir = std::env::temp_dir().join(format!("garden-outbox-drain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = [7u8; 32];
    let peers: Vec<PeerId> = (0..8).map(|_| PeerId::random()).collect();
    let now = Timestamp::from_millis(1_700_000_000_000);
    let payload = vec![0xA5u8; size];
    let entry = |i: usize| Entry {
        peer: peers[i % peers.len()],
        protocol: "/garden/resource/1".into(),
        op: Op::Create,
        resource: format!("resource-{i}"),
        level: Level::Critical,
        payload: payload.clone(),
        expires_at: now.plus(Duration::from_secs(86_400)),
    };
    println!(
        "outbox_drain: {n} critical entries of {size} B, 8 peers, file in {}",
        dir.display()
    );

    // 1. Cipher alone.
    let sealer = Sealer::new(&key);
    let header = Header::of(&entry(0), now);
    let t = Instant::now();
    let rows: Vec<Vec<u8>> = (0..n)
        .map(|i| sealer.seal(Id(i as u128), &header, &payload))
        .collect();
    let seal = t.elapsed();
    let t = Instant::now();
    for (i, r) in rows.iter().enumerate() {
        sealer.open(Id(i as u128), r).unwrap();
    }
    println!("seal (AES-256-GCM, no disk)          {}", rate(n, seal));
    println!(
        "open (AES-256-GCM, no disk)          {}",
        rate(n, t.elapsed())
    );

    // 2. One push per transaction.
    let limits = Limits {
        max_entries: n * 2,
        ..Limits::default()
    };
    let mut o = Outbox::open(dir.join("single.redb"), &key, limits.clone()).unwrap();
    let t = Instant::now();
    for i in 0..sample {
        o.push(entry(i), now).unwrap();
    }
    println!(
        "push, 1 entry/transaction (fsync)    {}",
        rate(sample, t.elapsed())
    );
    // 5. Ack one by one.
    let ids = o.ids();
    let t = Instant::now();
    for id in &ids {
        o.ack(*id).unwrap();
    }
    println!(
        "ack, 1 entry/transaction (fsync)     {}",
        rate(ids.len(), t.elapsed())
    );
    drop(o);

    // 3. Batched pushes.
    for batch in [100usize, 1000] {
        let path = dir.join(format!("batch{batch}.redb"));
        let mut o = Outbox::open(&path, &key, limits.clone()).unwrap();
        let t = Instant::now();
        let mut i = 0;
        while i < n {
            let b: Vec<Entry> = (i..(i + batch).min(n)).map(entry).collect();
            i += b.len();
            for r in o.push_all(b, now).unwrap() {
                r.unwrap();
            }
        }
        let push = t.elapsed();
        println!(
            "push_all, {batch:>4} entries/transaction  {}",
            rate(n, push)
        );
        if batch == 1000 {
            // 4. Drain: due + ack_all.
            drop(o);
            let t = Instant::now();
            let mut o = Outbox::open(&path, &key, limits.clone()).unwrap();
            let open = t.elapsed();
            let t = Instant::now();
            let due = o.due(now).unwrap();
            let got: Vec<Id> = due
                .iter()
                .flat_map(|d| d.items.iter().map(|i| i.id))
                .collect();
            let due_t = t.elapsed();
            let t = Instant::now();
            o.ack_all(&got).unwrap();
            let ack_t = t.elapsed();
            assert_eq!(o.depth(), 0);
            println!("reopen (decrypts every row)          {}", rate(n, open));
            println!(
                "due (read + decrypt)                 {}",
                rate(got.len(), due_t)
            );
            println!(
                "ack_all (1 transaction)              {}",
                rate(got.len(), ack_t)
            );
            println!(
                "drain = due + ack_all                {}",
                rate(got.len(), due_t + ack_t)
            );
        }
    }

    // 6. Inbox.
    let mut inbox = Inbox::open(dir.join("inbox.redb"), Duration::from_secs(86_400)).unwrap();
    let sender = PeerId::random();
    let t = Instant::now();
    for i in 0..sample {
        inbox.accept(&sender, Id(i as u128), now).unwrap();
    }
    println!(
        "inbox accept, 1/transaction (fsync)  {}",
        rate(sample, t.elapsed())
    );

    // 7. End to end per peer.
    let path = dir.join("e2e.redb");
    let mut o = Outbox::open(&path, &key, limits.clone()).unwrap();
    let mut i = 0;
    while i < n {
        let b: Vec<Entry> = (i..(i + 1000).min(n)).map(entry).collect();
        i += b.len();
        o.push_all(b, now).unwrap();
    }
    let mut inbox = Inbox::open(dir.join("inbox-e2e.redb"), Duration::from_secs(86_400)).unwrap();
    let t = Instant::now();
    let mut delivered = 0;
    for d in o.due(now).unwrap() {
        let ids: Vec<Id> = d.items.iter().map(|i| i.id).collect();
        inbox.accept_all(&sender, &ids, now).unwrap();
        delivered += o.ack_all(&ids).unwrap();
    }
    println!(
        "drain end to end, per peer (8 peers) {}",
        rate(delivered, t.elapsed())
    );
    let _ = std::fs::remove_dir_all(&dir);
}
