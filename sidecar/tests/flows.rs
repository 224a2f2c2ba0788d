//! Protocol flows on an in-process network: real sidecars (the production swarm, behaviours
//! and state machines) over libp2p's memory transport with pnet + Noise + Yamux, and a
//! protocol clock running [`SPEED`] times faster than the wall clock, so minutes of protocol
//! time (heartbeats every 20 s, rate windows of a minute, SWIM timeouts) pass in seconds
//! without a socket.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use garden_sidecar::app::App;
use garden_sidecar::config::{Config, Role};
use garden_sidecar::discovery::search::Needle;
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::membership::node::{Event, EvictReason};
use garden_sidecar::time::Clock;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::broadcast;

/// Protocol seconds per real second.
const SPEED: u32 = 100;

/// A sidecar on the memory transport with default protocol settings.
async fn spawn(clock: &Clock, cfg: &Config) -> App {
    init_tracing();
    App::start_with_clock(
        Arc::new(NodeIdentity::generate()),
        psk(),
        cfg,
        clock.shared_origin(0),
        |_| {},
    )
    .await
    .expect("node starts")
}

/// Waits (real time) for an event matching `pred`.
async fn expect(
    rx: &mut broadcast::Receiver<Event>,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    within_for(Duration::from_secs(20), what, async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event loop stopped"),
            }
        }
    })
    .await
}

/// Polls `f` on the node's status until it holds.
async fn until_status(
    app: &App,
    what: &str,
    f: impl Fn(&garden_sidecar::net::Status) -> bool,
) -> garden_sidecar::net::Status {
    within_for(Duration::from_secs(20), what, async {
        loop {
            let st = app.client.status().await.expect("status");
            if f(&st) {
                return st;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_session_for_protocol_minutes_under_the_rate_limit() {
    let clock = Clock::scaled(SPEED, 0);
    let ix = spawn(&clock, &mem_config(Role::Indexer, "ix", &[])).await;
    let node = spawn(
        &clock,
        &mem_config(Role::Node, "site", &[mem_addr(&ix).await]),
    )
    .await;
    let ix_id = ix.client.peer_id();
    let t0 = clock.now();
    // Ten protocol minutes: thirty heartbeats at 20 s, against a limit of 5 per minute.
    let st = until_status(&node, "10 protocol minutes of answered heartbeats", |st| {
        st.members.iter().any(|m| {
            m.info.peer == ix_id
                && m.last_seen
                    .is_some_and(|t| t.since(t0) >= Duration::from_secs(600))
        })
    })
    .await;
    let m = st.members.iter().find(|m| m.info.peer == ix_id).unwrap();
    assert!(m.score > 0.0 && !m.suspected, "{m:?}");
    assert!(
        m.detail.challenge_total > 0,
        "challenges ride on heartbeats: {:?}",
        m.detail
    );
    let ixs = ix.client.status().await.unwrap();
    assert_eq!(ixs.heartbeat_sessions, 1);
    assert!(
        ixs.banned.is_empty(),
        "an honest node heartbeating at its interval is never banned"
    );
    node.shutdown().await;
    ix.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_asked_as_witnesses_of_their_shared_indexer() {
    let clock = Clock::scaled(SPEED, 0);
    let ix = spawn(&clock, &mem_config(Role::Indexer, "ix", &[])).await;
    let seed = mem_addr(&ix).await;
    let a = spawn(
        &clock,
        &mem_config(Role::Node, "site-a", std::slice::from_ref(&seed)),
    )
    .await;
    let b = spawn(
        &clock,
        &mem_config(Role::Node, "site-b", std::slice::from_ref(&seed)),
    )
    .await;
    let ix_id = ix.client.peer_id();
    // The indexer names the other node as a witness; each node asks it and tallies the
    // answer: both saw the same born-at, so the witness is consistent.
    for n in [&a, &b] {
        // (The first round may find the other node before its first response: "not seen".)
        until_status(n, "a consistent witness answer tallied", |st| {
            st.members
                .iter()
                .any(|m| m.info.peer == ix_id && m.detail.witness_consistent > 0)
        })
        .await;
    }
    for app in [a, b, ix] {
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_indexer_is_declared_dead_by_the_indirect_probe_before_the_suspicion_timeout() {
    let clock = Clock::scaled(SPEED, 0);
    let long = |mut c: Config| {
        // Without the indirect probe a suspicion would last a protocol hour (36 s here).
        c.membership.suspect_timeout_secs = 3600;
        c
    };
    // The voter is the node's seed (seeds are sticky, never suspected); the victim is an
    // indexer the node finds in the DHT registry.
    let voter = spawn(&clock, &long(mem_config(Role::Indexer, "voter", &[]))).await;
    let seed = mem_addr(&voter).await;
    let victim = spawn(
        &clock,
        &long(mem_config(
            Role::Indexer,
            "victim",
            std::slice::from_ref(&seed),
        )),
    )
    .await;
    publish(&victim).await;
    let mut ncfg = long(mem_config(Role::Node, "site", std::slice::from_ref(&seed)));
    ncfg.discovery.max_indexers = 2;
    let node = spawn(&clock, &ncfg).await;
    let victim_id = victim.client.peer_id();
    let mut rx = node.client.membership_events().await.unwrap();
    until_status(
        &node,
        "the victim joins from the registry and answers",
        |st| {
            st.members
                .iter()
                .any(|m| m.info.peer == victim_id && m.last_seen.is_some())
        },
    )
    .await;
    until_status(&voter, "the node heartbeats the voter", |st| {
        st.heartbeat_sessions >= 1
    })
    .await;
    victim.shutdown().await;
    expect(&mut rx, "the victim suspected", |e| {
        *e == Event::Suspected(victim_id)
    })
    .await;
    let t = clock.now();
    let e = expect(
        &mut rx,
        "the victim declared dead",
        |e| matches!(e, Event::Evicted { peer, .. } if *peer == victim_id),
    )
    .await;
    assert_eq!(
        e,
        Event::Evicted {
            peer: victim_id,
            reason: EvictReason::Dead
        }
    );
    assert!(
        clock.now().since(t) < Duration::from_secs(3000),
        "declared dead by the probe, not the timeout"
    );
    node.shutdown().await;
    voter.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_by_name_finds_every_matching_site_through_the_indexer() {
    // A search needs no protocol minutes; a slower clock keeps record lifetimes (120 s) well
    // above scheduling delays on a loaded machine.
    let clock = Clock::scaled(10, 0);
    let ix = spawn(&clock, &mem_config(Role::Indexer, "ix", &[])).await;
    let seed = mem_addr(&ix).await;
    let a = spawn(
        &clock,
        &mem_config(Role::Node, "alpha-site", std::slice::from_ref(&seed)),
    )
    .await;
    let b = spawn(
        &clock,
        &mem_config(Role::Node, "beta-site", std::slice::from_ref(&seed)),
    )
    .await;
    let searcher = spawn(
        &clock,
        &mem_config(Role::Node, "searcher", std::slice::from_ref(&seed)),
    )
    .await;
    for n in [&a, &b] {
        publish(n).await;
    }
    // Records reach the indexer with the first heartbeats; search until both are found.
    let want: Vec<PeerId> = vec![a.client.peer_id(), b.client.peer_id()];
    within_for(
        Duration::from_secs(20),
        "both sites found by a name search",
        async {
            loop {
                let mut rx = searcher
                    .client
                    .search(Needle::parse("site").unwrap(), Duration::from_millis(500))
                    .await
                    .unwrap();
                let mut found = Vec::new();
                while let Some(v) = rx.recv().await {
                    found.push(v.peer_id);
                }
                if want.iter().all(|p| found.contains(p)) {
                    assert!(
                        !found.contains(&searcher.client.peer_id()),
                        "'searcher' does not contain 'site'"
                    );
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        },
    )
    .await;
    // A needle under the minimum length is refused with a clear error.
    let short = searcher
        .client
        .search(Needle::parse("si").unwrap(), Duration::from_millis(100))
        .await;
    assert!(short.is_err());
    for app in [a, b, searcher, ix] {
        app.shutdown().await;
    }
}

/// Three indexers and ten nodes at default settings for three protocol minutes (nodes re-sign
/// every 40 s; kad's replication interval is an hour at most): no honest peer is banned and
/// the indexer mesh holds. On the code before the fix, indexers re-put every record a
/// heartbeat carried to the other servers and banned each other 44 s after start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_indexers_and_nodes_never_ban_each_other() {
    // Thirteen sidecars on two shared cores: a slower clock keeps scheduling delays well
    // below record lifetimes and session timeouts.
    let clock = Clock::scaled(15, 0);
    let first = spawn(&clock, &mem_config(Role::Indexer, "ix-0", &[])).await;
    let seed = mem_addr(&first).await;
    let mut indexers = vec![first];
    for i in 1..3 {
        let ix = spawn(
            &clock,
            &mem_config(
                Role::Indexer,
                &format!("ix-{i}"),
                std::slice::from_ref(&seed),
            ),
        )
        .await;
        indexers.push(ix);
    }
    let mut nodes = Vec::new();
    for i in 0..10 {
        let mut c = mem_config(
            Role::Node,
            &format!("site-{i}"),
            std::slice::from_ref(&seed),
        );
        c.discovery.max_indexers = 3;
        // Go's cadence, the one the defect showed at: records re-signed every 40 s.
        c.discovery.record_ttl_secs = 120;
        c.discovery.republish_interval_secs = 40;
        nodes.push(spawn(&clock, &c).await);
    }
    let t0 = clock.now();
    within_for(Duration::from_secs(30), "three protocol minutes", async {
        while clock.now().since(t0) < Duration::from_secs(180) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let ix_ids: Vec<PeerId> = indexers.iter().map(|a| a.client.peer_id()).collect();
    for app in indexers.iter().chain(&nodes) {
        let st = app.client.status().await.unwrap();
        assert!(
            st.banned.is_empty(),
            "{} banned {:?}",
            st.peer_id,
            st.banned
        );
    }
    // The indexers stay one connected mesh (each reaches every other, directly or through one).
    let mut links = Vec::new();
    for ix in &indexers {
        let st = ix.client.status().await.unwrap();
        for p in ix_ids
            .iter()
            .filter(|p| **p != st.peer_id && st.connected.contains(p))
        {
            links.push((st.peer_id, *p));
        }
    }
    let mut reached = vec![ix_ids[0]];
    while let Some(next) =
        links
            .iter()
            .find_map(|(a, b)| match (reached.contains(a), reached.contains(b)) {
                (true, false) => Some(*b),
                (false, true) => Some(*a),
                _ => None,
            })
    {
        reached.push(next);
    }
    assert_eq!(reached.len(), 3, "the indexer mesh split: links {links:?}");
    let sessions: usize = {
        let mut n = 0;
        for ix in &indexers {
            n += ix.client.status().await.unwrap().heartbeat_sessions;
        }
        n
    };
    assert!(
        sessions >= 10,
        "every node keeps heartbeating ({sessions} sessions)"
    );
    for app in nodes.into_iter().chain(indexers) {
        app.shutdown().await;
    }
}

/// Indexers store each other's registry provider records (they arrive as ADD_PROVIDER,
/// which the application must store itself); before the fix each held only its own, so a
/// network of more than ~20 indexers left most of them undiscoverable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexers_store_each_others_registry_provider_records() {
    // Announcements are kad queries (10 protocol seconds to complete): a slow clock, and
    // announcements repeated every protocol minute.
    let clock = Clock::scaled(5, 0);
    let ix = |name: &str, seeds: &[Multiaddr]| {
        let mut c = mem_config(Role::Indexer, name, seeds);
        c.discovery.record_ttl_secs = 120;
        c.discovery.republish_interval_secs = 60;
        c
    };
    let first = spawn(&clock, &ix("ix-0", &[])).await;
    let seed = mem_addr(&first).await;
    let mut indexers = vec![first];
    for i in 1..4 {
        indexers.push(spawn(&clock, &ix(&format!("ix-{i}"), std::slice::from_ref(&seed))).await);
    }
    // Each stores the others' announcements (an indexer that joined after another's last
    // announcement gets it at the next republish; lookups ask several servers, so the union
    // is what nodes see).
    for ix in &indexers {
        until_status(ix, "other indexers' provider records held", |st| {
            st.registry_providers >= 2
        })
        .await;
    }
    for app in indexers {
        app.shutdown().await;
    }
}

/// A searcher that indexers cannot reach back (no published record, like `garden search`)
/// asks an indexer directly and gets its answer on its own request. Before, results were only
/// ever sent back to the searcher's address, which nobody could find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_searcher_gets_answers_by_asking_indexers_directly() {
    let clock = Clock::scaled(10, 0);
    let ix = spawn(&clock, &mem_config(Role::Indexer, "ix", &[])).await;
    let ix_addr = mem_addr(&ix).await;
    let site = spawn(
        &clock,
        &mem_config(Role::Node, "bravo-site", std::slice::from_ref(&ix_addr)),
    )
    .await;
    publish(&site).await;
    // The searcher publishes nothing and has no seed: gossip cannot bring it anything.
    let searcher = App::start_with_clock(
        Arc::new(NodeIdentity::generate()),
        psk(),
        &mem_config(Role::Node, "", &[]),
        clock.shared_origin(0),
        |nc| nc.settings.publish = false,
    )
    .await
    .unwrap();
    let ix_info = garden_sidecar::membership::PeerInfo::new(
        ix.client.peer_id(),
        vec![ix_addr.iter().take(1).collect()],
    );
    let mut rx = searcher
        .client
        .search_at(
            Needle::parse("bravo").unwrap(),
            Duration::from_secs(2),
            vec![ix_info],
        )
        .await
        .unwrap();
    let hit = within_for(
        Duration::from_secs(20),
        "the indexer's direct answer",
        rx.recv(),
    )
    .await
    .expect("a hit");
    assert_eq!(hit.peer_id, site.client.peer_id());
    for app in [searcher, site, ix] {
        app.shutdown().await;
    }
}

/// Nodes whose clocks are five minutes ahead of and behind the network: no honest peer is
/// banned (before, a record from more than 60 s ahead cost two strikes), the offset is
/// reported on both sides, and the fast node's records are accepted and found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_clocks_are_reported_and_never_punished() {
    let clock = Clock::scaled(20, 0);
    let ix = spawn(&clock, &mem_config(Role::Indexer, "ix", &[])).await;
    let seed = mem_addr(&ix).await;
    let skewed = |off: i64, name: &str| {
        let c = mem_config(Role::Node, name, std::slice::from_ref(&seed));
        let clock = clock.shared_origin(off);
        async move {
            App::start_with_clock(Arc::new(NodeIdentity::generate()), psk(), &c, clock, |_| {})
                .await
                .unwrap()
        }
    };
    let ahead = skewed(300_000, "ahead-site").await;
    let behind = skewed(-300_000, "behind-site").await;
    for n in [&ahead, &behind] {
        let st = until_status(n, "the clock offset measured", |st| {
            st.clock_offset_ms.is_some()
        })
        .await;
        assert!(
            st.clock_offset_ms.unwrap().unsigned_abs() > 250_000,
            "{:?}",
            st.clock_offset_ms
        );
    }
    assert!(
        until_status(&ahead, "", |_| true)
            .await
            .clock_offset_ms
            .unwrap()
            > 0
    );
    publish(&ahead).await;
    let searcher = spawn(
        &clock,
        &mem_config(Role::Node, "searcher", std::slice::from_ref(&seed)),
    )
    .await;
    within_for(Duration::from_secs(20), "the fast node is found", async {
        loop {
            let mut rx = searcher
                .client
                .search(
                    Needle::parse("ahead-site").unwrap(),
                    Duration::from_millis(500),
                )
                .await
                .unwrap();
            if let Some(v) = rx.recv().await {
                assert_eq!(v.peer_id, ahead.client.peer_id());
                return;
            }
        }
    })
    .await;
    for app in [&ix, &ahead, &behind, &searcher] {
        assert!(app.client.status().await.unwrap().banned.is_empty());
    }
    for app in [searcher, ahead, behind, ix] {
        app.shutdown().await;
    }
}

/// A node that leaves (signed tombstones) loses its heartbeat session at once, not when the
/// session expires (2 protocol minutes later) — a tombstoned or banned peer no longer shows
/// among an indexer's sessions or witnesses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departed_node_leaves_the_indexer_registry_at_once() {
    // kad queries (the tombstone put) time out after 10 protocol seconds: at ×100 that is
    // 100 ms of a loaded machine.
    let clock = Clock::scaled(20, 0);
    let ix = spawn(&clock, &mem_config(Role::Indexer, "ix", &[])).await;
    let node = spawn(
        &clock,
        &mem_config(Role::Node, "leaving-site", &[mem_addr(&ix).await]),
    )
    .await;
    until_status(&ix, "a session", |st| st.heartbeat_sessions == 1).await;
    node.client.leave().await.expect("tombstones stored");
    let t = clock.now();
    until_status(&ix, "the session gone", |st| st.heartbeat_sessions == 0).await;
    assert!(
        clock.now().since(t) < Duration::from_secs(100),
        "well before the session TTL"
    );
    node.shutdown().await;
    ix.shutdown().await;
}

/// An orbital site (a 12-minute orbit with 3-minute passes, time scaled; the figures in
/// docs/PERFORMANCE.md use a 90-minute orbit): while away by plan it
/// is neither suspected by its indexer (its session lives on) nor does it suspect its
/// indexer; it comes back at its next pass. Stopped for good, it is gone shortly after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orbital_site_is_not_suspected_inside_its_planned_absence_and_is_after_it() {
    let clock = Clock::scaled(50, 0);
    let ix = spawn(&clock, &mem_config(Role::Indexer, "ground", &[])).await;
    let mut c = mem_config(Role::Node, "sat", &[mem_addr(&ix).await]);
    c.profile.kind = garden_sidecar::config::ProfileKind::Orbital;
    c.profile.period_secs = 12 * 60;
    c.profile.window_secs = 3 * 60;
    c.profile.epoch_ms = clock.now().as_millis();
    let sat = spawn(&clock, &c).await;
    let mut rx = sat.client.membership_events().await.unwrap();
    until_status(&ix, "a session", |st| st.heartbeat_sessions == 1).await;
    let t0 = clock.now();
    // Through the absence (minutes 3 to 12) and into the next pass.
    within_for(Duration::from_secs(60), "the next pass", async {
        while clock.now().since(t0) < Duration::from_secs(12 * 60 + 30) {
            let st = ix.client.status().await.unwrap();
            assert_eq!(
                st.heartbeat_sessions,
                1,
                "session lost at minute {}",
                clock.now().since(t0).as_secs() / 60
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    while let Ok(e) = rx.try_recv() {
        assert!(
            !matches!(e, Event::Suspected(_) | Event::Evicted { .. }),
            "the satellite suspected its ground station: {e:?}"
        );
    }
    let st = sat.client.status().await.unwrap();
    assert!(
        st.members.iter().all(|m| !m.suspected
            && m.last_seen
                .is_some_and(|t| clock.now().since(t) < Duration::from_secs(120))),
        "heartbeats resumed"
    );
    // Gone for good during a pass: its session goes a few minutes later, not an orbit later.
    sat.shutdown().await;
    let t = clock.now();
    until_status(&ix, "the session gone", |st| st.heartbeat_sessions == 0).await;
    assert!(clock.now().since(t) < Duration::from_secs(10 * 60));
    ix.shutdown().await;
}
