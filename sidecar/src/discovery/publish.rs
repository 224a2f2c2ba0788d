//! What a process publishes about itself in the DHT, by role, and what it publishes when it
//! leaves.
//!
//! * a node: its peer record under `/node/<did>` and, when it has a name, the same record
//!   under `/name/<name>`;
//! * an indexer: its registration under `/indexer/<peer id>` with its load figures (and a
//!   provider record for [`super::registry::PROVIDER_KEY`], which the glue announces);
//! * on departure: a signed tombstone under every key it published.
//!
//! The first record of each list is the one a caller waits for ("published" means that one
//! was stored by a DHT server).

use libp2p::Multiaddr;

use super::record::{self, Draft, IndexerInfo, Links, Location, RecordKind};
use super::Role;
use crate::keys::NodeIdentity;
use crate::time::Timestamp;

/// Who we are, as published.
#[derive(Debug, Clone)]
pub struct Presence {
    pub role: Role,
    /// Published under `/name/<name>` unless empty.
    pub name: String,
    pub ttl: std::time::Duration,
    pub location: Option<Location>,
    /// Node capacity an indexer announces.
    pub indexer_capacity: u32,
    /// When this process started (indexers announce it; nodes penalise restarts).
    pub born_at: Timestamp,
    /// Connectivity profile and nano/master links, published in every record.
    pub links: Links,
}

/// One signed value to put under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub key: String,
    pub value: Vec<u8>,
}

/// Our live records, signed at `now`, listing `addrs`. `peers` is an indexer's current load.
pub fn own_records(
    identity: &NodeIdentity,
    p: &Presence,
    addrs: &[Multiaddr],
    peers: u32,
    now: Timestamp,
) -> Vec<Signed> {
    let ttl_ms = u64::try_from(p.ttl.as_millis()).unwrap_or(u64::MAX);
    let mut out = Vec::new();
    if p.role.is_node() {
        let draft = Draft {
            kind: RecordKind::Peer,
            name: p.name.clone(),
            addrs: addrs.to_vec(),
            location: p.location,
            indexer: None,
            links: p.links.clone(),
            ttl_ms,
        };
        let value = draft.sign(identity, now.as_millis());
        out.push(Signed {
            key: record::node_key(&identity.did()),
            value: value.clone(),
        });
        if !p.name.is_empty() {
            out.push(Signed {
                key: record::name_key(&p.name),
                value,
            });
        }
    }
    if p.role.is_indexer() {
        let draft = Draft {
            kind: RecordKind::Indexer,
            name: p.name.clone(),
            addrs: addrs.to_vec(),
            location: p.location,
            indexer: Some(IndexerInfo {
                capacity: p.indexer_capacity,
                peers,
                born_at_ms: p.born_at.as_millis(),
            }),
            links: p.links.clone(),
            ttl_ms,
        };
        out.push(Signed {
            key: record::indexer_key(&identity.peer_id()),
            value: draft.sign(identity, now.as_millis()),
        });
    }
    out
}

/// Tombstones for every key [`own_records`] publishes for this profile (voluntary departure).
pub fn tombstones(identity: &NodeIdentity, p: &Presence, now: Timestamp) -> Vec<Signed> {
    let tomb = Draft::tombstone(identity, &p.name, now.as_millis());
    own_records(identity, p, &[], 0, now)
        .into_iter()
        .map(|s| Signed {
            key: s.key,
            value: tomb.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(role: Role, name: &str) -> Presence {
        Presence {
            role,
            name: name.into(),
            ttl: std::time::Duration::from_secs(120),
            location: None,
            indexer_capacity: 500,
            born_at: Timestamp::from_millis(1_800_000_000_000),
            links: Links::default(),
        }
    }

    #[test]
    fn each_role_publishes_its_keys_and_tombstones_them_all() {
        let id = NodeIdentity::generate();
        let now = Timestamp::from_millis(1_800_000_001_000);
        let addrs: Vec<Multiaddr> = vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap()];
        let keys = |v: Vec<Signed>| v.into_iter().map(|s| s.key).collect::<Vec<_>>();
        let node = presence(Role::Node, "site-a");
        assert_eq!(
            keys(own_records(&id, &node, &addrs, 0, now)),
            [record::node_key(&id.did()), record::name_key("site-a")]
        );
        assert_eq!(
            keys(own_records(&id, &presence(Role::Node, ""), &addrs, 0, now)),
            [record::node_key(&id.did())]
        );
        let ix = presence(Role::Indexer, "ix");
        assert_eq!(
            keys(own_records(&id, &ix, &addrs, 7, now)),
            [record::indexer_key(&id.peer_id())]
        );
        let both = presence(Role::Both, "x");
        let all = own_records(&id, &both, &addrs, 7, now);
        assert_eq!(all.len(), 3);
        for s in &all {
            record::validate(s.key.as_bytes(), &s.value, now.as_millis())
                .expect("own records validate");
        }
        let tombs = tombstones(&id, &both, now);
        assert_eq!(keys(tombs.clone()), keys(all));
        for t in tombs {
            let v = record::validate(t.key.as_bytes(), &t.value, now.as_millis())
                .expect("tombstones validate");
            assert!(v.is_tombstone());
        }
    }
}
