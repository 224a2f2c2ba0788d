//! Attestations of other members held as the provider's copy (`take` receives them from
//! the sidecar, `Submitter::settle_copies` submits those the consumer's signer has not
//! settled after a grace period). Kept apart from this signer's own items: they carry
//! another key's nonces, which the own queue's state machine does not track.
//!
//! Table `copies`: (signer key, nonce) → since (unix seconds, 8 bytes big-endian: when it
//! was received, or last submitted by us) ‖ the one-item `GWAB` batch as received.

use garden_wire::batch::{self, Batch};
use garden_wire::{Attestation, Domain};
use redb::ReadableTable;

use super::types::dbe;
use super::{Error, Signer, COPIES};

/// One held copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldCopy {
    pub attestation: Attestation,
    /// When it was received, or last submitted by this signer (unix seconds).
    pub since: u64,
}

/// Why a copy is not held.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyRefusal {
    #[error("not one attestation in the wire batch format: {0}")]
    Malformed(String),
    #[error("its signature does not verify under this signer's domain ({chain_id}, {contract})")]
    Signature { chain_id: String, contract: String },
    #[error("signed by this signer's own key: not a copy")]
    Own,
}

impl Signer {
    /// Checks a copy ([`decode_copy`]'s attestation: signed under our signing domain by
    /// another key) and holds it; `Ok(false)` when it is already held.
    pub fn hold_copy(
        &self,
        att: &Attestation,
        now: u64,
    ) -> Result<Result<bool, CopyRefusal>, Error> {
        if att.signer == self.key.public_key() {
            return Ok(Err(CopyRefusal::Own));
        }
        let domain = Domain {
            chain_id: &self.chain_id,
            contract: &self.contract,
        };
        let verified = ed25519_dalek::VerifyingKey::from_bytes(&att.signer)
            .ok()
            .is_some_and(|k| {
                k.verify_strict(
                    &att.signing_bytes(&domain),
                    &ed25519_dalek::Signature::from_bytes(&att.signature),
                )
                .is_ok()
            });
        if !verified {
            return Ok(Err(CopyRefusal::Signature {
                chain_id: self.chain_id.clone(),
                contract: self.contract.clone(),
            }));
        }
        // The batch as received: the wire decoder is canonical, so encoding gives its bytes.
        let bytes = copy_bytes(att)?;
        let txn = self.db.begin_write().map_err(dbe)?;
        let added = {
            let mut t = txn.open_table(COPIES).map_err(dbe)?;
            let key = (&att.signer[..], att.nonce);
            if t.get(key).map_err(dbe)?.is_some() {
                false
            } else {
                let mut v = now.to_be_bytes().to_vec();
                v.extend_from_slice(&bytes);
                t.insert(key, v.as_slice()).map_err(dbe)?;
                true
            }
        };
        txn.commit().map_err(dbe)?;
        Ok(Ok(added))
    }

    /// Up to `max` held copies, by signer key and nonce.
    pub fn copies(&self, max: usize) -> Result<Vec<HeldCopy>, Error> {
        let txn = self.db.begin_read().map_err(dbe)?;
        let t = txn.open_table(COPIES).map_err(dbe)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(dbe)?.take(max) {
            let (_, v) = row.map_err(dbe)?;
            let v = v.value();
            let corrupt = || Error::Corrupt("a held copy does not decode".into());
            let at: [u8; 8] = v
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(corrupt)?;
            let b = Batch::decode(&v[8..], 1).map_err(|_| corrupt())?;
            if b.len() != 1 {
                return Err(corrupt());
            }
            out.push(HeldCopy {
                attestation: b.get(0).to_owned(),
                since: u64::from_be_bytes(at),
            });
        }
        Ok(out)
    }

    /// Restarts the grace of the copy of (`signer`, `nonce`) at `now` (it was just
    /// submitted: the next try, if it does not settle, waits a whole grace again).
    pub fn touch_copy(&self, signer: &[u8; 32], nonce: u64, now: u64) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(dbe)?;
        {
            let mut t = txn.open_table(COPIES).map_err(dbe)?;
            let old = t
                .get((&signer[..], nonce))
                .map_err(dbe)?
                .map(|v| v.value().to_vec());
            if let Some(mut v) = old {
                v[..8].copy_from_slice(&now.to_be_bytes());
                t.insert((&signer[..], nonce), v.as_slice()).map_err(dbe)?;
            }
        }
        txn.commit().map_err(dbe)?;
        Ok(())
    }

    /// The copy of (`signer`, `nonce`) is settled (by whoever): no longer held.
    pub fn drop_copy(&self, signer: &[u8; 32], nonce: u64) -> Result<bool, Error> {
        let txn = self.db.begin_write().map_err(dbe)?;
        let removed = {
            let mut t = txn.open_table(COPIES).map_err(dbe)?;
            let r = t.remove((&signer[..], nonce)).map_err(dbe)?;
            r.is_some()
        };
        txn.commit().map_err(dbe)?;
        Ok(removed)
    }
}

/// The attestation a copy carries (one item of the wire batch format), unchecked.
pub fn decode_copy(bytes: &[u8]) -> Result<Attestation, CopyRefusal> {
    match Batch::decode(bytes, 1) {
        Ok(b) if b.len() == 1 => Ok(b.get(0).to_owned()),
        Ok(b) => Err(CopyRefusal::Malformed(format!("{} items", b.len()))),
        Err(e) => Err(CopyRefusal::Malformed(e.to_string())),
    }
}

/// The one-item batch a copy travels as (what `take` hands back to the sidecar).
pub fn copy_bytes(att: &Attestation) -> Result<Vec<u8>, Error> {
    batch::encode(std::slice::from_ref(att)).map_err(|e| Error::Corrupt(e.to_string()))
}
