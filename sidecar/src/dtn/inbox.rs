//! Receiver idempotence: an outbox delivers at least once (an acknowledgement can be lost, a
//! sender can crash between sending and removing), so the receiver remembers which
//! (sender, entry id) it has applied and acknowledges a redelivery without applying it again.
//!
//! The record is written (fsync) before [`Inbox::accept`] returns [`Accepted::Fresh`], so it
//! survives a restart. It is kept for a bounded horizon, which must exceed the longest expiry
//! senders use (an entry cannot be redelivered after it expired at its sender). Each accept
//! also forgets a few records older than the horizon, so the table stays bounded without a
//! separate sweep; [`Inbox::prune`] forgets them all at once.
//!
//! Where the application's effect lives decides what "applied once" means:
//! * effect in the same redb file: [`Inbox::accept_with`] runs the effect inside the
//!   transaction that records the id, so a crash leaves both or neither (exactly once);
//! * effect elsewhere (the data plane's service, in its own file): the plane hands the
//!   entries not [`Inbox::recorded`] to the application, and records ([`Inbox::accept_all`])
//!   and acknowledges only those the application said it applied. A crash between the effect
//!   and the record redelivers the entry (at least once), so such an effect must be
//!   idempotent — the catalogue's versions, the bookings' ids and states are; nothing
//!   acknowledged is ever lost. (Recording first would lose the effect of an entry whose
//!   receiver crashed before applying it: it would be a duplicate on redelivery.)

use std::path::Path;
use std::time::Duration;

use libp2p::PeerId;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::entry::Id;
use super::store::StoreError;
use crate::time::Timestamp;

/// sender bytes ‖ id (16) → accepted at (ms).
const APPLIED: TableDefinition<&[u8], u64> = TableDefinition::new("applied");
/// (accepted at, sender ‖ id) → (): oldest first, for pruning.
const BY_TIME: TableDefinition<(u64, &[u8]), ()> = TableDefinition::new("applied_by_time");
/// Expired records forgotten per accept.
const PRUNE_STEP: usize = 8;

/// Whether a delivered entry is to be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// First delivery: apply it, then acknowledge.
    Fresh,
    /// Already applied: acknowledge only.
    Duplicate,
}

/// The receiver's table (see the module docs).
pub struct Inbox {
    db: Database,
    horizon: Duration,
}

fn key(sender: &PeerId, id: Id) -> Vec<u8> {
    let mut k = sender.to_bytes();
    k.extend_from_slice(&id.to_bytes());
    k
}

impl Inbox {
    /// Opens (or creates) the table at `path`, remembering entries for `horizon`.
    pub fn open(path: impl AsRef<Path>, horizon: Duration) -> Result<Self, StoreError> {
        let db = garden_store::open(path.as_ref())?;
        let txn = db.begin_write()?;
        txn.open_table(APPLIED)?;
        txn.open_table(BY_TIME)?;
        txn.commit()?;
        Ok(Inbox { db, horizon })
    }

    /// Entry `id` from `sender` was delivered at `now`: [`Accepted::Fresh`] the first time
    /// (recorded durably before returning), [`Accepted::Duplicate`] after.
    pub fn accept(
        &mut self,
        sender: &PeerId,
        id: Id,
        now: Timestamp,
    ) -> Result<Accepted, StoreError> {
        self.accept_with(sender, id, now, |_| Ok(()))
    }

    /// [`Inbox::accept`], running `apply` (the application's effect, written to its own
    /// tables of this file) in the same transaction when the entry is fresh: committed
    /// together, or not at all when `apply` fails (the error is returned, nothing recorded).
    pub fn accept_with(
        &mut self,
        sender: &PeerId,
        id: Id,
        now: Timestamp,
        apply: impl FnOnce(&redb::WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<Accepted, StoreError> {
        let k = key(sender, id);
        {
            let read = self.db.begin_read()?;
            if read.open_table(APPLIED)?.get(k.as_slice())?.is_some() {
                return Ok(Accepted::Duplicate);
            }
        }
        let txn = self.db.begin_write()?;
        {
            let mut applied = txn.open_table(APPLIED)?;
            let mut by_time = txn.open_table(BY_TIME)?;
            applied.insert(k.as_slice(), now.as_millis())?;
            by_time.insert((now.as_millis(), k.as_slice()), ())?;
            self.prune_in(&mut applied, &mut by_time, now, PRUNE_STEP)?;
        }
        apply(&txn)?;
        txn.commit()?;
        Ok(Accepted::Fresh)
    }

    /// [`Inbox::accept`] for several entries of one sender in one transaction (one fsync): one
    /// answer per id, in order (an id repeated in the batch is `Duplicate` the second time).
    pub fn accept_all(
        &mut self,
        sender: &PeerId,
        ids: &[Id],
        now: Timestamp,
    ) -> Result<Vec<Accepted>, StoreError> {
        let txn = self.db.begin_write()?;
        let mut out = Vec::with_capacity(ids.len());
        {
            let mut applied = txn.open_table(APPLIED)?;
            let mut by_time = txn.open_table(BY_TIME)?;
            for id in ids {
                let k = key(sender, *id);
                if applied.get(k.as_slice())?.is_some() {
                    out.push(Accepted::Duplicate);
                    continue;
                }
                applied.insert(k.as_slice(), now.as_millis())?;
                by_time.insert((now.as_millis(), k.as_slice()), ())?;
                out.push(Accepted::Fresh);
            }
            self.prune_in(&mut applied, &mut by_time, now, PRUNE_STEP)?;
        }
        txn.commit()?;
        Ok(out)
    }

    /// For each of `ids` from `sender`, whether it is recorded (one read transaction).
    pub fn recorded(&self, sender: &PeerId, ids: &[Id]) -> Result<Vec<bool>, StoreError> {
        let read = self.db.begin_read()?;
        let applied = read.open_table(APPLIED)?;
        ids.iter()
            .map(|id| Ok(applied.get(key(sender, *id).as_slice())?.is_some()))
            .collect()
    }

    /// The application could not apply entry `id`: forget it, so that its redelivery is
    /// fresh. True when it was recorded.
    pub fn forget(&mut self, sender: &PeerId, id: Id) -> Result<bool, StoreError> {
        let k = key(sender, id);
        let txn = self.db.begin_write()?;
        let found = {
            let mut applied = txn.open_table(APPLIED)?;
            let at = applied.remove(k.as_slice())?.map(|v| v.value());
            if let Some(at) = at {
                txn.open_table(BY_TIME)?.remove((at, k.as_slice()))?;
            }
            at.is_some()
        };
        txn.commit()?;
        Ok(found)
    }

    /// Forgets every record older than the horizon; returns how many.
    pub fn prune(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let n = {
            let mut applied = txn.open_table(APPLIED)?;
            let mut by_time = txn.open_table(BY_TIME)?;
            self.prune_in(&mut applied, &mut by_time, now, usize::MAX)?
        };
        txn.commit()?;
        Ok(n)
    }

    fn prune_in(
        &self,
        applied: &mut redb::Table<&[u8], u64>,
        by_time: &mut redb::Table<(u64, &[u8]), ()>,
        now: Timestamp,
        most: usize,
    ) -> Result<usize, StoreError> {
        let cutoff = now.minus(self.horizon).as_millis();
        let mut n = 0;
        while n < most {
            let first = by_time.first()?.map(|(k, _)| {
                let (at, key) = k.value();
                (at, key.to_vec())
            });
            match first {
                Some((at, k)) if at < cutoff => {
                    by_time.remove((at, k.as_slice()))?;
                    applied.remove(k.as_slice())?;
                    n += 1;
                }
                _ => break,
            }
        }
        Ok(n)
    }

    /// The file, for the application's own tables (read what [`Inbox::accept_with`] wrote).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Records held.
    pub fn len(&self) -> Result<u64, StoreError> {
        Ok(self.db.begin_read()?.open_table(APPLIED)?.len()?)
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Whether entry `id` from `sender` is recorded as applied.
    pub fn contains(&self, sender: &PeerId, id: Id) -> Result<bool, StoreError> {
        let read = self.db.begin_read()?;
        let found = read
            .open_table(APPLIED)?
            .get(key(sender, id).as_slice())?
            .is_some();
        Ok(found)
    }
}
