//! Subject names of the bridge, all under one configurable prefix (docs/EVENTS.md).
//!
//! Inbound (request/reply): `<prefix>.resource.{create,update,delete,search}`,
//! `<prefix>.booking.{request,confirm,decline,start,complete,cancel,usage.confirm}`.
//! Outbound (events): `<prefix>.out.resource.{received,refused}`, `<prefix>.out.booking`,
//! `<prefix>.out.usage.confirmed`, `<prefix>.out.attestation.received`,
//! `<prefix>.out.delivery.{delivered,expired,dropped}`, kept
//! by the JetStream stream [`Subjects::stream`] when JetStream is on.

/// Longest prefix accepted.
pub const MAX_PREFIX_LEN: usize = 64;

/// What an inbound subject asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    Create,
    Update,
    Delete,
    Search,
    Book,
    /// The provider confirms a requested booking.
    Confirm,
    /// The provider declines a requested booking.
    Decline,
    /// The provider starts a confirmed booking.
    Start,
    /// The provider completes a running booking with its usage report.
    Complete,
    /// The consumer cancels its booking.
    Cancel,
    /// The consumer countersigns the provider's usage report.
    ConfirmUsage,
}

impl Inbound {
    pub const ALL: [Inbound; 11] = [
        Inbound::Create,
        Inbound::Update,
        Inbound::Delete,
        Inbound::Search,
        Inbound::Book,
        Inbound::Confirm,
        Inbound::Decline,
        Inbound::Start,
        Inbound::Complete,
        Inbound::Cancel,
        Inbound::ConfirmUsage,
    ];

    /// The subject's tail after the prefix.
    pub fn tail(self) -> &'static str {
        match self {
            Inbound::Create => "resource.create",
            Inbound::Update => "resource.update",
            Inbound::Delete => "resource.delete",
            Inbound::Search => "resource.search",
            Inbound::Book => "booking.request",
            Inbound::Confirm => "booking.confirm",
            Inbound::Decline => "booking.decline",
            Inbound::Start => "booking.start",
            Inbound::Complete => "booking.complete",
            Inbound::Cancel => "booking.cancel",
            Inbound::ConfirmUsage => "booking.usage.confirm",
        }
    }
}

/// An outbound event's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbound {
    /// A peer's resource mutation reached us (and what the catalogue made of it).
    ResourceReceived,
    /// A peer refused a resource mutation we sent it (a nano taking changes from its master
    /// only).
    ResourceRefused,
    /// A booking was requested or changed, here or by the other party.
    Booking,
    /// Usage this site confirmed as a consumer, handed to settlement.
    UsageConfirmed,
    /// A consumer's signed attestation for a booking we provided reached us.
    AttestationReceived,
    /// A partner acknowledged an entry of ours.
    Delivered,
    /// An entry of ours expired undelivered.
    Expired,
    /// A moderate entry of ours ran out of tries.
    Dropped,
}

impl Outbound {
    pub fn tail(self) -> &'static str {
        match self {
            Outbound::ResourceReceived => "out.resource.received",
            Outbound::ResourceRefused => "out.resource.refused",
            Outbound::Booking => "out.booking",
            Outbound::UsageConfirmed => "out.usage.confirmed",
            Outbound::AttestationReceived => "out.attestation.received",
            Outbound::Delivered => "out.delivery.delivered",
            Outbound::Expired => "out.delivery.expired",
            Outbound::Dropped => "out.delivery.dropped",
        }
    }
}

/// Whether `p` is a usable prefix: 1–64 bytes of dot-separated, non-empty tokens of
/// `[A-Za-z0-9_-]` (no wildcards, no spaces).
pub fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= MAX_PREFIX_LEN
        && p.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// The subjects of one site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// `None` when the prefix is not [`valid_prefix`].
    pub fn new(prefix: &str) -> Option<Subjects> {
        valid_prefix(prefix).then(|| Subjects {
            prefix: prefix.to_string(),
        })
    }

    pub fn inbound(&self, i: Inbound) -> String {
        format!("{}.{}", self.prefix, i.tail())
    }

    pub fn outbound(&self, o: Outbound) -> String {
        format!("{}.{}", self.prefix, o.tail())
    }

    /// Which inbound subject `subject` is, if any.
    pub fn classify(&self, subject: &str) -> Option<Inbound> {
        let tail = subject.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        Inbound::ALL.into_iter().find(|i| i.tail() == tail)
    }

    /// The resource request subjects (one subscription).
    pub fn resource_requests(&self) -> String {
        format!("{}.resource.*", self.prefix)
    }

    /// The booking request subjects (one subscription; `usage.confirm` has two tokens).
    pub fn booking_requests(&self) -> String {
        format!("{}.booking.>", self.prefix)
    }

    /// Every outbound subject (what the JetStream stream captures).
    pub fn all_outbound(&self) -> String {
        format!("{}.out.>", self.prefix)
    }

    /// The JetStream stream: the prefix upper-cased, dots and dashes as `_`, then `_EVENTS`.
    pub fn stream(&self) -> String {
        let p: String = self
            .prefix
            .chars()
            .map(|c| match c {
                '.' | '-' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        format!("{p}_EVENTS")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_plain_tokens() {
        for ok in ["garden", "garden.site-a", "g_1.b"] {
            assert!(valid_prefix(ok), "{ok}");
        }
        for bad in ["", "a..b", "a.*", "a.>", "a b", ".a", "a.", &"x".repeat(65)] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }

    #[test]
    fn subjects_round_trip_and_name_the_stream() {
        let s = Subjects::new("garden.site-a").unwrap();
        for i in Inbound::ALL {
            assert_eq!(s.classify(&s.inbound(i)), Some(i));
        }
        assert_eq!(s.classify("garden.site-a.out.booking"), None);
        assert_eq!(s.classify("garden.site-a.booking.usage"), None);
        assert_eq!(
            s.classify("garden.site-a.booking.usage.confirm"),
            Some(Inbound::ConfirmUsage)
        );
        assert_eq!(s.booking_requests(), "garden.site-a.booking.>");
        assert_eq!(s.classify("garden.site-ab.resource.create"), None);
        assert_eq!(
            s.outbound(Outbound::Delivered),
            "garden.site-a.out.delivery.delivered"
        );
        assert_eq!(s.all_outbound(), "garden.site-a.out.>");
        assert_eq!(s.stream(), "GARDEN_SITE_A_EVENTS");
    }
}
