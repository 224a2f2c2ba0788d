//! The composed `NetworkBehaviour`: one behaviour per concern.
//!
//! | field | protocol | concern |
//! |---|---|---|
//! | `gater` | — | blacklist, bans, burst guard (first: denies before others see a connection) |
//! | `limits` | — | connections per peer, in all, and pending (libp2p's connection limits) |
//! | `identify` | `/garden/id/1.0.0` | learn listen addresses and protocols |
//! | `ping` | `/ipfs/ping/1.0.0` | liveness of idle connections |
//! | `kad` | `/garden/kad/1.0.0` | records, indexer registry (provider records) |
//! | `gossipsub` | meshsub | search queries |
//! | `search` | `/garden/search/1.0.0` | search results, indexer → searcher |
//! | `search_query` | `/garden/search-query/1.0.0` | a searcher asks one indexer directly |

//! | `heartbeat`, `witness`, `probe`, `indirect`, `candidates` | `/garden/<name>/1.0.0` | membership plane (codecs in `membership::codec`) |
//! | `stream` | the data plane's own protocols | raw streams for tasks outside the loop (`libp2p-stream`) |

use std::time::Duration;

use libp2p::{
    connection_limits, gossipsub, identify, kad, ping,
    request_response::{self, ProtocolSupport},
    swarm::NetworkBehaviour,
    StreamProtocol,
};

use super::{gater, metered};
use crate::discovery::{search, store::Store};
use crate::keys::NodeIdentity;
use crate::membership::codec as mcodec;
use crate::time::Clock;

/// Messages a gossipsub connection handler may queue (see `Behaviour::new`).
const GOSSIP_QUEUE_LEN: usize = 100;

/// Ping interval and timeout, in protocol time. Pool connections are exercised by heartbeats
/// every 20 s; pings only watch the others, so a minute is enough (libp2p's 15 s default cost
/// every connection ~30 KB an hour).
const PING_INTERVAL: Duration = Duration::from_secs(60);
const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// How often Kademlia refreshes its routing table (libp2p's default is 5 minutes; the
/// membership plane finds indexers through its own registry lookups).
const KAD_BOOTSTRAP_INTERVAL: Duration = Duration::from_secs(1800);

/// Kademlia protocol name (private prefix; Go: `/oc/kad/1.0.0`).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/garden/kad/1.0.0");
/// Largest Kademlia message read.
pub const KAD_MAX_PACKET: usize = 16 * 1024;
/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/garden/id/1.0.0";

/// Errors building the behaviour.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("gossipsub: {0}")]
    Gossipsub(String),
}

/// Parameters the event loop derives from the config.
#[derive(Debug, Clone)]
pub struct Params {
    pub dht_server: bool,
    pub query_timeout: Duration,
    pub gater: gater::Limits,
    pub blacklist: Vec<libp2p::PeerId>,
    pub request_timeout: Duration,
    pub limits: ConnectionLimits,
    /// Kademlia's `k`: servers a record is put to and a lookup asks.
    pub replication: std::num::NonZeroUsize,
    /// Identify tells only our external (announced) addresses, not the listen ones: peers
    /// behind a port forward or a link proxy must not learn a path around it.
    pub hide_listen_addrs: bool,
}

/// Connection limits (mapped from `[network]`): one admitted identity must not hold hundreds
/// of connections, and half-open handshakes are bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Established connections with one peer (2 leaves room for a simultaneous dial). [Default: 2]
    pub per_peer: u32,
    /// Established connections in all. [Default: 12 000]
    pub total: u32,
    /// Connections still in their handshake, each direction. [Default: 128]
    pub pending: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            per_peer: 2,
            total: 12_000,
            pending: 128,
        }
    }
}

/// The node's swarm.
pub type Swarm = libp2p::Swarm<Behaviour>;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub gater: gater::Behaviour,
    pub limits: connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    /// Kademlia, counted per peer (its inbound requests carry no peer id in its events).
    pub kad: metered::Metered<kad::Behaviour<Store>>,
    pub gossipsub: gossipsub::Behaviour,
    pub search: request_response::cbor::Behaviour<search::Results, search::Ack>,
    pub search_query: request_response::cbor::Behaviour<search::Query, search::Results>,
    pub heartbeat: request_response::Behaviour<mcodec::Codec<mcodec::HeartbeatProtocol>>,
    pub witness: request_response::Behaviour<mcodec::Codec<mcodec::WitnessProtocol>>,
    pub probe: request_response::Behaviour<mcodec::Codec<mcodec::ProbeProtocol>>,
    pub indirect: request_response::Behaviour<mcodec::Codec<mcodec::IndirectProbeProtocol>>,
    pub candidates: request_response::Behaviour<mcodec::Codec<mcodec::CandidatesProtocol>>,
    pub offline: request_response::Behaviour<mcodec::Codec<mcodec::OfflineProtocol>>,
    /// Streams for the data plane, which runs in its own tasks (`libp2p_stream::Control`).
    pub stream: libp2p_stream::Behaviour,
}

/// A request-response behaviour for one membership protocol.
fn membership_rr<P: mcodec::Protocol>(
    cfg: request_response::Config,
) -> request_response::Behaviour<mcodec::Codec<P>> {
    request_response::Behaviour::with_codec(
        mcodec::Codec::<P>::default(),
        [(P::NAME, ProtocolSupport::Full)],
        cfg,
    )
}

impl Behaviour {
    pub fn new(identity: &NodeIdentity, params: &Params, clock: &Clock) -> Result<Self, Error> {
        let peer_id = identity.peer_id();

        let mut kcfg = kad::Config::new(KAD_PROTOCOL);
        // libp2p's own timers run on real time: convert them with the protocol clock so a
        // simulation running faster keeps them in proportion (identity at production speed).
        kcfg.set_query_timeout(clock.real(params.query_timeout));
        kcfg.set_replication_factor(params.replication);
        kcfg.set_periodic_bootstrap_interval(Some(clock.real(KAD_BOOTSTRAP_INTERVAL)));
        kcfg.set_record_filtering(kad::StoreInserts::FilterBoth);
        // Owners re-sign and re-publish every republish interval; records carry their expiry.
        kcfg.set_publication_interval(None);
        // No replication by servers: owners re-sign and re-publish their own records, and a
        // server re-putting other peers' records to the other servers counted against their
        // publish limits until honest indexers banned each other (docs/DIVERGENCES.md). With
        // the job off, kad keeps no per-key skip set for inbound PUTs either.
        kcfg.set_replication_interval(None);
        // No write-back cache after lookups: it would put records to peers on the owner's
        // behalf, which servers refuse (only owners put their records).
        kcfg.set_caching(kad::Caching::Disabled);
        // The largest legitimate message (a record of 4 KiB with its key, or 20 closer peers
        // with their addresses) fits well below this; anything larger is refused on read.
        kcfg.set_max_packet_size(KAD_MAX_PACKET);
        kcfg.set_record_ttl(Some(crate::discovery::record::MAX_TTL));
        let store = Store::new(peer_id, Default::default(), clock.clone());
        let mut kad = kad::Behaviour::with_config(peer_id, store, kcfg);
        kad.set_mode(Some(if params.dht_server {
            kad::Mode::Server
        } else {
            kad::Mode::Client
        }));
        let kad = metered::Metered::new(
            kad,
            params.gater.requests_per_minute as u32,
            params.gater.rate_window,
            clock.clone(),
        );

        let gcfg = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            // Queries are forwarded only once the application accepted them (well formed,
            // within the forwarder's rate and the indexer's search budget): a flood is not
            // amplified by the mesh.
            .validate_messages()
            .max_transmit_size(search::MAX_QUERY_BYTES * 4)
            .heartbeat_interval(Duration::from_secs(1))
            // gossipsub reserves its handler queue up front for every connection, used or
            // not: the default 5 000 cost ~600 KiB per connection, which an indexer holding
            // one connection per node cannot afford (docs/PERFORMANCE.md, resident memory).
            // Search queries are rare and small; 100 queued messages is ample.
            .connection_handler_queue_len(GOSSIP_QUEUE_LEN)
            .build()
            .map_err(|e| Error::Gossipsub(e.to_string()))?;
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(identity.keypair().clone()),
            gcfg,
        )
        .map_err(|e| Error::Gossipsub(e.to_string()))?;

        let rr = request_response::Config::default()
            .with_request_timeout(clock.real(params.request_timeout));
        let search_codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(search::MAX_RESULTS_BYTES)
            .set_response_size_maximum(search::MAX_ACK_BYTES);
        let search = request_response::Behaviour::with_codec(
            search_codec,
            [(search::PROTOCOL, ProtocolSupport::Full)],
            rr.clone(),
        );
        let query_codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(search::MAX_QUERY_BYTES as u64)
            .set_response_size_maximum(search::MAX_RESULTS_BYTES);
        let search_query = request_response::Behaviour::with_codec(
            query_codec,
            [(search::QUERY_PROTOCOL, ProtocolSupport::Full)],
            rr.clone(),
        );

        Ok(Self {
            gater: gater::Behaviour::new(
                gater::State::new(params.gater.clone(), params.blacklist.iter().copied()),
                clock.clone(),
            ),
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established_per_peer(Some(params.limits.per_peer))
                    .with_max_established(Some(params.limits.total))
                    .with_max_pending_incoming(Some(params.limits.pending))
                    .with_max_pending_outgoing(Some(params.limits.pending)),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), identity.public())
                    .with_agent_version(format!("garden/{}", env!("CARGO_PKG_VERSION")))
                    .with_hide_listen_addrs(params.hide_listen_addrs),
            ),
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(clock.real(PING_INTERVAL))
                    .with_timeout(clock.real(PING_TIMEOUT)),
            ),
            kad,
            gossipsub,
            search,
            search_query,
            heartbeat: membership_rr(rr.clone()),
            witness: membership_rr(rr.clone()),
            probe: membership_rr(rr.clone()),
            indirect: membership_rr(rr.clone()),
            offline: membership_rr(rr.clone()),
            candidates: membership_rr(rr),
            stream: libp2p_stream::Behaviour::new(),
        })
    }
}
