//! Resident memory of the sidecar (a harness that prints figures; nothing is asserted):
//!
//! 1. **node, separate process**: the real `garden` binary started twice on 127.0.0.1 (an
//!    indexer and a node seeded with it, one private network, default timers except
//!    `membership.allow_loopback = true`), left to settle (the node's signed `/node/` record is
//!    readable from the indexer and a full 20 s heartbeat interval has passed), then
//!    `/proc/<pid>/status` (VmRSS, VmHWM) of each child;
//! 2. **node, in process**: the same stack started in this process the way
//!    `sidecar/tests/common` does (indexer + node, 1 s heartbeats), settled, then this
//!    process's VmRSS / VmHWM (includes the second node and the bench itself);
//! 3. **indexer holding 10 000 node records**: 10 000 records signed by 10 000 fresh identities
//!    (`Draft::sign`, what real nodes publish: name + one address), pushed to the child indexer
//!    through the real DHT path (Kademlia PUT_VALUE over TCP + pnet + Noise + Yamux from 4
//!    client swarms, then the indexer's rate limit and validating store), then the same
//!    10 000 values under `/name/<name>` (every node publishes both keys). VmRSS before / after,
//!    bytes per record, and a sample of GET_VALUE to check they were stored; then 300 more
//!    peers connect (one GET each, connections held open as heartbeating nodes' are) for the
//!    cost per open connection; and the cause check: 200 connections to a child running a
//!    gossipsub-only swarm with the default `connection_handler_queue_len` and with 100;
//! 4. **pure structures**, each in a fresh re-execution of this harness (so freed memory of
//!    the other parts does not hide the growth): VmRSS growth of the validating record store
//!    (`discovery::store::Store::insert`, the function the indexer's event loop calls for
//!    inbound PUTs) taking 10 000 node records, and of the membership `Registry` taking
//!    10 000 heartbeat sessions (first heartbeats, each carrying a record of the real size).
//!
//! The child indexer runs with the gater's per-peer PUT/GET rate limits and its new-peer burst
//! limit raised (`GARDEN_GATER_MAX_{PUBLISHES,GETS}_PER_MINUTE`, `..._MAX_NEW_PEERS_PER_WINDOW`)
//! so four client peers may push 20 000 records and 300 peers connect at once; nothing else
//! is changed. `GARDEN_BENCH_CONNECTIONS` changes the 300 (0 skips).
//!
//! Needs the release binary (the harness says so and skips parts 1 and 3 without it):
//!
//!     export CARGO_TARGET_DIR=/root/.cache/garden/target
//!     cargo build --release -p garden-sidecar --bin garden
//!     cargo bench -p garden-sidecar --bench memory
//!
//! `GARDEN_BIN` picks another binary; `GARDEN_BENCH_RECORDS` changes the 10 000.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use futures::StreamExt;
use garden_sidecar::app::App;
use garden_sidecar::config::{Config, Role};
use garden_sidecar::discovery::record::{name_key, node_key, Draft, RecordKind};
use garden_sidecar::discovery::store;
use garden_sidecar::keys::{psk, NodeIdentity};
use garden_sidecar::membership::heartbeat::{Heartbeat, SignedHeartbeat, Signer};
use garden_sidecar::membership::indexer::{Config as RegistryConfig, Registry};
use garden_sidecar::membership::Timestamp;
use garden_sidecar::net::{behaviour::KAD_PROTOCOL, transport};
use garden_sidecar::time::Clock;
use libp2p::kad::{self, store::MemoryStore, Quorum, Record, RecordKey};
use libp2p::swarm::SwarmEvent;
use libp2p::{multiaddr::Protocol, pnet::PreSharedKey, Multiaddr, PeerId, Swarm};

/// Set on the re-executions that measure one structure alone.
const PART_ENV: &str = "GARDEN_BENCH_MEMORY_PART";

/// (VmRSS, VmHWM) in KiB of `pid` (or this process).
fn mem_kib(pid: Option<u32>) -> Option<(u64, u64)> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn garden_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("GARDEN_BIN") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let dir = std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
            Path::new(&dir).join("../target")
        });
    let p = target.join("release/garden");
    p.exists().then_some(p)
}

/// A `garden run` child, killed on drop.
struct Sidecar {
    child: Child,
    peer: PeerId,
    did: String,
    addr: Multiaddr,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_sidecar(
    bin: &Path,
    dir: &Path,
    name: &str,
    role: &str,
    seeds: &str,
    extra: &[(&str, &str)],
) -> Sidecar {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).expect("bench dir");
    let id = NodeIdentity::generate();
    let key_file = d.join("garden-identity.key");
    id.write(&key_file).expect("identity file");
    let port = free_port();
    let log = std::fs::File::create(d.join("garden.log")).expect("log file");
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--role", role])
        .current_dir(&d)
        .env_clear()
        .env("GARDEN_IDENTITY_KEY_FILE", &key_file)
        .env("GARDEN_IDENTITY_PSK_FILE", dir.join("swarm.key"))
        .env(
            "GARDEN_NETWORK_LISTEN",
            format!("/ip4/127.0.0.1/tcp/{port}"),
        )
        .env("GARDEN_NETWORK_SEEDS", seeds)
        .env("GARDEN_DISCOVERY_NAME", name)
        .env("GARDEN_MEMBERSHIP_ALLOW_LOOPBACK", "true")
        // Many sidecars on one host: none takes the operator API's default port.
        .env("GARDEN_API_LISTEN", "")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn garden");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{name} did not listen within 30 s; see {}",
            d.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}")
        .parse()
        .expect("multiaddr");
    Sidecar {
        child,
        peer: id.peer_id(),
        did: id.did(),
        addr,
    }
}

// ---------------------------------------------------------------------------------------------
// A bare Kademlia client (same transport and protocol as the sidecar) to PUT/GET on one peer.

fn kad_client(
    psk: PreSharedKey,
    target: PeerId,
    addr: Multiaddr,
) -> Swarm<kad::Behaviour<MemoryStore>> {
    let id = NodeIdentity::generate();
    let peer = id.peer_id();
    let transport = transport::build(id.keypair(), psk).expect("transport");
    let mut kcfg = kad::Config::new(KAD_PROTOCOL);
    kcfg.set_query_timeout(Duration::from_secs(30));
    let mut kad = kad::Behaviour::with_config(peer, MemoryStore::new(peer), kcfg);
    kad.set_mode(Some(kad::Mode::Client));
    kad.add_address(&target, addr);
    let cfg = libp2p::swarm::Config::with_tokio_executor()
        .with_idle_connection_timeout(Duration::from_secs(60));
    Swarm::new(transport, kad, peer, cfg)
}

/// PUTs every record to `target` only, at most `window` in flight; returns (acked, failed).
async fn put_all(
    psk: PreSharedKey,
    target: PeerId,
    addr: Multiaddr,
    records: Vec<(String, Vec<u8>)>,
    window: usize,
) -> (usize, usize) {
    let mut swarm = kad_client(psk, target, addr);
    let mut it = records.into_iter();
    let (mut in_flight, mut ok, mut failed) = (0usize, 0usize, 0usize);
    loop {
        while in_flight < window {
            let Some((k, v)) = it.next() else { break };
            swarm.behaviour_mut().put_record_to(
                Record::new(RecordKey::new(&k), v),
                std::iter::once(target),
                Quorum::One,
            );
            in_flight += 1;
        }
        if in_flight == 0 {
            return (ok, failed);
        }
        if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::PutRecord(r),
            step,
            ..
        }) = swarm.select_next_some().await
        {
            if step.last {
                in_flight -= 1;
                if r.is_ok() {
                    ok += 1
                } else {
                    failed += 1
                }
            }
        }
    }
}

/// GETs each key (the target is the client's only known peer); returns how many were found.
async fn get_count(psk: PreSharedKey, target: PeerId, addr: Multiaddr, keys: Vec<String>) -> usize {
    let mut swarm = kad_client(psk, target, addr);
    let mut found = 0;
    for k in keys {
        let qid = swarm.behaviour_mut().get_record(RecordKey::new(&k));
        let mut hit = false;
        loop {
            if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                ..
            }) = swarm.select_next_some().await
            {
                if id != qid {
                    continue;
                }
                if let kad::QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(_))) = result {
                    hit = true;
                }
                if step.last || hit {
                    if let Some(mut q) = swarm.behaviour_mut().query_mut(&qid) {
                        q.finish();
                    }
                    break;
                }
            }
        }
        found += usize::from(hit);
    }
    found
}

/// Connects a fresh client to `target`, makes one GET (so the connection carries a stream like
/// a heartbeating node's), reports on `ready`, then keeps the connection until `stop` fires.
async fn hold_connection(
    psk: PreSharedKey,
    target: PeerId,
    addr: Multiaddr,
    key: String,
    ready: tokio::sync::mpsc::Sender<bool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut swarm = kad_client(psk, target, addr);
    let qid = swarm.behaviour_mut().get_record(RecordKey::new(&key));
    let mut reported = false;
    loop {
        tokio::select! {
            ev = swarm.select_next_some() => {
                if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed { id, result, step, .. }) = ev {
                    if id == qid && !reported {
                        let hit = matches!(result, kad::QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(_))));
                        if hit || step.last {
                            reported = true;
                            let _ = ready.send(hit).await;
                        }
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Child side of the gossipsub check: a swarm with only `gossipsub` (same transport), with
/// `queue` as `connection_handler_queue_len` (0 = the crate default); prints its address and
/// runs until the parent closes stdin.
async fn gossipsub_server(psk: PreSharedKey, queue: usize) {
    use libp2p::gossipsub;
    let id = NodeIdentity::generate();
    let transport = transport::build(id.keypair(), psk).expect("transport");
    let mut b = gossipsub::ConfigBuilder::default();
    if queue > 0 {
        b.connection_handler_queue_len(queue);
    }
    let gs: gossipsub::Behaviour = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(id.keypair().clone()),
        b.build().expect("gossipsub config"),
    )
    .expect("gossipsub");
    let cfg = libp2p::swarm::Config::with_tokio_executor()
        .with_idle_connection_timeout(Duration::from_secs(120));
    let mut swarm = Swarm::new(transport, gs, id.peer_id(), cfg);
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"))
        .expect("listen");
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut buf = String::new();
        let _ = std::io::stdin().read_line(&mut buf);
    });
    tokio::pin!(stdin_closed);
    loop {
        tokio::select! {
            ev = swarm.select_next_some() => {
                if let SwarmEvent::NewListenAddr { address, .. } = ev {
                    println!("ADDR {address} {}", id.peer_id());
                }
            }
            _ = &mut stdin_closed => return,
        }
    }
}

/// Parent side: RSS growth (bytes) per connection of a gossipsub-only server with `queue`.
async fn gossipsub_check(
    psk_file: &Path,
    psk: PreSharedKey,
    queue: usize,
    conns: usize,
) -> Option<(f64, usize)> {
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe().ok()?)
        .env(PART_ENV, "gossipsub")
        .env("GARDEN_BENCH_GOSSIPSUB_QUEUE", queue.to_string())
        .env("GARDEN_BENCH_PSK_FILE", psk_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let mut parts = line.trim().strip_prefix("ADDR ")?.split_whitespace();
    let addr: Multiaddr = parts.next()?.parse().ok()?;
    let peer: PeerId = parts.next()?.parse().ok()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = mem_kib(Some(child.id()))?.0;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(conns);
    let handles: Vec<_> = (0..conns)
        .map(|_| {
            tokio::spawn(hold_connection(
                psk,
                peer,
                addr.clone(),
                "/node/x".into(),
                ready_tx.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    drop(ready_tx);
    let mut up = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while up < conns {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(_)) => up += 1,
            _ => break,
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = mem_kib(Some(child.id()))?.0;
    let _ = stop_tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    drop(child.stdin.take());
    let _ = child.wait();
    Some((
        (after.saturating_sub(before) * 1024) as f64 / up.max(1) as f64,
        up,
    ))
}

// ---------------------------------------------------------------------------------------------

/// 10 000 signed node records as real nodes publish them (name, one address, no location).
fn make_records(n: usize) -> Vec<(NodeIdentity, Vec<u8>, String)> {
    let now = Clock::system().now().as_millis();
    (0..n)
        .map(|i| {
            let id = NodeIdentity::generate();
            let name = format!("site-{i:05}");
            let addr: Multiaddr = format!("/ip4/10.{}.{}.7/tcp/4001", (i >> 8) & 0xff, i & 0xff)
                .parse()
                .expect("multiaddr");
            let draft = Draft {
                kind: RecordKind::Peer,
                name: name.clone(),
                addrs: vec![addr],
                location: None,
                indexer: None,
                links: Default::default(),
                // Real records live 120 s and are re-signed every 40 s; here they must outlive
                // the run (the size does not depend on the TTL).
                ttl_ms: 3_600_000,
            };
            let value = draft.sign(&id, now);
            (id, value, name)
        })
        .collect()
}

fn in_process_config(role: Role, name: &str, seeds: &[Multiaddr]) -> Config {
    let mut c = Config::default();
    c.network.role = role;
    c.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    c.network.seeds = seeds.iter().map(|a| a.to_string()).collect();
    c.discovery.name = name.into();
    c.membership.heartbeat_interval_secs = 1;
    c.membership.allow_loopback = true;
    c.log.filter = "warn".into();
    c
}

async fn in_process_node() -> Option<(u64, u64)> {
    let psk = PreSharedKey::new([42u8; 32]);
    let ind = App::start_with(
        Arc::new(NodeIdentity::generate()),
        psk,
        &in_process_config(Role::Indexer, "bench-indexer", &[]),
    )
    .await
    .expect("indexer starts");
    let st = ind.client.status().await.expect("status");
    let ind_addr = st.listen_addrs[0].clone().with(Protocol::P2p(st.peer_id));
    let node = App::start_with(
        Arc::new(NodeIdentity::generate()),
        psk,
        &in_process_config(Role::Node, "bench-node", &[ind_addr]),
    )
    .await
    .expect("node starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut settled = false;
    while Instant::now() < deadline {
        let sessions = ind
            .client
            .status()
            .await
            .map(|s| s.heartbeat_sessions)
            .unwrap_or(0);
        if sessions >= 1 && node.client.publish().await.is_ok() {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more heartbeats and a republish cycle's worth of traffic.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mem = mem_kib(None);
    println!(
        "in-process indexer + node: settled = {settled} (heartbeat session on the indexer, record published)"
    );
    node.shutdown().await;
    ind.shutdown().await;
    mem
}

/// VmRSS growth (KiB) of the validating store taking `records` node records; (growth, stored, value bytes).
fn store_growth(records: &[(NodeIdentity, Vec<u8>, String)]) -> (u64, usize, usize) {
    let value_bytes: usize = records.iter().map(|r| r.1.len()).sum();
    let before = mem_kib(None).map(|m| m.0).unwrap_or(0);
    let mut s = store::Store::new(PeerId::random(), store::Config::default(), Clock::system());
    for (id, value, _) in records {
        // The store's own copy of key and value is built here, so the growth counts it.
        s.insert(Record::new(
            RecordKey::new(&node_key(&id.did())),
            value.clone(),
        ))
        .expect("valid record");
    }
    let after = mem_kib(None).map(|m| m.0).unwrap_or(0);
    (after.saturating_sub(before), s.len(), value_bytes)
}

/// VmRSS growth (KiB) of the membership registry taking `n` heartbeat sessions (first contact, with a
/// `record_len`-byte record each, as a node's first heartbeat carries its signed record).
fn registry_growth(n: u32, record_len: usize) -> (u64, usize) {
    const T0_MS: u64 = 1_795_000_000_000;
    let signer = |i: u32| {
        let mut seed = [7u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        Signer::new(SigningKey::from_bytes(&seed))
    };
    let local = signer(0).peer_id();
    let frames: Vec<(PeerId, Vec<Multiaddr>, Vec<u8>)> = (1..=n)
        .map(|i| {
            let s = signer(i);
            let a: Multiaddr = format!("/ip4/10.{}.{}.7/tcp/4001", (i >> 8) & 0xff, i & 0xff)
                .parse()
                .expect("multiaddr");
            let hb = Heartbeat {
                seq: 1,
                timestamp: Timestamp::from_millis(T0_MS),
                need: 2,
                record: Some(vec![0u8; record_len]),
                indexers_bound: Some(vec![local]),
                ..Default::default()
            };
            (s.peer_id(), vec![a], s.sign(hb, &local).to_bytes())
        })
        .collect();
    let before = mem_kib(None).map(|m| m.0).unwrap_or(0);
    let mut reg = Registry::new(
        RegistryConfig::new().with_max_nodes(n + 1).with_rng_seed(1),
        local,
        Timestamp::from_millis(T0_MS),
    );
    let now = Timestamp::from_millis(T0_MS + 50);
    for (peer, addrs, bytes) in &frames {
        if let Ok(signed) = SignedHeartbeat::from_bytes(bytes) {
            let _ = reg.on_heartbeat(now, *peer, addrs, &signed);
        }
    }
    let after = mem_kib(None).map(|m| m.0).unwrap_or(0);
    (after.saturating_sub(before), reg.len())
}

#[tokio::main]
async fn main() {
    let t_start = Instant::now();
    let n = env_usize("GARDEN_BENCH_RECORDS", 10_000);
    match std::env::var(PART_ENV).as_deref() {
        Ok("store") => {
            let records = make_records(n);
            let (g, st, vb) = store_growth(&records);
            println!("PART {g} {st} {vb}");
            return;
        }
        Ok("gossipsub") => {
            let queue = env_usize("GARDEN_BENCH_GOSSIPSUB_QUEUE", 0);
            let file = std::env::var("GARDEN_BENCH_PSK_FILE").expect("psk file");
            let key = psk::load_psk(Path::new(&file)).expect("psk");
            gossipsub_server(key, queue).await;
            return;
        }
        Ok("registry") => {
            let len = make_records(1)[0].1.len();
            let (g, ss) = registry_growth(n as u32, len);
            println!("PART {g} {ss}");
            return;
        }
        _ => {}
    }
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // --- 1. child processes -----------------------------------------------------------------
    let bin = garden_bin();
    let dir = std::env::temp_dir().join(format!("garden-memory-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let mut children: Option<(Sidecar, Sidecar, PreSharedKey, Instant)> = None;
    match &bin {
        Some(bin) => {
            let key = psk::write_new_psk(&dir.join("swarm.key")).expect("psk");
            let indexer = spawn_sidecar(
                bin,
                &dir,
                "indexer",
                "indexer",
                "",
                &[
                    ("GARDEN_GATER_MAX_PUBLISHES_PER_MINUTE", "1000000"),
                    ("GARDEN_GATER_MAX_GETS_PER_MINUTE", "1000000"),
                    ("GARDEN_GATER_MAX_NEW_PEERS_PER_WINDOW", "100000"),
                ],
            );
            let seed = indexer.addr.clone().with(Protocol::P2p(indexer.peer)).to_string();
            let node = spawn_sidecar(bin, &dir, "node", "node", &seed, &[]);
            println!("garden binary: {}", bin.display());
            children = Some((indexer, node, key, Instant::now()));
        }
        None => println!(
            "garden release binary not found: run `cargo build --release -p garden-sidecar --bin garden` \
             (same CARGO_TARGET_DIR) or set GARDEN_BIN; skipping the separate-process figures"
        ),
    }

    // --- 2. in-process stack (while the children settle) -----------------------------------
    let base = mem_kib(None).unwrap_or((0, 0));
    if let Some((rss, hwm)) = in_process_node().await {
        rows.push((
            "bench process before starting anything (runtime only)".into(),
            mib(base.0),
            mib(base.1),
        ));
        rows.push((
            "in-process indexer + node (this process, 1 s heartbeats, settled)".into(),
            mib(rss),
            mib(hwm),
        ));
    }

    // Records are signed now (not timed against the children).
    let t_gen = Instant::now();
    let records = make_records(n);
    let rec_len = records.iter().map(|r| r.1.len()).sum::<usize>() / n.max(1);
    println!(
        "signed {n} node records in {:.1} s (mean value {rec_len} B)",
        t_gen.elapsed().as_secs_f64()
    );

    // --- 3. child indexer holding n records ------------------------------------------------
    let mut per_record = None;
    let mut conn_cost: Option<f64> = None;
    if let Some((indexer, node, key, started)) = children.as_ref() {
        // Settle: the node's own record must be readable from the indexer, and one full default
        // heartbeat interval (20 s) must have passed since the node started.
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut published = false;
        while Instant::now() < deadline && !published {
            published = get_count(
                *key,
                indexer.peer,
                indexer.addr.clone(),
                vec![node_key(&node.did)],
            )
            .await
                == 1;
            if !published {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        let wait = Duration::from_secs(25).saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
        println!(
            "children settled after {:.1} s: node record on the indexer = {published}",
            started.elapsed().as_secs_f64()
        );
        let node_mem = mem_kib(Some(node.child.id()));
        let ind_before = mem_kib(Some(indexer.child.id()));
        if let Some((rss, hwm)) = node_mem {
            rows.push((
                "**node** (`garden run --role node`, separate process, settled)".into(),
                format!("**{}**", mib(rss)),
                mib(hwm),
            ));
        }
        if let Some((rss, hwm)) = ind_before {
            rows.push((
                "indexer (`garden run --role indexer`), 1 node, before the records".into(),
                mib(rss),
                mib(hwm),
            ));
        }

        // Push n /node/ records, then the same values under /name/.
        const CLIENTS: usize = 4;
        let push = |keyed: Vec<(String, Vec<u8>)>| {
            let mut parts: Vec<Vec<(String, Vec<u8>)>> = vec![Vec::new(); CLIENTS];
            for (i, kv) in keyed.into_iter().enumerate() {
                parts[i % CLIENTS].push(kv);
            }
            let tasks: Vec<_> = parts
                .into_iter()
                .map(|p| tokio::spawn(put_all(*key, indexer.peer, indexer.addr.clone(), p, 32)))
                .collect();
            async move {
                let (mut ok, mut failed) = (0, 0);
                for t in tasks {
                    let (o, f) = t.await.expect("client task");
                    ok += o;
                    failed += f;
                }
                (ok, failed)
            }
        };
        let t_put = Instant::now();
        let node_keyed: Vec<(String, Vec<u8>)> = records
            .iter()
            .map(|(id, v, _)| (node_key(&id.did()), v.clone()))
            .collect();
        let (ok, failed) = push(node_keyed).await;
        println!(
            "PUT {n} /node/ records to the child indexer in {:.1} s: {ok} acked, {failed} failed",
            t_put.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let sample: Vec<String> = records
            .iter()
            .step_by((n / 100).max(1))
            .map(|r| node_key(&r.0.did()))
            .collect();
        let sample_n = sample.len();
        let found = get_count(*key, indexer.peer, indexer.addr.clone(), sample).await;
        println!("GET sample: {found}/{sample_n} /node/ records found on the child indexer");
        let ind_node = mem_kib(Some(indexer.child.id()));

        let t_put = Instant::now();
        let name_keyed: Vec<(String, Vec<u8>)> = records
            .iter()
            .map(|(_, v, name)| (name_key(name), v.clone()))
            .collect();
        let (ok2, failed2) = push(name_keyed).await;
        println!(
            "PUT {n} /name/ records in {:.1} s: {ok2} acked, {failed2} failed",
            t_put.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let sample: Vec<String> = records
            .iter()
            .step_by((n / 100).max(1))
            .map(|r| name_key(&r.2))
            .collect();
        let found2 = get_count(*key, indexer.peer, indexer.addr.clone(), sample).await;
        println!("GET sample: {found2}/{sample_n} /name/ records found on the child indexer");
        let ind_both = mem_kib(Some(indexer.child.id()));

        if let (Some(b), Some(a)) = (ind_before, ind_node) {
            per_record = Some((a.0.saturating_sub(b.0) * 1024) as f64 / n as f64);
            rows.push((
                format!("**indexer holding {n} node records** (`/node/`, real DHT PUTs; {found}/{sample_n} sampled GETs found)"),
                format!("**{}**", mib(a.0)),
                mib(a.1),
            ));
            rows.push((
                "… growth per `/node/` record".to_string(),
                format!("{:.0} B", per_record.unwrap_or(0.0)),
                String::new(),
            ));
        }
        if let (Some(b), Some(a)) = (ind_before, ind_both) {
            rows.push((
                format!("indexer holding {n} `/node/` + {n} `/name/` records ({found2}/{sample_n} sampled)"),
                mib(a.0),
                mib(a.1),
            ));
            rows.push((
                "… growth per stored value (2 per node)".into(),
                format!(
                    "{:.0} B",
                    (a.0.saturating_sub(b.0) * 1024) as f64 / (2 * n) as f64
                ),
                String::new(),
            ));
        }

        // Open `conns` more connections (one peer each, like heartbeating nodes: the default
        // idle timeout of 60 s outlives the 20 s heartbeat interval, so an indexer keeps one
        // connection per node) and measure the growth per connection.
        let conns = env_usize("GARDEN_BENCH_CONNECTIONS", 300);
        if conns > 0 {
            let before = mem_kib(Some(indexer.child.id()));
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(conns);
            let t_conn = Instant::now();
            let mut handles = Vec::with_capacity(conns);
            for i in 0..conns {
                let k = node_key(&records[i % n.max(1)].0.did());
                handles.push(tokio::spawn(hold_connection(
                    *key,
                    indexer.peer,
                    indexer.addr.clone(),
                    k,
                    ready_tx.clone(),
                    stop_rx.clone(),
                )));
            }
            drop(ready_tx);
            let mut up = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
            while up < conns {
                match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
                    Ok(Some(true)) => up += 1,
                    Ok(Some(false)) => {}
                    _ => break,
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let after = mem_kib(Some(indexer.child.id()));
            println!(
                "{up}/{conns} extra connections up (each with a successful GET) in {:.1} s",
                t_conn.elapsed().as_secs_f64()
            );
            if let (Some(b), Some(a)) = (before, after) {
                rows.push((
                    format!("indexer above + {up} open peer connections (pnet + Noise + Yamux + Kademlia)"),
                    mib(a.0),
                    mib(a.1),
                ));
                let per = (a.0.saturating_sub(b.0) * 1024) as f64 / up.max(1) as f64;
                rows.push((
                    "… growth per open connection".into(),
                    format!("{:.1} KiB", per / 1024.0),
                    String::new(),
                ));
                conn_cost = Some(per);
            }
            let _ = stop_tx.send(true);
            for h in handles {
                let _ = h.await;
            }
        }

        // Cause of the per-connection cost: the same connections to a server running only
        // gossipsub, with the crate's default `connection_handler_queue_len` (5 000) and 100.
        let gconns = env_usize("GARDEN_BENCH_GOSSIPSUB_CONNECTIONS", 200);
        if gconns > 0 {
            for queue in [0usize, 100] {
                if let Some((per, up)) =
                    gossipsub_check(&dir.join("swarm.key"), *key, queue, gconns).await
                {
                    let label = if queue == 0 {
                        "default 5 000".to_string()
                    } else {
                        queue.to_string()
                    };
                    rows.push((
                        format!("… gossipsub-only server, `connection_handler_queue_len` {label}: growth per connection ({up} connections)"),
                        format!("{:.1} KiB", per / 1024.0),
                        String::new(),
                    ));
                }
            }
        }
    }
    drop(children);

    // --- 4. pure structures, each in a fresh process --------------------------------------
    let part = |name: &str| -> Vec<String> {
        let out = std::env::current_exe().and_then(|exe| {
            Command::new(exe)
                .env(PART_ENV, name)
                .env("GARDEN_BENCH_RECORDS", n.to_string())
                .output()
        });
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("PART "))
                .map(|l| l.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    };
    if let [growth, stored, value_bytes] = part("store").as_slice() {
        let (g, st, vb): (f64, f64, f64) = (
            growth.parse().unwrap_or(0.0),
            stored.parse().unwrap_or(1.0),
            value_bytes.parse().unwrap_or(0.0),
        );
        rows.push((
            format!("validating record store alone, {st} `/node/` records (VmRSS growth, fresh process)"),
            format!("{:.1} MiB", g / 1024.0),
            format!("{:.0} B/record (value {:.0} B)", g * 1024.0 / st.max(1.0), vb / st.max(1.0)),
        ));
    }
    if let [growth, sessions] = part("registry").as_slice() {
        let (g, ss): (f64, f64) = (
            growth.parse().unwrap_or(0.0),
            sessions.parse().unwrap_or(1.0),
        );
        rows.push((
            format!("membership `Registry` alone, {ss} heartbeat sessions ({rec_len} B record each; VmRSS growth)"),
            format!("{:.1} MiB", g / 1024.0),
            format!("{:.0} B/session", g * 1024.0 / ss.max(1.0)),
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!("| what | VmRSS (growth for the last two) | VmHWM (per item for the last two) |");
    println!("|---|---:|---:|");
    for (a, b, c) in &rows {
        println!("| {a} | {b} | {c} |");
    }
    if let Some(p) = per_record {
        println!();
        println!(
            "extrapolation: a fresh indexer + {n} records ≈ before + {n} × {p:.0} B; targets node ≤ 50 MB, indexer with 10 000 records ≤ 500 MB"
        );
    }
    if let (Some(p), Some(c)) = (per_record, conn_cost) {
        println!(
            "estimate for one indexer serving {n} nodes (records + one connection each + sessions): see docs/PERFORMANCE.md; \
             records {n} × {p:.0} B + connections {n} × {:.1} KiB",
            c / 1024.0
        );
    }
    println!("total run time {:.1} s", t_start.elapsed().as_secs_f64());
}
