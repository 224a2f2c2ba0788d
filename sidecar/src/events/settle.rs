//! Hands the usage this site confirmed as a consumer to settlement: the rows of
//! `usage.pending` ([`Handoff`], written in the same transaction as the confirmation) go,
//! oldest key first, through the typed [`UsageSender`] (which refuses usage whose
//! signatures do not verify), each row removed once the channel took it.
//!
//! The channel is bounded: when settlement does not keep up this task waits, rows stay in
//! redb, and nothing is dropped. When settlement is gone (its receiver dropped) the task
//! stops and the rows wait for the next start. Settlement holds its own key; this task
//! only moves signed data (the data plane never loads a settlement key).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::resources::handoff::Handoff;
use crate::resources::usage::{SendError, UsageSender};

/// What [`run`] drains: the `usage.pending` rows and the wake-up the service rings when it
/// adds one. Held unused until an in-process settlement module asks (`App::take_usage`):
/// a receiver nobody reads must not take rows out of redb.
pub struct Pending {
    pub handoff: Handoff,
    pub notify: Arc<Notify>,
}

/// Rows read per pass.
const BATCH: usize = 64;
/// Pause after a storage error before looking again.
const RETRY: Duration = Duration::from_secs(1);

/// Runs until settlement's receiver is dropped; `notify` says new rows wait (rows found at
/// start are handed over at once).
pub async fn run(handoff: Handoff, to: UsageSender, notify: Arc<Notify>) {
    loop {
        let rows = match handoff.pending(BATCH, None) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "confirmed usage not read");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if rows.is_empty() {
            notify.notified().await;
            continue;
        }
        for usage in rows {
            let booking = usage.booking.clone();
            match to.send(usage).await {
                Ok(()) => {}
                Err(SendError::Closed) => {
                    tracing::warn!("settlement is gone: confirmed usage waits for the next start");
                    return;
                }
                Err(e) => {
                    // Written only after Booking::step verified both signatures: a row that
                    // does not verify is corrupt; it is reported, not handed over.
                    tracing::error!(%booking, error = %e, "confirmed usage refused by the channel; removed");
                }
            }
            if let Err(e) = handoff.done(&booking) {
                tracing::error!(%booking, error = %e, "handed-over usage not removed (handed over again after a restart)");
            }
        }
    }
}
