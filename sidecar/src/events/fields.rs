//! Bounded JSON parsing that names the field at fault (pure).
//!
//! A request is at most [`MAX_REQUEST_BYTES`]; it must be one JSON object whose keys are all
//! known; each field is read with a typed getter whose error names it (nested fields as
//! `availability[2].start_ms`). Errors become the `{"ok":false,"error":{"field",…}}` reply.

use serde_json::{Map, Value};

/// Largest request payload (a 16 KiB resource payload as hex, plus the common fields).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A request the bridge refuses, naming the field at fault (`"(payload)"` for the whole).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct BadRequest {
    pub field: String,
    pub reason: String,
    /// What kind of refusal it is (the local API's HTTP status; NATS replies do not show it).
    pub kind: Kind,
}

/// What kind of refusal a [`BadRequest`] is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// A field is missing, malformed or out of its bounds.
    #[default]
    Invalid,
    /// This site's party may not do that (a consumer confirming, a stranger).
    Forbidden,
    /// No such booking or resource here.
    NotFound,
    /// Not in the current state (confirming a cancelled booking, a nonce already used).
    Conflict,
    /// The payload is over [`MAX_REQUEST_BYTES`].
    TooLarge,
    /// A storage failure.
    Store,
    /// The sidecar is stopping.
    Unavailable,
}

impl BadRequest {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> BadRequest {
        BadRequest {
            field: field.into(),
            reason: reason.into(),
            kind: Kind::Invalid,
        }
    }

    /// The same refusal, of kind `kind`.
    pub fn of_kind(mut self, kind: Kind) -> BadRequest {
        self.kind = kind;
        self
    }
}

/// The whole payload.
pub const PAYLOAD: &str = "(payload)";

/// A JSON object with known keys; `path` prefixes field names in errors.
#[derive(Debug)]
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: String,
}

/// Parses `bytes` (bounded) into a JSON value.
pub fn parse(bytes: &[u8]) -> Result<Value, BadRequest> {
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(BadRequest::new(
            PAYLOAD,
            format!("{} bytes (at most {MAX_REQUEST_BYTES})", bytes.len()),
        )
        .of_kind(Kind::TooLarge));
    }
    serde_json::from_slice(bytes).map_err(|e| BadRequest::new(PAYLOAD, format!("not JSON: {e}")))
}

impl<'a> Fields<'a> {
    /// `v` must be an object whose keys are all in `known`.
    pub fn of(v: &'a Value, path: &str, known: &[&str]) -> Result<Fields<'a>, BadRequest> {
        let shown = if path.is_empty() { PAYLOAD } else { path };
        let obj = v
            .as_object()
            .ok_or_else(|| BadRequest::new(shown, "must be a JSON object"))?;
        let f = Fields {
            obj,
            path: path.to_string(),
        };
        if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(BadRequest::new(f.name(k), "unknown field"));
        }
        Ok(f)
    }

    /// The full name of field `k`.
    pub fn name(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    fn bad(&self, k: &str, reason: impl Into<String>) -> BadRequest {
        BadRequest::new(self.name(k), reason)
    }

    /// The raw value, if present and not null.
    pub fn get(&self, k: &str) -> Option<&'a Value> {
        self.obj.get(k).filter(|v| !v.is_null())
    }

    pub fn required(&self, k: &str) -> Result<&'a Value, BadRequest> {
        self.get(k).ok_or_else(|| self.bad(k, "missing"))
    }

    pub fn opt_str(&self, k: &str) -> Result<Option<&'a str>, BadRequest> {
        self.get(k)
            .map(|v| v.as_str().ok_or_else(|| self.bad(k, "must be a string")))
            .transpose()
    }

    pub fn str(&self, k: &str) -> Result<&'a str, BadRequest> {
        self.opt_str(k)?.ok_or_else(|| self.bad(k, "missing"))
    }

    pub fn opt_u64(&self, k: &str) -> Result<Option<u64>, BadRequest> {
        self.get(k)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| self.bad(k, "must be a non-negative integer"))
            })
            .transpose()
    }

    pub fn u64(&self, k: &str) -> Result<u64, BadRequest> {
        self.opt_u64(k)?.ok_or_else(|| self.bad(k, "missing"))
    }

    /// A u128 given as a JSON integer or as a string of decimal digits (JSON numbers above
    /// 2^53 are not portable).
    pub fn opt_u128(&self, k: &str) -> Result<Option<u128>, BadRequest> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        if let Some(n) = v.as_u64() {
            return Ok(Some(u128::from(n)));
        }
        v.as_str()
            .filter(|s| !s.is_empty() && s.len() <= 39 && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u128>().ok())
            .map(Some)
            .ok_or_else(|| self.bad(k, "must be an integer or a string of decimal digits"))
    }

    pub fn opt_array(&self, k: &str, max: usize) -> Result<Option<&'a Vec<Value>>, BadRequest> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        let a = v
            .as_array()
            .ok_or_else(|| self.bad(k, "must be an array"))?;
        if a.len() > max {
            return Err(self.bad(k, format!("{} entries (at most {max})", a.len())));
        }
        Ok(Some(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let v = parse(br#"{"a":1,"b":"x","c":{"d":true}}"#).unwrap();
        let f = Fields::of(&v, "", &["a", "b", "c"]).unwrap();
        assert_eq!(f.u64("a"), Ok(1));
        assert_eq!(f.u64("b").unwrap_err().field, "b");
        assert_eq!(f.str("z").unwrap_err(), BadRequest::new("z", "missing"));
        let c = Fields::of(f.required("c").unwrap(), "c", &["e"]).unwrap_err();
        assert_eq!(c, BadRequest::new("c.d", "unknown field"));
        let e = Fields::of(&v, "", &["a"]).err().unwrap();
        assert_eq!(e.reason, "unknown field");
        assert_eq!(parse(b"{").unwrap_err().field, PAYLOAD);
        assert_eq!(
            parse(&vec![b' '; MAX_REQUEST_BYTES + 1]).unwrap_err().field,
            PAYLOAD
        );
        let v = parse(br#"{"p":"340282366920938463463374607431768211455","q":"1e3"}"#).unwrap();
        let f = Fields::of(&v, "", &["p", "q"]).unwrap();
        assert_eq!(f.opt_u128("p"), Ok(Some(u128::MAX)));
        assert_eq!(f.opt_u128("q").unwrap_err().field, "q");
    }
}
