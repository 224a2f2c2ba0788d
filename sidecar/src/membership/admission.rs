//! Indexer-side admission of a heartbeating node.
//!
//! A node is scored on what it does and what its link can carry:
//!
//! `score = (0.50·uptime + 0.30·responsive + 0.20·bandwidth) × 100`
//!
//! admitted iff `score ≥ min(80, 20 + 60 × age / 24 h)` with `age` the time since the indexer
//! first saw the node (the spec's age-based bar). A healthy node scores ~100 on a LAN and ~90
//! over a 600 ms satellite link, so it clears the 80 bar at any age.
//!
//! Divergence from Go (docs/DIVERGENCES.md, admission): Go's five weights gave 45 % to the
//! *indexer's* own subnet diversity and fill rate, so a day-old node was refused by any
//! indexer under ~20 % fill however healthy it was, and a refused node came back as a
//! newcomer (bar 20) a heartbeat later, so refusing had no effect. Here subnet diversity is a
//! quota ([`SubnetQuota`]: no /24 or /48 holds more than its share of the sessions), not a
//! score, and a refusal is remembered ([`Refusals`]) with a backoff that doubles each time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::membership::threshold::dynamic_min_score;
use crate::membership::unit;
use crate::membership::Timestamp;

/// Dimension weights (sum 1.0).
pub mod weight {
    /// Heartbeat regularity: online time ÷ time since first seen.
    pub const UPTIME: f64 = 0.50;
    /// The last bandwidth probe completed within the allowed round trip.
    pub const RESPONSIVE: f64 = 0.30;
    /// Throughput score of the last probe.
    pub const BANDWIDTH: f64 = 0.20;
}

/// The inputs, each in `[0, 1]` (clamped: Go let bandwidth exceed 1, B15).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Inputs {
    /// Node uptime ratio.
    pub uptime: f64,
    /// 1 when the last probe completed in time, 0 when it failed, ½ before any probe.
    pub responsive: f64,
    /// Bandwidth probe score.
    pub bandwidth: f64,
}

/// A node below the bar.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error("not enough trusting value: score {score:.1} < threshold {threshold:.1}")]
pub struct Refused {
    /// The node's score.
    pub score: f64,
    /// The bar at its age.
    pub threshold: f64,
}

/// The admission score, 0–100.
pub fn score(i: &Inputs) -> f64 {
    (weight::UPTIME * unit(i.uptime)
        + weight::RESPONSIVE * unit(i.responsive)
        + weight::BANDWIDTH * unit(i.bandwidth))
        * 100.0
}

/// Admit (returning the score) or refuse.
pub fn admit(i: &Inputs, age: Duration) -> Result<f64, Refused> {
    let s = score(i);
    let threshold = dynamic_min_score(age);
    if s < threshold {
        Err(Refused {
            score: s,
            threshold,
        })
    } else {
        Ok(s)
    }
}

/// Remembered refusals: a refused node waits `base × 2^(n−1)` (capped) before it is scored
/// again, so admission has an effect; a node not refused for `forget_after` starts over.
/// Bounded: the oldest entries go first.
#[derive(Debug)]
pub struct Refusals {
    base: Duration,
    cap: Duration,
    forget_after: Duration,
    max: usize,
    by_peer: HashMap<PeerId, (u32, Timestamp)>,
    order: VecDeque<PeerId>,
}

impl Refusals {
    /// Backoff from `base` doubling up to `cap`; at most `max` peers remembered.
    pub fn new(base: Duration, cap: Duration, max: usize) -> Self {
        Self {
            base,
            cap,
            forget_after: cap * 2,
            max: max.max(1),
            by_peer: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// When `peer` may be scored again, if it is in a backoff at `now`.
    pub fn waiting_until(&self, peer: &PeerId, now: Timestamp) -> Option<Timestamp> {
        self.by_peer
            .get(peer)
            .map(|(n, at)| at.plus(self.backoff(*n)))
            .filter(|until| *until > now)
    }

    /// `peer` was refused at `now`; returns when it may try again.
    pub fn refuse(&mut self, peer: PeerId, now: Timestamp) -> Timestamp {
        let n = match self.by_peer.get(&peer) {
            Some((n, at)) if now.since(*at) < self.forget_after => n.saturating_add(1),
            _ => 1,
        };
        if !self.by_peer.contains_key(&peer) {
            self.order.push_back(peer);
            while self.order.len() > self.max {
                if let Some(old) = self.order.pop_front() {
                    self.by_peer.remove(&old);
                }
            }
        }
        self.by_peer.insert(peer, (n, now));
        now.plus(self.backoff(n))
    }

    fn backoff(&self, n: u32) -> Duration {
        let doubled = self
            .base
            .saturating_mul(1u32 << n.saturating_sub(1).min(20));
        doubled.min(self.cap)
    }
}

/// At most this share of an indexer's capacity from one subnet (IPv4 /24, IPv6 /48): one
/// site or one host spinning identities cannot fill an indexer. Addresses without an IP
/// (loopback-only tests, in-process networks) are not counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubnetQuota {
    /// Share of capacity, 0–1. [Default: 0.25]
    pub share: f64,
    /// Never below this many sessions per subnet (small indexers). [Default: 16]
    pub floor: usize,
}

impl Default for SubnetQuota {
    fn default() -> Self {
        Self {
            share: 0.25,
            floor: 16,
        }
    }
}

impl SubnetQuota {
    /// Sessions one subnet may hold at an indexer of `capacity`.
    pub fn limit(&self, capacity: u32) -> usize {
        ((f64::from(capacity) * self.share) as usize).max(self.floor)
    }
}

/// Subnet bucket of an IP: IPv4 /24, IPv6 /48 (Go put every IPv6 address in one bucket, B14).
pub fn subnet_of_ip(ip: IpAddr) -> [u8; 6] {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [4, o[0], o[1], o[2], 0, 0]
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [6, o[0], o[1], o[2], o[3], o[4] ^ o[5]]
        }
    }
}

/// The first IP of a multiaddr, if any.
pub fn ip_of(a: &Multiaddr) -> Option<IpAddr> {
    a.iter().find_map(|p| match p {
        Protocol::Ip4(v4) => Some(IpAddr::V4(v4)),
        Protocol::Ip6(v6) => Some(IpAddr::V6(v6)),
        _ => None,
    })
}

/// The subnets a peer's addresses are in (loopback excluded).
pub fn subnets_of(addrs: &[Multiaddr]) -> HashSet<[u8; 6]> {
    addrs
        .iter()
        .filter_map(ip_of)
        .filter(|ip| !ip.is_loopback())
        .map(subnet_of_ip)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> Timestamp {
        Timestamp::from_millis(1_000_000_000 + secs * 1000)
    }

    #[test]
    fn score_weights_and_clamping() {
        let all = Inputs {
            uptime: 1.0,
            responsive: 1.0,
            bandwidth: 3.0,
        };
        assert!((score(&all) - 100.0).abs() < 1e-9, "bandwidth clamped to 1");
        let i = Inputs {
            uptime: 0.5,
            responsive: 1.0,
            bandwidth: 0.5,
        };
        assert!((score(&i) - (25.0 + 30.0 + 10.0)).abs() < 1e-9);
        assert_eq!(
            score(&Inputs {
                uptime: f64::NAN,
                ..Default::default()
            }),
            0.0
        );
    }

    #[test]
    fn a_healthy_node_passes_at_every_age_and_a_newcomer_needs_only_20() {
        let day = Duration::from_secs(24 * 3600);
        // A newcomer before any probe: 15 + 10 = 25 ≥ 20.
        let new = Inputs {
            uptime: 0.0,
            responsive: 0.5,
            bandwidth: 0.5,
        };
        assert!(admit(&new, Duration::ZERO).is_ok());
        // A day-old node on a 600 ms satellite link: probe in time, bandwidth 0.66.
        let sat = Inputs {
            uptime: 1.0,
            responsive: 1.0,
            bandwidth: 0.66,
        };
        assert!(admit(&sat, day).is_ok(), "{}", score(&sat));
        // Whatever the indexer's own fill or diversity (no longer inputs).
        let flaky = Inputs {
            uptime: 0.5,
            responsive: 0.0,
            bandwidth: 0.0,
        };
        assert_eq!(admit(&flaky, day).unwrap_err().threshold, 80.0);
        // Exactly at the bar is admitted (Go rejects only `score < threshold`).
        let at = Inputs {
            uptime: 0.0,
            responsive: 0.0,
            bandwidth: 1.0,
        };
        assert_eq!(admit(&at, Duration::ZERO), Ok(20.0));
    }

    #[test]
    fn a_refused_node_waits_a_doubling_backoff_then_starts_over() {
        let mut r = Refusals::new(Duration::from_secs(300), Duration::from_secs(3600), 2);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        assert_eq!(r.refuse(a, t(0)), t(300));
        assert_eq!(r.waiting_until(&a, t(100)), Some(t(300)));
        assert_eq!(r.waiting_until(&a, t(300)), None);
        assert_eq!(r.refuse(a, t(300)), t(900), "second refusal: 10 minutes");
        assert_eq!(r.refuse(a, t(900)), t(2100));
        assert_eq!(r.refuse(a, t(2100)), t(4500));
        assert_eq!(r.refuse(a, t(4500)), t(8100), "capped at an hour");
        // Two hours without a refusal: a fresh start.
        assert_eq!(r.refuse(a, t(4500 + 7300)), t(4500 + 7300 + 300));

        // Bounded: remembering a third peer forgets the oldest.
        r.refuse(b, t(0));
        r.refuse(c, t(0));
        assert!(r.waiting_until(&a, t(13_000)).is_none());
    }

    #[test]
    fn subnets_bucket_ipv4_by_24_and_ipv6_by_48_and_ignore_loopback() {
        let a: Vec<Multiaddr> = [
            "/ip4/10.0.0.1/tcp/1",
            "/ip4/10.0.0.2/tcp/1",
            "/ip4/10.0.1.1/tcp/1",
            "/ip6/2001:db8:1::1/tcp/1",
            "/ip6/2001:db8:2::1/tcp/1",
            "/dns4/example.org/tcp/1",
            "/ip4/127.0.0.1/tcp/1",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(subnets_of(&a).len(), 4);
        assert_eq!(SubnetQuota::default().limit(500), 125);
        assert_eq!(SubnetQuota::default().limit(20), 16);
    }
}
