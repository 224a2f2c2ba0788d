//! The nonce rule: nonces are tied to the time an attestation is signed.
//!
//! A nonce is `epoch << 32 | seq` where `epoch = signed_at / EPOCH_SECS` (hours since the Unix
//! epoch) and `seq` is the signer's counter inside that hour. The settlement contract accepts
//! an attestation only if its nonce's epoch is the epoch of its `signed_at` ([`check`]), so
//! every nonce belongs to one hour, and a nonce of an hour older than the settlement window
//! can never be accepted again: the contract forgets (prunes) the used-nonce bitmaps of those
//! hours ([`prune_horizon`]) without reopening a replay.
//!
//! A signer follows the rule offline with a persistent [`Counter`]: `(epoch, next_seq)`.
//! Signing at `signed_at` in a later hour starts that hour at sequence 0; signing in the same
//! hour takes the next sequence; a clock that went back to an earlier hour is refused (the
//! signer must not reuse an hour it has left, or it could repeat a nonce). A signer that
//! persists the counter before it hands out the signature never repeats a nonce.
//!
//! The signing bytes are unchanged (attestation v1): `nonce` and `signed_at` were already
//! signed; only the contract's acceptance rule is new.

/// Length of one nonce epoch, seconds.
pub const EPOCH_SECS: u64 = 3600;
/// Bits of the per-epoch sequence (the low half of the nonce).
pub const SEQ_BITS: u32 = 32;
/// Most attestations one key can sign in one epoch.
pub const SEQ_PER_EPOCH: u64 = 1 << SEQ_BITS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    #[error("nonce epoch {nonce_epoch} is not the epoch {signed_epoch} of signed_at")]
    EpochMismatch { nonce_epoch: u64, signed_epoch: u64 },
    #[error("clock went back: last nonce was in epoch {last}, signing now in epoch {now}")]
    ClockWentBack { last: u64, now: u64 },
    #[error("all {SEQ_PER_EPOCH} nonces of epoch {0} are used; wait for the next hour")]
    EpochExhausted(u64),
}

/// Epoch of a signing time.
pub fn epoch(signed_at: u64) -> u64 {
    signed_at / EPOCH_SECS
}

/// Epoch a nonce belongs to.
pub fn nonce_epoch(nonce: u64) -> u64 {
    nonce >> SEQ_BITS
}

/// Sequence of a nonce inside its epoch.
pub fn nonce_seq(nonce: u64) -> u64 {
    nonce & (SEQ_PER_EPOCH - 1)
}

/// First nonce of an epoch (saturates for epochs beyond 2^32, which no real clock reaches).
pub fn first_nonce(epoch: u64) -> u64 {
    epoch
        .checked_shl(SEQ_BITS)
        .filter(|_| epoch < SEQ_PER_EPOCH)
        .unwrap_or(u64::MAX)
}

/// The rule the contract applies to every attestation: the nonce lies in `signed_at`'s epoch.
pub fn check(nonce: u64, signed_at: u64) -> Result<(), NonceError> {
    let (nonce_epoch, signed_epoch) = (nonce_epoch(nonce), epoch(signed_at));
    if nonce_epoch != signed_epoch {
        return Err(NonceError::EpochMismatch {
            nonce_epoch,
            signed_epoch,
        });
    }
    Ok(())
}

/// Epochs strictly below this hold only attestations older than `window_secs` at `now`:
/// their bitmaps may be deleted. (Epoch `e` ends at `(e + 1) * EPOCH_SECS`; everything in it
/// is stale once that end is at or before `now - window_secs`.)
pub fn prune_horizon(now: u64, window_secs: u64) -> u64 {
    epoch(now.saturating_sub(window_secs))
}

/// A signer's persistent nonce state. Store it (e.g. in the sidecar's database) after every
/// [`Counter::next`], before the signature leaves the signer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Epoch of the last nonce handed out.
    pub epoch: u64,
    /// Next sequence to use in `epoch`.
    pub next_seq: u64,
}

impl Counter {
    /// The nonce for an attestation signed at `signed_at`.
    pub fn next(&mut self, signed_at: u64) -> Result<u64, NonceError> {
        let now = epoch(signed_at);
        if now < self.epoch {
            return Err(NonceError::ClockWentBack {
                last: self.epoch,
                now,
            });
        }
        if now > self.epoch {
            *self = Counter {
                epoch: now,
                next_seq: 0,
            };
        }
        if self.next_seq >= SEQ_PER_EPOCH {
            return Err(NonceError::EpochExhausted(now));
        }
        let nonce = first_nonce(now) | self.next_seq;
        self.next_seq += 1;
        Ok(nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counter_follows_the_rule() {
        let mut c = Counter::default();
        let t = 1_767_229_260; // 2026-01-01T00:41:00Z, epoch 490 897
        let a = c.next(t).unwrap();
        let b = c.next(t + 10).unwrap();
        assert_eq!((nonce_epoch(a), nonce_seq(a)), (490_897, 0));
        assert_eq!(
            a, 2_108_386_560_704_512,
            "docs/ATTESTATION-VECTORS.md quotes it"
        );
        assert_eq!(b, a + 1);
        assert!(check(a, t).is_ok() && check(b, t + 10).is_ok());
        // next hour restarts the sequence
        let d = c.next(t + EPOCH_SECS).unwrap();
        assert_eq!((nonce_epoch(d), nonce_seq(d)), (490_898, 0));
        // a clock that went back an hour is refused
        assert_eq!(
            c.next(t).unwrap_err(),
            NonceError::ClockWentBack {
                last: 490_898,
                now: 490_897
            }
        );
        assert_eq!(
            check(a, t + EPOCH_SECS).unwrap_err(),
            NonceError::EpochMismatch {
                nonce_epoch: 490_897,
                signed_epoch: 490_898
            }
        );
        let mut full = Counter {
            epoch: 490_898,
            next_seq: SEQ_PER_EPOCH,
        };
        assert_eq!(
            full.next(t + EPOCH_SECS).unwrap_err(),
            NonceError::EpochExhausted(490_898)
        );
    }

    #[test]
    fn horizon() {
        // at now = 10h + 5 min with a 2 h window, hours 0..=7 are entirely stale
        assert_eq!(prune_horizon(10 * 3600 + 300, 2 * 3600), 8);
        assert_eq!(prune_horizon(100, 1_000), 0);
    }

    proptest! {
        // Whatever the clock does, a counter never hands out a nonce twice, and every nonce
        // it hands out passes `check` for its signing time.
        #[test]
        fn counter_never_repeats(steps in proptest::collection::vec(0u64..10_000, 1..200),
                                 start in 0u64..4_000_000_000) {
            let mut c = Counter::default();
            let mut seen = std::collections::BTreeSet::new();
            let mut t = start;
            for (i, s) in steps.iter().enumerate() {
                // mostly forward, sometimes back
                t = if i % 7 == 3 { t.saturating_sub(*s) } else { t + s };
                if let Ok(n) = c.next(t) {
                    prop_assert!(seen.insert(n));
                    prop_assert!(check(n, t).is_ok());
                    // nothing of a pruned epoch can pass: its epoch is below the horizon
                    prop_assert!(nonce_epoch(n) >= prune_horizon(t, 0));
                }
            }
        }
    }
}
