//! Checks an L1 endorsement of an L2 member (signature with the chain's Ed25519, endorser
//! active and not suspended at L1, validity period within the governed maximum, scopes) and
//! turns it into the stored `Endorsement` (which remembers the signing key).

use cosmwasm_std::{Addr, Deps, Env};
use garden_wire::attestation::Domain;
use garden_wire::endorsement::{EndorsementBody, MAX_SCOPES};
use garden_wire::member::Endorsement;

use crate::state::{active_l1, CONFIG};
use crate::types::SignedEndorsement;
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
    if e.scopes.iter().any(|s| garden_wire::check_str(s).is_err()) {
        return Err(malformed("each scope is 1..=128 bytes"));
    }
    if e.valid_from >= e.valid_until {
        return Err(malformed("valid_from must be before valid_until"));
    }
    let max = CONFIG.load(deps.storage)?.params.max_endorsement_secs;
    let secs = e.valid_until - e.valid_from;
    if secs > max {
        return Err(ContractError::EndorsementTooLong { secs, max });
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
    let member = active_l1(deps.storage, &endorser, now).map_err(|err| match err {
        ContractError::NotL1Member { addr } => ContractError::EndorserNotL1 { addr },
        other => other,
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
        endorser_key: member.pubkey,
        scopes: e.scopes.clone(),
        valid_from: e.valid_from,
        valid_until: e.valid_until,
    })
}
