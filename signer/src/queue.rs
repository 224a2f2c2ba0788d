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

use std::ops::RangeInclusive;
use std::path::Path;

use garden_wire::batch::{self, Batch};
use garden_wire::nonce::{first_nonce, Counter, NonceError};
use garden_wire::{Attestation, Domain};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::input::UsageInput;
use crate::key::SettlementKey;

/// Most items per batch: the settlement contract's `max_batch` ceiling (`MAX_BATCH_CEILING`
/// in contracts/settlement, ≈ 940 KB of RPC body). The string table cannot overflow below
/// it (5 strings per item × 4 000 < 65 535 entries).
pub const MAX_BATCH_ITEMS: usize = 4_000;

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

const K_EPOCH: &str = "counter_epoch";
const K_SEQ: &str = "counter_next_seq";
const K_BATCH: &str = "next_batch_id";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("queue database: {0}")]
    Db(Box<redb::Error>),
    #[error("field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("nonce: {0}")]
    Nonce(#[from] NonceError),
    #[error("queue database is bound to another {what}: {stored} (opened with {given})")]
    Binding {
        what: &'static str,
        stored: String,
        given: String,
    },
    #[error("batch size {0} is outside 1..={MAX_BATCH_ITEMS}")]
    BatchSize(usize),
    #[error("unknown batch {0}")]
    UnknownBatch(u64),
    #[error("batch {batch}: cannot {action} a batch that is {from}")]
    IllegalTransition {
        batch: u64,
        from: &'static str,
        action: &'static str,
    },
    #[error("batch {batch} has {items} items but {codes} result codes were given")]
    CodeCount {
        batch: u64,
        items: usize,
        codes: usize,
    },
    #[error("batch encoding: {0}")]
    Encode(#[from] garden_wire::EncodeError),
    #[error("item {nonce}: only a relayed item can be resolved, it is {from}")]
    IllegalItemTransition { nonce: u64, from: String },
    #[error("corrupt queue record: {0}")]
    Corrupt(String),
}

fn dbe<E: Into<redb::Error>>(e: E) -> Error {
    Error::Db(Box::new(e.into()))
}

/// Where an item is in its life (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemState {
    Signed,
    Batched {
        batch: u64,
    },
    Submitted {
        batch: u64,
    },
    /// Settled by the contract (per-item code 0). Terminal.
    Final {
        batch: u64,
    },
    /// Refused by the contract with this per-item code. Terminal.
    Refused {
        batch: u64,
        code: u32,
    },
    /// IBC mode: accepted by the gateway, its packet not yet acknowledged.
    Relayed {
        batch: u64,
    },
}

impl ItemState {
    fn tag(self) -> u8 {
        match self {
            ItemState::Signed => 0,
            ItemState::Batched { .. } => 1,
            ItemState::Submitted { .. } => 2,
            ItemState::Final { .. } => 3,
            ItemState::Refused { .. } => 4,
            ItemState::Relayed { .. } => 5,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, ItemState::Final { .. } | ItemState::Refused { .. })
    }
}

/// Why a batch's items go back to `signed`. Every cause is a known "nothing settled" outcome;
/// an unknown outcome needs a confirmation query first (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryCause {
    /// CheckTx / broadcast refused the transaction: it never entered the mempool.
    BroadcastRefused,
    /// The transaction was included but failed as a whole (non-zero tx code).
    TxFailed,
    /// The IBC packet carrying the batch timed out (the timeout was proven on the source).
    IbcTimeout,
    /// The IBC packet came back with an error acknowledgement.
    IbcErrorAck,
    /// The transaction was not found by hash after its timeout height had passed: it can
    /// never be included (the chain refuses a transaction past its `timeout_height`).
    TxExpired,
}

impl RetryCause {
    fn tag(self) -> u8 {
        match self {
            RetryCause::BroadcastRefused => 0,
            RetryCause::TxFailed => 1,
            RetryCause::IbcTimeout => 2,
            RetryCause::IbcErrorAck => 3,
            RetryCause::TxExpired => 4,
        }
    }
    fn from_tag(t: u8) -> Result<Self, Error> {
        Ok(match t {
            0 => RetryCause::BroadcastRefused,
            1 => RetryCause::TxFailed,
            2 => RetryCause::IbcTimeout,
            3 => RetryCause::IbcErrorAck,
            4 => RetryCause::TxExpired,
            _ => return Err(Error::Corrupt(format!("retry cause {t}"))),
        })
    }
}

/// The fate of a `relayed` item, as the gateway reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relay {
    /// The settlement chain paid it.
    Settled,
    /// The settlement chain refused it with this item code.
    Refused(u32),
    /// Its packet timed out or came back with an error acknowledgement: nothing settled, the
    /// nonce is free again; the item goes back to `signed` (same nonce and signature).
    Released,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchState {
    Built,
    Submitted { tx_hash: String },
    Included,
    Requeued { cause: RetryCause },
}

impl BatchState {
    fn name(&self) -> &'static str {
        match self {
            BatchState::Built => "built",
            BatchState::Submitted { .. } => "submitted",
            BatchState::Included => "included",
            BatchState::Requeued { .. } => "requeued",
        }
    }
}

/// A stored batch: its state and its items' nonces, in payload order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchInfo {
    pub id: u64,
    pub state: BatchState,
    pub created_at: u64,
    pub nonces: Vec<u64>,
}

/// What [`Signer::next_batch`] returns: the `GWAB` payload to put in a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltBatch {
    pub id: u64,
    pub nonces: Vec<u64>,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedItem {
    pub nonce: u64,
    pub state: ItemState,
    pub attestation: Attestation,
}

/// Counts per state and the age of the oldest unfinished item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub signed: u64,
    pub batched: u64,
    pub submitted: u64,
    pub final_: u64,
    pub refused: u64,
    /// IBC mode: accepted by the gateway, awaiting the settlement chain's acknowledgement.
    pub relayed: u64,
    /// Age (seconds at `now`) of the oldest `signed` item.
    pub oldest_signed_age: Option<u64>,
    /// Age of the oldest item not yet final or refused (signed, batched or submitted).
    pub oldest_pending_age: Option<u64>,
}

// ---- record encodings --------------------------------------------------------------------

/// item record := u8 tag | u64 batch | u32 code | GWAB v1 batch of this one attestation.
fn encode_item(state: ItemState, att: &Attestation) -> Result<Vec<u8>, Error> {
    let (batch, code) = match state {
        ItemState::Signed => (0, 0),
        ItemState::Batched { batch }
        | ItemState::Submitted { batch }
        | ItemState::Final { batch }
        | ItemState::Relayed { batch } => (batch, 0),
        ItemState::Refused { batch, code } => (batch, code),
    };
    let mut out = vec![state.tag()];
    out.extend_from_slice(&batch.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&batch::encode(std::slice::from_ref(att))?);
    Ok(out)
}

fn decode_item(b: &[u8]) -> Result<(ItemState, Attestation), Error> {
    if b.len() < 13 {
        return Err(Error::Corrupt("short item".into()));
    }
    let batch = u64::from_be_bytes(b[1..9].try_into().expect("8 bytes"));
    let code = u32::from_be_bytes(b[9..13].try_into().expect("4 bytes"));
    let state = match b[0] {
        0 => ItemState::Signed,
        1 => ItemState::Batched { batch },
        2 => ItemState::Submitted { batch },
        3 => ItemState::Final { batch },
        4 => ItemState::Refused { batch, code },
        5 => ItemState::Relayed { batch },
        t => return Err(Error::Corrupt(format!("item state {t}"))),
    };
    let one = Batch::decode(&b[13..], 1).map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok((state, one.get(0).to_owned()))
}

/// batch record := u8 tag | u8 cause | u64 created_at | u16 len | tx hash | u32 n | n × u64.
fn encode_batch(info: &BatchInfo) -> Vec<u8> {
    let (tag, cause, tx) = match &info.state {
        BatchState::Built => (0u8, 0u8, ""),
        BatchState::Submitted { tx_hash } => (1, 0, tx_hash.as_str()),
        BatchState::Included => (2, 0, ""),
        BatchState::Requeued { cause } => (3, cause.tag(), ""),
    };
    let mut out = vec![tag, cause];
    out.extend_from_slice(&info.created_at.to_be_bytes());
    out.extend_from_slice(&(tx.len() as u16).to_be_bytes());
    out.extend_from_slice(tx.as_bytes());
    out.extend_from_slice(&(info.nonces.len() as u32).to_be_bytes());
    for n in &info.nonces {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out
}

fn decode_batch(id: u64, b: &[u8]) -> Result<BatchInfo, Error> {
    let bad = || Error::Corrupt(format!("batch {id} record"));
    let get = |o: usize, n: usize| b.get(o..o + n).ok_or_else(bad);
    let created_at = u64::from_be_bytes(get(2, 8)?.try_into().expect("8"));
    let tl = u16::from_be_bytes(get(10, 2)?.try_into().expect("2")) as usize;
    let tx = std::str::from_utf8(get(12, tl)?).map_err(|_| bad())?;
    let n = u32::from_be_bytes(get(12 + tl, 4)?.try_into().expect("4")) as usize;
    let body = get(16 + tl, n * 8)?;
    let nonces = body
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8")))
        .collect();
    let state = match get(0, 1)?[0] {
        0 => BatchState::Built,
        1 => BatchState::Submitted {
            tx_hash: tx.to_owned(),
        },
        2 => BatchState::Included,
        3 => BatchState::Requeued {
            cause: RetryCause::from_tag(b[1])?,
        },
        _ => return Err(bad()),
    };
    Ok(BatchInfo {
        id,
        state,
        created_at,
        nonces,
    })
}

fn state_range(tag: u8) -> RangeInclusive<(u8, u64)> {
    (tag, 0)..=(tag, u64::MAX)
}

// ---- the signer --------------------------------------------------------------------------

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
        bump(&txn, ItemState::Signed.tag(), out.len() as i64)?;
        txn.commit().map_err(dbe)?;
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
            "mark included",
            |s| match s {
                BatchState::Submitted { .. } => Ok(BatchState::Included),
                _ => Err(()),
            },
            |i, b| {
                // The count was checked above; `get` keeps a racing caller from panicking.
                match codes.get(i) {
                    Some(0) => Ok(ItemState::Final { batch: b }),
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

    /// IBC mode: `submitted → included` with the gateway's per-item codes in payload order:
    /// 0 → `relayed` (forwarded, awaiting the acknowledgement), anything else →
    /// `refused(code)`.
    pub fn mark_relayed(&self, batch: u64, codes: &[u32]) -> Result<(), Error> {
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
            "mark relayed",
            |s| match s {
                BatchState::Submitted { .. } => Ok(BatchState::Included),
                _ => Err(()),
            },
            |i, b| match codes.get(i) {
                Some(0) => Ok(ItemState::Relayed { batch: b }),
                Some(&code) => Ok(ItemState::Refused { batch: b, code }),
                None => Err(Error::CodeCount {
                    batch: b,
                    items: i + 1,
                    codes: codes.len(),
                }),
            },
        )
        .map(|_| ())
    }

    /// Nonces of the `relayed` items, oldest first (at most `limit`).
    pub fn relayed(&self, limit: usize) -> Result<Vec<u64>, Error> {
        let txn = self.db.begin_read().map_err(dbe)?;
        let by_state = txn.open_table(BY_STATE).map_err(dbe)?;
        let v = by_state
            .range(state_range(ItemState::Relayed { batch: 0 }.tag()))
            .map_err(dbe)?
            .take(limit)
            .map(|r| r.map(|(k, _)| k.value().1).map_err(dbe))
            .collect::<Result<_, _>>()?;
        Ok(v)
    }

    /// Applies what the gateway learned about a `relayed` item: `relayed → final | refused |
    /// signed`. Anything but a relayed item is refused (a stale answer changes nothing).
    pub fn resolve_relayed(&self, nonce: u64, outcome: Relay) -> Result<ItemState, Error> {
        let txn = self.db.begin_write().map_err(dbe)?;
        let (from, to) = {
            let mut items = txn.open_table(ITEMS).map_err(dbe)?;
            let (state, att) = match items.get(nonce).map_err(dbe)? {
                Some(g) => decode_item(g.value())?,
                None => return Err(Error::Corrupt(format!("no item {nonce}"))),
            };
            let ItemState::Relayed { batch } = state else {
                return Err(Error::IllegalItemTransition {
                    nonce,
                    from: format!("{state:?}"),
                });
            };
            let to = match outcome {
                Relay::Settled => ItemState::Final { batch },
                Relay::Refused(code) => ItemState::Refused { batch, code },
                Relay::Released => ItemState::Signed,
            };
            items
                .insert(nonce, encode_item(to, &att)?.as_slice())
                .map_err(dbe)?;
            let mut by_state = txn.open_table(BY_STATE).map_err(dbe)?;
            by_state.remove((state.tag(), nonce)).map_err(dbe)?;
            if !to.is_terminal() {
                by_state.insert((to.tag(), nonce), ()).map_err(dbe)?;
            }
            (state.tag(), to)
        };
        bump(&txn, from, -1)?;
        bump(&txn, to.tag(), 1)?;
        txn.commit().map_err(dbe)?;
        Ok(to)
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

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    use garden_wire::nonce;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashSet};

    const T0: u64 = 1_767_229_260; // 2026-01-01T00:41:00Z
    const DOMAIN: Domain<'static> = Domain {
        chain_id: "garden-zone-1",
        contract: "wasm1settlement",
    };

    fn key() -> SettlementKey {
        SettlementKey::from_seed([7; 32])
    }

    fn open(dir: &tempfile::TempDir) -> Signer {
        Signer::open(&dir.path().join("q.redb"), key(), &DOMAIN).unwrap()
    }

    fn input(n: u64, now: u64) -> UsageInput {
        UsageInput {
            provider: "garden1provider".into(),
            consumer: "garden1consumer".into(),
            resource_id: format!("res-{}", n % 5),
            quantity: n + 1,
            unit: "gib-hour".into(),
            price_ref: "storage".into(),
            max_unit_price: 1_000,
            period_start: now.saturating_sub(600),
            period_end: now,
        }
    }

    #[test]
    fn sign_builds_a_verifiable_attestation_under_the_nonce_rule() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        let a = s.sign(input(1, T0), T0).unwrap();
        let b = s.sign(input(2, T0), T0 + 5).unwrap();
        assert_eq!(a.nonce, 2_108_386_560_704_512, "ATTESTATION-VECTORS nonce");
        assert_eq!(b.nonce, a.nonce + 1);
        assert_eq!(a.state, ItemState::Signed);
        let att = &a.attestation;
        nonce::check(att.nonce, att.signed_at).unwrap();
        assert_eq!(att.signer, s.public_key());
        let vk = VerifyingKey::from_bytes(&att.signer).unwrap();
        vk.verify(
            &att.signing_bytes(&DOMAIN),
            &Signature::from_bytes(&att.signature),
        )
        .unwrap();
        // signed for this domain only
        let other = Domain {
            chain_id: "other",
            contract: DOMAIN.contract,
        };
        assert!(vk
            .verify(
                &att.signing_bytes(&other),
                &Signature::from_bytes(&att.signature)
            )
            .is_err());
        assert_eq!(s.item(a.nonce).unwrap().unwrap(), a);
        // next hour restarts the sequence; clock going back is refused and consumes nothing
        let c = s.sign(input(3, T0), T0 + 3600).unwrap();
        assert_eq!(nonce::nonce_seq(c.nonce), 0);
        assert!(matches!(
            s.sign(input(4, T0), T0),
            Err(Error::Nonce(NonceError::ClockWentBack { .. }))
        ));
        assert_eq!(s.items().unwrap().len(), 3);
        assert!(counter_floor(&s.counter().unwrap()) > c.nonce);
    }

    #[test]
    fn invalid_input_names_the_field_and_consumes_no_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        let mut i = input(1, T0);
        i.unit = String::new();
        let e = s.sign(i, T0).unwrap_err();
        assert!(
            matches!(e, Error::InvalidField { field: "unit", .. }),
            "{e}"
        );
        let mut i = input(1, T0);
        i.price_ref = "x".repeat(129);
        assert!(matches!(
            s.sign(i, T0),
            Err(Error::InvalidField {
                field: "price_ref",
                ..
            })
        ));
        let mut i = input(1, T0);
        i.period_end = T0 + 1;
        assert!(matches!(
            s.sign(i, T0),
            Err(Error::InvalidField {
                field: "period_end",
                ..
            })
        ));
        let mut i = input(1, T0);
        i.period_start = T0;
        i.period_end = T0 - 1;
        assert!(matches!(
            s.sign(i, T0),
            Err(Error::InvalidField {
                field: "period_start",
                ..
            })
        ));
        assert_eq!(s.counter().unwrap(), Counter::default());
        assert!(s.items().unwrap().is_empty());
    }

    #[test]
    fn a_database_is_bound_to_its_key_and_domain() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.redb");
        drop(Signer::open(&p, key(), &DOMAIN).unwrap());
        let e = Signer::open(&p, SettlementKey::from_seed([8; 32]), &DOMAIN)
            .err()
            .unwrap();
        assert!(matches!(e, Error::Binding { what: "signer", .. }), "{e}");
        let d2 = Domain {
            chain_id: DOMAIN.chain_id,
            contract: "wasm1other",
        };
        let e = Signer::open(&p, key(), &d2).err().unwrap();
        assert!(
            matches!(
                e,
                Error::Binding {
                    what: "contract",
                    ..
                }
            ),
            "{e}"
        );
        assert!(Signer::open(&p, key(), &DOMAIN).is_ok());
    }

    #[test]
    fn batches_by_size_and_age_and_the_payload_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        for n in 0..5 {
            s.sign(input(n, T0), T0).unwrap();
        }
        // 5 < 10 items and younger than 60 s: wait
        assert!(s.next_batch(10, 60, T0 + 59).unwrap().is_none());
        // size reached
        let b = s.next_batch(3, 60, T0 + 1).unwrap().unwrap();
        assert_eq!(b.nonces.len(), 3);
        let dec = Batch::decode(&b.payload, 3).unwrap();
        for (i, n) in b.nonces.iter().enumerate() {
            assert_eq!(
                dec.get(i).to_owned(),
                s.item(*n).unwrap().unwrap().attestation
            );
        }
        assert_eq!(s.batch_payload(b.id).unwrap(), b.payload);
        // age reached: the 2 left go
        let b2 = s.next_batch(10, 60, T0 + 60).unwrap().unwrap();
        assert_eq!(b2.nonces.len(), 2);
        assert!(b2.nonces[0] > b.nonces[2], "oldest first");
        assert!(s.next_batch(10, 0, T0 + 60).unwrap().is_none(), "empty");
        assert!(matches!(s.next_batch(0, 0, T0), Err(Error::BatchSize(0))));
        assert!(matches!(
            s.next_batch(MAX_BATCH_ITEMS + 1, 0, T0),
            Err(Error::BatchSize(_))
        ));
        let st = s.stats(T0 + 100).unwrap();
        assert_eq!((st.signed, st.batched), (0, 5));
        assert_eq!(st.oldest_pending_age, Some(100));
        assert_eq!(st.oldest_signed_age, None);
    }

    #[test]
    fn transitions_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        for n in 0..4 {
            s.sign(input(n, T0), T0).unwrap();
        }
        let b = s.next_batch(4, 0, T0).unwrap().unwrap();
        let illegal = |r: Result<(), Error>, from: &str| match r {
            Err(Error::IllegalTransition { from: f, .. }) => assert_eq!(f, from),
            other => panic!("{other:?}"),
        };
        illegal(s.mark_included(b.id, &[0, 0, 0, 0]), "built");
        assert!(matches!(
            s.mark_submitted(99, "tx"),
            Err(Error::UnknownBatch(99))
        ));
        s.mark_submitted(b.id, "ABCD").unwrap();
        illegal(s.mark_submitted(b.id, "EF"), "submitted");
        assert_eq!(
            s.batch(b.id).unwrap().unwrap().state,
            BatchState::Submitted {
                tx_hash: "ABCD".into()
            }
        );
        assert!(matches!(
            s.mark_included(b.id, &[0]),
            Err(Error::CodeCount {
                items: 4,
                codes: 1,
                ..
            })
        ));
        s.mark_included(b.id, &[0, 7, 0, 0]).unwrap();
        let states: Vec<_> = b
            .nonces
            .iter()
            .map(|n| s.item(*n).unwrap().unwrap().state)
            .collect();
        assert_eq!(states[0], ItemState::Final { batch: b.id });
        assert_eq!(
            states[1],
            ItemState::Refused {
                batch: b.id,
                code: 7
            }
        );
        assert!(matches!(
            s.requeue(b.id, RetryCause::TxFailed),
            Err(Error::IllegalTransition {
                from: "included",
                ..
            })
        ));
        illegal(s.mark_included(b.id, &[0, 0, 0, 0]), "included");
        let st = s.stats(T0).unwrap();
        assert_eq!((st.final_, st.refused, st.submitted), (3, 1, 0));
    }

    #[test]
    fn requeue_returns_items_with_the_same_signature_and_kills_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        for n in 0..3 {
            s.sign(input(n, T0), T0).unwrap();
        }
        let b = s.next_batch(3, 0, T0).unwrap().unwrap();
        s.mark_submitted(b.id, "T1").unwrap();
        assert_eq!(s.requeue(b.id, RetryCause::IbcTimeout).unwrap(), 3);
        assert!(matches!(
            s.mark_submitted(b.id, "T2"),
            Err(Error::IllegalTransition {
                from: "requeued",
                ..
            })
        ));
        let b2 = s.next_batch(3, 0, T0).unwrap().unwrap();
        assert_ne!(b2.id, b.id);
        assert_eq!(b2.nonces, b.nonces);
        assert_eq!(b2.payload, b.payload, "same attestations, same bytes");
        // a built (never broadcast) batch may be requeued too
        assert_eq!(s.requeue(b2.id, RetryCause::BroadcastRefused).unwrap(), 3);
        assert_eq!(s.stats(T0).unwrap().signed, 3);
    }

    #[test]
    fn relayed_items_end_final_refused_or_back_in_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        for n in 0..4 {
            s.sign(input(n, T0), T0).unwrap();
        }
        let b = s.next_batch(4, 0, T0).unwrap().unwrap();
        s.mark_submitted(b.id, "T1").unwrap();
        // the gateway refused the last item itself (e.g. signer revoked)
        s.mark_relayed(b.id, &[0, 0, 0, 12]).unwrap();
        let st = s.stats(T0).unwrap();
        assert_eq!((st.relayed, st.refused, st.submitted), (3, 1, 0));
        assert_eq!(
            st.oldest_pending_age,
            Some(0),
            "relayed items are unfinished"
        );
        let r = s.relayed(10).unwrap();
        assert_eq!(r, b.nonces[..3].to_vec());

        assert_eq!(
            s.resolve_relayed(r[0], Relay::Settled).unwrap(),
            ItemState::Final { batch: b.id }
        );
        assert_eq!(
            s.resolve_relayed(r[1], Relay::Refused(9)).unwrap(),
            ItemState::Refused {
                batch: b.id,
                code: 9
            }
        );
        assert_eq!(
            s.resolve_relayed(r[2], Relay::Released).unwrap(),
            ItemState::Signed
        );
        // a stale or repeated answer changes nothing
        for n in [r[0], r[1], r[2]] {
            assert!(matches!(
                s.resolve_relayed(n, Relay::Released),
                Err(Error::IllegalItemTransition { .. })
            ));
        }
        let st = s.stats(T0).unwrap();
        assert_eq!((st.final_, st.refused, st.signed, st.relayed), (1, 2, 1, 0));
        // the released item goes out again with its nonce and signature
        let again = s.next_batch(4, 0, T0).unwrap().unwrap();
        assert_eq!(again.nonces, vec![r[2]]);
        s.mark_submitted(again.id, "T2").unwrap();
        s.mark_relayed(again.id, &[0]).unwrap();
        assert_eq!(
            s.resolve_relayed(r[2], Relay::Settled).unwrap(),
            ItemState::Final { batch: again.id }
        );
        // survives a reopen
        drop(s);
        let s = open(&dir);
        assert_eq!(s.stats(T0).unwrap().final_, 2);
    }

    #[test]
    fn the_timeout_height_is_stored_with_the_hash_and_expiry_requeues() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        s.sign(input(0, T0), T0).unwrap();
        let b = s.next_batch(1, 0, T0).unwrap().unwrap();
        assert_eq!(s.tx_timeout(b.id).unwrap(), None);
        s.mark_submitted_until(b.id, "AB", Some(140)).unwrap();
        drop(s);
        let s = open(&dir);
        assert_eq!(s.tx_timeout(b.id).unwrap(), Some(140));
        s.requeue(b.id, RetryCause::TxExpired).unwrap();
        assert_eq!(
            s.batch(b.id).unwrap().unwrap().state,
            BatchState::Requeued {
                cause: RetryCause::TxExpired
            }
        );
        // a refused transition writes no timeout
        assert!(s.mark_submitted_until(b.id, "CD", Some(9)).is_err());
        assert_eq!(s.tx_timeout(b.id).unwrap(), Some(140));
    }

    #[test]
    fn sign_many_is_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        let mut v: Vec<_> = (0..10).map(|n| input(n, T0)).collect();
        let ok = s.sign_many(v.clone(), T0).unwrap();
        assert_eq!(ok.len(), 10);
        v[5].consumer = String::new();
        assert!(s.sign_many(v, T0).is_err());
        assert_eq!(s.items().unwrap().len(), 10);
        assert_eq!(s.counter().unwrap().next_seq, 10);
    }

    // ---- model-based property test -----------------------------------------------------

    #[derive(Clone, Debug)]
    enum Op {
        Sign(u8),
        Tick(u16),
        NextBatch {
            max: usize,
            max_age: u64,
        },
        Submit(usize),
        Include(usize, u8),
        Requeue(usize),
        /// IBC mode: the gateway's codes for a submitted batch.
        Relay(usize, u8),
        /// The gateway's answer for the i-th relayed item: 0 settled, 1 refused, 2 released.
        Resolve(usize, u8),
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u8..4).prop_map(Op::Sign),
            2 => (0u16..5000).prop_map(Op::Tick),
            2 => (1usize..6, 0u64..100).prop_map(|(max, max_age)| Op::NextBatch { max, max_age }),
            2 => (0usize..8).prop_map(Op::Submit),
            2 => (0usize..8, any::<u8>()).prop_map(|(b, c)| Op::Include(b, c)),
            1 => (0usize..8).prop_map(Op::Requeue),
            2 => (0usize..8, any::<u8>()).prop_map(|(b, c)| Op::Relay(b, c)),
            2 => (0usize..8, 0u8..3).prop_map(|(i, o)| Op::Resolve(i, o)),
            1 => Just(Op::Reopen),
        ]
    }

    fn check_invariants(s: &Signer, issued: &HashSet<u64>, ever_included: &HashSet<u64>) {
        let items = s.items().unwrap();
        let stored: HashSet<u64> = items.iter().map(|i| i.nonce).collect();
        assert_eq!(&stored, issued, "every signed item is stored, exactly once");
        let floor = counter_floor(&s.counter().unwrap());
        assert!(items.iter().all(|i| i.nonce < floor), "counter ahead");
        // an item is in at most one live (built/submitted) batch, and its state agrees
        let mut live: BTreeMap<u64, u64> = BTreeMap::new();
        for b in s.batches().unwrap() {
            if matches!(b.state, BatchState::Built | BatchState::Submitted { .. }) {
                for n in &b.nonces {
                    assert!(live.insert(*n, b.id).is_none(), "item {n} in two batches");
                }
            }
        }
        let mut counts = [0u64; 6];
        for i in &items {
            counts[i.state.tag() as usize] += 1;
            match i.state {
                ItemState::Signed => assert!(!live.contains_key(&i.nonce)),
                ItemState::Batched { batch } | ItemState::Submitted { batch } => {
                    assert_eq!(live.get(&i.nonce), Some(&batch))
                }
                _ => assert!(ever_included.contains(&i.nonce)),
            }
            if ever_included.contains(&i.nonce) {
                assert!(
                    i.state.is_terminal() || matches!(i.state, ItemState::Relayed { .. }),
                    "an included item was requeued without being released"
                );
            }
        }
        let st = s.stats(u64::MAX).unwrap();
        assert_eq!(
            [
                st.signed,
                st.batched,
                st.submitted,
                st.final_,
                st.refused,
                st.relayed
            ],
            counts
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn queue_invariants_hold(ops in proptest::collection::vec(op(), 1..60)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("q.redb");
            let mut s = Some(Signer::open(&path, key(), &DOMAIN).unwrap());
            let mut now = T0;
            let mut issued = HashSet::new();
            let mut ever_included = HashSet::new();
            for op in ops {
                let sg = s.as_ref().unwrap();
                let batches = sg.batches().unwrap();
                let pick = |i: usize| (!batches.is_empty()).then(|| batches[i % batches.len()].clone());
                match op {
                    Op::Sign(n) => {
                        for item in sg.sign_many((0..n as u64).map(|k| input(k, now)).collect(), now).unwrap() {
                            prop_assert!(issued.insert(item.nonce), "nonce {} issued twice", item.nonce);
                        }
                    }
                    Op::Tick(d) => now += d as u64,
                    Op::NextBatch { max, max_age } => {
                        let before = sg.stats(now).unwrap();
                        if let Some(b) = sg.next_batch(max, max_age, now).unwrap() {
                            prop_assert!(!b.nonces.is_empty() && b.nonces.len() <= max);
                            prop_assert_eq!(Batch::decode(&b.payload, max).unwrap().len(), b.nonces.len());
                        } else {
                            prop_assert!(before.signed < max as u64);
                        }
                    }
                    Op::Submit(i) => if let Some(b) = pick(i) {
                        let r = sg.mark_submitted(b.id, "TX");
                        prop_assert_eq!(r.is_ok(), b.state == BatchState::Built);
                    },
                    Op::Include(i, c) => if let Some(b) = pick(i) {
                        let codes: Vec<u32> = (0..b.nonces.len()).map(|k| if (k as u8) < c % 4 { 5 } else { 0 }).collect();
                        let r = sg.mark_included(b.id, &codes);
                        let ok = matches!(b.state, BatchState::Submitted { .. });
                        prop_assert_eq!(r.is_ok(), ok);
                        if ok { ever_included.extend(b.nonces.iter().copied()); }
                    },
                    Op::Requeue(i) => if let Some(b) = pick(i) {
                        let r = sg.requeue(b.id, RetryCause::IbcErrorAck);
                        prop_assert_eq!(r.is_ok(), matches!(b.state, BatchState::Built | BatchState::Submitted { .. }));
                    },
                    Op::Relay(i, c) => if let Some(b) = pick(i) {
                        let codes: Vec<u32> = (0..b.nonces.len()).map(|k| if (k as u8) < c % 3 { 12 } else { 0 }).collect();
                        let r = sg.mark_relayed(b.id, &codes);
                        let ok = matches!(b.state, BatchState::Submitted { .. });
                        prop_assert_eq!(r.is_ok(), ok);
                        if ok { ever_included.extend(b.nonces.iter().copied()); }
                    },
                    Op::Resolve(i, o) => {
                        let relayed = sg.relayed(100).unwrap();
                        if !relayed.is_empty() {
                            let n = relayed[i % relayed.len()];
                            let outcome = [Relay::Settled, Relay::Refused(9), Relay::Released][o as usize];
                            let to = sg.resolve_relayed(n, outcome).unwrap();
                            if outcome == Relay::Released {
                                prop_assert_eq!(to, ItemState::Signed);
                                ever_included.remove(&n);
                            } else {
                                prop_assert!(to.is_terminal());
                                prop_assert!(sg.resolve_relayed(n, Relay::Released).is_err());
                            }
                        }
                    }
                    Op::Reopen => {
                        drop(s.take());
                        s = Some(Signer::open(&path, key(), &DOMAIN).unwrap());
                    }
                }
                check_invariants(s.as_ref().unwrap(), &issued, &ever_included);
            }
        }
    }
}
