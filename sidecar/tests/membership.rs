//! Multi-node membership tests: the node pool (membership plane) driven by the real swarm.
//! Observed through `Client::membership_events`, so no transition is missed.

mod common;

use common::*;
use garden_sidecar::config::{Config, Role};
use garden_sidecar::net::MembershipEvent;
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
async fn expect(rx: &mut broadcast::Receiver<MembershipEvent>, what: &str, pred: impl Fn(&MembershipEvent) -> bool) -> MembershipEvent {
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

/// Starts a seed indexer and two more indexers registered in the DHT.
async fn three_indexers(cfg: impl Fn(Config) -> Config) -> (garden_sidecar::app::App, Vec<garden_sidecar::app::App>) {
    let seed = start(&cfg(fast(config(Role::Indexer, "ix-seed", &[])))).await;
    let seed_addr = addr(&seed).await;
    let mut others = Vec::new();
    for i in 0..2 {
        let ix = start(&cfg(fast(config(Role::Indexer, &format!("ix-{i}"), std::slice::from_ref(&seed_addr))))).await;
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
    let joined = expect(&mut rx, "a registry indexer joins", |e| {
        matches!(e, MembershipEvent::Joined(p) if ids.contains(p))
    })
    .await;
    let MembershipEvent::Joined(victim) = joined else { unreachable!() };
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

    expect(&mut rx, "victim suspected", |e| *e == MembershipEvent::Suspected(victim)).await;
    expect(&mut rx, "victim declared dead", |e| matches!(e, MembershipEvent::Evicted { peer, .. } if *peer == victim)).await;
    // Replacement from the registry (the dead one may be retried first; it fails again).
    expect(&mut rx, "survivor joins", |e| *e == MembershipEvent::Joined(survivor)).await;
    let st = node.client.status().await.unwrap();
    assert!(st.indexers.contains(&seed.client.peer_id()), "seeds are sticky");

    node.shutdown().await;
    for a in others {
        a.shutdown().await;
    }
    seed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refutation_clears_a_false_suspicion() {
    // Indexers refuse heartbeats beyond 3 per minute (without banning), so a live indexer
    // stops answering for the rest of the minute: the node suspects it; the indirect probe
    // through the seed finds it reachable, so it stays suspected instead of dead; when its
    // window frees up, the next successful heartbeat refutes the suspicion.
    let limit = |mut c: Config| {
        c.membership.suspect_timeout_secs = 600;
        c.gater.max_heartbeats_per_minute = 3;
        c.gater.strikes_before_ban = 10_000;
        c
    };
    let (seed, others) = three_indexers(limit).await;
    let mut ncfg = node_cfg(&addr(&seed).await, 2);
    ncfg.membership.suspect_timeout_secs = 600;
    let node = start(&ncfg).await;
    let mut rx = node.client.membership_events().await.unwrap();
    let ids: Vec<PeerId> = others.iter().map(|a| a.client.peer_id()).collect();
    let joined = expect(&mut rx, "a registry indexer joins", |e| matches!(e, MembershipEvent::Joined(p) if ids.contains(p))).await;
    let MembershipEvent::Joined(x) = joined else { unreachable!() };

    expect(&mut rx, "x suspected", |e| *e == MembershipEvent::Suspected(x)).await;
    // The refusal window is one minute: allow well over that.
    let ev = within_for(
        std::time::Duration::from_secs(180),
        "suspicion cleared",
        async {
            loop {
                match rx.recv().await {
                    Ok(MembershipEvent::Cleared(p)) if p == x => return Ok(()),
                    Ok(MembershipEvent::Evicted { peer, reason }) if peer == x => return Err(reason),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        },
    )
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
