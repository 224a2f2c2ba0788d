//! The queue's vocabulary: its error, item and batch states, retry causes, what the gateway
//! can say about a relayed item, and the records callers read.

use garden_wire::nonce::NonceError;
use garden_wire::Attestation;

/// Most items per batch: the settlement contract's `max_batch` ceiling (`MAX_BATCH_CEILING`
/// in contracts/settlement, ≈ 940 KB of RPC body). The string table cannot overflow below
/// it (5 strings per item × 4 000 < 65 535 entries).
pub const MAX_BATCH_ITEMS: usize = 4_000;

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

pub(super) fn dbe<E: Into<redb::Error>>(e: E) -> Error {
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
    pub(super) fn tag(self) -> u8 {
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
    pub(super) fn tag(self) -> u8 {
        match self {
            RetryCause::BroadcastRefused => 0,
            RetryCause::TxFailed => 1,
            RetryCause::IbcTimeout => 2,
            RetryCause::IbcErrorAck => 3,
            RetryCause::TxExpired => 4,
        }
    }
    pub(super) fn from_tag(t: u8) -> Result<Self, Error> {
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
    pub(super) fn name(&self) -> &'static str {
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
