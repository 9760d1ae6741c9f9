//! The emulator's broker served over in-memory streams: no TLS, no sockets, tokio's clock.

use super::connection::serve_mqtt;
use super::shared::{ClosedConnection, Shared, run_timers};
use super::{STOP_LIMIT, WebRules};
use crate::broker::{Broker, BrokerConfig, PeerIdentity};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::task::{JoinHandle, JoinSet};

/// The certificate fingerprint of a connection made by [`InMemoryEmulator::connect`], which
/// has no certificate: 64 zeros.
pub const NO_CERTIFICATE_SHA256: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Buffer of each direction of a [`InMemoryEmulator::connect`] stream.
const DUPLEX_BUFFER: usize = 64 * 1024;

/// The emulator's broker serving MQTT over in-memory streams, for tests in virtual time.
///
/// No PKI, no TLS and no sockets: each stream is served by a task of its own with the same
/// pump as a TLS connection after its handshake, and the broker's timers run on tokio's
/// clock. Under `#[tokio::test(start_paused = true)]` a keep-alive of 30 s therefore closes a
/// silent client after 45 s of virtual time, at once in real time. The peer identity (what a
/// client certificate would give, and what a [`Policy`](crate::broker::Policy) sees) is a
/// parameter.
///
/// Every close is recorded: [`closes`](InMemoryEmulator::closes) lists them and
/// [`next_close`](InMemoryEmulator::next_close) waits for the next one, so a test can assert
/// why a connection ended, or that none did.
///
/// ```
/// use iot443_emulator::broker::{BrokerConfig, CloseReason};
/// use iot443_emulator::server::InMemoryEmulator;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> std::io::Result<()> {
/// let mut emulator = InMemoryEmulator::start(BrokerConfig::default());
/// let mut client = emulator.connect(Some("device"));
/// // CONNECT: MQTT 3.1.1, clean session, keep-alive 30 s, client id "dev".
/// client.write_all(&[0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30, 0, 3, b'd', b'e', b'v']).await?;
/// let mut connack = [0; 4];
/// client.read_exact(&mut connack).await?;
/// assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
///
/// // Silence: the broker closes the connection after 1.5 × 30 s of virtual time.
/// let started = tokio::time::Instant::now();
/// let closed = emulator.next_close().await;
/// assert_eq!(closed.reason, CloseReason::KeepAliveTimeout { keep_alive_secs: 30 });
/// assert_eq!(closed.client_id.as_deref(), Some("dev"));
/// assert!(started.elapsed() >= std::time::Duration::from_secs(45));
/// emulator.stop().await;
/// # Ok(())
/// # }
/// ```
pub struct InMemoryEmulator {
    shared: Arc<Shared>,
    timers: Option<JoinHandle<()>>,
    connections: Mutex<JoinSet<()>>,
    /// Closes already returned by `next_close`.
    closes_taken: usize,
}

impl InMemoryEmulator {
    /// Starts a broker with `broker`'s rules and its timer task.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`: it spawns the timer task.
    /// Shadows are kept in memory only; their timestamps are the wall clock's at start plus the
    /// (possibly virtual) time since.
    pub fn start(broker: BrokerConfig) -> InMemoryEmulator {
        let mut broker = Broker::new(broker);
        broker.set_unix_time(iot443_proto::Instant::ZERO, super::shadow_store::unix_now());
        let shared = Arc::new(Shared::new(broker, true));
        let timers = tokio::spawn(run_timers(Arc::clone(&shared)));
        InMemoryEmulator {
            shared,
            timers: Some(timers),
            connections: Mutex::new(JoinSet::new()),
            closes_taken: 0,
        }
    }

    /// Opens a connection for a client whose certificate has the subject common name
    /// `common_name` (its fingerprint is [`NO_CERTIFICATE_SHA256`]) and returns the client's
    /// end. Once the emulator has stopped, the stream reads end of file at once.
    pub fn connect(&self, common_name: Option<&str>) -> DuplexStream {
        let (client, server) = tokio::io::duplex(DUPLEX_BUFFER);
        let peer = PeerIdentity {
            common_name: common_name.map(str::to_owned),
            certificate_sha256: NO_CERTIFICATE_SHA256.to_owned(),
        };
        self.serve(server, peer);
        client
    }

    /// Serves MQTT on `stream`, the server's end of any transport, for a client with the
    /// identity `peer`, in a task of its own until the client or the broker closes it or the
    /// emulator stops.
    pub fn serve<S>(&self, stream: S, peer: PeerIdentity)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let mut connections = self.connections.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget the tasks that have ended, so that a long test does not accumulate them.
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_mqtt(stream, "in-memory", peer, shared, None));
    }

    /// Sets what [`InMemoryEmulator::serve_websocket`] verifies; without it every upgrade is
    /// refused with 403. Set once: later calls change nothing.
    pub fn set_web_rules(&self, rules: WebRules) {
        self.shared.set_web(Arc::new(rules));
    }

    /// Serves the WebSocket road on `stream`, as the 443-style listener does for a client
    /// without ALPN after TLS: the HTTP upgrade `GET /mqtt` verified with SigV4 against
    /// [`InMemoryEmulator::set_web_rules`], then MQTT in binary frames until the end (at most
    /// [`WebRules::websocket_max_duration`], on tokio's clock).
    pub fn serve_websocket<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let mut connections = self.connections.lock().unwrap_or_else(PoisonError::into_inner);
        while connections.try_join_next().is_some() {}
        connections.spawn(super::websocket::serve(stream, "in-memory", shared));
    }

    /// Every connection closed so far, in order: closed by the broker (keep-alive, a rule, a
    /// DISCONNECT…) or ended by its transport.
    pub fn closes(&self) -> Vec<ClosedConnection> {
        self.shared.closes(0)
    }

    /// The next close not yet returned by this method, waiting for it if needed. Wrap it in
    /// `tokio::time::timeout` when the close may never come.
    pub async fn next_close(&mut self) -> ClosedConnection {
        let closed = self.shared.close_at(self.closes_taken).await;
        self.closes_taken += 1;
        closed
    }

    /// Closes every connection and waits until its task and the timer task have ended.
    pub async fn stop(mut self) {
        self.shared.shut_down();
        if let Some(timers) = self.timers.take() {
            let _ = tokio::time::timeout(STOP_LIMIT, timers).await;
        }
        let connections =
            std::mem::take(&mut *self.connections.lock().unwrap_or_else(PoisonError::into_inner));
        let _ = tokio::time::timeout(STOP_LIMIT, connections.join_all()).await;
    }
}

impl std::fmt::Debug for InMemoryEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryEmulator")
            .field("closes_taken", &self.closes_taken)
            .finish_non_exhaustive()
    }
}

impl Drop for InMemoryEmulator {
    /// Stops the tasks without waiting for them.
    fn drop(&mut self) {
        self.shared.shut_down();
    }
}
