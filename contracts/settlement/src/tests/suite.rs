//! cw-multi-test harness: a consortium and a settlement contract on one app, with members
//!   provider (L1, key 1), alice (L1 consumer, key 2), bob (L2 consumer endorsed for "settle",
//!   key 3), carol (L3, key 5), dave (L2 endorsed for "discovery" only, key 6).

use cosmwasm_std::{coin, Addr, Binary, Empty, StdError, Uint128};
use cw_multi_test::{App, AppBuilder, AppResponse, Contract, ContractWrapper, Executor};
use ed25519_dalek::{Signer, SigningKey};
use garden_consortium::msg::{ExecuteMsg as CExec, InstantiateMsg as CInit, MemberInit};
use garden_consortium::types::{Action, SignedEndorsement};
use garden_wire::attestation::{Attestation, Domain};
use garden_wire::endorsement::EndorsementBody;
use garden_wire::{batch, nonce, RevocationKind, TrustLevel};

use crate::msg::{ExecuteMsg, InstantiateMsg, QueryMsg, SettleBatchResponse};
use crate::types::Params;

pub(super) const DENOM: &str = "stake";
pub(super) const PRICE: u128 = 7;

pub(super) fn settlement_contract() -> Box<dyn Contract<Empty>> {
    Box::new(ContractWrapper::new(
        crate::contract::execute,
        crate::contract::instantiate,
        crate::contract::query,
    ))
}

fn consortium_contract() -> Box<dyn Contract<Empty>> {
    use garden_consortium::contract as c;
    Box::new(ContractWrapper::new(c::execute, c::instantiate, c::query))
}

pub(super) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn pubkey(seed: u8) -> Binary {
    Binary::from(key(seed).verifying_key().to_bytes().to_vec())
}

pub(super) fn assert_err(err: StdError, expected: impl ToString) {
    let (got, want) = (err.to_string(), expected.to_string());
    assert!(got.contains(&want), "expected error {want:?}, got {got:?}");
}

pub(super) struct Suite {
    pub(super) app: App,
    pub(super) consortium: Addr,
    pub(super) settlement: Addr,
    pub(super) provider: Addr,
    pub(super) alice: Addr,
    pub(super) bob: Addr,
    pub(super) carol: Addr,
    pub(super) dave: Addr,
    pub(super) gov: Addr,
}

impl Suite {
    pub(super) fn new() -> Self {
        Self::with(None)
    }

    pub(super) fn with(params: Option<Params>) -> Self {
        let api = cw_multi_test::MockApiBech32::new("cosmwasm");
        let names = ["provider", "alice", "bob", "carol", "dave", "gov"];
        let [provider, alice, bob, carol, dave, gov] = names.map(|n| api.addr_make(n));
        let funded = [alice.clone(), bob.clone(), carol.clone(), dave.clone()];
        let mut app = AppBuilder::new().build(|router, _, storage| {
            for a in &funded {
                router
                    .bank
                    .init_balance(
                        storage,
                        a,
                        vec![coin(1_000_000_000, DENOM), coin(1_000, "other")],
                    )
                    .unwrap();
            }
        });
        let ccode = app.store_code(consortium_contract());
        let members = vec![
            MemberInit {
                addr: provider.to_string(),
                pubkey: pubkey(1),
                level: TrustLevel::L1,
                weight: 1,
            },
            MemberInit {
                addr: alice.to_string(),
                pubkey: pubkey(2),
                level: TrustLevel::L1,
                weight: 1,
            },
            MemberInit {
                addr: carol.to_string(),
                pubkey: pubkey(5),
                level: TrustLevel::L3,
                weight: 0,
            },
        ];
        let consortium = app
            .instantiate_contract(
                ccode,
                gov.clone(),
                &CInit {
                    members,
                    params: None,
                    admin: Some(gov.to_string()),
                },
                &[],
                "consortium",
                None,
            )
            .unwrap();
        let scode = app.store_code(settlement_contract());
        let init = InstantiateMsg {
            consortium: Some(consortium.to_string()),
            denom: DENOM.into(),
            params,
            admin: Some(gov.to_string()),
            route: None,
        };
        let settlement = app
            .instantiate_contract(scode, gov.clone(), &init, &[], "settlement", None)
            .unwrap();
        let mut s = Suite {
            app,
            consortium,
            settlement,
            provider,
            alice,
            bob,
            carol,
            dave,
            gov,
        };
        let (bob, dave) = (s.bob.clone(), s.dave.clone());
        s.endorse(&bob, 3, &["settle"]);
        s.endorse(&dave, 6, &["discovery"]);
        let provider = s.provider.clone();
        s.exec(
            &provider,
            ExecuteMsg::SetOffer {
                kind: "storage".into(),
                unit: "gib-hour".into(),
                unit_price: Uint128::new(PRICE),
            },
        )
        .unwrap();
        // Members' attestations in the tests are signed a minute ago: after their admission.
        s.advance(3600);
        s
    }

    /// alice (key 2, L1) endorses `who` at L2 for `scopes`.
    pub(super) fn endorse(&mut self, who: &Addr, seed: u8, scopes: &[&str]) {
        let now = self.now();
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let chain_id = self.app.block_info().chain_id;
        let msg = EndorsementBody {
            subject: who.as_str(),
            subject_pubkey: &key(seed).verifying_key().to_bytes(),
            scopes: &scopes,
            valid_from: now - 1,
            valid_until: now - 1 + 90 * 86400,
        }
        .signing_bytes(&Domain {
            chain_id: &chain_id,
            contract: self.consortium.as_str(),
        });
        let endorsement = SignedEndorsement {
            endorser: self.alice.to_string(),
            scopes,
            valid_from: now - 1,
            valid_until: now - 1 + 90 * 86400,
            signature: Binary::from(key(2).sign(&msg).to_bytes().to_vec()),
        };
        self.app
            .execute_contract(
                who.clone(),
                self.consortium.clone(),
                &CExec::RegisterEndorsed {
                    pubkey: pubkey(seed),
                    endorsement,
                },
                &[],
            )
            .unwrap();
    }

    pub(super) fn revoke(&mut self, who: &Addr, kind: RevocationKind) {
        let msg = CExec::AdminExecute {
            action: Action::Revoke {
                addr: who.to_string(),
                reason: "test".into(),
                kind,
            },
        };
        self.app
            .execute_contract(self.gov.clone(), self.consortium.clone(), &msg, &[])
            .unwrap();
    }

    pub(super) fn exec(&mut self, sender: &Addr, msg: ExecuteMsg) -> Result<AppResponse, StdError> {
        self.app
            .execute_contract(sender.clone(), self.settlement.clone(), &msg, &[])
    }

    pub(super) fn deposit(&mut self, sender: &Addr, amount: u128) -> Result<AppResponse, StdError> {
        self.app.execute_contract(
            sender.clone(),
            self.settlement.clone(),
            &ExecuteMsg::Deposit {},
            &[coin(amount, DENOM)],
        )
    }

    pub(super) fn query<T: serde::de::DeserializeOwned>(&self, msg: QueryMsg) -> T {
        self.app
            .wrap()
            .query_wasm_smart(&self.settlement, &msg)
            .unwrap()
    }

    pub(super) fn balance(&self, who: &Addr) -> u128 {
        self.app
            .wrap()
            .query_balance(who, DENOM)
            .unwrap()
            .amount
            .to_string()
            .parse()
            .unwrap()
    }

    pub(super) fn now(&self) -> u64 {
        self.app.block_info().time.seconds()
    }

    pub(super) fn advance(&mut self, secs: u64) {
        self.app.update_block(|b| {
            b.time = b.time.plus_seconds(secs);
            b.height += 1 + secs / 5;
        });
    }

    pub(super) fn domain_sign(&self, a: &mut Attestation, seed: u8) {
        let chain_id = self.app.block_info().chain_id;
        a.signature = key(seed)
            .sign(&a.signing_bytes(&Domain {
                chain_id: &chain_id,
                contract: self.settlement.as_str(),
            }))
            .to_bytes();
    }

    /// A valid attestation by `consumer` (signing key `seed`) for `quantity` gib-hour, signed
    /// a minute ago, with the `seq`-th nonce of that hour.
    pub(super) fn att(&self, consumer: &Addr, seed: u8, seq: u64, quantity: u64) -> Attestation {
        self.att_at(consumer, seed, seq, quantity, self.now() - 60)
    }

    /// The same, signed at `signed_at`.
    pub(super) fn att_at(
        &self,
        consumer: &Addr,
        seed: u8,
        seq: u64,
        quantity: u64,
        signed_at: u64,
    ) -> Attestation {
        let mut a = Attestation {
            provider: self.provider.to_string(),
            consumer: consumer.to_string(),
            resource_id: "dataset/1".into(),
            quantity,
            unit: "gib-hour".into(),
            price_ref: "storage".into(),
            max_unit_price: PRICE,
            period_start: signed_at.saturating_sub(7200),
            period_end: signed_at.saturating_sub(3600),
            nonce: nonce::first_nonce(nonce::epoch(signed_at)) + seq,
            signed_at,
            signer: key(seed).verifying_key().to_bytes(),
            signature: [0; 64],
        };
        self.domain_sign(&mut a, seed);
        a
    }

    /// Admits `who` (key `seed`) at L1 through the governance admin.
    pub(super) fn admit_l1(&mut self, who: &Addr, seed: u8) {
        let msg = CExec::AdminExecute {
            action: Action::Admit {
                addr: who.to_string(),
                pubkey: pubkey(seed),
                level: TrustLevel::L1,
                weight: 1,
                endorsement: None,
            },
        };
        self.app
            .execute_contract(self.gov.clone(), self.consortium.clone(), &msg, &[])
            .unwrap();
    }

    pub(super) fn settle(
        &mut self,
        items: &[Attestation],
        strict: bool,
    ) -> Result<(AppResponse, SettleBatchResponse), StdError> {
        let bytes = batch::encode(items).unwrap();
        let submitter = self.provider.clone();
        let res = self.exec(
            &submitter,
            ExecuteMsg::SettleBatch {
                batch: bytes.into(),
                strict: Some(strict),
            },
        )?;
        let data: SettleBatchResponse =
            cosmwasm_std::from_json(res.data.as_ref().expect("settle returns data"))?;
        Ok((res, data))
    }
}

pub(super) fn attr(res: &AppResponse, key: &str) -> Option<String> {
    res.events
        .iter()
        .flat_map(|e| &e.attributes)
        .find(|a| a.key == key)
        .map(|a| a.value.clone())
}
