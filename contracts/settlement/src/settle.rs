//! Batch settlement glue: decode, run the engine over the chain ledger, write once. Two
//! entries share the write step ([`commit`]): `settle_batch` (single-chain: membership and
//! signatures checked here, against the consortium) and a packet from the IBC gateway
//! ([`settle_packet`]: the gateway verified those, the payment rules run here). Also the
//! incremental pruning of used-nonce bitmaps, and the consumer's nonce floor.

use cosmwasm_std::{
    to_json_binary, Addr, Attribute, BankMsg, Binary, Coin, DepsMut, Env, MessageInfo, Response,
    Uint128,
};
use garden_wire::attestation::Domain;
use garden_wire::consortium::ConsortiumContract;
use garden_wire::{nonce, AttestationRef, Batch, DecodeError};

use crate::engine::{settle, settle_verified, ItemResult, Rules, Split};
use crate::ledger::{ChainLedger, Writes};
use crate::membership::ChainMembership;
use crate::msg::SettleBatchResponse;
use crate::state::{
    nonce_key, prune_nonces, Config, BATCHES, BATCH_COUNT, CONFIG, ESCROWS, MAX_BATCH_RECORDS,
    NONCE_FLOORS, PAID, PRUNED_BELOW, PRUNE_PER_BATCH, TOTALS,
};
use crate::types::BatchRecord;
use crate::ContractError;

/// What settling one batch wrote, for the caller to answer with (a transaction's response or
/// an IBC acknowledgement).
pub struct Settled {
    pub data: SettleBatchResponse,
    /// One payment per provider paid in this batch.
    pub payments: Vec<BankMsg>,
    /// `batch_id`, `items`, `settled`, `rejected`, `paid`, `pruned` and, if any,
    /// `rejected_items` (`"index:code,..."`).
    pub attributes: Vec<Attribute>,
}

/// Strict decode with the configured bound (more items than `max_batch` are refused before
/// any item is read).
pub fn decode_batch(bytes: &[u8], max_batch: u32) -> Result<Batch<'_>, ContractError> {
    Batch::decode(bytes, max_batch as usize).map_err(|e| match e {
        DecodeError::TooManyItems { count, max } => {
            ContractError::BatchTooLarge { size: count, max }
        }
        e => ContractError::BatchDecode(e),
    })
}

/// The payment rules' view of this chain now. The domain is this contract's: only the
/// single-chain path verifies signatures (the gateway verifies under its own).
fn rules<'a>(deps: &DepsMut, env: &'a Env, cfg: &Config) -> Result<Rules<'a>, ContractError> {
    Ok(Rules {
        domain: Domain {
            chain_id: &env.block.chain_id,
            contract: env.contract.address.as_str(),
        },
        now: env.block.time.seconds(),
        window_secs: cfg.params.window_secs,
        max_future_secs: cfg.params.max_future_secs,
        verify_chunk: cfg.params.verify_chunk as usize,
        pruned_below: PRUNED_BELOW.may_load(deps.storage)?.unwrap_or(0),
    })
}

pub fn execute_settle_batch(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    batch: Binary,
    strict: bool,
) -> Result<Response, ContractError> {
    let cfg = CONFIG.load(deps.storage)?;
    let consortium = cfg.consortium.clone().ok_or(ContractError::NoConsortium {
        what: "settle_batch",
    })?;
    let batch = decode_batch(batch.as_slice(), cfg.params.max_batch)?;
    let rules = rules(&deps, &env, &cfg)?;
    let (results, writes) = {
        let mut members = ChainMembership::new(
            deps.querier,
            deps.api,
            &consortium,
            rules.now,
            cfg.params.min_level,
            &cfg.params.scope,
        );
        let mut ledger = ChainLedger::new(deps.storage);
        let results = settle(
            &mut Split(&mut members, &mut ledger),
            deps.api,
            &rules,
            &batch,
        );
        members.finish()?;
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
    let done = commit(deps, &env, &cfg, info.sender, &results, writes)?;
    Ok(Response::new()
        .add_attribute("action", "settle_batch")
        .add_attributes(done.attributes)
        .set_data(to_json_binary(&done.data)?)
        .add_messages(done.payments))
}

/// Settles the items of a packet from the IBC gateway: the payment rules only
/// ([`settle_verified`]: window and nonce rule on this chain's clock, floor, used nonces,
/// offer, price, escrow), written like a `settle_batch`. `relayer` is recorded as the
/// submitter.
pub fn settle_packet(
    mut deps: DepsMut,
    env: &Env,
    relayer: Addr,
    batch: &Batch<'_>,
) -> Result<Settled, ContractError> {
    let cfg = CONFIG.load(deps.storage)?;
    let rules = rules(&deps, env, &cfg)?;
    let items: Vec<AttestationRef<'_>> = batch.iter().collect();
    let (results, writes) = {
        let mut ledger = ChainLedger::new(deps.storage);
        let results = settle_verified(&mut ledger, &rules, &items);
        (results, ledger.finish()?)
    };
    commit(deps.branch(), env, &cfg, relayer, &results, writes)
}

/// The write step both paths share: one write per nonce bitmap, escrow, (consumer, provider)
/// pair; totals; the batch record; incremental pruning. Payments leave as one `BankMsg` per
/// provider.
pub fn commit(
    deps: DepsMut,
    env: &Env,
    cfg: &Config,
    submitter: Addr,
    results: &[ItemResult],
    writes: Writes,
) -> Result<Settled, ContractError> {
    for (key, epoch, chunk, bits) in &writes.nonces {
        deps.storage.set(&nonce_key(key, *epoch, *chunk), bits);
    }
    for (consumer, e) in &writes.escrows {
        ESCROWS.save(deps.storage, consumer, e)?;
    }
    let mut per_provider: Vec<(Addr, Uint128)> = Vec::new();
    let mut paid_total = Uint128::zero();
    let overflow = |_| ContractError::Overflow;
    for (consumer, provider, amount) in writes.paid {
        let before = PAID.may_load(deps.storage, (&consumer, &provider))?;
        let after = before
            .unwrap_or_default()
            .checked_add(amount)
            .map_err(overflow)?;
        PAID.save(deps.storage, (&consumer, &provider), &after)?;
        paid_total = paid_total.checked_add(amount).map_err(overflow)?;
        match per_provider.iter_mut().find(|(p, _)| *p == provider) {
            Some((_, a)) => *a = a.checked_add(amount).map_err(overflow)?,
            None => per_provider.push((provider, amount)),
        }
    }
    if !paid_total.is_zero() {
        let mut t = TOTALS.load(deps.storage)?;
        t.paid = t.paid.checked_add(paid_total).map_err(overflow)?;
        TOTALS.save(deps.storage, &t)?;
    }

    let codes: Vec<u8> = results
        .iter()
        .map(|r| r.err().map_or(0, |e| e as u8))
        .collect();
    let settled = codes.iter().filter(|c| **c == 0).count() as u32;
    let rejected = codes.len() as u32 - settled;
    let batch_id = BATCH_COUNT.load(deps.storage)? + 1;
    BATCH_COUNT.save(deps.storage, &batch_id)?;
    let codes = Binary::from(codes);
    // Only batches that moved money leave a record, and only the last MAX_BATCH_RECORDS.
    if settled > 0 {
        let record = BatchRecord {
            submitter,
            height: env.block.height,
            settled,
            rejected,
            paid: paid_total,
            codes: codes.clone(),
        };
        BATCHES.save(deps.storage, batch_id, &record)?;
        if let Some(old) = batch_id.checked_sub(MAX_BATCH_RECORDS) {
            BATCHES.remove(deps.storage, old);
        }
    }
    let horizon = nonce::prune_horizon(env.block.time.seconds(), cfg.params.window_secs);
    let pruned = prune_nonces(deps.storage, horizon, PRUNE_PER_BATCH)?;

    let mut attributes = vec![
        Attribute::new("batch_id", batch_id.to_string()),
        Attribute::new("items", codes.len().to_string()),
        Attribute::new("settled", settled.to_string()),
        Attribute::new("rejected", rejected.to_string()),
        Attribute::new("paid", paid_total.to_string()),
        Attribute::new("pruned", pruned.to_string()),
    ];
    // Rejections listed as "index:code" so indexers need not query; settled items are the rest.
    let rejected_list: Vec<String> = codes
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != 0)
        .map(|(i, c)| format!("{i}:{c}"))
        .collect();
    if !rejected_list.is_empty() {
        attributes.push(Attribute::new("rejected_items", rejected_list.join(",")));
    }
    let payments = per_provider
        .into_iter()
        .map(|(provider, amount)| BankMsg::Send {
            to_address: provider.into_string(),
            amount: vec![Coin {
                denom: cfg.denom.clone(),
                amount: amount.into(),
            }],
        })
        .collect();
    Ok(Settled {
        data: SettleBatchResponse {
            batch_id,
            settled,
            rejected,
            paid: paid_total,
            codes,
        },
        payments,
        attributes,
    })
}

pub fn execute_prune(deps: DepsMut, env: Env, limit: u32) -> Result<Response, ContractError> {
    if limit == 0 || limit > 1_000 {
        return Err(ContractError::InvalidPruneLimit);
    }
    let window = CONFIG.load(deps.storage)?.params.window_secs;
    let horizon = nonce::prune_horizon(env.block.time.seconds(), window);
    let pruned = prune_nonces(deps.storage, horizon, limit as usize)?;
    Ok(Response::new()
        .add_attribute("action", "prune")
        .add_attribute("pruned", pruned.to_string())
        .add_attribute("horizon", horizon.to_string()))
}

/// The sender cancels its attestation key's unsettled nonces below `floor`.
pub fn execute_set_nonce_floor(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    floor: u64,
) -> Result<Response, ContractError> {
    let cfg = CONFIG.load(deps.storage)?;
    let consortium = cfg.consortium.ok_or(ContractError::NoConsortium {
        what: "set_nonce_floor",
    })?;
    let now = env.block.time.seconds();
    raise_nonce_floor(
        deps,
        &consortium,
        &info.sender,
        floor,
        now.saturating_add(cfg.params.max_future_secs),
    )
}

/// Raises the nonce floor of `sender`'s attestation key (read from the consortium) to
/// `floor`: only upwards, and at most to the first nonce of the hour after `latest` (the
/// latest `signed_at` accepted now), so a floor cannot cancel hours not yet begun. Shared
/// with the IBC gateway, which keeps the floors of the IBC pair.
pub fn raise_nonce_floor(
    deps: DepsMut,
    consortium: &Addr,
    sender: &Addr,
    floor: u64,
    latest: u64,
) -> Result<Response, ContractError> {
    let member = ConsortiumContract(consortium.clone())
        .member(&deps.querier, sender)?
        .ok_or_else(|| ContractError::NotMember {
            addr: sender.to_string(),
        })?;
    let key = member.pubkey;
    let max = nonce::first_nonce(nonce::epoch(latest).saturating_add(1));
    if floor > max {
        return Err(ContractError::FloorTooHigh {
            requested: floor,
            max,
        });
    }
    let current = NONCE_FLOORS
        .may_load(deps.storage, key.as_slice())?
        .unwrap_or(0);
    if floor <= current {
        return Err(ContractError::FloorNotRaised {
            requested: floor,
            current,
        });
    }
    NONCE_FLOORS.save(deps.storage, key.as_slice(), &floor)?;
    Ok(Response::new()
        .add_attribute("action", "set_nonce_floor")
        .add_attribute("member", sender)
        .add_attribute("signer", key.to_base64())
        .add_attribute("floor", floor.to_string()))
}
