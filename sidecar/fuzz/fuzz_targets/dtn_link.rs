//! The DTN link protocol (`/garden/dtn/1.0.0`): head, entry and ack frames. Decoding never
//! panics; a decoded frame re-encodes to the same bytes (the encoding is canonical).
#![no_main]
use garden_sidecar::dtn::link::{
    decode_ack, decode_entry, decode_head, encode_ack, encode_entry, encode_head,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = decode_head(data) {
        assert_eq!(encode_head(n), data);
    }
    if let Ok(it) = decode_entry(data, 1 << 20) {
        assert_eq!(encode_entry(&it), data);
    }
    if let Ok(ids) = decode_ack(data) {
        assert_eq!(encode_ack(&ids), data);
    }
});
