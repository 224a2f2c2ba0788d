//! The operator path of the discovery plane: scripts/sidecars.sh starts an indexer and two
//! nodes as separate `garden` processes in one private network on 127.0.0.1, and
//! `garden search` (through the script) finds each site by name with its signed record.

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
        if names == ["site-a", "site-b"] {
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
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("search found {names:?} after 60 s, expected site-a and site-b");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
