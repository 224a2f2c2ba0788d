//! The outbox: messages waiting for a peer that could not take them yet.
//!
//! * **Critical** entries (resource mutations, anything forced critical) are written to a redb
//!   file before [`Outbox::push`] returns, each payload sealed with AES-256-GCM ([`super::seal`])
//!   under a key derived from the node identity with the label [`KEY_LABEL`]. They are retried
//!   with exponential backoff ([`super::backoff`]) until acknowledged ([`Outbox::ack`] removes
//!   the row) or expired.
//! * **Moderate** entries live in memory only: after `Limits::moderate_tries` failed attempts
//!   they are dropped and [`Failed::Dropped`] says so. A restart loses them by design.
//! * Every entry has an expiry; [`Outbox::expire`] removes and returns the expired ones and
//!   counts them. Nothing leaves the outbox silently: acknowledged, replaced by a newer entry
//!   for the same key ([`super::lifecycle`]), expired (reported), dropped (reported, moderate
//!   only) or found corrupted (reported with its id, the row moved to a quarantine table).
//!
//! Scheduling state (failures, next attempt, in flight) lives in memory: on restart every
//! stored entry is due at once, which is when a retry is most useful, and a failed attempt
//! costs no disk write.
//!
//! Durability: every push, acknowledgement and expiry is one redb write transaction committed
//! with redb's default durability (`Immediate`: fsync before the call returns). The batch
//! calls [`Outbox::push_all`] and [`Outbox::ack_all`] commit many in one transaction (one
//! fsync).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use libp2p::PeerId;
use rand::Rng;
use redb::{Database, ReadableTable, TableDefinition};

use super::backoff;
use super::entry::{Entry, Id, Key, Level};
use super::lifecycle::{self, Op, Refused};
use super::seal::{Corruption, Header, Sealer};
use super::store::StoreError;
use crate::time::Timestamp;

/// HKDF label of the outbox key (`NodeIdentity::derive_key`). Distinct from every other
/// derived key so that a key leaked from one use (or one version of this format) opens
/// nothing else.
pub const KEY_LABEL: &str = "garden/dtn-outbox/v1";

pub(crate) const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
pub(crate) const QUARANTINE: TableDefinition<u64, &[u8]> = TableDefinition::new("quarantine");
const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Sequence numbers reserved at once for moderate entries (which are not written).
const SEQ_LEASE: u64 = 1024;

/// Bounds and timings.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most entries held (critical and moderate together).
    pub max_entries: usize,
    /// Largest payload accepted, bytes.
    pub max_payload: usize,
    /// Failed attempts after which a moderate entry is dropped.
    pub moderate_tries: u32,
    /// An entry handed out by [`Outbox::due`] and neither acknowledged nor failed within this
    /// delay is due again (the sender task died, the stream hung).
    pub in_flight: Duration,
    /// How long the last mutation pushed for a key is remembered after it left the queue, so
    /// that the lifecycle rules (DELETE terminal, no CREATE after UPDATE) hold across
    /// deliveries. Longer than any expiry used.
    pub history_horizon: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 100_000,
            max_payload: 1 << 20,
            moderate_tries: 3,
            in_flight: Duration::from_secs(60),
            history_horizon: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Why a push (or the store) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("outbox full ({max} entries)")]
    Full { max: usize },
    #[error("payload of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("entry expires at {expires_at:?}, not after now ({now:?})")]
    AlreadyExpired {
        expires_at: Timestamp,
        now: Timestamp,
    },
    #[error("refused by the lifecycle rules: {0}")]
    Refused(#[from] Refused),
    #[error("outbox store: {0}")]
    Store(#[from] StoreError),
}

macro_rules! store_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Store(e.into())
            }
        }
    )*};
}
store_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// One entry to send now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub id: Id,
    pub protocol: String,
    pub op: Op,
    pub resource: String,
    pub payload: Vec<u8>,
}

/// What to send to one peer now, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub peer: PeerId,
    pub items: Vec<Item>,
}

/// Description of an entry that left the outbox undelivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gone {
    pub id: Id,
    pub peer: PeerId,
    pub protocol: String,
    pub op: Op,
    pub resource: String,
    pub level: Level,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub failures: u32,
}

/// An entry removed by [`Outbox::expire`].
pub type Expired = Gone;

/// Outcome of [`Outbox::failed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failed {
    /// Next attempt not before `at`.
    Retry { at: Timestamp },
    /// A moderate entry out of tries: removed.
    Dropped(Gone),
    /// No such entry (acknowledged, replaced or expired meanwhile).
    Unknown,
}

/// A stored row that cannot be delivered, moved to the quarantine table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corrupt {
    pub id: Id,
    pub why: Corruption,
}

/// Figures for logs and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub depth: usize,
    pub critical: usize,
    pub moderate: usize,
    /// Age of the oldest entry.
    pub oldest_age: Option<Duration>,
    pub per_peer: BTreeMap<PeerId, usize>,
    /// Of `per_peer`, the critical entries (the rest are moderate).
    pub critical_per_peer: BTreeMap<PeerId, usize>,
    pub expired_total: u64,
    pub dropped_total: u64,
    pub corrupted_total: u64,
    pub refused_total: u64,
}

/// The last mutation pushed for a key, and when.
type Mark = (Op, Timestamp);

#[derive(Clone, Debug)]
struct Slot {
    key: Key,
    protocol: String,
    op: Op,
    level: Level,
    created_at: Timestamp,
    expires_at: Timestamp,
    failures: u32,
    next_due: Timestamp,
    in_flight: bool,
    /// Moderate entries only (critical payloads are read from the file when due).
    payload: Option<Vec<u8>>,
}

impl Slot {
    fn gone(&self, id: Id) -> Gone {
        Gone {
            id,
            peer: self.key.peer,
            protocol: self.protocol.clone(),
            op: self.op,
            resource: self.key.resource.clone(),
            level: self.level,
            created_at: self.created_at,
            expires_at: self.expires_at,
            failures: self.failures,
        }
    }
}

/// The outbox (see the module docs).
pub struct Outbox {
    db: Database,
    sealer: Sealer,
    limits: Limits,
    epoch: u64,
    next_seq: u64,
    /// Sequence numbers below this one are reserved in the file.
    seq_reserved: u64,
    slots: BTreeMap<Id, Slot>,
    by_key: HashMap<Key, Id>,
    /// Key bytes → last mutation pushed and when.
    history: HashMap<Vec<u8>, Mark>,
    corrupted: Vec<Corrupt>,
    stats: Stats,
}

fn history_value(op: Op, at: Timestamp) -> [u8; 9] {
    let mut v = [0u8; 9];
    v[0] = op.code();
    v[1..].copy_from_slice(&at.as_millis().to_be_bytes());
    v
}

impl Outbox {
    /// Opens (or creates) the outbox file at `path` with the 32-byte `key` (derive it with
    /// `NodeIdentity::derive_key(KEY_LABEL)`). Every stored row is decrypted once: rows that
    /// do not open are moved to the quarantine table and reported by
    /// [`Outbox::take_corrupted`]; the others are due at once.
    pub fn open(path: impl AsRef<Path>, key: &[u8; 32], limits: Limits) -> Result<Self, Error> {
        let db = garden_store::open(path.as_ref())?;
        let sealer = Sealer::new(key);
        let mut slots = BTreeMap::new();
        let mut by_key = HashMap::new();
        let mut history = HashMap::new();
        let mut corrupted = Vec::new();
        let txn = db.begin_write()?;
        let (epoch, next_seq) = {
            let mut meta = txn.open_table(META)?;
            let stored = meta.get("epoch")?.map(|e| e.value());
            let epoch = match stored {
                Some(e) => e,
                None => {
                    let e = rand::thread_rng().gen::<u64>();
                    meta.insert("epoch", e)?;
                    e
                }
            };
            let mut next_seq = meta.get("next_seq")?.map(|v| v.value()).unwrap_or(1);
            let mut entries = txn.open_table(ENTRIES)?;
            let mut quarantine = txn.open_table(QUARANTINE)?;
            let mut bad = Vec::new();
            for row in entries.iter()? {
                let (seq, bytes) = row?;
                let seq = seq.value();
                next_seq = next_seq.max(seq + 1);
                let id = Id::new(epoch, seq);
                match sealer.open(id, bytes.value()) {
                    Ok((h, _)) => {
                        let e = Entry {
                            peer: h.peer,
                            protocol: h.protocol.clone(),
                            op: h.op,
                            resource: h.resource.clone(),
                            level: Level::Critical,
                            payload: Vec::new(),
                            expires_at: h.expires_at,
                        };
                        let key = e.key();
                        // Two stored rows for one key can only come from tampering: the
                        // younger wins, the older is reported.
                        if let Some(old) = by_key.insert(key.clone(), id) {
                            slots.remove(&old);
                            bad.push((old.seq(), Corruption::Undecodable));
                        }
                        slots.insert(
                            id,
                            Slot {
                                key,
                                protocol: h.protocol,
                                op: h.op,
                                level: Level::Critical,
                                created_at: h.created_at,
                                expires_at: h.expires_at,
                                failures: 0,
                                next_due: Timestamp::ZERO,
                                in_flight: false,
                                payload: None,
                            },
                        );
                    }
                    Err(why) => bad.push((seq, why)),
                }
            }
            for (seq, why) in bad {
                if let Some(row) = entries.remove(seq)? {
                    quarantine.insert(seq, row.value())?;
                }
                corrupted.push(Corrupt {
                    id: Id::new(epoch, seq),
                    why,
                });
            }
            for row in quarantine.iter()? {
                next_seq = next_seq.max(row?.0.value() + 1);
            }
            meta.insert("next_seq", next_seq)?;
            let hist = txn.open_table(HISTORY)?;
            for row in hist.iter()? {
                let (k, v) = row?;
                let v = v.value();
                if let (Some(op), Ok(at)) = (
                    v.first().and_then(|c| Op::from_code(*c)),
                    <[u8; 8]>::try_from(&v[1..]),
                ) {
                    history.insert(
                        k.value().to_vec(),
                        (op, Timestamp::from_millis(u64::from_be_bytes(at))),
                    );
                }
            }
            (epoch, next_seq)
        };
        txn.commit()?;
        let stats = Stats {
            corrupted_total: corrupted.len() as u64,
            ..Stats::default()
        };
        Ok(Outbox {
            db,
            sealer,
            limits,
            epoch,
            next_seq,
            seq_reserved: next_seq,
            slots,
            by_key,
            history,
            corrupted,
            stats,
        })
    }

    /// Queues `entry` (pushed at `now`). When an entry with the same key is queued, the
    /// lifecycle rules decide ([`lifecycle::admit`]): the new entry replaces it under a new id
    /// (the old id is then unknown to [`Outbox::ack`]), or the push is refused. A critical
    /// entry is on disk when this returns `Ok`. The new entry is due at once.
    pub fn push(&mut self, entry: Entry, now: Timestamp) -> Result<Id, Error> {
        let mut ids = self.push_all(vec![entry], now)?;
        ids.pop().expect("one result per entry")
    }

    /// Pushes several entries in one write transaction (one fsync); one result per entry, in
    /// order, each decided against the state left by the earlier ones. A store failure fails
    /// the whole batch and leaves the outbox as it was.
    pub fn push_all(
        &mut self,
        entries: Vec<Entry>,
        now: Timestamp,
    ) -> Result<Vec<Result<Id, Error>>, Error> {
        let mut undo = Vec::new();
        let seq_before = self.next_seq;
        let refused_before = self.stats.refused_total;
        let txn = self.db.begin_write()?;
        let outcome = self.push_in(&txn, entries, now, &mut undo);
        let committed = outcome.and_then(|results| {
            let reserve = self.next_seq.max(self.seq_reserved);
            if self.next_seq > self.seq_reserved || undo.iter().any(|u| u.wrote) {
                txn.open_table(META)?
                    .insert("next_seq", reserve + SEQ_LEASE)?;
                txn.commit()?;
                self.seq_reserved = reserve + SEQ_LEASE;
            } else {
                txn.abort()?;
            }
            Ok(results)
        });
        if committed.is_err() {
            for u in undo.into_iter().rev() {
                u.revert(self);
            }
            self.next_seq = seq_before;
            self.stats.refused_total = refused_before;
        }
        committed
    }

    fn push_in(
        &mut self,
        txn: &redb::WriteTransaction,
        entries: Vec<Entry>,
        now: Timestamp,
        undo: &mut Vec<Undo>,
    ) -> Result<Vec<Result<Id, Error>>, Error> {
        let mut rows = txn.open_table(ENTRIES)?;
        let mut hist = txn.open_table(HISTORY)?;
        let mut results = Vec::with_capacity(entries.len());
        for e in entries {
            let (op, old) = match self.plan(&e, now) {
                Ok(p) => p,
                Err(err) => {
                    if matches!(err, Error::Refused(_)) {
                        self.stats.refused_total += 1;
                    }
                    results.push(Err(err));
                    continue;
                }
            };
            let key = e.key();
            let level = e.level();
            let id = Id::new(self.epoch, self.next_seq);
            self.next_seq += 1;
            let mut wrote = false;
            let old_slot = old.and_then(|o| self.slots.remove(&o));
            if let (Some(o), Some(s)) = (old, &old_slot) {
                if s.level == Level::Critical {
                    rows.remove(o.seq())?;
                    wrote = true;
                }
            }
            let kb = key.to_bytes();
            let old_hist = if e.op.is_mutation() {
                hist.insert(kb.as_slice(), history_value(e.op, now).as_slice())?;
                wrote = true;
                self.history.insert(kb.clone(), (e.op, now))
            } else {
                None
            };
            let mut slot = Slot {
                key: key.clone(),
                protocol: e.protocol,
                op,
                level,
                created_at: now,
                expires_at: e.expires_at,
                failures: 0,
                next_due: now,
                in_flight: false,
                payload: None,
            };
            if level == Level::Critical {
                let header = Header {
                    peer: key.peer,
                    protocol: slot.protocol.clone(),
                    resource: key.resource.clone(),
                    op,
                    created_at: now,
                    expires_at: e.expires_at,
                };
                rows.insert(
                    id.seq(),
                    self.sealer.seal(id, &header, &e.payload).as_slice(),
                )?;
                wrote = true;
            } else {
                slot.payload = Some(e.payload);
            }
            self.slots.insert(id, slot);
            let old_key = self.by_key.insert(key.clone(), id);
            undo.push(Undo {
                id,
                old: old.zip(old_slot),
                key,
                old_key,
                hist: e.op.is_mutation().then_some((kb, old_hist)),
                wrote,
            });
            results.push(Ok(id));
        }
        Ok(results)
    }

    /// Checks one entry: bounds, expiry, lifecycle. Returns the op to queue and the queued
    /// entry it replaces.
    fn plan(&self, e: &Entry, now: Timestamp) -> Result<(Op, Option<Id>), Error> {
        if e.payload.len() > self.limits.max_payload {
            return Err(Error::TooLarge {
                size: e.payload.len(),
                max: self.limits.max_payload,
            });
        }
        if e.expires_at <= now {
            return Err(Error::AlreadyExpired {
                expires_at: e.expires_at,
                now,
            });
        }
        let key = e.key();
        let old = self.by_key.get(&key).copied();
        let last = self.history.get(&key.to_bytes()).map(|h| h.0);
        let queued = old.and_then(|o| self.slots.get(&o)).map(|s| s.op);
        let op = lifecycle::admit(last, queued, e.op)?;
        if old.is_none() && self.slots.len() >= self.limits.max_entries {
            return Err(Error::Full {
                max: self.limits.max_entries,
            });
        }
        Ok((op, old))
    }
}

/// How to take back one push of a batch whose transaction did not commit.
struct Undo {
    id: Id,
    old: Option<(Id, Slot)>,
    key: Key,
    old_key: Option<Id>,
    hist: Option<(Vec<u8>, Option<Mark>)>,
    wrote: bool,
}

impl Undo {
    fn revert(self, o: &mut Outbox) {
        o.slots.remove(&self.id);
        if let Some((id, slot)) = self.old {
            o.slots.insert(id, slot);
        }
        match self.old_key {
            Some(id) => o.by_key.insert(self.key, id),
            None => o.by_key.remove(&self.key),
        };
        if let Some((kb, prev)) = self.hist {
            match prev {
                Some(h) => o.history.insert(kb, h),
                None => o.history.remove(&kb),
            };
        }
    }
}

impl Outbox {
    /// What to send now, per peer, oldest first: entries not expired, not in flight, whose
    /// next attempt is due. Each is then in flight until [`Outbox::ack`], [`Outbox::failed`]
    /// or `Limits::in_flight` passes. A stored row that no longer opens is moved aside and
    /// reported by [`Outbox::take_corrupted`] instead of being delivered.
    pub fn due(&mut self, now: Timestamp) -> Result<Vec<Delivery>, Error> {
        let ids: Vec<Id> = self
            .slots
            .iter()
            .filter(|(_, s)| s.expires_at > now && s.next_due <= now)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut per_peer: BTreeMap<PeerId, Vec<Item>> = BTreeMap::new();
        let mut bad = Vec::new();
        {
            let read = self.db.begin_read()?;
            let rows = read.open_table(ENTRIES)?;
            for id in ids {
                let slot = &self.slots[&id];
                let payload = match &slot.payload {
                    Some(p) => p.clone(),
                    None => {
                        let opened = match rows.get(id.seq())? {
                            Some(row) => self.sealer.open(id, row.value()),
                            None => Err(Corruption::Undecodable),
                        };
                        match opened {
                            Ok((h, p)) if h.peer == slot.key.peer && h.op == slot.op => p,
                            Ok(_) => {
                                bad.push((id, Corruption::Undecodable));
                                continue;
                            }
                            Err(why) => {
                                bad.push((id, why));
                                continue;
                            }
                        }
                    }
                };
                per_peer.entry(slot.key.peer).or_default().push(Item {
                    id,
                    protocol: slot.protocol.clone(),
                    op: slot.op,
                    resource: slot.key.resource.clone(),
                    payload,
                });
            }
        }
        if !bad.is_empty() {
            self.quarantine(&bad)?;
        }
        let until = now.plus(self.limits.in_flight);
        for items in per_peer.values() {
            for it in items {
                if let Some(s) = self.slots.get_mut(&it.id) {
                    s.in_flight = true;
                    s.next_due = until;
                }
            }
        }
        Ok(per_peer
            .into_iter()
            .map(|(peer, items)| Delivery { peer, items })
            .collect())
    }

    /// Moves rows aside (one transaction) and reports them.
    fn quarantine(&mut self, bad: &[(Id, Corruption)]) -> Result<(), Error> {
        let txn = self.db.begin_write()?;
        {
            let mut rows = txn.open_table(ENTRIES)?;
            let mut q = txn.open_table(QUARANTINE)?;
            for (id, _) in bad {
                let row = rows.remove(id.seq())?.map(|r| r.value().to_vec());
                if let Some(row) = row {
                    q.insert(id.seq(), row.as_slice())?;
                }
            }
        }
        txn.commit()?;
        for (id, why) in bad {
            self.forget(*id);
            self.corrupted.push(Corrupt { id: *id, why: *why });
            self.stats.corrupted_total += 1;
        }
        Ok(())
    }

    /// Removes an entry from memory.
    fn forget(&mut self, id: Id) -> Option<Slot> {
        let slot = self.slots.remove(&id)?;
        if self.by_key.get(&slot.key) == Some(&id) {
            self.by_key.remove(&slot.key);
        }
        Some(slot)
    }

    /// The peer acknowledged entry `id`: it leaves the outbox (the row is deleted before this
    /// returns). False when the id is unknown (already acknowledged, replaced, expired).
    pub fn ack(&mut self, id: Id) -> Result<bool, Error> {
        Ok(self.ack_all(&[id])? == 1)
    }

    /// Acknowledges several entries in one transaction; returns how many were known.
    pub fn ack_all(&mut self, ids: &[Id]) -> Result<usize, Error> {
        let known: Vec<Id> = ids
            .iter()
            .copied()
            .filter(|id| self.slots.contains_key(id))
            .collect();
        let stored: Vec<Id> = known
            .iter()
            .copied()
            .filter(|id| self.slots[id].level == Level::Critical)
            .collect();
        if !stored.is_empty() {
            let txn = self.db.begin_write()?;
            {
                let mut rows = txn.open_table(ENTRIES)?;
                for id in &stored {
                    rows.remove(id.seq())?;
                }
            }
            txn.commit()?;
        }
        for id in &known {
            self.forget(*id);
        }
        Ok(known.len())
    }

    /// Delivery of `id` failed at `now`: schedules the next attempt with backoff, or drops a
    /// moderate entry out of tries. No disk write.
    pub fn failed(&mut self, id: Id, now: Timestamp) -> Failed {
        let tries = self.limits.moderate_tries;
        let Some(slot) = self.slots.get_mut(&id) else {
            return Failed::Unknown;
        };
        slot.failures = slot.failures.saturating_add(1);
        slot.in_flight = false;
        if slot.level == Level::Moderate && slot.failures >= tries {
            let gone = slot.gone(id);
            self.forget(id);
            self.stats.dropped_total += 1;
            return Failed::Dropped(gone);
        }
        let at = now.plus(backoff::delay(
            slot.failures,
            rand::thread_rng().gen::<f64>(),
        ));
        slot.next_due = at;
        Failed::Retry { at }
    }

    /// Removes and returns the entries whose expiry is at or before `now` (counted in
    /// [`Stats::expired_total`]), and forgets lifecycle history older than the horizon.
    pub fn expire(&mut self, now: Timestamp) -> Result<Vec<Expired>, Error> {
        let expired: Vec<Id> = self
            .slots
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        let cutoff = now.minus(self.limits.history_horizon);
        let queued: std::collections::HashSet<Vec<u8>> =
            self.by_key.keys().map(Key::to_bytes).collect();
        let old_hist: Vec<Vec<u8>> = self
            .history
            .iter()
            .filter(|(k, (_, at))| *at < cutoff && !queued.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        let stored = expired
            .iter()
            .any(|id| self.slots[id].level == Level::Critical);
        if stored || !old_hist.is_empty() {
            let txn = self.db.begin_write()?;
            {
                let mut rows = txn.open_table(ENTRIES)?;
                for id in &expired {
                    if self.slots[id].level == Level::Critical {
                        rows.remove(id.seq())?;
                    }
                }
                let mut hist = txn.open_table(HISTORY)?;
                for k in &old_hist {
                    hist.remove(k.as_slice())?;
                }
            }
            txn.commit()?;
        }
        for k in &old_hist {
            self.history.remove(k);
        }
        let out: Vec<Expired> = expired
            .into_iter()
            .filter_map(|id| self.forget(id).map(|s| s.gone(id)))
            .collect();
        self.stats.expired_total += out.len() as u64;
        Ok(out)
    }

    /// `peer` is reachable again (a new connection, a wake-up through the indexers): its
    /// entries not in flight are due at `now`. Returns how many.
    pub fn wake(&mut self, peer: &PeerId, now: Timestamp) -> usize {
        let mut n = 0;
        for s in self.slots.values_mut() {
            if s.key.peer == *peer && !s.in_flight && s.next_due > now {
                s.next_due = now;
                n += 1;
            }
        }
        n
    }

    /// Peers with at least one critical entry (what a heartbeat's `pending_contact` lists).
    pub fn pending_peers(&self) -> BTreeSet<PeerId> {
        self.slots
            .values()
            .filter(|s| s.level == Level::Critical)
            .map(|s| s.key.peer)
            .collect()
    }

    /// The store (tests tamper with rows through it).
    #[cfg(test)]
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// Entries held.
    pub fn depth(&self) -> usize {
        self.slots.len()
    }

    /// Whether entry `id` is held.
    pub fn contains(&self, id: Id) -> bool {
        self.slots.contains_key(&id)
    }

    /// Ids held, oldest first.
    pub fn ids(&self) -> Vec<Id> {
        self.slots.keys().copied().collect()
    }

    /// Rows found corrupted since the last call (at open or when due), with their ids.
    pub fn take_corrupted(&mut self) -> Vec<Corrupt> {
        std::mem::take(&mut self.corrupted)
    }

    /// Depth, oldest age, per-peer counts and the running totals.
    pub fn stats(&self, now: Timestamp) -> Stats {
        let mut st = Stats {
            depth: self.slots.len(),
            oldest_age: self
                .slots
                .values()
                .map(|s| s.created_at)
                .min()
                .map(|t| now.since(t)),
            ..self.stats.clone()
        };
        for s in self.slots.values() {
            *st.per_peer.entry(s.key.peer).or_default() += 1;
            match s.level {
                Level::Critical => {
                    st.critical += 1;
                    *st.critical_per_peer.entry(s.key.peer).or_default() += 1;
                }
                Level::Moderate => st.moderate += 1,
            }
        }
        st
    }
}
