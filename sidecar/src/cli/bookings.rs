//! `garden bookings list|show|request|confirm|decline|start|complete|cancel|confirm-usage`:
//! this site's bookings, as consumer or provider, through the operator API
//! (`/v1/bookings`). A booking id is `<consumer did>#<nonce>`, as `list` prints it.
//!
//! Each transition is made by this site's party, stored, and carried to the other party's
//! site by the DTN outbox; the other site applies it or refuses it (the refusal comes back
//! as an `out.booking` event, and the booking shows what each side holds).

use hyper::Method;
use serde_json::{json, Value};

use super::client::{print, segment, ApiArgs};
use super::human::{cell, now_ms, parse_time, table, utc, utc_of};

/// Bookings of this site: requested of partners (consumer) or of our resources (provider).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Our bookings (at most 1 000), optionally only those in one state.
    List {
        /// requested, confirmed, running, completed, usage_confirmed, settled or cancelled.
        #[arg(long)]
        state: Option<String>,
    },
    /// One booking, with its usage report and confirmed usage.
    Show {
        /// Booking id, `<consumer did>#<nonce>`.
        id: String,
    },
    /// Book a partner's resource from our catalogue (consumer).
    Request(RequestArgs),
    /// Confirm a requested booking of our resource (provider; capacity is checked).
    Confirm(Id),
    /// Decline a requested booking of our resource (provider).
    Decline(Id),
    /// Start a confirmed booking, before its window ends (provider).
    Start(Id),
    /// Complete a running booking with our signed usage report (provider).
    Complete(CompleteArgs),
    /// Cancel our booking, up to running (consumer).
    Cancel(Id),
    /// Countersign the provider's usage report (consumer): the usage goes to settlement.
    ConfirmUsage(Id),
}

#[derive(Debug, clap::Args)]
pub struct Id {
    /// Booking id, `<consumer did>#<nonce>`.
    pub id: String,
}

#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// The resource's owner (a did:key).
    #[arg(long)]
    pub owner: String,
    /// The resource id.
    #[arg(long)]
    pub resource: String,
    /// Slot start (now, +2h, 2026-05-01T12:00:00Z, or ms since the epoch).
    #[arg(long, value_name = "TIME")]
    pub start: String,
    /// Slot end, after the start.
    #[arg(long, value_name = "TIME")]
    pub end: String,
    /// Units of capacity.
    #[arg(long)]
    pub units: u64,
    /// Our nonce for the booking id (random when absent; each once).
    #[arg(long)]
    pub nonce: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct CompleteArgs {
    /// Booking id, `<consumer did>#<nonce>`.
    pub id: String,
    /// Units actually used (at most the units booked).
    #[arg(long)]
    pub units_used: u64,
    /// When use started [default: the booked window's start].
    #[arg(long, value_name = "TIME", requires = "end")]
    pub start: Option<String>,
    /// When use ended [default: the booked window's end].
    #[arg(long, value_name = "TIME", requires = "start")]
    pub end: Option<String>,
}

fn time(flag: &str, s: &str, now: u64) -> anyhow::Result<u64> {
    parse_time(s, now).map_err(|e| anyhow::anyhow!("--{flag} {e}"))
}

pub(super) async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let api = &args.api;
    let step = |id: &str, name: &str| format!("/v1/bookings/{}/{name}", segment(id));
    let now = now_ms();
    let (method, path, body) = match &args.command {
        Command::List { state } => {
            let path = match state {
                Some(s) => format!("/v1/bookings?state={}", segment(s)),
                None => "/v1/bookings".into(),
            };
            return print(api, client.get(&path).await?, list);
        }
        Command::Show { id } => {
            let answer = client.get(&format!("/v1/bookings/{}", segment(id))).await?;
            return print(api, answer, |v| detail(&v["booking"]));
        }
        Command::Request(r) => {
            let mut body = json!({
                "resource": {"owner": r.owner, "id": r.resource},
                "start_ms": time("start", &r.start, now)?,
                "end_ms": time("end", &r.end, now)?,
                "units": r.units,
            });
            if let Some(n) = r.nonce {
                body["nonce"] = json!(n);
            }
            (Method::POST, "/v1/bookings".to_string(), Some(body))
        }
        Command::Confirm(i) => (Method::POST, step(&i.id, "confirm"), None),
        Command::Decline(i) => (Method::POST, step(&i.id, "decline"), None),
        Command::Start(i) => (Method::POST, step(&i.id, "start"), None),
        Command::Cancel(i) => (Method::POST, step(&i.id, "cancel"), None),
        Command::ConfirmUsage(i) => (Method::POST, step(&i.id, "confirm-usage"), None),
        Command::Complete(c) => {
            let mut body = json!({"units_used": c.units_used});
            if let (Some(s), Some(e)) = (&c.start, &c.end) {
                body["start_ms"] = json!(time("start", s, now)?);
                body["end_ms"] = json!(time("end", e, now)?);
            }
            (Method::POST, step(&c.id, "complete"), Some(body))
        }
    };
    let answer = client.send(method, &path, body.as_ref()).await?;
    print(api, answer, changed)
}

/// A booking's id as the commands take it.
fn id_of(b: &Value) -> String {
    format!("{}#{}", cell(&b["id"]["consumer"]), cell(&b["id"]["nonce"]))
}

fn list(v: &Value) {
    let me = v["me"].as_str().unwrap_or_default();
    let rows: Vec<Vec<String>> = v["bookings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            let side = if b["consumer"] == me {
                "consumer"
            } else {
                "provider"
            };
            vec![
                id_of(b),
                side.to_string(),
                cell(&b["resource"]["id"]),
                cell(&b["state"]),
                cell(&b["units"]),
                format!(
                    "{} → {}",
                    utc_of(&b["window"]["start_ms"]),
                    utc_of(&b["window"]["end_ms"])
                ),
                utc_of(&b["updated_at_ms"]),
            ]
        })
        .collect();
    table(
        &[
            "ID", "SIDE", "RESOURCE", "STATE", "UNITS", "WINDOW", "UPDATED",
        ],
        &rows,
    );
    if v["truncated"] == true {
        println!("(more bookings: narrow with --state)");
    }
}

fn detail(b: &Value) {
    let line = |k: &str, v: String| println!("{k:<13} {v}");
    line("id", id_of(b));
    line("state", cell(&b["state"]));
    line(
        "resource",
        format!(
            "{} {}",
            cell(&b["resource"]["owner"]),
            cell(&b["resource"]["id"])
        ),
    );
    line("consumer", cell(&b["consumer"]));
    line("provider", cell(&b["provider"]));
    line(
        "window",
        format!(
            "{} → {}",
            utc_of(&b["window"]["start_ms"]),
            utc_of(&b["window"]["end_ms"])
        ),
    );
    line("units", cell(&b["units"]));
    line("unit price", cell(&b["unit_price"]));
    line("requested", utc_of(&b["requested_at_ms"]));
    line("updated", utc_of(&b["updated_at_ms"]));
    if let Some(r) = b["report"].as_object() {
        line(
            "report",
            format!(
                "{} units used, {} → {} (signed by the provider)",
                cell(&r["units_used"]),
                utc(r["window"]["start_ms"].as_u64().unwrap_or(0)),
                utc(r["window"]["end_ms"].as_u64().unwrap_or(0)),
            ),
        );
    }
    if let Some(u) = b["usage"].as_object() {
        line(
            "usage",
            format!(
                "{} units, price {} (signed by both parties)",
                cell(&u["units"]),
                cell(&u["price"])
            ),
        );
    }
}

/// A request's or a transition's reply: the booking as stored, and its delivery.
fn changed(v: &Value) {
    let b = &v["booking"];
    let what = v["action"].as_str().unwrap_or("request");
    println!("{what}: {} is {}", id_of(b), cell(&b["state"]));
    let s = &v["sent"];
    if s["entry"].is_string() {
        println!(
            "sent to {} (outbox entry {})",
            cell(&s["did"]),
            cell(&s["entry"])
        );
    } else {
        println!("not queued for {}: {}", cell(&s["did"]), cell(&s["error"]));
    }
}
