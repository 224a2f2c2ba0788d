//! Location disclosed at a chosen granularity.
//!
//! Go (`location.Geolocate`) asked ip-api.com over plain HTTP, added fresh uniform noise on
//! every start (so restarts can be averaged away) and printed the raw coordinates. Here the
//! site coordinates come from the config, the noise is derived from a **secret** of the node
//! (a key derived from its identity under the label [`SECRET_LABEL`]): the same offset at
//! every start, so restarts cannot be averaged, and nobody else can compute it, so the
//! offset cannot be subtracted. (An earlier version hashed the public key, which the record
//! itself publishes: anyone could subtract the offset and recover the exact site.) Raw
//! coordinates are never logged or published.

use sha2::{Digest, Sha256};

use super::record::Location;

/// HKDF label of the location secret (`NodeIdentity::derive_key`).
pub const SECRET_LABEL: &str = "garden/location/v1";

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

/// Fuzzed location, or `None` when `granularity` is 0. `secret` is the node's location secret
/// (stable per identity, known to nobody else).
pub fn fuzz(granularity: u8, latitude: f64, longitude: f64, secret: &[u8; 32]) -> Option<Location> {
    if granularity == 0 {
        return None;
    }
    let (lat_r, lng_r) = radius(granularity);
    let (u1, u2) = offsets(granularity, secret);
    Some(Location {
        granularity,
        latitude: (latitude + u1 * lat_r).clamp(-85.0, 85.0),
        longitude: (longitude + u2 * lng_r).clamp(-180.0, 180.0),
    })
}

/// Two numbers in [-1, 1) from the secret and the granularity.
fn offsets(granularity: u8, secret: &[u8]) -> (f64, f64) {
    let digest = Sha256::new()
        .chain_update(b"garden-location-v2")
        .chain_update([granularity])
        .chain_update(secret)
        .finalize();
    let unit = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        // [0, 1) from the top 53 bits, then to [-1, 1).
        ((u64::from_be_bytes(a) >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    (unit(&digest[0..8]), unit(&digest[8..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeIdentity;

    #[test]
    fn fuzz_is_bounded_stable_per_identity_and_off_at_zero() {
        let a = NodeIdentity::generate().derive_key(SECRET_LABEL);
        let b = NodeIdentity::generate().derive_key(SECRET_LABEL);
        assert_eq!(fuzz(0, 48.8, 2.3, &a), None);
        for g in 1..=4u8 {
            let (lr, gr) = radius(g);
            let l = fuzz(g, 48.8, 2.3, &a).unwrap();
            assert_eq!(
                Some(l),
                fuzz(g, 48.8, 2.3, &a),
                "same offset at every start"
            );
            assert!((l.latitude - 48.8).abs() <= lr && (l.longitude - 2.3).abs() <= gr);
            assert_eq!(l.granularity, g);
        }
        assert_ne!(fuzz(2, 48.8, 2.3, &a), fuzz(2, 48.8, 2.3, &b));
        let polar = fuzz(1, 89.0, 179.9, &a).unwrap();
        assert!(polar.latitude <= 85.0 && polar.longitude <= 180.0);
    }

    /// An attacker holds each node's signed record: the published location and the public key.
    /// It tries every public derivation of the offset (the old one: a hash of the public key)
    /// and subtracts it. Two hundred sites at one true point: none is recovered better than
    /// the noise itself allows.
    #[test]
    fn the_true_location_cannot_be_recovered_from_the_record() {
        let (lat, lng, g) = (48.85, 2.35, 2u8);
        let (lr, gr) = radius(g);
        let mut close = 0;
        for _ in 0..200 {
            let id = NodeIdentity::generate();
            let published = fuzz(g, lat, lng, &id.derive_key(SECRET_LABEL)).unwrap();
            // The attacker's guesses: the old public-key derivation, with either tag.
            let pk = id.public().encode_protobuf();
            for tag in [&b"garden-location-v1"[..], &b"garden-location-v2"[..]] {
                let d = Sha256::new()
                    .chain_update(tag)
                    .chain_update([g])
                    .chain_update(&pk)
                    .finalize();
                let unit = |b: &[u8]| {
                    ((u64::from_be_bytes(b.try_into().unwrap()) >> 11) as f64 / (1u64 << 53) as f64)
                        * 2.0
                        - 1.0
                };
                let guess = (
                    published.latitude - unit(&d[0..8]) * lr,
                    published.longitude - unit(&d[8..16]) * gr,
                );
                if (guess.0 - lat).abs() < 0.05 && (guess.1 - lng).abs() < 0.05 {
                    close += 1;
                }
            }
            // Without the secret, the best estimate is the published point itself: it is a
            // uniform draw over the box, not the site.
            assert!(
                (published.latitude - lat).abs() <= lr && (published.longitude - lng).abs() <= gr
            );
        }
        // A uniform guess lands within ±0.05° of the truth with probability ~0.0002 per try
        // (400 tries here); with the old public derivation all 200 sites were recovered.
        assert!(close <= 2, "{close} of 400 attempts recovered a site");
    }
}
