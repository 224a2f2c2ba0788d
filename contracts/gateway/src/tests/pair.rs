//! The IBC pair in one process, no chain: the real consortium, gateway and settlement
//! contracts driven through their entry points (mock storage and API, real Ed25519). The
//! gateway reads the consortium's storage raw through the querier, as on chain; a packet is
//! what the gateway's `SendPacket` carries, delivered to the settlement's
//! `ibc_packet_receive`, whose acknowledgement goes back to the gateway's `ibc_packet_ack`
//! (or the gateway gets `ibc_packet_timeout`).
//!
//! Members: provider (L1, key 1), alice (L1 consumer, key 2), bob (L2 consumer endorsed by
//! alice for "settle", key 3), mallory (L1 consumer, key 4), dave (L1 consumer, key 5).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use cosmwasm_std::testing::{message_info, mock_env, MockApi, MockQuerier, MockStorage};
use cosmwasm_std::{
    coin, from_json, Addr, BankMsg, Binary, ContractResult, CosmosMsg, DepsMut, Env,
    IbcAcknowledgement, IbcBasicResponse, IbcChannel, IbcChannelCloseMsg, IbcChannelConnectMsg,
    IbcChannelOpenMsg, IbcEndpoint, IbcMsg, IbcOrder, IbcPacket, IbcPacketAckMsg,
    IbcPacketReceiveMsg, IbcPacketTimeoutMsg, IbcTimeout, QuerierWrapper, Response, SystemResult,
    Uint128, WasmQuery,
};
use ed25519_dalek::{Signer, SigningKey};
use garden_consortium::msg::{ExecuteMsg as CExec, InstantiateMsg as CInit, MemberInit};
use garden_consortium::types::{Action, SignedEndorsement};
use garden_settlement::msg::{
    ExecuteMsg as SExec, InstantiateMsg as SInit, QueryMsg as SQuery, SettleAck,
};
use garden_wire::attestation::{Attestation, Domain};
use garden_wire::endorsement::EndorsementBody;
use garden_wire::ibc::{ItemStatus, Route, SubmitResponse, CHANNEL_VERSION};
use garden_wire::{batch, nonce, RevocationKind, TrustLevel};

use crate::msg::{ExecuteMsg, InstantiateMsg, QueryMsg};
use crate::types::GatewayParams;
use crate::ContractError;

pub(super) const DENOM: &str = "ugarden";
pub(super) const PRICE: u128 = 7;
pub(super) const ZONE: &str = "garden-zone";
pub(super) const SETTLE: &str = "garden-settle";
pub(super) const ZONE_CONN: &str = "connection-0";
pub(super) const SETTLE_CONN: &str = "connection-4";
pub(super) const GW_CHANNEL: &str = "channel-0";
pub(super) const ST_CHANNEL: &str = "channel-7";

pub(super) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub(super) fn pubkey(seed: u8) -> Binary {
    Binary::from(key(seed).verifying_key().to_bytes().to_vec())
}

pub(super) fn port(addr: &Addr) -> String {
    format!("wasm.{addr}")
}

/// Raw reads of the consortium's storage at `consortium`; any other contract has none.
fn raw_querier(consortium: Addr, storage: Rc<RefCell<MockStorage>>) -> MockQuerier {
    let mut q = MockQuerier::default();
    q.update_wasm(move |w| match w {
        WasmQuery::Raw { contract_addr, .. } if *contract_addr != consortium.as_str() => {
            SystemResult::Ok(ContractResult::Ok(Binary::default()))
        }
        WasmQuery::Raw { key, .. } => {
            let v = cosmwasm_std::Storage::get(&*storage.borrow(), key.as_slice());
            SystemResult::Ok(ContractResult::Ok(Binary::from(v.unwrap_or_default())))
        }
        _ => SystemResult::Ok(ContractResult::Err("only raw queries here".into())),
    });
    q
}

pub(super) struct Pair {
    pub(super) api: MockApi,
    pub(super) consortium_env: Env,
    pub(super) gateway_env: Env,
    pub(super) settle_env: Env,
    consortium: Rc<RefCell<MockStorage>>,
    pub(super) gateway: MockStorage,
    pub(super) settlement: MockStorage,
    zone_querier: MockQuerier,
    settle_querier: MockQuerier,
    pub(super) provider: Addr,
    pub(super) alice: Addr,
    pub(super) bob: Addr,
    pub(super) mallory: Addr,
    pub(super) dave: Addr,
    pub(super) gov: Addr,
    pub(super) relayer: Addr,
    /// What the settlement contract sent out, per recipient (bank messages).
    pub(super) sent: BTreeMap<String, u128>,
    sequence: u64,
}

impl Pair {
    /// Contracts instantiated, channel open, provider's offer set, 1 000 000 escrowed by
    /// each consumer but bob (who deposits what a test needs).
    pub(super) fn new() -> Self {
        let mut p = Self::bare(None);
        p.open_channel();
        p.fund();
        p
    }

    /// Contracts instantiated with routes, no channel yet.
    pub(super) fn bare(params: Option<GatewayParams>) -> Self {
        let api = MockApi::default();
        let [provider, alice, bob, mallory, dave, gov, relayer] = [
            "provider", "alice", "bob", "mallory", "dave", "gov", "relayer",
        ]
        .map(|n| api.addr_make(n));
        let env_of = |chain: &str, name: &str| {
            let mut e = mock_env();
            e.block.chain_id = chain.into();
            e.contract.address = api.addr_make(name);
            e
        };
        let consortium = Rc::new(RefCell::new(MockStorage::default()));
        let consortium_env = env_of(ZONE, "consortium");
        let mut p = Pair {
            zone_querier: raw_querier(consortium_env.contract.address.clone(), consortium.clone()),
            consortium_env,
            gateway_env: env_of(ZONE, "gateway"),
            settle_env: env_of(SETTLE, "settlement"),
            settle_querier: MockQuerier::default(),
            consortium,
            gateway: MockStorage::default(),
            settlement: MockStorage::default(),
            provider,
            alice,
            bob,
            mallory,
            dave,
            gov,
            relayer,
            sent: BTreeMap::new(),
            sequence: 0,
            api,
        };
        let member = |a: &Addr, seed| MemberInit {
            addr: a.to_string(),
            pubkey: pubkey(seed),
            level: TrustLevel::L1,
            weight: 1,
        };
        let init = CInit {
            members: vec![
                member(&p.provider, 1),
                member(&p.alice, 2),
                member(&p.mallory, 4),
                member(&p.dave, 5),
            ],
            params: None,
            admin: Some(p.gov.to_string()),
        };
        p.with_consortium(|deps, env| {
            garden_consortium::contract::instantiate(deps, env, message_info(&p.gov, &[]), init)
                .map(|_| ())
                .unwrap()
        });
        p.endorse_bob();
        let gov = p.gov.clone();
        let init = InstantiateMsg {
            consortium: p.consortium_env.contract.address.to_string(),
            params,
            admin: Some(gov.to_string()),
            route: Some(Route {
                connection_id: ZONE_CONN.into(),
                counterparty_port: port(&p.settle_env.contract.address),
            }),
        };
        p.with_gateway(|deps, env| {
            crate::contract::instantiate(deps, env, message_info(&gov, &[]), init).unwrap()
        });
        let init = SInit {
            consortium: None,
            denom: DENOM.into(),
            params: None,
            admin: Some(gov.to_string()),
            route: Some(Route {
                connection_id: SETTLE_CONN.into(),
                counterparty_port: port(&p.gateway_env.contract.address),
            }),
        };
        p.with_settlement(|deps, env| {
            garden_settlement::contract::instantiate(deps, env, message_info(&gov, &[]), init)
                .unwrap()
        });
        // The provider offers; attestations in the tests are signed after everyone's admission.
        let provider = p.provider.clone();
        p.settle_exec(
            &provider,
            &[],
            SExec::SetOffer {
                kind: "storage".into(),
                unit: "gib-hour".into(),
                unit_price: Uint128::new(PRICE),
            },
        )
        .unwrap();
        p.advance(3_600);
        p
    }

    pub(super) fn fund(&mut self) {
        for who in [self.alice.clone(), self.mallory.clone(), self.dave.clone()] {
            self.deposit(&who, 1_000_000);
        }
    }

    pub(super) fn deposit(&mut self, who: &Addr, amount: u128) {
        self.settle_exec(who, &[coin(amount, DENOM)], SExec::Deposit {})
            .unwrap();
    }

    // --- the three contracts -------------------------------------------------------------

    fn with_consortium<T>(&self, f: impl FnOnce(DepsMut, Env) -> T) -> T {
        let mut s = self.consortium.borrow_mut();
        let querier = MockQuerier::<cosmwasm_std::Empty>::default();
        let deps = DepsMut {
            storage: &mut *s,
            api: &self.api,
            querier: QuerierWrapper::new(&querier),
        };
        f(deps, self.consortium_env.clone())
    }

    pub(super) fn with_gateway<T>(&mut self, f: impl FnOnce(DepsMut, Env) -> T) -> T {
        let deps = DepsMut {
            storage: &mut self.gateway,
            api: &self.api,
            querier: QuerierWrapper::new(&self.zone_querier),
        };
        f(deps, self.gateway_env.clone())
    }

    pub(super) fn with_settlement<T>(&mut self, f: impl FnOnce(DepsMut, Env) -> T) -> T {
        let deps = DepsMut {
            storage: &mut self.settlement,
            api: &self.api,
            querier: QuerierWrapper::new(&self.settle_querier),
        };
        f(deps, self.settle_env.clone())
    }

    pub(super) fn consortium_exec(&self, sender: &Addr, msg: CExec) {
        self.with_consortium(|deps, env| {
            garden_consortium::contract::execute(deps, env, message_info(sender, &[]), msg)
                .map(|_| ())
                .unwrap()
        })
    }

    pub(super) fn gateway_exec(
        &mut self,
        sender: &Addr,
        msg: ExecuteMsg,
    ) -> Result<Response, ContractError> {
        let info = message_info(sender, &[]);
        self.with_gateway(|deps, env| crate::contract::execute(deps, env, info, msg))
    }

    pub(super) fn settle_exec(
        &mut self,
        sender: &Addr,
        funds: &[cosmwasm_std::Coin],
        msg: SExec,
    ) -> Result<Response, garden_settlement::ContractError> {
        let info = message_info(sender, funds);
        let res = self.with_settlement(|deps, env| {
            garden_settlement::contract::execute(deps, env, info, msg)
        })?;
        self.count_sent(res.messages.iter().map(|m| &m.msg));
        Ok(res)
    }

    fn count_sent<'m>(&mut self, msgs: impl Iterator<Item = &'m CosmosMsg>) {
        for m in msgs {
            if let CosmosMsg::Bank(BankMsg::Send { to_address, amount }) = m {
                for c in amount {
                    *self.sent.entry(to_address.clone()).or_default() +=
                        c.amount.to_string().parse::<u128>().unwrap();
                }
            }
        }
    }

    pub(super) fn gateway_query<T: serde::de::DeserializeOwned>(&mut self, msg: QueryMsg) -> T {
        let bin = self
            .with_gateway(|deps, env| crate::contract::query(deps.as_ref(), env, msg))
            .unwrap();
        from_json(&bin).unwrap()
    }

    pub(super) fn settle_query<T: serde::de::DeserializeOwned>(&mut self, msg: SQuery) -> T {
        let bin = self
            .with_settlement(|deps, env| {
                garden_settlement::contract::query(deps.as_ref(), env, msg)
            })
            .unwrap();
        from_json(&bin).unwrap()
    }

    // --- membership ----------------------------------------------------------------------

    /// alice endorses bob at L2 for "settle" for 90 days.
    fn endorse_bob(&self) {
        let now = self.now();
        let scopes = vec!["settle".to_string()];
        let body = EndorsementBody {
            subject: self.bob.as_str(),
            subject_pubkey: &key(3).verifying_key().to_bytes(),
            scopes: &scopes,
            valid_from: now - 1,
            valid_until: now - 1 + 90 * 86_400,
        };
        let domain = Domain {
            chain_id: &self.consortium_env.block.chain_id,
            contract: self.consortium_env.contract.address.as_str(),
        };
        let endorsement = SignedEndorsement {
            endorser: self.alice.to_string(),
            scopes: scopes.clone(),
            valid_from: now - 1,
            valid_until: now - 1 + 90 * 86_400,
            signature: Binary::from(
                key(2)
                    .sign(&body.signing_bytes(&domain))
                    .to_bytes()
                    .to_vec(),
            ),
        };
        self.consortium_exec(
            &self.bob,
            CExec::RegisterEndorsed {
                pubkey: pubkey(3),
                endorsement,
            },
        );
    }

    pub(super) fn revoke(&self, who: &Addr, kind: RevocationKind) {
        let action = Action::Revoke {
            addr: who.to_string(),
            reason: "test".into(),
            kind,
        };
        self.consortium_exec(&self.gov, CExec::AdminExecute { action });
    }

    // --- clock and attestations ----------------------------------------------------------

    pub(super) fn now(&self) -> u64 {
        self.gateway_env.block.time.seconds()
    }

    /// Both chains' clocks move together (the tests do not need them apart).
    pub(super) fn advance(&mut self, secs: u64) {
        for env in [
            &mut self.consortium_env,
            &mut self.gateway_env,
            &mut self.settle_env,
        ] {
            env.block.time = env.block.time.plus_seconds(secs);
            env.block.height += 1 + secs / 5;
        }
    }

    /// A valid attestation by `consumer` (key `seed`) for `quantity` gib-hour, signed a
    /// minute ago for the zone and the gateway, with the `seq`-th nonce of that hour.
    pub(super) fn att(&self, consumer: &Addr, seed: u8, seq: u64, quantity: u64) -> Attestation {
        let signed_at = self.now() - 60;
        let mut a = Attestation {
            provider: self.provider.to_string(),
            consumer: consumer.to_string(),
            resource_id: "dataset/1".into(),
            quantity,
            unit: "gib-hour".into(),
            price_ref: "storage".into(),
            max_unit_price: PRICE,
            period_start: signed_at - 7_200,
            period_end: signed_at - 3_600,
            nonce: nonce::first_nonce(nonce::epoch(signed_at)) + seq,
            signed_at,
            signer: key(seed).verifying_key().to_bytes(),
            signature: [0; 64],
        };
        self.sign(&mut a, seed);
        a
    }

    pub(super) fn sign(&self, a: &mut Attestation, seed: u8) {
        let domain = Domain {
            chain_id: ZONE,
            contract: self.gateway_env.contract.address.as_str(),
        };
        a.signature = key(seed).sign(&a.signing_bytes(&domain)).to_bytes();
    }

    pub(super) fn item(&mut self, a: &Attestation) -> ItemStatus {
        self.gateway_query(QueryMsg::Item {
            signer: Binary::from(a.signer.to_vec()),
            nonce: a.nonce,
        })
    }

    // --- IBC -----------------------------------------------------------------------------

    fn channel(&self, mine: &Env, theirs: &Env, ids: (&str, &str), conn: &str) -> IbcChannel {
        IbcChannel::new(
            IbcEndpoint {
                port_id: port(&mine.contract.address),
                channel_id: ids.0.into(),
            },
            IbcEndpoint {
                port_id: port(&theirs.contract.address),
                channel_id: ids.1.into(),
            },
            IbcOrder::Unordered,
            CHANNEL_VERSION,
            conn,
        )
    }

    /// The gateway's end of the channel (`version` as proposed).
    pub(super) fn gateway_channel(&self, version: &str) -> IbcChannel {
        let mut c = self.channel(
            &self.gateway_env,
            &self.settle_env,
            (GW_CHANNEL, ST_CHANNEL),
            ZONE_CONN,
        );
        c.version = version.into();
        c
    }

    pub(super) fn settle_channel(&self) -> IbcChannel {
        self.channel(
            &self.settle_env,
            &self.gateway_env,
            (ST_CHANNEL, GW_CHANNEL),
            SETTLE_CONN,
        )
    }

    pub(super) fn gateway_open(
        &mut self,
        msg: IbcChannelOpenMsg,
    ) -> Result<Option<cosmwasm_std::Ibc3ChannelOpenResponse>, ContractError> {
        self.with_gateway(|deps, env| crate::ibc::ibc_channel_open(deps, env, msg))
    }

    pub(super) fn settle_open(
        &mut self,
        msg: IbcChannelOpenMsg,
    ) -> Result<Option<cosmwasm_std::Ibc3ChannelOpenResponse>, garden_settlement::ContractError>
    {
        self.with_settlement(|deps, env| garden_settlement::ibc::ibc_channel_open(deps, env, msg))
    }

    /// The handshake as Hermes runs it from the gateway's side with no version: init (""),
    /// try, ack, confirm.
    pub(super) fn open_channel(&mut self) {
        let answer = self
            .gateway_open(IbcChannelOpenMsg::new_init(self.gateway_channel("")))
            .unwrap()
            .unwrap();
        assert_eq!(answer.version, CHANNEL_VERSION);
        let try_msg = IbcChannelOpenMsg::new_try(self.settle_channel(), answer.version.clone());
        let answer = self.settle_open(try_msg).unwrap().unwrap();
        assert_eq!(answer.version, CHANNEL_VERSION);
        let ack =
            IbcChannelConnectMsg::new_ack(self.gateway_channel(CHANNEL_VERSION), answer.version);
        self.with_gateway(|deps, env| crate::ibc::ibc_channel_connect(deps, env, ack))
            .unwrap();
        let confirm = IbcChannelConnectMsg::new_confirm(self.settle_channel());
        self.with_settlement(|deps, env| {
            garden_settlement::ibc::ibc_channel_connect(deps, env, confirm)
        })
        .unwrap();
    }

    pub(super) fn gateway_close(
        &mut self,
        msg: IbcChannelCloseMsg,
    ) -> Result<IbcBasicResponse, ContractError> {
        self.with_gateway(|deps, env| crate::ibc::ibc_channel_close(deps, env, msg))
    }

    /// `submit_batch` of `items` by `sender`; the packet it sends, if any.
    pub(super) fn submit_as(
        &mut self,
        sender: &Addr,
        items: &[Attestation],
    ) -> Result<(Response, SubmitResponse, Option<IbcPacket>), ContractError> {
        let bytes = batch::encode(items).unwrap();
        let res = self.gateway_exec(
            sender,
            ExecuteMsg::SubmitBatch {
                batch: bytes.into(),
            },
        )?;
        let data: SubmitResponse = from_json(res.data.as_ref().expect("submit returns data"))?;
        let packets: Vec<IbcPacket> = res
            .messages
            .iter()
            .filter_map(|m| match &m.msg {
                CosmosMsg::Ibc(IbcMsg::SendPacket {
                    channel_id,
                    data,
                    timeout,
                }) => Some(self.packet(channel_id, data.clone(), timeout.clone())),
                _ => None,
            })
            .collect();
        assert!(packets.len() <= 1, "one packet per batch at most");
        Ok((res, data, packets.into_iter().next()))
    }

    pub(super) fn submit(
        &mut self,
        items: &[Attestation],
    ) -> (Response, SubmitResponse, Option<IbcPacket>) {
        let sender = self.relayer.clone();
        self.submit_as(&sender, items).unwrap()
    }

    /// The packet as the settlement chain sees it (ibc-core numbers it).
    fn packet(&mut self, channel_id: &str, data: Binary, timeout: IbcTimeout) -> IbcPacket {
        assert_eq!(channel_id, GW_CHANNEL);
        self.sequence += 1;
        IbcPacket::new(
            data,
            IbcEndpoint {
                port_id: port(&self.gateway_env.contract.address),
                channel_id: GW_CHANNEL.into(),
            },
            IbcEndpoint {
                port_id: port(&self.settle_env.contract.address),
                channel_id: ST_CHANNEL.into(),
            },
            self.sequence,
            timeout,
        )
    }

    /// The settlement chain receives `packet`: its acknowledgement (payments counted).
    pub(super) fn deliver(&mut self, packet: &IbcPacket) -> Binary {
        let msg = IbcPacketReceiveMsg::new(packet.clone(), self.relayer.clone());
        let res = self
            .with_settlement(|deps, env| garden_settlement::ibc::ibc_packet_receive(deps, env, msg))
            .expect("the settlement contract answers with an ack, not an Err");
        self.count_sent(res.messages.iter().map(|m| &m.msg));
        res.acknowledgement.expect("acknowledged at once")
    }

    pub(super) fn settle_ack(ack: &Binary) -> SettleAck {
        match from_json::<cosmwasm_std::StdAck>(ack).unwrap() {
            cosmwasm_std::StdAck::Success(data) => from_json(&data).unwrap(),
            cosmwasm_std::StdAck::Error(e) => panic!("error ack: {e}"),
        }
    }

    /// The gateway gets the acknowledgement of `packet`.
    pub(super) fn acknowledge(&mut self, packet: &IbcPacket, ack: Binary) -> IbcBasicResponse {
        let msg = IbcPacketAckMsg::new(
            IbcAcknowledgement::new(ack),
            packet.clone(),
            self.relayer.clone(),
        );
        self.with_gateway(|deps, env| crate::ibc::ibc_packet_ack(deps, env, msg))
            .expect("an answer never fails the relayer's transaction")
    }

    /// Receive, then acknowledge: what Hermes does. Returns the settlement's answer.
    pub(super) fn relay(&mut self, packet: &IbcPacket) -> SettleAck {
        let ack = self.deliver(packet);
        self.acknowledge(packet, ack.clone());
        Self::settle_ack(&ack)
    }

    pub(super) fn time_out(&mut self, packet: &IbcPacket) -> IbcBasicResponse {
        let msg = IbcPacketTimeoutMsg::new(packet.clone(), self.relayer.clone());
        self.with_gateway(|deps, env| crate::ibc::ibc_packet_timeout(deps, env, msg))
            .unwrap()
    }

    pub(super) fn paid(&mut self, consumer: &Addr) -> u128 {
        let paid: Uint128 = self.settle_query(SQuery::Paid {
            consumer: consumer.to_string(),
            provider: self.provider.to_string(),
        });
        paid.u128()
    }
}

/// The value of attribute `key` in a response's events (any event).
pub(super) fn event_attr(events: &[cosmwasm_std::Event], ty: &str, key: &str) -> Option<String> {
    events
        .iter()
        .filter(|e| e.ty == ty)
        .flat_map(|e| &e.attributes)
        .find(|a| a.key == key)
        .map(|a| a.value.clone())
}
