//! Registry parameters and their defaults.

use std::time::Duration;

use crate::membership::swim;

/// Registry parameters.
#[derive(Clone, Debug)]
pub struct Config {
    /// Heartbeat sessions held at most (Go `maxNode` 500).
    pub max_nodes: u32,
    /// A session expires this long after its last accepted heartbeat. Default 120 s (Go's GC
    /// effectively used 80–110 s, B12).
    pub session_ttl: Duration,
    /// Fill rate above which nodes are asked to migrate. Default 0.80.
    pub offload_threshold: f64,
    /// Nodes asked to migrate at once. Default 5.
    pub offload_batch: usize,
    /// How long a node stays in the migration batch. Default 180 s.
    pub offload_grace: Duration,
    /// Lifetime of a pending-contact entry, refreshed by each heartbeat carrying it. Default 60 s.
    pub pending_ttl: Duration,
    /// Callers remembered per target (IX-16). Default 64.
    pub max_callers_per_target: usize,
    /// Targets remembered (IX-16). Default 10 000.
    pub max_pending_targets: usize,
    /// Re-probe a node's bandwidth this often. Default 10 min.
    pub probe_interval: Duration,
    /// Keep loopback witness addresses (single-host tests). Default false.
    pub allow_loopback: bool,
    /// A refused node waits this long before it is scored again, doubling with each refusal.
    /// Default 5 min.
    pub refusal_backoff: Duration,
    /// Longest refusal backoff. Default 1 h.
    pub refusal_backoff_cap: Duration,
    /// Refused nodes remembered (the oldest are forgotten). Default 10 000.
    pub max_remembered_refusals: usize,
    /// Share of the sessions one subnet may hold.
    pub subnet_quota: crate::membership::admission::SubnetQuota,
    /// SWIM parameters.
    pub swim: swim::Config,
    /// RNG seed (tests); `None` = entropy.
    pub rng_seed: Option<u64>,
}

impl Config {
    /// Defaults as documented on each field.
    pub fn new() -> Self {
        Config {
            max_nodes: 500,
            session_ttl: Duration::from_secs(120),
            offload_threshold: 0.80,
            offload_batch: 5,
            offload_grace: Duration::from_secs(180),
            pending_ttl: Duration::from_secs(60),
            max_callers_per_target: 64,
            max_pending_targets: 10_000,
            probe_interval: Duration::from_secs(600),
            allow_loopback: false,
            refusal_backoff: Duration::from_secs(300),
            refusal_backoff_cap: Duration::from_secs(3600),
            max_remembered_refusals: 10_000,
            subnet_quota: crate::membership::admission::SubnetQuota::default(),

            swim: swim::Config::new(),
            rng_seed: None,
        }
    }
    /// Set [`Config::max_nodes`].
    pub fn with_max_nodes(mut self, n: u32) -> Self {
        self.max_nodes = n;
        self
    }
    /// Set [`Config::session_ttl`].
    pub fn with_session_ttl(mut self, d: Duration) -> Self {
        self.session_ttl = d;
        self
    }
    /// Set [`Config::offload_threshold`], [`Config::offload_batch`], [`Config::offload_grace`].
    pub fn with_offload(mut self, threshold: f64, batch: usize, grace: Duration) -> Self {
        self.offload_threshold = threshold;
        self.offload_batch = batch;
        self.offload_grace = grace;
        self
    }
    /// Set [`Config::pending_ttl`].
    pub fn with_pending_ttl(mut self, d: Duration) -> Self {
        self.pending_ttl = d;
        self
    }
    /// Set [`Config::probe_interval`].
    pub fn with_probe_interval(mut self, d: Duration) -> Self {
        self.probe_interval = d;
        self
    }
    /// Set [`Config::allow_loopback`].
    pub fn with_allow_loopback(mut self, b: bool) -> Self {
        self.allow_loopback = b;
        self
    }
    /// Set [`Config::swim`].
    pub fn with_swim(mut self, s: swim::Config) -> Self {
        self.swim = s;
        self
    }
    /// Set [`Config::rng_seed`].
    pub fn with_rng_seed(mut self, s: u64) -> Self {
        self.rng_seed = Some(s);
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}
