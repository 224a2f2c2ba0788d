//! Storage. The member maps (`members`, `pubkeys`, `retired_keys`) are the consortium's read
//! interface and are defined once, in `garden_wire::consortium`; they are re-exported here.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Binary, Env, StdResult, Storage, Timestamp};
use cw_controllers::Admin;
use cw_storage_plus::{Item, Map, SnapshotMap, Strategy};
use garden_wire::{Member, Moment, RevocationKind, TrustLevel};

pub use garden_wire::consortium::{MEMBERS, PUBKEYS, RETIRED_KEYS};

use crate::types::{Ballot, Params, Proposal};
use crate::ContractError;

#[cw_serde]
pub struct Config {
    pub params: Params,
}

/// What `revocations_since` answers about one revocation.
#[cw_serde]
pub struct RevocationRecord {
    pub reason: String,
    pub kind: RevocationKind,
    /// When it takes effect (a ratified suspension: the suspension's start).
    pub effective: Moment,
    pub emergency: bool,
}

#[cw_serde]
pub struct EmergencyState {
    pub reason: String,
    pub approvers: Vec<Addr>,
    pub started_at: Timestamp,
}

pub const CONFIG: Item<Config> = Item::new("config");
/// Governance admin (typically the x/gov module account): may apply any action directly.
pub const ADMIN: Admin = Admin::new("admin");
/// Voting weight per L1 member with history, so that a vote uses the weight the voter had
/// when the proposal opened (the cw4/cw3-flex snapshot pattern).
pub const VOTING_WEIGHTS: SnapshotMap<&Addr, u64> = SnapshotMap::new(
    "vw",
    "vw__checkpoints",
    "vw__changelog",
    Strategy::EveryBlock,
);
/// Weight of the L1 members not revoked (suspended ones included).
pub const TOTAL_WEIGHT: Item<u64> = Item::new("total_weight");
/// (height recorded, member) -> revocation; answers "revocations since height" with one scan.
pub const REVOCATIONS: Map<(u64, &Addr), RevocationRecord> = Map::new("revocations");
pub const PROPOSALS: Map<u64, Proposal> = Map::new("proposals");
pub const PROPOSAL_COUNT: Item<u64> = Item::new("proposal_count");
pub const BALLOTS: Map<(u64, &Addr), Ballot> = Map::new("ballots");
pub const EMERGENCY: Map<&Addr, EmergencyState> = Map::new("emergency");

pub fn next_proposal_id(store: &mut dyn Storage) -> StdResult<u64> {
    let id = PROPOSAL_COUNT.may_load(store)?.unwrap_or_default() + 1;
    PROPOSAL_COUNT.save(store, &id)?;
    Ok(id)
}

/// The current block as a [`Moment`].
pub fn moment(env: &Env) -> Moment {
    Moment {
        height: env.block.height,
        time: env.block.time.seconds(),
    }
}

pub fn valid_pubkey(b: &Binary) -> Result<[u8; 32], ContractError> {
    b.as_slice()
        .try_into()
        .map_err(|_| ContractError::InvalidPubkey { len: b.len() })
}

pub fn load_member(storage: &dyn Storage, addr: &Addr) -> Result<Member, ContractError> {
    MEMBERS
        .may_load(storage, addr)?
        .ok_or_else(|| ContractError::UnknownMember {
            addr: addr.to_string(),
        })
}

/// A member that is not revoked (it may be suspended: governance can still change it).
pub fn load_unrevoked(storage: &dyn Storage, addr: &Addr) -> Result<Member, ContractError> {
    let m = load_member(storage, addr)?;
    if m.is_revoked() {
        return Err(ContractError::Revoked {
            addr: addr.to_string(),
        });
    }
    Ok(m)
}

/// An L1 member that may govern now: not revoked, not suspended.
pub fn active_l1(storage: &dyn Storage, addr: &Addr, now: u64) -> Result<Member, ContractError> {
    let m = MEMBERS
        .may_load(storage, addr)?
        .filter(|m| !m.is_revoked() && m.level == TrustLevel::L1)
        .ok_or_else(|| ContractError::NotL1Member {
            addr: addr.to_string(),
        })?;
    if let Some(s) = m.suspension.as_ref().filter(|_| m.is_suspended(now)) {
        return Err(ContractError::Suspended {
            addr: addr.to_string(),
            until: s.until,
        });
    }
    Ok(m)
}
