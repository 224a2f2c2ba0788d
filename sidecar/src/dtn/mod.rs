//! Data plane, store-and-forward (DTN): what a node keeps for peers it cannot reach, and how a
//! receiver applies a redelivered message only once. The state machines take explicit times;
//! [`link`] and [`plane`] carry them over the network.
//!
//! | module | what |
//! |---|---|
//! | [`lifecycle`] | dedup key and rules: DELETE terminal, no CREATE after UPDATE, collapses |
//! | [`entry`] | an entry, its key, level and id |
//! | [`backoff`] | retry delay: 1 s doubling to 5 min, jittered |
//! | [`seal`] | stored row: clear header + AES-256-GCM payload, id and header authenticated |
//! | [`outbox`] | the outbox: critical entries in redb, moderate in memory, expiry, wake-up |
//! | [`store`] | the boxed error of the redb file |
//! | [`inbox`] | receiver idempotence: (sender, id) applied, in redb, for a horizon |
//! | [`link`] | the wire protocol `/garden/dtn/1.0.0`: one batch per stream, one ack back |
//! | [`plane`] | the data plane task: outbox and inbox over the network, wake-up |

pub mod backoff;
pub mod entry;
pub mod inbox;
pub mod lifecycle;
pub mod link;
pub mod outbox;
pub mod plane;
pub mod seal;
pub mod store;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use entry::{Entry, Id, Key, Level};
pub use inbox::{Accepted, Inbox};
pub use lifecycle::{Op, Refused};
pub use outbox::{Delivery, Item, Limits, Outbox, KEY_LABEL};
pub use plane::{Delivered, Handle, Outcome};
pub use store::StoreError;
