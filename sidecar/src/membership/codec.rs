//! One size-bounded `libp2p::request_response::Codec` for every membership protocol.
//!
//! Frame: unsigned LEB128 length, then that many bytes of a message encoded by the
//! protocol's own positional codec. The length is checked against the protocol's maximum
//! before anything is allocated; a decode error becomes `io::ErrorKind::InvalidData` (the
//! request-response behaviour then reports an `InboundFailure`/`OutboundFailure::Io`).
//!
//! Compose as `request_response::Behaviour::<Codec<HeartbeatProtocol>>::new([(HeartbeatProtocol::NAME,
//! ProtocolSupport::Full)], cfg)`; the protocol markers below name the request/response types.
//!
//! The trait is implemented by hand in the shape `#[async_trait]` generates (boxed futures),
//! because the sidecar does not depend on `async-trait` directly.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;

use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use crate::membership::heartbeat::{self, HeartbeatResponse, SignedHeartbeat};
use crate::membership::wire::DecodeError;
use crate::membership::{node, offline, probe, witness};

/// A message with a positional binary encoding (each type's own `encode`/`decode`).
pub trait Message: Sized + Send + 'static {
    /// Encode to bytes.
    fn encode(&self) -> Vec<u8>;
    /// Decode, rejecting truncated, padded and malformed input.
    fn decode(b: &[u8]) -> Result<Self, DecodeError>;
}

/// Implements [`Message`] by delegating to a type's inherent `encode` and `decode`.
macro_rules! message {
    ($($t:ty => $enc:ident / $dec:ident),* $(,)?) => {$(
        impl Message for $t {
            fn encode(&self) -> Vec<u8> {
                <$t>::$enc(self)
            }
            fn decode(b: &[u8]) -> Result<Self, DecodeError> {
                <$t>::$dec(b)
            }
        }
    )*};
}

message!(
    SignedHeartbeat => to_bytes / from_bytes,
    HeartbeatResponse => encode / decode,
    witness::WitnessRequest => encode / decode,
    witness::WitnessReport => encode / decode,
    probe::Payload => encode / decode,
    probe::IndirectRequest => encode / decode,
    probe::IndirectResponse => encode / decode,
    node::CandidatesRequest => encode / decode,
    node::CandidatesResponse => encode / decode,
    offline::Batch => encode / decode,
    offline::Ack => encode / decode,
);

/// A request-response protocol spoken with [`Codec`]: its id, message types and frame bounds.
pub trait Protocol: Send + Sync + 'static {
    /// Request type.
    type Request: Message;
    /// Response type.
    type Response: Message;
    /// Protocol id.
    const NAME: StreamProtocol;
    /// Largest request frame accepted.
    const MAX_REQUEST: usize;
    /// Largest response frame accepted.
    const MAX_RESPONSE: usize;
}

/// The codec for protocol `P`.
pub struct Codec<P>(PhantomData<fn() -> P>);

impl<P> Default for Codec<P> {
    fn default() -> Self {
        Codec(PhantomData)
    }
}

impl<P> Clone for Codec<P> {
    fn clone(&self) -> Self {
        Codec(PhantomData)
    }
}

impl<P> std::fmt::Debug for Codec<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("membership::Codec")
    }
}

fn invalid(e: DecodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Read one length-prefixed frame of at most `max` bytes.
pub async fn read_frame<T: AsyncRead + Unpin>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len: u64 = 0;
    let mut byte = [0u8; 1];
    let mut done = false;
    for i in 0..10 {
        io.read_exact(&mut byte).await?;
        len |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            done = true;
            break;
        }
    }
    if !done {
        return Err(invalid(DecodeError::Varint {
            field: "frame length",
        }));
    }
    if len > max as u64 {
        return Err(invalid(DecodeError::Oversized {
            got: len,
            max: max as u64,
        }));
    }
    let mut buf = vec![0u8; len as usize];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Write one length-prefixed frame and flush.
pub async fn write_frame<T: AsyncWrite + Unpin>(io: &mut T, body: &[u8]) -> io::Result<()> {
    let mut w = crate::membership::wire::Writer::default();
    w.varint(body.len() as u64);
    w.raw(body);
    io.write_all(&w.into_bytes()).await?;
    io.flush().await
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

impl<P: Protocol> libp2p::request_response::Codec for Codec<P> {
    type Protocol = StreamProtocol;
    type Request = P::Request;
    type Response = P::Response;

    fn read_request<'l0, 'l1, 'l2, 'at, T>(
        &'l0 mut self,
        _: &'l1 StreamProtocol,
        io: &'l2 mut T,
    ) -> BoxFut<'at, P::Request>
    where
        T: AsyncRead + Unpin + Send + 'at,
        'l0: 'at,
        'l1: 'at,
        'l2: 'at,
        Self: 'at,
    {
        Box::pin(async move {
            let b = read_frame(io, P::MAX_REQUEST).await?;
            P::Request::decode(&b).map_err(invalid)
        })
    }

    fn read_response<'l0, 'l1, 'l2, 'at, T>(
        &'l0 mut self,
        _: &'l1 StreamProtocol,
        io: &'l2 mut T,
    ) -> BoxFut<'at, P::Response>
    where
        T: AsyncRead + Unpin + Send + 'at,
        'l0: 'at,
        'l1: 'at,
        'l2: 'at,
        Self: 'at,
    {
        Box::pin(async move {
            let b = read_frame(io, P::MAX_RESPONSE).await?;
            P::Response::decode(&b).map_err(invalid)
        })
    }

    fn write_request<'l0, 'l1, 'l2, 'at, T>(
        &'l0 mut self,
        _: &'l1 StreamProtocol,
        io: &'l2 mut T,
        req: P::Request,
    ) -> BoxFut<'at, ()>
    where
        T: AsyncWrite + Unpin + Send + 'at,
        'l0: 'at,
        'l1: 'at,
        'l2: 'at,
        Self: 'at,
    {
        Box::pin(async move { write_frame(io, &req.encode()).await })
    }

    fn write_response<'l0, 'l1, 'l2, 'at, T>(
        &'l0 mut self,
        _: &'l1 StreamProtocol,
        io: &'l2 mut T,
        res: P::Response,
    ) -> BoxFut<'at, ()>
    where
        T: AsyncWrite + Unpin + Send + 'at,
        'l0: 'at,
        'l1: 'at,
        'l2: 'at,
        Self: 'at,
    {
        Box::pin(async move { write_frame(io, &res.encode()).await })
    }
}

/// `/garden/heartbeat/1.0.0`: [`SignedHeartbeat`] → [`HeartbeatResponse`].
#[derive(Debug)]
pub struct HeartbeatProtocol;

impl Protocol for HeartbeatProtocol {
    type Request = SignedHeartbeat;
    type Response = HeartbeatResponse;
    const NAME: StreamProtocol = heartbeat::PROTOCOL;
    const MAX_REQUEST: usize = heartbeat::MAX_REQUEST;
    const MAX_RESPONSE: usize = heartbeat::MAX_RESPONSE;
}

/// `/garden/offline-heartbeats/1.0.0`: [`offline::Batch`] → [`offline::Ack`].
#[derive(Debug)]
pub struct OfflineProtocol;

impl Protocol for OfflineProtocol {
    type Request = offline::Batch;
    type Response = offline::Ack;
    const NAME: StreamProtocol = offline::PROTOCOL;
    const MAX_REQUEST: usize = offline::MAX_REQUEST;
    const MAX_RESPONSE: usize = offline::MAX_RESPONSE;
}

/// `/garden/witness/1.0.0`: [`witness::WitnessRequest`] → [`witness::WitnessReport`].
#[derive(Debug)]
pub struct WitnessProtocol;

impl Protocol for WitnessProtocol {
    type Request = witness::WitnessRequest;
    type Response = witness::WitnessReport;
    const NAME: StreamProtocol = witness::PROTOCOL;
    const MAX_REQUEST: usize = witness::MAX_MESSAGE;
    const MAX_RESPONSE: usize = witness::MAX_MESSAGE;
}

/// `/garden/probe/1.0.0`: [`probe::Payload`] echoed back as a [`probe::Payload`].
#[derive(Debug)]
pub struct ProbeProtocol;

impl Protocol for ProbeProtocol {
    type Request = probe::Payload;
    type Response = probe::Payload;
    const NAME: StreamProtocol = probe::PROTOCOL;
    const MAX_REQUEST: usize = probe::MAX_FRAME;
    const MAX_RESPONSE: usize = probe::MAX_FRAME;
}

/// `/garden/indirect-probe/1.0.0`: [`probe::IndirectRequest`] → [`probe::IndirectResponse`].
#[derive(Debug)]
pub struct IndirectProbeProtocol;

impl Protocol for IndirectProbeProtocol {
    type Request = probe::IndirectRequest;
    type Response = probe::IndirectResponse;
    const NAME: StreamProtocol = probe::INDIRECT_PROTOCOL;
    const MAX_REQUEST: usize = probe::MAX_INDIRECT;
    const MAX_RESPONSE: usize = probe::MAX_INDIRECT;
}

/// `/garden/indexer-candidates/1.0.0`: [`node::CandidatesRequest`] → [`node::CandidatesResponse`].
#[derive(Debug)]
pub struct CandidatesProtocol;

impl Protocol for CandidatesProtocol {
    type Request = node::CandidatesRequest;
    type Response = node::CandidatesResponse;
    const NAME: StreamProtocol = node::CANDIDATES_PROTOCOL;
    const MAX_REQUEST: usize = 16;
    const MAX_RESPONSE: usize = node::MAX_CANDIDATES_RESPONSE;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::heartbeat::{Heartbeat, Signer};
    use crate::membership::testutil::key;
    use libp2p::futures::executor::block_on;
    use libp2p::request_response::Codec as _;

    #[test]
    fn heartbeat_frame_round_trips_through_the_codec() {
        let (sk, _) = key(1);
        let (_, idx) = key(2);
        let signed = Signer::new(sk).sign(
            Heartbeat {
                seq: 3,
                ..Default::default()
            },
            &idx,
        );
        let mut c = Codec::<HeartbeatProtocol>::default();
        let mut buf = Vec::new();
        block_on(c.write_request(&HeartbeatProtocol::NAME, &mut buf, signed.clone())).unwrap();
        let mut rd = libp2p::futures::io::Cursor::new(buf);
        let got = block_on(c.read_request(&HeartbeatProtocol::NAME, &mut rd)).unwrap();
        assert_eq!(got, signed);
    }

    #[test]
    fn oversized_frame_is_rejected_before_reading_the_body() {
        let mut w = crate::membership::wire::Writer::default();
        w.varint(heartbeat::MAX_RESPONSE as u64 + 1);
        let mut rd = libp2p::futures::io::Cursor::new(w.into_bytes());
        let mut c = Codec::<HeartbeatProtocol>::default();
        let e = block_on(c.read_response(&HeartbeatProtocol::NAME, &mut rd)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("exceeds the maximum"), "{e}");
    }

    #[test]
    fn truncated_and_malformed_frames_are_errors() {
        let mut c = Codec::<HeartbeatProtocol>::default();
        // Length says 10, only 3 bytes follow.
        let mut rd = libp2p::futures::io::Cursor::new(vec![10u8, 1, 2, 3]);
        let e = block_on(c.read_response(&HeartbeatProtocol::NAME, &mut rd)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // A full frame of garbage.
        let mut rd = libp2p::futures::io::Cursor::new(vec![2u8, 9, 9]);
        let e = block_on(c.read_response(&HeartbeatProtocol::NAME, &mut rd)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // An endless length varint.
        let mut rd = libp2p::futures::io::Cursor::new(vec![0xffu8; 12]);
        let e = block_on(c.read_request(&HeartbeatProtocol::NAME, &mut rd)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    /// Every strict prefix of a valid message of every protocol is rejected, and so is a
    /// trailing byte: no decoder accepts a partial or padded frame.
    #[test]
    fn every_protocol_rejects_truncated_and_padded_messages() {
        use crate::membership::testutil::peer;
        use crate::membership::{node, probe, witness, PeerInfo, Timestamp};
        fn check<P: Protocol>(req: &P::Request, resp: &P::Response) {
            for (bytes, is_req) in [(req.encode(), true), (resp.encode(), false)] {
                let dec = |b: &[u8]| {
                    if is_req {
                        P::Request::decode(b).is_ok()
                    } else {
                        P::Response::decode(b).is_ok()
                    }
                };
                assert!(dec(&bytes), "{} round trip", P::NAME);
                for n in 0..bytes.len() {
                    assert!(!dec(&bytes[..n]), "{}: prefix {n} accepted", P::NAME);
                }
                let mut padded = bytes.clone();
                padded.push(0);
                assert!(!dec(&padded), "{}: trailing byte accepted", P::NAME);
            }
        }
        let info = PeerInfo::new(peer(1), vec!["/ip4/10.0.0.1/tcp/1".parse().unwrap()]);
        check::<WitnessProtocol>(
            &witness::WitnessRequest { indexer: peer(2) },
            &witness::WitnessReport {
                seen: true,
                born_at: Timestamp::from_millis(9),
                fill_rate: 0.5,
                score: 60.0,
            },
        );
        check::<ProbeProtocol>(&probe::Payload(vec![1; 600]), &probe::Payload(vec![2; 4]));
        check::<IndirectProbeProtocol>(
            &probe::IndirectRequest {
                target: info.clone(),
            },
            &probe::IndirectResponse {
                reachable: true,
                latency_ms: 300,
            },
        );
        check::<CandidatesProtocol>(
            &node::CandidatesRequest { count: 3 },
            &node::CandidatesResponse {
                candidates: vec![info],
            },
        );
    }
}
