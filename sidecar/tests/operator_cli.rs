//! The `garden outbox | resources | bookings` commands (the real binary) against two running
//! sites' operator APIs, without NATS: a resource created with the CLI on the provider
//! reaches the consumer, which books it with the CLI; the provider confirms it with the
//! CLI. Tables print aligned, `--json` prints the API's JSON, refusals exit non-zero with
//! the API's reason, and the API is found by `--api`, `GARDEN_API_URL` or the configuration.

mod common;

use std::sync::Arc;

use common::nats::data_dir;
use common::*;
use garden_sidecar::app::App;
use garden_sidecar::config::Role;
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::resources::Did;
use garden_sidecar::time::Clock;
use serde_json::Value;

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `garden args…` with `env` (and no inherited `GARDEN_*`).
async fn garden(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_garden"));
    cmd.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GARDEN_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = within("the garden command", cmd.output())
        .await
        .expect("garden runs");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `garden args… --api <app's API>`, which must succeed.
async fn ok(app: &App, args: &[&str]) -> String {
    let url = url(app);
    let mut all = args.to_vec();
    all.extend(["--api", &url]);
    let out = garden(&all, &[]).await;
    assert!(out.ok, "garden {args:?}: {}{}", out.stdout, out.stderr);
    out.stdout
}

async fn json(app: &App, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok(app, &all).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("garden {args:?} --json: {e}: {out}"))
}

fn url(app: &App) -> String {
    format!("http://{}", app.api.as_ref().expect("the API runs").addr)
}

/// The cell of `row` under `column` of `header`: the row's text from that column on.
fn under(header: &str, row: &str, column: &str) -> String {
    let at = header
        .find(column)
        .unwrap_or_else(|| panic!("{column:?} in {header:?}"));
    row.chars().skip(header[..at].chars().count()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_run_a_booking_with_the_cli() {
    let clock = Clock::system();
    let dir = data_dir("cli");
    let (ida, idb) = (
        Arc::new(NodeIdentity::generate()),
        Arc::new(NodeIdentity::generate()),
    );
    let (da, db) = (Did::of(&ida), Did::of(&idb));
    let site = || {
        let mut c = mem_config(Role::Node, "", &[]);
        c.data_plane.dir = dir.to_path_buf();
        c.api.listen = "127.0.0.1:0".into();
        c
    };
    let a = launch(&clock, &ida, &site()).await;
    let b = launch(&clock, &idb, &site()).await;
    b.client.dial(mem_addr(&a).await).await.expect("B dials A");

    // A creates a resource for B with the CLI.
    let out = ok(
        &a,
        &[
            "resources",
            "create",
            "gpu-1",
            "--kind",
            "compute",
            "--name",
            "GPU box",
            "--capacity",
            "4",
            "--unit",
            "gpu",
            "--price",
            "1500000",
            "--available",
            "now..+365d",
            "--partner",
            db.as_str(),
        ],
    )
    .await;
    assert!(out.starts_with("create gpu-1 version 1\n"), "{out}");
    assert!(out.contains("PARTNER") && out.contains("queued"), "{out}");
    let shown = json(&a, &["resources", "show", "gpu-1"]).await;
    assert_eq!(shown["resource"]["capacity"], 4, "{shown}");
    // An update changes only what it names.
    let out = ok(
        &a,
        &["resources", "update", "gpu-1", "--description", "8 x A100"],
    )
    .await;
    assert!(out.starts_with("update gpu-1 version 2\n"), "{out}");
    let shown = json(&a, &["resources", "show", "gpu-1"]).await;
    assert_eq!(shown["resource"]["description"], "8 x A100");
    assert_eq!(shown["resource"]["name"], "GPU box");

    // B sees it, as JSON and as a table whose columns line up.
    eventually("B's catalogue has gpu-1", || async {
        let v = json(&b, &["resources", "list", "--owner", da.as_str()]).await;
        (v["resources"][0]["description"] == "8 x A100").then_some(())
    })
    .await;
    let table = ok(&b, &["resources", "list"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID  "), "{table}");
    let row = lines
        .iter()
        .find(|l| l.starts_with("gpu-1"))
        .expect("a gpu-1 row");
    assert!(
        under(lines[0], row, "KIND").starts_with("compute  "),
        "{table}"
    );
    assert!(
        under(lines[0], row, "CAPACITY").starts_with("4  "),
        "{table}"
    );
    assert!(
        under(lines[0], row, "OWNER").starts_with(da.as_str()),
        "{table}"
    );

    // B books it with the CLI; A lists it and confirms it.
    let out = ok(
        &b,
        &[
            "bookings",
            "request",
            "--owner",
            da.as_str(),
            "--resource",
            "gpu-1",
            "--start",
            "+1h",
            "--end",
            "+2h",
            "--units",
            "2",
            "--nonce",
            "5",
        ],
    )
    .await;
    let id = format!("{db}#5");
    assert!(
        out.starts_with(&format!("request: {id} is requested\n")),
        "{out}"
    );
    let listed = eventually("A holds the booking", || async {
        let v = json(&a, &["bookings", "list", "--state", "requested"]).await;
        (v["bookings"][0]["id"]["nonce"] == 5).then_some(v)
    })
    .await;
    assert_eq!(listed["me"], da.as_str());
    let table = ok(&a, &["bookings", "list"]).await;
    let header = table.lines().next().unwrap_or_default();
    let row = table
        .lines()
        .find(|l| l.starts_with(&id))
        .expect("a row of the booking");
    assert!(
        under(header, row, "SIDE").starts_with("provider  "),
        "{table}"
    );
    assert!(
        under(header, row, "STATE").starts_with("requested  "),
        "{table}"
    );

    // The consumer cannot confirm: non-zero exit, the API's reason on stderr.
    let refused = garden(&["bookings", "confirm", &id, "--api", &url(&b)], &[]).await;
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(
        refused
            .stderr
            .contains("HTTP 403: booking: only the provider may confirm, not the consumer"),
        "{}",
        refused.stderr
    );
    // With --json the refusal is printed as JSON, and the exit status still says so.
    let refused = garden(
        &["bookings", "confirm", &id, "--json", "--api", &url(&b)],
        &[],
    )
    .await;
    assert!(!refused.ok);
    let v: Value = serde_json::from_str(&refused.stdout).expect("JSON");
    assert_eq!(v["field"], "booking");

    let out = ok(&a, &["bookings", "confirm", &id]).await;
    assert!(
        out.starts_with(&format!("confirm: {id} is confirmed\nsent to {db}")),
        "{out}"
    );
    eventually("B holds it confirmed", || async {
        let out = ok(&b, &["bookings", "show", &id]).await;
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["state", "confirmed"])
            .then_some(())
    })
    .await;

    // The outbox, found through GARDEN_API_URL, then through the configuration.
    let env = [("GARDEN_API_URL", url(&a))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = garden(&["outbox"], &env).await;
    assert!(
        out.ok && out.stdout.starts_with("entries "),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let cfg = dir.join("cli.toml");
    let addr = a.api.as_ref().unwrap().addr;
    std::fs::write(&cfg, format!("[api]\nlisten = \"{addr}\"\n")).unwrap();
    let out = garden(
        &["outbox", "--json", "--config", cfg.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).expect("outbox JSON");
    assert!(v["depth"].is_u64() && v["per_peer"].is_array(), "{v}");
    // No API configured and none given: a clear error.
    std::fs::write(&cfg, "[api]\nlisten = \"\"\n").unwrap();
    let out = garden(&["outbox", "--config", cfg.to_str().unwrap()], &[]).await;
    assert!(!out.ok && out.stderr.contains("--api"), "{}", out.stderr);
    // A malformed id is refused before anything runs.
    let out = garden(&["bookings", "show", "nope", "--api", &url(&a)], &[]).await;
    assert!(
        !out.ok && out.stderr.contains("HTTP 400: booking:"),
        "{}",
        out.stderr
    );
    let help = garden(&["bookings", "--help"], &[]).await;
    assert!(
        help.ok && help.stdout.contains("confirm-usage"),
        "{}",
        help.stdout
    );
    a.shutdown().await;
    b.shutdown().await;
}
