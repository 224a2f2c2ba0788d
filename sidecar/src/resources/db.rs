//! The data plane's redb database: one file holding the catalogue and the bookings, opened
//! once per process and shared (`Arc`) by [`super::catalogue::Catalogue`] and
//! [`super::store::BookingStore`].

use std::path::Path;
use std::sync::Arc;

pub use redb::Database;

/// A storage failure (I/O, a corrupt file, or a stored value this build cannot read).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Boxed: redb's error is large and every result of the catalogue carries this type.
    #[error("resources database: {0}")]
    Db(Box<redb::Error>),
    #[error("resources database: a stored {table} entry does not decode: {reason}")]
    Corrupt { table: &'static str, reason: String },
}

/// Any redb error as a [`StoreError`].
pub(crate) fn db<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(Box::new(e.into()))
}

/// Opens (or creates, atomically: see `garden_store`) the database file at `path`.
pub fn open(path: &Path) -> Result<Arc<Database>, StoreError> {
    Ok(Arc::new(garden_store::open(path).map_err(db)?))
}

/// A table of CBOR values keyed by booking id (`(consumer DID, nonce)`) in the database:
/// the rows that wait for settlement on either side of a booking ([`super::handoff`] on the
/// consumer's, [`super::copies`] on the provider's). Each owner writes its rows its own way;
/// listing, removal and counting are this one implementation.
#[derive(Clone)]
pub(crate) struct BookingRows {
    db: Arc<Database>,
    table: redb::TableDefinition<'static, (&'static str, u64), &'static [u8]>,
    /// Named in [`StoreError::Corrupt`].
    name: &'static str,
}

impl BookingRows {
    /// `table` in `db` (created if missing).
    pub(crate) fn open(
        db: Arc<Database>,
        table: redb::TableDefinition<'static, (&'static str, u64), &'static [u8]>,
        name: &'static str,
    ) -> Result<BookingRows, StoreError> {
        let tx = db.begin_write().map_err(self::db)?;
        tx.open_table(table).map_err(self::db)?;
        tx.commit().map_err(self::db)?;
        Ok(BookingRows { db, table, name })
    }

    pub(crate) fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// A stored value that does not decode (or encode).
    pub(crate) fn corrupt(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            table: self.name,
            reason: e.to_string(),
        }
    }

    /// Up to `max` rows, in booking key order, after the row of `after` when given (a
    /// reader pages through rows it cannot take yet instead of seeing them again).
    pub(crate) fn list<T: serde::de::DeserializeOwned>(
        &self,
        max: usize,
        after: Option<&super::BookingId>,
    ) -> Result<Vec<T>, StoreError> {
        use std::ops::Bound;
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(self.table).map_err(db)?;
        let mut out = Vec::new();
        let start = match after {
            Some(b) => Bound::Excluded((b.consumer.as_str(), b.nonce)),
            None => Bound::Unbounded,
        };
        let rows = t
            .range::<(&str, u64)>((start, Bound::Unbounded))
            .map_err(db)?;
        for row in rows.take(max) {
            let (_, v) = row.map_err(db)?;
            out.push(cbor4ii::serde::from_slice(v.value()).map_err(|e| self.corrupt(e))?);
        }
        Ok(out)
    }

    /// Removes the row of `booking`; false when there was none.
    pub(crate) fn remove(&self, booking: &super::BookingId) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(db)?;
        let removed = {
            let mut t = tx.open_table(self.table).map_err(db)?;
            let r = t
                .remove((booking.consumer.as_str(), booking.nonce))
                .map_err(db)?;
            r.is_some()
        };
        tx.commit().map_err(db)?;
        Ok(removed)
    }

    pub(crate) fn len(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(self.table).map_err(db)?;
        t.len().map_err(db)
    }
}

#[cfg(test)]
mod rows_tests {
    use super::*;
    use crate::keys::NodeIdentity;
    use crate::resources::{BookingId, Did};

    const ROWS: redb::TableDefinition<(&str, u64), &[u8]> = redb::TableDefinition::new("rows");

    #[test]
    fn a_listing_pages_after_a_booking_in_key_order() {
        let rows = BookingRows::open(temp(), ROWS, "rows").unwrap();
        let dids = [NodeIdentity::generate(), NodeIdentity::generate()].map(|i| Did::of(&i));
        let mut ids: Vec<BookingId> = dids
            .iter()
            .flat_map(|d| {
                (1..=3).map(|nonce| BookingId {
                    consumer: d.clone(),
                    nonce,
                })
            })
            .collect();
        let tx = rows.database().begin_write().unwrap();
        {
            let mut t = tx.open_table(ROWS).unwrap();
            for (n, b) in ids.iter().enumerate() {
                let v = cbor4ii::serde::to_vec(Vec::new(), &(n as u64)).unwrap();
                t.insert((b.consumer.as_str(), b.nonce), v.as_slice())
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        ids.sort_by(|a, b| (a.consumer.as_str(), a.nonce).cmp(&(b.consumer.as_str(), b.nonce)));
        let all: Vec<u64> = rows.list(10, None).unwrap();
        assert_eq!(all.len(), 6);
        // Pages of two, each after the last key of the one before: every row once, in order.
        let mut paged: Vec<u64> = Vec::new();
        let mut after: Option<&BookingId> = None;
        for page in 0..3 {
            let got: Vec<u64> = rows.list(2, after).unwrap();
            assert_eq!(got.len(), 2, "page {page}");
            paged.extend(got);
            after = Some(&ids[2 * page + 1]);
        }
        assert_eq!(paged, all);
        assert!(rows.list::<u64>(2, after).unwrap().is_empty());
        // A cursor that is not a row (taken meanwhile) still starts after its key.
        let gone = BookingId {
            consumer: ids[0].consumer.clone(),
            nonce: 0,
        };
        assert_eq!(rows.list::<u64>(10, Some(&gone)).unwrap(), all);
    }
}

/// A fresh in-memory database (tests; reopen tests use [`open`] on a [`tempdir::TempDir`]).
/// Creating one takes a quarter of a second in a debug build: property tests share one.
#[cfg(test)]
pub(crate) fn temp() -> Arc<Database> {
    let db = Database::builder()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(db)
}

#[cfg(test)]
pub(crate) mod tempdir {
    //! A directory removed on drop (no `tempfile` dependency).
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    static NEXT: AtomicU64 = AtomicU64::new(0);

    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new() -> TempDir {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("garden-resources-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("{e}"));
            TempDir(p)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
