//! The node's indexer pool ([`Pool`]): heartbeats, scoring, eviction, SWIM suspicion,
//! replacement.
//!
//! The pool is a state machine: the event loop calls [`Pool::on_tick`] periodically (every
//! second is fine: only due heartbeats are sent) and reports each outcome with
//! [`Pool::on_response`] / [`Pool::on_failure`] and the answers to the requests it asked for
//! ([`Pool::on_witness_answers`], [`Pool::on_indirect_probe_answer`], [`Pool::on_candidates`],
//! [`Pool::on_discovered`]). Every call returns the [`Action`]s to perform.
//!
//! Files: `mod.rs` (state, config, ticking and heartbeat construction), `event.rs` (what the
//! pool asks for and reports), `response.rs`
//! (scoring a response, suggestions, migration), `failure.rs` (suspicion, indirect probe,
//! eviction, seeds), `replace.rs` (candidates, DHT discovery).

mod config;
mod event;
mod failure;
mod replace;
mod response;

pub use config::Config;
pub use event::{Action, Event, EvictReason, MemberView, CLOCK_OFFSET_WARNING};

pub use replace::{
    answer_candidates, CandidatesRequest, CandidatesResponse, CANDIDATES_PROTOCOL,
    DEFAULT_CANDIDATES, MAX_CANDIDATES, MAX_CANDIDATES_RESPONSE,
};

use std::collections::{BTreeMap, HashMap};

use libp2p::PeerId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::membership::heartbeat::{self, Heartbeat, Signer};
use crate::membership::offline;
use crate::membership::profile::Profile;
use crate::membership::score::IndexerScore;
use crate::membership::swim::{self, EventQueue, MemberEvent, Suspicion};
use crate::membership::witness::{Claim, WitnessReport};

/// Offline heartbeats are signed at most once a minute (a day of them fits the log).
const OFFLINE_INTERVAL_MIN: std::time::Duration = std::time::Duration::from_secs(60);
use crate::membership::{PeerInfo, Timestamp};

/// The last heartbeat sent to an indexer, until its outcome is known.
#[derive(Clone, Debug)]
struct InFlight {
    sent_at: Timestamp,
    challenge_self: bool,
    dht_challenge: bool,
    record_version: Option<u64>,
    bound_version: Option<u64>,
}

/// One pool member.
#[derive(Clone, Debug)]
struct Entry {
    info: PeerInfo,
    is_seed: bool,
    score: IndexerScore,
    swim: Suspicion,
    next_due: Timestamp,
    in_flight: Option<InFlight>,
    /// Record version / pool-list version this indexer acknowledged.
    acked_record: Option<u64>,
    acked_bound: Option<u64>,
    hb_count: u32,
    next_challenge: u32,
    batch_counter: u32,
    /// Our clock minus this indexer's, estimated at its last answer (ms).
    clock_offset_ms: Option<i64>,
    /// When we last asked voters to probe this indexer: at most one round per heartbeat
    /// interval, however often a sticky seed's retries fail.
    last_indirect: Option<Timestamp>,
}

/// The node's record as last set by the discovery layer.
#[derive(Clone, Debug)]
struct Record {
    bytes: Vec<u8>,
    expires_at: Timestamp,
    version: u64,
}

/// The node's pool of indexers.
pub struct Pool {
    cfg: Config,
    signer: Signer,
    local: PeerId,
    name: Option<String>,
    did: Option<String>,
    record: Option<Record>,
    pending_contact: Vec<PeerId>,
    entries: BTreeMap<PeerId, Entry>,
    bound_version: u64,
    seq: u64,
    events: EventQueue,
    rng: StdRng,
    witness_queries: HashMap<PeerId, WitnessQuery>,
    next_witness_query: u64,
    probes: HashMap<PeerId, failure::PendingProbe>,
    replacement: Option<replace::Replacement>,
    retry: failure::Retry,
    discovery_at: Option<Timestamp>,
    dht_verifier: Option<DhtVerifier>,
    /// Members and their suspicion as last reported by [`Pool::take_events`].
    view: BTreeMap<PeerId, bool>,
    /// Evictions since the last [`Pool::take_events`], with their reasons.
    evicted: Vec<(PeerId, EvictReason)>,
    /// Whether the last reported clock offset was beyond the warning.
    offset_reported: bool,
    /// We left the network ([`Pool::depart`]).
    departed: bool,
    /// Offline heartbeats signed while we are cut off.
    offline: offline::Log,
    /// When our last planned absence ended (links take a moment to come back).
    away_until: Option<Timestamp>,
    /// Offline batches still to hand to each member (after its first answer once back).
    offline_due: HashMap<PeerId, Vec<offline::Batch>>,
}

/// One round of witness questions about an indexer's last response.
#[derive(Clone, Debug)]
struct WitnessQuery {
    id: u64,
    claim: Claim,
    waiting: Vec<PeerId>,
    answers: Vec<(PeerId, Option<WitnessReport>)>,
}

/// Checks a DHT-challenge payload at `now`: `(did, payload, now) -> valid` (the event loop
/// wires `discovery::record` validation: a live, validly signed record of `did`).
pub type DhtVerifier = std::sync::Arc<dyn Fn(&str, &[u8], Timestamp) -> bool + Send + Sync>;

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("local", &self.local)
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl Pool {
    /// A pool holding the configured seeds (empty entries skipped first, then truncated to
    /// `max_indexers`, B17), signing with `signer`. Seeds are due at once.
    pub fn new(cfg: Config, signer: Signer, now: Timestamp) -> Self {
        let rng = match cfg.rng_seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        let local = signer.peer_id();
        let mut pool = Pool {
            events: EventQueue::new(cfg.swim.clone()),
            discovery_at: Some(now.plus(cfg.discovery_delay)),
            retry: failure::Retry::new(cfg.retry_initial),
            cfg,
            signer,
            local,
            name: None,
            did: None,
            record: None,
            pending_contact: Vec::new(),
            entries: BTreeMap::new(),
            bound_version: 0,
            seq: 0,
            rng,
            witness_queries: HashMap::new(),
            next_witness_query: 0,
            probes: HashMap::new(),
            replacement: None,
            dht_verifier: None,
            view: BTreeMap::new(),
            evicted: Vec::new(),
            offset_reported: false,
            departed: false,
            offline: offline::Log::default(),
            away_until: None,
            offline_due: HashMap::new(),
        };
        pool.add_seeds(now);
        pool
    }

    /// Check DHT-challenge payloads with `f` (without one, `found` with a non-empty payload counts).
    pub fn with_dht_verifier(mut self, f: DhtVerifier) -> Self {
        self.dht_verifier = Some(f);
        self
    }

    /// Node name (sent with full heartbeats).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = Some(name.into());
    }

    /// The node's DID, used for the DHT challenge.
    pub fn set_did(&mut self, did: impl Into<String>) {
        self.did = Some(did.into());
    }

    /// The node's current signed record and its expiry. A different record is re-sent to every
    /// indexer on its next heartbeat; an unchanged one only when it nears expiry.
    pub fn set_record(&mut self, bytes: Vec<u8>, expires_at: Timestamp) {
        match &mut self.record {
            Some(r) if r.bytes == bytes => r.expires_at = expires_at,
            _ => {
                let version = self.record.as_ref().map_or(1, |r| r.version + 1);
                self.record = Some(Record {
                    bytes,
                    expires_at,
                    version,
                });
            }
        }
    }

    /// Peers for which the DTN layer holds undelivered critical entries.
    pub fn set_pending_contact(&mut self, peers: Vec<PeerId>) {
        self.pending_contact = peers;
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    /// Current pool members.
    pub fn indexers(&self) -> Vec<PeerId> {
        self.entries.keys().copied().collect()
    }

    /// Whether `peer` is in the pool.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.entries.contains_key(peer)
    }

    /// Stored score of a pool member.
    pub fn score(&self, peer: &PeerId) -> Option<&IndexerScore> {
        self.entries.get(peer).map(|e| &e.score)
    }

    /// Whether a pool member is currently suspected.
    pub fn is_suspected(&self, peer: &PeerId) -> bool {
        self.entries
            .get(peer)
            .is_some_and(|e| e.swim.is_suspected())
    }

    /// Whether a pool member is a (sticky) seed.
    pub fn is_seed(&self, peer: &PeerId) -> bool {
        self.entries.get(peer).is_some_and(|e| e.is_seed)
    }

    /// A read-only view of every member, for status pages and metrics.
    pub fn members(&self) -> Vec<MemberView> {
        self.entries
            .values()
            .map(|e| MemberView {
                info: e.info.clone(),
                is_seed: e.is_seed,
                score: e.score.value,
                suspected: e.swim.is_suspected(),
                incarnation: e.swim.incarnation,
                fill_rate: e.score.last_fill_rate,
                last_seen: e.score.uptime.last_seen,
                clock_offset_ms: e.clock_offset_ms,
                detail: e.score.clone(),
            })
            .collect()
    }

    /// What changed since the last call: members that joined, became suspected, were
    /// cleared, or were evicted (with the reason). Call after each call that returns actions.
    pub fn take_events(&mut self) -> Vec<Event> {
        let now: BTreeMap<PeerId, bool> = self
            .entries
            .iter()
            .map(|(p, e)| (*p, e.swim.is_suspected()))
            .collect();
        let old = std::mem::replace(&mut self.view, now);
        let mut out = Vec::new();
        for (peer, reason) in std::mem::take(&mut self.evicted) {
            // Left and (not back yet): an eviction the observer saw the member of.
            if old.contains_key(&peer) && !self.view.contains_key(&peer) {
                out.push(Event::Evicted { peer, reason });
            }
        }
        for (peer, was) in &old {
            match self.view.get(peer) {
                Some(&s) if s && !was => out.push(Event::Suspected(*peer)),
                Some(&s) if !s && *was => out.push(Event::Cleared(*peer)),
                _ => {}
            }
        }
        for (peer, &s) in &self.view {
            if !old.contains_key(peer) {
                out.push(Event::Joined(*peer));
                if s {
                    out.push(Event::Suspected(*peer));
                }
            }
        }
        if let Some(offset_ms) = self.clock_offset() {
            let beyond = offset_ms.unsigned_abs() > CLOCK_OFFSET_WARNING.as_millis() as u64;
            if beyond != self.offset_reported {
                self.offset_reported = beyond;
                out.push(Event::ClockOffset { offset_ms });
            }
        }
        out
    }

    /// How far our clock is ahead of the network's (ms): the median of our indexers'
    /// estimates, so one indexer with a wrong clock does not decide it.
    pub fn clock_offset(&self) -> Option<i64> {
        let mut v: Vec<i64> = self
            .entries
            .values()
            .filter_map(|e| e.clock_offset_ms)
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        Some(v[v.len() / 2])
    }

    /// Answer a witness query about `indexer` (a witness's own view).
    pub fn witness_report(&self, indexer: &PeerId) -> WitnessReport {
        match self.entries.get(indexer) {
            Some(e) if !e.score.last_born_at.is_zero() => WitnessReport {
                seen: true,
                born_at: e.score.last_born_at,
                fill_rate: e.score.last_fill_rate,
                score: e.score.value,
            },
            _ => WitnessReport::default(),
        }
    }

    /// We left the network: no more heartbeats (an indexer would otherwise open a new session
    /// for a node whose tombstone it just stored).
    pub fn depart(&mut self) {
        self.departed = true;
    }

    /// Whether we seem cut off rather than our indexers dead: every member is suspected at
    /// once, and our profile says we may be out of reach (an intermittent or orbital site).
    /// A continuous site keeps the usual rules.
    pub fn isolated(&self) -> bool {
        self.cfg.profile != Profile::Continuous
            && !self.entries.is_empty()
            && self.entries.values().all(|e| e.swim.is_suspected())
    }

    /// Whether the pool has room for more indexers (below its maximum).
    pub fn wants_more(&self) -> bool {
        self.entries.len() < self.cfg.max_indexers
    }

    /// Adds a member directly if there is room (tests build pools this way; the network adds
    /// members through discovery, suggestions and replacement).
    #[cfg(test)]
    pub(crate) fn add_indexer(&mut self, now: Timestamp, info: PeerInfo) -> bool {
        if self.entries.len() >= self.cfg.max_indexers || info.peer == self.local {
            return false;
        }
        match crate::membership::select::routable(&info, self.cfg.allow_loopback) {
            Some(i) => self.insert(now, i, false),
            None => false,
        }
    }

    /// Same as [`Pool::on_tick`]: new members are due at once, so a nudge only reaches them
    /// (Go re-heartbeated every indexer on each nudge, which could trip rate limits, B24).
    pub fn nudge(&mut self, now: Timestamp) -> Vec<Action> {
        self.on_tick(now)
    }

    /// Periodic work: due heartbeats, empty-pool recovery, discovery, replacement deadline.
    pub fn on_tick(&mut self, now: Timestamp) -> Vec<Action> {
        let mut out = Vec::new();
        if self.departed {
            return out;
        }
        // Cut off (away by plan, or every member failing while our profile says we may be
        // out of reach): keep signing offline heartbeats; while away by plan, send nothing.
        if !self.cfg.profile.in_contact(now) || self.isolated() {
            let interval = self.cfg.interval.max(OFFLINE_INTERVAL_MIN);
            self.offline
                .tick(self.signer.key(), &self.local, now, interval);
            if !self.cfg.profile.in_contact(now) {
                self.away_until = Some(self.cfg.profile.next_contact(now));
                return out;
            }
        }
        self.expire_in_flight(now, &mut out);
        self.replacement_deadline(now, &mut out);
        self.recover_if_empty(now, &mut out);
        if let Some(at) = self.discovery_at {
            if now >= at {
                self.discovery_at = None;
                let need = self.cfg.max_indexers.saturating_sub(self.entries.len());
                if need > 0 {
                    out.push(Action::DiscoverIndexers { count: need * 3 });
                }
            }
        }
        let mut due: Vec<PeerId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.in_flight.is_none() && e.next_due <= now)
            .map(|(p, _)| *p)
            .collect();
        if due.is_empty() {
            return out;
        }
        shuffle(&mut self.rng, &mut due);
        // Drained once and only when something is sent (Go lost them on an empty pool, B22).
        let events = self.events.drain(swim::EVENTS_PER_MESSAGE);
        let referent = self.referent();
        for peer in due {
            if let Some(a) = self.heartbeat_for(now, peer, referent == Some(peer), &events) {
                out.push(a);
            }
        }
        out
    }

    /// The member with the highest stored score (ties: lowest peer id).
    fn referent(&self) -> Option<PeerId> {
        let mut best: Option<(f64, PeerId)> = None;
        for (p, e) in &self.entries {
            if best.is_none_or(|(s, _)| e.score.value > s) {
                best = Some((e.score.value, *p));
            }
        }
        best.map(|(_, p)| p)
    }

    fn heartbeat_for(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        referent: bool,
        events: &[MemberEvent],
    ) -> Option<Action> {
        let bound: Vec<PeerId> = self.entries.keys().copied().collect();
        // Positions (in the pool list the indexer holds) of the other members.
        let others: Vec<u8> = bound
            .iter()
            .enumerate()
            .filter(|(_, p)| **p != peer)
            .map(|(i, _)| i as u8)
            .collect();
        let need = self.cfg.max_indexers.saturating_sub(self.entries.len());
        let next_challenge = self
            .rng
            .gen_range(1..=self.cfg.challenge_max_interval.max(1));
        let picks = pick(&mut self.rng, &others, heartbeat::MAX_OTHER_CHALLENGES);
        self.seq += 1;
        let seq = self.seq;
        // An expired record is worth nothing to the indexer (it refuses it); the next
        // republish re-signs it.
        let (record_bytes, record_version) = match &self.record {
            Some(r) if r.expires_at > now => (Some(r.bytes.clone()), Some(r.version)),
            _ => (None, None),
        };
        let record_near_expiry = self
            .record
            .as_ref()
            .is_some_and(|r| r.expires_at <= now.plus(self.cfg.record_margin));
        let bound_version = self.bound_version;
        let dht_every = self.cfg.dht_challenge_every.max(1);
        let did = self.did.clone();
        let name = self.name.clone();
        let profile = self.cfg.profile;
        let e = self.entries.get_mut(&peer)?;

        let send_record =
            record_version.is_some() && (e.acked_record != record_version || record_near_expiry);
        let send_bound = e.acked_bound != Some(bound_version);
        let mut hb = Heartbeat {
            seq,
            timestamp: now,
            need: need as u32,
            referent,
            suspected_incarnation: e.swim.suspected_at.map(|_| e.swim.incarnation),
            events: events.to_vec(),
            pending_contact: self.pending_contact.clone(),
            ..Default::default()
        };
        if send_record || e.acked_record.is_none() {
            hb.name = name;
            hb.profile = (profile != Profile::Continuous).then_some(profile);
        }
        if send_record {
            hb.record = record_bytes;
        }
        if send_bound {
            hb.indexers_bound = Some(bound);
        }
        e.hb_count += 1;
        if e.hb_count >= e.next_challenge {
            e.hb_count = 0;
            e.next_challenge = next_challenge;
            e.score.challenge_total = e.score.challenge_total.saturating_add(1);
            e.batch_counter += 1;
            hb.challenge_self = true;
            hb.challenge_refs = picks;
            if e.batch_counter % dht_every == 0 {
                hb.challenge_did = did;
            }
        }
        e.in_flight = Some(InFlight {
            sent_at: now,
            challenge_self: hb.challenge_self,
            dht_challenge: hb.challenge_did.is_some(),
            record_version: if send_record { record_version } else { None },
            bound_version: send_bound.then_some(bound_version),
        });
        e.next_due = now.plus(self.cfg.interval);
        let addrs = e.info.addrs.clone();
        let request = self.signer.sign(hb, &peer);
        Some(Action::SendHeartbeat {
            peer,
            addrs,
            request,
        })
    }

    /// Add a member. Returns whether it was new.
    fn insert(&mut self, now: Timestamp, info: PeerInfo, is_seed: bool) -> bool {
        if info.peer == self.local || self.entries.contains_key(&info.peer) {
            return false;
        }
        let next_challenge = self
            .rng
            .gen_range(1..=self.cfg.challenge_max_interval.max(1));
        self.entries.insert(
            info.peer,
            Entry {
                info,
                is_seed,
                score: IndexerScore::new(now),
                swim: Suspicion::default(),
                next_due: now,
                in_flight: None,
                acked_record: None,
                acked_bound: None,
                hb_count: 0,
                next_challenge,
                batch_counter: 0,
                clock_offset_ms: None,
                last_indirect: None,
            },
        );
        self.bound_version += 1;
        true
    }

    /// Remove a member. Returns the remaining members (the voters of an indirect probe or a replacement).
    fn remove(&mut self, peer: &PeerId, reason: EvictReason, out: &mut Vec<Action>) -> Vec<PeerId> {
        if self.entries.remove(peer).is_some() {
            self.bound_version += 1;
            self.witness_queries.remove(peer);
            self.probes.remove(peer);
            self.evicted.push((*peer, reason));
            out.push(Action::Evict {
                peer: *peer,
                reason,
            });
        }
        self.indexers()
    }

    /// A heartbeat whose outcome never came back within 3 intervals is counted as failed, so a
    /// lost report cannot wedge an indexer forever.
    fn expire_in_flight(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        let limit = self.cfg.interval * 3;
        let stale: Vec<PeerId> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.in_flight
                    .as_ref()
                    .is_some_and(|f| now.since(f.sent_at) >= limit)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in stale {
            out.extend(self.on_failure(now, p));
        }
    }
}

fn shuffle<T>(rng: &mut StdRng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.gen_range(0..=i);
        v.swap(i, j);
    }
}

/// Up to `k` distinct elements of `from`, uniformly.
fn pick<T: Copy>(rng: &mut StdRng, from: &[T], k: usize) -> Vec<T> {
    let mut v = from.to_vec();
    shuffle(rng, &mut v);
    v.truncate(k);
    v
}

#[cfg(test)]
pub(crate) mod tests;
