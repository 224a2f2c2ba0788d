//! `garden run`.

use anyhow::Context;

use super::{init_tracing, RunArgs};

pub(super) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut cfg = args.config.load()?;
    if let Some(role) = args.role {
        cfg.network.role = role;
    }
    init_tracing(&cfg.log);
    let shutdown = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c; running until killed");
            std::future::pending::<()>().await;
        }
    };
    crate::app::run(cfg, shutdown)
        .await
        .context("running the sidecar")
}
