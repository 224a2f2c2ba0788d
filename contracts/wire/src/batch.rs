//! Compact binary batch of attestations: `GWAB` version 1.
//!
//! JSON per attestation costs ~380 bytes and caps a transaction near 1 000 items (TOOLCHAIN.md).
//! Here the strings (addresses, resource ids, units, price references) and signer keys that
//! repeat across a batch are written once in tables, and each item is a fixed 132-byte record
//! of table indices, integers and the signature. 1 000 items take ~132 KB (~176 KB once
//! base64'd into the JSON execute message), well inside CometBFT's 1 MB RPC body.
//!
//! ```text
//! batch   := magic "GWAB" | u8 version = 1
//!            | u16 n_strings | n_strings x (u8 len (1..=128) | UTF-8 bytes)
//!            | u16 n_keys    | n_keys x [32] Ed25519 public key
//!            | u32 n_items   | n_items x item                      (no trailing bytes)
//! item    := u16 provider | u16 consumer | u16 resource_id | u16 unit | u16 price_ref
//!            (indices into the string table) | u16 signer (index into the key table)
//!            | u64 quantity | u128 max_unit_price | u64 period_start | u64 period_end
//!            | u64 nonce | u64 signed_at | [64] signature           = 132 bytes
//! ```
//! All integers are big-endian. The decoder checks every length and index before it returns,
//! so [`Batch::get`] cannot fail afterwards.

use std::collections::BTreeSet;

use crate::attestation::{Attestation, AttestationRef, PUBKEY_LEN, SIGNATURE_LEN};
use crate::MAX_STR_LEN;

pub const MAGIC: &[u8; 4] = b"GWAB";
pub const VERSION: u8 = 1;
pub const ITEM_LEN: usize = 132;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("batch truncated: needed {needed} bytes at offset {offset}, {available} left")]
    Truncated {
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("bad batch magic (expected \"GWAB\")")]
    BadMagic,
    #[error("unsupported batch version {0} (this decoder reads 1)")]
    UnsupportedVersion(u8),
    #[error("string {index} has invalid length {len} (1..=128)")]
    BadStringLength { index: usize, len: usize },
    #[error("string {index} is not UTF-8")]
    InvalidUtf8 { index: usize },
    #[error("item {item}: {field} index {index} out of range ({table_len} entries)")]
    IndexOutOfRange {
        item: usize,
        field: &'static str,
        index: u16,
        table_len: usize,
    },
    #[error("batch is empty")]
    Empty,
    #[error("batch has {count} items, the maximum is {max}")]
    TooManyItems { count: usize, max: usize },
    #[error("{0} trailing bytes after the last item")]
    TrailingBytes(usize),
    /// The tables are not what the encoder writes: each entry used, first-use order, no
    /// repeats. One content has one encoding, so batch bytes (and their hashes) identify it.
    #[error("item {item}: {field} is not in canonical form ({reason})")]
    NonCanonical {
        item: usize,
        field: &'static str,
        reason: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("string {0:?} is empty or longer than 128 bytes")]
    BadString(String),
    #[error("more than 65535 distinct strings or keys")]
    TableFull,
    #[error("too many items")]
    TooManyItems,
}

/// Table indices of one item, for callers that cache per distinct string or key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemIndices {
    pub provider: u16,
    pub consumer: u16,
    pub resource_id: u16,
    pub unit: u16,
    pub price_ref: u16,
    pub signer: u16,
}

/// A decoded batch borrowing the input bytes.
#[derive(Debug)]
pub struct Batch<'a> {
    strings: Vec<&'a str>,
    keys: Vec<&'a [u8; PUBKEY_LEN]>,
    items: &'a [u8],
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.buf.len() - self.pos;
        if n > available {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn be_u16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}
fn be_u64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_be_bytes(a)
}
fn be_u128(b: &[u8], o: usize) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[o..o + 16]);
    u128::from_be_bytes(a)
}

impl<'a> Batch<'a> {
    /// Strict decode: every length, index and the exact total size are checked; at most
    /// `max_items` items are accepted (the check happens before any item is read).
    pub fn decode(bytes: &'a [u8], max_items: usize) -> Result<Self, DecodeError> {
        let mut r = Reader { buf: bytes, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let n_strings = r.u16()? as usize;
        let mut strings = Vec::with_capacity(n_strings);
        for index in 0..n_strings {
            let len = r.u8()? as usize;
            if len == 0 || len > MAX_STR_LEN {
                return Err(DecodeError::BadStringLength { index, len });
            }
            let s = core::str::from_utf8(r.take(len)?)
                .map_err(|_| DecodeError::InvalidUtf8 { index })?;
            strings.push(s);
        }
        let n_keys = r.u16()? as usize;
        let mut keys = Vec::with_capacity(n_keys);
        for _ in 0..n_keys {
            let k: &[u8; PUBKEY_LEN] = r.take(PUBKEY_LEN)?.try_into().expect("took 32 bytes");
            keys.push(k);
        }
        let count = r.u32()? as usize;
        if count == 0 {
            return Err(DecodeError::Empty);
        }
        if count > max_items {
            return Err(DecodeError::TooManyItems {
                count,
                max: max_items,
            });
        }
        // count <= max_items (a small parameter), so the product cannot overflow.
        let items = r.take(count * ITEM_LEN)?;
        let rest = bytes.len() - r.pos;
        if rest != 0 {
            return Err(DecodeError::TrailingBytes(rest));
        }
        let batch = Batch {
            strings,
            keys,
            items,
        };
        for item in 0..count {
            let ix = batch.indices(item);
            for (field, index, len) in [
                ("provider", ix.provider, batch.strings.len()),
                ("consumer", ix.consumer, batch.strings.len()),
                ("resource_id", ix.resource_id, batch.strings.len()),
                ("unit", ix.unit, batch.strings.len()),
                ("price_ref", ix.price_ref, batch.strings.len()),
                ("signer", ix.signer, batch.keys.len()),
            ] {
                if index as usize >= len {
                    return Err(DecodeError::IndexOutOfRange {
                        item,
                        field,
                        index,
                        table_len: len,
                    });
                }
            }
        }
        batch.check_canonical()?;
        Ok(batch)
    }

    /// The encoder's form: string and key tables in first-use order (item by item; strings
    /// in field order provider, consumer, resource_id, unit, price_ref), every entry used,
    /// none repeated. O(items + table × log table).
    fn check_canonical(&self) -> Result<(), DecodeError> {
        let bad = |item, field, reason| DecodeError::NonCanonical {
            item,
            field,
            reason,
        };
        let (mut next_s, mut next_k) = (0usize, 0usize);
        let mut seen_s: BTreeSet<&str> = BTreeSet::new();
        let mut seen_k: BTreeSet<&[u8; PUBKEY_LEN]> = BTreeSet::new();
        for item in 0..self.len() {
            let ix = self.indices(item);
            for (field, index) in [
                ("provider", ix.provider),
                ("consumer", ix.consumer),
                ("resource_id", ix.resource_id),
                ("unit", ix.unit),
                ("price_ref", ix.price_ref),
            ] {
                let index = index as usize;
                if index > next_s {
                    return Err(bad(item, field, "string table not in first-use order"));
                }
                if index == next_s {
                    if !seen_s.insert(self.strings[index]) {
                        return Err(bad(item, field, "string repeated in the table"));
                    }
                    next_s += 1;
                }
            }
            let index = ix.signer as usize;
            if index > next_k {
                return Err(bad(item, "signer", "key table not in first-use order"));
            }
            if index == next_k {
                if !seen_k.insert(self.keys[index]) {
                    return Err(bad(item, "signer", "key repeated in the table"));
                }
                next_k += 1;
            }
        }
        let last = self.len().saturating_sub(1);
        if next_s != self.strings.len() {
            return Err(bad(last, "strings", "unused entries in the string table"));
        }
        if next_k != self.keys.len() {
            return Err(bad(last, "signer", "unused entries in the key table"));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.items.len() / ITEM_LEN
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn strings(&self) -> &[&'a str] {
        &self.strings
    }

    pub fn keys(&self) -> &[&'a [u8; PUBKEY_LEN]] {
        &self.keys
    }

    /// Table indices of item `i` (`i < len()`).
    pub fn indices(&self, i: usize) -> ItemIndices {
        let b = &self.items[i * ITEM_LEN..(i + 1) * ITEM_LEN];
        ItemIndices {
            provider: be_u16(b, 0),
            consumer: be_u16(b, 2),
            resource_id: be_u16(b, 4),
            unit: be_u16(b, 6),
            price_ref: be_u16(b, 8),
            signer: be_u16(b, 10),
        }
    }

    /// Item `i` (`i < len()`); indices were validated by [`Batch::decode`].
    pub fn get(&self, i: usize) -> AttestationRef<'a> {
        let b: &'a [u8] = &self.items[i * ITEM_LEN..(i + 1) * ITEM_LEN];
        let ix = self.indices(i);
        let s = |k: u16| self.strings[k as usize];
        let signature: &'a [u8; SIGNATURE_LEN] = b[68..132].try_into().expect("fixed item layout");
        AttestationRef {
            provider: s(ix.provider),
            consumer: s(ix.consumer),
            resource_id: s(ix.resource_id),
            unit: s(ix.unit),
            price_ref: s(ix.price_ref),
            signer: self.keys[ix.signer as usize],
            quantity: be_u64(b, 12),
            max_unit_price: be_u128(b, 20),
            period_start: be_u64(b, 36),
            period_end: be_u64(b, 44),
            nonce: be_u64(b, 52),
            signed_at: be_u64(b, 60),
            signature,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = AttestationRef<'a>> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

/// Encodes attestations as a `GWAB` v1 batch (strings and keys deduplicated in first-seen order).
pub fn encode(items: &[Attestation]) -> Result<Vec<u8>, EncodeError> {
    fn intern<'s>(table: &mut Vec<&'s str>, s: &'s str) -> Result<u16, EncodeError> {
        crate::check_str(s)?;
        if let Some(i) = table.iter().position(|t| *t == s) {
            return Ok(i as u16);
        }
        let i = u16::try_from(table.len()).map_err(|_| EncodeError::TableFull)?;
        table.push(s);
        Ok(i)
    }
    let count = u32::try_from(items.len()).map_err(|_| EncodeError::TooManyItems)?;
    let mut strings: Vec<&str> = Vec::new();
    let mut keys: Vec<&[u8; PUBKEY_LEN]> = Vec::new();
    let mut body = Vec::with_capacity(items.len() * ITEM_LEN);
    for a in items {
        for s in [
            &a.provider,
            &a.consumer,
            &a.resource_id,
            &a.unit,
            &a.price_ref,
        ] {
            body.extend_from_slice(&intern(&mut strings, s)?.to_be_bytes());
        }
        let k = match keys.iter().position(|k| **k == a.signer) {
            Some(i) => i as u16,
            None => {
                let i = u16::try_from(keys.len()).map_err(|_| EncodeError::TableFull)?;
                keys.push(&a.signer);
                i
            }
        };
        body.extend_from_slice(&k.to_be_bytes());
        body.extend_from_slice(&a.quantity.to_be_bytes());
        body.extend_from_slice(&a.max_unit_price.to_be_bytes());
        body.extend_from_slice(&a.period_start.to_be_bytes());
        body.extend_from_slice(&a.period_end.to_be_bytes());
        body.extend_from_slice(&a.nonce.to_be_bytes());
        body.extend_from_slice(&a.signed_at.to_be_bytes());
        body.extend_from_slice(&a.signature);
    }
    let mut out = Vec::with_capacity(16 + body.len() + strings.len() * 48 + keys.len() * 32);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(strings.len() as u16).to_be_bytes());
    for s in &strings {
        crate::put_str(&mut out, s);
    }
    out.extend_from_slice(&(keys.len() as u16).to_be_bytes());
    for k in &keys {
        out.extend_from_slice(&k[..]);
    }
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn att(n: u64, provider: &str) -> Attestation {
        Attestation {
            provider: provider.into(),
            consumer: "consumer".into(),
            resource_id: format!("res-{}", n % 3),
            quantity: n * 10,
            unit: "gib-hour".into(),
            price_ref: "storage".into(),
            max_unit_price: 1_000 + n as u128,
            period_start: 100 + n,
            period_end: 200 + n,
            nonce: n,
            signed_at: 300 + n,
            signer: [(n % 2) as u8; 32],
            signature: [n as u8; 64],
        }
    }

    /// `encode` of one item whose five strings are "p", "c", "r", "u", "k" (table in that
    /// order, each 1 byte), so tests can edit the bytes: the string table starts at 7, entry
    /// i's byte at 8 + 2i; the key table count at 17; the item at 17 + 2 + 32 + 4 = 55.
    fn one_item() -> Vec<u8> {
        let mut a = att(1, "p");
        a.consumer = "c".into();
        a.resource_id = "r".into();
        a.unit = "u".into();
        a.price_ref = "k".into();
        let bytes = encode(&[a]).unwrap();
        assert_eq!(&bytes[7..17], b"\x01p\x01c\x01r\x01u\x01k");
        bytes
    }

    #[test]
    fn only_the_encoders_form_decodes() {
        let ok = one_item();
        assert!(Batch::decode(&ok, 5).is_ok());
        let nc = |b: &[u8]| match Batch::decode(b, 5) {
            Err(DecodeError::NonCanonical { reason, .. }) => reason,
            other => panic!("expected NonCanonical, got {other:?}"),
        };
        // provider and consumer indices swapped: the table is not in first-use order
        let mut b = ok.clone();
        b[55..59].copy_from_slice(&[0, 1, 0, 0]);
        assert_eq!(nc(&b), "string table not in first-use order");
        // "c" replaced by a second "p": a repeated entry
        let mut b = ok.clone();
        b[10] = b'p';
        assert_eq!(nc(&b), "string repeated in the table");
        // an extra string nobody uses
        let mut b = ok.clone();
        b[6] = 6;
        b.splice(17..17, [1u8, b'x']);
        assert_eq!(nc(&b), "unused entries in the string table");
        // an extra key nobody uses
        let mut b = ok.clone();
        b[18] = 2;
        b.splice(19..19, [9u8; 32]);
        assert_eq!(nc(&b), "unused entries in the key table");
        // and every canonical encoding still round-trips byte for byte
        let items: Vec<_> = (0..50)
            .map(|n| att(n, ["p", "q"][n as usize % 2]))
            .collect();
        let bytes = encode(&items).unwrap();
        let again: Vec<_> = Batch::decode(&bytes, 50)
            .unwrap()
            .iter()
            .map(|a| a.to_owned())
            .collect();
        assert_eq!(encode(&again).unwrap(), bytes);
    }

    #[test]
    fn roundtrip_and_size() {
        let items: Vec<_> = (0..1000).map(|n| att(n, "provider")).collect();
        let bytes = encode(&items).unwrap();
        // 1000 fixed items dominate: the tables add a few dozen bytes.
        assert!(bytes.len() < 1000 * ITEM_LEN + 200, "{}", bytes.len());
        let b = Batch::decode(&bytes, 1000).unwrap();
        assert_eq!(b.len(), 1000);
        assert_eq!(b.keys().len(), 2);
        for (i, a) in items.iter().enumerate() {
            assert_eq!(b.get(i).to_owned(), *a);
        }
    }

    #[test]
    fn decode_errors_are_specific() {
        let bytes = encode(&[att(1, "p"), att(2, "p")]).unwrap();
        assert_eq!(
            Batch::decode(&bytes, 1).unwrap_err(),
            DecodeError::TooManyItems { count: 2, max: 1 }
        );
        assert_eq!(
            Batch::decode(b"XXXX\x01", 5).unwrap_err(),
            DecodeError::BadMagic
        );
        assert_eq!(
            Batch::decode(b"GWAB\x02", 5).unwrap_err(),
            DecodeError::UnsupportedVersion(2)
        );
        assert!(matches!(
            Batch::decode(&bytes[..bytes.len() - 1], 5),
            Err(DecodeError::Truncated { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            Batch::decode(&long, 5).unwrap_err(),
            DecodeError::TrailingBytes(1)
        );
        let empty = encode(&[]).unwrap();
        assert_eq!(Batch::decode(&empty, 5).unwrap_err(), DecodeError::Empty);
        // corrupt the signer index of item 0 (offset: header + tables + 10)
        let b = Batch::decode(&bytes, 5).unwrap();
        let tables: usize = 5
            + 2
            + b.strings().iter().map(|s| 1 + s.len()).sum::<usize>()
            + 2
            + 32 * b.keys().len()
            + 4;
        let mut bad = bytes.clone();
        bad[tables + 10] = 0xff;
        assert!(matches!(
            Batch::decode(&bad, 5),
            Err(DecodeError::IndexOutOfRange {
                item: 0,
                field: "signer",
                ..
            })
        ));
        let mut bad = bytes.clone();
        bad[7] = 0; // first string length 0
        assert_eq!(
            Batch::decode(&bad, 5).unwrap_err(),
            DecodeError::BadStringLength { index: 0, len: 0 }
        );
        let mut bad = bytes;
        bad[8] = 0xff; // first string byte not UTF-8
        assert_eq!(
            Batch::decode(&bad, 5).unwrap_err(),
            DecodeError::InvalidUtf8 { index: 0 }
        );
    }

    #[test]
    fn encode_rejects_bad_strings() {
        let mut a = att(1, "p");
        a.unit = String::new();
        assert!(matches!(encode(&[a]), Err(EncodeError::BadString(_))));
        let a = att(1, &"x".repeat(129));
        assert!(matches!(encode(&[a]), Err(EncodeError::BadString(_))));
    }

    proptest! {
        // The decoder must never panic on arbitrary input, only return errors.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Batch::decode(&bytes, 10);
        }

        #[test]
        fn decode_never_panics_after_valid_prefix(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut bytes = encode(&[att(1, "p")]).unwrap();
            bytes.truncate(12);
            bytes.extend(tail);
            let _ = Batch::decode(&bytes, 10);
        }

        #[test]
        fn roundtrip_any(n in 1usize..20, q in any::<u64>(), price in any::<u128>()) {
            let items: Vec<_> = (0..n as u64).map(|i| { let mut a = att(i, "p"); a.quantity = q; a.max_unit_price = price; a }).collect();
            let bytes = encode(&items).unwrap();
            let b = Batch::decode(&bytes, 20).unwrap();
            for (i, a) in items.iter().enumerate() { prop_assert_eq!(&b.get(i).to_owned(), a); }
        }
    }
}
