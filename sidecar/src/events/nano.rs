//! A nano and its master on the data plane (glue over `delegation`, `resources` and the
//! outbox; the rules are theirs). See docs/ARCHITECTURE.md, *Split brain: master wins*.
//!
//! * **A nano's resources** travel to its master only, each mutation in a [`Delegated`]
//!   envelope with the nano's signed statement ([`DELEGATED_PROTOCOL`]). The master applies
//!   it and forwards the same bytes to the resource's partners — never to another of its
//!   nanos, which only ever receive their own resources ([`Standing::sends`]). A partner
//!   learns from the statement that the master answers for the nano ([`Routes::learn`]).
//! * **The gate's refusals travel back.** A nano takes resource changes only from its master;
//!   anyone else's is refused and the refusal sent back to the sender
//!   ([`RESOURCE_REFUSAL_PROTOCOL`]), where it becomes an `out.resource.refused` event.
//! * **Proxy bookings.** A booking request for a nano's resource reaches the master (a third
//!   party sends it there, see `Service::book`): the master checks it against the nano's
//!   resource and the bookings it knows of, confirms it in the nano's name, answers the
//!   requester (a `confirm` step) and takes it into the next round with the nano.
//! * **Rounds** ([`SYNC_PROTOCOL`], `delegation::sync`): the nano reports the bookings it took
//!   itself, the master settles, both apply the same [`reconcile_bookings`] outcome; the side
//!   whose booking is cancelled tells its requester, once, on the booking-refusal protocol
//!   (`action: "reconcile"`).
//!
//! Every message to a nano is a critical outbox entry (durable, retried until its contact):
//! the service pushes nothing else.
//!
//! [`reconcile_bookings`]: crate::delegation::reconcile_bookings

use std::collections::BTreeSet;

use libp2p::PeerId;
use serde_json::{json, Value};

use super::service::{check_request, pushed, Checked, Event, Service, STEP_PROTOCOL};
use super::service::{DELEGATED_PROTOCOL, RESOURCE_REFUSAL_PROTOCOL, SYNC_PROTOCOL};
use super::subjects::Outbound;
use super::sync_store::{MasterRecord, NanoRecord, Notice, Record};
use super::view;
use crate::delegation::sync::{
    Cancelled, MasterStep, MasterSync, NanoStep, NanoSync, Settled, SyncMessage,
};
use crate::delegation::{CancelReason, Defect, Side, Standing};
use crate::dtn::{self, Delivered};
use crate::resources::booking::{Action, Actor, Booking, State};
use crate::resources::delegate::{Delegated, Delegation, SignedDelegation};
use crate::resources::mutation::{to_partners, Op, SignedMutation};
use crate::resources::refusal::MutationRefusal;
use crate::resources::step::{Step, StepMessage, StepRefusal};
use crate::resources::store::Guard;
use crate::resources::{BookingId, Did, Resource};
use crate::time::Timestamp;

/// Outbox keys of the rounds: a newer report (or a settle sent again) replaces a queued one.
const REPORT_KEY: &str = "delegation/report";
const SETTLE_KEY: &str = "delegation/settle";
/// The action name of a reconciliation's cancellation, as the requester's site reads it.
pub const RECONCILE_ACTION: &str = "reconcile";

/// The DID of a peer (an Ed25519 peer id).
pub(super) fn did_of(peer: &PeerId) -> Option<Did> {
    crate::keys::identity::did_of_peer(peer).and_then(|s| Did::parse(&s).ok())
}

/// The code and detail a requester is told for a cancelled booking.
pub(super) fn reason_of(r: &CancelReason) -> (&'static str, String) {
    match r {
        CancelReason::OverlapsMaster { with } => (
            "superseded_by_master",
            format!("overlaps booking {with}, which the master holds"),
        ),
        CancelReason::OverlapsNano { with } => (
            "overlaps_nano_booking",
            format!("overlaps booking {with}, taken earlier by the nano"),
        ),
        CancelReason::ConflictingId => (
            "conflicting_id",
            "the master holds another booking under this id".to_string(),
        ),
        CancelReason::Invalid(Defect::EmptySlot) => ("invalid", "an empty slot".to_string()),
        CancelReason::Invalid(Defect::ForgedSide) => (
            "invalid",
            "the nano's list says the master took it".to_string(),
        ),
    }
}

impl Service {
    /// This nano's statement naming its master, signed at `now` (`with_standing`).
    pub(super) fn sign_statement(&self, now: Timestamp) -> Option<SignedDelegation> {
        let master = did_of(self.standing.master()?)?;
        Some(
            Delegation {
                nano: self.me.clone(),
                master,
                issued_at_ms: now.as_millis(),
            }
            .sign(&self.identity),
        )
    }

    /// A nano's mutation of its own resource: to its master only, with its statement; the
    /// master forwards it to `partners`. The `sent` lines.
    pub(super) async fn send_delegated(&self, m: &SignedMutation, partners: &[Did]) -> Vec<Value> {
        let (Some(statement), Some(master)) = (
            self.statement.clone(),
            self.standing.master().and_then(did_of),
        ) else {
            return vec![json!({"error": "no master to send to"})];
        };
        let mu = m.mutation();
        let env = Delegated {
            statement,
            mutation: m.clone(),
        };
        let r = self
            .push(
                &master,
                DELEGATED_PROTOCOL,
                mutation_op(&mu.op),
                mu.id.as_str(),
                env.encode(),
            )
            .await;
        let mut line = pushed(&master, r);
        line["for"] = json!(partners.iter().map(|d| d.as_str()).collect::<Vec<_>>());
        vec![line]
    }

    /// A delegated mutation: on a master, from one of its nanos (applied and forwarded); on
    /// anyone else, from the nano's master (applied, and the master's answering for the nano
    /// learnt).
    pub(super) async fn received_delegated(&self, d: &Delivered) -> Value {
        let from = json!({"peer": d.from.to_string(), "entry": d.id.to_string()});
        let refuse = |reason: String| {
            let from = from.clone();
            async move {
                let told = self.refuse_mutation(d, &reason).await;
                json!({"from": from, "outcome": "refused", "reason": reason, "told": told})
            }
        };
        if let Err(e) = self.standing.admit_change(&d.from) {
            tracing::warn!(from = %d.from, entry = %d.id, "{e}");
            return refuse(e.to_string()).await;
        }
        let env = match Delegated::decode(&d.payload, &d.from) {
            Ok(e) => e,
            Err(e) => return refuse(e.to_string()).await,
        };
        let nano_sends = env.from_nano(&d.from);
        if nano_sends
            && !(self.standing.has_nano(&d.from) && env.statement.delegation().master == self.me)
        {
            return refuse(format!(
                "{} is not a nano of this site: its resources go to its master",
                d.from
            ))
            .await;
        }
        if let Err(e) = self.routes.learn(&env.statement) {
            tracing::warn!(error = %e, "delegation statement not kept");
        }
        let m = &env.mutation;
        // For a delete, the audience is the value it deletes.
        let before = self.catalogue.get(&m.mutation().reference()).ok().flatten();
        let mut event = self.mutation_event(from, m, d.op == crate::dtn::Op::Create);
        if nano_sends && event["outcome"] == "applied" {
            let shown = m.mutation().op.resource().cloned().or(before);
            let forwarded = match shown {
                Some(r) => self.forward(&r, m, &d.payload).await,
                None => Vec::new(),
            };
            event["forwarded"] = json!(forwarded);
        } else if !nano_sends {
            event["via"] = json!(d.from.to_string());
        }
        event
    }

    /// Forwards a nano's envelope to the partners of `r`: not to the nano, not to us, and
    /// not to another of our nanos (a nano receives only the resources it owns).
    async fn forward(&self, r: &Resource, m: &SignedMutation, envelope: &[u8]) -> Vec<Value> {
        let mu = m.mutation();
        let owner = mu.owner.peer_id();
        let key = format!("{}/{}", mu.owner, mu.id);
        let mut out = Vec::new();
        for did in to_partners(r, &[]) {
            if did == self.me {
                continue;
            }
            let withheld = match (&owner, did.peer_id()) {
                (Some(o), Some(to)) => !self.standing.sends(o, &to),
                _ => false,
            };
            if withheld {
                out.push(json!({"did": did.as_str(), "withheld": "a nano receives only the resources it owns"}));
                continue;
            }
            let r = self
                .push(
                    &did,
                    DELEGATED_PROTOCOL,
                    mutation_op(&mu.op),
                    &key,
                    envelope.to_vec(),
                )
                .await;
            out.push(pushed(&did, r));
        }
        out
    }

    /// Tells the sender of a refused resource mutation why (critical, keyed by the resource:
    /// one refusal per resource waits at a time). Its `sent` line.
    pub(super) async fn refuse_mutation(&self, d: &Delivered, reason: &str) -> Value {
        let Some(to) = did_of(&d.from) else {
            return json!({"error": "the sender's peer id is not an Ed25519 key"});
        };
        // Name the resource if the bytes say which (a delegated envelope or a mutation).
        let m = Delegated::decode(&d.payload, &d.from)
            .map(|e| e.mutation)
            .ok()
            .or_else(|| SignedMutation::decode(&d.payload).ok());
        let r = MutationRefusal::new(
            m.as_ref().map(|m| m.mutation().reference()),
            m.as_ref().map(|m| m.mutation().version),
            m.as_ref().map_or("?", |m| m.mutation().op.name()),
            reason,
        );
        let key = match &r.resource {
            Some(x) => format!("{}/{}", x.owner, x.id),
            None => d.resource.clone(),
        };
        let p = self
            .push(
                &to,
                RESOURCE_REFUSAL_PROTOCOL,
                dtn::Op::Message,
                &key,
                r.encode(),
            )
            .await;
        pushed(&to, p)
    }

    /// A peer refused a mutation of ours: an event, never an answer.
    pub(super) fn received_mutation_refusal(&self, d: &Delivered) -> Value {
        let from = json!({"peer": d.from.to_string(), "entry": d.id.to_string()});
        match MutationRefusal::decode(&d.payload) {
            Ok(r) => {
                tracing::warn!(peer = %d.from, reason = %r.reason, "a peer refused our resource change");
                json!({
                    "from": from,
                    "resource": r.resource.as_ref().map(view::reference),
                    "version": r.version, "op": r.op, "reason": r.reason,
                })
            }
            Err(e) => {
                json!({"from": from, "resource": null, "reason": format!("a refusal that does not decode: {e}")})
            }
        }
    }

    // ---- bookings of a nano's resources ----

    /// The booking of a nano's resource that overlaps `b` and holds (a nano's resource is
    /// booked one slot at a time: any overlap is the conflict the master wins).
    fn overlapping(&self, b: &Booking) -> Result<Option<Booking>, String> {
        let all = self
            .bookings
            .of_resource(&b.resource)
            .map_err(|e| e.to_string())?;
        Ok(all
            .into_iter()
            .find(|x| x.id != b.id && x.state != State::Cancelled && x.window.overlaps(&b.window)))
    }

    /// The base bookings ended here (cancelled or settled): told to the other side so both
    /// drop them from the base.
    fn gone(&self, base: &[Booking]) -> BTreeSet<BookingId> {
        base.iter()
            .filter(|b| {
                self.bookings
                    .get(&b.id)
                    .ok()
                    .flatten()
                    .is_some_and(|h| h.state.is_terminal())
            })
            .map(|b| b.id.clone())
            .collect()
    }

    /// On a nano: may it take booking `b` requested directly? `Err` names why not.
    pub(super) fn nano_may_take(&self, b: &Booking) -> Result<(), String> {
        if self.standing.master().is_none() {
            return Ok(());
        }
        if let Some(x) = self.overlapping(b)? {
            return Err(format!(
                "a nano's resource is booked one slot at a time: overlaps booking {}",
                x.id
            ));
        }
        let r: NanoRecord = self
            .sync
            .load(self.me.as_str())
            .map_err(|e| e.to_string())?;
        if !r.sync.has_room() {
            return Err("too many bookings wait for the next round with the master".into());
        }
        Ok(())
    }

    /// On a nano: a booking taken here goes into the next report to the master. Its `sent`
    /// line.
    pub(super) async fn nano_took(&self, b: &Booking) -> Value {
        let key = self.me.as_str().to_string();
        let mut r: NanoRecord = match self.sync.load(&key) {
            Ok(r) => r,
            Err(e) => return json!({"error": e.to_string()}),
        };
        let gone = self.gone(&r.sync.base);
        let report = match r.sync.take(b.clone(), &gone) {
            Ok(m) => m,
            Err(e) => return json!({"error": e.to_string()}),
        };
        if let Err(e) = self.sync.save(&key, &r) {
            return json!({"error": e.to_string()});
        }
        self.send_sync(report).await
    }

    /// Sends a round's message to the other side (a nano's report to its master, a settle to
    /// the nano `to`).
    async fn send_sync_to(&self, to: &Did, m: SyncMessage) -> Value {
        let key = match m {
            SyncMessage::Report { .. } => REPORT_KEY,
            SyncMessage::Settle { .. } => SETTLE_KEY,
        };
        let r = self
            .push(to, SYNC_PROTOCOL, dtn::Op::Message, key, m.encode())
            .await;
        pushed(to, r)
    }

    async fn send_sync(&self, m: SyncMessage) -> Value {
        match self.standing.master().and_then(did_of) {
            Some(master) => self.send_sync_to(&master, m).await,
            None => json!({"error": "no master"}),
        }
    }

    /// On a master: a booking request for a resource of one of its nanos, taken in proxy.
    /// Its event first, then those of the round it started, if any.
    pub(super) async fn received_proxy_booking(&self, d: &Delivered, sent: Booking) -> Vec<Event> {
        let from = json!({"peer": d.from.to_string(), "entry": d.id.to_string()});
        let now = self.clock.now();
        let ev = match self.take_in_proxy(d, &sent, now).await {
            Ok((mut ev, more)) => {
                ev["from"] = from;
                let mut all = vec![(Outbound::Booking, ev)];
                all.extend(more);
                return all;
            }
            Err(reason) => {
                let told = if sent.consumer.peer_id() == Some(d.from) {
                    let state = self.bookings.get(&sent.id).ok().flatten().map(|s| s.state);
                    let action = match sent.state {
                        State::Cancelled => "cancel",
                        _ => "request",
                    };
                    let r = StepRefusal::new(sent.id.clone(), action, &reason, state);
                    Some(self.refuse(&sent.consumer, r).await)
                } else {
                    None
                };
                json!({"side": "master", "from": from, "outcome": "refused", "reason": reason, "told": told})
            }
        };
        vec![(Outbound::Booking, ev)]
    }

    /// The proxy booking's event and those of the round it started.
    async fn take_in_proxy(
        &self,
        d: &Delivered,
        sent: &Booking,
        now: Timestamp,
    ) -> Result<(Value, Vec<Event>), String> {
        if sent.consumer.peer_id() != Some(d.from) || sent.id.consumer != sent.consumer {
            return Err("not sent by the booking's consumer".into());
        }
        if sent.resource.owner != sent.provider {
            return Err("not a booking of the provider's resource".into());
        }
        let nano = sent.provider.clone();
        if sent.state == State::Cancelled {
            return Ok((self.withdraw_in_proxy(sent, now).await?, Vec::new()));
        }
        let (resource, requested) = match check_request(&self.catalogue, &self.bookings, sent, now)?
        {
            Checked::New(r, b) => (r, b),
            Checked::Duplicate(stored) => {
                let ev = json!({"side": "master", "outcome": "duplicate", "booking": view::booking(&stored)});
                return Ok((ev, Vec::new()));
            }
        };
        if let Some(x) = self.overlapping(&requested)? {
            return Err(format!(
                "a nano's resource is booked one slot at a time: overlaps booking {}",
                x.id
            ));
        }
        let key = nano.as_str().to_string();
        let mut record: MasterRecord = self.sync.load(&key).map_err(|e| e.to_string())?;
        if !record.sync.has_room() {
            return Err("too many bookings wait for the nano's next contact".into());
        }
        // Taken in the nano's name: requested, then confirmed by its authority (the planner
        // admits it in the confirming write).
        self.bookings
            .request(&resource, &requested)
            .map_err(|e| e.to_string())?;
        let guard = Guard {
            capacity: Some(&resource),
            handoff: false,
        };
        let nano_acts = Actor::Party(nano.clone());
        let confirmed = self
            .bookings
            .update(&requested.id, guard, |b| {
                Ok(Some(b.step(&nano_acts, &Action::Confirm, now)?))
            })
            .map_err(|e| e.to_string())?
            .after
            .ok_or("the booking did not change")?;
        let gone = self.gone(&record.sync.base);
        let step = record
            .sync
            .take(confirmed.clone(), &gone)
            .map_err(|e| e.to_string())?;
        let (round, mut events) = self.master_step(&nano, &mut record, step, now).await;
        self.sync.save(&key, &record).map_err(|e| e.to_string())?;
        let answered = self
            .send_step_to(&confirmed.consumer, &confirmed.id, Step::Confirm, now)
            .await;
        let sent = match round {
            Some(m) => self.send_sync_to(&nano, m).await,
            None => json!({"queued": "for the next round"}),
        };
        let told = self.tell_notices(&key, &mut record).await;
        events.extend(told);
        let ev = json!({
            "side": "master", "action": "request", "outcome": "proxied",
            "booking": view::booking(&confirmed), "answered": answered, "nano": sent,
        });
        Ok((ev, events))
    }

    /// A requester withdrew a request it sent the master: cancel the proxy copy, and let the
    /// nano know (a cancel step: it holds the booking as confirmed, or will).
    async fn withdraw_in_proxy(&self, sent: &Booking, now: Timestamp) -> Result<Value, String> {
        let Some(stored) = self.bookings.get(&sent.id).map_err(|e| e.to_string())? else {
            return Ok(
                json!({"side": "master", "outcome": "withdrawn", "booking": view::booking(sent)}),
            );
        };
        if stored.resource != sent.resource || stored.window != sent.window {
            return Err("the booking id is taken by another booking".into());
        }
        let by = Actor::Party(sent.consumer.clone());
        let u = self
            .bookings
            .update(&sent.id, Guard::default(), |b| {
                Ok(crate::resources::mirror::receive(b, &by, &Action::Cancel, now)?.into_change())
            })
            .map_err(|e| e.to_string())?;
        let relayed = match &u.after {
            Some(b) => Some(
                self.send_step_to(&b.provider, &b.id, Step::Cancel, now)
                    .await,
            ),
            None => None,
        };
        let b = u.after.unwrap_or(u.before);
        Ok(
            json!({"side": "master", "outcome": "cancelled", "booking": view::booking(&b), "relayed": relayed}),
        )
    }

    /// Pushes step `step` of booking `id` to `to` (critical, keyed by the booking).
    pub(super) async fn send_step_to(
        &self,
        to: &Did,
        id: &BookingId,
        step: Step,
        at: Timestamp,
    ) -> Value {
        let msg = StepMessage {
            booking: id.clone(),
            step,
            at_ms: at.as_millis(),
        };
        let r = self
            .push(
                to,
                STEP_PROTOCOL,
                dtn::Op::Message,
                &id.to_string(),
                msg.encode(),
            )
            .await;
        pushed(to, r)
    }

    /// Relays a step or refusal about a proxy booking to its other party, byte for byte.
    pub(super) async fn relay(&self, to: &Did, protocol: &str, d: &Delivered) -> Value {
        let r = self
            .push(
                to,
                protocol,
                dtn::Op::Message,
                &d.resource,
                d.payload.clone(),
            )
            .await;
        pushed(to, r)
    }

    /// Whether this master holds `b` in proxy (a booking of one of its nanos' resources that
    /// it is no party of).
    pub(super) fn is_proxy(&self, b: &Booking) -> bool {
        b.provider != self.me
            && b.consumer != self.me
            && b.provider
                .peer_id()
                .is_some_and(|p| self.standing.has_nano(&p))
    }

    // ---- the rounds ----

    /// A round's message: a report on a master (from one of its nanos), a settle on a nano
    /// (from its master).
    pub(super) async fn received_sync(&self, d: &Delivered) -> Vec<Event> {
        let from = json!({"peer": d.from.to_string(), "entry": d.id.to_string()});
        let now = self.clock.now();
        let refused = |reason: String| {
            tracing::warn!(peer = %d.from, %reason, "delegation round message refused");
            vec![(
                Outbound::Booking,
                json!({"side": side_name(&self.standing), "action": "sync", "from": from, "outcome": "refused", "reason": reason}),
            )]
        };
        let (nano, master_side) = if self.standing.has_nano(&d.from) {
            match did_of(&d.from) {
                Some(n) => (n, true),
                None => return refused("not an Ed25519 peer".into()),
            }
        } else if self.standing.master() == Some(&d.from) {
            (self.me.clone(), false)
        } else {
            return refused("neither our master nor one of our nanos".into());
        };
        let msg = match SyncMessage::decode(&d.payload, &nano) {
            Ok(m) => m,
            Err(e) => return refused(e.to_string()),
        };
        let key = nano.as_str().to_string();
        match (msg, master_side) {
            (
                SyncMessage::Report {
                    epoch,
                    taken,
                    gone: theirs,
                },
                true,
            ) => {
                let mut r: MasterRecord = match self.sync.load(&key) {
                    Ok(r) => r,
                    Err(e) => return refused(e.to_string()),
                };
                let gone = self.gone(&r.sync.base);
                let step = match r.sync.on_report(epoch, taken, &theirs, &gone) {
                    Ok(s) => s,
                    Err(e) => return refused(e.to_string()),
                };
                let (round, mut events) = self.master_step(&nano, &mut r, step, now).await;
                if let Err(e) = self.sync.save(&key, &r) {
                    return refused(e.to_string());
                }
                let sent = match round {
                    Some(m) => Some(self.send_sync_to(&nano, m).await),
                    None => None,
                };
                events.extend(self.tell_notices(&key, &mut r).await);
                events.push((
                    Outbound::Booking,
                    json!({"side": "master", "action": "sync", "from": from, "outcome": "report",
                           "epoch": epoch, "next_epoch": r.sync.epoch, "sent": sent}),
                ));
                events
            }
            (
                SyncMessage::Settle {
                    epoch,
                    master,
                    nano: theirs,
                    gone,
                },
                false,
            ) => {
                let mut r: NanoRecord = match self.sync.load(&key) {
                    Ok(r) => r,
                    Err(e) => return refused(e.to_string()),
                };
                let gone_here = self.gone(&r.sync.base);
                let step = match r.sync.on_settle(epoch, &master, &theirs, &gone, &gone_here) {
                    Ok(s) => s,
                    Err(e) => return refused(e.to_string()),
                };
                let NanoStep::Settled(b) = step else {
                    return vec![(
                        Outbound::Booking,
                        json!({"side": "nano", "action": "sync", "from": from, "outcome": "duplicate", "epoch": epoch}),
                    )];
                };
                let (settled, report) = *b;
                let mut events = self.apply_round(Side::Nano, &settled, &mut r, now);
                if let Err(e) = self.sync.save(&key, &r) {
                    return refused(e.to_string());
                }
                let sent = self.send_sync(report).await;
                events.extend(self.tell_notices(&key, &mut r).await);
                events.push((
                    Outbound::Booking,
                    json!({"side": "nano", "action": "sync", "from": from, "outcome": "settled",
                           "epoch": epoch, "next_epoch": r.sync.epoch, "sent": sent}),
                ));
                events
            }
            _ => refused("a report goes to the master, a settle to the nano".into()),
        }
    }

    /// What a master does with a step of its side: the round's message to send (if any) and
    /// the events of applying it.
    async fn master_step(
        &self,
        _nano: &Did,
        r: &mut MasterRecord,
        step: MasterStep,
        now: Timestamp,
    ) -> (Option<SyncMessage>, Vec<Event>) {
        match step {
            MasterStep::Quiet => (None, Vec::new()),
            MasterStep::Resend(m) => (Some(m), Vec::new()),
            MasterStep::Settled(b) => {
                let (msg, settled) = *b;
                let events = self.apply_round(Side::Master, &settled, r, now);
                (Some(msg), events)
            }
        }
    }

    /// Applies this side's part of a settled round to the bookings, and queues the notices
    /// it owes in `record` (the caller saves it before telling anyone).
    fn apply_round<S>(
        &self,
        side: Side,
        s: &Settled,
        record: &mut Record<S>,
        now: Timestamp,
    ) -> Vec<Event> {
        let me = side_label(side);
        let mut events = Vec::new();
        for b in &s.put {
            match self.bookings.put_reconciled(b) {
                Ok(true) => {
                    // On a nano, a booking the master took in proxy: its requester deals with
                    // the master, so what concerns it goes there.
                    let outcome = if side == Side::Nano {
                        if let Some(m) = self.standing.master().and_then(did_of) {
                            if let Err(e) = self.routes.set_via(&b.id, &m) {
                                tracing::warn!(error = %e, "route of a proxy booking not kept");
                            }
                        }
                        "proxied"
                    } else {
                        "kept"
                    };
                    events.push((
                        Outbound::Booking,
                        json!({"side": me, "action": RECONCILE_ACTION, "outcome": outcome,
                               "epoch": s.epoch, "booking": view::booking(b)}),
                    ));
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, booking = %b.id, "reconciled booking not stored")
                }
            }
        }
        for c in &s.cancelled {
            if let Some(ev) = self.apply_cancel(me, s.epoch, c, record, now) {
                events.push((Outbound::Booking, ev));
            }
        }
        events
    }

    fn apply_cancel<S>(
        &self,
        me: &str,
        epoch: u64,
        c: &Cancelled,
        record: &mut Record<S>,
        now: Timestamp,
    ) -> Option<Value> {
        let (code, detail) = reason_of(&c.reason);
        if c.tell {
            record.notices.push(Notice {
                booking: c.booking.clone(),
                reason: format!("{code}: {detail}"),
            });
        }
        if c.id_survives {
            return None;
        }
        match self.bookings.cancel_reconciled(&c.booking, now) {
            Ok((b, true)) => Some(json!({
                "side": me, "action": RECONCILE_ACTION, "outcome": "cancelled",
                "reason": code, "detail": detail, "epoch": epoch,
                "taken_by": side_label(c.from), "tells_requester": c.tell,
                "id": view::booking_id(&b.id), "booking": view::booking(&b),
            })),
            Ok((_, false)) => None,
            Err(e) => {
                tracing::warn!(error = %e, booking = %c.booking.id, "reconciled cancellation not stored");
                None
            }
        }
    }

    /// Hands the notices waiting in `record` to the outbox, each once (removed and saved as
    /// it is queued); their events.
    async fn tell_notices<S: serde::Serialize>(
        &self,
        key: &str,
        record: &mut Record<S>,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(n) = record.notices.first().cloned() {
            let to = self.route(&n.booking.id, &n.booking.consumer);
            let refusal = StepRefusal::new(
                n.booking.id.clone(),
                RECONCILE_ACTION,
                &n.reason,
                Some(State::Cancelled),
            );
            let told = self.refuse(&to, refusal).await;
            record.notices.remove(0);
            if let Err(e) = self.sync.save(key, record) {
                tracing::warn!(error = %e, "notice queued but not marked: it may be sent again");
            }
            events.push((
                Outbound::Booking,
                json!({"side": side_name(&self.standing), "action": RECONCILE_ACTION,
                       "outcome": "told", "id": view::booking_id(&n.booking.id),
                       "reason": n.reason, "told": told}),
            ));
        }
        events
    }

    /// At the start of the service: a nano reports to its master (which then sends what
    /// waits for it at once, and again a settle that was lost), and both sides hand over
    /// notices a crash left waiting.
    pub(super) async fn on_start(&self) -> Vec<Event> {
        let mut events = Vec::new();
        match &self.standing {
            Standing::Nano { .. } => {
                let key = self.me.as_str().to_string();
                if let Ok(mut r) = self.sync.load::<NanoSync>(&key) {
                    let gone = self.gone(&r.sync.base);
                    let sent = self.send_sync(r.sync.report(&gone)).await;
                    tracing::debug!(%sent, "report to the master at start");
                    events.extend(self.tell_notices(&key, &mut r).await);
                }
            }
            Standing::Master { nanos } => {
                for n in nanos.iter().filter_map(did_of) {
                    let key = n.as_str().to_string();
                    if let Ok(mut r) = self.sync.load::<MasterSync>(&key) {
                        events.extend(self.tell_notices(&key, &mut r).await);
                    }
                }
            }
            Standing::Standalone => {}
        }
        events
    }

    /// The requester's side of a reconciliation's cancellation (`action: "reconcile"` on the
    /// refusal protocol, from the peer speaking for the provider): the booking is cancelled
    /// here too.
    pub(super) fn adopt_reconciled(&self, b: &Booking, r: &StepRefusal) -> Value {
        let code = r.reason.split(':').next().unwrap_or_default().to_string();
        let detail = r.reason.split_once(": ").map(|x| x.1).unwrap_or_default();
        match self.bookings.cancel_reconciled(b, self.clock.now()) {
            Ok((after, changed)) => json!({
                "side": "consumer", "action": RECONCILE_ACTION,
                "outcome": if changed { "cancelled" } else { "duplicate" },
                "reason": code, "detail": detail,
                "id": view::booking_id(&b.id), "booking": view::booking(&after),
            }),
            Err(e) => {
                json!({"side": "consumer", "action": RECONCILE_ACTION, "outcome": "failed", "reason": e.to_string()})
            }
        }
    }
}

/// The outbox op of a mutation.
fn mutation_op(op: &Op) -> dtn::Op {
    match op {
        Op::Create(_) => dtn::Op::Create,
        Op::Update(_) => dtn::Op::Update,
        Op::Delete => dtn::Op::Delete,
    }
}

fn side_label(s: Side) -> &'static str {
    match s {
        Side::Master => "master",
        Side::Nano => "nano",
    }
}

fn side_name(s: &Standing) -> &'static str {
    match s {
        Standing::Nano { .. } => "nano",
        Standing::Master { .. } => "master",
        Standing::Standalone => "standalone",
    }
}
