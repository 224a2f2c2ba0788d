//! Trust levels and the membership answer shared by the consortium contract, the settlement
//! contract and the sidecar's connection gater.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Binary};

use crate::member::{Endorsement, Member, Moment, Revocation, Suspension};
pub use crate::member::{MemberStatus, TrustLevel};

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

impl Member {
    /// The query answer for this record at `now`.
    pub fn to_response(
        &self,
        addr: Addr,
        now: u64,
        endorser_compromised_at: impl FnMut(&[u8]) -> Option<u64>,
    ) -> MemberResponse {
        MemberResponse {
            addr,
            pubkey: self.pubkey.clone(),
            level: self.level,
            effective_level: self.level_at(now, endorser_compromised_at),
            weight: self.weight,
            status: self.status(now),
            since: self.since,
            revoked_at_height: self.revocation.as_ref().map(|r| r.at.height),
            revocation: self.revocation.clone(),
            suspension: self.suspension.clone().filter(|_| self.is_suspended(now)),
            endorsement: self.endorsement().cloned(),
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
