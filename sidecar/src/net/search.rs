//! Search glue: starting searches and streaming their verified hits (searcher), answering
//! gossiped queries and sending results back to the searcher (indexers).
//!
//! [`Search`] owns the searches in progress. The decisions (needle rules, which hits count,
//! local matching) are `discovery::search`'s and the store's.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::{gossipsub, request_response, PeerId};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::behaviour::Swarm;
use super::client::{Error, Reply, SearchRequest};
use super::dht::Dht;
use super::gater;
use crate::discovery::record::Verified;
use crate::discovery::search::{self, Ack, Needle, Query, Results, Rules};
use crate::time::Clock;

/// What became of a gossiped query.
enum Judged {
    Answered,
    Malformed,
    Dropped,
}

/// One search in progress (searcher side).
struct Entry {
    active: search::Active,
    tx: mpsc::Sender<Verified>,
    idle: Duration,
    deadline: Instant,
    /// Query still to be gossiped (no subscribed peer yet).
    unsent: Option<Vec<u8>>,
}

pub(super) struct Search {
    rules: Rules,
    budget: search::Budget,
    /// Indexers answer queries; everyone can search.
    answers: bool,
    topic: gossipsub::IdentTopic,
    clock: Clock,
    searches: HashMap<u64, Entry>,
    /// Direct queries in flight: request → search.
    direct: HashMap<request_response::OutboundRequestId, u64>,
}

/// Indexers one search asks directly at most.
const MAX_DIRECT: usize = 32;

impl Search {
    pub(super) fn new(rules: Rules, answers: bool, clock: Clock) -> Self {
        Self {
            budget: search::Budget::new(rules.answers_per_sec, clock.now().as_millis()),
            rules,
            answers,
            topic: gossipsub::IdentTopic::new(search::TOPIC),
            clock,
            searches: HashMap::new(),
            direct: HashMap::new(),
        }
    }

    /// Indexers relay and answer search queries: they subscribe even without a local consumer,
    /// or the mesh would not forward queries.
    pub(super) fn start(&mut self, swarm: &mut Swarm) {
        if self.answers {
            if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&self.topic) {
                tracing::warn!(error = %e, "cannot subscribe to the search topic");
            }
        }
    }

    pub(super) fn begin(
        &mut self,
        swarm: &mut Swarm,
        dht: &mut Dht,
        req: SearchRequest,
        reply: Reply<()>,
    ) {
        let SearchRequest {
            needle,
            idle,
            direct,
            hits: tx,
        } = req;
        if let Err(e) = self.rules.check(&needle) {
            let _ = reply.send(Err(Error::Search(e)));
            return;
        }
        let query_id: u64 = rand::random();
        let bytes = Query {
            query_id,
            needle: needle.clone(),
        }
        .encode();
        let unsent = match swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes.clone())
        {
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "search query not gossiped yet");
                Some(bytes)
            }
        };
        if let Some(key) = needle.dht_key() {
            dht.lookup_for_search(swarm, key, query_id);
        }
        // Asked directly, the answers come back on our own streams.
        let query = Query {
            query_id,
            needle: needle.clone(),
        };
        for ix in direct.into_iter().take(MAX_DIRECT) {
            for a in ix.addrs {
                swarm.add_peer_address(ix.peer, a);
            }
            let id = swarm
                .behaviour_mut()
                .search_query
                .send_request(&ix.peer, query.clone());
            self.direct.insert(id, query_id);
        }
        self.searches.insert(
            query_id,
            Entry {
                active: search::Active::new(needle.clone()),
                tx,
                idle,
                deadline: Instant::now() + idle,
                unsent,
            },
        );
        let _ = reply.send(Ok(()));
        // Our own store may hold answers too (a process with both roles).
        for v in self.local_hits(swarm, &needle) {
            self.on_hit(query_id, None, &v.bytes, None);
        }
    }

    fn local_hits(&self, swarm: &mut Swarm, needle: &Needle) -> Vec<Verified> {
        let substring = self.rules.substring(needle);
        swarm.behaviour_mut().kad.store_mut().search_local(
            needle.as_str(),
            substring,
            self.rules.max_hits(),
        )
    }

    /// A candidate hit for search `id` (from the DHT, an indexer or the local store).
    pub(super) fn on_hit(
        &mut self,
        id: u64,
        key: Option<&[u8]>,
        value: &[u8],
        from: Option<PeerId>,
    ) {
        let Some(s) = self.searches.get_mut(&id) else {
            return;
        };
        match s.active.accept(key, value, self.clock.now().as_millis()) {
            Some(v) => {
                s.deadline = Instant::now() + s.idle;
                if s.tx.try_send(v).is_err() {
                    tracing::debug!(
                        query_id = id,
                        "search consumer is slow or gone; hit dropped"
                    );
                }
            }
            None => tracing::trace!(
                query_id = id,
                ?from,
                "search hit dropped (invalid, duplicate or not matching)"
            ),
        }
    }

    /// A gossiped query (indexers answer it from their store). Nothing is forwarded before
    /// this returns: a query within the forwarder's rate and the search budget is answered and
    /// accepted (gossipsub forwards it); a malformed one is rejected and costs its forwarder;
    /// an over-budget one is ignored.
    pub(super) fn on_gossip(&mut self, swarm: &mut Swarm, dht: &mut Dht, event: gossipsub::Event) {
        use gossipsub::MessageAcceptance::{Accept, Ignore, Reject};
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let verdict = self.judge(swarm, dht, propagation_source, message);
        let gs = &mut swarm.behaviour_mut().gossipsub;
        let _ = gs.report_message_validation_result(
            &message_id,
            &propagation_source,
            match verdict {
                Judged::Answered => Accept,
                Judged::Malformed => Reject,
                Judged::Dropped => Ignore,
            },
        );
    }

    fn judge(
        &mut self,
        swarm: &mut Swarm,
        dht: &mut Dht,
        forwarder: PeerId,
        message: gossipsub::Message,
    ) -> Judged {
        if !self.answers || message.topic != self.topic.hash() {
            return Judged::Dropped;
        }
        // The author is authenticated (ValidationMode::Strict) but its keys are free; the
        // forwarder is a peer with a connection, which the gater admitted: limits go there.
        let Some(author) = message.source else {
            return Judged::Malformed;
        };
        let query = match Query::decode(&message.data) {
            Ok(q) => q,
            Err(e) => {
                tracing::info!(peer = %forwarder, error = %e, "malformed search query");
                swarm
                    .behaviour_mut()
                    .gater
                    .offend(&forwarder, gater::Offence::Malformed);
                return Judged::Malformed;
            }
        };
        // The forwarder relays other peers' queries: over its share they are ignored, never
        // struck (striking honest relays made indexers ban each other under load).
        if !swarm
            .behaviour_mut()
            .gater
            .within(&forwarder, gater::Action::Get)
        {
            tracing::debug!(peer = %forwarder, "forwarder over its share of searches; query ignored");
            return Judged::Dropped;
        }
        let Some(results) = self.answer(swarm, &query) else {
            return Judged::Dropped;
        };
        if !results.records.is_empty() {
            // Results go to the author (the searcher), never to an address in the body.
            if swarm.is_connected(&author) {
                swarm.behaviour_mut().search.send_request(&author, results);
            } else {
                dht.find_route(swarm, author, results);
            }
        }
        Judged::Answered
    }

    /// Our answer to `query`, once its asker or forwarder passed the gater: `None` when the
    /// search budget is spent.
    fn answer(&mut self, swarm: &mut Swarm, query: &Query) -> Option<Results> {
        if !self.budget.take(self.clock.now().as_millis()) {
            tracing::debug!(
                query_id = query.query_id,
                "search budget spent; query dropped"
            );
            return None;
        }
        let hits = self.local_hits(swarm, &query.needle);
        Some(Results {
            query_id: query.query_id,
            records: hits
                .into_iter()
                .map(|v| serde_bytes::ByteBuf::from(v.bytes))
                .collect(),
        })
    }

    /// The direct query protocol: indexers answer queries; searchers take the answers.
    pub(super) fn on_direct(
        &mut self,
        swarm: &mut Swarm,
        event: request_response::Event<Query, Results>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                if !self.answers {
                    return; // not an indexer: the asker sees a failure
                }
                if request.needle.as_str().is_empty() {
                    swarm
                        .behaviour_mut()
                        .gater
                        .offend(&peer, gater::Offence::Malformed);
                    return;
                }
                // The asker asks for itself: over its rate it is struck.
                if !swarm.behaviour_mut().gater.allow(&peer, gater::Action::Get) {
                    tracing::info!(%peer, "search refused by rate limit");
                    return;
                }
                if let Some(results) = self.answer(swarm, &request) {
                    let _ = swarm
                        .behaviour_mut()
                        .search_query
                        .send_response(channel, results);
                }
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(id) = self.direct.remove(&request_id) else {
                    return;
                };
                // Answers to another search id than the one asked are ignored.
                if response.query_id == id {
                    for rec in response.records.iter().take(search::MAX_HITS_PER_MESSAGE) {
                        self.on_hit(id, None, rec, Some(peer));
                    }
                }
            }
            Event::OutboundFailure {
                request_id,
                peer,
                error,
                ..
            } => {
                self.direct.remove(&request_id);
                tracing::debug!(%peer, %error, "direct search query failed");
            }
            _ => {}
        }
    }

    /// The route lookup for a searcher we were not connected to ended.
    pub(super) fn on_route(
        &mut self,
        swarm: &mut Swarm,
        to: PeerId,
        results: Results,
        reachable: bool,
    ) {
        if reachable {
            swarm.behaviour_mut().search.send_request(&to, results);
        } else {
            tracing::debug!(peer = %to, "cannot reach searcher; results dropped");
        }
    }

    pub(super) fn on_results(
        &mut self,
        swarm: &mut Swarm,
        event: request_response::Event<Results, Ack>,
    ) {
        use request_response::{Event, Message};
        match event {
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
                let accepted = self.searches.contains_key(&request.query_id);
                if accepted {
                    for rec in request.records.iter().take(search::MAX_HITS_PER_MESSAGE) {
                        self.on_hit(request.query_id, None, rec, Some(peer));
                    }
                }
                let _ = swarm
                    .behaviour_mut()
                    .search
                    .send_response(channel, Ack { accepted });
            }
            Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "search results not delivered")
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "malformed or failed inbound search results")
            }
            _ => {}
        }
    }

    /// Ends idle searches; gossips queries that had no subscribed peer yet.
    pub(super) fn housekeeping(&mut self, swarm: &mut Swarm) {
        let now = Instant::now();
        let mut done = Vec::new();
        for (id, s) in self.searches.iter_mut() {
            if now >= s.deadline || s.tx.is_closed() {
                done.push(*id);
            } else if let Some(q) = s.unsent.take() {
                if swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(self.topic.clone(), q.clone())
                    .is_err()
                {
                    s.unsent = Some(q);
                }
            }
        }
        for id in done {
            self.searches.remove(&id);
            tracing::debug!(query_id = id, "search ended (idle)");
        }
    }
}
