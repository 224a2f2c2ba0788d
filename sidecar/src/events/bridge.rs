//! The NATS glue: connects (in the background, reconnecting for ever), answers the inbound
//! subjects through the data plane's service task ([`Ops`], `events::core`, which also turns
//! delivered entries and outbox outcomes into events), and publishes events from the durable,
//! bounded [`Journal`] until the server confirmed each.
//!
//! Two tasks: the *bridge* (requests: parsed here, run by the service task; never waits on a
//! publish) and the *publisher* (the queue's oldest event, JetStream publish with its id as
//! `Nats-Msg-Id` and wait for the server's acknowledgement, or a core publish and flush; on
//! failure it retries the same event after a pause). During an outage requests cannot
//! arrive, deliveries are still applied and their events wait in the journal, across a
//! restart of the sidecar too. The service task stamps and journals its events through the
//! sink [`connect`] hands it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, context::Publish};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::Notify;

use super::core::{EventSink, Ops};
use super::fields::BadRequest;
use super::journal::Journal;
use super::queue::Pending;
use super::request::parse_request;
use super::service::Event;
use super::subjects::Subjects;
use super::view;
use crate::time::Clock;

/// Bound of one server round trip (a publish acknowledgement, a JetStream API request).
const ATTEMPT: Duration = Duration::from_secs(2);

/// Settings of the bridge (mapped from `[events]` by `app.rs`).
#[derive(Clone, Debug)]
pub struct Config {
    pub url: String,
    pub subjects: Subjects,
    pub jetstream: bool,
    /// Client name shown by the server.
    pub name: String,
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("NATS subscribe: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
}

/// Figures of the bridge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered (including refusals).
    pub requests: u64,
    /// Requests refused as malformed or invalid.
    pub bad_requests: u64,
    /// Events the server confirmed.
    pub published: u64,
    /// Events waiting in the queue.
    pub pending: usize,
    /// Events dropped because the queue was full (since start).
    pub dropped: u64,
    /// Events that could not be written to the journal (storage failure).
    pub unrecorded: u64,
    /// Failed publish attempts (each retried).
    pub publish_failures: u64,
    pub connected: bool,
}

#[derive(Default)]
struct Shared {
    requests: AtomicU64,
    bad_requests: AtomicU64,
    published: AtomicU64,
    publish_failures: AtomicU64,
    unrecorded: AtomicU64,
    connected: AtomicBool,
}

/// Handle to the running bridge.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
    queue: Arc<Mutex<Journal>>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Handle {
    pub fn stats(&self) -> Stats {
        let (pending, dropped) = {
            let q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            (q.len(), q.dropped())
        };
        let s = &self.shared;
        Stats {
            requests: s.requests.load(Ordering::Relaxed),
            bad_requests: s.bad_requests.load(Ordering::Relaxed),
            published: s.published.load(Ordering::Relaxed),
            publish_failures: s.publish_failures.load(Ordering::Relaxed),
            unrecorded: s.unrecorded.load(Ordering::Relaxed),
            pending,
            dropped,
            connected: s.connected.load(Ordering::Relaxed),
        }
    }

    /// Stops both tasks and waits until they are gone (the database they hold is released;
    /// queued events stay in the journal for the next start).
    pub async fn stop(&self) {
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Stamps events with an id and time and journals them for the publisher.
struct Stamper {
    queue: Arc<Mutex<Journal>>,
    shared: Arc<Shared>,
    notify: Arc<Notify>,
    subjects: Subjects,
    clock: Clock,
    epoch: u64,
    seq: u64,
}

impl Stamper {
    fn queue(&mut self, (kind, mut body): Event) {
        self.seq += 1;
        let id = format!("{:016x}-{}", self.epoch, self.seq);
        if let Value::Object(o) = &mut body {
            o.insert("event".into(), Value::String(id.clone()));
            o.insert("at_ms".into(), self.clock.now().as_millis().into());
        }
        let p = Pending {
            seq: 0,
            subject: self.subjects.outbound(kind),
            id,
            body: serde_json::to_vec(&body).unwrap_or_default(),
        };
        let r = self.queue.lock().unwrap_or_else(|e| e.into_inner()).push(p);
        match r {
            Ok(Some(g)) => {
                tracing::warn!(subject = %g.subject, event = %g.id, "events queue full: oldest event dropped")
            }
            Ok(None) => {}
            Err(e) => {
                self.shared.unrecorded.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "event not recorded");
            }
        }
        self.notify.notify_one();
    }
}

/// The subscriptions, waiting for [`serve`].
pub struct Requests {
    client: async_nats::Client,
    subjects: Subjects,
    resources: async_nats::Subscriber,
    bookings: async_nats::Subscriber,
}

/// Connects (in the background), subscribes, and spawns the publisher, which starts with
/// what `journal` holds from an earlier run. Events given to the returned sink are stamped,
/// journalled and published; requests are answered once [`serve`] runs.
pub async fn connect(
    cfg: Config,
    journal: Journal,
    clock: Clock,
) -> Result<(Handle, EventSink, Requests), Error> {
    let shared = Arc::new(Shared::default());
    let events = shared.clone();
    let client = async_nats::ConnectOptions::new()
        .name(&cfg.name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        // Bounds the JetStream API requests (stream creation) as set_timeout bounds acks.
        .request_timeout(Some(ATTEMPT))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((attempts as u64 * 100).clamp(100, 2_000))
        })
        .event_callback(move |e| {
            let events = events.clone();
            async move {
                match e {
                    async_nats::Event::Connected => {
                        events.connected.store(true, Ordering::Relaxed);
                        tracing::info!("NATS connected");
                    }
                    async_nats::Event::Disconnected => {
                        events.connected.store(false, Ordering::Relaxed);
                        tracing::warn!("NATS disconnected");
                    }
                    other => tracing::debug!(event = %other, "NATS"),
                }
            }
        })
        .connect(cfg.url.as_str())
        .await?;
    let s = &cfg.subjects;
    let resources = client.subscribe(s.resource_requests()).await?;
    let bookings = client.subscribe(s.booking_requests()).await?;
    let queue = Arc::new(Mutex::new(journal));
    let notify = Arc::new(Notify::new());
    let mut stamper = Stamper {
        queue: queue.clone(),
        shared: shared.clone(),
        notify: notify.clone(),
        subjects: cfg.subjects.clone(),
        clock,
        epoch: rand::random(),
        seq: 0,
    };
    let publisher = tokio::spawn(publish_loop(
        client.clone(),
        cfg.clone(),
        queue.clone(),
        notify,
        shared.clone(),
    ));
    let handle = Handle {
        shared,
        queue,
        tasks: Arc::new(Mutex::new(vec![publisher])),
    };
    let requests = Requests {
        client,
        subjects: cfg.subjects,
        resources,
        bookings,
    };
    let sink: EventSink = Box::new(move |e| stamper.queue(e));
    Ok((handle, sink, requests))
}

/// Answers the subscriptions' requests through `ops` (the data plane's one service task).
pub fn serve(handle: &Handle, requests: Requests, ops: Ops) {
    let shared = handle.shared.clone();
    let Requests {
        client,
        subjects,
        mut resources,
        mut bookings,
    } = requests;
    let task = tokio::spawn(async move {
        loop {
            let m = tokio::select! {
                Some(m) = resources.next() => m,
                Some(m) = bookings.next() => m,
                else => break,
            };
            answer(&client, &subjects, &ops, &shared, m).await;
        }
        tracing::debug!("events bridge stopped");
    });
    handle
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(task);
}

async fn answer(
    client: &async_nats::Client,
    subjects: &Subjects,
    ops: &Ops,
    shared: &Shared,
    m: async_nats::Message,
) {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let Some(reply_to) = m.reply.clone() else {
        shared.bad_requests.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(subject = %m.subject, "request without a reply subject ignored");
        return;
    };
    let parsed = subjects
        .classify(&m.subject)
        .ok_or_else(|| BadRequest::new("(subject)", "not a request subject of this site"))
        .and_then(|kind| parse_request(kind, &m.payload, ops.me()));
    let reply = match parsed {
        Err(e) => {
            shared.bad_requests.fetch_add(1, Ordering::Relaxed);
            view::error(&e.field, &e.reason)
        }
        Ok(req) => {
            let r = ops.call(req).await;
            if r.error.is_some() {
                shared.bad_requests.fetch_add(1, Ordering::Relaxed);
            }
            r.value
        }
    };
    let bytes = serde_json::to_vec(&reply).unwrap_or_default();
    if let Err(e) = client.publish(reply_to, bytes.into()).await {
        tracing::warn!(error = %e, "NATS reply not sent (the change, if any, is kept)");
    }
}

async fn publish_loop(
    client: async_nats::Client,
    cfg: Config,
    queue: Arc<Mutex<Journal>>,
    notify: Arc<Notify>,
    shared: Arc<Shared>,
) {
    let mut js = jetstream::new(client.clone());
    js.set_timeout(ATTEMPT);
    let mut stream_ready = false;
    let mut pause = Duration::from_millis(100);
    loop {
        let next = queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .front()
            .cloned();
        let Some(p) = next else {
            let _ = tokio::time::timeout(Duration::from_millis(500), notify.notified()).await;
            continue;
        };
        let attempt = async {
            if cfg.jetstream {
                publish_js(&js, &cfg.subjects, &mut stream_ready, &p).await
            } else {
                publish_core(&client, &p).await
            }
        };
        // Each step is bounded by ATTEMPT already; this bounds the whole attempt.
        let result = tokio::time::timeout(3 * ATTEMPT, attempt)
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        match result {
            Ok(()) => {
                let r = queue
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .confirm(&p.id);
                if let Err(e) = r {
                    // Published but still journalled: republished after a restart, and
                    // deduplicated by the stream within its window.
                    tracing::warn!(error = %e, event = %p.id, "confirmed event not removed");
                }
                shared.published.fetch_add(1, Ordering::Relaxed);
                pause = Duration::from_millis(100);
            }
            Err(e) => {
                shared.publish_failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, event = %p.id, "event not published yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

async fn publish_js(
    js: &jetstream::Context,
    subjects: &Subjects,
    stream_ready: &mut bool,
    p: &Pending,
) -> Result<(), String> {
    if !*stream_ready {
        js.get_or_create_stream(jetstream::stream::Config {
            name: subjects.stream(),
            subjects: vec![subjects.all_outbound()],
            ..Default::default()
        })
        .await
        .map_err(|e| format!("stream {}: {e}", subjects.stream()))?;
        *stream_ready = true;
    }
    let publish = Publish::build()
        .payload(p.body.clone().into())
        .message_id(&p.id);
    let r = async {
        js.send_publish(p.subject.clone(), publish)
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    if r.is_err() {
        // The server may have lost the stream (restarted without its store): check again.
        *stream_ready = false;
    }
    r.map(|_| ())
}

async fn publish_core(client: &async_nats::Client, p: &Pending) -> Result<(), String> {
    if client.connection_state() != async_nats::connection::State::Connected {
        return Err("not connected".into());
    }
    client
        .publish(p.subject.clone(), p.body.clone().into())
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())
}
