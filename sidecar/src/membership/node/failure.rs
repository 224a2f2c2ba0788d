//! Heartbeat failures: SWIM suspicion, indirect probe, eviction of dead indexers, and
//! recovery of an empty pool from the seeds.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::PeerId;

use super::{Action, EvictReason, Pool};
use crate::membership::probe::{self, choose_voters};
use crate::membership::swim::{FailureStep, Kind};
use crate::membership::Timestamp;

/// An indirect probe waiting for its voters.
#[derive(Clone, Debug)]
pub(super) struct PendingProbe {
    asked: Vec<PeerId>,
    answers: HashMap<PeerId, bool>,
}

/// Backoff for empty-pool recovery: 10 s doubling to 320 s (Go's effective cap, B16).
#[derive(Clone, Debug)]
pub(super) struct Retry {
    initial: Duration,
    delay: Duration,
    next: Option<Timestamp>,
}

impl Retry {
    pub(super) fn new(initial: Duration) -> Self {
        Retry {
            initial,
            delay: initial,
            next: None,
        }
    }
}

impl Pool {
    /// Our last connection to pool member `peer` closed: the same as a failed heartbeat, now
    /// (unless we are away by plan, or the member is already suspected).
    pub fn on_connection_lost(&mut self, now: Timestamp, peer: PeerId) -> Vec<Action> {
        if self.departed
            || self
                .entries
                .get(&peer)
                .is_none_or(|e| e.swim.is_suspected())
        {
            return Vec::new();
        }
        self.on_failure(now, peer)
    }

    /// A heartbeat to `peer` failed (timeout, dial or stream error, refused).
    pub fn on_failure(&mut self, now: Timestamp, peer: PeerId) -> Vec<Action> {
        let mut out = Vec::new();
        if self.on_candidate_failure(now, &peer, &mut out) {
            return out;
        }
        let timeout = self.cfg.swim.suspect_timeout;
        let pool_size = self.entries.len();
        // Away by plan, or just back (the first exchanges after a pass opens re-establish the
        // link; the next tick retries).
        let away = !self.cfg.profile.in_contact(now)
            || self
                .away_until
                .is_some_and(|back| now.since(back) < self.cfg.interval * 2);
        let Some(e) = self.entries.get_mut(&peer) else {
            return out;
        };
        e.in_flight = None;
        if away {
            // A heartbeat caught by our own planned loss of contact says nothing of the indexer.
            return out;
        }
        // We do not know what the indexer kept: resend record and pool list next time.
        e.acked_record = None;
        e.acked_bound = None;
        let inc = e.swim.incarnation;
        let info = e.info.clone();
        // A sticky seed is retried every tick while it is down; each failed retry is a new
        // suspicion, but asking the voters again so often made them refuse and ban us (seen
        // after a partition healed). One round per heartbeat interval is enough.
        let interval = self.cfg.interval;
        let probe_due = e.last_indirect.is_none_or(|t| now.since(t) >= interval);
        match e.swim.on_failure(now, timeout) {
            FailureStep::Suspected => {
                self.events.originate(Kind::Suspect, peer, inc);
                if pool_size > 1 && probe_due && !self.probes.contains_key(&peer) {
                    if let Some(e) = self.entries.get_mut(&peer) {
                        e.last_indirect = Some(now);
                    }
                    let others = self.indexers();
                    let voters =
                        choose_voters(&mut self.rng, &peer, &others, probe::INDIRECT_FANOUT);
                    if !voters.is_empty() {
                        self.probes.insert(
                            peer,
                            PendingProbe {
                                asked: voters.clone(),
                                answers: HashMap::new(),
                            },
                        );
                        out.push(Action::IndirectProbe {
                            target: info,
                            voters,
                        });
                    }
                }
            }
            FailureStep::Waiting => {}
            FailureStep::Dead => self.declare_dead(now, peer, inc, &mut out),
        }
        out
    }

    /// One voter's answer about `target` (failures count as unreachable). When every voter has
    /// answered: a majority "reachable" keeps the indexer suspected (the next ticks retry until
    /// the suspicion timeout), otherwise it is declared dead now.
    pub fn on_indirect_probe_answer(
        &mut self,
        now: Timestamp,
        target: PeerId,
        voter: PeerId,
        reachable: bool,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(p) = self.probes.get_mut(&target) else {
            return out;
        };
        if !p.asked.contains(&voter) {
            return out;
        }
        p.answers.insert(voter, reachable);
        if p.answers.len() < p.asked.len() {
            return out;
        }
        let yes = p.answers.values().filter(|r| **r).count();
        let asked = p.asked.len();
        self.probes.remove(&target);
        let still_suspected = self
            .entries
            .get(&target)
            .is_some_and(|e| e.swim.is_suspected());
        if !probe::indirect_verdict(yes, asked) && still_suspected {
            let inc = self.entries.get(&target).map_or(0, |e| e.swim.incarnation);
            self.declare_dead(now, target, inc, &mut out);
        }
        out
    }

    fn declare_dead(&mut self, now: Timestamp, peer: PeerId, inc: u64, out: &mut Vec<Action>) {
        if self.isolated() {
            // Every member silent at once while our profile says we may be out of reach: we
            // are the one cut off (the voters could not answer either). Nobody is declared
            // dead until contact returns.
            return;
        }
        self.events.originate(Kind::Dead, peer, inc);
        if self.entries.get(&peer).is_some_and(|e| e.is_seed) {
            // A seed is sticky: it stays, suspected, and every tick retries it (its answer
            // refutes the suspicion). Before, a crashed seed was never even suspected, so its
            // nodes never learnt of the crash. A working indexer is looked for meanwhile.
            let live = self
                .entries
                .values()
                .filter(|e| !e.swim.is_suspected())
                .count();
            if live < self.cfg.min_indexers.max(1) {
                let need = self.cfg.max_indexers.saturating_sub(live).max(1);
                self.start_replacement(now, need, out);
            }
            return;
        }
        let remaining = self.remove(&peer, EvictReason::Dead, out);
        if remaining.is_empty() {
            // The last indexer died: recover from the seeds right away.
            self.retry.next = Some(now);
            self.recover_if_empty(now, out);
        } else {
            let need = self.cfg.max_indexers.saturating_sub(remaining.len()).max(1);
            self.start_replacement(now, need, out);
        }
    }

    /// Below `min_indexers` (Go only looked at start-up and after evictions): with an empty
    /// pool re-add the seeds, or look in the DHT when there are none; with a non-empty pool
    /// look in the DHT for the missing ones. Retried with backoff 10 s → 320 s until the pool
    /// is back at its minimum.
    pub(super) fn recover_if_empty(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        let len = self.entries.len();
        if len >= self.cfg.min_indexers.max(1) || (len > 0 && self.replacement.is_some()) {
            self.retry.delay = self.retry.initial;
            self.retry.next = None;
            return;
        }
        let due = match self.retry.next {
            None => {
                self.retry.next = Some(now.plus(self.retry.delay));
                false
            }
            Some(t) => now >= t,
        };
        if !due {
            return;
        }
        self.retry.delay = (self.retry.delay * 2).min(self.cfg.retry_max);
        self.retry.next = Some(now.plus(self.retry.delay));
        if len == 0 && !self.cfg.seeds.is_empty() {
            self.add_seeds(now);
        } else {
            let missing = self.cfg.min_indexers.max(1) - len;
            out.push(Action::DiscoverIndexers { count: missing * 3 });
        }
    }

    /// Add the configured seeds as sticky members (existing entries become sticky again).
    pub(super) fn add_seeds(&mut self, now: Timestamp) {
        let seeds: Vec<_> = self
            .cfg
            .seeds
            .iter()
            .take(self.cfg.max_indexers)
            .cloned()
            .collect();
        for s in seeds {
            if let Some(e) = self.entries.get_mut(&s.peer) {
                e.is_seed = true;
            } else {
                self.insert(now, s, true);
            }
        }
    }
}
