//! Outbox, inbox and privacy tests with explicit times and real redb files.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use libp2p::PeerId;
use redb::{ReadableTable, ReadableTableMetadata};

use super::outbox::{Error, Failed, Limits, Outbox, ENTRIES};
use super::*;
use crate::time::Timestamp;

/// A directory removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "garden-dtn-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub(super) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) const KEY: [u8; 32] = [42; 32];

pub(super) fn t(s: u64) -> Timestamp {
    Timestamp::from_millis(1_000_000_000 + s * 1000)
}

pub(super) fn entry(peer: PeerId, op: Op, resource: &str, body: &str) -> Entry {
    Entry {
        peer,
        protocol: if op.is_mutation() {
            "/garden/resource/1".into()
        } else {
            "/garden/planner/1".into()
        },
        op,
        resource: resource.into(),
        level: if op.is_mutation() {
            Level::Critical
        } else {
            Level::Moderate
        },
        payload: body.as_bytes().to_vec(),
        expires_at: t(3600),
    }
}

fn open(dir: &TempDir) -> Outbox {
    Outbox::open(dir.file("outbox.redb"), &KEY, Limits::default()).unwrap()
}

fn items(d: Vec<Delivery>) -> Vec<Item> {
    d.into_iter().flat_map(|d| d.items).collect()
}

#[test]
fn a_critical_entry_survives_a_restart_and_leaves_on_ack() {
    let dir = TempDir::new();
    let p = PeerId::random();
    let id = {
        let mut o = open(&dir);
        o.push(entry(p, Op::Create, "r1", "hello"), t(0)).unwrap()
    };
    let mut o = open(&dir);
    assert!(o.take_corrupted().is_empty());
    let got = o.due(t(1)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].peer, p);
    assert_eq!(got[0].items[0].id, id);
    assert_eq!(got[0].items[0].payload, b"hello");
    assert!(o.ack(id).unwrap());
    assert!(!o.ack(id).unwrap());
    drop(o);
    let mut o = open(&dir);
    assert_eq!(o.depth(), 0);
    // Ids are never reused, even once the file is empty.
    let id2 = o.push(entry(p, Op::Create, "r2", "x"), t(2)).unwrap();
    assert!(id2 > id, "{id2} after {id}");
}

#[test]
fn lifecycle_rules_apply_in_the_queue_and_after_delivery() {
    let dir = TempDir::new();
    let mut o = open(&dir);
    let p = PeerId::random();
    let c = o.push(entry(p, Op::Create, "r", "v1"), t(0)).unwrap();
    let u = o.push(entry(p, Op::Update, "r", "v2"), t(1)).unwrap();
    assert!(!o.contains(c));
    let it = items(o.due(t(1)).unwrap());
    assert_eq!(
        (it[0].id, it[0].op, &it[0].payload[..]),
        (u, Op::Create, &b"v2"[..])
    );
    // A late ack of the replaced entry changes nothing.
    assert!(!o.ack(c).unwrap());
    assert!(o.contains(u));
    assert!(o.ack(u).unwrap());
    // Delivered: UPDATE then CREATE is still refused.
    o.push(entry(p, Op::Update, "r", "v3"), t(2)).unwrap();
    assert!(matches!(
        o.push(entry(p, Op::Create, "r", "v4"), t(3)),
        Err(Error::Refused(Refused::CreateAfterUpdate))
    ));
    let d = o.push(entry(p, Op::Delete, "r", ""), t(4)).unwrap();
    assert_eq!(o.depth(), 1);
    let id = items(o.due(t(5)).unwrap())[0].id;
    assert_eq!(id, d);
    o.ack(d).unwrap();
    drop(o);
    // Delete is terminal, across a restart too.
    let mut o = open(&dir);
    for op in [Op::Create, Op::Update, Op::Delete] {
        assert!(matches!(
            o.push(entry(p, op, "r", ""), t(6)),
            Err(Error::Refused(Refused::AfterDelete { attempted })) if attempted == op
        ));
    }
    // Counters are per process (the first refusal was before the restart).
    assert_eq!(o.stats(t(6)).refused_total, 3);
    // Another peer, another resource: unaffected.
    o.push(entry(PeerId::random(), Op::Create, "r", ""), t(6))
        .unwrap();
    o.push(entry(p, Op::Create, "r-other", ""), t(6)).unwrap();
    // Past the history horizon the key is forgotten.
    let later = t(6)
        .plus(Limits::default().history_horizon)
        .plus(Duration::from_secs(1));
    o.expire(later).unwrap();
    o.push(
        Entry {
            expires_at: later.plus(Duration::from_secs(60)),
            ..entry(p, Op::Create, "r", "again")
        },
        later,
    )
    .unwrap();
}

#[test]
fn create_then_delete_queued_becomes_delete() {
    let dir = TempDir::new();
    let mut o = open(&dir);
    let p = PeerId::random();
    o.push(entry(p, Op::Create, "r", "v1"), t(0)).unwrap();
    let d = o.push(entry(p, Op::Delete, "r", ""), t(1)).unwrap();
    let it = items(o.due(t(1)).unwrap());
    assert_eq!(it.len(), 1);
    assert_eq!((it[0].id, it[0].op), (d, Op::Delete));
}

#[test]
fn messages_of_different_protocols_do_not_overwrite_each_other() {
    let dir = TempDir::new();
    let mut o = open(&dir);
    let p = PeerId::random();
    let mut a = entry(p, Op::Message, "", "planner");
    let mut b = entry(p, Op::Message, "", "config");
    b.protocol = "/garden/config/1".into();
    o.push(a.clone(), t(0)).unwrap();
    o.push(b, t(0)).unwrap();
    // A message naming a resource never replaces that resource's mutation.
    o.push(entry(p, Op::Create, "r", "c"), t(0)).unwrap();
    a.resource = "r".into();
    o.push(a, t(0)).unwrap();
    assert_eq!(o.depth(), 4);
}

#[test]
fn moderate_entries_get_three_tries_and_are_never_written() {
    let dir = TempDir::new();
    let mut o = open(&dir);
    let p = PeerId::random();
    let id = o.push(entry(p, Op::Message, "", "confirm"), t(0)).unwrap();
    let mut now = t(0);
    for n in 1..=3 {
        let it = items(o.due(now).unwrap());
        assert_eq!(it.len(), 1, "try {n}");
        match o.failed(id, now) {
            Failed::Retry { at } => now = at,
            Failed::Dropped(g) => {
                assert_eq!(n, 3);
                assert_eq!((g.id, g.failures, g.level), (id, 3, Level::Moderate));
            }
            Failed::Unknown => panic!("unknown"),
        }
    }
    assert_eq!(o.depth(), 0);
    assert_eq!(o.stats(now).dropped_total, 1);
    assert_eq!(o.failed(id, now), Failed::Unknown);
    // A moderate entry is lost on restart (by design) and never reached the file.
    o.push(entry(p, Op::Message, "", "confirm"), now).unwrap();
    drop(o);
    assert_eq!(open(&dir).depth(), 0);
}

#[test]
fn failures_back_off_in_flight_entries_wait_and_wake_makes_due() {
    let dir = TempDir::new();
    let mut o = open(&dir);
    let p = PeerId::random();
    let id = o.push(entry(p, Op::Create, "r", "x"), t(0)).unwrap();
    assert_eq!(items(o.due(t(0)).unwrap()).len(), 1);
    // In flight: not handed out again until the in-flight delay passes.
    assert!(o.due(t(1)).unwrap().is_empty());
    assert_eq!(items(o.due(t(61)).unwrap()).len(), 1);
    let mut gaps = Vec::new();
    let mut now = t(61);
    for _ in 0..12 {
        let Failed::Retry { at } = o.failed(id, now) else {
            panic!()
        };
        gaps.push(at.since(now));
        assert!(o
            .due(at.minus(Duration::from_millis(1)))
            .unwrap()
            .is_empty());
        assert_eq!(items(o.due(at).unwrap()).len(), 1);
        now = at;
    }
    assert!(gaps[0] >= Duration::from_millis(500) && gaps[0] <= Duration::from_secs(1));
    assert!(gaps[11] >= Duration::from_secs(150) && gaps[11] <= Duration::from_secs(300));
    // Failed again, then the peer is back: due at once.
    let Failed::Retry { at } = o.failed(id, now) else {
        panic!()
    };
    assert!(at > now);
    assert!(o.due(now).unwrap().is_empty());
    assert_eq!(o.wake(&p, now), 1);
    assert_eq!(items(o.due(now).unwrap())[0].id, id);
    assert_eq!(o.wake(&p, now), 0, "in flight entries are not woken");
}

#[test]
fn expired_entries_are_reported_and_counted_never_delivered() {
    let dir = TempDir::new();
    let mut o = open(&dir);
    let p = PeerId::random();
    let mut e = entry(p, Op::Create, "r", "x");
    e.expires_at = t(10);
    let id = o.push(e, t(0)).unwrap();
    let mut m = entry(p, Op::Message, "", "m");
    m.expires_at = t(20);
    let mid = o.push(m, t(0)).unwrap();
    assert!(o
        .due(t(10))
        .unwrap()
        .iter()
        .all(|d| d.items.iter().all(|i| i.id != id)));
    let gone = o.expire(t(10)).unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!((gone[0].id, gone[0].op, gone[0].peer), (id, Op::Create, p));
    let gone = o.expire(t(25)).unwrap();
    assert_eq!(gone[0].id, mid);
    assert_eq!(o.stats(t(25)).expired_total, 2);
    drop(o);
    assert_eq!(open(&dir).depth(), 0, "the expired row was deleted");
}

#[test]
fn bounds_are_typed_errors() {
    let dir = TempDir::new();
    let limits = Limits {
        max_entries: 2,
        max_payload: 8,
        ..Limits::default()
    };
    let mut o = Outbox::open(dir.file("o.redb"), &KEY, limits).unwrap();
    let p = PeerId::random();
    assert!(matches!(
        o.push(entry(p, Op::Create, "a", "123456789"), t(0)),
        Err(Error::TooLarge { size: 9, max: 8 })
    ));
    let mut e = entry(p, Op::Create, "a", "");
    e.expires_at = t(0);
    assert!(matches!(o.push(e, t(0)), Err(Error::AlreadyExpired { .. })));
    o.push(entry(p, Op::Create, "a", ""), t(0)).unwrap();
    o.push(entry(p, Op::Create, "b", ""), t(0)).unwrap();
    assert!(matches!(
        o.push(entry(p, Op::Create, "c", ""), t(0)),
        Err(Error::Full { max: 2 })
    ));
    // Replacing a queued entry is allowed when full.
    o.push(entry(p, Op::Update, "a", ""), t(0)).unwrap();
}

#[test]
fn batches_commit_once_and_answer_per_entry() {
    let dir = TempDir::new();
    let mut o = open(&dir);
    let p = PeerId::random();
    let res = o
        .push_all(
            vec![
                entry(p, Op::Create, "a", "1"),
                entry(p, Op::Update, "a", "2"),
                entry(p, Op::Create, "a", "3"),
                entry(p, Op::Delete, "b", ""),
            ],
            t(0),
        )
        .unwrap();
    assert!(res[0].is_ok() && res[1].is_ok() && res[3].is_ok());
    assert!(matches!(
        res[2],
        Err(Error::Refused(Refused::CreateAfterUpdate))
    ));
    drop(o);
    let mut o = open(&dir);
    let it = items(o.due(t(1)).unwrap());
    assert_eq!(it.len(), 2);
    assert_eq!((it[0].op, &it[0].payload[..]), (Op::Create, &b"2"[..]));
    let ids: Vec<Id> = it.iter().map(|i| i.id).collect();
    assert_eq!(o.ack_all(&ids).unwrap(), 2);
    let st = o.stats(t(1));
    assert_eq!(st.depth, 0);
}

#[test]
fn stats_give_depth_oldest_age_and_per_peer_counts() {
    let dir = TempDir::new();
    let mut o = open(&dir);
    let (p, q) = (PeerId::random(), PeerId::random());
    o.push(entry(p, Op::Create, "a", ""), t(0)).unwrap();
    o.push(entry(p, Op::Create, "b", ""), t(5)).unwrap();
    o.push(entry(q, Op::Message, "", ""), t(7)).unwrap();
    let st = o.stats(t(10));
    assert_eq!((st.depth, st.critical, st.moderate), (3, 2, 1));
    assert_eq!(st.oldest_age, Some(Duration::from_secs(10)));
    assert_eq!(st.per_peer[&p], 2);
    assert_eq!(st.per_peer[&q], 1);
    assert_eq!(o.pending_peers().into_iter().collect::<Vec<_>>(), vec![p]);
}

// ---- privacy: try to read or tamper with the file ----

const SECRET: &str = "TOP-SECRET-BOOKING-alice@example.org-room-42";

fn raw_rows(o: &Outbox) -> Vec<(u64, Vec<u8>)> {
    let r = o.db().begin_read().unwrap();
    let t = r.open_table(ENTRIES).unwrap();
    t.iter()
        .unwrap()
        .map(|x| {
            let (k, v) = x.unwrap();
            (k.value(), v.value().to_vec())
        })
        .collect()
}

fn write_row(o: &Outbox, seq: u64, row: &[u8]) {
    let w = o.db().begin_write().unwrap();
    w.open_table(ENTRIES).unwrap().insert(seq, row).unwrap();
    w.commit().unwrap();
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_file_holds_no_plaintext_payload() {
    let dir = TempDir::new();
    let mut o = open(&dir);
    let p = PeerId::random();
    for i in 0..50 {
        o.push(entry(p, Op::Create, &format!("r{i}"), SECRET), t(0))
            .unwrap();
    }
    // Acked rows must not linger in clear either.
    let ids = o.ids();
    o.ack_all(&ids[..25]).unwrap();
    drop(o);
    let bytes = std::fs::read(dir.file("outbox.redb")).unwrap();
    assert!(!contains(&bytes, SECRET.as_bytes()));
    assert!(!contains(&bytes, b"TOP-SECRET"));
    assert!(!contains(&bytes, b"alice@example.org"));
    // And the rows do open with the key.
    let mut o = open(&dir);
    let it = items(o.due(t(1)).unwrap());
    assert_eq!(it.len(), 25);
    assert!(it.iter().all(|i| i.payload == SECRET.as_bytes()));
}

#[test]
fn a_flipped_byte_or_swapped_ciphertexts_are_reported_not_delivered() {
    let dir = TempDir::new();
    let p = PeerId::random();
    let (a, b, c) = {
        let mut o = open(&dir);
        let a = o
            .push(entry(p, Op::Create, "a", "payload-a"), t(0))
            .unwrap();
        let b = o
            .push(entry(p, Op::Create, "b", "payload-b"), t(0))
            .unwrap();
        let c = o
            .push(entry(p, Op::Create, "c", "payload-c"), t(0))
            .unwrap();
        let rows = raw_rows(&o);
        // Flip the last ciphertext byte of a.
        let mut ra = rows[0].1.clone();
        *ra.last_mut().unwrap() ^= 0x80;
        write_row(&o, a.seq(), &ra);
        // Swap the sealed parts (nonce ‖ ciphertext ‖ tag) of b and c: same header length.
        let (rb, rc) = (&rows[1].1, &rows[2].1);
        let sealed = "payload-b".len() + 12 + 16;
        let (hb, sb) = rb.split_at(rb.len() - sealed);
        let (hc, sc) = rc.split_at(rc.len() - sealed);
        write_row(&o, b.seq(), &[hb, sc].concat());
        write_row(&o, c.seq(), &[hc, sb].concat());
        (a, b, c)
    };
    let mut o = open(&dir);
    let mut bad: Vec<Id> = o.take_corrupted().into_iter().map(|c| c.id).collect();
    bad.sort();
    assert_eq!(bad, vec![a, b, c]);
    assert!(o.due(t(1)).unwrap().is_empty());
    assert_eq!(o.stats(t(1)).corrupted_total, 3);
    // Kept aside, not reported twice.
    drop(o);
    let mut o = open(&dir);
    assert!(o.take_corrupted().is_empty());
    let q = o.db().begin_read().unwrap();
    assert_eq!(q.open_table(outbox::QUARANTINE).unwrap().len().unwrap(), 3);
}

#[test]
fn a_row_swapped_under_another_id_is_detected_when_due() {
    let dir = TempDir::new();
    let mut o = open(&dir);
    let p = PeerId::random();
    let a = o
        .push(entry(p, Op::Create, "a", "payload-a"), t(0))
        .unwrap();
    let b = o
        .push(entry(p, Op::Create, "b", "payload-b"), t(0))
        .unwrap();
    let rows = raw_rows(&o);
    write_row(&o, a.seq(), &rows[1].1);
    write_row(&o, b.seq(), &rows[0].1);
    assert!(o.due(t(1)).unwrap().is_empty());
    let bad = o.take_corrupted();
    assert_eq!(bad.len(), 2);
    assert_eq!(o.depth(), 0);
}

#[test]
fn a_byte_flipped_in_the_raw_file_never_yields_a_changed_payload() {
    let dir = TempDir::new();
    let p = PeerId::random();
    let row = {
        let mut o = open(&dir);
        o.push(entry(p, Op::Create, "a", SECRET), t(0)).unwrap();
        raw_rows(&o).remove(0).1
    };
    let path = dir.file("outbox.redb");
    let mut bytes = std::fs::read(&path).unwrap();
    // The sealed tail of the row, as written in the file.
    let tail = &row[row.len() - 16..];
    let at = bytes
        .windows(tail.len())
        .position(|w| w == tail)
        .expect("row bytes in the file");
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    match Outbox::open(&path, &KEY, Limits::default()) {
        // redb noticed (its own checks): an error, never a panic.
        Err(_) => {}
        Ok(mut o) => {
            let delivered = items(o.due(t(1)).unwrap());
            assert!(delivered.iter().all(|i| i.payload == SECRET.as_bytes()));
            assert_eq!(delivered.len() + o.take_corrupted().len(), 1);
        }
    }
}

// ---- inbox ----

#[test]
fn the_inbox_applies_once_across_restarts() {
    let dir = TempDir::new();
    let path = dir.file("inbox.redb");
    let (s1, s2) = (PeerId::random(), PeerId::random());
    let h = Duration::from_secs(3600);
    {
        let mut i = Inbox::open(&path, h).unwrap();
        assert_eq!(i.accept(&s1, Id(1), t(0)).unwrap(), Accepted::Fresh);
        assert_eq!(i.accept(&s1, Id(1), t(1)).unwrap(), Accepted::Duplicate);
        assert_eq!(i.accept(&s2, Id(1), t(1)).unwrap(), Accepted::Fresh);
    }
    let mut i = Inbox::open(&path, h).unwrap();
    assert_eq!(i.accept(&s1, Id(1), t(2)).unwrap(), Accepted::Duplicate);
    // The application could not apply it: forget, and the redelivery is fresh.
    assert!(i.forget(&s1, Id(1)).unwrap());
    assert_eq!(i.accept(&s1, Id(1), t(3)).unwrap(), Accepted::Fresh);
    assert_eq!(i.len().unwrap(), 2);
}

#[test]
fn the_inbox_accepts_a_batch_in_one_go() {
    let dir = TempDir::new();
    let mut i = Inbox::open(dir.file("inbox.redb"), Duration::from_secs(3600)).unwrap();
    let s = PeerId::random();
    i.accept(&s, Id(2), t(0)).unwrap();
    let got = i
        .accept_all(&s, &[Id(1), Id(2), Id(3), Id(1)], t(1))
        .unwrap();
    use Accepted::*;
    assert_eq!(got, vec![Fresh, Duplicate, Fresh, Duplicate]);
    assert_eq!(i.len().unwrap(), 3);
}

#[test]
fn the_inbox_forgets_past_its_horizon() {
    let dir = TempDir::new();
    let mut i = Inbox::open(dir.file("inbox.redb"), Duration::from_secs(100)).unwrap();
    let s = PeerId::random();
    for n in 0..20 {
        i.accept(&s, Id(n), t(n as u64)).unwrap();
    }
    // Each accept forgets a few records past the horizon.
    i.accept(&s, Id(100), t(110)).unwrap();
    assert_eq!(i.len().unwrap(), 21 - 8);
    assert_eq!(i.prune(t(300)).unwrap(), 13);
    assert!(i.is_empty().unwrap());
    assert!(!i.contains(&s, Id(100)).unwrap());
}
