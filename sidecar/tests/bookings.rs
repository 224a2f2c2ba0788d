//! A booking's whole life between two real sidecars (memory transport, scaled protocol
//! clock) with a real nats-server and each site's operator API on loopback: the consumer
//! books over NATS, the provider confirms, starts and completes over the API, the consumer
//! confirms the usage over NATS, and the confirmed usage reaches settlement (the typed
//! channel and `out.usage.confirmed`) exactly once. Redelivered steps are acknowledged, not
//! applied again; a step by the wrong party is refused, here and across the network (the
//! refusal travels back to the sender); the API refuses oversized and malformed bodies.
//!
//! Skips (loudly) only when the nats-server binary is missing (`scripts/install-deps.sh`).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::nats::*;
use common::*;
use garden_sidecar::app::App;
use garden_sidecar::cli::client::{segment, Client};
use garden_sidecar::config::{Config, Role};
use garden_sidecar::dtn::{self, Entry, Level};
use garden_sidecar::events::{COPY_PROTOCOL, STEP_PROTOCOL};
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::resources::copies::CopyMessage;
use garden_sidecar::resources::step::{Step, StepMessage};
use garden_sidecar::resources::usage::{ConfirmedUsage, UsageReport};
use garden_sidecar::resources::{BookingId, Did, ResourceId, ResourceRef, Window};
use garden_sidecar::time::{Clock, Timestamp};
use hyper::Method;
use serde_json::{json, Value};

/// Protocol seconds per real second.
const SPEED: u32 = 20;

/// A site with NATS and its API on a free loopback port.
fn site_with_api(dir: &Path, url: &str, prefix: &str) -> Config {
    let mut c = site(dir, url, prefix);
    c.api.listen = "127.0.0.1:0".into();
    c
}

fn api(app: &App) -> Client {
    let addr = app.api.as_ref().expect("the API runs").addr;
    Client::new(&format!("http://{addr}")).expect("a client")
}

async fn get(c: &Client, path: &str) -> (u16, Value) {
    let a = c.get(path).await.expect("the API answers");
    (a.status, a.body)
}

async fn post(c: &Client, path: &str, body: Option<Value>) -> (u16, Value) {
    let a = c
        .send(Method::POST, path, body.as_ref())
        .await
        .expect("the API answers");
    (a.status, a.body)
}

/// Waits until `site`'s API shows booking `id` in `state`; returns it.
async fn wait_state(c: &Client, id: &str, state: &str) -> Value {
    let path = format!("/v1/bookings/{}", segment(id));
    eventually(&format!("booking in state {state}"), || async {
        let (status, v) = get(c, &path).await;
        (status == 200 && v["booking"]["state"] == state).then(|| v["booking"].clone())
    })
    .await
}

/// Pushes a step from `from`'s outbox as a fresh entry (what a sender re-sending it, or a
/// misbehaving one, would do); returns the entry id.
async fn push_step(from: &App, to: &Did, msg: &StepMessage) -> String {
    let plane = from.data_plane.as_ref().expect("data plane");
    let id = plane
        .push(Entry {
            peer: to.peer_id().expect("an Ed25519 DID"),
            protocol: STEP_PROTOCOL.into(),
            op: dtn::Op::Message,
            // Its own key: it must not replace what the service queued.
            resource: format!("{}/test-{}", msg.booking, rand::random::<u32>()),
            level: Level::Critical,
            payload: msg.encode(),
            expires_at: Timestamp::from_millis(u64::MAX / 2),
        })
        .await
        .expect("pushed");
    id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_lives_its_whole_life_across_two_sites() {
    let Some(nats) = Nats::start("bookings") else {
        return;
    };
    let clock = Clock::scaled(SPEED, 0);
    let dir = data_dir("bookings");
    let (ida, idb) = (
        Arc::new(NodeIdentity::generate()),
        Arc::new(NodeIdentity::generate()),
    );
    let (da, db) = (Did::of(&ida), Did::of(&idb));
    // A provides, B consumes.
    let a = launch(&clock, &ida, &site_with_api(&dir, &nats.url, "garden.a")).await;
    let mut b = launch(&clock, &idb, &site_with_api(&dir, &nats.url, "garden.b")).await;
    b.client.dial(mem_addr(&a).await).await.expect("B dials A");
    let (api_a, api_b) = (api(&a), api(&b));
    let nc = async_nats::connect(&nats.url).await.expect("test client");
    let js = async_nats::jetstream::new(nc.clone());
    let mut usage_b = b.take_usage().expect("B's settlement channel");

    // A creates its resource through its API; it reaches B's catalogue.
    let now = clock.now().as_millis();
    let body: Value = serde_json::from_slice(&gpu("gpu-1", &db, now)).unwrap();
    let (status, created) = post(&api_a, "/v1/resources", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let owner = segment(da.as_str());
    eventually("B has A's resource", || async {
        let (_, v) = get(&api_b, &format!("/v1/resources?owner={owner}")).await;
        (v["resources"][0]["id"] == "gpu-1").then_some(())
    })
    .await;

    // B books over NATS; A holds the request.
    let (start, end) = (now + 3_600_000, now + 7_200_000);
    let book = json!({
        "resource": {"owner": da.as_str(), "id": "gpu-1"},
        "start_ms": start, "end_ms": end, "units": 2, "nonce": 7,
    });
    let booked = request(&nc, "garden.b.booking.request", book.to_string().as_bytes()).await;
    assert_eq!(booked["ok"], true, "{booked}");
    let id = format!("{db}#7");
    let booking = json!({"consumer": db.as_str(), "nonce": 7});
    wait_state(&api_a, &id, "requested").await;

    // The consumer cannot confirm: refused over NATS and over the API, naming the rule.
    let own = json!({ "booking": booking });
    let r = request(&nc, "garden.b.booking.confirm", own.to_string().as_bytes()).await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["field"], "booking", "{r}");
    let reason = r["error"]["reason"].as_str().unwrap();
    assert_eq!(reason, "only the provider may confirm, not the consumer");
    let (status, r) = post(
        &api_b,
        &format!("/v1/bookings/{}/confirm", segment(&id)),
        None,
    )
    .await;
    assert_eq!((status, r["field"].as_str()), (403, Some("booking")), "{r}");

    // A confirms, starts and completes over its API; each step reaches B.
    let step = |s: &str| format!("/v1/bookings/{}/{s}", segment(&id));
    let (status, r) = post(&api_a, &step("confirm"), None).await;
    assert_eq!(
        (status, &r["booking"]["state"]),
        (200, &json!("confirmed")),
        "{r}"
    );
    assert!(r["sent"]["entry"].is_string(), "{r}");
    wait_state(&api_b, &id, "confirmed").await;
    // Confirming twice: a clear conflict, nothing changes.
    let (status, r) = post(&api_a, &step("confirm"), None).await;
    assert_eq!(status, 409, "{r}");
    assert_eq!(r["reason"], "cannot confirm a booking in state confirmed");
    let (status, r) = post(&api_a, &step("start"), None).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = post(&api_a, &step("complete"), Some(json!({"units_used": 9}))).await;
    assert_eq!(
        (status, r["field"].as_str()),
        (400, Some("units_used")),
        "{r}"
    );
    let (status, r) = post(&api_a, &step("complete"), Some(json!({"units_used": 2}))).await;
    assert_eq!(
        (status, &r["booking"]["state"]),
        (200, &json!("completed")),
        "{r}"
    );
    let at_b = wait_state(&api_b, &id, "completed").await;
    assert_eq!(at_b["report"]["units_used"], 2, "{at_b}");

    // B confirms the usage over NATS: the usage goes to B's settlement channel and subject.
    let r = request(
        &nc,
        "garden.b.booking.usage.confirm",
        own.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["booking"]["state"], "usage_confirmed");
    assert_eq!(r["booking"]["usage"]["price"], "3000000");
    let usage = within("the confirmed usage on the channel", usage_b.recv())
        .await
        .expect("settlement channel open");
    assert_eq!(usage.booking.nonce, 7);
    assert_eq!((usage.units, usage.price), (2, 3_000_000));
    assert_eq!(usage.verify(), Ok(()));
    wait_state(&api_a, &id, "usage_confirmed").await;
    let confirmed = wait_event(
        &js,
        "GARDEN_B_EVENTS",
        "garden.b.out.usage.confirmed",
        |_| true,
    )
    .await;
    assert_eq!(confirmed["price"], "3000000", "{confirmed}");
    assert_eq!(confirmed["booking"], booking);
    // A second confirmation is a conflict: nothing is handed over twice.
    let r = request(
        &nc,
        "garden.b.booking.usage.confirm",
        own.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r["ok"], false, "{r}");

    // Both sides told their operators of every step, on both sites.
    let a_steps = wait_event(&js, "GARDEN_A_EVENTS", "garden.a.out.booking", |e| {
        e["action"] == "confirm usage" && e["outcome"] == "applied"
    })
    .await;
    assert_eq!(a_steps["side"], "provider");
    assert_eq!(a_steps["from"]["peer"], idb.peer_id().to_string());
    let b_events = stored(&js, "GARDEN_B_EVENTS", "garden.b.out.booking").await;
    for action in ["confirm", "start", "complete"] {
        // Applied on its own, or implied by a later step that replaced it in A's outbox.
        let seen = b_events.iter().any(|e| {
            e["side"] == "consumer"
                && e["outcome"] == "applied"
                && (e["action"] == action
                    || e["implied"]
                        .as_array()
                        .is_some_and(|i| i.contains(&json!(action))))
        });
        assert!(seen, "B saw {action}: {b_events:?}");
    }

    // Redelivered steps: the same completion to B, the same usage confirmation to A. Both
    // are acknowledged as duplicates, and nothing is applied again.
    let resource = ResourceRef {
        owner: da.clone(),
        id: ResourceId::parse("gpu-1").unwrap(),
    };
    let bid = BookingId {
        consumer: db.clone(),
        nonce: 7,
    };
    let window = Window::new(Timestamp::from_millis(start), Timestamp::from_millis(end)).unwrap();
    // Ed25519 signatures are deterministic: the same report and confirmation as the sites'.
    let report = UsageReport::sign(&ida, bid.clone(), resource, 2, window);
    assert_eq!(
        at_b["report"]["provider_sig_hex"],
        hex::encode(&report.provider_sig)
    );
    let again = ConfirmedUsage::confirm(&idb, &report, 1_500_000).unwrap();
    assert_eq!(again, usage);
    let to_b = StepMessage {
        booking: bid.clone(),
        step: Step::Complete(report),
        at_ms: clock.now().as_millis(),
    };
    let entry_b = push_step(&a, &db, &to_b).await;
    let to_a = StepMessage {
        booking: bid.clone(),
        step: Step::ConfirmUsage(again),
        at_ms: clock.now().as_millis(),
    };
    let entry_a = push_step(&b, &da, &to_a).await;
    let dup_b = wait_event(&js, "GARDEN_B_EVENTS", "garden.b.out.booking", |e| {
        e["from"]["entry"] == entry_b.as_str()
    })
    .await;
    assert_eq!(dup_b["outcome"], "duplicate", "{dup_b}");
    let dup_a = wait_event(&js, "GARDEN_A_EVENTS", "garden.a.out.booking", |e| {
        e["from"]["entry"] == entry_a.as_str()
    })
    .await;
    assert_eq!(dup_a["outcome"], "duplicate", "{dup_a}");
    assert_eq!(dup_a["booking"]["state"], "usage_confirmed");

    // A step by the wrong party across the network: B's site "confirms" at A. A refuses it
    // and the refusal travels back to B.
    let forged = StepMessage {
        booking: bid.clone(),
        step: Step::Confirm,
        at_ms: clock.now().as_millis(),
    };
    let entry = push_step(&b, &da, &forged).await;
    let at_a = wait_event(&js, "GARDEN_A_EVENTS", "garden.a.out.booking", |e| {
        e["from"]["entry"] == entry.as_str()
    })
    .await;
    assert_eq!(at_a["outcome"], "refused", "{at_a}");
    assert_eq!(
        at_a["reason"],
        "only the provider may confirm, not the consumer"
    );
    let back = wait_event(&js, "GARDEN_B_EVENTS", "garden.b.out.booking", |e| {
        e["outcome"] == "refused_by_peer"
    })
    .await;
    assert_eq!(back["action"], "confirm", "{back}");
    assert_eq!(
        back["reason"],
        "only the provider may confirm, not the consumer"
    );
    assert_eq!(back["peer_state"], "usage_confirmed");
    assert_eq!(back["from"]["peer"], ida.peer_id().to_string());

    // Still exactly one confirmed usage, on the channel and on the subject; both sites hold
    // the booking as usage_confirmed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), usage_b.recv())
            .await
            .is_err(),
        "a second confirmed usage reached settlement"
    );
    let all = stored(&js, "GARDEN_B_EVENTS", "garden.b.out.usage.confirmed").await;
    assert_eq!(all.len(), 1, "{all:?}");
    for c in [&api_a, &api_b] {
        let (_, v) = get(c, &format!("/v1/bookings/{}", segment(&id))).await;
        assert_eq!(v["booking"]["state"], "usage_confirmed", "{v}");
    }
    let (_, listed) = get(&api_b, "/v1/bookings?state=usage_confirmed").await;
    assert_eq!(
        listed["bookings"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert_eq!(listed["me"], db.as_str());
    a.shutdown().await;
    b.shutdown().await;
}

/// A sidecar whose signer runs in another process (nobody took the in-process channel):
/// confirmed usage waits in redb, is listed on `/v1/usage` with the terms an attestation
/// needs, survives a restart, and leaves only on `DELETE` (idempotent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_usage_waits_for_a_signer_in_another_process() {
    let Some(nats) = Nats::start("usage-api") else {
        return;
    };
    let clock = Clock::scaled(SPEED, 0);
    let dir = data_dir("usage-api");
    let (ida, idb) = (
        Arc::new(NodeIdentity::generate()),
        Arc::new(NodeIdentity::generate()),
    );
    let (da, db) = (Did::of(&ida), Did::of(&idb));
    let cfg_b = site_with_api(&dir, &nats.url, "garden.b");
    let a = launch(&clock, &ida, &site_with_api(&dir, &nats.url, "garden.a")).await;
    let b = launch(&clock, &idb, &cfg_b).await;
    b.client.dial(mem_addr(&a).await).await.expect("B dials A");
    let (api_a, api_b) = (api(&a), api(&b));
    let now = clock.now().as_millis();
    let body: Value = serde_json::from_slice(&gpu("gpu-1", &db, now)).unwrap();
    let (status, created) = post(&api_a, "/v1/resources", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let owner = segment(da.as_str());
    eventually("B has A's resource", || async {
        let (_, v) = get(&api_b, &format!("/v1/resources?owner={owner}")).await;
        (v["resources"][0]["id"] == "gpu-1").then_some(())
    })
    .await;
    let book = json!({
        "resource": {"owner": da.as_str(), "id": "gpu-1"},
        "start_ms": now + 3_600_000, "end_ms": now + 7_200_000, "units": 2, "nonce": 3,
    });
    let (status, r) = post(&api_b, "/v1/bookings", Some(book)).await;
    assert_eq!(status, 201, "{r}");
    let id = format!("{db}#3");
    let step = |s: &str| format!("/v1/bookings/{}/{s}", segment(&id));
    wait_state(&api_a, &id, "requested").await;
    for s in ["confirm", "start"] {
        let (status, r) = post(&api_a, &step(s), None).await;
        assert_eq!(status, 200, "{s}: {r}");
    }
    let (status, r) = post(&api_a, &step("complete"), Some(json!({"units_used": 2}))).await;
    assert_eq!(status, 200, "{r}");
    wait_state(&api_b, &id, "completed").await;
    let (status, r) = post(&api_b, &step("confirm-usage"), None).await;
    assert_eq!(status, 200, "{r}");

    let (status, listed) = get(&api_b, "/v1/usage").await;
    assert_eq!((status, &listed["waiting"]), (200, &json!(1)), "{listed}");
    let row = &listed["usage"][0];
    assert_eq!(row["id"], id, "{row}");
    assert_eq!(row["provider"], da.as_str());
    assert_eq!(row["consumer"], db.as_str());
    assert_eq!(
        (&row["units"], &row["price"]),
        (&json!(2), &json!("3000000"))
    );
    assert_eq!(row["unit_price"], "1500000");
    assert_eq!(
        (&row["kind"], &row["unit"]),
        (&json!("compute"), &json!("gpu"))
    );
    assert!(
        row["consumer_sig_hex"]
            .as_str()
            .is_some_and(|h| h.len() == 128),
        "{row}"
    );
    // The provider holds no usage of its own to settle.
    let (_, at_a) = get(&api_a, "/v1/usage").await;
    assert_eq!(at_a["waiting"], 0, "{at_a}");
    for bad in [
        "/v1/usage?limit=0",
        "/v1/usage?limit=1001",
        "/v1/usage?sort=1",
        "/v1/usage?after=not-a-booking",
    ] {
        let (status, r) = get(&api_b, bad).await;
        assert_eq!(status, 400, "{bad}: {r}");
    }

    // A restart keeps the row: nobody took it.
    b.shutdown().await;
    let b = launch(&clock, &idb, &cfg_b).await;
    b.client
        .dial(mem_addr(&a).await)
        .await
        .expect("B dials A again");
    let api_b = api(&b);
    let (_, listed) = get(&api_b, "/v1/usage?limit=10").await;
    assert_eq!(listed["usage"][0]["id"], id, "{listed}");
    // The next page after the only row is empty; the row still waits.
    let (status, next) = get(&api_b, &format!("/v1/usage?after={}", segment(&id))).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["usage"], json!([]), "{next}");
    assert_eq!(next["waiting"], 1, "{next}");

    let del = |path: String| {
        let c = &api_b;
        async move {
            let a = c.send(Method::DELETE, &path, None).await.expect("answers");
            (a.status, a.body)
        }
    };
    let taken = |path: String, body: Value| {
        let c = &api_b;
        async move {
            let a = c
                .send(Method::POST, &path, Some(&body))
                .await
                .expect("answers");
            (a.status, a.body)
        }
    };
    let path = format!("/v1/usage/{}/taken", segment(&id));
    // The signer hands its attestation back: refused unless it is hex of 1..=2 KiB.
    for bad in [
        json!({"attestation_hex": "zz"}),
        json!({"attestation_hex": ""}),
        json!({"attestation_hex": "00".repeat(2049)}),
        json!({"attestation": "00"}),
    ] {
        let (status, r) = taken(path.clone(), bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {r}");
    }
    // The provider's site is not the one to send it.
    let a_taken = api_a
        .send(Method::POST, &path, Some(&json!({"attestation_hex": "ab"})))
        .await
        .expect("answers");
    assert_eq!(a_taken.status, 403, "{}", a_taken.body);
    let copy = "a5".repeat(300);
    let (status, r) = taken(path.clone(), json!({"attestation_hex": copy})).await;
    assert_eq!((status, &r["removed"]), (200, &json!(true)), "{r}");
    assert!(r["sent"]["entry"].is_string(), "{r}");
    // The copy reaches the provider, from the booking's consumer; its signer removes it.
    let held = eventually("A holds the attestation copy", || async {
        let (_, v) = get(&api_a, "/v1/attestations").await;
        (v["waiting"] == 1).then_some(v)
    })
    .await;
    let row = &held["attestations"][0];
    assert_eq!(
        (&row["id"], &row["from"]),
        (&json!(id), &json!(db.as_str())),
        "{row}"
    );
    assert_eq!(row["attestation_hex"], copy);
    // A copy pushed by the provider itself, or for a booking the receiver did not provide,
    // is refused at the receiver: B provided nothing, so nothing is kept there.
    let nc = async_nats::connect(&nats.url).await.expect("test client");
    let js = async_nats::jetstream::new(nc);
    push_copy(
        &a,
        &db,
        &CopyMessage::new(BookingId::parse(&id).unwrap(), vec![1; 8]).unwrap(),
    )
    .await;
    let refused = wait_event(
        &js,
        "GARDEN_B_EVENTS",
        "garden.b.out.attestation.received",
        |e| e["outcome"] == "refused",
    )
    .await;
    assert_eq!(refused["reason"], "not a booking we provided", "{refused}");
    let (_, at_b) = get(&api_b, "/v1/attestations").await;
    assert_eq!(at_b["waiting"], 0, "{at_b}");
    let (status, r) = api_a
        .send(
            Method::DELETE,
            &format!("/v1/attestations/{}", segment(&id)),
            None,
        )
        .await
        .map(|a| (a.status, a.body))
        .expect("answers");
    assert_eq!((status, &r["removed"]), (200, &json!(true)), "{r}");

    let (status, r) = del(format!("/v1/usage/{}", segment(&id))).await;
    assert_eq!((status, &r["removed"]), (200, &json!(false)), "{r}");
    let (status, r) = del("/v1/usage/not-a-booking".into()).await;
    assert_eq!((status, &r["field"]), (400, &json!("booking")), "{r}");
    let (_, listed) = get(&api_b, "/v1/usage").await;
    assert_eq!(listed["waiting"], 0, "{listed}");
    a.shutdown().await;
    b.shutdown().await;
}

/// Pushes an attestation copy from `from`'s outbox to `to`, as a misbehaving site would.
async fn push_copy(from: &App, to: &Did, msg: &CopyMessage) {
    from.data_plane
        .as_ref()
        .expect("data plane")
        .push(Entry {
            peer: to.peer_id().expect("an Ed25519 DID"),
            protocol: COPY_PROTOCOL.into(),
            op: dtn::Op::Message,
            resource: format!("{}/forged", msg.booking),
            level: Level::Critical,
            payload: msg.encode(),
            expires_at: Timestamp::from_millis(u64::MAX / 2),
        })
        .await
        .expect("pushed");
}

/// The API's bounds: oversized and malformed bodies, unknown fields, ids and endpoints are
/// refused with a JSON error naming what was wrong, before anything runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_what_it_cannot_take() {
    let clock = Clock::scaled(SPEED, 0);
    let dir = data_dir("api");
    let id = Arc::new(NodeIdentity::generate());
    let mut cfg = mem_config(Role::Node, "", &[]);
    cfg.data_plane.dir = dir.to_path_buf();
    cfg.api.listen = "127.0.0.1:0".into();
    // No NATS: the API alone runs the service.
    let a = launch(&clock, &id, &cfg).await;
    assert!(a.events.is_none() && a.delivered.is_none());
    let c = api(&a);
    let partner = Did::of(&NodeIdentity::generate());
    let good: Value = serde_json::from_slice(&gpu("gpu-1", &partner, 0)).unwrap();
    let raw = |m: Method, path: &str, body: Vec<u8>| {
        let c = &c;
        let path = path.to_string();
        async move { c.send_raw(m, &path, body).await.expect("the API answers") }
    };
    let unknown = segment(&format!("{partner}#1"));
    let mut huge = good.clone();
    huge["description"] = json!("x".repeat(70_000));
    let cases: Vec<(Method, String, Vec<u8>, u16, &str)> = vec![
        (
            Method::POST,
            "/v1/resources".into(),
            serde_json::to_vec(&huge).unwrap(),
            413,
            "(payload)",
        ),
        (
            Method::POST,
            "/v1/resources".into(),
            vec![b'{'; 80_000],
            413,
            "(payload)",
        ),
        (
            Method::POST,
            "/v1/resources".into(),
            b"{not json".to_vec(),
            400,
            "(payload)",
        ),
        (
            Method::POST,
            "/v1/resources".into(),
            b"[1,2]".to_vec(),
            400,
            "(payload)",
        ),
        (
            Method::POST,
            "/v1/resources".into(),
            {
                let mut v = good.clone();
                v["colour"] = json!("red");
                serde_json::to_vec(&v).unwrap()
            },
            400,
            "colour",
        ),
        (
            Method::PUT,
            "/v1/resources/gpu-2".into(),
            serde_json::to_vec(&good).unwrap(),
            400,
            "id",
        ),
        (
            Method::PUT,
            "/v1/resources/gpu-1".into(),
            serde_json::to_vec(&good).unwrap(),
            404,
            "id",
        ),
        (
            Method::DELETE,
            "/v1/resources/Not%20Valid".into(),
            Vec::new(),
            400,
            "id",
        ),
        (
            Method::GET,
            "/v1/bookings/nope".into(),
            Vec::new(),
            400,
            "booking",
        ),
        (
            Method::GET,
            "/v1/bookings?state=lost".into(),
            Vec::new(),
            400,
            "state",
        ),
        (
            Method::GET,
            "/v1/resources?limit=x".into(),
            Vec::new(),
            400,
            "limit",
        ),
        (
            Method::GET,
            "/v1/resources?colour=red".into(),
            Vec::new(),
            400,
            "colour",
        ),
        (
            Method::GET,
            format!("/v1/bookings/{unknown}"),
            Vec::new(),
            404,
            "booking",
        ),
        (
            Method::POST,
            format!("/v1/bookings/{unknown}/complete"),
            b"{}".to_vec(),
            400,
            "units_used",
        ),
        (
            Method::POST,
            format!("/v1/bookings/{unknown}/finish"),
            Vec::new(),
            404,
            "(path)",
        ),
        (
            Method::POST,
            "/v1/bookings".into(),
            br#"{"units":1}"#.to_vec(),
            400,
            "resource",
        ),
        (
            Method::GET,
            "/v2/anything".into(),
            Vec::new(),
            404,
            "(path)",
        ),
        (
            Method::DELETE,
            "/v1/outbox".into(),
            Vec::new(),
            405,
            "(method)",
        ),
    ];
    for (method, path, body, status, field) in cases {
        let what = format!("{method} {path}");
        let a = raw(method, &path, body).await;
        assert_eq!(a.status, status, "{what}: {}", a.body);
        assert_eq!(a.body["field"], field, "{what}: {}", a.body);
        assert_eq!(a.body["ok"], false, "{what}");
        let error = a.body["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(&format!("{field}: ")), "{what}: {error}");
    }
    // Nothing was created by the refused requests; a good one works after them.
    let (_, v) = get(&c, "/v1/resources").await;
    assert_eq!(v["resources"], json!([]), "{v}");
    let (status, v) = post(&c, "/v1/resources", Some(good)).await;
    assert_eq!((status, &v["version"]), (201, &json!(1)), "{v}");
    let (status, v) = get(&c, "/v1/outbox").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["per_peer"][0]["peer"],
        partner.peer_id().unwrap().to_string(),
        "{v}"
    );
    assert_eq!(v["per_peer"][0]["critical"], 1, "{v}");
    assert!(v["oldest_age_ms"].is_u64(), "{v}");
    // A client that stops in the middle of its body cannot keep the sidecar from stopping.
    use tokio::io::AsyncWriteExt as _;
    let addr = a.api.as_ref().unwrap().addr;
    let mut stuck = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    stuck
        .write_all(b"POST /v1/resources HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    within_for(
        Duration::from_secs(15),
        "shutdown with a stuck API client",
        a.shutdown(),
    )
    .await;
    drop(stuck);
}

/// Without NATS (the API alone): a request the provider refuses (over capacity, because of
/// another consumer's booking the consumer cannot see) is told back and the consumer's
/// booking follows, to cancelled; a cancellation of a requested booking withdraws the request
/// at the provider, even when it is still queued (it replaces the request: the provider never
/// sees it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_withdrawn_requests_leave_both_sites_agreeing() {
    let clock = Clock::scaled(SPEED, 0);
    let dir = data_dir("converge");
    let ids: Vec<Arc<NodeIdentity>> = (0..3).map(|_| Arc::new(NodeIdentity::generate())).collect();
    let dids: Vec<Did> = ids.iter().map(|i| Did::of(i)).collect();
    let cfg = {
        let mut c = mem_config(Role::Node, "", &[]);
        c.data_plane.dir = dir.to_path_buf();
        c.api.listen = "127.0.0.1:0".into();
        c
    };
    // A provides; B and C consume.
    let a = launch(&clock, &ids[0], &cfg).await;
    let b = launch(&clock, &ids[1], &cfg).await;
    let c = launch(&clock, &ids[2], &cfg).await;
    for x in [&b, &c] {
        x.client.dial(mem_addr(&a).await).await.expect("dials A");
    }
    let (api_b, api_c) = (api(&b), api(&c));
    let now = clock.now().as_millis();
    let mut res: Value = serde_json::from_slice(&gpu("gpu-1", &dids[1], now)).unwrap();
    res["visibility"] = json!({"partners": [dids[1].as_str(), dids[2].as_str()]});
    let (status, r) = post(&api(&a), "/v1/resources", Some(res)).await;
    assert_eq!(status, 201, "{r}");
    for x in [&api_b, &api_c] {
        eventually("the consumer has gpu-1", || async {
            let (_, v) = get(x, "/v1/resources?name=gpu").await;
            (v["resources"][0]["id"] == "gpu-1").then_some(())
        })
        .await;
    }
    let book = |nonce: u64, units: u64| {
        json!({
            "resource": {"owner": dids[0].as_str(), "id": "gpu-1"},
            "start_ms": now + 3_600_000, "end_ms": now + 7_200_000, "units": units, "nonce": nonce,
        })
    };
    let id = |who: usize, nonce: u64| format!("{}#{nonce}", dids[who]);
    let path = |id: &str| format!("/v1/bookings/{}", segment(id));

    // C takes 3 of the 4 GPUs; A confirms.
    let (status, r) = post(&api_c, "/v1/bookings", Some(book(1, 3))).await;
    assert_eq!(status, 201, "{r}");
    wait_state(&api(&a), &id(2, 1), "requested").await;
    let (status, r) = post(&api(&a), &format!("{}/confirm", path(&id(2, 1))), None).await;
    assert_eq!(status, 200, "{r}");
    // B asks for 3 more over the same hours: fine as far as B knows, over capacity at A.
    let (status, r) = post(&api_b, "/v1/bookings", Some(book(1, 3))).await;
    assert_eq!(
        (status, &r["booking"]["state"]),
        (201, &json!("requested")),
        "{r}"
    );
    wait_state(&api_b, &id(1, 1), "cancelled").await;
    let (status, _) = get(&api(&a), &path(&id(1, 1))).await;
    assert_eq!(status, 404, "A never stored the refused request");

    // A request cancelled once the provider holds it: cancelled on both sites.
    let (status, r) = post(&api_b, "/v1/bookings", Some(book(2, 1))).await;
    assert_eq!(status, 201, "{r}");
    wait_state(&api(&a), &id(1, 2), "requested").await;
    let (status, r) = post(&api_b, &format!("{}/cancel", path(&id(1, 2))), None).await;
    assert_eq!(
        (status, &r["booking"]["state"]),
        (200, &json!("cancelled")),
        "{r}"
    );
    wait_state(&api(&a), &id(1, 2), "cancelled").await;

    // A request cancelled while A is away: the withdrawal replaces it in B's outbox, and A,
    // back, receives only the withdrawal.
    a.shutdown().await;
    let (status, r) = post(&api_b, "/v1/bookings", Some(book(3, 1))).await;
    assert_eq!(status, 201, "{r}");
    let (status, r) = post(&api_b, &format!("{}/cancel", path(&id(1, 3))), None).await;
    assert_eq!(status, 200, "{r}");
    let queued = get(&api_b, "/v1/outbox").await.1;
    assert_eq!(queued["depth"], 1, "one entry for the booking: {queued}");
    let a = launch(&clock, &ids[0], &cfg).await;
    b.client
        .dial(mem_addr(&a).await)
        .await
        .expect("B dials A again");
    eventually("B's outbox drains", || async {
        let (_, v) = get(&api_b, "/v1/outbox").await;
        (v["depth"] == 0).then_some(())
    })
    .await;
    // A later request is applied after the withdrawal (A's service takes deliveries in
    // order): once A holds it, the withdrawal was handled.
    let (status, r) = post(&api_b, "/v1/bookings", Some(book(4, 1))).await;
    assert_eq!(status, 201, "{r}");
    wait_state(&api(&a), &id(1, 4), "requested").await;
    let (status, v) = get(&api(&a), &path(&id(1, 3))).await;
    assert_eq!(status, 404, "A never held the withdrawn request: {v}");
    // And C's confirmed booking is untouched.
    wait_state(&api(&a), &id(2, 1), "confirmed").await;
    for x in [a, b, c] {
        x.shutdown().await;
    }
}
