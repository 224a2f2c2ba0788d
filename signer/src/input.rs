//! What a usage report hands to the signer: plain data, no key, no signature.

/// One consumption to attest. Mirrors [`garden_wire::Attestation`] minus what the signer
/// fills in itself (`nonce`, `signed_at`, `signer`, `signature`). The sidecar (data plane)
/// will send these to the signer through a typed channel; the signer side owns the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageInput {
    /// Provider's chain address (receives the payment).
    pub provider: String,
    /// Consumer's chain address (its escrow pays; the signer's member address).
    pub consumer: String,
    /// The resource consumed (catalogue id).
    pub resource_id: String,
    /// Amount consumed, in `unit`s.
    pub quantity: u64,
    /// Unit of `quantity`; must match the offer's unit.
    pub unit: String,
    /// The resource kind of the provider's offer that prices this.
    pub price_ref: String,
    /// Highest unit price (native denom base units) the consumer accepts.
    pub max_unit_price: u128,
    /// Consumption period, unix seconds: `period_start <= period_end <= signed_at`.
    pub period_start: u64,
    pub period_end: u64,
}
