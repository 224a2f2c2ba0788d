//! SWIM membership: alive / suspect / dead events with incarnation numbers, a deduplicating
//! hop-limited piggyback queue, node-side suspicion of an indexer, and indexer-side
//! self-refutation.
//!
//! Events ride on heartbeats and their responses (no dedicated channel). Each transmission
//! consumes one hop: an event created with [`Config::initial_hops`] is forwarded at most that
//! many times along any path, then only applied.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use libp2p::PeerId;

use crate::membership::wire::{DecodeError, Reader, Result, Writer};
use crate::membership::Timestamp;

/// What an event says about a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The peer is alive at this incarnation (a refutation when it follows a suspicion).
    Alive,
    /// Someone failed to reach the peer.
    Suspect,
    /// The peer was declared dead (suspicion timed out or the indirect probe failed).
    Dead,
}

impl Kind {
    /// Priority at equal incarnation: dead > suspect > alive.
    pub fn priority(self) -> u8 {
        match self {
            Kind::Alive => 0,
            Kind::Suspect => 1,
            Kind::Dead => 2,
        }
    }

    fn from_tag(t: u8) -> Result<Kind> {
        match t {
            0 => Ok(Kind::Alive),
            1 => Ok(Kind::Suspect),
            2 => Ok(Kind::Dead),
            _ => Err(DecodeError::Invalid {
                field: "member_event.kind",
            }),
        }
    }
}

/// One SWIM event (Go `MemberEvent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEvent {
    /// What happened.
    pub kind: Kind,
    /// About whom.
    pub peer: PeerId,
    /// The subject's incarnation the event refers to.
    pub incarnation: u64,
    /// How many more times the receiver may forward it.
    pub hops_left: u8,
}

impl MemberEvent {
    /// Encode.
    pub fn encode(&self, w: &mut Writer) {
        w.u8(self.kind.priority());
        w.peer(&self.peer);
        w.varint(self.incarnation);
        w.u8(self.hops_left);
    }

    /// Decode.
    pub fn decode(r: &mut Reader<'_>) -> Result<MemberEvent> {
        let kind = Kind::from_tag(r.u8("member_event.kind")?)?;
        let peer = r.peer("member_event.peer")?;
        let incarnation = r.varint("member_event.incarnation")?;
        let hops_left = r.u8("member_event.hops_left")?;
        if hops_left > MAX_HOPS {
            return Err(DecodeError::TooLong {
                field: "member_event.hops_left",
                got: hops_left.into(),
                max: MAX_HOPS.into(),
            });
        }
        Ok(MemberEvent {
            kind,
            peer,
            incarnation,
            hops_left,
        })
    }

    fn rank(&self) -> (u64, u8) {
        (self.incarnation, self.kind.priority())
    }
}

/// Upper bound on hops accepted from the wire (a peer cannot make an event immortal).
pub const MAX_HOPS: u8 = 8;
/// How far ahead of our clock an incarnation may be. Incarnations start at their owner's
/// start time in ms and a refutation adds one, so a legitimate one is never far ahead of any
/// honest clock; this bound stops a forged event near `u64::MAX` from poisoning deduplication
/// (every later, genuine event would look older) or pushing a refuting indexer to the end of
/// the range.
pub const MAX_INCARNATION_AHEAD: Duration = Duration::from_secs(600);

/// Whether an event received from `from` may be applied or forwarded at `now`:
/// * its incarnation is plausible ([`MAX_INCARNATION_AHEAD`]);
/// * an `alive` event is its subject's own word — a refutation counts only when the subject
///   itself delivers it (in its own heartbeat response), never when a third party relays it,
///   so nobody can clear a suspicion on someone else's behalf.
pub fn admissible(ev: &MemberEvent, from: &PeerId, now: Timestamp) -> bool {
    let plausible = ev.incarnation <= now.plus(MAX_INCARNATION_AHEAD).as_millis();
    plausible && (ev.kind != Kind::Alive || ev.peer == *from)
}
/// Events piggybacked per heartbeat or response (Go `Drain(5)`).
pub const EVENTS_PER_MESSAGE: usize = 5;

/// SWIM parameters.
#[derive(Clone, Debug)]
pub struct Config {
    /// Hops a fresh event may travel. Default 3 (Go's `InitialEventHops` is unknown; 3–4 is
    /// the usual SWIM choice for pools of ≤ 10 indexers).
    pub initial_hops: u8,
    /// Suspect → dead after this long without a successful heartbeat. Default 180 s
    /// (3 × the 60 s recommended interval, ).
    pub suspect_timeout: Duration,
    /// Queue bound; the oldest events are dropped beyond it. Default 256.
    pub max_queue: usize,
    /// How many peers' latest known state is remembered for dedup. Default 4096.
    pub max_known: usize,
}

impl Config {
    /// Defaults as documented on each field.
    pub fn new() -> Self {
        Config {
            initial_hops: 3,
            suspect_timeout: Duration::from_secs(180),
            max_queue: 256,
            max_known: 4096,
        }
    }
    /// Set [`Config::initial_hops`] (capped at [`MAX_HOPS`]).
    pub fn with_initial_hops(mut self, h: u8) -> Self {
        self.initial_hops = h.min(MAX_HOPS);
        self
    }
    /// Set [`Config::suspect_timeout`].
    pub fn with_suspect_timeout(mut self, d: Duration) -> Self {
        self.suspect_timeout = d;
        self
    }
    /// Set [`Config::max_queue`].
    pub fn with_max_queue(mut self, n: usize) -> Self {
        self.max_queue = n.max(1);
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// The piggyback queue (Go `MembershipEventQueue`, body not visible in the digest; this is
/// the behaviour its comments require).
///
/// Dedup: per subject peer we remember the highest `(incarnation, priority)` ever queued; an
/// event is queued only if it is strictly newer. That both merges concurrent events (higher
/// incarnation wins, then dead > suspect > alive) and stops echoes of an already-forwarded
/// event from being queued again.
#[derive(Debug)]
pub struct EventQueue {
    cfg: Config,
    queue: VecDeque<MemberEvent>,
    known: HashMap<PeerId, (u64, u8)>,
    known_order: VecDeque<PeerId>,
}

impl EventQueue {
    /// An empty queue.
    pub fn new(cfg: Config) -> Self {
        EventQueue {
            cfg,
            queue: VecDeque::new(),
            known: HashMap::new(),
            known_order: VecDeque::new(),
        }
    }

    /// A fresh local event with the configured initial hops.
    pub fn originate(&mut self, kind: Kind, peer: PeerId, incarnation: u64) {
        let hops = self.cfg.initial_hops;
        self.add(MemberEvent {
            kind,
            peer,
            incarnation,
            hops_left: hops,
        });
    }

    /// Queue an event for forwarding. Returns whether it was new. Events with no hops left are
    /// remembered (for dedup) but not queued.
    pub fn add(&mut self, ev: MemberEvent) -> bool {
        let rank = ev.rank();
        match self.known.get(&ev.peer) {
            Some(&seen) if seen >= rank => return false,
            Some(_) => {}
            None => {
                self.known_order.push_back(ev.peer);
                if self.known_order.len() > self.cfg.max_known {
                    if let Some(old) = self.known_order.pop_front() {
                        self.known.remove(&old);
                    }
                }
            }
        }
        self.known.insert(ev.peer, rank);
        // A newer event about the same subject supersedes a queued older one.
        self.queue.retain(|q| q.peer != ev.peer);
        if ev.hops_left > 0 {
            self.queue.push_back(ev);
            while self.queue.len() > self.cfg.max_queue {
                self.queue.pop_front();
            }
        }
        true
    }

    /// Take up to `n` events to piggyback. Each returned copy has one hop fewer (this
    /// transmission consumes it); the receiver forwards only if `hops_left > 0`.
    pub fn drain(&mut self, n: usize) -> Vec<MemberEvent> {
        let k = n.min(self.queue.len());
        self.queue
            .drain(..k)
            .map(|mut e| {
                e.hops_left = e.hops_left.saturating_sub(1);
                e
            })
            .collect()
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// No events waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// What a failed heartbeat means for a suspected-or-not indexer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureStep {
    /// First miss: the peer is now suspected (emit `suspect`).
    Suspected,
    /// Still within the suspicion timeout: wait for refutation.
    Waiting,
    /// Suspicion timed out: the peer is dead (emit `dead`, evict).
    Dead,
}

/// Node-side SWIM state about one indexer (the SWIM half of Go's `UptimeTracker`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suspicion {
    /// When suspicion started; `None` = not suspected.
    pub suspected_at: Option<Timestamp>,
    /// Misses since the last success (informational).
    pub consecutive_fails: u32,
    /// Highest incarnation heard from or about the peer.
    pub incarnation: u64,
}

impl Suspicion {
    /// A heartbeat to the peer failed at `now`.
    pub fn on_failure(&mut self, now: Timestamp, timeout: Duration) -> FailureStep {
        self.consecutive_fails = self.consecutive_fails.saturating_add(1);
        match self.suspected_at {
            None => {
                self.suspected_at = Some(now);
                FailureStep::Suspected
            }
            Some(t) if now.since(t) < timeout => FailureStep::Waiting,
            Some(_) => FailureStep::Dead,
        }
    }

    /// A heartbeat succeeded; `incarnation` is the response's, if any. Returns `true` when
    /// this cleared a suspicion (the caller then spreads an `alive` event).
    pub fn on_success(&mut self, incarnation: Option<u64>) -> bool {
        if let Some(i) = incarnation {
            self.incarnation = self.incarnation.max(i);
        }
        self.consecutive_fails = 0;
        self.suspected_at.take().is_some()
    }

    /// An `alive` event about the peer arrived by gossip. A strictly higher incarnation is a
    /// refutation: it clears suspicion. Returns whether it cleared one.
    pub fn on_alive_gossip(&mut self, incarnation: u64) -> bool {
        if incarnation <= self.incarnation {
            return false;
        }
        self.incarnation = incarnation;
        if self.suspected_at.take().is_some() {
            self.consecutive_fails = 0;
            return true;
        }
        false
    }

    /// Whether the peer is currently suspected.
    pub fn is_suspected(&self) -> bool {
        self.suspected_at.is_some()
    }
}

/// The indexer's own incarnation. Starts from its start time in milliseconds so that it never
/// goes backwards across restarts (Go restarts at 0, IX-15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incarnation(u64);

impl Incarnation {
    /// Initial incarnation for a process started at `born_at`.
    pub fn starting_at(born_at: Timestamp) -> Self {
        Incarnation(born_at.as_millis())
    }

    /// Current value.
    pub fn get(self) -> u64 {
        self.0
    }

    /// A peer suspects us at `suspected` (or gossips suspect/dead about us at that
    /// incarnation). If that is not older than our current value, bump above it and return
    /// the new value to announce in an `alive` event.
    pub fn refute(&mut self, suspected: u64) -> Option<u64> {
        if suspected >= self.0 {
            self.0 = suspected.saturating_add(1);
            Some(self.0)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::testutil::peer;

    fn ev(kind: Kind, p: u8, inc: u64, hops: u8) -> MemberEvent {
        MemberEvent {
            kind,
            peer: peer(p),
            incarnation: inc,
            hops_left: hops,
        }
    }

    #[test]
    fn suspicion_becomes_dead_only_after_timeout() {
        let mut s = Suspicion::default();
        let t = Duration::from_secs(180);
        let t0 = Timestamp::from_millis(1_000_000);
        assert_eq!(s.on_failure(t0, t), FailureStep::Suspected);
        assert_eq!(
            s.on_failure(t0.plus(Duration::from_secs(179)), t),
            FailureStep::Waiting
        );
        assert_eq!(
            s.on_failure(t0.plus(Duration::from_secs(180)), t),
            FailureStep::Dead
        );
        assert_eq!(s.consecutive_fails, 3);
    }

    #[test]
    fn success_clears_suspicion_and_keeps_highest_incarnation() {
        let mut s = Suspicion {
            incarnation: 5,
            ..Default::default()
        };
        s.on_failure(Timestamp::from_millis(1), Duration::from_secs(1));
        assert!(s.on_success(Some(3)));
        assert_eq!(s.incarnation, 5);
        assert!(!s.is_suspected());
        assert!(!s.on_success(None), "nothing to clear the second time");
    }

    #[test]
    fn alive_gossip_with_higher_incarnation_refutes() {
        let mut s = Suspicion {
            incarnation: 7,
            ..Default::default()
        };
        s.on_failure(Timestamp::from_millis(1), Duration::from_secs(1));
        assert!(
            !s.on_alive_gossip(7),
            "same incarnation is not a refutation"
        );
        assert!(s.is_suspected());
        assert!(s.on_alive_gossip(8));
        assert!(!s.is_suspected());
        assert_eq!(s.incarnation, 8);
    }

    #[test]
    fn queue_dedups_and_prefers_higher_incarnation_then_priority() {
        let mut q = EventQueue::new(Config::new());
        assert!(q.add(ev(Kind::Alive, 1, 4, 3)));
        assert!(!q.add(ev(Kind::Alive, 1, 4, 3)), "exact duplicate dropped");
        assert!(
            !q.add(ev(Kind::Alive, 1, 3, 3)),
            "older incarnation dropped"
        );
        assert!(
            q.add(ev(Kind::Suspect, 1, 4, 3)),
            "same incarnation, higher priority wins"
        );
        assert!(q.add(ev(Kind::Dead, 1, 4, 3)));
        assert!(!q.add(ev(Kind::Suspect, 1, 4, 3)));
        assert!(
            q.add(ev(Kind::Alive, 1, 5, 3)),
            "refutation at a higher incarnation wins"
        );
        let out = q.drain(10);
        assert_eq!(out.len(), 1, "superseded events are not sent");
        assert_eq!((out[0].kind, out[0].incarnation), (Kind::Alive, 5));
    }

    #[test]
    fn drain_decrements_hops_and_zero_hop_events_are_not_forwarded() {
        let mut q = EventQueue::new(Config::new().with_initial_hops(2));
        q.originate(Kind::Suspect, peer(1), 1);
        let sent = q.drain(5);
        assert_eq!(sent[0].hops_left, 1);
        // A receiver forwards it once more.
        let mut r = EventQueue::new(Config::new());
        assert!(r.add(sent[0].clone()));
        let fwd = r.drain(5);
        assert_eq!(fwd[0].hops_left, 0);
        // The next receiver applies it but queues nothing.
        let mut z = EventQueue::new(Config::new());
        assert!(z.add(fwd[0].clone()));
        assert!(z.is_empty());
        // And an echo of it coming back is recognised as already seen.
        assert!(!r.add(fwd[0].clone()));
    }

    #[test]
    fn drain_takes_at_most_n_and_queue_is_bounded() {
        let mut q = EventQueue::new(Config::new().with_max_queue(3));
        for i in 0..6u8 {
            q.originate(Kind::Alive, peer(i + 10), 1);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.drain(2).len(), 2);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn indexer_refutes_current_or_newer_suspicion_only() {
        let mut inc = Incarnation::starting_at(Timestamp::from_millis(100));
        assert_eq!(inc.refute(99), None);
        assert_eq!(inc.refute(100), Some(101));
        assert_eq!(
            inc.refute(500),
            Some(501),
            "newer value after a restart is also refuted"
        );
        assert_eq!(inc.get(), 501);
    }

    #[test]
    fn event_round_trip_and_hop_bound() {
        let e = ev(Kind::Dead, 3, 1 << 40, 2);
        let mut w = Writer::default();
        e.encode(&mut w);
        let b = w.into_bytes();
        let mut r = Reader::new(&b);
        assert_eq!(MemberEvent::decode(&mut r).unwrap(), e);
        let mut bad = b.clone();
        *bad.last_mut().unwrap() = MAX_HOPS + 1;
        assert!(MemberEvent::decode(&mut Reader::new(&bad)).is_err());
        let mut bad_kind = b;
        bad_kind[0] = 7;
        assert!(MemberEvent::decode(&mut Reader::new(&bad_kind)).is_err());
    }

    /// Randomised invariants: a drain never carries two events about one peer, never more
    /// hops than the sender may forward, never an event older than one already sent for
    /// that peer; the queue stays within its bound.
    #[test]
    fn queue_invariants_under_random_traffic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut q = EventQueue::new(Config::new().with_max_queue(16));
        let mut sent: HashMap<PeerId, (u64, u8)> = HashMap::new();
        for _ in 0..5_000 {
            let kind = [Kind::Alive, Kind::Suspect, Kind::Dead][rng.gen_range(0..3)];
            q.add(ev(
                kind,
                rng.gen_range(0..20),
                rng.gen_range(0..6),
                rng.gen_range(0..=MAX_HOPS),
            ));
            assert!(q.len() <= 16);
            if rng.gen_bool(0.3) {
                let out = q.drain(EVENTS_PER_MESSAGE);
                let mut peers = std::collections::HashSet::new();
                for e in out {
                    assert!(peers.insert(e.peer), "two events about one peer in a drain");
                    assert!(e.hops_left < MAX_HOPS, "a drained event has spent a hop");
                    let rank = e.rank();
                    if let Some(prev) = sent.insert(e.peer, rank) {
                        assert!(rank > prev, "sent an event not newer than a previous one");
                    }
                }
            }
        }
    }
}
