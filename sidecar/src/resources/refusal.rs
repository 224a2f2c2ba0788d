//! Why a site did not take a resource mutation a peer delivered, told back to that peer: a
//! nano takes resource changes only from its master, and anyone else who sends it one hears
//! why (not only the nano's own log).
//!
//! CBOR, decoded only from at most [`MAX_REFUSAL_BYTES`]; an over-long reason is cut (it is
//! information), anything else malformed refused. A refusal is never answered.

use serde::{Deserialize, Serialize};

use super::ids::ResourceRef;
use super::step::{cut, DecodeError, MAX_REASON_LEN};

/// Largest encoded refusal.
pub const MAX_REFUSAL_BYTES: usize = 2 * 1024;
/// Longest operation name (`create`, `update`, `delete`, or `?` when undecodable).
const MAX_OP_LEN: usize = 16;

/// See the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationRefusal {
    /// The mutated resource, when the refused bytes decoded far enough to name it.
    pub resource: Option<ResourceRef>,
    pub version: Option<u64>,
    pub op: String,
    pub reason: String,
}

impl MutationRefusal {
    /// A refusal with its reason cut to [`MAX_REASON_LEN`] bytes.
    pub fn new(
        resource: Option<ResourceRef>,
        version: Option<u64>,
        op: &str,
        reason: &str,
    ) -> MutationRefusal {
        MutationRefusal {
            resource,
            version,
            op: cut(op, MAX_OP_LEN).to_string(),
            reason: cut(reason, MAX_REASON_LEN).to_string(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain structs into a Vec cannot fail.
        cbor4ii::serde::to_vec(Vec::new(), self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<MutationRefusal, DecodeError> {
        if bytes.len() > MAX_REFUSAL_BYTES {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        let r: MutationRefusal =
            cbor4ii::serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if r.op.len() > MAX_OP_LEN {
            return Err(DecodeError::ActionName(r.op.len()));
        }
        Ok(MutationRefusal::new(
            r.resource, r.version, &r.op, &r.reason,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeIdentity;
    use crate::resources::{Did, ResourceId};

    #[test]
    fn refusals_round_trip_bounded() {
        let r = MutationRefusal::new(
            Some(ResourceRef {
                owner: Did::of(&NodeIdentity::generate()),
                id: ResourceId::parse("gpu").unwrap(),
            }),
            Some(3),
            "create",
            &"é".repeat(MAX_REASON_LEN),
        );
        assert!(r.reason.len() <= MAX_REASON_LEN);
        assert_eq!(MutationRefusal::decode(&r.encode()), Ok(r.clone()));
        let mut long = r.clone();
        long.op = "x".repeat(MAX_OP_LEN + 1);
        assert!(MutationRefusal::decode(&long.encode()).is_err());
        assert!(MutationRefusal::decode(&[0xff; 8]).is_err());
        assert!(MutationRefusal::decode(&vec![0; MAX_REFUSAL_BYTES + 1]).is_err());
    }
}
