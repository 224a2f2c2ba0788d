//! Batch-signed offline heartbeats (`/garden/offline-heartbeats/1.0.0`).
//!
//! While cut off from its indexers, a node keeps signing a heartbeat every interval — a
//! sequence number and its clock, under a domain tag and its own peer id — into a bounded log
//! ([`Log`]). When contact returns it submits the log in batches to each indexer, which checks
//! ([`judge`]) the signatures (one batch verification), that the sequence continues exactly
//! where the last accepted batch ended (no replay, no reordering, no missing number), and that
//! the times are plausible (strictly increasing, no closer than half an interval, between the
//! node's last heartbeat and now). The covered time is then credited as online: a node that
//! was alive during a cut is not judged as one that crashed.
//!
//! The beats name no recipient (they are signed before anyone can receive them), so the same
//! log is valid at every indexer; each indexer keeps its own sequence floor per node.

use std::time::Duration;

use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use libp2p::{PeerId, StreamProtocol};

use crate::membership::wire::{self, Reader, Result, Writer};
use crate::membership::Timestamp;

/// Protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/garden/offline-heartbeats/1.0.0");
/// Domain tag of an offline beat's signature.
pub const TAG: &[u8] = b"garden/offline-heartbeat/v1";
/// Beats per request.
pub const MAX_BATCH: usize = 512;
/// Largest request frame.
pub const MAX_REQUEST: usize = 16 + MAX_BATCH * (10 + 10 + 64);
/// Largest response frame.
pub const MAX_RESPONSE: usize = 32;
/// Beats a node keeps while cut off (a day at one a minute); later ones are not logged.
pub const MAX_LOG: usize = 1440;

/// One offline heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Beat {
    pub seq: u64,
    pub at: Timestamp,
    pub signature: [u8; 64],
}

fn signing_bytes(node: &PeerId, seq: u64, at: Timestamp) -> Vec<u8> {
    let mut m = Vec::with_capacity(TAG.len() + 40 + 16);
    m.extend_from_slice(TAG);
    m.extend_from_slice(&node.to_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&at.as_millis().to_be_bytes());
    m
}

/// A batch of beats (the request).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub beats: Vec<Beat>,
}

impl Batch {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version();
        let n = self.beats.len().min(MAX_BATCH);
        w.varint(n as u64);
        for b in &self.beats[..n] {
            w.varint(b.seq);
            w.varint(b.at.as_millis());
            w.raw(&b.signature);
        }
        w.into_bytes()
    }

    pub fn decode(b: &[u8]) -> Result<Self> {
        wire::check_len(b, MAX_REQUEST)?;
        let mut r = Reader::new(b);
        r.version()?;
        let n = r.count("beats", MAX_BATCH)?;
        let mut beats = Vec::with_capacity(n);
        for _ in 0..n {
            let seq = r.varint("beat.seq")?;
            let at = Timestamp::from_millis(r.varint("beat.at")?);
            let mut signature = [0u8; 64];
            signature.copy_from_slice(r.raw("beat.signature", 64)?);
            beats.push(Beat { seq, at, signature });
        }
        r.finish()?;
        Ok(Batch { beats })
    }
}

/// The indexer's answer: how many beats it accepted (all or none) and the online time it
/// credited, or why it refused the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub accepted: u32,
    pub credited_secs: u64,
    /// Zero when accepted; otherwise [`Refused::code`].
    pub refused: u8,
}

impl Ack {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version();
        w.varint(self.accepted.into());
        w.varint(self.credited_secs);
        w.u8(self.refused);
        w.into_bytes()
    }

    pub fn decode(b: &[u8]) -> Result<Self> {
        wire::check_len(b, MAX_RESPONSE)?;
        let mut r = Reader::new(b);
        r.version()?;
        let accepted = r.bounded("accepted", MAX_BATCH as u64)? as u32;
        let credited_secs = r.varint("credited")?;
        let refused = r.u8("refused")?;
        r.finish()?;
        Ok(Ack {
            accepted,
            credited_secs,
            refused,
        })
    }
}

/// Why a batch was refused (nothing of it is credited).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("an empty batch")]
    Empty,
    #[error("a bad signature")]
    Signature,
    #[error("the sequence does not continue at {expected} (replayed, reordered or missing beats)")]
    Sequence { expected: u64 },
    #[error("implausible times (not increasing, too close, before the last heartbeat, or in the future)")]
    Times,
}

impl Refused {
    /// Wire code (1..).
    pub fn code(&self) -> u8 {
        match self {
            Refused::Empty => 1,
            Refused::Signature => 2,
            Refused::Sequence { .. } => 3,
            Refused::Times => 4,
        }
    }
}

/// What a valid batch proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credit {
    /// Online time the beats cover (gaps up to `gap` between consecutive beats).
    pub online: Duration,
    /// The new sequence floor (the last beat's).
    pub last_seq: u64,
}

/// What an indexer knows when it judges a batch from `node`.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub node: &'a PeerId,
    pub key: &'a VerifyingKey,
    /// The last sequence accepted from this node, if any (the batch must start right after).
    pub last_seq: Option<u64>,
    /// The node's last heartbeat before the cut (beats must follow it).
    pub since: Timestamp,
    pub now: Timestamp,
    /// The node's heartbeat interval: beats closer than half of it are impossible.
    pub interval: Duration,
    /// Longest gap between beats counted as online.
    pub gap: Duration,
    /// Clock skew tolerated for the newest beat.
    pub skew: Duration,
}

/// Judges a batch (see the module docs).
pub fn judge(c: &Context<'_>, beats: &[Beat]) -> std::result::Result<Credit, Refused> {
    let (first, last) = match (beats.first(), beats.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(Refused::Empty),
    };
    if let Some(prev) = c.last_seq {
        if first.seq != prev.saturating_add(1) {
            return Err(Refused::Sequence {
                expected: prev.saturating_add(1),
            });
        }
    }
    let min_spacing = c.interval / 2;
    let mut online = Duration::ZERO;
    for (i, b) in beats.iter().enumerate() {
        if b.seq != first.seq + i as u64 {
            return Err(Refused::Sequence {
                expected: first.seq + i as u64,
            });
        }
        if i > 0 {
            let step = b.at.since(beats[i - 1].at);
            if b.at <= beats[i - 1].at || step < min_spacing {
                return Err(Refused::Times);
            }
            if step <= c.gap {
                online += step;
            }
        }
    }
    if first.at < c.since || last.at > c.now.plus(c.skew) {
        return Err(Refused::Times);
    }
    let msgs: Vec<Vec<u8>> = beats
        .iter()
        .map(|b| signing_bytes(c.node, b.seq, b.at))
        .collect();
    let sigs: Vec<Signature> = beats
        .iter()
        .map(|b| Signature::from_bytes(&b.signature))
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let keys = vec![*c.key; beats.len()];
    if ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_err() {
        // The batch check says only "not all valid"; one-by-one agrees, on the cold path.
        if !beats.iter().zip(&msgs).all(|(b, m)| {
            c.key
                .verify(m, &Signature::from_bytes(&b.signature))
                .is_ok()
        }) {
            return Err(Refused::Signature);
        }
    }
    // The first beat continues the online time from the last heartbeat if it is close enough.
    if first.at.since(c.since) <= c.gap {
        online += first.at.since(c.since);
    }
    Ok(Credit {
        online,
        last_seq: last.seq,
    })
}

/// A node's log of offline beats while it is cut off.
#[derive(Debug, Default)]
pub struct Log {
    beats: Vec<Beat>,
    next_seq: u64,
    last_at: Option<Timestamp>,
}

impl Log {
    /// Signs a beat at `now` if `interval` passed since the last one (and the log has room).
    pub fn tick(&mut self, key: &SigningKey, node: &PeerId, now: Timestamp, interval: Duration) {
        if self.last_at.is_some_and(|t| now.since(t) < interval) || self.beats.len() >= MAX_LOG {
            return;
        }
        use ed25519_dalek::Signer as _;
        self.next_seq += 1;
        let seq = self.next_seq;
        let signature = key.sign(&signing_bytes(node, seq, now)).to_bytes();
        self.beats.push(Beat {
            seq,
            at: now,
            signature,
        });
        self.last_at = Some(now);
    }

    /// Whether beats wait to be submitted.
    pub fn is_empty(&self) -> bool {
        self.beats.is_empty()
    }

    /// The logged beats in batches, emptying the log (the sequence goes on).
    pub fn take_batches(&mut self) -> Vec<Batch> {
        let beats = std::mem::take(&mut self.beats);
        self.last_at = None;
        beats
            .chunks(MAX_BATCH)
            .map(|c| Batch { beats: c.to_vec() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::testutil::key;

    const MIN: u64 = 60_000;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(1_000_000_000 + ms)
    }

    fn logged(n: u64, every: u64) -> (VerifyingKey, PeerId, Vec<Beat>) {
        let (sk, peer) = key(1);
        let mut log = Log::default();
        for i in 0..n {
            log.tick(&sk, &peer, t(MIN + i * every), Duration::from_millis(every));
        }
        let beats = log
            .take_batches()
            .into_iter()
            .flat_map(|b| b.beats)
            .collect();
        (sk.verifying_key(), peer, beats)
    }

    fn ctx<'a>(peer: &'a PeerId, key: &'a VerifyingKey, last_seq: Option<u64>) -> Context<'a> {
        Context {
            node: peer,
            key,
            last_seq,
            since: t(0),
            now: t(200 * MIN),
            interval: Duration::from_secs(20),
            gap: Duration::from_secs(120),
            skew: Duration::from_secs(600),
        }
    }

    #[test]
    fn a_contiguous_signed_log_rebuilds_the_online_time() {
        let (k, p, beats) = logged(60, 20_000);
        let c = judge(&ctx(&p, &k, None), &beats).unwrap();
        // 59 steps of 20 s, plus the minute from the last heartbeat to the first beat.
        assert_eq!(c.online, Duration::from_secs(59 * 20 + 60));
        assert_eq!(c.last_seq, 60);
        // Batches round-trip on the wire.
        let b = Batch {
            beats: beats.clone(),
        };
        assert_eq!(Batch::decode(&b.encode()).unwrap(), b);
    }

    #[test]
    fn replays_reorderings_forged_gaps_and_forgeries_are_refused() {
        let (k, p, beats) = logged(10, 20_000);
        // Replay: the same batch once its sequence was accepted.
        assert_eq!(
            judge(&ctx(&p, &k, Some(10)), &beats),
            Err(Refused::Sequence { expected: 11 })
        );
        // Reordering.
        let mut swapped = beats.clone();
        swapped.swap(3, 4);
        assert!(matches!(
            judge(&ctx(&p, &k, None), &swapped),
            Err(Refused::Sequence { .. })
        ));
        // A forged gap: beats missing in the middle.
        let mut holed = beats.clone();
        holed.remove(5);
        assert!(matches!(
            judge(&ctx(&p, &k, None), &holed),
            Err(Refused::Sequence { .. })
        ));
        // Times moved to claim more presence than the beats prove: re-spaced beats need new
        // signatures, which only the node can make.
        let mut stretched = beats.clone();
        stretched[9].at = t(MIN + 9 * 20_000 + 5_000);
        assert_eq!(
            judge(&ctx(&p, &k, None), &stretched),
            Err(Refused::Signature)
        );
        // Another key's signatures.
        let (other, _) = key(2);
        let mut foreign = beats.clone();
        use ed25519_dalek::Signer as _;
        foreign[0].signature = other.sign(&signing_bytes(&p, 1, foreign[0].at)).to_bytes();
        assert_eq!(judge(&ctx(&p, &k, None), &foreign), Err(Refused::Signature));
        // Too dense to be real, or from the future.
        let (k2, p2, dense) = logged(5, 1_000);
        assert_eq!(judge(&ctx(&p2, &k2, None), &dense), Err(Refused::Times));
        let mut c = ctx(&p, &k, None);
        c.now = t(MIN);
        c.skew = Duration::ZERO;
        assert_eq!(judge(&c, &beats), Err(Refused::Times));
        assert_eq!(judge(&ctx(&p, &k, None), &[]), Err(Refused::Empty));
    }

    #[test]
    fn the_log_is_bounded_and_paced() {
        let (sk, peer) = key(1);
        let mut log = Log::default();
        for s in 0..(MAX_LOG as u64 * 2) {
            log.tick(&sk, &peer, t(s * 30_000), Duration::from_secs(60));
        }
        let batches = log.take_batches();
        let n: usize = batches.iter().map(|b| b.beats.len()).sum();
        assert_eq!(n, MAX_LOG, "one a minute, at most a day of them");
        assert!(batches.iter().all(|b| b.beats.len() <= MAX_BATCH));
        assert!(log.is_empty());
    }
}
