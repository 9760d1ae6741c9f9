#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Acknowledgements both ways: PUBACK/SUBACK/UNSUBACK from the server complete the right
//! requests, unknown ones are reported and ignored; incoming PUBLISH is acknowledged by QoS;
//! what the server must not send ends the connection with a precise error.

use bytes::Bytes;
use iot443_proto::codec::{
    PacketType, Publish, PublishQos, SubAck, SubAckReturnCode, SubscribeReason,
};
use iot443_proto::session::{Event, MessageId, ProtocolError, SessionConfig};
use iot443_proto::topic::TopicFilter;
use iot443_proto::{DecodeError, Packet, QoS};
use iot443_test_support::Pair;
use iot443_test_support::packets::*;

fn connected() -> Pair {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.connect(false);
    pair
}

fn publish(pair: &mut Pair, payload: &'static str) -> MessageId {
    pair.session
        .publish(topic("t"), QoS::AtLeastOnce, Bytes::from_static(payload.as_bytes()), false)
        .unwrap()
}

/// Sends `packet` to the client and returns what it reported.
fn deliver(pair: &mut Pair, packet: &Packet) -> Vec<Event> {
    pair.broker.send(packet);
    pair.transfer();
    pair.take_events()
}

/// Sends raw bytes to the client and returns what it reported.
fn deliver_raw(pair: &mut Pair, bytes: &[u8]) -> Vec<Event> {
    pair.broker.send_raw(bytes);
    pair.transfer();
    pair.take_events()
}

fn assert_disconnected(pair: &mut Pair) {
    assert!(!pair.session.is_connected());
    assert_eq!(pair.session.poll_timeout(), None);
    // Whatever arrives afterwards on the dead transport is ignored.
    pair.broker.send(&publish_qos1("late", 1, b"ignored"));
    pair.transfer();
    assert!(pair.take_events().is_empty());
    pair.broker.expect_nothing();
}

#[test]
fn out_of_order_pubacks_complete_the_right_messages() {
    let mut pair = connected();
    let a = publish(&mut pair, "a");
    let b = publish(&mut pair, "b");
    let c = publish(&mut pair, "c");
    pair.transfer();
    for _ in 0..3 {
        pair.broker.expect();
    }

    assert_eq!(
        deliver(&mut pair, &puback(3)),
        vec![Event::PublishAcked { id: c, packet_id: id(3) }]
    );
    assert_eq!(pair.session.inflight_len(), 2);
    assert_eq!(
        deliver(&mut pair, &puback(1)),
        vec![Event::PublishAcked { id: a, packet_id: id(1) }]
    );
    assert_eq!(
        deliver(&mut pair, &puback(2)),
        vec![Event::PublishAcked { id: b, packet_id: id(2) }]
    );
    assert_eq!(pair.session.inflight_len(), 0);
}

#[test]
fn a_puback_for_an_unknown_id_is_reported_and_ignored() {
    let mut pair = connected();
    publish(&mut pair, "a");
    pair.transfer();
    pair.broker.expect();

    assert_eq!(
        deliver(&mut pair, &puback(7)),
        vec![Event::UnexpectedAck { packet: PacketType::PubAck, packet_id: id(7) }]
    );
    assert!(pair.session.is_connected());
    assert_eq!(pair.session.inflight_len(), 1, "the real in-flight message is untouched");
}

#[test]
fn a_duplicate_puback_is_reported_as_unexpected() {
    let mut pair = connected();
    let a = publish(&mut pair, "a");
    pair.transfer();
    pair.broker.expect();
    pair.broker.send(&puback(1));
    pair.broker.send(&puback(1));
    pair.transfer();
    assert_eq!(
        pair.take_events(),
        vec![
            Event::PublishAcked { id: a, packet_id: id(1) },
            Event::UnexpectedAck { packet: PacketType::PubAck, packet_id: id(1) },
        ]
    );
    assert!(pair.session.is_connected());
}

#[test]
fn suback_and_unsuback_for_unknown_ids_are_reported_and_ignored() {
    let mut pair = connected();
    assert_eq!(
        deliver(&mut pair, &suback(5, &[QoS::AtLeastOnce])),
        vec![Event::UnexpectedAck { packet: PacketType::SubAck, packet_id: id(5) }]
    );
    assert_eq!(
        deliver(&mut pair, &unsuback(6)),
        vec![Event::UnexpectedAck { packet: PacketType::UnsubAck, packet_id: id(6) }]
    );
    assert!(pair.session.is_connected());
}

#[test]
fn an_ack_of_the_wrong_kind_does_not_complete_a_request() {
    let mut pair = connected();
    let unsub = pair.session.unsubscribe(vec![TopicFilter::new("a").unwrap()]).unwrap();
    let message = publish(&mut pair, "p");
    pair.transfer();
    pair.broker.expect();
    pair.broker.expect();

    // SUBACK and PUBACK carrying the UNSUBSCRIBE's id; UNSUBACK carrying the PUBLISH's id.
    assert_eq!(
        deliver(&mut pair, &suback(unsub.get(), &[QoS::AtMostOnce])),
        vec![Event::UnexpectedAck { packet: PacketType::SubAck, packet_id: unsub }]
    );
    assert_eq!(
        deliver(&mut pair, &puback(unsub.get())),
        vec![Event::UnexpectedAck { packet: PacketType::PubAck, packet_id: unsub }]
    );
    assert_eq!(
        deliver(&mut pair, &unsuback(2)),
        vec![Event::UnexpectedAck { packet: PacketType::UnsubAck, packet_id: id(2) }]
    );

    assert_eq!(
        deliver(&mut pair, &unsuback(unsub.get())),
        vec![Event::UnsubscribeAcked { packet_id: unsub }]
    );
    assert_eq!(
        deliver(&mut pair, &puback(2)),
        vec![Event::PublishAcked { id: message, packet_id: id(2) }]
    );
}

#[test]
fn suback_reports_each_return_code_including_failure() {
    let mut pair = connected();
    let sub = pair
        .session
        .subscribe(vec![filter("a", QoS::AtLeastOnce), filter("b", QoS::AtMostOnce)])
        .unwrap();
    pair.transfer();
    pair.broker.expect();
    let codes = vec![SubAckReturnCode::GRANTED_QOS1, SubAckReturnCode::FAILURE];
    assert_eq!(
        deliver(&mut pair, &Packet::SubAck(SubAck::new(sub, codes.clone()))),
        vec![Event::SubscribeAcked {
            packet_id: sub,
            return_codes: vec![SubscribeReason::GRANTED_QOS1, SubscribeReason::UNSPECIFIED_ERROR]
        }]
    );
    assert_eq!(
        deliver(&mut pair, &suback(sub.get(), &[QoS::AtLeastOnce, QoS::AtMostOnce])),
        vec![Event::UnexpectedAck { packet: PacketType::SubAck, packet_id: sub }],
        "a SUBACK completes its SUBSCRIBE once"
    );
}

#[test]
fn suback_with_the_wrong_number_of_codes_is_a_protocol_error() {
    let mut pair = connected();
    let sub = pair
        .session
        .subscribe(vec![filter("a", QoS::AtLeastOnce), filter("b", QoS::AtMostOnce)])
        .unwrap();
    pair.transfer();
    pair.broker.expect();

    assert_eq!(
        deliver(&mut pair, &suback(sub.get(), &[QoS::AtLeastOnce])),
        vec![Event::ProtocolError(ProtocolError::SubAckLength {
            packet_id: sub,
            expected: 2,
            got: 1,
        })]
    );
    assert_disconnected(&mut pair);
}

#[test]
fn incoming_qos1_publish_is_acked_with_its_id_and_reported() {
    let mut pair = connected();
    let events = deliver(&mut pair, &publish_qos1("cmd/reboot", 0x1234, b"now"));
    assert_eq!(
        events,
        vec![Event::Message(Publish::new(
            topic("cmd/reboot"),
            PublishQos::AtLeastOnce(id(0x1234)),
            Bytes::from_static(b"now"),
        ))]
    );
    assert_eq!(pair.broker.expect(), puback(0x1234));
    pair.broker.expect_nothing();
}

#[test]
fn incoming_qos1_publishes_are_acked_in_arrival_order_even_when_redelivered() {
    let mut pair = connected();
    let mut redelivered = publish_qos1("a", 9, b"x");
    if let Packet::Publish(publish) = &mut redelivered {
        publish.dup = true;
    }
    pair.broker.send(&publish_qos1("a", 8, b"w"));
    pair.broker.send(&redelivered);
    pair.transfer();
    assert_eq!(pair.take_events().len(), 2, "a DUP message is still handed on");
    assert_eq!(pair.broker.expect(), puback(8));
    assert_eq!(pair.broker.expect(), puback(9));
}

#[test]
fn incoming_qos0_publish_is_reported_and_not_acked() {
    let mut pair = connected();
    assert_eq!(
        deliver(&mut pair, &publish_qos0("news", b"hi")),
        vec![Event::Message(Publish::new(
            topic("news"),
            PublishQos::AtMostOnce,
            Bytes::from_static(b"hi"),
        ))]
    );
    pair.broker.expect_nothing();
}

#[test]
fn incoming_qos2_publish_is_a_protocol_error() {
    let mut pair = connected();
    let qos2 = Packet::Publish(Publish::new(
        topic("t"),
        PublishQos::ExactlyOnce(id(4)),
        Bytes::from_static(b"x"),
    ));
    assert_eq!(
        deliver(&mut pair, &qos2),
        vec![Event::ProtocolError(ProtocolError::UnrequestedQos2)]
    );
    pair.broker.expect_nothing();
    assert_disconnected(&mut pair);
}

#[test]
fn server_only_packets_the_client_never_expects_are_protocol_errors() {
    for (packet, kind) in [
        (Packet::PingReq, PacketType::PingReq),
        (Packet::Disconnect, PacketType::Disconnect),
        (Packet::PubRel(iot443_proto::codec::PubRel::new(id(1))), PacketType::PubRel),
    ] {
        let mut pair = connected();
        assert_eq!(
            deliver(&mut pair, &packet),
            vec![Event::ProtocolError(ProtocolError::UnexpectedPacket {
                packet: kind,
                when: "after CONNACK",
            })]
        );
        assert_disconnected(&mut pair);
    }
}

#[test]
fn malformed_bytes_report_the_specific_decode_error_and_disconnect() {
    let cases: &[(&str, &[u8], DecodeError)] = &[
        (
            "PUBACK with a trailing byte",
            &[0x40, 0x03, 0x00, 0x01, 0xFF],
            DecodeError::TrailingBytes { packet: PacketType::PubAck, extra: 1 },
        ),
        ("reserved packet type 15", &[0xF0, 0x00], DecodeError::InvalidPacketType(15)),
        ("reserved packet type 0", &[0x00, 0x00], DecodeError::InvalidPacketType(0)),
        (
            "PUBACK with packet id 0",
            &[0x40, 0x02, 0x00, 0x00],
            DecodeError::ZeroPacketId { packet: PacketType::PubAck },
        ),
        (
            "PINGRESP with flag bits",
            &[0xD1, 0x00],
            DecodeError::ReservedFlags { packet: PacketType::PingResp, flags: 1 },
        ),
        (
            "PUBLISH with QoS 3",
            &[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01],
            DecodeError::InvalidQos(3),
        ),
        ("QoS 0 PUBLISH with DUP", &[0x38, 0x03, 0x00, 0x01, b't'], DecodeError::DupOnQos0),
        (
            "five-byte remaining length",
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
            DecodeError::MalformedRemainingLength,
        ),
        (
            "SUBACK shorter than its packet id",
            &[0x90, 0x01, 0x00],
            DecodeError::Truncated { packet: PacketType::SubAck },
        ),
    ];
    for (what, bytes, error) in cases {
        let mut pair = connected();
        assert_eq!(
            deliver_raw(&mut pair, bytes),
            vec![Event::ProtocolError(ProtocolError::Malformed(error.clone()))],
            "{what}"
        );
        assert_disconnected(&mut pair);
    }
}

#[test]
fn a_packet_declared_over_the_maximum_size_is_refused_before_its_body_arrives() {
    let mut config = SessionConfig::new("c");
    config.max_packet_size = 1024;
    let mut pair = Pair::new(config);
    pair.connect(false);
    // PUBLISH declaring 2,000 bytes of body (0xD0 0x0F); only the fixed header is sent.
    assert_eq!(
        deliver_raw(&mut pair, &[0x30, 0xD0, 0x0F]),
        vec![Event::ProtocolError(ProtocolError::Malformed(DecodeError::PacketTooLarge {
            size: 2_003,
            max: 1024,
        }))]
    );
    assert_disconnected(&mut pair);
}

#[test]
fn malformed_bytes_before_connack_are_a_protocol_error_too() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.session.connect(pair.clock.now());
    pair.transfer();
    pair.broker.expect();
    assert_eq!(
        deliver_raw(&mut pair, &[0x20, 0x02, 0x02, 0x00]),
        vec![Event::ProtocolError(ProtocolError::Malformed(DecodeError::InvalidConnAckFlags(2)))]
    );
    assert!(!pair.session.is_connected());
    assert_eq!(pair.session.poll_timeout(), None);
}

#[test]
fn packets_before_a_malformed_one_in_the_same_read_are_handled() {
    let mut pair = connected();
    let a = publish(&mut pair, "a");
    pair.transfer();
    pair.broker.expect();
    assert_eq!(
        deliver_raw(&mut pair, &[0x40, 0x02, 0x00, 0x01, 0xF0, 0x00, 0xD0, 0x00]),
        vec![
            Event::PublishAcked { id: a, packet_id: id(1) },
            Event::ProtocolError(ProtocolError::Malformed(DecodeError::InvalidPacketType(15))),
        ]
    );
    assert_disconnected(&mut pair);
}
