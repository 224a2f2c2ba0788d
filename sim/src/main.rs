//! `garden-sim`: runs discovery-plane scenarios (real sidecars on a modelled network, protocol
//! time accelerated) and prints their figures. See docs/PERFORMANCE.md for the scenarios and
//! what each figure means.

use garden_sim::{figures, run, scenario};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Run discovery-plane simulation scenarios and print their figures.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Scenario files (TOML; see sim/scenarios/).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Print the figures as JSON lines instead of tables.
    #[arg(long)]
    json: bool,
    /// Override the scenario's node count (honest nodes).
    #[arg(long)]
    nodes: Option<usize>,
    /// Override the scenario's indexer count.
    #[arg(long)]
    indexers: Option<usize>,
    /// Override the scenario's clock speed (protocol ms per real ms).
    #[arg(long)]
    speed: Option<u32>,
    /// Override the scenario's protocol duration, seconds.
    #[arg(long)]
    duration: Option<u64>,
    /// Check the scenario's `[expect]` outcomes and exit 1 if one fails.
    #[arg(long)]
    check: bool,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Worker threads of the runtime (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    // Every file is read before anything runs: a typo fails at once, not after an hour.
    let mut loaded = Vec::new();
    for path in &args.scenarios {
        match scenario::Scenario::load(path) {
            Ok(s) => loaded.push(s),
            Err(e) => {
                eprintln!("{e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    for mut s in loaded {
        if let Some(n) = args.nodes {
            s.nodes = n;
        }
        if let Some(n) = args.indexers {
            s.indexers = n;
        }
        if let Some(v) = args.speed {
            s.speed = v;
        }
        if let Some(d) = args.duration {
            s.duration_secs = d;
            s.events.retain(|e| e.at_secs <= d);
        }
        let outcome = match rt.block_on(run::run(&s, !args.quiet && !args.json)) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{}: {e:#}", s.name);
                return ExitCode::FAILURE;
            }
        };
        let f = figures::compute(&s, &outcome);
        if args.json {
            println!("{}", serde_json::to_string(&f).unwrap_or_default());
        } else {
            print!("{}", figures::table(&f));
        }
        if args.check {
            let bad = figures::check(&s, &f);
            for b in &bad {
                eprintln!("{}: FAILED: {b}", s.name);
            }
            failed |= !bad.is_empty();
            if bad.is_empty() {
                eprintln!("{}: every expectation holds", s.name);
            }
        }
        // Dropping the world stops every node before the next scenario.
        rt.block_on(async move { drop(outcome) });
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
