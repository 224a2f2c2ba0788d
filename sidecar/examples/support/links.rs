//! What the DTN figure harnesses (`dtn_wakeup`, `dtn_ferry`, `dtn_drain`) share: real
//! sidecars in this process on loopback TCP (the production transport: TCP + pnet + Noise +
//! Yamux, system clock), optionally each behind a route of a contact proxy
//! (`tests/common/contact.rs`), a receiver that applies what it is delivered and counts it,
//! and small figure helpers. Prints figures; asserts only what makes a figure meaningless
//! (a message lost or applied twice).

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use garden_sidecar::app::{App, Launch};
use garden_sidecar::config::{Config, Role};
use garden_sidecar::dtn::{Entry, Level, Op};
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::time::Clock;
use libp2p::{multiaddr::Protocol, pnet::PreSharedKey, Multiaddr, PeerId};

/// The protocol of the harnesses' entries (no service handles it: the harness reads
/// `App::delivered` itself).
pub const PROTOCOL: &str = "/garden/bench/1.0.0";

pub fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A fresh directory under the temp directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("garden-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch directory");
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One sidecar of the harness.
pub struct Site {
    pub app: App,
    pub id: Arc<NodeIdentity>,
    pub port: u16,
}

impl Site {
    pub fn peer(&self) -> PeerId {
        self.id.peer_id()
    }

    /// Its listen address with `/p2p/`.
    pub fn addr(&self) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{}", self.port)
            .parse::<Multiaddr>()
            .unwrap()
            .with(Protocol::P2p(self.peer()))
    }
}

/// A site's configuration: `role`, listening on 127.0.0.1:`port`, announcing `announce` (a
/// contact route) when given, seeded with `seeds`, heartbeats every `heartbeat_secs`; the
/// data plane in `dir`, no NATS, no API (the harness reads the deliveries itself).
pub fn config(
    dir: &Path,
    role: Role,
    port: u16,
    announce: Option<SocketAddr>,
    seeds: &[Multiaddr],
    heartbeat_secs: u64,
) -> Config {
    let mut c = Config::default();
    c.network.role = role;
    c.network.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}")];
    c.network.announce = announce
        .map(|a| vec![format!("/ip4/{}/tcp/{}", a.ip(), a.port())])
        .unwrap_or_default();
    c.network.seeds = seeds.iter().map(|a| a.to_string()).collect();
    c.membership.allow_loopback = true;
    c.membership.heartbeat_interval_secs = heartbeat_secs;
    // The defaults allow 5 heartbeats a minute per peer.
    c.gater.max_heartbeats_per_minute = 600;
    c.gater.max_requests_per_minute = 100_000;
    c.gater.max_gets_per_minute = 10_000;
    c.gater.max_publishes_per_minute = 1_000;
    c.data_plane.dir = dir.to_path_buf();
    c.api.listen = String::new();
    c
}

/// Starts a site with a fresh identity.
pub async fn start(cfg: &Config, port: u16) -> Site {
    let id = Arc::new(NodeIdentity::generate());
    let app = App::launch(
        id.clone(),
        PreSharedKey::new([42u8; 32]),
        cfg,
        Launch {
            clock: Clock::system(),
            ..Default::default()
        },
        |_| {},
    )
    .await
    .expect("a sidecar starts");
    Site { app, id, port }
}

/// A critical entry `n` for `to` (its own key: nothing collapses), `size` bytes of payload
/// starting with `tag:n`.
pub fn entry(to: PeerId, tag: &str, n: usize, size: usize) -> Entry {
    let mut payload = format!("{tag}:{n}:").into_bytes();
    payload.resize(size.max(payload.len()), 0xA5);
    Entry {
        peer: to,
        protocol: PROTOCOL.into(),
        op: Op::Message,
        resource: format!("{tag}-{n}"),
        level: Level::Critical,
        payload,
        expires_at: Clock::system().now().plus(Duration::from_secs(86_400)),
    }
}

/// What a receiving site applied: payload tag (`tag:n`) → times applied.
#[derive(Clone, Default)]
pub struct Applied(pub Arc<Mutex<HashMap<String, u32>>>);

impl Applied {
    pub fn total(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Messages applied more than once.
    pub fn twice(&self) -> usize {
        self.0.lock().unwrap().values().filter(|n| **n > 1).count()
    }
}

/// The receiving application: takes `site`'s deliveries, counts each by its payload tag, and
/// says it is done with it (the plane then records and acknowledges it).
pub fn apply_all(site: &mut Site) -> Applied {
    let mut rx = site
        .app
        .delivered
        .take()
        .expect("the data plane's deliveries");
    let applied = Applied::default();
    let a = applied.clone();
    tokio::spawn(async move {
        while let Some(d) = rx.recv().await {
            let text = String::from_utf8_lossy(&d.payload);
            let tag: String = text.splitn(3, ':').take(2).collect::<Vec<_>>().join(":");
            *a.0.lock().unwrap().entry(tag).or_default() += 1;
            d.done();
        }
    });
    applied
}

/// The `p`-th percentile (0–100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .try_init();
}
