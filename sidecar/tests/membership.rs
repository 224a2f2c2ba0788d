//! Multi-node membership tests: the node pool (membership plane) driven by the real swarm.
//! Observed through `Client::membership_events`, so no transition is missed.

mod common;

use common::*;
use garden_sidecar::config::{Config, Role};
use garden_sidecar::membership::node::{Event as MembershipEvent, EvictReason};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::broadcast;

fn fast(mut c: Config) -> Config {
    c.membership.heartbeat_interval_secs = 1;
    c.membership.allow_loopback = true;
    c.membership.suspect_timeout_secs = 3;
    c.membership.eviction_grace_secs = 3600;
    c.discovery.indexer_discovery_interval_secs = 2;
    c
}

fn node_cfg(seed: &Multiaddr, max: usize) -> Config {
    let mut c = fast(config(Role::Node, "n", std::slice::from_ref(seed)));
    c.discovery.max_indexers = max;
    c
}

/// Waits for an event matching `pred`, skipping others.
async fn expect(
    rx: &mut broadcast::Receiver<MembershipEvent>,
    what: &str,
    pred: impl Fn(&MembershipEvent) -> bool,
) -> MembershipEvent {
    within(what, async {
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

/// One of `ids` in the node's pool. The node may have joined it before the test subscribed
/// to its events (it joins within milliseconds on an idle machine): the pool is read after
/// subscribing, then the events are awaited.
async fn registry_indexer_joined(
    node: &garden_sidecar::app::App,
    rx: &mut broadcast::Receiver<MembershipEvent>,
    ids: &[PeerId],
) -> PeerId {
    let st = node.client.status().await.unwrap();
    if let Some(p) = st.indexers.iter().find(|p| ids.contains(p)) {
        return *p;
    }
    let joined = expect(
        rx,
        "a registry indexer joins",
        |e| matches!(e, MembershipEvent::Joined(p) if ids.contains(p)),
    )
    .await;
    let MembershipEvent::Joined(p) = joined else {
        unreachable!()
    };
    p
}

/// Starts a seed indexer and two more indexers registered in the DHT.
async fn three_indexers(
    cfg: impl Fn(Config) -> Config,
) -> (garden_sidecar::app::App, Vec<garden_sidecar::app::App>) {
    let seed = start(&cfg(fast(config(Role::Indexer, "ix-seed", &[])))).await;
    let seed_addr = addr(&seed).await;
    let mut others = Vec::new();
    for i in 0..2 {
        let ix = start(&cfg(fast(config(
            Role::Indexer,
            &format!("ix-{i}"),
            std::slice::from_ref(&seed_addr),
        ))))
        .await;
        publish(&ix).await;
        others.push(ix);
    }
    publish(&seed).await;
    (seed, others)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_indexer_is_suspected_then_declared_dead_and_replaced() {
    let (seed, mut others) = three_indexers(|c| c).await;
    let node = start(&node_cfg(&addr(&seed).await, 2)).await;
    let mut rx = node.client.membership_events().await.unwrap();
    let ids: Vec<PeerId> = others.iter().map(|a| a.client.peer_id()).collect();

    // The seed plus one indexer found in the DHT registry.
    let victim = registry_indexer_joined(&node, &mut rx, &ids).await;
    // Let it answer a few heartbeats, then kill it (no tombstone: a crash).
    let st = eventually("two indexers in the pool", || async {
        let st = node.client.status().await.ok()?;
        (st.indexers.len() == 2).then_some(st)
    })
    .await;
    assert!(st.indexers.contains(&victim));
    let i = ids.iter().position(|p| *p == victim).unwrap();
    others.remove(i).shutdown().await;
    let survivor = ids[1 - i];

    expect(&mut rx, "victim suspected", |e| {
        *e == MembershipEvent::Suspected(victim)
    })
    .await;
    expect(
        &mut rx,
        "victim declared dead",
        |e| matches!(e, MembershipEvent::Evicted { peer, .. } if *peer == victim),
    )
    .await;
    // Replacement from the registry (the dead one may be retried first; it fails again).
    expect(&mut rx, "survivor joins", |e| {
        *e == MembershipEvent::Joined(survivor)
    })
    .await;
    let st = node.client.status().await.unwrap();
    assert!(
        st.indexers.contains(&seed.client.peer_id()),
        "seeds are sticky"
    );

    node.shutdown().await;
    for a in others {
        a.shutdown().await;
    }
    seed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refutation_clears_a_false_suspicion() {
    // Indexers refuse heartbeats beyond 3 per 5-second rate window (without banning), so a
    // live indexer heartbeated every second stops answering for the rest of its window: the
    // node suspects it; the indirect probe through the seed finds it reachable, so it stays
    // suspected instead of dead; when its window frees up, the next successful heartbeat
    // refutes the suspicion.
    let limit = |mut c: Config| {
        c.membership.suspect_timeout_secs = 600;
        c.gater.max_heartbeats_per_minute = 3;
        c.gater.rate_window_secs = 5;
        c.gater.strikes_before_ban = 10_000;
        c
    };
    let (seed, others) = three_indexers(limit).await;
    let mut ncfg = node_cfg(&addr(&seed).await, 2);
    ncfg.membership.suspect_timeout_secs = 600;
    let node = start(&ncfg).await;
    let mut rx = node.client.membership_events().await.unwrap();
    let ids: Vec<PeerId> = others.iter().map(|a| a.client.peer_id()).collect();
    let x = registry_indexer_joined(&node, &mut rx, &ids).await;

    expect(&mut rx, "x suspected", |e| {
        *e == MembershipEvent::Suspected(x)
    })
    .await;
    // The refusal window is 5 s; the suspect timeout (600 s) is far beyond the deadline, so
    // only a refutation or an eviction by the indirect probe can end this wait.
    let ev = within("suspicion cleared", async {
        loop {
            match rx.recv().await {
                Ok(MembershipEvent::Cleared(p)) if p == x => return Ok(()),
                Ok(MembershipEvent::Evicted { peer, reason }) if peer == x => return Err(reason),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    assert_eq!(ev, Ok(()), "x must be refuted, not evicted");
    let st = node.client.status().await.unwrap();
    assert!(st.indexers.contains(&x) && !st.suspected.contains(&x));

    node.shutdown().await;
    for a in others {
        a.shutdown().await;
    }
    seed.shutdown().await;
}

/// Indexers for the score tests: heartbeats every second must not trip the rate limit.
fn steady(mut c: Config) -> Config {
    c = fast(c);
    c.gater.max_heartbeats_per_minute = 1_000;
    c
}

/// A node without seeds that evicts on score after 8 s online below `threshold` (by then the
/// uptime dimension of a healthy indexer is close to 1); it finds
/// indexers by dialling them and looking them up in the DHT registry, so none is a (sticky) seed.
fn demanding_node(max: usize, threshold: f64) -> Config {
    let mut c = fast(config(Role::Node, "n", &[]));
    c.discovery.max_indexers = max;
    c.membership.eviction_grace_secs = 8;
    c.membership.eviction_threshold_start = threshold;
    c.membership.eviction_threshold_cap = threshold;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_indexer_is_kept_even_below_the_eviction_threshold() {
    let ix = start(&steady(config(Role::Indexer, "ix", &[]))).await;
    let ix_id = ix.client.peer_id();
    // A bar of 100 cannot be met (the latency dimension is below 1 for any round trip).
    let node = start(&demanding_node(1, 100.0)).await;
    let mut rx = node.client.membership_events().await.unwrap();
    node.client.dial(addr(&ix).await).await.unwrap();
    expect(&mut rx, "the indexer joins from the registry", |e| {
        *e == MembershipEvent::Joined(ix_id)
    })
    .await;

    // Wait until a heartbeat was answered, and scored, with more than the 8 s grace online:
    // that response met every eviction condition but "not the last one".
    let first_seen = &std::cell::Cell::new(None);
    let client = &node.client;
    let member = eventually("a score computed past the grace", || async move {
        let st = client.status().await.ok()?;
        let m = st.members.into_iter().find(|m| m.info.peer == ix_id)?;
        let seen = m.last_seen?;
        let first = *first_seen.get().get_or_insert(seen);
        first_seen.set(Some(first));
        (seen.since(first) >= std::time::Duration::from_secs(10)).then_some(m)
    })
    .await;
    assert!(
        member.score < 100.0,
        "score {} is below the bar",
        member.score
    );
    assert!(!member.is_seed);
    let st = node.client.status().await.unwrap();
    assert_eq!(st.indexers, vec![ix_id], "the last indexer stays");
    while let Ok(e) = rx.try_recv() {
        assert!(
            !matches!(e, MembershipEvent::Evicted { .. }),
            "unexpected {e:?}"
        );
    }

    node.shutdown().await;
    ix.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_indexers_the_lower_scoring_one_is_evicted() {
    // Same health, but `full` announces room for 2 nodes: with our node its fill rate is 0.5,
    // which costs 5 of the 10 points of the free-capacity dimension (score ≈ 94 against ≈ 99
    // for `free`, whose fill rate is 1/500). The bar of 97 sits between them.
    let free = start(&steady(config(Role::Indexer, "free", &[]))).await;
    let mut full_cfg = steady(config(Role::Indexer, "full", &[]));
    full_cfg.discovery.indexer_capacity = 2;
    let full = start(&full_cfg).await;
    let (free_id, full_id) = (free.client.peer_id(), full.client.peer_id());
    let node = start(&demanding_node(2, 97.0)).await;
    let mut rx = node.client.membership_events().await.unwrap();
    node.client.dial(addr(&free).await).await.unwrap();
    node.client.dial(addr(&full).await).await.unwrap();

    let evicted = within("a score eviction", async {
        let mut joined = Vec::new();
        loop {
            match rx.recv().await {
                Ok(MembershipEvent::Joined(p)) => joined.push(p),
                Ok(MembershipEvent::Evicted { peer, reason }) => return (peer, reason, joined),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    let (peer, reason, joined) = evicted;
    assert!(
        joined.contains(&free_id) && joined.contains(&full_id),
        "both joined first: {joined:?}"
    );
    assert_eq!(peer, full_id, "the lower-scoring indexer goes ({reason:?})");
    assert!(
        matches!(reason, EvictReason::LowScore { threshold, .. } if threshold == 97.0),
        "{reason:?}"
    );
    let st = node.client.status().await.unwrap();
    let kept = st
        .members
        .iter()
        .find(|m| m.info.peer == free_id)
        .expect("free stays");
    assert!(kept.score >= 97.0, "free scores {}", kept.score);

    node.shutdown().await;
    free.shutdown().await;
    full.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_are_given_the_identified_listen_addresses() {
    let ix = start(&steady(config(Role::Indexer, "ix", &[]))).await;
    let ix_addr = addr(&ix).await;
    // Two listen addresses: the connection's remote address can only ever be one of them.
    let mut ncfg = node_cfg(&ix_addr, 1);
    ncfg.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into(), "/ip4/127.0.0.1/tcp/0".into()];
    let node = start(&ncfg).await;
    let node_id = node.client.peer_id();
    let mut listen = node.client.status().await.unwrap().listen_addrs;
    listen.sort();
    assert_eq!(listen.len(), 2);

    let addrs = eventually(
        "the session carries the node's listen addresses",
        || async {
            let st = ix.client.status().await.ok()?;
            let mut a = st.sessions.into_iter().find(|s| s.peer == node_id)?.addrs;
            a.sort();
            (a.len() == 2).then_some(a)
        },
    )
    .await;
    assert_eq!(addrs, listen);

    node.shutdown().await;
    ix.shutdown().await;
}
