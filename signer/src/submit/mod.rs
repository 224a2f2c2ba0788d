//! Submission of signed attestation batches to the settlement contract.
//!
//! Per batch: `next_batch` → simulate gas → sign the transaction with a
//! `timeout_height` → `mark_submitted_until(hash, timeout)` (durable, *before* the
//! broadcast) → broadcast (sync) → confirm by hash → `mark_included(codes)` or `requeue`.
//! What to do with each observed outcome is decided in [`decide`] (pure, unit-tested).
//! Up to [`SubmitConfig::pipeline`] batches are broadcast with consecutive sequences before
//! they are confirmed; a refusal or an unknown broadcast ends the round (later sequences
//! would be refused), and new transactions are signed only once every earlier one is known.
//!
//! Two targets ([`Target`]): the settlement contract itself (single-chain mode: included =
//! settled or refused), or the zone's gateway contract (IBC mode: included = forwarded to
//! the settlement chain, items `relayed`). In IBC mode every pass first asks the gateway
//! about relayed items ([`Submitter::poll_relayed`]): settled → `final`, refused by the
//! settlement chain → `refused`, released after a packet timeout or error acknowledgement →
//! `signed` again, resent with the same nonce and signature.
//!
//! Restart: [`Submitter::recover`] first settles every batch left `submitted` by looking its
//! stored hash up (never resubmitting it blindly), and submits batches left `built` (they
//! were never broadcast: the hash is recorded before the broadcast). Only then is the account
//! sequence read again and new batches taken.

mod copies;
pub mod decide;

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use cosmrs::AccountId;
use serde_json::json;

use crate::chain::{Account, Broadcast, Chain, GasPolicy, Lookup, TxDraft, Wallet};
use crate::queue::{BatchState, RetryCause, Signer};
pub use copies::{CopiesReport, MAX_COPIES_PER_PASS};
use decide::{BroadcastSeen, LookupSeen, Step};

pub use decide::Target;

/// Relayed items asked about per pass (one smart query each).
pub const MAX_POLLED_PER_PASS: usize = 2_000;

/// How the submitter batches, pays and waits.
#[derive(Clone, Debug)]
pub struct SubmitConfig {
    /// The settlement contract, or the gateway in IBC mode (see `target`).
    pub contract: AccountId,
    pub target: Target,
    /// Items per batch (bounded by [`decide::batch_limit`]).
    pub max_items: usize,
    /// A smaller batch leaves once its oldest item is this old (seconds).
    pub max_age: u64,
    pub gas: GasPolicy,
    /// Fee = ceil(gas × gas_price) of `fee_denom` (the chain's denom if `None`).
    pub gas_price: f64,
    pub fee_denom: Option<String>,
    /// The transaction may be included up to this many blocks after the current height.
    pub timeout_blocks: u64,
    /// How long one confirmation waits before leaving the batch `submitted` for a later pass.
    pub confirm_timeout: Duration,
    /// Batches broadcast (consecutive sequences) before confirming them; 1 = one at a time.
    pub pipeline: usize,
    /// Seconds a held copy of a consumer's attestation waits for the consumer's signer
    /// before this one submits it (`settle_copies`).
    pub copy_grace: u64,
}

impl SubmitConfig {
    pub fn new(contract: AccountId) -> Self {
        SubmitConfig {
            contract,
            target: Target::Settlement,
            max_items: 1_000,
            max_age: 30,
            gas: GasPolicy::default(),
            gas_price: 0.0,
            fee_denom: None,
            timeout_blocks: 40,
            confirm_timeout: Duration::from_secs(120),
            pipeline: 4,
            copy_grace: 3_600,
        }
    }
}

/// What a pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    /// Batches broadcast in this pass.
    pub broadcast: u64,
    /// Batches included, and their items settled (`final`) or refused.
    pub included: u64,
    pub items_final: u64,
    pub items_refused: u64,
    /// IBC mode: items the gateway forwarded in this pass (awaiting the acknowledgement).
    pub items_relayed: u64,
    /// IBC mode: relayed items whose packet timed out or was error-acknowledged, back in
    /// the queue.
    pub items_released: u64,
    /// Batches whose items went back to `signed` (known "nothing settled").
    pub requeued: u64,
    /// Batches still `submitted` with an unknown outcome (looked up again next pass).
    pub pending: u64,
    pub gas_used: u64,
    pub gas_wanted: u64,
    /// The last refusal by CheckTx in this pass (code, codespace, log).
    pub last_refusal: Option<String>,
}

/// What happened to one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    Included {
        final_: u64,
        refused: u64,
    },
    /// IBC mode: included by the gateway; `relayed` items forwarded.
    Relayed {
        relayed: u64,
        refused: u64,
    },
    Requeued(RetryCause),
    /// Too large to simulate: requeued, the batch limit halved.
    Resized,
    Pending,
}

/// What [`Submitter::sign_and_broadcast`] did with a batch.
#[derive(Debug)]
enum Sent {
    Broadcast(String, BroadcastSeen),
    /// Too large to simulate: requeued, the limit halved.
    Resized,
    /// Not simulated while earlier transactions of the round are pending: requeued.
    Deferred,
}

/// A pass stops after this many batches in a row were refused (a fee or account problem
/// would otherwise be retried forever); the next pass tries again.
const MAX_REFUSALS_IN_A_ROW: u32 = 3;

pub struct Submitter<'a> {
    signer: &'a Signer,
    chain: &'a Chain,
    wallet: &'a Wallet,
    cfg: SubmitConfig,
    account: Option<Account>,
    /// The chain height read by the round's first transaction: the others of the round
    /// reuse it for their timeout height (a round lasts a block or two, far inside
    /// `timeout_blocks`), which saves one query per transaction.
    round_height: Option<u64>,
    limit: Option<usize>,
    /// Settled-or-refused items shown on a progress bar, counted from a base.
    progress: Option<(indicatif::ProgressBar, u64)>,
}

impl<'a> Submitter<'a> {
    pub fn new(
        signer: &'a Signer,
        chain: &'a Chain,
        wallet: &'a Wallet,
        cfg: SubmitConfig,
    ) -> Self {
        Submitter {
            signer,
            chain,
            wallet,
            cfg,
            account: None,
            round_height: None,
            limit: None,
            progress: None,
        }
    }

    /// Moves `bar` to the number of items final or refused beyond `base` after every batch
    /// outcome (a long `--flush` pass drains in many rounds).
    pub fn on_progress(&mut self, bar: indicatif::ProgressBar, base: u64) {
        self.progress = Some((bar, base));
    }

    fn tick(&self) {
        if let Some((bar, base)) = &self.progress {
            if let Ok(s) = self.signer.stats(0) {
                bar.set_position((s.final_ + s.refused).saturating_sub(*base));
            }
        }
    }

    /// Items per batch now (the contract's `max_batch` is read once).
    async fn limit(&mut self) -> Result<usize> {
        if let Some(l) = self.limit {
            return Ok(l);
        }
        let cfg: serde_json::Value = self
            .chain
            .query(&self.cfg.contract, &json!({"config": {}}))
            .await
            .context("settlement contract config")?;
        let contract_max = cfg["params"]["max_batch"].as_u64().map(|v| v as usize);
        let l = decide::batch_limit(self.cfg.max_items, contract_max);
        self.limit = Some(l);
        Ok(l)
    }

    /// Resolves every batch left `built` or `submitted` (after a restart, or a confirmation
    /// that timed out). Returns what happened; `pending > 0` means some outcome is still
    /// unknown.
    pub async fn recover(&mut self) -> Result<PassReport> {
        let mut rep = PassReport::default();
        for b in self.signer.batches()? {
            match b.state {
                BatchState::Submitted { tx_hash } => {
                    let r = self
                        .confirm(b.id, &tx_hash, b.nonces.len(), &mut rep)
                        .await?;
                    count(&mut rep, &r);
                }
                BatchState::Built => {
                    let payload = self.signer.batch_payload(b.id)?;
                    let r = self
                        .submit_built(b.id, b.nonces.len(), payload, &mut rep)
                        .await?;
                    count(&mut rep, &r);
                }
                _ => {}
            }
        }
        Ok(rep)
    }

    /// One pass: [`Self::recover`], then batches of `signed` items until none is due (all of
    /// them if `flush`, else by size and age at `now`). Stops early if an outcome stays
    /// unknown (the account sequence cannot be trusted until it is known).
    pub async fn pass(&mut self, now: u64, flush: bool) -> Result<PassReport> {
        let mut rep = self.recover().await?;
        if self.cfg.target == Target::Gateway {
            self.poll_relayed(&mut rep).await?;
        }
        if rep.pending > 0 {
            return Ok(rep);
        }
        let mut refusals = 0;
        loop {
            // One round: up to `pipeline` batches broadcast with consecutive sequences (the
            // mempool's check state accepts them in order), then all confirmed.
            let limit = self.limit().await?;
            let age = if flush { 0 } else { self.cfg.max_age };
            let mut inflight = Vec::new();
            let mut refused = false;
            while inflight.len() < self.cfg.pipeline.max(1) {
                let Some(b) = self
                    .signer
                    .next_batch(self.limit.unwrap_or(limit), age, now)?
                else {
                    break;
                };
                let len = b.nonces.len();
                let in_round = !inflight.is_empty();
                let (hash, seen) = match self
                    .sign_and_broadcast(b.id, b.payload, in_round, &mut rep)
                    .await?
                {
                    Sent::Broadcast(hash, seen) => (hash, seen),
                    Sent::Resized => {
                        count(&mut rep, &Resolved::Resized);
                        continue;
                    }
                    Sent::Deferred => {
                        count(&mut rep, &Resolved::Resized);
                        break;
                    }
                };
                rep.broadcast += 1;
                match decide::on_broadcast(seen) {
                    Step::Requeue(cause) => {
                        self.signer.requeue(b.id, cause)?;
                        count(&mut rep, &Resolved::Requeued(cause));
                        refused = true;
                        break;
                    }
                    _ => inflight.push((b.id, hash, len)),
                }
                if seen != BroadcastSeen::Accepted {
                    // Unknown: the sequence cannot be trusted until this one is resolved.
                    break;
                }
            }
            if inflight.is_empty() && !refused {
                break;
            }
            let mut pending = false;
            for (id, hash, len) in inflight {
                let r = self.confirm(id, &hash, len, &mut rep).await?;
                count(&mut rep, &r);
                self.tick();
                match r {
                    Resolved::Pending => pending = true,
                    Resolved::Included { .. } | Resolved::Relayed { .. } => refusals = 0,
                    Resolved::Requeued(_) => refused = true,
                    Resolved::Resized => {}
                }
            }
            if pending {
                break;
            }
            if refused {
                refusals += 1;
                if refusals >= MAX_REFUSALS_IN_A_ROW {
                    break;
                }
            }
        }
        Ok(rep)
    }

    /// The first half of a submission: takes the next batch (all signed items up to the
    /// limit), records its hash and broadcasts it, without confirming. Returns the batch id
    /// and hash. A later [`Self::recover`] confirms it. (Tests use this to stop "between
    /// broadcast and confirmation".)
    pub async fn broadcast_next(&mut self, now: u64) -> Result<Option<(u64, String)>> {
        let limit = self.limit().await?;
        let Some(b) = self.signer.next_batch(limit, 0, now)? else {
            return Ok(None);
        };
        match self
            .sign_and_broadcast(b.id, b.payload, false, &mut PassReport::default())
            .await?
        {
            Sent::Broadcast(hash, BroadcastSeen::Accepted) => Ok(Some((b.id, hash))),
            other => Err(anyhow!("batch {} was not accepted: {other:?}", b.id)),
        }
    }

    /// Signs the batch's transaction, records the hash, broadcasts. `None`: the batch was
    /// too large and was requeued (the limit is halved).
    async fn sign_and_broadcast(
        &mut self,
        id: u64,
        payload: Vec<u8>,
        in_round: bool,
        rep: &mut PassReport,
    ) -> Result<Sent> {
        let msg = self.cfg.target.execute_msg(&payload);
        let any =
            crate::chain::execute_any(&self.wallet.address, &self.cfg.contract, &msg, vec![])?;
        let msgs = [any];
        let mut account = match self.account {
            Some(a) => a,
            None => self.chain.account_info(&self.wallet.address).await?,
        };
        let height = match self.round_height {
            Some(h) if in_round => h,
            _ => {
                let h = self.chain.height().await?;
                self.round_height = Some(h);
                h
            }
        };
        let timeout_height = height + self.cfg.timeout_blocks;
        let draft = TxDraft {
            msgs: &msgs,
            memo: "garden settle",
            timeout_height,
        };
        let mut sim = self
            .chain
            .simulate(self.wallet, &draft, account.into())
            .await;
        if sim.is_err() && in_round {
            // Earlier transactions of this round wait in the mempool: the simulation's
            // sequence moves under us while a block commits and the mempool is rechecked.
            // Never broadcast, so nothing settled: requeue and end the round.
            self.signer.requeue(id, RetryCause::BroadcastRefused)?;
            return Ok(Sent::Deferred);
        }
        if sim.is_err() && self.account.is_some() {
            // The simulation checks the sequence too: a locally tracked one may be stale
            // (another transaction from this account). Re-read it and simulate once more.
            account = self.chain.account_info(&self.wallet.address).await?;
            sim = self
                .chain
                .simulate(self.wallet, &draft, account.into())
                .await;
        }
        let simulated = match sim {
            Ok(g) => g,
            Err(e) if e.to_string().contains("too large to simulate") => {
                let n = self.signer.batch(id)?.map_or(1, |b| b.nonces.len());
                self.limit = Some(decide::shrink(n));
                self.signer.requeue(id, RetryCause::BroadcastRefused)?;
                return Ok(Sent::Resized);
            }
            Err(e) => {
                // Never broadcast: nothing can have settled.
                self.signer.requeue(id, RetryCause::BroadcastRefused)?;
                return Err(e.context(format!("simulating batch {id}")));
            }
        };
        let gas = self.cfg.gas.limit(simulated);
        let denom = self
            .cfg
            .fee_denom
            .clone()
            .unwrap_or_else(|| self.chain.config.denom.clone());
        let fee = cosmrs::Coin {
            denom: denom.parse().map_err(|e| anyhow!("fee denom: {e}"))?,
            amount: decide::fee_amount(gas, self.cfg.gas_price),
        };
        let tx = self.wallet.sign_tx(
            &self.chain.config.chain_id,
            &draft,
            account.into(),
            gas,
            fee,
        )?;
        let hash = crate::chain::broadcast::tx_hash(&tx);
        // Durable before the transaction leaves: a crash after this line is recovered by
        // looking the hash up, never by sending the batch again.
        self.signer
            .mark_submitted_until(id, &hash, Some(timeout_height))?;
        let seen = match self.chain.broadcast(tx).await {
            Ok(Broadcast::Accepted) => BroadcastSeen::Accepted,
            Ok(Broadcast::Refused(e)) => {
                rep.last_refusal = Some(e.to_string());
                BroadcastSeen::Refused { code: e.code }
            }
            Err(_) => BroadcastSeen::Unknown,
        };
        self.account = if decide::resync_after(seen) {
            None
        } else {
            Some(Account {
                number: account.number,
                sequence: account.sequence + 1,
            })
        };
        Ok(Sent::Broadcast(hash, seen))
    }

    async fn submit_built(
        &mut self,
        id: u64,
        len: usize,
        payload: Vec<u8>,
        rep: &mut PassReport,
    ) -> Result<Resolved> {
        let (hash, seen) = match self.sign_and_broadcast(id, payload, false, rep).await? {
            Sent::Broadcast(hash, seen) => (hash, seen),
            Sent::Resized | Sent::Deferred => return Ok(Resolved::Resized),
        };
        rep.broadcast += 1;
        match decide::on_broadcast(seen) {
            Step::Requeue(cause) => {
                self.signer.requeue(id, cause)?;
                Ok(Resolved::Requeued(cause))
            }
            _ => self.confirm(id, &hash, len, rep).await,
        }
    }

    /// Looks `hash` up until its outcome is known or the confirmation timeout passes.
    async fn confirm(
        &mut self,
        id: u64,
        hash: &str,
        len: usize,
        rep: &mut PassReport,
    ) -> Result<Resolved> {
        let timeout_height = self.signer.tx_timeout(id)?;
        let deadline = tokio::time::Instant::now() + self.cfg.confirm_timeout;
        loop {
            let found = self.chain.find_tx(hash).await;
            let step = match &found {
                Ok(Lookup::Committed(out)) => {
                    let contract = self.cfg.contract.to_string();
                    let action = self.cfg.target.action();
                    let ev = out.grouped.iter().find(|(k, attrs)| {
                        k == "wasm"
                            && attrs
                                .iter()
                                .any(|(a, v)| a == "_contract_address" && *v == contract)
                            && attrs.iter().any(|(a, v)| a == "action" && v == action)
                    });
                    rep.gas_used += out.gas_used;
                    rep.gas_wanted += out.gas_wanted;
                    decide::on_lookup(
                        &LookupSeen::Committed {
                            settle_event: ev.map(|(_, a)| a.as_slice()),
                        },
                        len,
                        self.cfg.target,
                    )
                    .with_context(|| format!("batch {id}, tx {hash}"))?
                }
                Ok(Lookup::Failed { .. }) => {
                    decide::on_lookup(&LookupSeen::Failed, len, self.cfg.target)?
                }
                Ok(Lookup::NotFound) => match self.chain.height().await {
                    Ok(height) => decide::on_lookup(
                        &LookupSeen::NotFound {
                            height,
                            timeout_height,
                        },
                        len,
                        self.cfg.target,
                    )?,
                    Err(_) => Step::Wait,
                },
                Err(_) => Step::Wait,
            };
            match step {
                Step::Include(codes) => {
                    let ok = codes.iter().filter(|c| **c == 0).count() as u64;
                    let refused = codes.len() as u64 - ok;
                    return Ok(match self.cfg.target {
                        Target::Settlement => {
                            self.signer.mark_included(id, &codes)?;
                            Resolved::Included {
                                final_: ok,
                                refused,
                            }
                        }
                        Target::Gateway => {
                            self.signer.mark_relayed(id, &codes)?;
                            Resolved::Relayed {
                                relayed: ok,
                                refused,
                            }
                        }
                    });
                }
                Step::Requeue(cause) => {
                    self.signer.requeue(id, cause)?;
                    self.account = None;
                    return Ok(Resolved::Requeued(cause));
                }
                Step::Wait if tokio::time::Instant::now() >= deadline => {
                    self.account = None;
                    return Ok(Resolved::Pending);
                }
                Step::Wait => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

impl Submitter<'_> {
    /// IBC mode: what the gateway knows of (`signer`, `nonce`).
    async fn gateway_item(
        &self,
        signer: &[u8; 32],
        nonce: u64,
    ) -> Result<garden_wire::ibc::ItemStatus> {
        use base64::Engine;
        let signer = base64::engine::general_purpose::STANDARD.encode(signer);
        self.chain
            .query(
                &self.cfg.contract,
                &json!({"item": {"signer": signer, "nonce": nonce}}),
            )
            .await
            .with_context(|| format!("gateway status of item {nonce}"))
    }

    /// IBC mode: asks the gateway what became of each `relayed` item (oldest first, at most
    /// [`MAX_POLLED_PER_PASS`]) and applies the answer ([`decide::on_gateway_item`]).
    pub async fn poll_relayed(&mut self, rep: &mut PassReport) -> Result<()> {
        let signer = self.signer.public_key();
        for nonce in self.signer.relayed(MAX_POLLED_PER_PASS)? {
            let status = self.gateway_item(&signer, nonce).await?;
            let Some(outcome) = decide::on_gateway_item(&status) else {
                continue;
            };
            match self.signer.resolve_relayed(nonce, outcome)? {
                crate::queue::ItemState::Final { .. } => rep.items_final += 1,
                crate::queue::ItemState::Refused { .. } => rep.items_refused += 1,
                _ => rep.items_released += 1,
            }
        }
        Ok(())
    }
}

fn count(rep: &mut PassReport, r: &Resolved) {
    match r {
        Resolved::Relayed { relayed, refused } => {
            rep.included += 1;
            rep.items_relayed += relayed;
            rep.items_refused += refused;
        }
        Resolved::Included { final_, refused } => {
            rep.included += 1;
            rep.items_final += final_;
            rep.items_refused += refused;
        }
        Resolved::Requeued(_) | Resolved::Resized => rep.requeued += 1,
        Resolved::Pending => rep.pending += 1,
    }
}
