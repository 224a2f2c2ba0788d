//! Attestation batches as the settlement contract, the gateway and the signer read them
//! (garden-wire). Strict decoding never panics, never reads past its input, and is
//! canonical: a batch that decodes re-encodes to the same bytes (the decoder refuses unused,
//! repeated or out-of-order table entries, which this target once found accepted).
#![no_main]
use garden_wire::batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(b) = batch::Batch::decode(data, 1_000) else {
        return;
    };
    let items: Vec<_> = b.iter().map(|a| a.to_owned()).collect();
    assert_eq!(items.len(), b.len());
    let again = batch::encode(&items).expect("a decoded batch re-encodes");
    assert_eq!(again, data, "decoding accepted a non-canonical encoding");
});
