//! The consortium's stored member record and the rule that judges a key at a past time.
//!
//! The consortium contract writes these records; the settlement contract (and, later, an IBC
//! gateway on the zone) reads them raw through [`crate::consortium`] and asks
//! [`Member::standing_at`]: *could this key sign (or be paid) for something dated `t`?*
//! Everything is judged at `t` (an attestation's `signed_at`) except what must be judged now:
//!
//! * a **compromise** revocation voids the key for everything still unsettled, whatever `t`;
//! * a **suspension** holds everything back while it lasts (it may become a compromise);
//! * a **departure** at time `T` leaves everything dated before `T` valid;
//! * a key is nobody's before its membership started (`since`);
//! * an L2 member is L2 at `t` only under an endorsement valid at `t`, carrying the scope,
//!   and issued by a key that had not been revoked for compromise by `t`.
//!
//! How far back `t` may lie is the settlement window's business (the caller checks it), so a
//! compromised but not yet revoked key can backdate at most one window.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Binary};

/// Trust levels of the consortium. Ordered: `L1 < L2 < L3` in the derived order means
/// "more trusted first", so "at least L2" is `level <= TrustLevel::L2`.
#[cw_serde]
#[derive(Copy, Eq, PartialOrd, Ord, Hash)]
pub enum TrustLevel {
    /// PSK member, governs the consortium (initial score 70).
    L1,
    /// Endorsed by an L1 member for scoped rights and a validity period (initial score 40).
    L2,
    /// Open participant (initial score 0).
    L3,
}

impl TrustLevel {
    /// True when `self` is at least as trusted as `min`.
    pub fn at_least(self, min: TrustLevel) -> bool {
        self <= min
    }
}

/// A member's standing now.
#[cw_serde]
#[derive(Copy, Eq)]
pub enum MemberStatus {
    Active,
    /// An emergency action suspended this L1 member: it cannot vote, propose, execute, endorse
    /// or settle until the suspension lapses (unless a proposal ratifies it as a revocation).
    Suspended,
    Revoked,
}

/// A point on the chain: block height and block time (unix seconds).
#[cw_serde]
#[derive(Copy, Default, Eq)]
pub struct Moment {
    pub height: u64,
    pub time: u64,
}

/// Why a member was revoked, which decides what of its unsettled work still counts.
#[cw_serde]
#[derive(Copy, Eq, Default)]
pub enum RevocationKind {
    /// The member left (or was asked to): what it signed, or was owed for, before the
    /// revocation time still settles within the window.
    #[default]
    Departure,
    /// The key is in someone else's hands: nothing unsettled from it is paid, and the L2
    /// endorsements it issued stop counting from the revocation time.
    Compromise,
}

#[cw_serde]
pub struct Revocation {
    pub kind: RevocationKind,
    pub at: Moment,
    pub reason: String,
}

/// An emergency suspension of an L1 member. It lapses at `until` unless a proposal ratifies
/// it (a `revoke` executed before then, which dates the revocation at `at`).
#[cw_serde]
pub struct Suspension {
    pub at: Moment,
    /// Unix seconds.
    pub until: u64,
    pub reason: String,
}

/// An L1 member's endorsement of an L2 member, as registered.
#[cw_serde]
pub struct Endorsement {
    pub endorser: Addr,
    /// The endorser's attestation key that signed it: if that key is later revoked for
    /// compromise, the endorsement stops counting from that time.
    pub endorser_key: Binary,
    pub scopes: Vec<String>,
    /// Unix seconds, `valid_until` exclusive.
    pub valid_from: u64,
    pub valid_until: u64,
}

impl Endorsement {
    pub fn covers(&self, t: u64) -> bool {
        self.valid_from <= t && t < self.valid_until
    }
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Endorsements kept per L2 member (the latest last): attestations signed under any of the
/// last few endorsements stay judgeable after a renewal.
pub const MAX_ENDORSEMENTS: usize = 4;

/// One member as the consortium stores it (`members` map, and `retired_keys` for keys a
/// member no longer uses).
#[cw_serde]
pub struct Member {
    /// Ed25519 attestation public key, 32 bytes.
    pub pubkey: Binary,
    pub level: TrustLevel,
    pub weight: u64,
    /// L2 endorsements, oldest first, at most [`MAX_ENDORSEMENTS`].
    pub endorsements: Vec<Endorsement>,
    /// When this key's membership started.
    pub since: Moment,
    pub suspension: Option<Suspension>,
    pub revocation: Option<Revocation>,
}

/// Why a key may not sign (or be paid) for something dated `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Revoked for compromise: nothing unsettled counts.
    Compromised,
    /// Suspended now: retry once the suspension lapses.
    Suspended,
    /// `t` is before the membership started.
    NotYetMember,
    /// Revoked for departure at or before `t`.
    Departed,
    /// Level too low at `t` (no endorsement valid at `t` with the scope, for L2).
    NotTrusted,
}

impl Member {
    pub fn is_revoked(&self) -> bool {
        self.revocation.is_some()
    }

    /// Suspended at `now` (a lapsed suspension no longer counts).
    pub fn is_suspended(&self, now: u64) -> bool {
        !self.is_revoked() && self.suspension.as_ref().is_some_and(|s| now < s.until)
    }

    /// Neither revoked nor suspended at `now`.
    pub fn is_active(&self, now: u64) -> bool {
        !self.is_revoked() && !self.is_suspended(now)
    }

    /// Weight in the consortium's total: L1 members not revoked. A suspended member keeps its
    /// weight in the total (so suspending members cannot shrink the quorum) but cannot vote.
    pub fn voting_weight(&self) -> u64 {
        if !self.is_revoked() && self.level == TrustLevel::L1 {
            self.weight
        } else {
            0
        }
    }

    pub fn status(&self, now: u64) -> MemberStatus {
        if self.is_revoked() {
            MemberStatus::Revoked
        } else if self.is_suspended(now) {
            MemberStatus::Suspended
        } else {
            MemberStatus::Active
        }
    }

    /// The endorsement in force: the latest one.
    pub fn endorsement(&self) -> Option<&Endorsement> {
        self.endorsements.last()
    }

    /// When this key was revoked for compromise, if it was.
    pub fn compromised_at(&self) -> Option<u64> {
        self.revocation
            .as_ref()
            .filter(|r| r.kind == RevocationKind::Compromise)
            .map(|r| r.at.time)
    }

    /// Level at time `t`: L2 needs an endorsement covering `t` whose signing key had not been
    /// revoked for compromise by `t`.
    pub fn level_at(
        &self,
        t: u64,
        mut endorser_compromised_at: impl FnMut(&[u8]) -> Option<u64>,
    ) -> TrustLevel {
        self.level_with_scope_at(t, None, &mut endorser_compromised_at)
    }

    fn level_with_scope_at(
        &self,
        t: u64,
        scope: Option<&str>,
        endorser_compromised_at: &mut impl FnMut(&[u8]) -> Option<u64>,
    ) -> TrustLevel {
        match self.level {
            TrustLevel::L2 => {
                let endorsed = self.endorsements.iter().any(|e| {
                    e.covers(t)
                        && scope.is_none_or(|s| e.has_scope(s))
                        && endorser_compromised_at(e.endorser_key.as_slice()).is_none_or(|c| t < c)
                });
                if endorsed {
                    TrustLevel::L2
                } else {
                    TrustLevel::L3
                }
            }
            l => l,
        }
    }

    /// May this key sign (or be paid) with `scope` at level `min` for something dated `t`,
    /// judged at `now`? `endorser_compromised_at(key)` answers when an endorser key was
    /// revoked for compromise (callers read it from the consortium and cache it).
    pub fn standing_at(
        &self,
        t: u64,
        now: u64,
        min: TrustLevel,
        scope: &str,
        mut endorser_compromised_at: impl FnMut(&[u8]) -> Option<u64>,
    ) -> Result<(), Refusal> {
        if self.compromised_at().is_some() {
            return Err(Refusal::Compromised);
        }
        if self.is_suspended(now) {
            return Err(Refusal::Suspended);
        }
        if t < self.since.time {
            return Err(Refusal::NotYetMember);
        }
        if self.revocation.as_ref().is_some_and(|r| t >= r.at.time) {
            return Err(Refusal::Departed);
        }
        let level = self.level_with_scope_at(t, Some(scope), &mut endorser_compromised_at);
        if !level.at_least(min) {
            return Err(Refusal::NotTrusted);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(level: TrustLevel) -> Member {
        Member {
            pubkey: Binary::from(vec![1; 32]),
            level,
            weight: 1,
            endorsements: vec![],
            since: Moment {
                height: 1,
                time: 100,
            },
            suspension: None,
            revocation: None,
        }
    }

    fn revoke(m: &mut Member, kind: RevocationKind, time: u64) {
        m.revocation = Some(Revocation {
            kind,
            at: Moment { height: 9, time },
            reason: "r".into(),
        });
    }

    const NONE: fn(&[u8]) -> Option<u64> = |_| None;

    #[test]
    fn judged_at_signing_time() {
        let mut m = member(TrustLevel::L1);
        let ok = |m: &Member, t| m.standing_at(t, 1_000, TrustLevel::L2, "settle", NONE);
        assert_eq!(ok(&m, 99), Err(Refusal::NotYetMember));
        assert_eq!(ok(&m, 100), Ok(()));
        revoke(&mut m, RevocationKind::Departure, 500);
        assert_eq!(ok(&m, 499), Ok(()), "signed before the departure");
        assert_eq!(ok(&m, 500), Err(Refusal::Departed));
        revoke(&mut m, RevocationKind::Compromise, 500);
        assert_eq!(ok(&m, 499), Err(Refusal::Compromised), "nothing counts");
        let mut s = member(TrustLevel::L1);
        s.suspension = Some(Suspension {
            at: Moment::default(),
            until: 2_000,
            reason: "r".into(),
        });
        assert_eq!(ok(&s, 200), Err(Refusal::Suspended));
        assert_eq!(
            s.standing_at(200, 2_000, TrustLevel::L2, "settle", NONE),
            Ok(()),
            "a suspension lapses"
        );
        assert_eq!(s.status(1_999), MemberStatus::Suspended);
        assert_eq!(s.status(2_000), MemberStatus::Active);
    }

    #[test]
    fn l2_needs_an_endorsement_at_t_from_an_uncompromised_key() {
        let mut m = member(TrustLevel::L2);
        let e = |from, until, key: u8| Endorsement {
            endorser: Addr::unchecked("l1"),
            endorser_key: Binary::from(vec![key; 32]),
            scopes: vec!["settle".into()],
            valid_from: from,
            valid_until: until,
        };
        m.endorsements = vec![e(100, 300, 7), e(300, 600, 8)];
        let at = |m: &Member, t, scope| {
            m.standing_at(t, 1_000, TrustLevel::L2, scope, |k: &[u8]| {
                (k[0] == 7).then_some(250)
            })
        };
        assert_eq!(
            at(&m, 200, "settle"),
            Ok(()),
            "key 7 compromised only at 250"
        );
        assert_eq!(at(&m, 260, "settle"), Err(Refusal::NotTrusted));
        assert_eq!(at(&m, 400, "settle"), Ok(()), "the renewal covers 400");
        assert_eq!(at(&m, 400, "discovery"), Err(Refusal::NotTrusted));
        assert_eq!(at(&m, 600, "settle"), Err(Refusal::NotTrusted), "lapsed");
        assert_eq!(m.level_at(400, NONE), TrustLevel::L2);
        assert_eq!(m.level_at(700, NONE), TrustLevel::L3);
        assert_eq!(
            m.level_at(260, |k: &[u8]| (k[0] == 7).then_some(250)),
            TrustLevel::L3
        );
        assert_eq!(
            m.standing_at(700, 1_000, TrustLevel::L3, "settle", NONE),
            Ok(())
        );
    }
}
