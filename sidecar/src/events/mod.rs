//! The data plane's operations and the NATS bridge: other services of a site (over NATS
//! request/reply) and its operators (over the local API, `crate::api`) create, update,
//! delete and search resources, request bookings and make their later transitions; they
//! read what peers delivered, bookings, confirmed usage and delivery outcomes as events.
//! Subjects and payloads: docs/EVENTS.md; settings: `[events]` in docs/CONFIG.md.
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
//! | `nano` | a nano and its master: delegated resources (nano → master → partners), the gate's refusals told back, proxy bookings, the rounds of `delegation::sync` and their notices |
//! | [`sync_store`] | the rounds' state and pending notices in redb (`delegation.sync`) |
//! | [`fanout`] | our mutations not yet pushed to every partner (`fanout.pending`, written with the change), pushed again at start |
//! | [`steps`] | a booking's transitions after its request: made here and sent, or received (applied, duplicate, refused and told) |
//! | [`core`] | the one task running the service: requests of every transport, deliveries, outcomes |
//! | [`settle`] | confirmed usage handed to settlement through the typed channel |
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
mod copies;
pub mod core;
pub mod fanout;
pub mod fields;
pub mod journal;
mod nano;
pub mod queue;
pub mod request;
pub mod service;
pub mod settle;
mod steps;
pub mod subjects;
pub mod sync_store;
pub mod view;

pub use bridge::{Handle, Stats};
pub use core::{Ops, Reply};
pub use nano::RECONCILE_ACTION;
pub use service::{
    Service, Stores, BOOKING_PROTOCOL, COPY_PROTOCOL, DELEGATED_PROTOCOL, MUTATION_PROTOCOL,
    REFUSAL_PROTOCOL, RESOURCE_REFUSAL_PROTOCOL, STEP_PROTOCOL, SYNC_PROTOCOL,
};
