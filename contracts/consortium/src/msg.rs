use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, Binary, Decimal};
use cw_utils::{Duration, Expiration, Threshold};
use garden_wire::TrustLevel;

use crate::state::Status;
use crate::tally::{Vote, Votes};

pub use garden_wire::membership::{Endorsement, MemberResponse, MemberStatus};

/// Governance parameters, changed by an `UpdateParams` proposal or by the admin.
#[cw_serde]
pub struct Params {
    /// Vote rule (cw-utils). Default: 2/3 quorum of L1 weight and 2/3 of yes among yes+no.
    pub threshold: Threshold,
    /// How long a proposal stays open. Default 7 days.
    pub voting_period: Duration,
    /// Distinct L1 members needed for an emergency revocation (>= 2). Default 2.
    pub emergency_quorum: u32,
    /// Seconds within which the emergency approvals must gather. Default 1 day.
    pub emergency_window: u64,
}

impl Default for Params {
    fn default() -> Self {
        let two_thirds = Decimal::from_ratio(2u128, 3u128);
        Params {
            threshold: Threshold::ThresholdQuorum {
                threshold: two_thirds,
                quorum: two_thirds,
            },
            voting_period: crate::state::DEFAULT_VOTING_PERIOD,
            emergency_quorum: 2,
            emergency_window: 24 * 3600,
        }
    }
}

#[cw_serde]
pub struct MemberInit {
    pub addr: String,
    /// Ed25519 attestation public key, 32 bytes.
    pub pubkey: Binary,
    pub level: TrustLevel,
    pub weight: u64,
}

#[cw_serde]
pub struct InstantiateMsg {
    /// Initial members. Only L1 and L3 can be listed here (L2 needs an endorsement); at least
    /// one L1 member with weight > 0.
    pub members: Vec<MemberInit>,
    /// Defaults to `Params::default()`.
    pub params: Option<Params>,
    /// Governance admin allowed to apply actions directly (x/gov module account), if any.
    pub admin: Option<String>,
}

/// An L1 member's signed endorsement of an L2 member (garden-wire `endorsement` v1 bytes,
/// domain = this chain id and this contract's address).
#[cw_serde]
pub struct SignedEndorsement {
    pub endorser: String,
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub valid_from: u64,
    pub valid_until: u64,
    /// Ed25519 signature by the endorser's attestation key, 64 bytes.
    pub signature: Binary,
}

/// What a proposal (or the admin) does when applied.
#[cw_serde]
pub enum Action {
    /// Admit (or re-admit a revoked) member. `endorsement` is required for L2, refused otherwise.
    Admit {
        addr: String,
        pubkey: Binary,
        level: TrustLevel,
        weight: u64,
        endorsement: Option<SignedEndorsement>,
    },
    Revoke {
        addr: String,
        reason: String,
    },
    SetTrustLevel {
        addr: String,
        level: TrustLevel,
        endorsement: Option<SignedEndorsement>,
    },
    SetWeight {
        addr: String,
        weight: u64,
    },
    UpdateParams {
        params: Params,
    },
}

#[cw_serde]
pub enum ExecuteMsg {
    /// L1 only. The proposer's weight is counted as a yes vote.
    Propose {
        title: String,
        description: String,
        action: Action,
    },
    /// L1 members with weight when the proposal opened. A vote that makes the proposal pass
    /// marks it `passed`; as in cw3, its action is applied by a separate `execute`.
    Vote { proposal_id: u64, vote: Vote },
    /// Anyone: apply a passed proposal's action (once).
    Execute { proposal_id: u64 },
    /// Mark an expired or hopeless proposal as rejected.
    Close { proposal_id: u64 },
    /// L1 only: approve revoking `addr` now; applied when `emergency_quorum` distinct L1
    /// members approved within `emergency_window` seconds.
    EmergencyRevoke { addr: String, reason: String },
    /// The sender registers itself at L2 (or renews) with an L1 member's endorsement.
    RegisterEndorsed {
        pubkey: Binary,
        endorsement: SignedEndorsement,
    },
    /// Admin only (x/gov `MsgExecuteContract`): apply an action without a vote.
    AdminExecute { action: Action },
    /// Admin only: hand over or drop the admin role.
    UpdateAdmin { admin: Option<String> },
}

#[cw_serde]
pub struct MigrateMsg {}

#[cw_serde]
pub struct Ballot {
    pub weight: u64,
    pub vote: Vote,
}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(ConfigResponse)]
    Config {},
    /// Any member, active or revoked.
    #[returns(Option<MemberResponse>)]
    Member { addr: String },
    /// Member owning this 32-byte attestation key (used by the settlement contract).
    #[returns(Option<MemberResponse>)]
    MemberByPubkey { pubkey: Binary },
    /// Active, at least `min_level` (default L3) now, and for L2 endorsed for `scope` if given.
    #[returns(bool)]
    IsMember {
        addr: String,
        min_level: Option<TrustLevel>,
        scope: Option<String>,
    },
    /// Effective trust level now; `None` for unknown or revoked.
    #[returns(TrustLevelResponse)]
    TrustLevel { addr: String },
    #[returns(MembersResponse)]
    ListMembers {
        start_after: Option<String>,
        limit: Option<u32>,
    },
    #[returns(u64)]
    TotalWeight {},
    /// Revocations at height >= `height`, in height order; page with the last (height, addr).
    #[returns(RevocationsResponse)]
    RevocationsSince {
        height: u64,
        start_after: Option<(u64, String)>,
        limit: Option<u32>,
    },
    #[returns(ProposalResponse)]
    Proposal { proposal_id: u64 },
    #[returns(ProposalsResponse)]
    ListProposals {
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    #[returns(Option<VoteInfo>)]
    Vote { proposal_id: u64, voter: String },
    #[returns(VotesResponse)]
    ListVotes {
        proposal_id: u64,
        start_after: Option<String>,
        limit: Option<u32>,
    },
    #[returns(Option<EmergencyResponse>)]
    Emergency { addr: String },
}

#[cw_serde]
pub struct ConfigResponse {
    pub params: Params,
    pub admin: Option<Addr>,
}

#[cw_serde]
pub struct TrustLevelResponse {
    pub level: Option<TrustLevel>,
}

#[cw_serde]
pub struct MembersResponse {
    pub members: Vec<MemberResponse>,
}

#[cw_serde]
pub struct RevocationInfo {
    pub height: u64,
    pub addr: Addr,
    pub reason: String,
    pub emergency: bool,
}

#[cw_serde]
pub struct RevocationsResponse {
    pub revocations: Vec<RevocationInfo>,
}

#[cw_serde]
pub struct ProposalResponse {
    pub id: u64,
    pub title: String,
    pub description: String,
    pub action: Action,
    pub proposer: Addr,
    pub start_height: u64,
    pub expires: Expiration,
    pub threshold: Threshold,
    pub total_weight: u64,
    pub votes: Votes,
    /// Status with expiry taken into account (an open proposal past expiry shows its outcome).
    pub status: Status,
}

#[cw_serde]
pub struct ProposalsResponse {
    pub proposals: Vec<ProposalResponse>,
}

#[cw_serde]
pub struct VoteInfo {
    pub proposal_id: u64,
    pub voter: Addr,
    pub vote: Vote,
    pub weight: u64,
}

#[cw_serde]
pub struct VotesResponse {
    pub votes: Vec<VoteInfo>,
}

#[cw_serde]
pub struct EmergencyResponse {
    pub reason: String,
    pub approvers: Vec<Addr>,
    /// Unix seconds at which the current approval round started.
    pub started_at: u64,
}
