//! Pure vote tally, modelled on cw-plus `packages/cw3/src/proposal.rs` (`Votes`,
//! `Proposal::is_passed`/`is_rejected`). cw3 2.0 is built on cosmwasm-std 2, so it cannot be
//! linked here; the rules are the same and use cw-utils 3's `Threshold`.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Decimal, Uint128};
use cw_utils::Threshold;

#[cw_serde]
#[derive(Copy, Default)]
pub struct Votes {
    pub yes: u64,
    pub no: u64,
    pub abstain: u64,
}

#[cw_serde]
#[derive(Copy)]
pub enum Vote {
    Yes,
    No,
    Abstain,
}

impl Votes {
    pub fn add(&mut self, vote: Vote, weight: u64) {
        let slot = match vote {
            Vote::Yes => &mut self.yes,
            Vote::No => &mut self.no,
            Vote::Abstain => &mut self.abstain,
        };
        *slot = slot.saturating_add(weight);
    }
    pub fn total(&self) -> u64 {
        self.yes
            .saturating_add(self.no)
            .saturating_add(self.abstain)
    }
}

const PRECISION_FACTOR: u128 = 1_000_000_000;

/// ceil(weight * percentage) in fixed point (no floats in contracts).
pub fn votes_needed(weight: u64, percentage: Decimal) -> u64 {
    let applied = Uint128::new(PRECISION_FACTOR * weight as u128).mul_floor(percentage);
    applied.u128().div_ceil(PRECISION_FACTOR) as u64
}

/// Has the proposal passed? Before expiry only a result that remaining votes cannot change
/// counts (early pass); at expiry, `ThresholdQuorum` is judged on the votes cast.
pub fn is_passed(threshold: &Threshold, v: &Votes, total_weight: u64, expired: bool) -> bool {
    match threshold {
        Threshold::AbsoluteCount { weight } => v.yes >= *weight,
        Threshold::AbsolutePercentage { percentage } => {
            v.yes >= votes_needed(total_weight.saturating_sub(v.abstain), *percentage)
        }
        Threshold::ThresholdQuorum { threshold, quorum } => {
            if v.total() < votes_needed(total_weight, *quorum) {
                return false;
            }
            if expired {
                v.yes >= votes_needed(v.yes + v.no, *threshold)
            } else {
                // everyone who has not voted yet might still vote no
                v.yes >= votes_needed(total_weight.saturating_sub(v.abstain), *threshold)
            }
        }
    }
}

/// Rejected: expired without passing, or unable to pass even if every remaining weight
/// voted yes.
pub fn is_rejected(threshold: &Threshold, v: &Votes, total_weight: u64, expired: bool) -> bool {
    if is_passed(threshold, v, total_weight, expired) {
        return false;
    }
    if expired {
        return true;
    }
    let remaining = total_weight.saturating_sub(v.total());
    let best = Votes {
        yes: v.yes + remaining,
        ..*v
    };
    !is_passed(threshold, &best, total_weight, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn two_thirds() -> Threshold {
        Threshold::ThresholdQuorum {
            threshold: Decimal::from_ratio(2u128, 3u128),
            quorum: Decimal::from_ratio(2u128, 3u128),
        }
    }

    #[test]
    fn votes_needed_rounds_up() {
        assert_eq!(votes_needed(3, Decimal::permille(333)), 1);
        assert_eq!(votes_needed(3, Decimal::permille(334)), 2);
        assert_eq!(votes_needed(34, Decimal::percent(50)), 17);
        assert_eq!(votes_needed(3, Decimal::from_ratio(2u128, 3u128)), 2);
    }

    #[test]
    fn two_thirds_of_three() {
        let t = two_thirds();
        let one = Votes {
            yes: 1,
            ..Default::default()
        };
        assert!(!is_passed(&t, &one, 3, false));
        assert!(!is_rejected(&t, &one, 3, false));
        let two = Votes {
            yes: 2,
            ..Default::default()
        };
        assert!(is_passed(&t, &two, 3, false));
        let split = Votes {
            yes: 1,
            no: 2,
            abstain: 0,
        };
        assert!(is_rejected(&t, &split, 3, false));
        // at expiry with only 1 of 3 voting, quorum fails
        assert!(is_rejected(&t, &one, 3, true));
    }

    #[test]
    fn absolute_count_and_percentage() {
        let c = Threshold::AbsoluteCount { weight: 2 };
        assert!(is_passed(
            &c,
            &Votes {
                yes: 2,
                ..Default::default()
            },
            5,
            false
        ));
        assert!(is_rejected(
            &c,
            &Votes {
                yes: 0,
                no: 4,
                abstain: 0
            },
            5,
            false
        ));
        let p = Threshold::AbsolutePercentage {
            percentage: Decimal::percent(50),
        };
        // abstain lowers the base: 3 of (4 - 2) needed = 1
        assert!(is_passed(
            &p,
            &Votes {
                yes: 1,
                no: 0,
                abstain: 2
            },
            4,
            false
        ));
    }

    proptest! {
        // Passed and rejected exclude each other, and one more yes never un-passes.
        #[test]
        fn tally_is_consistent(yes in 0u64..20, no in 0u64..20, abstain in 0u64..20, extra in 0u64..20,
                               expired in any::<bool>(), pct in 1u64..100) {
            let total = yes + no + abstain + extra;
            for t in [two_thirds(), Threshold::AbsolutePercentage { percentage: Decimal::percent(pct) },
                      Threshold::ThresholdQuorum { threshold: Decimal::percent(pct), quorum: Decimal::percent(100 - pct) }] {
                let v = Votes { yes, no, abstain };
                let passed = is_passed(&t, &v, total, expired);
                prop_assert!(!(passed && is_rejected(&t, &v, total, expired)));
                if extra > 0 && passed && !expired {
                    let more = Votes { yes: yes + 1, ..v };
                    prop_assert!(is_passed(&t, &more, total, expired));
                }
                if expired { prop_assert!(passed || is_rejected(&t, &v, total, expired)); }
            }
        }
    }
}
