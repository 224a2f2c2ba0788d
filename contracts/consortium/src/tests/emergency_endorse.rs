//! Emergency revocation and L1 endorsements of L2 members.

use garden_wire::membership::{MemberResponse, MemberStatus};
use garden_wire::{RevocationKind, TrustLevel};

use super::suite::{assert_err, attr, pubkey, Suite};
use crate::msg::*;
use crate::types::*;
use crate::ContractError;

#[test]
fn emergency_action_suspends_an_l1_until_ratified() {
    let mut s = Suite::new();
    let (a, b, c) = (s.a.clone(), s.b.clone(), s.c.clone());
    let outsider = s.addr("outsider");
    let er = |addr: &cosmwasm_std::Addr| ExecuteMsg::EmergencyRevoke {
        addr: addr.to_string(),
        reason: "key leaked".into(),
    };
    assert_err(
        s.exec(&outsider, er(&c)).unwrap_err(),
        ContractError::NotL1Member {
            addr: outsider.to_string(),
        },
    );
    assert_err(
        s.exec(&c, er(&c)).unwrap_err(),
        ContractError::SelfEmergencyRevoke,
    );
    assert_err(
        s.exec(&a, er(&outsider)).unwrap_err(),
        ContractError::UnknownMember {
            addr: outsider.to_string(),
        },
    );
    let res = s.exec(&a, er(&c)).unwrap();
    assert_eq!(
        attr(&res, "outcome"),
        "pending",
        "one approver is never enough"
    );
    assert_err(
        s.exec(&a, er(&c)).unwrap_err(),
        ContractError::AlreadyApproved {
            addr: a.to_string(),
            target: c.to_string(),
        },
    );
    let st: Option<EmergencyResponse> = s.query(QueryMsg::Emergency {
        addr: c.to_string(),
    });
    assert_eq!(st.unwrap().approvers, vec![a.clone()]);
    // the first approval expires after the window: b alone starts a new round
    s.advance(24 * 3600, 10);
    s.exec(&b, er(&c)).unwrap();
    let m: Option<MemberResponse> = s.query(QueryMsg::Member {
        addr: c.to_string(),
    });
    assert_eq!(m.unwrap().status, MemberStatus::Active);
    // a second approval inside the window suspends c (an L1): it is not revoked
    let res = s.exec(&a, er(&c)).unwrap();
    assert_eq!(attr(&res, "outcome"), "suspended");
    let m: MemberResponse = s
        .query::<Option<MemberResponse>>(QueryMsg::Member {
            addr: c.to_string(),
        })
        .unwrap();
    assert_eq!(m.status, MemberStatus::Suspended);
    let suspended_at = m.suspension.as_ref().unwrap().at;
    let r: RevocationsResponse = s.query(QueryMsg::RevocationsSince {
        height: 0,
        start_after: None,
        limit: None,
    });
    assert!(r.revocations.is_empty());
    // a suspended L1 can neither act in an emergency, nor propose, nor vote
    let until = m.suspension.unwrap().until;
    assert_err(
        s.exec(&c, er(&a)).unwrap_err(),
        ContractError::Suspended {
            addr: c.to_string(),
            until,
        },
    );
    // a normal proposal ratifies it: the revocation dates from the suspension
    s.advance(3600, 10);
    s.pass(Action::Revoke {
        addr: c.to_string(),
        reason: "confirmed".into(),
        kind: RevocationKind::Compromise,
    })
    .unwrap();
    let r: RevocationsResponse = s.query(QueryMsg::RevocationsSince {
        height: 0,
        start_after: None,
        limit: None,
    });
    assert_eq!(r.revocations.len(), 1);
    assert_eq!(r.revocations[0].kind, RevocationKind::Compromise);
    assert_eq!(r.revocations[0].effective, suspended_at);
    assert!(r.revocations[0].height > suspended_at.height);
    assert_err(
        s.exec(&a, er(&c)).unwrap_err(),
        ContractError::Revoked {
            addr: c.to_string(),
        },
    );
}

#[test]
fn emergency_against_a_non_l1_revokes_for_compromise() {
    let mut s = Suite::new();
    let (a, b, admin) = (s.a.clone(), s.b.clone(), s.admin.clone());
    let d = s.addr("d");
    s.exec(
        &admin,
        ExecuteMsg::AdminExecute {
            action: Action::Admit {
                addr: d.to_string(),
                pubkey: pubkey(4),
                level: TrustLevel::L3,
                weight: 0,
                endorsement: None,
            },
        },
    )
    .unwrap();
    let er = ExecuteMsg::EmergencyRevoke {
        addr: d.to_string(),
        reason: "key leaked".into(),
    };
    s.exec(&a, er.clone()).unwrap();
    let res = s.exec(&b, er).unwrap();
    assert_eq!(attr(&res, "outcome"), "revoked");
    let m: MemberResponse = s
        .query::<Option<MemberResponse>>(QueryMsg::Member {
            addr: d.to_string(),
        })
        .unwrap();
    assert_eq!(m.status, MemberStatus::Revoked);
    assert_eq!(m.revocation.unwrap().kind, RevocationKind::Compromise);
}

#[test]
fn l2_registration_with_endorsement() {
    let mut s = Suite::new();
    let a = s.a.clone();
    let peer = s.addr("peer");
    let now = s.now();
    let e = s.endorsement(
        &a,
        1,
        &peer,
        10,
        &["settle", "discovery"],
        now - 10,
        now + 1000,
    );
    s.exec(
        &peer,
        ExecuteMsg::RegisterEndorsed {
            pubkey: pubkey(10),
            endorsement: e.clone(),
        },
    )
    .unwrap();
    let m: MemberResponse = s
        .query::<Option<MemberResponse>>(QueryMsg::Member {
            addr: peer.to_string(),
        })
        .unwrap();
    assert_eq!(
        (m.level, m.effective_level, m.weight),
        (TrustLevel::L2, TrustLevel::L2, 0)
    );
    assert_eq!(m.endorsement.as_ref().unwrap().endorser, a);
    assert!(s.query::<bool>(QueryMsg::IsMember {
        addr: peer.to_string(),
        min_level: Some(TrustLevel::L2),
        scope: Some("settle".into())
    }));
    assert!(!s.query::<bool>(QueryMsg::IsMember {
        addr: peer.to_string(),
        min_level: Some(TrustLevel::L2),
        scope: Some("admin".into())
    }));
    // renewal with a later period
    let e2 = s.endorsement(&a, 1, &peer, 10, &["settle"], now, now + 5000);
    s.exec(
        &peer,
        ExecuteMsg::RegisterEndorsed {
            pubkey: pubkey(10),
            endorsement: e2,
        },
    )
    .unwrap();
    // once the endorsement lapses the member counts as L3
    s.advance(6000, 10);
    let m: MemberResponse = s
        .query::<Option<MemberResponse>>(QueryMsg::Member {
            addr: peer.to_string(),
        })
        .unwrap();
    assert_eq!(
        (m.level, m.effective_level),
        (TrustLevel::L2, TrustLevel::L3)
    );
    let t: TrustLevelResponse = s.query(QueryMsg::TrustLevel {
        addr: peer.to_string(),
    });
    assert_eq!(t.level, Some(TrustLevel::L3));
}

#[test]
fn endorsement_errors() {
    let mut s = Suite::new();
    let (a, b) = (s.a.clone(), s.b.clone());
    let peer = s.addr("peer");
    let now = s.now();
    let reg = |e| ExecuteMsg::RegisterEndorsed {
        pubkey: pubkey(10),
        endorsement: e,
    };
    // signed by b's key but claiming a as endorser
    let forged = SignedEndorsement {
        endorser: a.to_string(),
        ..s.endorsement(&b, 2, &peer, 10, &["settle"], now - 1, now + 100)
    };
    assert_err(
        s.exec(&peer, reg(forged)).unwrap_err(),
        ContractError::EndorsementBadSignature,
    );
    // endorsement for another subject key
    let other_key = s.endorsement(&a, 1, &peer, 11, &["settle"], now - 1, now + 100);
    assert_err(
        s.exec(&peer, reg(other_key)).unwrap_err(),
        ContractError::EndorsementBadSignature,
    );
    let outsider = s.addr("outsider");
    let not_l1 = s.endorsement(&outsider, 12, &peer, 10, &["settle"], now - 1, now + 100);
    assert_err(
        s.exec(&peer, reg(not_l1)).unwrap_err(),
        ContractError::EndorserNotL1 {
            addr: outsider.to_string(),
        },
    );
    let future = s.endorsement(&a, 1, &peer, 10, &["settle"], now + 10, now + 100);
    assert_err(
        s.exec(&peer, reg(future)).unwrap_err(),
        ContractError::EndorsementNotCurrent {
            valid_from: now + 10,
            valid_until: now + 100,
            now,
        },
    );
    let no_scope = s.endorsement(&a, 1, &peer, 10, &[], now - 1, now + 100);
    assert_err(
        s.exec(&peer, reg(no_scope)).unwrap_err(),
        ContractError::EndorsementMalformed {
            reason: "1..=16 scopes".into(),
        },
    );
    let backwards = s.endorsement(&a, 1, &peer, 10, &["settle"], now + 100, now + 100);
    assert_err(
        s.exec(&peer, reg(backwards)).unwrap_err(),
        ContractError::EndorsementMalformed {
            reason: "valid_from must be before valid_until".into(),
        },
    );
    let bad_key = ExecuteMsg::RegisterEndorsed {
        pubkey: vec![1; 33].into(),
        endorsement: s.endorsement(&a, 1, &peer, 10, &["settle"], now - 1, now + 100),
    };
    assert_err(
        s.exec(&peer, bad_key).unwrap_err(),
        ContractError::InvalidPubkey { len: 33 },
    );
    // an L1 member cannot demote itself through registration
    let self_e = s.endorsement(&a, 1, &b, 2, &["settle"], now - 1, now + 100);
    assert_err(
        s.exec(
            &b,
            ExecuteMsg::RegisterEndorsed {
                pubkey: pubkey(2),
                endorsement: self_e,
            },
        )
        .unwrap_err(),
        ContractError::AlreadyMember {
            addr: b.to_string(),
        },
    );
    // someone else's key
    let stolen = s.endorsement(&a, 1, &peer, 3, &["settle"], now - 1, now + 100);
    assert_err(
        s.exec(
            &peer,
            ExecuteMsg::RegisterEndorsed {
                pubkey: pubkey(3),
                endorsement: stolen,
            },
        )
        .unwrap_err(),
        ContractError::DuplicatePubkey {
            owner: s.c.to_string(),
        },
    );
    // a revoked L2 cannot come back by itself
    let ok = s.endorsement(&a, 1, &peer, 10, &["settle"], now - 1, now + 100);
    s.exec(&peer, reg(ok.clone())).unwrap();
    s.pass(Action::Revoke {
        addr: peer.to_string(),
        reason: "r".into(),
        kind: RevocationKind::Departure,
    })
    .unwrap();
    assert_err(
        s.exec(&peer, reg(ok)).unwrap_err(),
        ContractError::Revoked {
            addr: peer.to_string(),
        },
    );
    // admission of an L2 by vote with an endorsement
    let p2 = s.addr("p2");
    let e = s.endorsement(&a, 1, &p2, 20, &["settle"], now - 1, now + 100);
    s.pass(Action::Admit {
        addr: p2.to_string(),
        pubkey: pubkey(20),
        level: TrustLevel::L2,
        weight: 0,
        endorsement: Some(e),
    })
    .unwrap();
    let m: MemberResponse = s
        .query::<Option<MemberResponse>>(QueryMsg::MemberByPubkey { pubkey: pubkey(20) })
        .unwrap();
    assert_eq!(m.effective_level, TrustLevel::L2);
}
