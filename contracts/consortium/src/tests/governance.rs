//! Instantiate, proposals, votes, execution, admin, queries.

use cosmwasm_std::{Decimal, Empty};
use cw_multi_test::{App, Executor};
use cw_utils::{Duration, Threshold, ThresholdError};
use garden_wire::membership::{MemberResponse, MemberStatus};
use garden_wire::{RevocationKind, TrustLevel};

use super::suite::{assert_err, attr, contract, pubkey, Suite};
use crate::msg::*;
use crate::tally::Vote;
use crate::types::*;
use crate::ContractError;

fn admit(addr: &str, seed: u8, level: TrustLevel, weight: u64) -> Action {
    Action::Admit {
        addr: addr.into(),
        pubkey: pubkey(seed),
        level,
        weight,
        endorsement: None,
    }
}

fn init(members: Vec<MemberInit>, params: Option<Params>) -> Result<(), cosmwasm_std::StdError> {
    let mut app = App::default();
    let code = app.store_code(contract());
    let sender = app.api().addr_make("x");
    app.instantiate_contract(
        code,
        sender,
        &InstantiateMsg {
            members,
            params,
            admin: None,
        },
        &[],
        "c",
        None,
    )
    .map(|_| ())
}

fn m(app_addr: &str, seed: u8, level: TrustLevel, weight: u64) -> MemberInit {
    MemberInit {
        addr: app_addr.into(),
        pubkey: pubkey(seed),
        level,
        weight,
    }
}

#[test]
fn instantiate_validates() {
    let api = cw_multi_test::MockApiBech32::new("cosmwasm");
    let a = api.addr_make("a").to_string();
    let b = api.addr_make("b").to_string();
    assert!(init(vec![m(&a, 1, TrustLevel::L1, 1)], None).is_ok());
    assert_err(
        init(vec![m(&a, 1, TrustLevel::L3, 1)], None).unwrap_err(),
        ContractError::NoInitialL1,
    );
    assert_err(
        init(vec![m(&a, 1, TrustLevel::L1, 0)], None).unwrap_err(),
        ContractError::NoInitialL1,
    );
    assert_err(
        init(vec![m(&a, 1, TrustLevel::L2, 1)], None).unwrap_err(),
        ContractError::EndorsementRequired,
    );
    let mut bad = m(&a, 1, TrustLevel::L1, 1);
    bad.pubkey = vec![1; 31].into();
    assert_err(
        init(vec![bad], None).unwrap_err(),
        ContractError::InvalidPubkey { len: 31 },
    );
    assert_err(
        init(
            vec![m(&a, 1, TrustLevel::L1, 1), m(&a, 2, TrustLevel::L1, 1)],
            None,
        )
        .unwrap_err(),
        ContractError::AlreadyMember { addr: a.clone() },
    );
    assert_err(
        init(
            vec![m(&a, 1, TrustLevel::L1, 1), m(&b, 1, TrustLevel::L1, 1)],
            None,
        )
        .unwrap_err(),
        ContractError::DuplicatePubkey { owner: a.clone() },
    );
    let p = Params {
        emergency_share: Decimal::zero(),
        ..Params::default()
    };
    assert_err(
        init(vec![m(&a, 1, TrustLevel::L1, 1)], Some(p)).unwrap_err(),
        ContractError::InvalidParams {
            reason: "emergency_share must be in (0, 1]".into(),
        },
    );
    let p = Params {
        execution_period: Duration::Height(5),
        ..Params::default()
    };
    assert_err(
        init(vec![m(&a, 1, TrustLevel::L1, 1)], Some(p)).unwrap_err(),
        ContractError::InvalidParams {
            reason: "execution_period must be > 0 and of the same kind as voting_period".into(),
        },
    );
    let p = Params {
        threshold: Threshold::AbsoluteCount { weight: 5 },
        ..Params::default()
    };
    assert_err(
        init(vec![m(&a, 1, TrustLevel::L1, 1)], Some(p)).unwrap_err(),
        ContractError::Threshold(ThresholdError::UnreachableWeight {}),
    );
}

#[test]
fn admit_by_vote_then_query() {
    let mut s = Suite::new();
    let d = s.addr("d");
    let (a, b) = (s.a.clone(), s.b.clone());
    let id = s
        .propose(&a, admit(d.as_str(), 4, TrustLevel::L3, 0))
        .unwrap();
    let p: ProposalResponse = s.query(QueryMsg::Proposal { proposal_id: id });
    assert_eq!(
        (p.status, p.votes.yes, p.total_weight),
        (Status::Open, 1, 3)
    );
    // executing an open proposal is refused
    assert_err(
        s.exec(&a, ExecuteMsg::Execute { proposal_id: id })
            .unwrap_err(),
        ContractError::WrongProposalStatus {
            id,
            status: "open".into(),
            expected: "passed".into(),
        },
    );
    let res = s.vote(&b, id, Vote::Yes).unwrap();
    assert_eq!(attr(&res, "status"), "passed");
    // votes after passing are refused
    assert_err(
        s.vote(&s.c.clone(), id, Vote::No).unwrap_err(),
        ContractError::WrongProposalStatus {
            id,
            status: "passed".into(),
            expected: "open".into(),
        },
    );
    s.exec(&a, ExecuteMsg::Execute { proposal_id: id }).unwrap();
    assert_err(
        s.exec(&a, ExecuteMsg::Execute { proposal_id: id })
            .unwrap_err(),
        ContractError::WrongProposalStatus {
            id,
            status: "executed".into(),
            expected: "passed".into(),
        },
    );

    let member: Option<MemberResponse> = s.query(QueryMsg::Member {
        addr: d.to_string(),
    });
    let member = member.unwrap();
    assert_eq!(
        (member.level, member.status),
        (TrustLevel::L3, MemberStatus::Active)
    );
    let by_key: Option<MemberResponse> = s.query(QueryMsg::MemberByPubkey { pubkey: pubkey(4) });
    assert_eq!(by_key.unwrap().addr, d);
    let none: Option<MemberResponse> = s.query(QueryMsg::MemberByPubkey { pubkey: pubkey(99) });
    assert!(none.is_none());
    assert!(s.query::<bool>(QueryMsg::IsMember {
        addr: d.to_string(),
        min_level: None,
        scope: None
    }));
    assert!(!s.query::<bool>(QueryMsg::IsMember {
        addr: d.to_string(),
        min_level: Some(TrustLevel::L2),
        scope: None
    }));
    let t: TrustLevelResponse = s.query(QueryMsg::TrustLevel {
        addr: d.to_string(),
    });
    assert_eq!(t.level, Some(TrustLevel::L3));
    // pagination: 4 members, pages of 3
    let page1: MembersResponse = s.query(QueryMsg::ListMembers {
        start_after: None,
        limit: Some(3),
    });
    assert_eq!(page1.members.len(), 3);
    let last = page1.members.last().unwrap().addr.to_string();
    let page2: MembersResponse = s.query(QueryMsg::ListMembers {
        start_after: Some(last),
        limit: Some(3),
    });
    assert_eq!(page2.members.len(), 1);
    let votes: VotesResponse = s.query(QueryMsg::ListVotes {
        proposal_id: id,
        start_after: None,
        limit: None,
    });
    assert_eq!(votes.votes.len(), 2);
    let v: Option<VoteInfo> = s.query(QueryMsg::Vote {
        proposal_id: id,
        voter: b.to_string(),
    });
    assert_eq!(v.unwrap().vote, Vote::Yes);
    let list: ProposalsResponse = s.query(QueryMsg::ListProposals {
        start_after: None,
        limit: None,
    });
    assert_eq!(list.proposals[0].status, Status::Executed);
    // admitting an active member again fails at execution
    assert_err(
        s.pass(admit(d.as_str(), 5, TrustLevel::L3, 0)).unwrap_err(),
        ContractError::AlreadyMember {
            addr: d.to_string(),
        },
    );
}

#[test]
fn propose_and_vote_errors() {
    let mut s = Suite::new();
    let (a, b, c) = (s.a.clone(), s.b.clone(), s.c.clone());
    let outsider = s.addr("outsider");
    assert_err(
        s.propose(&outsider, admit(outsider.as_str(), 9, TrustLevel::L3, 0))
            .unwrap_err(),
        ContractError::NotL1Member {
            addr: outsider.to_string(),
        },
    );
    assert_err(
        s.exec(
            &a,
            ExecuteMsg::Propose {
                title: String::new(),
                description: String::new(),
                action: admit(outsider.as_str(), 9, TrustLevel::L3, 0),
            },
        )
        .unwrap_err(),
        ContractError::InvalidText {
            field: "title".into(),
            max: 128,
        },
    );
    let bad_key = Action::Admit {
        addr: outsider.to_string(),
        pubkey: vec![0; 3].into(),
        level: TrustLevel::L3,
        weight: 0,
        endorsement: None,
    };
    assert_err(
        s.propose(&a, bad_key).unwrap_err(),
        ContractError::InvalidPubkey { len: 3 },
    );
    let bad_params = Action::UpdateParams {
        params: Params {
            emergency_window: 0,
            ..Params::default()
        },
    };
    assert_err(
        s.propose(&a, bad_params).unwrap_err(),
        ContractError::InvalidParams {
            reason: "emergency_window, suspension_period and max_endorsement_secs must be > 0"
                .into(),
        },
    );
    assert_err(
        s.vote(&a, 77, Vote::Yes).unwrap_err(),
        ContractError::ProposalNotFound { id: 77 },
    );

    let id = s
        .propose(&a, admit(outsider.as_str(), 9, TrustLevel::L3, 0))
        .unwrap();
    assert_err(
        s.vote(&a, id, Vote::Yes).unwrap_err(),
        ContractError::AlreadyVoted {
            id,
            voter: a.to_string(),
        },
    );
    assert_err(
        s.vote(&outsider, id, Vote::Yes).unwrap_err(),
        ContractError::NotL1Member {
            addr: outsider.to_string(),
        },
    );
    assert_err(
        s.exec(&a, ExecuteMsg::Close { proposal_id: id })
            .unwrap_err(),
        ContractError::ProposalNotExpired { id },
    );
    // two no votes: 1 yes of 3 can no longer reach 2/3
    s.vote(&b, id, Vote::No).unwrap();
    let res = s.vote(&c, id, Vote::No).unwrap();
    assert_eq!(attr(&res, "status"), "rejected");

    // expiry: a proposal with one yes expires, voting is refused, close rejects it
    let id2 = s
        .propose(&a, admit(outsider.as_str(), 9, TrustLevel::L3, 0))
        .unwrap();
    s.advance(7 * 24 * 3600 + 1, 10);
    assert_err(
        s.vote(&b, id2, Vote::Yes).unwrap_err(),
        ContractError::ProposalExpired { id: id2 },
    );
    let p: ProposalResponse = s.query(QueryMsg::Proposal { proposal_id: id2 });
    assert_eq!(p.status, Status::Rejected);
    s.exec(&b, ExecuteMsg::Close { proposal_id: id2 }).unwrap();
    assert_err(
        s.exec(&b, ExecuteMsg::Close { proposal_id: id2 })
            .unwrap_err(),
        ContractError::WrongProposalStatus {
            id: id2,
            status: "rejected".into(),
            expected: "open".into(),
        },
    );
}

#[test]
fn members_admitted_after_opening_cannot_vote() {
    let mut s = Suite::new();
    let d = s.addr("d");
    s.pass(admit(d.as_str(), 4, TrustLevel::L1, 1)).unwrap();
    s.advance(5, 1);
    // total weight is now 4; d votes on a proposal opened after its admission
    let a = s.a.clone();
    let x = s.addr("x");
    let id = s
        .propose(&a, admit(x.as_str(), 5, TrustLevel::L3, 0))
        .unwrap();
    s.vote(&d, id, Vote::Yes).unwrap();
    // e is admitted after that proposal opened: no weight on it
    let e = s.addr("e");
    s.advance(5, 1);
    s.pass(admit(e.as_str(), 6, TrustLevel::L1, 1)).unwrap();
    s.advance(5, 1);
    assert_err(
        s.vote(&e, id, Vote::Yes).unwrap_err(),
        ContractError::NoVotingWeight {
            id,
            voter: e.to_string(),
        },
    );
    assert_eq!(s.query::<u64>(QueryMsg::TotalWeight {}), 5);
}

#[test]
fn revoke_level_weight_and_revocations_since() {
    let mut s = Suite::new();
    let (d, e) = (s.addr("d"), s.addr("e"));
    s.pass(admit(d.as_str(), 4, TrustLevel::L3, 0)).unwrap();
    s.pass(admit(e.as_str(), 5, TrustLevel::L3, 0)).unwrap();
    s.advance(5, 1);
    let h1 = s.app.block_info().height;
    s.pass(Action::Revoke {
        addr: d.to_string(),
        reason: "left".into(),
        kind: RevocationKind::Departure,
    })
    .unwrap();
    s.advance(5, 1);
    s.pass(Action::Revoke {
        addr: e.to_string(),
        reason: "misbehaved".into(),
        kind: RevocationKind::Departure,
    })
    .unwrap();
    let r: RevocationsResponse = s.query(QueryMsg::RevocationsSince {
        height: h1,
        start_after: None,
        limit: None,
    });
    assert_eq!(r.revocations.len(), 2);
    assert_eq!(
        (
            r.revocations[0].addr.clone(),
            r.revocations[0].height,
            r.revocations[0].emergency
        ),
        (d.clone(), h1, false)
    );
    let r2: RevocationsResponse = s.query(QueryMsg::RevocationsSince {
        height: h1 + 1,
        start_after: None,
        limit: None,
    });
    assert_eq!(r2.revocations.len(), 1);
    let page: RevocationsResponse = s.query(QueryMsg::RevocationsSince {
        height: 0,
        start_after: Some((h1, d.to_string())),
        limit: Some(1),
    });
    assert_eq!(page.revocations[0].addr, e);
    // a revoked key is reported as revoked, not unknown
    let by_key: Option<MemberResponse> = s.query(QueryMsg::MemberByPubkey { pubkey: pubkey(4) });
    assert_eq!(by_key.unwrap().status, MemberStatus::Revoked);
    let t: TrustLevelResponse = s.query(QueryMsg::TrustLevel {
        addr: d.to_string(),
    });
    assert_eq!(t.level, None);
    assert_err(
        s.pass(Action::Revoke {
            addr: d.to_string(),
            reason: "x".into(),
            kind: RevocationKind::Departure,
        })
        .unwrap_err(),
        ContractError::AlreadyRevoked {
            addr: d.to_string(),
        },
    );
    let ghost = s.addr("ghost");
    assert_err(
        s.pass(Action::Revoke {
            addr: ghost.to_string(),
            reason: "x".into(),
            kind: RevocationKind::Departure,
        })
        .unwrap_err(),
        ContractError::UnknownMember {
            addr: ghost.to_string(),
        },
    );
    assert_err(
        s.pass(Action::SetWeight {
            addr: d.to_string(),
            weight: 3,
        })
        .unwrap_err(),
        ContractError::Revoked {
            addr: d.to_string(),
        },
    );
    // re-admission of a revoked member by vote works, with a new key only
    assert_err(
        s.pass(admit(d.as_str(), 4, TrustLevel::L3, 0)).unwrap_err(),
        ContractError::KeyRevoked,
    );
    s.pass(admit(d.as_str(), 14, TrustLevel::L3, 0)).unwrap();
    let by_old: Option<MemberResponse> = s.query(QueryMsg::MemberByPubkey { pubkey: pubkey(4) });
    assert_eq!(
        by_old.map(|m| m.status),
        Some(MemberStatus::Revoked),
        "the old key stays revoked"
    );
    let by_new: Option<MemberResponse> = s.query(QueryMsg::MemberByPubkey { pubkey: pubkey(14) });
    assert_eq!(by_new.map(|m| m.status), Some(MemberStatus::Active));

    // level and weight changes
    let c = s.c.clone();
    s.pass(Action::SetWeight {
        addr: c.to_string(),
        weight: 2,
    })
    .unwrap();
    assert_eq!(s.query::<u64>(QueryMsg::TotalWeight {}), 4);
    s.pass(Action::SetTrustLevel {
        addr: c.to_string(),
        level: TrustLevel::L3,
        endorsement: None,
    })
    .unwrap();
    assert_eq!(s.query::<u64>(QueryMsg::TotalWeight {}), 2);
    assert_err(
        s.pass(Action::SetTrustLevel {
            addr: d.to_string(),
            level: TrustLevel::L2,
            endorsement: None,
        })
        .unwrap_err(),
        ContractError::EndorsementRequired,
    );
    let a = s.a.clone();
    let en = s.endorsement(&a, 1, &d, 14, &["settle"], 0, u64::MAX);
    assert_err(
        s.pass(Action::SetTrustLevel {
            addr: d.to_string(),
            level: TrustLevel::L1,
            endorsement: Some(en),
        })
        .unwrap_err(),
        ContractError::UnexpectedEndorsement,
    );
}

#[test]
fn admin_actions_and_params() {
    let mut s = Suite::new();
    let (a, admin) = (s.a.clone(), s.admin.clone());
    let d = s.addr("d");
    assert_err(
        s.exec(
            &a,
            ExecuteMsg::AdminExecute {
                action: admit(d.as_str(), 4, TrustLevel::L1, 1),
            },
        )
        .unwrap_err(),
        ContractError::Admin(cw_controllers::AdminError::NotAdmin {}),
    );
    s.exec(
        &admin,
        ExecuteMsg::AdminExecute {
            action: admit(d.as_str(), 4, TrustLevel::L1, 1),
        },
    )
    .unwrap();
    assert_eq!(s.query::<u64>(QueryMsg::TotalWeight {}), 4);
    // duplicate key through the admin path
    let e = s.addr("e");
    assert_err(
        s.exec(
            &admin,
            ExecuteMsg::AdminExecute {
                action: admit(e.as_str(), 4, TrustLevel::L3, 0),
            },
        )
        .unwrap_err(),
        ContractError::DuplicatePubkey {
            owner: d.to_string(),
        },
    );
    // parameters by proposal
    let params = Params {
        threshold: Threshold::AbsoluteCount { weight: 1 },
        voting_period: Duration::Height(5),
        execution_period: Duration::Height(50),
        ..Params::default()
    };
    s.pass(Action::UpdateParams {
        params: params.clone(),
    })
    .unwrap();
    let cfg: ConfigResponse = s.query(QueryMsg::Config {});
    assert_eq!(cfg.params, params);
    // with AbsoluteCount 1 the proposer alone passes a proposal
    let id = s
        .propose(&a, admit(e.as_str(), 5, TrustLevel::L3, 0))
        .unwrap();
    let p: ProposalResponse = s.query(QueryMsg::Proposal { proposal_id: id });
    assert_eq!(p.status, Status::Passed);
    // admin hand-over
    assert_err(
        s.exec(&a, ExecuteMsg::UpdateAdmin { admin: None })
            .unwrap_err(),
        ContractError::Admin(cw_controllers::AdminError::NotAdmin {}),
    );
    s.exec(
        &admin,
        ExecuteMsg::UpdateAdmin {
            admin: Some(a.to_string()),
        },
    )
    .unwrap();
    let cfg: ConfigResponse = s.query(QueryMsg::Config {});
    assert_eq!(cfg.admin, Some(a.clone()));
    // the last voting weight cannot be removed
    let pct = Params {
        threshold: Threshold::AbsolutePercentage {
            percentage: Decimal::percent(50),
        },
        ..Params::default()
    };
    s.exec(
        &a,
        ExecuteMsg::AdminExecute {
            action: Action::UpdateParams { params: pct },
        },
    )
    .unwrap();
    for who in [s.b.clone(), s.c.clone(), d.clone()] {
        s.exec(
            &a,
            ExecuteMsg::AdminExecute {
                action: Action::Revoke {
                    addr: who.to_string(),
                    reason: "r".into(),
                    kind: RevocationKind::Departure,
                },
            },
        )
        .unwrap();
    }
    assert_err(
        s.exec(
            &a,
            ExecuteMsg::AdminExecute {
                action: Action::Revoke {
                    addr: a.to_string(),
                    reason: "r".into(),
                    kind: RevocationKind::Departure,
                },
            },
        )
        .unwrap_err(),
        ContractError::LastL1Member,
    );
    let _ = Empty {};
}

#[test]
fn migrate_keeps_version_and_state() {
    use cw_multi_test::ContractWrapper;
    let mut app = App::default();
    let gov = app.api().addr_make("gov");
    let wrapper = ContractWrapper::new(
        crate::contract::execute,
        crate::contract::instantiate,
        crate::contract::query,
    )
    .with_migrate(crate::contract::migrate);
    let code = app.store_code(Box::new(wrapper));
    let members = vec![MemberInit {
        addr: gov.to_string(),
        pubkey: pubkey(1),
        level: TrustLevel::L1,
        weight: 1,
    }];
    let addr = app
        .instantiate_contract(
            code,
            gov.clone(),
            &InstantiateMsg {
                members,
                params: None,
                admin: None,
            },
            &[],
            "c",
            Some(gov.to_string()),
        )
        .unwrap();
    app.migrate_contract(gov.clone(), addr.clone(), &MigrateMsg {}, code)
        .unwrap();
    let v = cw2::query_contract_info(&app.wrap(), &addr).unwrap();
    assert_eq!(
        (v.contract.as_str(), v.version.as_str()),
        (
            crate::contract::CONTRACT_NAME,
            crate::contract::CONTRACT_VERSION
        )
    );
    let w: u64 = app
        .wrap()
        .query_wasm_smart(&addr, &QueryMsg::TotalWeight {})
        .unwrap();
    assert_eq!(w, 1);
    let _: Empty = Empty {};
}
