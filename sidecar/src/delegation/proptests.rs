//! Property tests of reconciliation: a master and a nano change a few shared resources in a
//! random interleaving, losing and regaining contact at random; while in contact every change
//! is reconciled at once, after a cut the journals of the whole cut are. At every
//! reconciliation:
//!
//! * (a) convergence: once each side applies its steps, both hold the merged state;
//! * (b) master wins: every resource the master changed since the base ends with the master's
//!   latest value;
//! * (c) no silent loss: every nano change since the base is either accepted or rejected (once),
//!   and a resource whose nano changes were all accepted ends with the nano's latest value;
//! * (d) idempotence: reconciling again after both sides settled on the next base changes
//!   nothing (the next base is a fixed point);
//! * (e) order independence: journals listing the same changes in another order give the same
//!   outcome.
//!
//! The honest run also checks that a nano change is rejected only where the master changed the
//! resource too. The hostile run lets the nano make changes that break the resource's life and
//! forge the master as their author.
//!
//! Cases per property: 1024, or `PROPTEST_CASES`.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::time::Timestamp;

#[derive(Clone, Debug)]
enum Op {
    /// A change by one side to resource `r`; `pick` chooses the kind (and, for a hostile nano,
    /// whether to forge the author), `body` the new body.
    Change {
        master: bool,
        r: u8,
        pick: u8,
        body: u8,
    },
    /// Contact lost, or regained (then reconciled).
    Toggle,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let change =
        (any::<bool>(), 0u8..6, any::<u8>(), any::<u8>()).prop_map(|(master, r, pick, body)| {
            Op::Change {
                master,
                r,
                pick,
                body,
            }
        });
    proptest::collection::vec(prop_oneof![8 => change, 1 => Just(Op::Toggle)], 0..80)
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

struct Sim {
    base: Base,
    master: Journal,
    nano: Journal,
    /// What each side holds (its own changes applied as it makes them).
    ms: State,
    ns: State,
    cut: bool,
    hostile: bool,
    seed: u64,
    syncs: u32,
}

impl Sim {
    fn new(cut: bool, hostile: bool, seed: u64) -> Self {
        let base = Base::default();
        Sim {
            master: Journal::new(Limits::default(), &base, Side::Master),
            nano: Journal::new(Limits::default(), &base, Side::Nano),
            base,
            ms: State::new(),
            ns: State::new(),
            cut,
            hostile,
            seed,
            syncs: 0,
        }
    }

    fn run(&mut self, ops: &[Op]) {
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Toggle => {
                    self.cut = !self.cut;
                    if !self.cut {
                        self.sync();
                    }
                }
                Op::Change {
                    master,
                    r,
                    pick,
                    body,
                } => {
                    self.change(master, r, pick, body, i as u64);
                    if !self.cut {
                        self.sync();
                    }
                }
            }
        }
        self.cut = false;
        self.sync();
    }

    fn change(&mut self, master: bool, r: u8, pick: u8, body: u8, i: u64) {
        let hostile = self.hostile && !master;
        let (state, journal, side) = if master {
            (&mut self.ms, &mut self.master, Side::Master)
        } else {
            (&mut self.ns, &mut self.nano, Side::Nano)
        };
        let resource = format!("r{r}");
        let kind = if hostile {
            [Kind::Create, Kind::Update, Kind::Delete][usize::from(pick % 3)]
        } else {
            match state.get(&resource) {
                None => Kind::Create,
                Some(Value::Present(_)) if pick.is_multiple_of(3) => Kind::Delete,
                Some(Value::Present(_)) => Kind::Update,
                Some(Value::Deleted) => return, // a delete is terminal
            }
        };
        let author = if hostile && pick >= 0xC0 {
            Side::Master
        } else {
            side
        };
        let change = Change {
            version: journal.next_version(&resource),
            resource,
            author,
            kind,
            body: if kind == Kind::Delete {
                Vec::new()
            } else {
                vec![body, side as u8]
            },
            at: Timestamp::from_millis(1_000 + i),
        };
        journal.record(change.clone()).expect("within bounds");
        change.apply(state);
    }

    fn shuffled(&mut self, j: &Journal) -> Journal {
        let mut cs = j.changes().to_vec();
        for i in (1..cs.len()).rev() {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            cs.swap(i, (self.seed % (i as u64 + 1)) as usize);
        }
        Journal::received(Limits::default(), j.epoch(), cs).expect("a valid journal")
    }

    fn since(&self, j: &Journal, side: Side) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = j
            .changes()
            .iter()
            .filter(|c| c.version > self.base.version(&c.resource, side))
            .map(|c| (c.resource.clone(), c.version))
            .collect();
        v.sort();
        v
    }

    fn sync(&mut self) {
        self.syncs += 1;
        let o = reconcile(&self.master, &self.nano, &self.base).expect("a common base");

        // (e) order independence.
        let (sm, sn) = (
            self.shuffled(&self.master.clone()),
            self.shuffled(&self.nano.clone()),
        );
        assert_eq!(reconcile(&sm, &sn, &self.base).unwrap(), o, "order");

        // (b) master wins.
        let master_touched: BTreeSet<String> = self
            .since(&self.master, Side::Master)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        for r in &master_touched {
            assert_eq!(o.merged().get(r), self.ms.get(r), "master wins on {r}");
        }

        // (c) no silent loss.
        let nano_since = self.since(&self.nano, Side::Nano);
        let mut seen: Vec<(String, u64)> = o
            .accepted
            .iter()
            .map(|c| (c.resource.clone(), c.version))
            .chain(
                o.rejected
                    .iter()
                    .map(|x| (x.resource.clone(), x.change.version)),
            )
            .collect();
        seen.sort();
        assert_eq!(
            seen, nano_since,
            "every nano change accepted or rejected, once"
        );
        let rejected_on: BTreeSet<&str> = o.rejected.iter().map(|x| x.resource.as_str()).collect();
        for (r, _) in &nano_since {
            if !rejected_on.contains(r.as_str()) {
                assert_eq!(o.merged().get(r), self.ns.get(r), "nano's value of {r}");
            }
        }
        for c in &o.accepted {
            let held = self
                .nano
                .changes()
                .iter()
                .find(|h| h.resource == c.resource && h.version == c.version)
                .expect("accepted from the nano's journal");
            assert_eq!(
                held.author,
                Side::Nano,
                "a forged change accepted: {held:?}"
            );
        }
        for x in &o.rejected {
            assert_eq!(x.resource, x.change.resource);
            if !self.hostile {
                assert!(
                    master_touched.contains(&x.resource),
                    "an honest nano change rejected without a conflict: {x:?}"
                );
            }
        }

        // (a) convergence.
        for s in &o.to_master {
            s.apply(&mut self.ms);
        }
        for s in &o.to_nano {
            s.apply(&mut self.ns);
        }
        assert_eq!(&self.ms, o.merged(), "master converged");
        assert_eq!(&self.ns, o.merged(), "nano converged");

        // (d) idempotence, once both sides settled.
        self.master.settle(&o.next, Side::Master);
        self.nano.settle(&o.next, Side::Nano);
        self.base = o.next;
        assert!(self.master.is_empty() && self.nano.is_empty());
        let again = reconcile(&self.master, &self.nano, &self.base).unwrap();
        assert!(again.is_quiet(), "{again:?}");
        assert_eq!(again.next, self.base);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn honest_sides_converge_and_the_master_wins(
        ops in ops(),
        cut in any::<bool>(),
        seed in 1u64..,
    ) {
        let mut sim = Sim::new(cut, false, seed);
        sim.run(&ops);
        prop_assert!(sim.syncs >= 1);
    }

    #[test]
    fn a_hostile_nano_loses_nothing_silently_and_wins_nothing(
        ops in ops(),
        cut in any::<bool>(),
        seed in 1u64..,
    ) {
        let mut sim = Sim::new(cut, true, seed);
        sim.run(&ops);
        prop_assert!(sim.syncs >= 1);
    }
}
