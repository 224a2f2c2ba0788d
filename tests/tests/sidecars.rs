//! The operator path of the discovery plane: scripts/sidecars.sh starts an indexer and three
//! nodes as separate `garden` processes in one private network on 127.0.0.1, and
//! `garden search` (through the script) finds each site by name with its signed record;
//! `garden peers` shows site-c as an intermittent nano of site-a, and site-a listing it.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use garden_e2e::localnet::run_script;
use serde_json::Value;

fn sidecars(args: &[&str]) -> Result<String> {
    run_script(&[&["scripts/sidecars.sh"], args].concat())
}

struct Stop;
impl Drop for Stop {
    fn drop(&mut self) {
        let _ = sidecars(&["stop"]);
    }
}

#[test]
fn sidecar_processes_find_each_other_by_name() -> Result<()> {
    sidecars(&["start"])?;
    let _stop = Stop;
    // Records are published shortly after start: search until both sites answer (or 60 s).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = sidecars(&["search", "site-", "--json"])?;
        let hits: Vec<Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let mut names: Vec<&str> = hits.iter().filter_map(|h| h["name"].as_str()).collect();
        names.sort();
        if names == ["site-a", "site-b", "site-c"] {
            for h in &hits {
                assert!(
                    h["did"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("did:key:z")),
                    "{h}"
                );
                assert!(
                    h["addrs"][0]
                        .as_str()
                        .is_some_and(|a| a.starts_with("/ip4/127.0.0.1/tcp/410")),
                    "{h}"
                );
            }
            return peers_show_the_delegation();
        }
        if Instant::now() > deadline {
            bail!("search found {names:?} after 60 s, expected site-a, site-b and site-c");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The records carry the profile and the links the script configured (site-a ⇄ site-c).
fn peers_show_the_delegation() -> Result<()> {
    let out = sidecars(&["peers", "site-", "--json"])?;
    let hits: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let by_name = |n: &str| {
        hits.iter()
            .find(|h| h["name"] == n)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("peers did not list {n}: {out}"))
    };
    let (a, b, c) = (by_name("site-a")?, by_name("site-b")?, by_name("site-c")?);
    assert_eq!(c["master"], a["peer_id"], "{c}");
    assert_eq!(a["nanos"], serde_json::json!([c["peer_id"]]), "{a}");
    assert_eq!(c["profile"]["kind"], "intermittent", "{c}");
    assert_eq!(c["profile"]["max_absence_ms"], 600_000, "{c}");
    assert_eq!(b["profile"]["kind"], "continuous", "{b}");
    assert!(
        b["master"].is_null() && b["nanos"] == serde_json::json!([]),
        "{b}"
    );
    // The text table puts the nano under its master.
    let table = sidecars(&["peers", "site-"])?;
    let lines: Vec<&str> = table.lines().collect();
    let at = |p: &str| lines.iter().position(|l| l.starts_with(p));
    let (ia, ic) = (at("site-a "), at("└ site-c "));
    assert!(
        ia.is_some() && ic == ia.map(|i| i + 1),
        "nano not under its master:\n{table}"
    );
    Ok(())
}
