//! Wildcard matching, retained messages and QoS 2, as IoT Core does them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::Harness;
use iot443_emulator::broker::CloseReason;
use iot443_proto::codec::{Packet, QoS, SubAckReturnCode};

/// Payloads of the PUBLISHes among `packets`.
fn payloads(packets: &[Packet]) -> Vec<Vec<u8>> {
    packets
        .iter()
        .filter_map(|packet| match packet {
            Packet::Publish(publish) => Some(publish.payload.to_vec()),
            _ => None,
        })
        .collect()
}

#[test]
fn hash_wildcard_does_not_match_parent_topic() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("sensor/#", QoS::AtMostOnce)]);
    let publisher = h.connect("publisher");
    h.publish(publisher, "sensor", QoS::AtMostOnce, false, b"parent");
    h.publish(publisher, "sensor/", QoS::AtMostOnce, false, b"empty level");
    h.publish(publisher, "sensor/a/b", QoS::AtMostOnce, false, b"child");
    assert_eq!(h.payloads(sub), [b"empty level".to_vec(), b"child".to_vec()]);
}

#[test]
fn plus_wildcard_matches_exactly_one_level() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("a/+/c", QoS::AtMostOnce)]);
    let publisher = h.connect("publisher");
    for topic in ["a/b/c", "a/c", "a/b/c/d", "a//c"] {
        h.publish(publisher, topic, QoS::AtMostOnce, false, topic.as_bytes());
    }
    assert_eq!(h.payloads(sub), [b"a/b/c".to_vec(), b"a//c".to_vec()]);
}

#[test]
fn overlapping_subscriptions_deliver_once() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("a/#", QoS::AtMostOnce), ("a/+", QoS::AtLeastOnce)]);
    let publisher = h.connect("publisher");
    h.publish(publisher, "a/b", QoS::AtLeastOnce, false, b"x");
    let publishes = h.publishes(sub);
    assert_eq!(publishes.len(), 1);
    assert_eq!(publishes[0].qos.qos(), QoS::AtLeastOnce, "highest granted QoS");
}

#[test]
fn retained_message_only_for_exact_topic_subscription() {
    let mut h = Harness::new();
    let publisher = h.connect("publisher");
    h.publish(publisher, "lamp/state", QoS::AtLeastOnce, true, b"on");
    assert_eq!(h.broker.retained_count(), 1);
    let wildcard = h.connect("wildcard");
    let received =
        h.subscribe(wildcard, &[("lamp/+", QoS::AtLeastOnce), ("lamp/#", QoS::AtMostOnce)]);
    assert!(matches!(received[..], [Packet::SubAck(_)]), "no retained message: {received:?}");
    let exact = h.connect("exact");
    let received = h.subscribe(exact, &[("lamp/state", QoS::AtLeastOnce)]);
    let [Packet::SubAck(_), Packet::Publish(retained)] = &received[..] else {
        panic!("expected SUBACK then the retained message, got {received:?}");
    };
    assert!(retained.retain, "retained message arrives with RETAIN set");
    assert_eq!(&retained.payload[..], b"on");
    assert_eq!(retained.qos.qos(), QoS::AtLeastOnce);
}

#[test]
fn live_messages_carry_retain_0() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("lamp/state", QoS::AtMostOnce)]);
    let publisher = h.connect("publisher");
    h.publish(publisher, "lamp/state", QoS::AtMostOnce, true, b"on");
    let publishes = h.publishes(sub);
    assert_eq!(publishes.len(), 1);
    assert!(!publishes[0].retain);
}

#[test]
fn new_retained_message_replaces_the_old_one() {
    let mut h = Harness::new();
    let publisher = h.connect("publisher");
    h.publish(publisher, "lamp/state", QoS::AtMostOnce, true, b"on");
    h.publish(publisher, "lamp/state", QoS::AtMostOnce, true, b"off");
    assert_eq!(h.broker.retained_count(), 1);
    let sub = h.connect("sub");
    let received = h.subscribe(sub, &[("lamp/state", QoS::AtMostOnce)]);
    assert_eq!(payloads(&received), [b"off".to_vec()]);
}

#[test]
fn empty_retained_payload_deletes_and_is_still_forwarded() {
    let mut h = Harness::new();
    let publisher = h.connect("publisher");
    h.publish(publisher, "lamp/state", QoS::AtMostOnce, true, b"on");
    let live = h.connect("live");
    let received = h.subscribe(live, &[("lamp/state", QoS::AtMostOnce)]);
    assert_eq!(payloads(&received), [b"on".to_vec()]);
    h.publish(publisher, "lamp/state", QoS::AtMostOnce, true, b"");
    assert_eq!(h.payloads(live), [Vec::<u8>::new()], "the deletion is forwarded");
    assert_eq!(h.broker.retained_count(), 0);
    let later = h.connect("later");
    let received = h.subscribe(later, &[("lamp/state", QoS::AtMostOnce)]);
    assert!(payloads(&received).is_empty());
}

#[test]
fn retained_publish_to_reserved_topic_closes_connection() {
    let mut h = Harness::new();
    let publisher = h.connect("publisher");
    let topic = "$aws/things/lamp/shadow/update";
    h.publish(publisher, topic, QoS::AtMostOnce, false, b"{}");
    h.assert_open(publisher);
    h.publish(publisher, topic, QoS::AtMostOnce, true, b"{}");
    h.assert_closed(publisher, &CloseReason::RetainOnReservedTopic { topic: topic.into() });
    assert_eq!(h.broker.retained_count(), 0);
}

#[test]
fn qos2_publish_gets_no_ack() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    let publisher = h.connect("publisher");
    h.publish(publisher, "t", QoS::ExactlyOnce, false, b"x");
    assert!(h.received(publisher).is_empty(), "no PUBACK, no PUBREC");
    assert!(h.received(sub).is_empty(), "not routed");
    h.assert_open(publisher);
}

#[test]
fn qos2_subscribe_gets_no_suback() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    let received = h.subscribe(sub, &[("a", QoS::AtLeastOnce), ("b", QoS::ExactlyOnce)]);
    assert!(received.is_empty(), "no SUBACK: {received:?}");
    h.assert_open(sub);
    let publisher = h.connect("publisher");
    h.publish(publisher, "a", QoS::AtMostOnce, false, b"x");
    assert!(h.received(sub).is_empty(), "nothing was subscribed");
}

#[test]
fn qos2_flow_packets_close_the_connection() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    let packet_id = h.packet_id();
    h.send(conn, &Packet::PubRel(iot443_proto::codec::PubRel::new(packet_id)));
    assert!(matches!(h.close_reason(conn), Some(CloseReason::ProtocolViolation(_))));
}

#[test]
fn shared_subscription_is_refused_in_suback() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    let received = h.subscribe(sub, &[("$share/group/t", QoS::AtMostOnce), ("t", QoS::AtMostOnce)]);
    let [Packet::SubAck(suback)] = &received[..] else { panic!("{received:?}") };
    assert_eq!(suback.return_codes, [SubAckReturnCode::FAILURE, SubAckReturnCode::GRANTED_QOS0]);
}

#[test]
fn a_client_receives_its_own_messages() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    h.subscribe(conn, &[("echo", QoS::AtMostOnce)]);
    h.publish(conn, "echo", QoS::AtMostOnce, false, b"x");
    assert_eq!(h.payloads(conn), [b"x".to_vec()]);
}
