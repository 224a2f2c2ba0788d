//! Hostile PSK holders: bare libp2p swarms on the same links and the same private network
//! as the honest sidecars, speaking the wire formats directly (no sidecar code decides what
//! they send). Each runs its attacks in turn against the honest indexers it reaches.
//!
//! | attack | how |
//! |---|---|
//! | search flood | gossipsub RPC frames written on a raw `/meshsub/1.1.0` stream, each message signed by a fresh throwaway key (the author the per-peer limit is keyed on) |
//! | store fill | valid records of throwaway identities, PUT through the hostile's Kademlia |
//! | name squatting | `/name/<honest name>` records signed by the hostile |
//! | forged SWIM | correctly signed heartbeats carrying `alive` at `u64::MAX`, `dead` and `suspect` events about honest indexers |
//! | forged tombstones | tombstones claiming honest DIDs, and replays of honest records seen earlier |
//! | malformed | oversized length prefixes, garbage and truncated frames on every protocol |

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use garden_sidecar::discovery::record::{
    name_key, node_key, sign_body, Draft, RecordBody, RecordKind, VERSION,
};
use garden_sidecar::discovery::search::{self, Needle, Query};
use garden_sidecar::keys::NodeIdentity;
use garden_sidecar::membership::codec::{self as mcodec, Protocol as _};
use garden_sidecar::membership::heartbeat::{Heartbeat, Signer};
use garden_sidecar::membership::swim::{Kind, MemberEvent, MAX_HOPS};
use garden_sidecar::net::{behaviour::KAD_PROTOCOL, transport};
use garden_sidecar::time::Clock;
use libp2p::{
    kad::{self, store::MemoryStore},
    request_response::{self, ProtocolSupport},
    swarm::NetworkBehaviour,
    Multiaddr, PeerId, StreamProtocol, Swarm,
};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use tokio::sync::watch;

use crate::link::Net;
use crate::scenario::Attack;

/// Gossipsub's protocol id (the honest side speaks 1.1 and 1.0).
const MESHSUB: StreamProtocol = StreamProtocol::new("/meshsub/1.1.0");

#[derive(NetworkBehaviour)]
struct Bad {
    kad: kad::Behaviour<MemoryStore>,
    heartbeat: request_response::Behaviour<mcodec::Codec<mcodec::HeartbeatProtocol>>,
    stream: libp2p_stream::Behaviour,
}

/// What a hostile process knows of the honest world.
#[derive(Clone)]
pub struct Targets {
    /// Honest indexers: (peer, address).
    pub indexers: Vec<(PeerId, Multiaddr)>,
    /// Honest processes: (DID, name).
    pub honest: Vec<(String, String)>,
}

/// Starts hostile process `i` on the network; it attacks until `stop` turns true.
#[allow(clippy::too_many_arguments)] // one call site; each argument is a different concern
pub fn spawn(
    net: &Net,
    i: usize,
    identity: Arc<NodeIdentity>,
    psk: libp2p::pnet::PreSharedKey,
    clock: Clock,
    targets: Targets,
    attacks: Vec<Attack>,
    every: Duration,
    seed: u64,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let t = transport::secure(net.endpoint(i), identity.keypair(), psk)?;
    let pid = identity.peer_id();
    let mut kad =
        kad::Behaviour::with_config(pid, MemoryStore::new(pid), kad::Config::new(KAD_PROTOCOL));
    kad.set_mode(Some(kad::Mode::Client));
    let behaviour = Bad {
        kad,
        heartbeat: request_response::Behaviour::with_codec(
            mcodec::Codec::default(),
            [(mcodec::HeartbeatProtocol::NAME, ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(clock.real(Duration::from_secs(10))),
        ),
        stream: libp2p_stream::Behaviour::new(),
    };
    let cfg = libp2p::swarm::Config::with_tokio_executor()
        .with_idle_connection_timeout(clock.real(Duration::from_secs(600)));
    let mut swarm = Swarm::new(t, behaviour, pid, cfg);
    swarm.listen_on(Net::addr(i))?;
    for (peer, addr) in &targets.indexers {
        swarm.behaviour_mut().kad.add_address(peer, addr.clone());
    }
    let mut h = Hostile {
        swarm,
        identity,
        clock,
        targets,
        attacks,
        round: 0,
        seq: 1,
        rng: StdRng::seed_from_u64(seed),
        seen: Vec::new(),
    };
    tokio::spawn(async move { h.run(every, stop).await });
    Ok(())
}

struct Hostile {
    swarm: Swarm<Bad>,
    identity: Arc<NodeIdentity>,
    clock: Clock,
    targets: Targets,
    attacks: Vec<Attack>,
    round: usize,
    seq: u64,
    rng: StdRng,
    /// Honest records seen in lookups (replayed later).
    seen: Vec<(String, Vec<u8>)>,
}

impl Hostile {
    async fn run(&mut self, every: Duration, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.clock.real(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                e = self.swarm.select_next_some() => self.on_event(e),
                _ = tick.tick() => self.attack(),
                _ = stop.changed() => return,
            }
        }
    }

    fn on_event(&mut self, e: libp2p::swarm::SwarmEvent<BadEvent>) {
        if let libp2p::swarm::SwarmEvent::Behaviour(BadEvent::Kad(
            kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(r))),
                ..
            },
        )) = e
        {
            if self.seen.len() < 64 {
                let key = String::from_utf8_lossy(r.record.key.as_ref()).into_owned();
                self.seen.push((key, r.record.value));
            }
        }
    }

    fn target(&mut self) -> Option<PeerId> {
        self.targets.indexers.choose(&mut self.rng).map(|(p, _)| *p)
    }

    fn now_ms(&self) -> u64 {
        self.clock.now().as_millis()
    }

    fn put(&mut self, key: &str, value: Vec<u8>) {
        let rec = kad::Record::new(kad::RecordKey::new(&key), value);
        let _ = self
            .swarm
            .behaviour_mut()
            .kad
            .put_record(rec, kad::Quorum::One);
    }

    fn attack(&mut self) {
        if self.attacks.is_empty() {
            return;
        }
        let a = self.attacks[self.round % self.attacks.len()];
        self.round += 1;
        match a {
            Attack::SearchFlood => self.search_flood(),
            Attack::StoreFill => self.store_fill(),
            Attack::NameSquat => self.name_squat(),
            Attack::ForgedSwim => self.forged_swim(),
            Attack::ForgedTombstone => self.forged_tombstone(),
            Attack::Malformed => self.malformed(),
        }
    }

    /// Twenty gossiped searches, each under a fresh author key, for a needle every honest
    /// node's name matches.
    fn search_flood(&mut self) {
        let Some(peer) = self.target() else { return };
        let mut frames = Vec::new();
        for _ in 0..20 {
            let author = NodeIdentity::generate();
            let data = Query {
                query_id: self.rng.gen(),
                needle: Needle::parse("site").expect("a valid needle"),
            }
            .encode();
            frames.push(gossip_rpc(&author, &data, self.rng.gen()));
        }
        self.write_raw(peer, MESHSUB, frames.concat());
    }

    /// Ten valid records of throwaway identities.
    fn store_fill(&mut self) {
        let now = self.now_ms();
        for _ in 0..10 {
            let id = NodeIdentity::generate();
            let name = format!("filler-{:016x}", self.rng.gen::<u64>());
            let v = draft(&name).sign(&id, now);
            self.put(&node_key(&id.did()), v);
        }
    }

    /// The names of five honest processes, claimed by the hostile's own records.
    fn name_squat(&mut self) {
        let now = self.now_ms();
        let names: Vec<String> = self
            .targets
            .honest
            .choose_multiple(&mut self.rng, 5)
            .map(|(_, n)| n.clone())
            .collect();
        for name in names {
            let v = draft(&name).sign(&self.identity, now);
            self.put(&name_key(&name), v);
        }
    }

    /// A correctly signed heartbeat whose SWIM piggyback says honest indexers are alive at
    /// `u64::MAX`, dead, or suspected.
    fn forged_swim(&mut self) {
        let Some(peer) = self.target() else { return };
        let subjects: Vec<PeerId> = self
            .targets
            .indexers
            .choose_multiple(&mut self.rng, 5)
            .map(|(p, _)| *p)
            .collect();
        let events = subjects
            .iter()
            .enumerate()
            .map(|(k, p)| MemberEvent {
                kind: [Kind::Alive, Kind::Dead, Kind::Suspect][k % 3],
                peer: *p,
                incarnation: if k % 3 == 0 { u64::MAX } else { 1_000 },
                hops_left: MAX_HOPS,
            })
            .collect();
        let hb = Heartbeat {
            seq: self.seq,
            timestamp: self.clock.now(),
            name: Some("site-forger".into()),
            events,
            ..Default::default()
        };
        self.seq += 1;
        let signed = Signer::from_libp2p(self.identity.ed25519()).sign(hb, &peer);
        self.swarm
            .behaviour_mut()
            .heartbeat
            .send_request(&peer, signed);
    }

    /// Tombstones claiming honest DIDs (signed by the hostile), replays of honest records
    /// seen in earlier lookups, and lookups to see more.
    fn forged_tombstone(&mut self) {
        let now = self.now_ms();
        let victims: Vec<(String, String)> = self
            .targets
            .honest
            .choose_multiple(&mut self.rng, 3)
            .cloned()
            .collect();
        for (did, name) in victims {
            let body = RecordBody {
                version: VERSION,
                kind: RecordKind::Tombstone,
                did: did.clone(),
                name,
                public_key: self.identity.public().encode_protobuf(),
                addrs: vec![],
                issued_at_ms: now,
                expires_at_ms: now + 600_000,
                location: None,
                indexer: None,
                links: Default::default(),
            };
            self.put(&node_key(&did), sign_body(&self.identity, &body));
            self.swarm
                .behaviour_mut()
                .kad
                .get_record(kad::RecordKey::new(&node_key(&did)));
        }
        if let Some((key, value)) = self.seen.choose(&mut self.rng).cloned() {
            self.put(&key, value);
        }
    }

    /// On every protocol: a length prefix far above any bound, random garbage, and a
    /// truncated frame.
    fn malformed(&mut self) {
        let Some(peer) = self.target() else { return };
        let protocols = [
            KAD_PROTOCOL,
            mcodec::HeartbeatProtocol::NAME,
            mcodec::WitnessProtocol::NAME,
            mcodec::ProbeProtocol::NAME,
            mcodec::IndirectProbeProtocol::NAME,
            mcodec::CandidatesProtocol::NAME,
            search::PROTOCOL,
            MESHSUB,
            StreamProtocol::new("/garden/id/1.0.0"),
            StreamProtocol::new("/ipfs/ping/1.0.0"),
        ];
        for p in protocols {
            let mut oversized = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
            oversized.extend(std::iter::repeat_n(0u8, 4096));
            let garbage: Vec<u8> = (0..1024).map(|_| self.rng.gen()).collect();
            let truncated = vec![0x80, 0x01, 1, 2, 3];
            for bytes in [oversized, garbage, truncated] {
                self.write_raw(peer, p.clone(), bytes);
            }
        }
    }

    /// Opens a stream of `protocol` to `peer` and writes `bytes` (in a task of its own).
    fn write_raw(&mut self, peer: PeerId, protocol: StreamProtocol, bytes: Vec<u8>) {
        let mut control = self.swarm.behaviour().stream.new_control();
        let timeout = self.clock.real(Duration::from_secs(30));
        tokio::spawn(async move {
            let _ = tokio::time::timeout(timeout, async move {
                if let Ok(mut s) = control.open_stream(peer, protocol).await {
                    let _ = s.write_all(&bytes).await;
                    let _ = s.close().await;
                }
            })
            .await;
        });
    }
}

fn draft(name: &str) -> Draft {
    Draft {
        kind: RecordKind::Peer,
        name: name.into(),
        addrs: vec![],
        location: None,
        indexer: None,
        links: Default::default(),
        ttl_ms: 120_000,
    }
}

/// Protobuf: a length-delimited field.
fn field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    varint(out, u64::from(number << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One gossipsub RPC frame (length-prefixed protobuf `RPC { publish: [Message] }`) whose
/// message is signed by `author` as libp2p's strict validation requires.
fn gossip_rpc(author: &NodeIdentity, data: &[u8], seqno: u64) -> Vec<u8> {
    let from = author.peer_id().to_bytes();
    let seq = seqno.to_be_bytes();
    let mut unsigned = Vec::new();
    field(&mut unsigned, 1, &from);
    field(&mut unsigned, 2, data);
    field(&mut unsigned, 3, &seq);
    field(&mut unsigned, 4, search::TOPIC.as_bytes());
    let mut to_sign = b"libp2p-pubsub:".to_vec();
    to_sign.extend_from_slice(&unsigned);
    let signature = author.sign(&to_sign);
    let mut msg = unsigned;
    field(&mut msg, 5, &signature);
    field(&mut msg, 6, &author.public().encode_protobuf());
    let mut rpc = Vec::new();
    field(&mut rpc, 2, &msg);
    let mut frame = Vec::new();
    varint(&mut frame, rpc.len() as u64);
    frame.extend(rpc);
    frame
}
