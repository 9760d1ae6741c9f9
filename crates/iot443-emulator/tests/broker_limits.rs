//! IoT Core's per-connection limits: each one closes the offending connection.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use bytes::{BufMut, BytesMut};
use common::Harness;
use iot443_emulator::broker::CloseReason;
use iot443_proto::codec::{DecodeError, PacketType, QoS};
use iot443_proto::topic::TopicError;

#[test]
fn payload_over_128_kib_closes_connection() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    h.publish(conn, "t", QoS::AtMostOnce, false, &vec![0; 131_072]);
    h.assert_open(conn);
    h.publish(conn, "t", QoS::AtLeastOnce, false, &vec![0; 131_073]);
    h.assert_closed(conn, &CloseReason::PayloadTooLarge { size: 131_073 });
    assert!(h.received(conn).is_empty(), "no PUBACK");
}

#[test]
fn topic_over_256_bytes_closes_connection() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    h.publish(conn, &"a".repeat(256), QoS::AtMostOnce, false, b"x");
    h.assert_open(conn);
    let topic = "a".repeat(257);
    h.publish(conn, &topic, QoS::AtMostOnce, false, b"x");
    let error = TopicError::TooLong { len: 257, max: 256 };
    h.assert_closed(conn, &CloseReason::TopicLimit { topic, error });
}

#[test]
fn topic_with_more_than_7_slashes_closes_connection() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    h.publish(conn, "1/2/3/4/5/6/7/8", QoS::AtMostOnce, false, b"x");
    h.assert_open(conn);
    h.publish(conn, "1/2/3/4/5/6/7/8/9", QoS::AtMostOnce, false, b"x");
    let error = TopicError::TooManyLevels { slashes: 8, max: 7 };
    h.assert_closed(conn, &CloseReason::TopicLimit { topic: "1/2/3/4/5/6/7/8/9".into(), error });
}

#[test]
fn publish_to_a_reserved_topic_outside_the_aws_families_closes_connection() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    h.publish(conn, "$aws/things/lamp/shadow/update", QoS::AtMostOnce, false, b"{}");
    h.assert_open(conn);
    h.publish(conn, "$SYS/uptime", QoS::AtMostOnce, false, b"x");
    let error = TopicError::ReservedTopic;
    h.assert_closed(conn, &CloseReason::TopicLimit { topic: "$SYS/uptime".into(), error });
}

#[test]
fn subscription_filter_over_iot_limits_closes_connection() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    h.subscribe(conn, &[("$aws/things/+/shadow/#", QoS::AtMostOnce)]);
    h.assert_open(conn);
    h.subscribe(conn, &[("ok", QoS::AtMostOnce), ("+/2/3/4/5/6/7/8/#", QoS::AtMostOnce)]);
    let error = TopicError::TooManyLevels { slashes: 8, max: 7 };
    h.assert_closed(conn, &CloseReason::TopicLimit { topic: "+/2/3/4/5/6/7/8/#".into(), error });
}

#[test]
fn ninth_filter_in_subscribe_closes_connection() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    let names: Vec<String> = (0..9).map(|n| format!("f/{n}")).collect();
    let eight: Vec<(&str, QoS)> =
        names[..8].iter().map(|n| (n.as_str(), QoS::AtMostOnce)).collect();
    h.subscribe(conn, &eight);
    h.assert_open(conn);
    let nine: Vec<(&str, QoS)> = names.iter().map(|n| (n.as_str(), QoS::AtMostOnce)).collect();
    let received = h.subscribe(conn, &nine);
    assert!(received.is_empty(), "no SUBACK");
    h.assert_closed(conn, &CloseReason::TooManyFiltersInSubscribe { count: 9 });
}

#[test]
fn fifty_first_subscription_closes_connection() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    let names: Vec<String> = (0..51).map(|n| format!("f/{n}")).collect();
    for chunk in names[..50].chunks(5) {
        let filters: Vec<(&str, QoS)> =
            chunk.iter().map(|n| (n.as_str(), QoS::AtMostOnce)).collect();
        h.subscribe(conn, &filters);
    }
    // Subscribing again to a filter already held does not count.
    h.subscribe(conn, &[("f/0", QoS::AtLeastOnce)]);
    h.assert_open(conn);
    h.subscribe(conn, &[(names[50].as_str(), QoS::AtMostOnce)]);
    h.assert_closed(conn, &CloseReason::TooManySubscriptions { count: 51 });
}

#[test]
fn wildcard_in_publish_topic_closes_connection() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    // PUBLISH QoS 0, topic "a/#", no payload: the codec refuses to build it, so write bytes.
    let mut wire = BytesMut::new();
    wire.put_slice(&[0x30, 0x05, 0x00, 0x03]);
    wire.put_slice(b"a/#");
    h.send_raw(conn, &wire);
    let error = DecodeError::InvalidTopic {
        packet: PacketType::Publish,
        source: TopicError::WildcardInName,
    };
    h.assert_closed(conn, &CloseReason::Malformed(error));
}

#[test]
fn will_over_the_limits_is_refused_at_connect() {
    let mut h = Harness::new();
    let connect = common::connect_with_will("dev", "$SYS/will", QoS::AtMostOnce, false, b"x");
    let (conn, received) = h.connect_with(connect);
    assert!(received.is_empty());
    let error = TopicError::ReservedTopic;
    h.assert_closed(conn, &CloseReason::TopicLimit { topic: "$SYS/will".into(), error });
}
