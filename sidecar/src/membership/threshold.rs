//! The age-based threshold both sides use: `min(80, 20 + 60 × age / 24 h)`.
//!
//! Node side it is the eviction bar for an indexer's score; indexer side it is the admission bar for a node. A newcomer only has to clear 20, a peer known
//! for a day has to clear 80: trust is earned, and a long-standing peer that degrades is
//! dropped sooner than a new one that has had no chance to prove itself.

use std::time::Duration;

/// Threshold at age zero.
pub const START: f64 = 20.0;
/// Threshold cap, reached at [`RAMP`].
pub const CAP: f64 = 80.0;
/// Time to go from [`START`] to [`CAP`].
pub const RAMP: Duration = Duration::from_secs(24 * 3600);

/// `min(80, 20 + 60 × age / 24 h)`, in score points (0–100).
pub fn dynamic_min_score(age: Duration) -> f64 {
    ramp(age, START, CAP)
}

/// The same curve with other end points: `min(cap, start + (cap − start) × age / 24 h)`, never
/// below `start` (a `cap` below `start` gives a flat `start`). The node's eviction bar uses
/// it with operator-set end points (`node::Config::eviction_threshold`).
pub fn ramp(age: Duration, start: f64, cap: f64) -> f64 {
    let frac = age.as_secs_f64() / RAMP.as_secs_f64();
    (start + (cap - start).max(0.0) * frac).min(cap.max(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_starts_at_20_ramps_linearly_and_caps_at_80() {
        assert_eq!(dynamic_min_score(Duration::ZERO), 20.0);
        assert!((dynamic_min_score(Duration::from_secs(6 * 3600)) - 35.0).abs() < 1e-9);
        assert!((dynamic_min_score(Duration::from_secs(12 * 3600)) - 50.0).abs() < 1e-9);
        assert_eq!(dynamic_min_score(RAMP), 80.0);
        assert_eq!(dynamic_min_score(Duration::from_secs(10 * 24 * 3600)), 80.0);
    }

    #[test]
    fn ramp_with_other_end_points() {
        let half = Duration::from_secs(12 * 3600);
        assert_eq!(ramp(half, START, CAP), dynamic_min_score(half));
        assert!((ramp(half, 40.0, 60.0) - 50.0).abs() < 1e-9);
        assert_eq!(ramp(Duration::ZERO, 100.0, 100.0), 100.0);
        assert_eq!(ramp(RAMP * 2, 100.0, 100.0), 100.0);
        assert_eq!(ramp(half, 70.0, 30.0), 70.0);
    }

    #[test]
    fn curve_is_monotonic() {
        let mut prev = 0.0;
        for h in 0..48u64 {
            let v = dynamic_min_score(Duration::from_secs(h * 3600));
            assert!(v >= prev);
            prev = v;
        }
    }
}
