//! Identifiers of the data plane: a resource id, a resource reference (owner, id) and a
//! booking id (consumer, nonce).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::did::Did;

/// Longest resource id.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a resource id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an empty id")]
    Empty,
    #[error("an id of {0} bytes (at most {MAX_ID_LEN})")]
    TooLong(usize),
    #[error("an id may only hold a-z, 0-9, '-', '_' and '.'")]
    Charset,
}

/// A resource id, unique per owner: 1 to 64 bytes of `[a-z0-9-_.]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceId(String);

impl ResourceId {
    pub fn parse(s: &str) -> Result<ResourceId, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() > MAX_ID_LEN {
            return Err(IdError::TooLong(s.len()));
        }
        let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(&c);
        if !s.bytes().all(ok) {
            return Err(IdError::Charset);
        }
        Ok(ResourceId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ResourceId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ResourceId::parse(&s)
    }
}

impl From<ResourceId> for String {
    fn from(r: ResourceId) -> String {
        r.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resource of the whole consortium: its owner and its id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceRef {
    pub owner: Did,
    pub id: ResourceId,
}

/// A booking: the consumer that requested it and a nonce the consumer chose (unique among
/// its bookings), so two consumers never collide and no coordination is needed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BookingId {
    pub consumer: Did,
    pub nonce: u64,
}

/// Why a string is not a booking id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingIdError {
    #[error("a booking id is <consumer did>#<nonce>")]
    Shape,
    #[error("the consumer: {0}")]
    Consumer(#[from] super::did::DidError),
    #[error("the nonce must be a non-negative integer below 2^64")]
    Nonce,
}

impl BookingId {
    /// Parses the [`fmt::Display`] form `did:key:z…#<nonce>`.
    pub fn parse(s: &str) -> Result<BookingId, BookingIdError> {
        let (did, nonce) = s.rsplit_once('#').ok_or(BookingIdError::Shape)?;
        if nonce.is_empty() || nonce.len() > 20 || !nonce.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BookingIdError::Nonce);
        }
        Ok(BookingId {
            consumer: Did::parse(did)?,
            nonce: nonce.parse().map_err(|_| BookingIdError::Nonce)?,
        })
    }
}

impl fmt::Display for BookingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.consumer, self.nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booking_ids_round_trip_through_their_text() {
        let consumer = Did::of(&crate::keys::NodeIdentity::generate());
        let id = BookingId {
            consumer: consumer.clone(),
            nonce: u64::MAX,
        };
        assert_eq!(BookingId::parse(&id.to_string()), Ok(id));
        assert_eq!(BookingId::parse("x"), Err(BookingIdError::Shape));
        for bad in ["#1", "did:key:z#1"] {
            assert!(matches!(
                BookingId::parse(bad),
                Err(BookingIdError::Consumer(_))
            ));
        }
        for bad in ["", "-1", "1.5", "18446744073709551616", "+1"] {
            assert_eq!(
                BookingId::parse(&format!("{consumer}#{bad}")),
                Err(BookingIdError::Nonce),
                "{bad}"
            );
        }
    }

    #[test]
    fn resource_ids_are_short_and_plain() {
        assert!(ResourceId::parse("gpu-01.a_b").is_ok());
        assert_eq!(ResourceId::parse(""), Err(IdError::Empty));
        assert_eq!(ResourceId::parse("GPU"), Err(IdError::Charset));
        assert_eq!(ResourceId::parse("a b"), Err(IdError::Charset));
        assert_eq!(ResourceId::parse("é"), Err(IdError::Charset));
        assert!(ResourceId::parse(&"a".repeat(64)).is_ok());
        assert_eq!(
            ResourceId::parse(&"a".repeat(65)),
            Err(IdError::TooLong(65))
        );
    }
}
