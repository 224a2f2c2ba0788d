//! Confirmed usage waiting to be handed to settlement: redb table `usage.pending` (booking
//! key → CBOR [`ConfirmedUsage`]) in the resources database.
//!
//! The consumer's confirmation of a usage report and its row here are written in **one**
//! write transaction ([`super::store::BookingStore::update`] with `handoff`), so a confirmed
//! usage is never lost between the booking and settlement: a crash right after the commit
//! leaves the row, which is handed over after the restart. A row is removed once the
//! settlement channel took it ([`Handoff::done`]). Within one run each confirmed usage is
//! handed over once; across a crash between the hand-over and the removal it is handed over
//! again, so settlement keys what it received by booking id.

use std::sync::Arc;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::db::{db, StoreError};
use super::ids::BookingId;
use super::usage::ConfirmedUsage;

pub(super) const PENDING: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("usage.pending");

/// See the module docs.
#[derive(Clone)]
pub struct Handoff {
    db: Arc<Database>,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table: "usage.pending",
        reason: e.to_string(),
    }
}

/// Queues `usage` inside the caller's write transaction.
pub(super) fn queue(tx: &WriteTransaction, usage: &ConfirmedUsage) -> Result<(), StoreError> {
    let bytes = cbor4ii::serde::to_vec(Vec::new(), usage).map_err(corrupt)?;
    let mut t = tx.open_table(PENDING).map_err(db)?;
    t.insert(
        (usage.booking.consumer.as_str(), usage.booking.nonce),
        bytes.as_slice(),
    )
    .map_err(db)?;
    Ok(())
}

impl Handoff {
    /// The table in `db` (created if missing).
    pub fn new(database: Arc<Database>) -> Result<Handoff, StoreError> {
        let tx = database.begin_write().map_err(db)?;
        tx.open_table(PENDING).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(Handoff { db: database })
    }

    /// Up to `max` waiting confirmed usages, in key order.
    pub fn pending(&self, max: usize) -> Result<Vec<ConfirmedUsage>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(PENDING).map_err(db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db)?.take(max) {
            let (_, v) = row.map_err(db)?;
            out.push(cbor4ii::serde::from_slice(v.value()).map_err(corrupt)?);
        }
        Ok(out)
    }

    /// Settlement took the usage of `booking`: its row goes. False when there was none.
    pub fn done(&self, booking: &BookingId) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(db)?;
        let removed = {
            let mut t = tx.open_table(PENDING).map_err(db)?;
            let r = t
                .remove((booking.consumer.as_str(), booking.nonce))
                .map_err(db)?;
            r.is_some()
        };
        tx.commit().map_err(db)?;
        Ok(removed)
    }

    /// Rows waiting.
    pub fn len(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(PENDING).map_err(db)?;
        t.len().map_err(db)
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}
