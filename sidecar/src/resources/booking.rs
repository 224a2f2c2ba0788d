//! Bookings: a pure state machine, with who may make each transition.
//!
//! ```text
//!   request (consumer)
//!        │
//!   Requested ──confirm (provider)──▶ Confirmed ──start (provider)──▶ Running
//!        │                               │                               │
//!        │ decline (provider)            │                               │ complete + usage report (provider)
//!        │ cancel (consumer)             │ cancel (consumer)             ▼
//!        ▼                               ▼                           Completed
//!   Cancelled ◀──────────── cancel (consumer) from Running           │ confirm usage (consumer)
//!                                                                    ▼
//!                                                              UsageConfirmed
//!                                                                    │ settle (settlement)
//!                                                                    ▼
//!                                                                 Settled
//! ```
//!
//! `Cancelled` and `Settled` are terminal. A booking can be cancelled (by its consumer) from
//! any state before `Completed`; a provider can decline a request it has not confirmed. Only
//! the booking's two parties act on it, plus the local settlement module for `settle`.
//! Capacity (no over-booking) is the planner's ([`super::planner`]); the store checks it
//! when a booking is requested and again, atomically, when it is confirmed.

use serde::{Deserialize, Serialize};

use super::did::Did;
use super::ids::{BookingId, ResourceRef};
use super::resource::Resource;
use super::usage::{ConfirmedUsage, UsageError, UsageReport};
use super::window::Window;
use crate::time::Timestamp;

/// Where a booking is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    Requested,
    Confirmed,
    Running,
    /// The provider reported the usage; the consumer has not confirmed it yet.
    Completed,
    /// Both parties signed the usage; it waits for settlement.
    UsageConfirmed,
    Settled,
    Cancelled,
}

impl State {
    /// No transition leaves it.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Settled | State::Cancelled)
    }

    /// Whether the booking holds capacity of its resource (the planner counts it).
    pub fn holds_capacity(self) -> bool {
        matches!(
            self,
            State::Confirmed
                | State::Running
                | State::Completed
                | State::UsageConfirmed
                | State::Settled
        )
    }
}

/// Who acts, relative to a booking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Consumer,
    Provider,
    /// The local settlement module.
    Settlement,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Consumer => "consumer",
            Role::Provider => "provider",
            Role::Settlement => "settlement module",
        })
    }
}

impl State {
    /// The state's name in JSON and messages (`usage_confirmed`).
    pub fn name(self) -> &'static str {
        match self {
            State::Requested => "requested",
            State::Confirmed => "confirmed",
            State::Running => "running",
            State::Completed => "completed",
            State::UsageConfirmed => "usage_confirmed",
            State::Settled => "settled",
            State::Cancelled => "cancelled",
        }
    }

    /// From [`State::name`].
    pub fn parse(s: &str) -> Option<State> {
        [
            State::Requested,
            State::Confirmed,
            State::Running,
            State::Completed,
            State::UsageConfirmed,
            State::Settled,
            State::Cancelled,
        ]
        .into_iter()
        .find(|st| st.name() == s)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Who attempts a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A party, by DID (the booking's consumer or provider, or a stranger).
    Party(Did),
    /// The local settlement module.
    Settlement,
}

/// A transition attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Confirm,
    Decline,
    Start,
    Complete(UsageReport),
    ConfirmUsage(ConfirmedUsage),
    Settle,
    Cancel,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Confirm => "confirm",
            Action::Decline => "decline",
            Action::Start => "start",
            Action::Complete(_) => "complete",
            Action::ConfirmUsage(_) => "confirm usage",
            Action::Settle => "settle",
            Action::Cancel => "cancel",
        }
    }

    /// Who may make this transition.
    pub fn allowed(&self) -> Role {
        match self {
            Action::Confirm | Action::Decline | Action::Start | Action::Complete(_) => {
                Role::Provider
            }
            Action::ConfirmUsage(_) | Action::Cancel => Role::Consumer,
            Action::Settle => Role::Settlement,
        }
    }

    /// The state it leads to from `from`, if it is allowed there.
    pub fn next(&self, from: State) -> Option<State> {
        use State::*;
        match (self, from) {
            (Action::Confirm, Requested) => Some(Confirmed),
            (Action::Decline, Requested) => Some(Cancelled),
            (Action::Start, Confirmed) => Some(Running),
            (Action::Complete(_), Running) => Some(Completed),
            (Action::ConfirmUsage(_), Completed) => Some(UsageConfirmed),
            (Action::Settle, UsageConfirmed) => Some(Settled),
            (Action::Cancel, Requested | Confirmed | Running) => Some(Cancelled),
            _ => None,
        }
    }
}

/// A booking (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub id: BookingId,
    pub resource: ResourceRef,
    /// The requester (`id.consumer`).
    pub consumer: Did,
    /// The resource's owner.
    pub provider: Did,
    /// The booked slot `[start, end)`.
    pub window: Window,
    /// Units of capacity requested.
    pub units: u64,
    /// Agreed price of one unit, in micro-units.
    pub unit_price: u128,
    pub state: State,
    pub requested_at_ms: u64,
    pub updated_at_ms: u64,
    /// The provider's report, from `Completed` on.
    pub report: Option<UsageReport>,
    /// The usage both signed, from `UsageConfirmed` on.
    pub usage: Option<ConfirmedUsage>,
}

/// Why a booking cannot be requested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("a consumer cannot book its own resource")]
    OwnResource,
    #[error("{units} units requested; the resource has {capacity}")]
    Units { units: u64, capacity: u64 },
    #[error("the window is not inside one availability window of the resource")]
    OutsideAvailability,
    #[error("the window is already over")]
    InThePast,
}

/// Why a usage report or confirmation does not fit the booking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Signature(#[from] UsageError),
    #[error("the report is about another booking, resource or provider")]
    OtherBooking,
    #[error("{used} units used; {booked} were booked")]
    TooManyUnits { used: u64, booked: u64 },
    #[error("the usage lies outside the booked window")]
    OutsideWindow,
    #[error("the confirmation differs from the provider's report")]
    NotTheReport,
    #[error("the price confirmed is not units × the agreed unit price")]
    Price,
}

/// Why a transition is refused (the booking is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("{0} is not a party to this booking")]
    NotAParty(Did),
    #[error("only the {allowed} may {action}, not the {by}")]
    Forbidden {
        action: &'static str,
        allowed: Role,
        by: Role,
    },
    #[error("cannot {action} a booking in state {state}")]
    InvalidFrom { action: &'static str, state: State },
    #[error("the booked window is over")]
    WindowOver,
    #[error("{0}")]
    Report(#[from] ReportError),
}

impl Booking {
    /// A consumer's request for `units` of `resource` over `window` at `unit_price`, made at
    /// `now`. Capacity against other bookings is the planner's check.
    pub fn request(
        id: BookingId,
        resource: &Resource,
        window: Window,
        units: u64,
        unit_price: u128,
        now: Timestamp,
    ) -> Result<Booking, RequestError> {
        if id.consumer == resource.owner {
            return Err(RequestError::OwnResource);
        }
        if units == 0 || units > resource.capacity {
            return Err(RequestError::Units {
                units,
                capacity: resource.capacity,
            });
        }
        if resource.window_covering(&window).is_none() {
            return Err(RequestError::OutsideAvailability);
        }
        if window.end() <= now {
            return Err(RequestError::InThePast);
        }
        Ok(Booking {
            consumer: id.consumer.clone(),
            id,
            resource: resource.reference(),
            provider: resource.owner.clone(),
            window,
            units,
            unit_price,
            state: State::Requested,
            requested_at_ms: now.as_millis(),
            updated_at_ms: now.as_millis(),
            report: None,
            usage: None,
        })
    }

    /// The role of `actor` in this booking.
    pub fn role_of(&self, actor: &Actor) -> Result<Role, TransitionError> {
        match actor {
            Actor::Settlement => Ok(Role::Settlement),
            Actor::Party(d) if *d == self.consumer => Ok(Role::Consumer),
            Actor::Party(d) if *d == self.provider => Ok(Role::Provider),
            Actor::Party(d) => Err(TransitionError::NotAParty(d.clone())),
        }
    }

    /// The booking after `actor` made `action` at `now`, or why not (see the module docs).
    pub fn step(
        &self,
        actor: &Actor,
        action: &Action,
        now: Timestamp,
    ) -> Result<Booking, TransitionError> {
        let by = self.role_of(actor)?;
        let allowed = action.allowed();
        if by != allowed {
            return Err(TransitionError::Forbidden {
                action: action.name(),
                allowed,
                by,
            });
        }
        let next = action
            .next(self.state)
            .ok_or(TransitionError::InvalidFrom {
                action: action.name(),
                state: self.state,
            })?;
        let mut b = self.clone();
        match action {
            Action::Start if now >= self.window.end() => return Err(TransitionError::WindowOver),
            Action::Complete(report) => {
                self.check_report(report)?;
                b.report = Some(report.clone());
            }
            Action::ConfirmUsage(usage) => {
                self.check_usage(usage)?;
                b.usage = Some(usage.clone());
            }
            _ => {}
        }
        b.state = next;
        b.updated_at_ms = now.as_millis().max(self.updated_at_ms);
        Ok(b)
    }

    fn check_report(&self, r: &UsageReport) -> Result<(), ReportError> {
        r.verify()?;
        if r.booking != self.id || r.resource != self.resource || r.provider != self.provider {
            return Err(ReportError::OtherBooking);
        }
        if r.units_used > self.units {
            return Err(ReportError::TooManyUnits {
                used: r.units_used,
                booked: self.units,
            });
        }
        if !self.window.covers(&r.window) {
            return Err(ReportError::OutsideWindow);
        }
        Ok(())
    }

    fn check_usage(&self, u: &ConfirmedUsage) -> Result<(), ReportError> {
        u.verify()?;
        if self.report.as_ref() != Some(&u.report()) {
            return Err(ReportError::NotTheReport);
        }
        if u.consumer != self.consumer {
            return Err(ReportError::OtherBooking);
        }
        if Some(u.price) != self.unit_price.checked_mul(u128::from(u.units)) {
            return Err(ReportError::Price);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::NodeIdentity;
    use crate::resources::resource::tests::{sample, w};

    pub(crate) struct Parties {
        pub(crate) provider: NodeIdentity,
        pub(crate) consumer: NodeIdentity,
        pub(crate) resource: Resource,
    }

    pub(crate) fn parties() -> Parties {
        let provider = NodeIdentity::generate();
        let resource = sample(&Did::of(&provider), "gpu");
        Parties {
            provider,
            consumer: NodeIdentity::generate(),
            resource,
        }
    }

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    impl Parties {
        pub(crate) fn booking(&self, nonce: u64, window: Window, units: u64) -> Booking {
            let id = BookingId {
                consumer: Did::of(&self.consumer),
                nonce,
            };
            Booking::request(id, &self.resource, window, units, 10, t(0)).unwrap()
        }
        pub(crate) fn consumer(&self) -> Actor {
            Actor::Party(Did::of(&self.consumer))
        }
        pub(crate) fn provider(&self) -> Actor {
            Actor::Party(Did::of(&self.provider))
        }
        pub(crate) fn report(&self, b: &Booking, units: u64, window: Window) -> UsageReport {
            UsageReport::sign(
                &self.provider,
                b.id.clone(),
                b.resource.clone(),
                units,
                window,
            )
        }
    }

    #[test]
    fn the_full_lifecycle_by_the_right_parties() {
        let p = parties();
        let b = p.booking(1, w(2_000, 5_000), 2);
        assert_eq!(b.state, State::Requested);
        let b = b.step(&p.provider(), &Action::Confirm, t(1)).unwrap();
        let b = b.step(&p.provider(), &Action::Start, t(2_000)).unwrap();
        let report = p.report(&b, 2, w(2_000, 4_000));
        let b = b
            .step(&p.provider(), &Action::Complete(report.clone()), t(4_000))
            .unwrap();
        assert_eq!(b.state, State::Completed);
        let usage = ConfirmedUsage::confirm(&p.consumer, &report, b.unit_price).unwrap();
        let b = b
            .step(
                &p.consumer(),
                &Action::ConfirmUsage(usage.clone()),
                t(4_001),
            )
            .unwrap();
        assert_eq!(b.usage, Some(usage));
        let b = b
            .step(&Actor::Settlement, &Action::Settle, t(5_000))
            .unwrap();
        assert_eq!(b.state, State::Settled);
        assert_eq!(b.updated_at_ms, 5_000);
        assert!(matches!(
            b.step(&p.consumer(), &Action::Cancel, t(6_000)),
            Err(TransitionError::InvalidFrom { .. })
        ));
    }

    #[test]
    fn each_transition_names_who_may_make_it() {
        let p = parties();
        let b = p.booking(1, w(2_000, 5_000), 2);
        assert_eq!(
            b.step(&p.consumer(), &Action::Confirm, t(1)),
            Err(TransitionError::Forbidden {
                action: "confirm",
                allowed: Role::Provider,
                by: Role::Consumer
            })
        );
        assert!(matches!(
            b.step(&p.provider(), &Action::Cancel, t(1)),
            Err(TransitionError::Forbidden {
                allowed: Role::Consumer,
                ..
            })
        ));
        assert!(matches!(
            b.step(&Actor::Settlement, &Action::Confirm, t(1)),
            Err(TransitionError::Forbidden { .. })
        ));
        let stranger = Did::of(&NodeIdentity::generate());
        assert_eq!(
            b.step(&Actor::Party(stranger.clone()), &Action::Cancel, t(1)),
            Err(TransitionError::NotAParty(stranger))
        );
        // The provider declines a request; the consumer cancels up to Running, not after.
        assert_eq!(
            b.step(&p.provider(), &Action::Decline, t(1)).unwrap().state,
            State::Cancelled
        );
        let c = b.step(&p.provider(), &Action::Confirm, t(1)).unwrap();
        assert!(matches!(
            c.step(&p.provider(), &Action::Decline, t(1)),
            Err(TransitionError::InvalidFrom { .. })
        ));
        assert_eq!(
            c.step(&p.consumer(), &Action::Cancel, t(1)).unwrap().state,
            State::Cancelled
        );
        let r = c.step(&p.provider(), &Action::Start, t(2_000)).unwrap();
        assert_eq!(
            r.step(&p.consumer(), &Action::Cancel, t(1)).unwrap().state,
            State::Cancelled
        );
        let done = r
            .step(
                &p.provider(),
                &Action::Complete(p.report(&r, 1, w(2_000, 3_000))),
                t(3_000),
            )
            .unwrap();
        assert_eq!(
            done.step(&p.consumer(), &Action::Cancel, t(3_001)),
            Err(TransitionError::InvalidFrom {
                action: "cancel",
                state: State::Completed
            })
        );
        // Settling before both signed the usage is refused.
        assert!(matches!(
            done.step(&Actor::Settlement, &Action::Settle, t(3_002)),
            Err(TransitionError::InvalidFrom { .. })
        ));
        // Starting after the window is over.
        assert_eq!(
            c.step(&p.provider(), &Action::Start, t(5_000)),
            Err(TransitionError::WindowOver)
        );
    }

    #[test]
    fn requests_outside_availability_or_capacity_are_refused() {
        let p = parties();
        let id = |nonce| BookingId {
            consumer: Did::of(&p.consumer),
            nonce,
        };
        let r = &p.resource;
        assert_eq!(
            Booking::request(id(1), r, w(9_000, 11_000), 1, 1, t(0)),
            Err(RequestError::OutsideAvailability)
        );
        assert_eq!(
            Booking::request(id(1), r, w(10_000, 20_000), 1, 1, t(0)),
            Err(RequestError::OutsideAvailability)
        );
        assert_eq!(
            Booking::request(id(1), r, w(2_000, 3_000), 9, 1, t(0)),
            Err(RequestError::Units {
                units: 9,
                capacity: 8
            })
        );
        assert!(matches!(
            Booking::request(id(1), r, w(2_000, 3_000), 0, 1, t(0)),
            Err(RequestError::Units { .. })
        ));
        assert_eq!(
            Booking::request(id(1), r, w(2_000, 3_000), 1, 1, t(3_000)),
            Err(RequestError::InThePast)
        );
        let own = BookingId {
            consumer: r.owner.clone(),
            nonce: 1,
        };
        assert_eq!(
            Booking::request(own, r, w(2_000, 3_000), 1, 1, t(0)),
            Err(RequestError::OwnResource)
        );
    }

    #[test]
    fn reports_and_confirmations_must_fit_the_booking() {
        let p = parties();
        let b = p.booking(1, w(2_000, 5_000), 2);
        let b = b.step(&p.provider(), &Action::Confirm, t(1)).unwrap();
        let b = b.step(&p.provider(), &Action::Start, t(2_000)).unwrap();
        let complete = |r: UsageReport| b.step(&p.provider(), &Action::Complete(r), t(5_000));
        assert_eq!(
            complete(p.report(&b, 3, w(2_000, 3_000))),
            Err(ReportError::TooManyUnits { used: 3, booked: 2 }.into())
        );
        assert_eq!(
            complete(p.report(&b, 1, w(1_000, 3_000))),
            Err(ReportError::OutsideWindow.into())
        );
        let mut other = p.report(&b, 1, w(2_000, 3_000));
        other.booking.nonce = 2;
        assert!(matches!(
            complete(other),
            Err(TransitionError::Report(ReportError::Signature(_)))
        ));
        let foreign = UsageReport::sign(
            &NodeIdentity::generate(),
            b.id.clone(),
            b.resource.clone(),
            1,
            w(2_000, 3_000),
        );
        assert_eq!(complete(foreign), Err(ReportError::OtherBooking.into()));
        let report = p.report(&b, 2, w(2_000, 4_000));
        let done = complete(report.clone()).unwrap();
        let confirm =
            |u: ConfirmedUsage| done.step(&p.consumer(), &Action::ConfirmUsage(u), t(5_001));
        // A confirmation at another price, or of another report.
        let cheap = ConfirmedUsage::confirm(&p.consumer, &report, 1).unwrap();
        assert_eq!(confirm(cheap), Err(ReportError::Price.into()));
        let other_report = p.report(&b, 1, w(2_000, 4_000));
        let other = ConfirmedUsage::confirm(&p.consumer, &other_report, 10).unwrap();
        assert_eq!(confirm(other), Err(ReportError::NotTheReport.into()));
        assert!(confirm(ConfirmedUsage::confirm(&p.consumer, &report, 10).unwrap()).is_ok());
    }
}
