//! Node side of the membership glue: performs the pool's actions and reports the outcomes of
//! its requests (heartbeats out, witness questions, indirect probes, candidate requests).
//! Witness and candidate *answers* (both roles serve them) are here too.

use libp2p::request_response::{Event, Message};
use tokio::time::Instant;

use super::{Membership, Want};
use crate::membership::heartbeat::{HeartbeatResponse, SignedHeartbeat};
use crate::membership::node::{self, Action, CandidatesRequest, CandidatesResponse};
use crate::membership::probe::{IndirectRequest, IndirectResponse};
use crate::membership::witness::{WitnessReport, WitnessRequest};
use crate::net::behaviour::Swarm;
use crate::net::gater;
use crate::time::Timestamp;

impl Membership {
    /// Every second: due heartbeats, SWIM timers, replacement deadlines.
    pub(in crate::net) fn on_tick(&mut self, swarm: &mut Swarm, now: Timestamp) -> Vec<Want> {
        let acts = match self.pool.as_mut() {
            Some(p) => p.on_tick(now),
            None => Vec::new(),
        };
        if let Some(r) = self.registry.as_mut() {
            for peer in r.on_tick(now) {
                tracing::debug!(%peer, "heartbeat session expired");
            }
        }
        self.perform(swarm, acts)
    }

    /// Performs the pool's actions, then publishes its changes.
    pub(super) fn perform(&mut self, swarm: &mut Swarm, actions: Vec<Action>) -> Vec<Want> {
        let mut wants = Vec::new();
        for a in actions {
            match a {
                Action::SendHeartbeat {
                    peer,
                    addrs,
                    request,
                } => {
                    for addr in addrs {
                        swarm.add_peer_address(peer, addr);
                    }
                    let id = swarm.behaviour_mut().heartbeat.send_request(&peer, request);
                    self.out.heartbeats.insert(id, (peer, Instant::now()));
                }
                Action::Evict { peer, reason } => {
                    tracing::info!(%peer, ?reason, "indexer evicted from the pool");
                }
                Action::QueryWitnesses {
                    indexer,
                    query,
                    witnesses,
                } => {
                    for w in witnesses {
                        for addr in w.addrs {
                            swarm.add_peer_address(w.peer, addr);
                        }
                        let id = swarm
                            .behaviour_mut()
                            .witness
                            .send_request(&w.peer, WitnessRequest { indexer });
                        self.out.witness.insert(id, (indexer, query, w.peer));
                    }
                }
                Action::IndirectProbe { target, voters } => {
                    for v in voters {
                        let req = IndirectRequest {
                            target: target.clone(),
                        };
                        let id = swarm.behaviour_mut().indirect.send_request(&v, req);
                        self.out.indirect.insert(id, (target.peer, v));
                    }
                }
                Action::RequestCandidates { from, count } => {
                    for f in from {
                        let id = swarm
                            .behaviour_mut()
                            .candidates
                            .send_request(&f, CandidatesRequest { count });
                        self.out.candidates.insert(id, f);
                    }
                }
                Action::DiscoverIndexers { .. } => wants.push(Want::DiscoverIndexers),
                Action::SubmitOffline { peer, batches } => {
                    tracing::info!(%peer, batches = batches.len(), "submitting offline heartbeats");
                    for b in batches {
                        swarm.behaviour_mut().offline.send_request(&peer, b);
                    }
                }
                Action::PendingCallers { via, callers } => {
                    tracing::info!(%via, callers = callers.len(), "peers are waiting to reach us");
                    wants.push(Want::Wake(callers));
                }
            }
        }
        self.publish_events();
        wants
    }

    pub(in crate::net) fn on_heartbeat_event(
        &mut self,
        swarm: &mut Swarm,
        now: Timestamp,
        event: Event<SignedHeartbeat, HeartbeatResponse>,
    ) -> Vec<Want> {
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_inbound_heartbeat(swarm, now, peer, request, channel),
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some((_, sent)) = self.out.heartbeats.remove(&request_id) else {
                    return Vec::new();
                };
                // Round-trip time is physical: measured on the real clock, whatever the
                // protocol clock's speed.
                let acts = match self.pool.as_mut() {
                    Some(p) => p.on_response(now, peer, &response, sent.elapsed()),
                    None => return Vec::new(),
                };
                self.perform(swarm, acts)
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if self.out.heartbeats.remove(&request_id).is_none() {
                    return Vec::new();
                }
                tracing::debug!(%peer, %error, "heartbeat failed");
                let acts = match self.pool.as_mut() {
                    Some(p) => p.on_failure(now, peer),
                    None => return Vec::new(),
                };
                self.perform(swarm, acts)
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound heartbeat failed");
                Vec::new()
            }
            Event::ResponseSent { .. } => Vec::new(),
        }
    }

    pub(in crate::net) fn on_witness_event(
        &mut self,
        swarm: &mut Swarm,
        now: Timestamp,
        event: Event<WitnessRequest, WitnessReport>,
    ) {
        let (id, report) = match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                if !swarm
                    .behaviour_mut()
                    .gater
                    .allow(&peer, gater::Action::Request)
                {
                    return;
                }
                let report = self
                    .pool
                    .as_ref()
                    .map(|p| p.witness_report(&request.indexer))
                    .unwrap_or_default();
                let _ = swarm.behaviour_mut().witness.send_response(channel, report);
                return;
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => (request_id, Some(response)),
            Event::OutboundFailure { request_id, .. } => (request_id, None),
            _ => return,
        };
        let Some((indexer, query, witness)) = self.out.witness.remove(&id) else {
            return;
        };
        if let Some(p) = self.pool.as_mut() {
            p.on_witness_answer(now, indexer, query, witness, report);
        }
        self.publish_events();
    }

    /// Answers of the voters we asked to probe a suspected indexer (outbound side); the
    /// requests we serve are `indexer.rs`'s.
    pub(in crate::net) fn on_indirect_event(
        &mut self,
        swarm: &mut Swarm,
        now: Timestamp,
        event: Event<IndirectRequest, IndirectResponse>,
    ) -> Vec<Want> {
        let (id, reachable) = match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                self.serve_indirect(swarm, peer, request, channel);
                return Vec::new();
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => (request_id, response.reachable),
            Event::OutboundFailure { request_id, .. } => (request_id, false),
            _ => return Vec::new(),
        };
        let Some((target, voter)) = self.out.indirect.remove(&id) else {
            return Vec::new();
        };
        let acts = match self.pool.as_mut() {
            Some(p) => p.on_indirect_probe_answer(now, target, voter, reachable),
            None => return Vec::new(),
        };
        self.perform(swarm, acts)
    }

    pub(in crate::net) fn on_candidates_event(
        &mut self,
        swarm: &mut Swarm,
        now: Timestamp,
        event: Event<CandidatesRequest, CandidatesResponse>,
    ) -> Vec<Want> {
        let (id, list) = match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                if !swarm
                    .behaviour_mut()
                    .gater
                    .allow(&peer, gater::Action::Request)
                {
                    return Vec::new();
                }
                let known = self
                    .registry
                    .as_ref()
                    .map(|r| r.known_indexers().to_vec())
                    .unwrap_or_default();
                let resp = node::answer_candidates(&mut rand::thread_rng(), &known, &peer, request);
                let _ = swarm
                    .behaviour_mut()
                    .candidates
                    .send_response(channel, resp);
                return Vec::new();
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => (request_id, response.candidates),
            Event::OutboundFailure { request_id, .. } => (request_id, Vec::new()),
            _ => return Vec::new(),
        };
        let Some(from) = self.out.candidates.remove(&id) else {
            return Vec::new();
        };
        let acts = match self.pool.as_mut() {
            Some(p) => p.on_candidates(now, from, list),
            None => return Vec::new(),
        };
        self.perform(swarm, acts)
    }
}
