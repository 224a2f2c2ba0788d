//! The other membership messages (witness, probes, candidates, offline heartbeats, SWIM
//! events, connectivity profiles). The first byte picks the decoder; none may panic, and a
//! decoded value re-encodes to one that decodes equal.
#![no_main]
use garden_sidecar::membership::node::{CandidatesRequest, CandidatesResponse};
use garden_sidecar::membership::offline::{Ack, Batch};
use garden_sidecar::membership::probe::{IndirectRequest, IndirectResponse, Payload};
use garden_sidecar::membership::profile::Profile;
use garden_sidecar::membership::swim::MemberEvent;
use garden_sidecar::membership::wire::Reader;
use garden_sidecar::membership::witness::{WitnessReport, WitnessRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, b)) = data.split_first() else {
        return;
    };
    match which % 10 {
        0 => {
            if let Ok(v) = WitnessRequest::decode(b) {
                assert_eq!(WitnessRequest::decode(&v.encode()).unwrap(), v);
            }
        }
        1 => {
            if let Ok(v) = WitnessReport::decode(b) {
                let bytes = v.encode();
                assert_eq!(WitnessReport::decode(&bytes).unwrap().encode(), bytes);
            }
        }
        2 => {
            let _ = Payload::decode(b);
        }
        3 => {
            let _ = IndirectRequest::decode(b);
        }
        4 => {
            let _ = IndirectResponse::decode(b);
        }
        5 => {
            let _ = CandidatesRequest::decode(b);
        }
        6 => {
            let _ = CandidatesResponse::decode(b);
        }
        7 => {
            if let Ok(v) = Batch::decode(b) {
                assert_eq!(Batch::decode(&v.encode()).unwrap(), v);
            }
        }
        8 => {
            let _ = Ack::decode(b);
        }
        _ => {
            let mut r = Reader::new(b);
            let _ = MemberEvent::decode(&mut r);
            let mut r = Reader::new(b);
            if let Ok(p) = Profile::decode(&mut r) {
                let _ = p.validate();
            }
        }
    }
});
