//! A nano and its master on loopback TCP with a scripted contact plan: the nano is a real
//! `garden run` process whose contact windows are the periods it runs (stopped = out of
//! contact; one cut is a `kill -9`); its master and two third parties are sites of this test
//! process; every site publishes to a real nats-server under its own prefix.
//!
//! * (b) the nano's resource goes to its master only, which forwards it to the partners with
//!   the nano's statement — but not to another of its nanos —; the master's own resource is
//!   withheld from the nano: the nano's catalogue holds its own resources only;
//! * (c) a third party's mutation sent to the nano is refused there, and the third party
//!   hears why (`out.resource.refused`); round messages from anyone but the pair are refused
//!   whole;
//! * (a) a booking of the nano's resource, taken by the master in proxy while the nano is
//!   killed, is answered by the master and reaches the nano at its next contact, once (and
//!   not again after another restart); in contact, a request over a slot the master holds is
//!   refused back to its requester, and a requester's cancellation is relayed to the nano;
//! * (d) split brain: the nano is stopped while the master takes a second proxy booking, then
//!   the master is shut down while the nano, back, takes an overlapping booking from a
//!   requester in contact with it; on reconnection both hold the master's booking, both hold
//!   the nano's cancelled, and the requester is told exactly once — one `out.booking`
//!   cancellation on each site's NATS, none on the first requester's.
//!
//! Skips (loudly) only when the nats-server binary is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::nats::*;
use common::*;
use garden_sidecar::app::App;
use garden_sidecar::cli::client::{segment, Client};
use garden_sidecar::config::{Config, Role};
use garden_sidecar::delegation::sync::SyncMessage;
use garden_sidecar::events::SYNC_PROTOCOL;
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::resources::Did;
use garden_sidecar::time::Clock;
use hyper::Method;
use serde_json::{json, Value};

const HOUR_MS: u64 = 3_600_000;

/// A loopback TCP port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The nano: a `garden run` child process over a fixed directory, address and API port.
struct Nano {
    config: PathBuf,
    log: PathBuf,
    api: String,
    addr: String,
    child: Option<tokio::process::Child>,
}

impl Nano {
    fn new(dir: &Path, id: &NodeIdentity, master: &str, nats: &str) -> Nano {
        let dir = dir.join("nano");
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("identity.key");
        id.write(&key).expect("identity written");
        let psk = dir.join("swarm.key");
        let text = format!(
            "/key/swarm/psk/1.0.0/\n/base16/\n{}\n",
            hex::encode([42u8; 32])
        );
        std::fs::write(&psk, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&psk, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (port, api) = (free_port(), free_port());
        let master_peer = master.rsplit('/').next().unwrap();
        let toml = format!(
            r#"
[identity]
key_file = "{key}"
psk_file = "{psk}"
[network]
role = "node"
listen = ["/ip4/127.0.0.1/tcp/{port}"]
seeds = ["{master}"]
[membership]
allow_loopback = true
[profile]
kind = "intermittent"
max_absence_secs = 3600
[delegation]
master = "{master_peer}"
[data_plane]
dir = "{data}"
[events]
nats_url = "{nats}"
prefix = "garden.n"
[api]
listen = "127.0.0.1:{api}"
[log]
filter = "warn,garden_sidecar=info"
"#,
            key = key.display(),
            psk = psk.display(),
            data = dir.display(),
        );
        let config = dir.join("nano.toml");
        std::fs::write(&config, toml).unwrap();
        Nano {
            config,
            log: dir.join("nano.log"),
            api: format!("http://127.0.0.1:{api}"),
            addr: format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", id.peer_id()),
            child: None,
        }
    }

    /// Starts the process (a contact window opens) and waits until its API answers.
    async fn start(&mut self) -> Client {
        self.spawn();
        self.wait_api().await
    }

    /// Waits until the API of the running process answers.
    async fn wait_api(&self) -> Client {
        let api = Client::new(&self.api).unwrap();
        eventually("the nano's API answers", || async {
            api.get("/v1/outbox").await.ok().filter(|a| a.status == 200)
        })
        .await;
        api
    }

    /// Starts the process.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_garden"));
        cmd.args(["run", "--config"]).arg(&self.config);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GARDEN_")) {
            cmd.env_remove(k);
        }
        cmd.env_remove("RUST_LOG")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        self.child = Some(cmd.spawn().expect("garden run starts"));
    }

    /// `kill -9`: the window closes without warning.
    async fn kill(&mut self) {
        let mut c = self.child.take().expect("running");
        c.kill().await.expect("killed");
    }

    /// SIGINT: the process stops as an operator would stop it.
    async fn stop(&mut self) {
        let mut c = self.child.take().expect("running");
        let pid = c.id().expect("a pid").to_string();
        let ok = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "SIGINT sent");
        within("the nano stops", c.wait()).await.expect("waited");
    }

    fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

/// Pushes `payload` from `from`'s outbox to `to` on `protocol` (what a misbehaving peer sends).
async fn push_raw(from: &App, to: &Did, protocol: &str, payload: Vec<u8>) {
    use garden_sidecar::dtn::{self, Entry, Level};
    from.data_plane
        .as_ref()
        .expect("data plane")
        .push(Entry {
            peer: to.peer_id().expect("an Ed25519 DID"),
            protocol: protocol.into(),
            op: dtn::Op::Message,
            resource: format!("test-{}", rand::random::<u32>()),
            level: Level::Critical,
            payload,
            expires_at: garden_sidecar::time::Timestamp::from_millis(u64::MAX / 2),
        })
        .await
        .expect("pushed");
}

/// An in-process site on loopback TCP with NATS under `prefix` and its API on a free port.
fn site_config(dir: &Path, nats: &str, prefix: &str, role: Role, port: u16) -> Config {
    let mut c = config(role, "", &[]);
    c.network.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}")];
    c.membership.allow_loopback = true;
    c.data_plane.dir = dir.to_path_buf();
    c.events.nats_url = nats.to_string();
    c.events.prefix = prefix.to_string();
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

async fn post(c: &Client, path: &str, body: Value) -> (u16, Value) {
    let a = c
        .send(Method::POST, path, Some(&body))
        .await
        .expect("the API answers");
    (a.status, a.body)
}

/// Waits until `site` holds booking `id` in `state`; returns it.
async fn wait_state(c: &Client, id: &str, state: &str) -> Value {
    let path = format!("/v1/bookings/{}", segment(id));
    eventually(&format!("booking {id} {state}"), || async {
        let (status, v) = get(c, &path).await;
        (status == 200 && v["booking"]["state"] == state).then(|| v["booking"].clone())
    })
    .await
}

/// The `out.booking` events of `prefix` about booking `nonce` of `consumer` that match `f`.
async fn booking_events(
    js: &async_nats::jetstream::Context,
    prefix: &str,
    consumer: &Did,
    nonce: u64,
    f: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let stream = format!("{}_EVENTS", prefix.to_uppercase().replace('.', "_"));
    let of = |e: &Value| {
        let id = if e["id"].is_object() {
            &e["id"]
        } else {
            &e["booking"]["id"]
        };
        id["consumer"] == consumer.as_str() && id["nonce"] == nonce
    };
    stored(js, &stream, &format!("{prefix}.out.booking"))
        .await
        .into_iter()
        .filter(|e| of(e) && f(e))
        .collect()
}

/// How many round messages the master published (`action: "sync"`).
async fn sync_rounds(js: &async_nats::jetstream::Context) -> usize {
    let s = stored(js, "GARDEN_M_EVENTS", "garden.m.out.booking").await;
    s.iter().filter(|e| e["action"] == "sync").count()
}

fn reconcile(outcome: &'static str) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["action"] == "reconcile" && e["outcome"] == outcome
}

/// Booking request body for the nano's camera over `[start, end)` hours from `t0`.
fn book(nano: &Did, t0: u64, start: u64, end: u64, nonce: u64, direct: bool) -> Value {
    json!({
        "resource": {"owner": nano.as_str(), "id": "cam"},
        "start_ms": t0 + start * HOUR_MS, "end_ms": t0 + end * HOUR_MS,
        "units": 1, "nonce": nonce, "direct": direct,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nano_and_its_master_through_a_scripted_contact_plan() {
    let Some(nats) = Nats::start("nano") else {
        return;
    };
    let clock = Clock::system();
    let dir = data_dir("nano");
    std::fs::create_dir_all(&*dir).unwrap();
    let ids: Vec<Arc<NodeIdentity>> = (0..4).map(|_| Arc::new(NodeIdentity::generate())).collect();
    let (idm, idt1, idt2, idn) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let (dm, dt1, dt2, dn) = (Did::of(idm), Did::of(idt1), Did::of(idt2), Did::of(idn));
    // A second nano of the master's that never runs: it must not receive the first one's
    // resources.
    let other_nano = NodeIdentity::generate();
    let nc = async_nats::connect(&nats.url).await.expect("test client");
    let js = async_nats::jetstream::new(nc.clone());

    // The master: an indexer too, the nano's seed, on a fixed port (it restarts).
    let m_port = free_port();
    let mut m_cfg = site_config(&dir, &nats.url, "garden.m", Role::Both, m_port);
    m_cfg.delegation.nanos = vec![idn.peer_id().to_string(), other_nano.peer_id().to_string()];
    let m = launch(&clock, idm, &m_cfg).await;
    let m_addr = format!("/ip4/127.0.0.1/tcp/{m_port}/p2p/{}", idm.peer_id());
    let t1 = launch(
        &clock,
        idt1,
        &site_config(&dir, &nats.url, "garden.t1", Role::Node, 0),
    )
    .await;
    let t2 = launch(
        &clock,
        idt2,
        &site_config(&dir, &nats.url, "garden.t2", Role::Node, 0),
    )
    .await;
    for t in [&t1, &t2] {
        t.client
            .dial(m_addr.parse().unwrap())
            .await
            .expect("a third party dials the master");
    }
    let (api_m, api_t1, api_t2) = (api(&m), api(&t1), api(&t2));

    // Contact window 1: the nano runs.
    let mut nano = Nano::new(&dir, idn, &m_addr, &nats.url);
    let api_n = nano.start().await;
    eventually("the nano reaches its master", || async {
        let st = m.client.status().await.ok()?;
        st.connected.contains(&idn.peer_id()).then_some(())
    })
    .await;

    // (b) The nano's camera: to the master only, forwarded to T1 and T2, withheld from the
    // other nano.
    let t0 = clock.now().as_millis();
    let cam = json!({
        "id": "cam", "kind": "data", "name": "camera", "capacity": 1, "unit": "pass",
        "availability": [{"start_ms": t0, "end_ms": t0 + 365 * 24 * HOUR_MS}],
        "visibility": {"partners": [dt1.as_str(), dt2.as_str(), Did::of(&other_nano).as_str()]},
    });
    let (status, created) = post(&api_n, "/v1/resources", cam).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["sent"].as_array().unwrap().len(), 1, "{created}");
    assert_eq!(
        created["sent"][0]["did"],
        dm.as_str(),
        "to the master only: {created}"
    );
    let forwarded = wait_event(
        &js,
        "GARDEN_M_EVENTS",
        "garden.m.out.resource.received",
        |e| e["resource"]["id"] == "cam",
    )
    .await;
    assert_eq!(forwarded["outcome"], "applied", "{forwarded}");
    let lines = forwarded["forwarded"].as_array().expect("forwarded lines");
    assert_eq!(lines.len(), 3, "{forwarded}");
    for l in lines {
        if l["did"] == Did::of(&other_nano).as_str() {
            assert!(l["withheld"].is_string(), "{l}");
        } else {
            assert!(l["entry"].is_string(), "{l}");
        }
    }
    for (prefix, stream) in [
        ("garden.t1", "GARDEN_T1_EVENTS"),
        ("garden.t2", "GARDEN_T2_EVENTS"),
    ] {
        let got = wait_event(
            &js,
            stream,
            &format!("{prefix}.out.resource.received"),
            |e| e["resource"]["id"] == "cam",
        )
        .await;
        assert_eq!(got["outcome"], "applied", "{got}");
        assert_eq!(
            got["via"],
            idm.peer_id().to_string(),
            "from the master: {got}"
        );
        assert_eq!(got["resource"]["owner"], dn.as_str());
    }
    // The master's own resource, visible to the nano and T1: the nano's line is withheld.
    let now = clock.now().as_millis();
    let dish = serde_json::from_slice::<Value>(&gpu("dish", &dt1, now)).unwrap();
    let mut dish = dish;
    dish["visibility"] = json!({"partners": [dn.as_str(), dt1.as_str()]});
    let (status, made) = post(&api_m, "/v1/resources", dish).await;
    assert_eq!(status, 201, "{made}");
    let to_nano = made["sent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["did"] == dn.as_str())
        .expect("a line for the nano")
        .clone();
    assert!(to_nano["withheld"].is_string(), "{made}");

    // (c) T1's own resource, visible to the nano and the master: the nano refuses it and T1
    // hears why.
    t1.client
        .dial(nano.addr.parse().unwrap())
        .await
        .expect("T1 dials the nano");
    let mut probe = serde_json::from_slice::<Value>(&gpu("probe", &dn, now)).unwrap();
    probe["visibility"] = json!({"partners": [dn.as_str(), dm.as_str()]});
    let (status, made) = post(&api_t1, "/v1/resources", probe).await;
    assert_eq!(status, 201, "{made}");
    let refused = wait_event(
        &js,
        "GARDEN_N_EVENTS",
        "garden.n.out.resource.received",
        |e| e["outcome"] == "refused",
    )
    .await;
    let reason = refused["reason"].as_str().unwrap();
    assert!(reason.contains(&idm.peer_id().to_string()), "{refused}");
    assert!(reason.contains(&idt1.peer_id().to_string()), "{refused}");
    let heard = wait_event(
        &js,
        "GARDEN_T1_EVENTS",
        "garden.t1.out.resource.refused",
        |e| e["resource"]["id"] == "probe",
    )
    .await;
    assert_eq!(heard["from"]["peer"], idn.peer_id().to_string(), "{heard}");
    assert_eq!(heard["reason"], refused["reason"], "{heard}");
    // The nano's catalogue: its own resources only (the master got T1's probe).
    wait_event(
        &js,
        "GARDEN_M_EVENTS",
        "garden.m.out.resource.received",
        |e| e["resource"]["id"] == "probe" && e["outcome"] == "applied",
    )
    .await;
    let (_, listed) = get(&api_n, "/v1/resources").await;
    let owners: Vec<&Value> = listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["owner"])
        .collect();
    assert_eq!(owners, vec![&json!(dn.as_str())], "{listed}");

    // Strangers' round messages are refused whole: T1 claims to be the nano's master to the
    // nano, T2 claims to be one of the master's nanos.
    let forged = SyncMessage::Settle {
        epoch: 0,
        master: vec![],
        nano: vec![],
        gone: vec![],
    };
    push_raw(&t1, &dn, SYNC_PROTOCOL, forged.encode()).await;
    let report = SyncMessage::Report {
        epoch: 0,
        taken: vec![],
        gone: vec![],
    };
    push_raw(&t2, &dm, SYNC_PROTOCOL, report.encode()).await;
    for (stream, subject) in [
        ("GARDEN_N_EVENTS", "garden.n.out.booking"),
        ("GARDEN_M_EVENTS", "garden.m.out.booking"),
    ] {
        let e = wait_event(&js, stream, subject, |e| {
            e["action"] == "sync" && e["outcome"] == "refused"
        })
        .await;
        assert!(
            e["reason"]
                .as_str()
                .unwrap()
                .contains("neither our master nor one of our nanos"),
            "{e}"
        );
    }

    // (a) kill -9: out of contact. T1 books the camera; the master takes it in proxy and
    // answers.
    nano.kill().await;
    let (status, r) = post(&api_t1, "/v1/bookings", book(&dn, t0, 10, 12, 1, false)).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(
        r["sent"]["did"],
        dm.as_str(),
        "booked through the master: {r}"
    );
    let b1 = format!("{dt1}#1");
    wait_state(&api_t1, &b1, "confirmed").await;
    wait_state(&api_m, &b1, "confirmed").await;
    let proxied = booking_events(&js, "garden.m", &dt1, 1, |e| e["outcome"] == "proxied").await;
    assert_eq!(proxied.len(), 1, "{proxied:?}");
    // Contact window 2: the proxy booking reaches the nano, once.
    let api_n = nano.start().await;
    let held = wait_state(&api_n, &b1, "confirmed").await;
    assert_eq!(held["provider"], dn.as_str());
    eventually("the nano's event", || async {
        let v = booking_events(&js, "garden.n", &dt1, 1, reconcile("proxied")).await;
        (v.len() == 1).then_some(())
    })
    .await;
    // Another window (a clean stop and a start): nothing arrives twice.
    let before = sync_rounds(&js).await;
    nano.stop().await;
    let _ = nano.start().await;
    eventually("the nano reports again", || async {
        (sync_rounds(&js).await > before).then_some(())
    })
    .await;
    let v = booking_events(&js, "garden.n", &dt1, 1, reconcile("proxied")).await;
    assert_eq!(v.len(), 1, "delivered exactly once: {v:?}");
    // In contact: T2's request over a slot the master holds is refused by the master, and the
    // refusal reaches T2 (its booking follows, cancelled).
    let (status, r) = post(&api_t2, "/v1/bookings", book(&dn, t0, 11, 13, 4, false)).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["sent"]["did"], dm.as_str(), "through the master: {r}");
    wait_state(&api_t2, &format!("{dt2}#4"), "cancelled").await;
    // A proxy booking cancelled by its requester: the step goes through the master, which
    // relays it to the nano.
    let (status, r) = post(&api_t1, "/v1/bookings", book(&dn, t0, 30, 31, 5, false)).await;
    assert_eq!(status, 201, "{r}");
    let b5 = format!("{dt1}#5");
    wait_state(&api_n, &b5, "confirmed").await;
    let (status, r) = post(
        &api_t1,
        &format!("/v1/bookings/{}/cancel", segment(&b5)),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    wait_state(&api_m, &b5, "cancelled").await;
    wait_state(&api_n, &b5, "cancelled").await;

    // (d) Split brain. The nano stops; the master takes a second proxy booking.
    nano.stop().await;
    let (status, r) = post(&api_t1, "/v1/bookings", book(&dn, t0, 20, 22, 2, false)).await;
    assert_eq!(status, 201, "{r}");
    let b2 = format!("{dt1}#2");
    wait_state(&api_t1, &b2, "confirmed").await;
    // The master is cut off too (shut down); the nano comes back and T2, in contact with it,
    // books an overlapping slot directly; the nano's operator confirms it.
    m.shutdown().await;
    let api_n = nano.start().await;
    t2.client
        .dial(nano.addr.parse().unwrap())
        .await
        .expect("T2 dials the nano");
    let (status, r) = post(&api_t2, "/v1/bookings", book(&dn, t0, 21, 23, 3, true)).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["sent"]["did"], dn.as_str(), "direct: {r}");
    let b3 = format!("{dt2}#3");
    wait_state(&api_n, &b3, "requested").await;
    let (status, r) = post(
        &api_n,
        &format!("/v1/bookings/{}/confirm", segment(&b3)),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    wait_state(&api_t2, &b3, "confirmed").await;

    // The master comes back and the link between them opens: master wins.
    let m = launch(&clock, idm, &m_cfg).await;
    let api_m = api(&m);
    m.client
        .dial(nano.addr.parse().unwrap())
        .await
        .unwrap_or_else(|e| panic!("the master dials the nano: {e}\n{}", nano.log_tail()));
    wait_state(&api_n, &b3, "cancelled").await;
    wait_state(&api_n, &b2, "confirmed").await;
    wait_state(&api_n, &b1, "confirmed").await;
    wait_state(&api_m, &b3, "cancelled").await;
    wait_state(&api_m, &b2, "confirmed").await;
    wait_state(&api_t2, &b3, "cancelled").await;
    wait_state(&api_t1, &b2, "confirmed").await;
    // Exactly one cancellation on each site's NATS, with the reason; the requester told once.
    eventually("the nano told the requester", || async {
        let v = booking_events(&js, "garden.n", &dt2, 3, reconcile("told")).await;
        (v.len() == 1).then_some(())
    })
    .await;
    let got = eventually("T2's event", || async {
        let v = booking_events(&js, "garden.t2", &dt2, 3, reconcile("cancelled")).await;
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(got[0]["reason"], "superseded_by_master", "{got:?}");
    // Let anything that would come twice come, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (prefix, consumer) in [("garden.n", &dt2), ("garden.m", &dt2), ("garden.t2", &dt2)] {
        let c = booking_events(&js, prefix, consumer, 3, reconcile("cancelled")).await;
        assert_eq!(c.len(), 1, "{prefix}: {c:?}");
        assert_eq!(c[0]["reason"], "superseded_by_master", "{prefix}: {c:?}");
    }
    let v = booking_events(&js, "garden.n", &dt2, 3, reconcile("told")).await;
    assert_eq!(v.len(), 1, "told once: {v:?}");
    for n in [1, 2] {
        let c = booking_events(&js, "garden.t1", &dt1, n, reconcile("cancelled")).await;
        assert!(c.is_empty(), "{c:?}");
    }
    let c = booking_events(&js, "garden.n", &dt2, 3, |e| {
        e["outcome"] == "refused_by_peer"
    })
    .await;
    assert!(c.is_empty(), "{c:?}");

    nano.stop().await;
    m.shutdown().await;
    t1.shutdown().await;
    t2.shutdown().await;
}

/// p-th percentile (nearest rank) of `v`, sorted in place.
fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Figures for docs/PERFORMANCE.md: the time from the start of a contact (the nano's process
/// up and connected to its master) to the delivery of the first critical entry the master
/// queued for it while it was away, over `GARDEN_NANO_CONTACTS` contacts (24 by default);
/// the cuts alternate `kill -9` and a clean stop (the master's per-peer rate limits raised: a
/// contact every two seconds would get the nano banned for its heartbeats and DHT puts). No
/// timed assertion. Run:
///
/// ```text
/// cargo test -p garden-sidecar --release --test nano contact_figures -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures: cargo test --release --test nano contact_figures -- --ignored --nocapture"]
async fn contact_figures() {
    use garden_sidecar::dtn::{self, Entry, Level, Outcome};
    use std::time::Instant;
    let contacts: usize = std::env::var("GARDEN_NANO_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let clock = Clock::system();
    let dir = data_dir("nano-figures");
    std::fs::create_dir_all(&*dir).unwrap();
    let (idm, idn) = (
        Arc::new(NodeIdentity::generate()),
        Arc::new(NodeIdentity::generate()),
    );
    // The master without NATS nor API: no service, so this harness watches its outbox.
    let m_port = free_port();
    let mut m_cfg = site_config(&dir, "", "garden.m", Role::Both, m_port);
    m_cfg.api.listen = String::new();
    // A contact every two seconds is far beyond the gater's per-peer limits (5 heartbeats and
    // 10 DHT puts a minute): the master would ban its nano (as designed) after a few contacts.
    m_cfg.gater.max_heartbeats_per_minute = 10_000;
    m_cfg.gater.max_publishes_per_minute = 10_000;
    m_cfg.gater.max_requests_per_minute = 10_000;
    let m = launch(&clock, &idm, &m_cfg).await;
    let plane = m.data_plane.clone().expect("the data plane");
    let mut outcomes = plane.watch(256).await.expect("watch");
    let m_addr = format!("/ip4/127.0.0.1/tcp/{m_port}/p2p/{}", idm.peer_id());
    let mut nano = Nano::new(&dir, &idn, &m_addr, "");
    let (mut to_conn, mut to_deliv, mut spawn_conn) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..contacts {
        if i > 0 {
            if i % 2 == 0 {
                nano.kill().await;
            } else {
                nano.stop().await;
            }
        }
        // Out of contact: the master queues a critical entry and fails to deliver it.
        let id = plane
            .push(Entry {
                peer: idn.peer_id(),
                protocol: "/garden/figures/1.0.0".into(),
                op: dtn::Op::Message,
                resource: format!("probe-{i}"),
                level: Level::Critical,
                payload: vec![7; 256],
                expires_at: clock.now().plus(Duration::from_secs(3600)),
            })
            .await
            .expect("pushed");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let spawned = Instant::now();
        nano.spawn();
        let mut connected = None;
        let delivered = tokio::time::timeout(DEADLINE, async {
            loop {
                tokio::select! {
                    o = outcomes.recv() => {
                        if matches!(o, Some(Outcome::Delivered { id: d, .. }) if d == id) {
                            return Instant::now();
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_millis(2)), if connected.is_none() => {
                        let st = m.client.status().await.expect("status");
                        if st.connected.contains(&idn.peer_id()) {
                            connected = Some(Instant::now());
                        }
                    }
                }
            }
        })
        .await;
        let Ok(delivered) = delivered else {
            let st = plane.stats().await.expect("stats");
            let ms = m.client.status().await.expect("status");
            let conn = ms.connected.clone();
            panic!(
                "contact {i}: not delivered; banned {:?}, denied {}; connected {}; outbox {:?}; failed batches {}\n{}",
                ms.banned,
                ms.denied_connections,
                conn.contains(&idn.peer_id()),
                st.outbox,
                st.failed_batches,
                nano.log_tail()
            );
        };
        let connected = connected.unwrap_or(delivered);
        let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1000.0;
        spawn_conn.push(ms(spawned, connected));
        to_deliv.push(ms(spawned, delivered));
        to_conn.push(ms(connected, delivered));
        nano.wait_api().await;
    }
    nano.stop().await;
    m.shutdown().await;
    println!("contacts: {contacts} (cuts alternate kill -9 and a clean stop)");
    for (what, v) in [
        ("process start -> connected to the master", &mut spawn_conn),
        (
            "connected -> first critical entry delivered (acked)",
            &mut to_conn,
        ),
        (
            "process start -> first critical entry delivered",
            &mut to_deliv,
        ),
    ] {
        println!(
            "{what:<52} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
            percentile(v, 50.0),
            percentile(v, 99.0),
            percentile(v, 100.0)
        );
    }
}
