#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{
    to_json_binary, Addr, BankMsg, Binary, Coin, Deps, DepsMut, Env, MessageInfo, Order, Response,
    StdResult, Uint128,
};
use cw2::{ensure_from_older_version, set_contract_version};
use cw_storage_plus::Bound;
use cw_utils::must_pay;
use garden_wire::attestation::Domain;
use garden_wire::{Batch, DecodeError, MAX_STR_LEN};

use crate::engine::{settle, Rules};
use crate::ledger::ChainLedger;
use crate::msg::{
    ConfigResponse, ExecuteMsg, InstantiateMsg, MigrateMsg, OfferInfo, OffersResponse, Params,
    QueryMsg, SettleBatchResponse, MAX_BATCH_CEILING, MAX_VERIFY_CHUNK,
};
use crate::state::{
    nonce_key, nonce_used, BatchRecord, Config, Escrow, Offer, Totals, BATCHES, BATCH_COUNT,
    CONFIG, ESCROWS, OFFERS, PAID, TOTALS,
};
use crate::ContractError;

pub const CONTRACT_NAME: &str = "crates.io:garden-settlement";
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");
pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 30;

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    let params = msg.params.unwrap_or_default();
    validate_params(&params)?;
    if msg.denom.is_empty() {
        return Err(ContractError::InvalidParams {
            reason: "denom is empty".into(),
        });
    }
    let consortium = deps.api.addr_validate(&msg.consortium)?;
    // Membership is read from the consortium's storage (raw queries), which answer "nothing"
    // for a wrong address instead of failing: check the cw2 name once, here.
    let is_consortium = cw2::query_contract_info(&deps.querier, &consortium)
        .is_ok_and(|v| v.contract == garden_consortium::contract::CONTRACT_NAME);
    if !is_consortium {
        return Err(ContractError::NotConsortium {
            addr: msg.consortium,
        });
    }
    let cfg = Config {
        consortium,
        denom: msg.denom,
        params,
        admin: msg.admin.map(|a| deps.api.addr_validate(&a)).transpose()?,
    };
    CONFIG.save(deps.storage, &cfg)?;
    TOTALS.save(deps.storage, &Totals::default())?;
    BATCH_COUNT.save(deps.storage, &0)?;
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("consortium", cfg.consortium))
}

pub fn validate_params(p: &Params) -> Result<(), ContractError> {
    let bad = |reason: &str| {
        Err(ContractError::InvalidParams {
            reason: reason.into(),
        })
    };
    if p.max_batch == 0 || p.max_batch > MAX_BATCH_CEILING {
        return bad("max_batch must be 1..=4000");
    }
    if p.verify_chunk > MAX_VERIFY_CHUNK {
        return bad("verify_chunk must be 0..=200");
    }
    if p.window_secs == 0 {
        return bad("window_secs must be > 0");
    }
    // An escrow must stay locked at least as long as an attestation against it can settle.
    if p.min_lock_secs < p.window_secs {
        return bad("min_lock_secs must be >= window_secs");
    }
    if p.scope.is_empty() || p.scope.len() > MAX_STR_LEN {
        return bad("scope must be 1..=128 bytes");
    }
    Ok(())
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, ContractError> {
    match msg {
        ExecuteMsg::SetOffer {
            kind,
            unit,
            unit_price,
        } => execute_set_offer(deps, env, info, kind, unit, unit_price),
        ExecuteMsg::RemoveOffer { kind } => {
            if !OFFERS.has(deps.storage, (&info.sender, &kind)) {
                return Err(ContractError::OfferNotFound {
                    provider: info.sender.into(),
                    kind,
                });
            }
            OFFERS.remove(deps.storage, (&info.sender, &kind));
            Ok(Response::new()
                .add_attribute("action", "remove_offer")
                .add_attribute("kind", kind))
        }
        ExecuteMsg::Deposit { lock_secs } => execute_deposit(deps, env, info, lock_secs),
        ExecuteMsg::Withdraw { amount } => {
            let consumer = info.sender;
            release(deps, &env, &consumer, amount, "withdraw")
        }
        ExecuteMsg::Refund { consumer } => {
            let consumer = deps.api.addr_validate(&consumer)?;
            release(deps, &env, &consumer, None, "refund")
        }
        ExecuteMsg::SettleBatch { batch, strict } => {
            execute_settle_batch(deps, env, info, batch, strict.unwrap_or(false))
        }
        ExecuteMsg::UpdateParams { params } => {
            let mut cfg = CONFIG.load(deps.storage)?;
            ensure_admin(&cfg, &info.sender)?;
            validate_params(&params)?;
            cfg.params = params;
            CONFIG.save(deps.storage, &cfg)?;
            Ok(Response::new().add_attribute("action", "update_params"))
        }
        ExecuteMsg::UpdateAdmin { admin } => {
            let mut cfg = CONFIG.load(deps.storage)?;
            ensure_admin(&cfg, &info.sender)?;
            cfg.admin = admin.map(|a| deps.api.addr_validate(&a)).transpose()?;
            CONFIG.save(deps.storage, &cfg)?;
            Ok(Response::new().add_attribute("action", "update_admin"))
        }
    }
}

fn ensure_admin(cfg: &Config, sender: &Addr) -> Result<(), ContractError> {
    match &cfg.admin {
        Some(a) if a == sender => Ok(()),
        _ => Err(ContractError::NotAdmin),
    }
}

fn execute_set_offer(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    kind: String,
    unit: String,
    unit_price: Uint128,
) -> Result<Response, ContractError> {
    for (field, v) in [("kind", &kind), ("unit", &unit)] {
        if v.is_empty() || v.len() > MAX_STR_LEN {
            return Err(ContractError::InvalidOffer {
                field: field.into(),
            });
        }
    }
    if unit_price.is_zero() {
        return Err(ContractError::InvalidOffer {
            field: "unit_price".into(),
        });
    }
    let cfg = CONFIG.load(deps.storage)?;
    let now = env.block.time.seconds();
    let member = crate::membership::member(&deps.querier, &cfg.consortium, &info.sender, now)?;
    if !member.is_some_and(|m| m.allows(cfg.params.min_level, &cfg.params.scope)) {
        return Err(ContractError::ProviderNotMember {
            addr: info.sender.into(),
        });
    }
    OFFERS.save(
        deps.storage,
        (&info.sender, &kind),
        &Offer { unit, unit_price },
    )?;
    Ok(Response::new()
        .add_attribute("action", "set_offer")
        .add_attribute("provider", info.sender)
        .add_attribute("kind", kind)
        .add_attribute("unit_price", unit_price))
}

fn execute_deposit(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    lock_secs: Option<u64>,
) -> Result<Response, ContractError> {
    let cfg = CONFIG.load(deps.storage)?;
    // Coin amounts are Uint256 on cosmwasm 3; balances here fit Uint128 (bank supply does).
    let amount =
        Uint128::try_from(must_pay(&info, &cfg.denom)?).map_err(cosmwasm_std::StdError::from)?;
    let min = cfg.params.min_lock_secs;
    let lock = lock_secs.unwrap_or(min);
    if lock < min {
        return Err(ContractError::LockTooShort {
            requested: lock,
            min,
        });
    }
    let until = env.block.time.seconds().saturating_add(lock);
    let mut e = ESCROWS
        .may_load(deps.storage, &info.sender)?
        .unwrap_or(Escrow {
            balance: Uint128::zero(),
            locked_until: 0,
        });
    e.balance += amount;
    e.locked_until = e.locked_until.max(until);
    ESCROWS.save(deps.storage, &info.sender, &e)?;
    TOTALS.update(deps.storage, |mut t| -> StdResult<_> {
        t.deposited += amount;
        Ok(t)
    })?;
    Ok(Response::new()
        .add_attribute("action", "deposit")
        .add_attribute("consumer", info.sender)
        .add_attribute("amount", amount)
        .add_attribute("locked_until", e.locked_until.to_string()))
}

/// Withdraw (consumer, part or all) and refund (anyone, all): both only once unlocked.
fn release(
    deps: DepsMut,
    env: &Env,
    consumer: &Addr,
    amount: Option<Uint128>,
    action: &str,
) -> Result<Response, ContractError> {
    let cfg = CONFIG.load(deps.storage)?;
    let mut e = ESCROWS
        .may_load(deps.storage, consumer)?
        .filter(|e| !e.balance.is_zero())
        .ok_or_else(|| ContractError::NoEscrow {
            consumer: consumer.to_string(),
        })?;
    let now = env.block.time.seconds();
    if now < e.locked_until {
        return Err(ContractError::EscrowLocked {
            consumer: consumer.to_string(),
            locked_until: e.locked_until,
            now,
        });
    }
    let amount = amount.unwrap_or(e.balance);
    if amount.is_zero() {
        return Err(ContractError::ZeroAmount);
    }
    if amount > e.balance {
        return Err(ContractError::InsufficientEscrow {
            requested: amount.to_string(),
            balance: e.balance.to_string(),
        });
    }
    e.balance -= amount;
    if e.balance.is_zero() {
        ESCROWS.remove(deps.storage, consumer);
    } else {
        ESCROWS.save(deps.storage, consumer, &e)?;
    }
    TOTALS.update(deps.storage, |mut t| -> StdResult<_> {
        t.withdrawn += amount;
        Ok(t)
    })?;
    Ok(Response::new()
        .add_message(BankMsg::Send {
            to_address: consumer.to_string(),
            amount: vec![Coin {
                denom: cfg.denom,
                amount: amount.into(),
            }],
        })
        .add_attribute("action", action)
        .add_attribute("consumer", consumer)
        .add_attribute("amount", amount))
}

fn execute_settle_batch(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    batch: Binary,
    strict: bool,
) -> Result<Response, ContractError> {
    let cfg = CONFIG.load(deps.storage)?;
    let batch =
        Batch::decode(batch.as_slice(), cfg.params.max_batch as usize).map_err(|e| match e {
            DecodeError::TooManyItems { count, max } => {
                ContractError::BatchTooLarge { size: count, max }
            }
            e => ContractError::BatchDecode(e),
        })?;
    let rules = Rules {
        domain: Domain {
            chain_id: &env.block.chain_id,
            contract: env.contract.address.as_str(),
        },
        now: env.block.time.seconds(),
        window_secs: cfg.params.window_secs,
        max_future_secs: cfg.params.max_future_secs,
        verify_chunk: cfg.params.verify_chunk as usize,
    };
    let (results, writes) = {
        let mut ledger = ChainLedger::new(
            deps.as_ref(),
            &cfg.consortium,
            rules.now,
            cfg.params.min_level,
            &cfg.params.scope,
        );
        let results = settle(&mut ledger, deps.api, &rules, &batch);
        (results, ledger.finish()?)
    };
    if strict {
        if let Some((index, Err(error))) = results.iter().enumerate().find(|(_, r)| r.is_err()) {
            return Err(ContractError::Item {
                index,
                error: *error,
            });
        }
    }

    // Apply: one write per nonce bitmap, escrow, (consumer, provider) pair.
    for (key, chunk, bits) in &writes.nonces {
        deps.storage.set(&nonce_key(key, *chunk), bits);
    }
    for (consumer, e) in &writes.escrows {
        ESCROWS.save(deps.storage, consumer, e)?;
    }
    let mut per_provider: Vec<(Addr, Uint128)> = Vec::new();
    let mut paid_total = Uint128::zero();
    for (consumer, provider, amount) in writes.paid {
        PAID.update(deps.storage, (&consumer, &provider), |p| -> StdResult<_> {
            Ok(p.unwrap_or_default() + amount)
        })?;
        paid_total += amount;
        match per_provider.iter_mut().find(|(p, _)| *p == provider) {
            Some((_, a)) => *a += amount,
            None => per_provider.push((provider, amount)),
        }
    }
    if !paid_total.is_zero() {
        TOTALS.update(deps.storage, |mut t| -> StdResult<_> {
            t.paid += paid_total;
            Ok(t)
        })?;
    }

    let codes: Vec<u8> = results
        .iter()
        .map(|r| r.err().map_or(0, |e| e as u8))
        .collect();
    let settled = codes.iter().filter(|c| **c == 0).count() as u32;
    let rejected = codes.len() as u32 - settled;
    let batch_id = BATCH_COUNT.load(deps.storage)? + 1;
    BATCH_COUNT.save(deps.storage, &batch_id)?;
    let record = BatchRecord {
        submitter: info.sender,
        height: env.block.height,
        settled,
        rejected,
        paid: paid_total,
        codes: Binary::from(codes),
    };
    BATCHES.save(deps.storage, batch_id, &record)?;

    // Rejections listed as "index:code" so indexers need not query; settled items are the rest.
    let rejected_list: Vec<String> = record
        .codes
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != 0)
        .map(|(i, c)| format!("{i}:{c}"))
        .collect();
    let data = SettleBatchResponse {
        batch_id,
        settled,
        rejected,
        paid: paid_total,
        codes: record.codes,
    };
    let mut res = Response::new()
        .add_attribute("action", "settle_batch")
        .add_attribute("batch_id", batch_id.to_string())
        .add_attribute("items", data.codes.len().to_string())
        .add_attribute("settled", settled.to_string())
        .add_attribute("rejected", rejected.to_string())
        .add_attribute("paid", paid_total)
        .set_data(to_json_binary(&data)?);
    if !rejected_list.is_empty() {
        res = res.add_attribute("rejected_items", rejected_list.join(","));
    }
    for (provider, amount) in per_provider {
        res = res.add_message(BankMsg::Send {
            to_address: provider.into_string(),
            amount: vec![Coin {
                denom: cfg.denom.clone(),
                amount: amount.into(),
            }],
        });
    }
    Ok(res)
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Config {} => {
            let c = CONFIG.load(deps.storage)?;
            to_json_binary(&ConfigResponse {
                consortium: c.consortium,
                denom: c.denom,
                params: c.params,
                admin: c.admin,
            })
        }
        QueryMsg::Offer { provider, kind } => {
            let p = deps.api.addr_validate(&provider)?;
            to_json_binary(&OFFERS.may_load(deps.storage, (&p, &kind))?)
        }
        QueryMsg::ListOffers {
            provider,
            start_after,
            limit,
        } => {
            let p = deps.api.addr_validate(&provider)?;
            let limit = limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT) as usize;
            let offers = OFFERS
                .prefix(&p)
                .range(
                    deps.storage,
                    start_after.as_deref().map(Bound::exclusive),
                    None,
                    Order::Ascending,
                )
                .take(limit)
                .map(|r| {
                    r.map(|(kind, o)| OfferInfo {
                        kind,
                        unit: o.unit,
                        unit_price: o.unit_price,
                    })
                })
                .collect::<StdResult<_>>()?;
            to_json_binary(&OffersResponse { offers })
        }
        QueryMsg::Escrow { consumer } => {
            let c = deps.api.addr_validate(&consumer)?;
            to_json_binary(&ESCROWS.may_load(deps.storage, &c)?)
        }
        QueryMsg::Paid { consumer, provider } => {
            let c = deps.api.addr_validate(&consumer)?;
            let p = deps.api.addr_validate(&provider)?;
            to_json_binary(&PAID.may_load(deps.storage, (&c, &p))?.unwrap_or_default())
        }
        QueryMsg::Totals {} => to_json_binary(&TOTALS.load(deps.storage)?),
        QueryMsg::NonceUsed { signer, nonce } => {
            let key: [u8; 32] = signer
                .as_slice()
                .try_into()
                .map_err(|_| cosmwasm_std::StdError::msg("signer must be 32 bytes"))?;
            to_json_binary(&nonce_used(deps.storage, &key, nonce))
        }
        QueryMsg::Batch { batch_id } => to_json_binary(&BATCHES.load(deps.storage, batch_id)?),
        QueryMsg::BatchCount {} => to_json_binary(&BATCH_COUNT.load(deps.storage)?),
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn migrate(deps: DepsMut, _env: Env, _msg: MigrateMsg) -> Result<Response, ContractError> {
    ensure_from_older_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    Ok(Response::new().add_attribute("action", "migrate"))
}
