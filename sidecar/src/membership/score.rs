//! Node-side score of an indexer: 7 dimensions with a born-at penalty and
//! the uptime tracker behind its first dimension.
//!
//! Counters are cumulative over the life of the pool entry. In Go they were reset every tick
//! because the loop mutated a copy (B1); the evident intent, implemented here, is a running
//! record, which makes the score — and so eviction — actually depend on history.

use std::time::Duration;

use crate::membership::profile::Profile;
use crate::membership::{unit, Timestamp};

/// A gap between heartbeats up to this long counts as continuous online time (2 × the 60 s
/// recommended interval, ).
pub const CONTINUOUS_GAP: Duration = Duration::from_secs(120);
/// Round trip at which the latency dimension reaches 0 (10 × the 400 ms base round trip).
pub const MAX_RTT: Duration = Duration::from_millis(4000);
/// Score lost per restart (observed change of the indexer's `born_at`) beyond the first within
/// [`RESTART_WINDOW`].
pub const BORN_AT_PENALTY: f64 = 0.30;
/// Restarts count against an indexer for this long. One restart in the window is free: an
/// upgrade or a reboot must not evict a long-standing indexer from every pool (Go's penalty
/// never decayed, so one restart cost 30 % for good, below the 80 bar of day-old pools).
pub const RESTART_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Restarts remembered (older ones are outside any window that matters).
const MAX_RESTARTS: usize = 16;

/// Dimension weights (sum 1.0).
pub mod weight {
    /// Uptime ratio.
    pub const UPTIME: f64 = 0.20;
    /// Own-peer-id challenge accuracy.
    pub const CHALLENGE: f64 = 0.20;
    /// Latency.
    pub const LATENCY: f64 = 0.15;
    /// Free capacity (1 − fill rate).
    pub const FILL: f64 = 0.10;
    /// Fill-rate consistency (`peer_count / max_nodes ≈ fill_rate`).
    pub const FILL_CONSISTENCY: f64 = 0.10;
    /// Witness agreement.
    pub const WITNESS: f64 = 0.15;
    /// DHT challenge success.
    pub const DHT: f64 = 0.10;
}

/// Online-time bookkeeping for one peer (Go `UptimeTracker`, SWIM fields live in
/// [`crate::membership::swim::Suspicion`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UptimeTracker {
    /// When the peer was first seen.
    pub first_seen: Timestamp,
    /// Last successful heartbeat.
    pub last_seen: Option<Timestamp>,
    /// Accumulated continuous online time.
    pub total_online: Duration,
    /// Silence the peer's connectivity profile planned (not held against it).
    pub excused: Duration,
}

impl UptimeTracker {
    /// A tracker started at `now`.
    pub fn new(now: Timestamp) -> Self {
        UptimeTracker {
            first_seen: now,
            last_seen: None,
            total_online: Duration::ZERO,
            excused: Duration::ZERO,
        }
    }

    /// A heartbeat at `now`: gaps ≤ [`CONTINUOUS_GAP`] count as online; the first heartbeat and
    /// longer gaps contribute nothing.
    pub fn record_heartbeat(&mut self, now: Timestamp) {
        self.record_heartbeat_with(now, &Profile::Continuous);
    }

    /// [`UptimeTracker::record_heartbeat`] for a peer with `profile`: the part of a longer gap
    /// the profile planned is excused (neither online nor held against it), so an orbital
    /// peer's uptime is judged against its contact windows, not wall time.
    pub fn record_heartbeat_with(&mut self, now: Timestamp, profile: &Profile) {
        if let Some(last) = self.last_seen {
            let gap = now.since(last);
            if gap <= CONTINUOUS_GAP {
                self.total_online += gap;
            } else {
                self.excused += profile.planned_absence(last, now).min(gap);
            }
        }
        self.last_seen = Some(self.last_seen.map_or(now, |l| l.max(now)));
    }

    /// Online time proven otherwise (signed offline heartbeats): `online` more, never beyond
    /// the time that was not excused.
    pub fn credit(&mut self, online: Duration, now: Timestamp) {
        let room = self
            .age(now)
            .saturating_sub(self.excused)
            .saturating_sub(self.total_online);
        self.total_online += online.min(room);
    }

    /// Time since first seen.
    pub fn age(&self, now: Timestamp) -> Duration {
        now.since(self.first_seen)
    }

    /// `min(total_online / (age − excused), 1)`, 0 at age 0.
    pub fn ratio(&self, now: Timestamp) -> f64 {
        let age = self.age(now).saturating_sub(self.excused).as_secs_f64();
        if age <= 0.0 {
            return 0.0;
        }
        (self.total_online.as_secs_f64() / age).min(1.0)
    }
}

fn ratio_or_one(num: u32, den: u32) -> f64 {
    if den == 0 {
        1.0
    } else {
        f64::from(num) / f64::from(den)
    }
}

/// `clamp(1 − rtt / 4 s, 0, 1)`.
pub fn latency_score(rtt: Duration) -> f64 {
    unit(1.0 - rtt.as_secs_f64() / MAX_RTT.as_secs_f64())
}

/// Everything the node knows about one indexer's trustworthiness.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexerScore {
    /// Online time.
    pub uptime: UptimeTracker,
    /// Last computed score, 0–100.
    pub value: f64,
    /// Last reported fill rate.
    pub last_fill_rate: f64,
    /// Last reported `born_at` (zero = none yet).
    pub last_born_at: Timestamp,
    /// Observed `born_at` changes (restarts) since first seen.
    pub born_at_changes: u32,
    /// When the latest restarts were observed (most recent last).
    pub restarts: std::collections::VecDeque<Timestamp>,
    /// Own-peer-id challenges sent.
    pub challenge_total: u32,
    /// … answered `found` with a fresh `last_seen`.
    pub challenge_correct: u32,
    /// Fill-rate consistency checks.
    pub fill_checked: u32,
    /// … consistent.
    pub fill_consistent: u32,
    /// DHT challenges answered.
    pub dht_checked: u32,
    /// … found (and, when a verifier is set, verified).
    pub dht_success: u32,
    /// Witness answers counted.
    pub witness_checked: u32,
    /// … consistent.
    pub witness_consistent: u32,
}

/// Tolerance of the fill-rate consistency check.
pub const FILL_TOLERANCE: f64 = 0.1;
/// Freshness required of `last_seen` in the own-peer-id challenge.
pub const CHALLENGE_FRESHNESS: Duration = Duration::from_secs(120);

impl IndexerScore {
    /// A fresh score at `now`. Starts at the value a perfect newcomer would get minus uptime,
    /// so the referent choice has something to rank before the first response.
    pub fn new(now: Timestamp) -> Self {
        IndexerScore {
            uptime: UptimeTracker::new(now),
            value: 0.0,
            last_fill_rate: 0.0,
            last_born_at: Timestamp::ZERO,
            born_at_changes: 0,
            restarts: std::collections::VecDeque::new(),
            challenge_total: 0,
            challenge_correct: 0,
            fill_checked: 0,
            fill_consistent: 0,
            dht_checked: 0,
            dht_success: 0,
            witness_checked: 0,
            witness_consistent: 0,
        }
    }

    /// Record the indexer's `born_at` seen at `now`; returns `true` when it changed (a
    /// restart).
    pub fn observe_born_at(&mut self, now: Timestamp, born_at: Timestamp) -> bool {
        if self.last_born_at.is_zero() {
            self.last_born_at = born_at;
            return false;
        }
        if !born_at.is_zero() && born_at != self.last_born_at {
            self.born_at_changes = self.born_at_changes.saturating_add(1);
            self.last_born_at = born_at;
            self.restarts.push_back(now);
            if self.restarts.len() > MAX_RESTARTS {
                self.restarts.pop_front();
            }
            return true;
        }
        false
    }

    /// The restart penalty factor at `now`: each restart beyond the first within
    /// [`RESTART_WINDOW`] costs [`BORN_AT_PENALTY`].
    fn restart_factor(&self, now: Timestamp) -> f64 {
        let recent = self
            .restarts
            .iter()
            .filter(|t| now.since(**t) < RESTART_WINDOW)
            .count();
        (1.0 - BORN_AT_PENALTY * recent.saturating_sub(1) as f64).max(0.0)
    }

    /// Record the capacity figures of a response.
    pub fn observe_fill(&mut self, fill_rate: f64, peer_count: u32, max_nodes: u32) {
        self.last_fill_rate = unit(fill_rate);
        if max_nodes > 0 {
            let expected = f64::from(peer_count) / f64::from(max_nodes);
            self.fill_checked = self.fill_checked.saturating_add(1);
            if (expected - fill_rate).abs() < FILL_TOLERANCE {
                self.fill_consistent = self.fill_consistent.saturating_add(1);
            }
        }
    }

    /// Result of an own-peer-id challenge (the batch was already counted in `challenge_total`).
    pub fn observe_own_challenge(&mut self, found: bool, last_seen: Timestamp, now: Timestamp) {
        let fresh = !last_seen.is_zero() && now.since(last_seen) < CHALLENGE_FRESHNESS;
        if found && fresh {
            self.challenge_correct = self.challenge_correct.saturating_add(1);
        }
    }

    /// Result of a DHT challenge.
    pub fn observe_dht(&mut self, success: bool) {
        self.dht_checked = self.dht_checked.saturating_add(1);
        if success {
            self.dht_success = self.dht_success.saturating_add(1);
        }
    }

    /// Witness answers for one response.
    pub fn observe_witnesses(&mut self, checked: u32, consistent: u32) {
        self.witness_checked = self.witness_checked.saturating_add(checked);
        self.witness_consistent = self
            .witness_consistent
            .saturating_add(consistent.min(checked));
    }

    /// The 7-dimension score at `now` for a heartbeat with latency score `latency` (0–1);
    /// stores and returns it.
    pub fn compute(&mut self, now: Timestamp, latency: f64) -> f64 {
        let base = weight::UPTIME * self.uptime.ratio(now)
            + weight::CHALLENGE * ratio_or_one(self.challenge_correct, self.challenge_total)
            + weight::LATENCY * unit(latency)
            + weight::FILL * (1.0 - self.last_fill_rate)
            + weight::FILL_CONSISTENCY * ratio_or_one(self.fill_consistent, self.fill_checked)
            + weight::WITNESS * ratio_or_one(self.witness_consistent, self.witness_checked)
            + weight::DHT * ratio_or_one(self.dht_success, self.dht_checked);
        self.value = base * 100.0 * self.restart_factor(now);
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_millis(1_000_000_000 + s * 1000)
    }

    #[test]
    fn weights_sum_to_one() {
        let s = weight::UPTIME
            + weight::CHALLENGE
            + weight::LATENCY
            + weight::FILL
            + weight::FILL_CONSISTENCY
            + weight::WITNESS
            + weight::DHT;
        assert!((s - 1.0).abs() < 1e-12);
    }

    #[test]
    fn uptime_counts_only_continuous_gaps() {
        let mut u = UptimeTracker::new(t(0));
        u.record_heartbeat(t(0));
        u.record_heartbeat(t(20));
        u.record_heartbeat(t(140)); // gap 120 s: still continuous
        u.record_heartbeat(t(300)); // gap 160 s: offline
        assert_eq!(u.total_online, Duration::from_secs(140));
        assert!((u.ratio(t(300)) - 140.0 / 300.0).abs() < 1e-9);
        assert_eq!(UptimeTracker::new(t(5)).ratio(t(5)), 0.0);
    }

    #[test]
    fn latency_score_is_linear_and_clamped() {
        assert_eq!(latency_score(Duration::ZERO), 1.0);
        assert!((latency_score(Duration::from_millis(1000)) - 0.75).abs() < 1e-9);
        assert_eq!(latency_score(Duration::from_secs(9)), 0.0);
    }

    #[test]
    fn fresh_perfect_indexer_scores_by_formula() {
        // No checks yet: all ratios default to 1; uptime 0 at age 0; fill 0.
        let mut s = IndexerScore::new(t(0));
        let v = s.compute(t(0), 1.0);
        assert!((v - 80.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn formula_matches_hand_computation() {
        let mut s = IndexerScore::new(t(0));
        s.uptime.record_heartbeat(t(0));
        s.uptime.record_heartbeat(t(50)); // ratio 50/100 at t=100
        s.challenge_total = 4;
        s.challenge_correct = 3; // 0.75
        s.observe_fill(0.4, 200, 500); // fill 0.4, consistent
        s.observe_fill(0.4, 100, 500); // inconsistent (0.2 vs 0.4) → 1/2
        s.observe_witnesses(4, 1); // 0.25
        s.observe_dht(true);
        s.observe_dht(false); // 0.5
        let v = s.compute(t(100), 0.5);
        let expect = (0.20 * 0.5
            + 0.20 * 0.75
            + 0.15 * 0.5
            + 0.10 * 0.6
            + 0.10 * 0.5
            + 0.15 * 0.25
            + 0.10 * 0.5)
            * 100.0;
        assert!((v - expect).abs() < 1e-9, "{v} vs {expect}");
    }

    #[test]
    fn one_restart_a_day_is_free_more_cost_30_percent_each_and_they_expire() {
        let mut s = IndexerScore::new(t(0));
        assert!(
            !s.observe_born_at(t(0), t(1)),
            "first value is recorded, not a change"
        );
        assert!(!s.observe_born_at(t(0), t(1)));
        assert!(
            !s.observe_born_at(t(0), Timestamp::ZERO),
            "zero is 'unset', not a change"
        );
        let full = s.compute(t(0), 1.0);
        // Before the fix: one restart cost 30 % for good.
        assert!(s.observe_born_at(t(10), t(2)));
        assert!(
            (s.compute(t(10), 1.0) - full).abs() < 1e-9,
            "one restart is free"
        );
        assert!(s.observe_born_at(t(20), t(3)));
        assert!(
            (s.compute(t(20), 1.0) - full * 0.7).abs() < 1e-9,
            "a second within a day costs 30 %"
        );
        for i in 4..10 {
            s.observe_born_at(t(20 + i), t(i));
        }
        assert_eq!(
            s.compute(t(40), 1.0),
            0.0,
            "a flapping indexer scores nothing"
        );
        // A day later the restarts no longer count.
        let day = 24 * 3600;
        assert!((s.compute(t(40 + day), 1.0) - full).abs() < 1e-6);
    }

    #[test]
    fn own_challenge_needs_found_and_fresh_last_seen() {
        let mut s = IndexerScore::new(t(0));
        s.observe_own_challenge(true, t(100), t(150));
        s.observe_own_challenge(true, t(0), t(150)); // 150 s old
        s.observe_own_challenge(false, t(150), t(150));
        s.observe_own_challenge(true, Timestamp::ZERO, t(150));
        assert_eq!(s.challenge_correct, 1);
    }
}
