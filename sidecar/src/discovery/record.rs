//! Signed peer records: what a node publishes in the DHT under `/node/<did>`, `/name/<name>`
//! and, for indexers, `/indexer/<peer id>`; plus the validator and selector the record store
//! applies to every value, local or inbound.
//!
//! Wire form: CBOR `SignedRecord { body: bytes, signature: bytes }` where `body` is the CBOR
//! encoding of [`RecordBody`] and the Ed25519 signature covers [`SIGNING_TAG`] followed by
//! exactly those bytes (the tag keeps a record signature from ever being valid as any other
//! message the identity key signs; verify over
//! the received bytes, never a re-encoding). Unlike the Go record, *every* field is signed
//! (addresses, location, peer identity: IX-4), the DID is the `did:key` of the signing key and
//! the peer id is derived from the same key, so neither can be claimed by anyone else.

use libp2p::{identity::PublicKey, Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::keys::{identity::did_key, NodeIdentity};
use crate::membership::profile::Profile;
use crate::offence::Offence;

/// Largest encoded record accepted anywhere (store, DHT, search results).
pub const MAX_RECORD_BYTES: usize = 4096;
/// Longest allowed lifetime of a live record (Go: "TTL exceeds maximum allowed").
pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(86_400);
/// A tombstone is honoured for this long after `issued_at` (Go: 10 min).
pub const TOMBSTONE_LIFETIME_MS: u64 = 10 * 60 * 1000;
/// Tolerated clock skew for timestamps in the future (IX-2). Field units drift: a record issued
/// up to 10 minutes "ahead" of us is accepted (and the skew reported), not refused.
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;
/// Bounds on fields.
pub const MAX_NAME_LEN: usize = 64;
pub const MAX_ADDRS: usize = 16;
/// Current body version (2: signatures carry [`SIGNING_TAG`]).
pub const VERSION: u8 = 2;
/// Domain tag prefixed to the body bytes under the signature.
pub const SIGNING_TAG: &[u8] = b"garden/record/v2";
/// Longest DHT key of a record (`/name/` + 64 bytes is the longest legitimate one); longer
/// keys are refused before anything else is looked at.
pub const MAX_KEY_LEN: usize = 128;

pub const NODE_PREFIX: &str = "/node/";
pub const NAME_PREFIX: &str = "/name/";
pub const INDEXER_PREFIX: &str = "/indexer/";

/// Why a record was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("record of {0} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("unsupported record version {0}")]
    Version(u8),
    #[error("public key is not a valid Ed25519 libp2p key")]
    BadKey,
    #[error("invalid signature")]
    BadSignature,
    #[error("did {did} is not the did:key of the signing key")]
    DidMismatch { did: String },
    #[error("record does not belong under key {key}")]
    WrongKey { key: String },
    #[error("record expired")]
    Expired,
    #[error("record lifetime exceeds the {}-second maximum", MAX_TTL.as_secs())]
    TtlTooLong,
    #[error("record issued in the future")]
    FromTheFuture,
    #[error("field {field} out of bounds")]
    Bounds { field: &'static str },
    #[error("name {name} is held by another key")]
    NameTaken { name: String },
    #[error("an equal or newer record is already stored")]
    Stale,
}

impl Error {
    /// What the peer that sent this record did wrong, if anything. A stale, expired or
    /// name-squatting record, a record from a clock ahead of ours and an unknown (newer)
    /// version are not offences: honest peers send them when they lose a race, run late, or
    /// are upgraded first.
    pub fn offence(&self) -> Option<Offence> {
        match self {
            Error::BadSignature | Error::DidMismatch { .. } | Error::WrongKey { .. } => {
                Some(Offence::Forged)
            }
            Error::TooLarge(_)
            | Error::Malformed(_)
            | Error::BadKey
            | Error::TtlTooLong
            | Error::Bounds { .. } => Some(Offence::Malformed),
            Error::Version(_)
            | Error::Expired
            | Error::FromTheFuture
            | Error::NameTaken { .. }
            | Error::Stale => None,
        }
    }
}

/// What a record announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    /// A live node record.
    Peer,
    /// A live indexer registration (carries [`IndexerInfo`]).
    Indexer,
    /// Voluntary departure: replaces older records of the same key.
    Tombstone,
}

/// Location published at a chosen granularity (already fuzzed, see `location`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub granularity: u8,
    pub latitude: f64,
    pub longitude: f64,
}

/// Load figures an indexer announces with its registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexerInfo {
    pub capacity: u32,
    pub peers: u32,
    pub born_at_ms: u64,
}

impl IndexerInfo {
    /// peers / capacity in [0, 1].
    pub fn fill_rate(&self) -> f64 {
        if self.capacity == 0 {
            return 1.0;
        }
        (self.peers as f64 / self.capacity as f64).clamp(0.0, 1.0)
    }
}

/// The signed content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordBody {
    pub version: u8,
    pub kind: RecordKind,
    pub did: String,
    pub name: String,
    /// libp2p protobuf encoding of the Ed25519 public key.
    #[serde(with = "serde_bytes")]
    pub public_key: Vec<u8>,
    /// Binary multiaddrs (without `/p2p/`).
    pub addrs: Vec<serde_bytes::ByteBuf>,
    pub issued_at_ms: u64,
    pub expires_at_ms: u64,
    pub location: Option<Location>,
    pub indexer: Option<IndexerInfo>,
    /// How the peer is connected, and its nano/master links.
    #[serde(default)]
    pub links: Links,
}

/// How a peer is connected and who answers for whom (nano/master delegation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// Connectivity profile (continuous when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// For a nano: the peer id of its master, the authority third parties deal with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// For a master: the peer ids of the nanos it answers for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nanos: Vec<String>,
}

/// Most nanos one master lists.
pub const MAX_NANOS: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SignedRecord {
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

/// A record that passed signature and binding checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub body: RecordBody,
    pub peer_id: PeerId,
    /// The exact bytes as stored in the DHT.
    pub bytes: Vec<u8>,
}

impl Verified {
    pub fn addrs(&self) -> Vec<Multiaddr> {
        self.body
            .addrs
            .iter()
            .filter_map(|b| Multiaddr::try_from(b.to_vec()).ok())
            .collect()
    }
    pub fn is_tombstone(&self) -> bool {
        self.body.kind == RecordKind::Tombstone
    }
}

/// What to sign. Built by the node for itself.
#[derive(Debug, Clone)]
pub struct Draft {
    pub kind: RecordKind,
    pub name: String,
    pub addrs: Vec<Multiaddr>,
    pub location: Option<Location>,
    pub indexer: Option<IndexerInfo>,
    pub links: Links,
    pub ttl_ms: u64,
}

impl Draft {
    /// Signs the draft with `identity` at time `now_ms`; returns the DHT value bytes.
    pub fn sign(&self, identity: &NodeIdentity, now_ms: u64) -> Vec<u8> {
        let body = RecordBody {
            version: VERSION,
            kind: self.kind,
            did: identity.did(),
            name: self.name.clone(),
            public_key: identity.public().encode_protobuf(),
            addrs: self
                .addrs
                .iter()
                .take(MAX_ADDRS)
                .map(|a| serde_bytes::ByteBuf::from(a.to_vec()))
                .collect(),
            issued_at_ms: now_ms,
            expires_at_ms: now_ms + self.ttl_ms,
            location: self.location,
            indexer: self.indexer,
            links: self.links.clone(),
        };
        sign_body(identity, &body)
    }

    /// A signed tombstone for our DID (voluntary departure).
    pub fn tombstone(identity: &NodeIdentity, name: &str, now_ms: u64) -> Vec<u8> {
        let body = RecordBody {
            version: VERSION,
            kind: RecordKind::Tombstone,
            did: identity.did(),
            name: name.to_string(),
            public_key: identity.public().encode_protobuf(),
            addrs: Vec::new(),
            issued_at_ms: now_ms,
            expires_at_ms: now_ms + TOMBSTONE_LIFETIME_MS,
            location: None,
            indexer: None,
            links: Links::default(),
        };
        sign_body(identity, &body)
    }
}

/// Signs an arbitrary body (tests use it to build forged records).
pub fn sign_body(identity: &NodeIdentity, body: &RecordBody) -> Vec<u8> {
    let body_bytes = encode(body);
    let signature = identity.sign(&signing_bytes(&body_bytes));
    encode(&SignedRecord {
        body: body_bytes,
        signature,
    })
}

/// What the signature covers: the tag, then the body bytes.
fn signing_bytes(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_TAG.len() + body.len());
    m.extend_from_slice(SIGNING_TAG);
    m.extend_from_slice(body);
    m
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising plain structs into a Vec cannot fail.
    cbor4ii::serde::to_vec(Vec::new(), v).unwrap_or_default()
}

/// DHT key of a node record.
pub fn node_key(did: &str) -> String {
    format!("{NODE_PREFIX}{did}")
}
/// DHT key of a name record.
pub fn name_key(name: &str) -> String {
    format!("{NAME_PREFIX}{name}")
}
/// DHT key of an indexer registration.
pub fn indexer_key(peer: &PeerId) -> String {
    format!("{INDEXER_PREFIX}{peer}")
}

/// Decodes and checks signature and key bindings, without time checks.
pub fn verify(key: &[u8], value: &[u8]) -> Result<Verified, Error> {
    if key.len() > MAX_KEY_LEN {
        return Err(Error::Bounds { field: "key" });
    }
    if value.len() > MAX_RECORD_BYTES {
        return Err(Error::TooLarge(value.len()));
    }
    let signed: SignedRecord =
        cbor4ii::serde::from_slice(value).map_err(|e| Error::Malformed(e.to_string()))?;
    let body: RecordBody =
        cbor4ii::serde::from_slice(&signed.body).map_err(|e| Error::Malformed(e.to_string()))?;
    if body.version != VERSION {
        return Err(Error::Version(body.version));
    }
    if body.name.len() > MAX_NAME_LEN {
        return Err(Error::Bounds { field: "name" });
    }
    if body.addrs.len() > MAX_ADDRS {
        return Err(Error::Bounds { field: "addrs" });
    }
    check_links(&body.links)?;
    let public = PublicKey::try_decode_protobuf(&body.public_key).map_err(|_| Error::BadKey)?;
    if public.clone().try_into_ed25519().is_err() {
        return Err(Error::BadKey);
    }
    if !public.verify(&signing_bytes(&signed.body), &signed.signature) {
        return Err(Error::BadSignature);
    }
    if did_key(&public).as_deref() != Some(body.did.as_str()) {
        return Err(Error::DidMismatch { did: body.did });
    }
    let peer_id = public.to_peer_id();
    check_key_binding(key, &body, &peer_id)?;
    Ok(Verified {
        body,
        peer_id,
        bytes: value.to_vec(),
    })
}

/// The profile's figures are plausible, and the nano/master links name peers (at most
/// [`MAX_NANOS`] nanos).
fn check_links(l: &Links) -> Result<(), Error> {
    if l.profile.is_some_and(|p| p.validate().is_err()) {
        return Err(Error::Bounds { field: "profile" });
    }
    if l.nanos.len() > MAX_NANOS {
        return Err(Error::Bounds { field: "nanos" });
    }
    let is_peer = |s: &String| s.parse::<PeerId>().is_ok();
    if !l.master.iter().chain(&l.nanos).all(is_peer) {
        return Err(Error::Bounds {
            field: "master/nanos",
        });
    }
    Ok(())
}

fn check_key_binding(key: &[u8], body: &RecordBody, peer: &PeerId) -> Result<(), Error> {
    let wrong = || Error::WrongKey {
        key: String::from_utf8_lossy(key).into_owned(),
    };
    let key = std::str::from_utf8(key).map_err(|_| wrong())?;
    let ok = if let Some(did) = key.strip_prefix(NODE_PREFIX) {
        did == body.did && body.kind != RecordKind::Indexer
    } else if let Some(name) = key.strip_prefix(NAME_PREFIX) {
        !name.is_empty() && name == body.name && body.kind != RecordKind::Indexer
    } else if let Some(pid) = key.strip_prefix(INDEXER_PREFIX) {
        pid == peer.to_string()
            && (body.kind == RecordKind::Indexer || body.kind == RecordKind::Tombstone)
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(wrong())
    }
}

/// Full validation at time `now_ms`: [`verify`] plus freshness rules.
pub fn validate(key: &[u8], value: &[u8], now_ms: u64) -> Result<Verified, Error> {
    let v = verify(key, value)?;
    let b = &v.body;
    if b.issued_at_ms > now_ms + MAX_CLOCK_SKEW_MS {
        return Err(Error::FromTheFuture);
    }
    match b.kind {
        RecordKind::Tombstone => {
            if now_ms.saturating_sub(b.issued_at_ms) > TOMBSTONE_LIFETIME_MS {
                return Err(Error::Expired);
            }
        }
        RecordKind::Peer | RecordKind::Indexer => {
            if b.expires_at_ms <= now_ms {
                return Err(Error::Expired);
            }
            if b.expires_at_ms.saturating_sub(b.issued_at_ms) > MAX_TTL.as_millis() as u64 {
                return Err(Error::TtlTooLong);
            }
            if b.kind == RecordKind::Indexer && b.indexer.is_none() {
                return Err(Error::Malformed(
                    "indexer record without load figures".into(),
                ));
            }
        }
    }
    Ok(v)
}

/// [`validate`] under the record's own `/node/<did>` key (search results carry no key).
pub fn validate_as_node(value: &[u8], now_ms: u64) -> Result<Verified, Error> {
    if value.len() > MAX_RECORD_BYTES {
        return Err(Error::TooLarge(value.len()));
    }
    let signed: SignedRecord =
        cbor4ii::serde::from_slice(value).map_err(|e| Error::Malformed(e.to_string()))?;
    let body: RecordBody =
        cbor4ii::serde::from_slice(&signed.body).map_err(|e| Error::Malformed(e.to_string()))?;
    validate(node_key(&body.did).as_bytes(), value, now_ms)
}

/// Whether `payload` answers a DHT challenge about `did` at `now_ms`: a live, validly signed
/// peer record of that DID. A tombstone, an expired record, another DID's record or a record
/// claiming `did` under another key all fail (Go only looked at `found`, B19).
pub fn answers_challenge(did: &str, payload: &[u8], now_ms: u64) -> bool {
    validate_as_node(payload, now_ms)
        .is_ok_and(|v| v.body.did == did && v.body.kind == RecordKind::Peer)
}

/// Absolute expiry in ms of a verified record (tombstones: end of their lifetime).
pub fn expiry_ms(v: &Verified) -> u64 {
    match v.body.kind {
        RecordKind::Tombstone => v.body.issued_at_ms + TOMBSTONE_LIFETIME_MS,
        _ => v.body.expires_at_ms,
    }
}

/// Decides whether `new` replaces `old` under the same key.
///
/// * Same signer: the later `issued_at` wins; on a tie a tombstone wins. So a tombstone
///   replaces every record issued before it, and a node that comes back *after* leaving
///   replaces its tombstone (Go: tombstone always wins for 10 min, blocking rejoin).
/// * `/name/` held by another key: first come, first served while the holder's record is
///   valid (`old` must already have been validated).
pub fn select(key: &[u8], old: &Verified, new: &Verified) -> Result<(), Error> {
    if old.peer_id != new.peer_id {
        if key.starts_with(NAME_PREFIX.as_bytes()) && !old.is_tombstone() {
            return Err(Error::NameTaken {
                name: new.body.name.clone(),
            });
        }
        // Other namespaces are bound to one key by `verify`; a tombstoned name is free.
        return Ok(());
    }
    let newer = new.body.issued_at_ms > old.body.issued_at_ms
        || (new.body.issued_at_ms == old.body.issued_at_ms
            && new.is_tombstone()
            && !old.is_tombstone());
    if newer {
        Ok(())
    } else {
        Err(Error::Stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_record_of_the_challenged_did_answers_a_dht_challenge() {
        let me = NodeIdentity::generate();
        let other = NodeIdentity::generate();
        let genuine = draft("n").sign(&me, NOW);
        let claiming_my_did = {
            // A body naming my DID, signed with another key.
            let mut body = validate_as_node(&genuine, NOW).unwrap().body;
            body.public_key = other.public().encode_protobuf();
            sign_body(&other, &body)
        };
        let forged = [
            b"not a record".to_vec(),
            draft("n").sign(&other, NOW),
            claiming_my_did,
            Draft {
                ttl_ms: 1_000,
                ..draft("n")
            }
            .sign(&me, NOW - 60_000),
            Draft::tombstone(&me, "n", NOW),
            Vec::new(),
        ];
        for (i, p) in forged.iter().enumerate() {
            assert!(
                !answers_challenge(&me.did(), p, NOW),
                "forged payload #{i} passed"
            );
        }
        assert!(answers_challenge(&me.did(), &genuine, NOW));
        assert!(
            !answers_challenge(&other.did(), &genuine, NOW),
            "bound to the challenged DID"
        );
        // Validity is judged at answer time: the same record, once expired, fails.
        assert!(!answers_challenge(&me.did(), &genuine, NOW + 200_000));
    }

    const NOW: u64 = 1_800_000_000_000;

    fn draft(name: &str) -> Draft {
        Draft {
            kind: RecordKind::Peer,
            name: name.into(),
            addrs: vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()],
            location: None,
            indexer: None,
            links: Default::default(),
            ttl_ms: 120_000,
        }
    }

    #[test]
    fn a_signed_record_validates_under_its_node_and_name_keys() {
        let id = NodeIdentity::generate();
        let v = draft("alice").sign(&id, NOW);
        let ok = validate(node_key(&id.did()).as_bytes(), &v, NOW).unwrap();
        assert_eq!(ok.peer_id, id.peer_id());
        assert_eq!(ok.addrs().len(), 1);
        validate(name_key("alice").as_bytes(), &v, NOW).unwrap();
        assert!(matches!(
            validate(name_key("bob").as_bytes(), &v, NOW),
            Err(Error::WrongKey { .. })
        ));
        assert!(matches!(
            validate(indexer_key(&id.peer_id()).as_bytes(), &v, NOW),
            Err(Error::WrongKey { .. })
        ));
    }

    #[test]
    fn forged_records_are_rejected() {
        let id = NodeIdentity::generate();
        let other = NodeIdentity::generate();
        // Body claims `id`'s key and DID but is signed by `other`.
        let body = RecordBody {
            version: VERSION,
            kind: RecordKind::Peer,
            did: id.did(),
            name: "alice".into(),
            public_key: id.public().encode_protobuf(),
            addrs: vec![],
            issued_at_ms: NOW,
            expires_at_ms: NOW + 1000,
            location: None,
            indexer: None,
            links: Default::default(),
        };
        let forged = sign_body(&other, &body);
        assert_eq!(
            validate(node_key(&id.did()).as_bytes(), &forged, NOW),
            Err(Error::BadSignature)
        );
        // Correctly signed by `other`, but claims `id`'s DID: wrong key for the DID.
        let mut b2 = body.clone();
        b2.public_key = other.public().encode_protobuf();
        let v = sign_body(&other, &b2);
        assert!(matches!(
            validate(node_key(&id.did()).as_bytes(), &v, NOW),
            Err(Error::DidMismatch { .. })
        ));
        // A flipped byte anywhere breaks the signature or the decoding.
        let mut good = draft("alice").sign(&id, NOW);
        let n = good.len();
        good[n / 2] ^= 0x40;
        assert!(validate(node_key(&id.did()).as_bytes(), &good, NOW).is_err());
    }

    #[test]
    fn stale_and_overlong_records_are_rejected() {
        let id = NodeIdentity::generate();
        let key = node_key(&id.did());
        let v = draft("a").sign(&id, NOW);
        assert_eq!(
            validate(key.as_bytes(), &v, NOW + 120_000),
            Err(Error::Expired)
        );
        let mut d = draft("a");
        d.ttl_ms = MAX_TTL.as_millis() as u64 + 1;
        assert_eq!(
            validate(key.as_bytes(), &d.sign(&id, NOW), NOW),
            Err(Error::TtlTooLong)
        );
        let future = draft("a").sign(&id, NOW + 10 * MAX_CLOCK_SKEW_MS);
        assert_eq!(
            validate(key.as_bytes(), &future, NOW),
            Err(Error::FromTheFuture)
        );
        let t = Draft::tombstone(&id, "a", NOW);
        validate(key.as_bytes(), &t, NOW + 1000).unwrap();
        assert_eq!(
            validate(key.as_bytes(), &t, NOW + TOMBSTONE_LIFETIME_MS + 1),
            Err(Error::Expired)
        );
    }

    #[test]
    fn malformed_and_oversized_input_is_an_error_not_a_panic() {
        for input in [&b""[..], b"\xff\xff\xff", b"\x82\x40\x40", &[0x9f; 300]] {
            assert!(matches!(
                validate(b"/node/x", input, NOW),
                Err(Error::Malformed(_))
            ));
        }
        assert_eq!(
            validate(b"/node/x", &vec![0u8; MAX_RECORD_BYTES + 1], NOW),
            Err(Error::TooLarge(MAX_RECORD_BYTES + 1))
        );
    }

    #[test]
    fn select_prefers_newer_and_tombstones_and_protects_names() {
        let id = NodeIdentity::generate();
        let key = node_key(&id.did());
        let old = validate(key.as_bytes(), &draft("a").sign(&id, NOW), NOW).unwrap();
        let new = validate(key.as_bytes(), &draft("a").sign(&id, NOW + 5), NOW + 5).unwrap();
        assert!(select(key.as_bytes(), &old, &new).is_ok());
        assert_eq!(select(key.as_bytes(), &new, &old), Err(Error::Stale));
        let tomb = validate(
            key.as_bytes(),
            &Draft::tombstone(&id, "a", NOW + 6),
            NOW + 6,
        )
        .unwrap();
        assert!(select(key.as_bytes(), &new, &tomb).is_ok());
        assert_eq!(select(key.as_bytes(), &tomb, &new), Err(Error::Stale));

        let squatter = NodeIdentity::generate();
        let nk = name_key("a");
        let held = validate(nk.as_bytes(), &draft("a").sign(&id, NOW), NOW).unwrap();
        let claim = validate(nk.as_bytes(), &draft("a").sign(&squatter, NOW + 9), NOW + 9).unwrap();
        assert!(matches!(
            select(nk.as_bytes(), &held, &claim),
            Err(Error::NameTaken { .. })
        ));
    }
}
