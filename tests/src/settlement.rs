//! Deploying Garden's contracts on the real zone from Rust, and building signed
//! consumption attestations with the founders' test keys (shared by the settlement e2e
//! tests and the gas benchmark).

use anyhow::{anyhow, Result};
use cosmrs::AccountId;
use ed25519_dalek::{Signer, SigningKey};
use garden_wire::{nonce, Attestation, Domain};
use serde_json::json;

use crate::{artifact, founder, founders, Chain, TestAccount, Wallet};

/// Addresses of one deployment of the consortium and settlement contracts.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub consortium: AccountId,
    pub settlement: AccountId,
}

/// Stores both contracts (as the admin: code upload is permissioned), instantiates the
/// consortium with the L1 founders and the settlement contract pointing at it, with the
/// admin account as governance admin of both.
pub async fn deploy(chain: &Chain, admin: &Wallet, label: &str) -> Result<Deployment> {
    let (consortium_code, _) = chain.store_code(admin, artifact("consortium")?).await?;
    let (settlement_code, _) = chain.store_code(admin, artifact("settlement")?).await?;
    let mut members = Vec::new();
    for f in founders()?.into_iter().filter(|f| f.level == "l1") {
        let w = Wallet::test_account(&f.account)?;
        members.push(json!({"addr": w.address.to_string(), "pubkey": f.pubkey, "level": f.level, "weight": f.weight}));
    }
    let admin_addr = admin.address.to_string();
    let init = json!({"members": members, "params": null, "admin": admin_addr});
    let (consortium, _) = chain
        .instantiate(
            admin,
            consortium_code,
            &init,
            &format!("{label}-consortium"),
            Some(admin.address.clone()),
            vec![],
        )
        .await?;
    let init = json!({"consortium": consortium.to_string(), "denom": chain.config.denom, "params": null, "admin": admin_addr});
    let (settlement, _) = chain
        .instantiate(
            admin,
            settlement_code,
            &init,
            &format!("{label}-settlement"),
            Some(admin.address.clone()),
            vec![],
        )
        .await?;
    Ok(Deployment {
        consortium,
        settlement,
    })
}

/// Seconds since the Unix epoch (attestations carry wall-clock times).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parameters of a run of attestations from one consumer to one provider.
pub struct AttestationSpec<'a> {
    pub chain_id: &'a str,
    pub settlement: &'a str,
    pub provider: &'a str,
    pub consumer: &'a str,
    pub key: &'a SigningKey,
    pub kind: &'a str,
    pub unit: &'a str,
    pub max_unit_price: u128,
    pub quantity: u64,
    pub signed_at: u64,
}

impl AttestationSpec<'_> {
    /// One signed attestation with the `seq`-th nonce of `signed_at`'s hour (the garden-wire
    /// nonce rule), for resource `resource-<seq % 16>`.
    pub fn sign(&self, seq: u64) -> Attestation {
        let nonce = nonce::first_nonce(nonce::epoch(self.signed_at)) + seq;
        let mut a = Attestation {
            provider: self.provider.to_string(),
            consumer: self.consumer.to_string(),
            resource_id: format!("resource-{}", seq % 16),
            quantity: self.quantity,
            unit: self.unit.to_string(),
            price_ref: self.kind.to_string(),
            max_unit_price: self.max_unit_price,
            period_start: self.signed_at.saturating_sub(3600),
            period_end: self.signed_at.saturating_sub(60),
            nonce,
            signed_at: self.signed_at,
            signer: self.key.verifying_key().to_bytes(),
            signature: [0; 64],
        };
        let domain = Domain {
            chain_id: self.chain_id,
            contract: self.settlement,
        };
        a.signature = self.key.sign(&a.signing_bytes(&domain)).to_bytes();
        a
    }

    pub fn sign_range(&self, seqs: std::ops::Range<u64>) -> Vec<Attestation> {
        seqs.map(|n| self.sign(n)).collect()
    }
}

/// The `settle_batch` execute message carrying `items` as one GWAB v1 batch.
pub fn settle_msg(items: &[Attestation]) -> Result<serde_json::Value> {
    use base64::Engine;
    let bytes =
        garden_wire::batch::encode(items).map_err(|e| anyhow!("encoding the batch: {e}"))?;
    Ok(
        json!({"settle_batch": {"batch": base64::engine::general_purpose::STANDARD.encode(bytes), "strict": null}}),
    )
}

/// A deployment with a market open on it: the provider offers `cpu` per `cpu-second` at
/// `unit_price`, the consumer has `deposit` in escrow, and the `signer` account submits
/// batches the consumer's attestation key signed.
pub struct Market {
    pub deployment: Deployment,
    pub admin: Wallet,
    pub provider: Wallet,
    pub consumer: Wallet,
    pub submitter: Wallet,
    pub consumer_key: SigningKey,
    provider_addr: String,
    consumer_addr: String,
    settlement_addr: String,
}

impl Market {
    pub const KIND: &'static str = "cpu";
    pub const UNIT: &'static str = "cpu-second";

    pub async fn open(chain: &Chain, label: &str, unit_price: u128, deposit: u128) -> Result<Self> {
        let admin = Wallet::test_account("admin")?;
        let provider = Wallet::test_account("provider")?;
        let consumer = Wallet::test_account("consumer")?;
        let submitter = Wallet::test_account("signer")?;
        let deployment = deploy(chain, &admin, label).await?;
        let offer = json!({"set_offer": {"kind": Self::KIND, "unit": Self::UNIT, "unit_price": unit_price.to_string()}});
        chain
            .execute(&provider, &deployment.settlement, &offer, vec![])
            .await?;
        chain
            .execute(
                &consumer,
                &deployment.settlement,
                &json!({"deposit": {}}),
                vec![chain.coin(deposit)?],
            )
            .await?;
        Ok(Self {
            consumer_key: founder("consumer")?.attestation_key()?,
            provider_addr: provider.address.to_string(),
            consumer_addr: consumer.address.to_string(),
            settlement_addr: deployment.settlement.to_string(),
            deployment,
            admin,
            provider,
            consumer,
            submitter,
        })
    }

    /// Attestations of `quantity` units at most `max_unit_price`, signed now (after the
    /// deployment: a member's status is judged at `signed_at`, and the founders became members
    /// when the consortium was instantiated).
    pub fn spec<'a>(
        &'a self,
        chain: &'a Chain,
        max_unit_price: u128,
        quantity: u64,
    ) -> AttestationSpec<'a> {
        self.spec_at(chain, max_unit_price, quantity, unix_now())
    }

    /// The same, signed at `signed_at`.
    pub fn spec_at<'a>(
        &'a self,
        chain: &'a Chain,
        max_unit_price: u128,
        quantity: u64,
        signed_at: u64,
    ) -> AttestationSpec<'a> {
        AttestationSpec {
            chain_id: &chain.config.chain_id,
            settlement: &self.settlement_addr,
            provider: &self.provider_addr,
            consumer: &self.consumer_addr,
            key: &self.consumer_key,
            kind: Self::KIND,
            unit: Self::UNIT,
            max_unit_price,
            quantity,
            signed_at,
        }
    }
}
