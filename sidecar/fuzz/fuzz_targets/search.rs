//! Search queries (gossiped or asked directly) and the needles typed by users. Decoding and
//! parsing never panic; a decoded query re-encodes to one that decodes equal.
#![no_main]
use garden_sidecar::discovery::search::{Needle, Query, Rules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = Query::decode(data) {
        assert_eq!(Query::decode(&q.encode()).expect("re-decodes"), q);
        let _ = Rules::default().check(&q.needle);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(n) = Needle::parse(s) {
            let _ = n.dht_key();
            let _ = Rules::default().check(&n);
        }
    }
});
