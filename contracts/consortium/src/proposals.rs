//! The proposal life cycle (cw3-flex style): propose, vote, execute, close. Only active,
//! unsuspended L1 members take part; a passed proposal must be executed before its
//! deadline, and is re-tallied then without the ballots of members revoked or suspended since.

use cosmwasm_std::{Addr, BlockInfo, DepsMut, Env, MessageInfo, Order, Response, Storage};
use cw_utils::Expiration;

use crate::members::{apply_action, precheck_action};
use crate::state::{
    active_l1, next_proposal_id, BALLOTS, CONFIG, MEMBERS, PROPOSALS, TOTAL_WEIGHT, VOTING_WEIGHTS,
};
use crate::tally::{is_passed, is_rejected, Vote, Votes};
use crate::types::{Action, Ballot, Params, Proposal, Status, MAX_DESCRIPTION};
use crate::ContractError;

pub fn execute_propose(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    title: String,
    description: String,
    action: Action,
) -> Result<Response, ContractError> {
    let proposer = active_l1(deps.storage, &info.sender, env.block.time.seconds())?;
    ContractError::check_str("title", &title)?;
    ContractError::check_text("description", &description, MAX_DESCRIPTION)?;
    precheck_action(deps.as_ref(), &action)?;
    let params = CONFIG.load(deps.storage)?.params;
    let total_weight = TOTAL_WEIGHT.load(deps.storage)?;
    let mut votes = Votes::default();
    votes.add(Vote::Yes, proposer.voting_weight());
    let expires = params.voting_period.after(&env.block);
    let mut prop = Proposal {
        title,
        description,
        action,
        proposer: info.sender.clone(),
        start_height: env.block.height,
        execute_by: Some(deadline(expires, &params)),
        expires,
        threshold: params.threshold,
        total_weight,
        votes,
        status: Status::Open,
    };
    if is_passed(&prop.threshold, &prop.votes, total_weight, false) {
        prop.status = Status::Passed;
    }
    let id = next_proposal_id(deps.storage)?;
    PROPOSALS.save(deps.storage, id, &prop)?;
    let ballot = Ballot {
        weight: proposer.voting_weight(),
        vote: Vote::Yes,
    };
    BALLOTS.save(deps.storage, (id, &info.sender), &ballot)?;
    Ok(Response::new()
        .add_attribute("action", "propose")
        .add_attribute("proposal_id", id.to_string())
        .add_attribute("status", prop.status.to_string()))
}

pub fn execute_vote(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    id: u64,
    vote: Vote,
) -> Result<Response, ContractError> {
    let mut prop = load_proposal(deps.storage, id)?;
    if prop.status != Status::Open {
        return Err(wrong_status(id, &prop.status, "open"));
    }
    if prop.expires.is_expired(&env.block) {
        return Err(ContractError::ProposalExpired { id });
    }
    // A revoked or suspended member no longer votes, even on proposals opened before.
    active_l1(deps.storage, &info.sender, env.block.time.seconds())?;
    // Weight as of the end of the proposal's opening block (a snapshot read at height h
    // shows the state before h's changes): members admitted later cannot vote.
    let weight = VOTING_WEIGHTS
        .may_load_at_height(deps.storage, &info.sender, prop.start_height + 1)?
        .unwrap_or(0);
    if weight == 0 {
        return Err(ContractError::NoVotingWeight {
            id,
            voter: info.sender.to_string(),
        });
    }
    if BALLOTS.has(deps.storage, (id, &info.sender)) {
        return Err(ContractError::AlreadyVoted {
            id,
            voter: info.sender.to_string(),
        });
    }
    BALLOTS.save(deps.storage, (id, &info.sender), &Ballot { weight, vote })?;
    prop.votes.add(vote, weight);
    if is_passed(&prop.threshold, &prop.votes, prop.total_weight, false) {
        prop.status = Status::Passed;
    } else if is_rejected(&prop.threshold, &prop.votes, prop.total_weight, false) {
        prop.status = Status::Rejected;
    }
    PROPOSALS.save(deps.storage, id, &prop)?;
    Ok(Response::new()
        .add_attribute("action", "vote")
        .add_attribute("proposal_id", id.to_string())
        .add_attribute("voter", info.sender)
        .add_attribute("status", prop.status.to_string()))
}

pub fn execute_execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    id: u64,
) -> Result<Response, ContractError> {
    let now = env.block.time.seconds();
    active_l1(deps.storage, &info.sender, now)?;
    let mut prop = load_proposal(deps.storage, id)?;
    let params = CONFIG.load(deps.storage)?.params;
    let status = current_status(&prop, &env.block, &params);
    if status != Status::Passed {
        return Err(wrong_status(id, &status, "passed"));
    }
    let votes = retally(deps.storage, id, now)?;
    let expired = prop.expires.is_expired(&env.block);
    if !is_passed(&prop.threshold, &votes, prop.total_weight, expired) {
        return Err(ContractError::NoLongerPasses { id });
    }
    prop.status = Status::Executed;
    PROPOSALS.save(deps.storage, id, &prop)?;
    let res = Response::new()
        .add_attribute("action", "execute")
        .add_attribute("proposal_id", id.to_string());
    apply_action(deps, &env, &prop.action, res)
}

pub fn execute_close(deps: DepsMut, env: Env, id: u64) -> Result<Response, ContractError> {
    let mut prop = load_proposal(deps.storage, id)?;
    if prop.status != Status::Open {
        return Err(wrong_status(id, &prop.status, "open"));
    }
    let params = CONFIG.load(deps.storage)?.params;
    if current_status(&prop, &env.block, &params) != Status::Rejected {
        return Err(ContractError::ProposalNotExpired { id });
    }
    prop.status = Status::Rejected;
    PROPOSALS.save(deps.storage, id, &prop)?;
    Ok(Response::new()
        .add_attribute("action", "close")
        .add_attribute("proposal_id", id.to_string()))
}

/// The ballots that still count: those of voters neither revoked nor suspended now.
fn retally(storage: &dyn Storage, id: u64, now: u64) -> Result<Votes, ContractError> {
    let mut votes = Votes::default();
    let ballots: Vec<(Addr, Ballot)> = BALLOTS
        .prefix(id)
        .range(storage, None, None, Order::Ascending)
        .collect::<Result<_, _>>()?;
    for (voter, ballot) in ballots {
        if MEMBERS
            .may_load(storage, &voter)?
            .is_some_and(|m| m.is_active(now))
        {
            votes.add(ballot.vote, ballot.weight);
        }
    }
    Ok(votes)
}

fn deadline(expires: Expiration, params: &Params) -> Expiration {
    // validate_params keeps both durations of the same kind, so the sum exists.
    (expires + params.execution_period).unwrap_or(expires)
}

/// Last moment a passed proposal may be executed.
pub fn execute_by(p: &Proposal, params: &Params) -> Expiration {
    p.execute_by.unwrap_or_else(|| deadline(p.expires, params))
}

/// Status with expiry and the execution deadline applied (cw3's `Proposal::current_status`).
pub fn current_status(p: &Proposal, block: &BlockInfo, params: &Params) -> Status {
    let status = match p.status {
        Status::Open => {
            let expired = p.expires.is_expired(block);
            if is_passed(&p.threshold, &p.votes, p.total_weight, expired) {
                Status::Passed
            } else if is_rejected(&p.threshold, &p.votes, p.total_weight, expired) {
                Status::Rejected
            } else {
                Status::Open
            }
        }
        ref s => s.clone(),
    };
    if status == Status::Passed && execute_by(p, params).is_expired(block) {
        return Status::Expired;
    }
    status
}

fn load_proposal(storage: &dyn Storage, id: u64) -> Result<Proposal, ContractError> {
    PROPOSALS
        .may_load(storage, id)?
        .ok_or(ContractError::ProposalNotFound { id })
}

fn wrong_status(id: u64, status: &Status, expected: &str) -> ContractError {
    ContractError::WrongProposalStatus {
        id,
        status: status.to_string(),
        expected: expected.into(),
    }
}
