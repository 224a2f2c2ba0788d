//! Transport: TCP, wrapped in the libp2p private-network (pnet) PSK handshake, then Noise and
//! Yamux (the `ipfs-private` example's stack).
//!
//! QUIC is not offered: pnet encrypts a raw byte stream before the security handshake, and
//! QUIC's built-in TLS 1.3 leaves no place for it (rust-libp2p #3275), so a QUIC listener
//! would let peers without the PSK in. A private network is TCP-only; see docs/DIVERGENCES.md.

use std::time::Duration;

use libp2p::{
    core::{
        muxing::StreamMuxerBox,
        transport::{Boxed, MemoryTransport},
        upgrade::Version,
    },
    identity::Keypair,
    noise,
    pnet::{PnetConfig, PreSharedKey},
    tcp, yamux, PeerId, Transport,
};

/// Errors building the transport.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("noise configuration: {0}")]
    Noise(#[from] noise::Error),
}

/// Timeout for the whole upgrade (pnet + Noise + Yamux negotiation).
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds the boxed transport for `keypair` inside the private network `psk`.
///
/// TCP carries real traffic; the in-process memory transport (`/memory/<n>` addresses) runs
/// the same pnet + Noise + Yamux stack for many nodes in one process (socket-free tests and
/// the simulation harness). It never leaves the process, so offering it costs nothing.
pub fn build(
    keypair: &Keypair,
    psk: PreSharedKey,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Error> {
    let noise = noise::Config::new(keypair)?;
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let transport = tcp
        .or_transport(MemoryTransport::default())
        .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux::Config::default())
        .timeout(UPGRADE_TIMEOUT)
        .boxed();
    Ok(transport)
}
