//! A scripted contact plan on loopback: a TCP proxy placed between sidecars that follows a
//! plan of up and down windows, cuts every connection it carries when a window ends, refuses
//! new ones while the link is down, and can delay each direction.
//!
//! Network namespaces (and `tc`) cannot be assumed on the machines that run the tests, so the
//! proxy is the link: a site whose `network.announce` is a route of a [`Contact`] is reached
//! only through it (identify and its records tell peers nothing else), and the test routes
//! both ends of a link (each site's announced address) through the same `Contact`, so the
//! link is cut in both directions at once. What is cut is the TCP connection: both sides see
//! it close (libp2p then closes the connection: streams in flight fail), and a dial while the
//! link is down is accepted and closed at once (the upgrade fails, like a peer that answers
//! nothing useful).
//!
//! The plan runs on real time (`Instant`): sidecar processes run on the system clock. Shared
//! by the tests (`mod common`) and the figures' harnesses (`#[path]` from `examples/`).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// Bytes read from one side before they are passed on (one chunk).
const CHUNK: usize = 64 * 1024;
/// Chunks in flight per direction when a delay holds them.
const IN_FLIGHT: usize = 256;
/// How long the proxy waits for the site behind a route to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// When the link is up, relative to the start of the [`Contact`], and its one-way delay.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Up windows `[open, close)`, sorted, not overlapping. Outside them the link is down.
    pub windows: Vec<(Duration, Duration)>,
    /// Added to every chunk, each direction.
    pub delay: Duration,
}

impl Plan {
    /// Up for ever from the start.
    pub fn always_up() -> Plan {
        Plan {
            windows: vec![(Duration::ZERO, Duration::MAX)],
            delay: Duration::ZERO,
        }
    }

    /// Down for ever (until [`Contact::set_up`]).
    pub fn down() -> Plan {
        Plan::default()
    }

    /// `count` windows of `up`, each after `down` of silence; the first opens at `first`.
    pub fn periodic(first: Duration, up: Duration, down: Duration, count: usize) -> Plan {
        let windows = (0..count)
            .map(|i| {
                let open = first + (up + down) * i as u32;
                (open, open + up)
            })
            .collect();
        Plan {
            windows,
            delay: Duration::ZERO,
        }
    }

    pub fn with_delay(mut self, delay: Duration) -> Plan {
        self.delay = delay;
        self
    }

    /// Whether the link is up `t` after the start.
    pub fn is_up(&self, t: Duration) -> bool {
        self.windows.iter().any(|&(o, c)| o <= t && t < c)
    }

    /// The next instant after `t` at which the link changes, if any.
    fn next_change(&self, t: Duration) -> Option<Duration> {
        self.windows
            .iter()
            .flat_map(|&(o, c)| [o, c])
            .filter(|&x| x > t && x != Duration::MAX)
            .min()
    }
}

/// Counters of a [`Contact`].
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections carried (accepted while up, the site behind reached).
    pub carried: AtomicU64,
    /// Connections refused because the link was down.
    pub refused: AtomicU64,
    /// Connections refused because the site behind the route did not accept (it is down).
    pub unreachable: AtomicU64,
    /// Connections cut when a window closed.
    pub cut: AtomicU64,
    /// Bytes carried, both directions.
    pub bytes: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub carried: u64,
    pub refused: u64,
    pub unreachable: u64,
    pub cut: u64,
    pub bytes: u64,
}

struct Shared {
    start: Instant,
    delay: Duration,
    up: watch::Sender<bool>,
    /// When each window opened (real instants), for the figures.
    opened: Mutex<Vec<Instant>>,
    counters: Counters,
}

impl Shared {
    fn set(&self, up: bool) {
        let changed = self.up.send_if_modified(|s| std::mem::replace(s, up) != up);
        if changed && up {
            self.opened.lock().unwrap().push(Instant::now());
        }
    }
}

/// A link following a [`Plan`]: each [`Contact::route`] is a loopback listener forwarding to
/// one site while the link is up. Dropping it stops the plan, the listeners and every
/// connection.
pub struct Contact {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Contact {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Cuts what is carried: every connection task watches this.
        self.shared.set(false);
    }
}

impl Contact {
    /// Starts the plan now (real time).
    pub fn start(plan: Plan) -> Contact {
        let start = Instant::now();
        let (up, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            start,
            delay: plan.delay,
            up,
            opened: Mutex::new(Vec::new()),
            counters: Counters::default(),
        });
        shared.set(plan.is_up(Duration::ZERO));
        let s = shared.clone();
        let driver = tokio::spawn(async move {
            let mut t = Duration::ZERO;
            while let Some(next) = plan.next_change(t) {
                tokio::time::sleep_until((s.start + next).into()).await;
                s.set(plan.is_up(next));
                t = next;
            }
        });
        Contact {
            shared,
            tasks: vec![driver],
        }
    }

    /// A route to `target`: a listener on a free loopback port (returned) that forwards to
    /// `target` while the link is up.
    pub async fn route(&mut self, target: SocketAddr) -> SocketAddr {
        self.route_on(0, target).await
    }

    /// [`Contact::route`] on a given port (0: any free one).
    pub async fn route_on(&mut self, port: u16, target: SocketAddr) -> SocketAddr {
        let l = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("a loopback port for the contact proxy");
        let addr = l.local_addr().unwrap();
        let s = self.shared.clone();
        self.tasks.push(tokio::spawn(async move {
            loop {
                let Ok((client, _)) = l.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(carry(s, client, target));
            }
        }));
        addr
    }

    /// Forces the link up or down now (a plan's later changes still apply).
    pub fn set_up(&self, up: bool) {
        self.shared.set(up);
    }

    pub fn is_up(&self) -> bool {
        *self.shared.up.borrow()
    }

    /// When the plan started.
    pub fn started(&self) -> Instant {
        self.shared.start
    }

    /// The instants at which the link came up, in order.
    pub fn opened(&self) -> Vec<Instant> {
        self.shared.opened.lock().unwrap().clone()
    }

    pub fn figures(&self) -> Figures {
        let c = &self.shared.counters;
        Figures {
            carried: c.carried.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            unreachable: c.unreachable.load(Ordering::Relaxed),
            cut: c.cut.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
        }
    }
}

/// One accepted connection: refused while down, else carried to `target` until the link goes
/// down (then both sides are closed) or both directions ended.
async fn carry(s: Arc<Shared>, client: TcpStream, target: SocketAddr) {
    let mut up = s.up.subscribe();
    if !*up.borrow_and_update() {
        s.counters.refused.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(c)) => c,
        _ => {
            s.counters.unreachable.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    s.counters.carried.fetch_add(1, Ordering::Relaxed);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let both = async {
        tokio::join!(
            pipe(cr, sw, s.delay, &s.counters.bytes),
            pipe(sr, cw, s.delay, &s.counters.bytes)
        )
    };
    let down = async {
        while up.changed().await.is_ok() {
            if !*up.borrow_and_update() {
                return;
            }
        }
    };
    tokio::select! {
        _ = both => {}
        _ = down => {
            s.counters.cut.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Dropping the halves closes both sockets.
}

/// Copies `from` to `to`, each chunk held `delay`; on end of input, shuts `to` down.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    bytes: &AtomicU64,
) {
    if delay.is_zero() {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    bytes.fetch_add(n as u64, Ordering::Relaxed);
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = to.shutdown().await;
        return;
    }
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let read = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let write = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at.into()).await;
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
