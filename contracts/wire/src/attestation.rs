//! Consumption attestation and its canonical signing bytes.
//!
//! A consumer's sidecar signs, with its settlement key (Ed25519), a statement "provider P
//! served me `quantity` `unit` of resource R during [start, end], priced under offer
//! `price_ref` at no more than `max_unit_price` per unit". The signature authorises the
//! settlement contract to move that payment from the consumer's escrow to the provider.
//!
//! # Signing bytes, version 1 (all integers big-endian, `str` = u8 length + UTF-8 bytes)
//! ```text
//! "garden/attestation/v1"   21 bytes, no length prefix (the domain tag)
//! str chain_id              chain the attestation is valid on
//! str contract              settlement contract address (bech32)
//! str provider | str consumer | str resource_id | str unit | str price_ref
//! u64 quantity | u128 max_unit_price
//! u64 period_start | u64 period_end | u64 nonce | u64 signed_at   (unix seconds, nonce)
//! [32] signer public key
//! ```
//! The chain id and contract address make a signature useless on any other deployment;
//! the version lives in the tag so a v2 layout can never be confused with v1.

/// Domain tag that opens every v1 attestation signing message.
pub const ATTESTATION_TAG_V1: &[u8] = b"garden/attestation/v1";
pub const PUBKEY_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;

/// Where a signature is valid: one chain, one settlement contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain<'a> {
    pub chain_id: &'a str,
    pub contract: &'a str,
}

/// Owned attestation, as the sidecar builds and queues it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    /// Provider's chain address (receives the payment).
    pub provider: String,
    /// Consumer's chain address (its escrow pays; must be the signer's member address).
    pub consumer: String,
    /// The resource consumed (opaque id from the catalog).
    pub resource_id: String,
    /// Amount consumed, in `unit`s.
    pub quantity: u64,
    /// Unit of `quantity` ("gib-hour", "cpu-second", ...); must match the offer's unit.
    pub unit: String,
    /// Price reference: the resource kind of the provider's offer that prices this.
    pub price_ref: String,
    /// Highest unit price (native denom base units) the consumer accepted when signing.
    pub max_unit_price: u128,
    /// Consumption period, unix seconds, `period_start <= period_end <= signed_at`.
    pub period_start: u64,
    pub period_end: u64,
    /// Per-signer nonce; the contract accepts each (signer, nonce) once, ever.
    pub nonce: u64,
    /// When it was signed, unix seconds (checked against the contract's window).
    pub signed_at: u64,
    pub signer: [u8; PUBKEY_LEN],
    pub signature: [u8; SIGNATURE_LEN],
}

/// Borrowed view of an attestation: what the batch decoder yields without copying strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttestationRef<'a> {
    pub provider: &'a str,
    pub consumer: &'a str,
    pub resource_id: &'a str,
    pub quantity: u64,
    pub unit: &'a str,
    pub price_ref: &'a str,
    pub max_unit_price: u128,
    pub period_start: u64,
    pub period_end: u64,
    pub nonce: u64,
    pub signed_at: u64,
    pub signer: &'a [u8; PUBKEY_LEN],
    pub signature: &'a [u8; SIGNATURE_LEN],
}

impl Attestation {
    pub fn as_ref(&self) -> AttestationRef<'_> {
        AttestationRef {
            provider: &self.provider,
            consumer: &self.consumer,
            resource_id: &self.resource_id,
            quantity: self.quantity,
            unit: &self.unit,
            price_ref: &self.price_ref,
            max_unit_price: self.max_unit_price,
            period_start: self.period_start,
            period_end: self.period_end,
            nonce: self.nonce,
            signed_at: self.signed_at,
            signer: &self.signer,
            signature: &self.signature,
        }
    }

    /// Checks what the batch encoder will check: every string field non-empty and at most
    /// [`crate::MAX_STR_LEN`] bytes. A signer validates before it signs, so it never signs
    /// an attestation that cannot travel.
    pub fn validate(&self) -> Result<(), crate::EncodeError> {
        for s in [
            &self.provider,
            &self.consumer,
            &self.resource_id,
            &self.unit,
            &self.price_ref,
        ] {
            crate::check_str(s)?;
        }
        Ok(())
    }

    /// Canonical v1 signing bytes; see the module docs. Call [`Attestation::validate`]
    /// first: a string field over 255 bytes cannot be represented and panics here.
    pub fn signing_bytes(&self, domain: &Domain<'_>) -> Vec<u8> {
        self.as_ref().signing_bytes(domain)
    }
}

impl AttestationRef<'_> {
    /// Canonical v1 signing bytes. Strings longer than 255 bytes cannot be represented (the
    /// batch decoder already caps them at [`crate::MAX_STR_LEN`]) and panic.
    pub fn signing_bytes(&self, domain: &Domain<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            ATTESTATION_TAG_V1.len()
                + 7
                + domain.chain_id.len()
                + domain.contract.len()
                + self.provider.len()
                + self.consumer.len()
                + self.resource_id.len()
                + self.unit.len()
                + self.price_ref.len()
                + 8 * 5
                + 16
                + PUBKEY_LEN,
        );
        out.extend_from_slice(ATTESTATION_TAG_V1);
        crate::put_str(&mut out, domain.chain_id);
        crate::put_str(&mut out, domain.contract);
        crate::put_str(&mut out, self.provider);
        crate::put_str(&mut out, self.consumer);
        crate::put_str(&mut out, self.resource_id);
        crate::put_str(&mut out, self.unit);
        crate::put_str(&mut out, self.price_ref);
        out.extend_from_slice(&self.quantity.to_be_bytes());
        out.extend_from_slice(&self.max_unit_price.to_be_bytes());
        out.extend_from_slice(&self.period_start.to_be_bytes());
        out.extend_from_slice(&self.period_end.to_be_bytes());
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out.extend_from_slice(&self.signed_at.to_be_bytes());
        out.extend_from_slice(self.signer);
        out
    }

    pub fn to_owned(&self) -> Attestation {
        Attestation {
            provider: self.provider.to_owned(),
            consumer: self.consumer.to_owned(),
            resource_id: self.resource_id.to_owned(),
            quantity: self.quantity,
            unit: self.unit.to_owned(),
            price_ref: self.price_ref.to_owned(),
            max_unit_price: self.max_unit_price,
            period_start: self.period_start,
            period_end: self.period_end,
            nonce: self.nonce,
            signed_at: self.signed_at,
            signer: *self.signer,
            signature: *self.signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Attestation {
        Attestation {
            provider: "p".into(),
            consumer: "c".into(),
            resource_id: "r".into(),
            quantity: 1,
            unit: "u".into(),
            price_ref: "k".into(),
            max_unit_price: 2,
            period_start: 3,
            period_end: 4,
            nonce: 5,
            signed_at: 6,
            signer: [9; 32],
            signature: [0; 64],
        }
    }

    #[test]
    fn validate_applies_the_wire_string_rule() {
        assert!(sample().validate().is_ok());
        let mut a = sample();
        a.resource_id = "x".repeat(crate::MAX_STR_LEN + 1);
        assert!(matches!(
            a.validate(),
            Err(crate::EncodeError::BadString(_))
        ));
        a.resource_id = String::new();
        assert!(matches!(
            a.validate(),
            Err(crate::EncodeError::BadString(_))
        ));
        a.resource_id = "x".repeat(crate::MAX_STR_LEN);
        assert!(a.validate().is_ok());
    }

    #[test]
    #[should_panic(expected = "validate first")]
    fn an_unrepresentable_string_is_refused_not_wrapped() {
        let mut a = sample();
        a.unit = "u".repeat(256);
        let _ = a.signing_bytes(&Domain {
            chain_id: "c",
            contract: "k",
        });
    }

    #[test]
    fn signing_bytes_layout_is_fixed() {
        let d = Domain {
            chain_id: "z",
            contract: "k",
        };
        let b = sample().signing_bytes(&d);
        // tag + 7 one-char strings (2 bytes each) + 5 u64 + 1 u128 + key
        assert_eq!(b.len(), 21 + 7 * 2 + 40 + 16 + 32);
        assert!(b.starts_with(ATTESTATION_TAG_V1));
        assert_eq!(&b[21..23], &[1, b'z']);
        assert_eq!(&b[b.len() - 32..], &[9; 32]);
    }

    #[test]
    fn domain_separates() {
        let a = sample();
        let x = a.signing_bytes(&Domain {
            chain_id: "z1",
            contract: "k",
        });
        let y = a.signing_bytes(&Domain {
            chain_id: "z2",
            contract: "k",
        });
        let z = a.signing_bytes(&Domain {
            chain_id: "z1",
            contract: "k2",
        });
        assert_ne!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn signature_is_not_signed() {
        let mut a = sample();
        let d = Domain {
            chain_id: "z",
            contract: "k",
        };
        let before = a.signing_bytes(&d);
        a.signature = [7; 64];
        assert_eq!(before, a.signing_bytes(&d));
    }
}
