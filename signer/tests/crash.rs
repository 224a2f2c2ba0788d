//! kill -9 test: a child process (this test binary, re-executed) signs items in a loop and
//! prints each nonce *after* `sign()` returned Ok; the parent SIGKILLs it at a random instant,
//! over N cycles (default 100, env `GARDEN_SIGNER_CHAOS_CYCLES`). Then it reopens the queue and
//! checks: every printed nonce is stored, no nonce was printed twice, the persisted counter is
//! ahead of every stored nonce, and the per-state counts agree with the items.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use garden_signer::queue::counter_floor;
use garden_signer::{RetryCause, SettlementKey, Signer, UsageInput};
use garden_wire::Domain;
use rand::Rng;

const CHILD_ENV: &str = "GARDEN_SIGNER_CRASH_CHILD";
const DOMAIN: Domain<'static> = Domain {
    chain_id: "garden-zone-1",
    contract: "wasm1settlement",
};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn open(dir: &Path) -> Signer {
    let key = SettlementKey::load(&dir.join("settlement.key")).unwrap();
    Signer::open(&dir.join("queue.redb"), key, &DOMAIN).unwrap()
}

/// The child: runs only when re-executed by `sign_survives_kill_9` (env set).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let s = open(Path::new(&dir));
    println!("READY");
    for i in 0u64.. {
        let now = unix_now();
        let input = UsageInput {
            provider: "garden1provider".into(),
            consumer: "garden1consumer".into(),
            resource_id: format!("res-{}", i % 7),
            quantity: i + 1,
            unit: "cpu-second".into(),
            price_ref: "compute".into(),
            max_unit_price: 10,
            period_start: now - 60,
            period_end: now,
        };
        let item = s.sign(input, now).unwrap();
        println!("NONCE {}", item.nonce); // only after Ok
        if i % 25 == 24 {
            if let Some(b) = s.next_batch(20, 0, now).unwrap() {
                s.mark_submitted(b.id, "TX").unwrap();
                if i % 50 == 49 {
                    s.requeue(b.id, RetryCause::BroadcastRefused).unwrap();
                }
            }
        }
    }
}

#[test]
fn sign_survives_kill_9() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let cycles: usize = std::env::var("GARDEN_SIGNER_CHAOS_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    SettlementKey::keygen(&dir.path().join("settlement.key")).unwrap();
    drop(open(dir.path())); // create the database once
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut printed: HashSet<u64> = HashSet::new();
    let mut per_cycle = Vec::with_capacity(cycles);
    let started = Instant::now();
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            // Only complete lines count: a line cut by the kill has no '\n'.
            while r.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
                let _ = tx.send(line.trim_end().to_owned());
                line.clear();
            }
        });
        // Wait until the child has opened the queue, then kill it at a random instant.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                // libtest prints "test crash_child ... " without a newline first.
                Ok(l) if l.ends_with("READY") => break,
                Ok(_) => {}
                Err(_) => assert!(Instant::now() < deadline, "child never got ready"),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..150_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let mut n = 0;
        for l in rx.try_iter() {
            if let Some(v) = l.split("NONCE ").nth(1) {
                let nonce: u64 = v.parse().unwrap();
                assert!(
                    printed.insert(nonce),
                    "cycle {cycle}: nonce {nonce} issued twice"
                );
                n += 1;
            }
        }
        per_cycle.push(n);
    }
    let s = open(dir.path());
    let items = s.items().unwrap();
    let stored: HashSet<u64> = items.iter().map(|i| i.nonce).collect();
    let missing: Vec<_> = printed.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "{} nonces returned Ok but are not stored: {missing:?}",
        missing.len()
    );
    let floor = counter_floor(&s.counter().unwrap());
    assert!(
        items.iter().all(|i| i.nonce < floor),
        "counter behind a stored nonce"
    );
    let st = s.stats(unix_now()).unwrap();
    assert_eq!(
        st.signed + st.batched + st.submitted + st.final_ + st.refused,
        items.len() as u64,
        "per-state counts agree with the items"
    );
    // The queue still works after all the kills.
    let now = unix_now();
    let more = s
        .sign(
            UsageInput {
                provider: "p".into(),
                consumer: "c".into(),
                resource_id: "r".into(),
                quantity: 1,
                unit: "u".into(),
                price_ref: "k".into(),
                max_unit_price: 1,
                period_start: now,
                period_end: now,
            },
            now,
        )
        .unwrap();
    assert!(!stored.contains(&more.nonce) && more.nonce >= floor);
    per_cycle.sort_unstable();
    println!(
        "kill -9: {cycles} cycles in {:.1} s; {} nonces returned Ok (per cycle min/median/max {}/{}/{}), \
         {} stored ({} committed but killed before printing), 0 missing, 0 reused; \
         states signed {} batched {} submitted {}",
        started.elapsed().as_secs_f64(),
        printed.len(),
        per_cycle[0],
        per_cycle[per_cycle.len() / 2],
        per_cycle[per_cycle.len() - 1],
        items.len(),
        items.len() - printed.len(),
        st.signed,
        st.batched,
        st.submitted,
    );
}
