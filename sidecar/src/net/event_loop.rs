//! The event loop: owns the `Swarm` and one glue value per concern ([`Dht`], [`Search`],
//! [`Membership`]); `select!`s swarm events, client commands and timers, and dispatches each
//! to its owner. What one concern produces for another comes back as a value
//! ([`dht::Outcome`], [`membership::Want`]) and is dispatched here; no decision is taken here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::kad::store::RecordStore;
use libp2p::{
    identify, multiaddr::Protocol, swarm::dial_opts::DialOpts, swarm::SwarmEvent, Multiaddr, PeerId,
};
use tokio::sync::mpsc;

use super::behaviour::Swarm;
use super::behaviour::{BehaviourEvent, KAD_PROTOCOL};
use super::client::{Command, Error, Reply, Status};
use super::dht::{self, Dht};
use super::membership::{Membership, Want};
use super::search::Search;
use super::{gater, metered};
use crate::discovery::{publish::Presence, search::Rules};
use crate::keys::NodeIdentity;
use crate::time::Clock;

/// Runtime settings of the loop (mapped from the config by `app.rs`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Who we are in the DHT (role, name, record lifetime, location, indexer capacity).
    pub presence: Presence,
    /// Publish our own records (false for the ephemeral node of `garden search`).
    pub publish: bool,
    /// How often we re-sign and re-publish our records.
    pub republish_interval: Duration,
    /// How often a node short of indexers (and every indexer) looks in the DHT registry.
    pub discovery_interval: Duration,
    pub search: Rules,
    /// Peers dialled at start (`/p2p/` suffix required).
    pub seeds: Vec<Multiaddr>,
}

/// Owns the swarm; see the module docs.
pub struct EventLoop {
    swarm: Swarm,
    commands: mpsc::Receiver<Command>,
    identity: Arc<NodeIdentity>,
    clock: Clock,
    republish_interval: Duration,
    discovery_interval: Duration,
    seeds: Vec<Multiaddr>,
    dht: Dht,
    search: Search,
    membership: Membership,
    /// Dials a client waits for.
    pending_dials: HashMap<PeerId, Vec<Reply<()>>>,
    /// Whether a DHT server has been identified since start (our first publication waits
    /// for one).
    reached_dht: bool,
    /// Peers the indexers told us are waiting to reach us (the data plane's wake-up).
    wake: Option<mpsc::Sender<Vec<PeerId>>>,
    /// Every peer a connection is established with (the data plane delivers what waits for
    /// it at once, instead of at its next retry).
    connected: Option<mpsc::Sender<PeerId>>,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm,
        commands: mpsc::Receiver<Command>,
        identity: Arc<NodeIdentity>,
        settings: Settings,
        membership: Membership,
        clock: Clock,
    ) -> Self {
        let role = settings.presence.role;
        Self {
            dht: Dht::new(
                identity.clone(),
                settings.presence,
                settings.publish,
                clock.clone(),
            ),
            search: Search::new(settings.search, role.is_indexer(), clock.clone()),
            swarm,
            commands,
            identity,
            clock,
            republish_interval: settings.republish_interval,
            discovery_interval: settings.discovery_interval,
            seeds: settings.seeds,
            membership,
            pending_dials: HashMap::new(),
            reached_dht: false,
            wake: None,
            connected: None,
        }
    }

    /// Where to hand every peer a connection is established with.
    pub fn with_connected(mut self, tx: mpsc::Sender<PeerId>) -> Self {
        self.connected = Some(tx);
        self
    }

    /// Where to hand the peers that wait to reach us (DTN wake-up).
    pub fn with_wake(mut self, tx: mpsc::Sender<Vec<PeerId>>) -> Self {
        self.wake = Some(tx);
        self
    }

    /// Runs until `Shutdown` or until every `Client` is dropped.
    #[tracing::instrument(skip_all, fields(peer_id = %self.swarm.local_peer_id(), role = ?self.dht.presence().role))]
    pub async fn run(mut self) {
        self.start();
        let every = |d: Duration| {
            let mut i = tokio::time::interval(d);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        };
        let mut republish = every(self.clock.real(self.republish_interval));
        let mut discover = every(self.clock.real(self.discovery_interval));
        let mut housekeeping = every(Duration::from_millis(200));
        let mut membership_tick = every(self.clock.real(Duration::from_secs(1)));
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown(reply)) => {
                        let _ = reply.send(Ok(()));
                        break;
                    }
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                _ = republish.tick() => self.publish_own(None),
                _ = discover.tick() => self.maybe_discover(),
                _ = housekeeping.tick() => self.search.housekeeping(&mut self.swarm),
                _ = membership_tick.tick() => {
                    let wants = self.membership.on_tick(&mut self.swarm, self.clock.now());
                    self.on_wants(wants);
                    if self.dht.refresh_due() {
                        self.publish_own(None);
                    }
                }
            }
        }
        tracing::info!("event loop stopped");
    }

    fn start(&mut self) {
        self.dht.start(&mut self.swarm);
        self.search.start(&mut self.swarm);
        for addr in self.seeds.clone() {
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                tracing::warn!(%addr, "seed without /p2p/ suffix ignored");
                continue;
            };
            self.swarm.behaviour_mut().gater.remember(peer);
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, addr.clone());
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "cannot dial seed");
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let swarm = &mut self.swarm;
        match cmd {
            Command::Status(reply) => {
                let _ = reply.send(Ok(self.status()));
            }
            Command::Dial(addr, reply) => self.dial(addr, reply),
            Command::Publish(reply) => self.publish_own(Some(reply)),
            Command::Lookup(key, reply) => self.dht.lookup(swarm, key, reply),
            Command::Search(req, reply) => self.search.begin(swarm, &mut self.dht, req, reply),
            Command::DiscoverIndexers(reply) => self.dht.discover(swarm, Some(reply)),
            Command::Leave(reply) => {
                self.dht.leave(swarm, reply);
                self.membership.depart();
            }
            Command::MembershipEvents(reply) => {
                let _ = reply.send(Ok(self.membership.subscribe()));
            }
            Command::SetPendingContact(peers, reply) => {
                self.membership.set_pending_contact(peers);
                let _ = reply.send(Ok(()));
            }
            Command::Shutdown(_) => {}
        }
    }

    fn publish_own(&mut self, reply: Option<Reply<()>>) {
        let peers = match self.membership.registry() {
            Some(r) => r.len() as u32,
            None => self.swarm.connected_peers().count() as u32,
        };
        if let Some((record, expires_at)) = self.dht.publish_own(&mut self.swarm, peers, reply) {
            self.membership.set_record(record, expires_at);
        }
    }

    /// Nodes short of indexers, and every indexer (to offer the others as suggestions), look
    /// in the DHT registry.
    fn maybe_discover(&mut self) {
        if self.membership.wants_indexers() || self.dht.presence().role.is_indexer() {
            self.dht.discover(&mut self.swarm, None);
        }
    }

    fn status(&mut self) -> Status {
        let pool = self.membership.pool();
        let registry = self.membership.registry();
        Status {
            peer_id: *self.swarm.local_peer_id(),
            did: self.identity.did(),
            listen_addrs: self.swarm.listeners().cloned().collect(),
            connected: self.swarm.connected_peers().copied().collect(),
            indexers: pool.map(|p| p.indexers()).unwrap_or_default(),
            members: pool.map(|p| p.members()).unwrap_or_default(),
            clock_offset_ms: pool.and_then(|p| p.clock_offset()),
            suspected: pool
                .map(|p| {
                    p.indexers()
                        .into_iter()
                        .filter(|i| p.is_suspected(i))
                        .collect()
                })
                .unwrap_or_default(),
            heartbeat_sessions: registry.map_or(0, |r| r.len()),
            sessions: registry.map(|r| r.sessions()).unwrap_or_default(),
            stored_records: self.swarm.behaviour_mut().kad.store_mut().len(),
            registry_providers: self
                .swarm
                .behaviour_mut()
                .kad
                .store_mut()
                .providers(&crate::discovery::registry::provider_key())
                .len(),
            banned: self.swarm.behaviour().gater.banned_peers(),
            denied_connections: self.swarm.behaviour().gater.state().denied_count(),
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: Reply<()>) {
        let Some(Protocol::P2p(peer)) = addr.iter().last() else {
            let _ = reply.send(Err(Error::NoPeerId { addr }));
            return;
        };
        if self.swarm.is_connected(&peer) {
            let _ = reply.send(Ok(()));
            return;
        }
        self.swarm.behaviour_mut().gater.remember(peer);
        match self
            .swarm
            .dial(DialOpts::peer_id(peer).addresses(vec![addr]).build())
        {
            Ok(()) => self.pending_dials.entry(peer).or_default().push(reply),
            Err(e) => {
                let _ = reply.send(Err(Error::Dial {
                    peer,
                    source: Arc::new(e),
                }));
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = self.clock.now();
        let swarm = &mut self.swarm;
        let wants = match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(metered::Event::Inner(e))) => {
                let outcomes = self.dht.on_event(swarm, e);
                self.on_dht_outcomes(outcomes);
                return;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(metered::Event::Excess(peer))) => {
                tracing::info!(%peer, "too many Kademlia messages");
                swarm
                    .behaviour_mut()
                    .gater
                    .offend(&peer, gater::Offence::OverLimit(gater::Action::Request));
                return;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gater(gater::Event::Banned(peer))) => {
                self.membership.forget(&peer);
                return;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => {
                self.search.on_gossip(swarm, &mut self.dht, e);
                return;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Search(e)) => {
                self.search.on_results(swarm, e);
                return;
            }
            SwarmEvent::Behaviour(BehaviourEvent::SearchQuery(e)) => {
                self.search.on_direct(swarm, e);
                return;
            }

            SwarmEvent::Behaviour(BehaviourEvent::Heartbeat(e)) => {
                self.membership.on_heartbeat_event(swarm, now, e)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Witness(e)) => {
                self.membership.on_witness_event(swarm, now, e);
                return;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Offline(e)) => {
                self.membership.on_offline_event(swarm, now, e);
                return;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Probe(e)) => {
                self.membership.on_probe_event(swarm, e);
                return;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Indirect(e)) => {
                self.membership.on_indirect_event(swarm, now, e)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Candidates(e)) => {
                self.membership.on_candidates_event(swarm, now, e)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                self.membership.on_identified(peer_id, &info.listen_addrs);
                if info.protocols.contains(&KAD_PROTOCOL) {
                    for addr in info.listen_addrs {
                        swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                    // The publication at start had no DHT server to go to: publish (and
                    // announce the registry key) as soon as the first one is known, not a
                    // republish interval later.
                    if !self.reached_dht {
                        self.reached_dht = true;
                        self.publish_own(None);
                    }
                }
                return;
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                let dialed = endpoint.is_dialer().then(|| endpoint.get_remote_address());
                self.membership.on_connected(peer_id, dialed);
                if let Some(tx) = &self.connected {
                    // Never waits: a full channel only delays delivery to the next retry.
                    let _ = tx.try_send(peer_id);
                }
                for r in self.pending_dials.remove(&peer_id).unwrap_or_default() {
                    let _ = r.send(Ok(()));
                }
                return;
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.membership.on_disconnected(swarm, now, &peer_id),
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "dial failed");
                let source = Arc::new(error);
                for r in self.pending_dials.remove(&peer).unwrap_or_default() {
                    let _ = r.send(Err(Error::Dial {
                        peer,
                        source: source.clone(),
                    }));
                }
                return;
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                tracing::debug!(%send_back_addr, %error, "inbound connection refused");
                return;
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                return;
            }
            _ => return,
        };
        self.on_wants(wants);
    }

    fn on_dht_outcomes(&mut self, outcomes: Vec<dht::Outcome>) {
        for o in outcomes {
            match o {
                dht::Outcome::SearchHit {
                    search,
                    key,
                    value,
                    from,
                } => self.search.on_hit(search, Some(&key), &value, from),
                dht::Outcome::Route {
                    to,
                    results,
                    reachable,
                } => self
                    .search
                    .on_route(&mut self.swarm, to, results, reachable),
                dht::Outcome::Left(peer) => self.membership.forget(&peer),
                dht::Outcome::Discovered(found) => {
                    let wants = self.membership.on_registry_candidates(
                        &mut self.swarm,
                        self.clock.now(),
                        &found,
                    );
                    self.on_wants(wants);
                }
            }
        }
    }

    fn on_wants(&mut self, wants: Vec<Want>) {
        for w in wants {
            match w {
                Want::DiscoverIndexers => self.dht.discover(&mut self.swarm, None),
                Want::Republish { from, record } => {
                    self.dht
                        .store_heartbeat_record(&mut self.swarm, from, record)
                }
                Want::Wake(peers) => {
                    if let Some(tx) = &self.wake {
                        let _ = tx.try_send(peers);
                    }
                }
            }
        }
    }
}
