//! Instantiate, offers, escrow deposit/withdraw/refund, admin.

use cosmwasm_std::{coin, Uint128};
use cw_multi_test::Executor;
use cw_utils::PaymentError;
use garden_wire::TrustLevel;

use super::suite::{assert_err, settlement_contract, Suite, DENOM};
use crate::msg::*;
use crate::types::*;
use crate::ContractError;

#[test]
fn instantiate_validates_params() {
    let mut s = Suite::new();
    let code = s.app.store_code(settlement_contract());
    let gov = s.gov.clone();
    let mut try_params = |params: Params, denom: &str| {
        let msg = InstantiateMsg {
            consortium: Some(s.consortium.to_string()),
            denom: denom.into(),
            params: Some(params),
            admin: None,
            route: None,
        };
        s.app
            .instantiate_contract(code, gov.clone(), &msg, &[], "x", None)
            .unwrap_err()
    };
    let bad = |reason: &str| ContractError::InvalidParams {
        reason: reason.into(),
    };
    assert_err(
        try_params(
            Params {
                max_batch: 0,
                ..Params::default()
            },
            DENOM,
        ),
        bad("max_batch must be 1..=4000"),
    );
    assert_err(
        try_params(
            Params {
                max_batch: 4001,
                ..Params::default()
            },
            DENOM,
        ),
        bad("max_batch must be 1..=4000"),
    );
    assert_err(
        try_params(
            Params {
                verify_chunk: 201,
                ..Params::default()
            },
            DENOM,
        ),
        bad("verify_chunk must be 0..=200"),
    );
    assert_err(
        try_params(
            Params {
                window_secs: 0,
                ..Params::default()
            },
            DENOM,
        ),
        bad("window_secs must be > 0"),
    );
    assert_err(
        try_params(
            Params {
                withdrawal_notice_secs: 3600,
                ..Params::default()
            },
            DENOM,
        ),
        bad("withdrawal_notice_secs must be >= window_secs"),
    );
    assert_err(
        try_params(
            Params {
                scope: String::new(),
                ..Params::default()
            },
            DENOM,
        ),
        bad("scope must be 1..=128 bytes"),
    );
    assert_err(
        try_params(Params::default(), ""),
        bad("denom must be 1..=128 bytes"),
    );
    let cfg: ConfigResponse = s.query(QueryMsg::Config {});
    assert_eq!(
        (cfg.params, cfg.denom),
        (Params::default(), DENOM.to_string())
    );
}

#[test]
fn offers() {
    let mut s = Suite::new();
    let (provider, bob, carol, dave) = (
        s.provider.clone(),
        s.bob.clone(),
        s.carol.clone(),
        s.dave.clone(),
    );
    let outsider = s.app.api().addr_make("outsider");
    let offer = |kind: &str, price: u128| ExecuteMsg::SetOffer {
        kind: kind.into(),
        unit: "u".into(),
        unit_price: Uint128::new(price),
    };
    // L2 with the settle scope may offer; L3, L2 without the scope and outsiders may not
    s.exec(&bob, offer("compute", 3)).unwrap();
    for who in [&carol, &dave, &outsider] {
        assert_err(
            s.exec(who, offer("compute", 3)).unwrap_err(),
            ContractError::ProviderNotMember {
                addr: who.to_string(),
            },
        );
    }
    assert_err(
        s.exec(&provider, offer("", 3)).unwrap_err(),
        ContractError::InvalidOffer {
            field: "kind".into(),
        },
    );
    assert_err(
        s.exec(&provider, offer("k", 0)).unwrap_err(),
        ContractError::InvalidOffer {
            field: "unit_price".into(),
        },
    );
    assert_err(
        s.exec(
            &provider,
            ExecuteMsg::SetOffer {
                kind: "k".into(),
                unit: "x".repeat(129),
                unit_price: Uint128::one(),
            },
        )
        .unwrap_err(),
        ContractError::InvalidOffer {
            field: "unit".into(),
        },
    );
    for k in ["a", "b", "c"] {
        s.exec(&provider, offer(k, 1)).unwrap();
    }
    let page: OffersResponse = s.query(QueryMsg::ListOffers {
        provider: provider.to_string(),
        start_after: None,
        limit: Some(2),
    });
    assert_eq!(
        page.offers
            .iter()
            .map(|o| o.kind.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let page: OffersResponse = s.query(QueryMsg::ListOffers {
        provider: provider.to_string(),
        start_after: Some("b".into()),
        limit: None,
    });
    assert_eq!(
        page.offers
            .iter()
            .map(|o| o.kind.as_str())
            .collect::<Vec<_>>(),
        ["c", "storage"]
    );
    s.exec(&provider, ExecuteMsg::RemoveOffer { kind: "a".into() })
        .unwrap();
    let gone: Option<Offer> = s.query(QueryMsg::Offer {
        provider: provider.to_string(),
        kind: "a".into(),
    });
    assert!(gone.is_none());
    assert_err(
        s.exec(&provider, ExecuteMsg::RemoveOffer { kind: "a".into() })
            .unwrap_err(),
        ContractError::OfferNotFound {
            provider: provider.to_string(),
            kind: "a".into(),
        },
    );
}

#[test]
fn escrow_lifecycle() {
    let mut s = Suite::new();
    let (alice, bob, gov) = (s.alice.clone(), s.bob.clone(), s.gov.clone());
    let settlement = s.settlement.clone();
    assert_err(
        s.exec(&alice, ExecuteMsg::Deposit {}).unwrap_err(),
        PaymentError::NoFunds {},
    );
    assert_err(
        s.app
            .execute_contract(
                alice.clone(),
                settlement.clone(),
                &ExecuteMsg::Deposit {},
                &[coin(5, "other")],
            )
            .unwrap_err(),
        PaymentError::MissingDenom(DENOM.into()),
    );
    s.deposit(&alice, 1_000).unwrap();
    s.deposit(&alice, 500).unwrap();
    let e: Option<Escrow> = s.query(QueryMsg::Escrow {
        consumer: alice.to_string(),
    });
    assert_eq!(
        e,
        Some(Escrow {
            balance: Uint128::new(1_500),
            withdrawal: None
        })
    );
    assert_err(
        s.exec(&alice, ExecuteMsg::Withdraw {}).unwrap_err(),
        ContractError::NoWithdrawalRequested,
    );
    assert_err(
        s.exec(&bob, ExecuteMsg::RequestWithdrawal { amount: None })
            .unwrap_err(),
        ContractError::NoEscrow {
            consumer: bob.to_string(),
        },
    );
    assert_err(
        s.exec(
            &alice,
            ExecuteMsg::RequestWithdrawal {
                amount: Some(Uint128::zero()),
            },
        )
        .unwrap_err(),
        ContractError::ZeroAmount,
    );
    let start = s.now();
    s.exec(
        &alice,
        ExecuteMsg::RequestWithdrawal {
            amount: Some(Uint128::new(400)),
        },
    )
    .unwrap();
    let notice = 8 * 86400;
    assert_err(
        s.exec(&alice, ExecuteMsg::Withdraw {}).unwrap_err(),
        ContractError::NoticeRunning {
            available_at: start + notice,
            now: start,
        },
    );
    // cancel and ask again: the notice restarts
    s.exec(&alice, ExecuteMsg::CancelWithdrawal {}).unwrap();
    assert_err(
        s.exec(&alice, ExecuteMsg::CancelWithdrawal {}).unwrap_err(),
        ContractError::NoWithdrawalRequested,
    );
    s.exec(
        &alice,
        ExecuteMsg::RequestWithdrawal {
            amount: Some(Uint128::new(400)),
        },
    )
    .unwrap();
    s.advance(notice);
    let before = s.balance(&alice);
    s.exec(&alice, ExecuteMsg::Withdraw {}).unwrap();
    assert_eq!(s.balance(&alice), before + 400);
    // the governance admin refunds: first call files the request, second pays out
    s.exec(
        &gov,
        ExecuteMsg::Refund {
            consumer: alice.to_string(),
        },
    )
    .unwrap();
    assert_err(
        s.exec(
            &gov,
            ExecuteMsg::Refund {
                consumer: alice.to_string(),
            },
        )
        .unwrap_err(),
        "the withdrawal notice runs until",
    );
    s.advance(notice);
    s.exec(
        &gov,
        ExecuteMsg::Refund {
            consumer: alice.to_string(),
        },
    )
    .unwrap();
    assert_eq!(s.balance(&alice), before + 1_500);
    let e: Option<Escrow> = s.query(QueryMsg::Escrow {
        consumer: alice.to_string(),
    });
    assert!(e.is_none());
    let t: Totals = s.query(QueryMsg::Totals {});
    assert_eq!(
        (t.deposited.u128(), t.withdrawn.u128(), t.paid.u128()),
        (1_500, 1_500, 0)
    );
    assert_eq!(s.balance(&settlement), 0);
}

#[test]
fn admin_updates_params() {
    let mut s = Suite::new();
    let (alice, gov) = (s.alice.clone(), s.gov.clone());
    let p = Params {
        max_batch: 10,
        min_level: TrustLevel::L1,
        ..Params::default()
    };
    assert_err(
        s.exec(&alice, ExecuteMsg::UpdateParams { params: p.clone() })
            .unwrap_err(),
        ContractError::Admin(cw_controllers::AdminError::NotAdmin {}),
    );
    assert_err(
        s.exec(
            &gov,
            ExecuteMsg::UpdateParams {
                params: Params {
                    max_batch: 0,
                    ..p.clone()
                },
            },
        )
        .unwrap_err(),
        ContractError::InvalidParams {
            reason: "max_batch must be 1..=4000".into(),
        },
    );
    s.exec(&gov, ExecuteMsg::UpdateParams { params: p.clone() })
        .unwrap();
    let cfg: ConfigResponse = s.query(QueryMsg::Config {});
    assert_eq!(cfg.params, p);
    assert_err(
        s.exec(&alice, ExecuteMsg::UpdateAdmin { admin: None })
            .unwrap_err(),
        ContractError::Admin(cw_controllers::AdminError::NotAdmin {}),
    );
    s.exec(&gov, ExecuteMsg::UpdateAdmin { admin: None })
        .unwrap();
    assert_err(
        s.exec(&gov, ExecuteMsg::UpdateParams { params: p })
            .unwrap_err(),
        ContractError::Admin(cw_controllers::AdminError::NotAdmin {}),
    );
}

#[test]
fn migrate_checks_contract_name() {
    use cw_multi_test::{Contract, ContractWrapper};
    let mut s = Suite::new();
    let gov = s.gov.clone();
    let with_migrate: Box<dyn Contract<cosmwasm_std::Empty>> = Box::new(
        ContractWrapper::new(
            crate::contract::execute,
            crate::contract::instantiate,
            crate::contract::query,
        )
        .with_migrate(crate::contract::migrate),
    );
    let code = s.app.store_code(with_migrate);
    let init = InstantiateMsg {
        consortium: Some(s.consortium.to_string()),
        denom: DENOM.into(),
        params: None,
        admin: None,
        route: None,
    };
    let addr = s
        .app
        .instantiate_contract(code, gov.clone(), &init, &[], "s", Some(gov.to_string()))
        .unwrap();
    s.app
        .migrate_contract(gov.clone(), addr.clone(), &MigrateMsg {}, code)
        .unwrap();
    let v = cw2::query_contract_info(&s.app.wrap(), &addr).unwrap();
    assert_eq!(v.contract, crate::contract::CONTRACT_NAME);
    // the consortium's storage says another contract: refused
    let consortium_code: Box<dyn Contract<cosmwasm_std::Empty>> = Box::new(ContractWrapper::new(
        garden_consortium::contract::execute,
        garden_consortium::contract::instantiate,
        garden_consortium::contract::query,
    ));
    let ccode = s.app.store_code(consortium_code);
    let cinit = garden_consortium::msg::InstantiateMsg {
        members: vec![garden_consortium::msg::MemberInit {
            addr: gov.to_string(),
            pubkey: vec![1; 32].into(),
            level: TrustLevel::L1,
            weight: 1,
        }],
        params: None,
        admin: None,
    };
    let caddr = s
        .app
        .instantiate_contract(ccode, gov.clone(), &cinit, &[], "c", Some(gov.to_string()))
        .unwrap();
    let err = s
        .app
        .migrate_contract(gov, caddr, &MigrateMsg {}, code)
        .unwrap_err();
    assert_err(err, "crates.io:garden-consortium");
}

#[test]
fn consortium_must_be_a_garden_consortium() {
    let mut s = Suite::new();
    let (alice, gov) = (s.alice.clone(), s.gov.clone());
    let code = s.app.store_code(settlement_contract());
    // not a contract at all, then a contract of another kind (a settlement contract)
    for addr in [alice.to_string(), s.settlement.to_string()] {
        let init = InstantiateMsg {
            consortium: Some(addr.clone()),
            denom: DENOM.into(),
            params: None,
            admin: None,
            route: None,
        };
        let err = s
            .app
            .instantiate_contract(code, gov.clone(), &init, &[], "s", None)
            .unwrap_err();
        assert_err(err, ContractError::NotConsortium { addr });
    }
}
