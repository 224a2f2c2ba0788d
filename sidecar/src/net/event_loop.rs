//! The event loop: owns the `Swarm`, `select!`s swarm events, client commands and timers, and
//! dispatches. Decisions live in `discovery::*` and `net::gater`; the kad and search handlers
//! are in `kad_events.rs` and `search_glue.rs` (same type, split for size).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::{
    gossipsub, identify, kad,
    multiaddr::Protocol,
    swarm::{dial_opts::DialOpts, SwarmEvent},
    Multiaddr, PeerId, Swarm,
};
use tokio::sync::mpsc;

use super::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use super::client::{Command, Error, Lookup, Reply, Status};
use super::membership_glue::{node_pool, Membership, MembershipEvent};
use crate::config::Role;
use crate::discovery::{
    now_ms,
    record::{self, Draft, IndexerInfo, Location, RecordKind},
    registry::{self, Candidate},
    search,
};
use crate::keys::NodeIdentity;
use crate::membership::{indexer, node, Timestamp};

/// Runtime settings of the loop (mapped from the config by `app.rs`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub role: Role,
    pub name: String,
    pub record_ttl: Duration,
    pub republish_interval: Duration,
    pub search_min_name_len: usize,
    pub search_max_hits: usize,
    pub min_indexers: usize,
    pub max_indexers: usize,
    pub indexer_capacity: u32,
    pub discovery_interval: Duration,
    pub location: Option<Location>,
    pub seeds: Vec<Multiaddr>,
    /// Publish our own records (false for the ephemeral node of `garden search`).
    pub publish: bool,
    /// Node pool parameters (seeds are filled in from `seeds`).
    pub pool: node::Config,
    /// Indexer registry parameters.
    pub registry: indexer::Config,
}

pub(super) struct PendingLookup {
    pub(super) key: String,
    pub(super) started: Instant,
    pub(super) reply: Option<Reply<Lookup>>,
}

pub(super) struct SearchEntry {
    pub(super) active: search::Active,
    pub(super) tx: mpsc::Sender<record::Verified>,
    pub(super) idle: Duration,
    pub(super) deadline: Instant,
    /// Query still to be gossiped (no subscribed peer yet).
    pub(super) unsent: Option<Vec<u8>>,
}

#[derive(Default)]
pub(super) struct Discovery {
    pub(super) providers_done: bool,
    pub(super) providers: HashSet<PeerId>,
    pub(super) lookups: HashSet<kad::QueryId>,
    pub(super) found: Vec<Candidate>,
    pub(super) replies: Vec<Reply<Vec<Candidate>>>,
}

/// Owns the swarm; see the module docs.
pub struct EventLoop {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) identity: Arc<NodeIdentity>,
    pub(super) settings: Settings,
    pub(super) born_at_ms: u64,
    pub(super) left: bool,
    pub(super) pending_dial: HashMap<PeerId, Vec<Reply<()>>>,
    pub(super) pending_lookup: HashMap<kad::QueryId, PendingLookup>,
    pub(super) pending_publish: HashMap<kad::QueryId, Reply<()>>,
    pub(super) search_lookups: HashMap<kad::QueryId, u64>,
    pub(super) searches: HashMap<u64, SearchEntry>,
    pub(super) reply_routes: HashMap<kad::QueryId, (PeerId, search::Results)>,
    pub(super) discovery: Option<(kad::QueryId, Discovery)>,
    pub(super) membership: Membership,
    pub(super) membership_events: tokio::sync::broadcast::Sender<MembershipEvent>,
    pub(super) search_topic: gossipsub::IdentTopic,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        identity: Arc<NodeIdentity>,
        settings: Settings,
    ) -> Self {
        let born_at_ms = now_ms();
        let mut membership = Membership::with_pool(node_pool(&settings, &identity, Timestamp::from_millis(born_at_ms)));
        if settings.role.is_indexer() {
            membership.registry = Some(indexer::Registry::new(
                settings.registry.clone().with_max_nodes(settings.indexer_capacity),
                identity.peer_id(),
                Timestamp::from_millis(born_at_ms),
            ));
        }
        Self {
            swarm,
            commands,
            identity,
            settings,
            born_at_ms,
            left: false,
            pending_dial: HashMap::new(),
            pending_lookup: HashMap::new(),
            pending_publish: HashMap::new(),
            search_lookups: HashMap::new(),
            searches: HashMap::new(),
            reply_routes: HashMap::new(),
            discovery: None,
            membership,
            membership_events: tokio::sync::broadcast::channel(256).0,
            search_topic: gossipsub::IdentTopic::new(search::TOPIC),
        }
    }

    /// Runs until `Shutdown` or until every `Client` is dropped.
    #[tracing::instrument(skip_all, fields(peer_id = %self.swarm.local_peer_id(), role = ?self.settings.role))]
    pub async fn run(mut self) {
        self.start();
        let mut republish = tokio::time::interval(self.settings.republish_interval);
        let mut discover = tokio::time::interval(self.settings.discovery_interval);
        let mut housekeeping = tokio::time::interval(Duration::from_millis(200));
        let mut membership_tick = tokio::time::interval(Duration::from_secs(1));
        let mut registry_gc = tokio::time::interval(Duration::from_secs(30));
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
                _ = housekeeping.tick() => self.expire_searches(),
                _ = membership_tick.tick() => self.membership_tick(),
                _ = registry_gc.tick() => self.registry_gc(),
            }
        }
        tracing::info!("event loop stopped");
    }

    fn start(&mut self) {
        if self.settings.role.is_indexer() {
            // Indexers relay and answer search queries (go-common §21.2: subscribe even
            // without a local consumer, or the mesh would not forward).
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&self.search_topic) {
                tracing::warn!(error = %e, "cannot subscribe to the search topic");
            }
            if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(registry::provider_key()) {
                tracing::warn!(error = ?e, "cannot announce the indexer registry key");
            }
        }
        for addr in self.settings.seeds.clone() {
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                tracing::warn!(%addr, "seed without /p2p/ suffix ignored");
                continue;
            };
            self.swarm.behaviour_mut().gater.remember(peer);
            self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "cannot dial seed");
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Status(reply) => {
                let _ = reply.send(Ok(self.status()));
            }
            Command::Dial(addr, reply) => self.dial(addr, reply),
            Command::Publish(reply) => self.publish_own(Some(reply)),
            Command::Lookup(key, reply) => {
                let id = self.swarm.behaviour_mut().kad.get_record(kad::RecordKey::new(&key));
                self.pending_lookup.insert(
                    id,
                    PendingLookup {
                        key,
                        started: Instant::now(),
                        reply: Some(reply),
                    },
                );
            }
            Command::Search(needle, idle, tx, reply) => self.start_search(needle, idle, tx, reply),
            Command::DiscoverIndexers(reply) => self.discover(Some(reply)),
            Command::Leave(reply) => self.leave(reply),
            Command::MembershipEvents(reply) => {
                let _ = reply.send(Ok(self.membership_events.subscribe()));
            }
            Command::Shutdown(_) => {}
        }
    }

    fn status(&mut self) -> Status {
        Status {
            peer_id: *self.swarm.local_peer_id(),
            did: self.identity.did(),
            listen_addrs: self.swarm.listeners().cloned().collect(),
            connected: self.swarm.connected_peers().copied().collect(),
            indexers: self.membership.pool.as_ref().map(|p| p.indexers()).unwrap_or_default(),
            members: self.membership.pool.as_ref().map(|p| p.members()).unwrap_or_default(),
            suspected: self
                .membership
                .pool
                .as_ref()
                .map(|p| p.indexers().into_iter().filter(|i| p.is_suspected(i)).collect())
                .unwrap_or_default(),
            stored_records: self.swarm.behaviour_mut().kad.store_mut().len(),
            banned: self.swarm.behaviour().gater.state().banned_peers(Instant::now()),
            denied_connections: self.swarm.behaviour().gater.state().denied_count(),
            heartbeat_sessions: self.membership.registry.as_ref().map_or(0, |r| r.len()),
            sessions: self.membership.registry.as_ref().map(|r| r.sessions()).unwrap_or_default(),
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: Reply<()>) {
        let Some(Protocol::P2p(peer)) = addr.iter().last() else {
            let _ = reply.send(Err(Error::Invalid(format!("{addr} has no /p2p/ suffix"))));
            return;
        };
        if self.swarm.is_connected(&peer) {
            let _ = reply.send(Ok(()));
            return;
        }
        self.swarm.behaviour_mut().gater.remember(peer);
        match self.swarm.dial(DialOpts::peer_id(peer).addresses(vec![addr]).build()) {
            Ok(()) => self.pending_dial.entry(peer).or_default().push(reply),
            Err(e) => {
                let _ = reply.send(Err(Error::Dial(e.to_string())));
            }
        }
    }

    /// Signs and puts our records: `/node/<did>` and `/name/<name>` for nodes,
    /// `/indexer/<peer id>` for indexers. `reply` is answered by the `/node/` put (or the
    /// indexer put for pure indexers).
    pub(super) fn publish_own(&mut self, reply: Option<Reply<()>>) {
        if self.left || !self.settings.publish {
            if let Some(r) = reply {
                let _ = r.send(Err(Error::Publish("this node does not publish records".into())));
            }
            return;
        }
        let now = now_ms();
        let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
        let mut reply = reply;
        if self.settings.role.is_node() {
            let draft = Draft {
                kind: RecordKind::Peer,
                name: self.settings.name.clone(),
                addrs: addrs.clone(),
                location: self.settings.location,
                indexer: None,
                ttl_ms: self.settings.record_ttl.as_millis() as u64,
            };
            let value = draft.sign(&self.identity, now);
            if let Some(p) = self.membership.pool.as_mut() {
                p.set_record(value.clone(), Timestamp::from_millis(now + draft.ttl_ms));
            }
            self.put(record::node_key(&self.identity.did()), value.clone(), reply.take());
            if !self.settings.name.is_empty() {
                self.put(record::name_key(&self.settings.name), value, None);
            }
        }
        if self.settings.role.is_indexer() {
            let peers = match self.membership.registry.as_ref() {
                Some(r) => r.len() as u32,
                None => self.swarm.connected_peers().count() as u32,
            };
            let draft = Draft {
                kind: RecordKind::Indexer,
                name: self.settings.name.clone(),
                addrs,
                location: self.settings.location,
                indexer: Some(IndexerInfo {
                    capacity: self.settings.indexer_capacity,
                    peers,
                    born_at_ms: self.born_at_ms,
                }),
                ttl_ms: self.settings.record_ttl.as_millis() as u64,
            };
            let value = draft.sign(&self.identity, now);
            self.put(record::indexer_key(self.swarm.local_peer_id()), value, reply.take());
            // Re-announce the provider record too: the first announcement may have had no
            // peer to go to, and Kademlia's own provider republish is hours apart.
            let _ = self.swarm.behaviour_mut().kad.start_providing(registry::provider_key());
        }
    }

    pub(super) fn put(&mut self, key: String, value: Vec<u8>, reply: Option<Reply<()>>) {
        let rec = kad::Record::new(kad::RecordKey::new(&key), value);
        match self.swarm.behaviour_mut().kad.put_record(rec, kad::Quorum::One) {
            Ok(id) => {
                if let Some(r) = reply {
                    self.pending_publish.insert(id, r);
                }
            }
            Err(e) => {
                tracing::warn!(%key, error = ?e, "own record refused by the local store");
                if let Some(r) = reply {
                    let _ = r.send(Err(Error::Publish(format!("{e:?}"))));
                }
            }
        }
    }

    fn leave(&mut self, reply: Reply<()>) {
        let now = now_ms();
        let tomb = Draft::tombstone(&self.identity, &self.settings.name, now);
        let mut reply = Some(reply);
        if self.settings.role.is_node() {
            self.put(record::node_key(&self.identity.did()), tomb.clone(), reply.take());
            if !self.settings.name.is_empty() {
                self.put(record::name_key(&self.settings.name), tomb.clone(), None);
            }
        }
        if self.settings.role.is_indexer() {
            self.swarm.behaviour_mut().kad.stop_providing(&registry::provider_key());
            self.put(record::indexer_key(self.swarm.local_peer_id()), tomb, reply.take());
        }
        self.left = true;
        tracing::info!("left the network (tombstones published)");
    }

    /// Nodes below `max_indexers` look for indexers; indexers refresh their list of other
    /// indexers (offered as suggestions and candidates).
    fn maybe_discover(&mut self) {
        if self.left {
            return;
        }
        let short = self
            .membership
            .pool
            .as_ref()
            .is_some_and(|p| p.indexers().len() < self.settings.max_indexers);
        if short || self.settings.role.is_indexer() {
            self.discover(None);
        }
    }

    pub(super) fn discover(&mut self, reply: Option<Reply<Vec<Candidate>>>) {
        if let Some((_, d)) = self.discovery.as_mut() {
            d.replies.extend(reply);
            return;
        }
        let id = self.swarm.behaviour_mut().kad.get_providers(registry::provider_key());
        let mut d = Discovery::default();
        d.replies.extend(reply);
        self.discovery = Some((id, d));
    }

    /// Ends discovery: answers callers and hands the candidates to the membership plane.
    pub(super) fn finish_discovery(&mut self) {
        let Some((_, d)) = self.discovery.take() else { return };
        for r in d.replies {
            let _ = r.send(Ok(d.found.clone()));
        }
        for c in &d.found {
            for a in &c.addrs {
                self.swarm.add_peer_address(c.peer_id, a.clone());
            }
        }
        self.on_registry_candidates(&d.found);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossip(e),
            SwarmEvent::Behaviour(BehaviourEvent::Search(e)) => self.on_search_rr(e),
            SwarmEvent::Behaviour(BehaviourEvent::Heartbeat(e)) => self.on_heartbeat_rr(e),
            SwarmEvent::Behaviour(BehaviourEvent::Witness(e)) => self.on_witness_rr(e),
            SwarmEvent::Behaviour(BehaviourEvent::Probe(e)) => self.on_probe_rr(e),
            SwarmEvent::Behaviour(BehaviourEvent::Indirect(e)) => self.on_indirect_rr(e),
            SwarmEvent::Behaviour(BehaviourEvent::Candidates(e)) => self.on_candidates_rr(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                self.membership.on_identified(peer_id, &info.listen_addrs);
                if info.protocols.contains(&KAD_PROTOCOL) {
                    for addr in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                let dialed = endpoint.is_dialer().then(|| endpoint.get_remote_address());
                self.membership.on_connected(peer_id, dialed);
                for r in self.pending_dial.remove(&peer_id).unwrap_or_default() {
                    let _ = r.send(Ok(()));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                self.membership.on_disconnected(&peer_id);
            }
            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                tracing::debug!(%peer, %error, "dial failed");
                for r in self.pending_dial.remove(&peer).unwrap_or_default() {
                    let _ = r.send(Err(Error::Dial(error.to_string())));
                }
            }
            SwarmEvent::IncomingConnectionError { error, send_back_addr, .. } => {
                tracing::debug!(%send_back_addr, %error, "inbound connection refused");
            }
            _ => {}
        }
    }

    fn expire_searches(&mut self) {
        let now = Instant::now();
        let topic = self.search_topic.clone();
        let mut done = Vec::new();
        for (id, s) in self.searches.iter_mut() {
            if now >= s.deadline || s.tx.is_closed() {
                done.push(*id);
            } else if let Some(q) = s.unsent.take() {
                if self.swarm.behaviour_mut().gossipsub.publish(topic.clone(), q.clone()).is_err() {
                    s.unsent = Some(q);
                }
            }
        }
        for id in done {
            self.searches.remove(&id);
            self.search_lookups.retain(|_, q| *q != id);
            tracing::debug!(query_id = id, "search ended (idle)");
        }
    }
}
