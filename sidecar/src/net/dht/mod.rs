//! Kademlia glue: our own records (publish, leave), inbound PUTs (rate limit, then validation
//! by the store), lookups for clients and searches, the indexer-registry discovery, and the
//! record lookups that route search results back to a searcher.
//!
//! Every Kademlia query this process starts is in one map, [`Dht::queries`], with what it is
//! for ([`Pending`]); an event finds its owner with one lookup. Outcomes that belong to other
//! concerns (search hits, routes, discovered indexers) are returned as [`Outcome`]s for the
//! event loop to dispatch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use libp2p::kad::{self, GetRecordOk, InboundRequest, QueryId, QueryResult};
use libp2p::PeerId;
use tokio::time::Instant;

mod inbound;
mod registry_round;

use super::behaviour::Swarm;
use super::client::{Error, Lookup, Reply};
use super::gater;
use crate::discovery::publish::{self, Presence, Signed};
use crate::discovery::{record, registry, registry::Candidate, search::Results};
use crate::keys::NodeIdentity;
use crate::membership::heartbeat::DhtAnswer;
use crate::time::{Clock, Timestamp};

/// Route lookups (finding a searcher we are not connected to) in flight at most: each is a
/// DHT query started on behalf of a remote peer, so they are bounded whatever the search load.
pub(super) const MAX_ROUTE_LOOKUPS: usize = 64;

/// How long before a planned loss of contact our records are re-signed.
const PRE_CUT_LEAD: std::time::Duration = std::time::Duration::from_secs(60);

/// What a query in flight is for.
enum Pending {
    /// A client's `lookup`: the first valid record answers.
    Lookup {
        key: String,
        started: Instant,
        reply: Option<Reply<Lookup>>,
    },
    /// The put of one of our records (a client may wait for it).
    Publish {
        key: String,
        reply: Option<Reply<()>>,
    },
    /// The exact-key lookup of a search.
    SearchKey { search: u64 },
    /// The searcher's record, to reach it with `results`.
    Route { to: PeerId, results: Results },
    /// The providers of the indexer registry key (a discovery round).
    Providers,
    /// One indexer's `/indexer/<peer id>` registration (a discovery round).
    Registration,
}

/// An indexer discovery round.
#[derive(Default)]
struct Discovery {
    providers_done: bool,
    providers: HashSet<PeerId>,
    lookups: usize,
    found: Vec<Candidate>,
    replies: Vec<Reply<Vec<Candidate>>>,
}

/// What a Kademlia event produced for another concern.
pub(super) enum Outcome {
    /// A record found for search `search`.
    SearchHit {
        search: u64,
        key: Vec<u8>,
        value: Vec<u8>,
        from: Option<PeerId>,
    },
    /// The route lookup for `to` ended: `reachable` when its record gave us addresses.
    Route {
        to: PeerId,
        results: Results,
        reachable: bool,
    },
    /// A discovery round ended with these indexers.
    Discovered(Vec<Candidate>),
    /// This peer's departure tombstone arrived.
    Left(PeerId),
}

/// The DHT as this process uses it.
pub(super) struct Dht {
    identity: Arc<NodeIdentity>,
    presence: Presence,
    /// False for ephemeral clients (`garden search`) and after leaving.
    publishing: bool,
    clock: Clock,
    queries: HashMap<QueryId, Pending>,
    discovery: Option<Discovery>,
    /// When we last signed and put our records.
    last_published: Timestamp,
    /// A put of ours that no DHT server took is retried then (rather than a republish
    /// interval later, while nobody can find us).
    retry_at: Option<Timestamp>,
}

/// Delay before a put that no DHT server took is retried.
const PUT_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// The answer to a DHT challenge about `did`: our stored live record of it, if any.
pub(super) fn challenge_answer(swarm: &mut Swarm, did: &str) -> DhtAnswer {
    let store = swarm.behaviour_mut().kad.store_mut();
    let hit = store
        .get_valid(&record::node_key(did))
        .filter(|v| !v.is_tombstone());
    DhtAnswer {
        found: hit.is_some(),
        payload: hit.map(|v| v.bytes).unwrap_or_default(),
    }
}

impl Dht {
    pub(super) fn new(
        identity: Arc<NodeIdentity>,
        presence: Presence,
        publishing: bool,
        clock: Clock,
    ) -> Self {
        Self {
            identity,
            presence,
            publishing,
            clock,
            queries: HashMap::new(),
            discovery: None,
            last_published: Timestamp::ZERO,
            retry_at: None,
        }
    }

    pub(super) fn presence(&self) -> &Presence {
        &self.presence
    }

    /// Indexers announce the registry key at start.
    pub(super) fn start(&mut self, swarm: &mut Swarm) {
        if self.presence.role.is_indexer() {
            if let Err(e) = swarm
                .behaviour_mut()
                .kad
                .start_providing(registry::provider_key())
            {
                tracing::warn!(error = ?e, "cannot announce the indexer registry key");
            }
        }
    }

    /// Signs and puts our records (see `discovery::publish`); `reply` is answered by the put of
    /// the first. Returns our node record and its expiry, which heartbeats carry.
    pub(super) fn publish_own(
        &mut self,
        swarm: &mut Swarm,
        peers: u32,
        reply: Option<Reply<()>>,
    ) -> Option<(Vec<u8>, Timestamp)> {
        if !self.publishing {
            if let Some(r) = reply {
                let _ = r.send(Err(Error::NotPublishing));
            }
            return None;
        }
        let now = self.clock.now();
        // Announced (external) addresses replace the listen ones: a peer behind a port
        // forward or a link proxy is reached there, never around it.
        let mut addrs: Vec<_> = swarm.external_addresses().cloned().collect();
        if addrs.is_empty() {
            addrs = swarm.listeners().cloned().collect();
        }
        self.last_published = now;
        self.retry_at = None;
        let records = publish::own_records(&self.identity, &self.presence, &addrs, peers, now);
        let node_record = self
            .presence
            .role
            .is_node()
            .then(|| {
                records
                    .first()
                    .map(|r| (r.value.clone(), now.plus(self.presence.ttl)))
            })
            .flatten();
        self.put_all(swarm, records, reply);
        if self.presence.role.is_indexer() {
            // Re-announce the provider record too: the first announcement may have had no
            // peer to go to, and Kademlia's own provider republish is hours apart.
            let _ = swarm
                .behaviour_mut()
                .kad
                .start_providing(registry::provider_key());
        }
        node_record
    }

    /// Whether to re-sign our records now, just before our profile's next planned loss of
    /// contact, so they live through the whole absence.
    pub(super) fn refresh_due(&self) -> bool {
        let profile = self.presence.links.profile.unwrap_or_default();
        let now = self.clock.now();
        self.publishing
            && (self.retry_at.is_some_and(|t| t <= now)
                || profile.refresh_due(now, self.last_published, PRE_CUT_LEAD))
    }

    /// Voluntary departure: tombstones under every key we published; no more publishing.
    pub(super) fn leave(&mut self, swarm: &mut Swarm, reply: Reply<()>) {
        let tombs = publish::tombstones(&self.identity, &self.presence, self.clock.now());
        if self.presence.role.is_indexer() {
            swarm
                .behaviour_mut()
                .kad
                .stop_providing(&registry::provider_key());
        }
        self.put_all(swarm, tombs, Some(reply));
        self.publishing = false;
        tracing::info!("left the network (tombstones published)");
    }

    fn put_all(&mut self, swarm: &mut Swarm, records: Vec<Signed>, mut reply: Option<Reply<()>>) {
        for Signed { key, value } in records {
            self.put(swarm, key, value, reply.take());
        }
    }

    /// Stores a record locally (with the store's typed refusal), then puts it to the DHT.
    fn put(&mut self, swarm: &mut Swarm, key: String, value: Vec<u8>, reply: Option<Reply<()>>) {
        let rec = kad::Record::new(kad::RecordKey::new(&key), value);
        let kad = &mut swarm.behaviour_mut().kad;
        if let Err(source) = kad.store_mut().insert(rec.clone()) {
            tracing::warn!(%key, error = %source, "record refused by the local store");
            if let Some(r) = reply {
                let _ = r.send(Err(Error::LocalStore { key, source }));
            }
            return;
        }
        match kad.put_record(rec, kad::Quorum::One) {
            Ok(id) => {
                self.queries.insert(id, Pending::Publish { key, reply });
            }
            // The store accepted it a moment ago; only a full store refuses now.
            Err(e) => tracing::warn!(%key, error = ?e, "record not put"),
        }
    }

    /// A node's record that its heartbeat carried: it must be its own and valid; it is kept in
    /// our store (searches and DHT challenges answer from it) but not put to other servers —
    /// the owner puts its own records. Re-putting every heartbeat's record to the other
    /// servers counted against their publish limits until honest indexers banned each other.
    pub(super) fn store_heartbeat_record(
        &mut self,
        swarm: &mut Swarm,
        from: PeerId,
        bytes: Vec<u8>,
    ) {
        let now = self.clock.now();
        let verdict = match record::validate_as_node(&bytes, now.as_millis()) {
            Ok(v) if v.peer_id == from => {
                let rec =
                    kad::Record::new(kad::RecordKey::new(&record::node_key(&v.body.did)), bytes);
                match swarm.behaviour_mut().kad.store_mut().insert_at(rec, now) {
                    Ok(_) => None,
                    Err(e) => {
                        tracing::debug!(peer = %from, error = %e, "heartbeat record not stored");
                        e.offence()
                    }
                }
            }
            Ok(_) => {
                tracing::warn!(peer = %from, "heartbeat carried another peer's record");
                Some(gater::Offence::Forged)
            }
            Err(e) => {
                tracing::warn!(peer = %from, error = %e, "heartbeat carried an invalid record");
                e.offence()
            }
        };
        if let Some(o) = verdict {
            swarm.behaviour_mut().gater.offend(&from, o);
        }
    }

    /// A client's lookup of one key.
    pub(super) fn lookup(&mut self, swarm: &mut Swarm, key: String, reply: Reply<Lookup>) {
        let id = swarm
            .behaviour_mut()
            .kad
            .get_record(kad::RecordKey::new(&key));
        self.queries.insert(
            id,
            Pending::Lookup {
                key,
                started: Instant::now(),
                reply: Some(reply),
            },
        );
    }

    /// The exact-key lookup of search `search`.
    pub(super) fn lookup_for_search(&mut self, swarm: &mut Swarm, key: String, search: u64) {
        let id = swarm
            .behaviour_mut()
            .kad
            .get_record(kad::RecordKey::new(&key));
        self.queries.insert(id, Pending::SearchKey { search });
    }

    /// Finds the signed record of searcher `to` (its addresses come from its own record,
    /// never from the query) to send it `results`.
    pub(super) fn find_route(&mut self, swarm: &mut Swarm, to: PeerId, results: Results) {
        let routing = self
            .queries
            .values()
            .filter(|p| matches!(p, Pending::Route { .. }))
            .count();
        if routing >= MAX_ROUTE_LOOKUPS {
            tracing::debug!(peer = %to, "too many searchers to route to; results dropped");
            return;
        }
        let Some(did) = crate::keys::identity::did_of_peer(&to) else {
            return;
        };
        let id = swarm
            .behaviour_mut()
            .kad
            .get_record(kad::RecordKey::new(&record::node_key(&did)));
        self.queries.insert(id, Pending::Route { to, results });
    }

    pub(super) fn on_event(&mut self, swarm: &mut Swarm, event: kad::Event) -> Vec<Outcome> {
        match event {
            kad::Event::InboundRequest {
                request:
                    InboundRequest::PutRecord {
                        source,
                        record: Some(rec),
                        ..
                    },
            } => self
                .on_inbound_put(swarm, source, rec)
                .into_iter()
                .collect(),
            kad::Event::InboundRequest {
                request: InboundRequest::AddProvider { record: Some(rec) },
            } => {
                self.on_inbound_provider(swarm, rec);
                Vec::new()
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result,
                stats,
                step,
            } => self.on_progress(swarm, id, result, &stats, step.last),
            _ => Vec::new(),
        }
    }

    fn on_progress(
        &mut self,
        swarm: &mut Swarm,
        id: QueryId,
        result: QueryResult,
        stats: &kad::QueryStats,
        last: bool,
    ) -> Vec<Outcome> {
        let Some(pending) = self.queries.remove(&id) else {
            return Vec::new();
        };
        match (pending, result) {
            (Pending::Publish { key, reply }, QueryResult::PutRecord(res)) => {
                if let Err(e) = &res {
                    if self.publishing && self.retry_at.is_none() {
                        tracing::info!(%key, error = ?e, "no DHT server took our record; retrying in 30 s");
                        self.retry_at = Some(self.clock.now().plus(PUT_RETRY));
                    }
                }
                if let Some(reply) = reply {
                    let _ = reply.send(
                        res.map(|_| ())
                            .map_err(|source| Error::Publish { key, source }),
                    );
                }
                Vec::new()
            }
            (Pending::Providers, QueryResult::GetProviders(res)) => {
                self.on_providers(swarm, id, res, last);
                self.finish_discovery_if_done(swarm)
            }
            (pending, QueryResult::GetRecord(res)) => {
                let found = match res {
                    Ok(GetRecordOk::FoundRecord(pr)) => Some(pr),
                    Ok(GetRecordOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => None,
                };
                self.on_record(swarm, id, pending, found, stats, last)
            }
            (pending, other) => {
                tracing::debug!(?other, "unexpected query result");
                if !last {
                    self.queries.insert(id, pending);
                }
                Vec::new()
            }
        }
    }

    /// A record (or the end of a GET) for a query of any purpose.
    fn on_record(
        &mut self,
        swarm: &mut Swarm,
        id: QueryId,
        pending: Pending,
        found: Option<kad::PeerRecord>,
        stats: &kad::QueryStats,
        last: bool,
    ) -> Vec<Outcome> {
        let now = self.clock.now().as_millis();
        match pending {
            Pending::SearchKey { search } => {
                if !last {
                    self.queries.insert(id, Pending::SearchKey { search });
                }
                found
                    .map(|pr| Outcome::SearchHit {
                        search,
                        key: pr.record.key.to_vec(),
                        value: pr.record.value,
                        from: pr.peer,
                    })
                    .into_iter()
                    .collect()
            }
            Pending::Route { to, results } => {
                let verified = found.and_then(|r| {
                    record::validate(r.record.key.as_ref(), &r.record.value, now).ok()
                });
                match verified {
                    Some(v) if v.peer_id == to => {
                        for a in v.addrs() {
                            swarm.add_peer_address(to, a);
                        }
                        finish_query(swarm, id);
                        vec![Outcome::Route {
                            to,
                            results,
                            reachable: true,
                        }]
                    }
                    _ if !last => {
                        self.queries.insert(id, Pending::Route { to, results });
                        Vec::new()
                    }
                    _ => vec![Outcome::Route {
                        to,
                        results,
                        reachable: false,
                    }],
                }
            }
            Pending::Registration => {
                let candidate = found
                    .and_then(|pr| {
                        record::validate(pr.record.key.as_ref(), &pr.record.value, now).ok()
                    })
                    .and_then(|v| Candidate::from_record(&v));
                let done = candidate.is_some() || last;
                if let (Some(c), Some(d)) = (candidate, self.discovery.as_mut()) {
                    d.found.retain(|x| x.peer_id != c.peer_id);
                    d.found.push(c);
                    finish_query(swarm, id);
                }
                if !done {
                    self.queries.insert(id, Pending::Registration);
                    return Vec::new();
                }
                if let Some(d) = self.discovery.as_mut() {
                    d.lookups = d.lookups.saturating_sub(1);
                }
                self.finish_discovery_if_done(swarm)
            }
            Pending::Lookup {
                key,
                started,
                mut reply,
            } => {
                if let Some(pr) = found {
                    match record::validate(pr.record.key.as_ref(), &pr.record.value, now) {
                        // A tombstone answers a `/node/` lookup (the node left); elsewhere it
                        // hides nothing worth returning.
                        Ok(v) if !v.is_tombstone() || key.starts_with(record::NODE_PREFIX) => {
                            if let Some(r) = reply.take() {
                                let _ = r.send(Ok(Lookup {
                                    record: v,
                                    elapsed: started.elapsed(),
                                    requests: stats.num_requests(),
                                }));
                            }
                            finish_query(swarm, id);
                            return Vec::new();
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(%key, server = ?pr.peer, error = %e, "invalid record in lookup");
                            if let (Some(server), Some(o)) = (pr.peer, e.offence()) {
                                swarm.behaviour_mut().gater.offend(&server, o);
                            }
                        }
                    }
                }
                if last {
                    if let Some(r) = reply {
                        let _ = r.send(Err(Error::NotFound { key }));
                    }
                } else {
                    self.queries.insert(
                        id,
                        Pending::Lookup {
                            key,
                            started,
                            reply,
                        },
                    );
                }
                Vec::new()
            }
            Pending::Publish { .. } | Pending::Providers => Vec::new(),
        }
    }
}

/// Stops a query that has what it needs.
fn finish_query(swarm: &mut Swarm, id: QueryId) {
    if let Some(mut q) = swarm.behaviour_mut().kad.query_mut(&id) {
        q.finish();
    }
}
