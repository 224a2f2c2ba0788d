//! Signing usage that comes with an origin key (a sidecar's booking id): the key and the
//! nonce it got are stored in the transaction that signs, so the same report taken again —
//! after a crash between signing and telling the sidecar, or from a sidecar that lists it
//! twice — is recognised instead of signed under a second nonce. The contract would refuse
//! neither copy as a replay (two nonces), so this table is what keeps one usage paid once.

use redb::ReadableTable;

use super::types::dbe;
use super::{check_input, Error, QueuedItem, Signer, ORIGINS};
use crate::input::UsageInput;

/// Longest origin key stored (a booking id is a `did:key` and a nonce: under 100 bytes).
const MAX_ORIGIN_LEN: usize = 256;

/// What became of one keyed input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keyed {
    /// Signed now.
    Signed(Box<QueuedItem>),
    /// Signed before, under this nonce: nothing new.
    Already { nonce: u64 },
    /// Not signed (no nonce spent): the reason names the field.
    Invalid(String),
}

impl Signer {
    /// Signs each `(origin, input)` whose origin was never signed, in one durable
    /// transaction. An input that breaks a rule is answered `Invalid` and the others still
    /// go through; an origin seen twice in `inputs` is signed once.
    pub fn sign_keyed(
        &self,
        inputs: Vec<(String, UsageInput)>,
        now: u64,
    ) -> Result<Vec<(String, Keyed)>, Error> {
        /// One input's answer while the call runs.
        enum Slot {
            Done(Keyed),
            /// Checked, signed below.
            Fresh,
            /// A repeat of the origin at this index: answers as that one did.
            SameAs(usize),
        }
        let txn = self.db.begin_write().map_err(dbe)?;
        let mut answers: Vec<(String, Slot)> = Vec::with_capacity(inputs.len());
        let mut fresh = Vec::new();
        {
            let origins = txn.open_table(ORIGINS).map_err(dbe)?;
            let mut first = std::collections::BTreeMap::new();
            for (origin, input) in inputs {
                let slot = if origin.is_empty() || origin.len() > MAX_ORIGIN_LEN {
                    Slot::Done(Keyed::Invalid(format!(
                        "origin: must be 1..={MAX_ORIGIN_LEN} bytes, is {}",
                        origin.len()
                    )))
                } else if let Some(n) = origins.get(origin.as_str()).map_err(dbe)? {
                    Slot::Done(Keyed::Already { nonce: n.value() })
                } else if let Some(&j) = first.get(&origin) {
                    Slot::SameAs(j)
                } else {
                    first.insert(origin.clone(), answers.len());
                    match check_input(&input, now) {
                        Ok(()) => {
                            fresh.push((answers.len(), input));
                            Slot::Fresh
                        }
                        Err(e) => Slot::Done(Keyed::Invalid(e.to_string())),
                    }
                };
                answers.push((origin, slot));
            }
        }
        let (slots, inputs): (Vec<usize>, Vec<UsageInput>) = fresh.into_iter().unzip();
        let signed = self.sign_in(&txn, inputs, now)?;
        {
            let mut origins = txn.open_table(ORIGINS).map_err(dbe)?;
            for (slot, item) in slots.iter().zip(signed) {
                let origin = answers[*slot].0.clone();
                origins.insert(origin.as_str(), item.nonce).map_err(dbe)?;
                answers[*slot].1 = Slot::Done(Keyed::Signed(Box::new(item)));
            }
        }
        txn.commit().map_err(dbe)?;
        let answer_of = |slot: &Slot| match slot {
            Slot::Done(k) => k.clone(),
            // Every fresh slot was signed above; a repeat's first is always Done.
            Slot::Fresh | Slot::SameAs(_) => Keyed::Invalid("origin: not answered".into()),
        };
        Ok(answers
            .iter()
            .map(|(origin, slot)| {
                let answer = match slot {
                    Slot::SameAs(j) => match answer_of(&answers[*j].1) {
                        Keyed::Signed(item) => Keyed::Already { nonce: item.nonce },
                        other => other,
                    },
                    slot => answer_of(slot),
                };
                (origin.clone(), answer)
            })
            .collect())
    }

    /// The nonce signed for `origin`, if any.
    pub fn origin(&self, origin: &str) -> Result<Option<u64>, Error> {
        let txn = self.db.begin_read().map_err(dbe)?;
        let t = txn.open_table(ORIGINS).map_err(dbe)?;
        Ok(t.get(origin).map_err(dbe)?.map(|v| v.value()))
    }
}
