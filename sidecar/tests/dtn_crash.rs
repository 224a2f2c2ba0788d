//! Kill -9 test of the DTN outbox and inbox.
//!
//! The test re-executes its own binary as a child process (`dtn_crash_child`, which does
//! nothing unless `GARDEN_DTN_CHILD_DIR` is set). The child opens an outbox and an inbox in
//! that directory and loops forever: it pushes critical entries and, in between, consumes them
//! like a receiver would (`due` → `Inbox::accept` → apply if fresh → `ack`, sometimes
//! "losing" the acknowledgement so the entry is redelivered). It appends one line per step
//! that returned (`P id payload` pushed, `A id` applied, `D id` duplicate, `K id` acked) to a
//! log file, one `write` per line. "Apply" is `Inbox::accept_with` counting the entry in a
//! table of the inbox file, committed with the inbox record. The parent kills it with SIGKILL at a random instant
//! (during open, a push, an accept or an ack), then opens the files itself and checks:
//! * every entry whose push returned `Ok` is still in the outbox and decrypts to its payload,
//!   or was accepted by the inbox (nothing lost);
//! * no entry was applied twice (the application's count is at most 1 per id), and the inbox
//!   record and the effect always go together;
//! * no stored row is reported corrupted.
//!
//! At the end the parent drains the outbox through the inbox and checks every pushed entry
//! was applied exactly once. Cycles: 200 by default, `GARDEN_DTN_CHAOS_CYCLES=10000` on
//! demand. The figures are printed (`--nocapture`).

use std::collections::{BTreeSet, HashMap};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use garden_sidecar::dtn::{
    Accepted, Entry, Id, Inbox, Level, Limits, Op, Outbox, StoreError, KEY_LABEL,
};
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::time::Timestamp;
use libp2p::PeerId;
use rand::Rng;

const CHILD_ENV: &str = "GARDEN_DTN_CHILD_DIR";
const HORIZON: Duration = Duration::from_secs(30 * 24 * 3600);

fn now() -> Timestamp {
    Timestamp::from_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
}

/// Destination of every entry (a fixed peer).
fn destination() -> PeerId {
    let kp = libp2p::identity::Keypair::ed25519_from_bytes([3u8; 32]).unwrap();
    kp.public().to_peer_id()
}

fn limits() -> Limits {
    Limits {
        // A delivery without an answer is due again at once (redeliveries are the point).
        in_flight: Duration::ZERO,
        ..Limits::default()
    }
}

struct Files {
    identity: NodeIdentity,
    outbox: PathBuf,
    inbox: PathBuf,
    log: PathBuf,
}

fn files(dir: &Path) -> Files {
    Files {
        identity: NodeIdentity::load_or_generate(&dir.join("identity.key")).unwrap(),
        outbox: dir.join("outbox.redb"),
        inbox: dir.join("inbox.redb"),
        log: dir.join("log"),
    }
}

/// The application's effect: count the entry in a table of the inbox file (committed with
/// the inbox record, see `Inbox::accept_with`).
const APPLIED: redb::TableDefinition<u128, u32> = redb::TableDefinition::new("app_applied");

fn apply(txn: &redb::WriteTransaction, id: Id) -> Result<(), StoreError> {
    use redb::ReadableTable;
    let mut t = txn.open_table(APPLIED)?;
    let n = t.get(id.0)?.map(|v| v.value()).unwrap_or(0);
    t.insert(id.0, n + 1)?;
    Ok(())
}

/// The application's counts, id → times applied.
fn applied_counts(inbox: &Inbox) -> HashMap<u128, u32> {
    use redb::ReadableTable;
    let r = inbox.database().begin_read().unwrap();
    let Ok(t) = r.open_table(APPLIED) else {
        return HashMap::new();
    };
    t.iter()
        .unwrap()
        .map(|x| {
            let (k, v) = x.unwrap();
            (k.value(), v.value())
        })
        .collect()
}

/// The child: never returns when `GARDEN_DTN_CHILD_DIR` is set (it is killed).
#[test]
fn dtn_crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let cycle: u64 = std::env::var("GARDEN_DTN_CHILD_CYCLE")
        .unwrap()
        .parse()
        .unwrap();
    let f = files(Path::new(&dir));
    let key = f.identity.derive_key(KEY_LABEL);
    let sender = f.identity.peer_id();
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&f.log)
        .unwrap();
    // One write per line, ending " .": a kill can still tear a write that straddles a page
    // (the kernel checks for a fatal signal between pages), so the reader takes only lines
    // with their end mark, and each child starts on a fresh line.
    log.write_all(b"\n").unwrap();
    let mut line = |s: String| log.write_all(format!("{s} .\n").as_bytes()).unwrap();
    let mut outbox = Outbox::open(&f.outbox, &key, limits()).unwrap();
    let mut inbox = Inbox::open(&f.inbox, HORIZON).unwrap();
    line("R 0".to_string());
    let mut rng = rand::thread_rng();
    let dest = destination();
    for i in 0u64.. {
        if rng.gen_bool(0.5) {
            let payload = format!("payload-{cycle}-{i}");
            let e = Entry {
                peer: dest,
                protocol: "/garden/resource/1".into(),
                op: Op::Create,
                resource: format!("r-{cycle}-{i}"),
                level: Level::Critical,
                payload: payload.clone().into_bytes(),
                expires_at: now().plus(HORIZON / 2),
            };
            let id = outbox.push(e, now()).unwrap();
            line(format!("P {} {payload}", id.0));
        } else {
            let items: Vec<_> = outbox
                .due(now())
                .unwrap()
                .into_iter()
                .flat_map(|d| d.items)
                .take(5)
                .collect();
            for it in items {
                match inbox
                    .accept_with(&sender, it.id, now(), |txn| apply(txn, it.id))
                    .unwrap()
                {
                    Accepted::Fresh => line(format!("A {}", it.id.0)),
                    Accepted::Duplicate => line(format!("D {}", it.id.0)),
                }
                // One acknowledgement in four is "lost": the entry comes back.
                if rng.gen_bool(0.75) {
                    outbox.ack(it.id).unwrap();
                    line(format!("K {}", it.id.0));
                }
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    cycles: u64,
    pushed: HashMap<u128, String>,
    /// Ids whose `accept_with` returned `Fresh` (log lines and the final drain).
    fresh_seen: BTreeSet<u128>,
    duplicates_seen: u64,
    acked: u64,
    losses: u64,
    duplicates_applied: u64,
    corrupted: u64,
    log_offset: u64,
    /// Children that opened both files before being killed.
    ready: u64,
    /// Log lines torn by a kill (skipped).
    torn: u64,
    /// Pushed and not yet both applied and gone from the outbox.
    open: BTreeSet<u128>,
}

impl Tally {
    fn read_log(&mut self, path: &Path) {
        let Ok(mut file) = std::fs::File::open(path) else {
            return;
        };
        file.seek(SeekFrom::Start(self.log_offset)).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        // Only whole lines (a line is one write, but be strict).
        let end = text.rfind('\n').map(|n| n + 1).unwrap_or(0);
        self.log_offset += end as u64;
        for l in text[..end].lines() {
            if l.is_empty() {
                continue;
            }
            // A line torn by a kill has no end mark: its push (if it was one) counts as
            // one killed before `push` returned.
            let Some(l) = l.strip_suffix(" .") else {
                self.torn += 1;
                continue;
            };
            let mut w = l.split(' ');
            let (kind, id) = (
                w.next().unwrap(),
                w.next().unwrap().parse::<u128>().unwrap(),
            );
            match kind {
                "P" => {
                    self.pushed.insert(id, w.next().unwrap().to_string());
                    self.open.insert(id);
                }
                "A" => {
                    self.fresh_seen.insert(id);
                }
                "D" => self.duplicates_seen += 1,
                "K" => self.acked += 1,
                "R" => self.ready += 1,
                other => panic!("bad log line {other}"),
            }
        }
    }

    /// Ids the application counted more than once (from the file).
    fn count_duplicates(&mut self, counts: &HashMap<u128, u32>) {
        self.duplicates_applied = counts.values().filter(|n| **n > 1).count() as u64;
    }

    /// Checks the files against the log (the child is dead).
    fn verify(&mut self, f: &Files, key: &[u8; 32]) {
        let mut outbox = Outbox::open(&f.outbox, key, limits()).unwrap();
        let inbox = Inbox::open(&f.inbox, HORIZON).unwrap();
        self.corrupted += outbox.take_corrupted().len() as u64;
        let held: HashMap<u128, Vec<u8>> = outbox
            .due(now())
            .unwrap()
            .into_iter()
            .flat_map(|d| d.items)
            .map(|i| (i.id.0, i.payload))
            .collect();
        let sender = f.identity.peer_id();
        let counts = applied_counts(&inbox);
        self.count_duplicates(&counts);
        let mut closed = Vec::new();
        for &id in &self.open {
            let in_inbox = inbox.contains(&sender, Id(id)).unwrap();
            assert_eq!(
                in_inbox,
                counts.contains_key(&id),
                "record and effect of {id}"
            );
            match held.get(&id) {
                Some(p) => assert_eq!(p, self.pushed[&id].as_bytes(), "payload of {id}"),
                None if in_inbox => closed.push(id),
                None => {
                    eprintln!("LOST: entry {id} ({})", self.pushed[&id]);
                    self.losses += 1;
                    closed.push(id);
                }
            }
        }
        for id in closed {
            self.open.remove(&id);
        }
    }
}

#[test]
fn dtn_kill9_loses_nothing_and_applies_once() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let cycles: u64 = std::env::var("GARDEN_DTN_CHAOS_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = std::env::temp_dir().join(format!(
        "garden-dtn-crash-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let f = files(&dir);
    let key = f.identity.derive_key(KEY_LABEL);
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut t = Tally::default();
    let started = Instant::now();
    let mut ready_time = Duration::from_millis(50);
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "dtn_crash_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .env("GARDEN_DTN_CHILD_CYCLE", cycle.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let spawned = Instant::now();
        if rng.gen_bool(0.15) {
            // Anywhere from exec to a few operations in: kills during open and repair too.
            let ready = ready_time.max(Duration::from_millis(5));
            std::thread::sleep(ready.mul_f64(rng.gen_range(0.0..1.5)));
        } else {
            // Once both files are open, within the next 60 ms (a few fsync'd operations).
            let before = t.ready;
            while t.ready == before && spawned.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(1));
                t.read_log(&f.log);
            }
            ready_time = ready_time.mul_f64(0.8) + spawned.elapsed().mul_f64(0.2);
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..60_000)));
        }
        // SIGKILL on Unix.
        child.kill().unwrap();
        child.wait().unwrap();
        t.cycles += 1;
        t.read_log(&f.log);
        t.verify(&f, &key);
    }
    // Final drain by the parent, acting as the receiver.
    let applied;
    {
        let mut outbox = Outbox::open(&f.outbox, &key, limits()).unwrap();
        let mut inbox = Inbox::open(&f.inbox, HORIZON).unwrap();
        let sender = f.identity.peer_id();
        loop {
            let items: Vec<_> = outbox
                .due(now())
                .unwrap()
                .into_iter()
                .flat_map(|d| d.items)
                .collect();
            if items.is_empty() {
                break;
            }
            for it in items {
                match inbox
                    .accept_with(&sender, it.id, now(), |txn| apply(txn, it.id))
                    .unwrap()
                {
                    Accepted::Fresh => {
                        t.fresh_seen.insert(it.id.0);
                    }
                    Accepted::Duplicate => t.duplicates_seen += 1,
                }
                outbox.ack(it.id).unwrap();
                t.acked += 1;
            }
        }
        assert_eq!(outbox.depth(), 0);
        let counts = applied_counts(&inbox);
        t.count_duplicates(&counts);
        for id in t.pushed.keys() {
            if counts.get(id) != Some(&1) {
                eprintln!("LOST at the end: {id}");
                t.losses += 1;
            }
        }
        applied = counts.len();
    }
    // Applied by a child killed before `accept_with` returned (the commit had reached the
    // file): their redelivery was a duplicate, as it must be.
    let applied_unseen = t
        .pushed
        .keys()
        .filter(|id| !t.fresh_seen.contains(id))
        .count();
    println!(
        "dtn kill -9: {} cycles in {:.1?} ({} killed after opening, child ready in ~{:.0?}), {} entries pushed (Ok before the kill), {} applied ({} more than pushed: durable though the kill came before push returned), \
         {} redeliveries acknowledged as duplicates, {} acks; losses {}, duplicates applied {}, \
         corrupted rows {}; applied by a child killed inside accept_with {}; log lines torn by a kill {}",
        t.cycles,
        started.elapsed(),
        t.ready,
        ready_time,
        t.pushed.len(),
        applied,
        applied.saturating_sub(t.pushed.len()),
        t.duplicates_seen,
        t.acked,
        t.losses,
        t.duplicates_applied,
        t.corrupted,
        applied_unseen,
        t.torn,
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!t.pushed.is_empty(), "the child never pushed anything");
    assert_eq!(t.losses, 0, "entries lost");
    assert_eq!(t.duplicates_applied, 0, "entries applied twice");
    assert_eq!(t.corrupted, 0, "corrupted rows");
}
