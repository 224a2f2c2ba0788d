//! The transitions of a booking after its request, on both parties' sites (glue over
//! [`BookingStore::update`], [`mirror::receive`] and the outbox; the rules are theirs).
//!
//! * **Made here** ([`Service::step`]): our party (the provider: confirm, decline, start,
//!   complete with a usage report we sign; the consumer: cancel, confirm usage, which we
//!   countersign) makes the step on the stored booking — a confirmation admitted by the
//!   planner in the same write transaction, a usage confirmation queued for settlement in
//!   it too (`usage.pending`) — then a critical entry carries it to the other party on
//!   [`STEP_PROTOCOL`], keyed by the booking (a newer step replaces one still queued). A
//!   consumer's cancellation of a booking still `requested` is sent as the request's
//!   withdrawal instead, under the request's key ([`BOOKING_PROTOCOL`]), so it can never
//!   overtake the request.
//! * **Received** ([`Service::received_step`]): accepted only from the other party's own
//!   peer; [`mirror::receive`] decides — applied (with the steps a replaced message implied),
//!   a duplicate (acknowledged, nothing changes), or refused. A refusal is sent back to that
//!   peer on [`REFUSAL_PROTOCOL`] (critical, keyed by the booking: at most one per booking
//!   waits) and becomes an event here; the sender turns it into an event
//!   ([`Service::received_refusal`]) and never answers a refusal. A refused *request* is the
//!   provider's decline (it will never serve it): the consumer's booking follows, to
//!   `cancelled`.
//!
//! Every outcome is an `out.booking` event on the site where it happens; usage we confirm
//! as consumer is also an `out.usage.confirmed` event and goes to settlement
//! (`events::settle`). Nothing here can reach a settlement key: the consumer countersigns
//! with the node identity, and settlement signs its chain transactions with its own key.

use serde_json::{json, Value};

use super::fields::{BadRequest, Kind};
use super::request::{StepKind, StepRequest};
use super::service::{no_booking, pushed, store_failure, Answer, Event, Service};
use super::service::{BOOKING_PROTOCOL, REFUSAL_PROTOCOL, STEP_PROTOCOL};
use super::subjects::Outbound;
use super::view;
use crate::dtn::{self, Delivered, Entry, Level};
use crate::resources::booking::{
    Action, Actor, Booking, ReportError, Role, State, TransitionError,
};
use crate::resources::mirror::{self, Mirrored};
use crate::resources::step::{Step, StepMessage, StepRefusal};
use crate::resources::store::{BookError, Guard};
use crate::resources::usage::{ConfirmedUsage, UsageReport};
use crate::resources::Did;
use crate::time::Timestamp;

/// The field a refused transition names, and its kind.
fn refused(e: BookError) -> BadRequest {
    let (field, kind) = match &e {
        BookError::NotFound(id) => return no_booking(id),
        BookError::Store(_) => ("(store)", Kind::Store),
        BookError::Plan(_) => ("booking", Kind::Conflict),
        BookError::WrongResource => ("booking", Kind::Invalid),
        BookError::Exists(_) => ("booking", Kind::Conflict),
        BookError::Transition(t) => match t {
            TransitionError::NotAParty(_) | TransitionError::Forbidden { .. } => {
                ("booking", Kind::Forbidden)
            }
            TransitionError::InvalidFrom { .. } | TransitionError::WindowOver => {
                ("booking", Kind::Conflict)
            }
            TransitionError::Report(ReportError::TooManyUnits { .. }) => {
                ("units_used", Kind::Invalid)
            }
            TransitionError::Report(ReportError::OutsideWindow) => ("start_ms", Kind::Invalid),
            TransitionError::Report(_) => ("booking", Kind::Invalid),
        },
    };
    BadRequest::new(field, e.to_string()).of_kind(kind)
}

fn side(role: Role) -> &'static str {
    match role {
        Role::Consumer => "consumer",
        Role::Provider => "provider",
        Role::Settlement => "settlement",
    }
}

/// Who may make a step of kind `k`.
fn allowed(k: StepKind) -> Role {
    match k {
        StepKind::Confirm | StepKind::Decline | StepKind::Start | StepKind::Complete => {
            Role::Provider
        }
        StepKind::Cancel | StepKind::ConfirmUsage => Role::Consumer,
    }
}

impl Service {
    /// A step by our party (see the module docs).
    pub(super) async fn step(&self, req: StepRequest) -> Result<Answer, BadRequest> {
        let now = self.clock.now();
        let current = self
            .bookings
            .get(&req.booking)
            .map_err(store_failure)?
            .ok_or_else(|| no_booking(&req.booking))?;
        let me = Actor::Party(self.me.clone());
        let role = current
            .role_of(&me)
            .map_err(|e| refused(BookError::Transition(e)))?;
        // Whose step it is comes first, so that a consumer asking to complete gets that
        // answer rather than one about the report.
        if role != allowed(req.kind) {
            let action = self.action_stub(req.kind);
            return Err(refused(BookError::Transition(TransitionError::Forbidden {
                action,
                allowed: allowed(req.kind),
                by: role,
            })));
        }
        let action = self.action(&req, &current)?;
        // Only a confirmation takes capacity; our resource must still be there for it.
        let resource = match action {
            Action::Confirm => Some(
                self.catalogue
                    .get(&current.resource)
                    .map_err(store_failure)?
                    .ok_or_else(|| {
                        BadRequest::new("booking", "its resource is no longer in our catalogue")
                            .of_kind(Kind::Conflict)
                    })?,
            ),
            _ => None,
        };
        let guard = Guard {
            capacity: resource.as_ref(),
            handoff: matches!(action, Action::ConfirmUsage(_)),
        };
        let updated = self
            .bookings
            .update(&req.booking, guard, |b| {
                Ok(Some(b.step(&me, &action, now).map_err(BookError::from)?))
            })
            .map_err(refused)?;
        let b = updated.after.clone().unwrap_or(updated.before.clone());
        let usage = updated.newly_confirmed_usage().cloned();
        if usage.is_some() {
            if let Some(n) = &self.handoff {
                n.notify_one();
            }
        }
        let party = match role {
            Role::Provider => b.consumer.clone(),
            _ => b.provider.clone(),
        };
        // The other party, or the master speaking for it.
        let other = self.route(&b.id, &party);
        // A cancellation before the provider answered withdraws the request under its own
        // outbox key (see `accept_booking`): a step could overtake a request still queued.
        let sent = if matches!(action, Action::Cancel) && updated.before.state == State::Requested {
            let payload = cbor4ii::serde::to_vec(Vec::new(), &b).unwrap_or_default();
            let r = self
                .push(
                    &other,
                    BOOKING_PROTOCOL,
                    dtn::Op::Message,
                    &b.id.to_string(),
                    payload,
                )
                .await;
            pushed(&other, r)
        } else {
            self.send_step(&other, &b, &action, now).await
        };
        let mut events: Vec<Event> = vec![(
            Outbound::Booking,
            json!({
                "side": side(role), "action": action.name(), "outcome": "applied",
                "booking": view::booking(&b),
            }),
        )];
        if let Some(u) = &usage {
            events.push((Outbound::UsageConfirmed, view::usage(u)));
        }
        Ok(Answer::ok(
            json!({"ok": true, "action": action.name(), "booking": view::booking(&b), "sent": sent}),
            events,
        ))
    }

    /// An action of kind `k` for naming it in a refusal (its evidence is not needed).
    fn action_stub(&self, k: StepKind) -> &'static str {
        match k {
            StepKind::Confirm => "confirm",
            StepKind::Decline => "decline",
            StepKind::Start => "start",
            StepKind::Complete => "complete",
            StepKind::Cancel => "cancel",
            StepKind::ConfirmUsage => "confirm usage",
        }
    }

    /// The action our party makes, with its evidence signed by our identity.
    fn action(&self, req: &StepRequest, b: &Booking) -> Result<Action, BadRequest> {
        Ok(match req.kind {
            StepKind::Confirm => Action::Confirm,
            StepKind::Decline => Action::Decline,
            StepKind::Start => Action::Start,
            StepKind::Cancel => Action::Cancel,
            StepKind::Complete => {
                let terms = req
                    .usage
                    .ok_or_else(|| BadRequest::new("units_used", "missing"))?;
                Action::Complete(UsageReport::sign(
                    &self.identity,
                    b.id.clone(),
                    b.resource.clone(),
                    terms.units_used,
                    terms.window.unwrap_or(b.window),
                ))
            }
            StepKind::ConfirmUsage => {
                let report = b.report.as_ref().ok_or_else(|| {
                    BadRequest::new(
                        "booking",
                        format!(
                            "cannot confirm usage of a booking in state {}: no usage report yet",
                            b.state
                        ),
                    )
                    .of_kind(Kind::Conflict)
                })?;
                let usage = ConfirmedUsage::confirm(&self.identity, report, b.unit_price)
                    .map_err(|e| BadRequest::new("booking", e.to_string()))?;
                Action::ConfirmUsage(usage)
            }
        })
    }

    /// Pushes our step to the other party; says what became of the push.
    async fn send_step(&self, to: &Did, b: &Booking, action: &Action, at: Timestamp) -> Value {
        let Some(step) = Step::of(action) else {
            return json!({"did": to.as_str(), "error": "a local step"});
        };
        self.send_step_to(to, &b.id, step, at).await
    }

    /// Sends `refusal` to `to` (critical, one per booking at a time); its `sent` line.
    pub(super) async fn refuse(&self, to: &Did, refusal: StepRefusal) -> Value {
        let Some(peer) = to.peer_id() else {
            return json!({"did": to.as_str(), "error": "not an Ed25519 key"});
        };
        let entry = Entry {
            peer,
            protocol: REFUSAL_PROTOCOL.to_string(),
            op: dtn::Op::Message,
            resource: refusal.booking.to_string(),
            level: Level::Critical,
            payload: refusal.encode(),
            expires_at: self.clock.now().plus(self.ttl),
        };
        let r = self.plane.push(entry).await.map_err(|e| e.to_string());
        pushed(to, r.map(|id| (peer, id)))
    }

    /// A step the other party made (see the module docs).
    pub(super) async fn received_step(&self, d: &Delivered) -> Value {
        let from = json!({"peer": d.from.to_string(), "entry": d.id.to_string()});
        let msg = match StepMessage::decode(&d.payload) {
            Ok(m) => m,
            Err(e) => return json!({"from": from, "outcome": "refused", "reason": e.to_string()}),
        };
        let action = msg.step.action();
        let base = |extra: Value| {
            let mut v = json!({"from": from, "action": action.name(), "id": view::booking_id(&msg.booking)});
            if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
                v.extend(extra);
            }
            v
        };
        let current = match self.bookings.get(&msg.booking) {
            Ok(Some(b)) => b,
            Ok(None) => {
                // No booking to check the sender against: not answered (see the docs).
                return base(
                    json!({"outcome": "refused", "reason": format!("no booking {} here", msg.booking)}),
                );
            }
            Err(e) => return base(json!({"outcome": "failed", "reason": e.to_string()})),
        };
        // The sender is whichever party the delivering peer speaks for; a stranger gets no
        // answer. A master holding the booking in proxy is neither party: it applies the
        // step to its copy and relays it to the other party.
        let proxy = self.is_proxy(&current);
        let (sender, our_role) = if current.consumer != self.me
            && self.speaks_for(&current.id, &current.consumer, &d.from)
            && (!proxy || current.consumer.peer_id() == Some(d.from))
        {
            (current.consumer.clone(), Role::Provider)
        } else if current.provider != self.me
            && self.speaks_for(&current.id, &current.provider, &d.from)
        {
            (current.provider.clone(), Role::Consumer)
        } else {
            return base(json!({
                "side": Value::Null, "outcome": "refused",
                "reason": "not sent by a party of the booking",
            }));
        };
        // Refusals go back to the peer that delivered the step.
        let reply_to = super::nano::did_of(&d.from).unwrap_or_else(|| sender.clone());
        let side = if proxy { "master" } else { side(our_role) };
        let by = Actor::Party(sender.clone());
        let at = Timestamp::from_millis(msg.at_ms);
        let mut implied = Vec::new();
        let r = self.bookings.update(&msg.booking, Guard::default(), |b| {
            match mirror::receive(b, &by, &action, at).map_err(BookError::from)? {
                Mirrored::Duplicate => Ok(None),
                Mirrored::Applied {
                    booking,
                    implied: i,
                } => {
                    implied = i;
                    Ok(Some(*booking))
                }
            }
        });
        match r {
            Ok(u) => {
                let outcome = if u.after.is_some() {
                    "applied"
                } else {
                    "duplicate"
                };
                let applied = u.after.is_some();
                let b = u.after.unwrap_or(u.before);
                // In proxy: the other party hears it through us.
                let relayed = if proxy && applied {
                    let to = match our_role {
                        Role::Provider => b.provider.clone(),
                        _ => b.consumer.clone(),
                    };
                    Some(self.relay(&to, STEP_PROTOCOL, d).await)
                } else {
                    None
                };
                base(json!({
                    "side": side, "outcome": outcome, "reason": Value::Null,
                    "implied": implied, "booking": view::booking(&b), "relayed": relayed,
                }))
            }
            Err(BookError::Store(e)) => base(json!({
                "side": side, "outcome": "failed", "reason": e.to_string(),
                "booking": view::booking(&current),
            })),
            Err(e) => {
                let reason = e.to_string();
                let refusal = StepRefusal::new(
                    msg.booking.clone(),
                    action.name(),
                    &reason,
                    Some(current.state),
                );
                let told = self.refuse(&reply_to, refusal).await;
                base(json!({
                    "side": side, "outcome": "refused", "reason": reason, "told": told,
                    "booking": view::booking(&current),
                }))
            }
        }
    }

    /// The other party refused a step or a request of ours: an event, never an answer. On a
    /// master holding the booking in proxy, relayed to the other party. A reconciliation's
    /// cancellation (`action: "reconcile"`) cancels the booking here too.
    pub(super) async fn received_refusal(&self, d: &Delivered) -> Value {
        let from = json!({"peer": d.from.to_string(), "entry": d.id.to_string()});
        let r = match StepRefusal::decode(&d.payload) {
            Ok(r) => r,
            Err(e) => {
                return json!({"from": from, "outcome": "refused", "reason": format!("a refusal that does not decode: {e}")})
            }
        };
        let held = self.bookings.get(&r.booking).ok().flatten();
        if let Some(b) = held.as_ref().filter(|b| self.is_proxy(b)) {
            let to = if b.consumer.peer_id() == Some(d.from) {
                Some(b.provider.clone())
            } else if b.provider.peer_id() == Some(d.from) {
                Some(b.consumer.clone())
            } else {
                None
            };
            let relayed = match &to {
                Some(to) => Some(self.relay(to, REFUSAL_PROTOCOL, d).await),
                None => None,
            };
            return json!({
                "side": "master", "from": from, "id": view::booking_id(&r.booking),
                "action": r.action, "outcome": "relayed", "reason": r.reason, "relayed": relayed,
            });
        }
        // Only the booking's other party (or the peer speaking for it) may refuse its steps.
        let ours = held.as_ref().and_then(|b| {
            if b.consumer == self.me && self.speaks_for(&b.id, &b.provider, &d.from) {
                Some(Role::Consumer)
            } else if b.provider == self.me && self.speaks_for(&b.id, &b.consumer, &d.from) {
                Some(Role::Provider)
            } else {
                None
            }
        });
        let Some(role) = ours else {
            return json!({
                "from": from, "id": view::booking_id(&r.booking), "action": r.action,
                "outcome": "refused",
                "reason": "a refusal from a peer that is not the other party of a booking of ours",
            });
        };
        if r.action == super::nano::RECONCILE_ACTION && role == Role::Consumer {
            if let Some(b) = &held {
                let mut v = self.adopt_reconciled(b, &r);
                v["from"] = from;
                return v;
            }
        }
        tracing::warn!(booking = %r.booking, action = %r.action, reason = %r.reason, "the other party refused our step");
        // A provider that refused our request will never serve it: that is its decline,
        // which it may make itself, so our booking follows (it would stay requested for ever).
        let mut adopted = Value::Null;
        let mut booking = held;
        if role == Role::Consumer && r.action == "request" {
            if let Some(b) = &booking {
                let by = Actor::Party(b.provider.clone());
                let now = self.clock.now();
                let u = self.bookings.update(&r.booking, Guard::default(), |cur| {
                    Ok(mirror::receive(cur, &by, &Action::Decline, now)?.into_change())
                });
                match u {
                    Ok(u) => {
                        if let Some(after) = u.after {
                            adopted = json!("decline");
                            booking = Some(after);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "refused request not adopted"),
                }
            }
        }
        json!({
            "side": side(role), "from": from, "id": view::booking_id(&r.booking),
            "action": r.action, "outcome": "refused_by_peer", "reason": r.reason,
            "peer_state": r.state.map(|s| s.name()), "adopted": adopted,
            "booking": booking.as_ref().map(view::booking),
        })
    }
}
