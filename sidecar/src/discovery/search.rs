//! Distributed search by peer id, DID or name.
//!
//! A search runs two ways at once and streams every verified, de-duplicated hit as it arrives:
//! 1. a Kademlia lookup of the exact key (`/node/<did>`, or `/name/<name>`; a peer id is
//!    turned into its `did:key` locally since Ed25519 peer ids embed the public key);
//! 2. a [`Query`] published on the GossipSub topic [`TOPIC`]; every indexer that holds
//!    matching live records (exact DID / peer id / name, or name substring) answers the
//!    *authenticated* gossip source directly over [`PROTOCOL`] with a [`Results`] request.
//!
//! The search ends when no new hit arrived for the idle timeout (Go: `SearchTimeout`, 5 s).
//! Fixes of the Go design (IX-12, IX-14, IX-30): results are verified before they are
//! streamed, the answering indexer replies to the gossip message's signed source (never to an
//! address taken from the body), query ids are random 64-bit values, substring needles need a
//! minimum length, and each indexer caps its hits.

use std::collections::HashSet;

use libp2p::{PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};

use super::record::{self, Verified};
use crate::keys::identity::did_of_peer;

/// Request-response protocol carrying results back to the searcher.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/garden/search/1.0.0");
/// Request-response protocol a searcher uses to ask one indexer directly: a [`Query`] in, its
/// [`Results`] back on the same stream. A searcher that indexers cannot reach (an ephemeral
/// client with no published record, behind a firewall) still gets every indexer's answer.
pub const QUERY_PROTOCOL: StreamProtocol = StreamProtocol::new("/garden/search-query/1.0.0");

/// GossipSub topic for search queries.
pub const TOPIC: &str = "/garden/search/1.0.0";
/// Largest gossiped query.
pub const MAX_QUERY_BYTES: usize = 512;
/// Hard cap on hits per results message (also bounds [`MAX_RESULTS_BYTES`]).
pub const MAX_HITS_PER_MESSAGE: usize = 32;
/// Largest results message.
pub const MAX_RESULTS_BYTES: u64 =
    (MAX_HITS_PER_MESSAGE * (record::MAX_RECORD_BYTES + 16) + 64) as u64;
/// Largest acknowledgement.
pub const MAX_ACK_BYTES: u64 = 64;

/// Errors decoding search messages.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("search message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("malformed search message: {0}")]
    Malformed(String),
    #[error("empty needle")]
    Empty,
    #[error("name needles need at least {min} characters")]
    TooShort { min: usize },
}

/// How a process searches and answers searches (from `[discovery]` in the config).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Shortest name needle accepted; shorter names would match too much by substring
    /// (IX-14). [Default: 3]
    pub min_name_len: usize,
    /// Most hits one indexer returns for one query (IX-14); never above
    /// [`MAX_HITS_PER_MESSAGE`]. [Default: 20]
    pub max_hits: usize,
    /// Searches an indexer answers per second, all peers together; beyond, queries are
    /// neither answered nor forwarded. Bounds the CPU one indexer gives to searches whatever
    /// the number of (possibly throwaway) authors. [Default: 50]
    pub answers_per_sec: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            min_name_len: 3,
            max_hits: 20,
            answers_per_sec: 50.0,
        }
    }
}

/// A token bucket (explicit time) for [`Rules::answers_per_sec`]: up to one second's worth
/// of answers in a burst.
#[derive(Debug, Clone)]
pub struct Budget {
    rate: f64,
    tokens: f64,
    last_ms: u64,
}

impl Budget {
    pub fn new(rate: f64, now_ms: u64) -> Self {
        Self {
            rate,
            tokens: rate.max(1.0),
            last_ms: now_ms,
        }
    }

    /// Takes one answer from the budget at `now_ms`; false when it is spent.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.last_ms = self.last_ms.max(now_ms);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Rules {
    /// Whether a search for `needle` may start.
    pub fn check(&self, needle: &Needle) -> Result<(), Error> {
        match needle {
            Needle::Name(n) if n.chars().count() < self.min_name_len => Err(Error::TooShort {
                min: self.min_name_len,
            }),
            _ => Ok(()),
        }
    }

    /// Whether a name needle matches names that contain it (else only equal names).
    pub fn substring(&self, needle: &Needle) -> bool {
        matches!(needle, Needle::Name(n) if n.chars().count() >= self.min_name_len)
    }

    /// Most hits in one answer.
    pub fn max_hits(&self) -> usize {
        self.max_hits.min(MAX_HITS_PER_MESSAGE)
    }
}

/// What is searched.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Needle {
    PeerId(String),
    Did(String),
    Name(String),
}

impl Needle {
    /// `did:…` is a DID, a parseable peer id is a peer id, anything else is a name.
    pub fn parse(s: &str) -> Result<Needle, Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::Empty);
        }
        if s.starts_with("did:") {
            return Ok(Needle::Did(s.to_string()));
        }
        if s.parse::<PeerId>().is_ok() {
            return Ok(Needle::PeerId(s.to_string()));
        }
        Ok(Needle::Name(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Needle::PeerId(s) | Needle::Did(s) | Needle::Name(s) => s,
        }
    }

    /// The DHT key holding the exact answer, if one can be computed.
    pub fn dht_key(&self) -> Option<String> {
        match self {
            Needle::Did(d) => Some(record::node_key(d)),
            Needle::Name(n) => Some(record::name_key(n)),
            Needle::PeerId(p) => {
                let peer: PeerId = p.parse().ok()?;
                did_of_peer(&peer).map(|d| record::node_key(&d))
            }
        }
    }

    /// Whether a verified live record answers this needle (substring for names).
    pub fn matches(&self, v: &Verified) -> bool {
        if v.is_tombstone() {
            return false;
        }
        match self {
            Needle::PeerId(p) => v.peer_id.to_string() == *p,
            Needle::Did(d) => v.body.did == *d,
            Needle::Name(n) => v.body.name.to_lowercase().contains(&n.to_lowercase()),
        }
    }
}

/// Gossiped query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    pub query_id: u64,
    pub needle: Needle,
}

/// Results sent by an indexer to the searcher (request of [`PROTOCOL`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub query_id: u64,
    pub records: Vec<serde_bytes::ByteBuf>,
}

/// Acknowledgement (response of [`PROTOCOL`]); `accepted` is false for unknown queries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Ack {
    pub accepted: bool,
}

impl Query {
    pub fn encode(&self) -> Vec<u8> {
        cbor4ii::serde::to_vec(Vec::new(), self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Query, Error> {
        if bytes.len() > MAX_QUERY_BYTES {
            return Err(Error::TooLarge(bytes.len()));
        }
        let q: Query =
            cbor4ii::serde::from_slice(bytes).map_err(|e| Error::Malformed(e.to_string()))?;
        if q.needle.as_str().is_empty() {
            return Err(Error::Empty);
        }
        Ok(q)
    }
}

/// Searcher-side state of one search: which peers were already streamed.
#[derive(Debug)]
pub struct Active {
    pub needle: Needle,
    seen: HashSet<PeerId>,
}

impl Active {
    pub fn new(needle: Needle) -> Self {
        Self {
            needle,
            seen: HashSet::new(),
        }
    }

    /// Validates one raw record found for this search; returns it when it is valid, matches,
    /// and was not streamed yet.
    pub fn accept(
        &mut self,
        key_hint: Option<&[u8]>,
        value: &[u8],
        now_ms: u64,
    ) -> Option<Verified> {
        let v = match key_hint {
            Some(k) => record::validate(k, value, now_ms).ok()?,
            // Results from indexers carry node records: validate under their own key.
            None => record::validate_as_node(value, now_ms).ok()?,
        };
        if !self.needle.matches(&v) || !self.seen.insert(v.peer_id) {
            return None;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::record::{Draft, RecordKind};
    use crate::keys::NodeIdentity;

    #[test]
    fn needles_parse_and_map_to_keys() {
        let id = NodeIdentity::generate();
        assert_eq!(Needle::parse(" alice "), Ok(Needle::Name("alice".into())));
        assert_eq!(Needle::parse(&id.did()), Ok(Needle::Did(id.did())));
        let p = Needle::parse(&id.peer_id().to_string()).unwrap();
        assert_eq!(p.dht_key(), Some(record::node_key(&id.did())));
        assert_eq!(Needle::parse(""), Err(Error::Empty));
    }

    #[test]
    fn rules_refuse_short_names_and_cap_hits() {
        let r = Rules::default();
        assert_eq!(
            r.check(&Needle::Name("ab".into())),
            Err(Error::TooShort { min: 3 })
        );
        assert!(r.check(&Needle::Name("abc".into())).is_ok());
        assert!(
            r.check(&Needle::Did("d".into())).is_ok(),
            "exact needles have no minimum"
        );
        assert!(!r.substring(&Needle::Name("ab".into())));
        assert!(r.substring(&Needle::Name("abc".into())));
        assert_eq!(
            Rules {
                max_hits: 1000,
                ..r
            }
            .max_hits(),
            MAX_HITS_PER_MESSAGE
        );
    }

    #[test]
    fn the_search_budget_refills_at_its_rate_and_caps_bursts() {
        let mut b = Budget::new(10.0, 0);
        assert_eq!(
            (0..20).filter(|_| b.take(0)).count(),
            10,
            "a burst of one second's worth"
        );
        assert!(!b.take(50));
        assert!(b.take(100), "one token per 100 ms");
        // An idle hour does not bank an hour of answers.
        assert_eq!((0..100).filter(|_| b.take(3_600_000)).count(), 10);
    }

    #[test]
    fn query_codec_rejects_bad_input() {
        let q = Query {
            query_id: 7,
            needle: Needle::Name("ali".into()),
        };
        assert_eq!(Query::decode(&q.encode()).unwrap(), q);
        assert!(matches!(
            Query::decode(&[0xa1; 600]),
            Err(Error::TooLarge(600))
        ));
        assert!(matches!(
            Query::decode(b"\x01\x02"),
            Err(Error::Malformed(_))
        ));
        let empty = Query {
            query_id: 1,
            needle: Needle::Name(String::new()),
        };
        assert_eq!(Query::decode(&empty.encode()), Err(Error::Empty));
    }

    #[test]
    fn active_search_streams_each_valid_match_once() {
        let id = NodeIdentity::generate();
        let now = crate::time::Clock::system().now().as_millis();
        let d = Draft {
            kind: RecordKind::Peer,
            name: "alice-site".into(),
            addrs: vec![],
            location: None,
            indexer: None,
            links: Default::default(),
            ttl_ms: 60_000,
        };
        let bytes = d.sign(&id, now);
        let mut a = Active::new(Needle::Name("alice".into()));
        assert!(a.accept(None, &bytes, now).is_some());
        assert!(
            a.accept(None, &bytes, now).is_none(),
            "duplicates are dropped"
        );
        let mut b = Active::new(Needle::Name("bob".into()));
        assert!(
            b.accept(None, &bytes, now).is_none(),
            "non-matching hits are dropped"
        );
        assert!(b.accept(None, b"garbage", now).is_none());
    }
}
