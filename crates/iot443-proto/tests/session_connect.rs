#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Opening a connection: what CONNECT carries, what waits for CONNACK, and how a refusal, a
//! missing CONNACK or a wrong first packet end the attempt.

use bytes::Bytes;
use core::time::Duration;
use iot443_proto::codec::{
    Connect, ConnectReason, ConnectReturnCode, LastWill, PacketType, ProtocolVersion, Subscribe,
};
use iot443_proto::session::{Event, LinkDeadReason, ProtocolError, SessionConfig};
use iot443_proto::{Packet, QoS};
use iot443_test_support::Pair;
use iot443_test_support::packets::*;

/// Every packet the broker has received and the test has not looked at yet.
fn received(pair: &mut Pair) -> Vec<Packet> {
    (0..pair.broker.pending()).map(|_| pair.broker.expect()).collect()
}

#[test]
fn connect_carries_client_id_keep_alive_clean_session_and_will() {
    let will =
        LastWill::new(topic("devices/dev-1/status"), "gone", QoS::AtLeastOnce).with_retain(true);
    let mut config = SessionConfig::new("dev-1");
    config.keep_alive = Duration::from_secs(300);
    config.clean_session = false;
    config.will = Some(will.clone());
    let mut pair = Pair::new(config);

    let connect = pair.connect(false);

    assert_eq!(
        connect,
        Packet::Connect(
            Connect::new("dev-1")
                .with_protocol(ProtocolVersion::V311)
                .with_keep_alive(300)
                .with_clean_session(false)
                .with_will(will)
        )
    );
}

#[test]
fn connect_with_defaults_asks_for_a_clean_session_and_sixty_seconds() {
    let mut pair = Pair::new(SessionConfig::new("tls-test"));
    assert_eq!(pair.connect(false), Packet::Connect(Connect::new("tls-test").with_keep_alive(60)));
}

#[test]
fn sub_second_keep_alive_is_rounded_up_on_the_wire() {
    let mut config = SessionConfig::new("c");
    config.keep_alive = Duration::from_millis(1_500);
    let mut pair = Pair::new(config);
    let Packet::Connect(connect) = pair.connect(false) else { panic!("not CONNECT") };
    assert_eq!(connect.keep_alive, 2);
}

#[test]
fn only_connect_goes_out_before_connack_and_commands_follow_it() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.session.connect(pair.clock.now());
    let message = pair
        .session
        .publish(topic("a/b"), QoS::AtLeastOnce, Bytes::from_static(b"one"), false)
        .unwrap();
    let qos0 = pair
        .session
        .publish(topic("a/c"), QoS::AtMostOnce, Bytes::from_static(b"two"), false)
        .unwrap();
    let subscribe = pair.session.subscribe(vec![filter("cmd/#", QoS::AtLeastOnce)]).unwrap();
    pair.transfer();

    let before = received(&mut pair);
    assert!(matches!(before.as_slice(), [Packet::Connect(_)]), "before CONNACK: {before:?}");
    assert_eq!(pair.session.queued_len(), 2);
    assert_eq!(pair.session.inflight_len(), 0);
    assert!(pair.take_events().is_empty(), "no PublishSent before the publish is written");

    pair.broker.send(&connack(false));
    pair.transfer();

    let after = received(&mut pair);
    assert_eq!(after.len(), 3, "after CONNACK: {after:?}");
    assert_eq!(
        after[0],
        Packet::Subscribe(
            Subscribe::new(subscribe, vec![filter("cmd/#", QoS::AtLeastOnce)]).unwrap()
        )
    );
    assert_eq!(publish_fields(&after[1]), Some(("a/b", Some(2), false, &b"one"[..])));
    assert_eq!(publish_fields(&after[2]), Some(("a/c", None, false, &b"two"[..])));
    assert_eq!(
        pair.take_events(),
        vec![Event::Connected { session_present: false }, Event::PublishSent { id: qos0 }]
    );
    assert!(pair.session.is_connected());
    assert_eq!(pair.session.inflight_len(), 1);
    assert_eq!(pair.session.queued_len(), 0);
    assert_ne!(message, qos0);
}

#[test]
fn commands_given_before_connect_wait_for_the_first_connack() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.session.publish(topic("t"), QoS::AtMostOnce, Bytes::from_static(b"x"), false).unwrap();
    pair.transfer();
    assert_eq!(pair.broker.pending(), 0, "nothing may be sent without a connection");

    pair.connect(false);
    pair.transfer();
    let sent = received(&mut pair);
    assert_eq!(sent.len(), 1);
    assert_eq!(publish_fields(&sent[0]), Some(("t", None, false, &b"x"[..])));
}

#[test]
fn connected_event_reports_session_present() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    // `Pair::connect` asserts the Connected event carries the flag it was given.
    pair.connect(true);
    assert!(pair.session.is_connected());
}

#[test]
fn refused_connack_reports_the_code_and_disconnects() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.session.connect(pair.clock.now());
    pair.session.publish(topic("t"), QoS::AtLeastOnce, Bytes::from_static(b"x"), false).unwrap();
    pair.transfer();
    pair.broker.expect_matching("CONNECT", |p| matches!(p, Packet::Connect(_)));

    pair.broker.send(&connack_refused(ConnectReturnCode::NOT_AUTHORIZED));
    pair.transfer();

    let events = pair.take_events();
    assert_eq!(events, vec![Event::ConnectionRefused { code: ConnectReason::NOT_AUTHORIZED }]);
    let [Event::ConnectionRefused { code }] = events.as_slice() else { unreachable!() };
    assert_eq!((code.version(), code.wire()), (Some(ProtocolVersion::V311), 5), "as it came");
    assert!(!pair.session.is_connected());
    assert_eq!(pair.session.poll_timeout(), None, "no timer runs once disconnected");
    pair.broker.expect_nothing();
    assert_eq!(pair.session.queued_len(), 1, "the publish waits for the next connection");

    // A CONNACK arriving afterwards on the dead transport is ignored.
    pair.broker.send(&connack(false));
    pair.transfer();
    assert!(!pair.session.is_connected());
    assert!(pair.take_events().is_empty());
}

#[test]
fn a_refused_session_can_connect_again_and_then_sends_its_queue() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.session.connect(pair.clock.now());
    pair.session.publish(topic("t"), QoS::AtLeastOnce, Bytes::from_static(b"x"), false).unwrap();
    pair.transfer();
    pair.broker.expect();
    pair.broker.send(&connack_refused(ConnectReturnCode::SERVER_UNAVAILABLE));
    pair.transfer();
    pair.cut();
    pair.take_events();

    pair.connect(false);
    let sent = received(&mut pair);
    assert_eq!(sent.len(), 1);
    assert_eq!(publish_fields(&sent[0]), Some(("t", Some(1), false, &b"x"[..])));
}

#[test]
fn missing_connack_is_a_dead_link_at_exactly_the_connect_timeout() {
    let mut config = SessionConfig::new("c");
    config.connect_timeout = Duration::from_secs(7);
    let mut pair = Pair::new(config);
    let start = pair.clock.now();
    pair.session.connect(start);
    pair.transfer();
    pair.broker.expect_matching("CONNECT", |p| matches!(p, Packet::Connect(_)));

    let deadline = start + Duration::from_secs(7);
    assert_eq!(pair.session.poll_timeout(), Some(deadline));

    pair.clock.advance_to(start + (Duration::from_secs(7) - Duration::from_nanos(1)));
    pair.session.handle_timeout(pair.clock.now());
    assert!(pair.take_events().is_empty(), "fired before the deadline");
    assert_eq!(pair.session.poll_timeout(), Some(deadline));

    assert!(pair.advance_to_next_timeout(Duration::from_secs(1)));
    assert_eq!(pair.clock.now(), deadline);
    assert_eq!(
        pair.take_events(),
        vec![Event::LinkDead { reason: LinkDeadReason::ConnAckTimeout }]
    );
    assert!(!pair.session.is_connected());
    assert_eq!(pair.session.poll_timeout(), None);
}

#[test]
fn connack_just_before_the_timeout_is_accepted() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.session.connect(pair.clock.now());
    pair.transfer();
    pair.broker.expect();
    pair.clock.advance(Duration::from_secs(10) - Duration::from_nanos(1));
    pair.session.handle_timeout(pair.clock.now());
    pair.broker.send(&connack(false));
    pair.transfer();
    assert_eq!(pair.take_events(), vec![Event::Connected { session_present: false }]);
    // The CONNACK deadline no longer applies: the next deadline is the keep-alive.
    assert_eq!(pair.session.poll_timeout(), Some(pair.clock.now() + Duration::from_secs(60)));
}

#[test]
fn a_packet_other_than_connack_first_is_a_protocol_error() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.session.connect(pair.clock.now());
    pair.transfer();
    pair.broker.expect();

    pair.broker.send(&puback(1));
    pair.transfer();

    assert_eq!(
        pair.take_events(),
        vec![Event::ProtocolError(ProtocolError::UnexpectedPacket {
            packet: PacketType::PubAck,
            when: "before CONNACK",
        })]
    );
    assert!(!pair.session.is_connected());
    assert_eq!(pair.session.poll_timeout(), None);
}

#[test]
fn a_publish_before_connack_is_a_protocol_error_and_is_not_acknowledged() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.session.connect(pair.clock.now());
    pair.transfer();
    pair.broker.expect();

    pair.broker.send(&publish_qos1("t", 9, b"early"));
    pair.broker.send(&connack(false));
    pair.transfer();

    assert_eq!(
        pair.take_events(),
        vec![Event::ProtocolError(ProtocolError::UnexpectedPacket {
            packet: PacketType::Publish,
            when: "before CONNACK",
        })]
    );
    assert!(!pair.session.is_connected(), "the CONNACK behind it must not be processed");
    pair.broker.expect_nothing();
}

#[test]
fn a_second_connack_is_a_protocol_error() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.connect(false);
    pair.broker.send(&connack(false));
    pair.transfer();
    assert_eq!(
        pair.take_events(),
        vec![Event::ProtocolError(ProtocolError::UnexpectedPacket {
            packet: PacketType::ConnAck,
            when: "after CONNACK",
        })]
    );
    assert!(!pair.session.is_connected());
}

#[test]
fn connack_split_across_reads_is_reassembled() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    let now = pair.clock.now();
    pair.session.connect(now);
    let mut wire = Vec::new();
    let _ = pair.session.poll_transmit(now, &mut wire);
    for byte in [0x20u8, 0x02, 0x00] {
        pair.session.handle_bytes(now, &[byte]);
        assert_eq!(pair.session.poll_event(), None);
    }
    pair.session.handle_bytes(now, &[0x00]);
    assert_eq!(pair.session.poll_event(), Some(Event::Connected { session_present: false }));
}

#[test]
fn connect_written_sends_nothing_and_takes_the_connack_that_answers_the_drivers_connect() {
    let mut pair = Pair::new(SessionConfig::new("raced"));
    assert_eq!(pair.session.connect_packet(), Connect::new("raced"));
    pair.session.connect_written(pair.clock.now());
    let mut out = Vec::new();
    assert_eq!(pair.session.poll_transmit(pair.clock.now(), &mut out), 0, "CONNECT went out twice");
    assert!(pair.session.poll_timeout().is_some(), "no CONNACK deadline");

    pair.broker.send(&connack(false));
    pair.transfer();

    assert!(pair.session.is_connected());
    assert_eq!(pair.take_events(), vec![Event::Connected { session_present: false }]);
}

#[test]
fn connect_written_resends_unacknowledged_publishes_after_connack() {
    let mut pair = Pair::new(SessionConfig::new("raced"));
    pair.connect(false);
    pair.session.publish(topic("a/b"), QoS::AtLeastOnce, Bytes::from_static(b"x"), false).unwrap();
    pair.transfer();
    pair.broker.expect_matching("PUBLISH", |p| matches!(p, Packet::Publish(_)));
    pair.cut();

    pair.session.connect_written(pair.clock.now());
    pair.broker.send(&connack(true));
    pair.transfer();

    let again = pair.broker.expect_matching("PUBLISH", |p| matches!(p, Packet::Publish(_)));
    let Packet::Publish(publish) = again else { unreachable!() };
    assert!(publish.dup, "the redelivery carries DUP");
}

#[test]
fn connect_written_without_connack_times_out_like_connect() {
    let mut pair = Pair::new(SessionConfig::new("raced"));
    pair.session.connect_written(pair.clock.now());
    assert!(pair.advance_to_next_timeout(Duration::from_secs(60)));
    assert!(
        pair.take_events().contains(&Event::LinkDead { reason: LinkDeadReason::ConnAckTimeout })
    );
}
