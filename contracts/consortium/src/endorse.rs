//! Checks an L1 endorsement of an L2 member (signature with the chain's Ed25519, endorser
//! active at L1, validity period, scopes) and turns it into the stored `Endorsement`.

use cosmwasm_std::{Addr, Deps, Env};
use garden_wire::attestation::Domain;
use garden_wire::endorsement::{EndorsementBody, MAX_SCOPES};
use garden_wire::membership::Endorsement;
use garden_wire::{TrustLevel, MAX_STR_LEN};

use crate::msg::SignedEndorsement;
use crate::state::MEMBERS;
use crate::ContractError;

pub fn verify_endorsement(
    deps: Deps,
    env: &Env,
    subject: &Addr,
    subject_pubkey: &[u8; 32],
    e: &SignedEndorsement,
) -> Result<Endorsement, ContractError> {
    let malformed = |reason: &str| ContractError::EndorsementMalformed {
        reason: reason.into(),
    };
    if e.scopes.is_empty() || e.scopes.len() > MAX_SCOPES {
        return Err(malformed("1..=16 scopes"));
    }
    if e.scopes
        .iter()
        .any(|s| s.is_empty() || s.len() > MAX_STR_LEN)
    {
        return Err(malformed("each scope is 1..=128 bytes"));
    }
    if e.valid_from >= e.valid_until {
        return Err(malformed("valid_from must be before valid_until"));
    }
    let now = env.block.time.seconds();
    if now < e.valid_from || now >= e.valid_until {
        return Err(ContractError::EndorsementNotCurrent {
            valid_from: e.valid_from,
            valid_until: e.valid_until,
            now,
        });
    }
    let endorser = deps.api.addr_validate(&e.endorser)?;
    let member = MEMBERS
        .may_load(deps.storage, &endorser)?
        .filter(|m| m.is_active() && m.level == TrustLevel::L1)
        .ok_or_else(|| ContractError::EndorserNotL1 {
            addr: endorser.to_string(),
        })?;
    let msg = EndorsementBody {
        subject: subject.as_str(),
        subject_pubkey,
        scopes: &e.scopes,
        valid_from: e.valid_from,
        valid_until: e.valid_until,
    }
    .signing_bytes(&Domain {
        chain_id: &env.block.chain_id,
        contract: env.contract.address.as_str(),
    });
    // A malformed signature (wrong length) is reported like a wrong one: it does not verify.
    let ok = deps
        .api
        .ed25519_verify(&msg, e.signature.as_slice(), member.pubkey.as_slice())
        .unwrap_or(false);
    if !ok {
        return Err(ContractError::EndorsementBadSignature);
    }
    Ok(Endorsement {
        endorser,
        scopes: e.scopes.clone(),
        valid_from: e.valid_from,
        valid_until: e.valid_until,
    })
}
