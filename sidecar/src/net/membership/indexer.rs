//! Indexer side of the membership glue: inbound heartbeats (rate limit, admission by the
//! registry, the DHT challenge, the bandwidth probe, the response) and probes, including the
//! indirect probes an indexer runs for the nodes that heartbeat it.

use libp2p::request_response::{Event, Message, ResponseChannel};
use libp2p::PeerId;
use tokio::time::Instant;

use super::{Membership, Want};
use crate::membership::heartbeat::{HeartbeatResponse, SignedHeartbeat};
use crate::membership::indexer::Reject;
use crate::membership::offline;
use crate::membership::probe::{self, IndirectRequest, IndirectResponse, Measurement, Payload};
use crate::net::behaviour::Swarm;
use crate::net::{dht, gater};
use crate::time::Timestamp;

/// An outstanding probe.
pub(super) enum ProbeOut {
    /// Indexer → node bandwidth probe.
    Bandwidth {
        node: PeerId,
        sent: Instant,
        payload: Vec<u8>,
    },
    /// Voter → target probe on behalf of a node's indirect-probe request.
    Indirect {
        channel: ResponseChannel<IndirectResponse>,
        sent: Instant,
    },
}

impl Membership {
    pub(super) fn on_inbound_heartbeat(
        &mut self,
        swarm: &mut Swarm,
        now: Timestamp,
        peer: PeerId,
        req: SignedHeartbeat,
        channel: ResponseChannel<HeartbeatResponse>,
    ) -> Vec<Want> {
        let Some(registry) = self.registry.as_mut() else {
            return Vec::new(); // not an indexer: dropping the channel fails the sender's request
        };
        if swarm
            .behaviour_mut()
            .gater
            .record(&peer, gater::Action::Heartbeat)
            != gater::Verdict::Allow
        {
            tracing::info!(%peer, "heartbeat refused by rate limit");
            return Vec::new();
        }
        let addrs = self.reach.of(&peer);
        let mut acc = match registry.on_heartbeat(now, peer, &addrs, &req) {
            Ok(acc) => acc,
            Err(Reject::Heartbeat(e)) => {
                tracing::warn!(%peer, error = %e, "invalid heartbeat");
                swarm.behaviour_mut().gater.offend(&peer, e.offence());
                return Vec::new();
            }
            Err(e) => {
                tracing::info!(%peer, error = %e, "heartbeat not admitted");
                return Vec::new();
            }
        };
        if let Some(skew_ms) = acc.clock_skew_ms {
            tracing::warn!(%peer, skew_ms, "this node's clock is off ours; its records may be refused while it is more than 10 min ahead or its record lifetime behind");
        }
        let mut wants = Vec::new();
        if let Some(record) = acc.record.take() {
            wants.push(Want::Republish { from: peer, record });
        }
        if let Some(did) = acc.dht_challenge.take() {
            acc.response.dht = Some(dht::challenge_answer(swarm, &did));
        }
        if acc.probe {
            let payload = Payload::random(&mut rand::thread_rng());
            let bytes = payload.0.clone();
            let id = swarm.behaviour_mut().probe.send_request(&peer, payload);
            self.out.probes.insert(
                id,
                ProbeOut::Bandwidth {
                    node: peer,
                    sent: Instant::now(),
                    payload: bytes,
                },
            );
        }
        let _ = swarm
            .behaviour_mut()
            .heartbeat
            .send_response(channel, acc.response);
        wants
    }

    /// A node asks us to probe a suspected indexer of its pool.
    pub(super) fn serve_indirect(
        &mut self,
        swarm: &mut Swarm,
        peer: PeerId,
        request: IndirectRequest,
        channel: ResponseChannel<IndirectResponse>,
    ) {
        let allowed = self
            .registry
            .as_ref()
            .is_some_and(|r| r.serves_indirect_probe(&peer));
        if !allowed
            // Over its share a requester is refused, not struck: an honest node may ask often
            // while its indexers are cut off, and each probe costs us only one echo.
            || !swarm
                .behaviour_mut()
                .gater
                .within(&peer, gater::Action::Get)
        {
            tracing::debug!(%peer, "indirect probe refused");
            return;
        }
        let target = request.target;
        for addr in target.addrs {
            swarm.add_peer_address(target.peer, addr);
        }
        let id = swarm
            .behaviour_mut()
            .probe
            .send_request(&target.peer, Payload(probe::PING.to_vec()));
        self.out.probes.insert(
            id,
            ProbeOut::Indirect {
                channel,
                sent: Instant::now(),
            },
        );
    }

    /// Offline heartbeats: indexers judge and credit them; the submitting node only logs the
    /// answer (its online heartbeats resume either way).
    pub(in crate::net) fn on_offline_event(
        &mut self,
        swarm: &mut Swarm,
        now: Timestamp,
        event: Event<offline::Batch, offline::Ack>,
    ) {
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let Some(registry) = self.registry.as_mut() else {
                    return;
                };
                if !swarm
                    .behaviour_mut()
                    .gater
                    .allow(&peer, gater::Action::Request)
                {
                    return;
                }
                let interval = self.heartbeat_interval;
                let ack = match registry.on_offline_beats(now, peer, &request, interval) {
                    Ok(c) => {
                        tracing::info!(%peer, beats = request.beats.len(), credited_secs = c.online.as_secs(), "offline heartbeats credited");
                        offline::Ack {
                            accepted: request.beats.len() as u32,
                            credited_secs: c.online.as_secs(),
                            refused: 0,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "offline heartbeats refused");
                        if e == offline::Refused::Signature {
                            swarm
                                .behaviour_mut()
                                .gater
                                .offend(&peer, gater::Offence::Forged);
                        }
                        offline::Ack {
                            accepted: 0,
                            credited_secs: 0,
                            refused: e.code(),
                        }
                    }
                };
                let _ = swarm.behaviour_mut().offline.send_response(channel, ack);
            }
            Event::Message {
                peer,
                message: Message::Response { response, .. },
                ..
            } => {
                tracing::info!(%peer, accepted = response.accepted, credited_secs = response.credited_secs, refused = response.refused, "offline heartbeats answered");
            }
            Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "offline heartbeats not delivered")
            }
            _ => {}
        }
    }

    /// Probes: echo inbound ones; evaluate the answers to ours.
    pub(in crate::net) fn on_probe_event(
        &mut self,
        swarm: &mut Swarm,
        event: Event<Payload, Payload>,
    ) {
        let (id, echo) = match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                if swarm
                    .behaviour_mut()
                    .gater
                    .allow(&peer, gater::Action::Request)
                {
                    let _ = swarm.behaviour_mut().probe.send_response(channel, request);
                }
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
        match self.out.probes.remove(&id) {
            Some(ProbeOut::Bandwidth {
                node,
                sent,
                payload,
            }) => {
                let m = match echo {
                    Some(e) => Measurement::evaluate(payload.len(), sent.elapsed(), e.0 == payload),
                    None => Measurement::FAILED,
                };
                if let Some(r) = self.registry.as_mut() {
                    r.on_probe(&node, m);
                }
            }
            Some(ProbeOut::Indirect { channel, sent }) => {
                let ok = echo.is_some_and(|e| e.0 == probe::PING);
                let resp = IndirectResponse {
                    reachable: ok,
                    latency_ms: if ok {
                        sent.elapsed().as_millis().min(u32::MAX as u128) as u32
                    } else {
                        0
                    },
                };
                let _ = swarm.behaviour_mut().indirect.send_response(channel, resp);
            }
            None => {}
        }
    }
}
