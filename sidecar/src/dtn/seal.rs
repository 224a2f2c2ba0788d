//! How a critical entry is stored: a clear header (what scheduling and deduplication need)
//! followed by the payload sealed with AES-256-GCM.
//!
//! Row layout: `version (1) ‖ header ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, the header being
//! `len-prefixed peer ‖ protocol ‖ resource ‖ op (1) ‖ created_at (8) ‖ expires_at (8)`.
//! The nonce is random (96 bits) for every write. The authenticated data is the entry's id
//! followed by the version and the whole header, so a row moved under another id, or given
//! another peer, key, op or expiry, or whose ciphertext is swapped with another row's, fails
//! to open instead of being delivered.
//!
//! The header stays in clear: peer ids are public, resource ids are opaque identifiers; only
//! payloads carry the data worth protecting.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use libp2p::PeerId;
use rand::RngCore;

use super::entry::{Entry, Id};
use super::lifecycle::Op;
use crate::time::Timestamp;

const VERSION: u8 = 1;
const NONCE: usize = 12;

/// The clear part of a stored row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub peer: PeerId,
    pub protocol: String,
    pub resource: String,
    pub op: Op,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Header {
    /// The header of `e`, pushed at `now`.
    pub fn of(e: &Entry, now: Timestamp) -> Self {
        Header {
            peer: e.peer,
            protocol: e.protocol.clone(),
            resource: e.resource.clone(),
            op: e.op,
            created_at: now,
            expires_at: e.expires_at,
        }
    }
}

/// Why a stored row cannot be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("row cannot be parsed")]
    Undecodable,
    #[error("row does not authenticate (tampered, swapped or under another key)")]
    Undecryptable,
}

/// Seals and opens rows under one key.
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    /// A sealer for the 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Sealer {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// The stored row of entry `id`.
    pub fn seal(&self, id: Id, header: &Header, payload: &[u8]) -> Vec<u8> {
        let mut row = Vec::with_capacity(64 + payload.len() + NONCE + 16);
        row.push(VERSION);
        for part in [
            header.peer.to_bytes().as_slice(),
            header.protocol.as_bytes(),
            header.resource.as_bytes(),
        ] {
            row.extend_from_slice(&(part.len() as u32).to_be_bytes());
            row.extend_from_slice(part);
        }
        row.push(header.op.code());
        row.extend_from_slice(&header.created_at.as_millis().to_be_bytes());
        row.extend_from_slice(&header.expires_at.as_millis().to_be_bytes());
        let clear = row.len();
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad(id, &row[..clear]);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: payload,
                    aad: &aad,
                },
            )
            // AES-GCM encryption fails only for messages above 64 GiB; payloads are bounded.
            .expect("AES-GCM encryption of a bounded payload");
        row.extend_from_slice(&nonce);
        row.extend_from_slice(&sealed);
        row
    }

    /// Parses and decrypts the row stored under `id`.
    pub fn open(&self, id: Id, row: &[u8]) -> Result<(Header, Vec<u8>), Corruption> {
        let (header, clear) = parse(row).ok_or(Corruption::Undecodable)?;
        let rest = &row[clear..];
        if rest.len() < NONCE + 16 {
            return Err(Corruption::Undecodable);
        }
        let (nonce, sealed) = rest.split_at(NONCE);
        let payload = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad(id, &row[..clear]),
                },
            )
            .map_err(|_| Corruption::Undecryptable)?;
        Ok((header, payload))
    }
}

fn aad(id: Id, clear: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(16 + clear.len());
    a.extend_from_slice(&id.to_bytes());
    a.extend_from_slice(clear);
    a
}

/// The header and the length of the clear part.
fn parse(row: &[u8]) -> Option<(Header, usize)> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = row.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    if take(1)? != [VERSION] {
        return None;
    }
    let mut parts: [Vec<u8>; 3] = Default::default();
    for part in parts.iter_mut() {
        let len = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
        *part = take(len)?.to_vec();
    }
    let op = Op::from_code(take(1)?[0])?;
    let created = u64::from_be_bytes(take(8)?.try_into().ok()?);
    let expires = u64::from_be_bytes(take(8)?.try_into().ok()?);
    let [peer, protocol, resource] = parts;
    let header = Header {
        peer: PeerId::from_bytes(&peer).ok()?,
        protocol: String::from_utf8(protocol).ok()?,
        resource: String::from_utf8(resource).ok()?,
        op,
        created_at: Timestamp::from_millis(created),
        expires_at: Timestamp::from_millis(expires),
    };
    Some((header, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            peer: PeerId::random(),
            protocol: "/p".into(),
            resource: "r".into(),
            op: Op::Update,
            created_at: Timestamp::from_millis(1),
            expires_at: Timestamp::from_millis(2),
        }
    }

    #[test]
    fn a_row_opens_under_its_id_and_key_only() {
        let s = Sealer::new(&[7; 32]);
        let h = header();
        let row = s.seal(Id(1), &h, b"secret body");
        assert_eq!(
            s.open(Id(1), &row),
            Ok((h.clone(), b"secret body".to_vec()))
        );
        assert_eq!(s.open(Id(2), &row), Err(Corruption::Undecryptable));
        assert_eq!(
            Sealer::new(&[8; 32]).open(Id(1), &row),
            Err(Corruption::Undecryptable)
        );
        // Same plaintext, fresh nonce: different rows.
        assert_ne!(row, s.seal(Id(1), &h, b"secret body"));
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let s = Sealer::new(&[7; 32]);
        let row = s.seal(Id(1), &header(), b"body");
        for i in 0..row.len() {
            let mut bad = row.clone();
            bad[i] ^= 0x01;
            assert!(s.open(Id(1), &bad).is_err(), "byte {i}");
        }
        assert_eq!(s.open(Id(1), &row[..3]), Err(Corruption::Undecodable));
    }
}
