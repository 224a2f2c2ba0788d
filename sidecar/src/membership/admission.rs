//! Indexer-side admission of a heartbeating node.
//!
//! `score = (0.20·uptime + 0.20·bandwidth + 0.20·diversity + 0.15·latency + 0.25·fill) × 100`,
//! admitted iff `score ≥ min(80, 20 + 60 × age / 24 h)` with `age` the time since the indexer
//! first saw the node. The weights are Go's; note that diversity and fill describe the
//! *indexer*, so a fuller, more diverse indexer admits more easily (kept as specified).

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

use crate::membership::threshold::dynamic_min_score;
use crate::membership::unit;

/// Dimension weights (sum 1.0).
pub mod weight {
    /// Node uptime ratio as seen by this indexer.
    pub const UPTIME: f64 = 0.20;
    /// Bandwidth probe score.
    pub const BANDWIDTH: f64 = 0.20;
    /// The indexer's own /24 diversity.
    pub const DIVERSITY: f64 = 0.20;
    /// Probe latency score.
    pub const LATENCY: f64 = 0.15;
    /// The indexer's fill rate.
    pub const FILL: f64 = 0.25;
}

/// The five inputs, each in `[0, 1]` (clamped: Go let bandwidth exceed 1, B15).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Inputs {
    /// Node uptime ratio.
    pub uptime: f64,
    /// Bandwidth probe score.
    pub bandwidth: f64,
    /// Indexer subnet diversity.
    pub diversity: f64,
    /// Probe latency score.
    pub latency: f64,
    /// Indexer fill rate.
    pub fill: f64,
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
        + weight::BANDWIDTH * unit(i.bandwidth)
        + weight::DIVERSITY * unit(i.diversity)
        + weight::LATENCY * unit(i.latency)
        + weight::FILL * unit(i.fill))
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

/// Distinct subnets ÷ addresses over the connected peers' addresses; 1 when there are none.
/// Addresses without an IP count in the total, as in Go.
pub fn subnet_diversity<'a>(addrs: impl IntoIterator<Item = &'a Multiaddr>) -> f64 {
    let mut total = 0usize;
    let mut buckets = HashSet::new();
    for a in addrs {
        total += 1;
        if let Some(ip) = ip_of(a) {
            buckets.insert(subnet_of_ip(ip));
        }
    }
    if total == 0 {
        1.0
    } else {
        buckets.len() as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_weights_and_clamping() {
        let all = Inputs {
            uptime: 1.0,
            bandwidth: 3.0,
            diversity: 1.0,
            latency: 1.0,
            fill: 1.0,
        };
        assert!((score(&all) - 100.0).abs() < 1e-9, "bandwidth clamped to 1");
        let i = Inputs {
            uptime: 0.5,
            bandwidth: 0.0,
            diversity: 0.5,
            latency: 1.0,
            fill: 0.1,
        };
        assert!((score(&i) - (10.0 + 0.0 + 10.0 + 15.0 + 2.5)).abs() < 1e-9);
        assert_eq!(
            score(&Inputs {
                uptime: f64::NAN,
                ..Default::default()
            }),
            0.0
        );
    }

    #[test]
    fn newcomer_needs_20_and_day_old_peer_needs_80() {
        let i = Inputs {
            uptime: 0.0,
            bandwidth: 0.0,
            diversity: 0.5,
            latency: 1.0,
            fill: 0.0,
        };
        // 10 + 15 = 25
        assert!(admit(&i, Duration::ZERO).is_ok());
        let r = admit(&i, Duration::from_secs(24 * 3600)).unwrap_err();
        assert_eq!(r.threshold, 80.0);
        assert!((r.score - 25.0).abs() < 1e-9);
        // Exactly at the bar is admitted (Go rejects only `score < threshold`).
        let at = Inputs {
            diversity: 1.0,
            ..Default::default()
        };
        assert_eq!(admit(&at, Duration::ZERO), Ok(20.0));
        let at12h = Inputs {
            uptime: 1.0,
            bandwidth: 1.0,
            diversity: 0.5,
            ..Default::default()
        };
        assert!(
            admit(&at12h, Duration::from_secs(12 * 3600)).is_ok(),
            "50 ≥ 50"
        );
        assert!(admit(&at12h, Duration::from_secs(12 * 3600 + 60)).is_err());
    }

    #[test]
    fn diversity_buckets_ipv4_by_24_and_ipv6_by_48() {
        let a: Vec<Multiaddr> = [
            "/ip4/10.0.0.1/tcp/1",
            "/ip4/10.0.0.2/tcp/1",
            "/ip4/10.0.1.1/tcp/1",
            "/ip6/2001:db8:1::1/tcp/1",
            "/ip6/2001:db8:2::1/tcp/1",
            "/dns4/example.org/tcp/1",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert!((subnet_diversity(&a) - 4.0 / 6.0).abs() < 1e-9);
        assert_eq!(subnet_diversity(std::iter::empty()), 1.0);
    }
}
