//! The data plane task: one tokio task that owns the [`Outbox`] and the [`Inbox`] and carries
//! entries over [`super::link`].
//!
//! * every tick (and at once after a push or a wake-up) it takes [`Outbox::due`], queues the
//!   items per peer and sends one batch per peer at a time (its own task, bounded by the
//!   stream timeout); what the peer acknowledged is [`Outbox::ack_all`]ed, the rest
//!   [`Outbox::failed`] (backoff);
//! * it accepts inbound `/garden/dtn/1.0.0` streams (a bounded number at once) and hands the
//!   entries its [`Inbox`] has not recorded to the application ([`Delivered`] on the receiver
//!   returned by [`spawn`]). An entry is acknowledged only once the application said it is
//!   done with it ([`Delivered::done`]): then it is recorded ([`Inbox::accept_all`], one
//!   transaction per batch) and acknowledged, with the duplicates of the batch. An entry the
//!   application channel cannot take, or that the application drops without `done` (it
//!   stopped, it crashed), is neither recorded nor acknowledged: the sender delivers it again.
//!   A crash between the application's effect and the record also redelivers it, so the
//!   application's effects must be idempotent (the catalogue's versions and the bookings'
//!   ids and states are); what the plane guarantees is that nothing acknowledged was lost.
//!   Any inbound stream, even a zero-entry *hello*, makes the sender's entries for that peer
//!   due at once;
//! * wake-up: the peers the indexers say wait to reach us arrive on `wake`; for each, entries
//!   we hold for it are due at once and a hello is sent to it, so the *waiting sender* learns
//!   we are reachable and flushes to us (Go nudged the receiver only). The peers we hold
//!   critical entries for are published on `pending` whenever that set changes (the app feeds
//!   them to the heartbeats' `pending_contact`).
//! * a new connection with a peer ([`Handle::reachable`], from the event loop) makes what we
//!   hold for it due at once: a contact that starts is used at once, not at the next retry
//!   (which backs off to 5 minutes over a long cut);
//! * what becomes of the entries we sent (acknowledged, expired, dropped) goes to the
//!   [`Outcome`] receiver a caller asked for with [`Handle::watch`] (the events bridge); an
//!   outcome that receiver cannot take is counted (`Stats::outcomes_dropped`), never waited on.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};

use super::entry::{Entry, Id};
use super::inbox::Inbox;
use super::lifecycle::Op;
use super::link::{self, LinkError};
use super::outbox::{self, Failed, Gone, Item, Limits, Outbox};
use super::store::StoreError;
use crate::time::Clock;

/// File names inside the data directory.
pub const OUTBOX_FILE: &str = "dtn-outbox.redb";
pub const INBOX_FILE: &str = "dtn-inbox.redb";
/// Inbound streams read at once; more are dropped (the sender retries).
const MAX_INBOUND: usize = 32;

/// Settings of the task.
#[derive(Clone, Debug)]
pub struct Config {
    /// Directory of the outbox and inbox files (created).
    pub dir: PathBuf,
    /// How often due entries are looked for (protocol time).
    pub tick: Duration,
    /// Bound of one exchange: open, write, ack (protocol time).
    pub stream_timeout: Duration,
    /// How long the inbox remembers applied ids (beyond any sender expiry).
    pub inbox_horizon: Duration,
    pub limits: Limits,
}

impl Config {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Config {
            dir: dir.into(),
            tick: Duration::from_secs(1),
            stream_timeout: Duration::from_secs(10),
            inbox_horizon: Duration::from_secs(8 * 24 * 3600),
            limits: Limits::default(),
        }
    }
}

/// Why the task could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create {dir}: {source}")]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Outbox(#[from] outbox::Error),
    #[error(transparent)]
    Inbox(#[from] StoreError),
    #[error("another task already accepts /garden/dtn/1.0.0")]
    AlreadyRegistered,
    #[error("the data plane has stopped")]
    Closed,
}

/// An entry received from a peer, for the application. Call [`Delivered::done`] once its
/// effect is durable (or refused for good): only then is it recorded and acknowledged.
/// Dropped without `done`, it is delivered again later (see the module docs).
#[derive(Debug)]
pub struct Delivered {
    pub from: PeerId,
    pub id: Id,
    pub protocol: String,
    pub op: Op,
    pub resource: String,
    pub payload: Vec<u8>,
    pub(crate) receipt: Receipt,
}

impl Delivered {
    /// The application is done with this entry: record it as received and acknowledge it.
    pub fn done(self) {
        self.receipt.done();
    }
}

/// The application's answer for one delivered entry: `done`, or dropped.
pub(crate) struct Receipt(Option<oneshot::Sender<()>>);

impl Receipt {
    /// A receipt nobody waits for (entries built outside the plane, in tests).
    #[cfg(test)]
    pub(crate) fn detached() -> Receipt {
        Receipt(None)
    }

    fn done(mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receipt")
    }
}

/// What became of an entry we sent (see [`Handle::watch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `peer` acknowledged entry `id`: it left the outbox.
    Delivered { peer: PeerId, id: Id },
    /// The entry expired undelivered.
    Expired(Gone),
    /// A moderate entry out of tries.
    Dropped(Gone),
}

/// Figures of the task.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub outbox: outbox::Stats,
    /// Entries acknowledged by peers.
    pub acked: u64,
    /// Fresh entries the application applied (acknowledged).
    pub delivered: u64,
    /// Entries handed to the application and dropped without `done` (not acknowledged: the
    /// sender delivers them again).
    pub not_applied: u64,
    /// Duplicates received (acknowledged, not handed over).
    pub duplicates: u64,
    /// Inbound streams refused (undecodable, oversized, timed out).
    pub refused: u64,
    /// Outbound batches that failed.
    pub failed_batches: u64,
    /// Peers the indexers told us wait to reach us.
    pub woken: u64,
    /// Zero-entry batches (hellos) received: a peer saying it is reachable.
    pub hellos: u64,
    /// Outcomes the watcher's channel could not take.
    pub outcomes_dropped: u64,
}

/// One result per entry of a [`Handle::push_all`].
type Pushed = Result<Vec<Result<Id, outbox::Error>>, outbox::Error>;

enum Cmd {
    Push(Box<Entry>, oneshot::Sender<Result<Id, outbox::Error>>),
    PushAll(Vec<Entry>, oneshot::Sender<Pushed>),
    Stats(oneshot::Sender<Stats>),
    Wake(Vec<PeerId>),
    Reachable(PeerId),
    Watch(mpsc::Sender<Outcome>),
    Stop(oneshot::Sender<()>),
}

/// Handle to the running task (cloneable).
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Cmd>,
}

impl Handle {
    /// Queues `entry` (durably when critical) and tries to deliver it at once.
    pub async fn push(&self, entry: Entry) -> Result<Id, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Push(Box::new(entry), tx))
            .await
            .map_err(|_| Error::Closed)?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    /// Queues several entries in one write transaction (one fsync for the critical ones: a
    /// producer's burst), then tries to deliver them. One result per entry, in order; `Err`
    /// when the store failed (nothing of the batch was queued).
    pub async fn push_all(
        &self,
        entries: Vec<Entry>,
    ) -> Result<Vec<Result<Id, outbox::Error>>, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::PushAll(entries, tx))
            .await
            .map_err(|_| Error::Closed)?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    pub async fn stats(&self) -> Result<Stats, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Stats(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Stops the task and waits until its files are closed (a restart may reopen them).
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// From now on, what becomes of the entries we sent is sent to the returned receiver
    /// (`capacity` outcomes at most wait in it; more are counted and dropped). A later call
    /// replaces the earlier receiver.
    pub async fn watch(&self, capacity: usize) -> Result<mpsc::Receiver<Outcome>, Error> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.tx
            .send(Cmd::Watch(tx))
            .await
            .map_err(|_| Error::Closed)?;
        Ok(rx)
    }

    /// A connection with `peer` was established: what waits for it is due now (no hello:
    /// the peer is connected, not waiting).
    pub async fn reachable(&self, peer: PeerId) -> Result<(), Error> {
        self.tx
            .send(Cmd::Reachable(peer))
            .await
            .map_err(|_| Error::Closed)
    }

    /// `peers` are reachable (or wait for us): deliver to them now and say hello.
    pub async fn wake(&self, peers: Vec<PeerId>) -> Result<(), Error> {
        self.tx
            .send(Cmd::Wake(peers))
            .await
            .map_err(|_| Error::Closed)
    }
}

/// The result of one outbound exchange.
struct Done {
    peer: PeerId,
    sent: Vec<Id>,
    result: Result<Vec<Id>, LinkError>,
}

/// One inbound stream read.
struct Inbound {
    peer: PeerId,
    stream: libp2p::Stream,
    result: Result<Vec<Item>, LinkError>,
}

/// An inbound batch once the application answered for every entry handed to it.
struct Answered {
    peer: PeerId,
    stream: libp2p::Stream,
    /// Entries the application is done with: recorded, then acknowledged.
    applied: Vec<Id>,
    /// Entries it dropped: neither recorded nor acknowledged.
    dropped: Vec<Id>,
    /// Entries already recorded: acknowledged only.
    duplicates: Vec<Id>,
}

struct Plane {
    cfg: Config,
    clock: Clock,
    control: libp2p_stream::Control,
    outbox: Outbox,
    inbox: Inbox,
    deliver: mpsc::Sender<Delivered>,
    pending: mpsc::Sender<Vec<PeerId>>,
    last_pending: Option<BTreeSet<PeerId>>,
    /// Items taken from the outbox, per peer, not yet sent; a peer present here has a batch
    /// in flight.
    queues: HashMap<PeerId, VecDeque<Item>>,
    done_tx: mpsc::Sender<Done>,
    inbound_tx: mpsc::Sender<Inbound>,
    inbound_active: usize,
    answered_tx: mpsc::Sender<Answered>,
    /// Entries handed to the application and not answered yet: a redelivery meanwhile (the
    /// sender timed out) is not handed again, nor acknowledged.
    handed: HashSet<(PeerId, Id)>,
    stats: Stats,
    watch: Option<mpsc::Sender<Outcome>>,
}

/// Opens the files in `cfg.dir` with the outbox `key` and spawns the task. `wake` brings the
/// peers waiting to reach us; `pending` receives the peers we hold critical entries for.
/// Returns the handle and the application's receiver of delivered entries.
pub fn spawn(
    cfg: Config,
    key: &[u8; 32],
    mut control: libp2p_stream::Control,
    clock: Clock,
    mut wake: mpsc::Receiver<Vec<PeerId>>,
    pending: mpsc::Sender<Vec<PeerId>>,
) -> Result<(Handle, mpsc::Receiver<Delivered>), Error> {
    std::fs::create_dir_all(&cfg.dir).map_err(|source| Error::Dir {
        dir: cfg.dir.clone(),
        source,
    })?;
    let mut outbox = Outbox::open(cfg.dir.join(OUTBOX_FILE), key, cfg.limits.clone())?;
    for c in outbox.take_corrupted() {
        tracing::warn!(id = %c.id, why = ?c.why, "outbox row quarantined");
    }
    let inbox = Inbox::open(cfg.dir.join(INBOX_FILE), cfg.inbox_horizon)?;
    let mut incoming = control
        .accept(link::PROTOCOL)
        .map_err(|_| Error::AlreadyRegistered)?;
    let (tx, mut cmds) = mpsc::channel(64);
    let (deliver, delivered) = mpsc::channel(1024);
    let (done_tx, mut done_rx) = mpsc::channel(64);
    let (inbound_tx, mut inbound_rx) = mpsc::channel(MAX_INBOUND);
    let (answered_tx, mut answered_rx) = mpsc::channel(MAX_INBOUND);
    let mut p = Plane {
        clock,
        control,
        outbox,
        inbox,
        deliver,
        pending,
        last_pending: None,
        queues: HashMap::new(),
        done_tx,
        inbound_tx,
        inbound_active: 0,
        answered_tx,
        handed: HashSet::new(),
        stats: Stats::default(),
        watch: None,
        cfg,
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(p.clock.real(p.cfg.tick));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopped = None;
        loop {
            tokio::select! {
                _ = tick.tick() => p.on_tick(),
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::Stop(reply)) => {
                        stopped = Some(reply);
                        break;
                    }
                    Some(c) => p.on_cmd(c),
                    None => break,
                },
                Some(peers) = wake.recv() => p.on_wake(peers),
                Some(d) = done_rx.recv() => p.on_done(d),
                Some(i) = inbound_rx.recv() => p.on_inbound(i),
                Some(a) = answered_rx.recv() => p.on_answered(a),
                Some((peer, stream)) = incoming.next() => p.read_inbound(peer, stream),
            }
        }
        drop(p);
        drop(incoming);
        tracing::debug!("data plane stopped");
        if let Some(r) = stopped {
            let _ = r.send(());
        }
    });
    Ok((Handle { tx }, delivered))
}

impl Plane {
    fn on_tick(&mut self) {
        let now = self.clock.now();
        match self.outbox.expire(now) {
            Ok(gone) => {
                for g in gone {
                    tracing::warn!(id = %g.id, peer = %g.peer, "outbox entry expired undelivered");
                    self.report(Outcome::Expired(g));
                }
            }
            Err(e) => tracing::warn!(error = %e, "outbox expiry"),
        }
        self.flush();
        let peers = self.outbox.pending_peers();
        if self.last_pending.as_ref() != Some(&peers)
            && self
                .pending
                .try_send(peers.iter().copied().collect())
                .is_ok()
        {
            self.last_pending = Some(peers);
        }
    }

    fn on_cmd(&mut self, c: Cmd) {
        match c {
            Cmd::Push(e, reply) => {
                let r = self.outbox.push(*e, self.clock.now());
                let _ = reply.send(r);
                self.flush();
            }
            Cmd::PushAll(entries, reply) => {
                let r = self.outbox.push_all(entries, self.clock.now());
                let _ = reply.send(r);
                self.flush();
            }
            Cmd::Stats(reply) => {
                let mut s = self.stats.clone();
                s.outbox = self.outbox.stats(self.clock.now());
                let _ = reply.send(s);
            }
            Cmd::Wake(peers) => self.on_wake(peers),
            Cmd::Reachable(peer) => {
                if self.outbox.wake(&peer, self.clock.now()) > 0 {
                    self.flush();
                }
            }
            Cmd::Watch(tx) => self.watch = Some(tx),
            Cmd::Stop(_) => {}
        }
    }

    /// Hands an outcome to the watcher, if any, without waiting.
    fn report(&mut self, o: Outcome) {
        if let Some(w) = &self.watch {
            if w.try_send(o).is_err() {
                self.stats.outcomes_dropped += 1;
            }
        }
    }

    /// An attempt at `id` failed; a moderate entry out of tries is reported.
    fn fail(&mut self, id: Id, now: crate::time::Timestamp) {
        if let Failed::Dropped(g) = self.outbox.failed(id, now) {
            self.report(Outcome::Dropped(g));
        }
    }

    fn on_wake(&mut self, peers: Vec<PeerId>) {
        let now = self.clock.now();
        self.stats.woken += peers.len() as u64;
        for p in &peers {
            self.outbox.wake(p, now);
        }
        self.flush();
        // Peers we hold nothing for are told we are reachable (a hello).
        for p in peers {
            if let std::collections::hash_map::Entry::Vacant(v) = self.queues.entry(p) {
                v.insert(VecDeque::new());
                self.send(p, Vec::new());
            }
        }
    }

    /// Takes what is due and starts a batch for every idle peer.
    fn flush(&mut self) {
        let due = match self.outbox.due(self.clock.now()) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "outbox read");
                return;
            }
        };
        for c in self.outbox.take_corrupted() {
            tracing::warn!(id = %c.id, why = ?c.why, "outbox row quarantined");
        }
        for d in due {
            match self.queues.get_mut(&d.peer) {
                Some(q) => q.extend(d.items),
                None => {
                    self.queues.insert(d.peer, d.items.into());
                    self.next_batch(d.peer);
                }
            }
        }
    }

    /// Sends the next batch queued for `peer`, or marks it idle.
    fn next_batch(&mut self, peer: PeerId) {
        let Some(q) = self.queues.get_mut(&peer) else {
            return;
        };
        let items: Vec<Item> = q.make_contiguous().to_vec();
        let n = link::batch_len(&items);
        if n == 0 {
            self.queues.remove(&peer);
            return;
        }
        q.drain(..n);
        self.send(peer, items[..n].to_vec());
    }

    fn send(&mut self, peer: PeerId, items: Vec<Item>) {
        let mut control = self.control.clone();
        let done = self.done_tx.clone();
        let timeout = self.clock.real(self.cfg.stream_timeout);
        tokio::spawn(async move {
            let sent: Vec<Id> = items.iter().map(|i| i.id).collect();
            let exchange = async {
                let mut s = control
                    .open_stream(peer, link::PROTOCOL)
                    .await
                    .map_err(|e| LinkError::Open(e.to_string()))?;
                let acked = link::send_batch(&mut s, &items).await?;
                let _ = futures::AsyncWriteExt::close(&mut s).await;
                Ok(acked)
            };
            let result = tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or(Err(LinkError::Timeout));
            let _ = done.send(Done { peer, sent, result }).await;
        });
    }

    fn on_done(&mut self, d: Done) {
        let now = self.clock.now();
        match d.result {
            Ok(acked) => {
                match self.outbox.ack_all(&acked) {
                    Ok(n) => {
                        self.stats.acked += n as u64;
                        for id in &acked {
                            self.report(Outcome::Delivered {
                                peer: d.peer,
                                id: *id,
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "outbox ack"),
                }
                for id in d.sent.iter().filter(|id| !acked.contains(id)) {
                    self.fail(*id, now);
                }
                self.next_batch(d.peer);
            }
            Err(e) => {
                if !d.sent.is_empty() {
                    tracing::debug!(peer = %d.peer, error = %e, "dtn batch failed");
                    self.stats.failed_batches += 1;
                }
                // The rest queued for this peer would fail the same way.
                let rest = self.queues.remove(&d.peer).unwrap_or_default();
                for id in d.sent.iter().copied().chain(rest.iter().map(|i| i.id)) {
                    self.fail(id, now);
                }
            }
        }
    }

    fn read_inbound(&mut self, peer: PeerId, mut stream: libp2p::Stream) {
        if self.inbound_active >= MAX_INBOUND {
            self.stats.refused += 1;
            return;
        }
        self.inbound_active += 1;
        let tx = self.inbound_tx.clone();
        let max = self.cfg.limits.max_payload;
        let timeout = self.clock.real(self.cfg.stream_timeout);
        tokio::spawn(async move {
            let result = tokio::time::timeout(timeout, link::read_batch(&mut stream, max))
                .await
                .unwrap_or(Err(LinkError::Timeout));
            let _ = tx
                .send(Inbound {
                    peer,
                    stream,
                    result,
                })
                .await;
        });
    }

    fn on_inbound(&mut self, i: Inbound) {
        self.inbound_active = self.inbound_active.saturating_sub(1);
        let Inbound {
            peer,
            stream,
            result,
        } = i;
        let items = match result {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "dtn batch refused");
                self.stats.refused += 1;
                return;
            }
        };
        let now = self.clock.now();
        if items.is_empty() {
            self.stats.hellos += 1;
        }
        let ids: Vec<Id> = items.iter().map(|i| i.id).collect();
        let recorded = match self.inbox.recorded(&peer, &ids) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "inbox read");
                return;
            }
        };
        let mut duplicates = Vec::new();
        let mut waiting = Vec::new();
        for (it, seen) in items.into_iter().zip(recorded) {
            let id = it.id;
            if seen {
                self.stats.duplicates += 1;
                duplicates.push(id);
                continue;
            }
            // Handed already (an earlier copy still with the application, or twice in this
            // batch): its answer acknowledges it; this copy waits for nothing.
            if !self.handed.insert((peer, id)) {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let d = Delivered {
                from: peer,
                id,
                protocol: it.protocol,
                op: it.op,
                resource: it.resource,
                payload: it.payload,
                receipt: Receipt(Some(tx)),
            };
            if self.deliver.try_send(d).is_ok() {
                waiting.push((id, rx));
            } else {
                // The application is behind: not acknowledged, delivered again later.
                self.handed.remove(&(peer, id));
            }
        }
        // The peer reached us: what we hold for it goes now.
        self.outbox.wake(&peer, now);
        self.flush();
        // The answers come in the application's time; the loop goes on meanwhile.
        let tx = self.answered_tx.clone();
        tokio::spawn(async move {
            let mut applied = Vec::with_capacity(waiting.len());
            let mut dropped = Vec::new();
            for (id, rx) in waiting {
                match rx.await {
                    Ok(()) => applied.push(id),
                    Err(_) => dropped.push(id),
                }
            }
            let _ = tx
                .send(Answered {
                    peer,
                    stream,
                    applied,
                    dropped,
                    duplicates,
                })
                .await;
        });
    }

    /// The application answered for a batch: record what it applied (one transaction), then
    /// acknowledge that and the batch's duplicates.
    fn on_answered(&mut self, a: Answered) {
        let Answered {
            peer,
            mut stream,
            applied,
            dropped,
            mut duplicates,
        } = a;
        for id in applied.iter().chain(&dropped) {
            self.handed.remove(&(peer, *id));
        }
        self.stats.not_applied += dropped.len() as u64;
        if !applied.is_empty() {
            if let Err(e) = self.inbox.accept_all(&peer, &applied, self.clock.now()) {
                // Applied but not recorded: not acknowledged, so delivered again (and found
                // a duplicate by the application's own rules).
                tracing::warn!(error = %e, "inbox write");
                return;
            }
            self.stats.delivered += applied.len() as u64;
        }
        duplicates.extend(applied);
        let timeout = self.clock.real(self.cfg.stream_timeout);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(timeout, link::write_ack(&mut stream, &duplicates)).await;
            let _ = futures::AsyncWriteExt::close(&mut stream).await;
        });
    }
}
