//! Indexer registry in the DHT.
//!
//! Indexers announce themselves as Kademlia *providers* of [`PROVIDER_KEY`] (Go: provider
//! records for a CID of `/opencloud/indexers`) and publish a signed `/indexer/<peer id>`
//! record with their load figures (capacity, peers, born-at), so nodes can rank candidates by
//! fill rate without asking each one (IX-18: Go's candidates carried no fill rate). The choice
//! among candidates (fill rate, subnet diversity, score) is the membership plane's
//! (`membership::select`, `membership::node::Pool::on_discovered`).

use libp2p::{kad::RecordKey as KadKey, Multiaddr, PeerId};

use super::record::{IndexerInfo, Verified};

/// Provider key every indexer announces.
pub const PROVIDER_KEY: &str = "/garden/indexers";

pub fn provider_key() -> KadKey {
    KadKey::new(&PROVIDER_KEY)
}

/// An indexer a node may add to its pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub peer_id: PeerId,
    pub addrs: Vec<Multiaddr>,
    pub info: IndexerInfo,
}

impl Candidate {
    /// From a validated `/indexer/<peer id>` record.
    pub fn from_record(v: &Verified) -> Option<Candidate> {
        Some(Candidate {
            peer_id: v.peer_id,
            addrs: v.addrs(),
            info: v.body.indexer?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::record::{validate, Draft, RecordKind};
    use crate::keys::NodeIdentity;

    #[test]
    fn candidate_comes_from_a_valid_indexer_record_only() {
        let id = NodeIdentity::generate();
        let now = crate::time::Clock::system().now().as_millis();
        let d = Draft {
            kind: RecordKind::Indexer,
            name: "ix".into(),
            addrs: vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap()],
            location: None,
            indexer: Some(IndexerInfo {
                capacity: 100,
                peers: 25,
                born_at_ms: now,
            }),
            links: Default::default(),
            ttl_ms: 60_000,
        };
        let key = crate::discovery::record::indexer_key(&id.peer_id());
        let v = validate(key.as_bytes(), &d.sign(&id, now), now).unwrap();
        let c = Candidate::from_record(&v).unwrap();
        assert_eq!(c.peer_id, id.peer_id());
        assert_eq!(c.addrs.len(), 1);
        assert!((c.info.fill_rate() - 0.25).abs() < 1e-9);
        // A peer record under the indexer key does not validate.
        let mut p = d.clone();
        p.kind = RecordKind::Peer;
        assert!(validate(key.as_bytes(), &p.sign(&id, now), now).is_err());
    }
}
