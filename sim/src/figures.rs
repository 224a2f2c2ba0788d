//! Figures computed from a run's observations and ground truth, printed as a table (or JSON),
//! and the scenario's expectations checked against them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use garden_sidecar::time::Timestamp;
use serde::Serialize;

use crate::run::Outcome;
use crate::scenario::Scenario;
use crate::world::{Kind, Report};

/// The figures of one run.
#[derive(Debug, Default, Serialize)]
pub struct Figures {
    pub scenario: String,
    pub indexers: usize,
    pub nodes: usize,
    pub hostile: usize,
    pub speed: u32,
    pub protocol_secs: f64,
    pub real_secs: f64,
    /// CPU seconds per real second (2.0 = both cores busy).
    pub cpu_load: f64,
    /// Crashed indexers and the (holder, crash) pairs to detect.
    pub crashes: usize,
    pub crash_pairs: usize,
    /// Pairs whose holder still keeps the crashed indexer in its pool at the end, without
    /// ever having suspected or evicted it.
    pub crash_undetected: usize,
    /// Pairs whose holder dropped the crashed indexer without a membership event.
    pub crash_dropped_silently: usize,
    /// Protocol seconds from a crash to the holder's first suspicion or eviction.
    pub detect_p50_s: Option<f64>,
    pub detect_p99_s: Option<f64>,
    /// Protocol seconds until every holder of a crashed indexer knew (per crash).
    pub all_know_p50_s: Option<f64>,
    pub all_know_p99_s: Option<f64>,
    /// Protocol seconds from a crash to the holder's "dead" verdict.
    pub dead_p50_s: Option<f64>,
    pub dead_p99_s: Option<f64>,
    /// Suspicions and "dead" verdicts about indexers that were up and reachable.
    pub false_suspicions: usize,
    pub false_dead: usize,
    pub observer_hours: f64,
    pub false_dead_per_10k_node_hours: f64,
    /// Live honest processes isolated at the end: indexers no live node keeps, nodes with an
    /// empty pool or no indexer session.
    pub permanent_false_dead: usize,
    pub lookups: usize,
    pub lookup_failures: usize,
    pub lookup_p50_ms: Option<f64>,
    pub lookup_p95_ms: Option<f64>,
    pub lookup_hops_p50: Option<f64>,
    pub lookup_hops_p95: Option<f64>,
    /// Honest processes banned by honest processes, and (observer, banned) pairs.
    pub honest_banned: usize,
    pub honest_ban_pairs: usize,
    pub honest_bans_per_hour: f64,
    pub hostile_banned: usize,
    /// Link bytes per honest process and protocol hour after the warm-up.
    pub node_bytes_per_hour: f64,
    pub indexer_bytes_per_hour: f64,
    pub rss_total_mib: f64,
    pub rss_per_process_kib: f64,
    /// Longest status round trip of an indexer (protocol seconds): how long a loop stalled.
    pub max_stall_s: f64,
    /// Scheduling lag of the runtime, real milliseconds (p99, max).
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
    /// Membership events an observer lost (broadcast lag); figures may undercount by this.
    pub lagged_events: u64,
}

fn pct(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    Some(v[i])
}

/// Up intervals of each process (ground truth).
fn up_intervals(o: &Outcome) -> HashMap<usize, Vec<(Timestamp, Timestamp)>> {
    let log = o.world.log.lock();
    let mut open: HashMap<usize, Timestamp> = HashMap::new();
    let mut out: HashMap<usize, Vec<(Timestamp, Timestamp)>> = HashMap::new();
    for l in &log.life {
        if l.up {
            open.insert(l.peer, l.t);
        } else if let Some(s) = open.remove(&l.peer) {
            out.entry(l.peer).or_default().push((s, l.t));
        }
    }
    for (p, s) in open {
        out.entry(p).or_default().push((s, o.end));
    }
    out
}

fn is_up(iv: &HashMap<usize, Vec<(Timestamp, Timestamp)>>, p: usize, t: Timestamp) -> bool {
    iv.get(&p)
        .is_some_and(|v| v.iter().any(|(a, b)| *a <= t && t <= *b))
}

/// Within `grace` of a transition of `p` (a restart, a crash) or of a partition edge:
/// verdicts there are about a real change, not false.
fn near_change(
    o: &Outcome,
    iv: &HashMap<usize, Vec<(Timestamp, Timestamp)>>,
    a: usize,
    p: usize,
    t: Timestamp,
    grace: Duration,
) -> bool {
    let near = |x: Timestamp| t.since(x) <= grace && x <= t.plus(Duration::from_secs(1));
    if iv
        .get(&p)
        .is_some_and(|v| v.iter().any(|(s, e)| near(*s) || near(*e)))
    {
        return true;
    }
    o.partitions
        .iter()
        .any(|(s, e, sides)| sides.get(a) != sides.get(p) && (t >= *s && t <= e.plus(grace)))
}

pub fn compute(s: &Scenario, o: &Outcome) -> Figures {
    let w = &o.world;
    let iv = up_intervals(o);
    let log = w.log.lock();
    let honest: Vec<usize> = (0..w.peers.len()).filter(|&i| w.is_honest(i)).collect();
    let mut f = Figures {
        scenario: s.name.clone(),
        indexers: s.indexers,
        nodes: s.nodes,
        hostile: w.peers.len() - honest.len(),
        speed: s.speed,
        protocol_secs: o.end.since(o.t0).as_secs_f64(),
        real_secs: o.real.as_secs_f64(),
        cpu_load: (o.finish.cpu.saturating_sub(o.start.cpu)).as_secs_f64()
            / o.real.as_secs_f64().max(1e-9),
        lagged_events: log.lagged,
        ..Default::default()
    };

    // Crash detection: who held each crashed indexer, and when each learnt.
    let mut pools: HashMap<usize, HashSet<usize>> = HashMap::new();
    let mut detect = Vec::new();
    let mut dead = Vec::new();
    let mut all_know = Vec::new();
    let obs = &log.obs;
    let mut crashes: Vec<(Timestamp, usize)> = log
        .life
        .iter()
        .filter(|l| !l.up && w.peers[l.peer].kind == Kind::Indexer)
        .map(|l| (l.t, l.peer))
        .collect();
    crashes.sort();
    let mut k = 0;
    for (tc, c) in &crashes {
        while k < obs.len() && obs[k].t <= *tc {
            match obs[k].report {
                Report::Joined { peer } => {
                    pools.entry(obs[k].observer).or_default().insert(peer);
                }
                Report::Evicted { peer, .. } => {
                    pools.entry(obs[k].observer).or_default().remove(&peer);
                }
                _ => {}
            }
            k += 1;
        }
        let holders: Vec<usize> = pools
            .iter()
            .filter(|(h, p)| p.contains(c) && is_up(&iv, **h, *tc))
            .map(|(h, _)| *h)
            .collect();
        let mut worst: Option<f64> = Some(0.0);
        for h in holders {
            let first = |want_dead: bool| {
                obs.iter().find(|x| {
                    x.t >= *tc
                        && x.observer == h
                        && match x.report {
                            Report::Suspected { peer } => !want_dead && peer == *c,
                            Report::Evicted { peer, .. } => peer == *c,
                            _ => false,
                        }
                })
            };
            // A holder that went down itself before learning is not counted.
            let Some(x) = first(false) else {
                if !is_up(&iv, h, o.end) {
                    continue;
                }
                f.crash_pairs += 1;
                // No event: the holder may have dropped it silently (a pending candidate
                // removed without an `Evicted`); only a crashed indexer still in its pool
                // at the end is a crash it never learnt of.
                if o.pools.get(&h).is_some_and(|p| p.contains(c)) {
                    f.crash_undetected += 1;
                    worst = None;
                } else {
                    f.crash_dropped_silently += 1;
                }
                continue;
            };
            f.crash_pairs += 1;
            let d = x.t.since(*tc).as_secs_f64();
            detect.push(d);
            worst = worst.map(|m| m.max(d));
            if let Some(x) = first(true) {
                dead.push(x.t.since(*tc).as_secs_f64());
            }
        }
        if let Some(m) = worst {
            all_know.push(m);
        }
    }
    f.crashes = crashes.len();
    f.detect_p50_s = pct(&mut detect, 0.5);
    f.detect_p99_s = pct(&mut detect, 0.99);
    f.dead_p50_s = pct(&mut dead, 0.5);
    f.dead_p99_s = pct(&mut dead, 0.99);
    f.all_know_p50_s = pct(&mut all_know, 0.5);
    f.all_know_p99_s = pct(&mut all_know, 0.99);

    // False verdicts after the warm-up: about an indexer up and reachable from the observer,
    // not within a suspicion timeout of its own restart or a partition edge.
    let warm = o.t0.plus(Duration::from_secs(s.warmup_secs));
    let grace = Duration::from_secs(180 + 60);
    for x in obs.iter().filter(|x| x.t >= warm) {
        let (peer, is_dead) = match x.report {
            Report::Suspected { peer } => (peer, false),
            Report::Evicted { peer, dead: true } => (peer, true),
            _ => continue,
        };
        if peer >= w.peers.len()
            || !is_up(&iv, peer, x.t)
            || near_change(o, &iv, x.observer, peer, x.t, grace)
        {
            continue;
        }
        if is_dead {
            f.false_dead += 1;
        } else {
            f.false_suspicions += 1;
        }
    }
    let hours = |i: usize| -> f64 {
        iv.get(&i).map_or(0.0, |v| {
            v.iter()
                .map(|(a, b)| b.since((*a).max(warm)).as_secs_f64())
                .sum::<f64>()
                / 3600.0
        })
    };
    f.observer_hours = honest.iter().map(|&i| hours(i)).sum();
    f.false_dead_per_10k_node_hours = if f.observer_hours > 0.0 {
        f.false_dead as f64 / f.observer_hours * 10_000.0
    } else {
        0.0
    };

    // Isolated at the end.
    let held: HashSet<usize> = o.pools.values().flatten().copied().collect();
    let in_session: HashSet<usize> = o.sessions.values().flatten().copied().collect();
    for i in w.live(None) {
        let isolated = match w.peers[i].kind {
            Kind::Indexer => !held.contains(&i) && s.nodes > 0,
            Kind::Node => o.pools.get(&i).is_none_or(|p| p.is_empty()) || !in_session.contains(&i),
            Kind::Hostile => false,
        };
        if isolated {
            tracing::warn!(process = i, kind = ?w.peers[i].kind, pool = ?o.pools.get(&i), "isolated at the end");
        }
        f.permanent_false_dead += usize::from(isolated);
    }

    // DHT lookups.
    let mut ms: Vec<f64> = o
        .lookups
        .iter()
        .map(|(d, _)| d.as_secs_f64() * 1000.0)
        .collect();
    let mut hops: Vec<f64> = o.lookups.iter().map(|(_, h)| f64::from(*h)).collect();
    f.lookups = o.lookups.len() + o.lookup_failures;
    f.lookup_failures = o.lookup_failures;
    f.lookup_p50_ms = pct(&mut ms, 0.5);
    f.lookup_p95_ms = pct(&mut ms, 0.95);
    f.lookup_hops_p50 = pct(&mut hops, 0.5);
    f.lookup_hops_p95 = pct(&mut hops, 0.95);

    // Bans.
    let mut honest_banned = HashSet::new();
    let mut hostile_banned = HashSet::new();
    for x in obs {
        if let Report::Banned { peer } = x.report {
            if w.is_honest(peer) {
                honest_banned.insert(peer);
                f.honest_ban_pairs += 1;
            } else {
                hostile_banned.insert(peer);
            }
        }
    }
    f.honest_banned = honest_banned.len();
    f.hostile_banned = hostile_banned.len();
    f.honest_bans_per_hour = f.honest_ban_pairs as f64 / (f.protocol_secs / 3600.0).max(1e-9);

    // Bytes after the warm-up, per process and protocol hour.
    let span_h = o.end.since(warm).as_secs_f64() / 3600.0;
    let per_hour = |kind: Kind| {
        let ids: Vec<usize> = honest
            .iter()
            .copied()
            .filter(|&i| w.peers[i].kind == kind)
            .collect();
        let b: u64 = ids.iter().map(|&i| o.bytes_end[i] - o.bytes_warm[i]).sum();
        let h: f64 = ids.iter().map(|&i| hours(i)).sum();
        if h > 0.0 && span_h > 0.0 {
            b as f64 / h
        } else {
            0.0
        }
    };
    f.node_bytes_per_hour = per_hour(Kind::Node);
    f.indexer_bytes_per_hour = per_hour(Kind::Indexer);
    let rss = o.finish.rss.saturating_sub(o.start.rss) as f64;
    f.rss_total_mib = o.finish.rss as f64 / (1024.0 * 1024.0);
    f.rss_per_process_kib = rss / 1024.0 / (w.peers.len().max(1) as f64);
    f.max_stall_s = o.max_stall.as_secs_f64();
    f.lag_p99_ms = o.lag.0.as_secs_f64() * 1000.0;
    f.lag_max_ms = o.lag.1.as_secs_f64() * 1000.0;
    f
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

/// The figures as a two-column table.
pub fn table(f: &Figures) -> String {
    let rows: Vec<(&str, String)> = vec![
        (
            "processes (indexers / nodes / hostile)",
            format!("{} / {} / {}", f.indexers, f.nodes, f.hostile),
        ),
        (
            "protocol time, real time, speed",
            format!(
                "{:.0} s, {:.0} s, ×{}",
                f.protocol_secs, f.real_secs, f.speed
            ),
        ),
        ("CPU (cores busy on average)", format!("{:.2}", f.cpu_load)),
        (
            "crashed indexers / holders / never learnt / dropped silently",
            format!(
                "{} / {} / {} / {}",
                f.crashes, f.crash_pairs, f.crash_undetected, f.crash_dropped_silently
            ),
        ),
        (
            "crash known by a holder p50 / p99 (s)",
            format!("{} / {}", opt(f.detect_p50_s, 1), opt(f.detect_p99_s, 1)),
        ),
        (
            "crash known by all holders p50 / p99 (s)",
            format!(
                "{} / {}",
                opt(f.all_know_p50_s, 1),
                opt(f.all_know_p99_s, 1)
            ),
        ),
        (
            "crash declared dead p50 / p99 (s)",
            format!("{} / {}", opt(f.dead_p50_s, 1), opt(f.dead_p99_s, 1)),
        ),
        (
            "false suspicions / false dead",
            format!("{} / {}", f.false_suspicions, f.false_dead),
        ),
        (
            "false dead per 10 000 node-hours",
            format!(
                "{:.1} ({:.1} node-hours)",
                f.false_dead_per_10k_node_hours, f.observer_hours
            ),
        ),
        (
            "permanent false-dead at the end",
            f.permanent_false_dead.to_string(),
        ),
        (
            "DHT lookups (failed)",
            format!("{} ({})", f.lookups, f.lookup_failures),
        ),
        (
            "DHT lookup p50 / p95 (ms)",
            format!("{} / {}", opt(f.lookup_p50_ms, 0), opt(f.lookup_p95_ms, 0)),
        ),
        (
            "DHT lookup requests p50 / p95",
            format!(
                "{} / {}",
                opt(f.lookup_hops_p50, 0),
                opt(f.lookup_hops_p95, 0)
            ),
        ),
        (
            "honest processes banned (pairs)",
            format!("{} ({})", f.honest_banned, f.honest_ban_pairs),
        ),
        (
            "honest bans per protocol hour",
            format!("{:.1}", f.honest_bans_per_hour),
        ),
        (
            "hostile processes banned",
            format!("{} of {}", f.hostile_banned, f.hostile),
        ),
        (
            "link bytes per node-hour (all protocols)",
            format!("{:.0}", f.node_bytes_per_hour),
        ),
        (
            "link bytes per indexer-hour",
            format!("{:.0}", f.indexer_bytes_per_hour),
        ),
        (
            "RSS total (MiB) / per process (KiB)",
            format!("{:.0} / {:.0}", f.rss_total_mib, f.rss_per_process_kib),
        ),
        (
            "longest indexer status round trip (s)",
            format!("{:.1}", f.max_stall_s),
        ),
        (
            "runtime lag p99 / max (real ms)",
            format!("{:.0} / {:.0}", f.lag_p99_ms, f.lag_max_ms),
        ),
        ("membership events lost to lag", f.lagged_events.to_string()),
    ];
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = format!("## {}\n", f.scenario);
    for (k, v) in rows {
        out.push_str(&format!("  {k:<width$}  {v}\n"));
    }
    out
}

/// The scenario's expectations that failed.
pub fn check(s: &Scenario, f: &Figures) -> Vec<String> {
    let e = &s.expect;
    let mut bad = Vec::new();
    if let Some(m) = e.max_honest_bans {
        if f.honest_banned as u64 > m {
            bad.push(format!(
                "{} honest processes banned (at most {m})",
                f.honest_banned
            ));
        }
    }
    if e.crashes_detected && (f.crash_undetected > 0 || f.crashes == 0) {
        bad.push(format!(
            "{} of {} crash holders never learnt of the crash ({} crashes)",
            f.crash_undetected, f.crash_pairs, f.crashes
        ));
    }
    if let Some(m) = e.max_permanent_false_dead {
        if f.permanent_false_dead as u64 > m {
            bad.push(format!(
                "{} live processes isolated at the end (at most {m})",
                f.permanent_false_dead
            ));
        }
    }
    if let Some(m) = e.max_false_dead {
        if f.false_dead as u64 > m {
            bad.push(format!(
                "{} false dead verdicts (at most {m})",
                f.false_dead
            ));
        }
    }
    if let Some(m) = e.min_lookup_success {
        let ok = (f.lookups - f.lookup_failures) as f64 / (f.lookups.max(1) as f64);
        if ok < m {
            bad.push(format!(
                "{:.0} % of lookups succeeded (at least {:.0} %)",
                ok * 100.0,
                m * 100.0
            ));
        }
    }
    bad
}
