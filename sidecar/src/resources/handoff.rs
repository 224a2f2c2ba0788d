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

use redb::{Database, TableDefinition, WriteTransaction};

use super::db::{db, BookingRows, StoreError};
use super::ids::BookingId;
use super::usage::ConfirmedUsage;

pub(super) const PENDING: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new(NAME);
/// The table's name, also in [`StoreError::Corrupt`].
const NAME: &str = "usage.pending";

/// See the module docs.
#[derive(Clone)]
pub struct Handoff {
    rows: BookingRows,
}

/// Queues `usage` inside the caller's write transaction.
pub(super) fn queue(tx: &WriteTransaction, usage: &ConfirmedUsage) -> Result<(), StoreError> {
    let bytes = cbor4ii::serde::to_vec(Vec::new(), usage).map_err(|e| StoreError::Corrupt {
        table: NAME,
        reason: e.to_string(),
    })?;
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
        Ok(Handoff {
            rows: BookingRows::open(database, PENDING, NAME)?,
        })
    }

    /// Up to `max` waiting confirmed usages, in key order, after `after`'s when given.
    pub fn pending(
        &self,
        max: usize,
        after: Option<&BookingId>,
    ) -> Result<Vec<ConfirmedUsage>, StoreError> {
        self.rows.list(max, after)
    }

    /// Settlement took the usage of `booking`: its row goes. False when there was none.
    pub fn done(&self, booking: &BookingId) -> Result<bool, StoreError> {
        self.rows.remove(booking)
    }

    /// Rows waiting.
    pub fn len(&self) -> Result<u64, StoreError> {
        self.rows.len()
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}
