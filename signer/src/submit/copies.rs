//! The provider's side of "either side can submit": the copies this signer holds of its
//! consumers' attestations (`queue::copies`) are settled by the consumer's signer in the
//! normal case; each pass asks the contract where each copy stands, forgets the settled
//! ones, and submits those still free once they are `copy_grace` old (the consumer's
//! signer had its chance: it may be offline, broken or gone). A copy the consumer submits
//! at the same time is harmless: the contract takes each (signer, nonce) once.
//!
//! A copy is given up once it is older than the contract's window (`params.window_secs`,
//! queried once per pass): the contract refuses a `signed_at` that old for good, so trying
//! again each grace would last forever (a copy refused for another reason, e.g. an escrow
//! short for now, is retried until then: it may still be paid).

use anyhow::{Context, Result};
use serde_json::json;

use super::{Submitter, Target};
use crate::queue::HeldCopy;

/// Copies looked at per pass (each costs one query).
pub const MAX_COPIES_PER_PASS: usize = 200;

/// How long past the contract's window a copy is still kept: this host's clock and the
/// chain's block time may differ, and a copy is only given up once no block can take it.
pub(crate) const EXPIRY_MARGIN_SECS: u64 = 3_600;

/// Whether an attestation signed at `signed_at` is past any block's window at `now` (unix
/// seconds), for a contract refusing what was signed more than `window_secs` before its
/// block time.
pub(crate) fn past_window(signed_at: u64, now: u64, window_secs: u64) -> bool {
    signed_at
        .saturating_add(window_secs)
        .saturating_add(EXPIRY_MARGIN_SECS)
        < now
}

/// What one [`Submitter::settle_copies`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopiesReport {
    /// Copies found settled (by the consumer's signer or by us) and forgotten.
    pub settled: u64,
    /// Copies in flight (IBC mode: forwarded, not yet acknowledged) or not yet due.
    pub waiting: u64,
    /// Copies submitted by this pass.
    pub submitted: u64,
    /// Copies given up: signed longer ago than the contract's window (never payable).
    pub expired: u64,
    /// The submission's transaction hash, if any.
    pub tx: Option<String>,
}

/// Where a copy stands on the contract.
enum Standing {
    Settled,
    InFlight,
    Free,
}

impl Submitter<'_> {
    /// The contract's window (`params.window_secs` of its `config`; the gateway and the
    /// settlement contract keep the same one).
    async fn window_secs(&self) -> Result<u64> {
        let cfg: serde_json::Value = self
            .chain
            .query(&self.cfg.contract, &json!({"config": {}}))
            .await
            .context("the contract's window")?;
        cfg["params"]["window_secs"]
            .as_u64()
            .with_context(|| format!("no params.window_secs in the contract's config: {cfg}"))
    }

    async fn standing(&self, c: &HeldCopy) -> Result<Standing> {
        let nonce = c.attestation.nonce;
        Ok(match self.cfg.target {
            Target::Gateway => {
                let s = self.gateway_item(&c.attestation.signer, nonce).await?;
                match s.state {
                    garden_wire::ibc::ItemState::Settled => Standing::Settled,
                    garden_wire::ibc::ItemState::Pending => Standing::InFlight,
                    // Released with a settlement code: refused for good (escrow, offer…)
                    // unless it can change; the consumer's own signer keeps trying it, and
                    // so do we after the grace.
                    garden_wire::ibc::ItemState::Free | garden_wire::ibc::ItemState::Released => {
                        Standing::Free
                    }
                }
            }
            Target::Settlement => {
                use base64::Engine;
                let signer = base64::engine::general_purpose::STANDARD.encode(c.attestation.signer);
                let used: bool = self
                    .chain
                    .query(
                        &self.cfg.contract,
                        &json!({"nonce_used": {"signer": signer, "nonce": nonce}}),
                    )
                    .await
                    .with_context(|| format!("settlement status of copy {nonce}"))?;
                if used {
                    Standing::Settled
                } else {
                    Standing::Free
                }
            }
        })
    }

    /// One look at the held copies whose grace is over at `now` (unix seconds): gives up
    /// those past the contract's window, forgets the settled ones, submits the free ones in
    /// one transaction (up to the batch limit; their grace restarts) and leaves their outcome
    /// to a later pass.
    pub async fn settle_copies(&mut self, now: u64, grace: u64) -> Result<CopiesReport> {
        let mut rep = CopiesReport::default();
        let mut due = Vec::new();
        let mut window = None;
        for c in self.signer.copies(MAX_COPIES_PER_PASS)? {
            // A copy is looked at once its grace is over, not before: the chain is asked
            // about each copy about once per grace, not once per pass.
            if now.saturating_sub(c.since) < grace {
                rep.waiting += 1;
                continue;
            }
            let window_secs = match window {
                Some(w) => w,
                None => *window.insert(self.window_secs().await?),
            };
            if past_window(c.attestation.signed_at, now, window_secs) {
                // Settled or not, nothing can change it any more.
                self.signer
                    .drop_copy(&c.attestation.signer, c.attestation.nonce)?;
                rep.expired += 1;
                continue;
            }
            match self.standing(&c).await? {
                Standing::Settled => {
                    self.signer
                        .drop_copy(&c.attestation.signer, c.attestation.nonce)?;
                    rep.settled += 1;
                }
                // Its grace is over (checked above): ours to submit.
                Standing::Free => due.push(c.attestation),
                Standing::InFlight => rep.waiting += 1,
            }
        }
        let limit = self.limit().await?;
        due.truncate(limit);
        if due.is_empty() {
            return Ok(rep);
        }
        let batch = garden_wire::batch::encode(&due)
            .map_err(|e| anyhow::anyhow!("encoding the copies: {e}"))?;
        let msg = self.cfg.target.execute_msg(&batch);
        // Sent and confirmed on its own; the own queue's tracked sequence is re-read after.
        let out = self
            .chain
            .execute(self.wallet, &self.cfg.contract, &msg, vec![])
            .await
            .context("submitting held copies")?;
        self.account = None;
        for a in &due {
            self.signer.touch_copy(&a.signer, a.nonce, now)?;
        }
        rep.submitted = due.len() as u64;
        rep.tx = Some(out.hash.clone());
        Ok(rep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: u64 = 7 * 24 * 3600;

    #[test]
    fn a_copy_is_given_up_only_once_no_block_can_take_it() {
        let signed = 1_700_000_000;
        // Inside the window, and past it by less than the margin (the chain's clock may lag).
        assert!(!past_window(signed, signed, WEEK));
        assert!(!past_window(signed, signed + WEEK + 1, WEEK));
        assert!(!past_window(
            signed,
            signed + WEEK + EXPIRY_MARGIN_SECS,
            WEEK
        ));
        assert!(past_window(
            signed,
            signed + WEEK + EXPIRY_MARGIN_SECS + 1,
            WEEK
        ));
        // Signed in the future (a skewed consumer): not expired.
        assert!(!past_window(signed + 600, signed, WEEK));
        // No overflow at the ends of the range.
        assert!(!past_window(u64::MAX, u64::MAX, WEEK));
        assert!(!past_window(0, 0, u64::MAX));
    }
}
