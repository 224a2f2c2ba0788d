//! What other peers store with us: PUTs (only a sender's own, valid records) and provider
//! announcements of the indexer registry key. Refusals that only an attacker earns strike.

use libp2p::kad::{self, store::RecordStore};
use libp2p::PeerId;

use super::{Dht, Outcome};
use crate::discovery::{record, registry};
use crate::net::behaviour::Swarm;
use crate::net::gater;

impl Dht {
    /// Inbound PUT (StoreInserts::FilterBoth): publish rate limit, then only the sender's own
    /// records (servers do not replicate or cache for others), then the store's validation;
    /// what the sender did wrong, if anything, is charged by the gater.
    pub(super) fn on_inbound_put(
        &mut self,
        swarm: &mut Swarm,
        source: PeerId,
        rec: kad::Record,
    ) -> Option<Outcome> {
        if rec.key.as_ref().len() > record::MAX_KEY_LEN {
            swarm
                .behaviour_mut()
                .gater
                .offend(&source, gater::Offence::Malformed);
            return None;
        }
        let key = String::from_utf8_lossy(rec.key.as_ref()).into_owned();
        let verdict = swarm
            .behaviour_mut()
            .gater
            .record(&source, gater::Action::Publish);
        if verdict != gater::Verdict::Allow {
            tracing::info!(peer = %source, %key, ?verdict, "publish refused by rate limit");
            return None;
        }
        let signer = record::verify(rec.key.as_ref(), &rec.value).map(|v| v.peer_id);
        if matches!(signer, Ok(p) if p != source) {
            tracing::debug!(peer = %source, %key, "record of another peer refused (owners put their own)");
            return None;
        }
        match swarm.behaviour_mut().kad.store_mut().insert(rec) {
            Ok(v) if v.is_tombstone() => {
                tracing::debug!(peer = %source, %key, "tombstone stored");
                return Some(Outcome::Left(v.peer_id));
            }
            Ok(_) => tracing::debug!(peer = %source, %key, "record stored"),
            Err(e) => match e.offence() {
                None => tracing::debug!(peer = %source, %key, error = %e, "record not stored"),
                Some(o) => {
                    tracing::warn!(peer = %source, %key, error = %e, "invalid record refused");
                    swarm.behaviour_mut().gater.offend(&source, o);
                }
            },
        }
        None
    }

    /// Inbound ADD_PROVIDER (kad checked that the provider is the sender): only for the
    /// indexer registry key, rate-limited like a publish, addresses bounded.
    pub(super) fn on_inbound_provider(&mut self, swarm: &mut Swarm, mut rec: kad::ProviderRecord) {
        let source = rec.provider;
        if rec.key != registry::provider_key() {
            tracing::debug!(peer = %source, "provider record for another key refused");
            return;
        }
        if swarm
            .behaviour_mut()
            .gater
            .record(&source, gater::Action::Publish)
            != gater::Verdict::Allow
        {
            return;
        }
        rec.addresses.truncate(record::MAX_ADDRS);
        if let Err(e) = swarm.behaviour_mut().kad.store_mut().add_provider(rec) {
            tracing::debug!(peer = %source, error = ?e, "provider record not stored");
        }
    }
}
