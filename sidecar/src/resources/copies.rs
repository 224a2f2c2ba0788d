//! The provider's copy of an attestation: once the consumer's signer has signed a usage, it
//! hands the signed attestation back to its sidecar, which sends it to the provider's site
//! (critical outbox, `/garden/attestation-copy/1.0.0`). The provider's signer takes it from
//! there and can submit it itself if the consumer's never does: either side can settle, and
//! the contracts' nonces make the second submission harmless.
//!
//! The data plane carries the attestation as opaque bytes: it is the settlement plane's
//! format (a one-item `GWAB` batch, `garden_wire::batch`) signed with a key this plane never
//! sees, and the provider's signer checks it whole (signature under its own signing domain,
//! members, terms). What the sidecar checks is what it knows: the size, that the booking is
//! one we provided, and that the consumer of that booking sent it.
//!
//! Received copies wait in redb table `attestations.received` (booking key → CBOR
//! [`Received`]) until the provider's signer removes them.

use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::db::{db, BookingRows, StoreError};
use super::ids::BookingId;
use super::Did;

/// Largest attestation copied (a one-item batch is about 400 bytes; strings are bounded by
/// the wire format's 128-byte limit).
pub const MAX_ATTESTATION_BYTES: usize = 2 * 1024;
/// Largest copy message accepted from a peer.
pub const MAX_COPY_BYTES: usize = MAX_ATTESTATION_BYTES + 512;

const RECEIVED: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new(NAME);
/// The table's name, also in [`StoreError::Corrupt`].
const NAME: &str = "attestations.received";

/// What travels from the consumer's site to the provider's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyMessage {
    pub booking: BookingId,
    /// The signed attestation, as the consumer's signer encoded it.
    #[serde(with = "serde_bytes")]
    pub attestation: Vec<u8>,
}

/// Why a copy was not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    #[error("{0} bytes (at most {MAX_COPY_BYTES})")]
    TooLarge(usize),
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("the attestation has {0} bytes (1..={MAX_ATTESTATION_BYTES})")]
    AttestationSize(usize),
}

impl CopyMessage {
    /// Checks the attestation's size.
    pub fn new(booking: BookingId, attestation: Vec<u8>) -> Result<CopyMessage, CopyError> {
        if attestation.is_empty() || attestation.len() > MAX_ATTESTATION_BYTES {
            return Err(CopyError::AttestationSize(attestation.len()));
        }
        Ok(CopyMessage {
            booking,
            attestation,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        cbor4ii::serde::to_vec(Vec::new(), self).unwrap_or_default()
    }

    /// Bounded before decoding, checked after.
    pub fn decode(bytes: &[u8]) -> Result<CopyMessage, CopyError> {
        if bytes.len() > MAX_COPY_BYTES {
            return Err(CopyError::TooLarge(bytes.len()));
        }
        let m: CopyMessage =
            cbor4ii::serde::from_slice(bytes).map_err(|e| CopyError::Malformed(e.to_string()))?;
        CopyMessage::new(m.booking, m.attestation)
    }
}

/// A copy as kept here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub booking: BookingId,
    /// The consumer's site that sent it.
    pub from: Did,
    #[serde(with = "serde_bytes")]
    pub attestation: Vec<u8>,
    pub received_at_ms: u64,
}

/// See the module docs.
#[derive(Clone)]
pub struct Copies {
    rows: BookingRows,
}

impl Copies {
    /// The table in `db` (created if missing).
    pub fn new(database: Arc<Database>) -> Result<Copies, StoreError> {
        Ok(Copies {
            rows: BookingRows::open(database, RECEIVED, NAME)?,
        })
    }

    /// Keeps `r`; false (nothing changes) when a copy for its booking is already here: the
    /// first one stays, the provider's signer checks it and a later one cannot replace it.
    pub fn keep(&self, r: &Received) -> Result<bool, StoreError> {
        let bytes = cbor4ii::serde::to_vec(Vec::new(), r).map_err(|e| self.rows.corrupt(e))?;
        let tx = self.rows.database().begin_write().map_err(db)?;
        let added = {
            let mut t = tx.open_table(RECEIVED).map_err(db)?;
            let key = (r.booking.consumer.as_str(), r.booking.nonce);
            if t.get(key).map_err(db)?.is_some() {
                false
            } else {
                t.insert(key, bytes.as_slice()).map_err(db)?;
                true
            }
        };
        tx.commit().map_err(db)?;
        Ok(added)
    }

    /// Up to `max` copies, in booking key order.
    pub fn list(&self, max: usize) -> Result<Vec<Received>, StoreError> {
        self.rows.list(max, None)
    }

    /// The provider's signer took the copy of `booking`. False when there was none.
    pub fn remove(&self, booking: &BookingId) -> Result<bool, StoreError> {
        self.rows.remove(booking)
    }

    pub fn len(&self) -> Result<u64, StoreError> {
        self.rows.len()
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeIdentity;

    fn booking(nonce: u64) -> BookingId {
        BookingId {
            consumer: Did::of(&NodeIdentity::generate()),
            nonce,
        }
    }

    #[test]
    fn copies_are_bounded_before_and_after_decoding() {
        let ok = CopyMessage::new(booking(1), vec![7; 400]).unwrap();
        assert_eq!(CopyMessage::decode(&ok.encode()), Ok(ok));
        assert_eq!(
            CopyMessage::new(booking(1), Vec::new()),
            Err(CopyError::AttestationSize(0))
        );
        assert_eq!(
            CopyMessage::decode(&vec![0; MAX_COPY_BYTES + 1]),
            Err(CopyError::TooLarge(MAX_COPY_BYTES + 1))
        );
        // A peer's message with an oversized attestation inside the size bound of the whole:
        // impossible by construction, so forge one with an empty attestation instead.
        let forged = CopyMessage {
            booking: booking(2),
            attestation: Vec::new(),
        };
        assert_eq!(
            CopyMessage::decode(&forged.encode()),
            Err(CopyError::AttestationSize(0))
        );
        assert!(matches!(
            CopyMessage::decode(b"\xff\x00garbage"),
            Err(CopyError::Malformed(_))
        ));
    }

    #[test]
    fn the_first_copy_of_a_booking_stays_until_removed() {
        let copies = Copies::new(crate::resources::db::temp()).unwrap();
        let b = booking(3);
        let from = Did::of(&NodeIdentity::generate());
        let first = Received {
            booking: b.clone(),
            from: from.clone(),
            attestation: vec![1; 10],
            received_at_ms: 5,
        };
        assert!(copies.keep(&first).unwrap());
        let second = Received {
            attestation: vec![2; 10],
            ..first.clone()
        };
        assert!(!copies.keep(&second).unwrap());
        assert_eq!(copies.list(10).unwrap(), vec![first]);
        assert!(copies.remove(&b).unwrap());
        assert!(!copies.remove(&b).unwrap());
        assert!(copies.is_empty().unwrap());
    }
}
