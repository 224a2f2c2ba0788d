//! Member lifecycle: admission, level and weight changes, suspension, revocation and key
//! retirement. Every write goes through [`save_member`], which keeps the key index, the
//! voting-weight snapshot and the total weight in step.

use cosmwasm_std::{Addr, Deps, DepsMut, Env, Response, StdResult, Storage};
use garden_wire::member::{Revocation, Suspension, MAX_ENDORSEMENTS};
use garden_wire::{Member, Moment, RevocationKind, TrustLevel};

use crate::endorse::verify_endorsement;
use crate::state::{
    load_member, load_unrevoked, moment, valid_pubkey, RevocationRecord, CONFIG, EMERGENCY,
    MEMBERS, PUBKEYS, RETIRED_KEYS, REVOCATIONS, TOTAL_WEIGHT, VOTING_WEIGHTS,
};
use crate::types::{Action, Params, SignedEndorsement};
use crate::ContractError;

/// Writes a member and keeps the derived indexes in step: the key index (keys are never
/// reused: a key another address registered, or one this address gave up, is refused), the
/// retired-key snapshot when the key changes, the voting weight snapshot and the total.
pub fn save_member(
    storage: &mut dyn Storage,
    at: Moment,
    addr: &Addr,
    new: &Member,
    old: Option<&Member>,
) -> Result<(), ContractError> {
    let key_changed = old.is_none_or(|o| o.pubkey != new.pubkey);
    if key_changed {
        match PUBKEYS.may_load(storage, new.pubkey.as_slice())? {
            Some(owner) if owner != *addr => {
                return Err(ContractError::DuplicatePubkey {
                    owner: owner.to_string(),
                })
            }
            Some(_) => return Err(ContractError::KeyRevoked),
            None => {}
        }
        PUBKEYS.save(storage, new.pubkey.as_slice(), addr)?;
        if let Some(old) = old {
            // The old key stays judgeable: what it signed before now settles as after a
            // departure (unless it was already revoked, which then stands).
            let mut retired = old.clone();
            retired.revocation.get_or_insert(Revocation {
                kind: RevocationKind::Departure,
                at,
                reason: "key replaced".into(),
            });
            RETIRED_KEYS.save(storage, old.pubkey.as_slice(), &retired)?;
        }
    }
    let (old_w, new_w) = (
        old.map(Member::voting_weight).unwrap_or(0),
        new.voting_weight(),
    );
    if old_w != new_w {
        let total = TOTAL_WEIGHT
            .load(storage)?
            .checked_sub(old_w)
            .and_then(|t| t.checked_add(new_w))
            .ok_or(ContractError::WeightOverflow)?;
        if total == 0 && old_w > 0 {
            return Err(ContractError::LastL1Member);
        }
        TOTAL_WEIGHT.save(storage, &total)?;
        VOTING_WEIGHTS.save(storage, addr, &new_w, at.height)?;
    }
    MEMBERS.save(storage, addr, new)?;
    Ok(())
}

/// Revokes `addr`. On a member suspended now the revocation ratifies the suspension and takes
/// effect from its start.
pub fn revoke(
    storage: &mut dyn Storage,
    at: Moment,
    addr: &Addr,
    kind: RevocationKind,
    reason: String,
    emergency: bool,
) -> Result<(), ContractError> {
    let old = load_member(storage, addr)?;
    if old.is_revoked() {
        return Err(ContractError::AlreadyRevoked {
            addr: addr.to_string(),
        });
    }
    let effective = match &old.suspension {
        Some(s) if old.is_suspended(at.time) => s.at,
        _ => at,
    };
    let new = Member {
        revocation: Some(Revocation {
            kind,
            at: effective,
            reason: reason.clone(),
        }),
        ..old.clone()
    };
    save_member(storage, at, addr, &new, Some(&old))?;
    let record = RevocationRecord {
        reason,
        kind,
        effective,
        emergency,
    };
    REVOCATIONS.save(storage, (at.height, addr), &record)?;
    EMERGENCY.remove(storage, addr);
    Ok(())
}

/// Suspends an L1 member until `at + period`, unless a suspension of it lapsed less than
/// `period` ago (so that a few members cannot keep others suspended for ever).
pub fn suspend(
    storage: &mut dyn Storage,
    at: Moment,
    addr: &Addr,
    period: u64,
    reason: String,
) -> Result<u64, ContractError> {
    let old = load_unrevoked(storage, addr)?;
    if let Some(s) = &old.suspension {
        let cooldown_until = s.until.saturating_add(period);
        if at.time < cooldown_until {
            return Err(ContractError::SuspensionCooldown {
                addr: addr.to_string(),
                until: s.until,
                cooldown_until,
            });
        }
    }
    let until = at.time.saturating_add(period);
    let new = Member {
        suspension: Some(Suspension { at, until, reason }),
        ..old.clone()
    };
    save_member(storage, at, addr, &new, Some(&old))?;
    EMERGENCY.remove(storage, addr);
    Ok(until)
}

/// Adds a verified endorsement to an L2 member's history. A renewal by the same key for the
/// same scopes that starts before the last period ends extends that period (so renewing often
/// never pushes out the period earlier work was signed in); other endorsements are kept up to
/// the cap, the oldest dropped beyond it.
pub fn push_endorsement(m: &mut Member, e: garden_wire::member::Endorsement) {
    if let Some(last) = m.endorsements.last_mut() {
        let continues = last.endorser_key == e.endorser_key
            && last.scopes == e.scopes
            && e.valid_from >= last.valid_from
            && e.valid_from <= last.valid_until;
        if continues {
            last.valid_until = last.valid_until.max(e.valid_until);
            last.endorser = e.endorser;
            return;
        }
    }
    m.endorsements.push(e);
    if m.endorsements.len() > MAX_ENDORSEMENTS {
        m.endorsements.remove(0);
    }
}

/// Cheap, state-independent checks of an action, so a malformed proposal never reaches a vote.
pub fn precheck_action(deps: Deps, action: &Action) -> Result<(), ContractError> {
    match action {
        Action::Admit { addr, pubkey, .. } => {
            deps.api.addr_validate(addr)?;
            valid_pubkey(pubkey)?;
        }
        Action::Revoke { addr, reason, .. } => {
            deps.api.addr_validate(addr)?;
            ContractError::check_str("reason", reason)?;
        }
        Action::SetTrustLevel { addr, .. } | Action::SetWeight { addr, .. } => {
            deps.api.addr_validate(addr)?;
        }
        Action::UpdateParams { params } => {
            validate_params(params, TOTAL_WEIGHT.load(deps.storage)?)?;
        }
    }
    Ok(())
}

pub fn validate_params(p: &Params, total_weight: u64) -> Result<(), ContractError> {
    p.threshold.validate(total_weight)?;
    let bad = |reason: &str| {
        Err(ContractError::InvalidParams {
            reason: reason.into(),
        })
    };
    let secs = |d: &cw_utils::Duration| match d {
        cw_utils::Duration::Height(h) => (*h, false),
        cw_utils::Duration::Time(t) => (*t, true),
    };
    let (voting, voting_time) = secs(&p.voting_period);
    let (execution, execution_time) = secs(&p.execution_period);
    if voting == 0 {
        return bad("voting_period must be > 0");
    }
    if execution == 0 || voting_time != execution_time {
        return bad("execution_period must be > 0 and of the same kind as voting_period");
    }
    if p.emergency_share.is_zero() || p.emergency_share > cosmwasm_std::Decimal::one() {
        return bad("emergency_share must be in (0, 1]");
    }
    if p.emergency_window == 0 || p.suspension_period == 0 || p.max_endorsement_secs == 0 {
        return bad("emergency_window, suspension_period and max_endorsement_secs must be > 0");
    }
    Ok(())
}

fn level_endorsement(
    deps: Deps,
    env: &Env,
    addr: &Addr,
    key: &[u8; 32],
    level: TrustLevel,
    e: &Option<SignedEndorsement>,
) -> Result<Vec<garden_wire::member::Endorsement>, ContractError> {
    match (level, e) {
        (TrustLevel::L2, Some(e)) => Ok(vec![verify_endorsement(deps, env, addr, key, e)?]),
        (TrustLevel::L2, None) => Err(ContractError::EndorsementRequired),
        (_, Some(_)) => Err(ContractError::UnexpectedEndorsement),
        (_, None) => Ok(vec![]),
    }
}

/// Applies an action (from a passed proposal or the admin). All checks that depend on the
/// state at application time happen here.
pub fn apply_action(
    deps: DepsMut,
    env: &Env,
    action: &Action,
    res: Response,
) -> Result<Response, ContractError> {
    let at = moment(env);
    precheck_action(deps.as_ref(), action)?;
    match action {
        Action::Admit {
            addr,
            pubkey,
            level,
            weight,
            endorsement,
        } => {
            let addr = deps.api.addr_validate(addr)?;
            let key = valid_pubkey(pubkey)?;
            let old = MEMBERS.may_load(deps.storage, &addr)?;
            if old.as_ref().is_some_and(|m| !m.is_revoked()) {
                return Err(ContractError::AlreadyMember {
                    addr: addr.to_string(),
                });
            }
            if old.as_ref().is_some_and(|m| m.pubkey.as_slice() == key) {
                return Err(ContractError::KeyRevoked);
            }
            let endorsements =
                level_endorsement(deps.as_ref(), env, &addr, &key, *level, endorsement)?;
            let m = Member {
                pubkey: key.to_vec().into(),
                level: *level,
                weight: *weight,
                endorsements,
                since: at,
                suspension: None,
                revocation: None,
            };
            save_member(deps.storage, at, &addr, &m, old.as_ref())?;
            Ok(res.add_attribute("admitted", addr))
        }
        Action::Revoke { addr, reason, kind } => {
            let addr = deps.api.addr_validate(addr)?;
            revoke(deps.storage, at, &addr, *kind, reason.clone(), false)?;
            Ok(res.add_attribute("revoked", addr))
        }
        Action::SetTrustLevel {
            addr,
            level,
            endorsement,
        } => {
            let addr = deps.api.addr_validate(addr)?;
            let old = load_unrevoked(deps.storage, &addr)?;
            let key = valid_pubkey(&old.pubkey)?;
            let endorsements =
                level_endorsement(deps.as_ref(), env, &addr, &key, *level, endorsement)?;
            let new = Member {
                level: *level,
                endorsements,
                ..old.clone()
            };
            save_member(deps.storage, at, &addr, &new, Some(&old))?;
            Ok(res.add_attribute("trust_level_changed", addr))
        }
        Action::SetWeight { addr, weight } => {
            let addr = deps.api.addr_validate(addr)?;
            let old = load_unrevoked(deps.storage, &addr)?;
            let new = Member {
                weight: *weight,
                ..old.clone()
            };
            save_member(deps.storage, at, &addr, &new, Some(&old))?;
            Ok(res.add_attribute("weight_changed", addr))
        }
        Action::UpdateParams { params } => {
            CONFIG.update(deps.storage, |mut c| -> StdResult<_> {
                c.params = params.clone();
                Ok(c)
            })?;
            Ok(res.add_attribute("params_updated", "true"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::Binary;
    use garden_wire::member::Endorsement;

    fn e(key: u8, from: u64, until: u64) -> Endorsement {
        Endorsement {
            endorser: Addr::unchecked("l1"),
            endorser_key: Binary::from(vec![key; 32]),
            scopes: vec!["settle".into()],
            valid_from: from,
            valid_until: until,
        }
    }

    #[test]
    fn frequent_renewals_extend_one_period() {
        let mut m = Member {
            pubkey: Binary::from(vec![9; 32]),
            level: TrustLevel::L2,
            weight: 0,
            endorsements: vec![],
            since: Moment::default(),
            suspension: None,
            revocation: None,
        };
        push_endorsement(&mut m, e(1, 100, 200));
        for t in 101..120 {
            push_endorsement(&mut m, e(1, t, t + 100));
        }
        assert_eq!(
            m.endorsements,
            vec![e(1, 100, 219)],
            "work at 100 stays covered"
        );
        // another endorser, or a gap, starts a new period; beyond the cap the oldest goes
        push_endorsement(&mut m, e(2, 150, 300));
        push_endorsement(&mut m, e(2, 400, 500));
        push_endorsement(&mut m, e(3, 450, 550));
        push_endorsement(&mut m, e(4, 460, 560));
        assert_eq!(m.endorsements.len(), MAX_ENDORSEMENTS);
        assert_eq!(m.endorsements[0], e(2, 150, 300));
    }
}
