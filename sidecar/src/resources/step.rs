//! What the two parties of a booking send each other after the request: the transition one
//! of them made ([`StepMessage`]) and, when the other refuses one, why ([`StepRefusal`]).
//!
//! Both are CBOR, decoded only from at most [`MAX_STEP_BYTES`] and checked after decoding
//! (string bounds; every DID and id is checked by its own type's deserialisation). A step
//! carries its evidence: a completion its provider-signed [`UsageReport`], a usage
//! confirmation its [`ConfirmedUsage`] with both signatures; the receiver verifies them
//! against the booking it holds (`Booking::step`), never trusting the sender's state.
//! `Settle` is local to a site and has no step.

use serde::{Deserialize, Serialize};

use super::booking::{Action, State};
use super::ids::BookingId;
use super::usage::{ConfirmedUsage, UsageReport};

/// Largest encoded step or refusal accepted from a peer (a confirmed usage is ~600 bytes).
pub const MAX_STEP_BYTES: usize = 8 * 1024;
/// Longest refusal reason kept (longer ones are cut, never refused: they are information).
pub const MAX_REASON_LEN: usize = 512;
/// Longest action name in a refusal.
pub const MAX_ACTION_LEN: usize = 32;

/// A transition one party made, as the other party's site applies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    Confirm,
    Decline,
    Start,
    /// The provider's signed usage report.
    Complete(UsageReport),
    Cancel,
    /// The consumer's countersignature of the report.
    ConfirmUsage(ConfirmedUsage),
}

impl Step {
    /// The step of a local action (`None` for `Settle`, which never leaves the site).
    pub fn of(action: &Action) -> Option<Step> {
        Some(match action {
            Action::Confirm => Step::Confirm,
            Action::Decline => Step::Decline,
            Action::Start => Step::Start,
            Action::Complete(r) => Step::Complete(r.clone()),
            Action::Cancel => Step::Cancel,
            Action::ConfirmUsage(u) => Step::ConfirmUsage(u.clone()),
            Action::Settle => return None,
        })
    }

    pub fn action(&self) -> Action {
        match self {
            Step::Confirm => Action::Confirm,
            Step::Decline => Action::Decline,
            Step::Start => Action::Start,
            Step::Complete(r) => Action::Complete(r.clone()),
            Step::Cancel => Action::Cancel,
            Step::ConfirmUsage(u) => Action::ConfirmUsage(u.clone()),
        }
    }
}

/// A step sent to the other party: which booking, what, and when the sender made it (the
/// receiver judges time rules such as "start before the window ends" at that instant, not
/// when a cut link finally delivered it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMessage {
    pub booking: BookingId,
    pub step: Step,
    pub at_ms: u64,
}

/// Why a party refused a step (or a booking request) the other sent: the action's name, the
/// reason, and the booking's state at the refuser when it holds the booking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRefusal {
    pub booking: BookingId,
    pub action: String,
    pub reason: String,
    pub state: Option<State>,
}

/// Why a peer's message was not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes (at most {MAX_STEP_BYTES})")]
    TooLarge(usize),
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("the action name is {0} bytes (at most {MAX_ACTION_LEN})")]
    ActionName(usize),
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising plain structs into a Vec cannot fail.
    cbor4ii::serde::to_vec(Vec::new(), v).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_STEP_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    cbor4ii::serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
}

impl StepMessage {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<StepMessage, DecodeError> {
        decode(bytes)
    }
}

impl StepRefusal {
    /// A refusal with `reason` cut to [`MAX_REASON_LEN`] bytes (on a character boundary).
    pub fn new(
        booking: BookingId,
        action: &str,
        reason: &str,
        state: Option<State>,
    ) -> StepRefusal {
        StepRefusal {
            booking,
            action: cut(action, MAX_ACTION_LEN).to_string(),
            reason: cut(reason, MAX_REASON_LEN).to_string(),
            state,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes and bounds a refusal; an over-long reason is cut, an over-long action name
    /// refused (it is not one of ours).
    pub fn decode(bytes: &[u8]) -> Result<StepRefusal, DecodeError> {
        let mut r: StepRefusal = decode(bytes)?;
        if r.action.len() > MAX_ACTION_LEN {
            return Err(DecodeError::ActionName(r.action.len()));
        }
        r.reason = cut(&r.reason, MAX_REASON_LEN).to_string();
        Ok(r)
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeIdentity;
    use crate::resources::booking::tests::parties;
    use crate::resources::resource::tests::w;

    #[test]
    fn steps_round_trip_and_garbage_is_refused() {
        let p = parties();
        let b = p.booking(1, w(2_000, 5_000), 2);
        let report = p.report(&b, 2, w(2_000, 4_000));
        let usage = ConfirmedUsage::confirm(&p.consumer, &report, b.unit_price).unwrap();
        for step in [
            Step::Confirm,
            Step::Decline,
            Step::Start,
            Step::Complete(report),
            Step::Cancel,
            Step::ConfirmUsage(usage),
        ] {
            let m = StepMessage {
                booking: b.id.clone(),
                step: step.clone(),
                at_ms: 7,
            };
            let bytes = m.encode();
            assert!(bytes.len() < MAX_STEP_BYTES / 4, "{}", bytes.len());
            assert_eq!(StepMessage::decode(&bytes), Ok(m));
            assert_eq!(Step::of(&step.action()), Some(step));
        }
        assert_eq!(Step::of(&Action::Settle), None);
        assert!(matches!(
            StepMessage::decode(&[0xff; 12]),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(
            StepMessage::decode(&vec![0; MAX_STEP_BYTES + 1]),
            Err(DecodeError::TooLarge(MAX_STEP_BYTES + 1))
        );
        // A booking id whose consumer is not a did:key does not decode.
        let mut v: serde_json::Value = serde_json::to_value(StepMessage {
            booking: b.id.clone(),
            step: Step::Start,
            at_ms: 1,
        })
        .unwrap();
        v["booking"]["consumer"] = "did:web:example.org".into();
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &v).unwrap();
        assert!(StepMessage::decode(&bytes).is_err());
    }

    #[test]
    fn refusals_are_bounded() {
        let id = BookingId {
            consumer: crate::resources::Did::of(&NodeIdentity::generate()),
            nonce: 3,
        };
        let long = "é".repeat(MAX_REASON_LEN);
        let r = StepRefusal::new(id.clone(), "confirm", &long, Some(State::Cancelled));
        assert!(r.reason.len() <= MAX_REASON_LEN && r.reason.len() >= MAX_REASON_LEN - 1);
        assert_eq!(StepRefusal::decode(&r.encode()), Ok(r.clone()));
        let mut sent = r.clone();
        sent.reason = "x".repeat(4 * MAX_REASON_LEN);
        assert_eq!(
            StepRefusal::decode(&sent.encode()).unwrap().reason.len(),
            MAX_REASON_LEN
        );
        sent.action = "a".repeat(MAX_ACTION_LEN + 1);
        assert_eq!(
            StepRefusal::decode(&sent.encode()),
            Err(DecodeError::ActionName(MAX_ACTION_LEN + 1))
        );
    }
}
