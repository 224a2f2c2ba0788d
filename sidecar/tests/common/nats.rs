//! A real nats-server for a test (started by `scripts/nats.sh`, skipped loudly when the
//! binary is missing), the sites' data directory, and NATS request and JetStream helpers
//! shared by the tests that run sites with the NATS bridge.

use std::path::{Path, PathBuf};
use std::process::Command;

use garden_sidecar::config::{Config, Role};
use garden_sidecar::resources::Did;
use serde_json::{json, Value};

use super::eventually;

fn script() -> PathBuf {
    // At run time: a binary reused from another checkout would carry that checkout's path.
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    Path::new(&dir).join("../scripts/nats.sh")
}

fn run(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("bash runs scripts/nats.sh");
    assert!(
        out.status.success(),
        "scripts/nats.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A nats-server of this test, stopped on drop.
pub struct Nats {
    dir: PathBuf,
    pub url: String,
    port: String,
}

impl Nats {
    /// `None` (after a loud message) when the binary is missing.
    pub fn start(test: &str) -> Option<Nats> {
        let bin = run(&["path"]);
        if !Path::new(&bin).is_file() {
            // Written to stderr directly: the test harness does not capture it.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! SKIPPED {test}: no nats-server at {bin}\n\
                 !!!!!!!! run scripts/install-deps.sh --only nats-server (CI does)\n"
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "garden-nats-{test}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let url = run(&["start", "--dir", dir.to_str().unwrap()]);
        let port = std::fs::read_to_string(dir.join("port")).unwrap();
        Some(Nats {
            dir,
            url,
            port: port.trim().to_string(),
        })
    }

    pub fn kill(&self) {
        run(&["stop", "--kill", "--dir", self.dir.to_str().unwrap()]);
    }

    /// Same port, same JetStream store.
    pub fn restart(&self) {
        run(&[
            "start",
            "--port",
            &self.port,
            "--dir",
            self.dir.to_str().unwrap(),
        ]);
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", "--kill", "--dir", self.dir.to_str().unwrap()])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The sites' data directory, removed on drop (also when the test fails).
pub struct DataDir(pub PathBuf);

impl std::ops::Deref for DataDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A site (memory transport) with its data in `dir` and its NATS bridge on `url` under
/// `prefix`.
pub fn site(dir: &Path, url: &str, prefix: &str) -> Config {
    let mut c = super::mem_config(Role::Node, "", &[]);
    c.data_plane.dir = dir.to_path_buf();
    c.events.nats_url = url.to_string();
    c.events.prefix = prefix.to_string();
    c
}

/// A fresh data directory for the sites of `test`.
pub fn data_dir(test: &str) -> DataDir {
    DataDir(std::env::temp_dir().join(format!(
        "garden-events-{test}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    )))
}

/// A request with its reply, retried while the site has not subscribed yet.
pub async fn request(nc: &async_nats::Client, subject: &str, body: &[u8]) -> Value {
    let (subject, body) = (subject.to_string(), body.to_vec());
    eventually(&format!("a reply on {subject}"), || {
        let (s, b) = (subject.clone(), body.clone());
        async move {
            let m = nc.request(s, b.into()).await.ok()?;
            Some(serde_json::from_slice(&m.payload).expect("replies are JSON"))
        }
    })
    .await
}

/// Every event the stream holds on `subject`, in order.
pub async fn stored(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
) -> Vec<Value> {
    let Ok(mut s) = js.get_stream(stream).await else {
        return Vec::new();
    };
    let Ok(info) = s.info().await else {
        return Vec::new();
    };
    let last = info.state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        if let Ok(m) = s.get_raw_message(seq).await {
            if m.subject.as_str() == subject {
                out.push(serde_json::from_slice(&m.payload).expect("events are JSON"));
            }
        }
    }
    out
}

/// Waits until the stream holds an event on `subject` matching `f`.
pub async fn wait_event(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
    f: impl Fn(&Value) -> bool,
) -> Value {
    eventually(&format!("an event on {subject}"), || async {
        stored(js, stream, subject).await.into_iter().find(|e| f(e))
    })
    .await
}

/// A create body: a 4-GPU compute resource at 1.5 units a GPU, bookable for a year from
/// `now_ms`, visible to `partner`.
pub fn gpu(id: &str, partner: &Did, now_ms: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "kind": "compute", "name": "GPU box", "capacity": 4, "unit": "gpu",
        "price_per_unit": "1500000",
        "availability": [{"start_ms": now_ms, "end_ms": now_ms + 365 * 86_400_000u64}],
        "visibility": {"partners": [partner.as_str()]},
    }))
    .unwrap()
}
