//! The on-chain [`Membership`]: the consortium's raw storage (`garden_wire::consortium`)
//! read once per distinct key of a batch; each item is judged at its own `signed_at` from
//! that record. Used by the single-chain settlement (`settle_batch`) and by the IBC gateway
//! on the zone, which verifies membership before it forwards items.

use std::collections::BTreeMap;

use cosmwasm_std::{Addr, Api, Binary, QuerierWrapper, StdError};
use garden_wire::consortium::ConsortiumContract;
use garden_wire::{Member, TrustLevel};

use crate::engine::{provider_error, signer_error, ItemError, Membership};

/// A member record with the compromise times of its endorsers' keys, fetched together.
struct Record {
    addr: Addr,
    member: Member,
    endorsers: Vec<(Binary, Option<u64>)>,
}

impl Record {
    fn standing_at(
        &self,
        t: u64,
        now: u64,
        min: TrustLevel,
        scope: &str,
    ) -> Result<(), garden_wire::Refusal> {
        self.member.standing_at(t, now, min, scope, |k| {
            self.endorsers
                .iter()
                .find(|(e, _)| e.as_slice() == k)
                .and_then(|(_, c)| *c)
        })
    }
}

pub struct ChainMembership<'a> {
    querier: QuerierWrapper<'a>,
    api: &'a dyn Api,
    consortium: ConsortiumContract,
    /// Block time: suspensions are judged now.
    now: u64,
    min_level: TrustLevel,
    scope: &'a str,
    signers: BTreeMap<[u8; 32], Option<Record>>,
    providers: BTreeMap<String, Option<Record>>,
    compromised: BTreeMap<Vec<u8>, Option<u64>>,
    /// A failed consortium read is not the item's fault: the whole transaction fails.
    fatal: Option<StdError>,
}

impl<'a> ChainMembership<'a> {
    pub fn new(
        querier: QuerierWrapper<'a>,
        api: &'a dyn Api,
        consortium: &Addr,
        now: u64,
        min_level: TrustLevel,
        scope: &'a str,
    ) -> Self {
        ChainMembership {
            querier,
            api,
            consortium: ConsortiumContract(consortium.clone()),
            now,
            min_level,
            scope,
            signers: BTreeMap::new(),
            providers: BTreeMap::new(),
            compromised: BTreeMap::new(),
            fatal: None,
        }
    }

    fn keep<T>(&mut self, r: Result<Option<T>, StdError>) -> Option<T> {
        r.unwrap_or_else(|e| {
            self.fatal.get_or_insert(e);
            None
        })
    }

    /// Completes a member record with its endorsers' compromise times (cached per key).
    fn record(&mut self, addr: Addr, member: Member) -> Record {
        let mut endorsers = Vec::new();
        for e in &member.endorsements {
            let key = e.endorser_key.to_vec();
            let c = match self.compromised.get(&key) {
                Some(c) => *c,
                None => {
                    let found = self.consortium.compromised_at(&self.querier, &key);
                    let c = self.keep(found.map(Some)).flatten();
                    self.compromised.insert(key, c);
                    c
                }
            };
            endorsers.push((e.endorser_key.clone(), c));
        }
        Record {
            addr,
            member,
            endorsers,
        }
    }

    /// Ok unless a consortium read failed during the batch.
    pub fn finish(self) -> Result<(), StdError> {
        self.fatal.map_or(Ok(()), Err)
    }
}

impl Membership for ChainMembership<'_> {
    fn signer_at(&mut self, key: &[u8; 32], signed_at: u64) -> Result<String, ItemError> {
        if !self.signers.contains_key(key) {
            let found = self.consortium.key_record(&self.querier, key);
            let rec = self.keep(found).map(|r| self.record(r.addr, r.member));
            self.signers.insert(*key, rec);
        }
        let rec = self.signers[key].as_ref().ok_or(ItemError::UnknownSigner)?;
        rec.standing_at(signed_at, self.now, self.min_level, self.scope)
            .map_err(signer_error)?;
        Ok(rec.addr.to_string())
    }

    fn provider_at(&mut self, provider: &str, signed_at: u64) -> Result<(), ItemError> {
        if !self.providers.contains_key(provider) {
            // Validate locally first: a malformed address is the item's problem, not a
            // failed read.
            let rec = match self.api.addr_validate(provider) {
                Ok(addr) if addr.as_str() == provider => {
                    let found = self.consortium.member(&self.querier, &addr);
                    self.keep(found).map(|m| self.record(addr, m))
                }
                _ => None,
            };
            self.providers.insert(provider.to_owned(), rec);
        }
        let rec = self.providers[provider]
            .as_ref()
            .ok_or(ItemError::ProviderNotMember)?;
        rec.standing_at(signed_at, self.now, self.min_level, self.scope)
            .map_err(provider_error)
    }
}
