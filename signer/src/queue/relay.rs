//! IBC mode: items the zone's gateway accepted (`relayed`) and what its answers make of them
//! (see the module docs of [`super`]).

use redb::ReadableTable;

use super::record::{decode_item, encode_item, state_range};
use super::types::{dbe, Error, ItemState, Relay};
use super::{bump, Signer, BY_STATE, ITEMS};

impl Signer {
    /// IBC mode: `submitted → included` with the gateway's per-item codes in payload order:
    /// 0 → `relayed` (forwarded, awaiting the acknowledgement), anything else →
    /// `refused(code)`.
    pub fn mark_relayed(&self, batch: u64, codes: &[u32]) -> Result<(), Error> {
        self.include(batch, codes, "mark relayed", |b| ItemState::Relayed {
            batch: b,
        })
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
}
