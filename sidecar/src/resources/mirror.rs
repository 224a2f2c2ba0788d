//! What one party's site makes of a transition the other party made and sent (pure, with the
//! sender's time).
//!
//! Steps of one booking travel to the other party as DTN messages under one outbox key, so
//! a newer step replaces an older one still queued (over a cut link only the latest state
//! travels), and steps may arrive late, twice, or after the receiver moved on. So:
//!
//! 1. **Who.** The sender must be a party, and the party that may make the action
//!    ([`Booking::step`]'s rules): a consumer's "confirm" is refused, whatever the state.
//! 2. **Already applied.** A step whose result the booking already reflects — its state is
//!    that step's state or later on the main line (requested → confirmed → running →
//!    completed → usage confirmed → settled), with the same evidence (report, confirmed
//!    usage), or a cancellation of a cancelled booking — is [`Mirrored::Duplicate`]: the
//!    receiver acknowledges it and changes nothing.
//! 3. **Catching up.** The provider's evidence-free steps that a replaced message implied
//!    (a "start" received in `Requested` implies "confirm") are applied first, then the step.
//!    A completion is never implied: its signed report must travel.
//! 4. Otherwise [`Booking::step`] decides; its refusal goes back to the sender.
//!
//! Capacity is not re-checked here: the provider admitted the booking when it confirmed it
//! (on its own site, atomically); a consumer mirrors that decision.

use super::booking::{Action, Actor, Booking, Role, State, TransitionError};
use crate::time::Timestamp;

/// The receiver's decision (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mirrored {
    /// The booking after the step, and the names of the steps it implied (applied first).
    Applied {
        /// Boxed: a booking with its report and usage is large, a duplicate is nothing.
        booking: Box<Booking>,
        implied: Vec<&'static str>,
    },
    /// Already applied: acknowledged, nothing changes.
    Duplicate,
}

impl Mirrored {
    /// What the store writes: the new booking, or nothing for a duplicate.
    pub fn into_change(self) -> Option<Booking> {
        match self {
            Mirrored::Applied { booking, .. } => Some(*booking),
            Mirrored::Duplicate => None,
        }
    }
}

/// Position on the main line; `None` for `Cancelled`, which is off it.
fn rank(s: State) -> Option<u8> {
    Some(match s {
        State::Requested => 0,
        State::Confirmed => 1,
        State::Running => 2,
        State::Completed => 3,
        State::UsageConfirmed => 4,
        State::Settled => 5,
        State::Cancelled => return None,
    })
}

/// The state `action` leads to (from wherever it is allowed).
fn target(action: &Action) -> State {
    match action {
        Action::Confirm => State::Confirmed,
        Action::Start => State::Running,
        Action::Complete(_) => State::Completed,
        Action::ConfirmUsage(_) => State::UsageConfirmed,
        Action::Settle => State::Settled,
        Action::Decline | Action::Cancel => State::Cancelled,
    }
}

/// Whether `current` already reflects `action` (rule 2).
fn reflects(current: &Booking, action: &Action) -> bool {
    let evidence = match action {
        Action::Complete(r) => current.report.as_ref() == Some(r),
        Action::ConfirmUsage(u) => current.usage.as_ref() == Some(u),
        _ => true,
    };
    match (rank(current.state), rank(target(action))) {
        (None, None) => true,
        (Some(have), Some(want)) => have >= want && evidence,
        _ => false,
    }
}

/// The provider's evidence-free steps from `from` up to where `action` starts (rule 3).
fn implied(from: State, action: &Action) -> Vec<Action> {
    let starts_at = match action {
        Action::Confirm | Action::Decline => State::Requested,
        Action::Start => State::Confirmed,
        Action::Complete(_) => State::Running,
        _ => return Vec::new(),
    };
    let chain = [
        (State::Requested, Action::Confirm),
        (State::Confirmed, Action::Start),
    ];
    let (Some(have), Some(need)) = (rank(from), rank(starts_at)) else {
        return Vec::new();
    };
    chain
        .into_iter()
        .filter(|(s, _)| rank(*s).is_some_and(|r| r >= have && r < need))
        .map(|(_, a)| a)
        .collect()
}

/// `by` made `action` at `at` (the sender's time); what the receiver holding `current` does
/// (see the module docs).
pub fn receive(
    current: &Booking,
    by: &Actor,
    action: &Action,
    at: Timestamp,
) -> Result<Mirrored, TransitionError> {
    let role = current.role_of(by)?;
    let allowed = action.allowed();
    if role != allowed {
        return Err(TransitionError::Forbidden {
            action: action.name(),
            allowed,
            by: role,
        });
    }
    if reflects(current, action) {
        return Ok(Mirrored::Duplicate);
    }
    let mut b = current.clone();
    let mut names = Vec::new();
    if role == Role::Provider {
        for a in implied(current.state, action) {
            b = b.step(by, &a, at)?;
            names.push(a.name());
        }
    }
    Ok(Mirrored::Applied {
        booking: Box::new(b.step(by, action, at)?),
        implied: names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeIdentity;
    use crate::resources::booking::tests::parties;
    use crate::resources::resource::tests::w;
    use crate::resources::usage::ConfirmedUsage;
    use crate::resources::Did;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn applied(m: Result<Mirrored, TransitionError>) -> (Booking, Vec<&'static str>) {
        match m {
            Ok(Mirrored::Applied { booking, implied }) => (*booking, implied),
            other => panic!("not applied: {other:?}"),
        }
    }

    #[test]
    fn a_consumer_follows_the_provider_and_catches_up_on_replaced_steps() {
        let p = parties();
        let requested = p.booking(1, w(2_000, 5_000), 2);
        let prov = p.provider();
        // Only "start" arrived (it replaced the queued "confirm"): both are applied.
        let (running, implied) = applied(receive(&requested, &prov, &Action::Start, t(2_500)));
        assert_eq!(running.state, State::Running);
        assert_eq!(implied, vec!["confirm"]);
        // The late "confirm" is a duplicate, and so is "start" again.
        assert_eq!(
            receive(&running, &prov, &Action::Confirm, t(1)),
            Ok(Mirrored::Duplicate)
        );
        assert_eq!(
            receive(&running, &prov, &Action::Start, t(1)),
            Ok(Mirrored::Duplicate)
        );
        // A completion straight from Requested: confirm and start implied, report checked.
        let report = p.report(&requested, 2, w(2_000, 4_000));
        let complete = Action::Complete(report.clone());
        let (done, implied) = applied(receive(&requested, &prov, &complete, t(4_000)));
        assert_eq!(implied, vec!["confirm", "start"]);
        assert_eq!(done.report, Some(report.clone()));
        assert_eq!(
            receive(&done, &prov, &complete, t(4_000)),
            Ok(Mirrored::Duplicate)
        );
        // Another report for a completed booking is not a duplicate: refused.
        let other = Action::Complete(p.report(&requested, 1, w(2_000, 4_000)));
        assert_eq!(
            receive(&done, &prov, &other, t(4_000)),
            Err(TransitionError::InvalidFrom {
                action: "complete",
                state: State::Completed
            })
        );
        // Start is judged at the sender's time: started before the end, received after it.
        let confirmed = requested.step(&prov, &Action::Confirm, t(1)).unwrap();
        assert!(receive(&confirmed, &prov, &Action::Start, t(4_999)).is_ok());
        assert_eq!(
            receive(&confirmed, &prov, &Action::Start, t(5_000)),
            Err(TransitionError::WindowOver)
        );
    }

    #[test]
    fn the_provider_follows_the_consumer() {
        let p = parties();
        let cons = p.consumer();
        let b = p.booking(1, w(2_000, 5_000), 2);
        let b = b.step(&p.provider(), &Action::Confirm, t(1)).unwrap();
        let b = b.step(&p.provider(), &Action::Start, t(2_000)).unwrap();
        let report = p.report(&b, 2, w(2_000, 4_000));
        let done = b
            .step(&p.provider(), &Action::Complete(report.clone()), t(4_000))
            .unwrap();
        let usage = ConfirmedUsage::confirm(&p.consumer, &report, done.unit_price).unwrap();
        let confirm = Action::ConfirmUsage(usage.clone());
        let (confirmed, implied) = applied(receive(&done, &cons, &confirm, t(4_001)));
        assert!(implied.is_empty());
        assert_eq!(confirmed.state, State::UsageConfirmed);
        assert_eq!(confirmed.usage, Some(usage));
        assert_eq!(
            receive(&confirmed, &cons, &confirm, t(4_002)),
            Ok(Mirrored::Duplicate)
        );
        // A cancellation that crossed the completion on the way: refused, not applied.
        assert_eq!(
            receive(&done, &cons, &Action::Cancel, t(4_001)),
            Err(TransitionError::InvalidFrom {
                action: "cancel",
                state: State::Completed
            })
        );
        // A cancellation of a cancelled (declined) booking is a duplicate: no refusal echo.
        let declined = p
            .booking(2, w(2_000, 5_000), 1)
            .step(&p.provider(), &Action::Decline, t(1))
            .unwrap();
        assert_eq!(
            receive(&declined, &cons, &Action::Cancel, t(2)),
            Ok(Mirrored::Duplicate)
        );
    }

    #[test]
    fn the_wrong_party_or_a_stranger_is_refused_whatever_the_state() {
        let p = parties();
        let b = p.booking(1, w(2_000, 5_000), 2);
        let confirmed = b.step(&p.provider(), &Action::Confirm, t(1)).unwrap();
        // The consumer "confirms": refused even though the booking is confirmed already.
        for current in [&b, &confirmed] {
            assert_eq!(
                receive(current, &p.consumer(), &Action::Confirm, t(1)),
                Err(TransitionError::Forbidden {
                    action: "confirm",
                    allowed: Role::Provider,
                    by: Role::Consumer
                })
            );
        }
        let stranger = Did::of(&NodeIdentity::generate());
        assert_eq!(
            receive(&b, &Actor::Party(stranger.clone()), &Action::Cancel, t(1)),
            Err(TransitionError::NotAParty(stranger))
        );
        // Settlement never comes from a peer: a party claiming it is the wrong role.
        assert!(matches!(
            receive(&b, &p.provider(), &Action::Settle, t(1)),
            Err(TransitionError::Forbidden { .. })
        ));
        // A decline after the consumer cancelled is a duplicate; after a confirmation, refused.
        let cancelled = b.step(&p.consumer(), &Action::Cancel, t(1)).unwrap();
        assert_eq!(
            receive(&cancelled, &p.provider(), &Action::Decline, t(1)),
            Ok(Mirrored::Duplicate)
        );
        assert!(matches!(
            receive(&confirmed, &p.provider(), &Action::Decline, t(1)),
            Err(TransitionError::InvalidFrom { .. })
        ));
        // A start reaching a cancelled booking is refused (the provider learns it).
        assert_eq!(
            receive(&cancelled, &p.provider(), &Action::Start, t(1)),
            Err(TransitionError::InvalidFrom {
                action: "start",
                state: State::Cancelled
            })
        );
    }
}
