//! The gater's decisions, with an explicit clock: blacklist, bans, the burst guard for new
//! peers, per-peer behavioural rate limits, and the strikes that offences cost.
//!
//! Go divergences: Go's gater allowed everything and its ban checks were commented out
//! (docs/DIVERGENCES.md IX-6); here bans and the blacklist are enforced at connection time.
//! Strikes decay (one per ban period without a new strike, IX-23) and the peer table is
//! bounded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

pub use crate::offence::{Action, Offence};
use crate::time::Timestamp;

/// Bound on remembered peers (known set and per-peer windows). Beyond it the least recently
/// seen are forgotten one by one (the tables used to be wiped wholesale, which also forgot
/// every peer's recent counts at once).
const MAX_TRACKED_PEERS: usize = 50_000;
/// Bound on source subnets tracked by the burst guard.
const MAX_TRACKED_SUBNETS: usize = 10_000;

/// Strikes each kind of offence costs. An offence is something only a faulty or hostile peer
/// does; an honest peer that merely loses a race (a stale record, a full store) commits none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights {
    /// Exceeding a per-peer rate limit. [Default: 1]
    pub over_limit: u32,
    /// A frame or message that does not decode. [Default: 1]
    pub malformed: u32,
    /// A bad signature, or a record or heartbeat that claims another identity. [Default: 2]
    pub forged: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            over_limit: 1,
            malformed: 1,
            forged: 2,
        }
    }
}

/// Limits (mapped from `[gater]` in the config).
#[derive(Debug, Clone)]
pub struct Limits {
    /// New (never seen) peers admitted per `window` from one source subnet (IPv4 /24, IPv6
    /// /48). [Default: 20]
    pub max_new_peers_per_window: usize,
    /// New peers admitted per `window` from all sources together. [Default: 200]
    pub max_new_peers_per_window_total: usize,
    /// Burst-guard window. [Default: 30 s]
    pub window: Duration,
    /// Sliding window of the per-peer limits below (`*_per_minute` name the default window).
    /// [Default: 60 s]
    pub rate_window: Duration,
    /// [Default: 5]
    pub heartbeats_per_minute: usize,
    /// [Default: 10]
    pub publishes_per_minute: usize,
    /// [Default: 50]
    pub gets_per_minute: usize,
    /// Other requests served (witness, probe echo, candidates, pushed search results,
    /// Kademlia). [Default: 300]
    pub requests_per_minute: usize,
    /// [Default: 3]
    pub strikes_before_ban: u32,
    /// [Default: 600 s]
    pub ban: Duration,
    /// Strikes per offence.
    pub weights: Weights,
}

impl Default for Limits {
    /// Go defaults: 20 new peers / 30 s; 5 heartbeats, 10 publishes, 50 gets per 60 s rate
    /// window; 3 strikes, 10 min ban.
    fn default() -> Self {
        Self {
            max_new_peers_per_window: 20,
            max_new_peers_per_window_total: 200,
            window: Duration::from_secs(30),
            rate_window: Duration::from_secs(60),
            heartbeats_per_minute: 5,
            publishes_per_minute: 10,
            gets_per_minute: 50,
            requests_per_minute: 300,
            strikes_before_ban: 3,
            ban: Duration::from_secs(600),
            weights: Weights::default(),
        }
    }
}

/// Outcome of [`State::record`] / [`State::offend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refused; the peer now has this many strikes.
    Throttled {
        strikes: u32,
    },
    /// This offence got the peer banned: close its connections.
    Banned,
    /// The peer was already banned; nothing new to do.
    AlreadyBanned,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("peer {0} is blacklisted")]
    Blacklisted(PeerId),
    #[error("peer {0} is banned")]
    Banned(PeerId),
    #[error("too many new peers from this subnet in the burst window")]
    Burst,
    #[error("too many new peers in the burst window")]
    BurstTotal,
}

#[derive(Debug, Default)]
struct PeerState {
    windows: [VecDeque<Timestamp>; 4],
    strikes: u32,
    last_strike: Option<Timestamp>,
    banned_until: Option<Timestamp>,
    last_active: Timestamp,
}

/// Pure gater state.
#[derive(Debug)]
pub struct State {
    limits: Limits,
    blacklist: HashSet<PeerId>,
    known: HashSet<PeerId>,
    known_order: VecDeque<PeerId>,
    new_peers: VecDeque<Timestamp>,
    new_by_subnet: HashMap<[u8; 6], VecDeque<Timestamp>>,
    peers: HashMap<PeerId, PeerState>,
    denied: u64,
}

impl State {
    pub fn new(limits: Limits, blacklist: impl IntoIterator<Item = PeerId>) -> Self {
        Self {
            limits,
            blacklist: blacklist.into_iter().collect(),
            known: HashSet::new(),
            known_order: VecDeque::new(),
            new_peers: VecDeque::new(),
            new_by_subnet: HashMap::new(),
            peers: HashMap::new(),
            denied: 0,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn is_banned(&self, peer: &PeerId, now: Timestamp) -> bool {
        self.blacklist.contains(peer)
            || self
                .peers
                .get(peer)
                .and_then(|p| p.banned_until)
                .is_some_and(|t| t > now)
    }

    /// Peers banned at `now`.
    pub fn banned_peers(&self, now: Timestamp) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.banned_until.is_some_and(|t| t > now))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Checks a peer at connection time (any direction).
    pub fn check(&self, peer: &PeerId, now: Timestamp) -> Result<(), Denied> {
        if self.blacklist.contains(peer) {
            return Err(Denied::Blacklisted(*peer));
        }
        if self.is_banned(peer, now) {
            return Err(Denied::Banned(*peer));
        }
        Ok(())
    }

    /// Admits an inbound connection from `remote`: blacklist, ban, then the burst guard for
    /// never-seen peers, per source subnet and in all (refusals are not counted, as in Go).
    pub fn admit_inbound(
        &mut self,
        peer: &PeerId,
        remote: &Multiaddr,
        now: Timestamp,
    ) -> Result<(), Denied> {
        let res = self.admit_inbound_inner(peer, remote, now);
        if res.is_err() {
            self.denied += 1;
        }
        res
    }

    /// Inbound connections refused so far.
    pub fn denied_count(&self) -> u64 {
        self.denied
    }

    fn admit_inbound_inner(
        &mut self,
        peer: &PeerId,
        remote: &Multiaddr,
        now: Timestamp,
    ) -> Result<(), Denied> {
        self.check(peer, now)?;
        if self.known.contains(peer) {
            return Ok(());
        }
        let window = self.limits.window;
        let slide = |q: &mut VecDeque<Timestamp>| {
            while q.front().is_some_and(|t| now.since(*t) >= window) {
                q.pop_front();
            }
        };
        slide(&mut self.new_peers);
        if self.new_peers.len() >= self.limits.max_new_peers_per_window_total {
            return Err(Denied::BurstTotal);
        }
        // Loopback and in-process sources share one bucket (the all-zero subnet).
        let subnet = crate::membership::admission::ip_of(remote)
            .map(crate::membership::admission::subnet_of_ip)
            .unwrap_or_default();
        if !self.new_by_subnet.contains_key(&subnet)
            && self.new_by_subnet.len() >= MAX_TRACKED_SUBNETS
        {
            self.new_by_subnet.retain(|_, q| {
                slide(q);
                !q.is_empty()
            });
        }
        let q = self.new_by_subnet.entry(subnet).or_default();
        slide(q);
        if q.len() >= self.limits.max_new_peers_per_window {
            return Err(Denied::Burst);
        }
        q.push_back(now);
        self.new_peers.push_back(now);
        self.remember(*peer);
        Ok(())
    }

    /// Marks a peer as known (outbound dials we chose, seeds).
    pub fn remember(&mut self, peer: PeerId) {
        if self.known.insert(peer) {
            self.known_order.push_back(peer);
            while self.known_order.len() > MAX_TRACKED_PEERS {
                if let Some(old) = self.known_order.pop_front() {
                    self.known.remove(&old);
                }
            }
        }
    }

    /// Counts one `action` by `peer`. Over its limit within the sliding
    /// [`Limits::rate_window`] the action is refused and is an [`Offence::OverLimit`].
    pub fn record(&mut self, peer: &PeerId, action: Action, now: Timestamp) -> Verdict {
        if self.is_banned(peer, now) {
            return Verdict::AlreadyBanned;
        }
        if !self.count(peer, action, now) {
            return self.offend(peer, Offence::OverLimit(action), now);
        }
        Verdict::Allow
    }

    /// Counts one `action` relayed by `peer` on behalf of others: over its limit it is
    /// refused, but costs no strike. A gossip forwarder passes on what other peers authored;
    /// when many searchers are busy at once an honest forwarder exceeds any per-peer rate, and
    /// striking it would make honest indexers ban each other.
    pub fn within(&mut self, peer: &PeerId, action: Action, now: Timestamp) -> bool {
        !self.is_banned(peer, now) && self.count(peer, action, now)
    }

    /// Slides `peer`'s window for `action` and counts one more if under the limit.
    fn count(&mut self, peer: &PeerId, action: Action, now: Timestamp) -> bool {
        let max = match action {
            Action::Heartbeat => self.limits.heartbeats_per_minute,
            Action::Publish => self.limits.publishes_per_minute,
            Action::Get => self.limits.gets_per_minute,
            Action::Request => self.limits.requests_per_minute,
        };
        self.bound_table(peer);
        let window = self.limits.rate_window;
        let st = self.peers.entry(*peer).or_default();
        st.last_active = now;
        let w = &mut st.windows[action as usize];
        while w.front().is_some_and(|t| now.since(*t) >= window) {
            w.pop_front();
        }
        if w.len() >= max {
            return false;
        }
        w.push_back(now);
        true
    }

    /// Adds the strikes `offence` costs ([`Limits::weights`]). Bans at the threshold.
    pub fn offend(&mut self, peer: &PeerId, offence: Offence, now: Timestamp) -> Verdict {
        if self.is_banned(peer, now) {
            return Verdict::AlreadyBanned;
        }
        let w = &self.limits.weights;
        let n = match offence {
            Offence::OverLimit(_) => w.over_limit,
            Offence::Malformed => w.malformed,
            Offence::Forged => w.forged,
        };
        let (limit, ban) = (self.limits.strikes_before_ban, self.limits.ban);
        self.bound_table(peer);
        let st = self.peers.entry(*peer).or_default();
        st.last_active = now;
        // Decay: one strike forgiven per ban period since the last strike.
        if let Some(last) = st.last_strike {
            let periods = (now.since(last).as_millis() / ban.as_millis().max(1)) as u32;
            st.strikes = st.strikes.saturating_sub(periods);
        }
        st.strikes = st.strikes.saturating_add(n);
        st.last_strike = Some(now);
        if st.strikes >= limit {
            st.banned_until = Some(now.plus(ban));
            st.strikes = 0;
            return Verdict::Banned;
        }
        Verdict::Throttled {
            strikes: st.strikes,
        }
    }

    /// Makes room for `peer` when the table is full: the tenth of the unbanned peers least
    /// recently active is forgotten (they only lose their recent counts); banned peers stay.
    fn bound_table(&mut self, peer: &PeerId) {
        if self.peers.len() < MAX_TRACKED_PEERS || self.peers.contains_key(peer) {
            return;
        }
        let mut idle: Vec<(Timestamp, PeerId)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.banned_until.is_none())
            .map(|(k, p)| (p.last_active, *k))
            .collect();
        let drop = (MAX_TRACKED_PEERS / 10).min(idle.len());
        if drop > 0 {
            idle.select_nth_unstable(drop - 1);
            for (_, k) in &idle[..drop] {
                self.peers.remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_new_peers_per_window: 2,
            window: Duration::from_secs(30),
            publishes_per_minute: 2,
            ..Limits::default()
        }
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(1_000_000 + secs * 1000)
    }

    fn from(subnet: u8) -> Multiaddr {
        format!("/ip4/10.0.{subnet}.7/tcp/4001").parse().unwrap()
    }

    #[test]
    fn a_forwarder_over_its_share_is_refused_but_never_struck() {
        let mut s = State::new(
            Limits {
                gets_per_minute: 3,
                strikes_before_ban: 1,
                ..limits()
            },
            [],
        );
        let fwd = PeerId::random();
        let passed = (0..1000)
            .filter(|_| s.within(&fwd, Action::Get, at(0)))
            .count();
        assert_eq!(passed, 3, "the forwarder's share per window");
        assert!(!s.is_banned(&fwd, at(0)), "relaying is no offence");
        assert!(s.within(&fwd, Action::Get, at(60)), "the window slides");
        // The same peer asking for itself is struck over the limit.
        for _ in 0..2 {
            s.record(&fwd, Action::Get, at(60));
        }
        assert_eq!(s.record(&fwd, Action::Get, at(60)), Verdict::Banned);
        assert!(
            !s.within(&fwd, Action::Get, at(61)),
            "a banned peer relays nothing"
        );
    }

    #[test]
    fn burst_guard_counts_only_new_peers_and_slides() {
        let mut s = State::new(limits(), []);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        s.admit_inbound(&a, &from(1), at(0)).unwrap();
        s.admit_inbound(&b, &from(1), at(0)).unwrap();
        assert_eq!(s.admit_inbound(&c, &from(1), at(0)), Err(Denied::Burst));
        assert_eq!(s.denied_count(), 1);
        s.admit_inbound(&a, &from(1), at(0)).unwrap(); // known peers pass
        s.admit_inbound(&c, &from(1), at(30)).unwrap();
    }

    #[test]
    fn one_subnet_flooding_new_identities_does_not_lock_out_the_others() {
        // Before, the guard was global: 20 throwaway identities from one host locked every
        // newcomer out for the window.
        let lim = Limits {
            max_new_peers_per_window: 2,
            max_new_peers_per_window_total: 5,
            ..limits()
        };
        let mut s = State::new(lim, []);
        for _ in 0..2 {
            s.admit_inbound(&PeerId::random(), &from(66), at(0))
                .unwrap();
        }
        assert_eq!(
            s.admit_inbound(&PeerId::random(), &from(66), at(0)),
            Err(Denied::Burst)
        );
        s.admit_inbound(&PeerId::random(), &from(1), at(0))
            .expect("another subnet is welcome");
        s.admit_inbound(&PeerId::random(), &from(2), at(0)).unwrap();
        s.admit_inbound(&PeerId::random(), &from(3), at(0)).unwrap();
        // The total still bounds a flood spread over many subnets.
        assert_eq!(
            s.admit_inbound(&PeerId::random(), &from(4), at(0)),
            Err(Denied::BurstTotal)
        );
    }

    #[test]
    fn a_full_table_forgets_the_least_recently_active_peers_and_keeps_bans() {
        let mut s = State::new(
            Limits {
                strikes_before_ban: 1,
                ..limits()
            },
            [],
        );
        let banned = PeerId::random();
        s.offend(&banned, Offence::Forged, at(0));
        let early = PeerId::random();
        s.record(&early, Action::Publish, at(1));
        s.record(&early, Action::Publish, at(1));
        for i in 0..MAX_TRACKED_PEERS {
            s.record(&PeerId::random(), Action::Get, at(2 + i as u64 / 1000));
        }
        assert!(s.is_banned(&banned, at(500)), "bans survive");
        assert!(
            s.peers.len() < MAX_TRACKED_PEERS + 1 && s.peers.len() > MAX_TRACKED_PEERS / 2,
            "not wiped: {}",
            s.peers.len()
        );
        assert!(
            !s.peers.contains_key(&early),
            "the least recently active went first"
        );
    }

    #[test]
    fn over_limit_is_throttled_then_banned_once_then_forgiven() {
        let mut s = State::new(limits(), []);
        let p = PeerId::random();
        assert_eq!(s.record(&p, Action::Publish, at(0)), Verdict::Allow);
        assert_eq!(s.record(&p, Action::Publish, at(0)), Verdict::Allow);
        assert_eq!(
            s.record(&p, Action::Publish, at(0)),
            Verdict::Throttled { strikes: 1 }
        );
        assert_eq!(
            s.record(&p, Action::Get, at(0)),
            Verdict::Allow,
            "limits are per action"
        );
        assert_eq!(
            s.record(&p, Action::Publish, at(0)),
            Verdict::Throttled { strikes: 2 }
        );
        assert_eq!(s.record(&p, Action::Publish, at(0)), Verdict::Banned);
        // Every later action of a banned peer is not a new ban (no new close, no new log).
        assert_eq!(s.record(&p, Action::Publish, at(1)), Verdict::AlreadyBanned);
        assert_eq!(s.offend(&p, Offence::Forged, at(1)), Verdict::AlreadyBanned);
        assert_eq!(s.check(&p, at(1)), Err(Denied::Banned(p)));
        assert!(s.check(&p, at(601)).is_ok());
        assert_eq!(s.record(&p, Action::Publish, at(601)), Verdict::Allow);
    }

    #[test]
    fn offences_cost_their_configured_weight() {
        let mut s = State::new(limits(), []);
        let p = PeerId::random();
        assert_eq!(
            s.offend(&p, Offence::Malformed, at(0)),
            Verdict::Throttled { strikes: 1 }
        );
        assert_eq!(s.offend(&p, Offence::Forged, at(0)), Verdict::Banned);
        let heavy = Limits {
            weights: Weights {
                malformed: 3,
                ..Weights::default()
            },
            ..limits()
        };
        let mut s = State::new(heavy, []);
        assert_eq!(s.offend(&p, Offence::Malformed, at(0)), Verdict::Banned);
    }

    #[test]
    fn rate_window_is_configurable_and_slides() {
        let short = Limits {
            rate_window: Duration::from_secs(5),
            strikes_before_ban: 100,
            ..limits()
        };
        let mut s = State::new(short, []);
        let p = PeerId::random();
        assert_eq!(s.record(&p, Action::Publish, at(0)), Verdict::Allow);
        assert_eq!(s.record(&p, Action::Publish, at(1)), Verdict::Allow);
        assert_eq!(
            s.record(&p, Action::Publish, at(4)),
            Verdict::Throttled { strikes: 1 }
        );
        // At 5 s the first action left the window: one slot is free again, not two.
        assert_eq!(s.record(&p, Action::Publish, at(5)), Verdict::Allow);
        assert_eq!(
            s.record(&p, Action::Publish, at(5)),
            Verdict::Throttled { strikes: 2 }
        );
        // The default window is a minute: the same sequence at 5 s is still refused.
        let mut s = State::new(limits(), []);
        s.record(&p, Action::Publish, at(0));
        s.record(&p, Action::Publish, at(1));
        assert_eq!(
            s.record(&p, Action::Publish, at(5)),
            Verdict::Throttled { strikes: 1 }
        );
        assert_eq!(s.record(&p, Action::Publish, at(60)), Verdict::Allow);
    }

    #[test]
    fn blacklist_is_permanent_and_strikes_decay() {
        let bad = PeerId::random();
        let mut s = State::new(limits(), [bad]);
        assert_eq!(s.check(&bad, at(0)), Err(Denied::Blacklisted(bad)));
        let p = PeerId::random();
        assert_eq!(
            s.offend(&p, Offence::Forged, at(0)),
            Verdict::Throttled { strikes: 2 }
        );
        // Two ban periods of good behaviour forgive two strikes.
        assert_eq!(
            s.offend(&p, Offence::Malformed, at(1200)),
            Verdict::Throttled { strikes: 1 }
        );
    }
}
