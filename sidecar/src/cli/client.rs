//! The operator commands' client of the local API (`crate::api`): one HTTP/1.1 request per
//! command over hyper's client connection (axum's own HTTP stack; no other HTTP client in
//! the sidecar), JSON both ways, responses bounded.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, Uri};
use serde_json::Value;

use super::ConfigArgs;

/// Largest response read (a full booking listing is well under it).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// Bound of one request, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where the API is and how to print: shared by `garden outbox|resources|bookings`.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The sidecar's operator API, `http://HOST:PORT` [default: from the configuration's
    /// `[api] listen`].
    #[arg(long, env = "GARDEN_API_URL", global = true, value_name = "URL")]
    pub api: Option<String>,
    /// Print the API's JSON reply instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// One API endpoint's answer.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// A client of one sidecar's API.
pub struct Client {
    authority: String,
}

impl ApiArgs {
    /// The client of `--api`, or of the configuration's `[api] listen`.
    pub fn client(&self) -> anyhow::Result<Client> {
        let url = match &self.api {
            Some(u) => u.clone(),
            None => {
                let cfg = self.config.load()?;
                let addr = cfg.api.address()?.ok_or_else(|| {
                    anyhow!("the operator API is off in this configuration ([api] listen is empty); give --api URL")
                })?;
                // A wildcard listener is reached on the loopback address of its family.
                let ip = match addr.ip() {
                    std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                        std::net::Ipv4Addr::LOCALHOST.into()
                    }
                    std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    }
                    ip => ip,
                };
                format!("http://{}", std::net::SocketAddr::new(ip, addr.port()))
            }
        };
        Client::new(&url)
    }
}

impl Client {
    /// `url`: `http://HOST:PORT` (a trailing `/` is fine; no path, no https).
    pub fn new(url: &str) -> anyhow::Result<Client> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("--api {url:?} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            bail!("--api {url:?}: only http:// is served (the API listens on loopback)");
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            bail!("--api {url:?}: give http://HOST:PORT only");
        }
        let authority = uri
            .authority()
            .filter(|a| a.port_u16().is_some())
            .ok_or_else(|| anyhow!("--api {url:?}: the port is missing"))?;
        Ok(Client {
            authority: authority.to_string(),
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(Method::GET, path, None).await
    }

    /// `method` on `path` (from `/v1/…`, segments already encoded) with a JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let bytes = body
            .map(|v| serde_json::to_vec(v).unwrap_or_default())
            .unwrap_or_default();
        self.send_raw(method, path, bytes).await
    }

    /// `method` on `path` with `body` as it is (the tests send bodies the API must refuse).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        let what = format!("{method} http://{}{path}", self.authority);
        tokio::time::timeout(TIMEOUT, self.exchange(method, path, body))
            .await
            .map_err(|_| anyhow!("{what}: no answer within {TIMEOUT:?}"))?
            .with_context(|| what.clone())
    }

    async fn exchange(&self, method: Method, path: &str, body: Vec<u8>) -> anyhow::Result<Answer> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .context("is the sidecar running with its API on? (`[api] listen`, `--api`)")?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        let conn = tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| anyhow!("reading the answer: {e}"))?
            .to_bytes();
        conn.abort();
        let body = serde_json::from_slice(&body).with_context(|| {
            format!(
                "HTTP {status}: not JSON: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        })?;
        Ok(Answer { status, body })
    }
}

impl Answer {
    /// The body of a success; a refusal as an error naming what was wrong.
    pub fn ok(self) -> anyhow::Result<Value> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        let msg = self.body["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| self.body.to_string());
        bail!("HTTP {}: {msg}", self.status)
    }
}

/// One path segment, percent-encoded (a booking id's `#` becomes `%23`).
pub fn segment(s: &str) -> String {
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

/// Prints `answer` as JSON (`--json`: success or refusal, then the exit status says which)
/// or hands a success to `human`.
pub(super) fn print(
    args: &ApiArgs,
    answer: Answer,
    human: impl FnOnce(&Value),
) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer.body)?);
        if !(200..300).contains(&answer.status) {
            bail!("HTTP {}", answer.status);
        }
        return Ok(());
    }
    let v = answer.ok()?;
    human(&v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_segments() {
        assert!(Client::new("http://127.0.0.1:7450").is_ok());
        assert!(Client::new("http://127.0.0.1:7450/").is_ok());
        assert!(Client::new("http://[::1]:7450").is_ok());
        for bad in [
            "https://127.0.0.1:7450",
            "127.0.0.1",
            "http://127.0.0.1",
            "http://h:1/v1",
            "x y",
        ] {
            assert!(Client::new(bad).is_err(), "{bad}");
        }
        assert_eq!(segment("did:key:z6Mk#12"), "did:key:z6Mk%2312");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
