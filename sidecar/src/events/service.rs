//! The local operations behind the inbound subjects, and what the bridge makes of what peers
//! deliver: thin glue over [`Catalogue`], [`BookingStore`] and the DTN [`dtn::Handle`]; every
//! decision is theirs (signature, versions, lifecycle, capacity, dedup).
//!
//! * create/update/delete: sign a [`Mutation`] with the next version, [`Catalogue::apply`] it
//!   (one durable write), then push it as a critical entry to each partner the resource is
//!   visible to ([`to_partners`]) on [`MUTATION_PROTOCOL`];
//! * booking request: [`Booking::request`] on a partner's resource from our catalogue,
//!   [`BookingStore::request`] (planner check), then a critical entry to the provider on
//!   [`BOOKING_PROTOCOL`];
//! * delegation ([`Standing`]): a nano applies resource changes delivered by its master only;
//!   a master pushes a change to one of its nanos only if the nano owns the resource;
//! * delivered entries: mutations go through [`Catalogue::apply`]; a booking is accepted
//!   only from its consumer's own peer, re-derived against our resource and stored by
//!   [`BookingStore::request`] (a refused one is told to its consumer on
//!   [`REFUSAL_PROTOCOL`]). Each yields an outbound event;
//! * the later transitions of a booking (confirm … confirm usage), made here and sent to
//!   the other party on [`STEP_PROTOCOL`], or received from it: `events::steps`;
//! * listings for the local API (bookings, one booking, one of our resources, the outbox).
//!
//! One implementation per operation: the NATS bridge and the local API (`crate::api`) both
//! call [`Service::handle`], through `events::core`, which runs requests one at a time.
//! Once a reply says `ok`, the change is in redb and its entries in the durable outbox: a
//! lost reply loses nothing.

use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use serde_json::{json, Value};

use super::fanout::{self, Fanout};
use super::fields::{BadRequest, Kind};
use super::request::{BookRequest, Request};
use super::subjects::Outbound;
use super::sync_store::SyncStore;
use super::view;
use crate::delegation::Standing;
use crate::dtn::{self, Delivered, Entry, Level};
use crate::keys::NodeIdentity;
use crate::resources::booking::{Action, Actor, Booking, RequestError, State};
use crate::resources::catalogue::{Catalogue, Outcome, Refusal};
use crate::resources::copies::Copies;
use crate::resources::db::StoreError;
use crate::resources::delegate::SignedDelegation;
use crate::resources::mirror;
use crate::resources::mutation::{to_partners, Mutation, Op, SignedMutation};
use crate::resources::routes::Routes;
use crate::resources::step::StepRefusal;
use crate::resources::store::{BookError, BookingStore, Guard};
use crate::resources::{BookingId, Did, Resource, ResourceId, ResourceRef};
use crate::time::{Clock, Timestamp};

/// Protocol of resource mutations carried by the outbox.
pub const MUTATION_PROTOCOL: &str = "/garden/resource/1.0.0";
/// Protocol of booking requests carried by the outbox.
pub const BOOKING_PROTOCOL: &str = "/garden/booking/1.0.0";
/// Protocol of the later transitions of a booking (`resources::step::StepMessage`), from
/// one party to the other.
pub const STEP_PROTOCOL: &str = "/garden/booking-step/1.0.0";
/// Protocol of refusals of a step or a booking request (`resources::step::StepRefusal`),
/// back to the party that sent it.
pub const REFUSAL_PROTOCOL: &str = "/garden/booking-refusal/1.0.0";
/// A nano's resource mutation with its statement: nano → master → the resource's partners
/// (`events::nano`).
pub const DELEGATED_PROTOCOL: &str = "/garden/delegated-resource/1.0.0";
/// The rounds between a nano and its master (`delegation::sync::SyncMessage`).
pub const SYNC_PROTOCOL: &str = "/garden/delegation-sync/1.0.0";
/// A refused resource mutation, told back to its sender (`resources::refusal`).
pub const RESOURCE_REFUSAL_PROTOCOL: &str = "/garden/resource-refusal/1.0.0";
/// The consumer's signed attestation, copied to the provider (`resources::copies`).
pub const COPY_PROTOCOL: &str = "/garden/attestation-copy/1.0.0";
/// Largest booking message accepted from a peer.
pub const MAX_BOOKING_BYTES: usize = 8 * 1024;

/// An outbound event before the bridge stamps it.
pub type Event = (Outbound, Value);

/// The result of a request: the reply, the refusal it carries (if any), and the events it
/// caused.
pub struct Answer {
    pub reply: Value,
    pub error: Option<BadRequest>,
    pub events: Vec<Event>,
}

impl Answer {
    pub(crate) fn bad(e: BadRequest) -> Answer {
        Answer {
            reply: view::error(&e.field, &e.reason),
            error: Some(e),
            events: Vec::new(),
        }
    }

    pub(super) fn ok(reply: Value, events: Vec<Event>) -> Answer {
        Answer {
            reply,
            error: None,
            events,
        }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Service {
    pub(super) identity: Arc<NodeIdentity>,
    pub(super) me: Did,
    pub(super) catalogue: Catalogue,
    pub(super) bookings: BookingStore,
    pub(super) plane: dtn::Handle,
    pub(super) clock: Clock,
    pub(super) ttl: Duration,
    pub(super) standing: Standing,
    /// Nanos' masters and per-booking routes.
    pub(super) routes: Routes,
    /// The nano/master rounds' state.
    pub(super) sync: SyncStore,
    /// Attestation copies received as provider.
    pub(super) copies: Copies,
    /// On a nano: its statement naming its master, sent with its resources.
    pub(super) statement: Option<SignedDelegation>,
    /// Woken when the consumer confirmed usage (rows wait in `usage.pending`).
    pub(super) handoff: Option<Arc<tokio::sync::Notify>>,
    /// Our mutations until every partner's push returned (`events::fanout`).
    pub(super) fanout: Option<Fanout>,
}

pub(super) fn store_failure(e: impl std::fmt::Display) -> BadRequest {
    BadRequest::new("(store)", e.to_string()).of_kind(Kind::Store)
}

/// The stores a service works over, all in the resources database.
pub struct Stores {
    pub catalogue: Catalogue,
    pub bookings: BookingStore,
    pub routes: Routes,
    pub sync: SyncStore,
    pub copies: Copies,
}

impl Stores {
    /// Every store of the data plane in `db` (tables created if missing).
    pub fn open(
        db: Arc<crate::resources::db::Database>,
        me: Did,
    ) -> Result<Stores, crate::resources::db::StoreError> {
        Ok(Stores {
            catalogue: Catalogue::new(db.clone(), me)?,
            bookings: BookingStore::new(db.clone())?,
            routes: Routes::new(db.clone())?,
            sync: SyncStore::new(db.clone())?,
            copies: Copies::new(db)?,
        })
    }
}

impl Service {
    /// `ttl`: how long an entry we push is retried before it is reported expired.
    pub fn new(
        identity: Arc<NodeIdentity>,
        stores: Stores,
        plane: dtn::Handle,
        clock: Clock,
        ttl: Duration,
    ) -> Service {
        Service {
            me: Did::of(&identity),
            identity,
            catalogue: stores.catalogue,
            bookings: stores.bookings,
            routes: stores.routes,
            sync: stores.sync,
            copies: stores.copies,
            statement: None,
            plane,
            clock,
            ttl,
            standing: Standing::Standalone,
            handoff: None,
            fanout: None,
        }
    }

    /// Keeps each mutation of ours in `fanout` (in the catalogue's transaction) until it was
    /// pushed to every partner; [`Service::resume`] pushes what a crash left there.
    pub fn with_fanout(mut self, fanout: Fanout) -> Service {
        self.fanout = Some(fanout);
        self
    }

    /// Pushes again the mutations of ours a stop or a crash left between the catalogue and
    /// the outbox (`events::fanout`); returns how many. Run before serving requests.
    pub async fn resume(&self) -> Result<usize, StoreError> {
        let Some(f) = &self.fanout else {
            return Ok(0);
        };
        let pending = f.pending()?;
        for p in &pending {
            let mu = p.mutation.mutation();
            tracing::info!(resource = %mu.id, version = mu.version, "pushing a change a stop left unsent");
            // A nano's changes go to its master, as when they were made.
            if self.standing.master().is_some() {
                self.send_delegated(&p.mutation, &p.to).await;
            } else {
                self.send(&p.mutation, &p.to).await;
            }
            f.done(&mu.id, mu.version)?;
        }
        Ok(pending.len())
    }

    /// `notify` is woken whenever usage confirmed here waits in `usage.pending` (the task
    /// that hands it to settlement, `events::settle`).
    pub fn with_handoff(mut self, notify: Arc<tokio::sync::Notify>) -> Service {
        self.handoff = Some(notify);
        self
    }

    /// This site's place in a nano/master pair (`[delegation]`); standalone by default.
    pub fn with_standing(mut self, standing: Standing) -> Service {
        self.standing = standing;
        self.statement = self.sign_statement(self.clock.now());
        self
    }

    pub fn me(&self) -> &Did {
        &self.me
    }

    /// Runs one request: the only implementation of each operation, whichever transport
    /// (NATS, the local API) brought it. Requests are run one at a time (`events::core`).
    pub async fn handle(&self, req: Request) -> Answer {
        let r = match req {
            Request::Create(r) => self.mutate(r.id.clone(), Some(Op::Create(r))).await,
            Request::Update(r) => self.mutate(r.id.clone(), Some(Op::Update(r))).await,
            Request::Delete(id) => self.mutate(id, None).await,
            Request::Search { filter, limit } => self
                .catalogue
                .search(&filter)
                .map(|found| {
                    Answer::ok(
                        json!({
                            "ok": true,
                            "resources": found.iter().take(limit).map(view::resource).collect::<Vec<_>>(),
                            "truncated": found.len() > limit,
                        }),
                        Vec::new(),
                    )
                })
                .map_err(store_failure),
            Request::Resource(id) => self.own_resource(id),
            Request::Book(b) => self.book(b).await,
            Request::SendCopy {
                booking,
                attestation,
            } => self.send_copy(booking, attestation).await,
            Request::Step(s) => self.step(s).await,
            Request::Bookings { state, limit } => self
                .bookings
                .list(state, limit)
                .map(|(found, truncated)| {
                    Answer::ok(
                        json!({
                            "ok": true,
                            "me": self.me.as_str(),
                            "bookings": found.iter().map(view::booking).collect::<Vec<_>>(),
                            "truncated": truncated,
                        }),
                        Vec::new(),
                    )
                })
                .map_err(store_failure),
            Request::Booking(id) => match self.bookings.get(&id) {
                Ok(Some(b)) => Ok(Answer::ok(
                    json!({"ok": true, "booking": view::booking(&b)}),
                    Vec::new(),
                )),
                Ok(None) => Err(no_booking(&id)),
                Err(e) => Err(store_failure(e)),
            },
            Request::Outbox => self.outbox().await,
        };
        r.unwrap_or_else(Answer::bad)
    }

    fn own_resource(&self, id: ResourceId) -> Result<Answer, BadRequest> {
        let reference = ResourceRef {
            owner: self.me.clone(),
            id,
        };
        let r = self.catalogue.get(&reference).map_err(store_failure)?;
        let r = r.ok_or_else(|| {
            BadRequest::new("id", "no such resource of ours").of_kind(Kind::NotFound)
        })?;
        let version = self.catalogue.version(&reference).map_err(store_failure)?;
        Ok(Answer::ok(
            json!({"ok": true, "version": version, "resource": view::resource(&r)}),
            Vec::new(),
        ))
    }

    /// The outbox's figures: depth, oldest entry, per peer and per class.
    async fn outbox(&self) -> Result<Answer, BadRequest> {
        let st =
            self.plane.stats().await.map_err(|e| {
                BadRequest::new("(outbox)", e.to_string()).of_kind(Kind::Unavailable)
            })?;
        Ok(Answer::ok(view::outbox(&st), Vec::new()))
    }

    /// `op` None: delete.
    async fn mutate(&self, id: ResourceId, op: Option<Op>) -> Result<Answer, BadRequest> {
        let reference = ResourceRef {
            owner: self.me.clone(),
            id: id.clone(),
        };
        let now = self.clock.now();
        let live = self.catalogue.get(&reference).map_err(store_failure)?;
        let last = self.catalogue.version(&reference).map_err(store_failure)?;
        if matches!(op, Some(Op::Update(_))) && live.is_none() {
            let deleted = self
                .catalogue
                .is_deleted(&reference)
                .map_err(store_failure)?;
            return Err(if deleted {
                BadRequest::new("id", "deleted: a deleted resource never changes again")
                    .of_kind(Kind::Conflict)
            } else {
                BadRequest::new("id", "no such resource of ours").of_kind(Kind::NotFound)
            });
        }
        // The audience: the resource's visibility (for a delete, the deleted value's).
        let (op, shown) = match op {
            Some(op) => {
                let r = op.resource().cloned();
                (op, r)
            }
            None => (Op::Delete, live.clone()),
        };
        let Some(audience) = shown.as_ref().map(|r| to_partners(r, &[])) else {
            return Err(BadRequest::new("id", "no such resource of ours").of_kind(Kind::NotFound));
        };
        let m = Mutation {
            owner: self.me.clone(),
            id: id.clone(),
            version: last.unwrap_or(0) + 1,
            issued_at_ms: now.as_millis(),
            op,
        };
        let signed = m.sign(&self.identity);
        // With the change, in its transaction: "still to push to the audience".
        let also = |tx: &redb::WriteTransaction| match &self.fanout {
            Some(_) => fanout::queue(tx, &signed, &audience),
            None => Ok(()),
        };
        match self
            .catalogue
            .apply_with(&signed, now, &also)
            .map_err(store_failure)?
        {
            Outcome::Applied => {}
            Outcome::Duplicate => {
                return Err(BadRequest::new("id", "already applied").of_kind(Kind::Conflict))
            }
            Outcome::Refused(r) => {
                let kind = match r {
                    Refusal::Invalid(_) => Kind::Invalid,
                    _ => Kind::Conflict,
                };
                return Err(BadRequest::new(refusal_field(&r), r.to_string()).of_kind(kind));
            }
        }
        // A nano's resources go to its master, which forwards them to their partners.
        let sent = if self.standing.master().is_some() {
            self.send_delegated(&signed, &audience).await
        } else {
            self.send(&signed, &audience).await
        };
        if let Some(f) = &self.fanout {
            // Failing here costs a second push after the next start, not the change.
            if let Err(e) = f.done(&id, m.version) {
                tracing::warn!(error = %e, resource = %id, "fan-out row not removed");
            }
        }
        Ok(Answer::ok(
            json!({
                "ok": true,
                "resource": view::reference(&reference),
                "version": m.version,
                "op": m.op.name(),
                "sent": sent,
            }),
            Vec::new(),
        ))
    }

    /// Pushes a mutation to each partner; says what became of each push.
    async fn send(&self, m: &SignedMutation, to: &[Did]) -> Vec<Value> {
        let mu = m.mutation();
        let op = match mu.op {
            Op::Create(_) => dtn::Op::Create,
            Op::Update(_) => dtn::Op::Update,
            Op::Delete => dtn::Op::Delete,
        };
        let payload = m.encode();
        let owner = mu.owner.peer_id();
        let mut out = Vec::with_capacity(to.len());
        for did in to {
            let withheld = match (&owner, did.peer_id()) {
                (Some(owner), Some(to)) => !self.standing.sends(owner, &to),
                _ => false,
            };
            if withheld {
                out.push(json!({"did": did.as_str(), "withheld": "a nano receives only the resources it owns"}));
                continue;
            }
            let r = self
                .push(did, MUTATION_PROTOCOL, op, mu.id.as_str(), payload.clone())
                .await;
            out.push(pushed(did, r));
        }
        out
    }

    pub(super) async fn push(
        &self,
        did: &Did,
        protocol: &str,
        op: dtn::Op,
        resource: &str,
        payload: Vec<u8>,
    ) -> Result<(PeerId, dtn::Id), String> {
        let peer = did
            .peer_id()
            .ok_or_else(|| "not an Ed25519 key".to_string())?;
        let entry = Entry {
            peer,
            protocol: protocol.to_string(),
            op,
            resource: resource.to_string(),
            level: Level::Critical,
            payload,
            expires_at: self.clock.now().plus(self.ttl),
        };
        let id = self.plane.push(entry).await.map_err(|e| e.to_string())?;
        Ok((peer, id))
    }

    async fn book(&self, req: BookRequest) -> Result<Answer, BadRequest> {
        let now = self.clock.now();
        let resource = self
            .catalogue
            .get(&req.resource)
            .map_err(store_failure)?
            .ok_or_else(|| {
                BadRequest::new("resource", "not in our catalogue").of_kind(Kind::NotFound)
            })?;
        let id = BookingId {
            consumer: self.me.clone(),
            nonce: req.nonce.unwrap_or_else(rand::random),
        };
        let price = resource.price_per_unit;
        let b =
            Booking::request(id, &resource, req.window, req.units, price, now).map_err(|e| {
                let field = match e {
                    RequestError::OwnResource => "resource",
                    RequestError::Units { .. } => "units",
                    RequestError::OutsideAvailability => "start_ms",
                    RequestError::InThePast => "end_ms",
                };
                BadRequest::new(field, e.to_string())
            })?;
        self.bookings.request(&resource, &b).map_err(|e| {
            let (field, kind) = match e {
                BookError::Exists(_) => ("nonce", Kind::Conflict),
                BookError::Plan(_) => ("units", Kind::Conflict),
                BookError::Store(_) => ("(store)", Kind::Store),
                _ => ("resource", Kind::Invalid),
            };
            BadRequest::new(field, e.to_string()).of_kind(kind)
        })?;
        // A nano's resource is booked through its master (unless asked to go direct); the
        // booking's later messages follow the same way.
        let master = match req.direct {
            true => None,
            // A master booking its own nano's resource deals with the nano.
            false => self
                .routes
                .master_of(&b.provider)
                .map_err(store_failure)?
                .filter(|m| *m != self.me),
        };
        let to = match master {
            Some(m) => {
                self.routes.set_via(&b.id, &m).map_err(store_failure)?;
                m
            }
            None => b.provider.clone(),
        };
        let payload = cbor4ii::serde::to_vec(Vec::new(), &b).unwrap_or_default();
        let r = self
            .push(
                &to,
                BOOKING_PROTOCOL,
                dtn::Op::Message,
                &b.id.to_string(),
                payload,
            )
            .await;
        let sent = pushed(&to, r);
        let event =
            json!({"side": "consumer", "outcome": "requested", "booking": view::booking(&b)});
        Ok(Answer::ok(
            json!({"ok": true, "booking": view::booking(&b), "sent": sent}),
            vec![(Outbound::Booking, event)],
        ))
    }

    /// What an entry a peer delivered becomes: applied here, and its events (none for
    /// protocols the data plane's service does not handle).
    pub async fn on_delivered(&self, d: &Delivered) -> Vec<Event> {
        match d.protocol.as_str() {
            MUTATION_PROTOCOL => {
                vec![(Outbound::ResourceReceived, self.received_mutation(d).await)]
            }
            DELEGATED_PROTOCOL => {
                vec![(Outbound::ResourceReceived, self.received_delegated(d).await)]
            }
            RESOURCE_REFUSAL_PROTOCOL => {
                vec![(Outbound::ResourceRefused, self.received_mutation_refusal(d))]
            }
            BOOKING_PROTOCOL => self.received_booking(d).await,
            STEP_PROTOCOL => vec![(Outbound::Booking, self.received_step(d).await)],
            REFUSAL_PROTOCOL => vec![(Outbound::Booking, self.received_refusal(d).await)],
            SYNC_PROTOCOL => self.received_sync(d).await,
            COPY_PROTOCOL => vec![(Outbound::AttestationReceived, self.received_copy(d))],
            _ => {
                tracing::debug!(protocol = %d.protocol, "delivered entry of a protocol the service does not handle");
                Vec::new()
            }
        }
    }

    async fn received_mutation(&self, d: &Delivered) -> Value {
        let from = json!({"peer": d.from.to_string(), "entry": d.id.to_string()});
        if let Err(e) = self.standing.admit_change(&d.from) {
            tracing::warn!(from = %d.from, entry = %d.id, "{e}");
            // The sender hears why, not only our log.
            let told = self.refuse_mutation(d, &e.to_string()).await;
            return json!({"from": from, "outcome": "refused", "reason": e.to_string(), "told": told});
        }
        let m = match SignedMutation::decode(&d.payload) {
            Ok(m) => m,
            Err(e) => return json!({"from": from, "outcome": "refused", "reason": e.to_string()}),
        };
        // An entry queued as a create may carry a later update of the resource: the outbox
        // replaced a create we never got by it (`dtn::lifecycle`), so it creates the
        // resource here.
        self.mutation_event(from, &m, d.op == dtn::Op::Create)
    }

    /// Applies a peer's signed mutation to our catalogue (`creating`: it came as a create,
    /// see above); its `out.resource.received` event.
    pub(super) fn mutation_event(&self, from: Value, m: &SignedMutation, creating: bool) -> Value {
        let applied = if creating {
            self.catalogue.apply_creating(m, self.clock.now())
        } else {
            self.catalogue.apply(m, self.clock.now())
        };
        let (outcome, reason) = match applied {
            Ok(Outcome::Applied) => ("applied", None),
            Ok(Outcome::Duplicate) => ("duplicate", None),
            Ok(Outcome::Refused(r)) => ("refused", Some(r.to_string())),
            Err(e) => ("failed", Some(e.to_string())),
        };
        let mu = m.mutation();
        json!({
            "from": from,
            "outcome": outcome,
            "reason": reason,
            "op": mu.op.name(),
            "resource": view::reference(&mu.reference()),
            "version": mu.version,
            "issued_at_ms": mu.issued_at_ms,
            "value": mu.op.resource().map(view::resource),
        })
    }

    async fn received_booking(&self, d: &Delivered) -> Vec<Event> {
        let sent = cbor4ii::serde::from_slice::<Booking>(&d.payload).ok();
        let mut pre = Ok(());
        if let Some(sent) = sent.filter(|_| d.payload.len() <= MAX_BOOKING_BYTES) {
            // A request for a resource of one of our nanos: taken in proxy.
            let for_nano = sent
                .provider
                .peer_id()
                .is_some_and(|p| self.standing.has_nano(&p));
            if for_nano {
                return self.received_proxy_booking(d, sent).await;
            }
            // A nano takes a request brought to it directly only for a free slot, with room
            // in its next report to its master.
            let new = matches!(self.bookings.get(&sent.id), Ok(None));
            if new && sent.state != State::Cancelled {
                pre = self.nano_may_take(&sent);
            }
        }
        let from = json!({"peer": d.from.to_string(), "entry": d.id.to_string()});
        let now = self.clock.now();
        let accepted =
            pre.and_then(|()| accept_booking(&self.catalogue, &self.bookings, &self.me, d, now));
        let ev = match accepted {
            Ok((outcome, b)) => {
                let reported = match (outcome, self.standing.master()) {
                    ("requested", Some(_)) => Some(self.nano_took(&b).await),
                    _ => None,
                };
                json!({
                    "side": "provider", "from": from, "outcome": outcome, "booking": view::booking(&b),
                    "reported": reported,
                })
            }
            Err(reason) => {
                // Told to the consumer when the request is its own (not to anyone who sends
                // garbage: what we queue for a peer is bounded by what its party sends).
                let told = match cbor4ii::serde::from_slice::<Booking>(&d.payload) {
                    Ok(b)
                        if b.consumer.peer_id() == Some(d.from)
                            && d.payload.len() <= MAX_BOOKING_BYTES =>
                    {
                        let state = self.bookings.get(&b.id).ok().flatten().map(|s| s.state);
                        let action = match b.state {
                            State::Cancelled => "cancel",
                            _ => "request",
                        };
                        let r = StepRefusal::new(b.id.clone(), action, &reason, state);
                        Some(self.refuse(&b.consumer, r).await)
                    }
                    _ => None,
                };
                json!({"side": "provider", "from": from, "outcome": "refused", "reason": reason, "told": told})
            }
        };
        vec![(Outbound::Booking, ev)]
    }

    /// Where a message for `party` about booking `id` goes: the peer speaking for it (the
    /// master of a nano, for a booking taken through it), else the party's own peer.
    pub(super) fn route(&self, id: &BookingId, party: &Did) -> Did {
        if *party == self.me {
            return party.clone();
        }
        match self.routes.via(id) {
            Ok(Some(via)) => via,
            _ => party.clone(),
        }
    }

    /// Whether a message about booking `id` delivered by `from` speaks for `party`: its own
    /// peer, the peer its messages go through, or — on a nano — its master, the authority.
    pub(super) fn speaks_for(&self, id: &BookingId, party: &Did, from: &PeerId) -> bool {
        party.peer_id().as_ref() == Some(from)
            || self.standing.master() == Some(from)
            || matches!(self.routes.via(id), Ok(Some(v)) if v.peer_id().as_ref() == Some(from))
    }
}

/// A booking that is not here.
pub(super) fn no_booking(id: &BookingId) -> BadRequest {
    BadRequest::new("booking", format!("no booking {id} here")).of_kind(Kind::NotFound)
}

/// A booking request a peer delivered, checked and stored (the provider's side): it must
/// come from the booking's consumer's own peer, be for one of our resources at its price, and
/// pass [`Booking::request`] re-derived here (only the sender's terms are used: id, window,
/// units) and the planner in [`BookingStore::request`]. A redelivery of a stored booking is a
/// duplicate; another booking under a stored id is refused.
///
/// A request whose state is `Cancelled` is its **withdrawal**: the consumer cancelled it
/// before hearing back, and sent it under the request's own outbox key, so it replaced the
/// request if that was still queued (and otherwise follows it: one batch per peer at a
/// time). Withdrawn before it arrived: nothing is stored (`withdrawn`); stored: the
/// consumer's cancellation is applied by [`mirror::receive`] (`cancelled`, `duplicate`, or
/// refused when no longer cancellable). A cancellation sent as a step instead could overtake
/// its request and find no booking here.
pub(crate) fn accept_booking(
    catalogue: &Catalogue,
    bookings: &BookingStore,
    me: &Did,
    d: &Delivered,
    now: Timestamp,
) -> Result<(&'static str, Booking), String> {
    if d.payload.len() > MAX_BOOKING_BYTES {
        return Err(format!(
            "{} bytes (at most {MAX_BOOKING_BYTES})",
            d.payload.len()
        ));
    }
    let sent: Booking =
        cbor4ii::serde::from_slice(&d.payload).map_err(|e| format!("malformed: {e}"))?;
    if sent.consumer.peer_id() != Some(d.from) || sent.id.consumer != sent.consumer {
        return Err("not sent by the booking's consumer".into());
    }
    if sent.provider != *me || sent.resource.owner != *me {
        return Err("not a booking of our resource".into());
    }
    if sent.state == State::Cancelled {
        return withdraw(bookings, sent, now);
    }
    match check_request(catalogue, bookings, &sent, now)? {
        Checked::Duplicate(stored) => Ok(("duplicate", stored)),
        Checked::New(resource, b) => bookings
            .request(&resource, &b)
            .map(|()| ("requested", b))
            .map_err(|e| e.to_string()),
    }
}

/// A delivered request checked against the resource it books.
pub(super) enum Checked {
    /// The same booking is stored already (a redelivery).
    Duplicate(Booking),
    /// A new booking of this resource, re-derived here (boxed: the resource is large).
    New(Box<Resource>, Booking),
}

/// Checks a delivered request against the resource it books (in our catalogue: ours, or on a
/// master one of its nanos'): at the resource's price, re-derived by [`Booking::request`]
/// (only the sender's terms are used: id, window, units); a redelivery of a stored booking
/// is a duplicate, another booking under a stored id is refused.
pub(super) fn check_request(
    catalogue: &Catalogue,
    bookings: &BookingStore,
    sent: &Booking,
    now: Timestamp,
) -> Result<Checked, String> {
    let resource: Resource = catalogue
        .get(&sent.resource)
        .map_err(|e| e.to_string())?
        .ok_or("no such resource")?;
    if sent.unit_price != resource.price_per_unit {
        return Err("unit_price is not the resource's price".into());
    }
    let same_terms = |b: &Booking| {
        b.resource == sent.resource && b.window == sent.window && b.units == sent.units
    };
    if let Some(stored) = bookings.get(&sent.id).map_err(|e| e.to_string())? {
        return if same_terms(&stored) {
            Ok(Checked::Duplicate(stored))
        } else {
            Err("the booking id is taken by another booking".into())
        };
    }
    let b = Booking::request(
        sent.id.clone(),
        &resource,
        sent.window,
        sent.units,
        resource.price_per_unit,
        now,
    )
    .map_err(|e| e.to_string())?;
    Ok(Checked::New(Box::new(resource), b))
}

/// A withdrawn request (see [`accept_booking`]).
fn withdraw(
    bookings: &BookingStore,
    sent: Booking,
    now: Timestamp,
) -> Result<(&'static str, Booking), String> {
    let Some(stored) = bookings.get(&sent.id).map_err(|e| e.to_string())? else {
        return Ok(("withdrawn", sent));
    };
    if stored.resource != sent.resource
        || stored.window != sent.window
        || stored.units != sent.units
    {
        return Err("the booking id is taken by another booking".into());
    }
    let by = Actor::Party(sent.consumer.clone());
    let u = bookings
        .update(&sent.id, Guard::default(), |b| {
            Ok(mirror::receive(b, &by, &Action::Cancel, now)?.into_change())
        })
        .map_err(|e| e.to_string())?;
    Ok(match u.after {
        Some(b) => ("cancelled", b),
        None => ("duplicate", u.before),
    })
}

fn refusal_field(r: &Refusal) -> &'static str {
    match r {
        Refusal::Invalid(_) => "(resource)",
        _ => "id",
    }
}

pub(super) fn pushed(did: &Did, r: Result<(PeerId, dtn::Id), String>) -> Value {
    match r {
        Ok((peer, id)) => {
            json!({"did": did.as_str(), "peer": peer.to_string(), "entry": id.to_string()})
        }
        Err(e) => json!({"did": did.as_str(), "error": e}),
    }
}

/// The event of an outcome of an entry we sent.
pub fn outcome_event(o: &dtn::Outcome) -> Event {
    let gone = |g: &dtn::outbox::Gone| {
        json!({
            "peer": g.peer.to_string(),
            "entry": g.id.to_string(),
            "protocol": g.protocol,
            "resource": g.resource,
            "created_at_ms": g.created_at.as_millis(),
            "expires_at_ms": g.expires_at.as_millis(),
            "failures": g.failures,
        })
    };
    match o {
        dtn::Outcome::Delivered { peer, id } => (
            Outbound::Delivered,
            json!({"peer": peer.to_string(), "entry": id.to_string()}),
        ),
        dtn::Outcome::Expired(g) => (Outbound::Expired, gone(g)),
        dtn::Outcome::Dropped(g) => (Outbound::Dropped, gone(g)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::db;
    use crate::resources::resource::tests::{sample, w};
    use crate::resources::Visibility;

    struct Provider {
        catalogue: Catalogue,
        bookings: BookingStore,
        me: Did,
        resource: Resource,
    }

    fn provider() -> Provider {
        let id = NodeIdentity::generate();
        let me = Did::of(&id);
        let database = db::temp();
        let catalogue = Catalogue::new(database.clone(), me.clone()).unwrap();
        let bookings = BookingStore::new(database).unwrap();
        let mut resource = sample(&me, "gpu");
        resource.visibility = Visibility::Partners(Vec::new());
        let m = Mutation {
            owner: me.clone(),
            id: resource.id.clone(),
            version: 1,
            issued_at_ms: 0,
            op: Op::Create(resource.clone()),
        };
        assert_eq!(
            catalogue.apply(&m.sign(&id), Timestamp::ZERO).unwrap(),
            Outcome::Applied
        );
        Provider {
            catalogue,
            bookings,
            me,
            resource,
        }
    }

    fn delivered(from: PeerId, b: &Booking) -> Delivered {
        Delivered {
            from,
            id: dtn::Id::new(1, 1),
            protocol: BOOKING_PROTOCOL.into(),
            op: dtn::Op::Message,
            resource: b.id.to_string(),
            payload: cbor4ii::serde::to_vec(Vec::new(), b).unwrap(),
            receipt: dtn::plane::Receipt::detached(),
        }
    }

    fn accept(p: &Provider, d: &Delivered) -> Result<(&'static str, Booking), String> {
        accept_booking(
            &p.catalogue,
            &p.bookings,
            &p.me,
            d,
            Timestamp::from_millis(500),
        )
    }

    #[test]
    fn a_booking_is_accepted_once_and_only_from_its_consumer() {
        let p = provider();
        let consumer = NodeIdentity::generate();
        let id = BookingId {
            consumer: Did::of(&consumer),
            nonce: 1,
        };
        let now = Timestamp::from_millis(500);
        let b =
            Booking::request(id.clone(), &p.resource, w(2_000, 3_000), 2, 1_500_000, now).unwrap();
        // Relayed or forged by another peer: refused, nothing stored.
        let thief = NodeIdentity::generate().peer_id();
        let r = accept(&p, &delivered(thief, &b));
        assert_eq!(r.unwrap_err(), "not sent by the booking's consumer");
        assert_eq!(p.bookings.get(&id).unwrap(), None);
        // From the consumer: stored; its redelivery is a duplicate.
        let d = delivered(consumer.peer_id(), &b);
        assert_eq!(accept(&p, &d).unwrap().0, "requested");
        assert_eq!(accept(&p, &d).unwrap().0, "duplicate");
        // Another booking under the same id, another price, an unknown resource: refused.
        let mut other = b.clone();
        other.window = w(4_000, 5_000);
        let r = accept(&p, &delivered(consumer.peer_id(), &other));
        assert_eq!(r.unwrap_err(), "the booking id is taken by another booking");
        let mut cheap = b.clone();
        cheap.id.nonce = 2;
        cheap.unit_price = 1;
        assert!(accept(&p, &delivered(consumer.peer_id(), &cheap)).is_err());
        let mut elsewhere = b.clone();
        elsewhere.id.nonce = 3;
        elsewhere.resource.id = ResourceId::parse("nope").unwrap();
        assert!(accept(&p, &delivered(consumer.peer_id(), &elsewhere)).is_err());
        // Outside availability (re-derived here, whatever the sender claims): refused.
        let mut late = b.clone();
        late.id.nonce = 4;
        late.window = w(10_500, 11_000);
        assert!(accept(&p, &delivered(consumer.peer_id(), &late)).is_err());
        // Garbage and oversized payloads.
        let mut junk = delivered(consumer.peer_id(), &b);
        junk.payload = vec![0xff; 10];
        assert!(accept(&p, &junk).unwrap_err().starts_with("malformed"));
        junk.payload = vec![0; MAX_BOOKING_BYTES + 1];
        assert!(accept(&p, &junk).is_err());
    }

    #[test]
    fn a_withdrawn_request_is_cancelled_or_never_stored() {
        let p = provider();
        let consumer = NodeIdentity::generate();
        let now = Timestamp::from_millis(500);
        let request = |nonce| {
            let id = BookingId {
                consumer: Did::of(&consumer),
                nonce,
            };
            Booking::request(id, &p.resource, w(2_000, 3_000), 2, 1_500_000, now).unwrap()
        };
        let withdrawn = |b: &Booking| Booking {
            state: State::Cancelled,
            ..b.clone()
        };
        // Withdrawn before its request arrived (it replaced it): nothing is stored.
        let early = request(1);
        let d = delivered(consumer.peer_id(), &withdrawn(&early));
        assert_eq!(accept(&p, &d).unwrap().0, "withdrawn");
        assert_eq!(p.bookings.get(&early.id).unwrap(), None);
        // Withdrawn after: the consumer's cancellation is applied, once.
        let b = request(2);
        assert_eq!(
            accept(&p, &delivered(consumer.peer_id(), &b)).unwrap().0,
            "requested"
        );
        let d = delivered(consumer.peer_id(), &withdrawn(&b));
        let (outcome, stored) = accept(&p, &d).unwrap();
        assert_eq!((outcome, stored.state), ("cancelled", State::Cancelled));
        assert_eq!(accept(&p, &d).unwrap().0, "duplicate");
        // Only by its consumer, and only of the same booking.
        let c = request(3);
        accept(&p, &delivered(consumer.peer_id(), &c)).unwrap();
        let thief = NodeIdentity::generate().peer_id();
        assert!(accept(&p, &delivered(thief, &withdrawn(&c))).is_err());
        let mut other = withdrawn(&c);
        other.units = 1;
        let r = accept(&p, &delivered(consumer.peer_id(), &other));
        assert_eq!(r.unwrap_err(), "the booking id is taken by another booking");
        assert_eq!(
            p.bookings.get(&c.id).unwrap().unwrap().state,
            State::Requested
        );
        // Confirmed meanwhile: still the consumer's to cancel.
        p.bookings
            .transition(
                &c.id,
                &p.resource,
                &Actor::Party(p.me.clone()),
                &Action::Confirm,
                now,
            )
            .unwrap();
        let d = delivered(consumer.peer_id(), &withdrawn(&c));
        assert_eq!(accept(&p, &d).unwrap().0, "cancelled");
    }
}
