//! Discovery-plane simulation harness: real sidecars (the production swarm, behaviours and
//! state machines) and hostile raw-libp2p swarms in one process, over a modelled network
//! ([`link`]), with a protocol clock running faster than the wall clock. A [`scenario`] file
//! says who runs and what happens; [`run`] plays it; [`figures`] turns what the processes
//! reported into the figures of docs/PERFORMANCE.md and checks the scenario's expectations.

pub mod figures;
pub mod hostile;
pub mod link;
pub mod measure;
pub mod run;
pub mod scenario;
pub mod world;
