//! Connection gater: a `NetworkBehaviour` that refuses connections from blacklisted or banned
//! peers and limits how many never-seen peers may connect per window, plus behavioural rate
//! limits (heartbeats, publishes, gets per minute) whose excesses are offences; enough strikes
//! ban the peer, which closes its connections and refuses new ones.
//!
//! [`State`] (in `state.rs`) holds the decisions and takes an explicit clock; [`Behaviour`]
//! wraps it with the node's [`Clock`] and the swarm plumbing.

mod state;

pub use state::{Action, Denied, Limits, Offence, State, Verdict, Weights};

use std::collections::VecDeque;
use std::task::{Context, Poll};

use libp2p::core::{transport::PortUse, Endpoint, Multiaddr};
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::PeerId;

use crate::time::Clock;

/// What the gater tells the rest of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// This peer was just banned (its connections are being closed): forget its sessions.
    Banned(PeerId),
}

/// The swarm-facing gater.
pub struct Behaviour {
    state: State,
    clock: Clock,
    close: VecDeque<PeerId>,
    banned: VecDeque<PeerId>,
}

impl Behaviour {
    pub fn new(state: State, clock: Clock) -> Self {
        Self {
            state,
            clock,
            close: VecDeque::new(),
            banned: VecDeque::new(),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Records an action; a new ban closes every connection to the peer.
    pub fn record(&mut self, peer: &PeerId, action: Action) -> Verdict {
        let v = self.state.record(peer, action, self.clock.now());
        self.on_verdict(peer, v, Some(Offence::OverLimit(action)))
    }

    /// Whether `peer` may have one more `action` served now (over the limit it is refused and
    /// struck).
    pub fn allow(&mut self, peer: &PeerId, action: Action) -> bool {
        self.record(peer, action) == Verdict::Allow
    }

    /// Whether `peer` may relay one more `action` now; over the limit it is refused without a
    /// strike ([`State::within`]).
    pub fn within(&mut self, peer: &PeerId, action: Action) -> bool {
        self.state.within(peer, action, self.clock.now())
    }

    /// Charges an offence; a new ban closes every connection to the peer.
    pub fn offend(&mut self, peer: &PeerId, offence: Offence) -> Verdict {
        let v = self.state.offend(peer, offence, self.clock.now());
        self.on_verdict(peer, v, Some(offence))
    }

    pub fn remember(&mut self, peer: PeerId) {
        self.state.remember(peer)
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.state.is_banned(peer, self.clock.now())
    }

    /// Peers banned now.
    pub fn banned_peers(&self) -> Vec<PeerId> {
        self.state.banned_peers(self.clock.now())
    }

    fn on_verdict(&mut self, peer: &PeerId, v: Verdict, offence: Option<Offence>) -> Verdict {
        match v {
            Verdict::Banned => {
                tracing::warn!(%peer, ?offence, "peer banned by the gater");
                self.close.push_back(*peer);
                self.banned.push_back(*peer);
            }
            Verdict::Throttled { strikes } => {
                tracing::info!(%peer, strikes, ?offence, "peer struck")
            }
            Verdict::Allow | Verdict::AlreadyBanned => {}
        }
        v
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.state
            .admit_inbound(&peer, remote, self.clock.now())
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
                .check(&peer, self.clock.now())
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
            .check(&peer, self.clock.now())
            .map_err(ConnectionDenied::new)?;
        self.state.remember(peer);
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        ev: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(ev)
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(peer) = self.banned.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(Event::Banned(peer)));
        }
        match self.close.pop_front() {
            Some(peer_id) => Poll::Ready(ToSwarm::CloseConnection {
                peer_id,
                connection: CloseConnection::All,
            }),
            None => Poll::Pending,
        }
    }
}
