//! Application wiring: loads keys, maps the file configuration into each module's runtime
//! configuration and starts the node. `main.rs` and the tests both go through here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use libp2p::{pnet::PreSharedKey, Multiaddr, PeerId};

use crate::config::Config;
use crate::discovery::location;
use crate::keys::{self, NodeIdentity};
use crate::membership::{indexer, node, swim};
use crate::net::{self, behaviour::Params, gater::Limits, Client, NodeConfig, Settings};

/// Errors starting the application.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Keys(#[from] keys::Error),
    #[error("invalid {field} entry {value:?}: {reason}")]
    Config {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Net(#[from] net::Error),
}

/// Maps the file configuration into the node's runtime configuration.
pub fn node_config(cfg: &Config, identity: &NodeIdentity) -> Result<NodeConfig, Error> {
    let parse = |field: &'static str, list: &[String]| -> Result<Vec<Multiaddr>, Error> {
        list.iter()
            .map(|s| {
                s.parse::<Multiaddr>().map_err(|e| Error::Config {
                    field,
                    value: s.clone(),
                    reason: e.to_string(),
                })
            })
            .collect()
    };
    let blacklist = cfg
        .gater
        .blacklist
        .iter()
        .map(|s| {
            s.parse::<PeerId>().map_err(|e| Error::Config {
                field: "gater.blacklist",
                value: s.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let role = cfg.network.role;
    let d = &cfg.discovery;
    let g = &cfg.gater;
    let loc = &cfg.location;
    let m = &cfg.membership;
    let location = match (loc.latitude, loc.longitude) {
        (Some(lat), Some(lon)) => {
            location::fuzz(loc.granularity, lat, lon, &identity.public().encode_protobuf())
        }
        _ => None,
    };
    Ok(NodeConfig {
        params: Params {
            dht_server: cfg.network.dht_server.unwrap_or(role.is_indexer()),
            query_timeout: Duration::from_secs(d.query_timeout_secs),
            gater: Limits {
                max_new_peers_per_window: g.max_new_peers_per_window,
                window: Duration::from_secs(g.window_secs),
                rate_window: Duration::from_secs(g.rate_window_secs),
                heartbeats_per_minute: g.max_heartbeats_per_minute,
                publishes_per_minute: g.max_publishes_per_minute,
                gets_per_minute: g.max_gets_per_minute,
                strikes_before_ban: g.strikes_before_ban,
                ban: Duration::from_secs(g.ban_secs),
            },
            blacklist,
            request_timeout: Duration::from_secs(d.query_timeout_secs),
        },
        settings: Settings {
            role,
            name: d.name.clone(),
            record_ttl: Duration::from_secs(d.record_ttl_secs),
            republish_interval: Duration::from_secs(d.republish_interval_secs),
            search_min_name_len: d.search_min_name_len,
            search_max_hits: d.search_max_hits,
            min_indexers: d.min_indexers,
            max_indexers: d.max_indexers,
            indexer_capacity: d.indexer_capacity,
            discovery_interval: Duration::from_secs(d.indexer_discovery_interval_secs),
            location,
            seeds: parse("network.seeds", &cfg.network.seeds)?,
            publish: true,
            pool: node::Config::new()
                .with_interval(Duration::from_secs(m.heartbeat_interval_secs))
                .with_swim(swim::Config::new().with_suspect_timeout(Duration::from_secs(m.suspect_timeout_secs)))
                .with_eviction_grace(Duration::from_secs(m.eviction_grace_secs))
                .with_eviction_threshold(m.eviction_threshold_start, m.eviction_threshold_cap)
                .with_allow_loopback(m.allow_loopback),
            registry: indexer::Config::new()
                .with_session_ttl(Duration::from_secs(m.session_ttl_secs))
                .with_swim(swim::Config::new().with_suspect_timeout(Duration::from_secs(m.suspect_timeout_secs)))
                .with_allow_loopback(m.allow_loopback),
        },
        listen: parse("network.listen", &cfg.network.listen)?,
        idle_connection_timeout: Duration::from_secs(cfg.network.idle_connection_timeout_secs),
    })
}

/// A running node.
pub struct App {
    pub client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl App {
    /// Loads the identity (generated on first start) and the PSK named by the config.
    pub async fn start(cfg: &Config) -> Result<App, Error> {
        let identity = NodeIdentity::load_or_generate(&cfg.identity.key_file)?;
        let psk = keys::load_psk(&cfg.identity.psk_file)?;
        Self::start_with(Arc::new(identity), psk, cfg).await
    }

    /// Starts with given keys (tests, `garden search`).
    pub async fn start_with(identity: Arc<NodeIdentity>, psk: PreSharedKey, cfg: &Config) -> Result<App, Error> {
        let nc = node_config(cfg, &identity)?;
        Self::start_node(identity, psk, nc).await
    }

    /// Starts from an already mapped runtime configuration.
    pub async fn start_node(identity: Arc<NodeIdentity>, psk: PreSharedKey, nc: NodeConfig) -> Result<App, Error> {
        tracing::info!(peer_id = %identity.peer_id(), did = %identity.did(), role = ?nc.settings.role, "starting garden sidecar");
        let (client, task) = net::start(identity, psk, nc).await?;
        Ok(App { client, task })
    }

    /// Stops the event loop and waits for it.
    pub async fn shutdown(self) {
        let _ = self.client.shutdown().await;
        let _ = self.task.await;
    }

    /// Waits until the event loop ends.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Runs a node until `shutdown` resolves; publishes signed tombstones on the way out
/// (voluntary departure).
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let app = App::start(&cfg).await?;
    shutdown.await;
    tracing::info!("shutting down");
    let leave = app.client.leave();
    if tokio::time::timeout(Duration::from_secs(5), leave).await.is_err() {
        tracing::warn!("tombstones not confirmed before shutdown");
    }
    app.shutdown().await;
    Ok(())
}
