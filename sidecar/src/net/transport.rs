//! Transport: TCP, wrapped in the libp2p private-network (pnet) PSK handshake, then Noise and
//! Yamux (the `ipfs-private` example's stack).
//!
//! QUIC is not offered: pnet encrypts a raw byte stream before the security handshake, and
//! QUIC's built-in TLS 1.3 leaves no place for it (rust-libp2p #3275), so a QUIC listener
//! would let peers without the PSK in. A private network is TCP-only; see docs/DIVERGENCES.md.

use std::time::Duration;

use libp2p::{
    core::{muxing::StreamMuxerBox, transport::MemoryTransport, upgrade::Version},
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

/// A connected node's transport: authenticated peer id and a multiplexed connection.
pub type Boxed = libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>;

/// Builds the boxed transport for `keypair` inside the private network `psk`.
///
/// TCP carries real traffic; the in-process memory transport (`/memory/<n>` addresses) runs
/// the same pnet + Noise + Yamux stack for many nodes in one process (socket-free tests). It
/// never leaves the process, so offering it costs nothing.
pub fn build(keypair: &Keypair, psk: PreSharedKey) -> Result<Boxed, Error> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    secure(tcp.or_transport(MemoryTransport::default()), keypair, psk)
}

/// Wraps any byte-stream transport in the private-network stack: the pnet PSK handshake,
/// then Noise and Yamux. The simulation harness passes its own in-process links (with
/// latency, loss and byte counters) through this, so simulated nodes run the real stack.
pub fn secure<T>(base: T, keypair: &Keypair, psk: PreSharedKey) -> Result<Boxed, Error>
where
    T: Transport + Send + Unpin + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Send + Unpin + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    let noise = noise::Config::new(keypair)?;
    Ok(base
        .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux::Config::default())
        .timeout(UPGRADE_TIMEOUT)
        .boxed())
}
