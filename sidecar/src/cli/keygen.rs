//! `garden keygen`.

use std::path::PathBuf;

use anyhow::Context;

use crate::keys::{psk, NodeIdentity};

/// Create key files (never overwrites an existing file).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the Ed25519 libp2p identity.
    #[arg(long, default_value = "garden-identity.key")]
    pub identity: PathBuf,
    /// Also write a new private-network PSK to this file (share it with every member).
    #[arg(long)]
    pub psk: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(args: Args) -> anyhow::Result<()> {
    let id = NodeIdentity::generate();
    id.write(&args.identity)
        .with_context(|| format!("writing {}", args.identity.display()))?;
    if let Some(p) = &args.psk {
        psk::write_new_psk(p).with_context(|| format!("writing {}", p.display()))?;
    }
    if args.json {
        let v = serde_json::json!({
            "peer_id": id.peer_id().to_string(),
            "did": id.did(),
            "identity_file": args.identity,
            "psk_file": args.psk,
        });
        println!("{v}");
    } else {
        println!("peer id:  {}", id.peer_id());
        println!("did:      {}", id.did());
        println!("identity: {}", args.identity.display());
        if let Some(p) = &args.psk {
            println!("psk:      {}", p.display());
        }
    }
    Ok(())
}
