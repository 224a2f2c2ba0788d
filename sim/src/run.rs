//! Runs one scenario: builds the world, starts every process, plays the timeline while
//! polling the honest processes' status, measures lookups, and gathers what the figures need.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use garden_sidecar::discovery::record::node_key;
use garden_sidecar::time::{Clock, Timestamp};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use tokio::sync::watch;

use crate::hostile;
use crate::link::{Net, Shape};
use crate::measure::{self, Sample};
use crate::scenario::{Action, Scenario, Who};
use crate::world::{Kind, Obs, Report, World};

/// Everything a run measured (the figures are computed from it).
pub struct Outcome {
    pub world: World,
    pub t0: Timestamp,
    pub end: Timestamp,
    /// Link bytes per process at the end of the warm-up and at the end.
    pub bytes_warm: Vec<u64>,
    pub bytes_end: Vec<u64>,
    /// DHT lookups: (protocol time, requests) of each success; failures counted.
    pub lookups: Vec<(Duration, u32)>,
    pub lookup_failures: usize,
    /// Final view: per live honest process, its pool (nodes) or its sessions (indexers).
    pub pools: HashMap<usize, Vec<usize>>,
    pub sessions: HashMap<usize, Vec<usize>>,
    /// Longest status round trip of any indexer (protocol time): how long a loop stalled.
    pub max_stall: Duration,
    pub start: Sample,
    pub finish: Sample,
    pub real: Duration,
    /// Partition windows (start, end) and each process's side during them.
    pub partitions: Vec<(Timestamp, Timestamp, Vec<u64>)>,
    /// Scheduling lag of the runtime (real time): p99 and max overshoot of a 10 ms sleep.
    pub lag: (Duration, Duration),
}

/// Measures how late a 10 ms sleep wakes up (the runtime's scheduling lag, real time): a
/// loaded runtime delays every node's timers and messages by as much, multiplied by the
/// clock's speed in protocol time.
fn lag_probe(mut stop: watch::Receiver<bool>) -> watch::Receiver<(Duration, Duration)> {
    let (tx, rx) = watch::channel((Duration::ZERO, Duration::ZERO));
    tokio::spawn(async move {
        let mut late = Vec::new();
        loop {
            let t = Instant::now();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                _ = stop.changed() => return,
            }
            late.push(t.elapsed().saturating_sub(Duration::from_millis(10)));
            if late.len() % 100 == 0 {
                let mut v = late.clone();
                v.sort();
                let p99 = v[(v.len() - 1) * 99 / 100];
                let _ = tx.send((p99, *v.last().expect("non-empty")));
            }
        }
    });
    rx
}

/// Something scheduled on the timeline.
enum Step {
    Act(Action),
    Start(usize),
}

pub async fn run(s: &Scenario, progress: bool) -> anyhow::Result<Outcome> {
    let real_start = Instant::now();
    let start = measure::sample();
    let clock = Clock::scaled(s.speed, 0);
    let shape = Shape {
        rtt: Duration::from_millis(s.link.rtt_ms),
        slow_rtt: Duration::from_millis(s.link.slow_rtt_ms),
        loss: s.link.loss,
        speed: s.speed,
    };
    let net = Net::new(shape, s.seed);
    let mut w = World::new(net.clone(), clock.clone());
    let mut rng = StdRng::seed_from_u64(s.seed);

    // Honest processes: indexers first (each seeded with up to two earlier ones), then nodes
    // (each seeded with two indexers); a share is slow, a share has a skewed clock.
    let honest = s.indexers + s.nodes;
    for k in 0..honest {
        let kind = if k < s.indexers {
            Kind::Indexer
        } else {
            Kind::Node
        };
        let pool: Vec<usize> =
            (0..s
                .indexers
                .min(if kind == Kind::Indexer { k } else { s.indexers }))
                .collect();
        let seeds: Vec<_> = pool
            .choose_multiple(&mut rng, 2)
            .map(|&j| w.addr(j))
            .collect();
        let slow = rng.gen_bool(s.link.slow_fraction.clamp(0.0, 1.0));
        let skew = match &s.skew {
            Some(sk) if rng.gen_bool(sk.fraction.clamp(0.0, 1.0)) => {
                if rng.gen_bool(0.5) {
                    sk.max_ms
                } else {
                    -sk.max_ms
                }
            }
            _ => 0,
        };
        w.add(kind, slow, skew, seeds);
    }
    let hostile_n = s
        .hostile
        .as_ref()
        .map_or(0, |h| (h.fraction * honest as f64).round() as usize);
    for _ in 0..hostile_n {
        w.add(Kind::Hostile, false, 0, Vec::new());
    }

    // The timeline: starts (spread for nodes), then the scenario's events.
    let t0 = clock.now();
    let mut plan: Vec<(Timestamp, Step)> = Vec::new();
    for i in 0..honest {
        let at = if i < s.indexers || s.join_spread_secs == 0 {
            0
        } else {
            rng.gen_range(0..s.join_spread_secs * 1000)
        };
        plan.push((t0.plus(Duration::from_millis(at)), Step::Start(i)));
    }
    for e in &s.events {
        plan.push((
            t0.plus(Duration::from_secs(e.at_secs)),
            Step::Act(e.action.clone()),
        ));
    }
    plan.sort_by_key(|(t, _)| *t);
    let mut plan: std::collections::VecDeque<_> = plan.into();

    let end = t0.plus(Duration::from_secs(s.duration_secs));
    let warm = t0.plus(Duration::from_secs(s.warmup_secs.min(s.duration_secs)));
    let bar = progress.then(|| {
        let b = ProgressBar::new(s.duration_secs);
        b.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} protocol s ({elapsed} real)",
            )
            .expect("a valid template"),
        );
        b.set_message(s.name.clone());
        b
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let lag = lag_probe(stop_rx.clone());
    let mut hostile_started = hostile_n == 0;
    let mut bytes_warm = None;
    let mut banned: HashSet<(usize, usize)> = HashSet::new();
    let mut max_stall = Duration::ZERO;
    let mut partitions: Vec<(Timestamp, Timestamp, Vec<u64>)> = Vec::new();
    let poll_every = Duration::from_secs(30);
    let mut next_poll = t0.plus(poll_every);

    loop {
        let now = clock.now();
        if !hostile_started
            && plan
                .iter()
                .all(|(_, st)| !matches!(st, Step::Start(j) if *j < s.indexers))
        {
            start_hostile(s, &w, honest, &stop_rx)?;
            hostile_started = true;
        }
        if bytes_warm.is_none() && now >= warm {
            bytes_warm = Some(bytes(&w));
        }
        if now >= next_poll {
            max_stall = max_stall.max(poll(&w, &mut banned).await);
            next_poll = clock.now().plus(poll_every);
        }
        match plan.front() {
            Some((t, _)) if *t <= now => {
                let (_, step) = plan.pop_front().expect("front checked");
                match step {
                    Step::Start(i) => w.start(i).await?,
                    Step::Act(a) => {
                        act(&mut w, &a, &mut rng, &mut plan, &mut partitions, honest).await
                    }
                }
                continue;
            }
            _ => {}
        }
        if now >= end {
            break;
        }
        let next = plan
            .front()
            .map_or(end, |(t, _)| *t)
            .min(end)
            .min(next_poll);
        let wait = clock
            .real(next.since(clock.now()))
            .min(Duration::from_millis(200));
        tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        if let Some(b) = &bar {
            b.set_position(clock.now().since(t0).as_secs().min(s.duration_secs));
        }
    }
    if let Some(b) = bar {
        b.finish();
    }
    let bytes_end = bytes(&w);
    let finish = measure::sample();
    let end_t = clock.now();
    for p in partitions.iter_mut() {
        if p.1 == Timestamp::ZERO {
            p.1 = end_t;
        }
    }
    // Lookups come before the last poll: what they cause (bans included) is counted.
    let (lookups, lookup_failures) = lookups(s, &w, &mut rng).await;
    max_stall = max_stall.max(poll(&w, &mut banned).await);
    let (pools, sessions) = final_view(&w).await;
    let _ = stop_tx.send(true);
    let real = real_start.elapsed();
    let lag = *lag.borrow();
    Ok(Outcome {
        lag,
        bytes_warm: bytes_warm.unwrap_or_else(|| vec![0; w.peers.len()]),
        world: w,
        t0,
        end: end_t,
        bytes_end,
        lookups,
        lookup_failures,
        pools,
        sessions,
        max_stall,
        start,
        finish,
        real,
        partitions,
    })
}

fn start_hostile(
    s: &Scenario,
    w: &World,
    honest: usize,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let Some(h) = &s.hostile else { return Ok(()) };
    let targets = hostile::Targets {
        indexers: (0..s.indexers)
            .map(|j| (w.peers[j].identity.peer_id(), w.addr(j)))
            .collect(),
        honest: (0..honest)
            .map(|j| {
                let name = if j < s.indexers {
                    format!("indexer-{j:04}")
                } else {
                    format!("site-{j:04}")
                };
                (w.peers[j].identity.did(), name)
            })
            .collect(),
    };
    for i in honest..w.peers.len() {
        hostile::spawn(
            &w.net,
            i,
            w.peers[i].identity.clone(),
            w.psk,
            w.clock.clone(),
            targets.clone(),
            h.attacks.clone(),
            Duration::from_secs(h.every_secs),
            s.seed ^ i as u64,
            stop.clone(),
        )?;
    }
    Ok(())
}

/// Honest processes an action may pick, among those up.
fn candidates(w: &World, who: Who) -> Vec<usize> {
    match who {
        Who::All => w.live(None),
        Who::Indexers => w.live(Some(Kind::Indexer)),
        Who::Nodes => w.live(Some(Kind::Node)),
    }
}

fn pick(w: &World, who: Who, fraction: f64, rng: &mut StdRng) -> Vec<usize> {
    let c = candidates(w, who);
    let n = ((c.len() as f64) * fraction).round().max(1.0) as usize;
    c.choose_multiple(rng, n.min(c.len())).copied().collect()
}

async fn act(
    w: &mut World,
    a: &Action,
    rng: &mut StdRng,
    plan: &mut std::collections::VecDeque<(Timestamp, Step)>,
    partitions: &mut Vec<(Timestamp, Timestamp, Vec<u64>)>,
    honest: usize,
) {
    let now = w.clock.now();
    match a {
        Action::Crash { fraction, how, who } => {
            for i in pick(w, *who, *fraction, rng) {
                w.crash(i, *how).await;
            }
        }
        Action::Restart {
            fraction,
            how,
            who,
            down_secs,
        } => {
            let victims = pick(w, *who, *fraction, rng);
            // All go down at once (a mass restart), then come back together.
            let downs = victims.iter().map(|&i| {
                w.net.crash(i, *how);
                (i, w.peers[i].app.take())
            });
            let downs: Vec<_> = downs.collect();
            let stops = downs.into_iter().map(|(i, app)| async move {
                if let Some(app) = app {
                    let _ = tokio::time::timeout(Duration::from_secs(10), app.shutdown()).await;
                }
                i
            });
            let stopped = futures::future::join_all(stops).await;
            {
                let mut log = w.log.lock();
                for &i in &stopped {
                    log.life.push(crate::world::Life {
                        t: now,
                        peer: i,
                        up: false,
                        how: Some(*how),
                    });
                }
            }
            let back = now.plus(Duration::from_secs(*down_secs));
            let pos = plan
                .iter()
                .position(|(t, _)| *t > back)
                .unwrap_or(plan.len());
            for (k, i) in stopped.into_iter().enumerate() {
                plan.insert(pos + k, (back, Step::Start(i)));
            }
        }
        Action::Partition { fraction } => {
            let second: HashSet<usize> = (0..honest)
                .filter(|_| rng.gen_bool(fraction.clamp(0.0, 1.0)))
                .collect();
            let sides: Vec<u64> = (0..w.peers.len())
                .map(|i| u64::from(second.contains(&i)))
                .collect();
            let s2 = sides.clone();
            w.net.partition(move |i| s2[i]);
            partitions.push((now, Timestamp::ZERO, sides));
        }
        Action::Heal => {
            w.net.heal();
            if let Some(p) = partitions.last_mut() {
                p.1 = now;
            }
        }
    }
}

fn bytes(w: &World) -> Vec<u64> {
    (0..w.peers.len()).map(|i| w.net.node(i).total()).collect()
}

/// Polls every live honest process: new bans go to the log; returns the longest status
/// round trip of an indexer, in protocol time.
async fn poll(w: &World, banned: &mut HashSet<(usize, usize)>) -> Duration {
    let mut stall = Duration::ZERO;
    let now = w.clock.now();
    let calls = w.live(None).into_iter().map(|i| {
        let client = w.peers[i].app.as_ref().expect("live").client.clone();
        async move {
            let t = Instant::now();
            let st = tokio::time::timeout(Duration::from_secs(30), client.status()).await;
            (i, t.elapsed(), st)
        }
    });
    for (i, took, st) in futures::future::join_all(calls).await {
        if w.peers[i].kind == Kind::Indexer {
            stall = stall.max(w.clock.protocol(took));
        }
        let Ok(Ok(st)) = st else {
            tracing::debug!(process = i, "status unanswered");
            continue;
        };
        tracing::debug!(process = i, banned = st.banned.len(), "status");
        for b in st.banned {
            let Some(&j) = w.by_id.get(&b) else { continue };
            if banned.insert((i, j)) {
                w.log.push(Obs {
                    t: now,
                    observer: i,
                    report: Report::Banned { peer: j },
                });
            }
        }
    }
    stall
}

/// DHT lookups from random live processes of random live nodes' `/node/` records (indexers
/// publish `/indexer/` records, so only nodes are targets).
async fn lookups(s: &Scenario, w: &World, rng: &mut StdRng) -> (Vec<(Duration, u32)>, usize) {
    let nodes = w.live(Some(Kind::Node));
    if s.lookups == 0 || nodes.len() < 2 {
        return (Vec::new(), 0);
    }
    // Each lookup from another process while there are enough (a process looking up far more
    // than its publish budget a minute would be struck for kad's caching PUTs).
    let mut sources = nodes.clone();
    sources.shuffle(rng);
    let pairs: Vec<(usize, usize)> = (0..s.lookups)
        .map(|k| {
            let a = sources[k % sources.len()];
            let b = loop {
                let b = *nodes.choose(rng).expect("nodes");
                if b != a {
                    break b;
                }
            };
            (a, b)
        })
        .collect();
    let mut ok = Vec::new();
    let mut failed = 0;
    for chunk in pairs.chunks(20) {
        let calls = chunk.iter().map(|&(a, b)| {
            let client = w.peers[a].app.as_ref().expect("live").client.clone();
            let key = node_key(&w.peers[b].identity.did());
            async move { tokio::time::timeout(Duration::from_secs(120), client.lookup(key)).await }
        });
        for r in futures::future::join_all(calls).await {
            match r {
                Ok(Ok(l)) => ok.push((w.clock.protocol(l.elapsed), l.requests)),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "lookup failed");
                    failed += 1
                }
                Err(_) => {
                    tracing::warn!("lookup timed out");
                    failed += 1
                }
            }
        }
    }
    (ok, failed)
}

/// Who each live node keeps in its pool, and which nodes each live indexer holds sessions for.
async fn final_view(w: &World) -> (HashMap<usize, Vec<usize>>, HashMap<usize, Vec<usize>>) {
    let mut pools = HashMap::new();
    let mut sessions = HashMap::new();
    for i in w.live(None) {
        let client = &w.peers[i].app.as_ref().expect("live").client;
        let Ok(Ok(st)) = tokio::time::timeout(Duration::from_secs(30), client.status()).await
        else {
            continue;
        };
        let idx = |p: &libp2p::PeerId| w.by_id.get(p).copied();
        pools.insert(i, st.indexers.iter().filter_map(idx).collect());
        sessions.insert(i, st.sessions.iter().filter_map(|s| idx(&s.peer)).collect());
    }
    (pools, sessions)
}
