//! Multi-node discovery tests on loopback TCP: join, record resolution, search, departure,
//! indexer registry.

mod common;

use std::time::Duration;

use common::*;
use garden_sidecar::config::Role;
use garden_sidecar::discovery::record::{indexer_key, name_key, node_key, RecordKind};
use garden_sidecar::discovery::search::Needle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_through_a_seed_and_records_resolve() {
    let indexer = start(&config(Role::Indexer, "ix-1", &[])).await;
    let seed = addr(&indexer).await;
    let mut acfg = config(Role::Node, "alice", std::slice::from_ref(&seed));
    acfg.location.granularity = 2; // country: ±3° latitude, ±4° longitude
    acfg.location.latitude = Some(48.85);
    acfg.location.longitude = Some(2.35);
    let alice = start(&acfg).await;
    let bob = start(&config(Role::Node, "bob", &[seed])).await;

    publish(&alice).await;
    let did = alice.client.did().to_string();
    let found = within("lookup by DID", bob.client.lookup(node_key(&did)))
        .await
        .expect("found");
    assert_eq!(found.record.peer_id, alice.client.peer_id());
    assert_eq!(found.record.body.name, "alice");
    assert!(
        !found.record.addrs().is_empty(),
        "record carries signed addresses"
    );
    let loc = found.record.body.location.expect("signed, fuzzed location");
    assert_eq!(loc.granularity, 2);
    assert!((loc.latitude - 48.85).abs() <= 3.0 && (loc.longitude - 2.35).abs() <= 4.0);
    assert!(
        loc.latitude != 48.85 || loc.longitude != 2.35,
        "raw coordinates are not published"
    );

    let by_name = within("lookup by name", bob.client.lookup(name_key("alice")))
        .await
        .expect("found");
    assert_eq!(by_name.record.peer_id, alice.client.peer_id());

    let st = bob.client.status().await.unwrap();
    assert!(
        st.indexers.contains(&indexer.client.peer_id()),
        "seed is in the pool"
    );

    for app in [alice, bob, indexer] {
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_by_name_did_and_peer_id_across_indexers() {
    let ix1 = start(&config(Role::Indexer, "ix-1", &[])).await;
    let ix2 = start(&config(Role::Indexer, "ix-2", &[addr(&ix1).await])).await;
    let alice = start(&config(Role::Node, "alice-lab", &[addr(&ix1).await])).await;
    let bob = start(&config(Role::Node, "bob", &[addr(&ix2).await])).await;
    publish(&alice).await;
    publish(&bob).await;

    let idle = Duration::from_secs(3);
    let want = alice.client.peer_id();
    let needles = [
        Needle::Name("alice".into()), // substring: answered by indexers over gossip
        Needle::Did(alice.client.did().to_string()),
        Needle::PeerId(want.to_string()),
    ];
    for needle in needles {
        let hit = eventually("search hit", || {
            let needle = needle.clone();
            let bob = &bob;
            async move {
                let mut rx = bob.client.search(needle, idle).await.ok()?;
                while let Some(v) = rx.recv().await {
                    if v.peer_id == want {
                        return Some(v);
                    }
                }
                None
            }
        })
        .await;
        assert_eq!(hit.body.name, "alice-lab");
    }
    // Too-short substring needles are refused (IX-14).
    assert!(bob
        .client
        .search(Needle::Name("al".into()), idle)
        .await
        .is_err());

    for app in [alice, bob, ix2, ix1] {
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departure_tombstone_replaces_the_record() {
    let indexer = start(&config(Role::Indexer, "ix", &[])).await;
    let seed = addr(&indexer).await;
    let alice = start(&config(Role::Node, "alice", std::slice::from_ref(&seed))).await;
    let bob = start(&config(Role::Node, "bob", &[seed])).await;
    publish(&alice).await;
    let key = node_key(alice.client.did());
    within("lookup", bob.client.lookup(key.clone()))
        .await
        .expect("live record");

    within("leave", alice.client.leave())
        .await
        .expect("tombstone stored");
    let after = within("lookup after leave", bob.client.lookup(key))
        .await
        .expect("tombstone");
    assert_eq!(after.record.body.kind, RecordKind::Tombstone);
    assert!(
        alice.client.publish().await.is_err(),
        "no republish after leaving"
    );

    for app in [alice, bob, indexer] {
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_discover_indexers_from_the_dht_registry() {
    let ix1 = start(&config(Role::Indexer, "ix-1", &[])).await;
    let ix2 = start(&config(Role::Indexer, "ix-2", &[addr(&ix1).await])).await;
    publish(&ix2).await;
    publish(&ix1).await;
    let mut ncfg = config(Role::Node, "n", &[addr(&ix1).await]);
    ncfg.membership.allow_loopback = true; // everything is on 127.0.0.1 here
    let node = start(&ncfg).await;

    let rec = within(
        "indexer record",
        node.client.lookup(indexer_key(&ix2.client.peer_id())),
    )
    .await
    .expect("indexer record");
    assert_eq!(rec.record.body.kind, RecordKind::Indexer);
    let info = rec.record.body.indexer.expect("load figures");
    assert_eq!(info.capacity, 500);

    let want = ix2.client.peer_id();
    let cands = eventually("registry lists ix-2", || async {
        let c = node.client.discover_indexers().await.ok()?;
        c.iter().any(|c| c.peer_id == want).then_some(c)
    })
    .await;
    assert!(cands.iter().all(|c| c.info.fill_rate() < 1.0));
    let st = eventually("discovered indexer joins the pool", || async {
        let st = node.client.status().await.ok()?;
        st.indexers.contains(&want).then_some(st)
    })
    .await;
    assert!(st.indexers.len() <= 5);

    // A strict indexer with seeds heartbeats them too (indexer mesh).
    let st2 = ix2.client.status().await.unwrap();
    assert!(
        st2.indexers.contains(&ix1.client.peer_id()),
        "ix-2 keeps its seed ix-1 in its pool"
    );
    eventually(
        "ix-1 holds heartbeat sessions of the node and of ix-2",
        || async {
            let st = ix1.client.status().await.ok()?;
            (st.heartbeat_sessions >= 2).then_some(())
        },
    )
    .await;

    for app in [node, ix2, ix1] {
        app.shutdown().await;
    }
}
