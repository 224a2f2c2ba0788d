//! Inbound requests: JSON payloads turned into typed, validated requests (pure).
//!
//! A resource is checked by [`Resource::validate`] before anything is signed or stored; every
//! refusal is a [`BadRequest`] naming the field. Shapes and examples: docs/EVENTS.md.

use serde_json::Value;

use super::fields::{parse, BadRequest, Fields};
use super::subjects::Inbound;
use crate::resources::booking::State;
use crate::resources::catalogue::Filter;
use crate::resources::resource::{MAX_PARTNERS, MAX_PAYLOAD, MAX_WINDOWS};
use crate::resources::{
    BookingId, Did, Kind, Resource, ResourceId, ResourceRef, Visibility, Window,
};
use crate::time::Timestamp;

/// Most resources a search answers with.
pub const MAX_SEARCH_HITS: usize = 100;

/// A booking asked of a partner's resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookRequest {
    pub resource: ResourceRef,
    pub window: Window,
    pub units: u64,
    /// The consumer's nonce of the booking id (drawn at random when not given).
    pub nonce: Option<u64>,
    /// Send the request to the resource's owner itself even when it is a nano whose master
    /// we know (a site in contact with the nano while its master is not); by default a nano's
    /// resources are booked through its master.
    pub direct: bool,
}

/// A transition of a booking made by this site's party.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    Confirm,
    Decline,
    Start,
    Complete,
    Cancel,
    ConfirmUsage,
}

impl StepKind {
    pub const ALL: [StepKind; 6] = [
        StepKind::Confirm,
        StepKind::Decline,
        StepKind::Start,
        StepKind::Complete,
        StepKind::Cancel,
        StepKind::ConfirmUsage,
    ];

    /// The name in the API's paths and the CLI (`confirm-usage`).
    pub fn path(self) -> &'static str {
        match self {
            StepKind::Confirm => "confirm",
            StepKind::Decline => "decline",
            StepKind::Start => "start",
            StepKind::Complete => "complete",
            StepKind::Cancel => "cancel",
            StepKind::ConfirmUsage => "confirm-usage",
        }
    }

    /// The inbound NATS subject of this step.
    pub fn inbound(self) -> Inbound {
        match self {
            StepKind::Confirm => Inbound::Confirm,
            StepKind::Decline => Inbound::Decline,
            StepKind::Start => Inbound::Start,
            StepKind::Complete => Inbound::Complete,
            StepKind::Cancel => Inbound::Cancel,
            StepKind::ConfirmUsage => Inbound::ConfirmUsage,
        }
    }
}

/// What the provider reports when it completes a booking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageTerms {
    pub units_used: u64,
    /// When consumption started and ended; the booked window when not given.
    pub window: Option<Window>,
}

/// A step asked of this site's party on one booking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRequest {
    pub booking: BookingId,
    pub kind: StepKind,
    /// Complete only.
    pub usage: Option<UsageTerms>,
}

/// Most bookings a listing answers with.
pub const MAX_LISTED_BOOKINGS: usize = 1000;

/// A validated inbound request.
#[derive(Clone, Debug)]
pub enum Request {
    /// A new resource of ours (owner: us).
    Create(Resource),
    /// A new content of one of our resources.
    Update(Resource),
    /// The end of one of our resources.
    Delete(ResourceId),
    Search {
        filter: Filter,
        limit: usize,
    },
    /// One of our resources (the local API).
    Resource(ResourceId),
    Book(BookRequest),
    /// A transition of a booking by our party.
    Step(StepRequest),
    /// Our bookings (as consumer or provider), only those in `state` when given (the local
    /// API).
    Bookings {
        state: Option<State>,
        limit: usize,
    },
    /// One booking (the local API).
    Booking(BookingId),
    /// The DTN outbox's figures (the local API).
    Outbox,
    /// Our signer's attestation for a booking we consumed, to copy to its provider (the
    /// local API, `POST /v1/usage/{booking}/taken`).
    SendCopy {
        booking: BookingId,
        attestation: Vec<u8>,
    },
}

/// Parses the payload of inbound subject `kind`; `me` owns what is created.
pub fn parse_request(kind: Inbound, bytes: &[u8], me: &Did) -> Result<Request, BadRequest> {
    let v = parse(bytes)?;
    match kind {
        Inbound::Create => Ok(Request::Create(resource(&v, me)?)),
        Inbound::Update => Ok(Request::Update(resource(&v, me)?)),
        Inbound::Delete => {
            let f = Fields::of(&v, "", &["id"])?;
            Ok(Request::Delete(resource_id(&f, "id")?))
        }
        Inbound::Search => search(&v),
        Inbound::Book => book(&v),
        Inbound::Confirm => step(&v, StepKind::Confirm),
        Inbound::Decline => step(&v, StepKind::Decline),
        Inbound::Start => step(&v, StepKind::Start),
        Inbound::Complete => step(&v, StepKind::Complete),
        Inbound::Cancel => step(&v, StepKind::Cancel),
        Inbound::ConfirmUsage => step(&v, StepKind::ConfirmUsage),
    }
}

/// A booking id as JSON: `{"consumer": did, "nonce": n}` (the shape of `booking.id` in
/// replies and events).
pub fn booking_id(v: &Value, path: &str) -> Result<BookingId, BadRequest> {
    let f = Fields::of(v, path, &["consumer", "nonce"])?;
    Ok(BookingId {
        consumer: did(f.required("consumer")?, f.name("consumer"))?,
        nonce: f.u64("nonce")?,
    })
}

fn step(v: &Value, kind: StepKind) -> Result<Request, BadRequest> {
    let known: &[&str] = match kind {
        StepKind::Complete => &["booking", "units_used", "start_ms", "end_ms"],
        _ => &["booking"],
    };
    let f = Fields::of(v, "", known)?;
    let booking = booking_id(f.required("booking")?, "booking")?;
    let usage = match kind {
        StepKind::Complete => Some(UsageTerms {
            units_used: f.u64("units_used")?,
            window: match (f.get("start_ms"), f.get("end_ms")) {
                (None, None) => None,
                _ => Some(window_of(&f)?),
            },
        }),
        _ => None,
    };
    Ok(Request::Step(StepRequest {
        booking,
        kind,
        usage,
    }))
}

pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Compute => "compute",
        Kind::Storage => "storage",
        Kind::Data => "data",
        Kind::Workflow => "workflow",
    }
}

fn kind(f: &Fields<'_>, k: &str) -> Result<Option<Kind>, BadRequest> {
    f.opt_str(k)?
        .map(|s| match s {
            "compute" => Ok(Kind::Compute),
            "storage" => Ok(Kind::Storage),
            "data" => Ok(Kind::Data),
            "workflow" => Ok(Kind::Workflow),
            _ => Err(BadRequest::new(
                f.name(k),
                "must be compute, storage, data or workflow",
            )),
        })
        .transpose()
}

fn resource_id(f: &Fields<'_>, k: &str) -> Result<ResourceId, BadRequest> {
    ResourceId::parse(f.str(k)?).map_err(|e| BadRequest::new(f.name(k), e.to_string()))
}

fn did(v: &Value, field: String) -> Result<Did, BadRequest> {
    let s = v
        .as_str()
        .ok_or_else(|| BadRequest::new(field.clone(), "must be a did:key string"))?;
    Did::parse(s).map_err(|e| BadRequest::new(field, e.to_string()))
}

fn window(v: &Value, path: &str) -> Result<Window, BadRequest> {
    let f = Fields::of(v, path, &["start_ms", "end_ms"])?;
    window_of(&f)
}

fn window_of(f: &Fields<'_>) -> Result<Window, BadRequest> {
    let (start, end) = (f.u64("start_ms")?, f.u64("end_ms")?);
    Window::new(Timestamp::from_millis(start), Timestamp::from_millis(end))
        .ok_or_else(|| BadRequest::new(f.name("end_ms"), "must be after start_ms"))
}

const RESOURCE_FIELDS: &[&str] = &[
    "id",
    "kind",
    "name",
    "description",
    "capacity",
    "unit",
    "price_per_unit",
    "availability",
    "visibility",
    "payload_hex",
];

fn resource(v: &Value, me: &Did) -> Result<Resource, BadRequest> {
    let f = Fields::of(v, "", RESOURCE_FIELDS)?;
    let id = resource_id(&f, "id")?;
    let kind = kind(&f, "kind")?.ok_or_else(|| BadRequest::new("kind", "missing"))?;
    let availability = f
        .opt_array("availability", MAX_WINDOWS)?
        .map(|a| {
            a.iter()
                .enumerate()
                .map(|(i, w)| window(w, &format!("availability[{i}]")))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let visibility = match f.get("visibility") {
        None => Visibility::Partners(Vec::new()),
        Some(Value::String(s)) if s == "consortium" => Visibility::Consortium,
        Some(v @ Value::Object(_)) => {
            let vf = Fields::of(v, "visibility", &["partners"])?;
            let list = vf.opt_array("partners", MAX_PARTNERS)?;
            let dids = list
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, d)| did(d, format!("visibility.partners[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Visibility::Partners(dids)
        }
        Some(_) => {
            return Err(BadRequest::new(
                "visibility",
                r#"must be "consortium" or {"partners": [did, …]}"#,
            ))
        }
    };
    let payload = match f.opt_str("payload_hex")? {
        None => Vec::new(),
        Some(h) if h.len() > 2 * MAX_PAYLOAD => {
            return Err(BadRequest::new(
                "payload_hex",
                format!("{} bytes once decoded (at most {MAX_PAYLOAD})", h.len() / 2),
            ))
        }
        Some(h) => hex::decode(h).map_err(|e| BadRequest::new("payload_hex", e.to_string()))?,
    };
    let r = Resource {
        id,
        owner: me.clone(),
        kind,
        name: f.str("name")?.to_string(),
        description: f.opt_str("description")?.unwrap_or_default().to_string(),
        capacity: f.u64("capacity")?,
        unit: f.str("unit")?.to_string(),
        price_per_unit: f.opt_u128("price_per_unit")?.unwrap_or(0),
        availability,
        visibility,
        payload,
    };
    r.validate()
        .map_err(|e| BadRequest::new(e.field(), e.to_string()))?;
    Ok(r)
}

fn search(v: &Value) -> Result<Request, BadRequest> {
    let f = Fields::of(
        v,
        "",
        &["kind", "name", "owner", "available_at_ms", "limit"],
    )?;
    let name = f.opt_str("name")?;
    if name.is_some_and(|n| n.len() > 64) {
        return Err(BadRequest::new("name", "at most 64 bytes"));
    }
    let owner = f
        .get("owner")
        .map(|v| did(v, "owner".to_string()))
        .transpose()?;
    let limit = f.opt_u64("limit")?.unwrap_or(MAX_SEARCH_HITS as u64);
    if limit == 0 || limit > MAX_SEARCH_HITS as u64 {
        return Err(BadRequest::new(
            "limit",
            format!("must be 1..={MAX_SEARCH_HITS}"),
        ));
    }
    Ok(Request::Search {
        filter: Filter {
            kind: kind(&f, "kind")?,
            name: name.map(str::to_string),
            owner,
            available_at: f.opt_u64("available_at_ms")?.map(Timestamp::from_millis),
        },
        limit: limit as usize,
    })
}

fn book(v: &Value) -> Result<Request, BadRequest> {
    let f = Fields::of(
        v,
        "",
        &["resource", "start_ms", "end_ms", "units", "nonce", "direct"],
    )?;
    let direct = match f.get("direct") {
        None => false,
        Some(x) => x
            .as_bool()
            .ok_or_else(|| BadRequest::new(f.name("direct"), "must be true or false"))?,
    };
    let rf = Fields::of(f.required("resource")?, "resource", &["owner", "id"])?;
    let owner = did(rf.required("owner")?, "resource.owner".to_string())?;
    let id = resource_id(&rf, "id")?;
    let units = f.u64("units")?;
    if units == 0 {
        return Err(BadRequest::new("units", "must be at least 1"));
    }
    Ok(Request::Book(BookRequest {
        resource: ResourceRef { owner, id },
        window: window_of(&f)?,
        units,
        nonce: f.opt_u64("nonce")?,
        direct,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeIdentity;

    fn me() -> Did {
        Did::of(&NodeIdentity::generate())
    }

    fn field(kind: Inbound, json: &str) -> String {
        parse_request(kind, json.as_bytes(), &me())
            .expect_err(json)
            .field
    }

    #[test]
    fn a_resource_parses_and_its_owner_is_us() {
        let me = me();
        let partner = Did::of(&NodeIdentity::generate());
        let json = format!(
            r#"{{"id":"gpu-1","kind":"compute","name":"GPU","capacity":4,"unit":"gpu",
               "price_per_unit":"1500000","availability":[{{"start_ms":1,"end_ms":2}}],
               "visibility":{{"partners":["{partner}"]}},"payload_hex":"00ff"}}"#
        );
        let Request::Create(r) = parse_request(Inbound::Create, json.as_bytes(), &me).unwrap()
        else {
            panic!("a create")
        };
        assert_eq!(r.owner, me);
        assert_eq!(r.price_per_unit, 1_500_000);
        assert_eq!(r.payload, vec![0, 255]);
        assert_eq!(r.visibility, Visibility::Partners(vec![partner]));
    }

    #[test]
    fn steps_parse_with_their_booking_and_usage_terms() {
        let consumer = me();
        let id = format!(r#"{{"consumer":"{consumer}","nonce":7}}"#);
        let parse = |kind, json: String| parse_request(kind, json.as_bytes(), &me());
        let Ok(Request::Step(s)) = parse(Inbound::Confirm, format!(r#"{{"booking":{id}}}"#)) else {
            panic!("a step")
        };
        assert_eq!(s.booking.nonce, 7);
        assert_eq!((s.kind, s.usage), (StepKind::Confirm, None));
        let Ok(Request::Step(s)) = parse(
            Inbound::Complete,
            format!(r#"{{"booking":{id},"units_used":2,"start_ms":1,"end_ms":5}}"#),
        ) else {
            panic!("a step")
        };
        let terms = s.usage.unwrap();
        assert_eq!(terms.units_used, 2);
        assert_eq!(terms.window.unwrap().end().as_millis(), 5);
        let Ok(Request::Step(s)) = parse(
            Inbound::Complete,
            format!(r#"{{"booking":{id},"units_used":0}}"#),
        ) else {
            panic!("a step")
        };
        assert_eq!(s.usage.unwrap().window, None);
        let field = |kind, json: String| parse(kind, json).expect_err("refused").field;
        assert_eq!(field(Inbound::Cancel, "{}".into()), "booking");
        assert_eq!(
            field(
                Inbound::Cancel,
                r#"{"booking":{"consumer":"did:key:z","nonce":1}}"#.into()
            ),
            "booking.consumer"
        );
        assert_eq!(
            field(
                Inbound::Start,
                format!(r#"{{"booking":{{"consumer":"{consumer}","nonce":-1}}}}"#)
            ),
            "booking.nonce"
        );
        assert_eq!(
            field(
                Inbound::Start,
                format!(r#"{{"booking":{id},"units_used":1}}"#)
            ),
            "units_used"
        );
        assert_eq!(
            field(Inbound::Complete, format!(r#"{{"booking":{id}}}"#)),
            "units_used"
        );
        assert_eq!(
            field(
                Inbound::Complete,
                format!(r#"{{"booking":{id},"units_used":1,"start_ms":5}}"#)
            ),
            "end_ms"
        );
        for k in StepKind::ALL {
            assert!(
                parse(k.inbound(), format!(r#"{{"booking":{id}}}"#)).is_ok()
                    || k == StepKind::Complete
            );
        }
    }

    #[test]
    fn every_refusal_names_its_field() {
        let base = r#""id":"a","kind":"data","name":"n","unit":"u""#;
        let c = Inbound::Create;
        assert_eq!(field(c, &format!("{{{base}}}")), "capacity");
        assert_eq!(field(c, &format!("{{{base},\"capacity\":0}}")), "capacity");
        assert_eq!(
            field(c, &format!("{{{base},\"capacity\":\"1\"}}")),
            "capacity"
        );
        assert_eq!(field(c, &format!("{{{base},\"capacity\":1,\"x\":1}}")), "x");
        assert_eq!(
            field(
                c,
                r#"{"id":"A","kind":"data","name":"n","unit":"u","capacity":1}"#
            ),
            "id"
        );
        assert_eq!(
            field(
                c,
                r#"{"id":"a","kind":"gpu","name":"n","unit":"u","capacity":1}"#
            ),
            "kind"
        );
        assert_eq!(
            field(
                c,
                &format!(
                    "{{{base},\"capacity\":1,\"availability\":[{{\"start_ms\":5,\"end_ms\":5}}]}}"
                )
            ),
            "availability[0].end_ms"
        );
        assert_eq!(
            field(
                c,
                &format!("{{{base},\"capacity\":1,\"visibility\":{{\"partners\":[\"did:x\"]}}}}")
            ),
            "visibility.partners[0]"
        );
        assert_eq!(
            field(
                c,
                &format!("{{{base},\"capacity\":1,\"payload_hex\":\"zz\"}}")
            ),
            "payload_hex"
        );
        assert_eq!(field(c, "[1]"), "(payload)");
        assert_eq!(field(Inbound::Delete, "{}"), "id");
        assert_eq!(field(Inbound::Search, r#"{"limit":1000}"#), "limit");
        assert_eq!(field(Inbound::Search, r#"{"owner":"bob"}"#), "owner");
        assert_eq!(
            field(
                Inbound::Book,
                r#"{"resource":{"owner":"did:key:z","id":"a"},"start_ms":1,"end_ms":2,"units":1}"#
            ),
            "resource.owner"
        );
        let owner = me();
        assert_eq!(
            field(
                Inbound::Book,
                &format!(
                    r#"{{"resource":{{"owner":"{owner}","id":"a"}},"start_ms":3,"end_ms":2,"units":1}}"#
                )
            ),
            "end_ms"
        );
        assert_eq!(
            field(
                Inbound::Book,
                &format!(
                    r#"{{"resource":{{"owner":"{owner}","id":"a"}},"start_ms":1,"end_ms":2,"units":0}}"#
                )
            ),
            "units"
        );
    }
}
