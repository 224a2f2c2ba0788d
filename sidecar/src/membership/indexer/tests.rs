//! Registry rules with an explicit clock.

use std::time::Duration;

use super::*;
use crate::membership::heartbeat::{Heartbeat, Signer};
use crate::membership::swim::MemberEvent;
use crate::membership::testutil::{key, peer};

const T0: u64 = 1_800_000_000_000;

fn at(secs: u64) -> Timestamp {
    Timestamp::from_millis(T0 + secs * 1000)
}

fn idx() -> PeerId {
    peer(200)
}

fn registry(cfg: Config) -> Registry {
    Registry::new(cfg.with_rng_seed(3), idx(), at(0))
}

fn addr(n: u8) -> Vec<Multiaddr> {
    vec![format!("/ip4/10.1.{n}.1/tcp/4001").parse().unwrap()]
}

/// Node `n` sends `hb` (timestamp forced to `t`) to the indexer.
fn send(r: &mut Registry, n: u8, t: u64, hb: Heartbeat) -> Result<Accepted, Reject> {
    let (sk, p) = key(n);
    let hb = Heartbeat {
        timestamp: at(t),
        seq: t + 1,
        ..hb
    };
    let signed = Signer::new(sk).sign(hb, &idx());
    r.on_heartbeat(at(t), p, &addr(n), &signed)
}

fn full() -> Heartbeat {
    Heartbeat {
        record: Some(vec![1, 2, 3]),
        indexers_bound: Some(vec![]),
        ..Default::default()
    }
}

#[test]
fn first_heartbeat_is_admitted_and_response_carries_capacity() {
    let mut r = registry(Config::new().with_max_nodes(4));
    let a = send(&mut r, 1, 0, full()).unwrap();
    assert_eq!(a.response.peer_count, 1);
    assert_eq!(a.response.max_nodes, 4);
    assert!((a.response.fill_rate - 0.25).abs() < 1e-9);
    assert_eq!(a.response.born_at, at(0));
    assert_eq!(
        a.record,
        Some(vec![1, 2, 3]),
        "new record must be validated and republished"
    );
    assert!(a.probe, "first contact asks for a bandwidth probe");
    assert!(!a.response.resync);
    // Same record again: nothing to republish; no new probe before the interval.
    let b = send(&mut r, 1, 20, full()).unwrap();
    assert_eq!(b.record, None);
    assert!(!b.probe);
}

#[test]
fn missing_record_on_a_new_session_asks_for_resync() {
    let mut r = registry(Config::new());
    let a = send(&mut r, 1, 0, Heartbeat::default()).unwrap();
    assert!(a.response.resync);
    // Once: a node that has no record (a strict indexer) is not asked again and again.
    let b = send(&mut r, 1, 20, Heartbeat::default()).unwrap();
    assert!(!b.response.resync);
}

#[test]
fn bad_signature_wrong_recipient_and_non_ed25519_are_rejected() {
    let mut r = registry(Config::new());
    let (sk, p) = key(1);
    let to_other = Signer::new(sk.clone()).sign(Heartbeat { seq: 1, ..full() }, &peer(201));
    assert!(matches!(
        r.on_heartbeat(at(0), p, &[], &to_other),
        Err(Reject::Heartbeat(heartbeat::Error::BadSignature(_)))
    ));
    let signed = Signer::new(sk).sign(Heartbeat { seq: 1, ..full() }, &idx());
    // Claimed by another authenticated peer (Go keyed sessions on the claimed id, B9).
    assert!(matches!(
        r.on_heartbeat(at(0), peer(2), &[], &signed),
        Err(Reject::Heartbeat(_))
    ));
    let rnd = PeerId::random();
    assert!(matches!(
        r.on_heartbeat(at(0), rnd, &[], &signed),
        Err(Reject::Heartbeat(heartbeat::Error::NotEd25519(_)))
    ));
    assert!(r.is_empty());
}

#[test]
fn replays_are_rejected_but_a_restarted_node_is_not() {
    let mut r = registry(Config::new());
    let (sk, p) = key(1);
    let s = Signer::new(sk);
    let first = s.sign(
        Heartbeat {
            seq: 5,
            timestamp: at(10),
            ..full()
        },
        &idx(),
    );
    r.on_heartbeat(at(10), p, &[], &first).unwrap();
    assert_eq!(
        r.on_heartbeat(at(11), p, &[], &first),
        Err(Reject::Replay { seq: 5 })
    );
    let restarted = s.sign(
        Heartbeat {
            seq: 1,
            timestamp: at(30),
            ..full()
        },
        &idx(),
    );
    assert!(r.on_heartbeat(at(30), p, &[], &restarted).is_ok());
}

#[test]
fn capacity_applies_to_new_peers_only() {
    let mut r = registry(Config::new().with_max_nodes(2));
    send(&mut r, 1, 0, full()).unwrap();
    send(&mut r, 2, 0, full()).unwrap();
    assert_eq!(
        send(&mut r, 3, 1, full()).unwrap_err(),
        Reject::Capacity { max: 2 }
    );
    assert!(
        send(&mut r, 1, 20, full()).is_ok(),
        "known peers keep their session (B11)"
    );
}

#[test]
fn admission_uses_probe_results_and_age() {
    let mut r = registry(Config::new().with_session_ttl(Duration::from_secs(10 * 86_400)));
    // Newcomer before any probe: 0.3·0.5 + 0.2·0.5 = 25 ≥ 20.
    let a = send(&mut r, 1, 0, full()).unwrap();
    assert!((a.score - 25.0).abs() < 0.1, "{}", a.score);
    // A failed probe and 12 h of silence later (uptime ≈ 0, threshold 50): refused.
    let (_, p) = key(1);
    r.on_probe(
        &p,
        Measurement {
            ok: false,
            bandwidth: 0.0,
            latency: 0.0,
        },
    );
    let e = send(&mut r, 1, 12 * 3600, full()).unwrap_err();
    assert!(
        matches!(e, Reject::Refused(Refused { threshold, .. }) if (threshold - 50.0).abs() < 1e-6),
        "{e:?}"
    );
    assert!(!r.has_session(&p), "a refused node's session is closed");
}

#[test]
fn a_healthy_node_stays_admitted_for_days_by_an_almost_empty_indexer() {
    // Before the fix, the indexer's own fill (here 1/500) and diversity were 45 % of the
    // score: this node was refused from ~22 h on.
    let mut r = registry(Config::new());
    let (_, p) = key(1);
    // Thirty hours, a heartbeat a minute (gaps up to 2 min count as online).
    for i in 0..(30 * 60) {
        let t = i * 60;
        if i % 10 == 0 {
            r.on_probe(
                &p,
                Measurement {
                    ok: true,
                    bandwidth: 0.66,
                    latency: 0.5,
                },
            );
        }
        let res = send(&mut r, 1, t, full());
        assert!(
            res.is_ok(),
            "refused at {} h: {:?}",
            t / 3600,
            res.unwrap_err()
        );
    }
}

#[test]
fn a_refused_node_is_not_a_newcomer_again_a_heartbeat_later() {
    let mut r = registry(Config::new().with_session_ttl(Duration::from_secs(10 * 86_400)));
    let (_, p) = key(1);
    send(&mut r, 1, 0, full()).unwrap();
    r.on_probe(&p, Measurement::FAILED);
    assert!(matches!(
        send(&mut r, 1, 12 * 3600, full()),
        Err(Reject::Refused(_))
    ));
    // Before the fix it was admitted again as a newcomer (bar 20) 2.5 min later.
    let until = match send(&mut r, 1, 12 * 3600 + 150, full()) {
        Err(Reject::Backoff { until }) => until,
        other => panic!("expected a backoff, got {other:?}"),
    };
    assert_eq!(until, at(12 * 3600 + 300));
    // After the backoff it is scored again (as a newcomer, its session was closed).
    assert!(send(&mut r, 1, 12 * 3600 + 301, full()).is_ok());
}

#[test]
fn one_subnet_cannot_take_more_than_its_share_of_an_indexer() {
    let mut r = registry(Config::new().with_max_nodes(40));
    let same = |n: u8| {
        vec![format!("/ip4/10.9.9.{n}/tcp/4001")
            .parse::<Multiaddr>()
            .unwrap()]
    };
    let hb = |n: u8| {
        let (sk, _) = key(n);
        Signer::new(sk).sign(
            Heartbeat {
                timestamp: at(0),
                seq: 1,
                ..full()
            },
            &idx(),
        )
    };
    // Capacity 40 × 25 % = 10, floored at 16 sessions per /24.
    for n in 1..=16 {
        r.on_heartbeat(at(0), key(n).1, &same(n), &hb(n)).unwrap();
    }
    let e = r
        .on_heartbeat(at(0), key(17).1, &same(17), &hb(17))
        .unwrap_err();
    assert_eq!(e, Reject::SubnetFull { limit: 16 });
    // Another subnet is welcome; a session leaving frees a place.
    r.on_heartbeat(at(0), key(18).1, &addr(18), &hb(18))
        .unwrap();
    r.remove_session(&key(1).1);
    r.on_heartbeat(at(0), key(17).1, &same(17), &hb(17))
        .unwrap();
}

#[test]
fn challenges_answer_own_id_fresh_and_others_by_session() {
    let mut r = registry(Config::new());
    send(&mut r, 2, 0, full()).unwrap();
    let pool = vec![peer(9), key(2).1];
    let hb = Heartbeat {
        challenge_self: true,
        challenge_refs: vec![1, 0, 5],
        indexers_bound: Some(pool),
        ..full()
    };
    let a = send(&mut r, 1, 5, hb).unwrap();
    let c = &a.response.challenges;
    assert_eq!(c.len(), 3);
    assert_eq!(
        (c[0].peer, c[0].found, c[0].last_seen),
        (key(1).1, true, at(5))
    );
    assert_eq!((c[1].found, c[1].last_seen), (true, at(0)));
    assert_eq!((c[2].found, c[2].last_seen), (false, Timestamp::ZERO));
    // A position beyond the list we hold (stale list) is skipped, not an error.
    let stale = send(
        &mut r,
        1,
        25,
        Heartbeat {
            challenge_self: true,
            challenge_refs: vec![7],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(stale.response.challenges.len(), 1);
}

#[test]
fn dht_challenge_is_handed_to_the_caller() {
    let mut r = registry(Config::new());
    let a = send(
        &mut r,
        1,
        0,
        Heartbeat {
            challenge_did: Some("did:key:z1".into()),
            ..full()
        },
    )
    .unwrap();
    assert_eq!(a.dht_challenge.as_deref(), Some("did:key:z1"));
    assert_eq!(
        a.response.dht, None,
        "filled in by the caller after the lookup"
    );
}

#[test]
fn witnesses_are_other_sessions_with_routable_addresses() {
    let mut r = registry(Config::new());
    for n in 1..=5 {
        send(&mut r, n, 0, full()).unwrap();
    }
    let a = send(&mut r, 1, 20, full()).unwrap();
    assert_eq!(a.response.witnesses.len(), 3);
    assert!(a
        .response
        .witnesses
        .iter()
        .all(|w| w.peer != key(1).1 && !w.addrs.is_empty()));
    // Loopback-only peers are not offered unless allowed.
    let mut lo = registry(Config::new());
    let (sk, p) = key(7);
    let s = Signer::new(sk).sign(
        Heartbeat {
            seq: 1,
            timestamp: at(0),
            ..full()
        },
        &idx(),
    );
    lo.on_heartbeat(at(0), p, &["/ip4/127.0.0.1/tcp/1".parse().unwrap()], &s)
        .unwrap();
    assert!(send(&mut lo, 1, 1, full())
        .unwrap()
        .response
        .witnesses
        .is_empty());
}

#[test]
fn suggestions_exclude_requester_and_its_pool_and_offload_asks_a_batch() {
    let mut r = registry(Config::new().with_max_nodes(5).with_offload(
        0.5,
        2,
        Duration::from_secs(180),
    ));
    r.set_known_indexers(vec![
        PeerInfo::new(peer(50), addr(50)),
        PeerInfo::new(peer(51), addr(51)),
        PeerInfo::new(idx(), addr(0)),
    ]);
    let hb = Heartbeat {
        need: 3,
        indexers_bound: Some(vec![peer(50)]),
        record: Some(vec![1]),
        ..Default::default()
    };
    let a = send(&mut r, 1, 0, hb).unwrap();
    assert_eq!(
        a.response
            .suggestions
            .iter()
            .map(|s| s.peer)
            .collect::<Vec<_>>(),
        vec![peer(51)]
    );
    assert!(!a.response.suggest_migrate, "20 % full");
    for n in 2..=4 {
        send(&mut r, n, 1, full()).unwrap();
    }
    // 4/5 = 80 % > 50 %: a batch of 2 is asked to move; each gets ≥ 1 suggestion.
    let asked: Vec<bool> = (1..=4)
        .map(|n| {
            send(&mut r, n, 10, full())
                .unwrap()
                .response
                .suggest_migrate
        })
        .collect();
    assert_eq!(asked.iter().filter(|b| **b).count(), 2, "{asked:?}");
    // After the grace period the batch rotates to the others.
    let later: Vec<bool> = (1..=4)
        .map(|n| {
            send(&mut r, n, 200, full())
                .unwrap()
                .response
                .suggest_migrate
        })
        .collect();
    assert_eq!(later.iter().filter(|b| **b).count(), 2);
    assert_ne!(asked, later);
}

#[test]
fn suspicion_of_self_is_refuted_with_a_higher_incarnation() {
    let mut r = registry(Config::new());
    let inc = r.incarnation();
    let a = send(
        &mut r,
        1,
        0,
        Heartbeat {
            suspected_incarnation: Some(inc),
            ..full()
        },
    )
    .unwrap();
    assert_eq!(a.response.incarnation, inc + 1);
    // The alive event goes to the next requesters, not back to the suspecting node.
    assert!(a.response.events.is_empty());
    let next = send(&mut r, 2, 1, full()).unwrap();
    assert!(next
        .response
        .events
        .iter()
        .any(|e| e.kind == Kind::Alive && e.peer == idx() && e.incarnation == inc + 1));
    // An older suspicion is stale: no bump.
    let b = send(
        &mut r,
        1,
        20,
        Heartbeat {
            suspected_incarnation: Some(inc - 5),
            ..full()
        },
    )
    .unwrap();
    assert_eq!(b.response.incarnation, inc + 1);
    // Gossip that we are dead at our current incarnation is refuted too, not relayed.
    let dead = MemberEvent {
        kind: Kind::Dead,
        peer: idx(),
        incarnation: inc + 1,
        hops_left: 2,
    };
    let c = send(
        &mut r,
        1,
        40,
        Heartbeat {
            events: vec![dead],
            ..full()
        },
    )
    .unwrap();
    assert_eq!(c.response.incarnation, inc + 2);
    assert!(c.response.events.iter().all(|e| e.kind == Kind::Alive));
}

#[test]
fn events_are_relayed_to_the_next_requester_with_one_hop_less() {
    let mut r = registry(Config::new());
    let ev = MemberEvent {
        kind: Kind::Suspect,
        peer: peer(60),
        incarnation: 2,
        hops_left: 2,
    };
    let a = send(
        &mut r,
        1,
        0,
        Heartbeat {
            events: vec![ev.clone()],
            ..full()
        },
    )
    .unwrap();
    assert!(a.response.events.is_empty(), "not echoed to its sender");
    // The same event again is a duplicate; the next requester gets it once.
    let b = send(
        &mut r,
        2,
        1,
        Heartbeat {
            events: vec![ev],
            ..full()
        },
    )
    .unwrap();
    let relayed: Vec<_> = b
        .response
        .events
        .iter()
        .filter(|e| e.peer == peer(60))
        .collect();
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0].hops_left, 1);
    assert!(send(&mut r, 3, 2, full())
        .unwrap()
        .response
        .events
        .is_empty());
}

#[test]
fn pending_callers_are_returned_to_the_target_until_expiry() {
    let mut r = registry(Config::new());
    let target = key(2).1;
    send(
        &mut r,
        1,
        0,
        Heartbeat {
            pending_contact: vec![target],
            ..full()
        },
    )
    .unwrap();
    let a = send(&mut r, 2, 10, full()).unwrap();
    assert_eq!(a.response.pending_callers, vec![key(1).1]);
    let b = send(&mut r, 2, 30, full()).unwrap();
    assert_eq!(
        b.response.pending_callers,
        vec![key(1).1],
        "kept until the caller stops advertising"
    );
    let c = send(&mut r, 2, 61, full()).unwrap();
    assert!(c.response.pending_callers.is_empty(), "expired after 60 s");
}

#[test]
fn sessions_expire_and_everything_about_them_goes() {
    let mut r = registry(Config::new());
    send(
        &mut r,
        1,
        0,
        Heartbeat {
            referent: true,
            pending_contact: vec![peer(70)],
            ..full()
        },
    )
    .unwrap();
    assert_eq!(r.referents().count(), 1);
    assert!(r.on_tick(at(119)).is_empty());
    assert_eq!(r.on_tick(at(120)), vec![key(1).1]);
    assert!(r.is_empty());
    assert_eq!(r.referents().count(), 0);
    assert!(r.pending.is_empty());
}

#[test]
fn referent_flag_is_asserted_and_withdrawn_per_heartbeat() {
    let mut r = registry(Config::new());
    send(
        &mut r,
        1,
        0,
        Heartbeat {
            referent: true,
            ..full()
        },
    )
    .unwrap();
    assert!(r.referents().any(|p| *p == key(1).1));
    send(&mut r, 1, 20, full()).unwrap();
    assert_eq!(r.referents().count(), 0);
}

#[test]
fn session_index_stays_consistent_after_removals() {
    let mut r = registry(Config::new());
    for n in 1..=6 {
        send(&mut r, n, n.into(), full()).unwrap();
    }
    r.remove_session(&key(2).1);
    r.on_tick(at(124)); // expires nodes 1..=4 (last heartbeat at t ≤ 4)
    assert_eq!(r.ids.len(), r.sessions.len());
    for (i, p) in r.ids.iter().enumerate() {
        assert_eq!(r.sessions[p].idx, i);
    }
    let w = send(&mut r, 5, 130, full()).unwrap().response.witnesses;
    assert_eq!(w.iter().map(|w| w.peer).collect::<Vec<_>>(), vec![key(6).1]);
}

#[test]
fn a_forged_suspicion_near_the_end_of_time_cannot_exhaust_the_incarnation() {
    let mut r = registry(Config::new());
    let inc = r.incarnation();
    let forged = |i| MemberEvent {
        kind: Kind::Dead,
        peer: idx(),
        incarnation: i,
        hops_left: 1,
    };
    // Before the bound, one event at u64::MAX pinned the incarnation there for good.
    let a = send(
        &mut r,
        1,
        0,
        Heartbeat {
            suspected_incarnation: Some(u64::MAX),
            events: vec![forged(u64::MAX)],
            ..full()
        },
    )
    .unwrap();
    assert_eq!(
        a.response.incarnation, inc,
        "implausible incarnations are ignored"
    );
    // A genuine suspicion is still refuted afterwards.
    let b = send(
        &mut r,
        2,
        1,
        Heartbeat {
            suspected_incarnation: Some(inc),
            ..full()
        },
    )
    .unwrap();
    assert_eq!(b.response.incarnation, inc + 1);
}

#[test]
fn offline_heartbeats_rebuild_the_uptime_of_a_cut_and_a_replay_or_forgery_is_refused() {
    let mut r = registry(Config::new().with_session_ttl(Duration::from_secs(3600)));
    let (sk, p) = key(1);
    for i in 0..10 {
        send(&mut r, 1, i * 20, full()).unwrap();
    }
    // Cut off for 20 minutes (a continuous profile: nothing excused), signing a beat a minute.
    let mut log = crate::membership::offline::Log::default();
    for m in 1..20u64 {
        log.tick(&sk, &p, at(180 + m * 60), Duration::from_secs(60));
    }
    let back = 180 + 20 * 60;
    send(&mut r, 1, back, full()).unwrap();
    let before = r.uptime_of(&p, at(back)).unwrap();
    assert!(before < 0.3, "the cut counts against it: {before}");
    let batch = log.take_batches().remove(0);
    let credit = r
        .on_offline_beats(at(back), p, &batch, Duration::from_secs(20))
        .unwrap();
    assert_eq!(credit.online, Duration::from_secs(19 * 60));
    let after = r.uptime_of(&p, at(back)).unwrap();
    assert!(after > 0.9, "the beats prove it was alive: {after}");
    // The same batch again: refused (replay), nothing more credited.
    assert!(r
        .on_offline_beats(at(back), p, &batch, Duration::from_secs(20))
        .is_err());
    // Someone else's batch for this node: the signatures fail.
    let (other, _) = key(2);
    let mut forged = crate::membership::offline::Log::default();
    forged.tick(&other, &p, at(back + 1), Duration::from_secs(60));
    let forged = forged.take_batches().remove(0);
    assert!(r
        .on_offline_beats(at(back + 2), p, &forged, Duration::from_secs(20))
        .is_err());
    assert!((r.uptime_of(&p, at(back)).unwrap() - after).abs() < 1e-9);
}

#[test]
fn an_orbital_session_outlives_its_planned_absence_and_not_more() {
    use crate::membership::profile::Profile;
    let orbit = Profile::Orbital {
        period_ms: 90 * 60_000,
        window_ms: 20 * 60_000,
        epoch_ms: at(0).as_millis(),
    };
    let mut r = registry(Config::new());
    let (_, p) = key(1);
    // Heard all through its first pass, declaring its orbit.
    for i in 0..60 {
        send(
            &mut r,
            1,
            i * 20,
            Heartbeat {
                profile: Some(orbit),
                ..full()
            },
        )
        .unwrap();
    }
    // Out of contact from minute 20 to 90: still a session at minute 85 (a continuous node
    // would have expired at minute 22).
    r.on_tick(at(85 * 60));
    assert!(r.has_session(&p));
    // Back at minute 90: its uptime is judged against its contact time.
    send(&mut r, 1, 90 * 60, full()).unwrap();
    assert!(r.uptime_of(&p, at(90 * 60)).unwrap() > 0.95);
    // Silent through its next pass as well: gone two minutes into that pass... (the next
    // deadline is two minutes after its last heartbeat while in contact).
    r.on_tick(at(93 * 60));
    assert!(!r.has_session(&p), "absent beyond its plan");
}

#[test]
fn an_orbital_node_back_from_its_planned_absence_is_admitted_at_every_pass() {
    use crate::membership::probe::Measurement;
    use crate::membership::profile::Profile;
    // A 10-minute pass every 90 minutes, for two days: the admission bar rises to 80, and the
    // first heartbeat of each pass is scored with the absence excused, as the session records
    // it (it used to be scored as a continuous node's: ~0.1 uptime, refused at each pass).
    let orbit = Profile::Orbital {
        period_ms: 90 * 60_000,
        window_ms: 10 * 60_000,
        epoch_ms: at(0).as_millis(),
    };
    let mut r = registry(Config::new());
    let (_, p) = key(1);
    let link = Measurement {
        ok: true,
        bandwidth: 0.8,
        latency: 0.85,
    };
    for pass in 0..32u64 {
        for i in 0..30 {
            let hb = Heartbeat {
                profile: Some(orbit),
                ..full()
            };
            let t = pass * 90 * 60 + i * 20;
            let a = send(&mut r, 1, t, hb).unwrap_or_else(|e| panic!("pass {pass}: {e:?}"));
            if a.probe {
                r.on_probe(&p, link);
            }
        }
        assert!(r.uptime_of(&p, at(pass * 90 * 60 + 580)).unwrap() > 0.9);
    }
}
