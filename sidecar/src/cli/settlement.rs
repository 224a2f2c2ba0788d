//! `garden settlement …`: the settlement signer's commands, run as a separate `garden-signer`
//! process. The sidecar never links the signer's crate nor loads its keys (the settlement
//! plane is isolated: `signer/tests/isolation.rs`); this subcommand only finds the binary and
//! hands it the arguments, so operators have one entry point.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

/// Commands of the settlement signer (all flags after the command go to `garden-signer`;
/// `garden settlement status --help` shows them).
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// `status`, `queue`, `submit`, `take`, `query`, `sign`, `keygen`, `pubkey`, then their flags
    /// (settings also come from `GARDEN_SIGNER_*`, see docs/OPERATIONS.md).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub args: Vec<String>,
}

/// What the signer offers under `garden settlement` (others are refused here, so a typo is
/// not sent on).
const COMMANDS: &[&str] = &[
    "status", "queue", "submit", "take", "query", "sign", "keygen", "pubkey", "help", "--help",
    "-h",
];

/// `GARDEN_SIGNER_BIN`, else `garden-signer` beside this executable, else on `PATH`.
fn signer_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GARDEN_SIGNER_BIN") {
        return p.into();
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
    {
        let p = dir.join("garden-signer");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("garden-signer")
}

pub(super) fn run(args: Args) -> anyhow::Result<()> {
    let first = args.args.first().map(String::as_str).unwrap_or("");
    if !COMMANDS.contains(&first) {
        bail!(
            "unknown settlement command '{first}': expected one of {}",
            COMMANDS.join(", ")
        );
    }
    let bin = signer_bin();
    let status = Command::new(&bin)
        .args(&args.args)
        .status()
        .with_context(|| {
            format!(
                "running {} (build it with `cargo build -p garden-signer`, or set GARDEN_SIGNER_BIN)",
                bin.display()
            )
        })?;
    if !status.success() {
        bail!("garden-signer {first} failed ({status})");
    }
    Ok(())
}
