//! Connection gater as a `NetworkBehaviour` (the allow-block-list pattern): static blacklist,
//! temporary bans, a burst guard on never-seen inbound peers, and per-peer behavioural rate
//! limits (heartbeats, publishes, gets per minute) whose excesses are strikes; enough strikes
//! ban the peer, which closes its connections and refuses new ones.
//!
//! [`State`] holds the decisions and takes an explicit clock; [`Behaviour`] wraps it with
//! `Instant::now()` and the swarm plumbing.
//!
//! Go divergences: Go's gater allowed everything and its ban checks were commented out
//! (go-common §19, IX-6); here bans and the blacklist are enforced at connection time. Strikes
//! decay (one per ban period without a new strike, IX-23) and the peer table is bounded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use libp2p::core::{transport::PortUse, Endpoint, Multiaddr};
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::PeerId;

/// Default window of the per-peer behavioural limits.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);
/// Bound on remembered peers (known set and per-peer windows).
const MAX_TRACKED_PEERS: usize = 50_000;

/// Limits (mapped from `[gater]` in the config).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_new_peers_per_window: usize,
    pub window: Duration,
    /// Sliding window of the per-peer limits below (`*_per_minute` name the default window).
    pub rate_window: Duration,
    pub heartbeats_per_minute: usize,
    pub publishes_per_minute: usize,
    pub gets_per_minute: usize,
    pub strikes_before_ban: u32,
    pub ban: Duration,
}

impl Default for Limits {
    /// Go defaults: 20 new peers / 30 s; 5 heartbeats, 10 publishes, 50 gets per 60 s rate
    /// window; 3 strikes, 10 min ban.
    fn default() -> Self {
        Self {
            max_new_peers_per_window: 20,
            window: Duration::from_secs(30),
            rate_window: DEFAULT_RATE_WINDOW,
            heartbeats_per_minute: 5,
            publishes_per_minute: 10,
            gets_per_minute: 50,
            strikes_before_ban: 3,
            ban: Duration::from_secs(600),
        }
    }
}

/// A rate-limited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Heartbeat,
    Publish,
    Get,
}

/// Outcome of [`State::record`] / [`State::strike`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refused; the peer now has this many strikes.
    Throttled { strikes: u32 },
    /// The peer is banned (now or already).
    Banned,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("peer {0} is blacklisted")]
    Blacklisted(PeerId),
    #[error("peer {0} is banned")]
    Banned(PeerId),
    #[error("too many new peers in the burst window")]
    Burst,
}

#[derive(Debug, Default)]
struct PeerState {
    windows: [VecDeque<Instant>; 3],
    strikes: u32,
    last_strike: Option<Instant>,
    banned_until: Option<Instant>,
}

/// Pure gater state.
#[derive(Debug)]
pub struct State {
    limits: Limits,
    blacklist: HashSet<PeerId>,
    known: HashSet<PeerId>,
    new_peers: VecDeque<Instant>,
    peers: HashMap<PeerId, PeerState>,
    denied: u64,
}

impl State {
    pub fn new(limits: Limits, blacklist: impl IntoIterator<Item = PeerId>) -> Self {
        Self {
            limits,
            blacklist: blacklist.into_iter().collect(),
            known: HashSet::new(),
            new_peers: VecDeque::new(),
            peers: HashMap::new(),
            denied: 0,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.blacklist.contains(peer)
            || self
                .peers
                .get(peer)
                .and_then(|p| p.banned_until)
                .is_some_and(|t| t > now)
    }

    /// Peers banned at `now`.
    pub fn banned_peers(&self, now: Instant) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.banned_until.is_some_and(|t| t > now))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Checks a peer at connection time (any direction).
    pub fn check(&self, peer: &PeerId, now: Instant) -> Result<(), Denied> {
        if self.blacklist.contains(peer) {
            return Err(Denied::Blacklisted(*peer));
        }
        if self.is_banned(peer, now) {
            return Err(Denied::Banned(*peer));
        }
        Ok(())
    }

    /// Admits an inbound connection: blacklist, ban, then the burst guard for never-seen
    /// peers (refusals are not counted, as in Go).
    pub fn admit_inbound(&mut self, peer: &PeerId, now: Instant) -> Result<(), Denied> {
        let res = self.admit_inbound_inner(peer, now);
        if res.is_err() {
            self.denied += 1;
        }
        res
    }

    /// Inbound connections refused so far.
    pub fn denied_count(&self) -> u64 {
        self.denied
    }

    fn admit_inbound_inner(&mut self, peer: &PeerId, now: Instant) -> Result<(), Denied> {
        self.check(peer, now)?;
        if self.known.contains(peer) {
            return Ok(());
        }
        while self
            .new_peers
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.limits.window)
        {
            self.new_peers.pop_front();
        }
        if self.new_peers.len() >= self.limits.max_new_peers_per_window {
            return Err(Denied::Burst);
        }
        self.new_peers.push_back(now);
        self.remember(*peer);
        Ok(())
    }

    /// Marks a peer as known (outbound dials we chose, seeds).
    pub fn remember(&mut self, peer: PeerId) {
        if self.known.len() >= MAX_TRACKED_PEERS {
            self.known.clear();
        }
        self.known.insert(peer);
    }

    /// Counts one `action` by `peer`. Over its limit within the sliding
    /// [`Limits::rate_window`] the action is refused and costs one strike.
    pub fn record(&mut self, peer: &PeerId, action: Action, now: Instant) -> Verdict {
        if self.is_banned(peer, now) {
            return Verdict::Banned;
        }
        let max = match action {
            Action::Heartbeat => self.limits.heartbeats_per_minute,
            Action::Publish => self.limits.publishes_per_minute,
            Action::Get => self.limits.gets_per_minute,
        };
        self.bound_table();
        let window = self.limits.rate_window;
        let st = self.peers.entry(*peer).or_default();
        let w = &mut st.windows[action as usize];
        while w.front().is_some_and(|t| now.duration_since(*t) >= window) {
            w.pop_front();
        }
        if w.len() >= max {
            return self.strike(peer, 1, now);
        }
        w.push_back(now);
        Verdict::Allow
    }

    /// Adds `n` strikes (bad signature: 2). Bans at the threshold.
    pub fn strike(&mut self, peer: &PeerId, n: u32, now: Instant) -> Verdict {
        let (limit, ban) = (self.limits.strikes_before_ban, self.limits.ban);
        let st = self.peers.entry(*peer).or_default();
        // Decay: one strike forgiven per ban period since the last strike.
        if let Some(last) = st.last_strike {
            let periods = (now.duration_since(last).as_secs() / ban.as_secs().max(1)) as u32;
            st.strikes = st.strikes.saturating_sub(periods);
        }
        st.strikes += n;
        st.last_strike = Some(now);
        if st.strikes >= limit {
            st.banned_until = Some(now + ban);
            st.strikes = 0;
            return Verdict::Banned;
        }
        Verdict::Throttled {
            strikes: st.strikes,
        }
    }

    fn bound_table(&mut self) {
        if self.peers.len() >= MAX_TRACKED_PEERS {
            // Keep banned peers; drop the rest (they only lose recent counts).
            self.peers.retain(|_, p| p.banned_until.is_some());
        }
    }
}

/// The swarm-facing gater.
pub struct Behaviour {
    state: State,
    close: VecDeque<PeerId>,
}

impl Behaviour {
    pub fn new(state: State) -> Self {
        Self {
            state,
            close: VecDeque::new(),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Records an action; a ban closes every connection to the peer.
    pub fn record(&mut self, peer: &PeerId, action: Action) -> Verdict {
        let v = self.state.record(peer, action, Instant::now());
        self.on_verdict(peer, v)
    }

    /// Adds strikes; a ban closes every connection to the peer.
    pub fn strike(&mut self, peer: &PeerId, n: u32) -> Verdict {
        let v = self.state.strike(peer, n, Instant::now());
        self.on_verdict(peer, v)
    }

    pub fn remember(&mut self, peer: PeerId) {
        self.state.remember(peer)
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.state.is_banned(peer, Instant::now())
    }

    fn on_verdict(&mut self, peer: &PeerId, v: Verdict) -> Verdict {
        match v {
            Verdict::Banned => {
                tracing::warn!(%peer, "peer banned by the gater");
                self.close.push_back(*peer);
            }
            Verdict::Throttled { strikes } => tracing::info!(%peer, strikes, "peer throttled"),
            Verdict::Allow => {}
        }
        v
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.state
            .admit_inbound(&peer, Instant::now())
            .map_err(ConnectionDenied::new)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            self.state
                .check(&peer, Instant::now())
                .map_err(ConnectionDenied::new)?;
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.state
            .check(&peer, Instant::now())
            .map_err(ConnectionDenied::new)?;
        self.state.remember(peer);
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, ev: THandlerOutEvent<Self>) {
        libp2p::core::util::unreachable(ev)
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        match self.close.pop_front() {
            Some(peer_id) => Poll::Ready(ToSwarm::CloseConnection {
                peer_id,
                connection: CloseConnection::All,
            }),
            None => Poll::Pending,
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

    #[test]
    fn burst_guard_counts_only_new_peers_and_slides() {
        let t0 = Instant::now();
        let mut s = State::new(limits(), []);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        s.admit_inbound(&a, t0).unwrap();
        s.admit_inbound(&b, t0).unwrap();
        assert_eq!(s.admit_inbound(&c, t0), Err(Denied::Burst));
        assert_eq!(s.denied_count(), 1);
        s.admit_inbound(&a, t0).unwrap(); // known peers pass
        s.admit_inbound(&c, t0 + Duration::from_secs(30)).unwrap();
    }

    #[test]
    fn over_limit_is_throttled_then_banned_then_forgiven() {
        let t0 = Instant::now();
        let mut s = State::new(limits(), []);
        let p = PeerId::random();
        assert_eq!(s.record(&p, Action::Publish, t0), Verdict::Allow);
        assert_eq!(s.record(&p, Action::Publish, t0), Verdict::Allow);
        assert_eq!(s.record(&p, Action::Publish, t0), Verdict::Throttled { strikes: 1 });
        assert_eq!(s.record(&p, Action::Get, t0), Verdict::Allow, "limits are per action");
        assert_eq!(s.record(&p, Action::Publish, t0), Verdict::Throttled { strikes: 2 });
        assert_eq!(s.record(&p, Action::Publish, t0), Verdict::Banned);
        assert_eq!(s.check(&p, t0), Err(Denied::Banned(p)));
        let later = t0 + Duration::from_secs(601);
        assert!(s.check(&p, later).is_ok());
        assert_eq!(s.record(&p, Action::Publish, later), Verdict::Allow);
    }

    #[test]
    fn rate_window_is_configurable_and_slides() {
        let t0 = Instant::now();
        let short = Limits {
            rate_window: Duration::from_secs(5),
            strikes_before_ban: 100,
            ..limits()
        };
        let mut s = State::new(short, []);
        let p = PeerId::random();
        assert_eq!(s.record(&p, Action::Publish, t0), Verdict::Allow);
        assert_eq!(s.record(&p, Action::Publish, t0 + Duration::from_secs(1)), Verdict::Allow);
        let at4 = t0 + Duration::from_secs(4);
        assert_eq!(s.record(&p, Action::Publish, at4), Verdict::Throttled { strikes: 1 });
        // At 5 s the first action left the window: one slot is free again, not two.
        let at5 = t0 + Duration::from_secs(5);
        assert_eq!(s.record(&p, Action::Publish, at5), Verdict::Allow);
        assert_eq!(s.record(&p, Action::Publish, at5), Verdict::Throttled { strikes: 2 });
        // The default window is a minute: the same sequence at 5 s is still refused.
        let mut s = State::new(limits(), []);
        s.record(&p, Action::Publish, t0);
        s.record(&p, Action::Publish, t0 + Duration::from_secs(1));
        assert_eq!(s.record(&p, Action::Publish, at5), Verdict::Throttled { strikes: 1 });
        assert_eq!(s.record(&p, Action::Publish, t0 + Duration::from_secs(60)), Verdict::Allow);
    }

    #[test]
    fn blacklist_is_permanent_and_strikes_decay() {
        let t0 = Instant::now();
        let bad = PeerId::random();
        let mut s = State::new(limits(), [bad]);
        assert_eq!(s.check(&bad, t0), Err(Denied::Blacklisted(bad)));
        let p = PeerId::random();
        assert_eq!(s.strike(&p, 2, t0), Verdict::Throttled { strikes: 2 });
        // Two ban periods of good behaviour forgive two strikes.
        assert_eq!(s.strike(&p, 1, t0 + Duration::from_secs(1200)), Verdict::Throttled { strikes: 1 });
    }
}
