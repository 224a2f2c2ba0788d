//! Swarm construction and the event loop.
//!
//! * [`transport`]: TCP + pnet + Noise + Yamux;
//! * [`behaviour`]: the composed `NetworkBehaviour`;
//! * [`gater`]: blacklist, bans, burst guard, behavioural rate limits (a behaviour);
//! * [`client`] / [`EventLoop`]: the Client/Command/EventLoop pattern of rust-libp2p's
//!   file-sharing example.

pub mod behaviour;
pub mod client;
mod event_loop;
pub mod gater;
mod kad_events;
mod membership_glue;
mod search_glue;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::{pnet::PreSharedKey, swarm::SwarmEvent, Multiaddr, Swarm};
use tokio::sync::mpsc;

pub use client::{Client, Lookup, Status};
pub use membership_glue::MembershipEvent;
pub use event_loop::{EventLoop, Settings};

use crate::keys::NodeIdentity;

/// Everything needed to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub params: behaviour::Params,
    pub settings: Settings,
    pub listen: Vec<Multiaddr>,
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

/// Builds the swarm, binds every listen address (waiting until each is bound, so callers can
/// read the real ports) and spawns the event loop. Returns the client and the loop's task.
pub async fn start(
    identity: Arc<NodeIdentity>,
    psk: PreSharedKey,
    cfg: NodeConfig,
) -> Result<(Client, tokio::task::JoinHandle<()>), Error> {
    let transport = transport::build(identity.keypair(), psk)?;
    let behaviour = behaviour::Behaviour::new(&identity, &cfg.params)?;
    let swarm_cfg = libp2p::swarm::Config::with_tokio_executor()
        .with_idle_connection_timeout(cfg.idle_connection_timeout);
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
            SwarmEvent::ListenerError { error, .. } | SwarmEvent::ListenerClosed { reason: Err(error), .. } => {
                return Err(Error::Listen {
                    addr: cfg.listen[bound].clone(),
                    reason: error.to_string(),
                })
            }
            _ => {}
        }
    }
    let (tx, rx) = mpsc::channel(256);
    let client = Client::new(tx, identity.peer_id(), identity.did());
    let event_loop = EventLoop::new(swarm, rx, identity, cfg.settings);
    let task = tokio::spawn(event_loop.run());
    Ok((client, task))
}
