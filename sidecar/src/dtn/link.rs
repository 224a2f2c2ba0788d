//! The wire protocol `/garden/dtn/1.0.0`: how an outbox batch travels to its peer over a
//! `libp2p_stream` stream (inside the Noise channel, so payloads travel in clear on the wire
//! and stay sealed only at rest).
//!
//! One stream carries one batch, sender → receiver, then one acknowledgement back. Every
//! frame is `varint(length) ‖ body` ([`crate::membership::codec`]):
//!
//! | frame | body |
//! |---|---|
//! | head | `version (u8 = 1) ‖ count (u16 BE, ≤ MAX_BATCH)` |
//! | entry ×count | `id (16, BE) ‖ protocol (u16 BE len ‖ UTF-8, ≤ MAX_PROTOCOL) ‖ op (u8, `Op::code`) ‖ resource (u16 BE len ‖ UTF-8, ≤ MAX_RESOURCE) ‖ payload (u32 BE len ‖ bytes, ≤ max payload)` |
//! | ack (back) | `version (u8 = 1) ‖ count (u16 BE) ‖ id (16) ×count` |
//!
//! The receiver acknowledges every entry it recorded, fresh or duplicate (see
//! [`super::inbox`]); an entry it could not hand to the application is left out of the ack and
//! the sender retries it. Bounds: an entry frame is at most the outbox's largest payload plus
//! [`ENTRY_OVERHEAD`]; a batch holds at most [`MAX_BATCH`] entries and [`MAX_BATCH_BYTES`]
//! bytes of payload; a decoder refuses anything else with a typed [`DecodeError`] (nothing is
//! applied from a batch that does not decode entirely). A batch of zero entries is a *hello*:
//! "I am reachable, send me what you hold" (the answer to a wake-up, see [`super::plane`]).

use std::io;

use libp2p::futures::{AsyncRead, AsyncWrite};
use libp2p::StreamProtocol;

use super::entry::Id;
use super::lifecycle::Op;
use super::outbox::Item;
use crate::membership::codec::{read_frame, write_frame};

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/garden/dtn/1.0.0");
/// Version byte of the head and ack frames.
pub const VERSION: u8 = 1;
/// Most entries per batch.
pub const MAX_BATCH: usize = 256;
/// Most payload bytes per batch (a batch stops earlier; a single larger entry travels alone).
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Longest protocol name, bytes.
pub const MAX_PROTOCOL: usize = 256;
/// Longest resource key, bytes.
pub const MAX_RESOURCE: usize = 1024;
/// Bytes of an entry frame beside its payload, at most.
pub const ENTRY_OVERHEAD: usize = 16 + 2 + MAX_PROTOCOL + 1 + 2 + MAX_RESOURCE + 4;
const HEAD_LEN: usize = 3;
const ACK_MAX: usize = 3 + 16 * MAX_BATCH;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown version {0}")]
    Version(u8),
    #[error("truncated {field}")]
    Truncated { field: &'static str },
    #[error("{field}: {got} exceeds the maximum {max}")]
    TooLong {
        field: &'static str,
        got: usize,
        max: usize,
    },
    #[error("{field} is not UTF-8")]
    Utf8 { field: &'static str },
    #[error("unknown op code {0}")]
    Op(u8),
    #[error("{0} trailing bytes")]
    Trailing(usize),
    #[error("acknowledged id {0} was not sent")]
    Unsent(Id),
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("stream i/o: {0}")]
    Io(#[from] io::Error),
    #[error("refused frame: {0}")]
    Decode(#[from] DecodeError),
    #[error("timed out")]
    Timeout,
    #[error("cannot open a stream: {0}")]
    Open(String),
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated { field });
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }
    fn u16(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }
    fn u32(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn bounded(
        &mut self,
        len: usize,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if len > max {
            return Err(DecodeError::TooLong {
                field,
                got: len,
                max,
            });
        }
        self.take(len, field)
    }
    fn text(&mut self, max: usize, field: &'static str) -> Result<String, DecodeError> {
        let n = self.u16(field)?;
        let b = self.bounded(n, max, field)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Utf8 { field })
    }
    fn id(&mut self) -> Result<Id, DecodeError> {
        let b = self.take(16, "id")?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(Id(u128::from_be_bytes(a)))
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing(self.buf.len()))
        }
    }
}

/// The head frame of a batch of `count` entries.
pub fn encode_head(count: usize) -> Vec<u8> {
    let mut v = vec![VERSION];
    v.extend_from_slice(&(count.min(MAX_BATCH) as u16).to_be_bytes());
    v
}

/// Decodes a head frame: the entry count.
pub fn decode_head(b: &[u8]) -> Result<usize, DecodeError> {
    let mut r = Reader { buf: b };
    let v = r.u8("version")?;
    if v != VERSION {
        return Err(DecodeError::Version(v));
    }
    let n = r.u16("count")?;
    if n > MAX_BATCH {
        return Err(DecodeError::TooLong {
            field: "count",
            got: n,
            max: MAX_BATCH,
        });
    }
    r.end()?;
    Ok(n)
}

/// An entry frame. Callers keep strings within [`MAX_PROTOCOL`] / [`MAX_RESOURCE`] (longer
/// ones are refused by the receiver).
pub fn encode_entry(it: &Item) -> Vec<u8> {
    let mut v = Vec::with_capacity(ENTRY_OVERHEAD + it.payload.len());
    v.extend_from_slice(&it.id.to_bytes());
    v.extend_from_slice(&(it.protocol.len() as u16).to_be_bytes());
    v.extend_from_slice(it.protocol.as_bytes());
    v.push(it.op.code());
    v.extend_from_slice(&(it.resource.len() as u16).to_be_bytes());
    v.extend_from_slice(it.resource.as_bytes());
    v.extend_from_slice(&(it.payload.len() as u32).to_be_bytes());
    v.extend_from_slice(&it.payload);
    v
}

/// Decodes an entry frame whose payload is at most `max_payload` bytes.
pub fn decode_entry(b: &[u8], max_payload: usize) -> Result<Item, DecodeError> {
    let mut r = Reader { buf: b };
    let id = r.id()?;
    let protocol = r.text(MAX_PROTOCOL, "protocol")?;
    let code = r.u8("op")?;
    let op = Op::from_code(code).ok_or(DecodeError::Op(code))?;
    let resource = r.text(MAX_RESOURCE, "resource")?;
    let n = r.u32("payload")?;
    let payload = r.bounded(n, max_payload, "payload")?.to_vec();
    r.end()?;
    Ok(Item {
        id,
        protocol,
        op,
        resource,
        payload,
    })
}

/// The acknowledgement frame.
pub fn encode_ack(ids: &[Id]) -> Vec<u8> {
    let ids = &ids[..ids.len().min(MAX_BATCH)];
    let mut v = encode_head(ids.len());
    for id in ids {
        v.extend_from_slice(&id.to_bytes());
    }
    v
}

/// Decodes an acknowledgement frame.
pub fn decode_ack(b: &[u8]) -> Result<Vec<Id>, DecodeError> {
    if b.len() < HEAD_LEN {
        return Err(DecodeError::Truncated { field: "ack head" });
    }
    let n = decode_head(&b[..HEAD_LEN])?;
    let mut r = Reader {
        buf: &b[HEAD_LEN..],
    };
    let ids = (0..n).map(|_| r.id()).collect::<Result<Vec<_>, _>>()?;
    r.end()?;
    Ok(ids)
}

/// How many of `items` (from the front) make one batch: at most [`MAX_BATCH`] entries and
/// [`MAX_BATCH_BYTES`] of payload, at least one entry.
pub fn batch_len(items: &[Item]) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for it in items.iter().take(MAX_BATCH) {
        bytes += it.payload.len();
        if n > 0 && bytes > MAX_BATCH_BYTES {
            break;
        }
        n += 1;
    }
    n
}

/// Sender side: writes `items` (one batch, see [`batch_len`]) and reads the peer's
/// acknowledgement; returns the acknowledged ids (only ids that were sent).
pub async fn send_batch<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    items: &[Item],
) -> Result<Vec<Id>, LinkError> {
    write_frame(io, &encode_head(items.len())).await?;
    for it in items {
        write_frame(io, &encode_entry(it)).await?;
    }
    let ack = decode_ack(&read_frame(io, ACK_MAX).await?)?;
    if let Some(bad) = ack.iter().find(|id| !items.iter().any(|it| it.id == **id)) {
        return Err(DecodeError::Unsent(*bad).into());
    }
    Ok(ack)
}

/// Receiver side: reads one batch (empty for a hello) whose payloads are at most
/// `max_payload` bytes each; the caller records it, then answers with [`write_ack`].
pub async fn read_batch<S: AsyncRead + Unpin>(
    io: &mut S,
    max_payload: usize,
) -> Result<Vec<Item>, LinkError> {
    let n = decode_head(&read_frame(io, HEAD_LEN).await?)?;
    let mut items = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let it = decode_entry(
            &read_frame(io, ENTRY_OVERHEAD + max_payload).await?,
            max_payload,
        )?;
        bytes += it.payload.len();
        if !items.is_empty() && bytes > MAX_BATCH_BYTES.max(max_payload) {
            return Err(DecodeError::TooLong {
                field: "batch payload",
                got: bytes,
                max: MAX_BATCH_BYTES.max(max_payload),
            }
            .into());
        }
        items.push(it);
    }
    Ok(items)
}

/// Receiver side: the acknowledgement of `ids`.
pub async fn write_ack<S: AsyncWrite + Unpin>(io: &mut S, ids: &[Id]) -> Result<(), LinkError> {
    write_frame(io, &encode_ack(ids)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u64, payload: usize) -> Item {
        Item {
            id: Id::new(9, seq),
            protocol: "/garden/resource/1".into(),
            op: Op::Update,
            resource: "res-1".into(),
            payload: vec![7; payload],
        }
    }

    #[test]
    fn entries_and_acks_round_trip() {
        let it = item(3, 40);
        assert_eq!(decode_entry(&encode_entry(&it), 1024).unwrap(), it);
        let ids = vec![Id::new(1, 2), Id::new(3, 4)];
        assert_eq!(decode_ack(&encode_ack(&ids)).unwrap(), ids);
        assert_eq!(decode_head(&encode_head(0)).unwrap(), 0);
    }

    #[test]
    fn the_decoder_is_strict() {
        let b = encode_entry(&item(1, 10));
        assert_eq!(
            decode_entry(&b, 9),
            Err(DecodeError::TooLong {
                field: "payload",
                got: 10,
                max: 9
            })
        );
        assert!(matches!(
            decode_entry(&b[..b.len() - 1], 100),
            Err(DecodeError::Truncated { .. })
        ));
        let mut padded = b.clone();
        padded.push(0);
        assert_eq!(decode_entry(&padded, 100), Err(DecodeError::Trailing(1)));
        let mut bad_op = b.clone();
        bad_op[16 + 2 + "/garden/resource/1".len()] = 200;
        assert_eq!(decode_entry(&bad_op, 100), Err(DecodeError::Op(200)));
        assert_eq!(decode_head(&[2, 0, 1]), Err(DecodeError::Version(2)));
        assert!(matches!(
            decode_head(&[1, 1, 1]),
            Err(DecodeError::TooLong { field: "count", .. })
        ));
        assert!(decode_ack(&[1, 0, 1]).is_err());
    }

    #[test]
    fn batches_are_bounded() {
        let many: Vec<Item> = (0..300).map(|i| item(i, 1)).collect();
        assert_eq!(batch_len(&many), MAX_BATCH);
        let big: Vec<Item> = (0..3).map(|i| item(i, MAX_BATCH_BYTES / 2 + 1)).collect();
        assert_eq!(batch_len(&big), 1);
        assert_eq!(batch_len(&big[..0]), 0);
    }

    #[tokio::test]
    async fn a_batch_reads_back_and_an_oversized_frame_is_refused() {
        let items: Vec<Item> = (0..5).map(|i| item(i, 100)).collect();
        let mut w = futures::io::Cursor::new(Vec::new());
        write_frame(&mut w, &encode_head(items.len()))
            .await
            .unwrap();
        for it in &items {
            write_frame(&mut w, &encode_entry(it)).await.unwrap();
        }
        let bytes = w.into_inner();
        let got = read_batch(&mut futures::io::Cursor::new(bytes.clone()), 1024)
            .await
            .unwrap();
        assert_eq!(got, items);
        // The same batch to a receiver allowing 50-byte payloads: refused before the read.
        let err = read_batch(&mut futures::io::Cursor::new(bytes), 50)
            .await
            .unwrap_err();
        assert!(
            matches!(err, LinkError::Io(_) | LinkError::Decode(_)),
            "{err}"
        );
    }
}
