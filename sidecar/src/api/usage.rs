//! Confirmed usage waiting for settlement, for a signer in another process
//! (`garden-signer take`):
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /v1/usage[?limit=N][&after=B]` | the rows of `usage.pending`, oldest booking key first (after booking `B`), with the terms an attestation needs |
//! | `DELETE /v1/usage/{booking}` | removes one row, once the signer holds it in its own durable queue |
//! | `POST /v1/usage/{booking}/taken` | the same, with the signed attestation (`{"attestation_hex": "…"}`), first copied to the provider (critical outbox) |
//! | `GET /v1/attestations[?limit=N]` | the copies our consumers sent for bookings we provided (`resources::copies`) |
//! | `DELETE /v1/attestations/{booking}` | removes one, once our signer holds it |
//!
//! A row stays until its `DELETE`: a signer killed between the two reads it again and knows
//! it by its booking (the signer keeps a booking → nonce map in the transaction that signs),
//! so nothing is lost and nothing is signed twice. The in-process hand-over
//! (`App::take_usage`) drains the same table; a deployment uses one or the other.
//!
//! Each row is the confirmed usage (`events::view::usage`, both signatures as evidence) plus
//! the terms settlement prices it by: the agreed `unit_price` (price ÷ units), and the
//! resource's `kind` (the offer's `price_ref`) and `unit` from the catalogue — `null` when
//! the provider deleted the resource since, which the signer reports instead of guessing.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde_json::{json, Value};

use super::body::{read, refusal, reply};
use crate::events::fields::{BadRequest, Kind};
use crate::events::request::kind_name;
use crate::events::request::Request;
use crate::events::{view, Ops};
use crate::resources::catalogue::Catalogue;
use crate::resources::copies::Copies;
use crate::resources::handoff::Handoff;
use crate::resources::usage::ConfirmedUsage;
use crate::resources::BookingId;

/// Rows listed when `limit` is not given.
pub const DEFAULT_LISTED: usize = 100;
/// Most rows one listing returns (a row is about 1 KiB of JSON).
pub const MAX_LISTED: usize = 1_000;

/// What the usage routes read: the hand-over table, the catalogue (for the terms), the
/// received copies, and the service (which sends a copy).
#[derive(Clone)]
pub struct Desk {
    pub handoff: Handoff,
    pub catalogue: Catalogue,
    pub copies: Copies,
    pub ops: Ops,
}

pub(super) fn router<S: Clone + Send + Sync + 'static>(desk: Desk) -> Router<S> {
    Router::new()
        .route("/v1/usage", get(list))
        .route("/v1/usage/{booking}", delete(taken))
        .route("/v1/usage/{booking}/taken", post(taken_with_copy))
        .route("/v1/attestations", get(copies))
        .route("/v1/attestations/{booking}", delete(copy_taken))
        .with_state(desk)
}

/// A listing's query: `limit`, and `after` (a booking id) on `/v1/usage`, where rows the
/// signer cannot take yet stay and would otherwise hide the newer ones.
struct Listing {
    limit: usize,
    after: Option<BookingId>,
}

fn listing_of(params: &[(String, String)], with_after: bool) -> Result<Listing, BadRequest> {
    let mut limit = DEFAULT_LISTED;
    let mut after = None;
    for (k, v) in params {
        match k.as_str() {
            "after" if with_after => {
                after =
                    Some(BookingId::parse(v).map_err(|e| BadRequest::new("after", e.to_string()))?)
            }
            "limit" => match v.parse() {
                Ok(n) if (1..=MAX_LISTED).contains(&n) => limit = n,
                _ => {
                    return Err(BadRequest::new(
                        "limit",
                        format!("must be 1..={MAX_LISTED}"),
                    ))
                }
            },
            other => return Err(BadRequest::new(other.to_string(), "unknown parameter")),
        }
    }
    Ok(Listing { limit, after })
}

fn booking_of(id: &str) -> Result<BookingId, BadRequest> {
    BookingId::parse(id).map_err(|e| BadRequest::new("booking", e.to_string()))
}

fn store_error(e: impl std::fmt::Display) -> Response {
    refusal(&BadRequest::new("usage.pending", e.to_string()).of_kind(Kind::Store))
}

/// One row as listed: the confirmed usage and its terms.
fn row(desk: &Desk, u: &ConfirmedUsage) -> Value {
    let mut v = view::usage(u);
    let resource = desk.catalogue.get(&u.resource).ok().flatten();
    let unit_price = u.price.checked_div(u128::from(u.units)).unwrap_or(0);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("id".into(), json!(u.booking.to_string()));
        obj.insert("unit_price".into(), json!(unit_price.to_string()));
        obj.insert(
            "kind".into(),
            json!(resource.as_ref().map(|r| kind_name(r.kind))),
        );
        obj.insert("unit".into(), json!(resource.as_ref().map(|r| &r.unit)));
    }
    v
}

async fn list(State(desk): State<Desk>, Query(params): Query<Vec<(String, String)>>) -> Response {
    let q = match listing_of(&params, true) {
        Ok(q) => q,
        Err(e) => return refusal(&e),
    };
    let (rows, waiting) = match desk
        .handoff
        .pending(q.limit, q.after.as_ref())
        .and_then(|r| {
            let n = desk.handoff.len()?;
            Ok((r, n))
        }) {
        Ok(x) => x,
        Err(e) => return store_error(e),
    };
    let usage: Vec<Value> = rows.iter().map(|u| row(&desk, u)).collect();
    (
        StatusCode::OK,
        axum::Json(json!({"ok": true, "waiting": waiting, "usage": usage})),
    )
        .into_response()
}

async fn taken(State(desk): State<Desk>, Path(id): Path<String>) -> Response {
    match booking_of(&id) {
        Ok(id) => remove_row(&desk, id, Value::Null),
        Err(e) => refusal(&e),
    }
}

/// The signer holds the usage and gives its attestation: copied to the provider first (a
/// failure leaves the row: the signer tries again and is recognised), then the row goes.
async fn taken_with_copy(State(desk): State<Desk>, Path(id): Path<String>, body: Body) -> Response {
    let id = match booking_of(&id) {
        Ok(id) => id,
        Err(e) => return refusal(&e),
    };
    let parsed = read(body).await.and_then(|b| {
        let v = crate::events::fields::parse(&b)?;
        let f = crate::events::fields::Fields::of(&v, "", &["attestation_hex"])?;
        hex::decode(f.str("attestation_hex")?)
            .map_err(|e| BadRequest::new("attestation_hex", format!("not hex: {e}")))
    });
    let attestation = match parsed {
        Ok(a) => a,
        Err(e) => return refusal(&e),
    };
    let answer = desk
        .ops
        .call(Request::SendCopy {
            booking: id.clone(),
            attestation,
        })
        .await;
    if answer.error.is_some() {
        return reply(answer, StatusCode::OK);
    }
    let sent = answer.value.get("sent").cloned().unwrap_or(Value::Null);
    remove_row(&desk, id, sent)
}

fn remove_row(desk: &Desk, id: BookingId, sent: Value) -> Response {
    match desk.handoff.done(&id) {
        Ok(removed) => {
            if removed {
                tracing::info!(booking = %id, "confirmed usage taken by settlement");
            }
            (
                StatusCode::OK,
                axum::Json(json!({"ok": true, "booking": id.to_string(), "removed": removed, "sent": sent})),
            )
                .into_response()
        }
        Err(e) => store_error(e),
    }
}

/// The attestation copies waiting for our signer, oldest booking key first.
async fn copies(State(desk): State<Desk>, Query(params): Query<Vec<(String, String)>>) -> Response {
    let limit = match listing_of(&params, false) {
        Ok(q) => q.limit,
        Err(e) => return refusal(&e),
    };
    let (rows, waiting) = match desk
        .copies
        .list(limit)
        .and_then(|r| Ok((r, desk.copies.len()?)))
    {
        Ok(x) => x,
        Err(e) => return store_error(e),
    };
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.booking.to_string(),
                "from": r.from.as_str(),
                "attestation_hex": hex::encode(&r.attestation),
                "received_at_ms": r.received_at_ms,
            })
        })
        .collect();
    (
        StatusCode::OK,
        axum::Json(json!({"ok": true, "waiting": waiting, "attestations": rows})),
    )
        .into_response()
}

async fn copy_taken(State(desk): State<Desk>, Path(id): Path<String>) -> Response {
    let id = match booking_of(&id) {
        Ok(id) => id,
        Err(e) => return refusal(&e),
    };
    match desk.copies.remove(&id) {
        Ok(removed) => (
            StatusCode::OK,
            axum::Json(json!({"ok": true, "booking": id.to_string(), "removed": removed})),
        )
            .into_response(),
        Err(e) => store_error(e),
    }
}
