//! Scenario files: who runs (indexers, nodes, hostile key holders), how links behave, how
//! fast protocol time runs, what happens when, and which outcomes must hold.
//!
//! Times in a scenario are protocol seconds from the moment every node was started.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::link::Crash;

/// One scenario file (TOML).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name (the figures table's title).
    pub name: String,
    /// What the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice (topology, loss, victims).
    #[serde(default = "one")]
    pub seed: u64,
    /// Protocol milliseconds per real millisecond.
    pub speed: u32,
    /// Honest indexers (the DHT servers).
    pub indexers: usize,
    /// Honest nodes.
    pub nodes: usize,
    /// Protocol seconds simulated after the start.
    pub duration_secs: u64,
    /// Protocol seconds over which honest processes start (0: all at once, a join storm).
    #[serde(default)]
    pub join_spread_secs: u64,
    /// Protocol seconds at the start not counted in steady-state figures (bytes, false dead).
    #[serde(default = "default_warmup")]
    pub warmup_secs: u64,
    #[serde(default)]
    pub link: LinkSpec,
    /// Honest processes whose clock is off.
    #[serde(default)]
    pub skew: Option<Skew>,
    /// Hostile PSK holders and what they do.
    #[serde(default)]
    pub hostile: Option<Hostile>,
    /// DHT lookups measured at the end of the run.
    #[serde(default)]
    pub lookups: usize,
    /// The timeline.
    #[serde(default, rename = "event")]
    pub events: Vec<Event>,
    /// Outcomes checked at the end (the CI's assertions).
    #[serde(default)]
    pub expect: Expect,
}

fn one() -> u64 {
    1
}

fn default_warmup() -> u64 {
    300
}

/// Link behaviour (protocol time).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkSpec {
    pub rtt_ms: u64,
    pub loss: f64,
    /// Share of honest processes with slow access.
    pub slow_fraction: f64,
    /// Round-trip time between two slow processes.
    pub slow_rtt_ms: u64,
}

impl Default for LinkSpec {
    fn default() -> Self {
        LinkSpec {
            rtt_ms: 100,
            loss: 0.0,
            slow_fraction: 0.0,
            slow_rtt_ms: 600,
        }
    }
}

/// Clock skew on a share of honest processes (each drawn `+max` or `−max`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Skew {
    pub fraction: f64,
    pub max_ms: i64,
}

/// Hostile PSK holders: raw libp2p swarms on the same links.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hostile {
    /// Share of all processes that are hostile (0.1 = 10 %).
    pub fraction: f64,
    /// Attacks each hostile process runs in turn.
    pub attacks: Vec<Attack>,
    /// Protocol seconds between two attack rounds of one hostile process.
    #[serde(default = "default_attack_every")]
    pub every_secs: u64,
}

fn default_attack_every() -> u64 {
    10
}

/// One kind of hostile behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// Gossiped searches under fresh author keys, as fast as the round allows.
    SearchFlood,
    /// Valid self-signed records under many throwaway identities (fills indexer stores).
    StoreFill,
    /// Name records for names honest nodes use.
    NameSquat,
    /// Signed heartbeats carrying forged SWIM events (alive at `u64::MAX`, dead, suspect).
    ForgedSwim,
    /// Tombstones for honest nodes' keys.
    ForgedTombstone,
    /// Oversized and malformed frames on every protocol.
    Malformed,
}

/// Something that happens at a protocol time (unknown keys are refused by [`Action`]; serde
/// cannot refuse them here as well, because of the flattening).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Event {
    /// Protocol seconds after the start.
    pub at_secs: u64,
    #[serde(flatten)]
    pub action: Action,
}

/// What happens.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// A share of honest processes go down for good.
    Crash {
        fraction: f64,
        #[serde(default = "crash_stop")]
        how: Crash,
        #[serde(default)]
        who: Who,
    },
    /// A share of honest processes go down and come back `down_secs` later with the same
    /// identity and a fresh process (new incarnation, `born_at`, heartbeat sequence).
    Restart {
        fraction: f64,
        #[serde(default = "crash_stop")]
        how: Crash,
        #[serde(default)]
        who: Who,
        #[serde(default = "default_down")]
        down_secs: u64,
    },
    /// The honest processes split into two sides (`fraction` on the second); hostile ones
    /// stay on the first.
    Partition { fraction: f64 },
    /// The partition ends.
    Heal,
}

fn crash_stop() -> Crash {
    Crash::Stop
}

fn default_down() -> u64 {
    30
}

/// Which honest processes an action may pick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Who {
    #[default]
    All,
    Indexers,
    Nodes,
}

/// Outcomes the run must show (checked in CI; never timings).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// Most honest processes banned by honest processes.
    pub max_honest_bans: Option<u64>,
    /// Every crash of an indexer is seen (suspected or evicted) by every live node that held it.
    pub crashes_detected: bool,
    /// Most live honest processes cut off from the others at the end.
    pub max_permanent_false_dead: Option<u64>,
    /// Most false "dead" verdicts about live indexers.
    pub max_false_dead: Option<u64>,
    /// Least share of DHT lookups that must succeed.
    pub min_lookup_success: Option<f64>,
}

impl Scenario {
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let s: Scenario =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.speed >= 1, "speed must be >= 1");
        anyhow::ensure!(self.indexers >= 1, "at least one indexer is needed");
        anyhow::ensure!(
            (0.0..1.0).contains(&self.link.loss),
            "link.loss must be in [0, 1)"
        );
        for e in &self.events {
            anyhow::ensure!(
                e.at_secs <= self.duration_secs,
                "event at {} s is after the end ({} s)",
                e.at_secs,
                self.duration_secs
            );
        }
        Ok(())
    }
}
