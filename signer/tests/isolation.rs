//! Plane isolation, checked on the resolved dependency graph (`cargo metadata`, offline):
//! `garden-sidecar` (discovery and data planes) and `garden-signer` (the settlement key) do
//! not depend on each other, and `garden-signer` does not depend on libp2p. So no discovery
//! or data-plane code can name the `SettlementKey`.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

struct Graph {
    /// package id -> package name
    names: HashMap<String, String>,
    /// package id -> dependency package ids (every kind: normal, dev, build)
    deps: HashMap<String, Vec<String>>,
}

impl Graph {
    fn load() -> Graph {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            // Not --offline: metadata lists every platform's packages, and on a fresh machine
            // the builds never downloaded the Windows-only ones (clap's anstyle-wincon...),
            // so an offline run fails there. --locked: the graph checked is the committed one.
            .args(["metadata", "--format-version", "1", "--locked"])
            // At run time (see contracts/wire/tests/vectors.rs for why not env!).
            .current_dir(
                std::env::var("CARGO_MANIFEST_DIR")
                    .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
            )
            .output()
            .expect("run cargo metadata");
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
        let names = v["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_owned(),
                    p["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let deps = v["resolve"]["nodes"]
            .as_array()
            .expect("resolved graph (not --no-deps)")
            .iter()
            .map(|n| {
                let d = n["deps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["pkg"].as_str().unwrap().to_owned())
                    .collect();
                (n["id"].as_str().unwrap().to_owned(), d)
            })
            .collect();
        Graph { names, deps }
    }

    fn id(&self, name: &str) -> String {
        let ids: Vec<_> = self
            .names
            .iter()
            .filter(|(_, n)| *n == name)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(ids.len(), 1, "one package named {name}: {ids:?}");
        ids[0].clone()
    }

    /// Names of every package reachable from `name` (transitively, all dependency kinds).
    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![self.id(name)];
        while let Some(id) = stack.pop() {
            for d in self.deps.get(&id).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        seen.iter().map(|id| self.names[id].clone()).collect()
    }
}

#[test]
fn settlement_key_crate_and_network_planes_are_isolated() {
    let g = Graph::load();
    let signer = g.closure("garden-signer");
    let sidecar = g.closure("garden-sidecar");
    assert!(
        signer.contains("garden-wire") && signer.contains("redb"),
        "the graph is resolved: {signer:?}"
    );
    assert!(sidecar.contains("libp2p"), "the graph is resolved");
    assert!(
        !signer.contains("garden-sidecar"),
        "garden-signer must not depend on garden-sidecar"
    );
    assert!(
        !sidecar.contains("garden-signer"),
        "garden-sidecar must not depend on garden-signer (it would name the SettlementKey)"
    );
    let p2p: Vec<_> = signer.iter().filter(|n| n.starts_with("libp2p")).collect();
    assert!(
        p2p.is_empty(),
        "garden-signer must not depend on libp2p: {p2p:?}"
    );
    println!(
        "isolation: garden-signer has {} dependencies (no garden-sidecar, no libp2p); garden-sidecar has {} (no garden-signer)",
        signer.len(),
        sidecar.len()
    );
}
