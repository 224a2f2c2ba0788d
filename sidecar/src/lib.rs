//! Garden sidecar library: the discovery plane (libp2p), and later the DTN data plane and the
//! settlement signer. The `garden` binary is a thin wrapper around it so tests can start
//! several nodes in one process.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | TOML file + `GARDEN_*` environment overrides, documented defaults |
//! | [`keys`] | `NodeIdentity` (and keys derived from it per use), the PSK |
//! | [`net`] | transport (TCP + pnet + Noise + Yamux), composed behaviour, gater, event loop, `Client` |
//! | [`discovery`] | signed records + validators, validating record store, registry, search, location |
//! | [`delegation`] | nano/master split-brain reconciliation: journals of changes, master wins (pure) |
//! | [`dtn`] | data plane store-and-forward: outbox (encrypted, retried, expiring) and inbox (idempotence) |
//! | [`membership`] | heartbeats, scoring, SWIM, witnesses, probes (pure state machines) |
//! | [`resources`] | data plane: resources catalogue, signed mutations, bookings, usage (redb) |
//! | [`time`] | protocol time: `Timestamp` and the one `Clock` (scalable, skewable) |
//! | [`offence`] | what a peer can do wrong, for every plane; the gater prices it |
//! | [`api`] | the local operator API (axum, loopback): the `garden outbox|resources|bookings` commands' server |
//! | [`app`] | wiring: config → runtime configs → running node |
//! | [`cli`] | `garden` subcommands |

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod delegation;
pub mod discovery;
pub mod dtn;
pub mod events;
pub mod keys;
pub mod membership;
pub mod net;
pub mod offence;
pub mod resources;
pub mod time;
