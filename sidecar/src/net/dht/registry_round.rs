//! An indexer discovery round: the providers of the registry key, then each provider's signed
//! `/indexer/` registration, gathered into candidates for the pool.

use libp2p::kad::{self, GetProvidersOk, QueryId};

use super::{Dht, Discovery, Outcome, Pending};
use crate::discovery::{record, registry, registry::Candidate};
use crate::net::behaviour::Swarm;
use crate::net::client::Reply;

impl Dht {
    /// Starts (or joins) an indexer discovery round.
    pub(in crate::net) fn discover(
        &mut self,
        swarm: &mut Swarm,
        reply: Option<Reply<Vec<Candidate>>>,
    ) {
        if let Some(d) = self.discovery.as_mut() {
            d.replies.extend(reply);
            return;
        }
        let id = swarm
            .behaviour_mut()
            .kad
            .get_providers(registry::provider_key());
        self.queries.insert(id, Pending::Providers);
        let mut d = Discovery::default();
        d.replies.extend(reply);
        self.discovery = Some(d);
    }

    pub(super) fn on_providers(
        &mut self,
        swarm: &mut Swarm,
        id: QueryId,
        res: kad::GetProvidersResult,
        last: bool,
    ) {
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        if let Ok(GetProvidersOk::FoundProviders { providers, .. }) = res {
            d.providers.extend(providers);
        }
        if !last {
            self.queries.insert(id, Pending::Providers);
            return;
        }
        d.providers_done = true;
        let me = *swarm.local_peer_id();
        let providers: Vec<_> = d.providers.iter().copied().filter(|p| *p != me).collect();
        d.lookups += providers.len();
        for p in providers {
            let lid = swarm
                .behaviour_mut()
                .kad
                .get_record(kad::RecordKey::new(&record::indexer_key(&p)));
            self.queries.insert(lid, Pending::Registration);
        }
    }

    /// Ends the discovery round once providers are known and every registration is in:
    /// answers callers and hands the candidates on.
    pub(super) fn finish_discovery_if_done(&mut self, swarm: &mut Swarm) -> Vec<Outcome> {
        let done = self
            .discovery
            .as_ref()
            .is_some_and(|d| d.providers_done && d.lookups == 0);
        if !done {
            return Vec::new();
        }
        let Some(d) = self.discovery.take() else {
            return Vec::new();
        };
        for c in &d.found {
            for a in &c.addrs {
                swarm.add_peer_address(c.peer_id, a.clone());
            }
        }
        for r in d.replies {
            let _ = r.send(Ok(d.found.clone()));
        }
        vec![Outcome::Discovered(d.found)]
    }
}
