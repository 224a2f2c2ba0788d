//! Discovery plane logic: signed peer records and their validators, the validating Kademlia
//! record store, the indexer registry, distributed search and location fuzzing.
//!
//! Everything here is pure or store-local and unit-testable without a network; the swarm glue
//! lives in `net/`.

pub mod location;
pub mod record;
pub mod registry;
pub mod search;
pub mod store;

/// Milliseconds since the Unix epoch (wall clock; records carry absolute times).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
