//! Taking the usage a sidecar confirmed as a consumer into the signer's queue, across
//! processes: the sidecar keeps each confirmed usage in redb (`usage.pending`) and lists it
//! on its local API; the signer turns each row into an attestation, signs it with its own
//! key in one durable transaction that also records the booking ([`Signer::sign_keyed`]),
//! and only then tells the sidecar to drop the row. Killed anywhere in between, the next
//! pass finds the row again and recognises its booking: nothing is lost, nothing is signed
//! under two nonces.
//!
//! # From a site's DIDs to consortium members
//! A sidecar knows sites by DID (their node identity); an attestation names the provider and
//! consumer by their member chain address. The binding is the operator's: the partners file
//! (TOML) maps each DID this site trades with, and its own, to the member address:
//!
//! ```toml
//! [sites]
//! "did:key:z6Mk…provider" = "wasm1…"
//! "did:key:z6Mk…this-site" = "wasm1…"   # the member whose key this signer holds
//! ```
//!
//! It is not published in the DHT: whoever pays decides whom a DID pays, and the contract
//! still checks every figure (membership and trust at `signed_at`, the provider's offer for
//! `price_ref`, `max_unit_price`, escrow). A usage whose DID is not in the file stays in the
//! sidecar, reported, until the operator adds it.
//!
//! # Terms
//! `price_ref` is the resource's kind (`compute`, `storage`, `data`, `workflow`: the offer's
//! kind on the settlement contract), `unit` the resource's unit, `quantity` the units used,
//! `max_unit_price` the unit price both sites agreed (micro-units = the settlement denom's
//! base units), and the period the usage window in whole seconds.

pub mod desk;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::input::UsageInput;
use crate::queue::{copy_bytes, decode_copy, Keyed, Signer};
pub use desk::Desk;

/// DIDs → member chain addresses (see the module docs).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partners {
    #[serde(default)]
    pub sites: BTreeMap<String, String>,
}

impl Partners {
    pub fn load(path: &Path) -> Result<Partners> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the partners file {}", path.display()))?;
        let p: Partners = toml::from_str(&text)
            .with_context(|| format!("parsing the partners file {}", path.display()))?;
        for (did, addr) in &p.sites {
            if !did.starts_with("did:") || addr.is_empty() || addr.len() > garden_wire::MAX_STR_LEN
            {
                anyhow::bail!(
                    "partners file {}: `{did}` = `{addr}` is not a DID mapped to a chain address",
                    path.display()
                );
            }
        }
        Ok(p)
    }

    fn address(&self, did: &str, role: &str) -> Result<String, String> {
        self.sites.get(did).cloned().ok_or_else(|| {
            format!(
                "{role} {did} is not in the partners file: add its member address under [sites]"
            )
        })
    }
}

/// What a listed row becomes.
#[derive(Debug, PartialEq, Eq)]
enum Row {
    /// An attestation to sign, keyed by its booking.
    Attest(String, UsageInput),
    /// Nothing was used: nothing to pay, the row can go.
    Nothing(String),
}

fn text<'a>(row: &'a Value, field: &str) -> Result<&'a str, String> {
    row.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{field}: missing or not a string"))
}

fn number(row: &Value, path: &[&str]) -> Result<u64, String> {
    let mut v = row;
    for p in path {
        v = &v[*p];
    }
    v.as_u64()
        .ok_or_else(|| format!("{}: missing or not an integer", path.join(".")))
}

/// Maps one row of `GET /v1/usage` to its attestation input.
fn row_input(row: &Value, partners: &Partners) -> Result<Row, String> {
    let id = text(row, "id")?.to_string();
    let units = number(row, &["units"])?;
    if units == 0 {
        return Ok(Row::Nothing(id));
    }
    let kind = row["kind"].as_str().ok_or(
        "the resource is no longer in the sidecar's catalogue (deleted): its kind and unit are unknown; sign it by hand (garden-signer sign) and remove it (DELETE /v1/usage/…)",
    )?;
    let unit = text(row, "unit")?;
    let unit_price: u128 = text(row, "unit_price")?
        .parse()
        .map_err(|_| "unit_price: not an integer".to_string())?;
    let start_ms = number(row, &["window", "start_ms"])?;
    let end_ms = number(row, &["window", "end_ms"])?;
    let resource_id = row["resource"]["id"]
        .as_str()
        .ok_or("resource.id: missing")?;
    Ok(Row::Attest(
        id,
        UsageInput {
            provider: partners.address(text(row, "provider")?, "provider")?,
            consumer: partners.address(text(row, "consumer")?, "consumer")?,
            resource_id: resource_id.to_string(),
            quantity: units,
            unit: unit.to_string(),
            price_ref: kind.to_string(),
            max_unit_price: unit_price,
            period_start: start_ms / 1000,
            // Rounded up: the period covers the whole usage window.
            period_end: end_ms.div_ceil(1000),
        },
    ))
}

/// What one [`take`] did.
#[derive(Debug, Default, serde::Serialize)]
pub struct TakeReport {
    /// Rows the sidecar listed.
    pub listed: usize,
    /// Listing requests made (pages of up to [`TAKE_LIMIT`] rows).
    pub pages: usize,
    /// Bookings signed now, with their nonce.
    pub signed: Vec<(String, u64)>,
    /// Bookings signed by an earlier pass (the sidecar had not been told).
    pub already: Vec<(String, u64)>,
    /// Bookings with nothing to pay (zero units), dropped from the sidecar.
    pub nothing: Vec<String>,
    /// Bookings left in the sidecar, and why.
    pub left: Vec<(String, String)>,
    /// Bookings signed whose row the sidecar could not be told to drop (taken again,
    /// recognised, on the next pass).
    pub untold: Vec<(String, String)>,
    /// As provider: consumers' attestations received through the sidecar and now held
    /// (booking, nonce), to submit if the consumer's signer does not.
    pub copies_held: Vec<(String, u64)>,
    /// As provider: copies discarded, and why (forged, another signing domain, not ours).
    pub copies_discarded: Vec<(String, String)>,
}

/// Most rows asked for per request.
pub const TAKE_LIMIT: usize = 1_000;

/// Takes what `desk` lists into `signer`'s queue at `now` (unix seconds), page by page: one
/// request for up to [`TAKE_LIMIT`] rows, one signing transaction, then one `DELETE` per row
/// taken; the next page starts after the last row listed, so rows left in the sidecar (an
/// unknown DID, say) never hide the newer ones. Then the provider's copies.
pub async fn take(
    signer: &Signer,
    desk: &Desk,
    partners: &Partners,
    now: u64,
) -> Result<TakeReport> {
    let mut rep = TakeReport::default();
    let mut after: Option<String> = None;
    loop {
        let rows = desk.waiting(TAKE_LIMIT, after.as_deref()).await?;
        rep.listed += rows.len();
        rep.pages += 1;
        take_page(signer, desk, partners, now, &rows, &mut rep).await?;
        // A short page is the last one; so is one whose last row has no id (the cursor
        // could not move on: the next pass starts over).
        match rows.last().and_then(|r| r["id"].as_str()) {
            Some(id) if rows.len() == TAKE_LIMIT => after = Some(id.to_string()),
            _ => break,
        }
    }
    take_copies(signer, desk, partners, now, &mut rep).await?;
    Ok(rep)
}

/// One page of usage rows: signed in one transaction, then each row told.
async fn take_page(
    signer: &Signer,
    desk: &Desk,
    partners: &Partners,
    now: u64,
    rows: &[Value],
    rep: &mut TakeReport,
) -> Result<()> {
    let mut inputs = Vec::new();
    let mut drop_rows = Vec::new();
    for row in rows {
        let id = row["id"].as_str().unwrap_or("(no id)").to_string();
        match row_input(row, partners) {
            Ok(Row::Attest(id, input)) => inputs.push((id, input)),
            Ok(Row::Nothing(id)) => {
                rep.nothing.push(id.clone());
                drop_rows.push(id);
            }
            Err(reason) => rep.left.push((id, reason)),
        }
    }
    let mut attested = Vec::new();
    for (id, answer) in signer.sign_keyed(inputs, now)? {
        match answer {
            Keyed::Signed(item) => {
                rep.signed.push((id.clone(), item.nonce));
                attested.push((id, item.attestation));
            }
            Keyed::Already { nonce } => {
                rep.already.push((id.clone(), nonce));
                match signer.item(nonce)? {
                    Some(item) => attested.push((id, item.attestation)),
                    None => drop_rows.push(id),
                }
            }
            Keyed::Invalid(reason) => rep.left.push((id, reason)),
        }
    }
    // Each signed usage leaves the sidecar with its attestation, which the sidecar copies
    // to the provider first (a failure leaves the row: taken again, recognised, copied).
    for (id, att) in attested {
        let told = match copy_bytes(&att) {
            Ok(bytes) => desk.taken_with_copy(&id, &bytes).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = told {
            rep.untold.push((id, format!("{e:#}")));
        }
    }
    drop_rows.dedup();
    for id in drop_rows {
        if let Err(e) = desk.taken(&id).await {
            rep.untold.push((id, format!("{e:#}")));
        }
    }
    Ok(())
}

/// As provider: holds the copies our consumers' sites sent (checked: one attestation, a
/// valid signature under our signing domain, a provider the partners file names), then
/// tells the sidecar; a copy that fails a check is discarded with the reason.
async fn take_copies(
    signer: &Signer,
    desk: &Desk,
    partners: &Partners,
    now: u64,
    rep: &mut TakeReport,
) -> Result<()> {
    for (id, bytes) in desk.copies(TAKE_LIMIT).await? {
        let discarded = match decode_copy(&bytes) {
            Err(refusal) => Some(refusal.to_string()),
            Ok(a) if !partners.sites.values().any(|addr| *addr == a.provider) => Some(format!(
                "provider {} is not in the partners file",
                a.provider
            )),
            Ok(a) => match signer.hold_copy(&a, now)? {
                Ok(_) => {
                    rep.copies_held.push((id.clone(), a.nonce));
                    None
                }
                Err(refusal) => Some(refusal.to_string()),
            },
        };
        if let Some(reason) = discarded {
            rep.copies_discarded.push((id.clone(), reason));
        }
        if let Err(e) = desk.copy_taken(&id).await {
            rep.untold.push((id, format!("{e:#}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn partners() -> Partners {
        Partners {
            sites: [
                ("did:key:zP".to_string(), "wasm1provider".to_string()),
                ("did:key:zC".to_string(), "wasm1consumer".to_string()),
            ]
            .into(),
        }
    }

    fn row() -> Value {
        json!({
            "id": "did:key:zC#7", "provider": "did:key:zP", "consumer": "did:key:zC",
            "resource": {"owner": "did:key:zP", "id": "gpu-1"}, "units": 2,
            "price": "3000000", "unit_price": "1500000", "kind": "compute", "unit": "gpu",
            "window": {"start_ms": 1_700_000_000_500u64, "end_ms": 1_700_000_060_001u64},
        })
    }

    #[test]
    fn a_listed_usage_maps_to_the_members_and_the_offer_terms() {
        let Ok(Row::Attest(id, i)) = row_input(&row(), &partners()) else {
            panic!("mapped")
        };
        assert_eq!(id, "did:key:zC#7");
        assert_eq!(
            (i.provider.as_str(), i.consumer.as_str()),
            ("wasm1provider", "wasm1consumer")
        );
        assert_eq!((i.price_ref.as_str(), i.unit.as_str()), ("compute", "gpu"));
        assert_eq!((i.quantity, i.max_unit_price), (2, 1_500_000));
        assert_eq!(
            (i.period_start, i.period_end),
            (1_700_000_000, 1_700_000_061)
        );
    }

    #[test]
    fn what_cannot_be_mapped_is_left_with_the_reason() {
        let mut r = row();
        r["provider"] = json!("did:key:zStranger");
        let e = row_input(&r, &partners()).unwrap_err();
        assert!(
            e.contains("provider did:key:zStranger is not in the partners file"),
            "{e}"
        );
        let mut r = row();
        r["kind"] = Value::Null;
        let e = row_input(&r, &partners()).unwrap_err();
        assert!(e.contains("no longer in the sidecar's catalogue"), "{e}");
        let mut r = row();
        r["unit_price"] = json!("1.5");
        assert!(row_input(&r, &partners())
            .unwrap_err()
            .starts_with("unit_price"));
        let mut r = row();
        r["window"]["end_ms"] = json!(-1);
        assert!(row_input(&r, &partners())
            .unwrap_err()
            .starts_with("window.end_ms"));
        let mut r = row();
        r["units"] = json!(0);
        assert_eq!(
            row_input(&r, &partners()),
            Ok(Row::Nothing("did:key:zC#7".into()))
        );
    }

    #[test]
    fn a_partners_file_with_a_non_did_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("partners.toml");
        std::fs::write(&p, "[sites]\n\"wasm1x\" = \"wasm1y\"\n").unwrap();
        let e = format!("{:#}", Partners::load(&p).unwrap_err());
        assert!(e.contains("is not a DID"), "{e}");
        std::fs::write(&p, "[sites]\n\"did:key:zP\" = \"wasm1y\"\n").unwrap();
        assert_eq!(Partners::load(&p).unwrap().sites.len(), 1);
    }
}
