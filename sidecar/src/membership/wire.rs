//! Compact binary primitives shared by every membership message.
//!
//! Messages are positional (no field names on the wire): a version byte, a varint bitmap of
//! the optional fields present, then the fields in a fixed order. Integers are LEB128
//! varints, peer ids of Ed25519 keys are their raw 32-byte public key (the common case: 33
//! bytes instead of a 52-character base58 string), times are varint milliseconds.
//!
//! The varint codec is hand-written (20 lines) instead of pulling `unsigned-varint`: the
//! sidecar does not depend on it directly, and a decoder over a borrowed slice that reports
//! *which* field was malformed is what the error messages need.
//!
//! Every read is bounds-checked and every length is checked against a caller-given maximum
//! **before** allocating, so a hostile length prefix cannot make us allocate; decoding never
//! panics.

use libp2p::{Multiaddr, PeerId};

/// A message could not be decoded. Carries the field that failed so logs say what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Input ended inside `field`.
    #[error("truncated input while reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A varint longer than 10 bytes or overflowing u64.
    #[error("malformed varint in {field}")]
    Varint {
        /// The field being read.
        field: &'static str,
    },
    /// A length or count above the protocol bound.
    #[error("{field}: {got} exceeds the maximum {max}")]
    TooLong {
        /// The field being read.
        field: &'static str,
        /// The announced length or count.
        got: u64,
        /// The bound.
        max: u64,
    },
    /// A whole message above the protocol bound.
    #[error("message of {got} bytes exceeds the maximum {max}")]
    Oversized {
        /// The size.
        got: u64,
        /// The bound.
        max: u64,
    },
    /// A version this build does not speak.
    #[error("unsupported message version {0}")]
    Version(u8),
    /// Flag bits this version does not define.
    #[error("unknown flag bits {0:#x}")]
    UnknownFlags(u64),
    /// A value out of its domain (enum tag, bool byte, ...).
    #[error("invalid value for {field}")]
    Invalid {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes left after the message.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

/// Rejects a message longer than `max` bytes before any of it is decoded.
pub fn check_len(b: &[u8], max: usize) -> Result<()> {
    if b.len() > max {
        return Err(DecodeError::Oversized {
            got: b.len() as u64,
            max: max as u64,
        });
    }
    Ok(())
}

/// Result alias for decoding.
pub type Result<T> = std::result::Result<T, DecodeError>;

/// The only message version this build emits and accepts.
pub const VERSION: u8 = 1;

/// Maximum encoded length of a multiaddr we accept (a DNS name plus ports fits well below).
pub const MAX_MULTIADDR: usize = 256;
/// Maximum addresses per peer carried in a message.
pub const MAX_ADDRS: usize = 8;

/// Append-only writer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer with the version byte already written.
    pub fn with_version() -> Self {
        let mut w = Writer {
            buf: Vec::with_capacity(128),
        };
        w.u8(VERSION);
        w
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// One byte.
    pub fn u8(&mut self, b: u8) {
        self.buf.push(b);
    }

    /// LEB128 varint.
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// Raw bytes, no prefix.
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// A peer id: tag 0 + 32-byte key for Ed25519 identity ids, tag 1 + length-prefixed
    /// multihash otherwise.
    pub fn peer(&mut self, p: &PeerId) {
        let bytes = p.to_bytes();
        match ed25519_key_of(&bytes) {
            Some(k) => {
                self.u8(0);
                self.raw(k);
            }
            None => {
                self.u8(1);
                self.bytes(&bytes);
            }
        }
    }

    /// A multiaddr as its binary form.
    pub fn multiaddr(&mut self, a: &Multiaddr) {
        self.bytes(a.as_ref());
    }

    /// A peer with up to [`MAX_ADDRS`] addresses (extra addresses are dropped by the encoder).
    pub fn peer_info(&mut self, info: &crate::membership::PeerInfo) {
        self.peer(&info.peer);
        let addrs: Vec<&Multiaddr> = info
            .addrs
            .iter()
            .filter(|a| a.as_ref().len() <= MAX_MULTIADDR)
            .take(MAX_ADDRS)
            .collect();
        self.varint(addrs.len() as u64);
        for a in addrs {
            self.multiaddr(a);
        }
    }
}

/// Prefix of the protobuf-encoded Ed25519 public key inside an identity-multihash peer id:
/// multihash code 0x00 (identity), length 36, protobuf field 1 = KeyType Ed25519 (1),
/// field 2 = 32 bytes.
const ED25519_PEER_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/// The raw Ed25519 public key inside a peer id's bytes, if it is an Ed25519 identity id.
pub fn ed25519_key_of(peer_bytes: &[u8]) -> Option<&[u8]> {
    if peer_bytes.len() == 38 && peer_bytes[..6] == ED25519_PEER_PREFIX {
        Some(&peer_bytes[6..])
    } else {
        None
    }
}

/// Bounds-checked reader over a borrowed slice.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Read and check the version byte.
    pub fn version(&mut self) -> Result<()> {
        match self.u8("version")? {
            VERSION => Ok(()),
            v => Err(DecodeError::Version(v)),
        }
    }

    /// Fail unless everything was consumed.
    pub fn finish(&self) -> Result<()> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError::Truncated { field })?;
        self.pos += 1;
        Ok(b)
    }

    /// A bool byte (0 or 1 only).
    pub fn bool(&mut self, field: &'static str) -> Result<bool> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid { field }),
        }
    }

    /// LEB128 varint, at most 10 bytes, no u64 overflow.
    pub fn varint(&mut self, field: &'static str) -> Result<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8(field)?;
            let part = u64::from(b & 0x7f);
            if i == 9 && part > 1 {
                return Err(DecodeError::Varint { field });
            }
            v |= part << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Varint { field })
    }

    /// A varint bounded by `max`.
    pub fn bounded(&mut self, field: &'static str, max: u64) -> Result<u64> {
        let v = self.varint(field)?;
        if v > max {
            return Err(DecodeError::TooLong { field, got: v, max });
        }
        Ok(v)
    }

    /// A count of items bounded by `max`.
    pub fn count(&mut self, field: &'static str, max: usize) -> Result<usize> {
        // `max` is a small protocol constant: the cast back cannot truncate.
        Ok(self.bounded(field, max as u64)? as usize)
    }

    /// `n` raw bytes.
    pub fn raw(&mut self, field: &'static str, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Truncated { field })?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated { field })?;
        self.pos = end;
        Ok(s)
    }

    /// Length-prefixed bytes of at most `max` bytes.
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8]> {
        let n = self.count(field, max)?;
        self.raw(field, n)
    }

    /// Length-prefixed UTF-8 of at most `max` bytes.
    pub fn string(&mut self, field: &'static str, max: usize) -> Result<String> {
        let b = self.bytes(field, max)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Invalid { field })
    }

    /// A peer id (see [`Writer::peer`]).
    pub fn peer(&mut self, field: &'static str) -> Result<PeerId> {
        match self.u8(field)? {
            0 => {
                let k = self.raw(field, 32)?;
                let mut full = [0u8; 38];
                full[..6].copy_from_slice(&ED25519_PEER_PREFIX);
                full[6..].copy_from_slice(k);
                PeerId::from_bytes(&full).map_err(|_| DecodeError::Invalid { field })
            }
            1 => {
                let b = self.bytes(field, 64)?;
                PeerId::from_bytes(b).map_err(|_| DecodeError::Invalid { field })
            }
            _ => Err(DecodeError::Invalid { field }),
        }
    }

    /// A multiaddr.
    pub fn multiaddr(&mut self, field: &'static str) -> Result<Multiaddr> {
        let b = self.bytes(field, MAX_MULTIADDR)?;
        Multiaddr::try_from(b.to_vec()).map_err(|_| DecodeError::Invalid { field })
    }

    /// A peer with its addresses.
    pub fn peer_info(&mut self, field: &'static str) -> Result<crate::membership::PeerInfo> {
        let peer = self.peer(field)?;
        let n = self.count(field, MAX_ADDRS)?;
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            addrs.push(self.multiaddr(field)?);
        }
        Ok(crate::membership::PeerInfo { peer, addrs })
    }

    /// A list of peers, at most `max`.
    pub fn peers(&mut self, field: &'static str, max: usize) -> Result<Vec<PeerId>> {
        let n = self.count(field, max)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.peer(field)?);
        }
        Ok(v)
    }
}

/// Write a list of peers (caller guarantees the bound).
pub fn write_peers(w: &mut Writer, peers: &[PeerId]) {
    w.varint(peers.len() as u64);
    for p in peers {
        w.peer(p);
    }
}

/// Reject flag bits outside `known`.
pub fn check_flags(flags: u64, known: u64) -> Result<()> {
    match flags & !known {
        0 => Ok(()),
        extra => Err(DecodeError::UnknownFlags(extra)),
    }
}

/// Float in `[0, 1]` as basis points (0..=10 000): two bytes instead of Go's ~18-char decimal.
pub fn to_basis_points(x: f64) -> u64 {
    (crate::membership::unit(x) * 10_000.0).round() as u64
}

/// Basis points back to a float.
pub fn from_basis_points(bp: u64) -> f64 {
    bp.min(10_000) as f64 / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::testutil;

    #[test]
    fn varint_round_trips_edges() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut w = Writer::default();
            w.varint(v);
            let b = w.into_bytes();
            let mut r = Reader::new(&b);
            assert_eq!(r.varint("v").unwrap(), v);
            r.finish().unwrap();
        }
    }

    #[test]
    fn varint_rejects_overlong_and_overflow() {
        let eleven = [0x80u8; 11];
        assert_eq!(
            Reader::new(&eleven).varint("v"),
            Err(DecodeError::Varint { field: "v" })
        );
        // 10th byte carrying more than the top bit of u64.
        let mut over = [0xffu8; 10];
        over[9] = 0x02;
        assert_eq!(
            Reader::new(&over).varint("v"),
            Err(DecodeError::Varint { field: "v" })
        );
        assert_eq!(
            Reader::new(&[0x80]).varint("v"),
            Err(DecodeError::Truncated { field: "v" })
        );
    }

    #[test]
    fn ed25519_peer_is_33_bytes_and_round_trips() {
        let p = testutil::peer(7);
        let mut w = Writer::default();
        w.peer(&p);
        let b = w.into_bytes();
        assert_eq!(b.len(), 33);
        assert_eq!(Reader::new(&b).peer("p").unwrap(), p);
    }

    #[test]
    fn non_ed25519_peer_falls_back_to_multihash() {
        let p = PeerId::random();
        let mut w = Writer::default();
        w.peer(&p);
        let b = w.into_bytes();
        assert_eq!(b[0], 1);
        assert_eq!(Reader::new(&b).peer("p").unwrap(), p);
    }

    #[test]
    fn length_above_bound_is_rejected_before_allocation() {
        let mut w = Writer::default();
        w.varint(1 << 40);
        let b = w.into_bytes();
        assert!(matches!(
            Reader::new(&b).bytes("blob", 16),
            Err(DecodeError::TooLong { field: "blob", .. })
        ));
    }

    #[test]
    fn bad_peer_tag_and_bad_bool_are_invalid() {
        assert_eq!(
            Reader::new(&[9]).peer("p"),
            Err(DecodeError::Invalid { field: "p" })
        );
        assert_eq!(
            Reader::new(&[2]).bool("b"),
            Err(DecodeError::Invalid { field: "b" })
        );
    }

    #[test]
    fn basis_points_clamp_and_round_trip() {
        assert_eq!(to_basis_points(0.1234), 1234);
        assert_eq!(to_basis_points(7.0), 10_000);
        assert_eq!(to_basis_points(f64::NAN), 0);
        assert!((from_basis_points(1234) - 0.1234).abs() < 1e-9);
        assert_eq!(from_basis_points(99_999), 1.0);
    }
}
