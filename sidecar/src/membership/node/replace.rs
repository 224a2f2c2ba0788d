//! Replacing evicted indexers and DHT discovery.
//!
//! Replacement: ask the remaining indexers for candidates (`/garden/indexer-candidates/1.0.0`),
//! probe each candidate with a heartbeat, rank by [`quick_score`], admit the best ones scoring
//! at least `dynamic_min_score(0) = 20`, and fall back to the DHT for the rest.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::{PeerId, StreamProtocol};

use super::{Action, Pool};
use crate::membership::heartbeat::{Heartbeat, HeartbeatResponse};
use crate::membership::select::{quick_score, routable, select_by_fill_rate, Candidate};
use crate::membership::threshold::dynamic_min_score;
use crate::membership::wire::{self, Reader, Result, Writer};
use crate::membership::{PeerInfo, Timestamp};

/// Protocol id.
pub const CANDIDATES_PROTOCOL: StreamProtocol =
    StreamProtocol::new("/garden/indexer-candidates/1.0.0");
/// Largest candidate count answered (IX-17: clamp, do not reset to 3).
pub const MAX_CANDIDATES: usize = 10;
/// Default candidate count when the request asks for 0.
pub const DEFAULT_CANDIDATES: u32 = 3;
/// Largest encoded candidates response.
pub const MAX_CANDIDATES_RESPONSE: usize =
    2 + MAX_CANDIDATES * (34 + 1 + wire::MAX_ADDRS * (2 + wire::MAX_MULTIADDR));

/// "Give me `count` indexers I could use."
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CandidatesRequest {
    /// Wanted.
    pub count: u32,
}

impl CandidatesRequest {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version();
        w.varint(self.count.into());
        w.into_bytes()
    }
    /// Decode.
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b);
        r.version()?;
        let count = r.bounded("count", u32::MAX.into())? as u32;
        r.finish()?;
        Ok(CandidatesRequest { count })
    }
    /// The count to answer: 0 ⇒ 3, otherwise clamped to 1..=10.
    pub fn effective_count(&self) -> usize {
        if self.count == 0 {
            DEFAULT_CANDIDATES as usize
        } else {
            (self.count as usize).min(MAX_CANDIDATES)
        }
    }
}

/// Candidate indexers.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CandidatesResponse {
    /// The candidates.
    pub candidates: Vec<PeerInfo>,
}

impl CandidatesResponse {
    /// Encode (at most [`MAX_CANDIDATES`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version();
        let n = self.candidates.len().min(MAX_CANDIDATES);
        w.varint(n as u64);
        for c in &self.candidates[..n] {
            w.peer_info(c);
        }
        w.into_bytes()
    }
    /// Decode.
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b);
        r.version()?;
        let n = r.count("candidates", MAX_CANDIDATES)?;
        let mut candidates = Vec::with_capacity(n);
        for _ in 0..n {
            candidates.push(r.peer_info("candidates")?);
        }
        r.finish()?;
        Ok(CandidatesResponse { candidates })
    }
}

/// A replacement round in progress.
#[derive(Clone, Debug)]
pub(super) struct Replacement {
    need: usize,
    /// Voters whose candidate list has not arrived yet.
    waiting_lists: HashSet<PeerId>,
    /// Candidates and their quick score once probed.
    candidates: HashMap<PeerId, (PeerInfo, Option<f64>)>,
    probing: bool,
    deadline: Timestamp,
}

impl Pool {
    /// Start (or enlarge) a replacement round for `need` indexers.
    pub(super) fn start_replacement(&mut self, now: Timestamp, need: usize, out: &mut Vec<Action>) {
        if need == 0 {
            return;
        }
        if let Some(r) = &mut self.replacement {
            r.need += need;
            return;
        }
        let voters = self.indexers();
        if voters.is_empty() {
            out.push(Action::DiscoverIndexers { count: need * 3 });
            return;
        }
        self.replacement = Some(Replacement {
            need,
            waiting_lists: voters.iter().copied().collect(),
            candidates: HashMap::new(),
            probing: false,
            deadline: now.plus(self.cfg.candidate_timeout * 2),
        });
        out.push(Action::RequestCandidates {
            from: voters,
            count: (need + 2) as u32,
        });
    }

    /// A voter's candidate list (empty on failure).
    pub fn on_candidates(
        &mut self,
        now: Timestamp,
        from: PeerId,
        candidates: Vec<PeerInfo>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let allow_loopback = self.cfg.allow_loopback;
        let local = self.local;
        let Some(r) = &mut self.replacement else {
            return out;
        };
        if r.probing || !r.waiting_lists.remove(&from) {
            return out;
        }
        for c in candidates {
            if c.peer == local
                || self.entries.contains_key(&c.peer)
                || r.candidates.contains_key(&c.peer)
            {
                continue;
            }
            if let Some(info) = routable(&c, allow_loopback) {
                r.candidates.insert(info.peer, (info, None));
            }
        }
        if r.waiting_lists.is_empty() {
            self.begin_probing(now, &mut out);
        }
        out
    }

    fn begin_probing(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        let Some(r) = &mut self.replacement else {
            return;
        };
        if r.candidates.is_empty() {
            let need = r.need;
            self.replacement = None;
            out.push(Action::DiscoverIndexers { count: need * 3 });
            return;
        }
        r.probing = true;
        r.deadline = now.plus(self.cfg.candidate_timeout);
        let targets: Vec<PeerInfo> = r.candidates.values().map(|(i, _)| i.clone()).collect();
        for info in targets {
            // A minimal heartbeat: identity, time, nothing else.
            self.seq += 1;
            let hb = Heartbeat {
                seq: self.seq,
                timestamp: now,
                ..Default::default()
            };
            let request = self.signer.sign(hb, &info.peer);
            out.push(Action::SendHeartbeat {
                peer: info.peer,
                addrs: info.addrs,
                request,
            });
        }
    }

    /// Returns true if `peer` was a candidate being probed.
    pub(super) fn on_candidate_response(
        &mut self,
        now: Timestamp,
        peer: &PeerId,
        resp: &HeartbeatResponse,
        rtt: Duration,
        out: &mut Vec<Action>,
    ) -> bool {
        self.candidate_result(now, peer, quick_score(rtt, Some(resp.fill_rate)), out)
    }

    /// Returns true if `peer` was a candidate being probed (it scores 0).
    pub(super) fn on_candidate_failure(
        &mut self,
        now: Timestamp,
        peer: &PeerId,
        out: &mut Vec<Action>,
    ) -> bool {
        self.candidate_result(now, peer, 0.0, out)
    }

    fn candidate_result(
        &mut self,
        now: Timestamp,
        peer: &PeerId,
        score: f64,
        out: &mut Vec<Action>,
    ) -> bool {
        if self.entries.contains_key(peer) {
            return false;
        }
        let Some(r) = &mut self.replacement else {
            return false;
        };
        let Some(c) = r.candidates.get_mut(peer).filter(|_| r.probing) else {
            return false;
        };
        c.1 = Some(score);
        if r.candidates.values().all(|(_, s)| s.is_some()) {
            self.finish_replacement(now, out);
        }
        true
    }

    /// Called from `on_tick`: a round whose lists or probes did not all come back in time is
    /// finished with what it has.
    pub(super) fn replacement_deadline(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        let Some(r) = &self.replacement else {
            return;
        };
        if now < r.deadline {
            return;
        }
        if r.probing {
            self.finish_replacement(now, out);
        } else {
            self.begin_probing(now, out);
        }
    }

    fn finish_replacement(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        let Some(r) = self.replacement.take() else {
            return;
        };
        let mut ranked: Vec<(f64, PeerInfo)> = r
            .candidates
            .into_values()
            .map(|(i, s)| (s.unwrap_or(0.0), i))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let bar = dynamic_min_score(Duration::ZERO);
        let mut admitted = 0;
        for (score, info) in ranked {
            if admitted == r.need || score < bar || self.entries.len() >= self.cfg.max_indexers {
                break;
            }
            if self.insert(now, info, false) {
                admitted += 1;
            }
        }
        let gap = r.need.saturating_sub(admitted);
        if gap > 0 && self.entries.len() < self.cfg.max_indexers {
            out.push(Action::DiscoverIndexers { count: gap * 3 });
        }
    }

    /// Indexers found in the DHT registry: add up to the free room, preferring less loaded
    /// ones and one per subnet. Returns the peers added (heartbeated on the next tick).
    pub fn on_discovered(&mut self, now: Timestamp, found: Vec<Candidate>) -> Vec<PeerId> {
        let room = self.cfg.max_indexers.saturating_sub(self.entries.len());
        if room == 0 {
            return Vec::new();
        }
        let usable: Vec<Candidate> = found
            .into_iter()
            .filter(|c| c.info.peer != self.local && !self.entries.contains_key(&c.info.peer))
            .filter_map(|c| {
                routable(&c.info, self.cfg.allow_loopback).map(|info| Candidate { info, ..c })
            })
            .collect();
        let chosen = select_by_fill_rate(&mut self.rng, &usable, room);
        let mut added = Vec::new();
        for info in chosen {
            let p = info.peer;
            if self.insert(now, info, false) {
                added.push(p);
            }
        }
        added
    }
}

/// Indexer side of the candidates protocol: up to `req.effective_count()` known indexers,
/// shuffled, never the requester (IX-17).
pub fn answer_candidates<R: rand::Rng>(
    rng: &mut R,
    known: &[PeerInfo],
    requester: &PeerId,
    req: CandidatesRequest,
) -> CandidatesResponse {
    let mut v: Vec<PeerInfo> = known
        .iter()
        .filter(|k| k.peer != *requester)
        .cloned()
        .collect();
    for i in (1..v.len()).rev() {
        let j = rng.gen_range(0..=i);
        v.swap(i, j);
    }
    v.truncate(req.effective_count());
    CandidatesResponse { candidates: v }
}
