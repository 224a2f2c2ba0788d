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
