//! The nano/master exchange's state, kept in the resources database (table `delegation.sync`):
//! on a nano, its side of the rounds ([`NanoSync`]); on a master, one [`MasterSync`] per nano;
//! with each, the notifications of cancelled bookings decided but not yet handed to the outbox
//! (written in the same transaction as the round's state, removed once queued).

use std::sync::Arc;

use redb::{Database, TableDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::delegation::sync::{MasterSync, NanoSync};
use crate::resources::booking::Booking;
use crate::resources::db::{db, StoreError};

const SYNC: TableDefinition<&str, &[u8]> = TableDefinition::new("delegation.sync");

/// A requester to be told that its booking was cancelled by a reconciliation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub booking: Booking,
    /// `<code>: <detail>` (`superseded_by_master: overlaps booking …`).
    pub reason: String,
}

/// One side's record (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record<S> {
    pub sync: S,
    pub notices: Vec<Notice>,
}

pub type MasterRecord = Record<MasterSync>;
pub type NanoRecord = Record<NanoSync>;

/// See the module docs.
#[derive(Clone)]
pub struct SyncStore {
    db: Arc<Database>,
}

impl SyncStore {
    /// The table in `db` (created if missing).
    pub fn new(db: Arc<Database>) -> Result<SyncStore, StoreError> {
        let tx = db.begin_write().map_err(crate::resources::db::db)?;
        tx.open_table(SYNC).map_err(crate::resources::db::db)?;
        tx.commit().map_err(crate::resources::db::db)?;
        Ok(SyncStore { db })
    }

    /// The record under `key` (a nano's DID), empty when none was written.
    pub fn load<S: DeserializeOwned + Default>(&self, key: &str) -> Result<Record<S>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(SYNC).map_err(db)?;
        match t.get(key).map_err(db)? {
            None => Ok(Record::default()),
            Some(v) => cbor4ii::serde::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                table: "delegation.sync",
                reason: e.to_string(),
            }),
        }
    }

    /// Replaces the record under `key` (one durable write).
    pub fn save<S: Serialize>(&self, key: &str, r: &Record<S>) -> Result<(), StoreError> {
        // Serialising plain structs into a Vec cannot fail.
        let bytes = cbor4ii::serde::to_vec(Vec::new(), r).unwrap_or_default();
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut t = tx.open_table(SYNC).map_err(db)?;
            t.insert(key, bytes.as_slice()).map_err(db)?;
        }
        tx.commit().map_err(db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_start_empty() {
        let s = SyncStore::new(crate::resources::db::temp()).unwrap();
        let empty: NanoRecord = s.load("n").unwrap();
        assert_eq!(empty, NanoRecord::default());
        let mut r = MasterRecord::default();
        r.sync.epoch = 4;
        r.sync.awaiting = true;
        s.save("n", &r).unwrap();
        assert_eq!(s.load::<MasterSync>("n").unwrap(), r);
    }
}
