//! Migration from earlier versions (cw2-checked).
//!
//! v0.2 -> v0.3 (IBC mode): nothing to rewrite. The stored config's `consortium` address
//! reads as `Some`, the new `route` is missing and reads as `None` (no channel can open until
//! the admin sends `set_route`).
//!
//! v0.1 -> v0.2: the config loses `min_lock_secs` for `withdrawal_notice_secs` (the larger of
//! the old lock and the window) and its admin moves to the cw-controllers item; escrows lose
//! `locked_until` (a consumer now asks for a withdrawal and waits out the notice; nothing is
//! pending after the migration); v0.1 nonce bitmaps stay until the incremental pruning
//! deletes them (no v0.1-style nonce passes the v0.2 nonce rule, so none can be replayed).
//! Offers, payments, totals and batch records keep their layout. The consortium must be
//! migrated first: this contract reads its v0.2 member records.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, DepsMut, Env, Order, StdResult, Uint128};
use cw_storage_plus::{Item, Map};
use garden_wire::consortium::CONTRACT_NAME as CONSORTIUM_NAME;
use garden_wire::TrustLevel;

use crate::state::{Config, ADMIN, CONFIG, ESCROWS};
use crate::types::{Escrow, Params};
use crate::ContractError;

pub mod v0_1 {
    use super::*;

    #[cw_serde]
    pub struct Params {
        pub max_batch: u32,
        pub window_secs: u64,
        pub max_future_secs: u64,
        pub min_level: TrustLevel,
        pub scope: String,
        pub min_lock_secs: u64,
        pub verify_chunk: u32,
    }

    #[cw_serde]
    pub struct Config {
        pub consortium: Addr,
        pub denom: String,
        pub params: Params,
        pub admin: Option<Addr>,
    }

    #[cw_serde]
    pub struct Escrow {
        pub balance: Uint128,
        pub locked_until: u64,
    }

    const CONFIG: Item<Config> = Item::new("config");
    const ESCROWS: Map<&Addr, Escrow> = Map::new("escrows");

    pub fn migrate(mut deps: DepsMut, _env: &Env) -> Result<usize, ContractError> {
        let old = CONFIG.load(deps.storage)?;
        let consortium = cw2::query_contract_info(&deps.querier, &old.consortium)?;
        if consortium.contract != CONSORTIUM_NAME || consortium.version.starts_with("0.1.") {
            return Err(ContractError::Migration {
                reason: format!(
                    "the consortium {} runs {} {}: migrate it to 0.2 first",
                    old.consortium, consortium.contract, consortium.version
                ),
            });
        }
        let p = old.params;
        let params = super::Params {
            max_batch: p.max_batch,
            window_secs: p.window_secs,
            max_future_secs: p.max_future_secs,
            min_level: p.min_level,
            scope: p.scope,
            withdrawal_notice_secs: p.min_lock_secs.max(p.window_secs),
            verify_chunk: p.verify_chunk,
        };
        super::CONFIG.save(
            deps.storage,
            &super::Config {
                consortium: Some(old.consortium),
                denom: old.denom,
                params,
                route: None,
            },
        )?;
        ADMIN.set(deps.branch(), old.admin)?;
        let escrows: Vec<(Addr, Escrow)> = ESCROWS
            .range(deps.storage, None, None, Order::Ascending)
            .collect::<StdResult<_>>()?;
        for (consumer, e) in &escrows {
            let new = super::Escrow {
                balance: e.balance,
                withdrawal: None,
            };
            super::ESCROWS.save(deps.storage, consumer, &new)?;
        }
        Ok(escrows.len())
    }
}

#[cfg(test)]
mod tests {
    use cosmwasm_std::testing::{mock_dependencies, mock_env};
    use cosmwasm_std::Storage;

    use crate::msg::MigrateMsg;
    use crate::state::CONFIG;

    /// v0.2 -> v0.3: the stored config has no `route` and a plain consortium address; it
    /// loads as a single-chain config with no route, and migrate only bumps the version.
    #[test]
    fn a_v0_2_config_loads_and_migrates() {
        let mut deps = mock_dependencies();
        let v0_2 = br#"{"consortium":"cosmwasm1consortium","denom":"stake","params":{"max_batch":1000,"window_secs":604800,"max_future_secs":300,"min_level":"l2","scope":"settle","withdrawal_notice_secs":691200,"verify_chunk":200}}"#;
        deps.storage.set(b"config", v0_2);
        cw2::set_contract_version(&mut deps.storage, crate::contract::CONTRACT_NAME, "0.2.0")
            .unwrap();
        let cfg = CONFIG.load(&deps.storage).unwrap();
        assert_eq!(cfg.consortium.unwrap().as_str(), "cosmwasm1consortium");
        assert!(cfg.route.is_none());
        let res = crate::contract::migrate(deps.as_mut(), mock_env(), MigrateMsg {}).unwrap();
        assert!(res
            .attributes
            .iter()
            .any(|a| a.key == "from_version" && a.value == "0.2.0"));
        let v = cw2::get_contract_version(&deps.storage).unwrap();
        assert_eq!(v.version, crate::contract::CONTRACT_VERSION);
        assert_eq!(CONFIG.load(&deps.storage).unwrap().denom, "stake");
    }
}
