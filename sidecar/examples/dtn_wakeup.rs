//! First critical delivery after a reconnection: prints figures, asserts nothing timed.
//!
//!     nice cargo run --release -p garden-sidecar --example dtn_wakeup
//!
//! An indexer and two sites A and B in this process, on loopback TCP with the production
//! transport and the system clock; A and B reach each other only through a contact proxy
//! (`tests/common/contact.rs`; each announces its route, `network.announce`), which follows a
//! periodic plan: down `GARDEN_BENCH_DOWN_MS` (default 2 500), up `GARDEN_BENCH_UP_MS`
//! (default 2 500), `GARDEN_BENCH_CONTACTS` times (default 30); each down window is drawn
//! between 1× and 1.5× its length (seed `GARDEN_BENCH_SEED`), so windows open at every phase
//! of the heartbeats. Both sites keep their indexer link.
//! In every down window A pushes one critical entry for B; the figure is the time from the
//! proxy's window opening to A's `Outcome::Delivered` of that entry (B applied it, recorded it
//! and acknowledged it). Heartbeats every `GARDEN_BENCH_HEARTBEAT_SECS` (default 1; production
//! 20): the path that reconnects the sites is the wake-up (A's heartbeats list B as pending
//! contact; B's heartbeat answer names A; B finds A's record, dials A's route, says hello; A
//! flushes), so a heartbeat interval bounds it.

#[path = "../tests/common/contact.rs"]
mod contact;
#[path = "support/links.rs"]
mod links;

use std::time::{Duration, Instant};

use contact::{Contact, Plan};
use garden_sidecar::config::Role;
use garden_sidecar::dtn::Outcome;
use links::*;

#[tokio::main]
async fn main() {
    init_tracing();
    let contacts = env_usize("GARDEN_BENCH_CONTACTS", 30);
    let up = Duration::from_millis(env_usize("GARDEN_BENCH_UP_MS", 2_500) as u64);
    let down = Duration::from_millis(env_usize("GARDEN_BENCH_DOWN_MS", 2_500) as u64);
    let hb = env_usize("GARDEN_BENCH_HEARTBEAT_SECS", 1) as u64;
    let dir = Scratch::new("dtn-wakeup");
    println!("dtn_wakeup: {contacts} contacts, down {down:?} / up {up:?}, heartbeats every {hb} s");

    let ip = free_port();
    let ix = start(&config(&dir.0, Role::Indexer, ip, None, &[], hb), ip).await;
    let seeds = [ix.addr()];
    // The link: down first; a window opens after every down period, drawn so that windows
    // do not open in step with the heartbeats.
    let seed = env_usize("GARDEN_BENCH_SEED", rand::random::<u32>() as usize) as u64;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut windows = Vec::new();
    let mut t = Duration::ZERO;
    for _ in 0..contacts {
        t += down.mul_f64(rand::Rng::gen_range(&mut rng, 1.0..1.5));
        windows.push((t, t + up));
        t += up;
    }
    println!("seed {seed}");
    let mut link = Contact::start(Plan {
        windows,
        delay: Duration::ZERO,
    });
    let (pa, pb) = (free_port(), free_port());
    let (ra, rb) = (
        link.route(([127, 0, 0, 1], pa).into()).await,
        link.route(([127, 0, 0, 1], pb).into()).await,
    );
    let a = start(&config(&dir.0, Role::Node, pa, Some(ra), &seeds, hb), pa).await;
    let mut b = start(&config(&dir.0, Role::Node, pb, Some(rb), &seeds, hb), pb).await;
    let applied = apply_all(&mut b);
    let plane = a.app.data_plane.clone().expect("A's data plane");
    let mut outcomes = plane.watch(1024).await.expect("watch");

    let mut lat = Vec::new();
    let mut wake = Vec::new();
    let mut late = 0;
    for k in 0..contacts {
        // Into a down window (the plan starts down), a little after it began.
        while link.is_up() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let id = plane
            .push(entry(b.peer(), "wake", k, 512))
            .await
            .expect("pushed");
        // Also when the proxy carries the first connection of the window (a site dialled
        // through it): the split of the figure between the wake-up and what follows.
        let carried_before = link.figures().carried;
        let mut woken_at = None;
        let acked = loop {
            tokio::select! {
                o = outcomes.recv() => match o {
                    Some(Outcome::Delivered { id: got, .. }) if got == id => break Instant::now(),
                    Some(_) => {}
                    None => panic!("A's data plane stopped"),
                },
                _ = tokio::time::sleep(Duration::from_millis(5)) => {
                    if woken_at.is_none() && link.figures().carried > carried_before {
                        woken_at = Some(Instant::now());
                    }
                }
            }
        };
        let opened = link
            .opened()
            .into_iter()
            .rfind(|t| *t <= acked)
            .expect("delivered while the link was up");
        let ms = acked.duration_since(opened).as_secs_f64() * 1e3;
        if ms > up.as_secs_f64() * 1e3 {
            late += 1;
        }
        let woke = woken_at
            .filter(|w| *w >= opened)
            .map(|w| w.duration_since(opened).as_secs_f64() * 1e3);
        println!(
            "contact {k:>3}: first critical delivery {ms:>8.1} ms after the window opened \
             (connected after {})",
            woke.map_or("-".into(), |w| format!("{w:.0} ms"))
        );
        if let Some(w) = woke {
            wake.push(w);
        }
        lat.push(ms);
    }
    assert_eq!(applied.total(), contacts, "every entry applied");
    assert_eq!(applied.twice(), 0, "none applied twice");
    let (sa, sb) = (
        plane.stats().await.unwrap(),
        b.app.data_plane.as_ref().unwrap().stats().await.unwrap(),
    );
    let mut sorted = lat.clone();
    sorted.sort_by(f64::total_cmp);
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| contacts measured | {} |", lat.len());
    println!("| p50 | {:.0} ms |", percentile(&sorted, 50.0));
    println!("| p90 | {:.0} ms |", percentile(&sorted, 90.0));
    println!("| p99 | {:.0} ms |", percentile(&sorted, 99.0));
    println!(
        "| min / max | {:.0} / {:.0} ms |",
        sorted[0],
        sorted[sorted.len() - 1]
    );
    println!(
        "| first contact (cold: records, first lookup) | {:.0} ms |",
        lat[0]
    );
    wake.sort_by(f64::total_cmp);
    println!(
        "| of which: window open → first connection through the link, p50 / p99 ({} sampled) | {:.0} / {:.0} ms |",
        wake.len(),
        percentile(&wake, 50.0),
        percentile(&wake, 99.0)
    );
    println!("| deliveries later than their own window | {late} |");
    println!(
        "| B woken by the indexer / hellos A heard | {} / {} |",
        sb.woken, sa.hellos
    );
    println!("| A's failed batches | {} |", sa.failed_batches);
    println!("| proxy | {:?} |", link.figures());
    a.app.shutdown().await;
    b.app.shutdown().await;
    ix.app.shutdown().await;
}
