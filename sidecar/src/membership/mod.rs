//! Membership: the node→indexer heartbeat, node-side indexer scoring and pool management,
//! indexer-side admission, challenges and witnesses, bandwidth/indirect probes and SWIM.
//!
//! Everything here is a **pure state machine with an explicit clock**: callers pass `now`
//! ([`Timestamp`], wall-clock milliseconds) and get back [`node::Action`]s to perform. No
//! function in this module reads the system clock, opens a stream or spawns a task, so every
//! rule is unit-testable without a network.
//!
//! # Layout
//! | module | what |
//! |---|---|
//! | [`wire`] | compact binary primitives (varints, peer ids, multiaddrs) + [`wire::DecodeError`] |
//! | [`heartbeat`] | `Heartbeat` / `HeartbeatResponse` messages, signing, the protocol constants |
//! | [`codec`] | one generic size-bounded `request_response::Codec` used by every protocol here |
//! | [`score`] | node-side 7-dimension indexer score, `UptimeTracker` |
//! | [`threshold`] | the age-based threshold `min(80, 20 + 60·age/24 h)` |
//! | [`swim`] | SWIM events, the deduplicating hop-limited piggyback queue |
//! | [`witness`] | witness query messages, the cross-check rule |
//! | [`probe`] | bandwidth probe + indirect probe messages and evaluation |
//! | [`admission`] | indexer-side admission score |
//! | [`profile`] | connectivity profiles: planned absences, deadlines, record lifetimes |
//! | [`select`] | fill-rate / subnet-diversity candidate selection, `quick_score` |
//! | [`node`] | [`node::Pool`]: the node's indexer pool |
//! | [`indexer`] | [`indexer::Registry`]: the indexer's heartbeat sessions and responses |
//!
//! # Integration (swarm glue, owned by `net/`)
//! Five request-response protocols, each `request_response::Behaviour<codec::Codec<P>>`:
//!
//! ```text
//! heartbeat::PROTOCOL   /garden/heartbeat/1.0.0          codec::Codec<codec::HeartbeatProtocol>
//! witness::PROTOCOL     /garden/witness/1.0.0            codec::Codec<codec::WitnessProtocol>
//! probe::PROTOCOL       /garden/probe/1.0.0              codec::Codec<codec::ProbeProtocol>
//! probe::INDIRECT_PROTOCOL /garden/indirect-probe/1.0.0  codec::Codec<codec::IndirectProbeProtocol>
//! node::CANDIDATES_PROTOCOL /garden/indexer-candidates/1.0.0 codec::Codec<codec::CandidatesProtocol>
//! ```
//!
//! Node side: keep one [`node::Pool`]; call [`node::Pool::on_tick`] every second or so (it only
//! sends heartbeats that are due), feed back [`node::Pool::on_response`] /
//! [`node::Pool::on_failure`] for each heartbeat outcome, and perform the returned
//! [`node::Action`]s. Indexer side: keep one [`indexer::Registry`]; for every inbound heartbeat
//! call [`indexer::Registry::on_heartbeat`] and send the response it returns (after filling in the
//! DHT challenge result if it asks for one); call [`indexer::Registry::on_tick`] every ~30 s for
//! session expiry. Both sides answer witness queries and echo probes with the helpers in
//! [`witness`] and [`probe`].

pub mod admission;
pub mod codec;
pub mod heartbeat;
pub mod indexer;
pub mod node;
pub mod offline;
pub mod probe;
pub mod profile;
pub mod score;
pub mod select;
pub mod swim;
pub mod threshold;
pub mod wire;
pub mod witness;

pub use crate::time::Timestamp;

/// A peer and the addresses it can be reached at (Go's `peer.AddrInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer.
    pub peer: libp2p::PeerId,
    /// Its addresses (without the `/p2p/` suffix).
    pub addrs: Vec<libp2p::Multiaddr>,
}

impl PeerInfo {
    /// A peer with addresses.
    pub fn new(peer: libp2p::PeerId, addrs: Vec<libp2p::Multiaddr>) -> Self {
        PeerInfo { peer, addrs }
    }
}

/// Clamp a float into `[0, 1]`, mapping NaN to 0 (remote input can carry anything).
pub(crate) fn unit(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod maintenance_figures;

#[cfg(test)]
pub(crate) mod testutil {
    //! Deterministic keys and peer ids for tests and benches.
    use ed25519_dalek::SigningKey;
    use libp2p::PeerId;

    /// A signing key derived from one byte, and its libp2p peer id.
    pub(crate) fn key(seed: u8) -> (SigningKey, PeerId) {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let peer = crate::membership::heartbeat::peer_id_of(&sk.verifying_key());
        (sk, peer)
    }

    /// A peer id from one byte.
    pub(crate) fn peer(seed: u8) -> PeerId {
        key(seed).1
    }
}
