//! How items and batches are laid out in the queue's redb tables.

use std::ops::RangeInclusive;

use garden_wire::batch::{self, Batch};
use garden_wire::Attestation;

use super::types::{BatchInfo, BatchState, Error, ItemState, RetryCause};

/// item record := u8 tag | u64 batch | u32 code | GWAB v1 batch of this one attestation.
pub(super) fn encode_item(state: ItemState, att: &Attestation) -> Result<Vec<u8>, Error> {
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

pub(super) fn decode_item(b: &[u8]) -> Result<(ItemState, Attestation), Error> {
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
pub(super) fn encode_batch(info: &BatchInfo) -> Vec<u8> {
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

pub(super) fn decode_batch(id: u64, b: &[u8]) -> Result<BatchInfo, Error> {
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

pub(super) fn state_range(tag: u8) -> RangeInclusive<(u8, u64)> {
    (tag, 0)..=(tag, u64::MAX)
}
