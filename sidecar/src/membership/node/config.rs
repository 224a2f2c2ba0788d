//! Pool parameters and their defaults.

use std::time::Duration;

use crate::membership::heartbeat;
use crate::membership::swim;
use crate::membership::threshold;
use crate::membership::PeerInfo;

/// Pool parameters. Defaults are Go's unless said otherwise.
#[derive(Clone, Debug)]
pub struct Config {
    /// Heartbeat interval. Default 20 s.
    pub interval: Duration,
    /// Minimum pool size (`MinIndexer`). Default 1.
    pub min_indexers: usize,
    /// Maximum pool size (`MaxIndexer`; strict indexers use 2×). Default 5.
    pub max_indexers: usize,
    /// Seed indexers: sticky, never evicted on score or failure. Default none.
    pub seeds: Vec<PeerInfo>,
    /// Accumulated online time required before score eviction. Default 120 s.
    pub eviction_grace: Duration,
    /// End points `(start, cap)` of the age-based eviction bar `min(cap, start + (cap − start)
    /// × age / 24 h)`, in score points (0–100). Default (20, 80), the spec's "20 % → 80 % over
    /// 24 h" ([`crate::membership::threshold`]).
    pub eviction_threshold: (f64, f64),
    /// SWIM parameters (suspect timeout 180 s, 3 hops).
    pub swim: swim::Config,
    /// Challenge batches every 1..=N heartbeats (random). Default 10.
    pub challenge_max_interval: u32,
    /// Every N-th challenge batch also carries the DHT challenge. Default 5.
    pub dht_challenge_every: u32,
    /// Re-send the record when it expires within this margin. Default 60 s.
    pub record_margin: Duration,
    /// Keep loopback addresses of suggested/discovered indexers (single-host tests). Default false.
    pub allow_loopback: bool,
    /// How long replacement candidates have to answer their probe heartbeat. Default 10 s.
    pub candidate_timeout: Duration,
    /// First retry delay when the pool is empty; doubles up to `retry_max`. Default 10 s.
    pub retry_initial: Duration,
    /// Retry delay cap. Default 320 s (Go's effective cap).
    pub retry_max: Duration,
    /// Delay before the first DHT discovery (Go's 5 s warm-up). Default 5 s.
    pub discovery_delay: Duration,
    /// Seed for the pool's RNG (tests); `None` = from entropy. Default `None`.
    pub rng_seed: Option<u64>,
    /// Our own connectivity profile: no heartbeats and no suspicion while we are away by
    /// plan; offline heartbeats signed meanwhile. Default continuous.
    pub profile: crate::membership::profile::Profile,
}

impl Config {
    /// Defaults as documented on each field.
    pub fn new() -> Self {
        Config {
            interval: heartbeat::DEFAULT_INTERVAL,
            min_indexers: 1,
            max_indexers: 5,
            seeds: Vec::new(),
            eviction_grace: Duration::from_secs(120),
            eviction_threshold: (threshold::START, threshold::CAP),
            swim: swim::Config::new(),
            challenge_max_interval: 10,
            dht_challenge_every: 5,
            record_margin: Duration::from_secs(60),
            allow_loopback: false,
            candidate_timeout: Duration::from_secs(10),
            retry_initial: Duration::from_secs(10),
            retry_max: Duration::from_secs(320),
            discovery_delay: Duration::from_secs(5),
            rng_seed: None,
            profile: crate::membership::profile::Profile::Continuous,
        }
    }
    /// The pool a process keeps, if any. A node keeps `min..=max` indexers. A pure indexer
    /// with seeds also heartbeats other indexers, with a pool twice as large, so the indexer
    /// mesh holds together (Go `InitNode`); a pure indexer without seeds keeps none.
    pub fn for_process(
        self,
        node: bool,
        indexer: bool,
        has_seeds: bool,
        min: usize,
        max: usize,
    ) -> Option<Self> {
        match (node, indexer && has_seeds) {
            (true, _) => Some(self.with_pool_size(min, max)),
            (false, true) => Some(self.with_pool_size(min, max * 2)),
            (false, false) => None,
        }
    }

    /// Set [`Config::profile`].
    pub fn with_profile(mut self, p: crate::membership::profile::Profile) -> Self {
        self.profile = p;
        self
    }

    /// Set [`Config::interval`].
    pub fn with_interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }
    /// Set [`Config::min_indexers`] and [`Config::max_indexers`] (max is raised to min if lower).
    pub fn with_pool_size(mut self, min: usize, max: usize) -> Self {
        self.min_indexers = min;
        self.max_indexers = max.max(min).max(1);
        self
    }
    /// Set [`Config::seeds`].
    pub fn with_seeds(mut self, seeds: Vec<PeerInfo>) -> Self {
        self.seeds = seeds;
        self
    }
    /// Set [`Config::eviction_grace`].
    pub fn with_eviction_grace(mut self, d: Duration) -> Self {
        self.eviction_grace = d;
        self
    }
    /// Set [`Config::eviction_threshold`] (clamped to 0–100; `cap` is raised to `start` if lower).
    pub fn with_eviction_threshold(mut self, start: f64, cap: f64) -> Self {
        let start = start.clamp(0.0, 100.0);
        self.eviction_threshold = (start, cap.clamp(0.0, 100.0).max(start));
        self
    }
    /// Set [`Config::swim`].
    pub fn with_swim(mut self, s: swim::Config) -> Self {
        self.swim = s;
        self
    }
    /// Set [`Config::challenge_max_interval`] (at least 1).
    pub fn with_challenge_max_interval(mut self, n: u32) -> Self {
        self.challenge_max_interval = n.max(1);
        self
    }
    /// Set [`Config::dht_challenge_every`] (at least 1).
    pub fn with_dht_challenge_every(mut self, n: u32) -> Self {
        self.dht_challenge_every = n.max(1);
        self
    }
    /// Set [`Config::record_margin`].
    pub fn with_record_margin(mut self, d: Duration) -> Self {
        self.record_margin = d;
        self
    }
    /// Set [`Config::allow_loopback`].
    pub fn with_allow_loopback(mut self, b: bool) -> Self {
        self.allow_loopback = b;
        self
    }
    /// Set [`Config::candidate_timeout`].
    pub fn with_candidate_timeout(mut self, d: Duration) -> Self {
        self.candidate_timeout = d;
        self
    }
    /// Set [`Config::retry_initial`] and [`Config::retry_max`].
    pub fn with_retry(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial;
        self.retry_max = max.max(initial);
        self
    }
    /// Set [`Config::discovery_delay`].
    pub fn with_discovery_delay(mut self, d: Duration) -> Self {
        self.discovery_delay = d;
        self
    }
    /// Set [`Config::rng_seed`].
    pub fn with_rng_seed(mut self, seed: u64) -> Self {
        self.rng_seed = Some(seed);
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}
