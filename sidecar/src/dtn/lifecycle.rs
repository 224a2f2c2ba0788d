//! Lifecycle rules of a resource mutation queued for one peer: what a new mutation does to the
//! one already queued under the same key, and which orders are refused.
//!
//! A key is (peer, protocol family, resource id). Create, update and delete of a resource form
//! one family ([`MUTATION_FAMILY`]); every other protocol is its own family, so a planner
//! request and a config to the same peer never overwrite each other, and a message whose
//! payload names a resource never replaces that resource's mutation (both are bugs of the Go
//! cache, spec `go-node-stream.md` §9.3).
//!
//! The rules (pure; [`admit`]):
//!
//! | last pushed for the key | queued | new | result |
//! |---|---|---|---|
//! | DELETE | any | any | refused: [`Refused::AfterDelete`] (delete is terminal) |
//! | UPDATE | any | CREATE | refused: [`Refused::CreateAfterUpdate`] (the resource exists remotely) |
//! | — | CREATE | UPDATE | CREATE with the update's body (the receiver has never seen the resource) |
//! | — | CREATE | DELETE | DELETE (see below) |
//! | — | X | Y | Y replaces X (the newer mutation wins) |
//! | — | none | Y | Y is queued |
//!
//! "Last pushed" is remembered after delivery too (the outbox keeps it for a horizon), so the
//! rules hold for the stream a peer receives, not only inside the queue.
//!
//! **CREATE then DELETE queued → DELETE, not nothing.** Queued means "not acknowledged", not
//! "never sent": the CREATE may have reached the peer and been applied while its
//! acknowledgement was lost. Cancelling both would leave the resource alive on the peer. A
//! DELETE of a resource the peer never saw costs one idempotent no-op there.
//!
//! **CREATE then UPDATE → CREATE with the latest body.** Same reasoning, and the entry keeps
//! the op CREATE so the receiver knows what it stands for: its body is the update (the owner
//! signs every version whole), which the receiver applies as the resource's creation when it
//! never got the create (`Catalogue::apply_creating`), as a newer version when it did (the
//! CREATE was applied before its acknowledgement was lost), and as a duplicate when it holds
//! that version already. Sent as an UPDATE, it would be refused by a receiver that never saw
//! the resource — and with the create gone from the queue, it would never be.

/// The family shared by create, update and delete of a resource.
pub const MUTATION_FAMILY: &str = "garden/resource-mutation";

/// What an outbox entry does at the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Creates a resource (an upsert at the receiver).
    Create,
    /// Updates a resource the receiver holds.
    Update,
    /// Deletes a resource; terminal for its key.
    Delete,
    /// Any other message (planner, confirmation, config): no lifecycle, the newer replaces the
    /// older.
    Message,
}

impl Op {
    /// True for create, update and delete.
    pub fn is_mutation(self) -> bool {
        !matches!(self, Op::Message)
    }

    /// Wire/storage code (stable).
    pub fn code(self) -> u8 {
        match self {
            Op::Message => 0,
            Op::Create => 1,
            Op::Update => 2,
            Op::Delete => 3,
        }
    }

    /// From [`Op::code`].
    pub fn from_code(c: u8) -> Option<Op> {
        Some(match c {
            0 => Op::Message,
            1 => Op::Create,
            2 => Op::Update,
            3 => Op::Delete,
            _ => return None,
        })
    }
}

/// Why a mutation is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The key was deleted; nothing may follow a DELETE.
    #[error("{attempted:?} after DELETE of the same resource: delete is terminal")]
    AfterDelete { attempted: Op },
    /// The resource was already updated, so it exists remotely: a CREATE is a bug.
    #[error("CREATE after UPDATE of the same resource: the resource already exists")]
    CreateAfterUpdate,
    /// A mutation and a message were given the same key (the family should differ).
    #[error("{new:?} cannot share a key with {queued:?}")]
    MixedFamily { queued: Op, new: Op },
}

/// What to queue when `new` is pushed for a key whose last pushed mutation was `last` (queued
/// or delivered within the outbox's horizon) and whose queued entry, if any, is `queued`.
/// The returned op replaces `queued` when there is one, else is appended.
pub fn admit(last: Option<Op>, queued: Option<Op>, new: Op) -> Result<Op, Refused> {
    if let Some(q) = queued {
        if q.is_mutation() != new.is_mutation() {
            return Err(Refused::MixedFamily { queued: q, new });
        }
    }
    if !new.is_mutation() {
        return Ok(Op::Message);
    }
    match (last, new) {
        (Some(Op::Delete), attempted) => Err(Refused::AfterDelete { attempted }),
        (Some(Op::Update), Op::Create) => Err(Refused::CreateAfterUpdate),
        _ => Ok(match (queued, new) {
            (Some(Op::Create), Op::Update) => Op::Create,
            (_, new) => new,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Op::*;

    #[test]
    fn the_table_of_the_module_docs() {
        assert_eq!(admit(None, None, Create), Ok(Create));
        assert_eq!(admit(Some(Create), Some(Create), Update), Ok(Create));
        assert_eq!(admit(Some(Update), Some(Create), Delete), Ok(Delete));
        assert_eq!(admit(Some(Create), Some(Create), Delete), Ok(Delete));
        assert_eq!(admit(Some(Update), Some(Update), Update), Ok(Update));
        assert_eq!(admit(Some(Create), None, Update), Ok(Update));
        assert_eq!(admit(Some(Create), None, Create), Ok(Create));
        assert_eq!(
            admit(Some(Update), None, Create),
            Err(Refused::CreateAfterUpdate)
        );
        assert_eq!(
            admit(Some(Update), Some(Create), Create),
            Err(Refused::CreateAfterUpdate)
        );
        for new in [Create, Update, Delete] {
            assert_eq!(
                admit(Some(Delete), None, new),
                Err(Refused::AfterDelete { attempted: new })
            );
            assert_eq!(
                admit(Some(Delete), Some(Delete), new),
                Err(Refused::AfterDelete { attempted: new })
            );
        }
    }

    #[test]
    fn messages_replace_and_never_mix_with_mutations() {
        assert_eq!(admit(None, Some(Message), Message), Ok(Message));
        assert_eq!(
            admit(None, Some(Message), Create),
            Err(Refused::MixedFamily {
                queued: Message,
                new: Create
            })
        );
        assert!(admit(Some(Create), Some(Create), Message).is_err());
    }

    #[test]
    fn codes_round_trip() {
        for op in [Create, Update, Delete, Message] {
            assert_eq!(Op::from_code(op.code()), Some(op));
        }
        assert_eq!(Op::from_code(9), None);
    }
}
