//! Who may change a nano's catalogue, and what a master sends its nanos.
//!
//! A nano is never a direct partner: third parties deal with its master, the authority. So
//! a nano takes resource changes from its master only — a change from anyone else would
//! bypass the authority that reconciles the pair after a split — and a master sends a nano
//! only the resources the nano owns (its own resources and its partners' stay with it: the
//! nano has no use for them and its contact windows are short).
//!
//! Pure: the glue (the NATS bridge's handling of delivered entries and of the audience of a
//! mutation) asks [`Standing`] and reports the refusal.

use std::collections::BTreeSet;

use libp2p::PeerId;

/// This site's place in a nano/master pair, from `[delegation]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Standing {
    /// Neither a nano nor a master.
    #[default]
    Standalone,
    /// A nano: `master` answers for it.
    Nano { master: PeerId },
    /// A master answering for `nanos`.
    Master { nanos: BTreeSet<PeerId> },
}

/// Why the gate turned a change away.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Peer ids boxed: the error stays one pointer wide on the happy path's `Result`.
    #[error("this site is a nano of {}: it takes resource changes only from its master, not from {}", .0.0, .0.1)]
    NotFromMaster(Box<(PeerId, PeerId)>),
}

impl Standing {
    /// Whether a resource change delivered by `from` may be applied here.
    pub fn admit_change(&self, from: &PeerId) -> Result<(), Refused> {
        match self {
            Standing::Nano { master } if master != from => {
                Err(Refused::NotFromMaster(Box::new((*master, *from))))
            }
            _ => Ok(()),
        }
    }

    /// A nano's master.
    pub fn master(&self) -> Option<&PeerId> {
        match self {
            Standing::Nano { master } => Some(master),
            _ => None,
        }
    }

    /// Whether `peer` is one of this master's nanos.
    pub fn has_nano(&self, peer: &PeerId) -> bool {
        matches!(self, Standing::Master { nanos } if nanos.contains(peer))
    }

    /// Whether a change of a resource owned by `owner` goes to `to`: anything goes to anyone,
    /// except that a master sends each of its nanos only the nano's own resources.
    pub fn sends(&self, owner: &PeerId, to: &PeerId) -> bool {
        match self {
            Standing::Master { nanos } if nanos.contains(to) => owner == to,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nano_takes_changes_from_its_master_only() {
        let (master, stranger) = (PeerId::random(), PeerId::random());
        let nano = Standing::Nano { master };
        assert_eq!(nano.admit_change(&master), Ok(()));
        let refused = nano.admit_change(&stranger).unwrap_err();
        let text = refused.to_string();
        assert!(text.contains(&master.to_string()) && text.contains(&stranger.to_string()));
        // Others take changes from anyone (the catalogue still checks the owner's signature).
        assert_eq!(Standing::Standalone.admit_change(&stranger), Ok(()));
        let m = Standing::Master {
            nanos: [PeerId::random()].into(),
        };
        assert_eq!(m.admit_change(&stranger), Ok(()));
    }

    #[test]
    fn a_master_sends_a_nano_only_what_the_nano_owns() {
        let (me, nano, other_nano, partner) = (
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
        );
        let m = Standing::Master {
            nanos: [nano, other_nano].into(),
        };
        assert!(m.sends(&nano, &nano), "the nano's own resource");
        assert!(!m.sends(&me, &nano), "the master's own resource");
        assert!(!m.sends(&other_nano, &nano), "another nano's resource");
        assert!(!m.sends(&partner, &nano), "a partner's resource");
        assert!(m.sends(&me, &partner), "partners are not filtered");
        let s = Standing::Standalone;
        assert!(s.sends(&me, &nano));
        assert!(m.has_nano(&nano) && !m.has_nano(&partner) && !s.has_nano(&nano));
        assert_eq!(m.master(), None);
        assert_eq!(Standing::Nano { master: me }.master(), Some(&me));
    }
}
