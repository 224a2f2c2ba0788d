//! Pool rules, one test per rule, with an explicit clock.

use std::time::Duration;

use libp2p::PeerId;

use super::*;
use crate::membership::heartbeat::{ChallengeEntry, DhtAnswer, HeartbeatResponse};
use crate::membership::select::Candidate;
use crate::membership::swim::Kind;
use crate::membership::testutil::{key, peer};

const T0: u64 = 1_800_000_000_000;

fn at(secs: u64) -> Timestamp {
    Timestamp::from_millis(T0 + secs * 1000)
}

fn info(p: u8) -> PeerInfo {
    PeerInfo::new(
        peer(p),
        vec![format!("/ip4/10.0.{p}.1/tcp/4001").parse().unwrap()],
    )
}

fn signer() -> Signer {
    Signer::new(key(100).0)
}

fn cfg() -> Config {
    Config::new()
        .with_rng_seed(7)
        .with_challenge_max_interval(1_000_000)
}

/// A pool whose members are `members` (non-seed), all sent their first heartbeat at t=0.
fn pool_with(cfg: Config, members: &[u8]) -> Pool {
    let mut p = Pool::new(cfg, signer(), at(0));
    for m in members {
        assert!(p.add_indexer(at(0), info(*m)));
    }
    p
}

fn sends(actions: &[Action]) -> Vec<(PeerId, Heartbeat)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendHeartbeat { peer, request, .. } => {
                Some((*peer, request.heartbeat().clone()))
            }
            _ => None,
        })
        .collect()
}

fn hb_to(actions: &[Action], p: PeerId) -> Heartbeat {
    sends(actions)
        .into_iter()
        .find(|(q, _)| *q == p)
        .map(|(_, h)| h)
        .expect("heartbeat sent")
}

/// A plausible, healthy response.
fn good(born: u64) -> HeartbeatResponse {
    HeartbeatResponse {
        fill_rate: 0.002,
        peer_count: 1,
        max_nodes: 500,
        born_at: Timestamp::from_millis(born),
        incarnation: 1,
        ..Default::default()
    }
}

/// A response that fails every check it can.
fn bad(born: u64) -> HeartbeatResponse {
    HeartbeatResponse {
        fill_rate: 0.9,
        peer_count: 1,
        max_nodes: 10,
        born_at: Timestamp::from_millis(born),
        ..Default::default()
    }
}

const FAST: Duration = Duration::from_millis(10);

#[test]
fn seeds_are_heartbeated_at_once_and_then_every_interval() {
    let mut p = Pool::new(cfg().with_seeds(vec![info(1), info(2)]), signer(), at(0));
    assert_eq!(sends(&p.on_tick(at(0))).len(), 2);
    assert!(sends(&p.on_tick(at(1))).is_empty(), "in flight");
    for s in [1, 2] {
        p.on_response(at(1), peer(s), &good(5), FAST);
    }
    assert!(sends(&p.on_tick(at(19))).is_empty(), "not due yet");
    assert_eq!(sends(&p.on_tick(at(20))).len(), 2);
    assert!(p.is_seed(&peer(1)));
}

#[test]
fn seeds_are_trimmed_to_max_pool() {
    let seeds = (1..=7).map(info).collect();
    let p = Pool::new(
        cfg().with_seeds(seeds).with_pool_size(1, 3),
        signer(),
        at(0),
    );
    assert_eq!(p.indexers().len(), 3);
}

#[test]
fn steady_heartbeat_omits_record_and_pool_list_once_acknowledged() {
    let mut p = pool_with(cfg(), &[1]);
    p.set_name("n1");
    p.set_record(vec![9; 200], at(3600));
    let first = hb_to(&p.on_tick(at(0)), peer(1));
    assert_eq!(first.record.as_deref(), Some(&[9u8; 200][..]));
    assert_eq!(first.name.as_deref(), Some("n1"));
    assert_eq!(first.indexers_bound, Some(vec![peer(1)]));
    p.on_response(at(0), peer(1), &good(5), FAST);
    let steady = hb_to(&p.on_tick(at(20)), peer(1));
    assert_eq!(
        (steady.record, steady.name, steady.indexers_bound),
        (None, None, None)
    );
    assert!(steady.seq > first.seq);
    // A changed record is sent again, once.
    p.on_response(at(20), peer(1), &good(5), FAST);
    p.set_record(vec![8; 200], at(3600));
    assert!(hb_to(&p.on_tick(at(40)), peer(1)).record.is_some());
    p.on_response(at(40), peer(1), &good(5), FAST);
    assert!(hb_to(&p.on_tick(at(60)), peer(1)).record.is_none());
}

#[test]
fn record_is_resent_near_expiry_and_on_resync_or_failure() {
    let mut p = pool_with(cfg(), &[1]);
    p.set_record(vec![1; 10], at(100));
    p.on_tick(at(0));
    p.on_response(at(0), peer(1), &good(5), FAST);
    assert!(hb_to(&p.on_tick(at(20)), peer(1)).record.is_none());
    p.on_response(at(20), peer(1), &good(5), FAST);
    // 60 s margin: at t=40 the record expires within 60 s.
    assert!(hb_to(&p.on_tick(at(40)), peer(1)).record.is_some());
    p.set_record(vec![1; 10], at(10_000));
    p.on_response(
        at(40),
        peer(1),
        &HeartbeatResponse {
            resync: true,
            ..good(5)
        },
        FAST,
    );
    let h = hb_to(&p.on_tick(at(60)), peer(1));
    assert!(
        h.record.is_some() && h.indexers_bound.is_some(),
        "resync asks for everything"
    );
    p.on_failure(at(61), peer(1));
    assert!(
        hb_to(&p.on_tick(at(80)), peer(1)).record.is_some(),
        "after a failure we resend"
    );
}

#[test]
fn own_peer_id_challenge_is_counted_and_credited_only_when_fresh() {
    let mut p = pool_with(
        Config::new()
            .with_rng_seed(1)
            .with_challenge_max_interval(1),
        &[1, 2],
    );
    let h = hb_to(&p.on_tick(at(0)), peer(1));
    assert!(h.challenge_self);
    let pos = p.indexers().iter().position(|q| *q == peer(2)).unwrap() as u8;
    assert_eq!(
        h.challenge_refs,
        vec![pos],
        "other pool members by position, never the target"
    );
    assert_eq!(h.indexers_bound, Some(p.indexers()));
    let me = p.local_peer_id();
    let ok = HeartbeatResponse {
        challenges: vec![ChallengeEntry {
            peer: me,
            found: true,
            last_seen: at(0),
        }],
        ..good(5)
    };
    p.on_response(at(0), peer(1), &ok, FAST);
    hb_to(&p.on_tick(at(20)), peer(1));
    let stale = HeartbeatResponse {
        challenges: vec![ChallengeEntry {
            peer: me,
            found: true,
            last_seen: at(0),
        }],
        ..good(5)
    };
    p.on_response(at(200), peer(1), &stale, FAST);
    let s = p.score(&peer(1)).unwrap();
    assert_eq!((s.challenge_total, s.challenge_correct), (2, 1));
}

#[test]
fn dht_challenge_every_nth_batch_and_payload_verified() {
    let verifier: DhtVerifier =
        std::sync::Arc::new(|did: &str, payload: &[u8], _now: Timestamp| payload == did.as_bytes());
    let mut p = pool_with(
        Config::new()
            .with_rng_seed(1)
            .with_challenge_max_interval(1)
            .with_dht_challenge_every(2),
        &[1],
    )
    .with_dht_verifier(verifier);
    p.set_did("did:key:zA");
    let h1 = hb_to(&p.on_tick(at(0)), peer(1));
    assert_eq!(h1.challenge_did, None, "first batch");
    p.on_response(at(0), peer(1), &good(5), FAST);
    let h2 = hb_to(&p.on_tick(at(20)), peer(1));
    assert_eq!(h2.challenge_did.as_deref(), Some("did:key:zA"));
    // `found` with a payload that does not verify is a failure (Go never checked, B19).
    let lie = HeartbeatResponse {
        dht: Some(DhtAnswer {
            found: true,
            payload: b"junk".to_vec(),
        }),
        ..good(5)
    };
    p.on_response(at(20), peer(1), &lie, FAST);
    p.on_tick(at(40));
    p.on_response(at(40), peer(1), &good(5), FAST);
    p.on_tick(at(60));
    let truth = HeartbeatResponse {
        dht: Some(DhtAnswer {
            found: true,
            payload: b"did:key:zA".to_vec(),
        }),
        ..good(5)
    };
    p.on_response(at(60), peer(1), &truth, FAST);
    let s = p.score(&peer(1)).unwrap();
    assert_eq!((s.dht_checked, s.dht_success), (2, 1));
}

/// Drive `peer(1)` with bad responses (born_at changing each time) for `secs` seconds.
fn degrade(p: &mut Pool, secs: u64) -> Vec<Action> {
    let mut all = Vec::new();
    let mut t = 0;
    while t <= secs {
        let acts = p.on_tick(at(t));
        let targets: Vec<PeerId> = sends(&acts).into_iter().map(|(q, _)| q).collect();
        all.extend(acts);
        for q in targets {
            let r = if q == peer(1) { bad(1000 + t) } else { good(5) };
            all.extend(p.on_response(at(t), q, &r, Duration::from_secs(5)));
        }
        t += 20;
    }
    all
}

#[test]
fn low_score_indexer_is_evicted_after_grace_and_replaced() {
    let mut p = pool_with(cfg(), &[1, 2]);
    let acts = degrade(&mut p, 200);
    let evicted = acts.iter().find_map(|a| match a {
        Action::Evict {
            peer: q,
            reason: EvictReason::LowScore { score, threshold },
        } if *q == peer(1) => Some((*score, *threshold)),
        _ => None,
    });
    let (score, threshold) = evicted.expect("evicted on score");
    assert!(
        score < threshold && threshold > 20.0 && threshold < 21.0,
        "{score} {threshold}"
    );
    assert!(acts.iter().any(
        |a| matches!(a, Action::RequestCandidates { from, count: 6 } if from == &vec![peer(2)])
    ));
    assert!(!p.contains(&peer(1)));
}

#[test]
fn no_score_eviction_before_grace() {
    let mut p = pool_with(cfg(), &[1, 2]);
    let acts = degrade(&mut p, 100); // 100 s online < 120 s grace
    assert!(!acts.iter().any(|a| matches!(a, Action::Evict { .. })));
    assert!(p.score(&peer(1)).unwrap().value < 20.0);
}

#[test]
fn last_indexer_is_never_evicted_on_score() {
    let mut p = pool_with(cfg(), &[1]);
    let acts = degrade(&mut p, 600);
    assert!(!acts.iter().any(|a| matches!(a, Action::Evict { .. })));
    assert!(p.contains(&peer(1)));
    assert_eq!(p.score(&peer(1)).unwrap().value, 0.0);
}

#[test]
fn eviction_threshold_is_configurable() {
    // Good responses (score 80–100) clear the default bar of 20; the first one (uptime not yet
    // established) misses a configured 95.
    let run = |cfg: Config| {
        let mut p = pool_with(cfg.with_eviction_grace(Duration::ZERO), &[1, 2]);
        let mut acts = Vec::new();
        for t in [0, 20, 40] {
            let out = p.on_tick(at(t));
            for (q, _) in sends(&out) {
                acts.extend(p.on_response(at(t), q, &good(5), FAST));
            }
        }
        acts
    };
    assert!(!run(cfg()).iter().any(|a| matches!(a, Action::Evict { .. })));
    let acts = run(cfg().with_eviction_threshold(95.0, 95.0));
    let evicted: Vec<f64> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Evict {
                reason: EvictReason::LowScore { threshold, .. },
                ..
            } => Some(*threshold),
            _ => None,
        })
        .collect();
    assert_eq!(
        evicted,
        vec![95.0],
        "one evicted at the configured bar, the last one kept"
    );
}

#[test]
fn seeds_are_never_evicted_on_score_or_failure() {
    let mut p = Pool::new(cfg().with_seeds(vec![info(1)]), signer(), at(0));
    p.add_indexer(at(0), info(2));
    let acts = degrade(&mut p, 600);
    assert!(!acts.iter().any(|a| matches!(a, Action::Evict { .. })));
    for s in 0..20 {
        p.on_failure(at(700 + s * 20), peer(1));
    }
    assert!(p.contains(&peer(1)), "a failing seed stays in the pool");
    // ... but its failures are seen: it is suspected (before the fix a crashed seed was never
    // suspected, so its nodes never learnt of the crash), and its next answer clears it.
    assert!(p.is_suspected(&peer(1)));
    p.on_tick(at(1200));
    p.on_response(at(1200), peer(1), &good(5), FAST);
    assert!(!p.is_suspected(&peer(1)));
}

#[test]
fn first_failure_suspects_and_asks_voters_other_than_the_target() {
    let mut p = pool_with(cfg(), &[1, 2, 3]);
    p.on_tick(at(0));
    let acts = p.on_failure(at(1), peer(1));
    assert!(p.is_suspected(&peer(1)));
    let voters = acts.iter().find_map(|a| match a {
        Action::IndirectProbe { target, voters } if target.peer == peer(1) => Some(voters.clone()),
        _ => None,
    });
    let voters = voters.expect("indirect probe");
    assert_eq!(voters.len(), 2);
    assert!(!voters.contains(&peer(1)));
    // The suspect event rides on the next heartbeats; the suspected indexer is asked to refute.
    for q in [2, 3] {
        p.on_response(at(1), peer(q), &good(5), FAST);
    }
    let next = p.on_tick(at(20));
    let h1 = hb_to(&next, peer(1));
    assert_eq!(h1.suspected_incarnation, Some(0));
    assert!(h1
        .events
        .iter()
        .any(|e| e.kind == Kind::Suspect && e.peer == peer(1)));
}

#[test]
fn a_seed_failing_every_tick_asks_the_voters_once_per_interval() {
    // After a partition a dead seed is retried every tick; each failure used to start a new
    // indirect-probe round, over the voters' limit, and they banned the node.
    let mut p = Pool::new(cfg().with_seeds(vec![info(1)]), signer(), at(0));
    p.add_indexer(at(0), info(2));
    p.add_indexer(at(0), info(3));
    let mut rounds = 0;
    for s in 0..120 {
        let acts = p.on_failure(at(s), peer(1));
        rounds += acts
            .iter()
            .filter(|a| matches!(a, Action::IndirectProbe { .. }))
            .count();
        // Voters answer "unreachable" at once: the seed is declared dead but stays.
        for v in [2, 3] {
            p.on_indirect_probe_answer(at(s), peer(1), peer(v), false);
        }
    }
    let interval = cfg().interval.as_secs();
    assert!(rounds >= 1, "the seed is probed");
    assert!(
        rounds as u64 <= 120 / interval + 1,
        "{rounds} rounds in 120 s (interval {interval} s)"
    );
    assert!(p.contains(&peer(1)), "a seed stays");
}

#[test]
fn indirect_probe_majority_unreachable_evicts_and_replaces() {
    let mut p = pool_with(cfg(), &[1, 2, 3]);
    p.on_tick(at(0));
    p.on_failure(at(1), peer(1));
    assert!(p
        .on_indirect_probe_answer(at(2), peer(1), peer(2), false)
        .is_empty());
    assert!(
        p.on_indirect_probe_answer(at(2), peer(1), peer(9), false)
            .is_empty(),
        "not a voter"
    );
    let acts = p.on_indirect_probe_answer(at(3), peer(1), peer(3), true);
    // 1 of 2 reachable is not a strict majority: dead.
    assert!(acts.contains(&Action::Evict {
        peer: peer(1),
        reason: EvictReason::Dead
    }));
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::RequestCandidates { .. })));
}

#[test]
fn indirect_probe_reachable_keeps_it_until_suspect_timeout() {
    let mut p = pool_with(cfg(), &[1, 2, 3]);
    p.on_tick(at(0));
    p.on_failure(at(0), peer(1));
    p.on_indirect_probe_answer(at(1), peer(1), peer(2), true);
    assert!(p
        .on_indirect_probe_answer(at(1), peer(1), peer(3), true)
        .is_empty());
    assert!(p.contains(&peer(1)) && p.is_suspected(&peer(1)));
    assert!(
        p.on_failure(at(179), peer(1)).is_empty(),
        "still within 180 s"
    );
    let acts = p.on_failure(at(180), peer(1));
    assert!(acts.contains(&Action::Evict {
        peer: peer(1),
        reason: EvictReason::Dead
    }));
}

#[test]
fn the_indexers_own_answer_refutes_its_suspicion_and_nobody_else_speaks_for_it() {
    let mut p = pool_with(cfg(), &[1, 2]);
    p.on_tick(at(0));
    p.on_failure(at(0), peer(1));
    p.on_response(at(0), peer(2), &good(5), FAST);
    p.on_tick(at(20));
    p.on_response(
        at(21),
        peer(1),
        &HeartbeatResponse {
            incarnation: 4,
            ..good(5)
        },
        FAST,
    );
    p.on_response(at(21), peer(2), &good(5), FAST);
    assert!(!p.is_suspected(&peer(1)));
    // The node does not vouch for peer(1) to others: a relayed `alive` would be refused.
    let next = p.on_tick(at(40));
    let h = hb_to(&next, peer(2));
    assert!(!h
        .events
        .iter()
        .any(|e| e.kind == Kind::Alive && e.peer == peer(1)));
}

#[test]
fn a_relayed_alive_event_cannot_clear_someone_elses_suspicion() {
    let mut p = pool_with(cfg(), &[1, 2]);
    p.on_tick(at(0));
    p.on_failure(at(0), peer(1));
    let alive = |inc| swim::MemberEvent {
        kind: Kind::Alive,
        peer: peer(1),
        incarnation: inc,
        hops_left: 1,
    };
    // peer(2) (or anyone) relays "peer(1) is alive": refused.
    p.on_response(
        at(1),
        peer(2),
        &HeartbeatResponse {
            events: vec![alive(3)],
            ..good(5)
        },
        FAST,
    );
    assert!(
        p.is_suspected(&peer(1)),
        "a third party cannot refute on peer(1)'s behalf"
    );
    let next = p.on_tick(at(20));
    assert!(
        !hb_to(&next, peer(2))
            .events
            .iter()
            .any(|e| e.peer == peer(1) && e.kind == Kind::Alive),
        "nor is it forwarded"
    );
    // peer(1)'s own refutation, in its own response, clears it.
    p.on_response(
        at(21),
        peer(1),
        &HeartbeatResponse {
            events: vec![alive(3)],
            ..good(5)
        },
        FAST,
    );
    assert!(!p.is_suspected(&peer(1)));
}

#[test]
fn an_event_with_an_implausible_incarnation_is_dropped() {
    let mut p = pool_with(cfg(), &[1, 2]);
    p.on_tick(at(0));
    let poison = swim::MemberEvent {
        kind: Kind::Dead,
        peer: peer(7),
        incarnation: u64::MAX,
        hops_left: 2,
    };
    p.on_response(
        at(1),
        peer(2),
        &HeartbeatResponse {
            events: vec![poison],
            ..good(5)
        },
        FAST,
    );
    // Had it been queued, every later genuine event about peer(7) would look older.
    let genuine = swim::MemberEvent {
        kind: Kind::Suspect,
        peer: peer(7),
        incarnation: 5,
        hops_left: 2,
    };
    p.on_response(
        at(2),
        peer(2),
        &HeartbeatResponse {
            events: vec![genuine],
            ..good(5)
        },
        FAST,
    );
    let next = p.on_tick(at(20));
    let evs: Vec<_> = sends(&next)
        .into_iter()
        .flat_map(|(_, h)| h.events)
        .filter(|e| e.peer == peer(7))
        .collect();
    assert!(
        evs.iter().all(|e| e.incarnation == 5) && !evs.is_empty(),
        "{evs:?}"
    );
}

#[test]
fn last_indexer_dies_only_after_timeout_then_seeds_return() {
    let mut p = Pool::new(
        cfg().with_seeds(vec![info(9)]).with_pool_size(1, 1),
        signer(),
        at(0),
    );
    // The seed is replaced by a non-seed as sole member, to exercise the non-seed path.
    p.entries.clear();
    p.add_indexer(at(0), info(1));
    p.on_tick(at(0));
    let a = p.on_failure(at(0), peer(1));
    assert!(
        !a.iter().any(|x| matches!(x, Action::IndirectProbe { .. })),
        "no voters in a pool of one"
    );
    assert!(p.on_failure(at(100), peer(1)).is_empty());
    let acts = p.on_failure(at(180), peer(1));
    assert!(acts.contains(&Action::Evict {
        peer: peer(1),
        reason: EvictReason::Dead
    }));
    assert_eq!(p.indexers(), vec![peer(9)], "seeds re-added");
    assert!(p.is_seed(&peer(9)));
}

#[test]
fn empty_pool_without_seeds_discovers_with_backoff() {
    let mut p = Pool::new(
        cfg().with_discovery_delay(Duration::from_secs(10_000)),
        signer(),
        at(0),
    );
    let count = |acts: &[Action]| {
        acts.iter()
            .filter(|a| matches!(a, Action::DiscoverIndexers { .. }))
            .count()
    };
    assert_eq!(
        count(&p.on_tick(at(0))),
        0,
        "first retry after the initial delay"
    );
    assert_eq!(count(&p.on_tick(at(10))), 1);
    assert_eq!(count(&p.on_tick(at(29))), 0, "delay doubled to 20 s");
    assert_eq!(count(&p.on_tick(at(30))), 1);
}

#[test]
fn suggestions_fill_free_room_only_with_routable_peers() {
    let mut p = pool_with(cfg().with_pool_size(1, 3), &[1]);
    p.on_tick(at(0));
    let lo = PeerInfo::new(peer(5), vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()]);
    let r = HeartbeatResponse {
        suggestions: vec![lo, info(2), info(3), info(4)],
        ..good(5)
    };
    p.on_response(at(0), peer(1), &r, FAST);
    let members: std::collections::HashSet<PeerId> = p.indexers().into_iter().collect();
    assert_eq!(members, [peer(1), peer(2), peer(3)].into_iter().collect());
    let new = p.on_tick(at(1));
    assert_eq!(sends(&new).len(), 2, "new members are heartbeated at once");
}

#[test]
fn migration_evicts_a_non_seed_when_others_remain_and_takes_the_suggestion() {
    let mut p = pool_with(cfg().with_pool_size(1, 2), &[1, 2]);
    p.on_tick(at(0));
    let r = HeartbeatResponse {
        suggest_migrate: true,
        suggestions: vec![info(3)],
        fill_rate: 0.9,
        ..good(5)
    };
    let acts = p.on_response(at(0), peer(1), &r, FAST);
    assert!(acts.contains(&Action::Evict {
        peer: peer(1),
        reason: EvictReason::Migrated
    }));
    assert!(p.contains(&peer(3)) && p.contains(&peer(2)));
}

#[test]
fn migration_is_refused_when_it_would_leave_too_few_and_seeds_only_lose_stickiness() {
    let mut p = pool_with(cfg().with_pool_size(1, 3), &[1]);
    p.on_tick(at(0));
    let r = HeartbeatResponse {
        suggest_migrate: true,
        ..good(5)
    };
    assert!(p.on_response(at(0), peer(1), &r, FAST).is_empty());
    assert!(p.contains(&peer(1)));
    let mut s = Pool::new(cfg().with_seeds(vec![info(7)]), signer(), at(0));
    s.add_indexer(at(0), info(8));
    s.on_tick(at(0));
    s.on_response(
        at(0),
        peer(7),
        &HeartbeatResponse {
            suggest_migrate: true,
            ..good(5)
        },
        FAST,
    );
    assert!(s.contains(&peer(7)) && !s.is_seed(&peer(7)));
}

#[test]
fn pending_callers_are_handed_to_the_dtn_layer() {
    let mut p = pool_with(cfg(), &[1]);
    p.set_pending_contact(vec![peer(40)]);
    let h = hb_to(&p.on_tick(at(0)), peer(1));
    assert_eq!(h.pending_contact, vec![peer(40)]);
    let acts = p.on_response(
        at(0),
        peer(1),
        &HeartbeatResponse {
            pending_callers: vec![peer(41)],
            ..good(5)
        },
        FAST,
    );
    assert!(acts.contains(&Action::PendingCallers {
        via: peer(1),
        callers: vec![peer(41)]
    }));
}

#[test]
fn referent_is_the_highest_scored_member() {
    let mut p = pool_with(cfg(), &[1, 2]);
    p.on_tick(at(0));
    p.on_response(at(0), peer(1), &good(5), Duration::from_secs(3));
    p.on_response(at(0), peer(2), &good(5), FAST);
    let acts = p.on_tick(at(20));
    assert!(hb_to(&acts, peer(2)).referent);
    assert!(!hb_to(&acts, peer(1)).referent);
}

#[test]
fn witnesses_are_queried_and_tallied() {
    let mut p = pool_with(cfg(), &[1]);
    p.on_tick(at(0));
    let r = HeartbeatResponse {
        witnesses: vec![info(20), info(21)],
        ..good(5)
    };
    let acts = p.on_response(at(0), peer(1), &r, FAST);
    let query = acts
        .iter()
        .find_map(|a| match a {
            Action::QueryWitnesses {
                indexer,
                query,
                witnesses,
            } if *indexer == peer(1) && witnesses.len() == 2 => Some(*query),
            _ => None,
        })
        .expect("witnesses queried");
    let agree = WitnessReport {
        seen: true,
        born_at: Timestamp::from_millis(5),
        fill_rate: 0.0,
        score: 80.0,
    };
    p.on_witness_answer(at(1), peer(1), query, peer(20), Some(agree.clone()));
    // Someone not asked, and a second answer from the same witness, are ignored.
    p.on_witness_answer(at(1), peer(1), query, peer(22), Some(agree.clone()));
    p.on_witness_answer(at(1), peer(1), query, peer(20), Some(agree));
    assert_eq!(
        p.score(&peer(1)).unwrap().witness_checked,
        0,
        "tallied only when all asked answered"
    );
    p.on_witness_answer(at(1), peer(1), query, peer(21), None);
    let s = p.score(&peer(1)).unwrap();
    assert_eq!((s.witness_checked, s.witness_consistent), (2, 1));
    // The node's own witness answer reflects what it saw.
    let rep = p.witness_report(&peer(1));
    assert!(rep.seen && rep.born_at == Timestamp::from_millis(5));
    assert!(!p.witness_report(&peer(50)).seen);
}

#[test]
fn late_witness_answers_of_an_older_round_are_not_mixed_into_the_new_one() {
    let mut p = pool_with(cfg(), &[1]);
    p.on_tick(at(0));
    let r = HeartbeatResponse {
        witnesses: vec![info(20)],
        ..good(5)
    };
    let first = p.on_response(at(0), peer(1), &r, FAST);
    p.on_tick(at(20));
    let second = p.on_response(at(20), peer(1), &r, FAST);
    let id = |acts: &[Action]| {
        acts.iter()
            .find_map(|a| match a {
                Action::QueryWitnesses { query, .. } => Some(*query),
                _ => None,
            })
            .unwrap()
    };
    let (old, new) = (id(&first), id(&second));
    assert_ne!(old, new);
    let disagree = WitnessReport {
        seen: true,
        born_at: Timestamp::from_millis(999),
        fill_rate: 0.9,
        score: 10.0,
    };
    p.on_witness_answer(at(21), peer(1), old, peer(20), Some(disagree));
    assert_eq!(
        p.score(&peer(1)).unwrap().witness_checked,
        0,
        "an answer to the old round is dropped"
    );
    let agree = WitnessReport {
        seen: true,
        born_at: Timestamp::from_millis(5),
        fill_rate: 0.0,
        score: 80.0,
    };
    p.on_witness_answer(at(21), peer(1), new, peer(20), Some(agree));
    let s = p.score(&peer(1)).unwrap();
    assert_eq!((s.witness_checked, s.witness_consistent), (1, 1));
}

#[test]
fn pool_events_report_joins_suspicions_clearances_and_evictions_with_reasons() {
    let mut p = pool_with(cfg(), &[1, 2]);
    let mut joined = p.take_events();
    joined.sort_by_key(|e| format!("{e:?}"));
    let mut want = vec![Event::Joined(peer(1)), Event::Joined(peer(2))];
    want.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(joined, want);
    assert!(p.take_events().is_empty(), "nothing changed");
    p.on_tick(at(0));
    p.on_failure(at(0), peer(1));
    assert_eq!(p.take_events(), vec![Event::Suspected(peer(1))]);
    let mut out = Vec::new();
    p.remove(&peer(2), EvictReason::Migrated, &mut out);
    assert_eq!(
        p.take_events(),
        vec![Event::Evicted {
            peer: peer(2),
            reason: EvictReason::Migrated
        }]
    );
}

#[test]
fn replacement_probes_candidates_and_admits_the_best() {
    let mut p = pool_with(cfg().with_pool_size(1, 3), &[1, 2]);
    let mut out = Vec::new();
    p.start_replacement(at(0), 1, &mut out);
    assert!(matches!(
        &out[0],
        Action::RequestCandidates { count: 3, .. }
    ));
    assert!(
        p.on_candidates(at(1), peer(1), vec![info(5), info(2)])
            .is_empty(),
        "waits for every voter"
    );
    let probes = p.on_candidates(at(1), peer(2), vec![info(6)]);
    let probed: Vec<PeerId> = sends(&probes).into_iter().map(|(q, _)| q).collect();
    assert_eq!(probed.len(), 2, "pool members are not candidates");
    p.on_failure(at(2), peer(6));
    p.on_response(at(2), peer(5), &good(5), FAST);
    assert!(p.contains(&peer(5)) && !p.contains(&peer(6)));
}

#[test]
fn replacement_without_good_candidates_falls_back_to_dht() {
    let mut p = pool_with(cfg(), &[1]);
    let mut out = Vec::new();
    p.start_replacement(at(0), 2, &mut out);
    let acts = p.on_candidates(at(1), peer(1), vec![]);
    assert_eq!(acts, vec![Action::DiscoverIndexers { count: 6 }]);
    // Deadline path: a candidate that never answers is dropped at the deadline.
    let mut out = Vec::new();
    p.start_replacement(at(100), 1, &mut out);
    p.on_candidates(at(100), peer(1), vec![info(7)]);
    let acts = p.on_tick(at(111));
    assert!(acts.contains(&Action::DiscoverIndexers { count: 3 }));
    assert!(!p.contains(&peer(7)));
}

#[test]
fn discovered_indexers_fill_room_with_subnet_diversity() {
    let mut p = pool_with(cfg().with_pool_size(1, 3), &[1]);
    let same_subnet = |x: u8| Candidate {
        info: PeerInfo::new(
            peer(x),
            vec![format!("/ip4/192.168.7.{x}/tcp/1").parse().unwrap()],
        ),
        fill_rate: Some(0.1),
    };
    let added = p.on_discovered(
        at(0),
        vec![
            same_subnet(10),
            same_subnet(11),
            Candidate {
                info: info(12),
                fill_rate: None,
            },
        ],
    );
    assert_eq!(added.len(), 2, "one per /24");
    assert_eq!(p.indexers().len(), 3);
    assert!(
        p.on_discovered(
            at(0),
            vec![Candidate {
                info: info(13),
                fill_rate: None
            }]
        )
        .is_empty(),
        "full"
    );
}

#[test]
fn lost_outcome_counts_as_failure_after_three_intervals() {
    let mut p = pool_with(cfg(), &[1, 2]);
    p.on_tick(at(0));
    p.on_response(at(0), peer(2), &good(5), FAST);
    p.on_tick(at(59));
    assert!(!p.is_suspected(&peer(1)));
    p.on_tick(at(60));
    assert!(p.is_suspected(&peer(1)));
}

#[test]
fn candidates_messages_round_trip_and_clamp() {
    let q = CandidatesRequest { count: 50 };
    assert_eq!(CandidatesRequest::decode(&q.encode()).unwrap(), q);
    assert_eq!(q.effective_count(), MAX_CANDIDATES);
    assert_eq!(CandidatesRequest { count: 0 }.effective_count(), 3);
    let r = CandidatesResponse {
        candidates: vec![info(1), info(2)],
    };
    assert_eq!(CandidatesResponse::decode(&r.encode()).unwrap(), r);
    assert!(
        CandidatesResponse::decode(&[1, 11]).is_err(),
        "count above 10"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let known: Vec<PeerInfo> = (1..=12).map(info).collect();
    let a = answer_candidates(&mut rng, &known, &peer(1), CandidatesRequest { count: 20 });
    assert_eq!(a.candidates.len(), 10);
    assert!(
        a.candidates.iter().all(|c| c.peer != peer(1)),
        "never the requester"
    );
}

#[test]
fn below_minimum_pool_looks_for_more_with_backoff() {
    let mut p = pool_with(
        cfg()
            .with_pool_size(3, 5)
            .with_discovery_delay(Duration::from_secs(10_000)),
        &[1],
    );
    let asks = |acts: &[Action]| -> Vec<usize> {
        acts.iter()
            .filter_map(|a| match a {
                Action::DiscoverIndexers { count } => Some(*count),
                _ => None,
            })
            .collect()
    };
    assert!(asks(&p.on_tick(at(0))).is_empty());
    assert_eq!(
        asks(&p.on_tick(at(10))),
        vec![6],
        "two missing, three candidates each"
    );
    assert!(asks(&p.on_tick(at(20))).is_empty(), "backoff doubled");
    p.add_indexer(at(25), info(2));
    p.add_indexer(at(25), info(3));
    assert!(asks(&p.on_tick(at(100))).is_empty(), "at the minimum");
}

#[test]
fn members_view_reflects_state() {
    let mut p = Pool::new(cfg().with_seeds(vec![info(1)]), signer(), at(0));
    p.add_indexer(at(0), info(2));
    p.on_tick(at(0));
    p.on_response(
        at(1),
        peer(1),
        &HeartbeatResponse {
            fill_rate: 0.25,
            peer_count: 125,
            ..good(5)
        },
        FAST,
    );
    p.on_failure(at(1), peer(2));
    let v = p.members();
    let m1 = v.iter().find(|m| m.info.peer == peer(1)).unwrap();
    let m2 = v.iter().find(|m| m.info.peer == peer(2)).unwrap();
    assert!(m1.is_seed && !m1.suspected && m1.score > 0.0 && m1.fill_rate == 0.25);
    assert_eq!(m1.last_seen, Some(at(1)));
    assert!(!m2.is_seed && m2.suspected && m2.last_seen.is_none());
}

#[test]
fn a_clock_off_the_indexers_by_minutes_is_reported_once_each_way() {
    let mut p = pool_with(cfg(), &[1, 2, 3]);
    p.take_events();
    let answer = |p: &mut Pool, t: u64, who: u8, theirs_ms: u64| {
        p.on_response(
            at(t),
            peer(who),
            &HeartbeatResponse {
                now: Timestamp::from_millis(theirs_ms),
                ..good(5)
            },
            FAST,
        )
    };
    // Indexers' clocks are five minutes ahead of ours; one of them is wildly wrong.
    p.on_tick(at(0));
    answer(&mut p, 0, 1, T0 + 300_000);
    answer(&mut p, 0, 2, T0 + 300_000);
    answer(&mut p, 0, 3, T0 - 86_400_000);
    assert_eq!(
        p.clock_offset(),
        Some(-300_000),
        "the median, not the outlier"
    );
    let evs = p.take_events();
    assert_eq!(
        evs,
        vec![Event::ClockOffset {
            offset_ms: -300_000
        }]
    );
    assert!(p.take_events().is_empty(), "reported once");
    // Once our clock is fixed, that is reported too.
    p.on_tick(at(20));
    for who in 1..=3 {
        answer(&mut p, 20, who, T0 + 20_000);
    }
    assert_eq!(p.take_events(), vec![Event::ClockOffset { offset_ms: 0 }]);
}

#[test]
fn an_orbital_node_does_not_hold_its_own_absences_against_its_indexers() {
    use crate::membership::profile::Profile;
    // A 10-minute pass every 90 minutes for a day and a half: the silence of our indexers
    // while we are away by plan is excused (it used to count as their downtime, and they
    // were evicted on score once the eviction bar rose past their ~11 % "uptime").
    let orbit = Profile::Orbital {
        period_ms: 90 * 60_000,
        window_ms: 10 * 60_000,
        epoch_ms: at(0).as_millis(),
    };
    let mut p = pool_with(cfg().with_profile(orbit), &[1, 2]);
    for pass in 0..24u64 {
        for i in 0..30 {
            let t = pass * 90 * 60 + i * 20;
            for (to, _) in sends(&p.on_tick(at(t))) {
                p.on_response(at(t), to, &good(5), FAST);
            }
        }
        let now = at(pass * 90 * 60 + 590);
        for m in [1, 2] {
            assert!(p.contains(&peer(m)), "pass {pass}: indexer {m} evicted");
            let ratio = p.score(&peer(m)).unwrap().uptime.ratio(now);
            assert!(ratio > 0.9, "pass {pass}: uptime {ratio}");
        }
    }
}
