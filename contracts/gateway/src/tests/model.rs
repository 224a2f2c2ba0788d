//! Property test of the pair over random histories: signatures, submissions (any subset, in
//! any order, again and again), packets received or not, acknowledged, timed out or refused
//! as a whole, deposits and time steps, in any interleaving IBC allows (a packet is either
//! received then acknowledged, or not received and then timed out or error-acknowledged).
//! After every step:
//!
//! * an item is pending at the gateway exactly while a packet carrying it is in flight;
//! * settled at the gateway implies settled on the settlement chain, released implies not;
//! * nothing is paid twice, and the money that left is exactly what the settled items owe.
//!
//! `cargo test -p garden-gateway --lib model` runs 32 cases
//! (`GARDEN_GATEWAY_MODEL_CASES` for more).

use cosmwasm_std::{Binary, IbcPacket, StdAck, Uint128};
use garden_settlement::msg::QueryMsg as SQuery;
use garden_settlement::types::Totals;
use garden_wire::ibc::ItemState;
use garden_wire::{nonce, Attestation};
use proptest::prelude::*;

use super::pair::{Pair, PRICE};

#[derive(Debug, Clone)]
enum Op {
    /// consumer (0 = alice, 1 = bob), quantity
    Sign(usize, u64),
    /// pool indices (modulo the pool)
    Submit(Vec<usize>),
    /// flight index (modulo the flights): the settlement chain receives it
    Deliver(usize),
    /// its acknowledgement reaches the gateway (if received)
    Ack(usize),
    /// not received: times out
    Timeout(usize),
    /// not received: the settlement chain failed it (an `Err`: state reverted, error ack)
    Fail(usize),
    Deposit(usize, u128),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..2, 1u64..20).prop_map(|(c, q)| Op::Sign(c, q)),
        4 => proptest::collection::vec(0usize..64, 1..6).prop_map(Op::Submit),
        3 => (0usize..8).prop_map(Op::Deliver),
        3 => (0usize..8).prop_map(Op::Ack),
        1 => (0usize..8).prop_map(Op::Timeout),
        1 => (0usize..8).prop_map(Op::Fail),
        2 => (0usize..2, 1u128..200).prop_map(|(c, a)| Op::Deposit(c, a)),
        2 => prop_oneof![1u64..120, 600u64..7_200].prop_map(Op::Wait),
    ]
}

struct Flight {
    packet: IbcPacket,
    /// The settlement chain's acknowledgement, once received.
    ack: Option<Binary>,
}

struct World {
    p: Pair,
    pool: Vec<Attestation>,
    counters: [nonce::Counter; 2],
    flights: Vec<Flight>,
}

impl World {
    fn new() -> Self {
        let mut p = Pair::bare(None);
        p.open_channel();
        World {
            p,
            pool: Vec::new(),
            counters: Default::default(),
            flights: Vec::new(),
        }
    }

    fn consumer(&self, c: usize) -> (cosmwasm_std::Addr, u8) {
        match c {
            0 => (self.p.alice.clone(), 2),
            _ => (self.p.bob.clone(), 3),
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Sign(c, q) => {
                let (who, seed) = self.consumer(c);
                let mut a = self.p.att(&who, seed, 0, q);
                let Ok(n) = self.counters[c].next(a.signed_at) else {
                    return;
                };
                a.nonce = n;
                self.p.sign(&mut a, seed);
                self.pool.push(a);
            }
            Op::Submit(ix) if !self.pool.is_empty() => {
                let items: Vec<Attestation> = ix
                    .iter()
                    .map(|i| self.pool[i % self.pool.len()].clone())
                    .collect();
                let (_, data, packet) = self.p.submit(&items);
                assert_eq!(data.forwarded > 0, packet.is_some());
                if let Some(packet) = packet {
                    self.flights.push(Flight { packet, ack: None });
                }
            }
            Op::Deliver(i) if !self.flights.is_empty() => {
                let i = i % self.flights.len();
                if self.flights[i].ack.is_none() {
                    let ack = self.p.deliver(&self.flights[i].packet);
                    self.flights[i].ack = Some(ack);
                }
            }
            Op::Ack(i) if !self.flights.is_empty() => {
                let i = i % self.flights.len();
                if let Some(ack) = self.flights[i].ack.clone() {
                    let f = self.flights.remove(i);
                    self.p.acknowledge(&f.packet, ack);
                }
            }
            Op::Timeout(i) | Op::Fail(i) if !self.flights.is_empty() => {
                let i = i % self.flights.len();
                if self.flights[i].ack.is_none() {
                    let f = self.flights.remove(i);
                    if matches!(op, Op::Timeout(_)) {
                        self.p.time_out(&f.packet);
                    } else {
                        let ack = StdAck::error("ABCI code: 5: error handling packet");
                        self.p.acknowledge(&f.packet, ack.to_binary());
                    }
                }
            }
            Op::Deposit(c, amount) => {
                let (who, _) = self.consumer(c);
                self.p.deposit(&who, amount);
            }
            Op::Wait(secs) => self.p.advance(secs),
            _ => {}
        }
    }

    fn in_flight(&self, a: &Attestation) -> usize {
        self.flights
            .iter()
            .filter(|f| {
                garden_wire::Batch::decode(f.packet.data.as_slice(), 4_000)
                    .unwrap()
                    .iter()
                    .any(|b| *b.signer == a.signer && b.nonce == a.nonce)
            })
            .count()
    }

    fn check(&mut self) {
        let mut owed = 0u128;
        for a in self.pool.clone() {
            let state = self.p.item(&a).state;
            let used: bool = self.p.settle_query(SQuery::NonceUsed {
                signer: Binary::from(a.signer.to_vec()),
                nonce: a.nonce,
            });
            let flights = self.in_flight(&a);
            assert!(flights <= 1, "an item in {flights} packets at once");
            assert_eq!(
                state == ItemState::Pending,
                flights == 1,
                "pending exactly while in flight ({state:?})"
            );
            match state {
                ItemState::Settled => assert!(used, "settled at the gateway only"),
                ItemState::Released | ItemState::Free => {
                    assert!(!used, "{state:?} but paid on the settlement chain")
                }
                ItemState::Pending => {}
            }
            if used {
                owed += a.quantity as u128 * PRICE;
            }
        }
        let t: Totals = self.p.settle_query(SQuery::Totals {});
        assert_eq!(
            t.paid,
            Uint128::new(owed),
            "paid exactly what settled items owe"
        );
        let sent: u128 = self.p.sent.values().sum();
        assert_eq!(sent, owed, "bank messages carry exactly the payments");
    }
}

fn cases() -> u32 {
    std::env::var("GARDEN_GATEWAY_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn pair_histories_keep_the_invariants(ops in proptest::collection::vec(op(), 1..40)) {
        let mut w = World::new();
        for op in ops {
            w.step(op);
            w.check();
        }
        // drain: every flight answered, then nothing is pending
        while let Some(f) = w.flights.pop() {
            match f.ack {
                Some(ack) => { w.p.acknowledge(&f.packet, ack); }
                None => { w.p.time_out(&f.packet); }
            }
        }
        w.check();
        for a in w.pool.clone() {
            prop_assert!(w.p.item(&a).state != ItemState::Pending);
        }
    }
}
