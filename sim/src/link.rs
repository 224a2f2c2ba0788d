//! The link model: an in-process byte-stream `Transport` with per-link latency, loss, slow
//! nodes, partitions, crashes and byte counters. Every simulated node (honest sidecar or
//! hostile swarm) gets its own [`Endpoint`] and wraps it in the real pnet + Noise + Yamux
//! stack (`garden_sidecar::net::transport::secure`), so what crosses a link is exactly what
//! would cross a TCP socket.
//!
//! * **Latency** is given in protocol time and converted with the simulation's clock speed.
//!   Each node has an access delay (half the default RTT, or the slow one); a link's one-way
//!   delay is the sum of both ends' halves. Tokio's timers resolve 1 ms of real time, so at
//!   speed `S` a delay rounds up to `S` ms of protocol time; the DHT-lookup scenario runs at
//!   speed 1 where the 100 ms RTT is exact.
//! * **Loss** on a reliable stream is a retransmission: with probability `1 − (1 − p)^packets`
//!   a write is delivered one retransmission timeout late (`max(200 ms, RTT)` + RTT). Order is
//!   preserved (a later write is never delivered before an earlier one).
//! * **Partitions** refuse dials between the two sides and reset the links that cross.
//! * **Crashes**: `Crash::Stop` lets the node's connections close as a killed process's kernel
//!   would (the peers read EOF); `Crash::Silent` drops everything the node's peers send and never
//!   delivers an EOF (a host that vanished), so peers only learn through timeouts.
//! * **Bytes** are counted per node at the link, both directions, every protocol together
//!   (pnet, Noise and Yamux framing included, as a socket would see them).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{ready, Ready};
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::{multiaddr::Protocol, Multiaddr, Transport};
use rand::{rngs::StdRng, Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

/// Bytes of one simulated packet (a TCP segment's payload).
const MSS: usize = 1460;
/// Minimum retransmission timeout (Linux's `TCP_RTO_MIN`).
const MIN_RTO: Duration = Duration::from_millis(200);

/// How links behave, in protocol time.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Round-trip time between two normal nodes.
    pub rtt: Duration,
    /// Round-trip time between two slow nodes (a slow-to-normal link is the mean).
    pub slow_rtt: Duration,
    /// Packet loss probability.
    pub loss: f64,
    /// Protocol milliseconds per real millisecond (the clock's speed).
    pub speed: u32,
}

/// Per-node counters and flags, shared by every link of the node.
#[derive(Debug, Default)]
pub struct NodeLinks {
    /// Bytes this node wrote to its links.
    pub sent: AtomicU64,
    /// Bytes this node's peers wrote to it (counted whether or not it read them).
    pub received: AtomicU64,
    /// The node has a high access delay.
    pub slow: AtomicBool,
    /// Everything sent to the node is dropped and its links never close (silent crash).
    pub dark: AtomicBool,
    /// Partition side (links between different sides are refused and reset).
    pub side: AtomicU64,
}

impl NodeLinks {
    /// Bytes in both directions so far.
    pub fn total(&self) -> u64 {
        self.sent.load(Ordering::Relaxed) + self.received.load(Ordering::Relaxed)
    }
}

/// How a node goes down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Crash {
    /// The process dies; its kernel closes the connections (peers read EOF).
    Stop,
    /// The host vanishes: no EOF, no answer, peers learn through timeouts.
    Silent,
}

enum Frame {
    Data(Vec<u8>, Instant),
    Reset,
}

struct LinkControl {
    a: usize,
    b: usize,
    /// Senders into each end (weak: the link closes normally when its ends drop).
    to_a: mpsc::WeakUnboundedSender<Frame>,
    to_b: mpsc::WeakUnboundedSender<Frame>,
    cut: Arc<AtomicBool>,
}

/// Where a listener's new inbound links go (with the dialler's address).
type Inbound = mpsc::UnboundedSender<(Link, Multiaddr)>;

struct Hub {
    shape: Shape,
    nodes: Vec<Arc<NodeLinks>>,
    /// Listening port → (node, endpoint generation, where new inbound links go).
    listeners: HashMap<u64, (usize, u64, Inbound)>,
    generation: u64,
    links: Vec<LinkControl>,
    next_port: u64,
    rng: StdRng,
}

/// The simulated network: owns the listeners, the live links and the per-node counters.
#[derive(Clone)]
pub struct Net(Arc<Mutex<Hub>>);

impl Net {
    pub fn new(shape: Shape, seed: u64) -> Self {
        Net(Arc::new(Mutex::new(Hub {
            shape,
            nodes: Vec::new(),
            listeners: HashMap::new(),
            links: Vec::new(),
            next_port: 1,
            generation: 0,
            rng: StdRng::seed_from_u64(seed),
        })))
    }

    fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a node and returns its index (stable across restarts: pass it again to
    /// [`Net::endpoint`]).
    pub fn add_node(&self, slow: bool) -> usize {
        let mut h = self.hub();
        let n = NodeLinks::default();
        n.slow.store(slow, Ordering::Relaxed);
        h.nodes.push(Arc::new(n));
        h.nodes.len() - 1
    }

    /// The counters and flags of node `i`.
    pub fn node(&self, i: usize) -> Arc<NodeLinks> {
        self.hub().nodes[i].clone()
    }

    /// A transport for node `i` (each incarnation of the node gets a new one).
    pub fn endpoint(&self, i: usize) -> Endpoint {
        let generation = {
            let mut h = self.hub();
            h.nodes[i].dark.store(false, Ordering::Relaxed);
            h.generation += 1;
            h.generation
        };
        Endpoint {
            net: self.clone(),
            node: i,
            generation,
            listeners: VecDeque::new(),
        }
    }

    /// Node `i`'s listen address: a node keeps its address across restarts, as a host keeps
    /// its IP and port.
    pub fn addr(i: usize) -> Multiaddr {
        Multiaddr::empty().with(Protocol::Memory(i as u64 + 1))
    }

    /// Takes node `i` down the given way (call before stopping its process).
    pub fn crash(&self, i: usize, how: Crash) {
        let mut h = self.hub();
        h.listeners.retain(|_, (n, _, _)| *n != i);
        match how {
            Crash::Stop => {}
            Crash::Silent => {
                h.nodes[i].dark.store(true, Ordering::Relaxed);
                for l in h.links.iter().filter(|l| l.a == i || l.b == i) {
                    l.cut.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// Puts each node on side `side_of(i)`: links across sides are reset, dials refused.
    pub fn partition(&self, side_of: impl Fn(usize) -> u64) {
        let mut h = self.hub();
        for (i, n) in h.nodes.iter().enumerate() {
            n.side.store(side_of(i), Ordering::Relaxed);
        }
        let sides: Vec<u64> = h
            .nodes
            .iter()
            .map(|n| n.side.load(Ordering::Relaxed))
            .collect();
        h.links.retain(|l| {
            if sides[l.a] == sides[l.b] {
                return true;
            }
            l.cut.store(true, Ordering::Relaxed);
            for tx in [&l.to_a, &l.to_b] {
                if let Some(tx) = tx.upgrade() {
                    let _ = tx.send(Frame::Reset);
                }
            }
            false
        });
    }

    /// Ends every partition.
    pub fn heal(&self) {
        self.partition(|_| 0);
    }

    /// Live links (for reports).
    pub fn link_count(&self) -> usize {
        let mut h = self.hub();
        h.links
            .retain(|l| l.to_a.strong_count() > 0 || l.to_b.strong_count() > 0);
        h.links.len()
    }

    /// Opens a link from node `from` to the listener on `port`.
    fn connect(&self, from: usize, port: u64) -> io::Result<Link> {
        let mut h = self.hub();
        let Some((to, _, inbound)) = h.listeners.get(&port).cloned() else {
            return Err(io::ErrorKind::ConnectionRefused.into());
        };
        let (na, nb) = (h.nodes[from].clone(), h.nodes[to].clone());
        if na.side.load(Ordering::Relaxed) != nb.side.load(Ordering::Relaxed)
            || na.dark.load(Ordering::Relaxed)
            || nb.dark.load(Ordering::Relaxed)
        {
            return Err(io::ErrorKind::ConnectionRefused.into());
        }
        let half = |n: &NodeLinks, s: &Shape| {
            if n.slow.load(Ordering::Relaxed) {
                s.slow_rtt / 4
            } else {
                s.rtt / 4
            }
        };
        let shape = &h.shape;
        let one_way = half(&na, shape) + half(&nb, shape);
        let link_shape = LinkShape {
            one_way: one_way / shape.speed,
            rto: (MIN_RTO.max(one_way * 2) + one_way * 2) / shape.speed,
            loss: shape.loss,
        };
        let seed = h.rng.gen();
        let (tx_a, rx_a) = mpsc::unbounded_channel();
        let (tx_b, rx_b) = mpsc::unbounded_channel();
        let cut = Arc::new(AtomicBool::new(false));
        h.links.push(LinkControl {
            a: from,
            b: to,
            to_a: tx_a.downgrade(),
            to_b: tx_b.downgrade(),
            cut: cut.clone(),
        });
        let next_port = h.next_port;
        h.next_port += 1;
        let a = Link::new(tx_b, rx_a, na.clone(), nb.clone(), &link_shape, seed, &cut);
        let b = Link::new(tx_a, rx_b, nb, na, &link_shape, seed ^ 1, &cut);
        drop(h);
        // The dialler's ephemeral port, as a socket's remote address would be.
        let from_addr = Multiaddr::empty().with(Protocol::Memory(1_000_000_000 + next_port));
        inbound
            .send((b, from_addr))
            .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
        Ok(a)
    }
}

#[derive(Clone, Debug)]
struct LinkShape {
    one_way: Duration,
    rto: Duration,
    loss: f64,
}

/// One end of a link: a reliable, ordered byte stream with delay.
pub struct Link {
    tx: Option<mpsc::UnboundedSender<Frame>>,
    rx: mpsc::UnboundedReceiver<Frame>,
    /// A chunk received and due, partly read.
    current: Option<(Vec<u8>, usize)>,
    /// A chunk received but not yet due.
    head: Option<(Vec<u8>, Instant)>,
    sleep: Option<Pin<Box<Sleep>>>,
    me: Arc<NodeLinks>,
    peer: Arc<NodeLinks>,
    shape: LinkShape,
    rng: StdRng,
    last_due: Instant,
    cut: Arc<AtomicBool>,
}

impl Link {
    fn new(
        tx: mpsc::UnboundedSender<Frame>,
        rx: mpsc::UnboundedReceiver<Frame>,
        me: Arc<NodeLinks>,
        peer: Arc<NodeLinks>,
        shape: &LinkShape,
        seed: u64,
        cut: &Arc<AtomicBool>,
    ) -> Self {
        Link {
            tx: Some(tx),
            rx,
            current: None,
            head: None,
            sleep: None,
            me,
            peer,
            shape: shape.clone(),
            rng: StdRng::seed_from_u64(seed),
            last_due: Instant::now(),
            cut: cut.clone(),
        }
    }

    fn reset() -> io::Error {
        io::ErrorKind::ConnectionReset.into()
    }

    /// When a write of `len` bytes made now is delivered.
    fn due(&mut self, len: usize) -> Instant {
        let mut d = self.shape.one_way;
        if self.shape.loss > 0.0 {
            let packets = len.div_ceil(MSS).max(1) as i32;
            let p_any = 1.0 - (1.0 - self.shape.loss).powi(packets);
            if self.rng.gen_bool(p_any.clamp(0.0, 1.0)) {
                d += self.shape.rto;
            }
        }
        let due = (Instant::now() + d).max(self.last_due);
        self.last_due = due;
        due
    }
}

impl futures::AsyncWrite for Link {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.me.dark.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(buf.len()));
        }
        if self.cut.load(Ordering::Relaxed) && !self.peer.dark.load(Ordering::Relaxed) {
            return Poll::Ready(Err(Self::reset()));
        }
        self.me.sent.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.peer
            .received
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        if self.peer.dark.load(Ordering::Relaxed) {
            // The host vanished: bytes leave and are never answered.
            return Poll::Ready(Ok(buf.len()));
        }
        let due = self.due(buf.len());
        match &self.tx {
            Some(tx) if tx.send(Frame::Data(buf.to_vec(), due)).is_ok() => {
                Poll::Ready(Ok(buf.len()))
            }
            _ => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.me.dark.load(Ordering::Relaxed) {
            self.tx = None;
        }
        Poll::Ready(Ok(()))
    }
}

impl futures::AsyncRead for Link {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            if this.peer.dark.load(Ordering::Relaxed) || this.me.dark.load(Ordering::Relaxed) {
                // Nothing ever arrives from (or reaches) a vanished host, not even an EOF.
                return Poll::Pending;
            }
            if this.cut.load(Ordering::Relaxed) {
                return Poll::Ready(Err(Self::reset()));
            }
            if let Some((chunk, off)) = &mut this.current {
                let n = buf.len().min(chunk.len() - *off);
                buf[..n].copy_from_slice(&chunk[*off..*off + n]);
                *off += n;
                if *off == chunk.len() {
                    this.current = None;
                }
                return Poll::Ready(Ok(n));
            }
            if let Some((_, due)) = &this.head {
                if *due > Instant::now() {
                    let due = *due;
                    let sleep = this
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                    if sleep.deadline() != due {
                        sleep.as_mut().reset(due);
                    }
                    match sleep.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(()) => {}
                    }
                }
                let (chunk, _) = this.head.take().expect("head checked above");
                this.current = Some((chunk, 0));
                continue;
            }
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(Frame::Data(chunk, due))) => this.head = Some((chunk, due)),
                Poll::Ready(Some(Frame::Reset)) => return Poll::Ready(Err(Self::reset())),
                Poll::Ready(None) => return Poll::Ready(Ok(0)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A node's transport on the simulated network (`/memory/<port>` addresses).
pub struct Endpoint {
    net: Net,
    node: usize,
    generation: u64,
    listeners: VecDeque<Listening>,
}

struct Listening {
    id: ListenerId,
    port: u64,
    announced: bool,
    rx: mpsc::UnboundedReceiver<(Link, Multiaddr)>,
}

impl Endpoint {
    fn unregister(&self, port: u64) {
        let mut h = self.net.hub();
        if h.listeners
            .get(&port)
            .is_some_and(|(_, g, _)| *g == self.generation)
        {
            h.listeners.remove(&port);
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for l in &self.listeners {
            self.unregister(l.port);
        }
    }
}

fn memory_port(addr: &Multiaddr) -> Option<u64> {
    match addr.iter().next() {
        Some(Protocol::Memory(p)) => Some(p),
        _ => None,
    }
}

impl Transport for Endpoint {
    type Output = Link;
    type Error = io::Error;
    type ListenerUpgrade = Ready<io::Result<Link>>;
    type Dial = Ready<io::Result<Link>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let Some(requested) = memory_port(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let port = match requested {
            0 => self.node as u64 + 1,
            p => p,
        };
        {
            let mut h = self.net.hub();
            if h.listeners
                .get(&port)
                .is_some_and(|(n, _, _)| *n != self.node)
            {
                return Err(TransportError::Other(io::ErrorKind::AddrInUse.into()));
            }
            h.listeners.insert(port, (self.node, self.generation, tx));
        }
        self.listeners.push_back(Listening {
            id,
            port,
            announced: false,
            rx,
        });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(i) = self.listeners.iter().position(|l| l.id == id) else {
            return false;
        };
        let l = self.listeners.remove(i).expect("index found");
        self.unregister(l.port);
        true
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Some(port) = memory_port(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        Ok(ready(self.net.connect(self.node, port)))
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        for l in self.listeners.iter_mut() {
            let local_addr = Multiaddr::empty().with(Protocol::Memory(l.port));
            if !l.announced {
                l.announced = true;
                return Poll::Ready(TransportEvent::NewAddress {
                    listener_id: l.id,
                    listen_addr: local_addr,
                });
            }
            if let Poll::Ready(Some((link, from))) = l.rx.poll_recv(cx) {
                return Poll::Ready(TransportEvent::Incoming {
                    listener_id: l.id,
                    upgrade: ready(Ok(link)),
                    local_addr,
                    send_back_addr: from,
                });
            }
        }
        Poll::Pending
    }
}
