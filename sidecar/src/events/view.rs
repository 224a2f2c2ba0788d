//! JSON views of the data plane's values, as replies and events carry them (pure). A
//! resource's view has the shape a create request takes (plus `owner`), so it round-trips.

use serde_json::{json, Value};

use super::request::kind_name;
use crate::resources::booking::{Booking, State};
use crate::resources::usage::{ConfirmedUsage, UsageReport};
use crate::resources::{BookingId, Resource, ResourceRef, Visibility, Window};

pub fn window(w: &Window) -> Value {
    json!({"start_ms": w.start().as_millis(), "end_ms": w.end().as_millis()})
}

pub fn reference(r: &ResourceRef) -> Value {
    json!({"owner": r.owner.as_str(), "id": r.id.as_str()})
}

pub fn resource(r: &Resource) -> Value {
    let visibility = match &r.visibility {
        Visibility::Consortium => json!("consortium"),
        Visibility::Partners(list) => {
            json!({"partners": list.iter().map(|d| d.as_str()).collect::<Vec<_>>()})
        }
    };
    json!({
        "owner": r.owner.as_str(),
        "id": r.id.as_str(),
        "kind": kind_name(r.kind),
        "name": r.name,
        "description": r.description,
        "capacity": r.capacity,
        "unit": r.unit,
        "price_per_unit": r.price_per_unit.to_string(),
        "availability": r.availability.iter().map(window).collect::<Vec<_>>(),
        "visibility": visibility,
        "payload_hex": hex::encode(&r.payload),
    })
}

pub fn state_name(s: State) -> &'static str {
    s.name()
}

pub fn booking_id(id: &BookingId) -> Value {
    json!({"consumer": id.consumer.as_str(), "nonce": id.nonce})
}

/// The provider's usage report.
pub fn report(r: &UsageReport) -> Value {
    json!({
        "units_used": r.units_used,
        "window": window(&r.window),
        "provider_sig_hex": hex::encode(&r.provider_sig),
    })
}

/// Usage both parties signed: what settlement receives (`out.usage.confirmed`).
pub fn usage(u: &ConfirmedUsage) -> Value {
    json!({
        "booking": booking_id(&u.booking),
        "resource": reference(&u.resource),
        "provider": u.provider.as_str(),
        "consumer": u.consumer.as_str(),
        "units": u.units,
        "price": u.price.to_string(),
        "window": window(&u.window),
        "provider_sig_hex": hex::encode(&u.provider_sig),
        "consumer_sig_hex": hex::encode(&u.consumer_sig),
    })
}

pub fn booking(b: &Booking) -> Value {
    json!({
        "id": booking_id(&b.id),
        "resource": reference(&b.resource),
        "consumer": b.consumer.as_str(),
        "provider": b.provider.as_str(),
        "window": window(&b.window),
        "units": b.units,
        "unit_price": b.unit_price.to_string(),
        "state": state_name(b.state),
        "requested_at_ms": b.requested_at_ms,
        "updated_at_ms": b.updated_at_ms,
        "report": b.report.as_ref().map(report),
        "usage": b.usage.as_ref().map(usage),
    })
}

/// The data plane's outbox and link figures (`GET /v1/outbox`).
pub fn outbox(st: &crate::dtn::plane::Stats) -> Value {
    let o = &st.outbox;
    let per_peer: Vec<Value> = o
        .per_peer
        .iter()
        .map(|(peer, n)| {
            let critical = o.critical_per_peer.get(peer).copied().unwrap_or(0);
            json!({"peer": peer.to_string(), "entries": n, "critical": critical, "moderate": n - critical.min(*n)})
        })
        .collect();
    json!({
        "ok": true,
        "depth": o.depth,
        "critical": o.critical,
        "moderate": o.moderate,
        "oldest_age_ms": o.oldest_age.map(|d| d.as_millis() as u64),
        "per_peer": per_peer,
        "totals": {
            "acked": st.acked,
            "expired": o.expired_total,
            "dropped": o.dropped_total,
            "corrupted": o.corrupted_total,
            "refused": o.refused_total,
            "delivered_to_us": st.delivered,
            "duplicates_received": st.duplicates,
            "inbound_refused": st.refused,
            "failed_batches": st.failed_batches,
        },
    })
}

/// A refusal reply: `{"ok": false, "error": {"field": …, "reason": …}}`.
pub fn error(field: &str, reason: &str) -> Value {
    json!({"ok": false, "error": {"field": field, "reason": reason}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::request::{parse_request, Request};
    use crate::events::subjects::Inbound;
    use crate::keys::NodeIdentity;
    use crate::resources::resource::tests::sample;
    use crate::resources::Did;

    #[test]
    fn a_resource_view_parses_back_to_the_resource() {
        let me = Did::of(&NodeIdentity::generate());
        let mut r = sample(&me, "gpu");
        r.price_per_unit = u128::MAX;
        let mut v = resource(&r);
        v.as_object_mut().unwrap().remove("owner");
        let bytes = serde_json::to_vec(&v).unwrap();
        let Request::Create(back) = parse_request(Inbound::Create, &bytes, &me).unwrap() else {
            panic!("a create")
        };
        assert_eq!(back, r);
    }
}
