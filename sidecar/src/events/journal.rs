//! The events queue made durable: every [`Pending`] event is written to the redb table
//! `events.pending` (sequence → CBOR) before it is queued, and removed when the server
//! confirmed it, so events survive a sidecar restart as well as a NATS outage. The order and
//! the drop policy are [`Queue`]'s; a dropped event's row goes in the same transaction as the
//! row that displaced it. Each push and confirmation is one write transaction (fsynced).

use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use super::queue::{Pending, Queue};
use crate::resources::db::{db, StoreError};

const PENDING: TableDefinition<u64, &[u8]> = TableDefinition::new("events.pending");

/// See the module docs.
pub struct Journal {
    db: Arc<Database>,
    queue: Queue,
    next_seq: u64,
}

impl Journal {
    /// Opens the table in `db` and queues what it holds, oldest first (beyond `capacity`,
    /// the oldest rows are dropped and counted).
    pub fn open(database: Arc<Database>, capacity: usize) -> Result<Journal, StoreError> {
        let mut queue = Queue::new(capacity);
        let mut gone = Vec::new();
        let tx = database.begin_write().map_err(db)?;
        {
            let mut t = tx.open_table(PENDING).map_err(db)?;
            for row in t.iter().map_err(db)? {
                let (_, v) = row.map_err(db)?;
                let p: Pending =
                    cbor4ii::serde::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                        table: "events.pending",
                        reason: e.to_string(),
                    })?;
                if let Some(g) = queue.push(p) {
                    gone.push(g.seq);
                }
            }
            for seq in gone {
                t.remove(seq).map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        let next_seq = queue.back().map_or(1, |p| p.seq + 1);
        Ok(Journal {
            db: database,
            queue,
            next_seq,
        })
    }

    /// Writes the event (its `seq` assigned here) and queues it; returns the event dropped
    /// to make room, if any.
    pub fn push(&mut self, mut p: Pending) -> Result<Option<Pending>, StoreError> {
        p.seq = self.next_seq;
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &p).unwrap_or_default();
        let displaced = self.queue.would_drop().map(|d| d.seq);
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut t = tx.open_table(PENDING).map_err(db)?;
            t.insert(p.seq, bytes.as_slice()).map_err(db)?;
            if let Some(seq) = displaced {
                t.remove(seq).map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        self.next_seq += 1;
        Ok(self.queue.push(p))
    }

    /// The oldest event.
    pub fn front(&self) -> Option<&Pending> {
        self.queue.front()
    }

    /// The server confirmed the event `id`: it leaves the table and the queue (when it is
    /// still the oldest).
    pub fn confirm(&mut self, id: &str) -> Result<(), StoreError> {
        let Some(seq) = self.queue.front().filter(|p| p.id == id).map(|p| p.seq) else {
            return Ok(());
        };
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut t = tx.open_table(PENDING).map_err(db)?;
            t.remove(seq).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        self.queue.confirm(id);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::db::{self, tempdir::TempDir};

    fn p(id: &str) -> Pending {
        Pending {
            seq: 0,
            subject: "garden.out.booking".into(),
            id: id.into(),
            body: br#"{"a":1}"#.to_vec(),
        }
    }

    #[test]
    fn queued_events_survive_a_reopen_in_order_and_confirmed_ones_do_not() {
        let dir = TempDir::new();
        let path = dir.path().join("r.redb");
        {
            let mut j = Journal::open(db::open(&path).unwrap(), 3).unwrap();
            for id in ["a", "b", "c"] {
                assert_eq!(j.push(p(id)).unwrap(), None);
            }
            j.confirm("a").unwrap();
            j.confirm("c").unwrap(); // not the oldest: stays (b, c)
            let gone = j.push(p("d")).unwrap();
            assert_eq!(gone, None);
            let gone = j
                .push(p("e"))
                .unwrap()
                .expect("full: the oldest goes (c, d, e)");
            assert_eq!(gone.id, "b");
            assert_eq!(j.dropped(), 1);
        }
        let mut j = Journal::open(db::open(&path).unwrap(), 2).unwrap();
        assert_eq!(j.dropped(), 1, "capacity lowered: the oldest row goes");
        let mut ids = Vec::new();
        while let Some(f) = j.front().cloned() {
            ids.push(f.id.clone());
            j.confirm(&f.id).unwrap();
        }
        assert_eq!(ids, vec!["d", "e"]);
        drop(j);
        let j = Journal::open(db::open(&path).unwrap(), 2).unwrap();
        assert!(j.is_empty());
    }
}
