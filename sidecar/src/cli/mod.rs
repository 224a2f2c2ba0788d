//! `garden` command line: one file per subcommand. `anyhow` is used here only (the edge).
//! `outbox`, `resources` and `bookings` talk to a running sidecar's operator API
//! (`crate::api`; `client.rs`), and print tables (`human.rs`) or, with `--json`, the API's
//! JSON.

mod bookings;
pub mod client;
mod human;
mod keygen;
mod outbox;
mod peers;
mod resources;
mod run;
mod search;
mod settlement;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, Role};

/// Garden sidecar: discovery plane (libp2p), DTN data plane and settlement signer.
#[derive(Debug, Parser)]
#[command(name = "garden", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sidecar daemon.
    Run(RunArgs),
    /// Create an identity key file and/or a private-network PSK file.
    Keygen(keygen::Args),
    /// Search the network for a peer by name, DID or peer id.
    Search(search::Args),
    /// Peers matching a name, DID or peer id, with connectivity profiles and nano→master links.
    Peers(peers::Args),
    /// What the DTN outbox of the running sidecar holds, per peer and class.
    Outbox(outbox::Args),
    /// The running sidecar's catalogue: list, show, create, update, delete resources.
    Resources(resources::Args),
    /// The running sidecar's bookings: list, show, request, and each transition of a booking.
    Bookings(bookings::Args),
    /// The settlement signer (a separate `garden-signer` process with its own keys):
    /// status, queue, submit, query.
    Settlement(settlement::Args),
}

/// Options shared by commands that read the configuration.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file (every key optional; `GARDEN_<SECTION>_<KEY>` overrides it).
    #[arg(long, short, env = "GARDEN_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    /// Loads the file and the process environment.
    pub fn load(&self) -> anyhow::Result<Config> {
        use anyhow::Context;
        Config::load(self.config.as_deref(), std::env::vars()).with_context(|| match &self.config {
            Some(p) => format!("loading {}", p.display()),
            None => "loading defaults and GARDEN_* environment".into(),
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Roles of this process; overrides `network.role`.
    #[arg(long, value_enum)]
    pub role: Option<Role>,
}

/// Initialises tracing from the log section (`RUST_LOG` wins).
pub fn init_tracing(cfg: &crate::config::LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if cfg.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the parsed command.
pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Keygen(args) => keygen::run(args),
        Command::Search(args) => search::run(args).await,
        Command::Peers(args) => peers::run(args).await,
        Command::Outbox(args) => outbox::run(args).await,
        Command::Resources(args) => resources::run(args).await,
        Command::Bookings(args) => bookings::run(args).await,
        Command::Settlement(args) => settlement::run(args),
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (duplicate ids, groups, defaults) over every subcommand.
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
