//! The signer's client of a sidecar's usage routes (`GET /v1/usage`, `DELETE
//! /v1/usage/{booking}`): HTTP/1.1 over hyper's client connection, JSON, bounded answers.
//! The sidecar's own CLI client is not reused because this crate must not depend on the
//! sidecar (plane isolation: `tests/isolation.rs`); both speak the same small protocol.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, Uri};
use serde_json::Value;

/// Largest answer read: a full listing (1 000 rows of about 1 KiB) fits.
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// Bound of one request, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One sidecar's operator API.
#[derive(Clone, Debug)]
pub struct Desk {
    authority: String,
}

impl Desk {
    /// `url`: `http://HOST:PORT` (the sidecar's `[api] listen`).
    pub fn new(url: &str) -> Result<Desk> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("usage_from {url:?} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            bail!("usage_from {url:?}: only http:// (the sidecar's API listens on loopback)");
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            bail!("usage_from {url:?}: give http://HOST:PORT only");
        }
        let authority = uri
            .authority()
            .filter(|a| a.port_u16().is_some())
            .ok_or_else(|| anyhow!("usage_from {url:?}: the port is missing"))?;
        Ok(Desk {
            authority: authority.to_string(),
        })
    }

    /// Up to `limit` confirmed usages waiting, oldest first (after booking `after`).
    pub async fn waiting(&self, limit: usize, after: Option<&str>) -> Result<Vec<Value>> {
        let mut path = format!("/v1/usage?limit={limit}");
        if let Some(b) = after {
            path.push_str(&format!("&after={}", segment(b)));
        }
        let v = self.call(Method::GET, &path, None).await?;
        match v.get("usage") {
            Some(Value::Array(rows)) => Ok(rows.clone()),
            _ => bail!("GET /v1/usage: no `usage` list in the answer"),
        }
    }

    /// Tells the sidecar the usage of `booking` is in the signer's queue (nothing to copy:
    /// a usage with nothing to pay).
    pub async fn taken(&self, booking: &str) -> Result<()> {
        self.call(
            Method::DELETE,
            &format!("/v1/usage/{}", segment(booking)),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Tells the sidecar the usage of `booking` is signed, with the attestation it copies
    /// to the provider.
    pub async fn taken_with_copy(&self, booking: &str, attestation: &[u8]) -> Result<()> {
        let body = serde_json::json!({"attestation_hex": hex::encode(attestation)});
        self.call(
            Method::POST,
            &format!("/v1/usage/{}/taken", segment(booking)),
            Some(body.to_string().into_bytes()),
        )
        .await
        .map(|_| ())
    }

    /// Up to `limit` attestation copies the sidecar received as provider: (booking, bytes).
    pub async fn copies(&self, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let v = self
            .call(
                Method::GET,
                &format!("/v1/attestations?limit={limit}"),
                None,
            )
            .await?;
        let Some(Value::Array(rows)) = v.get("attestations") else {
            bail!("GET /v1/attestations: no `attestations` list in the answer");
        };
        rows.iter()
            .map(|r| {
                let id = r["id"].as_str().context("attestation copy without an id")?;
                let bytes = hex::decode(r["attestation_hex"].as_str().unwrap_or(""))
                    .with_context(|| format!("attestation copy {id}: attestation_hex"))?;
                Ok((id.to_string(), bytes))
            })
            .collect()
    }

    /// Tells the sidecar the copy of `booking` is held (or discarded) by the signer.
    pub async fn copy_taken(&self, booking: &str) -> Result<()> {
        self.call(
            Method::DELETE,
            &format!("/v1/attestations/{}", segment(booking)),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Value> {
        let what = format!("{method} http://{}{path}", self.authority);
        tokio::time::timeout(
            TIMEOUT,
            self.exchange(method, path, body.unwrap_or_default()),
        )
        .await
        .map_err(|_| anyhow!("{what}: no answer within {TIMEOUT:?}"))?
        .with_context(|| what.clone())
    }

    async fn exchange(&self, method: Method, path: &str, body: Vec<u8>) -> Result<Value> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .context("is the sidecar running with its API on ([api] listen)?")?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        let conn = tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| anyhow!("reading the answer: {e}"))?
            .to_bytes();
        conn.abort();
        let v: Value = serde_json::from_slice(&body).with_context(|| {
            format!(
                "HTTP {status}: not JSON: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        })?;
        if !(200..300).contains(&status) {
            let msg = v["error"]
                .as_str()
                .map_or_else(|| v.to_string(), str::to_string);
            bail!("HTTP {status}: {msg}");
        }
        Ok(v)
    }
}

/// One path segment, percent-encoded (a booking id's `#` becomes `%23`).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
