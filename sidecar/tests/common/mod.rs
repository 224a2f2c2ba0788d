//! Helpers for multi-node tests: nodes on loopback TCP in one process, a shared PSK, and
//! event-driven waits with generous deadlines (never sleep-then-assert).

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use garden_sidecar::app::{App, Launch};
use garden_sidecar::config::{Config, Role};
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::time::Clock;
use libp2p::{multiaddr::Protocol, pnet::PreSharedKey, Multiaddr};

pub mod contact;
pub mod nats;
pub mod sites;

/// Deadline for anything a test waits for.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn psk() -> PreSharedKey {
    PreSharedKey::new([42u8; 32])
}

pub fn other_psk() -> PreSharedKey {
    PreSharedKey::new([7u8; 32])
}

pub fn config(role: Role, name: &str, seeds: &[Multiaddr]) -> Config {
    let mut c = Config::default();
    c.network.role = role;
    c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    c.network.seeds = seeds.iter().map(|a| a.to_string()).collect();
    c.discovery.name = name.into();
    c.log.filter = "warn".into();
    // Each identity gets its own subdirectory; keep them out of the source tree.
    c.data_plane.dir = test_data_dir();
    // Many sites share this process: none takes the default API port (a test that wants
    // the API sets `api.listen` to "127.0.0.1:0" and reads `App::api`).
    c.api.listen = String::new();
    c
}

/// This test process's data directory (`<tmp>/garden-test-data-<pid>`). The first call
/// removes the directories of earlier test processes that are gone (a test that fails or is
/// killed never cleans up after itself, and each run leaves one directory per node).
pub fn test_data_dir() -> std::path::PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    const PREFIX: &str = "garden-test-data-";
    let tmp = std::env::temp_dir();
    SWEPT.call_once(|| {
        let Ok(entries) = std::fs::read_dir(&tmp) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(PREFIX) else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    });
    tmp.join(format!("{PREFIX}{}", std::process::id()))
}

/// The same, on libp2p's in-memory transport (no sockets), loopback addresses allowed.
pub fn mem_config(role: Role, name: &str, seeds: &[Multiaddr]) -> Config {
    let mut c = config(role, name, seeds);
    c.network.listen = vec!["/memory/0".into()];
    c.membership.allow_loopback = true;
    c
}

/// The first in-memory listen address of `app`, with `/p2p/<peer id>`.
pub async fn mem_addr(app: &App) -> Multiaddr {
    let st = app.client.status().await.expect("status");
    let a = st
        .listen_addrs
        .iter()
        .find(|a| matches!(a.iter().next(), Some(Protocol::Memory(_))))
        .expect("a memory address");
    a.clone().with(Protocol::P2p(st.peer_id))
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

pub async fn start(cfg: &Config) -> App {
    start_with_psk(cfg, psk()).await
}

pub async fn start_with_psk(cfg: &Config, psk: PreSharedKey) -> App {
    init_tracing();
    App::start_with(Arc::new(NodeIdentity::generate()), psk, cfg)
        .await
        .expect("node starts")
}

/// First listen address with `/p2p/<peer id>`.
pub async fn addr(app: &App) -> Multiaddr {
    let st = app.client.status().await.expect("status");
    st.listen_addrs[0].clone().with(Protocol::P2p(st.peer_id))
}

/// Awaits `f` with the test deadline.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    within_for(DEADLINE, what, f).await
}

/// Awaits `f` with an explicit deadline.
pub async fn within_for<T>(deadline: Duration, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(deadline, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {deadline:?}: {what}"))
}

/// Retries `f` until it returns `Some`, with a short pause between attempts (each attempt is
/// itself a network round trip), failing after the test deadline.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    within(what, async {
        loop {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

/// Publishes `app`'s records, retrying until a DHT server stored them.
pub async fn publish(app: &App) {
    eventually("publish", || async { app.client.publish().await.ok() }).await
}

/// Starts `id` with `cfg` on a protocol clock sharing `clock`'s origin (the data-plane and
/// events tests run several sites on one scaled clock).
pub async fn launch(clock: &Clock, id: &Arc<NodeIdentity>, cfg: &Config) -> App {
    init_tracing();
    App::launch(
        id.clone(),
        psk(),
        cfg,
        Launch {
            clock: clock.shared_origin(0),
            ..Default::default()
        },
        |_| {},
    )
    .await
    .expect("node starts")
}
