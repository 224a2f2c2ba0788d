//! Property test over random histories, driving the real entry points of both contracts
//! (mock storage and API, real Ed25519; the settlement contract reads the consortium's
//! storage raw, as on chain) with deposits, withdrawal requests, withdrawals, refunds,
//! signatures, submissions, departures, compromises, endorsement renewals, nonce floors and
//! time steps. After every step:
//!
//! * money is conserved: `sum(escrows) + paid + withdrawn == deposited`, and what the
//!   contract sent out (bank messages) is exactly `paid + withdrawn`;
//! * nothing is paid twice (a (key, nonce) settles at most once);
//! * nothing from a key revoked for compromise is paid after the compromise, nor to a
//!   provider revoked for compromise;
//! * nothing signed before a departure is refused for the departure (within the window);
//! * the provider's guarantee: an attestation signed while no withdrawal was pending and
//!   submitted within the window is never refused for a withdrawal, and every withdrawal
//!   that pays out was requested at least a window earlier.
//!
//! `cargo test -p garden-settlement --lib model` runs 32 cases; the long run documented in
//! docs/CONTRACTS.md sets `GARDEN_MODEL_CASES=1000000` (release build).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use cosmwasm_std::testing::{message_info, mock_env, MockApi, MockQuerier, MockStorage};
use cosmwasm_std::{
    coin, from_json, Addr, BankMsg, Binary, ContractResult, CosmosMsg, DepsMut, Env,
    QuerierWrapper, Response, SystemResult, Uint128, WasmQuery,
};
use ed25519_dalek::{Signer, SigningKey};
use garden_consortium::msg::{ExecuteMsg as CExec, InstantiateMsg as CInit, MemberInit};
use garden_consortium::types::{Action, SignedEndorsement};
use garden_wire::attestation::{Attestation, Domain};
use garden_wire::endorsement::EndorsementBody;
use garden_wire::{batch, nonce, RevocationKind, TrustLevel};
use proptest::prelude::*;

use crate::msg::{ExecuteMsg, InstantiateMsg, SettleBatchResponse};
use crate::state::{ESCROWS, TOTALS};
use crate::types::{ItemError, Params};

const DENOM: &str = "ugarden";
const PRICE: u128 = 3;
const WINDOW: u64 = 7 * 86_400;

/// Members: 0 = p1 (L1 provider), 1 = alice (L1 consumer), 2 = bob (L2 consumer, endorsed
/// by alice), 3 = p2 (L2 provider, endorsed by alice).
const NAMES: [&str; 4] = ["p1", "alice", "bob", "p2"];
const CONSUMERS: [usize; 2] = [1, 2];
const PROVIDERS: [usize; 2] = [0, 3];

fn key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[i as u8 + 1; 32])
}

#[derive(Debug, Clone)]
enum Op {
    Deposit(usize, u128),
    Request(usize, Option<u128>),
    Cancel(usize),
    Withdraw(usize),
    Refund(usize),
    Sign(usize, usize, u64),
    Submit(Vec<usize>),
    Revoke(usize, bool),
    Renew,
    Floor(usize),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let consumer = prop_oneof![Just(1usize), Just(2usize)];
    prop_oneof![
        3 => (consumer.clone(), 1u128..400).prop_map(|(c, a)| Op::Deposit(c, a)),
        1 => (consumer.clone(), proptest::option::of(1u128..300)).prop_map(|(c, a)| Op::Request(c, a)),
        1 => consumer.clone().prop_map(Op::Cancel),
        1 => consumer.clone().prop_map(Op::Withdraw),
        1 => consumer.clone().prop_map(Op::Refund),
        5 => (consumer.clone(), prop_oneof![Just(0usize), Just(3usize)], 1u64..30)
            .prop_map(|(c, p, q)| Op::Sign(c, p, q)),
        4 => proptest::collection::vec(0usize..64, 1..5).prop_map(Op::Submit),
        1 => (0usize..4, any::<bool>()).prop_map(|(m, c)| Op::Revoke(m, c)),
        1 => Just(Op::Renew),
        1 => consumer.prop_map(Op::Floor),
        3 => prop_oneof![1u64..600, 3_600u64..86_400, 86_400u64..4 * 86_400].prop_map(Op::Wait),
    ]
}

/// What the model remembers of an attestation it signed.
struct Signed {
    att: Attestation,
    consumer: usize,
    provider: usize,
    /// A withdrawal was pending for the consumer when it was signed.
    under_withdrawal: bool,
}

struct World {
    api: MockApi,
    env: Env,
    consortium_env: Env,
    consortium: Rc<RefCell<MockStorage>>,
    settlement: MockStorage,
    querier: MockQuerier,
    addrs: Vec<Addr>,
    gov: Addr,
    counters: Vec<nonce::Counter>,
    signed: Vec<Signed>,
    paid_nonces: BTreeSet<([u8; 32], u64)>,
    compromised_at: BTreeMap<usize, u64>,
    departed_at: BTreeMap<usize, u64>,
    /// Outstanding withdrawal request time per consumer.
    requested_at: BTreeMap<usize, u64>,
    sent_out: u128,
}

fn consortium_querier(storage: Rc<RefCell<MockStorage>>) -> MockQuerier {
    let mut q = MockQuerier::default();
    q.update_wasm(move |w| match w {
        WasmQuery::Raw { key, .. } => {
            let v = cosmwasm_std::Storage::get(&*storage.borrow(), key.as_slice());
            SystemResult::Ok(ContractResult::Ok(Binary::from(v.unwrap_or_default())))
        }
        _ => SystemResult::Ok(ContractResult::Err("only raw queries here".into())),
    });
    q
}

impl World {
    fn new() -> Self {
        let api = MockApi::default();
        let addrs: Vec<Addr> = NAMES.iter().map(|n| api.addr_make(n)).collect();
        let gov = api.addr_make("gov");
        let mut consortium_env = mock_env();
        consortium_env.contract.address = api.addr_make("consortium");
        let consortium = Rc::new(RefCell::new(MockStorage::default()));
        let querier = consortium_querier(consortium.clone());
        let mut w = World {
            env: mock_env(),
            consortium_env,
            consortium,
            settlement: MockStorage::default(),
            querier,
            addrs,
            gov,
            counters: vec![nonce::Counter::default(); 4],
            signed: Vec::new(),
            paid_nonces: BTreeSet::new(),
            compromised_at: BTreeMap::new(),
            departed_at: BTreeMap::new(),
            requested_at: BTreeMap::new(),
            sent_out: 0,
            api,
        };
        let members = [0, 1]
            .map(|i| MemberInit {
                addr: w.addrs[i].to_string(),
                pubkey: Binary::from(key(i).verifying_key().to_bytes().to_vec()),
                level: TrustLevel::L1,
                weight: 1,
            })
            .to_vec();
        let init = CInit {
            members,
            params: None,
            admin: Some(w.gov.to_string()),
        };
        w.with_consortium(|deps, env| {
            garden_consortium::contract::instantiate(
                deps,
                env,
                message_info(&Addr::unchecked("x"), &[]),
                init,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        })
        .unwrap();
        w.renew();
        let init = InstantiateMsg {
            consortium: Some(w.consortium_env.contract.address.to_string()),
            denom: DENOM.into(),
            params: Some(Params {
                window_secs: WINDOW,
                withdrawal_notice_secs: WINDOW + 86_400,
                ..Params::default()
            }),
            admin: Some(w.gov.to_string()),
            route: None,
        };
        let gov = w.gov.clone();
        w.settle_exec(&gov, &[], |deps, env, info| {
            crate::contract::instantiate(deps, env, info, init)
        })
        .unwrap();
        for p in PROVIDERS {
            let msg = ExecuteMsg::SetOffer {
                kind: "cpu".into(),
                unit: "cpu-second".into(),
                unit_price: Uint128::new(PRICE),
            };
            w.execute(p, msg, &[]).unwrap();
        }
        w.wait(3_600);
        w
    }

    fn with_consortium<T>(&mut self, f: impl FnOnce(DepsMut, Env) -> T) -> T {
        let storage = self.consortium.clone();
        let mut s = storage.borrow_mut();
        let querier = MockQuerier::<cosmwasm_std::Empty>::default();
        let deps = DepsMut {
            storage: &mut *s,
            api: &self.api,
            querier: QuerierWrapper::new(&querier),
        };
        f(deps, self.consortium_env.clone())
    }

    fn consortium_exec(&mut self, sender: &Addr, msg: CExec) -> Result<(), String> {
        let info = message_info(sender, &[]);
        self.with_consortium(|deps, env| {
            garden_consortium::contract::execute(deps, env, info, msg)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn settle_exec(
        &mut self,
        sender: &Addr,
        funds: &[cosmwasm_std::Coin],
        f: impl FnOnce(
            DepsMut,
            Env,
            cosmwasm_std::MessageInfo,
        ) -> Result<Response, crate::ContractError>,
    ) -> Result<Response, String> {
        let deps = DepsMut {
            storage: &mut self.settlement,
            api: &self.api,
            querier: QuerierWrapper::new(&self.querier),
        };
        let res =
            f(deps, self.env.clone(), message_info(sender, funds)).map_err(|e| e.to_string())?;
        for m in &res.messages {
            if let CosmosMsg::Bank(BankMsg::Send { amount, .. }) = &m.msg {
                for c in amount {
                    self.sent_out += c.amount.to_string().parse::<u128>().expect("amount");
                }
            }
        }
        Ok(res)
    }

    fn execute(
        &mut self,
        who: usize,
        msg: ExecuteMsg,
        funds: &[cosmwasm_std::Coin],
    ) -> Result<Response, String> {
        let sender = self.addrs[who].clone();
        self.settle_exec(&sender, funds, |d, e, i| {
            crate::contract::execute(d, e, i, msg)
        })
    }

    fn now(&self) -> u64 {
        self.env.block.time.seconds()
    }

    fn wait(&mut self, secs: u64) {
        for env in [&mut self.env, &mut self.consortium_env] {
            env.block.time = env.block.time.plus_seconds(secs);
            env.block.height += 1 + secs / 5;
        }
    }

    /// alice (re)endorses bob and p2 for "settle" for 60 days from now.
    fn renew(&mut self) {
        let now = self.now();
        for who in [2, 3] {
            let scopes = vec!["settle".to_string()];
            let body = EndorsementBody {
                subject: self.addrs[who].as_str(),
                subject_pubkey: &key(who).verifying_key().to_bytes(),
                scopes: &scopes,
                valid_from: now,
                valid_until: now + 60 * 86_400,
            };
            let domain = Domain {
                chain_id: &self.consortium_env.block.chain_id,
                contract: self.consortium_env.contract.address.as_str(),
            };
            let signature = key(1)
                .sign(&body.signing_bytes(&domain))
                .to_bytes()
                .to_vec();
            let endorsement = SignedEndorsement {
                endorser: self.addrs[1].to_string(),
                scopes: scopes.clone(),
                valid_from: now,
                valid_until: now + 60 * 86_400,
                signature: Binary::from(signature),
            };
            let msg = CExec::RegisterEndorsed {
                pubkey: Binary::from(key(who).verifying_key().to_bytes().to_vec()),
                endorsement,
            };
            let sender = self.addrs[who].clone();
            // refused once alice or the subject is revoked: fine, the model goes on
            let _ = self.consortium_exec(&sender, msg);
        }
    }

    fn sign(&mut self, consumer: usize, provider: usize, quantity: u64) {
        let signed_at = self.now();
        let Ok(n) = self.counters[consumer].next(signed_at) else {
            return;
        };
        let mut att = Attestation {
            provider: self.addrs[provider].to_string(),
            consumer: self.addrs[consumer].to_string(),
            resource_id: "r".into(),
            quantity,
            unit: "cpu-second".into(),
            price_ref: "cpu".into(),
            max_unit_price: PRICE,
            period_start: signed_at.saturating_sub(60),
            period_end: signed_at,
            nonce: n,
            signed_at,
            signer: key(consumer).verifying_key().to_bytes(),
            signature: [0; 64],
        };
        let domain = Domain {
            chain_id: &self.env.block.chain_id,
            contract: self.env.contract.address.as_str(),
        };
        att.signature = key(consumer).sign(&att.signing_bytes(&domain)).to_bytes();
        self.signed.push(Signed {
            att,
            consumer,
            provider,
            under_withdrawal: self.requested_at.contains_key(&consumer),
        });
    }

    fn submit(&mut self, picks: &[usize]) -> Result<(), TestCaseError> {
        if self.signed.is_empty() {
            return Ok(());
        }
        let chosen: Vec<usize> = picks.iter().map(|p| p % self.signed.len()).collect();
        let items: Vec<Attestation> = chosen.iter().map(|i| self.signed[*i].att.clone()).collect();
        let bytes = batch::encode(&items).expect("encodable");
        let msg = ExecuteMsg::SettleBatch {
            batch: bytes.into(),
            strict: None,
        };
        let res = self.execute(0, msg, &[]).map_err(TestCaseError::fail)?;
        let data: SettleBatchResponse = from_json(res.data.expect("data")).expect("response");
        let now = self.now();
        for (i, code) in chosen.iter().zip(data.codes.iter()) {
            let s = &self.signed[*i];
            let a = &s.att;
            if *code == 0 {
                prop_assert!(self.paid_nonces.insert((a.signer, a.nonce)), "paid twice");
                for who in [s.consumer, s.provider] {
                    prop_assert!(
                        !self.compromised_at.contains_key(&who),
                        "paid after the compromise of {}",
                        NAMES[who]
                    );
                }
            }
            let in_window = now <= a.signed_at + WINDOW;
            let departed_after =
                |who: usize| self.departed_at.get(&who).is_some_and(|t| a.signed_at < *t);
            if in_window && departed_after(s.consumer) {
                prop_assert_ne!(
                    *code,
                    ItemError::RevokedSigner as u8,
                    "signed before the departure"
                );
            }
            if in_window
                && departed_after(s.provider)
                && !self.compromised_at.contains_key(&s.provider)
            {
                let c = *code;
                let by_departure = c == ItemError::ProviderNotMember as u8
                    && self.departed_at.contains_key(&s.provider);
                let endorsement_gone = s.provider == 3 && self.compromised_at.contains_key(&1);
                prop_assert!(
                    !by_departure || endorsement_gone,
                    "provider refused for a later departure"
                );
            }
            if in_window && !s.under_withdrawal {
                prop_assert_ne!(
                    *code,
                    ItemError::WithdrawalPending as u8,
                    "guarantee broken"
                );
            }
        }
        Ok(())
    }

    fn check_money(&self) -> Result<(), TestCaseError> {
        let t = TOTALS.load(&self.settlement).expect("totals");
        let escrows: u128 = CONSUMERS
            .iter()
            .map(|c| {
                ESCROWS
                    .may_load(&self.settlement, &self.addrs[*c])
                    .expect("escrow")
                    .map_or(0, |e| e.balance.u128())
            })
            .sum();
        prop_assert_eq!(
            escrows + t.paid.u128() + t.withdrawn.u128(),
            t.deposited.u128()
        );
        prop_assert_eq!(self.sent_out, t.paid.u128() + t.withdrawn.u128());
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let now = self.now();
        match op {
            Op::Deposit(c, a) => {
                self.execute(*c, ExecuteMsg::Deposit {}, &[coin(*a, DENOM)])
                    .map_err(TestCaseError::fail)?;
            }
            Op::Request(c, a) => {
                let msg = ExecuteMsg::RequestWithdrawal {
                    amount: a.map(Uint128::new),
                };
                if self.execute(*c, msg, &[]).is_ok() {
                    self.requested_at.insert(*c, now);
                }
            }
            Op::Cancel(c) => {
                if self
                    .execute(*c, ExecuteMsg::CancelWithdrawal {}, &[])
                    .is_ok()
                {
                    self.requested_at.remove(c);
                }
            }
            Op::Withdraw(c) | Op::Refund(c) => {
                let msg = match op {
                    Op::Withdraw(_) => ExecuteMsg::Withdraw {},
                    _ => ExecuteMsg::Refund {
                        consumer: self.addrs[*c].to_string(),
                    },
                };
                let pending = self.requested_at.get(c).copied();
                if let Ok(res) = self.execute(*c, msg, &[]) {
                    let paid_out = res.attributes.iter().any(|a| a.key == "amount")
                        && !res
                            .attributes
                            .iter()
                            .any(|a| a.value == "request_withdrawal");
                    if paid_out {
                        let r = pending.expect("a payout needs a request");
                        prop_assert!(now >= r + WINDOW, "money left before the notice");
                        self.requested_at.remove(c);
                    } else {
                        self.requested_at.insert(*c, now);
                    }
                }
            }
            Op::Sign(c, p, q) => self.sign(*c, *p, *q),
            Op::Submit(picks) => self.submit(picks)?,
            Op::Revoke(m, compromise) => {
                let kind = if *compromise {
                    RevocationKind::Compromise
                } else {
                    RevocationKind::Departure
                };
                let msg = CExec::AdminExecute {
                    action: Action::Revoke {
                        addr: self.addrs[*m].to_string(),
                        reason: "model".into(),
                        kind,
                    },
                };
                let gov = self.gov.clone();
                if self.consortium_exec(&gov, msg).is_ok() {
                    let map = if *compromise {
                        &mut self.compromised_at
                    } else {
                        &mut self.departed_at
                    };
                    map.insert(*m, now);
                }
            }
            Op::Renew => self.renew(),
            Op::Floor(c) => {
                // cancel what this consumer signed so far; those attestations leave the model
                let floor = nonce::first_nonce(nonce::epoch(now));
                if self
                    .execute(*c, ExecuteMsg::SetNonceFloor { nonce: floor }, &[])
                    .is_ok()
                {
                    self.signed
                        .retain(|s| s.consumer != *c || s.att.nonce >= floor);
                }
            }
            Op::Wait(secs) => self.wait(*secs),
        }
        self.check_money()
    }
}

fn cases() -> u32 {
    std::env::var("GARDEN_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn histories_keep_every_promise(ops in proptest::collection::vec(op(), 1..40)) {
        let mut w = World::new();
        for op in &ops {
            w.step(op)?;
        }
        if std::env::var("GARDEN_MODEL_STATS").is_ok() {
            eprintln!("ops {} signed {} paid {}", ops.len(), w.signed.len(), w.paid_nonces.len());
        }
    }
}
