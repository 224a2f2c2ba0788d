//! Sidecar configuration: a TOML file plus `GARDEN_<SECTION>_<KEY>` environment overrides.
//!
//! Every key has a default (the `default` module below); the shipped `sidecar/config.toml`
//! documents each key with `[Default: x]` and a test checks that it parses to
//! [`Config::default`]. Unknown keys are errors (`deny_unknown_fields`), so a typo never
//! silently falls back to a default. Protocol modules never read this file: `app.rs` maps
//! these sections into their own runtime configs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::discovery::search;
use crate::membership::{indexer, node};
use crate::net::gater;

/// Environment variable prefix for overrides: `GARDEN_NETWORK_ROLE=indexer`.
pub const ENV_PREFIX: &str = "GARDEN_";

/// Errors while loading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("environment override {var} does not name a config section")]
    UnknownEnvSection { var: String },
    #[error("invalid value for {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

pub use crate::discovery::Role;

/// Top-level configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub identity: IdentityConfig,
    pub network: NetworkConfig,
    pub discovery: DiscoveryConfig,
    pub gater: GaterConfig,
    pub location: LocationConfig,
    pub membership: MembershipConfig,
    pub profile: ProfileConfig,
    pub delegation: DelegationConfig,
    pub data_plane: DataPlaneConfig,
    pub events: EventsConfig,
    pub api: ApiConfig,
    pub log: LogConfig,
}

/// Membership plane timing (heartbeats, SWIM, sessions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MembershipConfig {
    /// Node → indexer heartbeat interval. [Default: 20]
    pub heartbeat_interval_secs: u64,
    /// SWIM: a suspected indexer is declared dead after this long. [Default: 180]
    pub suspect_timeout_secs: u64,
    /// Online time an indexer needs before it can be evicted on score. [Default: 120]
    pub eviction_grace_secs: u64,
    /// Node side: score (0–100) an indexer must keep at age zero; the bar ramps linearly to
    /// `eviction_threshold_cap` over 24 h. [Default: 20]
    pub eviction_threshold_start: f64,
    /// Node side: score an indexer known for 24 h or more must keep. [Default: 80]
    pub eviction_threshold_cap: f64,
    /// Indexer: a heartbeat session expires after this long without a heartbeat. [Default: 120]
    pub session_ttl_secs: u64,
    /// Accept loopback addresses for indexers and witnesses (single-host tests only). [Default: false]
    pub allow_loopback: bool,
}

/// Key files. The config names files; it never holds key material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Ed25519 libp2p identity (protobuf encoding), generated on first start. [Default: "garden-identity.key"]
    pub key_file: PathBuf,
    /// Private-network pre-shared key in the go-libp2p `swarm.key` format. [Default: "swarm.key"]
    pub psk_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Roles played by this process. [Default: "node"]
    pub role: Role,
    /// Listen multiaddrs (TCP only: QUIC cannot run under pnet). [Default: ["/ip4/0.0.0.0/tcp/4001"]]
    pub listen: Vec<String>,
    /// Seed indexers, multiaddrs ending with `/p2p/<peer id>`. [Default: []]
    pub seeds: Vec<String>,
    /// Addresses others reach us at, published in our records and told by identify instead of
    /// the listen addresses (a port forward, a NAT, a link proxy in front of us). Empty: the
    /// listen addresses. [Default: []]
    pub announce: Vec<String>,
    /// Run Kademlia in server mode. Unset: server iff the role includes indexer. [Default: unset]
    pub dht_server: Option<bool>,
    /// Close connections idle for this long. [Default: 60]
    pub idle_connection_timeout_secs: u64,
    /// Established connections allowed with one peer. [Default: 2]
    pub max_connections_per_peer: u32,
    /// Established connections allowed in all. [Default: 12000]
    pub max_connections: u32,
    /// Connections allowed in their handshake at once, each direction. [Default: 128]
    pub max_pending_connections: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// Human name published under `/name/<name>`; empty publishes no name record. [Default: ""]
    pub name: String,
    /// Lifetime of our signed records. [Default: 1800]
    pub record_ttl_secs: u64,
    /// How often we re-sign and re-publish our records (must be < record_ttl_secs). [Default: 600]
    pub republish_interval_secs: u64,
    /// Kademlia query timeout. [Default: 10]
    pub query_timeout_secs: u64,
    /// Kademlia's replication factor `k`: DHT servers each record is put to. [Default: 8]
    pub dht_replication: usize,
    /// A search ends when no new result arrived for this long. [Default: 5]
    pub search_idle_timeout_secs: u64,
    /// Minimum name length for substring searches (IX-14). [Default: 3]
    pub search_min_name_len: usize,
    /// Maximum hits one indexer returns for one search (IX-14). [Default: 20]
    pub search_max_hits: usize,
    /// Searches an indexer answers per second, all peers together. [Default: 50.0]
    pub search_answers_per_sec: f64,
    /// Minimum indexer pool size of a node. [Default: 1]
    pub min_indexers: usize,
    /// Maximum indexer pool size of a node. [Default: 5]
    pub max_indexers: usize,
    /// Node capacity an indexer announces (its fill rate is peers / capacity). [Default: 500]
    pub indexer_capacity: u32,
    /// How often nodes look for indexers in the DHT registry. [Default: 60]
    pub indexer_discovery_interval_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GaterConfig {
    /// New (never seen) peers accepted per window from one source subnet (burst guard). [Default: 20]
    pub max_new_peers_per_window: usize,
    /// New peers accepted per window from all sources together. [Default: 200]
    pub max_new_peers_per_window_total: usize,
    /// Burst-guard window. [Default: 30]
    pub window_secs: u64,
    /// Sliding window of the three per-peer limits below ("per minute" with the default). [Default: 60]
    pub rate_window_secs: u64,
    /// Heartbeats accepted per peer per rate window. [Default: 5]
    pub max_heartbeats_per_minute: usize,
    /// Record publishes (DHT puts) accepted per peer per rate window. [Default: 10]
    pub max_publishes_per_minute: usize,
    /// Gets (searches served) per peer per rate window. [Default: 50]
    pub max_gets_per_minute: usize,
    /// Other requests served per peer per rate window (witness, probe echo, candidates,
    /// pushed search results, Kademlia requests). [Default: 300]
    pub max_requests_per_minute: usize,
    /// Strikes that trigger a ban. [Default: 3]
    pub strikes_before_ban: u32,
    /// Ban (blacklist) duration. [Default: 600]
    pub ban_secs: u64,
    /// Strikes for exceeding a rate limit. [Default: 1]
    pub strikes_over_limit: u32,
    /// Strikes for a frame or record that does not decode or breaks a bound. [Default: 1]
    pub strikes_malformed: u32,
    /// Strikes for a bad signature or a record claiming another identity. [Default: 2]
    pub strikes_forged: u32,
    /// Peers always refused (peer ids). [Default: []]
    pub blacklist: Vec<String>,
}

/// How this site is connected (see `membership::profile`): planned absences are neither
/// suspected nor penalised, records outlive them, offline heartbeats cover them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileConfig {
    /// `continuous`, `intermittent` or `orbital`. [Default: "continuous"]
    pub kind: ProfileKind,
    /// Intermittent: the longest planned absence, seconds (at most 86400). [Default: 0]
    pub max_absence_secs: u64,
    /// Orbital: from one contact window's start to the next, seconds. [Default: 0]
    pub period_secs: u64,
    /// Orbital: length of each contact window, seconds (at least 60). [Default: 0]
    pub window_secs: u64,
    /// Orbital: the start of one contact window, ms since the Unix epoch. [Default: 0]
    pub epoch_ms: u64,
    /// Records outlive the longest planned absence by this much, seconds. [Default: 300]
    pub record_margin_secs: u64,
}

/// The three connectivity profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    #[default]
    Continuous,
    Intermittent,
    Orbital,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        Self {
            kind: ProfileKind::Continuous,
            max_absence_secs: 0,
            period_secs: 0,
            window_secs: 0,
            epoch_ms: 0,
            record_margin_secs: 300,
        }
    }
}

impl ProfileConfig {
    /// The profile these keys describe.
    pub fn profile(&self) -> crate::membership::profile::Profile {
        use crate::membership::profile::Profile;
        match self.kind {
            ProfileKind::Continuous => Profile::Continuous,
            ProfileKind::Intermittent => Profile::Intermittent {
                max_absence_ms: self.max_absence_secs * 1000,
            },
            ProfileKind::Orbital => Profile::Orbital {
                period_ms: self.period_secs * 1000,
                window_ms: self.window_secs * 1000,
                epoch_ms: self.epoch_ms,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LocationConfig {
    /// 0 none, 1 continent, 2 country, 3 region, 4 city. [Default: 0]
    pub granularity: u8,
    /// Site latitude in degrees; required when granularity > 0. [Default: unset]
    pub latitude: Option<f64>,
    /// Site longitude in degrees; required when granularity > 0. [Default: unset]
    pub longitude: Option<f64>,
}

/// Nano/master delegation: who answers for whom, declared in our signed record. A nano is
/// never a direct partner: third parties deal with its master, the authority on a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DelegationConfig {
    /// For a nano: the peer id of its master. [Default: unset]
    pub master: Option<String>,
    /// For a master: the peer ids of its nanos (at most 16). [Default: []]
    pub nanos: Vec<String>,
}

impl DelegationConfig {
    /// The links these keys declare (profile left to the caller).
    pub fn links(&self) -> Result<crate::discovery::record::Links, Error> {
        use crate::discovery::record::{Links, MAX_NANOS};
        let peer = |key: &'static str, v: &str| {
            v.parse::<libp2p::PeerId>()
                .map(|p| p.to_string())
                .map_err(|e| Error::Invalid {
                    key,
                    reason: format!("{v:?} is not a peer id: {e}"),
                })
        };
        let master = self
            .master
            .as_deref()
            .map(|m| peer("delegation.master", m))
            .transpose()?;
        let mut nanos = Vec::with_capacity(self.nanos.len());
        for n in &self.nanos {
            let n = peer("delegation.nanos", n)?;
            if nanos.contains(&n) {
                return Err(Error::Invalid {
                    key: "delegation.nanos",
                    reason: format!("{n} is listed twice"),
                });
            }
            nanos.push(n);
        }
        if nanos.len() > MAX_NANOS {
            return Err(Error::Invalid {
                key: "delegation.nanos",
                reason: format!("{} nanos, at most {MAX_NANOS}", nanos.len()),
            });
        }
        if master.is_some() && !nanos.is_empty() {
            // One level only: a nano's own nanos would have no master to vouch for them.
            return Err(Error::Invalid {
                key: "delegation.master",
                reason: "a nano cannot list nanos of its own (set master or nanos, not both)"
                    .into(),
            });
        }
        Ok(Links {
            profile: None,
            master,
            nanos,
        })
    }
}

/// The DTN data plane (outbox and inbox carried over `/garden/dtn/1.0.0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataPlaneConfig {
    /// Run the data plane (outbox, inbox, wake-up). [Default: true]
    pub enabled: bool,
    /// Directory of its files; each identity uses its own subdirectory `<dir>/<peer id>/`
    /// (the outbox is sealed under a key derived from the identity). [Default: "data"]
    pub dir: PathBuf,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: "data".into(),
        }
    }
}

/// The NATS bridge (`events/`, subjects in docs/EVENTS.md); needs the data plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// NATS server URL (`nats://127.0.0.1:4222`); empty: no bridge, the sidecar runs
    /// without NATS. [Default: ""]
    pub nats_url: String,
    /// First tokens of every subject; sites sharing a NATS server use distinct prefixes.
    /// [Default: "garden"]
    pub prefix: String,
    /// Outbound events go to a JetStream stream (kept by the server, published with an id
    /// so a retry is not stored twice); false: core NATS, at most once. [Default: true]
    pub jetstream: bool,
    /// Outbound events waiting for NATS (journalled in redb, kept across restarts; beyond
    /// this the oldest is dropped and counted). [Default: 10000]
    pub queue_capacity: usize,
    /// How long a mutation or booking made through NATS is retried towards a partner before
    /// it is reported expired. [Default: 259200]
    pub delivery_ttl_secs: u64,
}

/// The local operator API (`api/`, used by `garden outbox|resources|bookings`); needs the
/// data plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `IP:port` of the HTTP listener; empty: no API. [Default: "127.0.0.1:7450"]
    pub listen: String,
    /// Accept a non-loopback `listen` address (the API has no authentication: anyone who
    /// reaches it acts as this site). [Default: false]
    pub allow_remote: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7450".into(),
            allow_remote: false,
        }
    }
}

impl ApiConfig {
    /// The address to listen on (`None`: the API is off), or why `listen` is refused.
    pub fn address(&self) -> Result<Option<std::net::SocketAddr>, Error> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        let addr: std::net::SocketAddr = self.listen.parse().map_err(|e| Error::Invalid {
            key: "api.listen",
            reason: format!("{:?} is not IP:port ({e})", self.listen),
        })?;
        if !addr.ip().is_loopback() && !self.allow_remote {
            return Err(Error::Invalid {
                key: "api.listen",
                reason: format!(
                    "{addr} is not a loopback address; the API has no authentication \
                     (set [api] allow_remote = true to accept it anyway)"
                ),
            });
        }
        Ok(Some(addr))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` env-filter directive; `RUST_LOG` wins when set. [Default: "info"]
    pub filter: String,
    /// Emit JSON lines instead of text. [Default: false]
    pub json: bool,
}

mod default {
    pub(super) const LISTEN: &str = "/ip4/0.0.0.0/tcp/4001";
}

// Defaults of keys that configure a module come from that module's own defaults (its
// `Config::new()` / `Default`), so each default is written once; `config.toml` and
// docs/CONFIG.md are checked against these by tests.

impl Default for MembershipConfig {
    fn default() -> Self {
        let pool = node::Config::new();
        let registry = indexer::Config::new();
        Self {
            heartbeat_interval_secs: pool.interval.as_secs(),
            suspect_timeout_secs: pool.swim.suspect_timeout.as_secs(),
            eviction_grace_secs: pool.eviction_grace.as_secs(),
            eviction_threshold_start: pool.eviction_threshold.0,
            eviction_threshold_cap: pool.eviction_threshold.1,
            session_ttl_secs: registry.session_ttl.as_secs(),
            allow_loopback: pool.allow_loopback,
        }
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            key_file: "garden-identity.key".into(),
            psk_file: "swarm.key".into(),
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        let limits = crate::net::behaviour::ConnectionLimits::default();
        Self {
            role: Role::Node,
            listen: vec![default::LISTEN.to_string()],
            seeds: Vec::new(),
            announce: Vec::new(),
            dht_server: None,
            idle_connection_timeout_secs: 60,
            max_connections_per_peer: limits.per_peer,
            max_connections: limits.total,
            max_pending_connections: limits.pending,
        }
    }
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        let pool = node::Config::new();
        let rules = search::Rules::default();
        Self {
            name: String::new(),
            record_ttl_secs: 1800,
            republish_interval_secs: 600,
            query_timeout_secs: 10,
            dht_replication: 8,
            search_idle_timeout_secs: 5,
            search_min_name_len: rules.min_name_len,
            search_max_hits: rules.max_hits,
            search_answers_per_sec: rules.answers_per_sec,
            min_indexers: pool.min_indexers,
            max_indexers: pool.max_indexers,
            indexer_capacity: indexer::Config::new().max_nodes,
            indexer_discovery_interval_secs: 60,
        }
    }
}

impl Default for GaterConfig {
    fn default() -> Self {
        let l = gater::Limits::default();
        Self {
            max_new_peers_per_window: l.max_new_peers_per_window,
            max_new_peers_per_window_total: l.max_new_peers_per_window_total,
            window_secs: l.window.as_secs(),
            rate_window_secs: l.rate_window.as_secs(),
            max_heartbeats_per_minute: l.heartbeats_per_minute,
            max_publishes_per_minute: l.publishes_per_minute,
            max_gets_per_minute: l.gets_per_minute,
            max_requests_per_minute: l.requests_per_minute,
            strikes_before_ban: l.strikes_before_ban,
            ban_secs: l.ban.as_secs(),
            strikes_over_limit: l.weights.over_limit,
            strikes_malformed: l.weights.malformed,
            strikes_forged: l.weights.forged,
            blacklist: Vec::new(),
        }
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            nats_url: String::new(),
            prefix: "garden".into(),
            jetstream: true,
            queue_capacity: 10_000,
            delivery_ttl_secs: 3 * 24 * 3600,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            json: false,
        }
    }
}

impl Config {
    /// Parses TOML text (no environment overrides).
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let cfg: Config = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Loads `path` (if given; defaults otherwise), then applies `GARDEN_*` overrides from
    /// `env`, then validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Error> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| Error::Read {
                path: p.to_path_buf(),
                source,
            })?,
            None => String::new(),
        };
        let mut table: toml::Table = toml::from_str(&text)?;
        apply_env(&mut table, env)?;
        let cfg: Config = table.try_into()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks cross-field invariants.
    pub fn validate(&self) -> Result<(), Error> {
        let d = &self.discovery;
        if d.min_indexers == 0 || d.min_indexers > d.max_indexers {
            return Err(Error::Invalid {
                key: "discovery.min_indexers",
                reason: format!(
                    "need 1 <= min ({}) <= max ({})",
                    d.min_indexers, d.max_indexers
                ),
            });
        }
        if d.republish_interval_secs == 0 || d.republish_interval_secs >= d.record_ttl_secs {
            return Err(Error::Invalid {
                key: "discovery.republish_interval_secs",
                reason: "must be > 0 and < record_ttl_secs".into(),
            });
        }
        if d.search_answers_per_sec.is_nan() || d.search_answers_per_sec <= 0.0 {
            return Err(Error::Invalid {
                key: "discovery.search_answers_per_sec",
                reason: "must be > 0".into(),
            });
        }
        if d.dht_replication == 0 || d.dht_replication > 20 {
            return Err(Error::Invalid {
                key: "discovery.dht_replication",
                reason: "must be 1..=20".into(),
            });
        }
        if d.record_ttl_secs > crate::discovery::record::MAX_TTL.as_secs() {
            return Err(Error::Invalid {
                key: "discovery.record_ttl_secs",
                reason: "must be <= 86400 (validators reject longer TTLs)".into(),
            });
        }
        let l = &self.location;
        if l.granularity > 4 {
            return Err(Error::Invalid {
                key: "location.granularity",
                reason: "must be 0..=4".into(),
            });
        }
        if l.granularity > 0 && (l.latitude.is_none() || l.longitude.is_none()) {
            return Err(Error::Invalid {
                key: "location.latitude",
                reason: "latitude and longitude are required when granularity > 0".into(),
            });
        }
        if self.membership.heartbeat_interval_secs == 0 {
            return Err(Error::Invalid {
                key: "membership.heartbeat_interval_secs",
                reason: "must be >= 1".into(),
            });
        }
        let m = &self.membership;
        let (start, cap) = (m.eviction_threshold_start, m.eviction_threshold_cap);
        if !(0.0..=100.0).contains(&start) || !(0.0..=100.0).contains(&cap) || cap < start {
            return Err(Error::Invalid {
                key: "membership.eviction_threshold_start",
                reason: format!("need 0 <= start ({start}) <= cap ({cap}) <= 100"),
            });
        }
        if let Err(e) = self.profile.profile().validate() {
            return Err(Error::Invalid {
                key: "profile",
                reason: e.to_string(),
            });
        }
        self.delegation.links()?;
        if self.gater.rate_window_secs == 0 {
            return Err(Error::Invalid {
                key: "gater.rate_window_secs",
                reason: "must be >= 1".into(),
            });
        }
        let ev = &self.events;
        if !crate::events::subjects::valid_prefix(&ev.prefix) {
            return Err(Error::Invalid {
                key: "events.prefix",
                reason: "must be dot-separated tokens of [A-Za-z0-9_-], at most 64 bytes".into(),
            });
        }
        if !ev.nats_url.is_empty() && !self.data_plane.enabled {
            return Err(Error::Invalid {
                key: "events.nats_url",
                reason: "the NATS bridge needs the data plane ([data_plane] enabled = true)".into(),
            });
        }
        if ev.queue_capacity == 0 {
            return Err(Error::Invalid {
                key: "events.queue_capacity",
                reason: "must be >= 1".into(),
            });
        }
        if ev.delivery_ttl_secs == 0 || ev.delivery_ttl_secs >= 7 * 24 * 3600 {
            return Err(Error::Invalid {
                key: "events.delivery_ttl_secs",
                reason: "must be > 0 and < 604800 (the outbox remembers a key 7 days)".into(),
            });
        }
        self.api.address()?;
        if self.gater.strikes_before_ban == 0 {
            return Err(Error::Invalid {
                key: "gater.strikes_before_ban",
                reason: "must be >= 1".into(),
            });
        }
        Ok(())
    }
}

const SECTIONS: &[&str] = &[
    "identity",
    "network",
    "discovery",
    "gater",
    "location",
    "membership",
    "profile",
    "delegation",
    "data_plane",
    "events",
    "api",
    "log",
];

/// Applies `GARDEN_<SECTION>_<KEY>=value` overrides. The value is parsed as a TOML value when
/// it is one (`true`, `5`, `["a"]`), else taken as a string; a key whose default is a list
/// also accepts a comma-separated string.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), Error> {
    let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        // Before the sections: `GARDEN_API_URL` (the CLI's) is not `[api] url`.
        if is_tool_var(&var) {
            continue;
        }
        let rest = rest.to_ascii_lowercase();
        // Section names may hold an underscore themselves (`data_plane`): the longest one
        // that prefixes the variable wins.
        let section = SECTIONS
            .iter()
            .filter(|s| rest.len() > s.len() + 1 && rest.starts_with(*s))
            .filter(|s| rest.as_bytes()[s.len()] == b'_')
            .max_by_key(|s| s.len());
        let Some((section, key)) = section.map(|s| (*s, &rest[s.len() + 1..])) else {
            // The CLI and Garden's scripts and benches have GARDEN_* variables of their own;
            // anything else is most likely a misspelt section, which must not pass silently.
            if rest.contains('_') {
                return Err(Error::UnknownEnvSection { var });
            }
            continue;
        };
        let is_list = defaults
            .get(section)
            .and_then(|s| s.get(key))
            .map(|v| v.is_array())
            .unwrap_or(false);
        let value = parse_env_value(&raw, is_list);
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = entry {
            t.insert(key.to_string(), value);
        }
    }
    Ok(())
}

/// `GARDEN_*` variables that are not config overrides: the CLI's (`GARDEN_CONFIG`,
/// `GARDEN_API_URL`), the
/// scripts' (`scripts/lib.sh`, `localnet.sh`, `sidecars.sh`,
/// `build-contracts.sh`) and the benches' knobs (`GARDEN_BENCH_*`).
const TOOL_VARS: &[&str] = &[
    "GARDEN_CONFIG",
    "GARDEN_API_URL",
    "GARDEN_NET",
    "GARDEN_CACHE",
    "GARDEN_TOOLS",
    "GARDEN_BIN",
    "GARDEN_START_TIMEOUT",
    "GARDEN_WASM_TARGET_DIR",
    "GARDEN_NATS_SERVER",
    "GARDEN_DTN_CHAOS_CYCLES",
    "GARDEN_FUZZ_SECONDS",
];

/// Namespaces of other Garden programs sharing an environment with the sidecar: the
/// settlement signer's settings (`garden-signer`) and the benches' knobs.
const TOOL_PREFIXES: &[&str] = &["GARDEN_SIGNER_", "GARDEN_BENCH_", "GARDEN_SUBMIT_"];

fn is_tool_var(var: &str) -> bool {
    TOOL_VARS.contains(&var) || TOOL_PREFIXES.iter().any(|p| var.starts_with(p))
}

fn parse_env_value(raw: &str, is_list: bool) -> toml::Value {
    if let Ok(t) = toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        if let Some(v) = t.get("v") {
            if !is_list || v.is_array() {
                return v.clone();
            }
        }
    }
    if is_list {
        let items = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| toml::Value::String(s.to_string()))
            .collect();
        return toml::Value::Array(items);
    }
    toml::Value::String(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_parses_to_defaults() {
        let text = include_str!("../config.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
    }

    /// Every key of every section is documented in docs/CONFIG.md with its real default.
    #[test]
    fn config_doc_lists_every_key_with_its_default() {
        let doc = include_str!("../../docs/CONFIG.md");
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let mut documented: std::collections::BTreeMap<(String, String), Option<toml::Value>> =
            Default::default();
        let mut section = None;
        for line in doc.lines() {
            if let Some(rest) = line.strip_prefix("## `[") {
                section = rest.split(']').next().map(str::to_string);
                continue;
            }
            let (Some(sec), Some(row)) = (&section, line.strip_prefix("| `")) else {
                continue;
            };
            let row = format!("`{row}");
            let cells: Vec<&str> = row.split(" | ").collect();
            let ticked = |cell: &str| {
                cell.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            let keys = ticked(cells[0]);
            let values = ticked(cells[1]);
            for (i, k) in keys.iter().enumerate() {
                // "unset" documents an optional key; one value may stand for several keys.
                let v = values.get(i).or(values.first()).map(|v| {
                    let t: toml::Table = toml::from_str(&format!("v = {v}"))
                        .unwrap_or_else(|e| panic!("[{sec}] {k}: {v}: {e}"));
                    t["v"].clone()
                });
                documented.insert((sec.clone(), k.clone()), v);
            }
        }
        let same = |a: &toml::Value, b: &toml::Value| match (a, b) {
            (toml::Value::Integer(i), toml::Value::Float(f))
            | (toml::Value::Float(f), toml::Value::Integer(i)) => *i as f64 == *f,
            _ => a == b,
        };
        for (sec, table) in &defaults {
            let toml::Value::Table(table) = table else {
                panic!("{sec} is not a table")
            };
            for (key, value) in table {
                let doc = documented.get(&(sec.clone(), key.clone()));
                let doc =
                    doc.unwrap_or_else(|| panic!("[{sec}] {key} is missing from docs/CONFIG.md"));
                let doc = doc.as_ref().unwrap_or_else(|| {
                    panic!("[{sec}] {key} is documented as unset but defaults to {value}")
                });
                assert!(
                    same(doc, value),
                    "[{sec}] {key}: docs/CONFIG.md says {doc}, the default is {value}"
                );
            }
        }
        // Keys documented but unknown to the config (a renamed or removed key).
        for ((sec, key), v) in &documented {
            let known = defaults.get(sec).and_then(|t| t.get(key)).is_some();
            assert!(
                known || v.is_none(),
                "docs/CONFIG.md documents [{sec}] {key}, which the config does not have"
            );
        }
    }

    #[test]
    fn env_overrides_apply_with_types() {
        let env = vec![
            ("GARDEN_NETWORK_ROLE".to_string(), "indexer".to_string()),
            ("GARDEN_DISCOVERY_MAX_INDEXERS".to_string(), "7".to_string()),
            (
                "GARDEN_NETWORK_SEEDS".to_string(),
                "/ip4/1.2.3.4/tcp/1,/ip4/5.6.7.8/tcp/2".to_string(),
            ),
            ("GARDEN_LOG_JSON".to_string(), "true".to_string()),
            ("GARDEN_GATER_RATE_WINDOW_SECS".to_string(), "5".to_string()),
            (
                "GARDEN_MEMBERSHIP_EVICTION_THRESHOLD_START".to_string(),
                "30".to_string(),
            ),
            (
                "GARDEN_EVENTS_NATS_URL".to_string(),
                "nats://127.0.0.1:4222".to_string(),
            ),
            (
                "GARDEN_EVENTS_PREFIX".to_string(),
                "garden.site-a".to_string(),
            ),
            // The tests' nats-server path is not a config override.
            (
                "GARDEN_NATS_SERVER".to_string(),
                "/x/nats-server".to_string(),
            ),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let cfg = Config::load(None, env).unwrap();
        assert_eq!(cfg.events.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(cfg.events.prefix, "garden.site-a");
        assert_eq!(cfg.gater.rate_window_secs, 5);
        assert_eq!(cfg.membership.eviction_threshold_start, 30.0);
        let file = Config::from_toml(
            "[membership]\neviction_threshold_start = 50\neviction_threshold_cap = 90\n",
        )
        .unwrap();
        assert_eq!(
            (
                file.membership.eviction_threshold_start,
                file.membership.eviction_threshold_cap
            ),
            (50.0, 90.0)
        );
        assert_eq!(cfg.network.role, Role::Indexer);
        assert_eq!(cfg.discovery.max_indexers, 7);
        assert_eq!(cfg.network.seeds.len(), 2);
        assert!(cfg.log.json);
    }

    #[test]
    fn events_settings_are_checked() {
        for bad in [
            "[events]\nprefix = \"a.*\"\n",
            "[events]\nprefix = \"\"\n",
            "[events]\nqueue_capacity = 0\n",
            "[events]\ndelivery_ttl_secs = 604800\n",
            "[events]\nnats_url = \"nats://127.0.0.1:4222\"\n[data_plane]\nenabled = false\n",
        ] {
            assert!(Config::from_toml(bad).is_err(), "{bad}");
        }
        assert!(Config::from_toml("[events]\nprefix = \"garden.site-a\"\n").is_ok());
    }

    #[test]
    fn api_settings_are_checked() {
        let env = |v: &str| vec![("GARDEN_API_LISTEN".to_string(), v.to_string())];
        let cfg = Config::load(None, env("127.0.0.1:0")).unwrap();
        assert_eq!(cfg.api.address().unwrap().unwrap().port(), 0);
        let cfg = Config::load(None, env("")).unwrap();
        assert_eq!(cfg.api.address().unwrap(), None);
        assert!(Config::load(None, env("[::1]:7450")).is_ok());
        // A bare port reads as a TOML integer: refused too, as a type error.
        assert!(Config::load(None, env("7450")).is_err());
        for bad in ["0.0.0.0:7450", "10.1.2.3:80", "localhost:7450", "127.0.0.1"] {
            match Config::load(None, env(bad)) {
                Err(Error::Invalid { key, reason }) => {
                    assert_eq!(key, "api.listen");
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let remote = "[api]\nlisten = \"0.0.0.0:7450\"\nallow_remote = true\n";
        assert!(Config::from_toml(remote).is_ok());
        // The CLI's GARDEN_API_URL shares the namespace and is not `[api] url`.
        let env = vec![(
            "GARDEN_API_URL".to_string(),
            "http://127.0.0.1:1".to_string(),
        )];
        assert_eq!(Config::load(None, env).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_and_sections_are_errors() {
        assert!(Config::from_toml("[network]\nrole = \"node\"\ntypo = 1\n").is_err());
        let env = vec![("GARDEN_NOPE_X".to_string(), "1".to_string())];
        assert!(matches!(
            Config::load(None, env),
            Err(Error::UnknownEnvSection { .. })
        ));
        // The scripts' own variables live in the same namespace and are not overrides.
        let env = [
            "GARDEN_NET",
            "GARDEN_WASM_TARGET_DIR",
            "GARDEN_BIN",
            "GARDEN_BENCH_NODES",
            "GARDEN_SIGNER_RPC_URL",
        ]
        .map(|v| (v.to_string(), "/tmp/x".to_string()));
        assert_eq!(
            Config::load(None, env).expect("tool variables are ignored"),
            Config::default()
        );
        let env = vec![("GARDEN_GATER_NOPE".to_string(), "1".to_string())];
        assert!(Config::load(None, env).is_err());
    }

    /// `data_plane` holds an underscore: its variables once read as section `data`.
    #[test]
    fn sections_with_an_underscore_take_env_overrides() {
        let env = [
            ("GARDEN_DATA_PLANE_ENABLED", "false"),
            ("GARDEN_DATA_PLANE_DIR", "/var/lib/garden"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let cfg = Config::load(None, env).unwrap();
        assert!(!cfg.data_plane.enabled);
        assert_eq!(cfg.data_plane.dir, PathBuf::from("/var/lib/garden"));
        let env = vec![("GARDEN_DATA_NOPE".to_string(), "1".to_string())];
        assert!(matches!(
            Config::load(None, env),
            Err(Error::UnknownEnvSection { .. })
        ));
    }

    #[test]
    fn delegation_links_are_checked_and_named() {
        let m = libp2p::PeerId::random().to_string();
        let env = vec![("GARDEN_DELEGATION_MASTER".to_string(), m.clone())];
        let cfg = Config::load(None, env).unwrap();
        assert_eq!(cfg.delegation.links().unwrap().master, Some(m.clone()));
        let bad = |toml: &str| match Config::from_toml(toml) {
            Err(Error::Invalid { key, reason }) => format!("{key}: {reason}"),
            other => panic!("{toml}: {other:?}"),
        };
        assert!(
            bad("[delegation]\nmaster = \"sat-1\"\n").starts_with("delegation.master: \"sat-1\"")
        );
        let twice = format!("[delegation]\nnanos = [\"{m}\", \"{m}\"]\n");
        assert!(bad(&twice).contains("listed twice"));
        let many: Vec<String> = (0..17)
            .map(|_| format!("\"{}\"", libp2p::PeerId::random()))
            .collect();
        let many = format!("[delegation]\nnanos = [{}]\n", many.join(", "));
        assert!(bad(&many).contains("17 nanos, at most 16"));
        let both = format!(
            "[delegation]\nmaster = \"{m}\"\nnanos = [\"{}\"]\n",
            libp2p::PeerId::random()
        );
        assert!(bad(&both).contains("not both"));
    }

    #[test]
    fn invariants_are_checked() {
        let bad = "[discovery]\nmin_indexers = 6\nmax_indexers = 5\n";
        assert!(matches!(Config::from_toml(bad), Err(Error::Invalid { .. })));
        let bad = "[location]\ngranularity = 2\n";
        assert!(matches!(Config::from_toml(bad), Err(Error::Invalid { .. })));
        let bad = "[membership]\neviction_threshold_start = 90.0\neviction_threshold_cap = 50.0\n";
        assert!(matches!(Config::from_toml(bad), Err(Error::Invalid { .. })));
        let bad = "[membership]\neviction_threshold_cap = 101.0\n";
        assert!(matches!(Config::from_toml(bad), Err(Error::Invalid { .. })));
        let bad = "[gater]\nrate_window_secs = 0\n";
        assert!(matches!(Config::from_toml(bad), Err(Error::Invalid { .. })));
    }
}
