//! Heartbeat and heartbeat-response messages and their compact binary encoding (the Go
//! heartbeat's content in a different wire form).
//!
//! Size choices, each a deliberate departure from Go's JSON:
//! - no sender `peer_id`, `did` or `stream` field: the sender is the authenticated connection
//!   peer (which also fixes Go bug B9, a claimed peer id used as session key);
//! - the node's own id in the challenge batch is one flag bit (`challenge_self`);
//! - `name`, the signed `record` and the `indexers_bound` list are sent only when they changed
//!   since the last heartbeat this indexer acknowledged, or when the indexer asks for a resync;
//! - peer ids are raw 32-byte keys, numbers are varints, times are varint milliseconds,
//!   the fill rate is basis points.

use libp2p::PeerId;

use crate::membership::profile::Profile;
use crate::membership::swim::MemberEvent;
use crate::membership::wire::{self, check_flags, DecodeError, Reader, Result, Writer};
use crate::membership::{PeerInfo, Timestamp};

/// Maximum node name length in bytes.
pub const MAX_NAME: usize = 64;
/// Maximum size of the opaque signed peer record carried in a heartbeat.
pub const MAX_RECORD: usize = 4096;
/// Maximum indexers listed in `indexers_bound`.
pub const MAX_BOUND: usize = 16;
/// Maximum peers challenged besides the sender itself (Go: own id + up to 2 others).
pub const MAX_OTHER_CHALLENGES: usize = 2;
/// Maximum DID length.
pub const MAX_DID: usize = 256;
/// Maximum SWIM events per message.
pub const MAX_EVENTS: usize = 16;
/// Maximum peers in `pending_contact` / `pending_callers` (Go has no cap, IX-16).
pub const MAX_PENDING: usize = 64;
/// Maximum answered challenges (IX-19: the node never sends more than 3).
pub const MAX_CHALLENGE_ANSWERS: usize = 3;
/// Maximum DHT payload echoed back for the DHT challenge.
pub const MAX_DHT_PAYLOAD: usize = 8192;
/// Maximum witnesses per response.
pub const MAX_WITNESSES: usize = 3;
/// Maximum suggestions per response (the indexer's DHT cache holds ≤ 10).
pub const MAX_SUGGESTIONS: usize = 10;

/// One heartbeat, node → indexer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// Strictly increasing per sender (replay protection; the indexer rejects `seq` not above
    /// the last accepted one for the session).
    pub seq: u64,
    /// Sender's clock.
    pub timestamp: Timestamp,
    /// Node name (full heartbeats only).
    pub name: Option<String>,
    /// `max(max_pool − pool_size, 0)`.
    pub need: u32,
    /// The node's signed peer record (`discovery::record` bytes, opaque here); full heartbeats only.
    pub record: Option<Vec<u8>>,
    /// The node's current indexer pool; only when it changed.
    pub indexers_bound: Option<Vec<PeerId>>,
    /// Challenge: "do you hold a live session for me?" (the own-peer-id challenge).
    pub challenge_self: bool,
    /// Other pool members challenged (informational, ≤ 2), as positions in the node's pool
    /// list — the `indexers_bound` the indexer holds, or the one in this heartbeat. One byte each
    /// instead of a peer id: the indexer already knows the list.
    pub challenge_refs: Vec<u8>,
    /// DHT challenge: the node's own DID.
    pub challenge_did: Option<String>,
    /// This indexer is the node's referent this tick.
    pub referent: bool,
    /// Set while the node suspects this indexer: the incarnation it knows.
    pub suspected_incarnation: Option<u64>,
    /// SWIM piggyback.
    pub events: Vec<MemberEvent>,
    /// Peers for which the node holds undelivered critical DTN entries.
    pub pending_contact: Vec<PeerId>,
    /// The node's connectivity profile; full heartbeats only (absent: continuous).
    pub profile: Option<Profile>,
}

mod hb_flag {
    pub(super) const NAME: u64 = 1 << 0;
    pub(super) const NEED: u64 = 1 << 1;
    pub(super) const RECORD: u64 = 1 << 2;
    pub(super) const BOUND: u64 = 1 << 3;
    pub(super) const CHALLENGE_SELF: u64 = 1 << 4;
    pub(super) const CHALLENGES: u64 = 1 << 5;
    pub(super) const CHALLENGE_DID: u64 = 1 << 6;
    pub(super) const REFERENT: u64 = 1 << 7;
    pub(super) const SUSPECTED: u64 = 1 << 8;
    pub(super) const EVENTS: u64 = 1 << 9;
    pub(super) const PENDING: u64 = 1 << 10;
    pub(super) const PROFILE: u64 = 1 << 11;
    pub(super) const ALL: u64 = (1 << 12) - 1;
}

impl Heartbeat {
    /// Encode (bounds are the encoder's contract: lists are truncated to their maximum so an
    /// encoded heartbeat always decodes).
    pub fn encode(&self) -> Vec<u8> {
        use hb_flag::*;
        let mut flags = 0;
        let set = |c: bool, f: u64, flags: &mut u64| {
            if c {
                *flags |= f
            }
        };
        set(self.name.is_some(), NAME, &mut flags);
        set(self.need > 0, NEED, &mut flags);
        set(self.record.is_some(), RECORD, &mut flags);
        set(self.indexers_bound.is_some(), BOUND, &mut flags);
        set(self.challenge_self, CHALLENGE_SELF, &mut flags);
        set(!self.challenge_refs.is_empty(), CHALLENGES, &mut flags);
        set(self.challenge_did.is_some(), CHALLENGE_DID, &mut flags);
        set(self.referent, REFERENT, &mut flags);
        set(self.suspected_incarnation.is_some(), SUSPECTED, &mut flags);
        set(!self.events.is_empty(), EVENTS, &mut flags);
        set(!self.pending_contact.is_empty(), PENDING, &mut flags);
        set(self.profile.is_some(), PROFILE, &mut flags);

        let mut w = Writer::with_version();
        w.varint(flags);
        w.varint(self.seq);
        w.varint(self.timestamp.as_millis());
        if let Some(n) = &self.name {
            w.bytes(truncate_str(n, MAX_NAME).as_bytes());
        }
        if self.need > 0 {
            w.varint(self.need.into());
        }
        if let Some(r) = &self.record {
            w.bytes(&r[..r.len().min(MAX_RECORD)]);
        }
        if let Some(b) = &self.indexers_bound {
            wire::write_peers(&mut w, &b[..b.len().min(MAX_BOUND)]);
        }
        if !self.challenge_refs.is_empty() {
            let n = self.challenge_refs.len().min(MAX_OTHER_CHALLENGES);
            w.varint(n as u64);
            for r in &self.challenge_refs[..n] {
                w.u8(*r);
            }
        }
        if let Some(d) = &self.challenge_did {
            w.bytes(truncate_str(d, MAX_DID).as_bytes());
        }
        if let Some(i) = self.suspected_incarnation {
            w.varint(i);
        }
        if !self.events.is_empty() {
            let n = self.events.len().min(MAX_EVENTS);
            w.varint(n as u64);
            for e in &self.events[..n] {
                e.encode(&mut w);
            }
        }
        if !self.pending_contact.is_empty() {
            let n = self.pending_contact.len().min(MAX_PENDING);
            wire::write_peers(&mut w, &self.pending_contact[..n]);
        }
        if let Some(p) = &self.profile {
            p.encode(&mut w);
        }
        w.into_bytes()
    }

    /// Decode; rejects unknown versions and flags, over-long fields, truncation and trailing bytes.
    pub fn decode(b: &[u8]) -> Result<Heartbeat> {
        use hb_flag::*;
        let mut r = Reader::new(b);
        r.version()?;
        let flags = r.varint("flags")?;
        check_flags(flags, ALL)?;
        let has = |f: u64| flags & f != 0;
        let mut hb = Heartbeat {
            seq: r.varint("seq")?,
            timestamp: Timestamp::from_millis(r.varint("timestamp")?),
            ..Default::default()
        };
        if has(NAME) {
            hb.name = Some(r.string("name", MAX_NAME)?);
        }
        if has(NEED) {
            hb.need = r.bounded("need", u32::MAX.into())? as u32;
        }
        if has(RECORD) {
            hb.record = Some(r.bytes("record", MAX_RECORD)?.to_vec());
        }
        if has(BOUND) {
            hb.indexers_bound = Some(r.peers("indexers_bound", MAX_BOUND)?);
        }
        hb.challenge_self = has(CHALLENGE_SELF);
        if has(CHALLENGES) {
            let n = r.count("challenge_refs", MAX_OTHER_CHALLENGES)?;
            for _ in 0..n {
                let i = r.u8("challenge_refs")?;
                if usize::from(i) >= MAX_BOUND {
                    return Err(DecodeError::Invalid {
                        field: "challenge_refs",
                    });
                }
                hb.challenge_refs.push(i);
            }
        }
        if has(CHALLENGE_DID) {
            hb.challenge_did = Some(r.string("challenge_did", MAX_DID)?);
        }
        hb.referent = has(REFERENT);
        if has(SUSPECTED) {
            hb.suspected_incarnation = Some(r.varint("suspected_incarnation")?);
        }
        if has(EVENTS) {
            let n = r.count("events", MAX_EVENTS)?;
            for _ in 0..n {
                hb.events.push(MemberEvent::decode(&mut r)?);
            }
        }
        if has(PENDING) {
            hb.pending_contact = r.peers("pending_contact", MAX_PENDING)?;
        }
        if has(PROFILE) {
            hb.profile = Some(Profile::decode(&mut r)?);
        }
        r.finish()?;
        Ok(hb)
    }
}

fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The indexer's answer for one challenged peer (Go `ChallengeEntry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeEntry {
    /// The challenged peer.
    pub peer: PeerId,
    /// Whether the indexer holds a live heartbeat session for it.
    pub found: bool,
    /// That session's last heartbeat (zero when not found).
    pub last_seen: Timestamp,
}

/// Result of the DHT challenge, present only when the heartbeat carried `challenge_did`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DhtAnswer {
    /// A live record was found under `/node/<did>`.
    pub found: bool,
    /// The stored record bytes, so the node can check them (Go never did, B19).
    pub payload: Vec<u8>,
}

/// The indexer's answer to one accepted heartbeat (Go `HeartbeatResponse`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeartbeatResponse {
    /// `peer_count / max_nodes`, ≤ 1.
    pub fill_rate: f64,
    /// Live heartbeat sessions, requester included.
    pub peer_count: u32,
    /// Capacity.
    pub max_nodes: u32,
    /// Indexer process start time (constant per process; compared exactly by nodes).
    pub born_at: Timestamp,
    /// One entry per challenged peer (own id first when `challenge_self`).
    pub challenges: Vec<ChallengeEntry>,
    /// DHT challenge result.
    pub dht: Option<DhtAnswer>,
    /// Up to 3 other heartbeating peers the node may ask about this indexer.
    pub witnesses: Vec<PeerInfo>,
    /// Other indexers the node may add.
    pub suggestions: Vec<PeerInfo>,
    /// The indexer is overloaded and asks the node to move.
    pub suggest_migrate: bool,
    /// The indexer's SWIM incarnation.
    pub incarnation: u64,
    /// SWIM piggyback.
    pub events: Vec<MemberEvent>,
    /// Peers waiting to reach the requester (DTN wake-up).
    pub pending_callers: Vec<PeerId>,
    /// The indexer lacks the node's record or pool list: send them in the next heartbeat.
    pub resync: bool,
    /// The indexer's clock when it answered (zero: not sent), so the node can see how far its
    /// own clock is off.
    pub now: Timestamp,
}

mod resp_flag {
    pub(super) const CHALLENGES: u64 = 1 << 0;
    pub(super) const DHT: u64 = 1 << 1;
    pub(super) const WITNESSES: u64 = 1 << 2;
    pub(super) const SUGGESTIONS: u64 = 1 << 3;
    pub(super) const MIGRATE: u64 = 1 << 4;
    pub(super) const EVENTS: u64 = 1 << 5;
    pub(super) const PENDING: u64 = 1 << 6;
    pub(super) const RESYNC: u64 = 1 << 7;
    pub(super) const CLOCK: u64 = 1 << 8;
    pub(super) const ALL: u64 = (1 << 9) - 1;
}

impl HeartbeatResponse {
    /// Encode (lists truncated to their maxima).
    pub fn encode(&self) -> Vec<u8> {
        use resp_flag::*;
        let mut flags = 0;
        if !self.challenges.is_empty() {
            flags |= CHALLENGES;
        }
        if self.dht.is_some() {
            flags |= DHT;
        }
        if !self.witnesses.is_empty() {
            flags |= WITNESSES;
        }
        if !self.suggestions.is_empty() {
            flags |= SUGGESTIONS;
        }
        if self.suggest_migrate {
            flags |= MIGRATE;
        }
        if !self.events.is_empty() {
            flags |= EVENTS;
        }
        if !self.pending_callers.is_empty() {
            flags |= PENDING;
        }
        if self.resync {
            flags |= RESYNC;
        }
        if !self.now.is_zero() {
            flags |= CLOCK;
        }
        let mut w = Writer::with_version();
        w.varint(flags);
        w.varint(wire::to_basis_points(self.fill_rate));
        w.varint(self.peer_count.into());
        w.varint(self.max_nodes.into());
        w.varint(self.born_at.as_millis());
        w.varint(self.incarnation);
        if !self.challenges.is_empty() {
            let n = self.challenges.len().min(MAX_CHALLENGE_ANSWERS);
            w.varint(n as u64);
            for c in &self.challenges[..n] {
                w.peer(&c.peer);
                w.u8(u8::from(c.found));
                w.varint(c.last_seen.as_millis());
            }
        }
        if let Some(d) = &self.dht {
            w.u8(u8::from(d.found));
            w.bytes(&d.payload[..d.payload.len().min(MAX_DHT_PAYLOAD)]);
        }
        for (flag, list, max) in [
            (WITNESSES, &self.witnesses, MAX_WITNESSES),
            (SUGGESTIONS, &self.suggestions, MAX_SUGGESTIONS),
        ] {
            if flags & flag != 0 {
                let n = list.len().min(max);
                w.varint(n as u64);
                for p in &list[..n] {
                    w.peer_info(p);
                }
            }
        }
        if !self.events.is_empty() {
            let n = self.events.len().min(MAX_EVENTS);
            w.varint(n as u64);
            for e in &self.events[..n] {
                e.encode(&mut w);
            }
        }
        if !self.pending_callers.is_empty() {
            let n = self.pending_callers.len().min(MAX_PENDING);
            wire::write_peers(&mut w, &self.pending_callers[..n]);
        }
        if !self.now.is_zero() {
            w.varint(self.now.as_millis());
        }
        w.into_bytes()
    }

    /// Decode with the same strictness as [`Heartbeat::decode`].
    pub fn decode(b: &[u8]) -> Result<HeartbeatResponse> {
        use resp_flag::*;
        let mut r = Reader::new(b);
        r.version()?;
        let flags = r.varint("flags")?;
        check_flags(flags, ALL)?;
        let has = |f: u64| flags & f != 0;
        let fill_bp = r.bounded("fill_rate", 10_000)?;
        let mut resp = HeartbeatResponse {
            fill_rate: wire::from_basis_points(fill_bp),
            peer_count: r.bounded("peer_count", u32::MAX.into())? as u32,
            max_nodes: r.bounded("max_nodes", u32::MAX.into())? as u32,
            born_at: Timestamp::from_millis(r.varint("born_at")?),
            incarnation: r.varint("incarnation")?,
            suggest_migrate: has(MIGRATE),
            resync: has(RESYNC),
            ..Default::default()
        };
        if has(CHALLENGES) {
            let n = r.count("challenges", MAX_CHALLENGE_ANSWERS)?;
            for _ in 0..n {
                resp.challenges.push(ChallengeEntry {
                    peer: r.peer("challenges.peer")?,
                    found: r.bool("challenges.found")?,
                    last_seen: Timestamp::from_millis(r.varint("challenges.last_seen")?),
                });
            }
        }
        if has(DHT) {
            let found = r.bool("dht.found")?;
            let payload = r.bytes("dht.payload", MAX_DHT_PAYLOAD)?.to_vec();
            resp.dht = Some(DhtAnswer { found, payload });
        }
        if has(WITNESSES) {
            let n = r.count("witnesses", MAX_WITNESSES)?;
            for _ in 0..n {
                resp.witnesses.push(r.peer_info("witnesses")?);
            }
        }
        if has(SUGGESTIONS) {
            let n = r.count("suggestions", MAX_SUGGESTIONS)?;
            for _ in 0..n {
                resp.suggestions.push(r.peer_info("suggestions")?);
            }
        }
        if has(EVENTS) {
            let n = r.count("events", MAX_EVENTS)?;
            for _ in 0..n {
                resp.events.push(MemberEvent::decode(&mut r)?);
            }
        }
        if has(PENDING) {
            resp.pending_callers = r.peers("pending_callers", MAX_PENDING)?;
        }
        if has(CLOCK) {
            resp.now = Timestamp::from_millis(r.varint("now")?);
        }
        r.finish()?;
        Ok(resp)
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
