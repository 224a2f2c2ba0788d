//! The indexer's heartbeat response: witnesses, replacement suggestions, offload, and the DTN
//! wake-up index (who waits for whom), all decided here from the registry's state.

use libp2p::PeerId;
use rand::Rng;

use super::{fill, Registry};
use crate::membership::heartbeat::{self, ChallengeEntry, HeartbeatResponse};
use crate::membership::swim;
use crate::membership::{PeerInfo, Timestamp};

impl Registry {
    /// DTN wake-up index: `target → {caller → expiry}`, bounded (IX-16).
    pub(super) fn index_pending(&mut self, now: Timestamp, caller: PeerId, targets: &[PeerId]) {
        let expiry = now.plus(self.cfg.pending_ttl);
        for t in targets {
            if *t == caller {
                continue;
            }
            if !self.pending.contains_key(t) && self.pending.len() >= self.cfg.max_pending_targets {
                continue;
            }
            let callers = self.pending.entry(*t).or_default();
            if callers.contains_key(&caller) || callers.len() < self.cfg.max_callers_per_target {
                callers.insert(caller, expiry);
            }
        }
    }

    pub(super) fn build_response(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        hb: &heartbeat::Heartbeat,
        bound: &[PeerId],
        resync: bool,
        events: Vec<swim::MemberEvent>,
    ) -> HeartbeatResponse {
        let peer_count = self.sessions.len();
        let fill_rate = fill(peer_count, self.cfg.max_nodes);
        let mut challenges = Vec::new();
        if hb.challenge_self {
            challenges.push(ChallengeEntry {
                peer,
                found: true,
                last_seen: now,
            });
        }
        // Positions in the pool list we hold; unknown positions (stale list) are skipped.
        for c in hb
            .challenge_refs
            .iter()
            .filter_map(|i| bound.get(usize::from(*i)))
        {
            let last = self.sessions.get(c).and_then(|s| s.uptime.last_seen);
            challenges.push(ChallengeEntry {
                peer: *c,
                found: last.is_some(),
                last_seen: last.unwrap_or(Timestamp::ZERO),
            });
        }
        challenges.truncate(heartbeat::MAX_CHALLENGE_ANSWERS);

        let witnesses = self.witnesses(&peer);
        let overloaded = fill_rate > self.cfg.offload_threshold;
        let mut wanted = hb.need as usize;
        if overloaded && wanted < 1 {
            wanted = 1;
        }
        let suggestions = self.suggestions(&peer, bound, wanted);
        let suggest_migrate =
            self.offload(now, peer, overloaded, !suggestions.is_empty(), peer_count);
        HeartbeatResponse {
            fill_rate,
            peer_count: peer_count as u32,
            max_nodes: self.cfg.max_nodes,
            born_at: self.born_at,
            challenges,
            dht: None,
            witnesses,
            suggestions,
            suggest_migrate,
            incarnation: self.incarnation.get(),
            events,
            pending_callers: self.pending_callers(now, &peer),
            resync,
            now,
        }
    }

    /// Up to 3 other sessions with routable addresses, sampled at random (IX-25). Random
    /// probes into the id list keep this O(1) per heartbeat whatever the session count.
    pub(super) fn witnesses(&mut self, requester: &PeerId) -> Vec<PeerInfo> {
        let n = self.ids.len();
        let mut out: Vec<PeerInfo> = Vec::new();
        if n < 2 {
            return out;
        }
        for _ in 0..4 * heartbeat::MAX_WITNESSES {
            if out.len() == heartbeat::MAX_WITNESSES {
                break;
            }
            let p = self.ids[self.rng.gen_range(0..n)];
            if p == *requester || p == self.local || out.iter().any(|w| w.peer == p) {
                continue;
            }
            if let Some(s) = self.sessions.get(&p).filter(|s| !s.addrs.is_empty()) {
                out.push(PeerInfo::new(p, s.addrs.clone()));
            }
        }
        out
    }

    /// Up to `wanted` known indexers the requester does not already use (IX-18), starting at a
    /// random rotation so that migrating nodes spread out.
    pub(super) fn suggestions(
        &mut self,
        requester: &PeerId,
        bound: &[PeerId],
        wanted: usize,
    ) -> Vec<PeerInfo> {
        let wanted = wanted.min(heartbeat::MAX_SUGGESTIONS);
        let n = self.known_indexers.len();
        if wanted == 0 || n == 0 {
            return Vec::new();
        }
        let start = self.rng.gen_range(0..n);
        (0..n)
            .map(|i| &self.known_indexers[(start + i) % n])
            .filter(|k| k.peer != *requester && k.peer != self.local && !bound.contains(&k.peer))
            .take(wanted)
            .cloned()
            .collect()
    }

    /// Offload: while overloaded, ask at most `offload_batch` nodes at a
    /// time to migrate; each stays in the batch for the grace period, then is not asked again
    /// until everyone has been asked.
    pub(super) fn offload(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        overloaded: bool,
        has_suggestion: bool,
        peer_count: usize,
    ) -> bool {
        if !overloaded {
            self.in_batch.clear();
            self.tried.clear();
            return false;
        }
        if !has_suggestion {
            return false;
        }
        let grace = self.cfg.offload_grace;
        let expired: Vec<PeerId> = self
            .in_batch
            .iter()
            .filter(|(_, t)| now.since(**t) > grace)
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            self.in_batch.remove(&p);
            self.tried.insert(p);
        }
        if self.tried.len() >= peer_count {
            self.tried.clear();
        }
        if self.tried.contains(&peer) {
            return false;
        }
        if self.in_batch.contains_key(&peer) {
            return true;
        }
        if self.in_batch.len() < self.cfg.offload_batch {
            self.in_batch.insert(peer, now);
            return true;
        }
        false
    }

    /// Unexpired callers waiting for `target`; expired ones are dropped.
    pub(super) fn pending_callers(&mut self, now: Timestamp, target: &PeerId) -> Vec<PeerId> {
        let Some(callers) = self.pending.get_mut(target) else {
            return Vec::new();
        };
        callers.retain(|_, exp| *exp > now);
        let out: Vec<PeerId> = callers
            .keys()
            .copied()
            .take(heartbeat::MAX_PENDING)
            .collect();
        if callers.is_empty() {
            self.pending.remove(target);
        }
        out
    }
}
