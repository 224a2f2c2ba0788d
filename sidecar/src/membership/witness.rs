//! Witness queries `/garden/witness/1.0.0`: "what is your view of indexer X?"
//!.
//!
//! An indexer names up to 3 other peers that heartbeat it; the node asks each for its view of
//! that indexer and counts a witness as consistent when it saw the same `born_at` (exactly)
//! and a fill rate within 0.25. Consistency feeds the 15 % witness dimension of the score.

use libp2p::{PeerId, StreamProtocol};

use crate::membership::wire::{self, check_flags, Reader, Result, Writer};
use crate::membership::Timestamp;

/// Protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/garden/witness/1.0.0");
/// Both messages are tiny; anything larger is hostile.
pub const MAX_MESSAGE: usize = 128;
/// Allowed fill-rate difference between the witness and the indexer's own claim.
pub const FILL_TOLERANCE: f64 = 0.25;
/// Tolerance of the no-witness fallback `|fill_rate − 1/max_nodes|`.
pub const LONE_TOLERANCE: f64 = 0.1;

/// "What is your view of this indexer?"
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessRequest {
    /// The indexer asked about.
    pub indexer: PeerId,
}

impl WitnessRequest {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version();
        w.peer(&self.indexer);
        w.into_bytes()
    }
    /// Decode.
    pub fn decode(b: &[u8]) -> Result<Self> {
        wire::check_len(b, MAX_MESSAGE)?;
        let mut r = Reader::new(b);
        r.version()?;
        let indexer = r.peer("indexer")?;
        r.finish()?;
        Ok(WitnessRequest { indexer })
    }
}

/// A witness's view (Go `WitnessReport`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct WitnessReport {
    /// The witness has the indexer in its pool with a score.
    pub seen: bool,
    /// `born_at` the witness last saw (zero if not seen).
    pub born_at: Timestamp,
    /// Fill rate the witness last saw.
    pub fill_rate: f64,
    /// The witness's score of the indexer (0–100).
    pub score: f64,
}

impl WitnessReport {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version();
        w.varint(u64::from(self.seen));
        if self.seen {
            w.varint(self.born_at.as_millis());
            w.varint(wire::to_basis_points(self.fill_rate));
            w.varint(wire::to_basis_points(self.score / 100.0));
        }
        w.into_bytes()
    }
    /// Decode.
    pub fn decode(b: &[u8]) -> Result<Self> {
        wire::check_len(b, MAX_MESSAGE)?;
        let mut r = Reader::new(b);
        r.version()?;
        let flags = r.varint("flags")?;
        check_flags(flags, 1)?;
        let mut rep = WitnessReport::default();
        if flags == 1 {
            rep.seen = true;
            rep.born_at = Timestamp::from_millis(r.varint("born_at")?);
            rep.fill_rate = wire::from_basis_points(r.bounded("fill_rate", 10_000)?);
            rep.score = wire::from_basis_points(r.bounded("score", 10_000)?) * 100.0;
        }
        r.finish()?;
        Ok(rep)
    }
}

/// What the indexer claimed in the response whose witnesses are being checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Claim {
    /// The indexer's `born_at`.
    pub born_at: Timestamp,
    /// The indexer's fill rate.
    pub fill_rate: f64,
}

/// Whether one witness answer agrees with the claim. `None` (no answer, error, timeout) and
/// `seen == false` are inconsistent, as in Go.
pub fn is_consistent(report: Option<&WitnessReport>, claim: Claim) -> bool {
    match report {
        Some(r) if r.seen => {
            !r.born_at.is_zero()
                && r.born_at == claim.born_at
                && (r.fill_rate - claim.fill_rate).abs() < FILL_TOLERANCE
        }
        _ => false,
    }
}

/// With no witnesses offered, the indexer is plausible only if it claims to hold just us:
/// `peer_count == 1 && |fill_rate − 1/max_nodes| < 0.1`.
pub fn lone_indexer_consistent(peer_count: u32, max_nodes: u32, fill_rate: f64) -> bool {
    max_nodes > 0
        && peer_count == 1
        && (fill_rate - 1.0 / f64::from(max_nodes)).abs() < LONE_TOLERANCE
}

/// Tally a set of witness answers: `(checked, consistent)`. A witness that is the querying node
/// itself counts as checked and inconsistent (the indexer should never name the requester).
pub fn tally(
    local: &PeerId,
    answers: &[(PeerId, Option<WitnessReport>)],
    claim: Claim,
) -> (u32, u32) {
    let mut checked = 0u32;
    let mut consistent = 0u32;
    for (witness, report) in answers {
        checked += 1;
        if witness != local && is_consistent(report.as_ref(), claim) {
            consistent += 1;
        }
    }
    (checked, consistent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::testutil::peer;

    fn claim() -> Claim {
        Claim {
            born_at: Timestamp::from_millis(1234),
            fill_rate: 0.5,
        }
    }

    fn seen(born: u64, fill: f64) -> WitnessReport {
        WitnessReport {
            seen: true,
            born_at: Timestamp::from_millis(born),
            fill_rate: fill,
            score: 70.0,
        }
    }

    #[test]
    fn consistency_requires_exact_born_at_and_close_fill() {
        assert!(is_consistent(Some(&seen(1234, 0.6)), claim()));
        assert!(!is_consistent(Some(&seen(1235, 0.5)), claim()));
        assert!(!is_consistent(Some(&seen(1234, 0.8)), claim()));
        assert!(!is_consistent(Some(&seen(0, 0.5)), claim()));
        assert!(!is_consistent(Some(&WitnessReport::default()), claim()));
        assert!(!is_consistent(None, claim()));
    }

    #[test]
    fn tally_counts_self_and_failures_as_inconsistent() {
        let me = peer(1);
        let answers = vec![
            (me, Some(seen(1234, 0.5))),
            (peer(2), Some(seen(1234, 0.5))),
            (peer(3), None),
        ];
        assert_eq!(tally(&me, &answers, claim()), (3, 1));
    }

    #[test]
    fn lone_indexer_fallback() {
        assert!(lone_indexer_consistent(1, 500, 0.002));
        assert!(!lone_indexer_consistent(2, 500, 0.004));
        assert!(!lone_indexer_consistent(1, 2, 0.9));
        assert!(!lone_indexer_consistent(1, 0, 0.0));
    }

    #[test]
    fn messages_round_trip_and_reject_garbage() {
        let q = WitnessRequest { indexer: peer(4) };
        assert_eq!(WitnessRequest::decode(&q.encode()).unwrap(), q);
        let r = seen(99, 0.25);
        assert_eq!(WitnessReport::decode(&r.encode()).unwrap(), r);
        let none = WitnessReport::default();
        assert_eq!(WitnessReport::decode(&none.encode()).unwrap(), none);
        assert!(WitnessReport::decode(&[1, 2]).is_err(), "unknown flag");
        assert!(WitnessReport::decode(&[1, 1, 5]).is_err(), "truncated");
        assert!(
            WitnessReport::decode(&[1u8; MAX_MESSAGE + 1]).is_err(),
            "oversized"
        );
        let mut long = q.encode();
        long.push(0);
        assert!(WitnessRequest::decode(&long).is_err(), "trailing");
    }
}
