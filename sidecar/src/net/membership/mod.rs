//! Membership glue: drives the membership state machines (`membership::node::Pool` on nodes,
//! `membership::indexer::Registry` on indexers, both built by `app.rs`) from swarm events and
//! performs the actions they return. No membership decision is taken here.
//!
//! [`Membership`] owns every piece of membership state the swarm side needs: the pool, the
//! registry, the requests in flight on the five membership protocols, and the addresses
//! witnesses are given. `node.rs` handles the node side (heartbeats out, witness, indirect
//! probe and candidate requests), `indexer.rs` the indexer side (heartbeats in, bandwidth and
//! indirect probes).

mod indexer;
mod node;

use std::collections::HashMap;

use libp2p::{multiaddr::Protocol, request_response::OutboundRequestId, Multiaddr, PeerId};
use tokio::sync::broadcast;

use crate::discovery::record;
use crate::membership::{indexer as registry, node as pool, PeerInfo};

/// What the membership glue needs from the other concerns; the event loop dispatches it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Want {
    /// Look for indexers in the DHT registry and report them with
    /// [`Membership::on_registry_candidates`].
    DiscoverIndexers,
    /// A node's heartbeat carried its signed record: validate it and put it in the DHT.
    Republish { from: PeerId, record: Vec<u8> },
    /// These peers wait to reach us (DTN wake-up).
    Wake(Vec<PeerId>),
}

/// Most listen addresses remembered per peer (the record limit, `record::MAX_ADDRS`).
const MAX_LISTEN_ADDRS: usize = record::MAX_ADDRS;

/// Requests in flight on the membership protocols, each keyed by its behaviour's id.
#[derive(Default)]
struct Outstanding {
    heartbeats: HashMap<OutboundRequestId, (PeerId, tokio::time::Instant)>,
    /// (indexer asked about, round, witness).
    witness: HashMap<OutboundRequestId, (PeerId, u64, PeerId)>,
    /// (suspected target, voter).
    indirect: HashMap<OutboundRequestId, (PeerId, PeerId)>,
    candidates: HashMap<OutboundRequestId, PeerId>,
    probes: HashMap<OutboundRequestId, indexer::ProbeOut>,
}

/// Where connected peers can be reached (for witnesses).
#[derive(Default)]
struct Reachability {
    /// Listen addresses each connected peer announced (identify), without `/p2p/`.
    listen: HashMap<PeerId, Vec<Multiaddr>>,
    /// The address we dialled, for peers we connected to ourselves (a listen address too).
    dialed: HashMap<PeerId, Multiaddr>,
}

impl Reachability {
    fn forget(&mut self, peer: &PeerId) {
        self.listen.remove(peer);
        self.dialed.remove(peer);
    }

    /// The listen addresses a peer announced through identify, else the address we dialled it
    /// at, else nothing (the remote address of an inbound connection is the dialler's
    /// ephemeral port, useless to anyone else).
    fn of(&self, peer: &PeerId) -> Vec<Multiaddr> {
        match self.listen.get(peer) {
            Some(a) if !a.is_empty() => a.clone(),
            _ => self.dialed.get(peer).cloned().into_iter().collect(),
        }
    }
}

/// `addr` without a trailing `/p2p/<peer id>`.
pub(crate) fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}

/// The membership plane as the swarm sees it.
pub struct Membership {
    pool: Option<pool::Pool>,
    registry: Option<registry::Registry>,
    out: Outstanding,
    reach: Reachability,
    events: broadcast::Sender<pool::Event>,
    /// Nodes' heartbeat interval (offline beats closer than half of it are implausible).
    heartbeat_interval: std::time::Duration,
}

impl Membership {
    /// Membership around a node pool (nodes, strict indexers with seeds) and/or an indexer
    /// registry (indexers).
    pub fn new(pool: Option<pool::Pool>, registry: Option<registry::Registry>) -> Self {
        Self {
            pool,
            registry,
            out: Outstanding::default(),
            reach: Reachability::default(),
            events: broadcast::channel(256).0,
            heartbeat_interval: pool::Config::new().interval,
        }
    }

    /// The heartbeat interval nodes use (to judge their offline heartbeats).
    pub fn with_heartbeat_interval(mut self, d: std::time::Duration) -> Self {
        self.heartbeat_interval = d;
        self
    }

    pub(super) fn pool(&self) -> Option<&pool::Pool> {
        self.pool.as_ref()
    }

    /// The peers our heartbeats list as waiting for us to reach them (no pool: ignored).
    pub(super) fn set_pending_contact(&mut self, peers: Vec<PeerId>) {
        if let Some(p) = self.pool.as_mut() {
            p.set_pending_contact(peers);
        }
    }

    pub(super) fn registry(&self) -> Option<&registry::Registry> {
        self.registry.as_ref()
    }

    /// Observers of the pool's changes.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<pool::Event> {
        self.events.subscribe()
    }

    /// Identify told us `peer`'s listen addresses.
    pub(super) fn on_identified(&mut self, peer: PeerId, listen: &[Multiaddr]) {
        let mut addrs: Vec<Multiaddr> = Vec::new();
        for a in listen.iter().map(without_p2p) {
            if addrs.len() < MAX_LISTEN_ADDRS && !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        self.reach.listen.insert(peer, addrs);
    }

    /// A connection to `peer` was established; `dialed` is the address when we dialled.
    pub(super) fn on_connected(&mut self, peer: PeerId, dialed: Option<&Multiaddr>) {
        if let Some(a) = dialed {
            self.reach.dialed.insert(peer, without_p2p(a));
        }
    }

    /// We left the network: heartbeats stop.
    pub(super) fn depart(&mut self) {
        if let Some(p) = self.pool.as_mut() {
            p.depart();
        }
    }

    /// `peer` was banned, or left (its tombstone arrived): its heartbeat session goes now, not
    /// at the session's expiry.
    pub(super) fn forget(&mut self, peer: &PeerId) {
        if let Some(r) = self.registry.as_mut() {
            if r.has_session(peer) {
                tracing::info!(%peer, "heartbeat session closed (banned or left)");
                r.remove_session(peer);
            }
        }
    }

    /// The last connection to `peer` closed. A pool member whose connection is gone is
    /// treated at once as a failed heartbeat (suspected, voters asked): a crashed indexer is
    /// known within a round trip instead of at the next heartbeat, up to 20 s later.
    pub(super) fn on_disconnected(
        &mut self,
        swarm: &mut crate::net::behaviour::Swarm,
        now: crate::time::Timestamp,
        peer: &PeerId,
    ) -> Vec<Want> {
        self.reach.forget(peer);
        let acts = match self.pool.as_mut() {
            Some(p) if p.contains(peer) => p.on_connection_lost(now, *peer),
            _ => return Vec::new(),
        };
        self.perform(swarm, acts)
    }

    /// Our own record changed (re-signed): heartbeats carry it to our indexers.
    pub(super) fn set_record(&mut self, bytes: Vec<u8>, expires_at: crate::time::Timestamp) {
        if let Some(p) = self.pool.as_mut() {
            p.set_record(bytes, expires_at);
        }
    }

    /// Whether the pool wants more indexers (nodes below their maximum).
    pub(super) fn wants_indexers(&self) -> bool {
        self.pool.as_ref().is_some_and(|p| p.wants_more())
    }

    /// Publishes the pool's changes to observers.
    fn publish_events(&mut self) {
        let Some(p) = self.pool.as_mut() else { return };
        for e in p.take_events() {
            match e {
                pool::Event::ClockOffset { offset_ms }
                    if offset_ms.unsigned_abs() > pool::CLOCK_OFFSET_WARNING.as_millis() as u64 =>
                {
                    tracing::warn!(offset_ms, "our clock is off our indexers' clocks; records we sign may be refused (fix the system clock)")
                }
                _ => tracing::info!(event = ?e, "membership"),
            }
            let _ = self.events.send(e);
        }
    }

    /// Hands DHT registry results to the registry (indexers offer them as suggestions) and to
    /// the pool (nodes pick among them).
    pub(super) fn on_registry_candidates(
        &mut self,
        swarm: &mut crate::net::behaviour::Swarm,
        now: crate::time::Timestamp,
        found: &[crate::discovery::registry::Candidate],
    ) -> Vec<Want> {
        let me = *swarm.local_peer_id();
        let found: Vec<_> = found.iter().filter(|c| c.peer_id != me).collect();
        if let Some(r) = self.registry.as_mut() {
            r.set_known_indexers(
                found
                    .iter()
                    .map(|c| PeerInfo::new(c.peer_id, c.addrs.clone()))
                    .collect(),
            );
        }
        let Some(p) = self.pool.as_mut() else {
            return Vec::new();
        };
        let cands = found
            .iter()
            .map(|c| crate::membership::select::Candidate {
                info: PeerInfo::new(c.peer_id, c.addrs.clone()),
                fill_rate: Some(c.info.fill_rate()),
            })
            .collect();
        for peer in p.on_discovered(now, cands) {
            tracing::info!(%peer, "indexer added to the pool from the DHT registry");
        }
        let acts = p.nudge(now);
        self.perform(swarm, acts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witness_addresses_are_the_identified_listen_addresses() {
        let peer = PeerId::random();
        let listen: Vec<Multiaddr> = vec![
            "/ip4/10.0.0.1/tcp/4001".parse().unwrap(),
            format!("/ip4/10.0.0.2/tcp/4001/p2p/{peer}")
                .parse()
                .unwrap(),
            "/ip4/10.0.0.1/tcp/4001".parse().unwrap(),
        ];
        let dialed: Multiaddr = format!("/ip4/10.0.0.3/tcp/4001/p2p/{peer}")
            .parse()
            .unwrap();
        let mut m = Membership::new(None, None);
        // Inbound connection, identify not in yet: nothing (never the ephemeral remote port).
        m.on_connected(peer, None);
        assert!(m.reach.of(&peer).is_empty());
        // Identify: its listen addresses, `/p2p/` stripped, deduplicated.
        m.on_identified(peer, &listen);
        let want: Vec<Multiaddr> = vec![
            "/ip4/10.0.0.1/tcp/4001".parse().unwrap(),
            "/ip4/10.0.0.2/tcp/4001".parse().unwrap(),
        ];
        assert_eq!(m.reach.of(&peer), want);
        // A peer we dialled is reachable where we reached it until identify says more.
        let other = PeerId::random();
        m.on_connected(other, Some(&dialed));
        assert_eq!(
            m.reach.of(&other),
            vec!["/ip4/10.0.0.3/tcp/4001".parse::<Multiaddr>().unwrap()]
        );
        m.on_identified(other, &listen[..1]);
        assert_eq!(m.reach.of(&other), want[..1].to_vec());
        m.reach.forget(&peer);
        assert!(m.reach.of(&peer).is_empty());
    }
}
