//! A behaviour wrapper that counts, per peer, the messages a wrapped behaviour's connection
//! handlers report, and says when a peer exceeds its limit.
//!
//! Kademlia reports inbound GET and FIND_NODE requests without the requester's peer id, so
//! the application cannot rate them per peer from kad's events. Every message of a
//! connection does pass through `on_connection_handler_event(peer, ..)` though: counting
//! there bounds what one peer makes us do. Our own queries' answers pass there too, which is
//! why the limit ([`crate::net::gater::Limits::requests_per_minute`]) is generous; an honest
//! peer is far below it.

use std::collections::{HashMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::task::{Context, Poll};
use std::time::Duration;

use libp2p::core::{transport::PortUse, Endpoint, Multiaddr};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::PeerId;

use crate::time::{Clock, Timestamp};

/// What the wrapper emits.
#[derive(Debug)]
pub enum Event<E> {
    /// The wrapped behaviour's event.
    Inner(E),
    /// This peer exceeded its limit in the current window (reported once per window).
    Excess(PeerId),
}

/// `B`, with per-peer message counts.
pub struct Metered<B> {
    inner: B,
    limit: u32,
    window: Duration,
    clock: Clock,
    counts: HashMap<PeerId, (Timestamp, u32)>,
    excess: VecDeque<PeerId>,
}

impl<B> Metered<B> {
    /// At most `limit` messages per `window` (protocol time) from one peer.
    pub fn new(inner: B, limit: u32, window: Duration, clock: Clock) -> Self {
        Self {
            inner,
            limit,
            window,
            clock,
            counts: HashMap::new(),
            excess: VecDeque::new(),
        }
    }

    fn count(&mut self, peer: PeerId) {
        let now = self.clock.now();
        if self.counts.len() > 50_000 && !self.counts.contains_key(&peer) {
            let window = self.window;
            self.counts
                .retain(|_, (start, _)| now.since(*start) < window);
        }
        let entry = self.counts.entry(peer).or_insert((now, 0));
        if now.since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 == self.limit.saturating_add(1) {
            self.excess.push_back(peer);
        }
    }
}

impl<B> Deref for Metered<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.inner
    }
}

impl<B> DerefMut for Metered<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for Metered<B> {
    type ConnectionHandler = B::ConnectionHandler;
    type ToSwarm = Event<B::ToSwarm>;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(id, local, remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner
            .handle_established_inbound_connection(id, peer, local, remote)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: Option<PeerId>,
        addrs: &[Multiaddr],
        role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner
            .handle_pending_outbound_connection(id, peer, addrs, role)
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner
            .handle_established_outbound_connection(id, peer, addr, role, port_use)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.inner.on_swarm_event(event)
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.count(peer);
        self.inner.on_connection_handler_event(peer, id, event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(peer) = self.excess.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(Event::Excess(peer)));
        }
        self.inner.poll(cx).map(|e| e.map_out(Event::Inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_peer_over_its_limit_is_reported_once_per_window() {
        let clock = Clock::system();
        let mut m = Metered::new((), 3, Duration::from_secs(60), clock);
        let (p, q) = (PeerId::random(), PeerId::random());
        for _ in 0..10 {
            m.count(p);
        }
        m.count(q);
        assert_eq!(m.excess.drain(..).collect::<Vec<_>>(), vec![p]);
        tokio::time::advance(Duration::from_secs(61)).await;
        for _ in 0..3 {
            m.count(p);
        }
        assert!(m.excess.is_empty(), "a new window starts from zero");
        m.count(p);
        assert_eq!(m.excess.len(), 1);
    }
}
