//! The pair end to end: submit at the gateway, packet to the settlement contract, answer back.

use cosmwasm_std::{from_json, Binary, IbcPacket, StdAck};
use garden_settlement::msg::{ExecuteMsg as SExec, QueryMsg as SQuery};
use garden_settlement::types::{Params, Totals};
use garden_wire::ibc::{ItemState, SettleAck};
use garden_wire::{nonce, Batch, RevocationKind};

use super::pair::{event_attr, Pair, PRICE, ST_CHANNEL};
use crate::msg::QueryMsg;
use crate::types::{BatchInfo, BatchStatus};
use crate::ItemError;

fn state(p: &mut Pair, a: &garden_wire::Attestation) -> (ItemState, Option<u64>, Option<u8>) {
    let s = p.item(a);
    (s.state, s.batch_id, s.code)
}

fn batch(p: &mut Pair, batch_id: u64) -> BatchInfo {
    p.gateway_query::<Option<BatchInfo>>(QueryMsg::Batch { batch_id })
        .expect("batch record")
}

fn totals(p: &mut Pair) -> Totals {
    p.settle_query(SQuery::Totals {})
}

#[test]
fn settles_over_the_channel_and_never_twice() {
    let mut p = Pair::new();
    let (alice, bob, provider) = (p.alice.clone(), p.bob.clone(), p.provider.clone());
    p.deposit(&bob, 1_000);
    let items: Vec<_> = (0..5)
        .map(|n| p.att(&alice, 2, n, 10))
        .chain((0..2).map(|n| p.att(&bob, 3, n, 1)))
        .collect();

    let (res, data, packet) = p.submit(&items);
    let packet = packet.expect("verified items are forwarded");
    assert_eq!((data.batch_id, data.forwarded, data.refused), (1, 7, 0));
    assert_eq!(data.codes, Binary::from(vec![0u8; 7]));
    assert!(res.attributes.iter().any(|a| a.key == "channel"));
    // the packet is the verified items, as a GWAB batch
    let sent = Batch::decode(packet.data.as_slice(), 10).unwrap();
    assert_eq!(sent.len(), 7);
    assert_eq!(sent.get(6).to_owned(), items[6]);
    for a in &items {
        assert_eq!(state(&mut p, a), (ItemState::Pending, Some(1), None));
    }
    assert_eq!(batch(&mut p, 1).status, BatchStatus::Pending);

    // pending items cannot be forwarded again
    let (_, again, none) = p.submit(&items);
    assert!(none.is_none(), "nothing forwarded, no packet");
    assert_eq!(
        again.codes,
        Binary::from(vec![ItemError::NoncePending as u8; 7])
    );

    let ack = p.relay(&packet);
    assert_eq!((ack.settled, ack.rejected), (7, 0));
    assert_eq!(ack.paid.u128(), 52 * PRICE);
    for a in &items {
        assert_eq!(state(&mut p, a).0, ItemState::Settled);
    }
    assert_eq!(p.sent[provider.as_str()], 52 * PRICE);
    assert_eq!(p.paid(&alice), 50 * PRICE);
    assert_eq!(p.paid(&bob), 2 * PRICE);
    let b = batch(&mut p, 1);
    assert_eq!(
        (b.status, b.settled, b.released),
        (BatchStatus::Acked, 7, 0)
    );
    assert_eq!(b.settlement_batch_id, Some(ack.batch_id));
    assert_eq!(b.ack_codes, Some(Binary::from(vec![0u8; 7])));

    // replay at the gateway: refused as settled, no packet
    let (_, replay, none) = p.submit(&items);
    assert!(none.is_none());
    assert_eq!(
        replay.codes,
        Binary::from(vec![ItemError::NonceReused as u8; 7])
    );
    // the same packet delivered again (a misbehaving relayer or gateway): nothing paid twice
    let ack2 = p.deliver(&packet);
    let ack2 = Pair::settle_ack(&ack2);
    assert_eq!((ack2.settled, ack2.rejected), (0, 7));
    assert!(ack2
        .codes
        .iter()
        .all(|c| *c == ItemError::NonceReused as u8));
    assert_eq!(p.sent[provider.as_str()], 52 * PRICE);
    let res = p.acknowledge(
        &packet,
        StdAck::success(cosmwasm_std::to_json_binary(&ack2).unwrap()).to_binary(),
    );
    assert!(res.attributes.iter().any(|a| a.key == "ignored"));
    assert_eq!(state(&mut p, &items[0]).0, ItemState::Settled);
    let t = totals(&mut p);
    assert_eq!(t.paid.u128(), 52 * PRICE);
    assert_eq!(t.deposited.u128(), 3_000_000 + 1_000);
}

#[test]
fn answers_emit_settled_and_released_events() {
    let mut p = Pair::new();
    let bob = p.bob.clone();
    p.deposit(&bob, 10 * PRICE);
    // the second needs 20 units and only 5 are left: rejected on the settlement chain
    let items = [p.att(&bob, 3, 0, 5), p.att(&bob, 3, 1, 20)];
    let (_, _, packet) = p.submit(&items);
    let packet = packet.unwrap();
    let ack = p.deliver(&packet);
    let res = p.acknowledge(&packet, ack);
    let settled = event_attr(&res.events, "garden_settled", "items").unwrap();
    let hex = cosmwasm_std::HexBinary::from(&items[0].signer[..]).to_hex();
    assert_eq!(settled, format!("{hex}:{}", items[0].nonce));
    assert_eq!(
        event_attr(&res.events, "garden_released", "reason").as_deref(),
        Some("rejected")
    );
    assert_eq!(
        event_attr(&res.events, "garden_released", "items").unwrap(),
        format!("{hex}:{}", items[1].nonce)
    );
    assert_eq!(
        event_attr(&res.events, "garden_released", "codes").as_deref(),
        Some("8")
    );
    assert_eq!(
        event_attr(&res.events, "garden_released", "count").as_deref(),
        Some("1")
    );
}

#[test]
fn rejected_on_settlement_is_released_and_settles_once_later() {
    let mut p = Pair::new();
    let (bob, provider) = (p.bob.clone(), p.provider.clone());
    p.deposit(&bob, 10 * PRICE);
    let items = [p.att(&bob, 3, 0, 5), p.att(&bob, 3, 1, 20)];
    let (_, _, packet) = p.submit(&items);
    let ack = p.relay(&packet.unwrap());
    assert_eq!(
        ack.codes,
        Binary::from(vec![0, ItemError::InsufficientEscrow as u8])
    );
    assert_eq!(state(&mut p, &items[0]).0, ItemState::Settled);
    assert_eq!(
        state(&mut p, &items[1]),
        (
            ItemState::Released,
            Some(1),
            Some(ItemError::InsufficientEscrow as u8)
        )
    );
    let b = batch(&mut p, 1);
    assert_eq!((b.settled, b.released), (1, 1));

    // resubmitted before the escrow grows: forwarded again, rejected again
    let (_, data, packet) = p.submit(&items[1..]);
    assert_eq!(data.forwarded, 1);
    let ack = p.relay(&packet.unwrap());
    assert_eq!(ack.settled, 0);
    assert_eq!(
        state(&mut p, &items[1]),
        (ItemState::Released, Some(2), Some(8))
    );

    // funded: it settles, once
    p.deposit(&bob, 1_000);
    let (_, _, packet) = p.submit(&items[1..]);
    let ack = p.relay(&packet.unwrap());
    assert_eq!(ack.settled, 1);
    assert_eq!(state(&mut p, &items[1]).0, ItemState::Settled);
    assert_eq!(p.paid(&bob), 25 * PRICE);
    assert_eq!(p.sent[provider.as_str()], 25 * PRICE);
    let (_, data, none) = p.submit(&items);
    assert!(none.is_none());
    assert_eq!(data.codes, Binary::from(vec![5u8, 5]));
}

#[test]
fn error_ack_releases_everything_and_changes_nothing_there() {
    let mut p = Pair::new();
    let (alice, gov) = (p.alice.clone(), p.gov.clone());
    // the settlement chain accepts 2 items a packet; the gateway forwards 3
    let small = Params {
        max_batch: 2,
        ..Params::default()
    };
    p.settle_exec(&gov, &[], SExec::UpdateParams { params: small })
        .unwrap();
    let items: Vec<_> = (0..3).map(|n| p.att(&alice, 2, n, 1)).collect();
    let (_, _, packet) = p.submit(&items);
    let packet = packet.unwrap();
    let ack = p.deliver(&packet);
    let StdAck::Error(why) = from_json::<StdAck>(&ack).unwrap() else {
        panic!("expected an error ack");
    };
    assert_eq!(why, "batch of 3 items exceeds the maximum of 2");
    assert_eq!(p.settle_query::<u64>(SQuery::BatchCount {}), 0);
    assert_eq!(totals(&mut p).paid.u128(), 0);

    let res = p.acknowledge(&packet, ack);
    assert_eq!(
        event_attr(&res.events, "garden_released", "reason").as_deref(),
        Some("error_ack")
    );
    assert_eq!(
        event_attr(&res.events, "garden_released", "error").as_deref(),
        Some(why.as_str())
    );
    for a in &items {
        assert_eq!(state(&mut p, a), (ItemState::Released, Some(1), None));
    }
    let b = batch(&mut p, 1);
    assert_eq!((b.status, b.released), (BatchStatus::ErrorAck, 3));
    assert_eq!(b.error.as_deref(), Some(why.as_str()));

    // fixed on the settlement side: the signer requeues, everything settles once
    p.settle_exec(
        &gov,
        &[],
        SExec::UpdateParams {
            params: Params::default(),
        },
    )
    .unwrap();
    let (_, _, packet) = p.submit(&items);
    assert_eq!(p.relay(&packet.unwrap()).settled, 3);
    assert_eq!(p.paid(&alice), 3 * PRICE);
}

#[test]
fn unreadable_packets_and_acks() {
    let mut p = Pair::new();
    let alice = p.alice.clone();
    // an undecodable batch: error ack naming the decoder's complaint, nothing written
    let items = [p.att(&alice, 2, 0, 1)];
    let (_, _, packet) = p.submit(&items);
    let packet = packet.unwrap();
    let mut garbage = packet.clone();
    garbage.data = Binary::from(b"GWAB\x02".to_vec());
    let ack = p.deliver(&garbage);
    assert_eq!(
        from_json::<StdAck>(&ack).unwrap(),
        StdAck::error("batch rejected: unsupported batch version 2 (this decoder reads 1)")
    );
    assert_eq!(p.settle_query::<u64>(SQuery::BatchCount {}), 0);
    // a success ack whose codes do not match the packet counts as an error ack: released
    let wrong = SettleAck {
        batch_id: 1,
        settled: 2,
        rejected: 0,
        paid: 0u128.into(),
        codes: Binary::from(vec![0, 0]),
    };
    let res = p.acknowledge(
        &packet,
        StdAck::success(cosmwasm_std::to_json_binary(&wrong).unwrap()).to_binary(),
    );
    assert_eq!(
        event_attr(&res.events, "garden_released", "error").as_deref(),
        Some("acknowledgement has 2 codes for 1 items")
    );
    assert_eq!(state(&mut p, &items[0]).0, ItemState::Released);
    // not JSON at all: released as well (already released here: ignored, never an error)
    let res = p.acknowledge(&packet, Binary::from(b"\x00".to_vec()));
    assert!(res.attributes.iter().any(|a| a.key == "ignored"));
}

#[test]
fn timeout_releases_everything_and_resubmission_settles_once() {
    let mut p = Pair::new();
    let (alice, provider) = (p.alice.clone(), p.provider.clone());
    let items: Vec<_> = (0..3).map(|n| p.att(&alice, 2, n, 2)).collect();
    let (_, _, packet) = p.submit(&items);
    let packet = packet.unwrap();
    assert_eq!(
        packet.timeout.timestamp(),
        Some(p.gateway_env.block.time.plus_seconds(600))
    );
    p.advance(700);
    let res = p.time_out(&packet);
    assert_eq!(
        event_attr(&res.events, "garden_released", "reason").as_deref(),
        Some("timeout")
    );
    for a in &items {
        assert_eq!(state(&mut p, a), (ItemState::Released, Some(1), None));
    }
    assert_eq!(batch(&mut p, 1).status, BatchStatus::TimedOut);

    let (_, data, packet2) = p.submit(&items);
    assert_eq!((data.batch_id, data.forwarded), (2, 3));
    assert_eq!(p.relay(&packet2.unwrap()).settled, 3);
    assert_eq!(p.paid(&alice), 6 * PRICE);
    // the timed-out packet can never arrive (IBC proved it was not received); were it
    // delivered anyway, its nonces are used: nothing is paid twice
    let late = Pair::settle_ack(&p.deliver(&packet));
    assert_eq!(late.settled, 0);
    assert_eq!(p.sent[provider.as_str()], 6 * PRICE);
}

#[test]
fn compromised_signer_or_provider_is_refused_at_the_gateway() {
    let mut p = Pair::new();
    let (mallory, provider) = (p.mallory.clone(), p.provider.clone());
    let items = [p.att(&mallory, 4, 0, 1), p.att(&mallory, 4, 1, 1)];
    p.revoke(&mallory, RevocationKind::Compromise);
    let (_, data, packet) = p.submit(&items);
    assert!(packet.is_none());
    assert_eq!(
        data.codes,
        Binary::from(vec![ItemError::SignerCompromised as u8; 2])
    );
    assert_eq!(state(&mut p, &items[0]).0, ItemState::Free);
    assert!(p
        .gateway_query::<Option<BatchInfo>>(QueryMsg::Batch { batch_id: 1 })
        .is_none());

    let alice = p.alice.clone();
    let a = p.att(&alice, 2, 0, 1);
    p.revoke(&provider, RevocationKind::Compromise);
    let (_, data, _) = p.submit(&[a]);
    assert_eq!(
        data.codes,
        Binary::from(vec![ItemError::ProviderCompromised as u8])
    );
}

#[test]
fn departed_after_signing_is_paid() {
    let mut p = Pair::new();
    let dave = p.dave.clone();
    let before = p.att(&dave, 5, 0, 3);
    p.advance(10);
    p.revoke(&dave, RevocationKind::Departure);
    p.advance(120);
    let after = p.att(&dave, 5, 1, 3);
    let (_, data, packet) = p.submit(&[before.clone(), after]);
    assert_eq!(
        data.codes,
        Binary::from(vec![0, ItemError::RevokedSigner as u8])
    );
    assert_eq!(p.relay(&packet.unwrap()).settled, 1);
    assert_eq!(state(&mut p, &before).0, ItemState::Settled);
    assert_eq!(p.paid(&dave), 3 * PRICE);
}

#[test]
fn each_gateway_refusal_is_coded_in_input_order() {
    let mut p = Pair::new();
    let (alice, bob, dave) = (p.alice.clone(), p.bob.clone(), p.dave.clone());
    let good = p.att(&alice, 2, 0, 1);
    let mut tampered = p.att(&alice, 2, 1, 1);
    tampered.quantity = 1_000;
    let mut unknown = p.att(&alice, 2, 2, 1);
    p.sign(&mut unknown, 9);
    unknown.signer = super::pair::key(9).verifying_key().to_bytes();
    p.sign(&mut unknown, 9);
    let not_consumer = p.att(&bob, 2, 3, 1); // alice's key, bob named as consumer
    let mut zero = p.att(&alice, 2, 4, 1);
    zero.quantity = 0;
    p.sign(&mut zero, 2);
    let mut future = p.att(&alice, 2, 5, 1);
    future.signed_at = p.now() + 3_600;
    future.nonce = nonce::first_nonce(nonce::epoch(future.signed_at));
    p.sign(&mut future, 2);
    let mut stale = p.att(&dave, 5, 0, 1);
    stale.signed_at = p.now() - 8 * 86_400;
    stale.period_start = stale.signed_at - 10;
    stale.period_end = stale.signed_at;
    stale.nonce = nonce::first_nonce(nonce::epoch(stale.signed_at));
    p.sign(&mut stale, 5);
    // signed for the settlement contract's domain: worthless here
    let mut elsewhere = p.att(&alice, 2, 6, 1);
    let domain = garden_wire::Domain {
        chain_id: super::pair::SETTLE,
        contract: p.settle_env.contract.address.as_str(),
    };
    elsewhere.signature = {
        use ed25519_dalek::Signer;
        super::pair::key(2)
            .sign(&elsewhere.signing_bytes(&domain))
            .to_bytes()
    };
    let items = [
        good.clone(),
        tampered,
        unknown,
        not_consumer,
        zero,
        future,
        stale,
        elsewhere,
        good.clone(),
    ];
    let (res, data, packet) = p.submit(&items);
    use ItemError::*;
    let want = [
        0,
        BadSignature as u8,
        UnknownSigner as u8,
        SignerNotConsumer as u8,
        ZeroQuantity as u8,
        FutureTimestamp as u8,
        StaleTimestamp as u8,
        BadSignature as u8,
        NonceReused as u8, // the same item twice goes once
    ];
    assert_eq!(data.codes, Binary::from(want.to_vec()));
    assert_eq!((data.forwarded, data.refused), (1, 8));
    let refused = res
        .attributes
        .iter()
        .find(|a| a.key == "refused_items")
        .unwrap();
    assert!(
        refused.value.starts_with("1:1,2:2,3:12"),
        "{}",
        refused.value
    );
    let packet = packet.unwrap();
    let sent = Batch::decode(packet.data.as_slice(), 10).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent.get(0).to_owned(), good);
}

#[test]
fn gateway_nonce_floor_cancels_unforwarded_items() {
    let mut p = Pair::new();
    let (alice, gov) = (p.alice.clone(), p.gov.clone());
    let items: Vec<_> = (0..3).map(|n| p.att(&alice, 2, n, 1)).collect();
    let floor = items[2].nonce;
    p.gateway_exec(
        &alice,
        crate::msg::ExecuteMsg::SetNonceFloor { nonce: floor },
    )
    .unwrap();
    assert_eq!(
        p.gateway_query::<u64>(QueryMsg::NonceFloor {
            signer: super::pair::pubkey(2)
        }),
        floor
    );
    let (_, data, _) = p.submit(&items);
    assert_eq!(data.codes, Binary::from(vec![18, 18, 0]));
    let err = p
        .gateway_exec(&gov, crate::msg::ExecuteMsg::SetNonceFloor { nonce: 5 })
        .unwrap_err();
    assert!(
        err.to_string().contains("is not a consortium member"),
        "{err}"
    );
    let err = p
        .gateway_exec(
            &alice,
            crate::msg::ExecuteMsg::SetNonceFloor { nonce: floor },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("is not above the current floor"),
        "{err}"
    );
}

#[test]
fn packet_from_another_channel_is_refused() {
    let mut p = Pair::new();
    let (alice, gov) = (p.alice.clone(), p.gov.clone());
    let items = [p.att(&alice, 2, 0, 1)];
    let (_, _, packet) = p.submit(&items);
    let packet = packet.unwrap();
    let mut stray: IbcPacket = packet.clone();
    stray.dest.channel_id = "channel-99".into();
    let ack = p.deliver(&stray);
    assert_eq!(
        from_json::<StdAck>(&ack).unwrap(),
        StdAck::error(format!(
            "packet on channel-99 refused: the gateway's channel is {ST_CHANNEL}"
        ))
    );
    assert_eq!(totals(&mut p).paid.u128(), 0);
    // the settlement's admin moves the route: the open channel is forgotten, its packets refused
    let res = p
        .settle_exec(
            &gov,
            &[],
            SExec::SetRoute {
                route: garden_wire::ibc::Route {
                    connection_id: "connection-9".into(),
                    counterparty_port: "wasm.elsewhere".into(),
                },
            },
        )
        .unwrap();
    assert!(res.attributes.iter().any(|a| a.key == "channel_forgotten"));
    let ack = p.deliver(&packet);
    assert_eq!(
        from_json::<StdAck>(&ack).unwrap(),
        StdAck::error(format!(
            "packet on {ST_CHANNEL} refused: no channel is open"
        ))
    );
    // the gateway releases the item on that error ack
    p.acknowledge(&packet, ack);
    assert_eq!(state(&mut p, &items[0]).0, ItemState::Released);
}

#[test]
fn ibc_only_settlement_refuses_what_needs_a_consortium() {
    let mut p = Pair::new();
    let alice = p.alice.clone();
    let bytes = garden_wire::batch::encode(&[p.att(&alice, 2, 0, 1)]).unwrap();
    let err = p
        .settle_exec(
            &alice,
            &[],
            SExec::SettleBatch {
                batch: bytes.into(),
                strict: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "settle_batch needs a consortium: this contract settles over IBC only (batches come from the gateway over its channel)"
    );
    let err = p
        .settle_exec(&alice, &[], SExec::SetNonceFloor { nonce: 1 })
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("set_nonce_floor needs a consortium"));
    let cfg: garden_settlement::msg::ConfigResponse = p.settle_query(SQuery::Config {});
    assert!(cfg.consortium.is_none());
    let ch: garden_wire::ibc::ChannelResponse = p.settle_query(SQuery::Channel {});
    assert_eq!(ch.channel.unwrap().channel_id, ST_CHANNEL);
}

#[test]
fn a_thousand_items_round_trip() {
    let mut p = Pair::new();
    let alice = p.alice.clone();
    let items: Vec<_> = (0..1_000).map(|n| p.att(&alice, 2, n, 1)).collect();
    let (_, data, packet) = p.submit(&items);
    assert_eq!(data.forwarded, 1_000);
    let packet = packet.unwrap();
    // re-encoded with one string table and one key: ~132 bytes an item
    assert!(packet.data.len() < 1_000 * garden_wire::batch::ITEM_LEN + 400);
    let ack = p.relay(&packet);
    assert_eq!(ack.settled, 1_000);
    assert_eq!(p.paid(&alice), 1_000 * PRICE);
    assert_eq!(state(&mut p, &items[999]).0, ItemState::Settled);
}
