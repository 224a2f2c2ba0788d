//! Sidecars as separate `garden run` processes on 127.0.0.1, configured only by `GARDEN_*`
//! variables: an indexer and sites with the data plane, the NATS bridge and the operator API,
//! each with its own identity file and data directory, so a site can be killed with SIGKILL
//! and started again over the same files, as after a crash.
//!
//! Timers are the production ones except the heartbeat interval (1 s, so a woken site learns
//! in about a second that a peer waits for it) and the gater's per-peer rates, raised to
//! match it (the defaults allow 5 heartbeats a minute). A site behind a link proxy
//! ([`super::contact`]) announces the proxy's route (`network.announce`): peers reach it there
//! and nowhere else.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use garden_sidecar::cli::client::Client;
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::resources::Did;
use libp2p::{Multiaddr, PeerId};

/// How long a started process may take to listen (and answer on its API).
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A free loopback port (bound then released: the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The directory of one test's processes and their shared PSK; removed on drop unless
/// `GARDEN_TEST_KEEP=1` (then its path is printed, with every site's `garden.log`).
pub struct Net {
    pub root: PathBuf,
    psk: PathBuf,
    bin: PathBuf,
}

impl Drop for Net {
    fn drop(&mut self) {
        if std::env::var("GARDEN_TEST_KEEP").as_deref() == Ok("1") {
            eprintln!("kept {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

impl Net {
    /// A fresh directory for `test`'s sites, run from the `garden` binary at `bin`.
    ///
    /// The binary is pinned first (hard-linked, or copied, into the directory): a target
    /// directory shared with other checkouts of the crate may get another build of `garden`
    /// while the test runs, and a restart must run the same code as the first start.
    pub fn new(test: &str, bin: &Path) -> Net {
        let root = std::env::temp_dir().join(format!(
            "garden-sites-{test}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&root).expect("test directory");
        let psk = root.join("swarm.key");
        garden_sidecar::keys::psk::write_new_psk(&psk).expect("PSK file");
        let pinned = root.join("garden");
        if std::fs::hard_link(bin, &pinned).is_err() {
            std::fs::copy(bin, &pinned).expect("a copy of the garden binary");
        }
        Net {
            root,
            psk,
            bin: pinned,
        }
    }

    /// A site named `name` (not started): role `node`, no NATS, its API on a free port.
    pub fn site(&self, name: &str) -> Site {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).expect("site directory");
        let identity = NodeIdentity::generate();
        let key = dir.join("identity.key");
        identity.write(&key).expect("identity file");
        let port = free_port();
        let api_port = free_port();
        let env = vec![
            ("GARDEN_IDENTITY_KEY_FILE".into(), path(&key)),
            ("GARDEN_IDENTITY_PSK_FILE".into(), path(&self.psk)),
            (
                "GARDEN_NETWORK_LISTEN".into(),
                format!("/ip4/127.0.0.1/tcp/{port}"),
            ),
            ("GARDEN_DATA_PLANE_DIR".into(), path(&dir.join("data"))),
            ("GARDEN_API_LISTEN".into(), format!("127.0.0.1:{api_port}")),
            ("GARDEN_MEMBERSHIP_ALLOW_LOOPBACK".into(), "true".into()),
            (
                "GARDEN_MEMBERSHIP_HEARTBEAT_INTERVAL_SECS".into(),
                "1".into(),
            ),
            (
                "GARDEN_GATER_MAX_HEARTBEATS_PER_MINUTE".into(),
                "600".into(),
            ),
            (
                "GARDEN_GATER_MAX_REQUESTS_PER_MINUTE".into(),
                "100000".into(),
            ),
            ("GARDEN_GATER_MAX_GETS_PER_MINUTE".into(), "10000".into()),
            (
                "GARDEN_GATER_MAX_PUBLISHES_PER_MINUTE".into(),
                "1000".into(),
            ),
            ("GARDEN_DISCOVERY_NAME".into(), String::new()),
            (
                "RUST_LOG".into(),
                std::env::var("GARDEN_TEST_SITE_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ];
        Site {
            name: name.into(),
            did: Did::of(&identity),
            peer: identity.peer_id(),
            dir,
            port,
            api_port: Some(api_port),
            env,
            bin: self.bin.clone(),
            child: None,
            starts: 0,
        }
    }

    /// An indexer (no data plane service: no API, no NATS).
    pub fn indexer(&self, name: &str) -> Site {
        let mut s = self.site(name);
        s.set("GARDEN_NETWORK_ROLE", "indexer");
        s.set("GARDEN_API_LISTEN", "");
        s.api_port = None;
        s
    }
}

fn path(p: &Path) -> String {
    p.to_str().expect("UTF-8 test paths").to_string()
}

/// One `garden run` process (restartable over the same identity, ports and files); killed
/// on drop.
pub struct Site {
    pub name: String,
    pub did: Did,
    pub peer: PeerId,
    pub dir: PathBuf,
    /// The libp2p listen port.
    pub port: u16,
    pub api_port: Option<u16>,
    env: Vec<(String, String)>,
    bin: PathBuf,
    child: Option<Child>,
    /// How many times it was started.
    pub starts: u32,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Site {
    /// Sets (or replaces) a `GARDEN_*` variable for the next start.
    pub fn set(&mut self, key: &str, value: &str) -> &mut Site {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    /// Seeds: the given sites' addresses (`/p2p/` included).
    pub fn seeds(&mut self, seeds: &[&Site]) -> &mut Site {
        let list: Vec<String> = seeds.iter().map(|s| s.addr().to_string()).collect();
        self.set("GARDEN_NETWORK_SEEDS", &list.join(","))
    }

    /// Reached only at `route` (a contact proxy in front of it).
    pub fn behind(&mut self, route: SocketAddr) -> &mut Site {
        let a = format!("/ip4/{}/tcp/{}", route.ip(), route.port());
        self.set("GARDEN_NETWORK_ANNOUNCE", &a)
    }

    /// The NATS bridge on `url` under `prefix`.
    pub fn nats(&mut self, url: &str, prefix: &str) -> &mut Site {
        self.set("GARDEN_EVENTS_NATS_URL", url);
        self.set("GARDEN_EVENTS_PREFIX", prefix)
    }

    /// The listen address, `/p2p/` included.
    pub fn addr(&self) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", self.port, self.peer)
            .parse()
            .expect("a multiaddr")
    }

    /// The listen socket (what a contact route forwards to).
    pub fn socket(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn api(&self) -> Client {
        let port = self.api_port.expect("this site runs the API");
        Client::new(&format!("http://127.0.0.1:{port}")).expect("an API client")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Starts the process and waits until it listens (and its API answers).
    pub async fn start(&mut self) {
        assert!(!self.is_running(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("garden.log"))
            .expect("log file");
        let mut cmd = Command::new(&self.bin);
        cmd.args(["run"])
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn garden"));
        self.starts += 1;
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            assert!(
                self.is_running(),
                "{} exited at start; its log:\n{}",
                self.name,
                self.log_tail()
            );
            let listening = tokio::net::TcpStream::connect(self.socket()).await.is_ok();
            let api = match self.api_port {
                None => true,
                Some(_) => self.api().get("/v1/outbox").await.is_ok(),
            };
            if listening && api {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} not ready after {START_DEADLINE:?}; its log:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL (no clean-up of any kind), and waits for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The last lines of its log (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("garden.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// The `garden` binary the test was built with, unless `GARDEN_BIN` names another.
pub fn garden_bin(built: &str) -> PathBuf {
    std::env::var("GARDEN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(built))
}
