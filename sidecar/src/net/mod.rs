//! Swarm construction and the event loop.
//!
//! * [`transport`]: TCP (and the in-process memory transport) + pnet + Noise + Yamux;
//! * [`behaviour`]: the composed `NetworkBehaviour`;
//! * [`gater`]: blacklist, bans, burst guard, behavioural rate limits (a behaviour);
//! * [`client`] / [`EventLoop`]: the Client/Command/EventLoop pattern of rust-libp2p's
//!   file-sharing example; the loop owns one glue value per concern — `dht`, `search`,
//!   [`membership`] — and only dispatches between them.

pub mod behaviour;
pub mod client;
mod dht;
mod event_loop;
pub mod gater;
pub mod membership;
pub mod metered;
mod search;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::{pnet::PreSharedKey, swarm::SwarmEvent, Multiaddr};
use tokio::sync::mpsc;

pub use behaviour::Swarm;
pub use client::{Client, Lookup, Status};
pub use event_loop::{EventLoop, Settings};
pub use membership::Membership;

use crate::keys::NodeIdentity;
use crate::time::Clock;

/// Everything needed to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub params: behaviour::Params,
    pub settings: Settings,
    /// TCP multiaddrs, or `/memory/<n>` for in-process networks (tests, simulations).
    pub listen: Vec<Multiaddr>,
    /// Where others reach us when it is not `listen` (port forward, NAT, link proxy): added as
    /// the swarm's external addresses, which then replace the listen addresses in our records
    /// (and in identify, with `Params::hide_listen_addrs`). Empty: the listen addresses.
    pub announce: Vec<Multiaddr>,
    pub idle_connection_timeout: Duration,
}

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Transport(#[from] transport::Error),
    #[error(transparent)]
    Behaviour(#[from] behaviour::Error),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
}

/// How to run a node beyond its configuration: the protocol clock, the transport (default: TCP
/// and memory with pnet + Noise + Yamux, see [`transport::build`]) and where wake-ups go.
#[derive(Default)]
pub struct Launch {
    pub clock: Clock,
    /// A ready transport (simulations build theirs with [`transport::secure`]).
    pub transport: Option<transport::Boxed>,
    /// Receives the peers indexers say are waiting to reach us (DTN wake-up).
    pub wake: Option<mpsc::Sender<Vec<libp2p::PeerId>>>,
    /// Receives every peer a connection is established with (the contact starts: the data
    /// plane delivers what waits for it at once).
    pub connected: Option<mpsc::Sender<libp2p::PeerId>>,
}

/// A started node: its client, the data plane's stream control, and the loop's task.
pub struct Started {
    pub client: Client,
    /// Opens and accepts the data plane's streams (cloneable, usable from any task).
    pub streams: libp2p_stream::Control,
    pub task: tokio::task::JoinHandle<()>,
}

/// Builds the swarm, binds every listen address (waiting until each is bound, so callers can
/// read the real ports) and spawns the event loop with the given membership state.
pub async fn start(
    identity: Arc<NodeIdentity>,
    psk: PreSharedKey,
    cfg: NodeConfig,
    membership: Membership,
    launch: Launch,
) -> Result<Started, Error> {
    let Launch {
        clock,
        transport,
        wake,
        connected,
    } = launch;
    let transport = match transport {
        Some(t) => t,
        None => transport::build(identity.keypair(), psk)?,
    };
    let behaviour = behaviour::Behaviour::new(&identity, &cfg.params, &clock)?;
    let swarm_cfg = libp2p::swarm::Config::with_tokio_executor()
        .with_idle_connection_timeout(clock.real(cfg.idle_connection_timeout));
    let mut swarm = Swarm::new(transport, behaviour, identity.peer_id(), swarm_cfg);
    for addr in &cfg.listen {
        swarm.listen_on(addr.clone()).map_err(|e| Error::Listen {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
    }
    let mut bound = 0;
    while bound < cfg.listen.len() {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                bound += 1;
            }
            SwarmEvent::ListenerError { error, .. }
            | SwarmEvent::ListenerClosed {
                reason: Err(error), ..
            } => {
                return Err(Error::Listen {
                    addr: cfg.listen[bound].clone(),
                    reason: error.to_string(),
                })
            }
            _ => {}
        }
    }
    for addr in &cfg.announce {
        swarm.add_external_address(addr.clone());
    }
    let streams = swarm.behaviour().stream.new_control();
    let (tx, rx) = mpsc::channel(256);
    let client = Client::new(tx, identity.peer_id(), identity.did());
    let mut event_loop = EventLoop::new(swarm, rx, identity, cfg.settings, membership, clock);
    if let Some(w) = wake {
        event_loop = event_loop.with_wake(w);
    }
    if let Some(c) = connected {
        event_loop = event_loop.with_connected(c);
    }
    let task = tokio::spawn(event_loop.run());
    Ok(Started {
        client,
        streams,
        task,
    })
}
