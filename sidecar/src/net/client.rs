//! The cloneable handle to a running node (the file-sharing example's `Client`): each method
//! sends a `Command` with a oneshot reply channel to the [`super::EventLoop`].

use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use libp2p::{kad, swarm::DialError, Multiaddr, PeerId};
use tokio::sync::mpsc;

use crate::discovery::{record::Verified, registry::Candidate, search, store};
use crate::membership::{node, node::MemberView, PeerInfo};

/// Errors returned to callers; each keeps its source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the node has stopped")]
    Closed,
    #[error("{addr} has no /p2p/<peer id> suffix")]
    NoPeerId { addr: Multiaddr },
    #[error("dialing {peer} failed")]
    Dial {
        peer: PeerId,
        #[source]
        source: Arc<DialError>,
    },
    #[error("no valid record under {key}")]
    NotFound { key: String },
    #[error("this node does not publish records (ephemeral client, or it left)")]
    NotPublishing,
    #[error("the local store refused our record under {key}")]
    LocalStore {
        key: String,
        #[source]
        source: store::Error,
    },
    #[error("no DHT server stored our record under {key}")]
    Publish {
        key: String,
        #[source]
        source: kad::PutRecordError,
    },
    #[error("invalid search")]
    Search(#[source] search::Error),
}

/// A successful lookup.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub record: Verified,
    /// Time from the start of the query to the first valid record.
    pub elapsed: Duration,
    /// Requests the query had sent by then (an upper bound of the hops).
    pub requests: u32,
}

/// Snapshot of a node's state.
#[derive(Debug, Clone)]
pub struct Status {
    pub peer_id: PeerId,
    pub did: String,
    pub listen_addrs: Vec<Multiaddr>,
    pub connected: Vec<PeerId>,
    pub indexers: Vec<PeerId>,
    /// Node: each pool member with its last score, seed flag and last answered heartbeat.
    pub members: Vec<MemberView>,
    /// Node: how far our clock is ahead of our indexers' (median, ms), when known.
    pub clock_offset_ms: Option<i64>,
    /// Pool members currently suspected (SWIM).
    pub suspected: Vec<PeerId>,
    pub stored_records: usize,
    /// Indexers this process holds a provider record of, for the registry key.
    pub registry_providers: usize,
    /// Peers currently banned by the gater (not the static blacklist).
    pub banned: Vec<PeerId>,
    /// Indexer: live heartbeat sessions (0 on pure nodes).
    pub heartbeat_sessions: usize,
    /// Indexer: each heartbeating node with the addresses witnesses are given for it.
    pub sessions: Vec<PeerInfo>,
    /// Inbound connections refused by the gater since start.
    pub denied_connections: u64,
}

/// A search to start: what, how long it may stay idle, which indexers to ask directly, and
/// where verified hits go.
#[derive(Debug)]
pub(crate) struct SearchRequest {
    pub(crate) needle: search::Needle,
    pub(crate) idle: Duration,
    pub(crate) direct: Vec<PeerInfo>,
    pub(crate) hits: mpsc::Sender<Verified>,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// Commands understood by the event loop.
#[derive(Debug)]
pub(crate) enum Command {
    Status(Reply<Status>),
    Dial(Multiaddr, Reply<()>),
    Publish(Reply<()>),
    Lookup(String, Reply<Lookup>),
    Search(SearchRequest, Reply<()>),
    DiscoverIndexers(Reply<Vec<Candidate>>),
    Leave(Reply<()>),
    MembershipEvents(Reply<tokio::sync::broadcast::Receiver<node::Event>>),
    SetPendingContact(Vec<PeerId>, Reply<()>),
    Shutdown(Reply<()>),
}

/// Handle to a running node.
#[derive(Clone, Debug)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
    did: String,
}

impl Client {
    pub(crate) fn new(tx: mpsc::Sender<Command>, peer_id: PeerId, did: String) -> Self {
        Self { tx, peer_id, did }
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    pub fn did(&self) -> &str {
        &self.did
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    pub async fn status(&self) -> Result<Status, Error> {
        self.call(Command::Status).await
    }

    /// Dials `addr` (must end with `/p2p/<peer id>`); resolves once connected.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), Error> {
        self.call(|r| Command::Dial(addr, r)).await
    }

    /// Re-signs and publishes our records now; resolves when the `/node/` record was stored
    /// by at least one DHT server.
    pub async fn publish(&self) -> Result<(), Error> {
        self.call(Command::Publish).await
    }

    /// Looks up one DHT key (`/node/<did>`, `/name/<name>`, `/indexer/<peer id>`) and returns
    /// the first valid record.
    pub async fn lookup(&self, key: impl Into<String>) -> Result<Lookup, Error> {
        let key = key.into();
        self.call(|r| Command::Lookup(key, r)).await
    }

    /// Starts a distributed search. Verified hits arrive on the receiver as they are found;
    /// it closes after `idle` without a new hit.
    pub async fn search(
        &self,
        needle: search::Needle,
        idle: Duration,
    ) -> Result<mpsc::Receiver<Verified>, Error> {
        self.search_at(needle, idle, Vec::new()).await
    }

    /// [`Client::search`], and besides ask each of `indexers` directly
    /// (`/garden/search-query/1.0.0`): their answers come back on our own request, so they
    /// arrive even when no indexer can reach us (an ephemeral client with no published record).
    pub async fn search_at(
        &self,
        needle: search::Needle,
        idle: Duration,
        indexers: Vec<PeerInfo>,
    ) -> Result<mpsc::Receiver<Verified>, Error> {
        let (tx, rx) = mpsc::channel(64);
        let req = SearchRequest {
            needle,
            idle,
            direct: indexers,
            hits: tx,
        };
        self.call(|r| Command::Search(req, r)).await?;
        Ok(rx)
    }

    /// Asks the DHT registry for indexers (provider records + signed load records).
    pub async fn discover_indexers(&self) -> Result<Vec<Candidate>, Error> {
        self.call(Command::DiscoverIndexers).await
    }

    /// Voluntary departure: publishes signed tombstones and stops republishing.
    pub async fn leave(&self) -> Result<(), Error> {
        self.call(Command::Leave).await
    }

    /// Subscribes to the node pool's changes (joined, suspected, cleared, evicted).
    pub async fn membership_events(
        &self,
    ) -> Result<tokio::sync::broadcast::Receiver<node::Event>, Error> {
        self.call(Command::MembershipEvents).await
    }

    /// The peers we hold undelivered data for: our heartbeats carry them to the indexers,
    /// which tell each of them we wait (DTN wake-up). Replaces the previous list.
    pub async fn set_pending_contact(&self, peers: Vec<PeerId>) -> Result<(), Error> {
        self.call(|r| Command::SetPendingContact(peers, r)).await
    }

    /// Stops the event loop (the swarm and its connections are dropped).
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.call(Command::Shutdown).await
    }
}
