//! The NATS bridge of the data plane: other services of a site create, update, delete and
//! search resources and request bookings over NATS request/reply, and read what peers
//! delivered, bookings and delivery outcomes as events. Subjects and payloads:
//! docs/EVENTS.md; settings: `[events]` in docs/CONFIG.md.
//!
//! | module | what |
//! |---|---|
//! | [`subjects`] | subject names under the configured prefix, the JetStream stream name (pure) |
//! | [`fields`] | bounded JSON parsing whose errors name the field (pure) |
//! | [`request`] | inbound payloads → typed, validated requests (pure) |
//! | [`view`] | JSON of resources, bookings and error replies (pure) |
//! | [`queue`] | the bounded queue of events waiting for NATS, with its drop count (pure) |
//! | [`journal`] | that queue made durable in redb (`events.pending`) |
//! | [`service`] | the operations over the catalogue, bookings and outbox; delivered entries applied |
//! | [`bridge`] | the NATS glue: connection, subscriptions, publisher |
//!
//! **What a NATS outage costs.** A request that got an `ok` reply is in redb and its entries
//! in the durable outbox before the reply is sent: losing the reply loses nothing. Events
//! (what peers delivered, bookings, delivery outcomes) are derived from changes already
//! stored, journalled in redb, and wait there until the server confirmed them (JetStream:
//! a publish acknowledgement, with the event id as `Nats-Msg-Id` so a retry is stored once),
//! across sidecar restarts too; a full journal drops its oldest event and counts it
//! (`bridge::Stats::dropped`).

pub mod bridge;
pub mod fields;
pub mod journal;
pub mod queue;
pub mod request;
pub mod service;
pub mod subjects;
pub mod view;

pub use bridge::{Handle, Stats};
pub use service::{Service, BOOKING_PROTOCOL, MUTATION_PROTOCOL};
