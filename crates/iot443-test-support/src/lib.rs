//! Test helpers shared by the iot443 crates (STYLE.md habit 10).
//!
//! * [`VirtualClock`]: time that moves only when a test says so.
//! * [`ScriptedBroker`]: the server end of an in-memory link. A test reads what the client sent
//!   ([`ScriptedBroker::expect`]) and answers ([`ScriptedBroker::send`]), one packet at a time.
//! * [`Pair`]: a [`Session`] wired to a [`ScriptedBroker`] and a [`VirtualClock`], moving bytes
//!   both ways and firing due timers, like quinn's test `Pair`.
//! * [`BrokerPair`]: one or more [`Session`]s wired to the emulator's real sans-IO broker
//!   (`iot443_emulator::broker::Broker`) and a [`VirtualClock`]: IoT Core's answers and
//!   timers instead of a script.
//! * [`RawMqtt`]: whole MQTT packets written and read on any async stream, with no session
//!   logic, for tests of a server.
//! * [`packets`]: short builders for the packets tests write again and again.
//! * [`fault_proxy`]: a loopback TCP proxy that cuts, black-holes, delays and refuses connections.
//!
//! These helpers panic with a clear message when an expectation fails: they are for tests only.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod broker_pair;
pub mod fault_proxy;
pub mod packets;
mod raw;

pub use broker_pair::{BrokerPair, ClientRef};
pub use raw::RawMqtt;

use bytes::{Bytes, BytesMut};
use core::time::Duration;
use iot443_proto::codec::{Codec, Packet};
use iot443_proto::session::{Event, MessageId, Session, SessionConfig};
use iot443_proto::{Instant, QoS};
use std::collections::VecDeque;

/// Proptest case count: 10,000 when `CI=true`, 256 otherwise.
pub fn proptest_cases() -> u32 {
    if std::env::var("CI").as_deref() == Ok("true") { 10_000 } else { 256 }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone, Copy, Default)]
pub struct VirtualClock {
    now: Instant,
}

impl VirtualClock {
    /// A clock at [`Instant::ZERO`].
    pub fn new() -> Self {
        VirtualClock::default()
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
    }

    /// Moves the clock to `to`, never backwards.
    pub fn advance_to(&mut self, to: Instant) {
        self.now = self.now.max(to);
    }
}

/// The server end of an in-memory MQTT link, driven step by step by a test.
#[derive(Debug, Default)]
pub struct ScriptedBroker {
    codec: Codec,
    /// Bytes from the client not yet decoded.
    rx: BytesMut,
    /// Packets from the client not yet expected by the test.
    received: VecDeque<Packet>,
    /// Bytes for the client not yet delivered.
    tx: BytesMut,
}

impl ScriptedBroker {
    /// A broker with the default codec.
    pub fn new() -> Self {
        ScriptedBroker::default()
    }

    /// Feeds bytes the client wrote. Panics if they are not valid MQTT.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.rx.extend_from_slice(bytes);
        while let Some(packet) = self.codec.decode(&mut self.rx).expect("client sent bad MQTT") {
            self.received.push_back(packet);
        }
    }

    /// The next packet the client sent. Panics if there is none.
    #[track_caller]
    pub fn expect(&mut self) -> Packet {
        self.received.pop_front().expect("expected a packet from the client, got none")
    }

    /// The next packet the client sent, asserting it is of the given shape.
    #[track_caller]
    pub fn expect_matching(&mut self, what: &str, matches: impl FnOnce(&Packet) -> bool) -> Packet {
        let packet = self.expect();
        assert!(matches(&packet), "expected {what}, got {packet:?}");
        packet
    }

    /// Asserts the client sent nothing more.
    #[track_caller]
    pub fn expect_nothing(&mut self) {
        assert!(
            self.received.is_empty(),
            "unexpected packets from the client: {:?}",
            self.received
        );
    }

    /// Packets received and not yet expected.
    pub fn pending(&self) -> usize {
        self.received.len()
    }

    /// Queues a packet for the client.
    pub fn send(&mut self, packet: &Packet) {
        self.codec.encode(packet, &mut self.tx).expect("test packet does not encode");
    }

    /// Queues raw bytes for the client (for malformed input).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.tx.extend_from_slice(bytes);
    }

    /// Takes the bytes queued for the client.
    pub fn take_output(&mut self) -> BytesMut {
        self.tx.split()
    }

    /// Forgets everything in transit, as a cut connection does.
    pub fn drop_connection(&mut self) {
        self.rx.clear();
        self.received.clear();
        self.tx.clear();
    }
}

/// A client [`Session`] and a [`ScriptedBroker`] on one in-memory link with a virtual clock.
#[derive(Debug)]
pub struct Pair {
    /// The client under test.
    pub session: Session,
    /// The server end.
    pub broker: ScriptedBroker,
    /// The shared clock.
    pub clock: VirtualClock,
    /// Events the session reported, in order, not yet taken by the test.
    pub events: VecDeque<Event>,
}

impl Pair {
    /// A pair with a disconnected session.
    pub fn new(config: SessionConfig) -> Self {
        Pair {
            session: Session::new(config).expect("valid session config"),
            broker: ScriptedBroker::new(),
            clock: VirtualClock::new(),
            events: VecDeque::new(),
        }
    }

    /// Opens the link, answers CONNECT with an accepting CONNACK and returns the CONNECT.
    ///
    /// The `Connected` event is consumed; any other event (say `PublishSent` for a queued QoS 0
    /// publish that went out after CONNACK) stays for [`Pair::take_events`].
    pub fn connect(&mut self, session_present: bool) -> Packet {
        self.session.connect(self.clock.now());
        self.transfer();
        let connect = self.broker.expect_matching("CONNECT", |p| matches!(p, Packet::Connect(_)));
        self.broker.send(&packets::connack(session_present));
        self.transfer();
        let connected = Event::Connected { session_present };
        let Some(index) = self.events.iter().position(|event| *event == connected) else {
            panic!("no Connected event: {:?}", self.events);
        };
        self.events.remove(index);
        connect
    }

    /// Moves bytes both ways until neither side has anything more to send.
    pub fn transfer(&mut self) {
        loop {
            let mut to_broker = Vec::new();
            self.session.poll_transmit(self.clock.now(), &mut to_broker);
            self.broker.receive(&to_broker);
            let to_client = self.broker.take_output();
            if !to_client.is_empty() {
                self.session.handle_bytes(self.clock.now(), &to_client);
            }
            self.collect_events();
            if to_broker.is_empty() && to_client.is_empty() {
                return;
            }
        }
    }

    /// Advances the clock to the session's next deadline (if it is within `limit` from now),
    /// fires it and transfers. Returns whether a deadline was reached.
    pub fn advance_to_next_timeout(&mut self, limit: Duration) -> bool {
        let Some(deadline) = self.session.poll_timeout() else { return false };
        if deadline > self.clock.now() + limit {
            return false;
        }
        self.clock.advance_to(deadline);
        self.session.handle_timeout(self.clock.now());
        self.transfer();
        true
    }

    /// Cuts the link: bytes in transit are lost and the session is told.
    pub fn cut(&mut self) {
        self.broker.drop_connection();
        self.session.handle_connection_lost(self.clock.now());
        self.collect_events();
    }

    /// Takes every event reported so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.collect_events();
        self.events.drain(..).collect()
    }

    fn collect_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            self.events.push_back(event);
        }
    }

    /// A connected pair (client id `c`, CONNACK without session) whose in-flight window holds
    /// `max_inflight` QoS 1 publishes.
    pub fn connected_with_window(max_inflight: u16) -> Pair {
        let mut config = SessionConfig::new("c");
        config.max_inflight = max_inflight;
        let mut pair = Pair::new(config);
        pair.connect(false);
        pair
    }

    /// Publishes `payload` to topic `t` without retain; the session must accept it.
    pub fn publish(&mut self, qos: QoS, payload: &str) -> MessageId {
        self.session
            .publish(packets::topic("t"), qos, Bytes::copy_from_slice(payload.as_bytes()), false)
            .expect("the session accepts the publish")
    }

    /// The broker acknowledges the QoS 1 publish `packet_id`; bytes move both ways.
    pub fn ack(&mut self, packet_id: u16) {
        self.broker.send(&packets::puback(packet_id));
        self.transfer();
    }

    /// (packet id, DUP, payload) of every packet the broker received, which must all be
    /// PUBLISHes with UTF-8 payloads.
    pub fn sent_publishes(&mut self) -> Vec<(Option<u16>, bool, String)> {
        (0..self.broker.pending())
            .map(|_| {
                let packet = self.broker.expect();
                let (_, packet_id, dup, payload) = packets::publish_fields(&packet)
                    .unwrap_or_else(|| panic!("not a PUBLISH: {packet:?}"));
                (packet_id, dup, String::from_utf8(payload.to_vec()).expect("a UTF-8 payload"))
            })
            .collect()
    }
}
