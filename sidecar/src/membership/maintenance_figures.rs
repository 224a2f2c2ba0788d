//! Figures for docs/PERFORMANCE.md (a harness that prints them; its only assertions are the
//! outcomes: no false suspicion, an unplanned absence detected). Run:
//!
//! ```text
//! cargo test -p garden-sidecar --release --lib maintenance_figures -- --ignored --nocapture
//! ```
//!
//! The node's [`Pool`] and three indexers' [`Registry`]s run in memory with an explicit clock
//! ticking every second, as `flow_tests` wires them, with what the event loop adds around
//! them: the record re-signed every `republish_interval` (600 s) and, for a profile with
//! planned cuts, a minute before each ([`Profile::refresh_due`]); a DHT publication (the
//! signed `/node/` record to `k = 8` servers) only while in contact. Bytes are what the node
//! sends, at the application layer: each heartbeat's frame as the wire carries it (varint
//! length + signed message), each batch of offline heartbeats, each DHT record value with its
//! key (Kademlia, Noise and Yamux framing excluded, on both sides of the comparison: the Go
//! figure is its 1 094-byte JSON heartbeat every 20 s, docs/PERFORMANCE.md *Heartbeats*).
//!
//! Suspicions: the node suspecting one of its indexers ([`Pool::is_suspected`], each
//! transition counted), and an indexer dropping the node's session
//! ([`Registry::on_tick`]), at any time of the run — the node keeps its plan throughout, so
//! every one would be false. Then the node goes silent beyond its plan (a crash): the
//! indexers must drop its session, and the delay is printed.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

use crate::config::Role;
use crate::discovery::publish::{own_records, Presence};
use crate::discovery::record::Links;
use crate::keys::NodeIdentity;
use crate::membership::heartbeat::{SignedHeartbeat, Signer};
use crate::membership::indexer::{self, Registry};
use crate::membership::node::{Action, Config, Pool};
use crate::membership::probe::Measurement;
use crate::membership::profile::Profile;
use crate::membership::testutil::key;
use crate::membership::{PeerInfo, Timestamp};

const T0: u64 = 1_800_000_000_000;
/// Go: one JSON heartbeat of 1 094 bytes every 20 s, to each indexer.
const GO_HEARTBEAT: u64 = 1_094;
const K: u64 = 8;
const REPUBLISH: u64 = 600;
const INTERVAL: u64 = 20;
/// The echo of an admission probe: the mean payload and its framing.
const PROBE_ECHO: u64 = 1_280 + 4;
/// What a probe over a 600 ms satellite link measures (docs: a healthy node scores ~90).
const SATELLITE_LINK: Measurement = Measurement {
    ok: true,
    bandwidth: 0.8,
    latency: 0.85,
};

fn at(secs: u64) -> Timestamp {
    Timestamp::from_millis(T0 + secs * 1000)
}

fn addr(n: u8) -> Multiaddr {
    format!("/ip4/10.9.{n}.1/tcp/4001")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Default, Debug)]
struct Figures {
    seconds: u64,
    heartbeats: u64,
    full_heartbeats: u64,
    heartbeat_bytes: u64,
    offline_batches: u64,
    offline_bytes: u64,
    offline_beats: u64,
    offline_credited: u64,
    dht_puts: u64,
    dht_bytes: u64,
    probes: u64,
    probe_bytes: u64,
    node_suspicions: u64,
    sessions_dropped: u64,
    refusals: u64,
    record_bytes: usize,
}

impl Figures {
    fn per_hour(&self, bytes: u64) -> f64 {
        bytes as f64 * 3600.0 / self.seconds as f64
    }
}

struct Run {
    identity: NodeIdentity,
    presence: Presence,
    pool: Pool,
    node: PeerId,
    indexers: Vec<(PeerId, Registry)>,
    profile: Profile,
    last_published: Timestamp,
    f: Figures,
    suspected: Vec<bool>,
}

impl Run {
    fn new(profile: Profile) -> Run {
        let identity = NodeIdentity::generate();
        let node = identity.peer_id();
        let ttl = profile.record_ttl(Duration::from_secs(1800), Duration::from_secs(300));
        let presence = Presence {
            role: Role::Node,
            name: "field-unit-17".into(),
            ttl,
            location: None,
            indexer_capacity: 0,
            born_at: at(0),
            links: Links {
                profile: (profile != Profile::Continuous).then_some(profile),
                ..Links::default()
            },
        };
        let mut indexers = Vec::new();
        let cfg = Config::new()
            .with_rng_seed(2)
            .with_profile(profile)
            .with_interval(Duration::from_secs(INTERVAL));
        let mut pool = Pool::new(cfg, Signer::from_libp2p(identity.ed25519()), at(0));
        pool.set_did(identity.did());
        pool.set_name("field-unit-17");
        for i in 0..3u8 {
            let (_, p) = key(60 + i);
            let rc = indexer::Config::new().with_rng_seed(u64::from(i));
            indexers.push((p, Registry::new(rc, p, at(0))));
            pool.add_indexer(at(0), PeerInfo::new(p, vec![addr(60 + i)]));
        }
        let mut r = Run {
            identity,
            presence,
            pool,
            node,
            indexers,
            profile,
            last_published: at(0),
            f: Figures::default(),
            suspected: vec![false; 3],
        };
        r.publish(0);
        r
    }

    /// The event loop's publication: re-sign, hand the record to the pool, put it to the DHT
    /// when in contact.
    fn publish(&mut self, t: u64) {
        let now = at(t);
        let records = own_records(&self.identity, &self.presence, &[addr(1)], 0, now);
        let Some(node) = records.first() else {
            return;
        };
        self.f.record_bytes = node.value.len();
        self.pool
            .set_record(node.value.clone(), now.plus(self.presence.ttl));
        self.last_published = now;
        if self.profile.in_contact(now) {
            self.f.dht_puts += K;
            self.f.dht_bytes += K * (node.key.len() + node.value.len()) as u64;
        }
    }

    fn tick(&mut self, t: u64) {
        let now = at(t);
        if t.is_multiple_of(REPUBLISH)
            || self
                .profile
                .refresh_due(now, self.last_published, Duration::from_secs(60))
        {
            self.publish(t);
        }
        let actions = self.pool.on_tick(now);
        self.handle(t, actions);

        if t.is_multiple_of(30) {
            for (_, reg) in &mut self.indexers {
                if reg.on_tick(now).contains(&self.node) {
                    self.f.sessions_dropped += 1;
                }
            }
        }
        for (i, (p, _)) in self.indexers.iter().enumerate() {
            let s = self.pool.is_suspected(p);
            if s && !self.suspected[i] {
                self.f.node_suspicions += 1;
            }
            self.suspected[i] = s;
        }
        let _ = self.pool.take_events();
    }

    fn handle(&mut self, t: u64, actions: Vec<Action>) {
        let now = at(t);
        for a in actions {
            match a {
                Action::SendHeartbeat { peer, request, .. } => {
                    let bytes = request.to_bytes();
                    // The frame: varint length + message.
                    let frame = bytes.len() + varint_len(bytes.len());
                    self.f.heartbeats += 1;
                    self.f.heartbeat_bytes += frame as u64;
                    if frame > 200 {
                        self.f.full_heartbeats += 1;
                    }
                    let signed = SignedHeartbeat::from_bytes(&bytes)
                        .unwrap_or_else(|e| panic!("our heartbeat decodes: {e:?}"));
                    let node = self.node;
                    let Some((_, reg)) = self.indexers.iter_mut().find(|(p, _)| *p == peer) else {
                        continue;
                    };
                    let more = match reg.on_heartbeat(now, node, &[addr(1)], &signed) {
                        Ok(acc) => {
                            if acc.probe {
                                // The node echoes the indexer's probe payload (512 to 2 047
                                // bytes, 1 280 on average); a satellite link's figures.
                                self.f.probes += 1;
                                self.f.probe_bytes += PROBE_ECHO;
                                reg.on_probe(&node, SATELLITE_LINK);
                            }
                            self.pool.on_response(
                                now,
                                peer,
                                &acc.response,
                                Duration::from_millis(600),
                            )
                        }
                        Err(_) => {
                            self.f.refusals += 1;
                            self.pool.on_failure(now, peer)
                        }
                    };
                    self.handle(t, more);
                }
                Action::SubmitOffline { peer, batches } => {
                    let node = self.node;
                    let Some((_, reg)) = self.indexers.iter_mut().find(|(p, _)| *p == peer) else {
                        continue;
                    };
                    for b in &batches {
                        self.f.offline_batches += 1;
                        self.f.offline_beats += b.beats.len() as u64;
                        self.f.offline_bytes += b.encode().len() as u64;
                        if reg
                            .on_offline_beats(now, node, b, Duration::from_secs(60))
                            .is_ok()
                        {
                            self.f.offline_credited += b.beats.len() as u64;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Runs `[from, to)` seconds.
    fn run(&mut self, from: u64, to: u64) {
        for t in from..to {
            self.tick(t);
        }
    }

    /// The node is gone (no more ticks); the indexers alone, until every one dropped its
    /// session. Seconds after the node's last heartbeat, or `None` within `limit`.
    fn silence(&mut self, from: u64, limit: u64) -> Option<u64> {
        for t in from..from + limit {
            let mut left = 0;
            for (_, reg) in &mut self.indexers {
                reg.on_tick(at(t));
                left += usize::from(reg.has_session(&self.node));
            }
            if left == 0 {
                return Some(t - from);
            }
        }
        None
    }
}

fn varint_len(n: usize) -> usize {
    let mut n = n as u64;
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn row(what: &str, r: &Run, per_indexer: bool) {
    let f = &r.f;
    let n = if per_indexer { 3.0 } else { 1.0 };
    let hb = f.per_hour(f.heartbeat_bytes) / n;
    let off = f.per_hour(f.offline_bytes) / n;
    let probe = f.per_hour(f.probe_bytes) / n;
    let dht = f.per_hour(f.dht_bytes);
    println!(
        "{what:<48} per indexer: {:>5.0} heartbeats/h ({:>3.0} full) {:>7.0} B/h, offline batches {:>6.0} B/h, probe echoes {:>6.0} B/h | DHT puts {:>7.0} B/h | all, 3 indexers: {:>7.0} B/h",
        f.heartbeats as f64 * 3600.0 / f.seconds as f64 / n,
        f.full_heartbeats as f64 * 3600.0 / f.seconds as f64 / n,
        hb,
        off,
        probe,
        dht,
        3.0 * (hb + off + probe) + dht,
    );
}

#[test]
#[ignore = "figures: cargo test --release --lib maintenance_figures -- --ignored --nocapture"]
fn maintenance_figures() {
    // Continuous: one hour after a warm-up hour.
    let mut c = Run::new(Profile::Continuous);
    c.run(0, 3600);
    c.f = Figures {
        record_bytes: c.f.record_bytes,
        ..Figures::default()
    };
    c.run(3600, 7200);
    c.f.seconds = 3600;
    // Orbital: a 90-minute orbit with a 10-minute pass, 100 passes.
    let (period, window) = (90 * 60u64, 10 * 60u64);
    let orbital = Profile::Orbital {
        period_ms: period * 1000,
        window_ms: window * 1000,
        epoch_ms: T0,
    };
    let passes = 100u64;
    let mut o = Run::new(orbital);
    o.run(0, passes * period);
    o.f.seconds = passes * period;
    let gone = o.silence(passes * period, 6 * 3600);

    println!(
        "signed /node/ record: {} B continuous, {} B orbital (profile inside); k = {K} DHT servers",
        c.f.record_bytes, o.f.record_bytes
    );
    println!(
        "Go: {GO_HEARTBEAT} B JSON heartbeat every {INTERVAL} s = {} B/h per indexer (records not counted)",
        GO_HEARTBEAT * 3600 / INTERVAL
    );
    row("continuous (20 s heartbeats, 3 indexers)", &c, true);
    row(
        &format!(
            "orbital ({} min orbit, {} min pass, {passes} passes)",
            period / 60,
            window / 60
        ),
        &o,
        true,
    );
    println!(
        "orbital: {} offline batches of {} signed beats ({:.0} B each), {} credited; false suspicions: node → indexers {}, indexers → node {} (sessions dropped), admission refusals {}",
        o.f.offline_batches,
        o.f.offline_beats,
        o.f.offline_bytes as f64 / o.f.offline_beats.max(1) as f64,
        o.f.offline_credited,
        o.f.node_suspicions, o.f.sessions_dropped, o.f.refusals
    );
    println!(
        "continuous: false suspicions node → indexers {}, sessions dropped {}",
        c.f.node_suspicions, c.f.sessions_dropped
    );
    match gone {
        Some(s) => println!(
            "orbital node silent beyond its plan (crash after pass {passes}): every indexer dropped it {s} s ({:.1} min) after the end of the run",
            s as f64 / 60.0
        ),
        None => println!("orbital node silent beyond its plan: NOT dropped within 6 h"),
    }
    assert_eq!(
        o.f.node_suspicions + o.f.sessions_dropped + o.f.refusals,
        0,
        "{:?}",
        o.f
    );
    assert_eq!(
        c.f.node_suspicions + c.f.sessions_dropped + c.f.refusals,
        0,
        "{:?}",
        c.f
    );
    assert!(gone.is_some(), "an unplanned absence is detected");
}
