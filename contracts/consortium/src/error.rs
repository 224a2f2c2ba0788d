use cosmwasm_std::StdError;
use cw_utils::ThresholdError;
use thiserror::Error;

/// Every rejected input has its own variant (documented in docs/CONTRACTS.md).
/// On cosmwasm-std 3 `StdError` is not `PartialEq`: tests use `matches!`.
#[derive(Error, Debug)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),

    #[error("{0}")]
    Threshold(#[from] ThresholdError),

    #[error("{0}")]
    Admin(#[from] cw_controllers::AdminError),

    #[error("{addr} is not an active L1 member")]
    NotL1Member { addr: String },

    #[error("{addr} is suspended until {until}: it cannot vote, propose, execute or endorse")]
    Suspended { addr: String, until: u64 },

    #[error("unknown member {addr}")]
    UnknownMember { addr: String },

    #[error("{addr} is already an active member")]
    AlreadyMember { addr: String },

    #[error("{addr} is already revoked")]
    AlreadyRevoked { addr: String },

    #[error("{addr} was revoked; only a proposal can re-admit it")]
    Revoked { addr: String },

    #[error("public key must be 32 bytes, got {len}")]
    InvalidPubkey { len: usize },

    #[error("public key already belongs to {owner}")]
    DuplicatePubkey { owner: String },

    #[error("this key was revoked or retired: a member comes back only with a new key")]
    KeyRevoked,

    #[error("L2 admission needs an L1 endorsement")]
    EndorsementRequired,

    #[error("only L2 members carry an endorsement")]
    UnexpectedEndorsement,

    #[error("endorser {addr} is not an active L1 member")]
    EndorserNotL1 { addr: String },

    #[error("endorsement signature does not verify")]
    EndorsementBadSignature,

    #[error("endorsement is not valid now (valid {valid_from}..{valid_until}, now {now})")]
    EndorsementNotCurrent {
        valid_from: u64,
        valid_until: u64,
        now: u64,
    },

    #[error("endorsement is malformed: {reason}")]
    EndorsementMalformed { reason: String },

    #[error("endorsement is valid for {secs} s, longer than the maximum {max} s")]
    EndorsementTooLong { secs: u64, max: u64 },

    #[error("proposal {id} not found")]
    ProposalNotFound { id: u64 },

    #[error("proposal {id} is {status}, not {expected}")]
    WrongProposalStatus {
        id: u64,
        status: String,
        expected: String,
    },

    #[error("proposal {id} has expired")]
    ProposalExpired { id: u64 },

    #[error("proposal {id} has not expired yet")]
    ProposalNotExpired { id: u64 },

    #[error("proposal {id} no longer passes: ballots of members revoked or suspended since do not count")]
    NoLongerPasses { id: u64 },

    #[error("{voter} already voted on proposal {id}")]
    AlreadyVoted { id: u64, voter: String },

    #[error("{voter} had no voting weight when proposal {id} opened")]
    NoVotingWeight { id: u64, voter: String },

    #[error("the last L1 member (or the last voting weight) cannot be removed")]
    LastL1Member,

    #[error("invalid parameters: {reason}")]
    InvalidParams { reason: String },

    #[error("{field} is empty or too long (at most {max} bytes)")]
    InvalidText { field: String, max: usize },

    #[error(
        "{addr} was suspended until {until}; it cannot be suspended again before {cooldown_until}"
    )]
    SuspensionCooldown {
        addr: String,
        until: u64,
        cooldown_until: u64,
    },

    #[error("total weight overflows")]
    WeightOverflow,

    #[error("cannot migrate from {from}: {reason}")]
    Migration { from: String, reason: String },

    #[error("an L1 member cannot start or approve its own emergency revocation")]
    SelfEmergencyRevoke,

    #[error("{addr} already approved the emergency revocation of {target}")]
    AlreadyApproved { addr: String, target: String },

    #[error("at least one initial L1 member with weight > 0 is required")]
    NoInitialL1,
}

impl ContractError {
    /// The wire string rule (`garden_wire::check_str`: 1..=128 bytes) for a named field.
    pub fn check_str(field: &str, s: &str) -> Result<(), Self> {
        garden_wire::check_str(s).map_err(|_| ContractError::InvalidText {
            field: field.into(),
            max: garden_wire::MAX_STR_LEN,
        })
    }

    /// Free text (may be empty) of at most `max` bytes.
    pub fn check_text(field: &str, s: &str, max: usize) -> Result<(), Self> {
        garden_wire::check_text(s, max).map_err(|_| ContractError::InvalidText {
            field: field.into(),
            max,
        })
    }
}
