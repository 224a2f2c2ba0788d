//! Handshake rules on both ends, routes, and what the gateway refuses as a whole.

use cosmwasm_std::{IbcChannelCloseMsg, IbcChannelOpenMsg, IbcOrder};
use garden_settlement::msg::ExecuteMsg as SExec;
use garden_wire::ibc::{ChannelResponse, ItemState, Route, CHANNEL_VERSION};
use garden_wire::{batch, nonce};

use super::pair::{port, Pair, GW_CHANNEL, ZONE_CONN};
use crate::msg::{ConfigResponse, ExecuteMsg, QueryMsg};
use crate::types::GatewayParams;
use crate::{ContractError, ItemError};

fn open_err(p: &mut Pair, msg: IbcChannelOpenMsg) -> String {
    p.gateway_open(msg).unwrap_err().to_string()
}

#[test]
fn wrong_order_version_connection_or_port_is_refused_at_open() {
    let mut p = Pair::bare(None);
    let mut c = p.gateway_channel("");
    c.order = IbcOrder::Ordered;
    assert!(open_err(&mut p, IbcChannelOpenMsg::new_init(c)).contains("unordered"));
    let c = p.gateway_channel("ics20-1");
    let e = open_err(&mut p, IbcChannelOpenMsg::new_init(c));
    assert!(
        e.contains("\"ics20-1\" refused") && e.contains(CHANNEL_VERSION),
        "{e}"
    );
    let mut c = p.gateway_channel("");
    c.connection_id = "connection-5".into();
    assert_eq!(
        open_err(&mut p, IbcChannelOpenMsg::new_init(c)),
        format!("channel on connection connection-5 refused: the route allows only {ZONE_CONN}")
    );
    let mut c = p.gateway_channel("");
    c.counterparty_endpoint.port_id = "transfer".into();
    let e = open_err(&mut p, IbcChannelOpenMsg::new_init(c));
    assert!(e.starts_with("counterparty port transfer refused"), "{e}");
    // the settlement end: a try with another version proposed by the counterparty
    let bad_try = IbcChannelOpenMsg::new_try(p.settle_channel(), "ics20-1");
    assert!(p.settle_open(bad_try).is_err());
    let mut c = p.settle_channel();
    c.counterparty_endpoint.port_id = "wasm.someone-else".into();
    let e = p
        .settle_open(IbcChannelOpenMsg::new_init(c))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("counterparty port wasm.someone-else refused"),
        "{e}"
    );
    // nothing opened meanwhile: submitting is a clear error
    let alice = p.alice.clone();
    let items = [p.att(&alice, 2, 0, 1)];
    let err = p.submit_as(&alice, &items).unwrap_err();
    assert!(matches!(err, ContractError::NoChannel { .. }), "{err}");
    assert!(err
        .to_string()
        .starts_with("no channel is open to the settlement chain"));
    // the right one opens
    p.open_channel();
    let ch: ChannelResponse = p.gateway_query(QueryMsg::Channel {});
    let open = ch.channel.unwrap();
    assert_eq!(open.channel_id, GW_CHANNEL);
    assert_eq!(open.counterparty_port, port(&p.settle_env.contract.address));
}

#[test]
fn one_channel_at_a_time_and_no_close_init() {
    let mut p = Pair::new();
    let mut second = p.gateway_channel("");
    second.endpoint.channel_id = "channel-1".into();
    assert_eq!(
        open_err(&mut p, IbcChannelOpenMsg::new_init(second.clone())),
        format!(
            "channel {GW_CHANNEL} is already open: one channel at a time (change the route with set_route to replace it)"
        )
    );
    let e = p
        .gateway_close(IbcChannelCloseMsg::new_init(
            p.gateway_channel(CHANNEL_VERSION),
        ))
        .unwrap_err();
    assert!(
        e.to_string().starts_with("closing the channel is refused"),
        "{e}"
    );
    // a close confirm of another channel changes nothing
    p.gateway_close(IbcChannelCloseMsg::new_confirm(second))
        .unwrap();
    let ch: ChannelResponse = p.gateway_query(QueryMsg::Channel {});
    assert!(ch.channel.is_some());
    // the other end closed: forgotten, nothing more is forwarded
    p.gateway_close(IbcChannelCloseMsg::new_confirm(
        p.gateway_channel(CHANNEL_VERSION),
    ))
    .unwrap();
    let ch: ChannelResponse = p.gateway_query(QueryMsg::Channel {});
    assert!(ch.channel.is_none());
    let alice = p.alice.clone();
    let items = [p.att(&alice, 2, 0, 1)];
    assert!(matches!(
        p.submit_as(&alice, &items),
        Err(ContractError::NoChannel { .. })
    ));
    // and a new one may open
    p.open_channel();
}

#[test]
fn set_route_is_admin_only_and_forgets_a_channel_off_route() {
    let mut p = Pair::new();
    let (alice, gov) = (p.alice.clone(), p.gov.clone());
    let route = Route {
        connection_id: "connection-1".into(),
        counterparty_port: "wasm.other".into(),
    };
    let err = p
        .gateway_exec(
            &alice,
            ExecuteMsg::SetRoute {
                route: route.clone(),
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "Caller is not admin");
    // the same route again keeps the channel
    let same = Route {
        connection_id: ZONE_CONN.into(),
        counterparty_port: port(&p.settle_env.contract.address),
    };
    let res = p
        .gateway_exec(&gov, ExecuteMsg::SetRoute { route: same })
        .unwrap();
    assert!(!res.attributes.iter().any(|a| a.key == "channel_forgotten"));
    let res = p
        .gateway_exec(
            &gov,
            ExecuteMsg::SetRoute {
                route: route.clone(),
            },
        )
        .unwrap();
    assert!(res
        .attributes
        .iter()
        .any(|a| a.key == "channel_forgotten" && a.value == GW_CHANNEL));
    let cfg: ConfigResponse = p.gateway_query(QueryMsg::Config {});
    assert_eq!(cfg.route, Some(route));
    let bad = Route {
        connection_id: String::new(),
        counterparty_port: "wasm.x".into(),
    };
    let err = p
        .gateway_exec(&gov, ExecuteMsg::SetRoute { route: bad })
        .unwrap_err();
    assert_eq!(err.to_string(), "route connection_id must be 1..=128 bytes");
    // a route is needed before any channel opens
    let mut q = Pair::bare(None);
    let gov = q.gov.clone();
    q.settle_exec(
        &gov,
        &[],
        SExec::SetRoute {
            route: Route {
                connection_id: "connection-4".into(),
                counterparty_port: "wasm.nobody".into(),
            },
        },
    )
    .unwrap();
    let e = q
        .settle_open(IbcChannelOpenMsg::new_init(q.settle_channel()))
        .unwrap_err();
    assert!(e.to_string().starts_with("counterparty port"), "{e}");
}

#[test]
fn params_are_bounded_and_batches_too() {
    let mut p = Pair::new();
    let (alice, gov) = (p.alice.clone(), p.gov.clone());
    for (params, reason) in [
        (
            GatewayParams {
                max_batch: 0,
                ..GatewayParams::default()
            },
            "max_batch must be 1..=4000",
        ),
        (
            GatewayParams {
                packet_timeout_secs: 10,
                ..GatewayParams::default()
            },
            "packet_timeout_secs must be 60..=86400",
        ),
        (
            GatewayParams {
                max_packet_bytes: 2_000_000,
                ..GatewayParams::default()
            },
            "max_packet_bytes must be 1000..=1000000",
        ),
        (
            GatewayParams {
                verify_chunk: 201,
                ..GatewayParams::default()
            },
            "verify_chunk must be 0..=200",
        ),
        (
            GatewayParams {
                scope: "s".repeat(129),
                ..GatewayParams::default()
            },
            "scope must be 1..=128 bytes",
        ),
    ] {
        let err = p
            .gateway_exec(&gov, ExecuteMsg::UpdateParams { params })
            .unwrap_err();
        assert_eq!(err.to_string(), format!("invalid parameters: {reason}"));
    }
    let err = p
        .gateway_exec(
            &alice,
            ExecuteMsg::UpdateParams {
                params: GatewayParams::default(),
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "Caller is not admin");
    let params = GatewayParams {
        max_batch: 2,
        ..GatewayParams::default()
    };
    p.gateway_exec(&gov, ExecuteMsg::UpdateParams { params })
        .unwrap();
    let items: Vec<_> = (0..3).map(|n| p.att(&alice, 2, n, 1)).collect();
    let err = p.submit_as(&alice, &items).unwrap_err();
    assert_eq!(err.to_string(), "batch of 3 items exceeds the maximum of 2");
    let err = p
        .gateway_exec(
            &alice,
            ExecuteMsg::SubmitBatch {
                batch: b"GWAB\x01\x00".to_vec().into(),
            },
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("batch rejected: batch truncated"),
        "{err}"
    );
    let err = p
        .gateway_exec(&alice, ExecuteMsg::Prune { limit: 0 })
        .unwrap_err();
    assert_eq!(err.to_string(), "prune limit must be 1..=1000");
}

#[test]
fn instantiate_checks_the_consortium_and_the_route() {
    let mut p = Pair::bare(None);
    let gov = p.gov.clone();
    let init = |consortium: String, route: Option<Route>| crate::msg::InstantiateMsg {
        consortium,
        params: None,
        admin: None,
        route,
    };
    for (msg, want) in [
        (
            init(gov.to_string(), None),
            format!("{gov} is not a garden-consortium contract"),
        ),
        (
            init(
                p.consortium_env.contract.address.to_string(),
                Some(Route {
                    connection_id: "c".into(),
                    counterparty_port: "p".repeat(200),
                }),
            ),
            "route counterparty_port must be 1..=128 bytes".into(),
        ),
    ] {
        let info = cosmwasm_std::testing::message_info(&gov, &[]);
        let err = p
            .with_gateway(|deps, env| crate::contract::instantiate(deps, env, info, msg))
            .unwrap_err();
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn pruning_forgets_old_hours_and_refuses_their_items() {
    let mut p = Pair::new();
    let alice = p.alice.clone();
    let items: Vec<_> = (0..3).map(|n| p.att(&alice, 2, n, 1)).collect();
    let (_, _, packet) = p.submit(&items[..2]);
    p.relay(&packet.unwrap());
    let (_, _, packet) = p.submit(&items[2..]);
    p.time_out(&packet.unwrap());
    assert_eq!(p.item(&items[0]).state, ItemState::Settled);
    assert_eq!(p.item(&items[2]).state, ItemState::Released);
    // eight days later: one settled bitmap and one released entry of that hour go
    p.advance(8 * 86_400);
    let res = p
        .gateway_exec(&alice, ExecuteMsg::Prune { limit: 100 })
        .unwrap();
    let pruned = res.attributes.iter().find(|a| a.key == "pruned").unwrap();
    assert_eq!(pruned.value, "2");
    assert_eq!(p.item(&items[0]).state, ItemState::Free);
    assert_eq!(p.item(&items[2]).state, ItemState::Free);
    let cfg: ConfigResponse = p.gateway_query(QueryMsg::Config {});
    assert_eq!(cfg.pruned_below, nonce::prune_horizon(p.now(), 7 * 86_400));
    // their hour is closed: refused whatever the window says
    let gov = p.gov.clone();
    let wide = GatewayParams {
        window_secs: 30 * 86_400,
        ..GatewayParams::default()
    };
    p.gateway_exec(&gov, ExecuteMsg::UpdateParams { params: wide })
        .unwrap();
    let (_, data, none) = p.submit(&items);
    assert!(none.is_none());
    assert_eq!(data.codes, vec![ItemError::NonceExpired as u8; 3]);
    let bytes = batch::encode(&items).unwrap();
    assert!(bytes.len() > 3 * batch::ITEM_LEN);
}

#[test]
fn migrate_keeps_the_version_rule() {
    let mut p = Pair::new();
    let res = p
        .with_gateway(|deps, env| crate::contract::migrate(deps, env, crate::msg::MigrateMsg {}))
        .unwrap();
    assert!(res
        .attributes
        .iter()
        .any(|a| a.key == "to_version" && a.value == crate::contract::CONTRACT_VERSION));
}

#[test]
fn a_packet_the_relayer_cannot_carry_is_refused_before_anything_is_written() {
    let mut p = Pair::new();
    let (alice, gov) = (p.alice.clone(), p.gov.clone());
    let small = GatewayParams {
        max_packet_bytes: 1_000,
        ..GatewayParams::default()
    };
    p.gateway_exec(&gov, ExecuteMsg::UpdateParams { params: small })
        .unwrap();
    let items: Vec<_> = (0..10).map(|n| p.att(&alice, 2, n, 1)).collect();
    let err = p.submit_as(&alice, &items).unwrap_err();
    assert!(
        matches!(err, ContractError::PacketTooLarge { max: 1_000, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("the limit is 1000: submit fewer items"),
        "{err}"
    );
    assert_eq!(p.item(&items[0]).state, ItemState::Free);
    assert_eq!(p.gateway_query::<u64>(QueryMsg::BatchCount {}), 0);
    // fewer items fit
    let (_, data, packet) = p.submit(&items[..4]);
    assert_eq!(data.forwarded, 4);
    assert!(packet.unwrap().data.len() <= 1_000);
}
