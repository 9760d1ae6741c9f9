//! A scripted endpoint over in-memory pipes, for tests in virtual time: a [`Pipes`] connector
//! hands the client one pipe per connection attempt, and the test plays the server on the
//! other end, packet by packet ([`Peer`]).
//!
//! Everything runs under `#[tokio::test(start_paused = true)]`: the client's timers (keep-alive,
//! acknowledgement timeout, backoff) fire as soon as every task waits, so a test of "30 s
//! without SUBACK" takes no wall time and asserts on virtual time only.

use bytes::BytesMut;
use iot443::connect::{Connecting, Connector, Opened};
use iot443::{Client, ClientError, Config, ConnectionInfo, Events};
use iot443_proto::codec::{Codec, Connect, Packet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

/// The longest a peer waits for the client's next packet (virtual time in paused tests):
/// longer than any timer the tests use, so it ends only a test that is broken.
pub const PEER_WAIT: Duration = Duration::from_secs(120);

/// Bytes a pipe buffers each way.
pub const PIPE_BYTES: usize = 256 * 1024;

/// Hands out in-memory pipes; the server ends go to the [`Endpoint`].
pub struct Pipes {
    servers: mpsc::UnboundedSender<DuplexStream>,
    /// Attempts still to fail as the network would (a TCP connect timing out).
    failures: AtomicUsize,
    /// When each attempt started (virtual time under a paused clock).
    attempts: Mutex<Vec<tokio::time::Instant>>,
}

impl Pipes {
    /// The next `n` attempts fail like an unreachable network.
    pub fn fail_next(&self, n: usize) {
        self.failures.store(n, Ordering::SeqCst);
    }

    /// When each attempt so far started.
    pub fn attempts(&self) -> Vec<tokio::time::Instant> {
        self.attempts.lock().unwrap().clone()
    }
}

impl Connector for Pipes {
    fn connect(&self, _connect: &Connect) -> Connecting {
        self.attempts.lock().unwrap().push(tokio::time::Instant::now());
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Box::pin(async {
                Err(ClientError::Timeout {
                    addr: "scripted:8883".into(),
                    stage: "TCP connect",
                    after: Duration::from_secs(1),
                    hint: String::new(),
                })
            });
        }
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        let handed = self.servers.send(server);
        Box::pin(async move {
            handed.map_err(|_| ClientError::Closed)?;
            Ok(Opened::new(client, ConnectionInfo::new("scripted", 8883)))
        })
    }
}

/// The server side: every connection the client opens.
pub struct Endpoint {
    servers: mpsc::UnboundedReceiver<DuplexStream>,
}

/// A configuration for a scripted endpoint (no file is read: the connector is in memory).
pub fn config(client_id: &str) -> Config {
    let mut config = Config::builder("scripted", client_id, "unused.crt", "unused.key")
        .port(8883)
        .build()
        .expect("a valid configuration");
    config.reconnect.min_delay = Duration::from_millis(100);
    config.reconnect.max_delay = Duration::from_secs(1);
    config.reconnect.refused_min_delay = Duration::from_millis(100);
    config.reconnect.jitter_seed = Some(443);
    config
}

/// The connector and the endpoint it feeds.
pub fn pipes() -> (Arc<Pipes>, Endpoint) {
    let (servers, receiver) = mpsc::unbounded_channel();
    let pipes = Pipes { servers, failures: AtomicUsize::new(0), attempts: Mutex::new(Vec::new()) };
    (Arc::new(pipes), Endpoint { servers: receiver })
}

/// Connects a client to a scripted endpoint, which accepts the first CONNECT.
pub async fn connect(config: &Config) -> (Client, Events, Endpoint, Peer) {
    let (client, events, endpoint, peer, _) = connect_with_pipes(config).await;
    (client, events, endpoint, peer)
}

/// Like [`connect`], also returning the connector (to fail attempts, to read their times).
pub async fn connect_with_pipes(config: &Config) -> (Client, Events, Endpoint, Peer, Arc<Pipes>) {
    let (connector, mut endpoint) = pipes();
    let connecting = Client::builder(config).connector(Arc::clone(&connector) as _).connect();
    let accepting = async {
        let mut peer = endpoint.accept().await;
        peer.accept_connect().await;
        peer
    };
    let (connected, peer) = tokio::join!(connecting, accepting);
    let (client, events) = connected.expect("the client connects to the scripted endpoint");
    (client, events, endpoint, peer, connector)
}

impl Endpoint {
    /// The next connection the client opens.
    pub async fn accept(&mut self) -> Peer {
        let stream = self.servers.recv().await.expect("the client's connector is gone");
        Peer { stream, codec: Codec::default(), buf: BytesMut::new() }
    }
}

/// The server end of one connection.
pub struct Peer {
    stream: DuplexStream,
    codec: Codec,
    buf: BytesMut,
}

impl Peer {
    /// The next packet from the client; `None` once the client closed the connection. Fails
    /// the test when nothing comes within [`PEER_WAIT`].
    pub async fn next(&mut self) -> Option<Packet> {
        tokio::time::timeout(PEER_WAIT, self.read_packet())
            .await
            .unwrap_or_else(|_| panic!("nothing from the client within {PEER_WAIT:?}"))
    }

    async fn read_packet(&mut self) -> Option<Packet> {
        loop {
            if let Some(packet) =
                self.codec.decode(&mut self.buf).expect("valid MQTT from the client")
            {
                return Some(packet);
            }
            let read = self.stream.read_buf(&mut self.buf).await.unwrap_or(0);
            if read == 0 {
                return None;
            }
        }
    }

    /// The next packet, which must be there.
    pub async fn expect(&mut self) -> Packet {
        self.next().await.expect("the client closed the connection")
    }

    /// The next packet that is not a PINGREQ (each PINGREQ is answered).
    pub async fn expect_not_ping(&mut self) -> Packet {
        loop {
            match self.expect().await {
                Packet::PingReq => self.send(&Packet::PingResp).await,
                packet => return packet,
            }
        }
    }

    /// Expects CONNECT and accepts it.
    pub async fn accept_connect(&mut self) {
        let connect = self.expect().await;
        assert!(matches!(connect, Packet::Connect(_)), "CONNECT first: {connect:?}");
        self.send(&iot443_test_support::packets::connack(false)).await;
    }

    /// Expects a SUBSCRIBE (answering PINGREQs before it) and returns its packet id.
    pub async fn expect_subscribe(&mut self) -> u16 {
        match self.expect_not_ping().await {
            Packet::Subscribe(subscribe) => subscribe.packet_id.get(),
            other => panic!("expected SUBSCRIBE, got {other:?}"),
        }
    }

    /// Expects a SUBSCRIBE of one filter and grants it `qos`.
    pub async fn grant_subscribe(&mut self, qos: iot443::QoS) {
        let id = self.expect_subscribe().await;
        self.send(&iot443_test_support::packets::suback(id, &[qos])).await;
    }

    /// Sends `packet` to the client.
    pub async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        self.codec.encode(packet, &mut out).expect("encodable packet");
        self.stream.write_all(&out).await.expect("the client reads");
    }

    /// Closes the connection from the server's side.
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }
}
