//! A booking's steps and refusals as the other party's site receives them (data plane,
//! `/garden/booking-step/1.0.0` and `/garden/booking-refusal/1.0.0`). Decoding is bounded and
//! never panics; a decoded message re-encodes to one that decodes equal; the evidence's
//! signature checks on fuzzed bytes return (they may only fail); a refusal's reason is cut to
//! its bound. Booking ids typed in paths parse or are refused. Attestation copies
//! (`/garden/attestation-copy/1.0.0`) decode within their bounds and round-trip.
#![no_main]
use garden_sidecar::resources::copies::{CopyMessage, MAX_ATTESTATION_BYTES};
use garden_sidecar::resources::step::{Step, StepMessage, StepRefusal, MAX_REASON_LEN};
use garden_sidecar::resources::BookingId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = StepMessage::decode(data) {
        assert_eq!(StepMessage::decode(&m.encode()).as_ref(), Ok(&m));
        match &m.step {
            Step::Complete(r) => {
                let _ = r.verify();
            }
            Step::ConfirmUsage(u) => {
                let _ = u.verify();
            }
            _ => {}
        }
    }
    if let Ok(r) = StepRefusal::decode(data) {
        assert!(r.reason.len() <= MAX_REASON_LEN);
        assert_eq!(StepRefusal::decode(&r.encode()).as_ref(), Ok(&r));
    }
    if let Ok(c) = CopyMessage::decode(data) {
        assert!(!c.attestation.is_empty() && c.attestation.len() <= MAX_ATTESTATION_BYTES);
        assert_eq!(CopyMessage::decode(&c.encode()).as_ref(), Ok(&c));
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(id) = BookingId::parse(s) {
            assert_eq!(BookingId::parse(&id.to_string()), Ok(id));
        }
    }
});
