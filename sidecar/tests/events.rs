//! The NATS bridge between real sidecars (memory transport, scaled protocol clock) and a real
//! nats-server started by `scripts/nats.sh`: a resource created through NATS on one site
//! shows on its partner's outbound subject; bad payloads get an error naming the field; the
//! server killed and restarted loses nothing accepted.
//!
//! Skips (loudly) only when the nats-server binary is missing; `scripts/test.sh` exports
//! `GARDEN_NATS_SERVER` after `install-deps.sh` built it.

mod common;

use std::sync::Arc;

use common::nats::*;
use common::*;
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::resources::Did;
use garden_sidecar::time::Clock;
use serde_json::{json, Value};

/// Protocol seconds per real second.
const SPEED: u32 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_created_through_nats_reaches_the_partner_and_can_be_booked() {
    let Some(nats) = Nats::start("create") else {
        return;
    };
    let clock = Clock::scaled(SPEED, 0);
    let dir = data_dir("create");
    let (ida, idb) = (
        Arc::new(NodeIdentity::generate()),
        Arc::new(NodeIdentity::generate()),
    );
    let (da, db) = (Did::of(&ida), Did::of(&idb));
    let a = launch(&clock, &ida, &site(&dir, &nats.url, "garden.a")).await;
    let b = launch(&clock, &idb, &site(&dir, &nats.url, "garden.b")).await;
    b.client.dial(mem_addr(&a).await).await.expect("B dials A");
    let nc = async_nats::connect(&nats.url).await.expect("test client");
    let js = async_nats::jetstream::new(nc.clone());

    let now = clock.now().as_millis();
    let reply = request(&nc, "garden.a.resource.create", &gpu("gpu-1", &db, now)).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["version"], 1);
    let sent = &reply["sent"][0];
    assert_eq!(sent["peer"], idb.peer_id().to_string(), "{reply}");

    // B applied it and says so on its outbound subject.
    let got = wait_event(
        &js,
        "GARDEN_B_EVENTS",
        "garden.b.out.resource.received",
        |e| e["resource"]["id"] == "gpu-1",
    )
    .await;
    assert_eq!(got["outcome"], "applied", "{got}");
    assert_eq!(got["op"], "create");
    assert_eq!(got["resource"]["owner"], da.as_str());
    assert_eq!(got["from"]["peer"], ida.peer_id().to_string());
    assert_eq!(got["value"]["name"], "GPU box");
    assert_eq!(got["value"]["price_per_unit"], "1500000");
    // A's outbox reports the delivery of that entry.
    wait_event(
        &js,
        "GARDEN_A_EVENTS",
        "garden.a.out.delivery.delivered",
        |e| e["entry"] == sent["entry"],
    )
    .await;

    // B finds it in its catalogue and books it; A, the provider, receives the booking.
    let found = request(
        &nc,
        "garden.b.resource.search",
        json!({"owner": da.as_str()}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(found["resources"][0]["id"], "gpu-1", "{found}");
    let book = json!({
        "resource": {"owner": da.as_str(), "id": "gpu-1"},
        "start_ms": now + 3_600_000, "end_ms": now + 7_200_000, "units": 2, "nonce": 7,
    });
    let booked = request(&nc, "garden.b.booking.request", book.to_string().as_bytes()).await;
    assert_eq!(booked["ok"], true, "{booked}");
    assert_eq!(booked["booking"]["state"], "requested");
    let at_a = wait_event(&js, "GARDEN_A_EVENTS", "garden.a.out.booking", |e| {
        e["side"] == "provider"
    })
    .await;
    assert_eq!(at_a["outcome"], "requested", "{at_a}");
    assert_eq!(at_a["booking"]["id"]["nonce"], 7);
    assert_eq!(at_a["booking"]["consumer"], db.as_str());
    // More units than the resource has: refused, naming the field.
    let over = json!({
        "resource": {"owner": da.as_str(), "id": "gpu-1"},
        "start_ms": now + 3_600_000, "end_ms": now + 7_200_000, "units": 5, "nonce": 8,
    });
    let refused = request(&nc, "garden.b.booking.request", over.to_string().as_bytes()).await;
    assert_eq!(refused["error"]["field"], "units", "{refused}");

    // Update then delete reach B too, in order.
    let mut upd: Value = serde_json::from_slice(&gpu("gpu-1", &db, now)).unwrap();
    upd["name"] = json!("GPU box v2");
    let r = request(&nc, "garden.a.resource.update", upd.to_string().as_bytes()).await;
    assert_eq!(r["version"], 2, "{r}");
    let r = request(&nc, "garden.a.resource.delete", br#"{"id":"gpu-1"}"#).await;
    assert_eq!(r["version"], 3, "{r}");
    wait_event(
        &js,
        "GARDEN_B_EVENTS",
        "garden.b.out.resource.received",
        |e| e["op"] == "delete" && e["outcome"] == "applied",
    )
    .await;
    let ops: Vec<Value> = stored(&js, "GARDEN_B_EVENTS", "garden.b.out.resource.received")
        .await
        .iter()
        .map(|e| e["op"].clone())
        .collect();
    assert_eq!(ops, vec![json!("create"), json!("update"), json!("delete")]);
    a.shutdown().await;
    b.shutdown().await;
}

/// Delegation: a nano applies resource changes from its master only, and a master does not
/// push its own resources to its nano even when they are visible to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nano_takes_changes_only_from_its_master() {
    let Some(nats) = Nats::start("gate") else {
        return;
    };
    let clock = Clock::scaled(SPEED, 0);
    let dir = data_dir("gate");
    let (idm, idn, ids) = (
        Arc::new(NodeIdentity::generate()),
        Arc::new(NodeIdentity::generate()),
        Arc::new(NodeIdentity::generate()),
    );
    let (dn, ds) = (Did::of(&idn), Did::of(&ids));
    let mut cm = site(&dir, &nats.url, "garden.m");
    cm.delegation.nanos = vec![idn.peer_id().to_string()];
    let mut cn = site(&dir, &nats.url, "garden.n");
    cn.delegation.master = Some(idm.peer_id().to_string());
    let m = launch(&clock, &idm, &cm).await;
    let n = launch(&clock, &idn, &cn).await;
    let st = launch(&clock, &ids, &site(&dir, &nats.url, "garden.s")).await;
    let n_addr = mem_addr(&n).await;
    m.client.dial(n_addr.clone()).await.expect("M dials N");
    st.client.dial(n_addr).await.expect("S dials N");
    let nc = async_nats::connect(&nats.url).await.expect("test client");
    let js = async_nats::jetstream::new(nc.clone());
    let now = clock.now().as_millis();

    // A stranger's change reaches the nano and is refused there, naming its master.
    let r = request(&nc, "garden.s.resource.create", &gpu("s-gpu", &dn, now)).await;
    assert_eq!(r["ok"], true, "{r}");
    let got = wait_event(
        &js,
        "GARDEN_N_EVENTS",
        "garden.n.out.resource.received",
        |e| e["from"]["peer"] == ids.peer_id().to_string(),
    )
    .await;
    assert_eq!(got["outcome"], "refused", "{got}");
    let reason = got["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("nano of") && reason.contains(&idm.peer_id().to_string()),
        "{got}"
    );
    let found = request(
        &nc,
        "garden.n.resource.search",
        json!({"owner": ds.as_str()}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(found["resources"], json!([]), "nothing applied: {found}");

    // The master's own resource, visible to its nano and to S: only S is sent it.
    let mut res: Value = serde_json::from_slice(&gpu("m-gpu", &dn, now)).unwrap();
    res["visibility"] = json!({"partners": [dn.as_str(), ds.as_str()]});
    let r = request(&nc, "garden.m.resource.create", res.to_string().as_bytes()).await;
    assert_eq!(r["ok"], true, "{r}");
    let sent = r["sent"].as_array().expect("sent list");
    let to = |did: &Did| sent.iter().find(|x| x["did"] == did.as_str()).cloned();
    assert!(
        to(&dn).is_some_and(|x| x["withheld"].is_string() && x["entry"].is_null()),
        "{r}"
    );
    assert!(to(&ds).is_some_and(|x| x["entry"].is_string()), "{r}");
    m.shutdown().await;
    n.shutdown().await;
    st.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_payload_gets_an_error_reply_naming_the_field() {
    let Some(nats) = Nats::start("bad") else {
        return;
    };
    let clock = Clock::scaled(SPEED, 0);
    let dir = data_dir("bad");
    let ida = Arc::new(NodeIdentity::generate());
    let a = launch(&clock, &ida, &site(&dir, &nats.url, "garden.a")).await;
    let nc = async_nats::connect(&nats.url).await.expect("test client");
    let partner = Did::of(&NodeIdentity::generate());
    let mut v: Value = serde_json::from_slice(&gpu("gpu-1", &partner, 0)).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garden.a.resource.create",
            b"{not json".to_vec(),
            "(payload)",
        ),
        ("garden.a.resource.create", vec![b' '; 70_000], "(payload)"),
        (
            "garden.a.resource.create",
            {
                v["capacity"] = json!("four");
                v.to_string().into_bytes()
            },
            "capacity",
        ),
        (
            "garden.a.resource.create",
            {
                v["capacity"] = json!(4);
                v["colour"] = json!("red");
                v.to_string().into_bytes()
            },
            "colour",
        ),
        (
            "garden.a.resource.create",
            {
                v.as_object_mut().unwrap().remove("colour");
                v["name"] = json!("x".repeat(65));
                v.to_string().into_bytes()
            },
            "name",
        ),
        (
            "garden.a.resource.update",
            {
                v["name"] = json!("GPU");
                v.to_string().into_bytes()
            },
            "id",
        ),
        (
            "garden.a.resource.delete",
            br#"{"id":"Not Valid"}"#.to_vec(),
            "id",
        ),
        (
            "garden.a.resource.search",
            br#"{"kind":"gpu"}"#.to_vec(),
            "kind",
        ),
        (
            "garden.a.booking.request",
            br#"{"units":1}"#.to_vec(),
            "resource",
        ),
    ];
    for (subject, body, field) in cases {
        let r = request(&nc, subject, &body).await;
        assert_eq!(r["ok"], false, "{subject}: {r}");
        assert_eq!(r["error"]["field"], field, "{subject}: {r}");
        assert!(r["error"]["reason"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let s = a.events.as_ref().unwrap().stats();
    assert_eq!(s.bad_requests, 9, "{s:?}");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_loses_nothing_accepted() {
    let Some(nats) = Nats::start("outage") else {
        return;
    };
    let clock = Clock::scaled(SPEED, 0);
    let dir = data_dir("outage");
    let (ida, idb) = (
        Arc::new(NodeIdentity::generate()),
        Arc::new(NodeIdentity::generate()),
    );
    let db = Did::of(&idb);
    let a = launch(&clock, &ida, &site(&dir, &nats.url, "garden.a")).await;
    let b = launch(&clock, &idb, &site(&dir, &nats.url, "garden.b")).await;
    let nc = async_nats::connect(&nats.url).await.expect("test client");
    let js = async_nats::jetstream::new(nc.clone());
    // Accepted while B is unreachable: three resources wait in A's outbox.
    let now = clock.now().as_millis();
    let mut entries = Vec::new();
    for i in 0..3 {
        let r = request(
            &nc,
            "garden.a.resource.create",
            &gpu(&format!("r-{i}"), &db, now),
        )
        .await;
        assert_eq!(r["ok"], true, "{r}");
        entries.push(r["sent"][0]["entry"].clone());
    }
    // NATS dies; then A and B meet, and the deliveries happen during the outage.
    nats.kill();
    eventually("the sites see the outage", || async {
        let (sa, sb) = (a.events.as_ref()?.stats(), b.events.as_ref()?.stats());
        (!sa.connected && !sb.connected).then_some(())
    })
    .await;
    b.client.dial(mem_addr(&a).await).await.expect("B dials A");
    eventually("A's outbox drains during the outage", || async {
        let s = a.data_plane.as_ref()?.stats().await.ok()?;
        (s.outbox.depth == 0).then_some(())
    })
    .await;
    // Long enough for publish attempts to time out (2 s) and be retried later: the retries
    // carry the same message ids.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let sb = b.events.as_ref().unwrap().stats();
    assert_eq!(sb.pending, 3, "B's events wait for NATS: {sb:?}");
    assert!(sb.publish_failures > 0, "{sb:?}");
    // The server comes back with its store: both sites reconnect and publish everything once.
    nats.restart();
    let t0 = std::time::Instant::now();
    eventually("both sites published their queues", || async {
        let (sa, sb) = (a.events.as_ref()?.stats(), b.events.as_ref()?.stats());
        (sa.connected && sb.connected && sa.pending == 0 && sb.pending == 0).then_some((sa, sb))
    })
    .await;
    eprintln!(
        "both sites reconnected and published their queued events {} ms after the restart",
        t0.elapsed().as_millis()
    );
    let nc = async_nats::connect(&nats.url)
        .await
        .expect("test client again");
    let js2 = async_nats::jetstream::new(nc.clone());
    drop(js);
    let received = stored(&js2, "GARDEN_B_EVENTS", "garden.b.out.resource.received").await;
    let mut ids: Vec<String> = received
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec!["r-0", "r-1", "r-2"],
        "each mutation once: {received:?}"
    );
    assert!(received.iter().all(|e| e["outcome"] == "applied"));
    let delivered = stored(&js2, "GARDEN_A_EVENTS", "garden.a.out.delivery.delivered").await;
    let mut got: Vec<Value> = delivered.iter().map(|e| e["entry"].clone()).collect();
    got.sort_by_key(|v| v.to_string());
    entries.sort_by_key(|v| v.to_string());
    assert_eq!(got, entries, "each delivery once");
    // Requests work again after the reconnection.
    let r = request(&nc, "garden.b.resource.search", br#"{"name":"gpu"}"#).await;
    assert_eq!(r["resources"].as_array().map(Vec::len), Some(3), "{r}");
    let (sa, sb) = (
        a.events.as_ref().unwrap().stats(),
        b.events.as_ref().unwrap().stats(),
    );
    assert_eq!((sa.dropped, sb.dropped), (0, 0));
    eprintln!("after the outage: A {sa:?}, B {sb:?}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_waiting_for_nats_survive_a_restart_of_the_sidecar() {
    let Some(nats) = Nats::start("restart") else {
        return;
    };
    let clock = Clock::scaled(SPEED, 0);
    let dir = data_dir("restart");
    let (ida, idb) = (
        Arc::new(NodeIdentity::generate()),
        Arc::new(NodeIdentity::generate()),
    );
    let cfg_b = site(&dir, &nats.url, "garden.b");
    let a = launch(&clock, &ida, &site(&dir, &nats.url, "garden.a")).await;
    let b = launch(&clock, &idb, &cfg_b).await;
    let nc = async_nats::connect(&nats.url).await.expect("test client");
    let now = clock.now().as_millis();
    let r = request(
        &nc,
        "garden.a.resource.create",
        &gpu("kept", &Did::of(&idb), now),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    nats.kill();
    eventually("B sees the outage", || async {
        (!b.events.as_ref()?.stats().connected).then_some(())
    })
    .await;
    b.client.dial(mem_addr(&a).await).await.expect("B dials A");
    eventually("B applied the mutation; its event waits", || async {
        (b.events.as_ref()?.stats().pending == 1).then_some(())
    })
    .await;
    // B stops with its event unpublished, and starts again over the same files.
    b.shutdown().await;
    nats.restart();
    let b = launch(&clock, &idb, &cfg_b).await;
    eventually("B publishes what it journalled", || async {
        let s = b.events.as_ref()?.stats();
        (s.connected && s.pending == 0 && s.published >= 1).then_some(())
    })
    .await;
    let nc = async_nats::connect(&nats.url)
        .await
        .expect("test client again");
    let js = async_nats::jetstream::new(nc);
    let got = stored(&js, "GARDEN_B_EVENTS", "garden.b.out.resource.received").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["resource"]["id"], "kept");
    assert_eq!(got[0]["outcome"], "applied");
    a.shutdown().await;
    b.shutdown().await;
}
