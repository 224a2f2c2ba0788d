use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, Binary};
use cw_utils::{Expiration, Threshold};
use garden_wire::{Moment, RevocationKind, TrustLevel};

use crate::tally::{Vote, Votes};
use crate::types::{Action, Params, SignedEndorsement, Status};

pub use cw_controllers::AdminResponse;
pub use garden_wire::member::{Endorsement, Revocation, Suspension};
pub use garden_wire::membership::{MemberResponse, MemberStatus};

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

#[cw_serde]
pub enum ExecuteMsg {
    /// Active L1 only. The proposer's weight is counted as a yes vote.
    Propose {
        title: String,
        description: String,
        action: Action,
    },
    /// Active (not suspended) L1 members that had weight when the proposal opened. A vote
    /// that makes the proposal pass marks it `passed`; its action is applied by `execute`.
    Vote { proposal_id: u64, vote: Vote },
    /// Active L1 only: apply a passed proposal's action, once, before its execution deadline.
    /// Ballots of voters revoked or suspended since are not counted any more.
    Execute { proposal_id: u64 },
    /// Mark an expired or hopeless proposal as rejected.
    Close { proposal_id: u64 },
    /// Active L1 only: approve an emergency action against `addr`. When approvals from at
    /// least two active L1 members holding `emergency_share` of the L1 weight (the target's
    /// excluded) gather within `emergency_window`, an L1 target is suspended for
    /// `suspension_period` (a `revoke` proposal can ratify it), any other member is revoked
    /// for compromise at once.
    EmergencyRevoke { addr: String, reason: String },
    /// The sender registers itself at L2 (or renews) with an active L1 member's endorsement.
    RegisterEndorsed {
        pubkey: Binary,
        endorsement: SignedEndorsement,
    },
    /// Admin only (x/gov `MsgExecuteContract`): apply an action without a vote.
    AdminExecute { action: Action },
    /// Admin only: hand over or drop the admin role.
    UpdateAdmin { admin: Option<String> },
}

/// Migrates a v0.1 or v0.2 deployment to this version (see `docs/CONTRACTS.md`).
#[cw_serde]
pub struct MigrateMsg {}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(ConfigResponse)]
    Config {},
    /// Any member, active, suspended or revoked.
    #[returns(Option<MemberResponse>)]
    Member { addr: String },
    /// The membership this 32-byte attestation key was registered under (also a retired key).
    #[returns(Option<MemberResponse>)]
    MemberByPubkey { pubkey: Binary },
    /// Active, at least `min_level` (default L3) now, and for L2 endorsed for `scope` if given.
    #[returns(bool)]
    IsMember {
        addr: String,
        min_level: Option<TrustLevel>,
        scope: Option<String>,
    },
    /// Effective trust level now; `None` for unknown, suspended or revoked.
    #[returns(TrustLevelResponse)]
    TrustLevel { addr: String },
    #[returns(MembersResponse)]
    ListMembers {
        start_after: Option<String>,
        limit: Option<u32>,
    },
    #[returns(u64)]
    TotalWeight {},
    /// Revocations recorded at height >= `height`, in height order; page with the last
    /// (height, addr).
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
    /// Height at which the revocation was recorded.
    pub height: u64,
    pub addr: Addr,
    pub reason: String,
    pub kind: RevocationKind,
    /// When it takes effect (earlier than `height` for a ratified suspension).
    pub effective: Moment,
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
    /// Last moment the proposal may be executed once passed.
    pub execute_by: Expiration,
    pub threshold: Threshold,
    pub total_weight: u64,
    pub votes: Votes,
    /// Status with expiry and the execution deadline taken into account.
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
