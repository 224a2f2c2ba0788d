//! Heartbeats and their responses as they arrive off the wire. Decoding never panics, and
//! what decodes re-encodes to a message that decodes to the same value.
#![no_main]
use garden_sidecar::membership::heartbeat::{Heartbeat, HeartbeatResponse, SignedHeartbeat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedHeartbeat::from_bytes(data) {
        let again = SignedHeartbeat::from_bytes(&signed.to_bytes()).expect("re-decodes");
        assert_eq!(signed, again);
    }
    if let Ok(hb) = Heartbeat::decode(data) {
        assert_eq!(Heartbeat::decode(&hb.encode()).expect("re-decodes"), hb);
    }
    if let Ok(r) = HeartbeatResponse::decode(data) {
        // f64 fields: compare the re-encoded bytes, which NaN payloads do not disturb.
        let bytes = r.encode();
        let r2 = HeartbeatResponse::decode(&bytes).expect("re-decodes");
        assert_eq!(r2.encode(), bytes);
    }
});
