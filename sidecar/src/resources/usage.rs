//! What a booking consumed, signed by both parties, and the channel that hands confirmed
//! usage to the settlement module.
//!
//! 1. When a booking ends, the provider signs a [`UsageReport`] (units used, when) under
//!    [`REPORT_TAG`].
//! 2. The consumer checks it and, if it agrees, countersigns it into a [`ConfirmedUsage`]
//!    under [`CONFIRM_TAG`]; its signature also covers the provider's signature and the price
//!    owed, so neither party can change any figure afterwards.
//! 3. The data plane sends the confirmed usage through [`channel`] to the settlement module,
//!    which turns it into chain transactions with *its own* key. Nothing in `resources`
//!    holds or can reach a settlement key: the only key here is the node identity, and the
//!    channel carries data (the two signatures are evidence, not authority over funds).
//!
//! Signed bytes are a fixed-order concatenation of the fields (strings with a 4-byte length
//! prefix, integers big-endian), after the domain tag.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::did::Did;
use super::ids::{BookingId, ResourceRef};
use super::window::Window;
use crate::keys::NodeIdentity;

/// Domain tag of a provider's usage report signature.
pub const REPORT_TAG: &[u8] = b"garden/usage-report/v1";
/// Domain tag of a consumer's usage confirmation signature.
pub const CONFIRM_TAG: &[u8] = b"garden/usage-confirmation/v1";

/// Why a usage report or confirmation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("the usage report is not signed by the provider")]
    ProviderSignature,
    #[error("the usage confirmation is not signed by the consumer")]
    ConsumerSignature,
    #[error("the usage window does not end after it starts")]
    EmptyWindow,
    #[error("the price owed overflows")]
    Overflow,
    #[error("the confirmation does not match the report it confirms")]
    Mismatch,
}

/// The provider's account of a booking's consumption.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    pub booking: BookingId,
    pub resource: ResourceRef,
    pub provider: Did,
    pub units_used: u64,
    /// When consumption started and ended.
    pub window: Window,
    #[serde(with = "serde_bytes")]
    pub provider_sig: Vec<u8>,
}

struct Canon(Vec<u8>);

impl Canon {
    fn new(tag: &[u8]) -> Canon {
        Canon(tag.to_vec())
    }
    fn str(mut self, s: &str) -> Canon {
        self.0.extend_from_slice(&(s.len() as u32).to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn bytes(self, b: &[u8]) -> Canon {
        let mut c = self;
        c.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        c.0.extend_from_slice(b);
        c
    }
    fn u64(mut self, v: u64) -> Canon {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u128(mut self, v: u128) -> Canon {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn window(self, w: &Window) -> Canon {
        self.u64(w.start().as_millis()).u64(w.end().as_millis())
    }
}

fn report_bytes(
    booking: &BookingId,
    resource: &ResourceRef,
    provider: &Did,
    units: u64,
    w: &Window,
) -> Vec<u8> {
    Canon::new(REPORT_TAG)
        .str(booking.consumer.as_str())
        .u64(booking.nonce)
        .str(resource.owner.as_str())
        .str(resource.id.as_str())
        .str(provider.as_str())
        .u64(units)
        .window(w)
        .0
}

impl UsageReport {
    /// The provider (`identity`) reports `units_used` over `window`.
    pub fn sign(
        identity: &NodeIdentity,
        booking: BookingId,
        resource: ResourceRef,
        units_used: u64,
        window: Window,
    ) -> UsageReport {
        let provider = Did::of(identity);
        let provider_sig = identity.sign(&report_bytes(
            &booking, &resource, &provider, units_used, &window,
        ));
        UsageReport {
            booking,
            resource,
            provider,
            units_used,
            window,
            provider_sig,
        }
    }

    /// The provider's signature covers these figures, and the window is not empty.
    pub fn verify(&self) -> Result<(), UsageError> {
        if !self.window.is_valid() {
            return Err(UsageError::EmptyWindow);
        }
        let msg = report_bytes(
            &self.booking,
            &self.resource,
            &self.provider,
            self.units_used,
            &self.window,
        );
        if self.provider.verifies(&msg, &self.provider_sig) {
            Ok(())
        } else {
            Err(UsageError::ProviderSignature)
        }
    }
}

/// A usage report the consumer countersigned: what settlement pays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedUsage {
    pub booking: BookingId,
    pub resource: ResourceRef,
    pub provider: Did,
    pub consumer: Did,
    pub units: u64,
    /// Price owed for the booking, in micro-units: units × the agreed unit price.
    pub price: u128,
    pub window: Window,
    #[serde(with = "serde_bytes")]
    pub provider_sig: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub consumer_sig: Vec<u8>,
}

fn confirm_bytes(c: &ConfirmedUsage) -> Vec<u8> {
    Canon::new(CONFIRM_TAG)
        .str(c.booking.consumer.as_str())
        .u64(c.booking.nonce)
        .str(c.resource.owner.as_str())
        .str(c.resource.id.as_str())
        .str(c.provider.as_str())
        .str(c.consumer.as_str())
        .u64(c.units)
        .u128(c.price)
        .window(&c.window)
        .bytes(&c.provider_sig)
        .0
}

impl ConfirmedUsage {
    /// The consumer (`identity`) confirms `report` at the agreed `unit_price`. The report must
    /// verify; the consumer is the booking's consumer.
    pub fn confirm(
        identity: &NodeIdentity,
        report: &UsageReport,
        unit_price: u128,
    ) -> Result<ConfirmedUsage, UsageError> {
        report.verify()?;
        let price = unit_price
            .checked_mul(u128::from(report.units_used))
            .ok_or(UsageError::Overflow)?;
        let mut c = ConfirmedUsage {
            booking: report.booking.clone(),
            resource: report.resource.clone(),
            provider: report.provider.clone(),
            consumer: Did::of(identity),
            units: report.units_used,
            price,
            window: report.window,
            provider_sig: report.provider_sig.clone(),
            consumer_sig: Vec::new(),
        };
        c.consumer_sig = identity.sign(&confirm_bytes(&c));
        Ok(c)
    }

    /// The report this confirmation countersigns.
    pub fn report(&self) -> UsageReport {
        UsageReport {
            booking: self.booking.clone(),
            resource: self.resource.clone(),
            provider: self.provider.clone(),
            units_used: self.units,
            window: self.window,
            provider_sig: self.provider_sig.clone(),
        }
    }

    /// Both signatures hold, and the consumer is the one that made the booking.
    pub fn verify(&self) -> Result<(), UsageError> {
        self.report().verify()?;
        if self.consumer != self.booking.consumer {
            return Err(UsageError::Mismatch);
        }
        if self
            .consumer
            .verifies(&confirm_bytes(self), &self.consumer_sig)
        {
            Ok(())
        } else {
            Err(UsageError::ConsumerSignature)
        }
    }
}

/// Why confirmed usage could not be handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the confirmed usage does not verify: {0}")]
    Invalid(#[from] UsageError),
    #[error("the settlement module is gone")]
    Closed,
    #[error("the settlement module is not keeping up (channel full)")]
    Full,
}

/// The data plane's end of the usage channel. Only confirmed usage whose two signatures
/// verify goes through.
#[derive(Clone, Debug)]
pub struct UsageSender(mpsc::Sender<ConfirmedUsage>);

/// The settlement module's end of the usage channel.
#[derive(Debug)]
pub struct UsageReceiver(mpsc::Receiver<ConfirmedUsage>);

/// A bounded channel from the data plane to settlement (see the module docs).
pub fn channel(capacity: usize) -> (UsageSender, UsageReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (UsageSender(tx), UsageReceiver(rx))
}

impl UsageSender {
    /// Hands `usage` over, waiting for room.
    pub async fn send(&self, usage: ConfirmedUsage) -> Result<(), SendError> {
        usage.verify()?;
        self.0.send(usage).await.map_err(|_| SendError::Closed)
    }

    /// Hands `usage` over if there is room now.
    pub fn try_send(&self, usage: ConfirmedUsage) -> Result<(), SendError> {
        usage.verify()?;
        self.0.try_send(usage).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }
}

impl UsageReceiver {
    /// The next confirmed usage; `None` once every sender is dropped.
    pub async fn recv(&mut self) -> Option<ConfirmedUsage> {
        self.0.recv().await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resources::ids::ResourceId;
    use crate::time::Timestamp;

    pub(crate) fn w(a: u64, b: u64) -> Window {
        Window::new(Timestamp::from_millis(a), Timestamp::from_millis(b)).unwrap()
    }

    fn setup() -> (NodeIdentity, NodeIdentity, UsageReport) {
        let (provider, consumer) = (NodeIdentity::generate(), NodeIdentity::generate());
        let booking = BookingId {
            consumer: Did::of(&consumer),
            nonce: 7,
        };
        let resource = ResourceRef {
            owner: Did::of(&provider),
            id: ResourceId::parse("gpu").unwrap(),
        };
        let r = UsageReport::sign(&provider, booking, resource, 3, w(100, 200));
        (provider, consumer, r)
    }

    #[test]
    fn a_report_countersigned_by_the_consumer_verifies() {
        let (_, consumer, report) = setup();
        assert_eq!(report.verify(), Ok(()));
        let c = ConfirmedUsage::confirm(&consumer, &report, 1_000).unwrap();
        assert_eq!(c.price, 3_000);
        assert_eq!(c.verify(), Ok(()));
        assert_eq!(c.report(), report);
        // Round trip through CBOR keeps both signatures valid.
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &c).unwrap();
        let back: ConfirmedUsage = cbor4ii::serde::from_slice(&bytes).unwrap();
        assert_eq!(back.verify(), Ok(()));
    }

    #[test]
    fn any_changed_figure_or_foreign_signature_is_refused() {
        let (provider, consumer, report) = setup();
        let mut more = report.clone();
        more.units_used = 4;
        assert_eq!(more.verify(), Err(UsageError::ProviderSignature));
        // A report signed by someone else than the provider it names.
        let mut forged = UsageReport::sign(
            &consumer,
            report.booking.clone(),
            report.resource.clone(),
            3,
            report.window,
        );
        forged.provider = Did::of(&provider);
        assert_eq!(forged.verify(), Err(UsageError::ProviderSignature));
        assert_eq!(
            ConfirmedUsage::confirm(&consumer, &forged, 1).unwrap_err(),
            UsageError::ProviderSignature
        );
        let c = ConfirmedUsage::confirm(&consumer, &report, 1_000).unwrap();
        let mut cheaper = c.clone();
        cheaper.price = 1;
        assert_eq!(cheaper.verify(), Err(UsageError::ConsumerSignature));
        let mut longer = c.clone();
        longer.window = w(100, 300);
        assert_eq!(longer.verify(), Err(UsageError::ProviderSignature));
        // Confirmed by someone else than the booking's consumer.
        let stranger = ConfirmedUsage::confirm(&NodeIdentity::generate(), &report, 1_000).unwrap();
        assert_eq!(stranger.verify(), Err(UsageError::Mismatch));
        assert_eq!(
            ConfirmedUsage::confirm(&consumer, &report, u128::MAX).unwrap_err(),
            UsageError::Overflow
        );
        // The two tags keep a report signature from passing as a confirmation and back.
        let mut swapped = c.clone();
        swapped.consumer_sig = report.provider_sig.clone();
        assert_eq!(swapped.verify(), Err(UsageError::ConsumerSignature));
    }

    #[tokio::test]
    async fn the_channel_carries_only_verified_usage() {
        let (_, consumer, report) = setup();
        let (tx, mut rx) = channel(1);
        let c = ConfirmedUsage::confirm(&consumer, &report, 10).unwrap();
        let mut bad = c.clone();
        bad.units = 99;
        assert!(matches!(tx.send(bad).await, Err(SendError::Invalid(_))));
        tx.send(c.clone()).await.unwrap();
        assert_eq!(tx.try_send(c.clone()), Err(SendError::Full));
        assert_eq!(rx.recv().await, Some(c.clone()));
        drop(rx);
        assert_eq!(tx.try_send(c), Err(SendError::Closed));
    }
}
