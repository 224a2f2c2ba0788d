//! Storage: config, admin, the open channel, batch records, nonce floors. The item life
//! cycle (pending / released entries and settled bitmaps) lives in [`crate::items`].

use cosmwasm_schema::cw_serde;
use cosmwasm_std::Addr;
use cw_controllers::Admin;
use cw_storage_plus::{Item, Map};
use garden_wire::ibc::Route;

use crate::types::{BatchInfo, GatewayParams};

/// The same storage names and layouts as the settlement contract's, in this contract's own
/// storage: a key's nonce floor, and the nonce hours already pruned.
pub use garden_settlement::state::{NONCE_FLOORS, PRUNED_BELOW};

#[cw_serde]
pub struct Config {
    /// garden-consortium on this chain (read raw: membership at `signed_at`).
    pub consortium: Addr,
    pub params: GatewayParams,
    /// Where the channel to the settlement contract may go.
    pub route: Option<Route>,
}

pub const CONFIG: Item<Config> = Item::new("config");
/// Governance admin (typically the x/gov module account).
pub const ADMIN: Admin = Admin::new("admin");
/// The open channel to the settlement contract (set on connect, cleared on a close confirm or
/// when the route changes).
pub use garden_wire::ibc::CHANNEL;
pub const BATCH_COUNT: Item<u64> = Item::new("batch_count");
/// Batches that forwarded something: the last [`MAX_BATCH_RECORDS`], and every pending one.
pub const BATCHES: Map<u64, BatchInfo> = Map::new("batches");

pub const MAX_BATCH_RECORDS: u64 = 1_000;
/// Stale entries and bitmaps deleted at most per submitted batch (incremental pruning).
pub const PRUNE_PER_BATCH: usize = 16;
