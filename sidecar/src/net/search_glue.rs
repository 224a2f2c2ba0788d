//! Search glue for [`EventLoop`]: starting searches, answering gossiped queries (indexers),
//! routing results back to the searcher, receiving results (searcher).

use std::time::{Duration, Instant};

use libp2p::{gossipsub, kad, request_response, PeerId};
use tokio::sync::mpsc;

use super::client::{Error, Reply};
use super::event_loop::{EventLoop, SearchEntry};
use super::gater::{Action, Verdict};
use crate::discovery::{
    now_ms,
    record::{self, Verified},
    search::{self, Ack, Needle, Query, Results},
};
use crate::keys::identity::did_of_peer;

impl EventLoop {
    pub(super) fn start_search(
        &mut self,
        needle: Needle,
        idle: Duration,
        tx: mpsc::Sender<Verified>,
        reply: Reply<()>,
    ) {
        if let Needle::Name(n) = &needle {
            if n.chars().count() < self.settings.search_min_name_len {
                let _ = reply.send(Err(Error::Invalid(format!(
                    "name needles need at least {} characters",
                    self.settings.search_min_name_len
                ))));
                return;
            }
        }
        let query_id: u64 = rand::random();
        let query = Query {
            query_id,
            needle: needle.clone(),
        };
        let bytes = query.encode();
        let unsent = match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.search_topic.clone(), bytes.clone())
        {
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "search query not gossiped yet");
                Some(bytes)
            }
        };
        if let Some(key) = needle.dht_key() {
            let id = self.swarm.behaviour_mut().kad.get_record(kad::RecordKey::new(&key));
            self.search_lookups.insert(id, query_id);
        }
        self.searches.insert(
            query_id,
            SearchEntry {
                active: search::Active::new(needle.clone()),
                tx,
                idle,
                deadline: Instant::now() + idle,
                unsent,
            },
        );
        let _ = reply.send(Ok(()));
        // Our own store may hold answers too (a process with both roles).
        let local = self.local_hits(&needle);
        for v in local {
            self.on_search_hit(query_id, None, &v.bytes, None);
        }
    }

    fn local_hits(&mut self, needle: &Needle) -> Vec<Verified> {
        let substring = matches!(needle, Needle::Name(n) if n.chars().count() >= self.settings.search_min_name_len);
        let max = self.settings.search_max_hits.min(search::MAX_HITS_PER_MESSAGE);
        self.swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .search_local(needle.as_str(), substring, max)
    }

    /// A candidate hit for search `id` (from the DHT, an indexer or the local store).
    pub(super) fn on_search_hit(&mut self, id: u64, key: Option<&[u8]>, value: &[u8], from: Option<PeerId>) {
        let Some(s) = self.searches.get_mut(&id) else { return };
        match s.active.accept(key, value, now_ms()) {
            Some(v) => {
                s.deadline = Instant::now() + s.idle;
                if s.tx.try_send(v).is_err() {
                    tracing::debug!(query_id = id, "search consumer is slow or gone; hit dropped");
                }
            }
            None => tracing::trace!(query_id = id, ?from, "search hit dropped (invalid, duplicate or not matching)"),
        }
    }

    pub(super) fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message { message, .. } = event else { return };
        if !self.settings.role.is_indexer() || message.topic != self.search_topic.hash() {
            return;
        }
        // The source is authenticated (ValidationMode::Strict): never a field of the body.
        let Some(source) = message.source else { return };
        if self.swarm.behaviour_mut().gater.record(&source, Action::Get) != Verdict::Allow {
            tracing::info!(peer = %source, "search refused by rate limit");
            return;
        }
        let query = match Query::decode(&message.data) {
            Ok(q) => q,
            Err(e) => {
                tracing::info!(peer = %source, error = %e, "malformed search query");
                self.swarm.behaviour_mut().gater.strike(&source, 1);
                return;
            }
        };
        let hits = self.local_hits(&query.needle);
        if hits.is_empty() {
            return;
        }
        let results = Results {
            query_id: query.query_id,
            records: hits.into_iter().map(|v| serde_bytes::ByteBuf::from(v.bytes)).collect(),
        };
        self.send_results(source, results);
    }

    /// Sends results to the searcher; when not connected, first resolves its signed record
    /// (the searcher's addresses come from its own signed record, never from the query).
    fn send_results(&mut self, to: PeerId, results: Results) {
        if self.swarm.is_connected(&to) {
            self.swarm.behaviour_mut().search.send_request(&to, results);
            return;
        }
        let Some(did) = did_of_peer(&to) else { return };
        let key = record::node_key(&did);
        let id = self.swarm.behaviour_mut().kad.get_record(kad::RecordKey::new(&key));
        self.reply_routes.insert(id, (to, results));
    }

    /// Continuation of [`Self::send_results`] once the searcher's record lookup progressed.
    pub(super) fn route_results(
        &mut self,
        id: kad::QueryId,
        to: PeerId,
        results: Results,
        found: Option<kad::Record>,
        last: bool,
    ) {
        let verified = found.and_then(|r| record::validate(r.key.as_ref(), &r.value, now_ms()).ok());
        match verified {
            Some(v) if v.peer_id == to => {
                for a in v.addrs() {
                    self.swarm.add_peer_address(to, a);
                }
                self.swarm.behaviour_mut().search.send_request(&to, results);
                self.finish_query(id);
            }
            _ if !last => {
                self.reply_routes.insert(id, (to, results));
            }
            _ => tracing::debug!(peer = %to, "cannot reach searcher; results dropped"),
        }
    }

    pub(super) fn on_search_rr(&mut self, event: request_response::Event<Results, Ack>) {
        match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            } => {
                let accepted = self.searches.contains_key(&request.query_id);
                if accepted {
                    for rec in request.records.iter().take(search::MAX_HITS_PER_MESSAGE) {
                        self.on_search_hit(request.query_id, None, rec, Some(peer));
                    }
                }
                let _ = self.swarm.behaviour_mut().search.send_response(channel, Ack { accepted });
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "search results not delivered");
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "malformed or failed inbound search results");
            }
            _ => {}
        }
    }
}
