//! Signed resource mutations: how an owner creates, updates and deletes its resources at its
//! partners.
//!
//! Wire form: CBOR `{ body: bytes, signature: bytes }` where `body` is the CBOR encoding of
//! [`Mutation`] and the owner's Ed25519 signature covers [`TAG`] followed by exactly those
//! bytes (verify over the received bytes, never a re-encoding). The owner is a `did:key`, so
//! the signature is checked against the owner DID itself: only the owner can mutate its
//! resources. Every mutation carries a version, strictly increasing per resource, so a
//! receiver applies each at most once and in order ([`super::catalogue`]).
//!
//! Decoding is bounded: at most [`MAX_MUTATION_BYTES`] are looked at, and a body that does
//! not decode, names another resource than it carries, or fails the resource bounds is
//! refused with a typed [`DecodeError`].

use serde::{Deserialize, Serialize};

use super::did::Did;
use super::ids::{ResourceId, ResourceRef};
use super::resource::{Invalid, Resource, Visibility};
use crate::keys::NodeIdentity;
use crate::time::Timestamp;

/// Domain tag under every mutation signature.
pub const TAG: &[u8] = b"garden/resource-mutation/v1";
/// Largest encoded mutation (a 16 KiB payload plus the common fields and the envelope).
pub const MAX_MUTATION_BYTES: usize = 24 * 1024;

/// What a mutation does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A new resource (its first version).
    Create(Resource),
    /// A new content for a resource the receiver knows.
    Update(Resource),
    /// The end of a resource: terminal, it can never come back.
    Delete,
}

impl Op {
    pub fn resource(&self) -> Option<&Resource> {
        match self {
            Op::Create(r) | Op::Update(r) => Some(r),
            Op::Delete => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::Create(_) => "create",
            Op::Update(_) => "update",
            Op::Delete => "delete",
        }
    }
}

/// The signed content of a mutation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutation {
    pub owner: Did,
    pub id: ResourceId,
    /// Strictly increasing per (owner, id).
    pub version: u64,
    pub issued_at_ms: u64,
    pub op: Op,
}

/// Why bytes are not a well-formed mutation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("mutation of {0} bytes exceeds the {MAX_MUTATION_BYTES}-byte limit")]
    Oversized(usize),
    #[error("malformed mutation: {0}")]
    Malformed(String),
    #[error("a signature of {0} bytes (Ed25519 signatures have 64)")]
    SignatureLength(usize),
    #[error("the mutation of {body} carries resource {carried}")]
    Mismatch { body: String, carried: String },
    #[error("invalid resource: {0}")]
    Invalid(#[from] Invalid),
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

/// A decoded mutation with the exact bytes its signature covers. The signature is *not*
/// checked by decoding; [`SignedMutation::verify`] checks it (the catalogue always does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedMutation {
    mutation: Mutation,
    body: Vec<u8>,
    signature: [u8; 64],
}

fn signing_bytes(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(TAG.len() + body.len());
    m.extend_from_slice(TAG);
    m.extend_from_slice(body);
    m
}

fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising plain structs into a Vec cannot fail.
    cbor4ii::serde::to_vec(Vec::new(), v).unwrap_or_default()
}

impl Mutation {
    /// (owner, id).
    pub fn reference(&self) -> ResourceRef {
        ResourceRef {
            owner: self.owner.clone(),
            id: self.id.clone(),
        }
    }

    pub fn issued_at(&self) -> Timestamp {
        Timestamp::from_millis(self.issued_at_ms)
    }

    /// The carried resource belongs to (owner, id) and passes its bounds.
    pub fn check(&self) -> Result<(), DecodeError> {
        if let Some(r) = self.op.resource() {
            if r.owner != self.owner || r.id != self.id {
                return Err(DecodeError::Mismatch {
                    body: format!("{}/{}", self.owner, self.id),
                    carried: format!("{}/{}", r.owner, r.id),
                });
            }
            r.validate()?;
        }
        Ok(())
    }

    /// Signs with `identity`. Whether `identity` is the owner is not checked here: a mutation
    /// signed by anyone else never verifies.
    pub fn sign(&self, identity: &NodeIdentity) -> SignedMutation {
        let body = cbor(self);
        let sig = identity.sign(&signing_bytes(&body));
        let mut signature = [0u8; 64];
        if sig.len() == 64 {
            signature.copy_from_slice(&sig);
        }
        SignedMutation {
            mutation: self.clone(),
            body,
            signature,
        }
    }
}

/// The signature is not the owner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the mutation is not signed by the resource owner")]
pub struct BadSignature;

impl SignedMutation {
    pub fn mutation(&self) -> &Mutation {
        &self.mutation
    }

    /// The exact body bytes the signature covers (two mutations with equal bodies are the
    /// same mutation).
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Whether the owner DID's key signed exactly these body bytes.
    pub fn verify(&self) -> Result<(), BadSignature> {
        if self
            .mutation
            .owner
            .verifies(&signing_bytes(&self.body), &self.signature)
        {
            Ok(())
        } else {
            Err(BadSignature)
        }
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        cbor(&Envelope {
            body: self.body.clone(),
            signature: self.signature.to_vec(),
        })
    }

    /// Parses wire bytes (bounded; signature not checked, see [`SignedMutation::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<SignedMutation, DecodeError> {
        if bytes.len() > MAX_MUTATION_BYTES {
            return Err(DecodeError::Oversized(bytes.len()));
        }
        let env: Envelope =
            cbor4ii::serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let signature: [u8; 64] = env
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| DecodeError::SignatureLength(env.signature.len()))?;
        let mutation: Mutation = cbor4ii::serde::from_slice(&env.body)
            .map_err(|e| DecodeError::Malformed(e.to_string()))?;
        mutation.check()?;
        Ok(SignedMutation {
            mutation,
            body: env.body,
            signature,
        })
    }

    /// Tests build forgeries with it: these body bytes under another signature.
    #[cfg(test)]
    pub(crate) fn with_signature(&self, signature: [u8; 64]) -> SignedMutation {
        SignedMutation {
            signature,
            ..self.clone()
        }
    }
}

/// Who a mutation of `resource` concerns: its partners list, or, for a consortium-wide
/// resource, the owner's partners (`partners`). Never everyone by default (unlike Go, which
/// sent every resource to every partner and master), never the owner itself, no duplicates.
///
/// For a delete, pass the last version the catalogue holds. An update that narrows the
/// visibility is sent to the new audience only; the partners dropped keep the old version
/// until they receive a delete (the caller decides whether to send one).
pub fn to_partners(resource: &Resource, partners: &[Did]) -> Vec<Did> {
    let audience = match &resource.visibility {
        Visibility::Partners(list) => list.as_slice(),
        Visibility::Consortium => partners,
    };
    let mut out: Vec<Did> = audience
        .iter()
        .filter(|d| **d != resource.owner)
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::resource::tests::sample;

    fn create(id: &NodeIdentity, rid: &str, version: u64) -> Mutation {
        let owner = Did::of(id);
        Mutation {
            owner: owner.clone(),
            id: ResourceId::parse(rid).unwrap(),
            version,
            issued_at_ms: 1_000,
            op: Op::Create(sample(&owner, rid)),
        }
    }

    #[test]
    fn a_signed_mutation_round_trips_and_verifies() {
        let id = NodeIdentity::generate();
        let m = create(&id, "gpu", 1).sign(&id);
        eprintln!("sample create mutation: {} bytes", m.encode().len());
        let back = SignedMutation::decode(&m.encode()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.verify(), Ok(()));
        // Large prices survive the encoding.
        let mut big = create(&id, "gpu", 2);
        if let Op::Create(r) = &mut big.op {
            r.price_per_unit = u128::MAX;
        }
        let back = SignedMutation::decode(&big.sign(&id).encode()).unwrap();
        assert_eq!(back.mutation(), &big);
        let mut small = create(&id, "gpu", 3);
        if let Op::Create(r) = &mut small.op {
            r.price_per_unit = 0;
        }
        let back = SignedMutation::decode(&small.sign(&id).encode()).unwrap();
        assert_eq!(back.mutation(), &small);
    }

    #[test]
    fn a_mutation_signed_by_another_key_than_the_owner_does_not_verify() {
        let (owner, thief) = (NodeIdentity::generate(), NodeIdentity::generate());
        let forged = create(&owner, "gpu", 1).sign(&thief);
        let back = SignedMutation::decode(&forged.encode()).unwrap();
        assert_eq!(back.verify(), Err(BadSignature));
        // A valid signature moved onto other body bytes does not verify either.
        let good = create(&owner, "gpu", 1).sign(&owner);
        let other = create(&owner, "gpu", 2).sign(&owner);
        assert_eq!(
            other.with_signature(good.signature).verify(),
            Err(BadSignature)
        );
        // Nor a signature without the domain tag.
        let untagged: [u8; 64] = owner.sign(&good.body).try_into().unwrap();
        assert_eq!(good.with_signature(untagged).verify(), Err(BadSignature));
    }

    #[test]
    fn oversized_truncated_and_garbage_encodings_are_refused() {
        let id = NodeIdentity::generate();
        let mut m = create(&id, "gpu", 1);
        if let Op::Create(r) = &mut m.op {
            r.payload = vec![7; crate::resources::resource::MAX_PAYLOAD + 1];
        }
        // An oversized payload inside the byte bound is refused by the resource bounds...
        let bytes = m.sign(&id).encode();
        assert!(bytes.len() <= MAX_MUTATION_BYTES);
        assert!(matches!(
            SignedMutation::decode(&bytes),
            Err(DecodeError::Invalid(Invalid::TooLong {
                field: "payload",
                ..
            }))
        ));
        // ... and one beyond it before anything is decoded.
        assert_eq!(
            SignedMutation::decode(&vec![0u8; MAX_MUTATION_BYTES + 1]),
            Err(DecodeError::Oversized(MAX_MUTATION_BYTES + 1))
        );
        let good = create(&id, "gpu", 1).sign(&id).encode();
        for cut in [0, 1, good.len() / 2, good.len() - 1] {
            assert!(matches!(
                SignedMutation::decode(&good[..cut]),
                Err(DecodeError::Malformed(_))
            ));
        }
        assert!(matches!(
            SignedMutation::decode(b"\xff\x00garbage"),
            Err(DecodeError::Malformed(_))
        ));
        // A well-formed envelope around a garbage body, or with a short signature.
        let env = cbor(&Envelope {
            body: b"nonsense".to_vec(),
            signature: vec![0; 64],
        });
        assert!(matches!(
            SignedMutation::decode(&env),
            Err(DecodeError::Malformed(_))
        ));
        let env = cbor(&Envelope {
            body: create(&id, "gpu", 1).sign(&id).body,
            signature: vec![0; 10],
        });
        assert_eq!(
            SignedMutation::decode(&env),
            Err(DecodeError::SignatureLength(10))
        );
    }

    #[test]
    fn the_largest_valid_resource_fits_the_byte_bound() {
        use crate::resources::resource::*;
        let id = NodeIdentity::generate();
        let mut m = create(&id, &"r".repeat(64), u64::MAX);
        m.issued_at_ms = u64::MAX;
        if let Op::Create(r) = &mut m.op {
            r.name = "n".repeat(MAX_NAME_LEN);
            r.description = "d".repeat(MAX_DESCRIPTION_LEN);
            r.unit = "u".repeat(MAX_UNIT_LEN);
            r.capacity = u64::MAX;
            r.price_per_unit = u128::MAX;
            r.availability = (0..MAX_WINDOWS as u64)
                .map(|i| {
                    let t = |x| crate::time::Timestamp::from_millis(u64::MAX / 64 * i + x);
                    crate::resources::window::Window::new(t(0), t(1)).unwrap()
                })
                .collect();
            r.visibility = Visibility::Partners(
                (0..MAX_PARTNERS)
                    .map(|_| Did::of(&NodeIdentity::generate()))
                    .collect(),
            );
            r.payload = vec![0xff; MAX_PAYLOAD];
        }
        let bytes = m.sign(&id).encode();
        assert!(
            bytes.len() <= MAX_MUTATION_BYTES,
            "{} bytes > {MAX_MUTATION_BYTES}",
            bytes.len()
        );
        assert_eq!(SignedMutation::decode(&bytes).unwrap().mutation(), &m);
        eprintln!("largest valid mutation: {} bytes", bytes.len());
    }

    #[test]
    fn a_body_naming_another_resource_than_it_carries_is_refused() {
        let id = NodeIdentity::generate();
        let mut m = create(&id, "gpu", 1);
        m.id = ResourceId::parse("cpu").unwrap();
        assert!(matches!(
            SignedMutation::decode(&m.sign(&id).encode()),
            Err(DecodeError::Mismatch { .. })
        ));
        let mut m = create(&id, "gpu", 1);
        m.owner = Did::of(&NodeIdentity::generate());
        assert!(matches!(
            SignedMutation::decode(&m.sign(&id).encode()),
            Err(DecodeError::Mismatch { .. })
        ));
    }

    #[test]
    fn a_mutation_concerns_its_visibility_list_or_the_given_partners_only() {
        let id = NodeIdentity::generate();
        let owner = Did::of(&id);
        let (a, b, c) = (
            Did::of(&NodeIdentity::generate()),
            Did::of(&NodeIdentity::generate()),
            Did::of(&NodeIdentity::generate()),
        );
        let mut r = sample(&owner, "gpu");
        let mut all = vec![a.clone(), b.clone(), owner.clone(), a.clone()];
        let mut expect = vec![a.clone(), b.clone()];
        expect.sort();
        assert_eq!(to_partners(&r, &all), expect);
        assert!(to_partners(&r, &[]).is_empty(), "nobody by default");
        r.visibility = Visibility::Partners(vec![c.clone()]);
        all.push(c.clone());
        assert_eq!(to_partners(&r, &all), vec![c.clone()]);
        assert_eq!(to_partners(&r, &[]), vec![c]);
    }
}
