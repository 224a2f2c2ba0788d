//! Kademlia event handling for [`EventLoop`]: inbound PUTs (rate limit + validation), lookups,
//! publishes, indexer-registry discovery.

use libp2p::kad::{self, GetProvidersOk, GetRecordOk, InboundRequest, QueryResult};

use super::client::{Error, Lookup};
use super::event_loop::EventLoop;
use super::gater::{Action, Verdict};
use crate::discovery::{
    now_ms,
    record::{self, Error as RecordError},
    registry::Candidate,
};

impl EventLoop {
    pub(super) fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request: InboundRequest::PutRecord {
                    source,
                    record: Some(rec),
                    ..
                },
            } => self.on_inbound_put(source, rec),
            kad::Event::OutboundQueryProgressed {
                id,
                result,
                stats,
                step,
            } => match result {
                QueryResult::GetRecord(res) => self.on_get_record(id, res, &stats, step.last),
                QueryResult::PutRecord(res) => {
                    if let Some(reply) = self.pending_publish.remove(&id) {
                        let _ = reply.send(res.map(|_| ()).map_err(|e| Error::Publish(e.to_string())));
                    }
                }
                QueryResult::GetProviders(res) => self.on_get_providers(id, res, step.last),
                QueryResult::StartProviding(Err(e)) => {
                    tracing::debug!(error = %e, "indexer registry announcement incomplete");
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Inbound PUT (StoreInserts::FilterBoth): publish rate limit, then validation; a bad
    /// signature or a forged record costs two strikes (Go `RecordBadSignature`).
    fn on_inbound_put(&mut self, source: libp2p::PeerId, rec: kad::Record) {
        let key = String::from_utf8_lossy(rec.key.as_ref()).into_owned();
        match self.swarm.behaviour_mut().gater.record(&source, Action::Publish) {
            Verdict::Allow => {}
            v => {
                tracing::info!(peer = %source, %key, verdict = ?v, "publish refused by rate limit");
                return;
            }
        }
        match self.swarm.behaviour_mut().kad.store_mut().insert(rec) {
            Ok(_) => tracing::debug!(peer = %source, %key, "record stored"),
            Err(e @ (RecordError::Stale | RecordError::NameTaken { .. } | RecordError::Expired)) => {
                tracing::debug!(peer = %source, %key, error = %e, "record not stored");
            }
            Err(e) => {
                tracing::warn!(peer = %source, %key, error = %e, "invalid record refused");
                self.swarm.behaviour_mut().gater.strike(&source, 2);
            }
        }
    }

    fn on_get_record(
        &mut self,
        id: kad::QueryId,
        res: kad::GetRecordResult,
        stats: &kad::QueryStats,
        last: bool,
    ) {
        let found = match res {
            Ok(GetRecordOk::FoundRecord(peer_record)) => Some(peer_record),
            Ok(GetRecordOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => None,
        };
        // Which consumer owns the query.
        if let Some(search_id) = self.search_lookups.get(&id).copied() {
            if let Some(pr) = found {
                self.on_search_hit(search_id, Some(pr.record.key.as_ref()), &pr.record.value, pr.peer);
            }
            if last {
                self.search_lookups.remove(&id);
            }
            return;
        }
        if let Some((peer, results)) = self.reply_routes.remove(&id) {
            self.route_results(id, peer, results, found.map(|f| f.record), last);
            return;
        }
        if let Some((_, d)) = self.discovery.as_mut() {
            if d.lookups.contains(&id) {
                if let Some(pr) = &found {
                    if let Ok(v) = record::validate(pr.record.key.as_ref(), &pr.record.value, now_ms()) {
                        if let Some(c) = Candidate::from_record(&v) {
                            d.found.retain(|x| x.peer_id != c.peer_id);
                            d.found.push(c);
                        }
                        self.finish_query(id);
                        self.discovery_lookup_done(id);
                        return;
                    }
                }
                if last {
                    self.discovery_lookup_done(id);
                }
                return;
            }
        }
        let Some(pending) = self.pending_lookup.get_mut(&id) else {
            return;
        };
        if let Some(pr) = found {
            match record::validate(pr.record.key.as_ref(), &pr.record.value, now_ms()) {
                Ok(v) if v.body.kind != record::RecordKind::Tombstone || pending.key.starts_with(record::NODE_PREFIX) => {
                    if let Some(reply) = pending.reply.take() {
                        let _ = reply.send(Ok(Lookup {
                            record: v,
                            elapsed: pending.started.elapsed(),
                            requests: stats.num_requests(),
                        }));
                    }
                    self.pending_lookup.remove(&id);
                    self.finish_query(id);
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(key = %pending.key, server = ?pr.peer, error = %e, "invalid record in lookup");
                    if let (Some(server), RecordError::BadSignature | RecordError::Malformed(_) | RecordError::DidMismatch { .. }) = (pr.peer, &e) {
                        self.swarm.behaviour_mut().gater.strike(&server, 2);
                    }
                }
            }
        }
        if last {
            if let Some(p) = self.pending_lookup.remove(&id) {
                if let Some(reply) = p.reply {
                    let _ = reply.send(Err(Error::NotFound));
                }
            }
        }
    }

    pub(super) fn finish_query(&mut self, id: kad::QueryId) {
        if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
            q.finish();
        }
    }

    fn on_get_providers(&mut self, id: kad::QueryId, res: kad::GetProvidersResult, last: bool) {
        let Some((qid, d)) = self.discovery.as_mut() else { return };
        if *qid != id {
            return;
        }
        if let Ok(GetProvidersOk::FoundProviders { providers, .. }) = res {
            d.providers.extend(providers);
        }
        if !last {
            return;
        }
        d.providers_done = true;
        let me = *self.swarm.local_peer_id();
        let providers: Vec<_> = d.providers.iter().copied().filter(|p| *p != me).collect();
        for p in providers {
            let key = record::indexer_key(&p);
            let lid = self.swarm.behaviour_mut().kad.get_record(kad::RecordKey::new(&key));
            if let Some((_, d)) = self.discovery.as_mut() {
                d.lookups.insert(lid);
            }
        }
        self.maybe_finish_discovery();
    }

    fn discovery_lookup_done(&mut self, id: kad::QueryId) {
        if let Some((_, d)) = self.discovery.as_mut() {
            d.lookups.remove(&id);
        }
        self.maybe_finish_discovery();
    }

    fn maybe_finish_discovery(&mut self) {
        let done = self
            .discovery
            .as_ref()
            .is_some_and(|(_, d)| d.providers_done && d.lookups.is_empty());
        if done {
            self.finish_discovery();
        }
    }
}
