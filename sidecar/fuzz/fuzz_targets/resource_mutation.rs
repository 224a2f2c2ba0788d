//! Signed resource mutations as a partner's site receives them (data plane). Decoding is
//! bounded and never panics; a decoded mutation re-encodes to one that decodes equal, and a
//! signature check on fuzzed bytes returns (it may only fail).
#![no_main]
use garden_sidecar::resources::mutation::SignedMutation;
use garden_sidecar::resources::{Did, ResourceId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = SignedMutation::decode(data) {
        let again = SignedMutation::decode(&m.encode()).expect("re-decodes");
        assert_eq!(again.body_bytes(), m.body_bytes());
        let _ = m.verify();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Did::parse(s);
        let _ = ResourceId::parse(s);
    }
});
