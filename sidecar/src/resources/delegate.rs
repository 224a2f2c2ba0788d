//! A nano's word that a master answers for it, and the envelope its resources travel in.
//!
//! A nano is never a direct partner: its resources reach third parties through its master,
//! and third parties book them there. A third party must not take any peer's word that it is
//! a nano's master (a peer that relays someone's resources would then receive their bookings),
//! so the nano signs a [`Delegation`] — "`master` answers for me", under [`TAG`], with the
//! nano's identity key, checked against its DID like a mutation — and every resource mutation
//! of the nano travels with it in a [`Delegated`] envelope: nano → master, then forwarded
//! verbatim by the master to the resource's partners. A receiver checks that the statement is
//! the mutation owner's and names the peer that delivered the envelope (the master), and from
//! then on sends what concerns that owner's resources to the master.
//!
//! Both are CBOR, decoded from at most [`MAX_STATEMENT_BYTES`] and [`MAX_DELEGATED_BYTES`];
//! every DID is checked by its own deserialisation.

use serde::{Deserialize, Serialize};

use super::did::Did;
use super::mutation::{self, SignedMutation, MAX_MUTATION_BYTES};
use crate::keys::NodeIdentity;

/// Domain tag under every delegation signature.
pub const TAG: &[u8] = b"garden/delegation/v1";
/// Largest encoded statement (two 64-byte DIDs, a time and a signature fit in 300).
pub const MAX_STATEMENT_BYTES: usize = 1024;
/// Largest envelope: a statement and a mutation, with their CBOR framing.
pub const MAX_DELEGATED_BYTES: usize = MAX_MUTATION_BYTES + MAX_STATEMENT_BYTES + 64;

/// "`master` answers for `nano`", as the nano signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub nano: Did,
    pub master: Did,
    /// When the nano signed it (its clock): a later statement replaces an earlier one.
    pub issued_at_ms: u64,
}

/// Why bytes are not a usable statement or envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelegateError {
    #[error("{what} of {len} bytes (at most {max})")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("the delegation is not signed by the nano it names")]
    BadSignature,
    #[error("the delegation names {named} as the nano, but the resource is {owner}'s")]
    NotTheOwner { named: String, owner: String },
    #[error("the delegation names {named} as the master, but {sender} delivered it")]
    NotTheMaster { named: String, sender: String },
    #[error("the delegation names the same site as nano and master")]
    SelfDelegation,
    #[error("{0}")]
    Mutation(#[from] mutation::DecodeError),
}

#[derive(Serialize, Deserialize)]
struct Signed {
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising plain structs into a Vec cannot fail.
    cbor4ii::serde::to_vec(Vec::new(), v).unwrap_or_default()
}

fn signing_bytes(body: &[u8]) -> Vec<u8> {
    [TAG, body].concat()
}

/// A statement with the exact bytes its signature covers; [`SignedDelegation::decode`]
/// checks the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedDelegation {
    delegation: Delegation,
    wire: Vec<u8>,
}

impl Delegation {
    /// Signed by `identity`, which must be the nano's (anyone else's signature never
    /// verifies).
    pub fn sign(&self, identity: &NodeIdentity) -> SignedDelegation {
        let body = cbor(self);
        let signature = identity.sign(&signing_bytes(&body));
        SignedDelegation {
            delegation: self.clone(),
            wire: cbor(&Signed { body, signature }),
        }
    }
}

impl SignedDelegation {
    pub fn delegation(&self) -> &Delegation {
        &self.delegation
    }

    /// The wire bytes (forwarded verbatim).
    pub fn encode(&self) -> Vec<u8> {
        self.wire.clone()
    }

    /// Parses wire bytes, bounded, and checks the nano's signature.
    pub fn decode(bytes: &[u8]) -> Result<SignedDelegation, DelegateError> {
        if bytes.len() > MAX_STATEMENT_BYTES {
            return Err(DelegateError::TooLarge {
                what: "delegation",
                len: bytes.len(),
                max: MAX_STATEMENT_BYTES,
            });
        }
        let malformed =
            |e: cbor4ii::serde::DecodeError<std::convert::Infallible>| DelegateError::Malformed {
                what: "delegation",
                reason: e.to_string(),
            };
        let s: Signed = cbor4ii::serde::from_slice(bytes).map_err(malformed)?;
        let delegation: Delegation = cbor4ii::serde::from_slice(&s.body).map_err(malformed)?;
        if delegation.nano == delegation.master {
            return Err(DelegateError::SelfDelegation);
        }
        if !delegation
            .nano
            .verifies(&signing_bytes(&s.body), &s.signature)
        {
            return Err(DelegateError::BadSignature);
        }
        Ok(SignedDelegation {
            delegation,
            wire: bytes.to_vec(),
        })
    }
}

/// A nano's resource mutation with its delegation: what the nano sends its master and the
/// master forwards, byte for byte, to the resource's partners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegated {
    pub statement: SignedDelegation,
    pub mutation: SignedMutation,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    #[serde(with = "serde_bytes")]
    statement: Vec<u8>,
    #[serde(with = "serde_bytes")]
    mutation: Vec<u8>,
}

impl Delegated {
    pub fn encode(&self) -> Vec<u8> {
        cbor(&Envelope {
            statement: self.statement.encode(),
            mutation: self.mutation.encode(),
        })
    }

    /// Parses an envelope delivered by `sender` (bounded) and checks it: the statement is
    /// signed by the nano, the nano owns the mutated resource, and the master it names is
    /// `sender`. The mutation's own signature is the catalogue's to check.
    pub fn decode(bytes: &[u8], sender: &libp2p::PeerId) -> Result<Delegated, DelegateError> {
        if bytes.len() > MAX_DELEGATED_BYTES {
            return Err(DelegateError::TooLarge {
                what: "delegated mutation",
                len: bytes.len(),
                max: MAX_DELEGATED_BYTES,
            });
        }
        let env: Envelope =
            cbor4ii::serde::from_slice(bytes).map_err(|e| DelegateError::Malformed {
                what: "delegated mutation",
                reason: e.to_string(),
            })?;
        let statement = SignedDelegation::decode(&env.statement)?;
        let mutation = SignedMutation::decode(&env.mutation)?;
        let d = statement.delegation();
        let owner = &mutation.mutation().owner;
        if d.nano != *owner {
            return Err(DelegateError::NotTheOwner {
                named: d.nano.to_string(),
                owner: owner.to_string(),
            });
        }
        Delegated {
            statement,
            mutation,
        }
        .delivered_by(sender)
    }

    /// Checks that the statement names `sender` as the master: only the nano (to its master)
    /// or the master (to the partners) hands it on.
    fn delivered_by(self, sender: &libp2p::PeerId) -> Result<Delegated, DelegateError> {
        let d = self.statement.delegation();
        let from_master = d.master.peer_id().as_ref() == Some(sender);
        let from_nano = d.nano.peer_id().as_ref() == Some(sender);
        if from_master || from_nano {
            Ok(self)
        } else {
            Err(DelegateError::NotTheMaster {
                named: d.master.to_string(),
                sender: sender.to_string(),
            })
        }
    }

    /// Whether the nano itself delivered it (to its master), rather than the master.
    pub fn from_nano(&self, sender: &libp2p::PeerId) -> bool {
        self.statement.delegation().nano.peer_id().as_ref() == Some(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::mutation::{Mutation, Op};
    use crate::resources::resource::tests::sample;

    fn statement(nano: &NodeIdentity, master: &NodeIdentity) -> SignedDelegation {
        Delegation {
            nano: Did::of(nano),
            master: Did::of(master),
            issued_at_ms: 5,
        }
        .sign(nano)
    }

    fn mutation_of(owner: &NodeIdentity) -> SignedMutation {
        let me = Did::of(owner);
        let r = sample(&me, "pump");
        Mutation {
            owner: me,
            id: r.id.clone(),
            version: 1,
            issued_at_ms: 5,
            op: Op::Create(r),
        }
        .sign(owner)
    }

    #[test]
    fn a_statement_round_trips_and_only_its_nano_can_sign_it() {
        let (nano, master) = (NodeIdentity::generate(), NodeIdentity::generate());
        let s = statement(&nano, &master);
        let back = SignedDelegation::decode(&s.encode()).unwrap();
        assert_eq!(back.delegation(), s.delegation());
        // Signed by the master (or anyone) instead of the nano: refused.
        let forged = Delegation {
            nano: Did::of(&nano),
            master: Did::of(&master),
            issued_at_ms: 5,
        }
        .sign(&master);
        assert_eq!(
            SignedDelegation::decode(&forged.encode()),
            Err(DelegateError::BadSignature)
        );
        // A flipped byte, garbage, an oversized blob, a self-delegation.
        let mut bytes = s.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(SignedDelegation::decode(&bytes).is_err());
        assert!(matches!(
            SignedDelegation::decode(&[0xff; 12]),
            Err(DelegateError::Malformed { .. })
        ));
        assert!(matches!(
            SignedDelegation::decode(&vec![0; MAX_STATEMENT_BYTES + 1]),
            Err(DelegateError::TooLarge { .. })
        ));
        let own = statement(&nano, &nano);
        assert_eq!(
            SignedDelegation::decode(&own.encode()),
            Err(DelegateError::SelfDelegation)
        );
    }

    #[test]
    fn an_envelope_is_taken_from_the_nano_or_its_master_only() {
        let (nano, master, stranger) = (
            NodeIdentity::generate(),
            NodeIdentity::generate(),
            NodeIdentity::generate(),
        );
        let env = Delegated {
            statement: statement(&nano, &master),
            mutation: mutation_of(&nano),
        };
        let bytes = env.encode();
        let from_nano = Delegated::decode(&bytes, &nano.peer_id()).unwrap();
        assert!(from_nano.from_nano(&nano.peer_id()));
        let from_master = Delegated::decode(&bytes, &master.peer_id()).unwrap();
        assert!(!from_master.from_nano(&master.peer_id()));
        assert_eq!(from_master, env);
        // Relayed by anyone else: it could capture the nano's bookings.
        assert!(matches!(
            Delegated::decode(&bytes, &stranger.peer_id()),
            Err(DelegateError::NotTheMaster { .. })
        ));
        // A statement of another nano wrapped around this nano's resource.
        let other = Delegated {
            statement: statement(&stranger, &master),
            mutation: mutation_of(&nano),
        };
        assert!(matches!(
            Delegated::decode(&other.encode(), &master.peer_id()),
            Err(DelegateError::NotTheOwner { .. })
        ));
        assert!(matches!(
            Delegated::decode(&vec![0; MAX_DELEGATED_BYTES + 1], &master.peer_id()),
            Err(DelegateError::TooLarge { .. })
        ));
        assert!(Delegated::decode(b"\x80", &master.peer_id()).is_err());
    }
}
