//! `garden resources list|show|create|update|delete`: this site's catalogue through the
//! operator API (`/v1/resources`). Create and update send the body `<p>.resource.create`
//! takes (docs/EVENTS.md); the sidecar validates it, signs it and sends it to the partners.

use anyhow::Context;
use hyper::Method;
use serde_json::{json, Map, Value};

use super::client::{print, segment, ApiArgs};
use super::human::{cell, now_ms, parse_time, table, utc};

/// This site's catalogue: our resources and those partners shared with us.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Resources in the catalogue, ours first (at most 100; narrow with the filters).
    List(ListArgs),
    /// One of our resources, with its version.
    Show {
        /// Resource id.
        id: String,
    },
    /// Create one of our resources (signed as version 1, sent to its partners).
    Create(Fields),
    /// Change one of our resources: the current content with the fields given replaced
    /// (signed as the next version, sent to the partners of the new visibility).
    Update(Fields),
    /// Delete one of our resources; terminal, the id can never be used again.
    Delete {
        /// Resource id.
        id: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this kind (compute, storage, data, workflow).
    #[arg(long)]
    pub kind: Option<String>,
    /// Case-insensitive substring of the name.
    #[arg(long)]
    pub name: Option<String>,
    /// Only this owner's (a did:key).
    #[arg(long)]
    pub owner: Option<String>,
    /// Only resources available at this time (now, +2h, 2026-05-01T12:00:00Z, or ms).
    #[arg(long, value_name = "TIME")]
    pub available_at: Option<String>,
    /// At most this many (1–100).
    #[arg(long)]
    pub limit: Option<u32>,
}

/// A resource's fields; on update, only those given change.
#[derive(Debug, clap::Args)]
pub struct Fields {
    /// Resource id: 1–64 bytes of a-z, 0-9, '-', '_', '.'.
    pub id: String,
    /// A JSON file in the shape of `<p>.resource.create` (docs/EVENTS.md); the flags below
    /// override its fields.
    #[arg(long, value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// compute, storage, data or workflow.
    #[arg(long)]
    pub kind: Option<String>,
    /// Name, at most 64 bytes.
    #[arg(long)]
    pub name: Option<String>,
    /// Description, at most 512 bytes.
    #[arg(long)]
    pub description: Option<String>,
    /// Units that can be booked at the same time.
    #[arg(long)]
    pub capacity: Option<u64>,
    /// What one unit is (gpu, GiB, …).
    #[arg(long)]
    pub unit: Option<String>,
    /// Price of one unit, in micro-units.
    #[arg(long, value_name = "MICRO_UNITS")]
    pub price: Option<u128>,
    /// When it can be booked, FROM..UNTIL (each now, +2h, 2026-05-01T12:00:00Z or ms);
    /// repeat for several windows (they replace the current ones).
    #[arg(long, value_name = "FROM..UNTIL")]
    pub available: Vec<String>,
    /// A partner DID that sees the resource; repeat for several (they replace the list).
    #[arg(long, value_name = "DID", conflicts_with = "consortium")]
    pub partner: Vec<String>,
    /// Visible to the whole consortium (stored; not sent to anyone yet).
    #[arg(long)]
    pub consortium: bool,
    /// Kind-specific payload, hex (at most 16 KiB once decoded).
    #[arg(long, value_name = "HEX")]
    pub payload_hex: Option<String>,
}

pub(super) async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let api = &args.api;
    match &args.command {
        Command::List(l) => {
            let mut q = Vec::new();
            let now = now_ms();
            let at = l
                .available_at
                .as_deref()
                .map(|t| parse_time(t, now))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--available-at {e}"))?;
            for (k, v) in [
                ("kind", l.kind.clone()),
                ("name", l.name.clone()),
                ("owner", l.owner.clone()),
                ("available_at_ms", at.map(|t| t.to_string())),
                ("limit", l.limit.map(|n| n.to_string())),
            ] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", segment(&v)));
                }
            }
            let path = if q.is_empty() {
                "/v1/resources".to_string()
            } else {
                format!("/v1/resources?{}", q.join("&"))
            };
            print(api, client.get(&path).await?, list)
        }
        Command::Show { id } => {
            let answer = client
                .get(&format!("/v1/resources/{}", segment(id)))
                .await?;
            print(api, answer, |v| {
                println!("version {}", cell(&v["version"]));
                detail(&v["resource"]);
            })
        }
        Command::Create(f) => {
            let body = f.apply(Map::new())?;
            let answer = client
                .send(Method::POST, "/v1/resources", Some(&body))
                .await?;
            print(api, answer, sent)
        }
        Command::Update(f) => {
            let path = format!("/v1/resources/{}", segment(&f.id));
            let current = client.get(&path).await?.ok()?;
            let mut base = current["resource"].as_object().cloned().unwrap_or_default();
            base.remove("owner");
            let body = f.apply(base)?;
            print(
                api,
                client.send(Method::PUT, &path, Some(&body)).await?,
                sent,
            )
        }
        Command::Delete { id } => {
            let path = format!("/v1/resources/{}", segment(id));
            print(api, client.send(Method::DELETE, &path, None).await?, sent)
        }
    }
}

impl Fields {
    /// `base` with the file's fields, then the flags', over it.
    fn apply(&self, mut base: Map<String, Value>) -> anyhow::Result<Value> {
        if let Some(file) = &self.file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let obj = v
                .as_object()
                .with_context(|| format!("{} is not a JSON object", file.display()))?;
            base.extend(obj.clone());
        }
        base.insert("id".into(), json!(self.id));
        let mut set = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                base.insert(k.to_string(), v);
            }
        };
        set("kind", self.kind.clone().map(Value::from));
        set("name", self.name.clone().map(Value::from));
        set("description", self.description.clone().map(Value::from));
        set("capacity", self.capacity.map(Value::from));
        set("unit", self.unit.clone().map(Value::from));
        set("price_per_unit", self.price.map(|p| json!(p.to_string())));
        set("payload_hex", self.payload_hex.clone().map(Value::from));
        if !self.available.is_empty() {
            let now = now_ms();
            let windows = self
                .available
                .iter()
                .map(|w| {
                    let (from, until) = w
                        .split_once("..")
                        .with_context(|| format!("--available {w:?}: give FROM..UNTIL"))?;
                    let start =
                        parse_time(from, now).map_err(|e| anyhow::anyhow!("--available {e}"))?;
                    let end =
                        parse_time(until, now).map_err(|e| anyhow::anyhow!("--available {e}"))?;
                    Ok(json!({"start_ms": start, "end_ms": end}))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            set("availability", Some(Value::Array(windows)));
        }
        if self.consortium {
            set("visibility", Some(json!("consortium")));
        } else if !self.partner.is_empty() {
            set("visibility", Some(json!({"partners": self.partner})));
        }
        Ok(Value::Object(base))
    }
}

fn list(v: &Value) {
    let rows: Vec<Vec<String>> = v["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                cell(&r["id"]),
                cell(&r["owner"]),
                cell(&r["kind"]),
                cell(&r["name"]),
                cell(&r["capacity"]),
                cell(&r["unit"]),
                cell(&r["price_per_unit"]),
                windows(&r["availability"]),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "OWNER",
            "KIND",
            "NAME",
            "CAPACITY",
            "UNIT",
            "PRICE/UNIT",
            "AVAILABLE",
        ],
        &rows,
    );
    if v["truncated"] == true {
        println!("(more matched: narrow the search or raise --limit)");
    }
}

fn windows(v: &Value) -> String {
    let list: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            format!(
                "{} → {}",
                utc(w["start_ms"].as_u64().unwrap_or(0)),
                utc(w["end_ms"].as_u64().unwrap_or(0))
            )
        })
        .collect();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(", ")
    }
}

fn detail(r: &Value) {
    for k in [
        "id",
        "owner",
        "kind",
        "name",
        "description",
        "capacity",
        "unit",
        "price_per_unit",
    ] {
        println!("{k:<15} {}", cell(&r[k]));
    }
    println!("{:<15} {}", "availability", windows(&r["availability"]));
    println!("{:<15} {}", "visibility", cell(&r["visibility"]));
    println!("{:<15} {}", "payload_hex", cell(&r["payload_hex"]));
}

/// A create, update or delete reply: the version, and what became of each partner's copy.
fn sent(v: &Value) {
    println!(
        "{} {} version {}",
        cell(&v["op"]),
        cell(&v["resource"]["id"]),
        cell(&v["version"])
    );
    let rows: Vec<Vec<String>> = v["sent"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let outcome = if s["entry"].is_string() {
                format!("queued {}", cell(&s["entry"]))
            } else if s["withheld"].is_string() {
                format!("withheld: {}", cell(&s["withheld"]))
            } else {
                format!("not queued: {}", cell(&s["error"]))
            };
            vec![cell(&s["did"]), outcome]
        })
        .collect();
    if !rows.is_empty() {
        table(&["PARTNER", "DELIVERY"], &rows);
    }
}
