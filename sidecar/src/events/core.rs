//! The one task that runs the data plane's operations: requests from every transport (the
//! NATS bridge, the local API) through [`Ops`], the entries peers delivered, and the
//! outbox's outcomes, one at a time over one [`Service`].
//!
//! One at a time on purpose: an update signs "the last version + 1" and a confirmation is
//! admitted against the stored bookings; two transports running them side by side could
//! race. The events each one causes go to the [`EventSink`] (the NATS bridge's durable
//! journal, which its publisher drains) when NATS is configured; without it there is no
//! reader and they are dropped (the changes themselves are stored, and the API shows them).

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::fields::{BadRequest, Kind};
use super::request::Request;
use super::service::{outcome_event, Answer, Event, Service};
use crate::dtn::{Delivered, Outcome};
use crate::resources::Did;

/// Requests waiting for the task.
const QUEUE: usize = 64;

/// A request's reply and, for a refusal, what was refused.
#[derive(Clone, Debug)]
pub struct Reply {
    pub value: Value,
    pub error: Option<BadRequest>,
}

struct Call {
    req: Request,
    reply: oneshot::Sender<Reply>,
}

/// The transports' handle to the task (cloneable).
#[derive(Clone)]
pub struct Ops {
    tx: mpsc::Sender<Call>,
    me: Did,
}

impl Ops {
    /// This site's DID (the owner of what requests create).
    pub fn me(&self) -> &Did {
        &self.me
    }

    /// Runs `req` and returns its reply (a refusal naming `(service)` once the task is gone).
    pub async fn call(&self, req: Request) -> Reply {
        let gone = || {
            let e =
                BadRequest::new("(service)", "the sidecar is stopping").of_kind(Kind::Unavailable);
            let a = Answer::bad(e);
            Reply {
                value: a.reply,
                error: a.error,
            }
        };
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Call { req, reply: tx }).await.is_err() {
            return gone();
        }
        rx.await.unwrap_or_else(|_| gone())
    }
}

/// Where the events of the service go (`events::bridge::connect` makes the NATS one).
pub type EventSink = Box<dyn FnMut(Event) + Send>;

struct Sink(Option<EventSink>);

impl Sink {
    fn put(&mut self, events: Vec<Event>) {
        match &mut self.0 {
            Some(s) => events.into_iter().for_each(s),
            None => {
                for (kind, _) in events {
                    tracing::trace!(?kind, "event without NATS: not published");
                }
            }
        }
    }
}

/// Spawns the task over `service`; it ends when every [`Ops`] is dropped and the data plane's
/// channels are closed, or when aborted.
pub fn spawn(
    service: Service,
    sink: Option<EventSink>,
    mut delivered: mpsc::Receiver<Delivered>,
    mut outcomes: mpsc::Receiver<Outcome>,
) -> (Ops, tokio::task::JoinHandle<()>) {
    let (tx, mut calls) = mpsc::channel::<Call>(QUEUE);
    let me = service.me().clone();
    let mut sink = Sink(sink);
    let task = tokio::spawn(async move {
        // What a stop left between our catalogue and the outbox goes first.
        match service.resume().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "changes pushed again after a stop"),
            Err(e) => tracing::error!(error = %e, "changes left unsent by a stop not read"),
        }
        // A nano reports to its master at once (the start of a contact); notices a crash
        // left waiting are handed over.
        let events = service.on_start().await;
        sink.put(events);
        loop {
            tokio::select! {
                Some(c) = calls.recv() => {
                    let a = service.handle(c.req).await;
                    sink.put(a.events);
                    // The caller may be gone (a closed connection): the change is kept.
                    let _ = c.reply.send(Reply { value: a.reply, error: a.error });
                }
                Some(d) = delivered.recv() => {
                    let events = service.on_delivered(&d).await;
                    sink.put(events);
                    // Applied (or refused for good) and its events journalled: the plane
                    // may now record and acknowledge it. A crash before this redelivers it,
                    // and the catalogue and bookings find it a duplicate.
                    d.done();
                }
                Some(o) = outcomes.recv() => sink.put(vec![outcome_event(&o)]),
                else => break,
            }
        }
        tracing::debug!("data plane service stopped");
    });
    (Ops { tx, me }, task)
}
