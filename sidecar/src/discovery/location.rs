//! Location disclosed at a chosen granularity.
//!
//! Go (`location.Geolocate`) asked ip-api.com over plain HTTP, added fresh uniform noise on
//! every start (so restarts can be averaged away) and printed the raw coordinates. Here the
//! site coordinates come from the config, the noise is derived from the node's public key
//! (same offset on every start) and raw coordinates are never logged or published.

use sha2::{Digest, Sha256};

use super::record::Location;

/// (latitude radius, longitude radius) in degrees for a granularity (Go `fuzzRadius`).
pub fn radius(granularity: u8) -> (f64, f64) {
    match granularity {
        1 => (15.0, 20.0),
        2 => (3.0, 4.0),
        3 => (0.5, 0.7),
        4 => (0.05, 0.07),
        _ => (3.0, 4.0),
    }
}

/// Fuzzed location, or `None` when `granularity` is 0. `seed` is stable per identity (the
/// public key bytes).
pub fn fuzz(granularity: u8, latitude: f64, longitude: f64, seed: &[u8]) -> Option<Location> {
    if granularity == 0 {
        return None;
    }
    let (lat_r, lng_r) = radius(granularity);
    let digest = Sha256::new()
        .chain_update(b"garden-location-v1")
        .chain_update([granularity])
        .chain_update(seed)
        .finalize();
    let unit = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        // [0, 1) from the top 53 bits, then to [-1, 1).
        ((u64::from_be_bytes(a) >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let u1 = unit(&digest[0..8]);
    let u2 = unit(&digest[8..16]);
    Some(Location {
        granularity,
        latitude: (latitude + u1 * lat_r).clamp(-85.0, 85.0),
        longitude: (longitude + u2 * lng_r).clamp(-180.0, 180.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_is_bounded_stable_per_identity_and_off_at_zero() {
        assert_eq!(fuzz(0, 48.8, 2.3, b"k"), None);
        for g in 1..=4u8 {
            let (lr, gr) = radius(g);
            let a = fuzz(g, 48.8, 2.3, b"key-a").unwrap();
            assert_eq!(Some(a), fuzz(g, 48.8, 2.3, b"key-a"));
            assert!((a.latitude - 48.8).abs() <= lr && (a.longitude - 2.3).abs() <= gr);
            assert_eq!(a.granularity, g);
        }
        assert_ne!(fuzz(2, 48.8, 2.3, b"key-a"), fuzz(2, 48.8, 2.3, b"key-b"));
        let polar = fuzz(1, 89.0, 179.9, b"k").unwrap();
        assert!(polar.latitude <= 85.0 && polar.longitude <= 180.0);
    }
}
