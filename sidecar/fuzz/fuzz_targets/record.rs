//! Signed DHT records as a server receives them: any key, any value, validated before use.
//! Whatever the bytes, validation returns (never panics), and an accepted record is under
//! its key's owner and within the size bounds.
#![no_main]
use garden_sidecar::discovery::record;
use libfuzzer_sys::fuzz_target;

/// A fixed "now" so a crash reproduces.
const NOW_MS: u64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    // First byte: how many of the following bytes form the key.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (key, value) = rest.split_at((n as usize).min(rest.len()));
    if record::validate(key, value, NOW_MS).is_ok() {
        assert!(value.len() <= record::MAX_RECORD_BYTES, "accepted an oversized record");
        assert!(key.len() <= record::MAX_KEY_LEN, "accepted an oversized key");
    }
    let _ = record::validate_as_node(value, NOW_MS);
});
