//! Membership glue for [`EventLoop`]: drives the membership state machines (`membership::node::Pool`
//! on nodes, `membership::indexer::Registry` on indexers) from swarm events and performs the
//! actions they return. No membership decision is taken here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use libp2p::{
    kad,
    multiaddr::Protocol,
    request_response::{self, OutboundRequestId, ResponseChannel},
    Multiaddr, PeerId,
};

use super::event_loop::{EventLoop, Settings};
use super::gater::{Action as GateAction, Verdict};
use crate::config::Role;
use crate::discovery::{now_ms, record, registry::Candidate};
use crate::keys::NodeIdentity;
use crate::membership::{
    heartbeat::{DhtAnswer, HeartbeatResponse, SignedHeartbeat, Signer},
    indexer,
    node::{self, Action, CandidatesRequest, CandidatesResponse},
    probe::{self, IndirectRequest, IndirectResponse, Measurement, Payload},
    select,
    witness::{WitnessReport, WitnessRequest},
    PeerInfo, Timestamp,
};

/// An outstanding probe.
pub(super) enum ProbeOut {
    /// Indexer → node bandwidth probe.
    Bandwidth { node: PeerId, sent: Instant, payload: Vec<u8> },
    /// Voter → target probe on behalf of a node's indirect-probe request.
    Indirect { channel: ResponseChannel<IndirectResponse>, sent: Instant },
}

/// What the node pool did, for observers (`Client::membership_events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipEvent {
    /// An indexer entered the pool.
    Joined(PeerId),
    /// A pool member became suspected (SWIM).
    Suspected(PeerId),
    /// A suspicion was cleared (refuted) while the indexer stayed in the pool.
    Cleared(PeerId),
    /// An indexer left the pool (dead, low score, migration).
    Evicted { peer: PeerId, reason: String },
}

/// Answers collected for one witness query: (witness, report or failure).
type WitnessAnswers = Vec<(PeerId, Option<WitnessReport>)>;

/// Membership state owned by the event loop.
#[derive(Default)]
pub(super) struct Membership {
    /// Last published view of the pool: member → suspected.
    view: HashMap<PeerId, bool>,
    pub(super) pool: Option<node::Pool>,
    pub(super) registry: Option<indexer::Registry>,
    hb_out: HashMap<OutboundRequestId, (PeerId, Instant)>,
    witness_out: HashMap<OutboundRequestId, (PeerId, PeerId)>,
    witness_pending: HashMap<PeerId, (usize, WitnessAnswers)>,
    indirect_out: HashMap<OutboundRequestId, (PeerId, PeerId)>,
    candidates_out: HashMap<OutboundRequestId, PeerId>,
    probe_out: HashMap<OutboundRequestId, ProbeOut>,
    /// Listen addresses each connected peer announced (identify), without `/p2p/`.
    pub(super) listen_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    /// The address we dialled, for peers we connected to ourselves (a listen address too).
    pub(super) dialed_addrs: HashMap<PeerId, Multiaddr>,
}

/// Most listen addresses remembered per peer (the record limit, `record::MAX_ADDRS`).
const MAX_LISTEN_ADDRS: usize = record::MAX_ADDRS;

/// Where a peer can be reached, for witnesses: the listen addresses it announced through
/// identify, else the address we dialled it at, else nothing (the remote address of an
/// inbound connection is the dialler's ephemeral port, useless to anyone else).
fn reachable_addrs(identified: Option<&[Multiaddr]>, dialed: Option<&Multiaddr>) -> Vec<Multiaddr> {
    match identified {
        Some(a) if !a.is_empty() => a.to_vec(),
        _ => dialed.cloned().into_iter().collect(),
    }
}

/// `addr` without a trailing `/p2p/<peer id>`.
fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter().filter(|p| !matches!(p, Protocol::P2p(_))).collect()
}

impl Membership {
    /// Membership state around a node pool (`None` on pure indexers).
    pub(super) fn with_pool(pool: Option<node::Pool>) -> Self {
        Self { pool, ..Self::default() }
    }

    /// Identify told us `peer`'s listen addresses.
    pub(super) fn on_identified(&mut self, peer: PeerId, listen: &[Multiaddr]) {
        let mut addrs: Vec<Multiaddr> = Vec::new();
        for a in listen.iter().map(without_p2p) {
            if addrs.len() < MAX_LISTEN_ADDRS && !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        self.listen_addrs.insert(peer, addrs);
    }

    /// A connection to `peer` was established; `dialed` is the address when we dialled.
    pub(super) fn on_connected(&mut self, peer: PeerId, dialed: Option<&Multiaddr>) {
        if let Some(a) = dialed {
            self.dialed_addrs.insert(peer, without_p2p(a));
        }
    }

    /// The last connection to `peer` closed.
    pub(super) fn on_disconnected(&mut self, peer: &PeerId) {
        self.listen_addrs.remove(peer);
        self.dialed_addrs.remove(peer);
    }

    fn reachable(&self, peer: &PeerId) -> Vec<Multiaddr> {
        reachable_addrs(self.listen_addrs.get(peer).map(Vec::as_slice), self.dialed_addrs.get(peer))
    }
}

fn now() -> Timestamp {
    Timestamp::from_millis(now_ms())
}

/// The DHT-challenge check wired into the node pool: the indexer's payload must be a live,
/// validly signed peer record of the challenged DID (`record::validate_as_node` at `now`). A
/// tombstone, an expired record, another DID's record or a record claiming our DID under
/// another key all fail (Go only looked at `found`, B19).
pub(super) fn dht_answer_is_valid(did: &str, payload: &[u8], now: Timestamp) -> bool {
    record::validate_as_node(payload, now.as_millis())
        .is_ok_and(|v| v.body.did == did && v.body.kind == record::RecordKind::Peer)
}

/// The node pool of this process, if it keeps one: nodes do; a "strict" indexer (pure indexer
/// role) with seeds also heartbeats other indexers, with twice the pool size (Go `InitNode`,
/// ops §1.3). Seeds come from `settings.seeds`; DHT challenges are checked with
/// [`dht_answer_is_valid`].
pub(super) fn node_pool(settings: &Settings, identity: &NodeIdentity, born_at: Timestamp) -> Option<node::Pool> {
    let strict_indexer = settings.role == Role::Indexer && !settings.seeds.is_empty();
    if !settings.role.is_node() && !strict_indexer {
        return None;
    }
    let max = if strict_indexer { settings.max_indexers * 2 } else { settings.max_indexers };
    let seeds = settings
        .seeds
        .iter()
        .filter_map(|a| match a.iter().last() {
            Some(Protocol::P2p(peer)) => Some(PeerInfo::new(peer, vec![without_p2p(a)])),
            _ => None,
        })
        .collect();
    let cfg = settings.pool.clone().with_seeds(seeds).with_pool_size(settings.min_indexers, max);
    let signer = Signer::from_libp2p(identity.ed25519());
    let mut pool = node::Pool::new(cfg, signer, born_at).with_dht_verifier(Arc::new(dht_answer_is_valid));
    pool.set_did(identity.did());
    if !settings.name.is_empty() {
        pool.set_name(settings.name.clone());
    }
    Some(pool)
}

impl EventLoop {
    /// Every second: due heartbeats, SWIM timers, replacement deadlines.
    pub(super) fn membership_tick(&mut self) {
        let acts = match self.membership.pool.as_mut() {
            Some(p) => p.on_tick(now()),
            None => return,
        };
        self.perform(acts);
    }

    /// Every ~30 s on indexers: expire silent sessions.
    pub(super) fn registry_gc(&mut self) {
        if let Some(r) = self.membership.registry.as_mut() {
            for peer in r.on_tick(now()) {
                tracing::debug!(%peer, "heartbeat session expired");
            }
        }
    }

    /// Publishes pool changes since the last call as [`MembershipEvent`]s.
    fn publish_view(&mut self, evicted: &[(PeerId, String)]) {
        let Some(p) = self.membership.pool.as_ref() else { return };
        let now_view: HashMap<PeerId, bool> = p.indexers().into_iter().map(|i| (i, p.is_suspected(&i))).collect();
        let old = std::mem::take(&mut self.membership.view);
        let mut events = Vec::new();
        for (peer, reason) in evicted {
            if old.contains_key(peer) && !now_view.contains_key(peer) {
                events.push(MembershipEvent::Evicted { peer: *peer, reason: reason.clone() });
            }
        }
        for (peer, was) in &old {
            match now_view.get(peer) {
                Some(now_s) if *now_s && !*was => events.push(MembershipEvent::Suspected(*peer)),
                Some(now_s) if !*now_s && *was => events.push(MembershipEvent::Cleared(*peer)),
                None if !evicted.iter().any(|(e, _)| e == peer) => events.push(MembershipEvent::Evicted {
                    peer: *peer,
                    reason: "removed".into(),
                }),
                _ => {}
            }
        }
        for (peer, s) in &now_view {
            if !old.contains_key(peer) {
                events.push(MembershipEvent::Joined(*peer));
                if *s {
                    events.push(MembershipEvent::Suspected(*peer));
                }
            }
        }
        self.membership.view = now_view;
        for e in events {
            tracing::info!(event = ?e, "membership");
            let _ = self.membership_events.send(e);
        }
    }

    /// Performs the node pool's actions.
    pub(super) fn perform(&mut self, actions: Vec<Action>) {
        let mut evicted = Vec::new();
        self.perform_inner(actions, &mut evicted);
        self.publish_view(&evicted);
    }

    fn perform_inner(&mut self, actions: Vec<Action>, evicted: &mut Vec<(PeerId, String)>) {
        for a in actions {
            match a {
                Action::SendHeartbeat { peer, addrs, request } => {
                    for addr in addrs {
                        self.swarm.add_peer_address(peer, addr);
                    }
                    let id = self.swarm.behaviour_mut().heartbeat.send_request(&peer, request);
                    self.membership.hb_out.insert(id, (peer, Instant::now()));
                }
                Action::Evict { peer, reason } => {
                    tracing::info!(%peer, ?reason, "indexer evicted from the pool");
                    evicted.push((peer, format!("{reason:?}")));
                }
                Action::QueryWitnesses { indexer, witnesses } => {
                    if witnesses.is_empty() {
                        if let Some(p) = self.membership.pool.as_mut() {
                            p.on_witness_answers(now(), indexer, &[]);
                        }
                        continue;
                    }
                    self.membership.witness_pending.insert(indexer, (witnesses.len(), Vec::new()));
                    for w in witnesses {
                        for addr in w.addrs {
                            self.swarm.add_peer_address(w.peer, addr);
                        }
                        let id = self.swarm.behaviour_mut().witness.send_request(&w.peer, WitnessRequest { indexer });
                        self.membership.witness_out.insert(id, (indexer, w.peer));
                    }
                }
                Action::IndirectProbe { target, voters } => {
                    for v in voters {
                        let req = IndirectRequest { target: target.clone() };
                        let id = self.swarm.behaviour_mut().indirect.send_request(&v, req);
                        self.membership.indirect_out.insert(id, (target.peer, v));
                    }
                }
                Action::RequestCandidates { from, count } => {
                    for f in from {
                        let id = self.swarm.behaviour_mut().candidates.send_request(&f, CandidatesRequest { count });
                        self.membership.candidates_out.insert(id, f);
                    }
                }
                Action::DiscoverIndexers { .. } => self.discover(None),
                Action::PendingCallers { via, callers } => {
                    tracing::info!(%via, callers = callers.len(), "peers are waiting to reach us (DTN wake-up not wired yet)");
                }
            }
        }
    }

    /// Hands DHT registry results to the pool (nodes) and to the registry (indexers).
    pub(super) fn on_registry_candidates(&mut self, found: &[Candidate]) {
        let me = *self.swarm.local_peer_id();
        let infos: Vec<PeerInfo> = found
            .iter()
            .filter(|c| c.peer_id != me)
            .map(|c| PeerInfo::new(c.peer_id, c.addrs.clone()))
            .collect();
        if let Some(r) = self.membership.registry.as_mut() {
            r.set_known_indexers(infos.clone());
        }
        if let Some(p) = self.membership.pool.as_mut() {
            let cands = found
                .iter()
                .filter(|c| c.peer_id != me)
                .map(|c| select::Candidate {
                    info: PeerInfo::new(c.peer_id, c.addrs.clone()),
                    fill_rate: Some(c.info.fill_rate()),
                })
                .collect();
            for peer in p.on_discovered(now(), cands) {
                tracing::info!(%peer, "indexer added to the pool from the DHT registry");
            }
            let acts = p.nudge(now());
            self.perform(acts);
        }
    }

    pub(super) fn on_heartbeat_rr(&mut self, event: request_response::Event<SignedHeartbeat, HeartbeatResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                self.on_inbound_heartbeat(peer, request, channel)
            }
            Event::Message { peer, message: Message::Response { request_id, response }, .. } => {
                let Some((_, sent)) = self.membership.hb_out.remove(&request_id) else { return };
                let acts = match self.membership.pool.as_mut() {
                    Some(p) => p.on_response(now(), peer, &response, sent.elapsed()),
                    None => return,
                };
                self.perform(acts);
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                if self.membership.hb_out.remove(&request_id).is_none() {
                    return;
                }
                tracing::debug!(%peer, %error, "heartbeat failed");
                let acts = match self.membership.pool.as_mut() {
                    Some(p) => p.on_failure(now(), peer),
                    None => return,
                };
                self.perform(acts);
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound heartbeat failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    /// Indexer side: rate limit, admission (membership), record republish, DHT challenge,
    /// bandwidth probe, response.
    fn on_inbound_heartbeat(&mut self, peer: PeerId, req: SignedHeartbeat, channel: ResponseChannel<HeartbeatResponse>) {
        if self.membership.registry.is_none() {
            return; // not an indexer: dropping the channel fails the sender's request
        }
        if self.swarm.behaviour_mut().gater.record(&peer, GateAction::Heartbeat) != Verdict::Allow {
            tracing::info!(%peer, "heartbeat refused by rate limit");
            return;
        }
        let addrs = self.membership.reachable(&peer);
        let Some(registry) = self.membership.registry.as_mut() else { return };
        let mut acc = match registry.on_heartbeat(now(), peer, &addrs, &req) {
            Ok(acc) => acc,
            Err(indexer::Reject::Heartbeat(e)) => {
                tracing::warn!(%peer, error = %e, "invalid heartbeat");
                self.swarm.behaviour_mut().gater.strike(&peer, 2);
                return;
            }
            Err(e) => {
                tracing::info!(%peer, error = %e, "heartbeat not admitted");
                return;
            }
        };
        if let Some(bytes) = acc.record.take() {
            self.republish_node_record(peer, bytes);
        }
        if let Some(did) = acc.dht_challenge.take() {
            let store = self.swarm.behaviour_mut().kad.store_mut();
            let hit = store.get_valid(&record::node_key(&did)).filter(|v| !v.is_tombstone());
            acc.response.dht = Some(DhtAnswer {
                found: hit.is_some(),
                payload: hit.map(|v| v.bytes).unwrap_or_default(),
            });
        }
        if acc.probe {
            let payload = Payload::random(&mut rand::thread_rng());
            let bytes = payload.0.clone();
            let id = self.swarm.behaviour_mut().probe.send_request(&peer, payload);
            self.membership.probe_out.insert(id, ProbeOut::Bandwidth { node: peer, sent: Instant::now(), payload: bytes });
        }
        let _ = self.swarm.behaviour_mut().heartbeat.send_response(channel, acc.response);
    }

    /// A node's record embedded in its heartbeat: must be its own (IX-9), valid, then stored
    /// locally and put into the DHT.
    fn republish_node_record(&mut self, peer: PeerId, bytes: Vec<u8>) {
        match record::validate_as_node(&bytes, now_ms()) {
            Ok(v) if v.peer_id == peer => {
                let key = record::node_key(&v.body.did);
                let rec = kad::Record::new(kad::RecordKey::new(&key), bytes);
                if let Err(e) = self.swarm.behaviour_mut().kad.put_record(rec, kad::Quorum::One) {
                    tracing::debug!(%peer, error = ?e, "heartbeat record not republished");
                }
            }
            Ok(_) => {
                tracing::warn!(%peer, "heartbeat carried another peer's record");
                self.swarm.behaviour_mut().gater.strike(&peer, 2);
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "heartbeat carried an invalid record");
                self.swarm.behaviour_mut().gater.strike(&peer, 2);
            }
        }
    }

    pub(super) fn on_witness_rr(&mut self, event: request_response::Event<WitnessRequest, WitnessReport>) {
        use request_response::{Event, Message};
        let answer = match event {
            Event::Message { message: Message::Request { request, channel, .. }, .. } => {
                let report = self
                    .membership
                    .pool
                    .as_ref()
                    .map(|p| p.witness_report(&request.indexer))
                    .unwrap_or_default();
                let _ = self.swarm.behaviour_mut().witness.send_response(channel, report);
                return;
            }
            Event::Message { message: Message::Response { request_id, response }, .. } => (request_id, Some(response)),
            Event::OutboundFailure { request_id, .. } => (request_id, None),
            _ => return,
        };
        let Some((indexer, witness)) = self.membership.witness_out.remove(&answer.0) else { return };
        let Some((left, answers)) = self.membership.witness_pending.get_mut(&indexer) else { return };
        answers.push((witness, answer.1));
        *left -= 1;
        if *left == 0 {
            if let Some((_, answers)) = self.membership.witness_pending.remove(&indexer) {
                if let Some(p) = self.membership.pool.as_mut() {
                    p.on_witness_answers(now(), indexer, &answers);
                }
                self.publish_view(&[]);
            }
        }
    }

    pub(super) fn on_probe_rr(&mut self, event: request_response::Event<Payload, Payload>) {
        use request_response::{Event, Message};
        let (id, echo) = match event {
            Event::Message { message: Message::Request { request, channel, .. }, .. } => {
                let _ = self.swarm.behaviour_mut().probe.send_response(channel, request);
                return;
            }
            Event::Message { message: Message::Response { request_id, response }, .. } => (request_id, Some(response)),
            Event::OutboundFailure { request_id, .. } => (request_id, None),
            _ => return,
        };
        match self.membership.probe_out.remove(&id) {
            Some(ProbeOut::Bandwidth { node, sent, payload }) => {
                let m = match echo {
                    Some(e) => Measurement::evaluate(payload.len(), sent.elapsed(), e.0 == payload),
                    None => Measurement::FAILED,
                };
                if let Some(r) = self.membership.registry.as_mut() {
                    r.on_probe(&node, m);
                }
            }
            Some(ProbeOut::Indirect { channel, sent }) => {
                let ok = echo.is_some_and(|e| e.0 == probe::PING);
                let resp = IndirectResponse {
                    reachable: ok,
                    latency_ms: if ok { sent.elapsed().as_millis().min(u32::MAX as u128) as u32 } else { 0 },
                };
                let _ = self.swarm.behaviour_mut().indirect.send_response(channel, resp);
            }
            None => {}
        }
    }

    pub(super) fn on_indirect_rr(&mut self, event: request_response::Event<IndirectRequest, IndirectResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                // Only for nodes that heartbeat here (IX-13: no dial amplification for strangers).
                let allowed = self.membership.registry.as_ref().is_some_and(|r| r.has_session(&peer));
                if !allowed || self.swarm.behaviour_mut().gater.record(&peer, GateAction::Get) != Verdict::Allow {
                    tracing::debug!(%peer, "indirect probe refused");
                    return;
                }
                let target = request.target;
                for addr in target.addrs {
                    self.swarm.add_peer_address(target.peer, addr);
                }
                let id = self.swarm.behaviour_mut().probe.send_request(&target.peer, Payload(probe::PING.to_vec()));
                self.membership.probe_out.insert(id, ProbeOut::Indirect { channel, sent: Instant::now() });
            }
            Event::Message { message: Message::Response { request_id, response }, .. } => {
                self.indirect_answer(request_id, response.reachable)
            }
            Event::OutboundFailure { request_id, .. } => self.indirect_answer(request_id, false),
            _ => {}
        }
    }

    fn indirect_answer(&mut self, id: OutboundRequestId, reachable: bool) {
        let Some((target, voter)) = self.membership.indirect_out.remove(&id) else { return };
        let acts = match self.membership.pool.as_mut() {
            Some(p) => p.on_indirect_probe_answer(now(), target, voter, reachable),
            None => return,
        };
        self.perform(acts);
    }

    pub(super) fn on_candidates_rr(&mut self, event: request_response::Event<CandidatesRequest, CandidatesResponse>) {
        use request_response::{Event, Message};
        let (id, list) = match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                let known = self.membership.registry.as_ref().map(|r| r.known_indexers().to_vec()).unwrap_or_default();
                let resp = node::answer_candidates(&mut rand::thread_rng(), &known, &peer, request);
                let _ = self.swarm.behaviour_mut().candidates.send_response(channel, resp);
                return;
            }
            Event::Message { message: Message::Response { request_id, response }, .. } => (request_id, response.candidates),
            Event::OutboundFailure { request_id, .. } => (request_id, Vec::new()),
            _ => return,
        };
        let Some(from) = self.membership.candidates_out.remove(&id) else { return };
        let acts = match self.membership.pool.as_mut() {
            Some(p) => p.on_candidates(now(), from, list),
            None => return,
        };
        self.perform(acts);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::discovery::record::{sign_body, Draft, RecordBody, RecordKind};
    use crate::membership::heartbeat::HeartbeatResponse;

    fn draft(ttl_ms: u64) -> Draft {
        Draft {
            kind: RecordKind::Peer,
            name: "n".into(),
            addrs: vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap()],
            location: None,
            indexer: None,
            ttl_ms,
        }
    }

    /// Settings of a node whose first heartbeat to `seed` carries a DHT challenge.
    fn settings(seed: PeerId) -> Settings {
        Settings {
            role: Role::Node,
            name: "n".into(),
            record_ttl: Duration::from_secs(120),
            republish_interval: Duration::from_secs(40),
            search_min_name_len: 3,
            search_max_hits: 20,
            min_indexers: 1,
            max_indexers: 5,
            indexer_capacity: 500,
            discovery_interval: Duration::from_secs(60),
            location: None,
            seeds: vec![format!("/ip4/10.0.0.9/tcp/4001/p2p/{seed}").parse().unwrap()],
            publish: true,
            pool: node::Config::new()
                .with_rng_seed(3)
                .with_challenge_max_interval(1)
                .with_dht_challenge_every(1),
            registry: indexer::Config::new(),
        }
    }

    /// Heartbeats the seed of a pool built like the event loop's, answering each DHT challenge
    /// with one payload; returns (checked, succeeded).
    fn challenge(me: &NodeIdentity, payloads: &[Vec<u8>], now_ms: u64) -> (u32, u32) {
        let seed = PeerId::random();
        let mut pool = node_pool(&settings(seed), me, Timestamp::from_millis(now_ms)).expect("nodes keep a pool");
        for (i, payload) in payloads.iter().enumerate() {
            let t = Timestamp::from_millis(now_ms + i as u64 * 20_000);
            let sent = pool.on_tick(t).into_iter().find_map(|a| match a {
                Action::SendHeartbeat { peer, request, .. } if peer == seed => Some(request),
                _ => None,
            });
            let hb = sent.expect("seed heartbeated");
            assert_eq!(hb.heartbeat().challenge_did.as_deref(), Some(me.did().as_str()));
            let resp = HeartbeatResponse {
                dht: Some(DhtAnswer { found: true, payload: payload.clone() }),
                ..HeartbeatResponse::default()
            };
            pool.on_response(t, seed, &resp, Duration::from_millis(5));
        }
        let s = pool.score(&seed).expect("seed stays");
        (s.dht_checked, s.dht_success)
    }

    #[test]
    fn forged_dht_challenge_payloads_fail_and_the_genuine_record_passes() {
        let now = now_ms();
        let me = NodeIdentity::generate();
        let other = NodeIdentity::generate();
        // Each payload is answered `found`: only the verifier can tell them apart.
        let garbage = b"not a record".to_vec();
        let someone_elses = draft(120_000).sign(&other, now);
        let claiming_my_did = {
            // A body naming my DID, signed with another key.
            let genuine = draft(120_000).sign(&me, now);
            let v = record::validate_as_node(&genuine, now).unwrap();
            let mut body: RecordBody = v.body.clone();
            body.public_key = other.public().encode_protobuf();
            sign_body(&other, &body)
        };
        let my_expired = draft(1_000).sign(&me, now - 60_000);
        let my_tombstone = Draft::tombstone(&me, "n", now);
        let forged = [garbage, someone_elses, claiming_my_did, my_expired, my_tombstone];
        for (i, p) in forged.iter().enumerate() {
            assert_eq!(challenge(&me, std::slice::from_ref(p), now), (1, 0), "forged payload #{i} passed");
        }
        let genuine = draft(120_000).sign(&me, now);
        assert_eq!(challenge(&me, std::slice::from_ref(&genuine), now), (1, 1));
        // Validity is judged at the response time: the same record, once expired, fails.
        assert_eq!(challenge(&me, &[genuine.clone(), genuine], now + 100_000), (2, 1));
    }

    #[test]
    fn witness_addresses_are_the_identified_listen_addresses() {
        let peer = PeerId::random();
        let listen: Vec<Multiaddr> = vec![
            "/ip4/10.0.0.1/tcp/4001".parse().unwrap(),
            format!("/ip4/10.0.0.2/tcp/4001/p2p/{peer}").parse().unwrap(),
            "/ip4/10.0.0.1/tcp/4001".parse().unwrap(),
        ];
        let dialed: Multiaddr = format!("/ip4/10.0.0.3/tcp/4001/p2p/{peer}").parse().unwrap();
        let mut m = Membership::default();
        // Inbound connection, identify not in yet: nothing (never the ephemeral remote port).
        m.on_connected(peer, None);
        assert!(m.reachable(&peer).is_empty());
        // Identify: its listen addresses, `/p2p/` stripped, deduplicated.
        m.on_identified(peer, &listen);
        let want: Vec<Multiaddr> = vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap(), "/ip4/10.0.0.2/tcp/4001".parse().unwrap()];
        assert_eq!(m.reachable(&peer), want);
        // A peer we dialled is reachable where we reached it until identify says more.
        let other = PeerId::random();
        m.on_connected(other, Some(&dialed));
        assert_eq!(m.reachable(&other), vec!["/ip4/10.0.0.3/tcp/4001".parse::<Multiaddr>().unwrap()]);
        m.on_identified(other, &listen[..1]);
        assert_eq!(m.reachable(&other), want[..1].to_vec());
        m.on_disconnected(&peer);
        assert!(m.reachable(&peer).is_empty());
    }

    #[test]
    fn dht_answer_check_binds_the_challenged_did() {
        let now = now_ms();
        let (me, other) = (NodeIdentity::generate(), NodeIdentity::generate());
        let mine = draft(120_000).sign(&me, now);
        assert!(dht_answer_is_valid(&me.did(), &mine, Timestamp::from_millis(now)));
        assert!(!dht_answer_is_valid(&other.did(), &mine, Timestamp::from_millis(now)));
        assert!(!dht_answer_is_valid(&me.did(), &[], Timestamp::from_millis(now)));
    }
}
