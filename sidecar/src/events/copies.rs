//! The provider's copy of each attestation (`resources::copies`): sent by the consumer's
//! site once its signer took the usage ([`Service::send_copy`]), kept by the provider's
//! ([`Service::received_copy`]).
//!
//! The copy goes straight to the booking's provider, critical, under its own outbox key
//! (`<booking>/attestation`) so it never replaces a step of the booking; sent again (a
//! signer that took the same usage twice), the pending one is replaced and the provider
//! keeps the first that arrives. A provider behind a master (a nano) is not reached through
//! the master: the copy waits in the outbox for the nano's next contact like any entry.

use serde_json::{json, Value};

use super::fields::{BadRequest, Kind};
use super::service::{pushed, store_failure, Answer, Service, COPY_PROTOCOL};
use super::view;
use crate::dtn::{self, Delivered};
use crate::resources::booking::State;
use crate::resources::copies::{CopyMessage, Received};
use crate::resources::BookingId;

impl Service {
    /// Copies our signer's `attestation` of booking `id` (which we consumed) to its provider.
    pub(super) async fn send_copy(
        &self,
        id: BookingId,
        attestation: Vec<u8>,
    ) -> Result<Answer, BadRequest> {
        let b = self
            .bookings
            .get(&id)
            .map_err(store_failure)?
            .ok_or_else(|| {
                BadRequest::new("booking", format!("no booking {id} here")).of_kind(Kind::NotFound)
            })?;
        if b.consumer != self.me {
            return Err(BadRequest::new(
                "booking",
                "only the consumer's site sends the attestation of a booking",
            )
            .of_kind(Kind::Forbidden));
        }
        if !matches!(b.state, State::UsageConfirmed | State::Settled) {
            return Err(BadRequest::new(
                "booking",
                format!("no confirmed usage to attest in state {}", b.state),
            )
            .of_kind(Kind::Conflict));
        }
        let msg = CopyMessage::new(id.clone(), attestation)
            .map_err(|e| BadRequest::new("attestation", e.to_string()))?;
        let r = self
            .push(
                &b.provider,
                COPY_PROTOCOL,
                dtn::Op::Message,
                &format!("{id}/attestation"),
                msg.encode(),
            )
            .await;
        let ok = r.is_ok();
        let sent = pushed(&b.provider, r);
        if !ok {
            return Err(BadRequest::new(
                "attestation",
                format!("not queued for the provider: {sent}"),
            )
            .of_kind(Kind::Unavailable));
        }
        Ok(Answer::ok(
            json!({"ok": true, "booking": view::booking_id(&id), "sent": sent}),
            Vec::new(),
        ))
    }

    /// A consumer's copy reached us: kept if the booking is one we provided and its
    /// consumer's site sent it. Its `out.attestation.received` event.
    pub(super) fn received_copy(&self, d: &Delivered) -> Value {
        let from = json!({"peer": d.from.to_string(), "entry": d.id.to_string()});
        let msg = match CopyMessage::decode(&d.payload) {
            Ok(m) => m,
            Err(e) => return json!({"from": from, "outcome": "refused", "reason": e.to_string()}),
        };
        let id = view::booking_id(&msg.booking);
        let refused = |reason: String| json!({"from": from, "id": id, "outcome": "refused", "reason": reason});
        let b = match self.bookings.get(&msg.booking) {
            Ok(Some(b)) => b,
            Ok(None) => return refused(format!("no booking {} here", msg.booking)),
            Err(e) => {
                return json!({"from": from, "id": id, "outcome": "failed", "reason": e.to_string()})
            }
        };
        if b.provider != self.me {
            return refused("not a booking we provided".into());
        }
        if b.consumer.peer_id() != Some(d.from) {
            return refused("not sent by the booking's consumer".into());
        }
        let kept = self.copies.keep(&Received {
            booking: msg.booking.clone(),
            from: b.consumer.clone(),
            attestation: msg.attestation,
            received_at_ms: self.clock.now().as_millis(),
        });
        match kept {
            Ok(true) => json!({"from": from, "id": id, "outcome": "kept"}),
            Ok(false) => json!({"from": from, "id": id, "outcome": "duplicate"}),
            // Reported like the other protocols' storage failures.
            Err(e) => json!({"from": from, "id": id, "outcome": "failed", "reason": e.to_string()}),
        }
    }
}
