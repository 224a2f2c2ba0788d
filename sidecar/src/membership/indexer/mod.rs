//! The indexer's side of the heartbeat: sessions, admission, and the response.
//!
//! [`Registry::on_heartbeat`] verifies the signature against the authenticated sender, checks
//! replay, capacity (new peers only, B11) and admission, updates the session and builds the
//! response. Slow work is left to the caller and announced in [`Accepted`]: the DHT challenge
//! lookup, the bandwidth probe (run asynchronously and fed back with [`Registry::on_probe`],
//! instead of Go's synchronous probe inside every heartbeat), and republishing a changed record.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use libp2p::{Multiaddr, PeerId};
use rand::rngs::StdRng;
use rand::SeedableRng;

mod config;
mod response;

pub use config::Config;

use crate::membership::admission::{self, Inputs, Refused};
use crate::membership::heartbeat::{self, HeartbeatResponse, SignedHeartbeat};
use crate::membership::offline;
use crate::membership::probe::Measurement;
use crate::membership::profile::Profile;
use crate::membership::score::UptimeTracker;
use crate::membership::select::is_routable;
use crate::membership::swim::{self, EventQueue, Incarnation, Kind};
use crate::membership::{PeerInfo, Timestamp};

/// Why a heartbeat was not accepted. Only `Capacity` and `Refused` are worth a retry later.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Reject {
    /// Malformed, not Ed25519, or bad signature.
    #[error(transparent)]
    Heartbeat(#[from] heartbeat::Error),
    /// Full, and the peer has no session yet.
    #[error("too many connections ({max}), try another indexer")]
    Capacity {
        /// Capacity.
        max: u32,
    },
    /// Not newer than the last accepted heartbeat of the session.
    #[error("replayed heartbeat (seq {seq})")]
    Replay {
        /// The offending sequence number.
        seq: u64,
    },
    /// Admission score below the age-based threshold.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// Refused earlier and still in its backoff.
    #[error("refused earlier; try again after {until:?}")]
    Backoff {
        /// When it may try again.
        until: Timestamp,
    },
    /// Its subnet already holds its share of this indexer's sessions.
    #[error("this indexer holds {limit} sessions from your subnet; try another indexer")]
    SubnetFull {
        /// Sessions one subnet may hold here.
        limit: usize,
    },
}

/// An accepted heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The response to send (fill `response.dht` first if `dht_challenge` is set).
    pub response: HeartbeatResponse,
    /// The node sent a record different from the one held: validate and republish it.
    pub record: Option<Vec<u8>>,
    /// Look up `/node/<did>` (≤ 3 s) and set `response.dht` before sending.
    pub dht_challenge: Option<String>,
    /// Probe this node's bandwidth (`/garden/probe/1.0.0`) and report with [`Registry::on_probe`].
    pub probe: bool,
    /// The admission score the node got.
    pub score: f64,
    /// The node's clock is this far off ours (ms, positive = ahead), reported once per
    /// session when beyond [`CLOCK_SKEW_WARNING`].
    pub clock_skew_ms: Option<i64>,
}

/// Clock offsets beyond this are reported (they are tolerated up to the record and SWIM
/// bounds, never punished).
pub const CLOCK_SKEW_WARNING: Duration = Duration::from_secs(60);

/// One node's heartbeat session.
#[derive(Clone, Debug)]
struct Session {
    idx: usize,
    key: VerifyingKey,
    uptime: UptimeTracker,
    last: (Timestamp, u64),
    expires_at: Timestamp,
    record: Option<Vec<u8>>,
    bound: Option<Vec<PeerId>>,
    name: Option<String>,
    addrs: Vec<Multiaddr>,
    /// The subnets of `addrs`, as counted in `Registry::subnets`.
    subnets: HashSet<[u8; 6]>,
    probe: Option<ProbeScore>,
    probe_requested: Option<Timestamp>,
    skew_reported: bool,
    /// The node's connectivity profile (from its full heartbeats).
    profile: Profile,
    /// Where the node's last silence beyond the continuous gap began (its heartbeat before a
    /// cut): offline heartbeats must fall after it.
    cut_since: Option<Timestamp>,
    /// The last offline-heartbeat sequence accepted for this cut (the next batch continues it).
    offline_seq: Option<u64>,
}

/// A node's probe results, smoothed.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ProbeScore {
    /// Share of probes completed within the allowed round trip (weighted to the recent).
    responsive: f64,
    bandwidth: f64,
}

impl ProbeScore {
    fn first(m: Measurement) -> Self {
        Self {
            responsive: if m.ok { 1.0 } else { 0.0 },
            bandwidth: m.bandwidth,
        }
    }

    fn then(self, m: Measurement) -> Self {
        let next = Self::first(m);
        Self {
            responsive: (self.responsive + next.responsive) / 2.0,
            bandwidth: (self.bandwidth + next.bandwidth) / 2.0,
        }
    }
}

/// The indexer's registry of heartbeating nodes.
#[derive(Debug)]
pub struct Registry {
    cfg: Config,
    local: PeerId,
    born_at: Timestamp,
    incarnation: Incarnation,
    events: EventQueue,
    sessions: HashMap<PeerId, Session>,
    /// Session ids in a vector (with `Session::idx`) for O(1) random sampling.
    ids: Vec<PeerId>,
    referents: HashSet<PeerId>,
    pending: HashMap<PeerId, HashMap<PeerId, Timestamp>>,
    known_indexers: Vec<PeerInfo>,
    refusals: admission::Refusals,
    /// Sessions per subnet (for the subnet quota).
    subnets: HashMap<[u8; 6], usize>,
    in_batch: HashMap<PeerId, Timestamp>,
    tried: HashSet<PeerId>,
    rng: StdRng,
}

impl Registry {
    /// A registry for indexer `local` started at `born_at`.
    pub fn new(cfg: Config, local: PeerId, born_at: Timestamp) -> Self {
        let rng = match cfg.rng_seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Registry {
            events: EventQueue::new(cfg.swim.clone()),
            refusals: admission::Refusals::new(
                cfg.refusal_backoff,
                cfg.refusal_backoff_cap,
                cfg.max_remembered_refusals,
            ),
            cfg,
            local,
            born_at,
            incarnation: Incarnation::starting_at(born_at),
            sessions: HashMap::new(),
            ids: Vec::new(),
            referents: HashSet::new(),
            pending: HashMap::new(),
            known_indexers: Vec::new(),
            subnets: HashMap::new(),
            in_batch: HashMap::new(),
            tried: HashSet::new(),
            rng,
        }
    }

    /// Other indexers (the DHT cache) offered as suggestions and candidates.
    pub fn set_known_indexers(&mut self, v: Vec<PeerInfo>) {
        self.known_indexers = v.into_iter().filter(|i| i.peer != self.local).collect();
    }

    /// Known indexers (for the candidates protocol).
    pub fn known_indexers(&self) -> &[PeerInfo] {
        &self.known_indexers
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// No sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Whether `peer` heartbeats here.
    /// A session's uptime ratio at `now` (online time over the time not excused by its
    /// profile), if it has one.
    pub fn uptime_of(&self, peer: &PeerId, now: Timestamp) -> Option<f64> {
        self.sessions.get(peer).map(|s| s.uptime.ratio(now))
    }

    pub fn has_session(&self, peer: &PeerId) -> bool {
        self.sessions.contains_key(peer)
    }

    /// Whether to probe a suspected indexer on `peer`'s behalf: only for nodes that heartbeat
    /// here, so a stranger cannot make indexers dial arbitrary targets (IX-13).
    pub fn serves_indirect_probe(&self, peer: &PeerId) -> bool {
        self.has_session(peer)
    }

    /// Every live session with the addresses witnesses are given for it.
    pub fn sessions(&self) -> Vec<PeerInfo> {
        self.ids
            .iter()
            .filter_map(|p| {
                self.sessions
                    .get(p)
                    .map(|s| PeerInfo::new(*p, s.addrs.clone()))
            })
            .collect()
    }

    /// The last record `peer` sent.
    pub fn record_of(&self, peer: &PeerId) -> Option<&[u8]> {
        self.sessions.get(peer).and_then(|s| s.record.as_deref())
    }

    /// Nodes that chose this indexer as referent (distributed search serves their records).
    pub fn referents(&self) -> impl Iterator<Item = &PeerId> {
        self.referents.iter()
    }

    /// Current SWIM incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation.get()
    }

    /// `born_at`.
    pub fn born_at(&self) -> Timestamp {
        self.born_at
    }

    /// Current fill rate.
    pub fn fill_rate(&self) -> f64 {
        fill(self.sessions.len(), self.cfg.max_nodes)
    }

    /// A bandwidth probe of `peer` finished.
    /// A bandwidth probe's result. Scores are smoothed over probes (each new one weighs a
    /// half), so one slow probe on a busy link does not decide an admission.
    pub fn on_probe(&mut self, peer: &PeerId, m: Measurement) {
        if let Some(s) = self.sessions.get_mut(peer) {
            s.probe = Some(match s.probe {
                None => ProbeScore::first(m),
                Some(p) => p.then(m),
            });
        }
    }

    /// Handle one heartbeat from the authenticated `peer` reachable at `addrs`: its listen
    /// addresses (from identify), not the connection's remote address, which is often an
    /// ephemeral port. Non-routable ones are dropped; an empty list keeps the previous one.
    pub fn on_heartbeat(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        addrs: &[Multiaddr],
        req: &SignedHeartbeat,
    ) -> Result<Accepted, Reject> {
        let existing = self.sessions.get(&peer);
        let is_new = existing.is_none();
        if is_new && self.sessions.len() >= self.cfg.max_nodes as usize {
            return Err(Reject::Capacity {
                max: self.cfg.max_nodes,
            });
        }
        if is_new {
            if let Some(until) = self.refusals.waiting_until(&peer, now) {
                return Err(Reject::Backoff { until });
            }
            let limit = self.cfg.subnet_quota.limit(self.cfg.max_nodes);
            if admission::subnets_of(addrs)
                .iter()
                .any(|s| self.subnets.get(s).copied().unwrap_or(0) >= limit)
            {
                return Err(Reject::SubnetFull { limit });
            }
        }
        let key = match existing {
            Some(s) => s.key,
            None => heartbeat::verifying_key_of(&peer).ok_or(heartbeat::Error::NotEd25519(peer))?,
        };
        req.verify(&key, &self.local)
            .map_err(|_| heartbeat::Error::BadSignature(peer))?;
        let hb = req.heartbeat();
        // Strictly newer (timestamp, seq): a replay has neither; a restarted node has a newer time.
        if existing.is_some_and(|s| (hb.timestamp, hb.seq) <= s.last) {
            return Err(Reject::Replay { seq: hb.seq });
        }

        // Uptime counts this heartbeat too (scored before it is recorded, the second
        // heartbeat of every node saw an uptime of zero).
        let (age, uptime, probe) = match existing {
            Some(s) => {
                // Judged against the profile, as the session will record it: an orbital
                // node's first heartbeat of a pass must not count its planned absence as
                // downtime (it was refused at every pass once the bar rose).
                let mut u = s.uptime.clone();
                u.record_heartbeat_with(now, &hb.profile.unwrap_or(s.profile));
                (u.age(now), u.ratio(now), s.probe)
            }
            None => (Duration::ZERO, 0.0, None),
        };
        // Before the first probe, a node counts as average on both probe dimensions.
        let inputs = Inputs {
            uptime,
            responsive: probe.map_or(0.5, |p| p.responsive),
            bandwidth: probe.map_or(0.5, |p| p.bandwidth),
        };
        let score = match admission::admit(&inputs, age) {
            Ok(s) => s,
            Err(refused) => {
                // Remembered, so that the node does not come back as a newcomer at once; its
                // session (if any) is closed.
                self.refusals.refuse(peer, now);
                self.remove_session(&peer);
                return Err(refused.into());
            }
        };

        // Upsert the session.
        let allow_loopback = self.cfg.allow_loopback;
        let ttl = self.cfg.session_ttl;
        let probe_interval = self.cfg.probe_interval;
        let ids = &mut self.ids;
        let s = self.sessions.entry(peer).or_insert_with(|| {
            ids.push(peer);
            Session {
                idx: ids.len() - 1,
                key,
                uptime: UptimeTracker::new(now),
                last: (Timestamp::ZERO, 0),
                expires_at: now,
                record: None,
                bound: None,
                name: None,
                addrs: Vec::new(),
                subnets: HashSet::new(),
                probe: None,
                probe_requested: None,
                skew_reported: false,
                profile: Profile::Continuous,
                cut_since: None,
                offline_seq: None,
            }
        });
        if let Some(p) = hb.profile {
            s.profile = p;
        }
        if let Some(last) = s
            .uptime
            .last_seen
            .filter(|l| now.since(*l) > crate::membership::score::CONTINUOUS_GAP)
        {
            s.cut_since = Some(last);
            s.offline_seq = None;
        }
        s.uptime.record_heartbeat_with(now, &s.profile);
        let skew_ms = hb.timestamp.as_millis() as i64 - now.as_millis() as i64;
        let clock_skew_ms = (skew_ms.unsigned_abs() > CLOCK_SKEW_WARNING.as_millis() as u64
            && !std::mem::replace(&mut s.skew_reported, true))
        .then_some(skew_ms);
        s.last = (hb.timestamp, hb.seq);
        // Silent beyond its profile's planned absence plus the session TTL: gone.
        s.expires_at = s.profile.deadline(now, ttl);
        let mut new_record = None;
        if let Some(r) = &hb.record {
            if s.record.as_ref() != Some(r) {
                new_record = Some(r.clone());
                s.record = Some(r.clone());
            }
        }
        if let Some(b) = &hb.indexers_bound {
            s.bound = Some(b.clone());
        }
        if hb.name.is_some() {
            s.name = hb.name.clone();
        }
        let routable: Vec<Multiaddr> = addrs
            .iter()
            .filter(|a| is_routable(a, allow_loopback))
            .cloned()
            .collect();
        if !routable.is_empty() {
            let subnets = admission::subnets_of(&routable);
            for gone in s.subnets.difference(&subnets) {
                if let Some(n) = self.subnets.get_mut(gone) {
                    *n = n.saturating_sub(1);
                }
            }
            for new in subnets.difference(&s.subnets) {
                *self.subnets.entry(*new).or_default() += 1;
            }
            self.subnets.retain(|_, n| *n > 0);
            s.subnets = subnets;
            s.addrs = routable;
        }
        // A session created by a heartbeat that omits the record or pool list means we lost
        // state the node believes we hold (restart, expiry): ask for everything once.
        let resync = is_new && (hb.record.is_none() || hb.indexers_bound.is_none());
        let want_probe = s
            .probe_requested
            .is_none_or(|t| now.since(t) >= probe_interval);
        if want_probe {
            s.probe_requested = Some(now);
        }
        let bound: Vec<PeerId> = s.bound.clone().unwrap_or_default();

        if hb.referent {
            self.referents.insert(peer);
        } else {
            self.referents.remove(&peer);
        }
        // Drain before taking this heartbeat's events in, so nothing is echoed straight back
        // to the peer it came from (our refutation reaches the suspecting node through the
        // response's `incarnation`, and the others through the queue).
        let events_out = self.events.drain(swim::EVENTS_PER_MESSAGE);
        self.swim_in(now, peer, hb.suspected_incarnation, &hb.events);
        self.index_pending(now, peer, &hb.pending_contact);

        let response = self.build_response(now, peer, hb, &bound, resync, events_out);
        Ok(Accepted {
            response,
            record: new_record,
            dht_challenge: hb.challenge_did.clone(),
            probe: want_probe,
            score,
            clock_skew_ms,
        })
    }

    /// SWIM: refute suspicion of ourselves (at our incarnation or newer, IX-15), relay the
    /// rest; events that are not admissible from `from` (`swim::admissible`) are dropped.
    fn swim_in(
        &mut self,
        now: Timestamp,
        from: PeerId,
        suspected: Option<u64>,
        events: &[swim::MemberEvent],
    ) {
        let ahead = now.plus(swim::MAX_INCARNATION_AHEAD).as_millis();
        let mut refute = suspected.filter(|s| *s <= ahead);
        for ev in events.iter().filter(|e| swim::admissible(e, &from, now)) {
            if ev.peer == self.local {
                if ev.kind != Kind::Alive {
                    refute = Some(refute.map_or(ev.incarnation, |r| r.max(ev.incarnation)));
                }
            } else {
                self.events.add(ev.clone());
            }
        }
        if let Some(s) = refute {
            if let Some(new) = self.incarnation.refute(s) {
                self.events.originate(Kind::Alive, self.local, new);
            }
        }
    }

    /// Periodic GC (every ~30 s): expire silent sessions and stale pending entries. Returns the
    /// expired peers.
    pub fn on_tick(&mut self, now: Timestamp) -> Vec<PeerId> {
        let expired: Vec<PeerId> = self
            .sessions
            .iter()
            .filter(|(_, s)| now >= s.expires_at)
            .map(|(p, _)| *p)
            .collect();
        for p in &expired {
            self.remove_session(p);
        }
        self.pending.retain(|_, callers| {
            callers.retain(|_, exp| *exp > now);
            !callers.is_empty()
        });
        expired
    }

    /// Offline heartbeats from `peer` (see `membership::offline`): judged against its session
    /// (its key, the heartbeat before its last cut, the sequence floor kept per node) and, when
    /// valid, credited to its uptime.
    pub fn on_offline_beats(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        batch: &offline::Batch,
        interval: Duration,
    ) -> Result<offline::Credit, offline::Refused> {
        let s = self
            .sessions
            .get_mut(&peer)
            .ok_or(offline::Refused::Times)?;
        let since = s.cut_since.ok_or(offline::Refused::Times)?;
        let ctx = offline::Context {
            node: &peer,
            key: &s.key,
            last_seq: s.offline_seq,
            since,
            now,
            interval,
            gap: crate::membership::score::CONTINUOUS_GAP,
            skew: crate::membership::swim::MAX_INCARNATION_AHEAD,
        };
        let credit = offline::judge(&ctx, &batch.beats)?;
        s.uptime.credit(credit.online, now);
        // Later batches of the same cut continue where this one ended: a replay (of this or an
        // earlier cut) is out of sequence or before `cut_since`.
        s.cut_since = batch.beats.last().map(|b| b.at);
        s.offline_seq = Some(credit.last_seq);
        Ok(credit)
    }

    /// Drop everything about `peer` (GC, ban, tombstone: one path, IX-8).
    pub fn remove_session(&mut self, peer: &PeerId) {
        if let Some(s) = self.sessions.remove(peer) {
            for subnet in &s.subnets {
                if let Some(n) = self.subnets.get_mut(subnet) {
                    *n = n.saturating_sub(1);
                }
            }
            self.subnets.retain(|_, n| *n > 0);

            self.ids.swap_remove(s.idx);
            if let Some(moved) = self.ids.get(s.idx) {
                if let Some(m) = self.sessions.get_mut(moved) {
                    m.idx = s.idx;
                }
            }
        }
        self.referents.remove(peer);
        self.in_batch.remove(peer);
        self.tried.remove(peer);
        self.pending.remove(peer);
        for callers in self.pending.values_mut() {
            callers.remove(peer);
        }
    }
}

pub(super) fn fill(count: usize, max: u32) -> f64 {
    if max == 0 {
        0.0
    } else {
        (count as f64 / f64::from(max)).min(1.0)
    }
}

#[cfg(test)]
mod tests;
