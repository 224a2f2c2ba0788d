//! Request bodies read with a bound, and replies with their HTTP status.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::events::fields::{BadRequest, Kind, MAX_REQUEST_BYTES, PAYLOAD};
use crate::events::Reply;

/// The HTTP status of a refusal.
pub(super) fn status(kind: Kind) -> StatusCode {
    match kind {
        Kind::Invalid => StatusCode::BAD_REQUEST,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::Store => StatusCode::INTERNAL_SERVER_ERROR,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A refusal as the API answers it.
pub(super) fn refusal(e: &BadRequest) -> Response {
    let body = json!({
        "ok": false,
        "error": format!("{}: {}", e.field, e.reason),
        "field": e.field,
        "reason": e.reason,
    });
    (status(e.kind), axum::Json(body)).into_response()
}

/// The service's reply: `ok` with `success` (200 or 201), or its refusal.
pub(super) fn reply(r: Reply, success: StatusCode) -> Response {
    match r.error {
        Some(e) => refusal(&e),
        None => (success, axum::Json(r.value)).into_response(),
    }
}

/// The body, at most [`MAX_REQUEST_BYTES`] (beyond, nothing more is read: 413). An empty
/// body is the empty object (steps without fields).
pub(super) async fn read(body: Body) -> Result<Vec<u8>, BadRequest> {
    let bytes = axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|_| {
            BadRequest::new(PAYLOAD, format!("more than {MAX_REQUEST_BYTES} bytes"))
                .of_kind(Kind::TooLarge)
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(b"{}".to_vec());
    }
    Ok(bytes.to_vec())
}

/// The body as a JSON object, with `key` set to `value` from the path; a body that gives
/// `key` itself must give the same value.
pub(super) fn with_path_field(
    bytes: &[u8],
    key: &str,
    value: Value,
) -> Result<Vec<u8>, BadRequest> {
    let mut v = crate::events::fields::parse(bytes)?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| BadRequest::new(PAYLOAD, "must be a JSON object"))?;
    match obj.get(key) {
        Some(given) if *given != value => {
            return Err(BadRequest::new(
                key,
                "differs from the one in the path (give it in the path only)",
            ))
        }
        _ => {
            obj.insert(key.to_string(), value);
        }
    }
    Ok(serde_json::to_vec(&v).unwrap_or_default())
}
