//! What a nano and its master, and the nano's partners, decode from peers (data plane):
//! `/garden/delegated-resource/1.0.0` (a nano's statement and mutation), the rounds of
//! `/garden/delegation-sync/1.0.0` and `/garden/resource-refusal/1.0.0`. Decoding is bounded
//! and never panics; what decodes re-encodes to bytes that decode equal (a statement's
//! signature was checked; a round's bookings are all of the given nano's resources); a
//! decoded round runs through both sides' state machines without panicking.
#![no_main]
use std::collections::BTreeSet;

use garden_sidecar::delegation::sync::{MasterSync, NanoSync, SyncMessage};
use garden_sidecar::resources::delegate::{Delegated, SignedDelegation};
use garden_sidecar::resources::refusal::MutationRefusal;
use garden_sidecar::resources::step::MAX_REASON_LEN;
use garden_sidecar::resources::Did;
use libfuzzer_sys::fuzz_target;

/// A fixed nano DID and sender peer (what the glue passes).
fn nano() -> Did {
    Did::parse("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK").unwrap()
}

fuzz_target!(|data: &[u8]| {
    let n = nano();
    let sender = n.peer_id().unwrap();
    if let Ok(s) = SignedDelegation::decode(data) {
        assert_eq!(SignedDelegation::decode(&s.encode()).as_ref(), Ok(&s));
    }
    if let Ok(e) = Delegated::decode(data, &sender) {
        assert_eq!(Delegated::decode(&e.encode(), &sender).as_ref(), Ok(&e));
    }
    if let Ok(m) = SyncMessage::decode(data, &n) {
        assert_eq!(SyncMessage::decode(&m.encode(), &n).as_ref(), Ok(&m));
        let none = BTreeSet::new();
        match m {
            SyncMessage::Report { epoch, taken, gone } => {
                let _ = MasterSync::default().on_report(epoch, taken, &gone, &none);
            }
            SyncMessage::Settle {
                epoch,
                master,
                nano,
                gone,
            } => {
                let _ = NanoSync::default().on_settle(epoch, &master, &nano, &gone, &none);
            }
        }
    }
    if let Ok(r) = MutationRefusal::decode(data) {
        assert!(r.reason.len() <= MAX_REASON_LEN);
        assert_eq!(MutationRefusal::decode(&r.encode()).as_ref(), Ok(&r));
    }
});
