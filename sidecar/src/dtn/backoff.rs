//! When to retry a critical entry after its `n`-th failed delivery: exponential backoff from
//! [`BASE`], capped at [`CAP`], with "equal jitter" (a uniform draw in the upper half of the
//! step) so that entries that failed together do not all retry at the same instant.
//!
//! Pure: the random draw is an argument.

use std::time::Duration;

/// Delay after the first failure (before jitter).
pub const BASE: Duration = Duration::from_secs(1);
/// Longest delay between two attempts.
pub const CAP: Duration = Duration::from_secs(5 * 60);

/// Delay before the next attempt after `failures` failed ones (≥ 1), with `jitter` in
/// `[0, 1)`: `d = min(CAP, BASE · 2^(failures−1))`, result in `[d/2, d)`.
pub fn delay(failures: u32, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let step = BASE.saturating_mul(1 << exp).min(CAP);
    let half = step / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_second_up_to_five_minutes_with_jitter_in_the_upper_half() {
        assert_eq!(delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(delay(2, 1.0), Duration::from_secs(2));
        assert_eq!(delay(5, 1.0), Duration::from_secs(16));
        assert_eq!(delay(9, 1.0), Duration::from_secs(256));
        assert_eq!(delay(10, 1.0), CAP);
        assert_eq!(delay(1_000, 1.0), CAP);
        assert_eq!(delay(1_000, 0.0), CAP / 2);
        assert!(delay(3, 0.5) > delay(3, 0.1));
        // Zero failures behaves as one (never a zero delay).
        assert_eq!(delay(0, 1.0), BASE);
    }
}
