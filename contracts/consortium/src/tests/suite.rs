//! cw-multi-test harness for the consortium contract.

use cosmwasm_std::{Addr, Binary, Empty, StdError};
use cw_multi_test::{App, AppResponse, Contract, ContractWrapper, Executor};
use ed25519_dalek::{Signer, SigningKey};
use garden_wire::attestation::Domain;
use garden_wire::endorsement::EndorsementBody;
use garden_wire::TrustLevel;

use crate::msg::{ExecuteMsg, InstantiateMsg, MemberInit, QueryMsg};
use crate::tally::Vote;
use crate::types::{Action, Params, SignedEndorsement};

pub(super) fn contract() -> Box<dyn Contract<Empty>> {
    Box::new(ContractWrapper::new(
        crate::contract::execute,
        crate::contract::instantiate,
        crate::contract::query,
    ))
}

pub(super) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub(super) fn pubkey(seed: u8) -> Binary {
    Binary::from(key(seed).verifying_key().to_bytes().to_vec())
}

/// Asserts that a failed call carries exactly this contract error (by its message).
pub(super) fn assert_err(err: StdError, expected: crate::ContractError) {
    let (got, want) = (err.to_string(), expected.to_string());
    assert!(got.contains(&want), "expected error {want:?}, got {got:?}");
}

pub(super) struct Suite {
    pub(super) app: App,
    pub(super) contract: Addr,
    /// L1 members with weight 1: a, b, c (keys 1, 2, 3).
    pub(super) a: Addr,
    pub(super) b: Addr,
    pub(super) c: Addr,
    pub(super) admin: Addr,
}

impl Suite {
    pub(super) fn new() -> Self {
        Self::with(None)
    }

    pub(super) fn with(params: Option<Params>) -> Self {
        let mut app = App::default();
        let [a, b, c, admin] = ["a", "b", "c", "gov"].map(|n| app.api().addr_make(n));
        let code = app.store_code(contract());
        let members = [(&a, 1), (&b, 2), (&c, 3)]
            .map(|(addr, seed)| MemberInit {
                addr: addr.to_string(),
                pubkey: pubkey(seed),
                level: TrustLevel::L1,
                weight: 1,
            })
            .to_vec();
        let msg = InstantiateMsg {
            members,
            params,
            admin: Some(admin.to_string()),
        };
        let contract = app
            .instantiate_contract(code, admin.clone(), &msg, &[], "consortium", None)
            .unwrap();
        Suite {
            app,
            contract,
            a,
            b,
            c,
            admin,
        }
    }

    pub(super) fn addr(&self, name: &str) -> Addr {
        self.app.api().addr_make(name)
    }

    pub(super) fn exec(&mut self, sender: &Addr, msg: ExecuteMsg) -> Result<AppResponse, StdError> {
        self.app
            .execute_contract(sender.clone(), self.contract.clone(), &msg, &[])
    }

    pub(super) fn query<T: serde::de::DeserializeOwned>(&self, msg: QueryMsg) -> T {
        self.app
            .wrap()
            .query_wasm_smart(&self.contract, &msg)
            .unwrap()
    }

    pub(super) fn propose(&mut self, sender: &Addr, action: Action) -> Result<u64, StdError> {
        let res = self.exec(
            sender,
            ExecuteMsg::Propose {
                title: "t".into(),
                description: "d".into(),
                action,
            },
        )?;
        Ok(attr(&res, "proposal_id").parse().unwrap())
    }

    pub(super) fn vote(
        &mut self,
        sender: &Addr,
        id: u64,
        vote: Vote,
    ) -> Result<AppResponse, StdError> {
        self.exec(
            sender,
            ExecuteMsg::Vote {
                proposal_id: id,
                vote,
            },
        )
    }

    /// Propose by a, yes by b then c until it passes, execute.
    pub(super) fn pass(&mut self, action: Action) -> Result<AppResponse, StdError> {
        let (a, b, c) = (self.a.clone(), self.b.clone(), self.c.clone());
        let id = self.propose(&a, action)?;
        for voter in [b, c] {
            let status: crate::msg::ProposalResponse =
                self.query(QueryMsg::Proposal { proposal_id: id });
            if status.status == crate::types::Status::Passed {
                break;
            }
            self.vote(&voter, id, Vote::Yes)?;
        }
        self.exec(&a, ExecuteMsg::Execute { proposal_id: id })
    }

    pub(super) fn advance(&mut self, secs: u64, blocks: u64) {
        self.app.update_block(|b| {
            b.time = b.time.plus_seconds(secs);
            b.height += blocks;
        });
    }

    pub(super) fn now(&self) -> u64 {
        self.app.block_info().time.seconds()
    }

    /// Endorsement of `subject` (key `subject_seed`) by the L1 member with key `endorser_seed`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn endorsement(
        &self,
        endorser: &Addr,
        endorser_seed: u8,
        subject: &Addr,
        subject_seed: u8,
        scopes: &[&str],
        from: u64,
        until: u64,
    ) -> SignedEndorsement {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let chain_id = self.app.block_info().chain_id;
        let msg = EndorsementBody {
            subject: subject.as_str(),
            subject_pubkey: &key(subject_seed).verifying_key().to_bytes(),
            scopes: &scopes,
            valid_from: from,
            valid_until: until,
        }
        .signing_bytes(&Domain {
            chain_id: &chain_id,
            contract: self.contract.as_str(),
        });
        SignedEndorsement {
            endorser: endorser.to_string(),
            scopes,
            valid_from: from,
            valid_until: until,
            signature: Binary::from(key(endorser_seed).sign(&msg).to_bytes().to_vec()),
        }
    }
}

pub(super) fn attr(res: &AppResponse, key: &str) -> String {
    res.events
        .iter()
        .flat_map(|e| &e.attributes)
        .find(|a| a.key == key)
        .map(|a| a.value.clone())
        .unwrap_or_else(|| panic!("no attribute {key}"))
}
