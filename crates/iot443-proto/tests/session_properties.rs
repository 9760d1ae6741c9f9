#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Property tests for `iot443_proto::session::Session`:
//!
//! * whatever the server sends (random bytes, valid packets, both cut at random points), before
//!   or after CONNACK, the session never panics, every output stays valid MQTT, and an event
//!   that ends the connection leaves the session disconnected with no timer;
//! * with a broker that acknowledges everything it receives, any interleaving of publishes,
//!   partial deliveries, cuts, reconnects and timeouts ends with every QoS 1 publish
//!   acknowledged exactly once (and every QoS 0 publish written exactly once), publishes first
//!   sent in the order they were made, and redeliveries carrying DUP and their original id.
//!
//! The number of cases is 256 locally and 10,000 when `CI=true`.

use bytes::{Bytes, BytesMut};
use core::time::Duration;
use iot443_proto::codec::{
    ConnAck, ConnectReturnCode, PubAck, Publish, PublishQos, SubAck, SubAckReturnCode,
    SubscribeReason, UnsubAck,
};
use iot443_proto::session::{Event, Session, SessionConfig};
use iot443_proto::{Codec, Instant, Packet, PacketId, QoS};
use iot443_test_support::packets::*;
use iot443_test_support::{ScriptedBroker, VirtualClock, proptest_cases};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------------
// Arbitrary input from the server
// ---------------------------------------------------------------------------------------------

fn packet_id() -> impl Strategy<Value = PacketId> {
    prop_oneof![1u16..=4, any::<u16>()].prop_map(|n| PacketId::new(n).unwrap_or(PacketId::MIN))
}

/// A well-formed packet a server could send (or must not send), so that random input also
/// reaches the session's logic and not only the decoder.
fn server_packet() -> impl Strategy<Value = Packet> {
    let publish =
        (0u8..3, packet_id(), any::<bool>(), any::<bool>(), "[a-z/]{1,6}", any::<Vec<u8>>())
            .prop_filter_map("valid topic", |(qos, id, dup, retain, name, payload)| {
                let topic = iot443_proto::topic::TopicName::new(name).ok()?;
                let qos = PublishQos::with_packet_id(QoS::from_u8(qos).ok()?, id);
                Some(Packet::Publish(
                    Publish::new(topic, qos, payload)
                        .with_dup(dup && qos != PublishQos::AtMostOnce)
                        .with_retain(retain),
                ))
            });
    prop_oneof![
        (any::<bool>(), 0u8..7).prop_map(|(session_present, code)| {
            Packet::ConnAck(ConnAck::new(session_present, ConnectReturnCode::new(code)))
        }),
        packet_id().prop_map(|packet_id| Packet::PubAck(PubAck::new(packet_id))),
        (packet_id(), proptest::collection::vec(any::<u8>(), 1..4)).prop_map(
            |(packet_id, codes)| {
                Packet::SubAck(SubAck::new(
                    packet_id,
                    codes.into_iter().map(SubAckReturnCode::new).collect(),
                ))
            }
        ),
        packet_id().prop_map(|packet_id| Packet::UnsubAck(UnsubAck::new(packet_id))),
        Just(Packet::PingResp),
        Just(Packet::PingReq),
        publish,
    ]
}

/// A piece of the server's byte stream: random bytes or an encoded packet.
fn segment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..48),
        server_packet().prop_map(|packet| {
            let mut bytes = BytesMut::new();
            Codec::default().encode(&packet, &mut bytes).unwrap();
            bytes.to_vec()
        }),
    ]
}

/// How the session stands when the server's bytes start arriving.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// Never connected: bytes must be ignored.
    Disconnected,
    /// CONNECT sent, waiting for CONNACK.
    AwaitingConnAck,
    /// CONNACK received.
    Connected,
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![
        1 => Just(Start::Disconnected),
        3 => Just(Start::AwaitingConnAck),
        4 => Just(Start::Connected),
    ]
}

/// Drains the session's output and checks it is valid MQTT from a client.
fn transmit_is_valid_mqtt(session: &mut Session, now: Instant) {
    let mut out = BytesMut::new();
    let written = session.poll_transmit(now, &mut out);
    assert_eq!(written, out.len());
    let codec = Codec::default();
    while !out.is_empty() {
        match codec.decode(&mut out) {
            Ok(Some(packet)) => assert!(
                !matches!(packet, Packet::ConnAck(_) | Packet::SubAck(_) | Packet::PingResp),
                "the client sent a server packet: {packet:?}"
            ),
            other => panic!("the client wrote invalid MQTT: {other:?}"),
        }
    }
}

/// Drains events; one that ends the connection must leave the session disconnected.
fn events_are_consistent(session: &mut Session) {
    let mut ended = false;
    while let Some(event) = session.poll_event() {
        ended |= matches!(
            event,
            Event::LinkDead { .. } | Event::ConnectionRefused { .. } | Event::ProtocolError(_)
        );
    }
    if ended {
        assert!(!session.is_connected());
        assert_eq!(session.poll_timeout(), None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases()))]

    #[test]
    fn server_input_in_any_chunks_never_panics(
        start in start(),
        keep_alive in prop_oneof![Just(0u64), 1u64..120],
        segments in proptest::collection::vec(segment(), 0..12),
        cuts in proptest::collection::vec(1usize..64, 1..24),
        steps in proptest::collection::vec(0u64..30_000, 1..24),
        publish_first in any::<bool>(),
    ) {
        let mut config = SessionConfig::new("fuzz");
        config.keep_alive = Duration::from_secs(keep_alive);
        config.max_inflight = 2;
        let mut session = Session::new(config).unwrap();
        let mut clock = VirtualClock::new();
        if publish_first {
            for qos in [QoS::AtLeastOnce, QoS::AtLeastOnce, QoS::AtLeastOnce, QoS::AtMostOnce] {
                session.publish(topic("t"), qos, Bytes::from_static(b"p"), false).unwrap();
            }
            session.subscribe(vec![filter("a/#", QoS::AtLeastOnce)]).unwrap();
        }
        match start {
            Start::Disconnected => {}
            Start::AwaitingConnAck => session.connect(clock.now()),
            Start::Connected => {
                session.connect(clock.now());
                session.handle_bytes(clock.now(), &[0x20, 0x02, 0x00, 0x00]);
                prop_assert!(session.is_connected());
            }
        }
        transmit_is_valid_mqtt(&mut session, clock.now());
        events_are_consistent(&mut session);

        let stream: Vec<u8> = segments.concat();
        let mut rest = &stream[..];
        let mut index = 0;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(cuts[index % cuts.len()].min(rest.len()));
            rest = tail;
            session.handle_bytes(clock.now(), chunk);
            transmit_is_valid_mqtt(&mut session, clock.now());
            events_are_consistent(&mut session);
            let _ = session.poll_timeout();
            clock.advance(Duration::from_millis(steps[index % steps.len()]));
            session.handle_timeout(clock.now());
            // Every timer that was due has fired: the driver will not spin.
            prop_assert!(session.poll_timeout().is_none_or(|deadline| deadline > clock.now()));
            transmit_is_valid_mqtt(&mut session, clock.now());
            events_are_consistent(&mut session);
            index += 1;
        }
        prop_assert_eq!(session.poll_event(), None);
        let _ = session.inflight_len() + session.queued_len();
    }
}

// ---------------------------------------------------------------------------------------------
// Every QoS 1 publish is acknowledged exactly once
// ---------------------------------------------------------------------------------------------

/// One step of the driver, the network or the clock.
#[derive(Debug, Clone)]
enum Op {
    /// The application publishes; the payload carries the publish's sequence number.
    Publish { qos1: bool },
    /// The application subscribes.
    Subscribe,
    /// The driver writes what the session has to send; the broker answers everything.
    ClientWrite,
    /// Up to this many bytes from the broker reach the session.
    BrokerWrite(usize),
    /// The transport breaks: bytes in transit in both directions are lost.
    Cut,
    /// The driver opens a new transport (closing the current one first, if any).
    Reconnect,
    /// Time passes and the driver lets timers fire.
    Advance(Duration),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(|qos1| Op::Publish { qos1 }),
        1 => Just(Op::Subscribe),
        4 => Just(Op::ClientWrite),
        4 => prop_oneof![1usize..8, 1usize..200].prop_map(Op::BrokerWrite),
        1 => Just(Op::Cut),
        2 => Just(Op::Reconnect),
        1 => (0u64..80_000).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
    ]
}

/// A driver, a lossy link and a broker that acknowledges everything, with the bookkeeping the
/// final checks need.
struct Model {
    session: Session,
    broker: ScriptedBroker,
    clock: VirtualClock,
    /// Bytes written by the broker, not yet delivered to the session.
    to_client: Vec<u8>,
    /// Whether a transport is open (the driver closes it after a fatal event).
    link_open: bool,
    /// Publish calls so far; the next publish's sequence number.
    published: u64,
    qos1: BTreeSet<u64>,
    qos0: BTreeSet<u64>,
    /// `PublishAcked` events per message.
    acked: BTreeMap<u64, u32>,
    /// `PublishSent` events per message.
    reported_sent: BTreeMap<u64, u32>,
    /// QoS 0 publishes the broker received, per message.
    qos0_received: BTreeMap<u64, u32>,
    /// The packet id each QoS 1 message travelled with.
    packet_ids: BTreeMap<u64, PacketId>,
    /// Messages in the order of their first transmission.
    first_sends: Vec<u64>,
    /// SUBSCRIBEs not yet acknowledged.
    subscriptions: BTreeSet<PacketId>,
}

impl Model {
    fn new(max_inflight: u16, keep_alive: u64) -> Self {
        let mut config = SessionConfig::new("model");
        config.max_inflight = max_inflight;
        config.keep_alive = Duration::from_secs(keep_alive);
        // The model's broker may hold its answers for any time: no acknowledgement timeout here
        // (session_ack_timeout.rs tests it).
        config.ack_timeout = Duration::ZERO;
        Model {
            session: Session::new(config).unwrap(),
            broker: ScriptedBroker::new(),
            clock: VirtualClock::new(),
            to_client: Vec::new(),
            link_open: false,
            published: 0,
            qos1: BTreeSet::new(),
            qos0: BTreeSet::new(),
            acked: BTreeMap::new(),
            reported_sent: BTreeMap::new(),
            qos0_received: BTreeMap::new(),
            packet_ids: BTreeMap::new(),
            first_sends: Vec::new(),
            subscriptions: BTreeSet::new(),
        }
    }

    fn apply(&mut self, op: &Op) {
        let now = self.clock.now();
        match op {
            Op::Publish { qos1 } => {
                let qos = if *qos1 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
                let payload = Bytes::copy_from_slice(&self.published.to_be_bytes());
                let id = self.session.publish(topic("model/t"), qos, payload, false).unwrap();
                assert_eq!(id.get(), self.published, "message ids count publish calls");
                if *qos1 {
                    self.qos1.insert(id.get())
                } else {
                    self.qos0.insert(id.get())
                };
                self.published += 1;
            }
            Op::Subscribe => {
                let packet_id =
                    self.session.subscribe(vec![filter("model/#", QoS::AtLeastOnce)]).unwrap();
                assert!(self.subscriptions.insert(packet_id), "packet id {packet_id} reused");
            }
            Op::ClientWrite => {
                self.client_write();
            }
            Op::BrokerWrite(n) => self.broker_write(*n),
            Op::Cut => self.cut(),
            Op::Reconnect => {
                self.cut();
                self.session.connect(now);
                self.link_open = true;
            }
            Op::Advance(by) => {
                self.clock.advance(*by);
                self.session.handle_timeout(self.clock.now());
            }
        }
        self.drain_events();
    }

    /// Returns the number of bytes the session wrote.
    fn client_write(&mut self) -> usize {
        let mut out = Vec::new();
        let written = self.session.poll_transmit(self.clock.now(), &mut out);
        assert_eq!(written, out.len());
        if !self.link_open {
            assert!(out.is_empty(), "bytes written without a transport: {out:?}");
            return 0;
        }
        self.broker.receive(&out);
        while self.broker.pending() > 0 {
            match self.broker.expect() {
                Packet::Connect(_) => self.broker.send(&connack(false)),
                Packet::Publish(publish) => self.broker_receives(&publish),
                Packet::PingReq => self.broker.send(&Packet::PingResp),
                Packet::Subscribe(subscribe) => self.broker.send(&Packet::SubAck(SubAck::new(
                    subscribe.packet_id,
                    vec![SubAckReturnCode::GRANTED_QOS1; subscribe.filters.len()],
                ))),
                other => panic!("unexpected packet from the client: {other:?}"),
            }
        }
        self.to_client.extend_from_slice(&self.broker.take_output());
        written
    }

    fn broker_receives(&mut self, publish: &Publish) {
        let message = u64::from_be_bytes(publish.payload[..].try_into().unwrap());
        match publish.qos {
            PublishQos::AtMostOnce => {
                *self.qos0_received.entry(message).or_default() += 1;
                self.first_sends.push(message);
            }
            PublishQos::AtLeastOnce(packet_id) => {
                match self.packet_ids.get(&message) {
                    Some(&first) => {
                        assert_eq!(packet_id, first, "message {message} changed its packet id");
                        assert!(publish.dup, "redelivery of message {message} without DUP");
                    }
                    None => {
                        assert!(!publish.dup, "first delivery of message {message} with DUP");
                        self.packet_ids.insert(message, packet_id);
                        self.first_sends.push(message);
                    }
                }
                self.broker.send(&Packet::PubAck(PubAck::new(packet_id)));
            }
            PublishQos::ExactlyOnce(_) => panic!("the client sent QoS 2"),
        }
    }

    fn broker_write(&mut self, n: usize) {
        let n = n.min(self.to_client.len());
        let chunk: Vec<u8> = self.to_client.drain(..n).collect();
        if !chunk.is_empty() {
            self.session.handle_bytes(self.clock.now(), &chunk);
        }
    }

    fn cut(&mut self) {
        self.broker.drop_connection();
        self.to_client.clear();
        self.session.handle_connection_lost(self.clock.now());
        self.link_open = false;
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::PublishAcked { id, packet_id } => {
                    let message = id.get();
                    assert!(self.qos1.contains(&message), "ack for non-QoS 1 {message}");
                    assert_eq!(self.packet_ids.get(&message), Some(&packet_id));
                    let count = self.acked.entry(message).or_default();
                    *count += 1;
                    assert_eq!(*count, 1, "message {message} acknowledged twice");
                }
                Event::PublishSent { id } => {
                    assert!(self.qos0.contains(&id.get()));
                    *self.reported_sent.entry(id.get()).or_default() += 1;
                }
                Event::SubscribeAcked { packet_id, return_codes } => {
                    assert!(self.subscriptions.remove(&packet_id), "SUBACK {packet_id} twice");
                    assert_eq!(return_codes, vec![SubscribeReason::GRANTED_QOS1]);
                }
                Event::Connected { .. } => {}
                Event::LinkDead { .. } => {
                    assert!(!self.session.is_connected());
                    self.cut();
                }
                other => panic!("unexpected event with a well-behaved broker: {other:?}"),
            }
        }
    }

    /// Reconnects and exchanges everything, without letting time pass, until nothing is left.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            if !self.session.is_connected() && !self.link_open {
                self.apply(&Op::Reconnect);
            }
            self.apply(&Op::BrokerWrite(usize::MAX));
            let written = self.client_write();
            self.drain_events();
            if written == 0
                && self.session.is_connected()
                && self.session.inflight_len() == 0
                && self.session.queued_len() == 0
                && self.subscriptions.is_empty()
                && self.to_client.is_empty()
            {
                return;
            }
        }
        panic!(
            "did not settle: {} in flight, {} queued",
            self.session.inflight_len(),
            self.session.queued_len()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases()))]

    #[test]
    fn every_qos1_publish_is_acknowledged_exactly_once(
        max_inflight in 1u16..5,
        keep_alive in prop_oneof![Just(0u64), 5u64..90],
        ops in proptest::collection::vec(op(), 0..120),
    ) {
        let mut model = Model::new(max_inflight, keep_alive);
        for op in &ops {
            model.apply(op);
            prop_assert!(model.session.inflight_len() <= usize::from(max_inflight));
        }
        model.settle();

        let acked: BTreeSet<u64> = model.acked.keys().copied().collect();
        prop_assert_eq!(&acked, &model.qos1, "every QoS 1 publish acknowledged");
        prop_assert!(model.acked.values().all(|&count| count == 1));
        let sent: BTreeSet<u64> = model.reported_sent.keys().copied().collect();
        prop_assert_eq!(&sent, &model.qos0, "every QoS 0 publish reported sent");
        prop_assert!(model.reported_sent.values().all(|&count| count == 1));
        prop_assert_eq!(
            model.qos0_received.keys().copied().collect::<BTreeSet<u64>>(),
            model.qos0.clone(),
            "every QoS 0 publish received"
        );
        prop_assert!(model.qos0_received.values().all(|&count| count == 1));
        prop_assert!(
            model.first_sends.windows(2).all(|pair| pair[0] < pair[1]),
            "publishes first sent out of order: {:?}",
            model.first_sends
        );
    }
}
