//! The simulated world: honest sidecars (real `App`s on the link model), their ground truth
//! (who is up, since when, with which clock) and what they report (the observation log).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use garden_sidecar::app::{App, Launch};
use garden_sidecar::config::{Config, Role};
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::membership::node::{Event, EvictReason};
use garden_sidecar::net::transport;
use garden_sidecar::time::{Clock, Timestamp};
use libp2p::{multiaddr::Protocol, pnet::PreSharedKey, Multiaddr, PeerId};
use tokio::sync::broadcast::error::RecvError;

use crate::link::{Crash, Net};

/// What kind of process a simulated peer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Indexer,
    Node,
    Hostile,
}

/// What an honest process reported, at a protocol time (the shared, unskewed clock).
#[derive(Clone, Debug)]
pub enum Report {
    /// `observer`'s pool took `peer` in.
    Joined {
        peer: usize,
    },
    Suspected {
        peer: usize,
    },
    Cleared {
        peer: usize,
    },
    /// `observer` declared `peer` dead (`dead`) or dropped it for another reason.
    Evicted {
        peer: usize,
        dead: bool,
    },
    /// `observer`'s gater banned `peer` (first seen by a status poll).
    Banned {
        peer: usize,
    },
}

/// One observation.
#[derive(Clone, Debug)]
pub struct Obs {
    pub t: Timestamp,
    pub observer: usize,
    pub report: Report,
}

/// Ground truth: a process went up or down.
#[derive(Clone, Debug)]
pub struct Life {
    pub t: Timestamp,
    pub peer: usize,
    pub up: bool,
    pub how: Option<Crash>,
}

/// Shared log of observations and ground truth.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<LogInner>>);

#[derive(Default)]
pub struct LogInner {
    pub obs: Vec<Obs>,
    pub life: Vec<Life>,
    /// Membership events lost because an observer lagged behind its broadcast channel.
    pub lagged: u64,
}

impl Log {
    pub fn push(&self, o: Obs) {
        self.lock().obs.push(o);
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One simulated peer (honest or hostile): identity and place on the network.
pub struct Peer {
    pub kind: Kind,
    pub identity: Arc<NodeIdentity>,
    pub skew_ms: i64,
    pub app: Option<App>,
    /// Seeds this process dials at start.
    pub seeds: Vec<Multiaddr>,
    /// Processes started for this identity (1 after the first start).
    pub incarnations: u32,
}

impl Peer {
    pub fn up(&self) -> bool {
        self.app.is_some()
    }
}

/// The world: network, clock, peers and the log.
pub struct World {
    pub net: Net,
    pub clock: Clock,
    pub psk: PreSharedKey,
    pub peers: Vec<Peer>,
    pub by_id: HashMap<PeerId, usize>,
    pub log: Log,
}

/// `/memory/<port>/p2p/<peer id>` of peer `i`.
pub fn addr_of(i: usize, id: &PeerId) -> Multiaddr {
    Net::addr(i).with(Protocol::P2p(*id))
}

impl World {
    pub fn new(net: Net, clock: Clock) -> Self {
        World {
            net,
            clock,
            psk: PreSharedKey::new([0x5a; 32]),
            peers: Vec::new(),
            by_id: HashMap::new(),
            log: Log::default(),
        }
    }

    /// Adds a peer (not started).
    pub fn add(&mut self, kind: Kind, slow: bool, skew_ms: i64, seeds: Vec<Multiaddr>) -> usize {
        let identity = Arc::new(NodeIdentity::generate());
        let i = self.net.add_node(slow);
        assert_eq!(i, self.peers.len(), "peers and network nodes share indices");
        self.by_id.insert(identity.peer_id(), i);
        self.peers.push(Peer {
            kind,
            identity,
            skew_ms,
            app: None,
            seeds,
            incarnations: 0,
        });
        i
    }

    pub fn addr(&self, i: usize) -> Multiaddr {
        addr_of(i, &self.peers[i].identity.peer_id())
    }

    fn config(&self, i: usize) -> Config {
        let p = &self.peers[i];
        let mut c = Config::default();
        c.network.role = match p.kind {
            Kind::Indexer => Role::Indexer,
            _ => Role::Node,
        };
        c.network.listen = vec!["/memory/0".into()];
        c.network.seeds = p.seeds.iter().map(|a| a.to_string()).collect();
        c.membership.allow_loopback = true;
        // The simulation measures the discovery and membership planes; no DTN files.
        c.data_plane.enabled = false;
        c.discovery.name = match p.kind {
            Kind::Indexer => format!("indexer-{i:04}"),
            _ => format!("site-{i:04}"),
        };
        c
    }

    /// Starts honest peer `i` (a fresh process: new incarnation, born-at and heartbeat
    /// sequence) and follows its membership events.
    pub async fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let cfg = self.config(i);
        let p = &self.peers[i];
        let clock = self.clock.shared_origin(p.skew_ms);
        let t = transport::secure(self.net.endpoint(i), p.identity.keypair(), self.psk)?;
        let app = App::launch(
            p.identity.clone(),
            self.psk,
            &cfg,
            Launch {
                clock,
                transport: Some(t),
                wake: None,
                connected: None,
            },
            |_| {},
        )
        .await?;
        self.follow(i, &app).await?;
        let p = &mut self.peers[i];
        p.app = Some(app);
        p.incarnations += 1;
        self.log.lock().life.push(Life {
            t: self.clock.now(),
            peer: i,
            up: true,
            how: None,
        });
        Ok(())
    }

    /// Copies `i`'s pool events into the log (protocol time of the shared clock).
    async fn follow(&self, i: usize, app: &App) -> anyhow::Result<()> {
        if self.peers[i].kind == Kind::Hostile {
            return Ok(());
        }
        let mut rx = app.client.membership_events().await?;
        let log = self.log.clone();
        let clock = self.clock.clone();
        let by_id = self.by_id.clone();
        tokio::spawn(async move {
            loop {
                let e = match rx.recv().await {
                    Ok(e) => e,
                    Err(RecvError::Lagged(n)) => {
                        log.lock().lagged += n;
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let idx = |p: &PeerId| by_id.get(p).copied().unwrap_or(usize::MAX);
                let report = match e {
                    Event::Joined(p) => Report::Joined { peer: idx(&p) },
                    Event::Suspected(p) => Report::Suspected { peer: idx(&p) },
                    Event::Cleared(p) => Report::Cleared { peer: idx(&p) },
                    Event::Evicted { peer, reason } => Report::Evicted {
                        peer: idx(&peer),
                        dead: reason == EvictReason::Dead,
                    },
                    Event::ClockOffset { .. } => continue,
                };
                log.push(Obs {
                    t: clock.now(),
                    observer: i,
                    report,
                });
            }
        });
        Ok(())
    }

    /// Takes honest peer `i` down.
    pub async fn crash(&mut self, i: usize, how: Crash) {
        // The crash happens when the network cuts the process off, not when its shutdown
        // returns: its peers may read the reset and report it meanwhile (seconds of protocol
        // time at ×20). Stamped after the shutdown, those early reports fell before the crash
        // and their holders looked as if they never learnt of it.
        let t = self.clock.now();
        self.net.crash(i, how);
        if let Some(app) = self.peers[i].app.take() {
            // A crash sends no tombstones: the process just stops.
            let _ = tokio::time::timeout(Duration::from_secs(10), app.shutdown()).await;
        }
        self.log.lock().life.push(Life {
            t,
            peer: i,
            up: false,
            how: Some(how),
        });
    }

    /// Honest peers of `kind` that are up.
    pub fn live(&self, kind: Option<Kind>) -> Vec<usize> {
        self.peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.up() && p.kind != Kind::Hostile && kind.is_none_or(|k| p.kind == k))
            .map(|(i, _)| i)
            .collect()
    }

    pub fn is_honest(&self, i: usize) -> bool {
        self.peers.get(i).is_some_and(|p| p.kind != Kind::Hostile)
    }
}
