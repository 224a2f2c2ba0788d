//! What a peer can do wrong, named once for every plane.
//!
//! Decision modules classify their own errors ([`crate::discovery::record::Error::offence`],
//! [`crate::membership::heartbeat::Error::offence`]); the gater (`net::gater`) decides what an
//! offence costs. An honest peer that merely loses a race — a stale or expired record, a full
//! store, a name already held, a clock a little off — commits no offence.

/// A rate-limited action of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A heartbeat received (indexer side).
    Heartbeat,
    /// A record PUT received (DHT server side).
    Publish,
    /// A query served: a search, an indirect probe.
    Get,
    /// Any other request served: a witness question, a probe echo, a candidates request,
    /// search results pushed to us, Kademlia requests.
    Request,
}

/// Something only a faulty or hostile peer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offence {
    /// More [`Action`]s than its limit within the rate window.
    OverLimit(Action),
    /// Input that does not decode or breaks a size or field bound.
    Malformed,
    /// A bad signature, or a signed item that claims someone else's identity or key.
    Forged,
}
