//! A node's [`Pool`] and indexers' [`Registry`]s wired together in memory (no network): the
//! two state machines agree on the wire semantics (signatures, steady state, resync, SWIM).

use std::collections::HashMap;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

use crate::membership::heartbeat::Signer;
use crate::membership::indexer::{self, Registry};
use crate::membership::node::{Action, Config, Pool};
use crate::membership::swim::Kind;
use crate::membership::testutil::key;
use crate::membership::{PeerInfo, Timestamp};

const T0: u64 = 1_800_000_000_000;

fn at(secs: u64) -> Timestamp {
    Timestamp::from_millis(T0 + secs * 1000)
}

fn addr(n: u8) -> Multiaddr {
    format!("/ip4/10.9.{n}.1/tcp/4001").parse().unwrap()
}

struct Net {
    pool: Pool,
    node: PeerId,
    indexers: HashMap<PeerId, Registry>,
    /// Wire sizes of every heartbeat sent.
    sizes: Vec<usize>,
}

impl Net {
    fn new(n_indexers: u8) -> Net {
        let (sk, node) = key(1);
        let mut indexers = HashMap::new();
        let mut seeds = Vec::new();
        for i in 0..n_indexers {
            let (_, p) = key(50 + i);
            indexers.insert(
                p,
                Registry::new(indexer::Config::new().with_rng_seed(1), p, at(0)),
            );
            seeds.push(PeerInfo::new(p, vec![addr(50 + i)]));
        }
        // Plain (non-seed) members, so that suspicion applies to them.
        let cfg = Config::new()
            .with_rng_seed(2)
            .with_challenge_max_interval(1);
        let mut pool = Pool::new(cfg, Signer::new(sk), at(0));
        for s in seeds {
            assert!(pool.add_indexer(at(0), s));
        }
        pool.set_name("flow-node");
        pool.set_record(vec![42; 300], at(100_000));
        Net {
            pool,
            node,
            indexers,
            sizes: Vec::new(),
        }
    }

    /// One tick at `t`: deliver every heartbeat, feed responses back; `down` indexers fail.
    fn tick(&mut self, t: u64, down: &[PeerId]) -> Vec<Action> {
        let mut rest = Vec::new();
        let actions = self.pool.on_tick(at(t));
        for a in actions {
            let Action::SendHeartbeat { peer, request, .. } = a else {
                rest.push(a);
                continue;
            };
            let bytes = request.to_bytes();
            self.sizes.push(bytes.len());
            let decoded =
                crate::membership::heartbeat::SignedHeartbeat::from_bytes(&bytes).unwrap();
            let outcome = match self.indexers.get_mut(&peer) {
                Some(r) if !down.contains(&peer) => {
                    r.on_heartbeat(at(t), self.node, &[addr(1)], &decoded).ok()
                }
                _ => None,
            };
            let more = match outcome {
                Some(acc) => {
                    self.pool
                        .on_response(at(t), peer, &acc.response, Duration::from_millis(5))
                }
                None => self.pool.on_failure(at(t), peer),
            };
            rest.extend(more);
        }
        rest
    }
}

#[test]
fn heartbeats_settle_into_the_steady_state_and_resync_after_an_indexer_restart() {
    let mut net = Net::new(1);
    net.tick(0, &[]);
    net.tick(20, &[]);
    net.tick(40, &[]);
    let full = net.sizes[0];
    let steady = *net.sizes.last().unwrap();
    assert!(full > 300 && steady < 90, "full {full} steady {steady}");
    let idx = *net.indexers.keys().next().unwrap();
    assert_eq!(
        net.indexers[&idx].record_of(&net.node),
        Some(&[42u8; 300][..])
    );

    // The indexer restarts (state lost): the next steady heartbeat gets `resync`, the one after
    // carries the record again.
    net.indexers
        .insert(idx, Registry::new(indexer::Config::new(), idx, at(50)));
    net.tick(60, &[]);
    assert!(net.indexers[&idx].record_of(&net.node).is_none());
    net.tick(80, &[]);
    assert_eq!(
        net.indexers[&idx].record_of(&net.node),
        Some(&[42u8; 300][..])
    );
    // born_at changed: the node noticed (penalty), the challenge answers still credit it.
    let s = net.pool.score(&idx).unwrap();
    assert_eq!(s.born_at_changes, 1);
    assert!(s.challenge_correct >= 4, "{s:?}");
}

#[test]
fn a_silent_indexer_is_suspected_then_its_refutation_clears_it() {
    let mut net = Net::new(3);
    net.tick(0, &[]);
    let victim = *net.pool.indexers().first().unwrap();
    let acts = net.tick(20, &[victim]);
    assert!(net.pool.is_suspected(&victim));
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::IndirectProbe { .. })));
    // Voters say it is reachable; it answers the next heartbeat, which carried
    // `suspected_incarnation`: the indexer refutes with a higher incarnation.
    let before = net.indexers[&victim].incarnation();
    for a in acts {
        if let Action::IndirectProbe { target, voters } = a {
            for v in voters {
                net.pool
                    .on_indirect_probe_answer(at(21), target.peer, v, true);
            }
        }
    }
    net.tick(40, &[]);
    assert!(!net.pool.is_suspected(&victim));
    assert_eq!(net.indexers[&victim].incarnation(), before + 1);
    // Only the victim speaks for itself: its refutation reaches other heartbeating nodes in
    // its own responses; the other indexers do not relay it (a relayed `alive` would let
    // anyone clear anyone's suspicion).
    net.tick(60, &[]);
    let other = net
        .pool
        .indexers()
        .into_iter()
        .find(|p| *p != victim)
        .unwrap();
    let relay = net.indexers.get_mut(&other).unwrap();
    let (sk, _) = key(9);
    let probe = Signer::new(sk).sign(
        crate::membership::heartbeat::Heartbeat {
            seq: 1,
            timestamp: at(61),
            ..Default::default()
        },
        &other,
    );
    let resp = relay
        .on_heartbeat(at(61), key(9).1, &[], &probe)
        .unwrap()
        .response;
    assert!(
        !resp
            .events
            .iter()
            .any(|e| e.peer == victim && e.kind == Kind::Alive),
        "not relayed by another indexer"
    );
}
