//! The local operator API: JSON over HTTP/1.1 on `[api] listen` (default `127.0.0.1:7450`),
//! what the `garden outbox|resources|bookings` commands talk to, so a site is operable
//! without NATS.
//!
//! | method and path | request |
//! |---|---|
//! | `GET /v1/outbox` | the DTN outbox: depth, oldest entry, per peer and per class, totals |
//! | `GET /v1/resources[?kind=&name=&owner=&available_at_ms=&limit=]` | search (ours first) |
//! | `GET /v1/resources/{id}` | one of our resources, with its version |
//! | `POST /v1/resources` | create (the body of `<p>.resource.create`) |
//! | `PUT /v1/resources/{id}` | replace the content (the body of `<p>.resource.update`; `id` from the path) |
//! | `DELETE /v1/resources/{id}` | delete (terminal) |
//! | `GET /v1/bookings[?state=&limit=]` | our bookings, as consumer or provider |
//! | `GET /v1/bookings/{id}` | one booking (`id`: `<consumer did>#<nonce>`, `#` as `%23`) |
//! | `POST /v1/bookings` | request a booking (the body of `<p>.booking.request`) |
//! | `POST /v1/bookings/{id}/{confirm,decline,start,complete,cancel,confirm-usage}` | a transition (the body of `<p>.booking.<step>` without `booking`) |
//! | `GET /v1/usage[?limit=&after=]`, `DELETE /v1/usage/{booking}` | confirmed usage waiting for settlement, taken by `garden-signer take` ([`usage`]) |
//!
//! **One implementation, two transports.** A request is parsed by the NATS bridge's own
//! parser (`events::request`: the same bounds and the same errors naming the field) and run
//! by the same service task (`events::Ops` → `events::Service::handle`) as a NATS request;
//! the reply is the NATS reply. Refusals are `4xx` (or `500` for a storage failure, `503`
//! while stopping) with `{"ok": false, "error": "<field>: <reason>", "field", "reason"}`.
//! Bodies are at most 64 KiB (`413` beyond, never read further).
//!
//! **Exposure.** No authentication: whoever reaches the listener acts as this site. The
//! configuration refuses a non-loopback address unless `[api] allow_remote = true`.

mod body;
mod routes;
pub mod usage;

use std::net::SocketAddr;

use tokio::sync::oneshot;

use crate::events::Ops;

/// How long requests in progress may take to finish when the API stops.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ([api] listen): {source}")]
pub struct Error {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// The running API.
pub struct Handle {
    /// The address it listens on (the bound port when `listen` asked for port 0).
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops accepting, lets requests in progress finish (for [`STOP_GRACE`] at most: a
    /// client that holds its connection open cannot keep the sidecar from stopping), and
    /// waits.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if tokio::time::timeout(STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
            let _ = (&mut self.task).await;
        }
    }
}

/// Binds `addr` and serves the API over `ops` (and the usage routes over `desk`).
pub async fn spawn(addr: SocketAddr, ops: Ops, desk: usage::Desk) -> Result<Handle, Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| Error { addr, source })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = routes::router(ops, desk);
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "operator API stopped");
        }
    });
    tracing::info!(addr = %bound, "operator API listening");
    Ok(Handle {
        addr: bound,
        stop: Some(stop),
        task,
    })
}
