//! Multi-node security tests: PSK isolation, forged/expired records, rate limit → ban.
//! The adversary is a bare libp2p swarm (Kademlia with an unvalidated memory store) inside
//! the private network, so it can put whatever bytes it likes.

mod common;

use std::sync::Arc;

use common::*;
use futures::StreamExt;
use garden_sidecar::config::Role;
use garden_sidecar::discovery::record::{
    node_key, sign_body, Draft, RecordBody, RecordKind, VERSION,
};
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::net::{behaviour::KAD_PROTOCOL, client::Error, transport};
use libp2p::{
    kad::{self, store::MemoryStore},
    swarm::SwarmEvent,
    Multiaddr, Swarm,
};

struct Adversary {
    identity: Arc<NodeIdentity>,
    swarm: Swarm<kad::Behaviour<MemoryStore>>,
}

impl Adversary {
    fn new(target: &Multiaddr) -> Self {
        let identity = Arc::new(NodeIdentity::generate());
        let t = transport::build(identity.keypair(), psk()).unwrap();
        let pid = identity.peer_id();
        let mut kad =
            kad::Behaviour::with_config(pid, MemoryStore::new(pid), kad::Config::new(KAD_PROTOCOL));
        kad.set_mode(Some(kad::Mode::Client));
        let cfg = libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(std::time::Duration::from_secs(60));
        let mut swarm = Swarm::new(t, kad, pid, cfg);
        let Some(libp2p::multiaddr::Protocol::P2p(peer)) = target.iter().last() else {
            panic!("no /p2p/")
        };
        swarm.behaviour_mut().add_address(&peer, target.clone());
        Self { identity, swarm }
    }

    /// Puts raw bytes and drives the swarm until the put query ends.
    async fn put(&mut self, key: &str, value: Vec<u8>) {
        let rec = kad::Record::new(kad::RecordKey::new(&key), value);
        let id = self
            .swarm
            .behaviour_mut()
            .put_record(rec, kad::Quorum::One)
            .unwrap();
        within("adversary put", async {
            loop {
                if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                    id: qid,
                    result: kad::QueryResult::PutRecord(_),
                    ..
                }) = self.swarm.select_next_some().await
                {
                    if qid == id {
                        return;
                    }
                }
            }
        })
        .await
    }

    fn own_record(&self, name: &str) -> Vec<u8> {
        Draft {
            kind: RecordKind::Peer,
            name: name.into(),
            addrs: vec![],
            location: None,
            indexer: None,
            links: Default::default(),
            ttl_ms: 60_000,
        }
        .sign(
            &self.identity,
            garden_sidecar::time::Clock::system().now().as_millis(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_psk_cannot_connect() {
    let indexer = start(&config(Role::Indexer, "ix", &[])).await;
    let seed = addr(&indexer).await;
    let outsider = start_with_psk(&config(Role::Node, "outsider", &[]), other_psk()).await;
    let res = within("outsider dial", outsider.client.dial(seed.clone())).await;
    assert!(
        matches!(res, Err(Error::Dial { .. })),
        "dial must fail, got {res:?}"
    );
    let st = indexer.client.status().await.unwrap();
    assert!(!st.connected.contains(&outsider.client.peer_id()));
    // A member with the PSK connects to the same address.
    let member = start(&config(Role::Node, "member", &[])).await;
    within("member dial", member.client.dial(seed))
        .await
        .expect("member connects");
    for app in [outsider, member, indexer] {
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_expired_records_are_rejected_by_the_dht() {
    let indexer = start(&config(Role::Indexer, "ix", &[])).await;
    let seed = addr(&indexer).await;
    let honest = start(&config(Role::Node, "honest", std::slice::from_ref(&seed))).await;
    publish(&honest).await;
    let mut adv = Adversary::new(&seed);

    // 1. Forged: claims the victim's DID and key, signed by the adversary.
    let victim = NodeIdentity::generate();
    let now = garden_sidecar::time::Clock::system().now().as_millis();
    let body = RecordBody {
        version: VERSION,
        kind: RecordKind::Peer,
        did: victim.did(),
        name: "victim".into(),
        public_key: victim.public().encode_protobuf(),
        addrs: vec![],
        issued_at_ms: now,
        expires_at_ms: now + 60_000,
        location: None,
        indexer: None,
        links: Default::default(),
    };
    adv.put(&node_key(&victim.did()), sign_body(&adv.identity, &body))
        .await;
    let res = within(
        "lookup forged",
        honest.client.lookup(node_key(&victim.did())),
    )
    .await;
    assert!(
        matches!(res, Err(Error::NotFound { .. })),
        "forged record must not resolve: {res:?}"
    );

    // 2. Expired: correctly signed by the adversary, but its lifetime is over.
    let mut old = body.clone();
    old.did = adv.identity.did();
    old.public_key = adv.identity.public().encode_protobuf();
    old.issued_at_ms = now - 120_000;
    old.expires_at_ms = now - 60_000;
    adv.put(
        &node_key(&adv.identity.did()),
        sign_body(&adv.identity, &old),
    )
    .await;
    let res = within(
        "lookup expired",
        honest.client.lookup(node_key(&adv.identity.did())),
    )
    .await;
    assert!(
        matches!(res, Err(Error::NotFound { .. })),
        "expired record must not resolve: {res:?}"
    );

    // 3. The same adversary's valid record is accepted: the DHT path itself works.
    let good = adv.own_record("adv");
    adv.put(&node_key(&adv.identity.did()), good).await;
    let ok = within(
        "lookup valid",
        honest.client.lookup(node_key(&adv.identity.did())),
    )
    .await;
    assert_eq!(
        ok.expect("valid record resolves").record.peer_id,
        adv.identity.peer_id()
    );

    for app in [honest, indexer] {
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_its_publish_limit_is_throttled_then_banned() {
    let mut cfg = config(Role::Indexer, "ix", &[]);
    cfg.gater.max_publishes_per_minute = 2;
    cfg.gater.strikes_before_ban = 3;
    let indexer = start(&cfg).await;
    let seed = addr(&indexer).await;
    let mut adv = Adversary::new(&seed);
    let key = node_key(&adv.identity.did());
    let pid = adv.identity.peer_id();

    // Within the limit: stored.
    for _ in 0..2 {
        let v = adv.own_record("adv");
        adv.put(&key, v).await;
    }
    let stored = indexer.client.status().await.unwrap().stored_records;
    // Over the limit: refused (throttled), then banned after the third strike.
    for _ in 0..2 {
        let v = adv.own_record("adv");
        adv.put(&key, v).await;
        let st = indexer.client.status().await.unwrap();
        assert!(!st.banned.contains(&pid), "throttled, not yet banned");
    }
    let v = adv.own_record("adv");
    adv.put(&key, v).await;
    eventually("adversary banned", || async {
        let st = indexer.client.status().await.ok()?;
        (st.banned.contains(&pid) && !st.connected.contains(&pid)).then_some(())
    })
    .await;
    assert_eq!(
        indexer.client.status().await.unwrap().stored_records,
        stored,
        "throttled puts were not stored"
    );

    // Reconnecting is refused while banned.
    adv.swarm.dial(seed).unwrap();
    within("redial refused", async {
        loop {
            match adv.swarm.select_next_some().await {
                SwarmEvent::ConnectionClosed { .. }
                | SwarmEvent::OutgoingConnectionError { .. } => return,
                _ => {}
            }
        }
    })
    .await;
    let st = indexer.client.status().await.unwrap();
    assert!(!st.connected.contains(&pid));
    indexer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_burst_guard_refuses_too_many_new_peers() {
    let mut cfg = config(Role::Indexer, "ix", &[]);
    cfg.gater.max_new_peers_per_window = 2;
    cfg.gater.window_secs = 600;
    let indexer = start(&cfg).await;
    let seed = addr(&indexer).await;
    let mut newcomers = Vec::new();
    for i in 0..3 {
        newcomers.push(start(&config(Role::Node, &format!("n{i}"), &[])).await);
    }
    within("first new peer", newcomers[0].client.dial(seed.clone()))
        .await
        .expect("admitted");
    within("second new peer", newcomers[1].client.dial(seed.clone()))
        .await
        .expect("admitted");
    // The third is denied once its connection is secured: it never stays connected.
    let _ = within("third new peer", newcomers[2].client.dial(seed.clone())).await;
    let third = newcomers[2].client.peer_id();
    eventually("third peer denied", || async {
        let st = indexer.client.status().await.ok()?;
        (st.denied_connections >= 1 && !st.connected.contains(&third)).then_some(())
    })
    .await;
    // Known peers are not counted again: the first one reconnects freely.
    let st = indexer.client.status().await.unwrap();
    assert!(st.connected.contains(&newcomers[0].client.peer_id()));
    for app in newcomers {
        app.shutdown().await;
    }
    indexer.shutdown().await;
}
