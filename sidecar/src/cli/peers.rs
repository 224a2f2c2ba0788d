//! `garden peers`: the peers matching a name, DID or peer id (found like `garden search`),
//! with their connectivity profile and nano/master links. Nanos are listed under their
//! master when both were found; a nano whose master names it not (or the reverse) is flagged,
//! since third parties deal with a nano only through a master that vouches for it.

use std::collections::{BTreeMap, HashMap};

use super::search;
use crate::discovery::record::Verified;
use crate::membership::profile::Profile;

/// Same options as `garden search`.
pub(super) type Args = search::Args;

pub(super) async fn run(args: Args) -> anyhow::Result<()> {
    let (app, mut hits) = search::start(&args).await?;
    // The table groups nanos under masters: wait for every answer first.
    let mut found: BTreeMap<String, Verified> = BTreeMap::new();
    while let Some(v) = hits.recv().await {
        if args.json {
            println!("{}", search::to_json(&v));
        }
        found.insert(v.peer_id.to_string(), v);
    }
    app.shutdown().await;
    if !args.json {
        for line in table(found.values()) {
            println!("{line}");
        }
        eprintln!("{} peer(s)", found.len());
    }
    Ok(())
}

/// The text table: one line per peer, nanos indented under a master found in the same
/// answer, masters and lone peers by name.
fn table<'a>(peers: impl IntoIterator<Item = &'a Verified>) -> Vec<String> {
    let peers: Vec<&Verified> = peers.into_iter().collect();
    let by_id: HashMap<String, &Verified> =
        peers.iter().map(|v| (v.peer_id.to_string(), *v)).collect();
    let mut top: Vec<&Verified> = peers
        .iter()
        .copied()
        .filter(|v| match &v.body.links.master {
            Some(m) => !by_id.contains_key(m),
            None => true,
        })
        .collect();
    top.sort_by(|a, b| (&a.body.name, a.peer_id).cmp(&(&b.body.name, b.peer_id)));
    let mut out = vec![format!(
        "{:<24} {:<52} {:<36} LINKS",
        "NAME", "PEER ID", "PROFILE"
    )];
    for v in top {
        out.push(line(v, "", &by_id));
        let mut nanos: Vec<&Verified> = peers
            .iter()
            .copied()
            .filter(|n| n.body.links.master.as_deref() == Some(&v.peer_id.to_string()))
            .collect();
        nanos.sort_by(|a, b| (&a.body.name, a.peer_id).cmp(&(&b.body.name, b.peer_id)));
        for n in nanos {
            out.push(line(n, "└ ", &by_id));
        }
    }
    out
}

fn line(v: &Verified, indent: &str, by_id: &HashMap<String, &Verified>) -> String {
    let links = &v.body.links;
    let id = v.peer_id.to_string();
    let mut what = Vec::new();
    if let Some(m) = &links.master {
        let name = by_id.get(m).map(|mv| mv.body.name.as_str());
        what.push(match name {
            Some(n) => format!("nano of {n}"),
            None => format!("nano of {m} (not found)"),
        });
        if let Some(mv) = by_id.get(m) {
            if !mv.body.links.nanos.contains(&id) {
                what.push("master does not list it".into());
            }
        }
    }
    if !links.nanos.is_empty() {
        what.push(format!("master of {} nano(s)", links.nanos.len()));
        for n in &links.nanos {
            if let Some(nv) = by_id.get(n) {
                if nv.body.links.master.as_deref() != Some(&id) {
                    what.push(format!("{} names another master", nv.body.name));
                }
            }
        }
    }
    format!(
        "{:<24} {:<52} {:<36} {}",
        format!("{indent}{}", v.body.name),
        id,
        describe(&links.profile.unwrap_or_default()),
        what.join("; ")
    )
}

/// A profile in words: `continuous`, `intermittent (away ≤ 2h)`,
/// `orbital (10m every 1h30m)`.
fn describe(p: &Profile) -> String {
    match *p {
        Profile::Continuous => "continuous".into(),
        Profile::Intermittent { max_absence_ms } => {
            format!("intermittent (away ≤ {})", human(max_absence_ms))
        }
        Profile::Orbital {
            period_ms,
            window_ms,
            ..
        } => format!("orbital ({} every {})", human(window_ms), human(period_ms)),
    }
}

/// Milliseconds as `1h30m`, `45s`, `250ms`.
fn human(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 || out.is_empty() {
        out += &format!("{s}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::record::{self, Draft, Links, RecordKind};
    use crate::keys::NodeIdentity;

    fn peer(id: &NodeIdentity, name: &str, links: Links) -> Verified {
        let d = Draft {
            kind: RecordKind::Peer,
            name: name.into(),
            addrs: vec![],
            location: None,
            indexer: None,
            links,
            ttl_ms: 60_000,
        };
        let bytes = d.sign(id, 1_000);
        record::verify(record::node_key(&id.did()).as_bytes(), &bytes).unwrap()
    }

    #[test]
    fn nanos_sit_under_their_master_and_broken_links_are_flagged() {
        let (m, n1, n2, lone) = (
            NodeIdentity::generate(),
            NodeIdentity::generate(),
            NodeIdentity::generate(),
            NodeIdentity::generate(),
        );
        let orbit = Profile::Orbital {
            period_ms: 5_400_000,
            window_ms: 600_000,
            epoch_ms: 0,
        };
        let peers = vec![
            peer(
                &n1,
                "sat-a",
                Links {
                    profile: Some(orbit),
                    master: Some(m.peer_id().to_string()),
                    nanos: vec![],
                },
            ),
            // Claims the master, which does not list it.
            peer(
                &n2,
                "sat-b",
                Links {
                    profile: Some(orbit),
                    master: Some(m.peer_id().to_string()),
                    nanos: vec![],
                },
            ),
            peer(
                &m,
                "ground",
                Links {
                    profile: None,
                    master: None,
                    nanos: vec![n1.peer_id().to_string()],
                },
            ),
            peer(&lone, "field", Links::default()),
        ];
        let t = table(&peers);
        assert_eq!(t.len(), 5, "{t:#?}");
        assert!(t[1].starts_with("field ") && t[1].contains("continuous"));
        assert!(t[2].starts_with("ground ") && t[2].contains("master of 1 nano(s)"));
        assert!(t[3].starts_with("└ sat-a ") && t[3].contains("orbital (10m every 1h30m)"));
        assert!(t[3].contains("nano of ground") && !t[3].contains("does not list"));
        assert!(t[4].starts_with("└ sat-b ") && t[4].contains("master does not list it"));
    }

    #[test]
    fn durations_read_like_an_operator_writes_them() {
        assert_eq!(human(250), "250ms");
        assert_eq!(human(45_000), "45s");
        assert_eq!(human(5_400_000), "1h30m");
        assert_eq!(human(3_600_000), "1h");
        assert_eq!(
            describe(&Profile::Orbital {
                period_ms: 5_400_000,
                window_ms: 600_000,
                epoch_ms: 0
            }),
            "orbital (10m every 1h30m)"
        );
        assert_eq!(
            describe(&Profile::Intermittent {
                max_absence_ms: 7_200_000
            }),
            "intermittent (away ≤ 2h)"
        );
    }
}
