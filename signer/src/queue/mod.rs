//! The signer: persistent nonce counter, deferred signing and the durable attestation queue.
//!
//! # Item states
//! ```text
//!   sign() ──▶ signed ──next_batch()──▶ batched(batch) ──mark_submitted()──▶ submitted(batch, tx)
//!                ▲                          │                                   │
//!                └──────── requeue(batch, cause) ◀──────────────────────────────┤
//!                                                                               │ mark_included(codes)
//!                                                         final (code 0) ◀──────┴──▶ refused(code ≠ 0)
//! ```
//! In IBC mode the transaction goes to the zone's gateway contract, whose code 0 means
//! "verified, forwarded to the settlement chain, nonce held pending": the item becomes
//! `relayed` ([`Signer::mark_relayed`]) until the gateway learns the packet's fate, which
//! [`Signer::resolve_relayed`] applies per item: settled → `final`, refused by the settlement
//! chain → `refused(code)`, packet timed out or error-acknowledged → back to `signed`.
//! ```text
//!   submitted ──mark_relayed(codes)──▶ relayed ──settled──▶ final
//!                                        │ └──refused(code)──▶ refused
//!                                        └──released (timeout / error ack)──▶ signed
//! ```
//! `final` and `refused` are terminal. A batch goes `built → submitted(tx) → included`, or
//! `built | submitted → requeued` (its items return to `signed`, keeping nonce and signature:
//! the contract accepts each nonce once, so resending the same attestation cannot pay twice).
//!
//! # When to requeue
//! Only when the outcome is known to be "nothing of this batch settled": the broadcast was
//! refused before entering the mempool, the transaction was included with a failing code, or
//! an IBC packet timed out / came back with an error acknowledgement ([`RetryCause`]). An
//! outcome that is *unknown* (broadcast timed out, no confirmation yet) is not a retry: the
//! submitter must first query the chain for the transaction (confirmation query) and then
//! call [`Signer::mark_included`] or [`Signer::requeue`]. There is deliberately no
//! `RetryCause::Unknown`. Resending an unknown batch would not double-pay (nonces), but it
//! would turn paid items into "nonce already used" refusals and lose their real outcome.
//!
//! # Durability (fsync policy)
//! Every public mutation is one redb write transaction committed with redb's default
//! `Durability::Immediate`: `commit()` returns only after the data and the new root are
//! fsynced. [`Signer::sign`] puts the advanced nonce counter and the signed item in the same
//! transaction and returns the signature only after the commit, so after `kill -9` (or power
//! loss) a nonce that left the signer is on disk, and a nonce that is on disk is never handed
//! out again. A crash before the commit loses the attempt, never reuses a nonce.
//! [`Signer::sign_many`] signs a burst in one transaction (one fsync for many items).

mod copies;
mod origin;
mod record;
mod relay;
#[cfg(test)]
mod tests;
mod types;

use std::path::Path;

use garden_wire::batch;
use garden_wire::nonce::{first_nonce, Counter};
use garden_wire::{Attestation, Domain};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

pub use copies::{copy_bytes, decode_copy, CopyRefusal, HeldCopy};
pub use origin::Keyed;
use record::{decode_batch, decode_item, encode_batch, encode_item, state_range};
use types::dbe;
pub use types::{
    BatchInfo, BatchState, BuiltBatch, Error, ItemState, QueuedItem, Relay, RetryCause, Stats,
    MAX_BATCH_ITEMS,
};

use crate::input::UsageInput;
use crate::key::SettlementKey;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const BINDING: TableDefinition<&str, &[u8]> = TableDefinition::new("binding");
/// nonce -> item record. Nonces grow with signing time, so key order is signing order.
const ITEMS: TableDefinition<u64, &[u8]> = TableDefinition::new("items");
/// (state tag, nonce): items by state, oldest first.
const BY_STATE: TableDefinition<(u8, u64), ()> = TableDefinition::new("by_state");
const COUNTS: TableDefinition<u8, u64> = TableDefinition::new("counts");
const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("batches");
/// batch id -> last block height at which its submitted transaction may be included.
const TX_TIMEOUT: TableDefinition<u64, u64> = TableDefinition::new("tx_timeout");
/// Where an attestation came from (a sidecar's booking id) → its nonce: signing a usage
/// report twice is recognised ([`Signer::sign_keyed`]).
const ORIGINS: TableDefinition<&str, u64> = TableDefinition::new("origins");
/// Other members' attestations held as the provider's copy (`copies`).
const COPIES: TableDefinition<(&[u8], u64), &[u8]> = TableDefinition::new("copies");

const K_EPOCH: &str = "counter_epoch";
const K_SEQ: &str = "counter_next_seq";
const K_BATCH: &str = "next_batch_id";

/// Owns the settlement key and the queue database.
pub struct Signer {
    db: Database,
    key: SettlementKey,
    chain_id: String,
    contract: String,
}

impl Signer {
    /// Opens (or creates) the queue at `path`, bound to `key` and `domain` (chain id and
    /// settlement contract). The nonce counter belongs to the key: a database created for one
    /// key or domain refuses another.
    pub fn open(path: &Path, key: SettlementKey, domain: &Domain<'_>) -> Result<Self, Error> {
        let db = garden_store::open(path).map_err(dbe)?;
        let pk = key.public_key();
        let txn = db.begin_write().map_err(dbe)?;
        {
            let mut t = txn.open_table(BINDING).map_err(dbe)?;
            for (what, given) in [
                ("signer", &pk[..]),
                ("chain_id", domain.chain_id.as_bytes()),
                ("contract", domain.contract.as_bytes()),
            ] {
                let stored = t.get(what).map_err(dbe)?.map(|g| g.value().to_vec());
                match stored {
                    Some(s) if s != given => {
                        let show = |b: &[u8]| match what {
                            "signer" => b.iter().map(|x| format!("{x:02x}")).collect(),
                            _ => String::from_utf8_lossy(b).into_owned(),
                        };
                        return Err(Error::Binding {
                            what,
                            stored: show(&s),
                            given: show(given),
                        });
                    }
                    Some(_) => {}
                    None => {
                        t.insert(what, given).map_err(dbe)?;
                    }
                }
            }
            // Create every table so read transactions never meet a missing one.
            txn.open_table(META).map_err(dbe)?;
            txn.open_table(ITEMS).map_err(dbe)?;
            txn.open_table(BY_STATE).map_err(dbe)?;
            txn.open_table(COUNTS).map_err(dbe)?;
            txn.open_table(BATCHES).map_err(dbe)?;
            txn.open_table(TX_TIMEOUT).map_err(dbe)?;
            txn.open_table(ORIGINS).map_err(dbe)?;
            txn.open_table(COPIES).map_err(dbe)?;
        }
        txn.commit().map_err(dbe)?;
        Ok(Signer {
            db,
            key,
            chain_id: domain.chain_id.to_owned(),
            contract: domain.contract.to_owned(),
        })
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.public_key()
    }

    /// The persisted nonce counter.
    pub fn counter(&self) -> Result<Counter, Error> {
        let txn = self.db.begin_read().map_err(dbe)?;
        let t = txn.open_table(META).map_err(dbe)?;
        let g = |k| -> Result<u64, Error> { Ok(t.get(k).map_err(dbe)?.map_or(0, |v| v.value())) };
        Ok(Counter {
            epoch: g(K_EPOCH)?,
            next_seq: g(K_SEQ)?,
        })
    }

    /// Builds, validates and signs an attestation for `input` at `now` (unix seconds), and
    /// stores it as `signed` together with the advanced nonce counter, in one durable
    /// transaction. Works offline.
    pub fn sign(&self, input: UsageInput, now: u64) -> Result<QueuedItem, Error> {
        Ok(self.sign_many(vec![input], now)?.remove(0))
    }

    /// [`Signer::sign`] for several inputs in one transaction (one fsync). All or nothing:
    /// an invalid input fails the whole call and no nonce is consumed.
    pub fn sign_many(&self, inputs: Vec<UsageInput>, now: u64) -> Result<Vec<QueuedItem>, Error> {
        for i in &inputs {
            check_input(i, now)?;
        }
        let txn = self.db.begin_write().map_err(dbe)?;
        let out = self.sign_in(&txn, inputs, now)?;
        txn.commit().map_err(dbe)?;
        Ok(out)
    }

    /// Signs `inputs` (already checked) in `txn`: items, counter and counts; the caller commits.
    fn sign_in(
        &self,
        txn: &redb::WriteTransaction,
        inputs: Vec<UsageInput>,
        now: u64,
    ) -> Result<Vec<QueuedItem>, Error> {
        let mut out = Vec::with_capacity(inputs.len());
        {
            let mut meta = txn.open_table(META).map_err(dbe)?;
            // Read inside the write transaction: writers are serialised, so two callers can
            // never start from the same counter.
            let mut counter = Counter {
                epoch: meta.get(K_EPOCH).map_err(dbe)?.map_or(0, |v| v.value()),
                next_seq: meta.get(K_SEQ).map_err(dbe)?.map_or(0, |v| v.value()),
            };
            let mut items = txn.open_table(ITEMS).map_err(dbe)?;
            let mut by_state = txn.open_table(BY_STATE).map_err(dbe)?;
            let domain = Domain {
                chain_id: &self.chain_id,
                contract: &self.contract,
            };
            let pk = self.key.public_key();
            for input in inputs {
                let nonce = counter.next(now)?;
                let mut att = Attestation {
                    provider: input.provider,
                    consumer: input.consumer,
                    resource_id: input.resource_id,
                    quantity: input.quantity,
                    unit: input.unit,
                    price_ref: input.price_ref,
                    max_unit_price: input.max_unit_price,
                    period_start: input.period_start,
                    period_end: input.period_end,
                    nonce,
                    signed_at: now,
                    signer: pk,
                    signature: [0; 64],
                };
                att.validate()?;
                att.signature = self.key.sign(&att.signing_bytes(&domain));
                if items.get(nonce).map_err(dbe)?.is_some() {
                    return Err(Error::Corrupt(format!("nonce {nonce} already stored")));
                }
                items
                    .insert(nonce, encode_item(ItemState::Signed, &att)?.as_slice())
                    .map_err(dbe)?;
                by_state.insert((0u8, nonce), ()).map_err(dbe)?;
                out.push(QueuedItem {
                    nonce,
                    state: ItemState::Signed,
                    attestation: att,
                });
            }
            meta.insert(K_EPOCH, counter.epoch).map_err(dbe)?;
            meta.insert(K_SEQ, counter.next_seq).map_err(dbe)?;
        }
        bump(txn, ItemState::Signed.tag(), out.len() as i64)?;
        Ok(out)
    }

    /// Takes the oldest `signed` items (up to `max_items`) into a new batch and returns its
    /// `GWAB` payload, if there are `max_items` of them or the oldest is at least `max_age`
    /// seconds old at `now`; otherwise `None` (wait for more).
    pub fn next_batch(
        &self,
        max_items: usize,
        max_age: u64,
        now: u64,
    ) -> Result<Option<BuiltBatch>, Error> {
        if max_items == 0 || max_items > MAX_BATCH_ITEMS {
            return Err(Error::BatchSize(max_items));
        }
        let txn = self.db.begin_write().map_err(dbe)?;
        let built = {
            let mut meta = txn.open_table(META).map_err(dbe)?;
            let mut items = txn.open_table(ITEMS).map_err(dbe)?;
            let mut by_state = txn.open_table(BY_STATE).map_err(dbe)?;
            let nonces: Vec<u64> = by_state
                .range(state_range(0))
                .map_err(dbe)?
                .take(max_items)
                .map(|r| r.map(|(k, _)| k.value().1).map_err(dbe))
                .collect::<Result<_, _>>()?;
            let Some(&oldest) = nonces.first() else {
                return Ok(None);
            };
            let mut atts = Vec::with_capacity(nonces.len());
            for &n in &nonces {
                let rec = items
                    .get(n)
                    .map_err(dbe)?
                    .ok_or_else(|| Error::Corrupt(format!("indexed item {n} missing")))?;
                let (state, att) = decode_item(rec.value())?;
                if state != ItemState::Signed {
                    return Err(Error::Corrupt(format!(
                        "item {n} indexed signed is {state:?}"
                    )));
                }
                atts.push(att);
            }
            let oldest_at = atts[0].signed_at;
            debug_assert_eq!(atts[0].nonce, oldest);
            if nonces.len() < max_items && now.saturating_sub(oldest_at) < max_age {
                return Ok(None);
            }
            let payload = batch::encode(&atts)?;
            let id = meta.get(K_BATCH).map_err(dbe)?.map_or(0, |v| v.value());
            meta.insert(K_BATCH, id + 1).map_err(dbe)?;
            for att in &atts {
                let rec = encode_item(ItemState::Batched { batch: id }, att)?;
                items.insert(att.nonce, rec.as_slice()).map_err(dbe)?;
                by_state.remove((0u8, att.nonce)).map_err(dbe)?;
                by_state.insert((1u8, att.nonce), ()).map_err(dbe)?;
            }
            let info = BatchInfo {
                id,
                state: BatchState::Built,
                created_at: now,
                nonces,
            };
            txn.open_table(BATCHES)
                .map_err(dbe)?
                .insert(id, encode_batch(&info).as_slice())
                .map_err(dbe)?;
            BuiltBatch {
                id,
                nonces: info.nonces,
                payload,
            }
        };
        let n = built.nonces.len() as i64;
        bump(&txn, 0, -n)?;
        bump(&txn, 1, n)?;
        txn.commit().map_err(dbe)?;
        Ok(Some(built))
    }

    /// `built → submitted(tx_hash)`; its items `batched → submitted`.
    pub fn mark_submitted(&self, batch: u64, tx_hash: &str) -> Result<(), Error> {
        self.mark_submitted_until(batch, tx_hash, None)
    }

    /// [`Signer::mark_submitted`], also recording (same transaction) the transaction's
    /// `timeout_height`: past it, a transaction not found by hash can never be included.
    pub fn mark_submitted_until(
        &self,
        batch: u64,
        tx_hash: &str,
        timeout_height: Option<u64>,
    ) -> Result<(), Error> {
        self.transition_with(
            batch,
            "submit",
            |s| match s {
                BatchState::Built => Ok(BatchState::Submitted {
                    tx_hash: tx_hash.to_owned(),
                }),
                _ => Err(()),
            },
            |_, b| Ok(ItemState::Submitted { batch: b }),
            |txn| {
                let mut t = txn.open_table(TX_TIMEOUT).map_err(dbe)?;
                match timeout_height {
                    Some(h) => t.insert(batch, h).map_err(dbe)?,
                    None => t.remove(batch).map_err(dbe)?,
                };
                Ok(())
            },
        )
        .map(|_| ())
    }

    /// The timeout height recorded with a submitted batch's transaction, if any.
    pub fn tx_timeout(&self, batch: u64) -> Result<Option<u64>, Error> {
        let txn = self.db.begin_read().map_err(dbe)?;
        let t = txn.open_table(TX_TIMEOUT).map_err(dbe)?;
        let v = t.get(batch).map_err(dbe)?.map(|v| v.value());
        Ok(v)
    }

    /// `submitted → included`, with the contract's per-item result codes in payload order:
    /// 0 → `final`, anything else → `refused(code)`.
    pub fn mark_included(&self, batch: u64, codes: &[u32]) -> Result<(), Error> {
        self.include(batch, codes, "mark included", |b| ItemState::Final {
            batch: b,
        })
    }

    /// `submitted → included` with per-item codes: 0 → `accepted(batch)` (final, or relayed
    /// in IBC mode), anything else → `refused(code)`.
    pub(super) fn include(
        &self,
        batch: u64,
        codes: &[u32],
        action: &'static str,
        accepted: fn(u64) -> ItemState,
    ) -> Result<(), Error> {
        let info = self.batch(batch)?.ok_or(Error::UnknownBatch(batch))?;
        if matches!(info.state, BatchState::Submitted { .. }) && codes.len() != info.nonces.len() {
            return Err(Error::CodeCount {
                batch,
                items: info.nonces.len(),
                codes: codes.len(),
            });
        }
        self.transition(
            batch,
            action,
            |s| match s {
                BatchState::Submitted { .. } => Ok(BatchState::Included),
                _ => Err(()),
            },
            |i, b| {
                // The count was checked above; `get` keeps a racing caller from panicking.
                match codes.get(i) {
                    Some(0) => Ok(accepted(b)),
                    Some(&code) => Ok(ItemState::Refused { batch: b, code }),
                    None => Err(Error::CodeCount {
                        batch: b,
                        items: i + 1,
                        codes: codes.len(),
                    }),
                }
            },
        )
        .map(|_| ())
    }

    /// `built | submitted → requeued(cause)`; its items go back to `signed` (same nonce and
    /// signature) and will be taken by a later [`Signer::next_batch`]. Returns how many.
    /// Only for known "nothing settled" outcomes (module docs).
    pub fn requeue(&self, batch: u64, cause: RetryCause) -> Result<usize, Error> {
        self.transition(
            batch,
            "requeue",
            |s| match s {
                BatchState::Built | BatchState::Submitted { .. } => {
                    Ok(BatchState::Requeued { cause })
                }
                _ => Err(()),
            },
            |_, _| Ok(ItemState::Signed),
        )
    }

    /// One checked batch transition and the matching item transitions, in one transaction.
    fn transition(
        &self,
        batch: u64,
        action: &'static str,
        next: impl FnOnce(&BatchState) -> Result<BatchState, ()>,
        item_next: impl Fn(usize, u64) -> Result<ItemState, Error>,
    ) -> Result<usize, Error> {
        self.transition_with(batch, action, next, item_next, |_| Ok(()))
    }

    /// [`Self::transition`] plus `extra` writes in the same transaction.
    fn transition_with(
        &self,
        batch: u64,
        action: &'static str,
        next: impl FnOnce(&BatchState) -> Result<BatchState, ()>,
        item_next: impl Fn(usize, u64) -> Result<ItemState, Error>,
        extra: impl FnOnce(&redb::WriteTransaction) -> Result<(), Error>,
    ) -> Result<usize, Error> {
        let txn = self.db.begin_write().map_err(dbe)?;
        let mut moved: Vec<(u8, u8)> = Vec::new();
        let n = {
            let mut batches = txn.open_table(BATCHES).map_err(dbe)?;
            let mut info = match batches.get(batch).map_err(dbe)? {
                Some(g) => decode_batch(batch, g.value())?,
                None => return Err(Error::UnknownBatch(batch)),
            };
            let expected = match &info.state {
                BatchState::Built => ItemState::Batched { batch },
                BatchState::Submitted { .. } => ItemState::Submitted { batch },
                _ => ItemState::Signed, // never matches: `next` refuses these states
            };
            info.state = next(&info.state).map_err(|()| Error::IllegalTransition {
                batch,
                from: info.state.name(),
                action,
            })?;
            let mut items = txn.open_table(ITEMS).map_err(dbe)?;
            let mut by_state = txn.open_table(BY_STATE).map_err(dbe)?;
            for (i, &nonce) in info.nonces.iter().enumerate() {
                let (state, att) = match items.get(nonce).map_err(dbe)? {
                    Some(g) => decode_item(g.value())?,
                    None => return Err(Error::Corrupt(format!("batch {batch} item {nonce}"))),
                };
                if state != expected {
                    return Err(Error::Corrupt(format!(
                        "batch {batch} item {nonce} is {state:?}, expected {expected:?}"
                    )));
                }
                let to = item_next(i, batch)?;
                items
                    .insert(nonce, encode_item(to, &att)?.as_slice())
                    .map_err(dbe)?;
                by_state.remove((state.tag(), nonce)).map_err(dbe)?;
                if !to.is_terminal() {
                    by_state.insert((to.tag(), nonce), ()).map_err(dbe)?;
                }
                moved.push((state.tag(), to.tag()));
            }
            batches
                .insert(batch, encode_batch(&info).as_slice())
                .map_err(dbe)?;
            info.nonces.len()
        };
        for (from, to) in moved {
            bump(&txn, from, -1)?;
            bump(&txn, to, 1)?;
        }
        extra(&txn)?;
        txn.commit().map_err(dbe)?;
        Ok(n)
    }

    pub fn batch(&self, id: u64) -> Result<Option<BatchInfo>, Error> {
        let txn = self.db.begin_read().map_err(dbe)?;
        let t = txn.open_table(BATCHES).map_err(dbe)?;
        let g = t.get(id).map_err(dbe)?;
        g.map(|g| decode_batch(id, g.value())).transpose()
    }

    /// All batches, by id.
    pub fn batches(&self) -> Result<Vec<BatchInfo>, Error> {
        let txn = self.db.begin_read().map_err(dbe)?;
        let t = txn.open_table(BATCHES).map_err(dbe)?;
        let mut out = Vec::new();
        for r in t.iter().map_err(dbe)? {
            let (k, v) = r.map_err(dbe)?;
            out.push(decode_batch(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Re-encodes a stored batch's payload (deterministic: same items, same order).
    pub fn batch_payload(&self, id: u64) -> Result<Vec<u8>, Error> {
        let info = self.batch(id)?.ok_or(Error::UnknownBatch(id))?;
        let mut atts = Vec::with_capacity(info.nonces.len());
        for n in info.nonces {
            let item = self
                .item(n)?
                .ok_or_else(|| Error::Corrupt(format!("batch {id} item {n}")))?;
            atts.push(item.attestation);
        }
        Ok(batch::encode(&atts)?)
    }

    pub fn item(&self, nonce: u64) -> Result<Option<QueuedItem>, Error> {
        let txn = self.db.begin_read().map_err(dbe)?;
        let t = txn.open_table(ITEMS).map_err(dbe)?;
        let g = t.get(nonce).map_err(dbe)?;
        g.map(|g| {
            decode_item(g.value()).map(|(state, attestation)| QueuedItem {
                nonce,
                state,
                attestation,
            })
        })
        .transpose()
    }

    /// Every stored item, in signing (nonce) order.
    pub fn items(&self) -> Result<Vec<QueuedItem>, Error> {
        let txn = self.db.begin_read().map_err(dbe)?;
        let t = txn.open_table(ITEMS).map_err(dbe)?;
        let mut out = Vec::with_capacity(t.len().map_err(dbe)? as usize);
        for r in t.iter().map_err(dbe)? {
            let (k, v) = r.map_err(dbe)?;
            let (state, attestation) = decode_item(v.value())?;
            out.push(QueuedItem {
                nonce: k.value(),
                state,
                attestation,
            });
        }
        Ok(out)
    }

    pub fn stats(&self, now: u64) -> Result<Stats, Error> {
        let txn = self.db.begin_read().map_err(dbe)?;
        let counts = txn.open_table(COUNTS).map_err(dbe)?;
        let c = |t: u8| -> Result<u64, Error> {
            Ok(counts.get(t).map_err(dbe)?.map_or(0, |v| v.value()))
        };
        let by_state = txn.open_table(BY_STATE).map_err(dbe)?;
        let items = txn.open_table(ITEMS).map_err(dbe)?;
        // Unfinished states: signed, batched, submitted, relayed.
        let mut oldest = [None; 4];
        for (tag, slot) in [0u8, 1, 2, 5].into_iter().zip(oldest.iter_mut()) {
            if let Some(r) = by_state.range(state_range(tag)).map_err(dbe)?.next() {
                let nonce = r.map_err(dbe)?.0.value().1;
                let g = items
                    .get(nonce)
                    .map_err(dbe)?
                    .ok_or_else(|| Error::Corrupt(format!("indexed item {nonce} missing")))?;
                *slot = Some(decode_item(g.value())?.1.signed_at);
            }
        }
        let age = |t: Option<u64>| t.map(|t| now.saturating_sub(t));
        Ok(Stats {
            signed: c(0)?,
            batched: c(1)?,
            submitted: c(2)?,
            final_: c(3)?,
            refused: c(4)?,
            relayed: c(5)?,
            oldest_signed_age: age(oldest[0]),
            oldest_pending_age: age(oldest.iter().flatten().min().copied()),
        })
    }
}

/// Adds `delta` to the count of items in state `tag`.
fn bump(txn: &redb::WriteTransaction, tag: u8, delta: i64) -> Result<(), Error> {
    let mut t = txn.open_table(COUNTS).map_err(dbe)?;
    let cur = t.get(tag).map_err(dbe)?.map_or(0, |v| v.value());
    let next = cur
        .checked_add_signed(delta)
        .ok_or_else(|| Error::Corrupt(format!("count of state {tag} below zero")))?;
    t.insert(tag, next).map_err(dbe)?;
    Ok(())
}

/// The attestation rules checked before signing, each naming its field.
fn check_input(i: &UsageInput, now: u64) -> Result<(), Error> {
    for (field, s) in [
        ("provider", &i.provider),
        ("consumer", &i.consumer),
        ("resource_id", &i.resource_id),
        ("unit", &i.unit),
        ("price_ref", &i.price_ref),
    ] {
        if garden_wire::check_str(s).is_err() {
            return Err(Error::InvalidField {
                field,
                reason: format!(
                    "must be 1..={} bytes, is {}",
                    garden_wire::MAX_STR_LEN,
                    s.len()
                ),
            });
        }
    }
    if i.period_start > i.period_end {
        return Err(Error::InvalidField {
            field: "period_start",
            reason: format!("{} is after period_end {}", i.period_start, i.period_end),
        });
    }
    if i.period_end > now {
        return Err(Error::InvalidField {
            field: "period_end",
            reason: format!("{} is after signed_at {now}", i.period_end),
        });
    }
    Ok(())
}

/// The smallest nonce the counter can still hand out (every issued nonce is below it).
pub fn counter_floor(c: &Counter) -> u64 {
    first_nonce(c.epoch) | c.next_seq
}
