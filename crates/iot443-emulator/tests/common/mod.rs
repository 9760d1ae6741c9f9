//! Drives a [`Broker`] from tests: encodes client packets with the proto codec, decodes what
//! the broker transmits, keeps every event, and moves a virtual clock.
#![allow(dead_code, unreachable_pub)] // each test file uses its own part of the helper

use bytes::{Bytes, BytesMut};
use iot443_emulator::broker::{
    Broker, BrokerConfig, BrokerEvent, CloseReason, ConnectionId, PeerIdentity,
};
use iot443_proto::Instant;
use iot443_proto::codec::{
    Codec, Connect, ConnectReturnCode, LastWill, Packet, PacketId, PubAck, Publish, PublishQos,
    QoS, Subscribe, SubscribeFilter, Unsubscribe,
};
use iot443_proto::topic::{TopicFilter, TopicName};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A broker, a virtual clock and everything the broker reported.
pub struct Harness {
    pub broker: Broker,
    pub now: Instant,
    pub events: Vec<BrokerEvent>,
    codec: Codec,
    next_packet_id: u16,
    /// Output already taken from the broker and not yet decoded by the test.
    pending: HashMap<ConnectionId, BytesMut>,
}

impl Harness {
    /// A broker with the default configuration.
    pub fn new() -> Self {
        Harness::with_config(BrokerConfig::default())
    }

    /// A broker with IoT Core's rate quotas on.
    pub fn strict() -> Self {
        let mut config = BrokerConfig::default();
        config.strict_rates = true;
        Harness::with_config(config)
    }

    pub fn with_config(config: BrokerConfig) -> Self {
        Harness {
            broker: Broker::new(config),
            // Not zero, so that nothing depends on the origin.
            now: Instant::from_duration(Duration::from_secs(1_000)),
            events: Vec::new(),
            codec: Codec::default(),
            next_packet_id: 0,
            pending: HashMap::new(),
        }
    }

    fn collect(&mut self) {
        while let Some(event) = self.broker.poll_event() {
            self.events.push(event);
        }
    }

    /// Opens a connection for a certificate with common name `device`.
    pub fn open(&mut self) -> ConnectionId {
        self.open_as(Some("device"))
    }

    /// Opens a connection for a certificate with the given common name.
    pub fn open_as(&mut self, common_name: Option<&str>) -> ConnectionId {
        let peer = PeerIdentity {
            common_name: common_name.map(str::to_owned),
            certificate_sha256: "00".repeat(32),
        };
        let conn = self.broker.open(self.now, peer);
        self.collect();
        conn
    }

    /// Sends `packet` from the client side of `conn`.
    pub fn send(&mut self, conn: ConnectionId, packet: &Packet) {
        let mut wire = BytesMut::new();
        self.codec.encode(packet, &mut wire).expect("test packet encodes");
        self.send_raw(conn, &wire);
    }

    /// Sends raw bytes from the client side of `conn`.
    pub fn send_raw(&mut self, conn: ConnectionId, bytes: &[u8]) {
        self.broker.handle_bytes(self.now, conn, bytes);
        self.collect();
    }

    /// Everything the broker transmitted to `conn` since the last call, decoded.
    pub fn received(&mut self, conn: ConnectionId) -> Vec<Packet> {
        let mut wire = self.pull(conn);
        let mut packets = Vec::new();
        while let Some(packet) = self.codec.decode(&mut wire).expect("broker sent valid MQTT") {
            packets.push(packet);
        }
        assert!(wire.is_empty(), "broker sent a partial packet");
        packets
    }

    /// The PUBLISHes among what `conn` received since the last call (other packets dropped).
    pub fn publishes(&mut self, conn: ConnectionId) -> Vec<Publish> {
        self.received(conn)
            .into_iter()
            .filter_map(|packet| match packet {
                Packet::Publish(publish) => Some(publish),
                _ => None,
            })
            .collect()
    }

    /// Payloads of the PUBLISHes `conn` received since the last call.
    pub fn payloads(&mut self, conn: ConnectionId) -> Vec<Vec<u8>> {
        self.publishes(conn).into_iter().map(|p| p.payload.to_vec()).collect()
    }

    /// Moves the clock by `by`, firing every timer on the way at its due time.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        for _ in 0..1_000_000 {
            match self.broker.poll_timeout() {
                Some(due) if due <= target => {
                    self.now = self.now.max(due);
                    self.broker.handle_timeout(self.now);
                    self.collect();
                    if self.broker.poll_timeout() == Some(due) && due <= self.now {
                        panic!("poll_timeout stays at {due:?} after handle_timeout: busy loop");
                    }
                }
                _ => {
                    self.now = target;
                    self.broker.handle_timeout(self.now);
                    self.collect();
                    return;
                }
            }
        }
        panic!("timers keep firing");
    }

    /// The transport of `conn` closed without DISCONNECT.
    pub fn close_transport(&mut self, conn: ConnectionId) {
        self.broker.handle_closed(self.now, conn);
        self.collect();
    }

    /// Why `conn` was closed, if it was.
    pub fn close_reason(&self, conn: ConnectionId) -> Option<&CloseReason> {
        self.events.iter().find_map(|event| match event {
            BrokerEvent::Close { conn: closed, reason, .. } if *closed == conn => Some(reason),
            _ => None,
        })
    }

    /// Asserts that `conn` is open.
    #[track_caller]
    pub fn assert_open(&self, conn: ConnectionId) {
        assert_eq!(self.close_reason(conn), None, "connection {conn} was closed");
    }

    /// Asserts that `conn` was closed for `reason`.
    #[track_caller]
    pub fn assert_closed(&self, conn: ConnectionId, reason: &CloseReason) {
        assert_eq!(self.close_reason(conn), Some(reason), "close reason of {conn}");
    }

    /// The `Connected` event of `conn`: (client id, session present, keep-alive).
    pub fn connected(&self, conn: ConnectionId) -> Option<(String, bool, u16)> {
        self.events.iter().find_map(|event| match event {
            BrokerEvent::Connected { conn: c, client_id, session_present, keep_alive, .. }
                if *c == conn =>
            {
                Some((client_id.clone(), *session_present, *keep_alive))
            }
            _ => None,
        })
    }

    /// Opens a connection, sends `connect` and returns the connection and what it received.
    pub fn connect_with(&mut self, connect: Connect) -> (ConnectionId, Vec<Packet>) {
        let conn = self.open();
        self.send(conn, &Packet::Connect(connect));
        let received = self.received(conn);
        (conn, received)
    }

    /// Connects `client_id` (clean session, keep-alive 60 s) and asserts CONNACK 0.
    #[track_caller]
    pub fn connect(&mut self, client_id: &str) -> ConnectionId {
        let (conn, session_present) = self.connect_session(client_id, true);
        assert!(!session_present);
        conn
    }

    /// Connects `client_id` with the given clean-session flag, asserts CONNACK 0, and returns
    /// the connection and the session-present flag. Packets after CONNACK stay to be received.
    #[track_caller]
    pub fn connect_session(&mut self, client_id: &str, clean: bool) -> (ConnectionId, bool) {
        let conn = self.open();
        let connect = Connect::new(client_id).with_clean_session(clean);
        self.send(conn, &Packet::Connect(connect));
        let session_present = self.take_connack(conn);
        (conn, session_present)
    }

    /// The broker's output for `conn`, after what a previous call left undecoded.
    fn pull(&mut self, conn: ConnectionId) -> BytesMut {
        let mut wire = self.pending.remove(&conn).unwrap_or_default();
        self.broker.poll_transmit(conn, &mut wire);
        wire
    }

    /// Takes the CONNACK off the front of `conn`'s output and asserts it accepts; the rest is
    /// left for the next [`Harness::received`].
    #[track_caller]
    fn take_connack(&mut self, conn: ConnectionId) -> bool {
        let mut wire = self.pull(conn);
        let first = self.codec.decode(&mut wire).expect("valid MQTT");
        let Some(Packet::ConnAck(connack)) = first else {
            panic!("expected CONNACK, got {first:?} (close: {:?})", self.close_reason(conn))
        };
        assert_eq!(connack.code, ConnectReturnCode::ACCEPTED);
        self.pending.insert(conn, wire);
        connack.session_present
    }

    /// A fresh packet id for client packets.
    pub fn packet_id(&mut self) -> PacketId {
        self.next_packet_id = self.next_packet_id.wrapping_add(1).max(1);
        PacketId::new(self.next_packet_id).expect("non-zero")
    }

    /// Sends SUBSCRIBE for `filters` and returns the packets received right after it.
    pub fn subscribe(&mut self, conn: ConnectionId, filters: &[(&str, QoS)]) -> Vec<Packet> {
        let filters = filters
            .iter()
            .map(|(text, qos)| {
                SubscribeFilter::new(TopicFilter::new(*text).expect("valid filter"), *qos)
            })
            .collect();
        let subscribe = Subscribe::new(self.packet_id(), filters).expect("at least one filter");
        self.send(conn, &Packet::Subscribe(subscribe));
        self.received(conn)
    }

    /// Sends UNSUBSCRIBE for `filters`.
    pub fn unsubscribe(&mut self, conn: ConnectionId, filters: &[&str]) -> Vec<Packet> {
        let filters = filters.iter().map(|f| TopicFilter::new(*f).expect("valid")).collect();
        let unsubscribe = Unsubscribe::new(self.packet_id(), filters).expect("at least one filter");
        self.send(conn, &Packet::Unsubscribe(unsubscribe));
        self.received(conn)
    }

    /// Sends a PUBLISH (QoS 1 and 2 with a fresh packet id).
    pub fn publish(
        &mut self,
        conn: ConnectionId,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) {
        let id = self.packet_id();
        self.send(conn, &Packet::Publish(publish_packet(topic, qos, id, retain, payload)));
    }

    /// Acknowledges every QoS 1 PUBLISH in `publishes`.
    pub fn ack_all(&mut self, conn: ConnectionId, publishes: &[Publish]) {
        for publish in publishes {
            if let Some(packet_id) = publish.qos.packet_id() {
                self.send(conn, &Packet::PubAck(PubAck::new(packet_id)));
            }
        }
    }
}

/// A PUBLISH packet.
pub fn publish_packet(
    topic: &str,
    qos: QoS,
    id: PacketId,
    retain: bool,
    payload: &[u8],
) -> Publish {
    Publish::new(
        TopicName::new(topic).expect("valid topic"),
        PublishQos::with_packet_id(qos, id),
        Bytes::copy_from_slice(payload),
    )
    .with_retain(retain)
}

/// A CONNECT with a last will.
pub fn connect_with_will(
    client_id: &str,
    topic: &str,
    qos: QoS,
    retain: bool,
    payload: &[u8],
) -> Connect {
    let will = LastWill::new(
        TopicName::new(topic).expect("valid topic"),
        Bytes::copy_from_slice(payload),
        qos,
    )
    .with_retain(retain);
    Connect::new(client_id).with_will(will)
}

/// Runs `f` with a subscriber that keeps every log line (debug and up, without colours) and
/// returns what `f` returned and the lines.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let buffer = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).expect("UTF-8 logs");
    (result, text.lines().map(str::to_owned).collect())
}

/// Log output kept in memory.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}
