//! Pure decisions of the submitter: what to do with a batch given what the chain answered.
//! No I/O here; [`super::Submitter`] observes the chain, asks, and applies the answer to the
//! queue.
//!
//! # Outcomes and what they mean
//! | observed | known? | step |
//! |---|---|---|
//! | CheckTx refused the broadcast | yes: never in a mempool | requeue (`BroadcastRefused`) |
//! | broadcast transport error | no: may be in a mempool | wait, then look up by hash |
//! | committed, code 0 | yes | `mark_included` with the per-item codes |
//! | committed, code ≠ 0 | yes: the whole tx reverted | requeue (`TxFailed`) |
//! | not found, height ≤ timeout height + lag | no: may still be included | wait |
//! | not found, height > timeout height + lag | yes: can never be included | requeue (`TxExpired`) |
//! | not found, no timeout height recorded | no | wait (never resubmitted blindly) |
//!
//! Every transaction carries a `timeout_height`, recorded with its hash before broadcast:
//! the chain refuses a transaction past it, so "not found by hash" becomes a known outcome
//! once the chain is [`INDEX_LAG_BLOCKS`] past it (the tx index is written after the block
//! commits). This assumes the node indexes transactions (`tx_index.indexer = "kv"`, the
//! default); against a node that does not, every lookup is "not found", batches are
//! requeued after their timeout and resent — harmless, see the next point, but wasteful.
//!
//! # The nonce is the last line
//! Item code 5 (`NonceReused`: this signer key's nonce was already settled) is recorded as
//! settled (`final`): the queue signs each nonce exactly once (persistent counter), so the
//! settled attestation with this key and nonce is this very item — paid by an earlier
//! submission whose outcome was lost, or by the provider's copy. Counting it `refused` would
//! report a paid item as unpaid; counting it paid again is impossible (the contract paid once).

use garden_wire::ibc::{ItemState, ItemStatus};

use crate::queue::{RetryCause, MAX_BATCH_ITEMS};

/// Contract item code `NonceReused` (contracts/settlement `ItemError`).
pub const CODE_NONCE_REUSED: u32 = 5;
/// Gateway item code `NoncePending`: the gateway already holds this nonce in flight (from a
/// submission whose outcome was lost, or the provider's copy).
pub const CODE_NONCE_PENDING: u32 = 25;

/// Which contract receives the batches.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The settlement contract on the same chain: `settle_batch`, included = final.
    #[default]
    Settlement,
    /// The zone's gateway contract: `submit_batch`, included = relayed over IBC.
    Gateway,
}

impl Target {
    /// The execute message's name, also the `action` of the event that reports the items.
    pub fn action(self) -> &'static str {
        match self {
            Target::Settlement => "settle_batch",
            Target::Gateway => "submit_batch",
        }
    }

    /// The execute message that hands `batch` (a `GWAB` payload) to the target.
    pub fn execute_msg(self, batch: &[u8]) -> serde_json::Value {
        use base64::Engine;
        let batch = base64::engine::general_purpose::STANDARD.encode(batch);
        match self {
            Target::Settlement => {
                serde_json::json!({"settle_batch": {"batch": batch, "strict": null}})
            }
            Target::Gateway => serde_json::json!({"submit_batch": {"batch": batch}}),
        }
    }
}

/// Blocks past a transaction's timeout height before "not found" is believed.
pub const INDEX_LAG_BLOCKS: u64 = 2;
/// Most items whose settlement transaction can be gas-simulated over CometBFT RPC (2 836
/// measured, docs/PERFORMANCE.md), with a margin for longer addresses and strings.
pub const MAX_SIMULATED_ITEMS: usize = 2_500;

/// What to do with a submitted batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Included: these per-item codes (0 = settled) go to `mark_included`.
    Include(Vec<u32>),
    /// Known that nothing of it settled: its items go back to `signed`.
    Requeue(RetryCause),
    /// Outcome unknown: look the transaction up again later.
    Wait,
}

/// What the chain answered to a broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BroadcastSeen {
    Accepted,
    Refused {
        code: u32,
    },
    /// Transport failure: the transaction may or may not have reached a mempool.
    Unknown,
}

pub fn on_broadcast(b: BroadcastSeen) -> Step {
    match b {
        BroadcastSeen::Accepted | BroadcastSeen::Unknown => Step::Wait,
        BroadcastSeen::Refused { .. } => Step::Requeue(RetryCause::BroadcastRefused),
    }
}

/// After a broadcast, must the locally tracked account sequence be re-read from the chain?
/// Yes unless CheckTx accepted the transaction (then the sequence is simply incremented).
pub fn resync_after(b: BroadcastSeen) -> bool {
    !matches!(b, BroadcastSeen::Accepted)
}

/// What a lookup by hash found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupSeen<'a> {
    /// Committed with code 0; the attributes of the settlement contract's `settle_batch`
    /// event (`None` if the transaction has no such event).
    Committed {
        settle_event: Option<&'a [(String, String)]>,
    },
    Failed,
    NotFound {
        height: u64,
        timeout_height: Option<u64>,
    },
    /// The lookup itself failed (transport).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the transaction has no settle_batch event of the settlement contract")]
    NoSettleEvent,
    #[error("settle_batch event: {0}")]
    Bad(String),
    #[error("the contract settled {got} items, the batch has {expected}")]
    Count { expected: usize, got: usize },
}

pub fn on_lookup(
    seen: &LookupSeen<'_>,
    batch_len: usize,
    target: Target,
) -> Result<Step, DecodeError> {
    Ok(match seen {
        LookupSeen::Committed { settle_event } => {
            let attrs = settle_event.ok_or(DecodeError::NoSettleEvent)?;
            Step::Include(item_codes(batch_len, attrs, target)?)
        }
        LookupSeen::Failed => Step::Requeue(RetryCause::TxFailed),
        LookupSeen::NotFound {
            height,
            timeout_height: Some(t),
        } if *height > t.saturating_add(INDEX_LAG_BLOCKS) => Step::Requeue(RetryCause::TxExpired),
        LookupSeen::NotFound { .. } | LookupSeen::Unknown => Step::Wait,
    })
}

/// Per-item codes (payload order) from the contract's event attributes: `items` (count) and
/// `rejected_items` (settlement) or `refused_items` (gateway), `index:code,...`, absent when
/// none. Code 5 (already settled) becomes 0 (module docs); at the gateway code 25 (already in
/// flight) becomes 0 too: the item is relayed, and the gateway will say what became of it.
pub fn item_codes(
    batch_len: usize,
    attrs: &[(String, String)],
    target: Target,
) -> Result<Vec<u32>, DecodeError> {
    let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let list = match target {
        Target::Settlement => "rejected_items",
        Target::Gateway => "refused_items",
    };
    let items: usize = get("items")
        .ok_or_else(|| DecodeError::Bad("no items attribute".into()))?
        .parse()
        .map_err(|_| DecodeError::Bad("items is not a number".into()))?;
    if items != batch_len {
        return Err(DecodeError::Count {
            expected: batch_len,
            got: items,
        });
    }
    let mut codes = vec![0u32; items];
    for part in get(list).unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        let bad = || DecodeError::Bad(format!("rejected item '{part}'"));
        let (i, c) = part.split_once(':').ok_or_else(bad)?;
        let i: usize = i.parse().map_err(|_| bad())?;
        let c: u32 = c.parse().map_err(|_| bad())?;
        if i >= items || c == 0 {
            return Err(bad());
        }
        let in_flight = target == Target::Gateway && c == CODE_NONCE_PENDING;
        codes[i] = if c == CODE_NONCE_REUSED || in_flight {
            0
        } else {
            c
        };
    }
    Ok(codes)
}

/// What a relayed item becomes given the gateway's answer; `None` = still in flight.
///
/// `Free` for an item the gateway accepted means it let the nonce go (a release whose
/// record was pruned): nothing was paid under it, since a payment leaves the item
/// `settled`, so it is requeued; should the settlement chain have paid it after all, the
/// resubmission comes back "nonce already settled", which counts as final.
/// (The answer is the gateway's `item` query, `garden_wire::ibc::ItemStatus`.)
pub fn on_gateway_item(item: &ItemStatus) -> Option<crate::queue::Relay> {
    use crate::queue::Relay;
    match item.state {
        ItemState::Pending => None,
        ItemState::Settled => Some(Relay::Settled),
        ItemState::Released => Some(match item.code.map(u32::from) {
            // "already settled" on the settlement chain: this very item was paid (the
            // queue signs each nonce once), by an earlier packet or the provider's copy.
            Some(CODE_NONCE_REUSED) => Relay::Settled,
            Some(c) if c != 0 => Relay::Refused(c),
            _ => Relay::Released,
        }),
        ItemState::Free => Some(Relay::Released),
    }
}

/// Items per batch: the configured size, under the contract's `max_batch`, the queue's
/// ceiling and what can be simulated over RPC; at least 1.
pub fn batch_limit(configured: usize, contract_max: Option<usize>) -> usize {
    let ceiling = MAX_BATCH_ITEMS
        .min(MAX_SIMULATED_ITEMS)
        .min(contract_max.unwrap_or(usize::MAX));
    configured.clamp(1, ceiling.max(1))
}

/// The next limit after a batch of `len` items was too large to simulate or broadcast.
pub fn shrink(len: usize) -> usize {
    (len / 2).max(1)
}

/// Fee in base units: `ceil(gas × gas_price)` (a non-finite or negative price counts as 0).
pub fn fee_amount(gas: u64, gas_price: f64) -> u128 {
    if !gas_price.is_finite() || gas_price <= 0.0 {
        return 0;
    }
    (gas as f64 * gas_price).ceil() as u128
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn broadcast_outcomes() {
        assert_eq!(on_broadcast(BroadcastSeen::Accepted), Step::Wait);
        assert_eq!(on_broadcast(BroadcastSeen::Unknown), Step::Wait);
        assert_eq!(
            on_broadcast(BroadcastSeen::Refused { code: 32 }),
            Step::Requeue(RetryCause::BroadcastRefused)
        );
        assert!(!resync_after(BroadcastSeen::Accepted));
        assert!(resync_after(BroadcastSeen::Refused { code: 32 }));
        assert!(resync_after(BroadcastSeen::Unknown));
    }

    #[test]
    fn lookups() {
        let ev = attrs(&[
            ("action", "settle_batch"),
            ("items", "4"),
            ("rejected_items", "1:8,3:5"),
        ]);
        let c = LookupSeen::Committed {
            settle_event: Some(&ev),
        };
        assert_eq!(
            on_lookup(&c, 4, Target::Settlement).unwrap(),
            Step::Include(vec![0, 8, 0, 0])
        );
        assert_eq!(
            on_lookup(&c, 5, Target::Settlement),
            Err(DecodeError::Count {
                expected: 5,
                got: 4
            })
        );
        assert_eq!(
            on_lookup(
                &LookupSeen::Committed { settle_event: None },
                1,
                Target::Settlement
            ),
            Err(DecodeError::NoSettleEvent)
        );
        assert_eq!(
            on_lookup(&LookupSeen::Failed, 3, Target::Settlement).unwrap(),
            Step::Requeue(RetryCause::TxFailed)
        );
        let nf = |height, timeout_height| LookupSeen::NotFound {
            height,
            timeout_height,
        };
        assert_eq!(
            on_lookup(&nf(100, Some(100)), 1, Target::Settlement).unwrap(),
            Step::Wait
        );
        assert_eq!(
            on_lookup(&nf(102, Some(100)), 1, Target::Settlement).unwrap(),
            Step::Wait
        );
        assert_eq!(
            on_lookup(&nf(103, Some(100)), 1, Target::Settlement).unwrap(),
            Step::Requeue(RetryCause::TxExpired)
        );
        assert_eq!(
            on_lookup(&nf(u64::MAX, None), 1, Target::Settlement).unwrap(),
            Step::Wait,
            "no timeout: never requeued blindly"
        );
        assert_eq!(
            on_lookup(&LookupSeen::Unknown, 1, Target::Settlement).unwrap(),
            Step::Wait
        );
    }

    #[test]
    fn item_codes_parse_and_refuse_nonsense() {
        assert_eq!(
            item_codes(3, &attrs(&[("items", "3")]), Target::Settlement).unwrap(),
            vec![0, 0, 0]
        );
        assert_eq!(
            item_codes(
                2,
                &attrs(&[("items", "2"), ("rejected_items", "0:5,1:5")]),
                Target::Settlement
            )
            .unwrap(),
            vec![0, 0],
            "nonce already settled = this item was paid"
        );
        for bad in ["2:3", "x", "0:0", "0:z", "1"] {
            assert!(
                item_codes(
                    2,
                    &attrs(&[("items", "2"), ("rejected_items", bad)]),
                    Target::Settlement
                )
                .is_err(),
                "{bad}"
            );
        }
        assert!(item_codes(1, &attrs(&[]), Target::Settlement).is_err());
        // the gateway lists its refusals as refused_items; 25 = already in flight = relayed
        assert_eq!(
            item_codes(
                3,
                &attrs(&[("items", "3"), ("refused_items", "0:12,1:25,2:5")]),
                Target::Gateway
            )
            .unwrap(),
            vec![12, 0, 0]
        );
    }

    #[test]
    fn gateway_answers() {
        use crate::queue::Relay;
        let parse = |j: &str| serde_json::from_str::<ItemStatus>(j).unwrap();
        assert_eq!(
            on_gateway_item(&parse(r#"{"state":"pending","batch_id":3,"code":null}"#)),
            None
        );
        assert_eq!(
            on_gateway_item(&parse(r#"{"state":"settled","batch_id":3,"code":null}"#)),
            Some(Relay::Settled)
        );
        assert_eq!(
            on_gateway_item(&parse(r#"{"state":"released","batch_id":3,"code":14}"#)),
            Some(Relay::Refused(14))
        );
        assert_eq!(
            on_gateway_item(&parse(r#"{"state":"released","batch_id":3,"code":5}"#)),
            Some(Relay::Settled),
            "already settled there = this item was paid"
        );
        assert_eq!(
            on_gateway_item(&parse(r#"{"state":"released","batch_id":3,"code":null}"#)),
            Some(Relay::Released),
            "timeout or error ack: resend"
        );
        assert_eq!(
            on_gateway_item(&parse(r#"{"state":"free","batch_id":null,"code":null}"#)),
            Some(Relay::Released)
        );
        assert!(serde_json::from_str::<ItemStatus>(r#"{"state":"paid"}"#).is_err());
    }

    #[test]
    fn limits_and_fees() {
        assert_eq!(batch_limit(1_000, Some(400)), 400);
        assert_eq!(batch_limit(10_000, None), MAX_SIMULATED_ITEMS);
        assert_eq!(batch_limit(0, None), 1);
        assert_eq!(shrink(1_000), 500);
        assert_eq!(shrink(1), 1);
        assert_eq!(fee_amount(200_001, 0.025), 5_001);
        assert_eq!(fee_amount(200_000, 0.0), 0);
        assert_eq!(fee_amount(200_000, f64::NAN), 0);
    }
}
