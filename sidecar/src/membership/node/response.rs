//! Processing a heartbeat response: liveness and SWIM, the seven score dimensions, witness
//! queries, score eviction, pending callers, migration and suggestions.

use std::time::Duration;

use libp2p::PeerId;

use super::{Action, EvictReason, Pool, WitnessQuery};
use crate::membership::heartbeat::HeartbeatResponse;
use crate::membership::score::latency_score;
use crate::membership::select::routable;
use crate::membership::swim::{self, Kind, MemberEvent};
use crate::membership::threshold;
use crate::membership::witness::{self, Claim, WitnessReport};
use crate::membership::Timestamp;

impl Pool {
    /// A heartbeat to `peer` was answered after `rtt`.
    pub fn on_response(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        resp: &HeartbeatResponse,
        rtt: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.on_candidate_response(now, &peer, resp, rtt, &mut out) {
            return out;
        }
        // Back in contact after a cut: every member gets the offline heartbeats signed
        // meanwhile, each right after its own first answer.
        if !self.offline.is_empty() && self.entries.contains_key(&peer) {
            let batches = self.offline.take_batches();
            for m in self.entries.keys() {
                self.offline_due.insert(*m, batches.clone());
            }
        }
        if let Some(batches) = self.offline_due.remove(&peer) {
            out.push(Action::SubmitOffline { peer, batches });
        }
        let local = self.local;
        let verifier = self.dht_verifier.clone();
        let did = self.did.clone();
        let profile = self.cfg.profile;
        let Some(e) = self.entries.get_mut(&peer) else {
            return out;
        };
        let flight = e.in_flight.take();

        // Liveness and SWIM. While we were away by plan we could not hear the indexer: that
        // silence is excused, not held against its uptime (an orbital node evicted its
        // indexers on score once the eviction bar rose).
        e.score.uptime.record_heartbeat_with(now, &profile);
        let inc = (resp.incarnation > 0).then_some(resp.incarnation);
        let cleared = e.swim.on_success(inc);
        let alive_inc = e.swim.incarnation;

        // Steady-state bookkeeping: what the indexer now holds.
        if let Some(f) = &flight {
            if f.record_version.is_some() {
                e.acked_record = f.record_version;
            }
            if f.bound_version.is_some() {
                e.acked_bound = f.bound_version;
            }
        }
        if resp.resync {
            e.acked_record = None;
            e.acked_bound = None;
        }

        // Metrics.
        e.score.observe_born_at(now, resp.born_at);
        // The indexer answered at `resp.now` by its clock, about half a round trip ago by ours.
        if let (false, Some(f)) = (resp.now.is_zero(), &flight) {
            let ours = f.sent_at.as_millis() as i64
                + (now.as_millis() as i64 - f.sent_at.as_millis() as i64) / 2;
            e.clock_offset_ms = Some(ours - resp.now.as_millis() as i64);
        }
        e.score
            .observe_fill(resp.fill_rate, resp.peer_count, resp.max_nodes);
        if let Some(f) = &flight {
            if f.challenge_self {
                let own = resp.challenges.iter().find(|c| c.peer == local);
                if let Some(c) = own {
                    e.score.observe_own_challenge(c.found, c.last_seen, now);
                }
            }
            if f.dht_challenge {
                let ok = match (&resp.dht, &verifier, &did) {
                    (Some(d), Some(v), Some(did)) => d.found && v(did, &d.payload, now),
                    (Some(d), _, _) => d.found && !d.payload.is_empty(),
                    (None, _, _) => false,
                };
                e.score.observe_dht(ok);
            }
        }
        let witnesses: Vec<_> = resp
            .witnesses
            .iter()
            .filter(|w| w.peer != local && w.peer != peer)
            .cloned()
            .collect();
        if witnesses.is_empty() {
            if resp.max_nodes > 0 {
                let ok = witness::lone_indexer_consistent(
                    resp.peer_count,
                    resp.max_nodes,
                    resp.fill_rate,
                );
                e.score.observe_witnesses(1, u32::from(ok));
            }
        } else {
            // A new round replaces any unfinished one: its late answers are ignored, never
            // tallied against this response's claim.
            self.next_witness_query += 1;
            let query = self.next_witness_query;
            self.witness_queries.insert(
                peer,
                WitnessQuery {
                    id: query,
                    claim: Claim {
                        born_at: resp.born_at,
                        fill_rate: resp.fill_rate,
                    },
                    waiting: witnesses.iter().map(|w| w.peer).collect(),
                    answers: Vec::new(),
                },
            );
            out.push(Action::QueryWitnesses {
                indexer: peer,
                query,
                witnesses,
            });
        }

        let Some(e) = self.entries.get_mut(&peer) else {
            return out;
        };
        let value = e.score.compute(now, latency_score(rtt));
        let age = e.score.uptime.age(now);
        let online = e.score.uptime.total_online;
        let is_seed = e.is_seed;

        if cleared {
            tracing::debug!(%peer, incarnation = alive_inc, "suspicion cleared by the indexer's own answer");
        }
        // SWIM infection: forward what still has hops, apply the indexer's own refutations.
        for ev in &resp.events {
            self.apply_event(now, peer, ev);
        }
        if !resp.pending_callers.is_empty() {
            out.push(Action::PendingCallers {
                via: peer,
                callers: resp.pending_callers.clone(),
            });
        }

        // Score eviction; the last indexer is never evicted on score alone.
        let (start, cap) = self.cfg.eviction_threshold;
        let threshold = threshold::ramp(age, start, cap);
        if value < threshold
            && online >= self.cfg.eviction_grace
            && !is_seed
            && self.entries.len() > 1
        {
            let remaining = self.remove(
                &peer,
                EvictReason::LowScore {
                    score: value,
                    threshold,
                },
                &mut out,
            );
            let need = self.cfg.max_indexers.saturating_sub(remaining.len()).max(1);
            self.start_replacement(now, need, &mut out);
            // Stop here: nothing else from an evicted indexer is acted on (B6).
            return out;
        }

        // Migration first, so that suggestions can take the freed slot.
        let mut migrated = false;
        if resp.suggest_migrate {
            migrated = self.migrate(now, &peer, &resp.suggestions, &mut out);
        }
        // Suggestions, capped at the pool size and filtered (B18).
        let mut added = false;
        for s in &resp.suggestions {
            if self.entries.len() >= self.cfg.max_indexers {
                break;
            }
            if let Some(info) = routable(s, self.cfg.allow_loopback) {
                added |= self.insert(now, info, false);
            }
        }
        if migrated && !added {
            // Migration without a usable suggestion must not shrink the pool for good (B23).
            self.start_replacement(now, 1, &mut out);
        }
        out
    }

    /// Honour a migration request from `peer`. A seed only loses its stickiness; a non-seed
    /// leaves if the pool keeps at least `min_indexers` others (counting usable suggestions).
    fn migrate(
        &mut self,
        _now: Timestamp,
        peer: &PeerId,
        suggestions: &[crate::membership::PeerInfo],
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(e) = self.entries.get_mut(peer) else {
            return false;
        };
        if e.is_seed {
            e.is_seed = false;
            return false;
        }
        let fresh = suggestions
            .iter()
            .filter(|s| !self.entries.contains_key(&s.peer) && s.peer != self.local)
            .filter(|s| routable(s, self.cfg.allow_loopback).is_some())
            .count();
        let others = self.entries.len() - 1 + fresh;
        if others >= self.cfg.min_indexers.max(1) {
            self.remove(peer, EvictReason::Migrated, out);
            return true;
        }
        false
    }

    /// A SWIM event heard in a response: queue it for forwarding if it still has hops (the
    /// queue deduplicates) and act on `alive` refutations about pool members. Suspect
    /// and dead events from gossip never evict locally.
    fn apply_event(&mut self, now: Timestamp, from: PeerId, ev: &MemberEvent) {
        if !swim::admissible(ev, &from, now) {
            tracing::debug!(%from, ?ev, "SWIM event refused (implausible incarnation or relayed refutation)");
            return;
        }
        if ev.kind == Kind::Alive {
            // The subject's own refutation: applied, not forwarded (receivers would refuse a
            // relayed one).
            if let Some(e) = self.entries.get_mut(&ev.peer) {
                e.swim.on_alive_gossip(ev.incarnation);
            }
        } else {
            self.events.add(ev.clone());
        }
    }

    /// One witness's answer (`None` = no answer) in round `query` about `indexer`. The round
    /// is tallied once every witness asked has answered; answers from anyone not asked, twice
    /// from the same witness, or to an older round are ignored.
    pub fn on_witness_answer(
        &mut self,
        _now: Timestamp,
        indexer: PeerId,
        query: u64,
        witness: PeerId,
        report: Option<WitnessReport>,
    ) {
        let Some(q) = self.witness_queries.get_mut(&indexer) else {
            return;
        };
        let Some(i) = q.waiting.iter().position(|w| *w == witness) else {
            return;
        };
        if q.id != query {
            return;
        }
        q.waiting.swap_remove(i);
        q.answers.push((witness, report));
        if !q.waiting.is_empty() {
            return;
        }
        let Some(q) = self.witness_queries.remove(&indexer) else {
            return;
        };
        let (checked, consistent) = witness::tally(&self.local, &q.answers, q.claim);
        if checked == 0 {
            return;
        }
        if let Some(e) = self.entries.get_mut(&indexer) {
            e.score.observe_witnesses(checked, consistent);
        }
    }
}
