//! Trust levels and the membership answer shared by the consortium contract, the settlement
//! contract and the sidecar's connection gater.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Binary};

use crate::member::{Endorsement, Moment, Revocation, Suspension};

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

/// What the consortium answers about one member (`member {addr}` or `member_by_pubkey`).
#[cw_serde]
pub struct MemberResponse {
    pub addr: Addr,
    /// Ed25519 attestation public key (32 bytes) this answer is about.
    pub pubkey: Binary,
    /// Recorded level.
    pub level: TrustLevel,
    /// Level that applies now: an L2 member without an endorsement valid now counts as L3.
    pub effective_level: TrustLevel,
    pub weight: u64,
    pub status: MemberStatus,
    /// When this key's membership started.
    pub since: Moment,
    /// Block height of the revocation when `status` is Revoked (kept for v0.1 clients).
    pub revoked_at_height: Option<u64>,
    pub revocation: Option<Revocation>,
    pub suspension: Option<Suspension>,
    /// The endorsement in force (the latest), for L2 members.
    pub endorsement: Option<Endorsement>,
}

impl MemberResponse {
    /// Whether this member may act with `scope` at level `min` now (active, effective level
    /// high enough, and for L2 the scope is endorsed).
    pub fn allows(&self, min: TrustLevel, scope: &str) -> bool {
        if self.status != MemberStatus::Active || !self.effective_level.at_least(min) {
            return false;
        }
        match (&self.effective_level, &self.endorsement) {
            (TrustLevel::L2, Some(e)) => e.scopes.iter().any(|s| s == scope),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_order() {
        assert!(TrustLevel::L1.at_least(TrustLevel::L2));
        assert!(TrustLevel::L2.at_least(TrustLevel::L2));
        assert!(!TrustLevel::L3.at_least(TrustLevel::L2));
    }

    #[test]
    fn allows_checks_scope_and_status() {
        let mut m = MemberResponse {
            addr: Addr::unchecked("a"),
            pubkey: Binary::from(vec![0; 32]),
            level: TrustLevel::L2,
            effective_level: TrustLevel::L2,
            weight: 0,
            status: MemberStatus::Active,
            since: Moment::default(),
            revoked_at_height: None,
            revocation: None,
            suspension: None,
            endorsement: Some(Endorsement {
                endorser: Addr::unchecked("l1"),
                endorser_key: Binary::from(vec![1; 32]),
                scopes: vec!["settle".into()],
                valid_from: 0,
                valid_until: 10,
            }),
        };
        assert!(m.allows(TrustLevel::L2, "settle"));
        assert!(!m.allows(TrustLevel::L2, "discovery"));
        assert!(!m.allows(TrustLevel::L1, "settle"));
        m.status = MemberStatus::Suspended;
        assert!(!m.allows(TrustLevel::L2, "settle"));
    }
}
