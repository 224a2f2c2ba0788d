//! What the pool asks the glue to do ([`Action`]), what it reports ([`Event`], with typed
//! [`EvictReason`]s) and how a member looks from outside ([`MemberView`]).

use libp2p::{Multiaddr, PeerId};

use crate::membership::heartbeat::SignedHeartbeat;
use crate::membership::offline;
use crate::membership::score::IndexerScore;
use crate::membership::{PeerInfo, Timestamp};

/// Why an indexer left the pool.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EvictReason {
    /// Score below the age-based threshold.
    LowScore {
        /// The score.
        score: f64,
        /// The threshold.
        threshold: f64,
    },
    /// Suspicion timed out, or the indirect probe found it unreachable.
    Dead,
    /// It asked us to migrate and we could.
    Migrated,
}

/// Something the event loop must do.
// Actions are consumed at once by the event loop; boxing the common `SendHeartbeat` would only
// add an allocation per heartbeat.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send this heartbeat on `/garden/heartbeat/1.0.0` (add `addrs` to the swarm first) and
    /// report the outcome with [`Pool::on_response`] or [`Pool::on_failure`].
    SendHeartbeat {
        /// Recipient.
        peer: PeerId,
        /// Known addresses of the recipient.
        addrs: Vec<Multiaddr>,
        /// The signed request.
        request: SignedHeartbeat,
    },
    /// The indexer left the pool: drop its streams and addresses.
    Evict {
        /// The indexer.
        peer: PeerId,
        /// Why.
        reason: EvictReason,
    },
    /// Ask each witness `/garden/witness/1.0.0` about `indexer`, and report each answer
    /// (`None` for a failure) with [`Pool::on_witness_answer`] under this `query` id.
    QueryWitnesses {
        /// The indexer asked about.
        indexer: PeerId,
        /// Identifies this round of questions: answers to an older round are ignored.
        query: u64,
        /// Whom to ask.
        witnesses: Vec<PeerInfo>,
    },
    /// Ask each voter `/garden/indirect-probe/1.0.0` whether `target` answers; report each
    /// answer (failures as unreachable) with [`Pool::on_indirect_probe_answer`].
    IndirectProbe {
        /// The suspected indexer.
        target: PeerInfo,
        /// Voters.
        voters: Vec<PeerId>,
    },
    /// Ask each of `from` for `count` candidates on `/garden/indexer-candidates/1.0.0`; report
    /// each answer (failures as empty) with [`Pool::on_candidates`].
    RequestCandidates {
        /// Remaining indexers.
        from: Vec<PeerId>,
        /// Candidates wanted from each.
        count: u32,
    },
    /// Find up to `count` indexers in the DHT registry and report them with
    /// [`Pool::on_discovered`].
    DiscoverIndexers {
        /// How many to look for.
        count: usize,
    },
    /// Submit these offline heartbeats to `peer` (`/garden/offline-heartbeats/1.0.0`), one
    /// request per batch; failures are not retried (the online heartbeats resume anyway).
    SubmitOffline {
        /// The indexer.
        peer: PeerId,
        /// The batches, in order.
        batches: Vec<offline::Batch>,
    },
    /// These peers wait to reach us (DTN wake-up): contact them and flush.
    PendingCallers {
        /// The indexer that reported them.
        via: PeerId,
        /// The waiting peers.
        callers: Vec<PeerId>,
    },
}

/// What changed in the pool, for observers ([`Pool::take_events`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// An indexer entered the pool.
    Joined(PeerId),
    /// A pool member became suspected (SWIM).
    Suspected(PeerId),
    /// A suspicion was cleared (refuted) while the indexer stayed in the pool.
    Cleared(PeerId),
    /// An indexer left the pool.
    Evicted {
        /// The indexer.
        peer: PeerId,
        /// Why.
        reason: EvictReason,
    },
    /// Our clock, judged by the median of our indexers' clocks, crossed
    /// [`CLOCK_OFFSET_WARNING`] (either way): `offset_ms` is how far ahead (positive) or
    /// behind the network we are.
    ClockOffset {
        /// Our clock minus the indexers' median, in ms.
        offset_ms: i64,
    },
}

/// Our clock being off the network's by more than this is reported ([`Event::ClockOffset`]):
/// records we sign are judged by others' clocks (10 min ahead at most, and they must not have
/// expired), so an operator needs to know.
pub const CLOCK_OFFSET_WARNING: std::time::Duration = std::time::Duration::from_secs(60);

/// One pool member as seen from outside ([`Pool::members`]).
#[derive(Clone, Debug, PartialEq)]
pub struct MemberView {
    /// Peer and addresses.
    pub info: PeerInfo,
    /// Sticky seed.
    pub is_seed: bool,
    /// Last computed score (0–100).
    pub score: f64,
    /// Currently suspected (SWIM).
    pub suspected: bool,
    /// Highest incarnation known.
    pub incarnation: u64,
    /// Last reported fill rate.
    pub fill_rate: f64,
    /// Last successful heartbeat.
    pub last_seen: Option<Timestamp>,
    /// How far our clock is ahead of this indexer's (ms), from its last answer.
    pub clock_offset_ms: Option<i64>,
    /// Every observation behind the score (challenges, witnesses, uptime).
    pub detail: IndexerScore,
}
