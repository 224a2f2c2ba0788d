//! Bandwidth probe `/garden/probe/1.0.0` (an echo, , ) and SWIM indirect
//! probe `/garden/indirect-probe/1.0.0`.
//!
//! The echo is a request-response here (payload → same payload) instead of a raw
//! half-closed stream: same measurement, bounded frames, no stream-shutdown corner cases.
//! Everyone registers the echo; indexers probe nodes for admission and answer indirect probes.

use std::time::Duration;

use libp2p::{PeerId, StreamProtocol};
use rand::Rng;

use crate::membership::wire::{self, Reader, Result, Writer};
use crate::membership::{unit, PeerInfo};

/// Echo protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/garden/probe/1.0.0");
/// Indirect probe protocol id.
pub const INDIRECT_PROTOCOL: StreamProtocol = StreamProtocol::new("/garden/indirect-probe/1.0.0");
/// Smallest admission-probe payload.
pub const MIN_PAYLOAD: usize = 512;
/// Largest admission-probe payload (exclusive bound of the random size, as in Go).
pub const MAX_PAYLOAD: usize = 2048;
/// Largest echo frame accepted (payload + framing).
pub const MAX_FRAME: usize = MAX_PAYLOAD + 16;
/// Largest indirect-probe message.
pub const MAX_INDIRECT: usize = 2 + 33 + 1 + wire::MAX_ADDRS * (2 + wire::MAX_MULTIADDR);
/// Base round trip.
pub const BASE_ROUND_TRIP: Duration = Duration::from_millis(400);
/// Round-trip allowance per KiB of payload. Go wrote 100 ms per *byte* (B15: 51–205 s).
pub const PER_KIB: Duration = Duration::from_millis(100);
/// Indirect-probe voters asked.
pub const INDIRECT_FANOUT: usize = 2;
/// Payload of the indirect probe's echo.
pub const PING: &[u8; 4] = b"ping";

/// Echo payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload(pub Vec<u8>);

impl Payload {
    /// A random admission-probe payload of `512 + rand·1536` bytes.
    pub fn random<R: Rng>(rng: &mut R) -> Payload {
        let n = rng.gen_range(MIN_PAYLOAD..MAX_PAYLOAD);
        let mut v = vec![0u8; n];
        rng.fill(&mut v[..]);
        Payload(v)
    }

    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version();
        w.bytes(&self.0[..self.0.len().min(MAX_PAYLOAD)]);
        w.into_bytes()
    }

    /// Decode.
    pub fn decode(b: &[u8]) -> Result<Payload> {
        let mut r = Reader::new(b);
        r.version()?;
        let p = r.bytes("payload", MAX_PAYLOAD)?.to_vec();
        r.finish()?;
        Ok(Payload(p))
    }
}

/// What an echo probe measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    /// Completed within the allowed round trip.
    pub ok: bool,
    /// Throughput score 0–1: 1 when the payload made the round trip within the base round
    /// trip (400 ms), proportionally less when slower.
    pub bandwidth: f64,
    /// Latency score 0–1: `1 − duration / max_round_trip`.
    pub latency: f64,
}

impl Measurement {
    /// A failed probe (error, timeout, wrong echo): zero on both dimensions.
    pub const FAILED: Measurement = Measurement {
        ok: false,
        bandwidth: 0.0,
        latency: 0.0,
    };

    /// Evaluate an echo of `size` bytes that took `duration`; `echo_matches` is whether the
    /// echoed bytes equal the sent ones (Go never compared them).
    pub fn evaluate(size: usize, duration: Duration, echo_matches: bool) -> Measurement {
        if !echo_matches {
            return Measurement::FAILED;
        }
        let max_rt = max_round_trip(size);
        let d = duration.as_secs_f64().max(1e-6);
        Measurement {
            ok: duration <= max_rt,
            bandwidth: unit(BASE_ROUND_TRIP.as_secs_f64() / d),
            latency: unit(1.0 - d / max_rt.as_secs_f64()),
        }
    }
}

/// `400 ms + 100 ms per KiB`.
pub fn max_round_trip(size: usize) -> Duration {
    BASE_ROUND_TRIP + PER_KIB.mul_f64(size as f64 / 1024.0)
}

/// "Please check whether `target` answers."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndirectRequest {
    /// The suspected peer and where to reach it.
    pub target: PeerInfo,
}

impl IndirectRequest {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version();
        w.peer_info(&self.target);
        w.into_bytes()
    }
    /// Decode.
    pub fn decode(b: &[u8]) -> Result<Self> {
        wire::check_len(b, MAX_INDIRECT)?;
        let mut r = Reader::new(b);
        r.version()?;
        let target = r.peer_info("target")?;
        r.finish()?;
        Ok(IndirectRequest { target })
    }
}

/// The voter's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndirectResponse {
    /// The target echoed `ping`.
    pub reachable: bool,
    /// Round trip in milliseconds (0 when unreachable).
    pub latency_ms: u32,
}

impl IndirectResponse {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version();
        w.u8(u8::from(self.reachable));
        w.varint(self.latency_ms.into());
        w.into_bytes()
    }
    /// Decode.
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b);
        r.version()?;
        let reachable = r.bool("reachable")?;
        let latency_ms = r.bounded("latency_ms", u32::MAX.into())? as u32;
        r.finish()?;
        Ok(IndirectResponse {
            reachable,
            latency_ms,
        })
    }
}

/// Choose up to `k` voters for an indirect probe of `target`, never the target itself (Go
/// included it, B7, which made a pool of two always vote "dead").
pub fn choose_voters<R: Rng>(
    rng: &mut R,
    target: &PeerId,
    pool: &[PeerId],
    k: usize,
) -> Vec<PeerId> {
    let mut v: Vec<PeerId> = pool.iter().filter(|p| *p != target).copied().collect();
    // Partial Fisher–Yates: the first k are a uniform sample.
    let k = k.min(v.len());
    for i in 0..k {
        let j = rng.gen_range(i..v.len());
        v.swap(i, j);
    }
    v.truncate(k);
    v
}

/// Alive iff a strict majority of the `asked` voters reached the target.
pub fn indirect_verdict(reachable: usize, asked: usize) -> bool {
    asked > 0 && reachable > asked / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::testutil::peer;
    use rand::SeedableRng;

    #[test]
    fn random_payload_size_is_in_range() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let n = Payload::random(&mut rng).0.len();
            assert!((MIN_PAYLOAD..MAX_PAYLOAD).contains(&n));
        }
    }

    #[test]
    fn evaluation_uses_per_kib_budget() {
        assert_eq!(max_round_trip(2048), Duration::from_millis(600));
        let fast = Measurement::evaluate(2048, Duration::from_millis(10), true);
        assert!(fast.ok);
        assert_eq!(fast.bandwidth, 1.0);
        assert!((fast.latency - (1.0 - 10.0 / 600.0)).abs() < 1e-9);
        let slow = Measurement::evaluate(2048, Duration::from_millis(800), true);
        assert!(!slow.ok);
        assert!((slow.bandwidth - 0.5).abs() < 1e-9);
        assert_eq!(slow.latency, 0.0);
        assert_eq!(
            Measurement::evaluate(2048, Duration::from_millis(1), false),
            Measurement::FAILED
        );
    }

    #[test]
    fn voters_exclude_the_target_and_cap_at_k() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let pool = vec![peer(1), peer(2)];
        assert_eq!(choose_voters(&mut rng, &peer(1), &pool, 2), vec![peer(2)]);
        let big: Vec<PeerId> = (1..10).map(peer).collect();
        let v = choose_voters(&mut rng, &peer(3), &big, 2);
        assert_eq!(v.len(), 2);
        assert!(!v.contains(&peer(3)));
        assert!(choose_voters(&mut rng, &peer(1), &[peer(1)], 2).is_empty());
    }

    #[test]
    fn verdict_needs_strict_majority() {
        assert!(!indirect_verdict(0, 0));
        assert!(indirect_verdict(1, 1));
        assert!(!indirect_verdict(1, 2));
        assert!(indirect_verdict(2, 2));
        assert!(indirect_verdict(2, 3));
    }

    #[test]
    fn messages_round_trip_and_reject_bad_input() {
        let p = Payload(vec![5; 600]);
        assert_eq!(Payload::decode(&p.encode()).unwrap(), p);
        let mut w = Writer::with_version();
        w.varint(MAX_PAYLOAD as u64 + 1);
        assert!(Payload::decode(&w.into_bytes()).is_err());
        let q = IndirectRequest {
            target: PeerInfo::new(peer(1), vec!["/ip4/1.2.3.4/tcp/1".parse().unwrap()]),
        };
        assert_eq!(IndirectRequest::decode(&q.encode()).unwrap(), q);
        let a = IndirectResponse {
            reachable: true,
            latency_ms: 12,
        };
        assert_eq!(IndirectResponse::decode(&a.encode()).unwrap(), a);
        assert!(IndirectResponse::decode(&[1, 3, 0]).is_err(), "bool byte 3");
        assert!(IndirectResponse::decode(&[1, 1]).is_err(), "truncated");
    }
}
