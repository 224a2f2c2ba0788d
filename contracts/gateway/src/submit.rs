//! `submit_batch`: verify what needs the consortium, hold the nonces as pending, forward the
//! verified items to the settlement chain in one packet.
//!
//! Per item, the first failing check is its code (the settlement contract's `ItemError`):
//! 1. static (`engine::check_static`): quantity, period, window on this chain's block time,
//!    nonce rule, nonce hour not pruned here;
//! 2. membership at `signed_at` (`engine::check_membership` over the consortium, read raw):
//!    the signer key's standing, signer = consumer, the provider's standing;
//! 3. this gateway's state: nonce at or above the key's floor (18), not settled here (5),
//!    not pending (25);
//! 4. Ed25519 signature over the v1 signing bytes, domain = (this chain id, this gateway);
//! 5. a (key, nonce) twice in the batch goes once (5).
//!
//! The payment rules (offer, price, escrow, the settlement chain's own used nonces) run on
//! the settlement chain, which answers item by item.

use std::collections::{BTreeMap, BTreeSet};

use cosmwasm_std::{
    to_json_binary, Binary, Deps, DepsMut, Env, IbcMsg, IbcTimeout, MessageInfo, Response, Storage,
    Uint128,
};
use garden_settlement::engine::{
    check_membership, check_static, verify_signatures, ItemError, ItemResult, Rules,
};
use garden_settlement::membership::ChainMembership;
use garden_settlement::state::{load_nonce_chunk, nonce_floor, nonce_slot};
use garden_wire::attestation::{Attestation, Domain};
use garden_wire::ibc::SubmitResponse;
use garden_wire::{batch, AttestationRef, Batch, DecodeError};

use crate::items::{self, Entry};
use crate::state::{
    Config, BATCHES, BATCH_COUNT, CHANNEL, CONFIG, MAX_BATCH_RECORDS, PRUNED_BELOW, PRUNE_PER_BATCH,
};
use crate::types::{BatchInfo, BatchStatus};
use crate::ContractError;

pub fn execute_submit_batch(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    batch: Binary,
) -> Result<Response, ContractError> {
    let cfg = CONFIG.load(deps.storage)?;
    let channel = CHANNEL
        .may_load(deps.storage)?
        .ok_or_else(|| ContractError::NoChannel {
            route: cfg.route.as_ref().map_or("none".into(), |r| {
                format!("{} to {}", r.connection_id, r.counterparty_port)
            }),
        })?;
    let batch =
        Batch::decode(batch.as_slice(), cfg.params.max_batch as usize).map_err(|e| match e {
            DecodeError::TooManyItems { count, max } => {
                ContractError::BatchTooLarge { size: count, max }
            }
            e => ContractError::BatchDecode(e),
        })?;
    let now = env.block.time.seconds();
    let rules = Rules {
        domain: Domain {
            chain_id: &env.block.chain_id,
            contract: env.contract.address.as_str(),
        },
        now,
        window_secs: cfg.params.window_secs,
        max_future_secs: cfg.params.max_future_secs,
        verify_chunk: cfg.params.verify_chunk as usize,
        pruned_below: PRUNED_BELOW.may_load(deps.storage)?.unwrap_or(0),
    };
    let items: Vec<AttestationRef<'_>> = batch.iter().collect();
    let results = verify(deps.as_ref(), &cfg, &rules, &items)?;

    let forwarded: Vec<Attestation> = items
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(a, _)| a.to_owned())
        .collect();
    // The packet is checked before anything is written (the relayer must be able to carry it).
    let packet_data = match forwarded.is_empty() {
        true => None,
        false => Some(packet_bytes(&forwarded, cfg.params.max_packet_bytes)?),
    };
    let batch_id = BATCH_COUNT.load(deps.storage)? + 1;
    BATCH_COUNT.save(deps.storage, &batch_id)?;
    for a in &forwarded {
        items::save(
            deps.storage,
            &a.signer,
            a.nonce,
            Entry::Pending { batch_id },
        );
    }
    let codes: Vec<u8> = results
        .iter()
        .map(|r| r.err().map_or(0, |e| e as u8))
        .collect();
    let refused_list: Vec<String> = codes
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != 0)
        .map(|(i, c)| format!("{i}:{c}"))
        .collect();
    let data = SubmitResponse {
        batch_id,
        forwarded: forwarded.len() as u32,
        refused: refused_list.len() as u32,
        codes: Binary::from(codes),
    };
    let pruned = items::prune(
        deps.storage,
        items::horizon(now, cfg.params.window_secs),
        PRUNE_PER_BATCH,
    )?;
    let mut res = Response::new()
        .add_attribute("action", "submit_batch")
        .add_attribute("batch_id", batch_id.to_string())
        .add_attribute("items", items.len().to_string())
        .add_attribute("forwarded", data.forwarded.to_string())
        .add_attribute("refused", data.refused.to_string())
        .add_attribute("pruned", pruned.to_string())
        .set_data(to_json_binary(&data)?);
    if !refused_list.is_empty() {
        res = res.add_attribute("refused_items", refused_list.join(","));
    }
    let Some(bytes) = packet_data else {
        return Ok(res);
    };
    record(deps.storage, batch_id, &info, &env, &data, items.len())?;
    let packet = IbcMsg::SendPacket {
        channel_id: channel.channel_id.clone(),
        data: Binary::from(bytes),
        timeout: IbcTimeout::with_timestamp(
            env.block.time.plus_seconds(cfg.params.packet_timeout_secs),
        ),
    };
    Ok(res
        .add_attribute("channel", channel.channel_id)
        .add_message(packet))
}

/// The forwarded items as one `GWAB` batch, at most `max` bytes.
fn packet_bytes(forwarded: &[Attestation], max: u32) -> Result<Vec<u8>, ContractError> {
    let bytes = batch::encode(forwarded)?;
    if bytes.len() > max as usize {
        return Err(ContractError::PacketTooLarge {
            bytes: bytes.len(),
            max,
        });
    }
    Ok(bytes)
}

/// Every check but the payment rules; `Ok` items are to be forwarded.
fn verify(
    deps: Deps,
    cfg: &Config,
    rules: &Rules<'_>,
    items: &[AttestationRef<'_>],
) -> Result<Vec<ItemResult>, ContractError> {
    let mut members = ChainMembership::new(
        deps.querier,
        deps.api,
        &cfg.consortium,
        rules.now,
        cfg.params.min_level,
        &cfg.params.scope,
    );
    let mut local = LocalState::new(deps.storage);
    let mut results: Vec<ItemResult> = items
        .iter()
        .map(|a| {
            check_static(rules, a)?;
            check_membership(&mut members, a)?;
            local.check(a)?;
            Ok(Uint128::zero())
        })
        .collect();
    members.finish()?;
    verify_signatures(deps.api, rules, items, &mut results);
    // After the signatures, so a forged copy placed first cannot push the real item out.
    let mut seen = BTreeSet::new();
    for (a, r) in items.iter().zip(results.iter_mut()) {
        if r.is_ok() && !seen.insert((a.signer, a.nonce)) {
            *r = Err(ItemError::NonceReused);
        }
    }
    Ok(results)
}

/// This gateway's view of a (key, nonce): floor, settled bitmap (cached per 256 nonces),
/// pending entry.
struct LocalState<'a> {
    storage: &'a dyn Storage,
    floors: BTreeMap<[u8; 32], u64>,
    bitmaps: BTreeMap<([u8; 32], u32, u32), [u8; 32]>,
}

impl<'a> LocalState<'a> {
    fn new(storage: &'a dyn Storage) -> Self {
        LocalState {
            storage,
            floors: BTreeMap::new(),
            bitmaps: BTreeMap::new(),
        }
    }

    fn check(&mut self, a: &AttestationRef<'_>) -> Result<(), ItemError> {
        let storage = self.storage;
        let floor = *self
            .floors
            .entry(*a.signer)
            .or_insert_with(|| nonce_floor(storage, a.signer).unwrap_or(0));
        if a.nonce < floor {
            return Err(ItemError::NonceCancelled);
        }
        if let Some(s) = nonce_slot(a.nonce) {
            let bits = self
                .bitmaps
                .entry((*a.signer, s.epoch, s.chunk))
                .or_insert_with(|| load_nonce_chunk(storage, a.signer, s.epoch, s.chunk));
            if bits[s.byte] & s.mask != 0 {
                return Err(ItemError::NonceReused);
            }
        }
        match items::load(storage, a.signer, a.nonce) {
            Some(Entry::Pending { .. }) => Err(ItemError::NoncePending),
            _ => Ok(()),
        }
    }
}

/// Keeps the batch's record; the one [`MAX_BATCH_RECORDS`] ids older goes unless it is still
/// pending (then its answer deletes it).
fn record(
    storage: &mut dyn Storage,
    batch_id: u64,
    info: &MessageInfo,
    env: &Env,
    data: &SubmitResponse,
    items: usize,
) -> Result<(), ContractError> {
    let info = BatchInfo {
        submitter: info.sender.clone(),
        height: env.block.height,
        items: items as u32,
        forwarded: data.forwarded,
        status: BatchStatus::Pending,
        codes: data.codes.clone(),
        settled: 0,
        released: 0,
        settlement_batch_id: None,
        ack_codes: None,
        error: None,
    };
    BATCHES.save(storage, batch_id, &info)?;
    if let Some(old) = batch_id.checked_sub(MAX_BATCH_RECORDS) {
        let done = BATCHES
            .may_load(storage, old)?
            .is_some_and(|b| b.status != BatchStatus::Pending);
        if done {
            BATCHES.remove(storage, old);
        }
    }
    Ok(())
}
