//! Migration from earlier versions (cw2-checked).
//!
//! v0.1 -> v0.2 rewrites what changed shape:
//! * the config: the admin moves to its cw-controllers item; `emergency_quorum` (a count)
//!   gives way to `emergency_share` and the other new parameters take their defaults;
//! * every member: `since_height` -> `since` (time unknown: 0, i.e. "member since ever", as
//!   v0.1 judged it), `revoked_at_height` -> a **compromise** revocation (v0.1 refused
//!   everything unsettled from a revoked key, which is what compromise means now; the time is
//!   the migration's), `endorsement` -> `endorsements` with the endorser's current key;
//! * revocation records gain kind and time; proposals are rewritten to the new `Action` and
//!   `Params` (an open `update_params` proposal keeps the v0.1 values it carried).
//!
//! The `pubkeys` index, ballots, the voting-weight snapshots and emergency rounds keep their
//! layout. Member and proposal counts of a consortium are small, so one transaction does it.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Binary, DepsMut, Env, Order, StdResult, Storage};
use cw_storage_plus::{Item, Map};
use cw_utils::{Duration, Expiration, Threshold};
use garden_wire::member::{Endorsement, Revocation as NewRevocation};
use garden_wire::{Member, Moment, RevocationKind, TrustLevel};

use crate::state::{
    moment, Config, RevocationRecord, ADMIN, CONFIG, MEMBERS, PROPOSALS, REVOCATIONS,
};
use crate::tally::Votes;
use crate::types::{Action, Params, Proposal, SignedEndorsement, Status};
use crate::ContractError;

pub mod v0_1 {
    use super::*;

    #[cw_serde]
    pub struct Params {
        pub threshold: Threshold,
        pub voting_period: Duration,
        pub emergency_quorum: u32,
        pub emergency_window: u64,
    }

    #[cw_serde]
    pub struct Config {
        pub params: Params,
        pub admin: Option<Addr>,
    }

    #[cw_serde]
    pub struct Endorsement {
        pub endorser: Addr,
        pub scopes: Vec<String>,
        pub valid_from: u64,
        pub valid_until: u64,
    }

    #[cw_serde]
    pub struct Member {
        pub pubkey: Binary,
        pub level: TrustLevel,
        pub weight: u64,
        pub endorsement: Option<Endorsement>,
        pub since_height: u64,
        pub revoked_at_height: Option<u64>,
    }

    #[cw_serde]
    pub struct Revocation {
        pub reason: String,
        pub emergency: bool,
    }

    #[cw_serde]
    pub enum Action {
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
    pub struct Proposal {
        pub title: String,
        pub description: String,
        pub action: Action,
        pub proposer: Addr,
        pub start_height: u64,
        pub expires: Expiration,
        pub threshold: Threshold,
        pub total_weight: u64,
        pub votes: Votes,
        pub status: Status,
    }

    const CONFIG: Item<Config> = Item::new("config");
    const MEMBERS: Map<&Addr, Member> = Map::new("members");
    const REVOCATIONS: Map<(u64, &Addr), Revocation> = Map::new("revocations");
    const PROPOSALS: Map<u64, Proposal> = Map::new("proposals");

    fn params(old: Params) -> super::Params {
        super::Params {
            threshold: old.threshold,
            voting_period: old.voting_period,
            emergency_window: old.emergency_window,
            execution_period: match old.voting_period {
                Duration::Height(h) => Duration::Height(h),
                Duration::Time(_) => super::Params::default().execution_period,
            },
            ..super::Params::default()
        }
    }

    fn action(old: Action) -> super::Action {
        match old {
            Action::Admit {
                addr,
                pubkey,
                level,
                weight,
                endorsement,
            } => super::Action::Admit {
                addr,
                pubkey,
                level,
                weight,
                endorsement,
            },
            Action::Revoke { addr, reason } => super::Action::Revoke {
                addr,
                reason,
                kind: RevocationKind::Departure,
            },
            Action::SetTrustLevel {
                addr,
                level,
                endorsement,
            } => super::Action::SetTrustLevel {
                addr,
                level,
                endorsement,
            },
            Action::SetWeight { addr, weight } => super::Action::SetWeight { addr, weight },
            Action::UpdateParams { params: p } => super::Action::UpdateParams { params: params(p) },
        }
    }

    pub fn migrate(mut deps: DepsMut, env: &Env) -> Result<usize, ContractError> {
        let now = moment(env);
        let old_cfg = CONFIG.load(deps.storage)?;
        super::CONFIG.save(
            deps.storage,
            &super::Config {
                params: params(old_cfg.params),
            },
        )?;
        ADMIN.set(deps.branch(), old_cfg.admin)?;

        let old: Vec<(Addr, Member)> = MEMBERS
            .range(deps.storage, None, None, Order::Ascending)
            .collect::<StdResult<_>>()?;
        let keys: std::collections::BTreeMap<Addr, Binary> = old
            .iter()
            .map(|(a, m)| (a.clone(), m.pubkey.clone()))
            .collect();
        let reasons = old_reasons(deps.storage)?;
        for (addr, m) in &old {
            let revocation = m.revoked_at_height.map(|height| super::NewRevocation {
                kind: RevocationKind::Compromise,
                at: Moment {
                    height,
                    time: now.time,
                },
                reason: reasons
                    .get(&(height, addr.clone()))
                    .map(|r| r.reason.clone())
                    .unwrap_or_default(),
            });
            let endorsements = m
                .endorsement
                .iter()
                .map(|e| super::Endorsement {
                    endorser_key: keys.get(&e.endorser).cloned().unwrap_or_default(),
                    endorser: e.endorser.clone(),
                    scopes: e.scopes.clone(),
                    valid_from: e.valid_from,
                    valid_until: e.valid_until,
                })
                .collect();
            let new = super::Member {
                pubkey: m.pubkey.clone(),
                level: m.level,
                weight: m.weight,
                endorsements,
                since: Moment {
                    height: m.since_height,
                    time: 0,
                },
                suspension: None,
                revocation,
            };
            super::MEMBERS.save(deps.storage, addr, &new)?;
        }
        for ((height, addr), r) in reasons {
            let record = RevocationRecord {
                reason: r.reason,
                kind: RevocationKind::Compromise,
                effective: Moment {
                    height,
                    time: now.time,
                },
                emergency: r.emergency,
            };
            super::REVOCATIONS.save(deps.storage, (height, &addr), &record)?;
        }
        let proposals: Vec<(u64, Proposal)> = PROPOSALS
            .range(deps.storage, None, None, Order::Ascending)
            .collect::<StdResult<_>>()?;
        for (id, p) in proposals {
            let new = super::Proposal {
                title: p.title,
                description: p.description,
                action: action(p.action),
                proposer: p.proposer,
                start_height: p.start_height,
                expires: p.expires,
                execute_by: None,
                threshold: p.threshold,
                total_weight: p.total_weight,
                votes: p.votes,
                status: p.status,
            };
            super::PROPOSALS.save(deps.storage, id, &new)?;
        }
        Ok(old.len())
    }

    fn old_reasons(
        storage: &dyn Storage,
    ) -> StdResult<std::collections::BTreeMap<(u64, Addr), Revocation>> {
        REVOCATIONS
            .range(storage, None, None, Order::Ascending)
            .collect()
    }
}
