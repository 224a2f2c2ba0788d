//! Opening a redb file so that a crash at any instant leaves either no file or a valid one.
//!
//! redb 2 initialises a new file in place: it sizes the file, writes the structures, then the
//! magic number last. A process killed between the resize and the magic number leaves a
//! non-empty file without it, which every later `Database::create`/`open` refuses with
//! `InvalidData` — the outbox, the inbox or the signer queue could then never open again
//! (the kill -9 test of the DTN outbox found it, killing during the first open).
//!
//! [`open`] creates the database under a temporary name next to the target, closes it (redb
//! fsyncs the header), fsyncs it, renames it into place and fsyncs the directory. Only then is
//! the file opened under its real name. A leftover temporary file is from a creation that
//! never completed: nothing was ever stored in it, and it is removed.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub use redb::{Database, DatabaseError};

/// Opens the database at `path`, creating it atomically (and its directory) if it does not
/// exist yet.
pub fn open(path: &Path) -> Result<Database, DatabaseError> {
    if let Some(dir) = parent(path) {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    if !path.exists() {
        create(path).map_err(io_error)?;
    }
    Database::open(path)
}

/// The temporary name a database is created under: hidden, next to the target (same file
/// system, so the rename is atomic).
pub fn creating_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.creating"))
}

fn create(path: &Path) -> io::Result<()> {
    let tmp = creating_path(path);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    drop(Database::create(&tmp).map_err(io::Error::other)?);
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = parent(path) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|d| !d.as_os_str().is_empty())
}

fn io_error(e: io::Error) -> DatabaseError {
    DatabaseError::Storage(redb::StorageError::Io(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::TableDefinition;

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("garden-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn creates_then_reopens_with_the_data() {
        let d = dir("reopen");
        let path = d.join("sub").join("x.redb");
        {
            let db = open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(T).unwrap().insert(1, 2).unwrap();
            txn.commit().unwrap();
        }
        let db = open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        assert_eq!(
            txn.open_table(T).unwrap().get(1).unwrap().unwrap().value(),
            2
        );
        assert!(!creating_path(&path).exists());
        std::fs::remove_dir_all(d).unwrap();
    }

    /// A creation cut after redb sized the file but before its magic number: the half-made
    /// file is under the temporary name, and the next open starts over instead of failing.
    #[test]
    fn a_half_created_file_is_replaced() {
        let d = dir("half");
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("x.redb");
        std::fs::write(creating_path(&path), vec![0u8; 4096]).unwrap();
        // What redb itself does with such a file:
        assert!(Database::create(creating_path(&path)).is_err());
        let db = open(&path).unwrap();
        drop(db);
        assert!(!creating_path(&path).exists());
        std::fs::remove_dir_all(d).unwrap();
    }
}
