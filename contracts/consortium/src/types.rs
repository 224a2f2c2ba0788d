//! Domain types used both in messages and in storage (so `msg` and `state` both import them
//! and never each other's). The member record itself is part of the read interface and lives
//! in `garden_wire::member`.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Binary, Decimal};
use cw_utils::{Duration, Expiration, Threshold};
use garden_wire::{RevocationKind, TrustLevel};

use crate::tally::{Vote, Votes};

/// 7 days of voting: the zone's blocks are fast but members may be isolated for days.
pub const DEFAULT_VOTING_PERIOD: Duration = Duration::Time(7 * 24 * 3600);
/// Longest proposal description, bytes.
pub const MAX_DESCRIPTION: usize = 1024;

/// Governance parameters, changed by an `UpdateParams` proposal or by the admin.
#[cw_serde]
pub struct Params {
    /// Vote rule (cw-utils). Default: 2/3 quorum of L1 weight and 2/3 of yes among yes+no.
    pub threshold: Threshold,
    /// How long a proposal stays open. Default 7 days.
    pub voting_period: Duration,
    /// How long after the voting period a passed proposal may still be executed (same kind,
    /// time or height, as `voting_period`). Default 7 days.
    pub execution_period: Duration,
    /// Share of the L1 weight (the target's own weight excluded) whose approvals an
    /// emergency action needs; at least two distinct approvers are needed as well.
    /// Default 1/3.
    pub emergency_share: Decimal,
    /// Seconds within which the emergency approvals must gather. Default 1 day.
    pub emergency_window: u64,
    /// How long an emergency suspension of an L1 member lasts unless a `revoke` proposal
    /// ratifies it; after it lapses the member cannot be suspended again for as long.
    /// Default 3 days.
    pub suspension_period: u64,
    /// Longest validity (`valid_until - valid_from`) of an L2 endorsement. Default 90 days.
    pub max_endorsement_secs: u64,
}

impl Default for Params {
    fn default() -> Self {
        let two_thirds = Decimal::from_ratio(2u128, 3u128);
        Params {
            threshold: Threshold::ThresholdQuorum {
                threshold: two_thirds,
                quorum: two_thirds,
            },
            voting_period: DEFAULT_VOTING_PERIOD,
            execution_period: Duration::Time(7 * 24 * 3600),
            emergency_share: Decimal::from_ratio(1u128, 3u128),
            emergency_window: 24 * 3600,
            suspension_period: 3 * 24 * 3600,
            max_endorsement_secs: 90 * 24 * 3600,
        }
    }
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
    /// Admit a new member, or re-admit a revoked one with a new key (a revoked key is never
    /// active again). `endorsement` is required for L2, refused otherwise.
    Admit {
        addr: String,
        pubkey: Binary,
        level: TrustLevel,
        weight: u64,
        endorsement: Option<SignedEndorsement>,
    },
    /// Revoke a member. On a suspended member this ratifies the suspension: the revocation
    /// takes effect from the suspension's start.
    Revoke {
        addr: String,
        reason: String,
        /// Departure (default) or compromise; see `docs/CONTRACTS.md`.
        #[serde(default)]
        kind: RevocationKind,
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
pub enum Status {
    Open,
    Passed,
    Rejected,
    Executed,
    /// Passed, but not executed before its execution deadline.
    Expired,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", format!("{self:?}").to_lowercase())
    }
}

#[cw_serde]
pub struct Ballot {
    pub weight: u64,
    pub vote: Vote,
}

/// A proposal as stored (and answered, with its id and current status).
#[cw_serde]
pub struct Proposal {
    pub title: String,
    pub description: String,
    pub action: Action,
    pub proposer: Addr,
    pub start_height: u64,
    pub expires: Expiration,
    /// Last moment a passed proposal may be executed (`None` on proposals made before v0.2:
    /// `expires` + the current `execution_period`).
    #[serde(default)]
    pub execute_by: Option<Expiration>,
    /// Threshold and total voting weight frozen when the proposal opened (as cw3-flex does).
    pub threshold: Threshold,
    pub total_weight: u64,
    pub votes: Votes,
    pub status: Status,
}
