//! Heartbeat figures (a harness that prints numbers; no timed assertions anywhere):
//!
//! (a) bytes on the wire of a steady heartbeat vs the Go JSON heartbeat carrying the same
//!     fields, with realistic values: base58 peer ids, RFC 3339 times,
//!     a Go `PeerRecord` embedded as Go does on every tick;
//! (b) heartbeats handled per second on one core by the indexer side: frame decode, Ed25519
//!     signature verification, replay check, admission, session update, response build and
//!     response encode.
//!
//! Run: `CARGO_TARGET_DIR=/root/.cache/garden/target cargo bench -p garden-sidecar --bench heartbeat`

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use garden_sidecar::membership::heartbeat::{Heartbeat, SignedHeartbeat, Signer};
use garden_sidecar::membership::indexer::{Config, Registry};
use garden_sidecar::membership::wire::Writer;
use garden_sidecar::membership::Timestamp;
use libp2p::{Multiaddr, PeerId};
use serde_json::json;

const T0_MS: u64 = 1_795_000_000_000; // 2026-11-17

fn signer(i: u32) -> Signer {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    Signer::new(SigningKey::from_bytes(&seed))
}

/// Standard base64 (the Go JSON encodes `[]byte` this way); only used to size the JSON.
fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// RFC 3339 with nanoseconds, UTC, as Go's `time.Time` marshals (`RFC3339Nano`).
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant), enough for a size benchmark.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        (ms % 1000) * 1_000_000 + 123_456
    )
}

fn frame_len(body_len: usize) -> usize {
    let mut w = Writer::default();
    w.varint(body_len as u64);
    w.into_bytes().len() + body_len
}

fn go_record(node: &PeerId, pubkey_proto: &[u8]) -> serde_json::Value {
    let pid = node.to_base58();
    json!({
        "id": "",
        "name": "garden-node-017",
        "did": "3f9c2d7e-8b41-4c6a-9e0f-5a7b1c2d3e4f",
        "public_key": b64(pubkey_proto),
        "expiry_date": rfc3339(T0_MS + 120_000),
        "is_nano": false,
        "creation_date": rfc3339(T0_MS - 86_400_000),
        "update_date": rfc3339(T0_MS),
        "peer_id": pid,
        "api_url": "http://10.0.3.17:8080",
        "stream_address": format!("/ip4/10.0.3.17/tcp/4001/p2p/{pid}"),
        "nats_address": "nats://10.0.3.17:4222",
        "wallet_address": "",
        "location": {"Latitude": 48.85, "Longitude": 2.35, "Granularity": 2},
        "signature": b64(&[0x5a; 64]),
    })
}

/// Go `Heartbeat` JSON as `json.Encoder` writes it (field order of the struct, trailing newline).
fn go_heartbeat(
    node: &PeerId,
    pool: &[PeerId],
    record: Option<&serde_json::Value>,
    challenges: Option<Vec<String>>,
) -> usize {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), json!("garden-node-017"));
    m.insert("stream".into(), serde_json::Value::Null);
    m.insert("did".into(), json!(""));
    m.insert("peer_id".into(), json!(node.to_base58()));
    m.insert("timestamp".into(), json!(T0_MS / 1000));
    m.insert(
        "indexers_binded".into(),
        json!(pool.iter().map(|p| p.to_base58()).collect::<Vec<_>>()),
    );
    m.insert("Score".into(), json!(0));
    if let Some(r) = record {
        m.insert("record".into(), r.clone());
    }
    m.insert("need".into(), json!(2));
    if let Some(c) = challenges {
        m.insert("challenges".into(), json!(c));
    }
    m.insert("referent".into(), json!(true));
    serde_json::to_vec(&serde_json::Value::Object(m))
        .map(|v| v.len() + 1)
        .unwrap_or(0)
}

fn sizes() {
    let node = signer(1);
    let idx: Vec<PeerId> = (2..5).map(|i| signer(i).peer_id()).collect();
    let mut proto = vec![0x08, 0x01, 0x12, 0x20];
    proto.extend_from_slice(&[0x11; 32]);
    let record = go_record(&node.peer_id(), &proto);
    let go_record_len = serde_json::to_vec(&record).map(|v| v.len()).unwrap_or(0);

    let steady = Heartbeat {
        seq: 4321,
        timestamp: Timestamp::from_millis(T0_MS),
        need: 2,
        referent: true,
        ..Default::default()
    };
    let ours_steady = frame_len(node.sign(steady.clone(), &idx[0]).wire_len());
    let challenged = Heartbeat {
        challenge_self: true,
        challenge_refs: vec![1, 2],
        ..steady.clone()
    };
    let ours_challenged = frame_len(node.sign(challenged, &idx[0]).wire_len());
    let full = Heartbeat {
        name: Some("garden-node-017".into()),
        record: Some(vec![0u8; 400]),
        indexers_bound: Some(idx.clone()),
        ..steady
    };
    let ours_full = frame_len(node.sign(full, &idx[0]).wire_len());

    let go_steady = go_heartbeat(&node.peer_id(), &idx, Some(&record), None);
    let go_norecord = go_heartbeat(&node.peer_id(), &idx, None, None);
    let ids: Vec<String> = std::iter::once(node.peer_id())
        .chain(idx[1..].iter().copied())
        .map(|p| p.to_base58())
        .collect();
    let go_challenged = go_heartbeat(&node.peer_id(), &idx, Some(&record), Some(ids));

    println!("== (a) heartbeat bytes on the wire (3 indexers in the pool, need 2, referent) ==");
    println!("Go JSON PeerRecord embedded in every Go heartbeat: {go_record_len} B");
    let row = |what: &str, go: usize, ours: usize| {
        println!(
            "{what:<58} Go JSON {go:>5} B   Garden {ours:>4} B   ratio {:>5.1} %",
            100.0 * ours as f64 / go as f64
        );
    };
    row(
        "steady tick (Go re-sends the record; Garden omits it)",
        go_steady,
        ours_steady,
    );
    row(
        "steady tick, record excluded on both sides",
        go_norecord,
        ours_steady,
    );
    row(
        "challenge tick (own id + 2 others)",
        go_challenged,
        ours_challenged,
    );
    println!("Garden full heartbeat (name, pool list, 400 B opaque record): {ours_full} B (first contact, record change, resync)");
    println!("Garden steady heartbeat = 1 B frame length + 12 B fields + 64 B Ed25519 signature");
}

fn throughput(nodes_n: u32, rounds_n: u64, verifies: u32) {
    #[allow(non_snake_case)]
    let (NODES, ROUNDS) = (nodes_n, rounds_n);
    let local = signer(0).peer_id();
    let mut reg = Registry::new(
        Config::new().with_max_nodes(20_000).with_rng_seed(1),
        local,
        Timestamp::from_millis(T0_MS),
    );
    let nodes: Vec<(Signer, PeerId, Vec<Multiaddr>)> = (1..=NODES)
        .map(|i| {
            let s = signer(i);
            let p = s.peer_id();
            let a: Multiaddr = format!("/ip4/10.{}.{}.7/tcp/4001", (i >> 8) & 0xff, i & 0xff)
                .parse()
                .expect("valid multiaddr");
            (s, p, vec![a])
        })
        .collect();
    // Pre-sign every heartbeat (that is the nodes' cost, not the indexer's).
    let mut rounds: Vec<Vec<Vec<u8>>> = Vec::new();
    for r in 0..=ROUNDS {
        let t = Timestamp::from_millis(T0_MS + r * 20_000);
        rounds.push(
            nodes
                .iter()
                .map(|(s, _, _)| {
                    let mut hb = Heartbeat {
                        seq: r + 1,
                        timestamp: t,
                        need: 2,
                        ..Default::default()
                    };
                    if r == 0 {
                        hb.record = Some(vec![0u8; 400]);
                        hb.indexers_bound = Some(vec![local]);
                    }
                    if r % 4 == 1 {
                        hb.challenge_self = true;
                    }
                    s.sign(hb, &local).to_bytes()
                })
                .collect(),
        );
    }
    // Returns (accepted, rejected, response bytes).
    let run = |reg: &mut Registry, r: u64, frames: &[Vec<u8>]| -> (u64, u64, usize) {
        let now = Timestamp::from_millis(T0_MS + r * 20_000 + 50);
        let (mut ok, mut bad, mut bytes_out) = (0u64, 0u64, 0usize);
        for ((_, peer, addrs), bytes) in nodes.iter().zip(frames) {
            let outcome = SignedHeartbeat::from_bytes(bytes)
                .map_err(|_| ())
                .and_then(|signed| reg.on_heartbeat(now, *peer, addrs, &signed).map_err(|_| ()));
            match outcome {
                Ok(a) => {
                    ok += 1;
                    bytes_out += black_box(a.response.encode()).len();
                }
                Err(()) => bad += 1,
            }
        }
        (ok, bad, bytes_out)
    };
    run(&mut reg, 0, &rounds[0]); // first contact: sessions created (not timed)
    let (mut accepted, mut rejected, mut resp_bytes) = (0u64, 0u64, 0usize);
    let start = Instant::now();
    for r in 1..=ROUNDS {
        let (a, b, c) = run(&mut reg, r, &rounds[r as usize]);
        accepted += a;
        rejected += b;
        resp_bytes += c;
    }
    let el = start.elapsed();
    let n = accepted + rejected;
    println!("== (b) indexer heartbeats handled per second, one core ==");
    println!(
        "{n} heartbeats ({NODES} sessions × {ROUNDS} rounds) in {:.3} s: {:.0} heartbeats/s ({:.1} µs each); accepted {accepted}, rejected {rejected}; mean response {} B",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / n as f64,
        resp_bytes / accepted.max(1) as usize,
    );

    // The same frames through decode + signature check only (no registry), to split the cost.
    let start = Instant::now();
    let mut ok = 0u64;
    for r in 1..=ROUNDS {
        for ((_, peer, _), bytes) in nodes.iter().zip(&rounds[r as usize]) {
            if SignedHeartbeat::open(black_box(bytes), peer, &local).is_ok() {
                ok += 1;
            }
        }
    }
    let el = start.elapsed();
    println!(
        "decode + signature check only: {:.0} /s ({:.1} µs each, {ok} valid)",
        ok as f64 / el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / ok.max(1) as f64
    );

    // For context: signature verification alone.
    let key = ed25519_dalek::VerifyingKey::from(&SigningKey::from_bytes(&[9; 32]));
    let msg = [1u8; 100];
    let sig = ed25519_dalek::Signer::sign(&SigningKey::from_bytes(&[9; 32]), &msg);
    let k = verifies;
    let s = Instant::now();
    for _ in 0..k {
        black_box(key.verify_strict(black_box(&msg), &sig).is_ok());
    }
    let v = s.elapsed();
    println!(
        "ed25519 verify_strict alone: {:.0} /s ({:.1} µs each)",
        f64::from(k) / v.as_secs_f64(),
        v.as_secs_f64() * 1e6 / f64::from(k)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: there, run a small smoke
    // pass (debug builds make the full run slow and its figures meaningless).
    let full = std::env::args().any(|a| a == "--bench");
    // Figures are only comparable on an idle machine: print the load they were taken under.
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", l.trim());
    }
    sizes();
    if full {
        throughput(5_000, 8, 20_000);
    } else {
        println!("(smoke run: use `cargo bench` for figures)");
        throughput(20, 1, 5);
    }
}
