//! Who speaks for whom: the masters of nanos (from their signed statements) and, per booking,
//! the peer that speaks for its other party. Persisted in the resources database.
//!
//! * `delegation.masters` (nano DID → its latest [`SignedDelegation`], re-checked on read):
//!   a third party sends what concerns a nano's resources to the master named there; the
//!   master keeps its nanos' statements to forward them with their resources.
//! * `bookings.via` ((consumer DID, nonce) → DID): the peer a booking's messages for the
//!   other party go to, and are accepted from, when it is not that party's own peer — the
//!   master, for a booking of a nano's resource taken through it (on the consumer's site and
//!   on the nano's). Absent: the party's own peer.

use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use super::db::{db, StoreError};
use super::delegate::SignedDelegation;
use super::did::Did;
use super::ids::BookingId;

const MASTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("delegation.masters");
const VIA: TableDefinition<(&str, u64), &str> = TableDefinition::new("bookings.via");

/// See the module docs.
#[derive(Clone)]
pub struct Routes {
    db: Arc<Database>,
}

impl Routes {
    /// The tables in `db` (created if missing).
    pub fn new(db: Arc<Database>) -> Result<Routes, StoreError> {
        let tx = db.begin_write().map_err(super::db::db)?;
        tx.open_table(MASTERS).map_err(super::db::db)?;
        tx.open_table(VIA).map_err(super::db::db)?;
        tx.commit().map_err(super::db::db)?;
        Ok(Routes { db })
    }

    /// Keeps `s` as its nano's statement unless one issued later is held; whether it was kept.
    pub fn learn(&self, s: &SignedDelegation) -> Result<bool, StoreError> {
        let nano = s.delegation().nano.as_str().to_string();
        let tx = self.db.begin_write().map_err(db)?;
        let kept = {
            let mut t = tx.open_table(MASTERS).map_err(db)?;
            let newer_held = match t.get(nano.as_str()).map_err(db)? {
                Some(v) => SignedDelegation::decode(v.value())
                    .map(|h| h.delegation().issued_at_ms >= s.delegation().issued_at_ms)
                    .unwrap_or(false),
                None => false,
            };
            if !newer_held {
                t.insert(nano.as_str(), s.encode().as_slice()).map_err(db)?;
            }
            !newer_held
        };
        tx.commit().map_err(db)?;
        Ok(kept)
    }

    /// The statement held for `nano`.
    pub fn statement_of(&self, nano: &Did) -> Result<Option<SignedDelegation>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(MASTERS).map_err(db)?;
        let Some(v) = t.get(nano.as_str()).map_err(db)? else {
            return Ok(None);
        };
        SignedDelegation::decode(v.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                table: "delegation.masters",
                reason: e.to_string(),
            })
    }

    /// The master answering for `nano`, if a statement of it is held.
    pub fn master_of(&self, nano: &Did) -> Result<Option<Did>, StoreError> {
        Ok(self
            .statement_of(nano)?
            .map(|s| s.delegation().master.clone()))
    }

    /// Booking `id`'s messages for its other party go to, and come from, `via`.
    pub fn set_via(&self, id: &BookingId, via: &Did) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut t = tx.open_table(VIA).map_err(db)?;
            t.insert((id.consumer.as_str(), id.nonce), via.as_str())
                .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// The peer speaking for booking `id`'s other party, when it is not that party's own.
    pub fn via(&self, id: &BookingId) -> Result<Option<Did>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(VIA).map_err(db)?;
        let Some(v) = t.get((id.consumer.as_str(), id.nonce)).map_err(db)? else {
            return Ok(None);
        };
        Did::parse(v.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                table: "bookings.via",
                reason: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeIdentity;
    use crate::resources::db;
    use crate::resources::delegate::Delegation;

    #[test]
    fn the_latest_statement_names_the_master_and_vias_are_kept() {
        let routes = Routes::new(db::temp()).unwrap();
        let (nano, m1, m2) = (
            NodeIdentity::generate(),
            NodeIdentity::generate(),
            NodeIdentity::generate(),
        );
        let say = |master: &NodeIdentity, at| {
            Delegation {
                nano: Did::of(&nano),
                master: Did::of(master),
                issued_at_ms: at,
            }
            .sign(&nano)
        };
        assert_eq!(routes.master_of(&Did::of(&nano)).unwrap(), None);
        assert!(routes.learn(&say(&m1, 10)).unwrap());
        // An older statement (a late redelivery) does not undo a newer one.
        assert!(routes.learn(&say(&m2, 20)).unwrap());
        assert!(!routes.learn(&say(&m1, 15)).unwrap());
        assert_eq!(
            routes.master_of(&Did::of(&nano)).unwrap(),
            Some(Did::of(&m2))
        );
        let id = BookingId {
            consumer: Did::of(&m1),
            nonce: 3,
        };
        assert_eq!(routes.via(&id).unwrap(), None);
        routes.set_via(&id, &Did::of(&m2)).unwrap();
        assert_eq!(routes.via(&id).unwrap(), Some(Did::of(&m2)));
    }
}
