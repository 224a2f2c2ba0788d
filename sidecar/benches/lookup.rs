//! Record lookup latency in an N-node loopback network (default 100).
//!
//! Every node runs the DHT in server mode, joins through the first node plus one random
//! earlier node, publishes its signed record, then random nodes look up random other nodes'
//! `/node/<did>` records. Prints p50/p95/max latency and the number of Kademlia requests per
//! lookup (an upper bound of the hops). No latency is added: this measures the stack (pnet,
//! Noise, Yamux, Kademlia, validation) on loopback.
//!
//!     cargo bench -p garden-sidecar --bench lookup            # 100 nodes, 300 lookups
//!     GARDEN_BENCH_NODES=50 GARDEN_BENCH_LOOKUPS=100 cargo bench -p garden-sidecar --bench lookup

use std::sync::Arc;
use std::time::{Duration, Instant};

use garden_sidecar::app::App;
use garden_sidecar::config::{Config, Role};
use garden_sidecar::discovery::record::node_key;
use garden_sidecar::keys::NodeIdentity;
use libp2p::{multiaddr::Protocol, pnet::PreSharedKey, Multiaddr};
use rand::Rng;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let n = env_usize("GARDEN_BENCH_NODES", 100);
    let lookups = env_usize("GARDEN_BENCH_LOOKUPS", 300);
    let psk = PreSharedKey::new([9u8; 32]);
    let mut rng = rand::thread_rng();
    let mut apps: Vec<App> = Vec::with_capacity(n);
    let mut addrs: Vec<Multiaddr> = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let mut cfg = Config::default();
        cfg.network.role = Role::Node;
        cfg.network.dht_server = Some(true);
        cfg.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
        cfg.network.idle_connection_timeout_secs = 600;
        cfg.discovery.name = format!("bench-{i}");
        let mut seeds = Vec::new();
        if i > 0 {
            seeds.push(addrs[0].to_string());
            seeds.push(addrs[rng.gen_range(0..i)].to_string());
        }
        cfg.network.seeds = seeds;
        let id = Arc::new(NodeIdentity::generate());
        let app = App::start_with(id, psk, &cfg).await.expect("node starts");
        let st = app.client.status().await.expect("status");
        addrs.push(st.listen_addrs[0].clone().with(Protocol::P2p(st.peer_id)));
        apps.push(app);
    }
    println!("started {n} nodes in {:.1} s", t0.elapsed().as_secs_f64());

    let t1 = Instant::now();
    for app in &apps {
        let deadline = Instant::now() + Duration::from_secs(60);
        while app.client.publish().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "publish did not succeed within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!(
        "published {n} records in {:.1} s",
        t1.elapsed().as_secs_f64()
    );

    let mut lat_ms = Vec::with_capacity(lookups);
    let mut requests = Vec::with_capacity(lookups);
    let mut failures = 0;
    for _ in 0..lookups {
        let a = rng.gen_range(0..n);
        let mut b = rng.gen_range(0..n);
        while b == a {
            b = rng.gen_range(0..n);
        }
        let key = node_key(apps[b].client.did());
        let start = Instant::now();
        match apps[a].client.lookup(key).await {
            Ok(l) => {
                assert_eq!(l.record.peer_id, apps[b].client.peer_id());
                lat_ms.push(start.elapsed().as_secs_f64() * 1000.0);
                requests.push(l.requests as f64);
            }
            Err(_) => failures += 1,
        }
    }
    lat_ms.sort_by(f64::total_cmp);
    requests.sort_by(f64::total_cmp);
    let mean_req = requests.iter().sum::<f64>() / requests.len().max(1) as f64;
    println!("lookups: {} ok, {failures} failed", lat_ms.len());
    println!(
        "latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&lat_ms, 50.0),
        percentile(&lat_ms, 95.0),
        percentile(&lat_ms, 99.0),
        lat_ms.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "kademlia requests per lookup (hops upper bound): mean {:.2}  p50 {}  p95 {}  max {}",
        mean_req,
        percentile(&requests, 50.0),
        percentile(&requests, 95.0),
        requests.last().copied().unwrap_or(f64::NAN)
    );
    for app in apps {
        app.shutdown().await;
    }
}
