//! What the outbox holds: an [`Entry`] (a message for one peer), its [`Key`] for
//! deduplication, its [`Level`] and its [`Id`].

use std::fmt;

use libp2p::PeerId;

use super::lifecycle::{Op, MUTATION_FAMILY};
use crate::time::Timestamp;

/// How hard the outbox tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Persisted (encrypted) and retried with backoff until acknowledged or expired.
    Critical,
    /// Memory only; a few tries, then dropped with a reported outcome.
    Moderate,
}

/// One message queued for a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Destination.
    pub peer: PeerId,
    /// Protocol the payload is sent on.
    pub protocol: String,
    /// What the entry does at the receiver (lifecycle rules apply to mutations).
    pub op: Op,
    /// Resource the entry is about ("" for messages about no resource).
    pub resource: String,
    /// Requested level; mutations are always critical (see [`Entry::level`]).
    pub level: Level,
    /// Opaque bytes delivered to the peer (encrypted at rest when critical).
    pub payload: Vec<u8>,
    /// After this instant the entry is no longer worth delivering: it is reported expired.
    pub expires_at: Timestamp,
}

impl Entry {
    /// Effective level: resource mutations are critical whatever was asked; messages keep
    /// theirs (the caller forces critical for, e.g., everything sent to a nano).
    pub fn level(&self) -> Level {
        if self.op.is_mutation() {
            Level::Critical
        } else {
            self.level
        }
    }

    /// Deduplication key: (peer, family, resource), the family being
    /// [`MUTATION_FAMILY`] for create/update/delete and the protocol otherwise.
    pub fn key(&self) -> Key {
        Key {
            peer: self.peer,
            family: if self.op.is_mutation() {
                MUTATION_FAMILY.to_string()
            } else {
                self.protocol.clone()
            },
            resource: self.resource.clone(),
        }
    }
}

/// Deduplication key of an entry (see [`Entry::key`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub peer: PeerId,
    pub family: String,
    pub resource: String,
}

impl Key {
    /// Stable bytes of the key (storage of the lifecycle history, authenticated data).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [
            self.peer.to_bytes().as_slice(),
            self.family.as_bytes(),
            self.resource.as_bytes(),
        ] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }
}

/// Identity of an entry: unique per outbox file for its whole life. The high 64 bits are a
/// random *epoch* drawn when the outbox file is created, the low 64 a sequence number that is
/// persisted with every critical write, so a receiver's idempotence table never confuses an
/// entry with an earlier one, even after the sender's file was lost and recreated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub u128);

impl Id {
    /// From an epoch and a sequence number.
    pub fn new(epoch: u64, seq: u64) -> Self {
        Id((u128::from(epoch) << 64) | u128::from(seq))
    }

    /// The sequence number (low 64 bits).
    pub fn seq(self) -> u64 {
        self.0 as u64
    }

    /// Big-endian bytes (authenticated data, inbox keys).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}:{}", (self.0 >> 64) as u64, self.seq())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: Op, protocol: &str) -> Entry {
        Entry {
            peer: PeerId::random(),
            protocol: protocol.into(),
            op,
            resource: "r1".into(),
            level: Level::Moderate,
            payload: vec![],
            expires_at: Timestamp::ZERO,
        }
    }

    #[test]
    fn mutations_share_a_family_and_are_critical_messages_keep_their_protocol() {
        let c = entry(Op::Create, "/garden/resource/create/1");
        let mut d = entry(Op::Delete, "/garden/resource/delete/1");
        d.peer = c.peer;
        assert_eq!(c.key(), d.key());
        assert_eq!(c.level(), Level::Critical);
        let mut m = entry(Op::Message, "/garden/planner/1");
        m.peer = c.peer;
        assert_ne!(m.key(), c.key());
        assert_eq!(m.level(), Level::Moderate);
    }

    #[test]
    fn ids_split_into_epoch_and_sequence() {
        let id = Id::new(7, 42);
        assert_eq!(id.seq(), 42);
        assert_eq!(id.to_string(), "0000000000000007:42");
    }
}
