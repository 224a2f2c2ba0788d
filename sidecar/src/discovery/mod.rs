//! Discovery plane logic: signed peer records and their validators, the validating Kademlia
//! record store, the indexer registry, distributed search and location fuzzing.
//!
//! Everything here is pure or store-local and unit-testable without a network; the swarm glue
//! lives in `net/`.

pub mod location;
pub mod publish;
pub mod record;
pub mod registry;
pub mod search;
pub mod store;

use serde::{Deserialize, Serialize};

/// Which roles a process plays in the discovery plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A regular peer: publishes its record, keeps a pool of indexers.
    Node,
    /// Serves the DHT, registers itself in the indexer registry, answers searches.
    Indexer,
    /// Both roles in one process.
    Both,
}

impl Role {
    pub fn is_node(self) -> bool {
        matches!(self, Role::Node | Role::Both)
    }
    pub fn is_indexer(self) -> bool {
        matches!(self, Role::Indexer | Role::Both)
    }
}
