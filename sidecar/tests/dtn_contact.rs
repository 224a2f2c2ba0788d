//! The data plane across real `garden run` processes, a real nats-server and a scripted link:
//! an indexer and two sites on 127.0.0.1, the two sites reachable by each other only through
//! a contact proxy (`common::contact`: each announces its route, `network.announce`), which
//! follows a plan of up and down windows.
//!
//! * a mutation made while the link is down, or while the destination process is down, is
//!   delivered exactly once after it returns;
//! * kill -9 of the **sender** while it sends, and of the **receiver** while it applies, at
//!   random instants over several cycles: the receiver's catalogue ends equal to the
//!   sender's (nothing lost) and no version is applied twice (its `out.resource.received`
//!   events);
//! * a booking made through NATS on the consumer's site, confirmed while the link is cut,
//!   reaches the provider and ends in a usage report, once;
//! * resource life cycles in random orders (create, updates, delete) over a flapping link
//!   converge, deletes stay terminal, versions apply in order, once.
//!
//! The tests run one at a time (they start processes). Skips (loudly) only without the
//! nats-server binary. Knobs: `GARDEN_CONTACT_KILL_CYCLES` (default 3), `GARDEN_CONTACT_SEED`
//! (the random seed, printed), `GARDEN_TEST_KEEP=1` (keep the sites' directories and logs),
//! `GARDEN_TEST_SITE_LOG` (the sites' `RUST_LOG`).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::contact::{Contact, Plan};
use common::nats::{request, stored, Nats};
use common::sites::{garden_bin, Net, Site};
use common::{eventually, within};
use garden_sidecar::cli::client::segment;
use garden_sidecar::resources::Did;
use hyper::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One test at a time: each starts three sidecar processes and a nats-server.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rng(test: &str) -> StdRng {
    let seed = env_u64("GARDEN_CONTACT_SEED", rand::random());
    eprintln!("{test}: GARDEN_CONTACT_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// An indexer and two sites, A and B, each behind its route of `link`, with NATS prefixes
/// `garden.a` and `garden.b`; all started.
struct Pair {
    a: Site,
    b: Site,
    link: Contact,
    nc: async_nats::Client,
    js: async_nats::jetstream::Context,
    // Dropped last: the processes are killed before their directory goes.
    _ix: Site,
    _net: Net,
}

async fn pair(test: &str, nats: &Nats, plan: Plan) -> Pair {
    let net = Net::new(test, &garden_bin(env!("CARGO_BIN_EXE_garden")));
    let mut ix = net.indexer("ix");
    ix.start().await;
    let (mut a, mut b) = (net.site("a"), net.site("b"));
    let mut link = Contact::start(plan);
    let (ra, rb) = (link.route(a.socket()).await, link.route(b.socket()).await);
    a.seeds(&[&ix]).behind(ra).nats(&nats.url, "garden.a");
    b.seeds(&[&ix]).behind(rb).nats(&nats.url, "garden.b");
    a.start().await;
    b.start().await;
    let nc = async_nats::connect(&nats.url).await.expect("test client");
    let js = async_nats::jetstream::new(nc.clone());
    serving(&nc, "garden.a").await;
    serving(&nc, "garden.b").await;
    Pair {
        a,
        b,
        link,
        nc,
        js,
        _ix: ix,
        _net: net,
    }
}

/// Waits until the site under `prefix` answers requests on NATS (its bridge subscribed).
async fn serving(nc: &async_nats::Client, prefix: &str) {
    let r = request(nc, &format!("{prefix}.resource.search"), b"{}").await;
    assert_eq!(r["ok"], true, "{r}");
}

/// A resource body: `id`, visible to `partner`, `description` telling which change it is.
fn resource(id: &str, partner: &Did, description: &str) -> Value {
    named(id, "GPU box", partner, description)
}

/// [`resource`] named `name`.
fn named(id: &str, name: &str, partner: &Did, description: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    json!({
        "id": id, "kind": "compute", "name": name, "description": description,
        "capacity": 4, "unit": "gpu", "price_per_unit": "1500000",
        "availability": [{"start_ms": now - 60_000, "end_ms": now + 365 * 86_400_000u64}],
        "visibility": {"partners": [partner.as_str()]},
    })
}

/// One request, no retry (the site may be killed meanwhile): its reply, or `None`.
async fn ask(nc: &async_nats::Client, subject: &str, body: &Value) -> Option<Value> {
    let r = nc.request(subject.to_string(), body.to_string().into());
    match tokio::time::timeout(Duration::from_secs(5), r).await {
        Ok(Ok(m)) => serde_json::from_slice(&m.payload).ok(),
        _ => None,
    }
}

/// `owner`'s live resources as `site` holds them (those whose name contains `name`, when
/// given: a search returns 100 at most): id → description.
async fn catalogue(
    site: &Site,
    owner: &Did,
    name: Option<&str>,
) -> Option<BTreeMap<String, String>> {
    let mut path = format!("/v1/resources?owner={}&limit=100", segment(owner.as_str()));
    if let Some(n) = name {
        path.push_str(&format!("&name={}", segment(n)));
    }
    let a = site.api().get(&path).await.ok()?;
    if a.status != 200 {
        return None;
    }
    assert_eq!(a.body["truncated"], false, "more than 100 resources");
    Some(
        a.body["resources"]
            .as_array()?
            .iter()
            .map(|r| {
                let id = r["id"].as_str().unwrap().to_string();
                (id, r["description"].as_str().unwrap().to_string())
            })
            .collect(),
    )
}

/// Waits until B holds exactly A's live resources (A's own view is the truth: what A
/// accepted, including changes whose reply was lost in a kill) and A's outbox is empty (B
/// acknowledged everything, deletes included); returns them.
async fn converged(p: &Pair) -> BTreeMap<String, String> {
    converged_in(p, &[]).await
}

/// Both sites' view of A's resources, searched per name group (all at once without one).
async fn views(
    p: &Pair,
    groups: &[String],
) -> Option<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let names: Vec<Option<&str>> = match groups {
        [] => vec![None],
        g => g.iter().map(|n| Some(n.as_str())).collect(),
    };
    let (mut at_a, mut at_b) = (BTreeMap::new(), BTreeMap::new());
    for n in names {
        at_a.extend(catalogue(&p.a, &p.a.did, n).await?);
        at_b.extend(catalogue(&p.b, &p.a.did, n).await?);
    }
    Some((at_a, at_b))
}

/// [`converged`] over resources named by `groups` (see [`views`]).
async fn converged_in(p: &Pair, groups: &[String]) -> BTreeMap<String, String> {
    let t0 = Instant::now();
    let wait = async {
        loop {
            if let (Some((at_a, at_b)), Some(0)) =
                (views(p, groups).await, outbox_depth(&p.a).await)
            {
                if at_a == at_b {
                    return at_a;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let Ok(got) = tokio::time::timeout(common::DEADLINE, wait).await else {
        let (at_a, at_b) = views(p, groups).await.unwrap_or_default();
        let differ: Vec<_> = at_a
            .iter()
            .filter(|(k, v)| at_b.get(*k) != Some(*v))
            .map(|(k, v)| (k, v, at_b.get(k)))
            .collect();
        let other: Vec<_> = received(p)
            .await
            .into_iter()
            .filter(|e| e.2 != "applied")
            .collect();
        panic!(
            "B never converged on A's catalogue: {} at A, {} at B; A's not at B \
             (id, A, B): {differ:?}; B's events other than applied: {other:?}; \
             A's outbox: {:?}",
            at_a.len(),
            at_b.len(),
            p.a.api().get("/v1/outbox").await.map(|a| a.body).ok()
        );
    };
    eprintln!(
        "converged on {} resources in {} ms",
        got.len(),
        t0.elapsed().as_millis()
    );
    got
}

/// `(resource id, version, outcome)` of every `out.resource.received` event B published.
async fn received(p: &Pair) -> Vec<(String, u64, String)> {
    received_ops(p)
        .await
        .into_iter()
        .map(|(id, v, outcome, _)| (id, v, outcome))
        .collect()
}

/// The same with each event's `op`.
async fn received_ops(p: &Pair) -> Vec<(String, u64, String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    stored(&p.js, "GARDEN_B_EVENTS", "garden.b.out.resource.received")
        .await
        .iter()
        .map(|e| {
            (
                text(&e["resource"]["id"]),
                e["version"].as_u64().unwrap_or_default(),
                text(&e["outcome"]),
                text(&e["op"]),
            )
        })
        .collect()
}

/// No version applied twice, and per resource the applied versions increase (a delete is
/// terminal: nothing is applied after it). Returns (applied, duplicate) counts.
fn applied_once(events: &[(String, u64, String)]) -> (usize, usize) {
    let mut seen: HashMap<(&str, u64), usize> = HashMap::new();
    let mut last: HashMap<&str, u64> = HashMap::new();
    let (mut applied, mut dup) = (0, 0);
    for (id, v, outcome) in events {
        match outcome.as_str() {
            "applied" => {
                applied += 1;
                let n = seen.entry((id, *v)).or_default();
                *n += 1;
                assert_eq!(*n, 1, "{id} version {v} applied twice: {events:?}");
                let prev = last.insert(id, *v).unwrap_or(0);
                assert!(prev < *v, "{id}: version {v} applied after {prev}");
            }
            "duplicate" => dup += 1,
            other => panic!("{id} v{v}: unexpected outcome {other}: {events:?}"),
        }
    }
    (applied, dup)
}

/// The data plane's totals at `site` (`GET /v1/outbox`).
async fn totals(site: &Site) -> Value {
    match site.api().get("/v1/outbox").await {
        Ok(a) => a.body["totals"].clone(),
        Err(e) => json!(e.to_string()),
    }
}

async fn outbox_depth(site: &Site) -> Option<u64> {
    let a = site.api().get("/v1/outbox").await.ok()?;
    a.body["depth"].as_u64()
}

// ---------------------------------------------------------------------------------------

/// The proxy itself: carries bytes while up (with its delay), cuts what it carries when the
/// link goes down, refuses new connections while down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contact_proxy_follows_its_plan() {
    let s = Duration::from_secs;
    let p = Plan::periodic(s(1), s(2), s(3), 2);
    assert_eq!(p.windows, vec![(s(1), s(3)), (s(6), s(8))]);
    assert!(!p.is_up(s(0)) && p.is_up(s(1)) && p.is_up(s(2)) && !p.is_up(s(3)));
    assert!(p.is_up(s(7)) && !p.is_up(s(8)));

    // An echo server behind the proxy.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target: SocketAddr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = c.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let delay = Duration::from_millis(50);
    let mut link = Contact::start(Plan::always_up().with_delay(delay));
    let route = link.route(target).await;
    let mut c = tokio::net::TcpStream::connect(route).await.unwrap();
    let t0 = Instant::now();
    c.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    within("the echo", c.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"ping");
    assert!(t0.elapsed() >= 2 * delay, "delayed both ways");
    // Down: the carried connection is closed, a new one is closed at once.
    link.set_up(false);
    let n = within("the cut", c.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0, "cut");
    let mut d = tokio::net::TcpStream::connect(route).await.unwrap();
    let _ = d.write_all(b"x").await;
    let n = within("the refusal", d.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0, "refused while down");
    link.set_up(true);
    let mut e = tokio::net::TcpStream::connect(route).await.unwrap();
    e.write_all(b"pong").await.unwrap();
    within("the echo again", e.read_exact(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf, b"pong");
    let f = link.figures();
    assert_eq!((f.carried, f.cut, f.refused), (2, 1, 1), "{f:?}");
    assert_eq!(link.opened().len(), 2);
}

/// A mutation made while the link is in a down window, then one made while the destination
/// process is down: each delivered exactly once when the link, or the process, is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_made_while_the_destination_is_unreachable_arrives_once() {
    let _one = SERIAL.lock().await;
    let Some(nats) = Nats::start("contact-down") else {
        return;
    };
    let mut p = pair("down", &nats, Plan::down()).await;
    let r = request(
        &p.nc,
        "garden.a.resource.create",
        resource("r-1", &p.b.did, "first").to_string().as_bytes(),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let entry = r["sent"][0]["entry"].clone();
    // The wake-up path runs (B hears that A waits and dials A's route): refused while down.
    eventually("a site dials through the down link", || async {
        (p.link.figures().refused >= 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        catalogue(&p.b, &p.a.did, None).await,
        Some(BTreeMap::new()),
        "nothing crosses a down link"
    );
    assert_eq!(outbox_depth(&p.a).await, Some(1));

    p.link.set_up(true);
    let t0 = Instant::now();
    converged(&p).await;
    eprintln!(
        "delivered {} ms after the link came up",
        t0.elapsed().as_millis()
    );
    eventually("A's outbox empties", || async {
        (outbox_depth(&p.a).await? == 0).then_some(())
    })
    .await;

    // The destination process is down (kill -9) while A updates the resource.
    p.b.kill9();
    let mut upd = resource("r-1", &p.b.did, "second");
    upd["name"] = json!("GPU box v2");
    let r = request(
        &p.nc,
        "garden.a.resource.update",
        upd.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        (r["ok"].clone(), r["version"].clone()),
        (json!(true), json!(2))
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(outbox_depth(&p.a).await, Some(1), "kept for B");
    p.b.start().await;
    let got = converged(&p).await;
    assert_eq!(got.get("r-1").map(String::as_str), Some("second"));
    eventually("A's outbox empties again", || async {
        (outbox_depth(&p.a).await? == 0).then_some(())
    })
    .await;
    // Each once: in B's events and in A's delivery reports.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ev = received(&p).await;
    assert_eq!(
        ev,
        vec![
            ("r-1".to_string(), 1, "applied".to_string()),
            ("r-1".to_string(), 2, "applied".to_string())
        ]
    );
    let delivered = stored(&p.js, "GARDEN_A_EVENTS", "garden.a.out.delivery.delivered").await;
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert_eq!(delivered[0]["entry"], entry);
    eprintln!("link: {:?}", p.link.figures());
}

/// What a burst did.
#[derive(Default)]
struct Burst {
    /// Changes answered `ok`.
    answered: usize,
    /// Resources created with an `ok` answer.
    created: usize,
}

/// Sends changes to A as fast as it answers, until `stop` or until a request gets no answer
/// (A was killed): first creates (`creates` at most, ids `prefix-i`, named
/// [`group`]`(prefix)`) mixed with updates, then only updates of them, so A's outbox is busy
/// sending to B all along. A create lost on the way is never made up for by a later change.
async fn burst(
    nc: async_nats::Client,
    partner: Did,
    prefix: String,
    creates: usize,
    seed: u64,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Burst {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut made: Vec<String> = Vec::new();
    let mut out = Burst::default();
    for i in 0.. {
        if *stop.borrow() {
            break;
        }
        let create = made.len() < creates && rng.gen_bool(0.8);
        let name = group(&prefix);
        let (subject, body) = if create || made.is_empty() {
            let id = format!("{prefix}-{i}");
            made.push(id.clone());
            let body = named(&id, &name, &partner, &format!("{prefix} #{i} new"));
            ("create", body)
        } else {
            let id = made[rng.gen_range(0..made.len())].clone();
            let body = named(&id, &name, &partner, &format!("{prefix} #{i} upd"));
            ("update", body)
        };
        match ask(&nc, &format!("garden.a.resource.{subject}"), &body).await {
            Some(r) if r["ok"] == true => {
                out.answered += 1;
                out.created += usize::from(subject == "create");
            }
            Some(r) => panic!("{subject} refused: {r}"),
            None => {
                eprintln!("{prefix}: no answer to change #{i}");
                break;
            }
        }
    }
    out
}

/// Resources one burst creates at most (they fit one search page).
const CREATES: usize = 60;

/// The name of a burst's resources (a search for it finds them, and only them).
fn group(prefix: &str) -> String {
    format!("burst {prefix}.")
}

/// kill -9 of the sender at random instants while it sends: B ends with A's catalogue,
/// nothing applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_killed_mid_send_loses_nothing_and_sends_nothing_twice() {
    let _one = SERIAL.lock().await;
    let Some(nats) = Nats::start("contact-sender") else {
        return;
    };
    let mut rng = rng("sender");
    let cycles = env_u64("GARDEN_CONTACT_KILL_CYCLES", 3);
    let mut p = pair(
        "sender",
        &nats,
        Plan::always_up().with_delay(Duration::from_millis(5)),
    )
    .await;
    let mut answered = 0;
    // Never stopped: each burst ends with the kill.
    let (_never, stop) = tokio::sync::watch::channel(false);
    for cycle in 0..cycles {
        let task = tokio::spawn(burst(
            p.nc.clone(),
            p.b.did.clone(),
            format!("s{cycle}"),
            CREATES,
            rng.gen(),
            stop.clone(),
        ));
        let at = Duration::from_millis(rng.gen_range(100..1500));
        tokio::time::sleep(at).await;
        let depth = outbox_depth(&p.a).await;
        p.a.kill9();
        let n = within("the burst ends", task)
            .await
            .expect("burst")
            .answered;
        answered += n;
        eprintln!(
            "cycle {cycle}: A killed after {at:?} ({depth:?} entries in its outbox), \
             {n} changes answered"
        );
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..500))).await;
        p.a.start().await;
        serving(&p.nc, "garden.a").await;
    }
    let groups: Vec<String> = (0..cycles).map(|c| group(&format!("s{c}"))).collect();
    let got = converged_in(&p, &groups).await;
    let (applied, dup) = applied_once(&received(&p).await);
    eprintln!(
        "{cycles} kills of the sender: {answered} changes answered, {} resources, \
         {applied} versions applied once, {dup} redeliveries found duplicates by the \
         catalogue; B's plane {}; link {:?}",
        got.len(),
        totals(&p.b).await,
        p.link.figures()
    );
    assert!(!got.is_empty());
}

/// kill -9 of the receiver at random instants while it applies: B ends with A's catalogue,
/// nothing applied twice (redeliveries after a kill are duplicates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_killed_mid_apply_loses_nothing_and_applies_nothing_twice() {
    let _one = SERIAL.lock().await;
    let Some(nats) = Nats::start("contact-receiver") else {
        return;
    };
    let mut rng = rng("receiver");
    let cycles = env_u64("GARDEN_CONTACT_KILL_CYCLES", 3);
    let mut p = pair("receiver", &nats, Plan::always_up()).await;
    let (mut answered, mut created) = (0, 0);
    for cycle in 0..cycles {
        // A is never killed here: every change is answered, until the burst is stopped.
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(burst(
            p.nc.clone(),
            p.b.did.clone(),
            format!("r{cycle}"),
            CREATES,
            rng.gen(),
            stop,
        ));
        let at = Duration::from_millis(rng.gen_range(200..1500));
        tokio::time::sleep(at).await;
        let depth = outbox_depth(&p.a).await;
        p.b.kill9();
        eprintln!("cycle {cycle}: B killed after {at:?} ({depth:?} entries in A's outbox)");
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..500))).await;
        p.b.start().await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1000))).await;
        let _ = stop_tx.send(true);
        let b = within("the burst ends", task).await.expect("burst");
        answered += b.answered;
        created += b.created;
    }
    let groups: Vec<String> = (0..cycles).map(|c| group(&format!("r{c}"))).collect();
    let got = converged_in(&p, &groups).await;
    let (applied, dup) = applied_once(&received(&p).await);
    eprintln!(
        "{cycles} kills of the receiver: {answered} changes answered, {} resources, \
         {applied} versions applied once, {dup} redeliveries found duplicates by the \
         catalogue; B's plane {}; link {:?}",
        got.len(),
        totals(&p.b).await,
        p.link.figures()
    );
    assert_eq!(got.len(), created, "every resource created reached B");
}

/// Waits until the booking at `path` is in state `want` on the site of `api`.
async fn state(api: &garden_sidecar::cli::client::Client, path: &str, want: &str) -> Value {
    eventually(&format!("booking {want}"), || async {
        let a = api.get(path).await.ok()?;
        (a.body["booking"]["state"] == want).then(|| a.body["booking"].clone())
    })
    .await
}

/// A booking made over NATS on the consumer's site B reaches the provider A; A confirms it
/// while the link is cut; the confirmation reaches B when the link is back; A starts and
/// completes it (usage report), B confirms the usage: published once on B, seen on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_crosses_a_cut_link_and_ends_in_a_usage_report() {
    let _one = SERIAL.lock().await;
    let Some(nats) = Nats::start("contact-booking") else {
        return;
    };
    let mut p = pair("booking", &nats, Plan::always_up()).await;
    let (api_a, api_b) = (p.a.api(), p.b.api());
    let r = request(
        &p.nc,
        "garden.a.resource.create",
        resource("gpu-1", &p.b.did, "bookable")
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    converged(&p).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let book = json!({
        "resource": {"owner": p.a.did.as_str(), "id": "gpu-1"},
        "start_ms": now, "end_ms": now + 3_600_000, "units": 2, "nonce": 7,
    });
    let r = request(
        &p.nc,
        "garden.b.booking.request",
        book.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let id = format!("{}#7", p.b.did);
    let path = format!("/v1/bookings/{}", segment(&id));
    state(&api_a, &path, "requested").await;

    // Cut: A confirms; B does not hear of it until the link is back.
    p.link.set_up(false);
    let booking = json!({"booking": {"consumer": p.b.did.as_str(), "nonce": 7}});
    let r = request(
        &p.nc,
        "garden.a.booking.confirm",
        booking.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r["booking"]["state"], "confirmed", "{r}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = api_b.get(&path).await.expect("B's API");
    assert_eq!(
        held.body["booking"]["state"], "requested",
        "cut: {}",
        held.body
    );
    p.link.set_up(true);
    state(&api_b, &path, "confirmed").await;

    let step = |s: &str| format!("{path}/{s}");
    let a = api_a
        .send(Method::POST, &step("start"), None)
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let a = api_a
        .send(
            Method::POST,
            &step("complete"),
            Some(&json!({"units_used": 2})),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let at_b = state(&api_b, &path, "completed").await;
    assert_eq!(at_b["report"]["units_used"], 2, "{at_b}");
    let r = request(
        &p.nc,
        "garden.b.booking.usage.confirm",
        booking.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r["booking"]["state"], "usage_confirmed", "{r}");
    assert_eq!(r["booking"]["usage"]["price"], "3000000");
    state(&api_a, &path, "usage_confirmed").await;
    // B restarts (kill -9): the usage is not published again.
    p.b.kill9();
    p.b.start().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let usage = stored(&p.js, "GARDEN_B_EVENTS", "garden.b.out.usage.confirmed").await;
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(usage[0]["units"], 2);
    assert_eq!(usage[0]["price"], "3000000");
    assert_eq!(usage[0]["provider"], p.a.did.as_str());
}

/// Random life cycles (create, updates, delete, in random orders and at random times) over a
/// link that opens and closes: B ends with A's live resources, deleted ones stay deleted, and
/// B applied each version at most once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_life_cycles_over_a_flapping_link_converge() {
    let _one = SERIAL.lock().await;
    let Some(nats) = Nats::start("contact-cycles") else {
        return;
    };
    let mut rng = rng("cycles");
    let ms = Duration::from_millis;
    let plan = Plan::periodic(ms(rng.gen_range(0..500)), ms(700), ms(900), 100);
    let p = pair("cycles", &nats, plan).await;
    #[derive(Clone, Copy, PartialEq)]
    enum Life {
        Absent,
        Live,
        Deleted,
    }
    let ids: Vec<String> = (0..6).map(|i| format!("life-{i}")).collect();
    let mut life = vec![Life::Absent; ids.len()];
    let (mut creates, mut updates, mut deletes) = (0, 0, 0);
    for step in 0..48 {
        let k = rng.gen_range(0..ids.len());
        let desc = format!("step {step}");
        let (subject, body) = match life[k] {
            Life::Absent => {
                life[k] = Life::Live;
                creates += 1;
                ("create", resource(&ids[k], &p.b.did, &desc))
            }
            Life::Live if rng.gen_bool(0.2) => {
                life[k] = Life::Deleted;
                deletes += 1;
                ("delete", json!({"id": ids[k]}))
            }
            Life::Live => {
                updates += 1;
                ("update", resource(&ids[k], &p.b.did, &desc))
            }
            Life::Deleted => continue,
        };
        let r = request(
            &p.nc,
            &format!("garden.a.resource.{subject}"),
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(r["ok"], true, "{subject} {}: {r}", ids[k]);
        tokio::time::sleep(ms(rng.gen_range(0..150))).await;
    }
    let got = converged(&p).await;
    let live: Vec<&String> = ids
        .iter()
        .zip(&life)
        .filter(|(_, l)| **l == Life::Live)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(got.keys().collect::<Vec<_>>(), live);
    // Deleted ones are gone at B too: each delete applied there (after the versions it had,
    // or as the first thing it heard of a resource whose create was collapsed into it), and
    // nothing applied after it (versions only increase).
    let ops = received_ops(&p).await;
    for (id, l) in ids.iter().zip(&life) {
        if *l == Life::Deleted {
            let last = ops.iter().rfind(|e| &e.0 == id && e.2 == "applied");
            assert!(
                last.is_some_and(|e| e.3 == "delete"),
                "{id}: deleted at A, last applied at B: {last:?}"
            );
        }
    }
    let ev = received(&p).await;
    let (applied, dup) = applied_once(&ev);
    eprintln!(
        "{creates} creates, {updates} updates, {deletes} deletes at A; B applied {applied} \
         versions (the outbox collapsed the rest), {dup} duplicates; link {:?}",
        p.link.figures()
    );
}
