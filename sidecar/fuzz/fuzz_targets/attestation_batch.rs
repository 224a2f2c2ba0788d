//! Attestation batches as the settlement contract and the signer read them (garden-wire).
//! Strict decoding never panics, never reads past its input, and round-trips: a batch that
//! decodes re-encodes to a batch holding the same items. It is *not* canonical: the string and
//! key tables may carry unused or repeated entries (this target found it), which the encoder
//! never writes. Items are signed one by one, so this changes no payment; the batch bytes (and
//! any hash of them) are not unique per content.
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
    let back = batch::Batch::decode(&again, 1_000).expect("a re-encoded batch decodes");
    let items_back: Vec<_> = back.iter().map(|a| a.to_owned()).collect();
    assert_eq!(items_back, items, "re-encoding changed the items");
});
