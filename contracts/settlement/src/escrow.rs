//! Consumer escrow: deposit, withdrawal request, notice, withdrawal, refund.
//!
//! The promise to providers: money leaves an escrow only through settlement, or through a
//! withdrawal whose notice (at least the settlement window) starts when the consumer asks
//! for it. Attestations signed before the request draw on the whole balance until the notice
//! ends; attestations signed after it draw only on what the request leaves behind.

use cosmwasm_std::{Addr, BankMsg, Coin, DepsMut, Env, MessageInfo, Response, StdError, Uint128};
use cw_utils::must_pay;

use crate::state::{ADMIN, CONFIG, ESCROWS, TOTALS};
use crate::types::{Escrow, Withdrawal};
use crate::ContractError;

impl Escrow {
    /// What an attestation signed at `signed_at` may draw. One signed in the very second of
    /// the request counts as signed before it (the provider gets the benefit of the doubt).
    pub fn available_for(&self, signed_at: u64) -> Uint128 {
        match &self.withdrawal {
            Some(w) if signed_at > w.requested_at => match w.amount {
                Some(a) => self.balance.saturating_sub(a),
                None => Uint128::zero(),
            },
            _ => self.balance,
        }
    }

    /// What a withdrawal releases at `now`, if its notice has ended.
    pub fn releasable(&self, now: u64) -> Result<Uint128, ContractError> {
        let w = self
            .withdrawal
            .as_ref()
            .ok_or(ContractError::NoWithdrawalRequested)?;
        if now < w.available_at {
            return Err(ContractError::NoticeRunning {
                available_at: w.available_at,
                now,
            });
        }
        Ok(w.amount.map_or(self.balance, |a| a.min(self.balance)))
    }
}

pub fn execute_deposit(deps: DepsMut, info: MessageInfo) -> Result<Response, ContractError> {
    let cfg = CONFIG.load(deps.storage)?;
    // Coin amounts are Uint256 on cosmwasm 3; balances here fit Uint128 (bank supply does).
    let amount = Uint128::try_from(must_pay(&info, &cfg.denom)?).map_err(StdError::from)?;
    let mut e = ESCROWS
        .may_load(deps.storage, &info.sender)?
        .unwrap_or_default();
    e.balance = e
        .balance
        .checked_add(amount)
        .map_err(|_| ContractError::Overflow)?;
    ESCROWS.save(deps.storage, &info.sender, &e)?;
    let mut t = TOTALS.load(deps.storage)?;
    t.deposited = t
        .deposited
        .checked_add(amount)
        .map_err(|_| ContractError::Overflow)?;
    TOTALS.save(deps.storage, &t)?;
    Ok(Response::new()
        .add_attribute("action", "deposit")
        .add_attribute("consumer", info.sender)
        .add_attribute("amount", amount)
        .add_attribute("balance", e.balance))
}

/// Files (or replaces) a withdrawal request; the notice starts now.
pub fn execute_request_withdrawal(
    deps: DepsMut,
    env: Env,
    consumer: &Addr,
    amount: Option<Uint128>,
) -> Result<Response, ContractError> {
    let cfg = CONFIG.load(deps.storage)?;
    let mut e = load_escrow(deps.as_ref().storage, consumer)?;
    if amount.is_some_and(|a| a.is_zero()) {
        return Err(ContractError::ZeroAmount);
    }
    let now = env.block.time.seconds();
    let available_at = now.saturating_add(cfg.params.withdrawal_notice_secs);
    e.withdrawal = Some(Withdrawal {
        amount,
        requested_at: now,
        available_at,
    });
    ESCROWS.save(deps.storage, consumer, &e)?;
    Ok(Response::new()
        .add_attribute("action", "request_withdrawal")
        .add_attribute("consumer", consumer)
        .add_attribute("amount", amount.map_or("all".into(), |a| a.to_string()))
        .add_attribute("available_at", available_at.to_string()))
}

pub fn execute_cancel_withdrawal(
    deps: DepsMut,
    consumer: &Addr,
) -> Result<Response, ContractError> {
    let mut e = load_escrow(deps.as_ref().storage, consumer)?;
    if e.withdrawal.take().is_none() {
        return Err(ContractError::NoWithdrawalRequested);
    }
    ESCROWS.save(deps.storage, consumer, &e)?;
    Ok(Response::new()
        .add_attribute("action", "cancel_withdrawal")
        .add_attribute("consumer", consumer))
}

/// Pays out a withdrawal whose notice has ended (to the consumer, whoever triggers it).
pub fn execute_withdraw(
    deps: DepsMut,
    env: Env,
    consumer: &Addr,
    action: &str,
) -> Result<Response, ContractError> {
    let cfg = CONFIG.load(deps.storage)?;
    let mut e = load_escrow(deps.as_ref().storage, consumer)?;
    let amount = e.releasable(env.block.time.seconds())?;
    e.balance -= amount; // releasable() never exceeds the balance
    e.withdrawal = None;
    if e.balance.is_zero() {
        ESCROWS.remove(deps.storage, consumer);
    } else {
        ESCROWS.save(deps.storage, consumer, &e)?;
    }
    let mut t = TOTALS.load(deps.storage)?;
    t.withdrawn = t
        .withdrawn
        .checked_add(amount)
        .map_err(|_| ContractError::Overflow)?;
    TOTALS.save(deps.storage, &t)?;
    let mut res = Response::new()
        .add_attribute("action", action)
        .add_attribute("consumer", consumer)
        .add_attribute("amount", amount);
    if !amount.is_zero() {
        res = res.add_message(BankMsg::Send {
            to_address: consumer.to_string(),
            amount: vec![Coin {
                denom: cfg.denom,
                amount: amount.into(),
            }],
        });
    }
    Ok(res)
}

/// The consumer or the governance admin returns a whole escrow to its consumer: it files a
/// request for everything if none is pending (the notice starts), and pays out once the
/// notice of a pending request has ended.
pub fn execute_refund(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    consumer: String,
) -> Result<Response, ContractError> {
    let consumer = deps.api.addr_validate(&consumer)?;
    if info.sender != consumer && !ADMIN.is_admin(deps.as_ref(), &info.sender)? {
        return Err(ContractError::NotConsumerOrAdmin {
            consumer: consumer.to_string(),
        });
    }
    let e = load_escrow(deps.as_ref().storage, &consumer)?;
    match e.withdrawal {
        None => execute_request_withdrawal(deps, env, &consumer, None),
        Some(_) => {
            let mut e = e;
            // a refund returns everything, whatever the pending request asked for
            if let Some(w) = e.withdrawal.as_mut() {
                w.amount = None;
            }
            ESCROWS.save(deps.storage, &consumer, &e)?;
            execute_withdraw(deps, env, &consumer, "refund")
        }
    }
}

fn load_escrow(
    storage: &dyn cosmwasm_std::Storage,
    consumer: &Addr,
) -> Result<Escrow, ContractError> {
    ESCROWS
        .may_load(storage, consumer)?
        .filter(|e| !e.balance.is_zero())
        .ok_or_else(|| ContractError::NoEscrow {
            consumer: consumer.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_protects_what_was_signed_before_it() {
        let mut e = Escrow {
            balance: Uint128::new(100),
            withdrawal: None,
        };
        assert_eq!(e.available_for(50), Uint128::new(100));
        e.withdrawal = Some(Withdrawal {
            amount: Some(Uint128::new(70)),
            requested_at: 60,
            available_at: 160,
        });
        assert_eq!(
            e.available_for(60),
            Uint128::new(100),
            "signed before (same second)"
        );
        assert_eq!(e.available_for(61), Uint128::new(30), "signed after");
        assert!(matches!(
            e.releasable(159),
            Err(ContractError::NoticeRunning { .. })
        ));
        assert_eq!(e.releasable(160).unwrap(), Uint128::new(70));
        e.balance = Uint128::new(20); // settlements drew on it meanwhile
        assert_eq!(e.releasable(160).unwrap(), Uint128::new(20));
        e.withdrawal.as_mut().unwrap().amount = None;
        assert_eq!(e.available_for(61), Uint128::zero());
    }
}
