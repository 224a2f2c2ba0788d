//! Nano/master delegation: reconciling a nano and its master after a split brain.
//!
//! A *nano* is an intermittent site that names a continuously connected *master* in its
//! signed record (`discovery::record::Links`); the master is the authority third parties deal
//! with, and it answers for the nano while the nano is away.
//!
//! # The model
//!
//! The resources in question are the nano's own: the catalogue entries and bookings it hosts.
//! Each side keeps a [`Journal`] of the changes it made to them since the last point both
//! sides agreed on, the [`Base`]:
//!
//! * while cut off, the nano keeps accepting local changes to its own resources and journals
//!   them;
//! * meanwhile the master may accept changes on the nano's behalf (bookings taken in proxy, an
//!   entry withdrawn) and journals them too.
//!
//! Every change carries a version: a counter per resource *and per author*, so each side
//! numbers its own changes 1, 2, 3… after the base's version for that resource, without
//! coordination. A [`Base`] records, per resource, the value both sides hold and the pair of
//! versions ([`Versions`]) it reflects, plus the sync epoch (incremented at every
//! reconciliation).
//!
//! On reconnection both sides exchange their journals since the base and call
//! [`reconcile`] (pure and deterministic, so both may run it and check each other): for each
//! resource, changes made on one side only are kept; for a resource changed on both sides the
//! master's value wins and the nano's changes are returned as [`Rejected`] for its operator —
//! never dropped silently. The [`Outcome`] holds the merged state, the next base, and the steps
//! each side applies to reach the merged state; then each side settles its journal on the next
//! base ([`Journal::settle`]).
//!
//! Which journal came from which side is said by the caller (the argument position of
//! [`reconcile`]), never by the `author` field of a change: a nano cannot gain the master's
//! precedence by writing "master" into its changes.
//!
//! Reconciliation per resource id cannot see two bookings of the same slot under different
//! ids: [`reconcile_bookings`] takes the bookings both sides held before the cut and those each
//! took since, keeps the master's on any overlap, cancels the nano-only ones with exactly one
//! [`Notification`] each to their requesters, and returns each side's steps. A [`Notified`] log
//! keeps a retried reconciliation from telling anyone twice.
//!
//! Clocks take no part in any decision: a nano that was cut off may have a drifting clock, so
//! order is by version and the times of changes are for the operator's report only.
//!
//! | file | what |
//! |---|---|
//! | `base.rs` | [`Side`], [`Value`], [`State`], [`Versions`], the [`Base`] |
//! | `journal.rs` | [`Change`], the bounded [`Journal`] with typed errors |
//! | `reconcile.rs` | [`reconcile`]: the rules, the [`Outcome`], the convergence [`Step`]s |
//! | `gate.rs` | [`Standing`]: a nano takes resource changes from its master only; a master sends a nano only the nano's own resources |
//! | `sync.rs` | [`sync`]: the rounds in which the nano and its master exchange their booking lists over the outbox and apply [`reconcile_bookings`] (the master leads; the same outcome on both sides) |
//! | `bookings.rs` | [`reconcile_bookings`]: bookings of the same slot under different ids (the master's stand, the nano-only ones are cancelled and their requesters notified), the [`Notified`] log |

mod base;
#[cfg(test)]
mod booking_proptests;
mod bookings;
mod gate;
mod journal;
#[cfg(test)]
mod proptests;
mod reconcile;
pub mod sync;

pub use base::{Base, ResourceId, Side, State, Value, Versions};
pub use bookings::{
    held, pending_notifications, reconcile_bookings, reconcile_bookings_within, Booking, BookingId,
    BookingOutcome, BookingStep, BookingsError, Bounds, CancelReason, Cancellation, Defect,
    Exchange, Held, List, Notification, Notified, Slot, MAX_BASE_BOOKINGS, MAX_BOOKING_ID,
    MAX_NEW_BOOKINGS, MAX_REQUESTER,
};
pub use gate::{Refused as GateRefused, Standing};
pub use journal::{
    Change, Journal, JournalError, Kind, Limits, MAX_BODY, MAX_BYTES, MAX_ENTRIES, MAX_ID,
};
pub use reconcile::{reconcile, Action, Mismatch, Outcome, Reason, Rejected, Step};
