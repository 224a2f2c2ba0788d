//! Application wiring: loads keys, maps the file configuration into each module's runtime
//! configuration, builds the state machines (node pool, indexer registry) and starts the
//! node. `main.rs`, the tests and the simulation harness all go through here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use libp2p::{multiaddr::Protocol, pnet::PreSharedKey, Multiaddr, PeerId};

use crate::config::Config;
use crate::discovery::{location, publish::Presence, record, search};
use crate::dtn;
use crate::events;
use crate::keys::{self, NodeIdentity};
use crate::membership::{heartbeat::Signer, indexer, node, profile::Profile, swim, PeerInfo};
use crate::net::{
    self,
    behaviour::{ConnectionLimits, Params},
    gater,
    membership::without_p2p,
    Client, Membership, NodeConfig, Settings,
};
use crate::resources::usage::UsageReceiver;
use crate::time::{Clock, Timestamp};

pub use crate::net::Launch;

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
    #[error("data plane: {0}")]
    DataPlane(#[from] dtn::plane::Error),
    #[error(transparent)]
    Settings(#[from] crate::config::Error),
    #[error("events bridge: {0}")]
    Events(String),
    #[error("operator API: {0}")]
    Api(#[from] crate::api::Error),
}

fn parse_addrs(field: &'static str, list: &[String]) -> Result<Vec<Multiaddr>, Error> {
    list.iter()
        .map(|s| {
            s.parse::<Multiaddr>().map_err(|e| Error::Config {
                field,
                value: s.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Maps the file configuration into the node's runtime configuration. `born_at` is when this
/// process started (announced by indexers).
pub fn node_config(
    cfg: &Config,
    identity: &NodeIdentity,
    born_at: Timestamp,
) -> Result<NodeConfig, Error> {
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
    let profile = cfg.profile.profile();
    let role = cfg.network.role;
    let d = &cfg.discovery;
    let g = &cfg.gater;
    let loc = &cfg.location;
    let location = match (loc.latitude, loc.longitude) {
        (Some(lat), Some(lon)) => location::fuzz(
            loc.granularity,
            lat,
            lon,
            &identity.derive_key(location::SECRET_LABEL),
        ),
        _ => None,
    };
    Ok(NodeConfig {
        params: Params {
            dht_server: cfg.network.dht_server.unwrap_or(role.is_indexer()),
            query_timeout: Duration::from_secs(d.query_timeout_secs),
            gater: gater::Limits {
                max_new_peers_per_window: g.max_new_peers_per_window,
                max_new_peers_per_window_total: g.max_new_peers_per_window_total,
                window: Duration::from_secs(g.window_secs),
                rate_window: Duration::from_secs(g.rate_window_secs),
                heartbeats_per_minute: g.max_heartbeats_per_minute,
                publishes_per_minute: g.max_publishes_per_minute,
                gets_per_minute: g.max_gets_per_minute,
                requests_per_minute: g.max_requests_per_minute,
                strikes_before_ban: g.strikes_before_ban,
                ban: Duration::from_secs(g.ban_secs),
                weights: gater::Weights {
                    over_limit: g.strikes_over_limit,
                    malformed: g.strikes_malformed,
                    forged: g.strikes_forged,
                },
            },
            blacklist,
            request_timeout: Duration::from_secs(d.query_timeout_secs),
            replication: std::num::NonZeroUsize::new(d.dht_replication)
                .unwrap_or(std::num::NonZeroUsize::MIN),
            hide_listen_addrs: !cfg.network.announce.is_empty(),
            limits: ConnectionLimits {
                per_peer: cfg.network.max_connections_per_peer,
                total: cfg.network.max_connections,
                pending: cfg.network.max_pending_connections,
            },
        },
        settings: Settings {
            presence: Presence {
                role,
                name: d.name.clone(),
                // A record must outlive the longest absence our profile plans.
                ttl: profile.record_ttl(
                    Duration::from_secs(d.record_ttl_secs),
                    Duration::from_secs(cfg.profile.record_margin_secs),
                ),
                location,
                indexer_capacity: d.indexer_capacity,
                born_at,
                links: record::Links {
                    profile: (profile != Profile::Continuous).then_some(profile),
                    ..cfg.delegation.links()?
                },
            },
            publish: true,
            republish_interval: Duration::from_secs(d.republish_interval_secs),
            discovery_interval: Duration::from_secs(d.indexer_discovery_interval_secs),
            search: search::Rules {
                min_name_len: d.search_min_name_len,
                max_hits: d.search_max_hits,
                answers_per_sec: d.search_answers_per_sec,
            },
            seeds: parse_addrs("network.seeds", &cfg.network.seeds)?,
        },
        listen: parse_addrs("network.listen", &cfg.network.listen)?,
        announce: parse_addrs("network.announce", &cfg.network.announce)?,
        idle_connection_timeout: Duration::from_secs(cfg.network.idle_connection_timeout_secs),
    })
}

/// The membership state machines this process runs: a node pool (nodes, and pure indexers
/// with seeds, see `node::Config::for_process`) and an indexer registry (indexers).
pub fn membership(
    cfg: &Config,
    identity: &NodeIdentity,
    seeds: &[Multiaddr],
    born_at: Timestamp,
) -> Membership {
    let m = &cfg.membership;
    let d = &cfg.discovery;
    let role = cfg.network.role;
    let swim =
        swim::Config::new().with_suspect_timeout(Duration::from_secs(m.suspect_timeout_secs));
    let seeds: Vec<PeerInfo> = seeds
        .iter()
        .filter_map(|a| match a.iter().last() {
            Some(Protocol::P2p(peer)) => Some(PeerInfo::new(peer, vec![without_p2p(a)])),
            _ => None,
        })
        .collect();
    let pool = node::Config::new()
        .with_interval(Duration::from_secs(m.heartbeat_interval_secs))
        .with_swim(swim.clone())
        .with_eviction_grace(Duration::from_secs(m.eviction_grace_secs))
        .with_eviction_threshold(m.eviction_threshold_start, m.eviction_threshold_cap)
        .with_allow_loopback(m.allow_loopback)
        .with_profile(cfg.profile.profile())
        .with_seeds(seeds.clone())
        .for_process(
            role.is_node(),
            role.is_indexer(),
            !seeds.is_empty(),
            d.min_indexers,
            d.max_indexers,
        )
        .map(|pc| {
            let mut pool = node::Pool::new(pc, Signer::from_libp2p(identity.ed25519()), born_at)
                .with_dht_verifier(Arc::new(|did, payload, now| {
                    record::answers_challenge(did, payload, now.as_millis())
                }));
            pool.set_did(identity.did());
            if !d.name.is_empty() {
                pool.set_name(d.name.clone());
            }
            pool
        });
    let registry = role.is_indexer().then(|| {
        let rc = indexer::Config::new()
            .with_max_nodes(d.indexer_capacity)
            .with_session_ttl(Duration::from_secs(m.session_ttl_secs))
            .with_swim(swim)
            .with_allow_loopback(m.allow_loopback);
        indexer::Registry::new(rc, identity.peer_id(), born_at)
    });
    Membership::new(pool, registry)
        .with_heartbeat_interval(Duration::from_secs(m.heartbeat_interval_secs))
}

/// Confirmed usage waiting in the settlement channel (beyond, rows wait in redb).
pub const USAGE_CHANNEL: usize = 256;

/// A running node.
pub struct App {
    pub client: Client,
    /// The data plane's stream control (see `net::Started`).
    pub streams: libp2p_stream::Control,
    /// The DTN data plane (`[data_plane] enabled`).
    pub data_plane: Option<dtn::Handle>,
    /// Entries peers delivered to us, each once (taken by the application; by the data
    /// plane's service when NATS or the API is configured, and then `None` here).
    pub delivered: Option<tokio::sync::mpsc::Receiver<dtn::Delivered>>,
    /// The NATS bridge (`[events] nats_url`).
    pub events: Option<events::Handle>,
    /// The data plane's service (resources, bookings, steps), when NATS or the API is
    /// configured: what both transports call.
    pub ops: Option<events::Ops>,
    /// The local operator API (`[api] listen`).
    pub api: Option<crate::api::Handle>,
    /// Usage this site confirmed as a consumer, waiting in redb for settlement: taken in
    /// process through [`App::take_usage`], else by a signer over the API (`/v1/usage`).
    usage: Option<events::settle::Pending>,
    service: Vec<tokio::task::JoinHandle<()>>,
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
    pub async fn start_with(
        identity: Arc<NodeIdentity>,
        psk: PreSharedKey,
        cfg: &Config,
    ) -> Result<App, Error> {
        Self::start_with_clock(identity, psk, cfg, Clock::system(), |_| {}).await
    }

    /// Starts with given keys and protocol clock; `adjust` may change the mapped runtime
    /// configuration before the node starts (ephemeral clients, tests).
    pub async fn start_with_clock(
        identity: Arc<NodeIdentity>,
        psk: PreSharedKey,
        cfg: &Config,
        clock: Clock,
        adjust: impl FnOnce(&mut NodeConfig),
    ) -> Result<App, Error> {
        Self::launch(
            identity,
            psk,
            cfg,
            Launch {
                clock,
                ..Default::default()
            },
            adjust,
        )
        .await
    }

    /// Starts with everything explicit: keys, configuration, and how to run (clock,
    /// transport, wake-ups). The simulation harness starts its nodes here.
    pub async fn launch(
        identity: Arc<NodeIdentity>,
        psk: PreSharedKey,
        cfg: &Config,
        launch: Launch,
        adjust: impl FnOnce(&mut NodeConfig),
    ) -> Result<App, Error> {
        let born_at = launch.clock.now();
        let mut nc = node_config(cfg, &identity, born_at)?;
        adjust(&mut nc);
        let membership = membership(cfg, &identity, &nc.settings.seeds, born_at);
        tracing::info!(peer_id = %identity.peer_id(), did = %identity.did(), role = ?nc.settings.presence.role, "starting garden sidecar");
        let mut launch = launch;
        let clock = launch.clock.clone();
        let clock_for_events = launch.clock.clone();
        // The event loop's wake-ups go to the data plane (and to the caller's channel, if any).
        let (wake_tx, wake_rx) = tokio::sync::mpsc::channel(64);
        let (connected_tx, mut connected_rx) = tokio::sync::mpsc::channel(256);
        let outer_wake = if cfg.data_plane.enabled {
            launch.connected = Some(connected_tx);
            launch.wake.replace(wake_tx)
        } else {
            None
        };
        let key = identity.derive_key(dtn::KEY_LABEL);
        let dir = cfg.data_plane.dir.join(identity.peer_id().to_string());
        let me = identity.clone();
        let started = net::start(identity, psk, nc, membership, launch).await?;
        let (data_plane, delivered) = if cfg.data_plane.enabled {
            let (pending_tx, mut pending_rx) = tokio::sync::mpsc::channel(4);
            let (dtn_wake_tx, dtn_wake_rx) = tokio::sync::mpsc::channel(64);
            let (handle, delivered) = dtn::plane::spawn(
                dtn::plane::Config::new(dir.clone()),
                &key,
                started.streams.clone(),
                clock,
                dtn_wake_rx,
                pending_tx,
            )?;
            tokio::spawn(forward_wake(
                started.client.clone(),
                wake_rx,
                dtn_wake_tx,
                outer_wake,
            ));
            // A contact that starts is used at once (see `dtn::plane`).
            let plane = handle.clone();
            tokio::spawn(async move {
                while let Some(peer) = connected_rx.recv().await {
                    if plane.reachable(peer).await.is_err() {
                        break;
                    }
                }
            });
            let client = started.client.clone();
            tokio::spawn(async move {
                while let Some(peers) = pending_rx.recv().await {
                    if client.set_pending_contact(peers).await.is_err() {
                        break;
                    }
                }
            });
            (Some(handle), Some(delivered))
        } else {
            (None, None)
        };
        let api_addr = cfg.api.address()?;
        let wanted = !cfg.events.nats_url.is_empty() || api_addr.is_some();
        let (delivered, svc) = match (&data_plane, delivered) {
            (Some(plane), Some(delivered)) if wanted => {
                let svc = start_service(cfg, me, plane, &dir, clock_for_events, delivered).await?;
                (None, Some(svc))
            }
            (_, delivered) => (delivered, None),
        };
        let mut app = App {
            client: started.client,
            streams: started.streams,
            data_plane,
            delivered,
            events: None,
            ops: None,
            api: None,
            usage: None,
            service: Vec::new(),
            task: started.task,
        };
        if let Some(svc) = svc {
            app.events = svc.events;
            app.usage = Some(svc.usage);
            app.service = svc.tasks;
            if let Some(addr) = api_addr {
                app.api = Some(crate::api::spawn(addr, svc.ops.clone(), svc.desk).await?);
            }
            app.ops = Some(svc.ops);
        }
        Ok(app)
    }

    /// Stops the event loop and waits for it.
    pub async fn shutdown(self) {
        if let Some(a) = self.api {
            a.stop().await;
        }
        if let Some(e) = &self.events {
            e.stop().await;
        }
        // The service tasks hold the resources database: gone before a restart reopens it.
        for t in &self.service {
            t.abort();
        }
        for t in self.service {
            let _ = t.await;
        }
        if let Some(d) = &self.data_plane {
            d.stop().await;
        }
        let _ = self.client.shutdown().await;
        let _ = self.task.await;
    }

    /// Starts handing the usage this site confirms as a consumer to an in-process settlement
    /// module: the channel's receiver (bounded, [`USAGE_CHANNEL`]; each confirmed usage once
    /// per run, its `usage.pending` row removed once the channel took it). `None` without the
    /// data plane's service, or when already taken.
    ///
    /// Nothing is handed over until this is called: a sidecar whose signer runs in another
    /// process (`garden run`) leaves the rows in redb for `garden-signer take` (`/v1/usage`).
    pub fn take_usage(&mut self) -> Option<UsageReceiver> {
        let pending = self.usage.take()?;
        let (tx, rx) = crate::resources::usage::channel(USAGE_CHANNEL);
        self.service.push(tokio::spawn(events::settle::run(
            pending.handoff,
            tx,
            pending.notify,
        )));
        Some(rx)
    }

    /// Waits until the event loop ends.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// This site's place in a nano/master pair, from `[delegation]` (checked by the config).
fn standing(cfg: &Config) -> Result<crate::delegation::Standing, Error> {
    use crate::delegation::Standing;
    let links = cfg.delegation.links()?;
    let peer = |field: &'static str, s: &String| {
        s.parse::<PeerId>().map_err(|e| Error::Config {
            field,
            value: s.clone(),
            reason: e.to_string(),
        })
    };
    Ok(match (&links.master, links.nanos.is_empty()) {
        (Some(m), _) => Standing::Nano {
            master: peer("delegation.master", m)?,
        },
        (None, false) => Standing::Master {
            nanos: links
                .nanos
                .iter()
                .map(|n| peer("delegation.nanos", n))
                .collect::<Result<_, _>>()?,
        },
        (None, true) => Standing::Standalone,
    })
}

/// The data plane's service as started.
struct Started {
    ops: events::Ops,
    events: Option<events::Handle>,
    usage: events::settle::Pending,
    desk: crate::api::usage::Desk,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens the resources database (`<dir>/resources.redb`) and starts the data plane's service
/// over it, the data plane's deliveries and its outcomes (`events::core`), and the NATS bridge
/// when configured. Confirmed usage waits in `usage.pending` for whoever settles it.
async fn start_service(
    cfg: &Config,
    identity: Arc<NodeIdentity>,
    plane: &dtn::Handle,
    dir: &std::path::Path,
    clock: Clock,
    delivered: tokio::sync::mpsc::Receiver<dtn::Delivered>,
) -> Result<Started, Error> {
    use crate::resources::{db, handoff::Handoff, Did};
    let e = &cfg.events;
    let fail = |what: &str, err: &dyn std::fmt::Display| Error::Events(format!("{what}: {err}"));
    let subjects = events::subjects::Subjects::new(&e.prefix).ok_or_else(|| Error::Config {
        field: "events.prefix",
        value: e.prefix.clone(),
        reason: "not a subject prefix".into(),
    })?;
    let db = db::open(&dir.join(RESOURCES_FILE)).map_err(|err| fail("resources database", &err))?;
    let stores = events::Stores::open(db.clone(), Did::of(&identity))
        .map_err(|err| fail("resources stores", &err))?;
    let (desk_catalogue, desk_copies) = (stores.catalogue.clone(), stores.copies.clone());
    let handoff = Handoff::new(db.clone()).map_err(|err| fail("usage hand-over", &err))?;
    let fanout =
        events::fanout::Fanout::new(db.clone()).map_err(|err| fail("fan-out table", &err))?;
    let outcomes = plane.watch(4096).await?;
    let name = format!("garden-{}", identity.peer_id());
    let notify = Arc::new(tokio::sync::Notify::new());
    let service = events::Service::new(
        identity,
        stores,
        plane.clone(),
        clock.clone(),
        Duration::from_secs(e.delivery_ttl_secs),
    )
    .with_standing(standing(cfg)?)
    .with_handoff(notify.clone())
    .with_fanout(fanout);
    let pending = events::settle::Pending {
        handoff: handoff.clone(),
        notify,
    };
    let mut tasks = Vec::new();
    let (events, sink, requests) = if e.nats_url.is_empty() {
        (None, None, None)
    } else {
        let journal = events::journal::Journal::open(db, e.queue_capacity)
            .map_err(|err| fail("events journal", &err))?;
        let bcfg = events::bridge::Config {
            url: e.nats_url.clone(),
            subjects,
            jetstream: e.jetstream,
            name,
        };
        let (h, sink, requests) = events::bridge::connect(bcfg, journal, clock)
            .await
            .map_err(|err| fail("start", &err))?;
        (Some(h), Some(sink), Some(requests))
    };
    let (ops, core) = events::core::spawn(service, sink, delivered, outcomes);
    let desk = crate::api::usage::Desk {
        handoff,
        catalogue: desk_catalogue,
        copies: desk_copies,
        ops: ops.clone(),
    };
    tasks.push(core);
    if let (Some(h), Some(r)) = (&events, requests) {
        events::bridge::serve(h, r, ops.clone());
    }
    Ok(Started {
        ops,
        events,
        usage: pending,
        desk,
        tasks,
    })
}

/// The resources database inside the data plane's directory.
pub const RESOURCES_FILE: &str = "resources.redb";

/// Copies the event loop's wake-ups to the data plane and to the caller's channel. A woken
/// peer we are not connected to is looked up in the DHT (its `/node/` record, by the DID its
/// peer id carries) and dialled first, so the data plane's hello can reach it.
async fn forward_wake(
    client: Client,
    mut from: tokio::sync::mpsc::Receiver<Vec<PeerId>>,
    plane: tokio::sync::mpsc::Sender<Vec<PeerId>>,
    outer: Option<tokio::sync::mpsc::Sender<Vec<PeerId>>>,
) {
    while let Some(peers) = from.recv().await {
        if let Some(o) = &outer {
            let _ = o.try_send(peers.clone());
        }
        let connected = match client.status().await {
            Ok(st) => st.connected,
            Err(_) => break,
        };
        for p in peers.iter().filter(|p| !connected.contains(p)) {
            let Some(did) = keys::identity::did_of_peer(p) else {
                continue;
            };
            let Ok(found) = client.lookup(record::node_key(&did)).await else {
                tracing::debug!(peer = %p, "woken by a peer we cannot find");
                continue;
            };
            for a in found.record.addrs() {
                if client.dial(a.with(Protocol::P2p(*p))).await.is_ok() {
                    break;
                }
            }
        }
        if plane.send(peers).await.is_err() {
            break;
        }
    }
}

/// Runs a node until `shutdown` resolves; publishes signed tombstones on the way out
/// (voluntary departure).
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let app = App::start(&cfg).await?;
    shutdown.await;
    tracing::info!("shutting down");
    let leave = app.client.leave();
    if tokio::time::timeout(Duration::from_secs(5), leave)
        .await
        .is_err()
    {
        tracing::warn!("tombstones not confirmed before shutdown");
    }
    app.shutdown().await;
    Ok(())
}
