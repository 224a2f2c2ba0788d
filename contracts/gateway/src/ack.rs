//! The settlement chain's answer to a packet (acknowledgement or timeout): each item of the
//! packet leaves the pending state, settled (code 0) or released (anything else).
//!
//! The packet's items are read back from the packet itself (`original_packet.data`, the batch
//! this gateway sent), so nothing about a packet is stored at send time but the items'
//! pending entries, which name the batch.
//!
//! This never fails the relayer's transaction: a failure would leave the items pending for
//! ever (the answer is delivered once). Something unexpected (an answer that cannot be read)
//! releases the items, which is safe: the settlement chain never pays a (key, nonce) twice,
//! so a released item that did settle comes back as code 5 when submitted again.

use cosmwasm_std::{
    from_json, Binary, DepsMut, Event, HexBinary, IbcBasicResponse, StdAck, Storage,
};
use garden_wire::ibc::SettleAck;
use garden_wire::{AttestationRef, Batch};

use crate::items::{self, Entry, SettledMarks};
use crate::state::{BATCHES, BATCH_COUNT, MAX_BATCH_RECORDS};
use crate::types::{BatchStatus, MAX_BATCH_CEILING};
use crate::ContractError;

/// Items listed by name in an event (the rest are counted; query `item` or `batch`).
pub const MAX_LISTED: usize = 50;
/// Longest error-ack text kept in a batch record and an event.
pub const MAX_ERROR_LEN: usize = 256;

/// What came back for one packet.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Per-item codes, in packet order.
    Settled(SettleAck),
    /// The packet was refused as a whole.
    ErrorAck(String),
    Timeout,
}

impl Answer {
    /// Reads an acknowledgement (cosmwasm `StdAck` JSON carrying a [`SettleAck`]); anything
    /// else, or codes that do not match the packet, counts as an error ack.
    pub fn of_ack(ack: &Binary, items: usize) -> Answer {
        match from_json::<StdAck>(ack) {
            Ok(StdAck::Success(data)) => match from_json::<SettleAck>(&data) {
                Ok(a) if a.codes.len() == items => Answer::Settled(a),
                Ok(a) => Answer::ErrorAck(format!(
                    "acknowledgement has {} codes for {items} items",
                    a.codes.len()
                )),
                Err(e) => Answer::ErrorAck(format!("unreadable acknowledgement: {e}")),
            },
            Ok(StdAck::Error(e)) => Answer::ErrorAck(e),
            Err(e) => Answer::ErrorAck(format!("unreadable acknowledgement: {e}")),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Answer::Settled(_) => "rejected",
            Answer::ErrorAck(_) => "error_ack",
            Answer::Timeout => "timeout",
        }
    }
}

/// Applies the answer to the items of `packet` (the data this gateway sent).
pub fn on_answer(
    deps: DepsMut,
    packet: &Binary,
    answer: impl FnOnce(usize) -> Answer,
) -> Result<IbcBasicResponse, ContractError> {
    let res = IbcBasicResponse::new().add_attribute("action", "packet_answer");
    let Ok(batch) = Batch::decode(packet.as_slice(), MAX_BATCH_CEILING as usize) else {
        // Not a batch this gateway could have sent: nothing of ours is pending on it.
        return Ok(res.add_attribute("ignored", "packet data is not a GWAB batch"));
    };
    let items: Vec<AttestationRef<'_>> = batch.iter().collect();
    let answer = answer(items.len());
    // The batch is named by the items' pending entries (all carry the same id).
    let Some(batch_id) =
        items
            .iter()
            .find_map(|a| match items::load(deps.storage, a.signer, a.nonce) {
                Some(Entry::Pending { batch_id }) => Some(batch_id),
                _ => None,
            })
    else {
        return Ok(res.add_attribute("ignored", "no item of the packet is pending"));
    };

    let mut settled: Vec<String> = Vec::new();
    let mut released: Vec<(String, Option<u8>)> = Vec::new();
    let mut marks = SettledMarks::default();
    for (i, a) in items.iter().enumerate() {
        if items::load(deps.storage, a.signer, a.nonce) != Some(Entry::Pending { batch_id }) {
            continue; // pruned meanwhile, or repeated in the packet (answered once)
        }
        let code = match &answer {
            Answer::Settled(ack) => Some(ack.codes[i]),
            _ => None,
        };
        if code == Some(0) {
            items::remove(deps.storage, a.signer, a.nonce);
            marks.mark(deps.storage, a.signer, a.nonce);
            settled.push(name(a));
        } else {
            items::save(
                deps.storage,
                a.signer,
                a.nonce,
                Entry::Released { batch_id, code },
            );
            released.push((name(a), code));
        }
    }
    marks.write(deps.storage);
    update_record(
        deps.storage,
        batch_id,
        &answer,
        settled.len(),
        released.len(),
    )?;

    let mut res = res
        .add_attribute("batch_id", batch_id.to_string())
        .add_attribute("outcome", answer.reason());
    if !settled.is_empty() {
        res = res.add_event(
            listed(Event::new("garden_settled"), &settled)
                .add_attribute("batch_id", batch_id.to_string())
                .add_attribute("count", settled.len().to_string()),
        );
    }
    if !released.is_empty() {
        let names: Vec<String> = released.iter().map(|(n, _)| n.clone()).collect();
        let mut ev = listed(Event::new("garden_released"), &names)
            .add_attribute("batch_id", batch_id.to_string())
            .add_attribute("reason", answer.reason())
            .add_attribute("count", released.len().to_string());
        if let Answer::Settled(_) = answer {
            let codes: Vec<String> = released
                .iter()
                .take(MAX_LISTED)
                .map(|(_, c)| c.unwrap_or(0).to_string())
                .collect();
            ev = ev.add_attribute("codes", codes.join(","));
        }
        if let Answer::ErrorAck(e) = &answer {
            ev = ev.add_attribute("error", bounded(e));
        }
        res = res.add_event(ev);
    }
    Ok(res)
}

/// An item as events name it: `"hexkey:nonce"`.
fn name(a: &AttestationRef<'_>) -> String {
    format!("{}:{}", HexBinary::from(&a.signer[..]).to_hex(), a.nonce)
}

/// `items`: the first [`MAX_LISTED`] names, comma-separated (`truncated` if there are more).
fn listed(ev: Event, names: &[String]) -> Event {
    let ev = ev.add_attribute("items", names[..names.len().min(MAX_LISTED)].join(","));
    if names.len() > MAX_LISTED {
        ev.add_attribute("truncated", "true")
    } else {
        ev
    }
}

fn bounded(s: &str) -> String {
    let mut end = s.len().min(MAX_ERROR_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn update_record(
    storage: &mut dyn Storage,
    batch_id: u64,
    answer: &Answer,
    settled: usize,
    released: usize,
) -> Result<(), ContractError> {
    let Some(mut info) = BATCHES.may_load(storage, batch_id)? else {
        return Ok(());
    };
    info.settled = settled as u32;
    info.released = released as u32;
    match answer {
        Answer::Settled(ack) => {
            info.status = BatchStatus::Acked;
            info.settlement_batch_id = Some(ack.batch_id);
            info.ack_codes = Some(ack.codes.clone());
        }
        Answer::ErrorAck(e) => {
            info.status = BatchStatus::ErrorAck;
            info.error = Some(bounded(e));
        }
        Answer::Timeout => info.status = BatchStatus::TimedOut,
    }
    // Records of answered batches older than the last MAX_BATCH_RECORDS ids are not kept.
    let count = BATCH_COUNT.load(storage)?;
    if batch_id.saturating_add(MAX_BATCH_RECORDS) <= count {
        BATCHES.remove(storage, batch_id);
    } else {
        BATCHES.save(storage, batch_id, &info)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::to_json_binary;

    fn ack(codes: Vec<u8>) -> SettleAck {
        SettleAck {
            batch_id: 4,
            settled: 0,
            rejected: 0,
            paid: 0u128.into(),
            codes: codes.into(),
        }
    }

    #[test]
    fn every_ack_shape_is_read_or_counted_as_an_error() {
        let ok = StdAck::success(to_json_binary(&ack(vec![0, 8])).unwrap()).to_binary();
        assert_eq!(Answer::of_ack(&ok, 2), Answer::Settled(ack(vec![0, 8])));
        assert_eq!(
            Answer::of_ack(&ok, 3),
            Answer::ErrorAck("acknowledgement has 2 codes for 3 items".into())
        );
        let err = StdAck::error("batch rejected: batch is empty").to_binary();
        assert_eq!(
            Answer::of_ack(&err, 1),
            Answer::ErrorAck("batch rejected: batch is empty".into())
        );
        // ibc-go's own error ack for a contract `Err` has the same JSON shape
        let go = Binary::from(
            br#"{"error":"ABCI code: 5: error handling packet: see events for details"}"#.to_vec(),
        );
        assert!(
            matches!(Answer::of_ack(&go, 1), Answer::ErrorAck(e) if e.starts_with("ABCI code: 5"))
        );
        for junk in [&b"\x01"[..], br#"{"result":"bm90IGpzb24="}"#, b"{}"] {
            let a = Answer::of_ack(&Binary::from(junk.to_vec()), 1);
            assert!(
                matches!(&a, Answer::ErrorAck(e) if e.starts_with("unreadable acknowledgement")),
                "{a:?}"
            );
        }
    }

    proptest::proptest! {
        // An acknowledgement is network input (the relayer carries it): never a panic.
        #[test]
        fn any_ack_bytes_are_answered(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), n in 0usize..10) {
            let _ = Answer::of_ack(&Binary::from(bytes), n);
        }

        #[test]
        fn codes_must_match_the_packet(codes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20), n in 0usize..20) {
            let bin = StdAck::success(to_json_binary(&ack(codes.clone())).unwrap()).to_binary();
            let settled = matches!(Answer::of_ack(&bin, n), Answer::Settled(_));
            proptest::prop_assert_eq!(settled, codes.len() == n);
        }
    }

    #[test]
    fn error_texts_are_bounded_on_a_char_boundary() {
        let long = "é".repeat(200);
        let b = bounded(&long);
        assert!(b.len() <= MAX_ERROR_LEN && long.starts_with(&b));
        assert_eq!(bounded("short"), "short");
    }
}
