//! Mutations of ours not yet handed to the data plane: redb table `fanout.pending` in the
//! resources database, (resource id, version) → CBOR [`Row`] (the signed mutation and the
//! partners it goes to).
//!
//! A change of ours is two writes in two files: the catalogue (`resources.redb`) and one
//! outbox entry per partner (`dtn-outbox.redb`). A crash between them left the change applied
//! here and sent to nobody: the partners kept the previous version until the next change
//! (the kill -9 test of `sidecar/tests/dtn_contact.rs` found it). So the row is written in
//! the catalogue's transaction (`Catalogue::apply_with`), removed once every push returned,
//! and whatever rows a start finds are pushed again (`Service::resume`) before any request
//! is served. A push repeated after a crash between the pushes and the removal is harmless:
//! the outbox replaces a queued entry of the same key, and the partner finds a delivered one
//! a duplicate by its version. The removal is not fsynced (`Durability::Eventual`): a row a
//! crash brings back is pushed again, which costs that duplicate, not a lost change.

use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::resources::db::{db, StoreError};
use crate::resources::mutation::SignedMutation;
use crate::resources::{Did, ResourceId};

const PENDING: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("fanout.pending");

/// One pending fan-out as stored.
#[derive(Serialize, Deserialize)]
struct Row {
    #[serde(with = "serde_bytes")]
    signed: Vec<u8>,
    to: Vec<String>,
}

/// A mutation to push again, and to whom.
pub struct Pending {
    pub mutation: SignedMutation,
    pub to: Vec<Did>,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table: "fanout.pending",
        reason: e.to_string(),
    }
}

/// Records, inside the catalogue's write transaction `tx`, that `m` must still be pushed to
/// `to`.
pub fn queue(tx: &WriteTransaction, m: &SignedMutation, to: &[Did]) -> Result<(), StoreError> {
    let mu = m.mutation();
    let row = Row {
        signed: m.encode(),
        to: to.iter().map(|d| d.as_str().to_string()).collect(),
    };
    let bytes = cbor4ii::serde::to_vec(Vec::new(), &row).map_err(corrupt)?;
    tx.open_table(PENDING)
        .map_err(db)?
        .insert((mu.id.as_str(), mu.version), bytes.as_slice())
        .map_err(db)?;
    Ok(())
}

/// The table (see the module docs).
#[derive(Clone)]
pub struct Fanout {
    db: Arc<Database>,
}

impl Fanout {
    /// The table in `db` (created if missing).
    pub fn new(database: Arc<Database>) -> Result<Fanout, StoreError> {
        let tx = database.begin_write().map_err(db)?;
        tx.open_table(PENDING).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(Fanout { db: database })
    }

    /// Every pending fan-out, by resource id then version.
    pub fn pending(&self) -> Result<Vec<Pending>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(PENDING).map_err(db)?;
        let mut out = Vec::new();
        for r in t.iter().map_err(db)? {
            let (_, v) = r.map_err(db)?;
            let row: Row = cbor4ii::serde::from_slice(v.value()).map_err(corrupt)?;
            let mutation = SignedMutation::decode(&row.signed).map_err(corrupt)?;
            let to = row
                .to
                .iter()
                .map(|d| Did::parse(d).map_err(corrupt))
                .collect::<Result<_, _>>()?;
            out.push(Pending { mutation, to });
        }
        Ok(out)
    }

    /// Version `version` of `id` was pushed to every partner: forget it (not fsynced, see the
    /// module docs).
    pub fn done(&self, id: &ResourceId, version: u64) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(db)?;
        tx.set_durability(Durability::Eventual);
        tx.open_table(PENDING)
            .map_err(db)?
            .remove((id.as_str(), version))
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(())
    }

    /// Rows held.
    pub fn len(&self) -> Result<usize, StoreError> {
        Ok(self.pending()?.len())
    }

    /// No row held.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeIdentity;
    use crate::resources::catalogue::{Catalogue, Outcome};
    use crate::resources::mutation::{Mutation, Op};
    use crate::resources::resource::tests::sample;
    use crate::time::Timestamp;

    #[test]
    fn a_row_is_written_with_the_change_or_not_at_all_and_read_back() {
        let db = crate::resources::db::temp();
        let me = NodeIdentity::generate();
        let c = Catalogue::new(db.clone(), Did::of(&me)).unwrap();
        let f = Fanout::new(db).unwrap();
        let partner = Did::of(&NodeIdentity::generate());
        let id = ResourceId::parse("gpu-1").unwrap();
        let m = Mutation {
            owner: Did::of(&me),
            id: id.clone(),
            version: 1,
            issued_at_ms: 1,
            op: Op::Create(sample(&Did::of(&me), "gpu-1")),
        }
        .sign(&me);
        let to = [partner.clone()];
        let also = |tx: &WriteTransaction| queue(tx, &m, &to);
        let now = Timestamp::from_millis(10);
        assert_eq!(c.apply_with(&m, now, &also).unwrap(), Outcome::Applied);
        // Not applied (a duplicate): no row either.
        assert_eq!(c.apply_with(&m, now, &also).unwrap(), Outcome::Duplicate);
        let p = f.pending().unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].mutation.encode(), m.encode());
        assert_eq!(p[0].to, vec![partner]);
        f.done(&id, 1).unwrap();
        assert_eq!(f.len().unwrap(), 0);
    }
}
