//! Codec tests for heartbeat messages: round trips, truncation, bounds, garbage.

use super::*;
use crate::membership::swim::Kind;
use crate::membership::testutil::peer;

pub(crate) fn full_heartbeat() -> Heartbeat {
    Heartbeat {
        seq: 42,
        timestamp: Timestamp::from_millis(1_795_000_000_123),
        name: Some("node-é".into()),
        need: 2,
        record: Some(vec![7; 300]),
        indexers_bound: Some(vec![peer(1), peer(2), peer(3)]),
        challenge_self: true,
        challenge_refs: vec![1, 2],
        challenge_did: Some("did:key:z6Mk".into()),
        referent: true,
        suspected_incarnation: Some(9),
        events: vec![MemberEvent {
            kind: Kind::Suspect,
            peer: peer(4),
            incarnation: 3,
            hops_left: 2,
        }],
        pending_contact: vec![peer(5)],
        profile: Some(crate::membership::profile::Profile::Intermittent {
            max_absence_ms: 3_600_000,
        }),
    }
}

fn full_response() -> HeartbeatResponse {
    HeartbeatResponse {
        fill_rate: 0.25,
        peer_count: 125,
        max_nodes: 500,
        born_at: Timestamp::from_millis(1_794_999_000_000),
        challenges: vec![ChallengeEntry {
            peer: peer(1),
            found: true,
            last_seen: Timestamp::from_millis(5),
        }],
        dht: Some(DhtAnswer {
            found: true,
            payload: vec![1, 2, 3],
        }),
        witnesses: vec![PeerInfo::new(
            peer(6),
            vec!["/ip4/10.0.0.1/tcp/4001".parse().unwrap()],
        )],
        suggestions: vec![PeerInfo::new(peer(7), vec![])],
        suggest_migrate: true,
        incarnation: 77,
        events: vec![MemberEvent {
            kind: Kind::Alive,
            peer: peer(8),
            incarnation: 1,
            hops_left: 0,
        }],
        pending_callers: vec![peer(9)],
        resync: true,
        now: Timestamp::from_millis(1_795_000_000_000),
    }
}

#[test]
fn heartbeat_round_trips_full_and_empty() {
    let hb = full_heartbeat();
    assert_eq!(Heartbeat::decode(&hb.encode()).unwrap(), hb);
    let empty = Heartbeat::default();
    let b = empty.encode();
    assert_eq!(b.len(), 4, "version + flags + seq + timestamp");
    assert_eq!(Heartbeat::decode(&b).unwrap(), empty);
}

#[test]
fn response_round_trips() {
    let r = full_response();
    assert_eq!(HeartbeatResponse::decode(&r.encode()).unwrap(), r);
    let empty = HeartbeatResponse::default();
    assert_eq!(HeartbeatResponse::decode(&empty.encode()).unwrap(), empty);
}

#[test]
fn every_truncation_of_a_heartbeat_is_rejected() {
    let b = full_heartbeat().encode();
    for n in 0..b.len() {
        assert!(
            Heartbeat::decode(&b[..n]).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
    let r = full_response().encode();
    for n in 0..r.len() {
        assert!(
            HeartbeatResponse::decode(&r[..n]).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
}

#[test]
fn trailing_bytes_version_and_unknown_flags_are_rejected() {
    let mut b = full_heartbeat().encode();
    b.push(0);
    assert_eq!(Heartbeat::decode(&b), Err(DecodeError::Trailing(1)));
    let mut v = Heartbeat::default().encode();
    v[0] = 2;
    assert_eq!(Heartbeat::decode(&v), Err(DecodeError::Version(2)));
    let mut f = Heartbeat::default().encode();
    f[1] = 0x80;
    f.insert(2, 0x7f); // flags varint = 0x3f80: bits above ALL
    assert!(matches!(
        Heartbeat::decode(&f),
        Err(DecodeError::UnknownFlags(_))
    ));
}

#[test]
fn oversized_fields_are_rejected() {
    // A record length above MAX_RECORD.
    let mut w = Writer::with_version();
    w.varint(hb_flag::RECORD);
    w.varint(1);
    w.varint(1);
    w.varint(MAX_RECORD as u64 + 1);
    assert!(matches!(
        Heartbeat::decode(&w.into_bytes()),
        Err(DecodeError::TooLong {
            field: "record",
            ..
        })
    ));
    // Too many pending callers in a response.
    let mut w = Writer::with_version();
    w.varint(resp_flag::PENDING);
    for _ in 0..5 {
        w.varint(0);
    }
    w.varint(MAX_PENDING as u64 + 1);
    assert!(matches!(
        HeartbeatResponse::decode(&w.into_bytes()),
        Err(DecodeError::TooLong {
            field: "pending_callers",
            ..
        })
    ));
    // A fill rate above 100 %.
    let mut w = Writer::with_version();
    w.varint(0);
    w.varint(10_001);
    assert!(matches!(
        HeartbeatResponse::decode(&w.into_bytes()),
        Err(DecodeError::TooLong { .. })
    ));
}

#[test]
fn encoder_truncates_lists_so_output_always_decodes() {
    let hb = Heartbeat {
        pending_contact: (0..100u8).map(peer).collect(),
        challenge_refs: vec![0, 1, 2],
        name: Some("x".repeat(200)),
        ..Default::default()
    };
    let d = Heartbeat::decode(&hb.encode()).unwrap();
    assert_eq!(d.pending_contact.len(), MAX_PENDING);
    assert_eq!(d.challenge_refs.len(), MAX_OTHER_CHALLENGES);
    assert_eq!(d.name.unwrap().len(), MAX_NAME);
}

#[test]
fn garbage_never_panics() {
    // A cheap deterministic fuzz: every byte value at every position of a valid message.
    let b = full_heartbeat().encode();
    for i in 0..b.len() {
        for v in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut m = b.clone();
            m[i] = v;
            if let Ok(h) = Heartbeat::decode(&m) {
                assert_eq!(
                    Heartbeat::decode(&h.encode()).unwrap(),
                    h,
                    "accepted input must re-encode"
                );
            }
        }
    }
    let r = full_response().encode();
    for i in 0..r.len() {
        for v in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut m = r.clone();
            m[i] = v;
            if let Ok(h) = HeartbeatResponse::decode(&m) {
                assert_eq!(HeartbeatResponse::decode(&h.encode()).unwrap(), h);
            }
        }
    }
}
