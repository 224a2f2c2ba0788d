//! The governance defects of v0.1, each as the attack or mistake it allowed.

use cosmwasm_std::Addr;
use cw_utils::Duration;
use garden_wire::membership::{MemberResponse, MemberStatus};
use garden_wire::{RevocationKind, TrustLevel};

use super::suite::{assert_err, attr, pubkey, Suite};
use crate::msg::*;
use crate::tally::Vote;
use crate::types::*;
use crate::ContractError;

fn admit_l1(s: &mut Suite, who: &Addr, seed: u8) {
    let admin = s.admin.clone();
    s.exec(
        &admin,
        ExecuteMsg::AdminExecute {
            action: Action::Admit {
                addr: who.to_string(),
                pubkey: pubkey(seed),
                level: TrustLevel::L1,
                weight: 1,
                endorsement: None,
            },
        },
    )
    .unwrap();
}

fn status(s: &Suite, who: &Addr) -> MemberStatus {
    s.query::<Option<MemberResponse>>(QueryMsg::Member {
        addr: who.to_string(),
    })
    .unwrap()
    .status
}

fn emergency(s: &mut Suite, by: &Addr, target: &Addr) -> Result<String, cosmwasm_std::StdError> {
    let res = s.exec(
        by,
        ExecuteMsg::EmergencyRevoke {
            addr: target.to_string(),
            reason: "compromised".into(),
        },
    )?;
    Ok(attr(&res, "outcome"))
}

/// Two colluding L1 keys out of five try to remove the three others and rule alone.
#[test]
fn two_l1_members_cannot_take_the_consortium() {
    let mut s = Suite::new();
    let (a, b, c) = (s.a.clone(), s.b.clone(), s.c.clone());
    let (d, e) = (s.addr("d"), s.addr("e"));
    admit_l1(&mut s, &d, 4);
    admit_l1(&mut s, &e, 5);
    s.advance(10, 2);
    // Each emergency action against an L1 only suspends it.
    for victim in [&c, &d, &e] {
        emergency(&mut s, &a, victim).unwrap();
        assert_eq!(emergency(&mut s, &b, victim).unwrap(), "suspended");
        assert_eq!(status(&s, victim), MemberStatus::Suspended);
    }
    // Nobody was revoked; the suspended members' weight still counts in the total.
    assert_eq!(s.query::<u64>(QueryMsg::TotalWeight {}), 5);
    // Ratifying the suspensions needs the normal quorum: 2 of 5 is not 2/3.
    let id = s
        .propose(
            &a,
            Action::Revoke {
                addr: c.to_string(),
                reason: "take over".into(),
                kind: RevocationKind::Compromise,
            },
        )
        .unwrap();
    let res = s.vote(&b, id, Vote::Yes).unwrap();
    assert_eq!(attr(&res, "status"), "open");
    // The suspended cannot vote (nor can they approve anything) ...
    assert!(s.vote(&c, id, Vote::No).is_err());
    // ... and the suspensions lapse unratified.
    s.advance(3 * 24 * 3600, 100);
    for victim in [&c, &d, &e] {
        assert_eq!(status(&s, victim), MemberStatus::Active);
    }
    // The same two cannot suspend them again straight away.
    emergency(&mut s, &a, &c).unwrap();
    let err = emergency(&mut s, &b, &c).unwrap_err().to_string();
    assert!(err.contains("cannot be suspended again before"), "{err}");
    // The majority, back, votes the proposal down and can act against the two.
    s.vote(&c, id, Vote::No).unwrap();
    let res = s.vote(&d, id, Vote::No).unwrap();
    assert_eq!(attr(&res, "status"), "rejected");
}

/// A revoked member keeps no say: no new vote, and its earlier ballot stops counting.
#[test]
fn a_revoked_member_cannot_vote_and_its_ballot_stops_counting() {
    let mut s = Suite::new();
    let (a, b, c, admin) = (s.a.clone(), s.b.clone(), s.c.clone(), s.admin.clone());
    let x = s.addr("x");
    let id = s
        .propose(
            &a,
            Action::Admit {
                addr: x.to_string(),
                pubkey: pubkey(9),
                level: TrustLevel::L3,
                weight: 0,
                endorsement: None,
            },
        )
        .unwrap();
    // c is revoked while the proposal is open (a later block): its vote is refused.
    s.advance(5, 1);
    let revoke_c = ExecuteMsg::AdminExecute {
        action: Action::Revoke {
            addr: c.to_string(),
            reason: "left".into(),
            kind: RevocationKind::Departure,
        },
    };
    s.exec(&admin, revoke_c).unwrap();
    assert_err(
        s.vote(&c, id, Vote::Yes).unwrap_err(),
        ContractError::NotL1Member {
            addr: c.to_string(),
        },
    );
    // b votes yes (2 of 3: passed), then is revoked: at execution its ballot no longer counts.
    assert_eq!(
        attr(&s.vote(&b, id, Vote::Yes).unwrap(), "status"),
        "passed"
    );
    let revoke_b = ExecuteMsg::AdminExecute {
        action: Action::Revoke {
            addr: b.to_string(),
            reason: "compromised".into(),
            kind: RevocationKind::Compromise,
        },
    };
    s.exec(&admin, revoke_b).unwrap();
    assert_err(
        s.exec(&a, ExecuteMsg::Execute { proposal_id: id })
            .unwrap_err(),
        ContractError::NoLongerPasses { id },
    );
    // and a revoked member cannot execute either
    assert_err(
        s.exec(&b, ExecuteMsg::Execute { proposal_id: id })
            .unwrap_err(),
        ContractError::NotL1Member {
            addr: b.to_string(),
        },
    );
}

/// A compromised L1 key could have minted L2 members: its endorsements stop counting.
#[test]
fn revoking_an_endorser_for_compromise_voids_its_endorsements() {
    let mut s = Suite::new();
    let (a, admin) = (s.a.clone(), s.admin.clone());
    let (peer, other) = (s.addr("peer"), s.addr("other"));
    let now = s.now();
    let e = s.endorsement(&a, 1, &peer, 10, &["settle"], now - 1, now + 1000);
    s.exec(
        &peer,
        ExecuteMsg::RegisterEndorsed {
            pubkey: pubkey(10),
            endorsement: e,
        },
    )
    .unwrap();
    let e2 = s.endorsement(&a, 1, &other, 11, &["settle"], now - 1, now + 1000);
    s.advance(10, 1);
    s.exec(
        &admin,
        ExecuteMsg::AdminExecute {
            action: Action::Revoke {
                addr: a.to_string(),
                reason: "key stolen".into(),
                kind: RevocationKind::Compromise,
            },
        },
    )
    .unwrap();
    let m: MemberResponse = s
        .query::<Option<MemberResponse>>(QueryMsg::Member {
            addr: peer.to_string(),
        })
        .unwrap();
    assert_eq!(m.effective_level, TrustLevel::L3, "endorsement void");
    assert!(!s.query::<bool>(QueryMsg::IsMember {
        addr: peer.to_string(),
        min_level: Some(TrustLevel::L2),
        scope: Some("settle".into()),
    }));
    // an endorsement it signed earlier cannot be registered any more
    assert_err(
        s.exec(
            &other,
            ExecuteMsg::RegisterEndorsed {
                pubkey: pubkey(11),
                endorsement: e2,
            },
        )
        .unwrap_err(),
        ContractError::EndorserNotL1 {
            addr: a.to_string(),
        },
    );
}

/// Endorsements are bounded in time by governance.
#[test]
fn endorsements_have_a_maximum_validity() {
    let mut s = Suite::new();
    let a = s.a.clone();
    let peer = s.addr("peer");
    let now = s.now();
    let max = Params::default().max_endorsement_secs;
    let long = s.endorsement(&a, 1, &peer, 10, &["settle"], now - 1, now + max);
    assert_err(
        s.exec(
            &peer,
            ExecuteMsg::RegisterEndorsed {
                pubkey: pubkey(10),
                endorsement: long,
            },
        )
        .unwrap_err(),
        ContractError::EndorsementTooLong { secs: max + 1, max },
    );
}

/// A passed proposal cannot wait for a convenient moment: it has an execution deadline.
#[test]
fn a_passed_proposal_expires_if_not_executed() {
    let mut s = Suite::new();
    let (a, b) = (s.a.clone(), s.b.clone());
    let x = s.addr("x");
    let id = s
        .propose(
            &a,
            Action::Admit {
                addr: x.to_string(),
                pubkey: pubkey(9),
                level: TrustLevel::L1,
                weight: 1,
                endorsement: None,
            },
        )
        .unwrap();
    s.vote(&b, id, Vote::Yes).unwrap();
    // voting period (7 days) + execution period (7 days)
    s.advance(14 * 24 * 3600 + 1, 1000);
    let p: ProposalResponse = s.query(QueryMsg::Proposal { proposal_id: id });
    assert_eq!(p.status, Status::Expired);
    assert_err(
        s.exec(&a, ExecuteMsg::Execute { proposal_id: id })
            .unwrap_err(),
        ContractError::WrongProposalStatus {
            id,
            status: "expired".into(),
            expected: "passed".into(),
        },
    );
    assert!(matches!(p.execute_by, cw_utils::Expiration::AtTime(_)));
    let _ = Duration::Time(0);
}

/// Stored strings are bounded and weight arithmetic is checked.
#[test]
fn strings_are_bounded_and_weights_checked() {
    let mut s = Suite::new();
    let (a, admin) = (s.a.clone(), s.admin.clone());
    let x = s.addr("x");
    let admit = Action::Admit {
        addr: x.to_string(),
        pubkey: pubkey(9),
        level: TrustLevel::L3,
        weight: 0,
        endorsement: None,
    };
    assert_err(
        s.exec(
            &a,
            ExecuteMsg::Propose {
                title: "t".into(),
                description: "d".repeat(MAX_DESCRIPTION + 1),
                action: admit,
            },
        )
        .unwrap_err(),
        ContractError::InvalidText {
            field: "description".into(),
            max: MAX_DESCRIPTION,
        },
    );
    let long_reason = Action::Revoke {
        addr: s.c.to_string(),
        reason: "r".repeat(129),
        kind: RevocationKind::Departure,
    };
    assert_err(
        s.propose(&a, long_reason).unwrap_err(),
        ContractError::InvalidText {
            field: "reason".into(),
            max: 128,
        },
    );
    assert_err(
        s.exec(
            &a,
            ExecuteMsg::EmergencyRevoke {
                addr: s.c.to_string(),
                reason: "r".repeat(129),
            },
        )
        .unwrap_err(),
        ContractError::InvalidText {
            field: "reason".into(),
            max: 128,
        },
    );
    assert_err(
        s.exec(
            &admin,
            ExecuteMsg::AdminExecute {
                action: Action::Admit {
                    addr: x.to_string(),
                    pubkey: pubkey(9),
                    level: TrustLevel::L1,
                    weight: u64::MAX,
                    endorsement: None,
                },
            },
        )
        .unwrap_err(),
        ContractError::WeightOverflow,
    );
}
