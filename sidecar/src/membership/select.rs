//! Choosing indexers among candidates: routable-address filter,
//! fill-rate weighted selection with subnet diversity and the quick score used to
//! rank replacement candidates.

use std::collections::HashSet;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use rand::Rng;

use crate::membership::admission::{ip_of, subnet_of_ip};
use crate::membership::score::latency_score;
use crate::membership::{unit, PeerInfo};

/// Fill rate assumed for a candidate whose load is unknown.
pub const UNKNOWN_FILL: f64 = 0.5;
/// Smallest selection weight, so a full indexer can still be picked when nothing else exists.
pub const MIN_WEIGHT: f64 = 0.05;

/// Whether an address is worth dialling from elsewhere: not loopback or unspecified. DNS
/// addresses are kept (Go dropped every address without a literal IP, B14). With
/// `allow_loopback` (single-host test networks) loopback is kept too.
pub fn is_routable(a: &Multiaddr, allow_loopback: bool) -> bool {
    match a.iter().next() {
        Some(Protocol::Ip4(ip)) => !ip.is_unspecified() && (allow_loopback || !ip.is_loopback()),
        Some(Protocol::Ip6(ip)) => !ip.is_unspecified() && (allow_loopback || !ip.is_loopback()),
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) | Protocol::Dnsaddr(_)) => {
            true
        }
        // In-process addresses (socket-free tests, simulations) are as local as loopback.
        Some(Protocol::Memory(_)) => allow_loopback,
        _ => false,
    }
}

/// Keep only routable addresses; `None` when none remain.
pub fn routable(info: &PeerInfo, allow_loopback: bool) -> Option<PeerInfo> {
    let addrs: Vec<Multiaddr> = info
        .addrs
        .iter()
        .filter(|a| is_routable(a, allow_loopback))
        .cloned()
        .collect();
    if addrs.is_empty() {
        None
    } else {
        Some(PeerInfo::new(info.peer, addrs))
    }
}

/// Subnet of a peer: that of its first address with a non-loopback IP.
pub fn subnet_of(info: &PeerInfo) -> Option<[u8; 6]> {
    info.addrs
        .iter()
        .filter_map(ip_of)
        .find(|ip| !ip.is_loopback())
        .map(subnet_of_ip)
}

/// A discovered indexer and, when known, its fill rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Peer and addresses.
    pub info: PeerInfo,
    /// Its fill rate if known (e.g. from a probe heartbeat).
    pub fill_rate: Option<f64>,
}

/// Pick up to `want` candidates, preferring less loaded indexers and at most one per subnet.
///
/// Weighted random order without replacement (Efraimidis–Spirakis keys `u^(1/w)`), weight
/// `max(1 − fill, 0.05)`; unknown fill counts as 0.5. Go ranked by the symmetric `F(1−F)`, so an
/// empty indexer ranked last and "prefer less loaded" never happened (B13).
pub fn select_by_fill_rate<R: Rng>(
    rng: &mut R,
    candidates: &[Candidate],
    want: usize,
) -> Vec<PeerInfo> {
    if want == 0 {
        return Vec::new();
    }
    let mut keyed: Vec<(f64, &Candidate)> = candidates
        .iter()
        .map(|c| {
            let w = (1.0 - unit(c.fill_rate.unwrap_or(UNKNOWN_FILL))).max(MIN_WEIGHT);
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            (u.powf(1.0 / w), c)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut used = HashSet::new();
    let mut seen_peers = HashSet::new();
    let mut out = Vec::new();
    for (_, c) in keyed {
        if out.len() == want {
            break;
        }
        if !seen_peers.insert(c.info.peer) {
            continue;
        }
        if let Some(s) = subnet_of(&c.info) {
            if !used.insert(s) {
                continue;
            }
        }
        out.push(c.info.clone());
    }
    out
}

/// Quick score of a replacement candidate from one probe heartbeat: `latency × 50` when
/// it did not answer, else `(0.5·latency + 0.5·(1 − fill)) × 100`.
pub fn quick_score(rtt: Duration, fill_rate: Option<f64>) -> f64 {
    let l = latency_score(rtt);
    match fill_rate {
        None => l * 50.0,
        Some(f) => (0.5 * l + 0.5 * (1.0 - unit(f))) * 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::testutil::peer;
    use rand::SeedableRng;

    fn cand(p: u8, ip: &str, fill: Option<f64>) -> Candidate {
        Candidate {
            info: PeerInfo::new(
                peer(p),
                vec![format!("/ip4/{ip}/tcp/4001").parse().unwrap()],
            ),
            fill_rate: fill,
        }
    }

    #[test]
    fn routable_filter_keeps_dns_and_drops_loopback_unless_allowed() {
        let lo: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let any: Multiaddr = "/ip4/0.0.0.0/tcp/1".parse().unwrap();
        let dns: Multiaddr = "/dns4/idx.example/tcp/1".parse().unwrap();
        let v6lo: Multiaddr = "/ip6/::1/tcp/1".parse().unwrap();
        assert!(!is_routable(&lo, false));
        assert!(is_routable(&lo, true));
        assert!(!is_routable(&any, true));
        assert!(is_routable(&dns, false));
        assert!(!is_routable(&v6lo, false));
        let info = PeerInfo::new(peer(1), vec![lo.clone()]);
        assert_eq!(routable(&info, false), None);
        assert_eq!(routable(&info, true), Some(info));
    }

    #[test]
    fn selection_is_subnet_diverse() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let c = vec![
            cand(1, "10.0.0.1", None),
            cand(2, "10.0.0.2", None),
            cand(3, "10.0.1.1", None),
        ];
        let s = select_by_fill_rate(&mut rng, &c, 3);
        assert_eq!(s.len(), 2, "two share a /24");
        assert!(select_by_fill_rate(&mut rng, &c, 0).is_empty());
    }

    #[test]
    fn selection_prefers_less_loaded() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let c = vec![
            cand(1, "10.0.0.1", Some(0.0)),
            cand(2, "10.0.1.1", Some(0.95)),
        ];
        let mut first_is_empty = 0;
        for _ in 0..1000 {
            if select_by_fill_rate(&mut rng, &c, 1)[0].peer == peer(1) {
                first_is_empty += 1;
            }
        }
        // Weights 1.0 vs 0.05: P(empty first) = 1/1.05 ≈ 0.95.
        assert!(first_is_empty > 900, "{first_is_empty}");
    }

    #[test]
    fn quick_score_formula() {
        assert_eq!(quick_score(Duration::ZERO, None), 50.0);
        assert!(
            (quick_score(Duration::from_secs(1), Some(0.2)) - (0.5 * 0.75 + 0.4) * 100.0).abs()
                < 1e-9
        );
        assert_eq!(quick_score(Duration::from_secs(5), None), 0.0);
    }
}
