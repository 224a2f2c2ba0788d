//! The routes: each builds the request the NATS bridge would (same parser, same bounds) and
//! runs it through the service task.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::body::{read, refusal, reply, with_path_field};
use crate::events::fields::{BadRequest, Kind};
use crate::events::request::{parse_request, Request, StepKind, MAX_LISTED_BOOKINGS};
use crate::events::subjects::Inbound;
use crate::events::Ops;
use crate::resources::booking::State as BookingState;
use crate::resources::{BookingId, ResourceId};

type Params = Query<Vec<(String, String)>>;

pub(super) fn router(ops: Ops, desk: super::usage::Desk) -> Router {
    Router::new()
        .merge(super::usage::router(desk))
        .route("/v1/outbox", get(outbox))
        .route("/v1/resources", get(search).post(create))
        .route(
            "/v1/resources/{id}",
            get(resource).put(update).delete(delete),
        )
        .route("/v1/bookings", get(bookings).post(book))
        .route("/v1/bookings/{id}", get(booking))
        .route("/v1/bookings/{id}/{step}", post(step))
        .fallback(|| async {
            refusal(
                &BadRequest::new("(path)", "no such endpoint (see GET /v1/…)")
                    .of_kind(Kind::NotFound),
            )
        })
        .method_not_allowed_fallback(|| async {
            let e = BadRequest::new("(method)", "this endpoint does not take that method");
            let mut r = refusal(&e);
            *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            r
        })
        .with_state(ops)
}

/// Runs an already parsed request.
async fn run(ops: &Ops, req: Result<Request, BadRequest>, success: StatusCode) -> Response {
    match req {
        Ok(req) => reply(ops.call(req).await, success),
        Err(e) => refusal(&e),
    }
}

/// Parses `bytes` as the body of NATS subject `kind`, then runs it.
async fn run_body(
    ops: &Ops,
    kind: Inbound,
    bytes: Result<Vec<u8>, BadRequest>,
    success: StatusCode,
) -> Response {
    let req = bytes.and_then(|b| parse_request(kind, &b, ops.me()));
    run(ops, req, success).await
}

fn resource_id(id: &str) -> Result<ResourceId, BadRequest> {
    ResourceId::parse(id).map_err(|e| BadRequest::new("id", e.to_string()))
}

fn booking_id(id: &str) -> Result<BookingId, BadRequest> {
    BookingId::parse(id).map_err(|e| BadRequest::new("booking", e.to_string()))
}

/// Query parameters as a JSON object; `numbers` are parsed as integers. A parameter given
/// twice is refused.
fn query_object(params: &[(String, String)], numbers: &[&str]) -> Result<Value, BadRequest> {
    let mut obj = Map::new();
    for (k, v) in params {
        let value = if numbers.contains(&k.as_str()) {
            let n: u64 = v
                .parse()
                .map_err(|_| BadRequest::new(k.clone(), "must be a non-negative integer"))?;
            json!(n)
        } else {
            json!(v)
        };
        if obj.insert(k.clone(), value).is_some() {
            return Err(BadRequest::new(k.clone(), "given twice"));
        }
    }
    Ok(Value::Object(obj))
}

async fn outbox(State(ops): State<Ops>) -> Response {
    run(&ops, Ok(Request::Outbox), StatusCode::OK).await
}

async fn search(State(ops): State<Ops>, Query(params): Params) -> Response {
    let bytes = query_object(&params, &["available_at_ms", "limit"])
        .map(|v| serde_json::to_vec(&v).unwrap_or_default());
    run_body(&ops, Inbound::Search, bytes, StatusCode::OK).await
}

async fn resource(State(ops): State<Ops>, Path(id): Path<String>) -> Response {
    run(
        &ops,
        resource_id(&id).map(Request::Resource),
        StatusCode::OK,
    )
    .await
}

async fn create(State(ops): State<Ops>, body: Body) -> Response {
    run_body(&ops, Inbound::Create, read(body).await, StatusCode::CREATED).await
}

async fn update(State(ops): State<Ops>, Path(id): Path<String>, body: Body) -> Response {
    let bytes = read(body)
        .await
        .and_then(|b| with_path_field(&b, "id", json!(id)));
    run_body(&ops, Inbound::Update, bytes, StatusCode::OK).await
}

async fn delete(State(ops): State<Ops>, Path(id): Path<String>) -> Response {
    let bytes = serde_json::to_vec(&json!({"id": id})).unwrap_or_default();
    run_body(&ops, Inbound::Delete, Ok(bytes), StatusCode::OK).await
}

async fn bookings(State(ops): State<Ops>, Query(params): Params) -> Response {
    let req = (|| {
        let mut state = None;
        let mut limit = MAX_LISTED_BOOKINGS;
        for (k, v) in &params {
            match k.as_str() {
                "state" => {
                    state = Some(BookingState::parse(v).ok_or_else(|| {
                        BadRequest::new(
                            "state",
                            "must be requested, confirmed, running, completed, usage_confirmed, settled or cancelled",
                        )
                    })?)
                }
                "limit" => {
                    limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LISTED_BOOKINGS).contains(n))
                        .ok_or_else(|| {
                            BadRequest::new("limit", format!("must be 1..={MAX_LISTED_BOOKINGS}"))
                        })?
                }
                other => return Err(BadRequest::new(other.to_string(), "unknown parameter")),
            }
        }
        Ok(Request::Bookings { state, limit })
    })();
    run(&ops, req, StatusCode::OK).await
}

async fn booking(State(ops): State<Ops>, Path(id): Path<String>) -> Response {
    run(&ops, booking_id(&id).map(Request::Booking), StatusCode::OK).await
}

async fn book(State(ops): State<Ops>, body: Body) -> Response {
    run_body(&ops, Inbound::Book, read(body).await, StatusCode::CREATED).await
}

async fn step(
    State(ops): State<Ops>,
    Path((id, step)): Path<(String, String)>,
    body: Body,
) -> Response {
    let Some(kind) = StepKind::ALL.into_iter().find(|k| k.path() == step) else {
        return refusal(
            &BadRequest::new(
                "(path)",
                format!(
                    "no step {step:?} (confirm, decline, start, complete, cancel, confirm-usage)"
                ),
            )
            .of_kind(Kind::NotFound),
        );
    };
    let bytes = match booking_id(&id) {
        Ok(id) => read(body).await.and_then(|b| {
            with_path_field(
                &b,
                "booking",
                json!({"consumer": id.consumer.as_str(), "nonce": id.nonce}),
            )
        }),
        Err(e) => Err(e),
    };
    run_body(&ops, kind.inbound(), bytes, StatusCode::OK).await
}
