//! `garden`: thin binary over the `garden_sidecar` library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = garden_sidecar::cli::Cli::parse();
    garden_sidecar::cli::dispatch(cli).await
}
