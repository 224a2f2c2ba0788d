//! The data plane's resources: what sites offer each other, and the bookings of it.
//!
//! Pure decisions with explicit time (`crate::time::Timestamp`), persisted in redb; no
//! network code here (the partner streams and the DTN outbox carry the encoded messages).
//!
//! | module | what |
//! |---|---|
//! | [`did`] | `Did`: an Ed25519 `did:key`, checked; signatures verify against it |
//! | [`ids`] | `ResourceId`, `ResourceRef` (owner, id), `BookingId` (consumer, nonce) |
//! | [`window`] | `Window`: a half-open time interval |
//! | [`resource`] | a resource (kind, common fields, availability, visibility, payload) and its bounds |
//! | [`mutation`] | signed create/update/delete of a resource, its bounded CBOR codec, `to_partners` |
//! | [`db`] | the redb database and its errors |
//! | [`catalogue`] | own and partners' resources in redb: `apply` (idempotent, versioned, delete terminal), `search` |
//! | [`usage`] | usage reports (provider-signed), confirmed usage (both signatures), the channel to settlement |
//! | [`booking`] | the booking state machine and who may make each transition |
//! | [`planner`] | free capacity over time, and admission of a booking without over-booking |
//! | [`store`] | bookings persisted in redb |
//! | [`step`] | the transitions the two parties send each other, and refusals (bounded CBOR) |
//! | [`refusal`] | why a site did not take a peer's resource mutation, told back to it (bounded CBOR) |
//! | [`mirror`] | what a party's site makes of the other party's transition: catch-up, duplicate or refusal (pure) |
//! | [`delegate`] | a nano's signed statement naming its master, and the envelope its resources travel in (bounded CBOR) |
//! | [`routes`] | who speaks for whom: nanos' masters, and per booking the peer speaking for the other party (redb) |
//! | [`copies`] | the provider's copies of the attestations its consumers signed (`attestations.received`) |
//! | [`handoff`] | confirmed usage waiting for settlement (`usage.pending`, written with the confirmation) |
//!
//! Key material: these modules only ever see the node identity (`NodeIdentity`), which signs
//! mutations, usage reports and usage confirmations. Nothing here can reach a settlement key:
//! confirmed usage leaves through [`usage::channel`] to the settlement module, which signs
//! with its own key.

pub mod booking;
pub mod catalogue;
pub mod copies;
pub mod db;
pub mod delegate;
pub mod did;
pub mod handoff;
pub mod ids;
pub mod mirror;
pub mod mutation;
pub mod planner;
pub mod refusal;
pub mod resource;
pub mod routes;
pub mod step;
pub mod store;
pub mod usage;
pub mod window;

#[cfg(test)]
mod proptests;

pub use did::Did;
pub use ids::{BookingId, ResourceId, ResourceRef};
pub use resource::{Kind, Resource, Visibility};
pub use window::Window;
