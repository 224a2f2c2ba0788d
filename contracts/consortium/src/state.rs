use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Binary, Timestamp};
use cw_storage_plus::{Item, Map, SnapshotMap, Strategy};
use cw_utils::{Duration, Expiration, Threshold};
use garden_wire::membership::Endorsement;
use garden_wire::TrustLevel;

use crate::msg::{Action, Params};
use crate::tally::Votes;

#[cw_serde]
pub struct Member {
    pub pubkey: Binary,
    pub level: TrustLevel,
    pub weight: u64,
    pub endorsement: Option<Endorsement>,
    /// Height at which the member was (last) admitted.
    pub since_height: u64,
    pub revoked_at_height: Option<u64>,
}

impl Member {
    pub fn is_active(&self) -> bool {
        self.revoked_at_height.is_none()
    }
    /// Voting weight: only active L1 members govern.
    pub fn voting_weight(&self) -> u64 {
        if self.is_active() && self.level == TrustLevel::L1 {
            self.weight
        } else {
            0
        }
    }
}

#[cw_serde]
pub enum Status {
    Open,
    Passed,
    Rejected,
    Executed,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", format!("{self:?}").to_lowercase())
    }
}

#[cw_serde]
pub struct Proposal {
    pub title: String,
    pub description: String,
    pub action: Action,
    pub proposer: Addr,
    pub start_height: u64,
    pub expires: Expiration,
    /// Threshold and total voting weight frozen when the proposal opened (as cw3-flex does).
    pub threshold: Threshold,
    pub total_weight: u64,
    pub votes: Votes,
    pub status: Status,
}

#[cw_serde]
pub struct Revocation {
    pub reason: String,
    pub emergency: bool,
}

#[cw_serde]
pub struct EmergencyState {
    pub reason: String,
    pub approvers: Vec<Addr>,
    pub started_at: Timestamp,
}

#[cw_serde]
pub struct Config {
    pub params: Params,
    /// Governance admin (typically the x/gov module account): may apply any action directly.
    pub admin: Option<Addr>,
}

pub const CONFIG: Item<Config> = Item::new("config");
pub const MEMBERS: Map<&Addr, Member> = Map::new("members");
/// Attestation key -> member address; kept after revocation so that a revoked signer is
/// reported as revoked, not unknown.
pub const PUBKEYS: Map<&[u8], Addr> = Map::new("pubkeys");
/// Voting weight per L1 member with history, so that a vote uses the weight the voter had
/// when the proposal opened (the cw4/cw3-flex snapshot pattern).
pub const VOTING_WEIGHTS: SnapshotMap<&Addr, u64> = SnapshotMap::new(
    "vw",
    "vw__checkpoints",
    "vw__changelog",
    Strategy::EveryBlock,
);
pub const TOTAL_WEIGHT: Item<u64> = Item::new("total_weight");
/// (height, member) -> why; answers "revocations since height" with one range scan.
pub const REVOCATIONS: Map<(u64, &Addr), Revocation> = Map::new("revocations");
pub const PROPOSALS: Map<u64, Proposal> = Map::new("proposals");
pub const PROPOSAL_COUNT: Item<u64> = Item::new("proposal_count");
pub const BALLOTS: Map<(u64, &Addr), crate::msg::Ballot> = Map::new("ballots");
pub const EMERGENCY: Map<&Addr, EmergencyState> = Map::new("emergency");

/// Defaults for `Params` pieces; 7 days of voting as the zone's blocks are fast but members
/// may be isolated for days.
pub const DEFAULT_VOTING_PERIOD: Duration = Duration::Time(7 * 24 * 3600);

pub fn next_proposal_id(store: &mut dyn cosmwasm_std::Storage) -> cosmwasm_std::StdResult<u64> {
    let id = PROPOSAL_COUNT.may_load(store)?.unwrap_or_default() + 1;
    PROPOSAL_COUNT.save(store, &id)?;
    Ok(id)
}
