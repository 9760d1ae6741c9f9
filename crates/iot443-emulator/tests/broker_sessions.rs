//! Clean and persistent sessions, expiry, and QoS 1 delivery towards a client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::Harness;
use iot443_emulator::broker::BrokerConfig;
use iot443_proto::codec::{Packet, PubAck, QoS, SubAck, SubAckReturnCode};
use std::time::Duration;

/// A persistent subscriber `sub` to `t` at QoS 1 that has disconnected, and a publisher.
fn offline_subscriber(h: &mut Harness) -> iot443_emulator::broker::ConnectionId {
    let (sub, present) = h.connect_session("sub", false);
    assert!(!present);
    h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    h.send(sub, &Packet::Disconnect);
    h.connect("publisher")
}

#[test]
fn persistent_session_keeps_qos1_while_offline() {
    let mut h = Harness::new();
    let publisher = offline_subscriber(&mut h);
    h.publish(publisher, "t", QoS::AtLeastOnce, false, b"kept");
    h.publish(publisher, "t", QoS::AtMostOnce, false, b"qos0 is not stored");
    let (sub, present) = h.connect_session("sub", false);
    assert!(present, "CONNACK session present");
    let publishes = h.publishes(sub);
    assert_eq!(publishes.len(), 1);
    assert_eq!(&publishes[0].payload[..], b"kept");
    assert_eq!(publishes[0].qos.qos(), QoS::AtLeastOnce);
    // The subscription survived too.
    h.publish(publisher, "t", QoS::AtMostOnce, false, b"live");
    assert_eq!(h.payloads(sub), [b"live".to_vec()]);
}

#[test]
fn clean_session_connect_discards_the_stored_session() {
    let mut h = Harness::new();
    let publisher = offline_subscriber(&mut h);
    h.publish(publisher, "t", QoS::AtLeastOnce, false, b"stored");
    let (sub, present) = h.connect_session("sub", true);
    assert!(!present);
    assert!(h.received(sub).is_empty(), "stored messages discarded");
    h.publish(publisher, "t", QoS::AtLeastOnce, false, b"after");
    assert!(h.received(sub).is_empty(), "subscriptions discarded");
}

#[test]
fn clean_session_ends_with_its_connection() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    h.close_transport(sub);
    let publisher = h.connect("publisher");
    h.publish(publisher, "t", QoS::AtLeastOnce, false, b"x");
    let (sub, present) = h.connect_session("sub", false);
    assert!(!present);
    assert!(h.received(sub).is_empty());
}

#[test]
fn session_expires_after_one_hour() {
    let mut h = Harness::new();
    let publisher = offline_subscriber(&mut h);
    h.publish(publisher, "t", QoS::AtLeastOnce, false, b"1");
    // Just under an hour: resumed.
    h.advance(Duration::from_secs(3599));
    let (sub, present) = h.connect_session("sub", false);
    assert!(present);
    assert_eq!(h.payloads(sub), [b"1".to_vec()]);
    h.send(sub, &Packet::Disconnect);
    let publisher = h.connect("publisher-2");
    h.publish(publisher, "t", QoS::AtLeastOnce, false, b"2");
    h.send(publisher, &Packet::Disconnect);
    assert_eq!(h.broker.session_count(), 1, "the offline persistent session");
    // An hour after that disconnect: gone, with its queued message.
    h.advance(Duration::from_secs(3599));
    assert_eq!(h.broker.session_count(), 1);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.broker.session_count(), 0);
    let (sub, present) = h.connect_session("sub", false);
    assert!(!present);
    assert!(h.received(sub).is_empty());
}

#[test]
fn session_expiry_is_configurable() {
    let mut config = BrokerConfig::default();
    config.session_expiry = Duration::from_secs(60);
    let mut h = Harness::with_config(config);
    offline_subscriber(&mut h);
    h.advance(Duration::from_secs(60));
    let (_, present) = h.connect_session("sub", false);
    assert!(!present);
}

#[test]
fn inbound_qos1_publish_is_acknowledged_after_routing() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("t", QoS::AtMostOnce)]);
    let publisher = h.connect("publisher");
    let id = h.packet_id();
    h.send(
        publisher,
        &Packet::Publish(common::publish_packet("t", QoS::AtLeastOnce, id, false, b"x")),
    );
    assert_eq!(h.received(publisher), vec![Packet::PubAck(PubAck::new(id))]);
    assert_eq!(h.payloads(sub), [b"x".to_vec()]);
}

#[test]
fn delivered_qos_is_the_lower_of_publish_and_granted_qos() {
    let mut h = Harness::new();
    let low = h.connect("low");
    let high = h.connect("high");
    assert_eq!(
        h.subscribe(low, &[("t", QoS::AtMostOnce)]),
        vec![Packet::SubAck(SubAck::new(
            iot443_proto::PacketId::new(1).unwrap(),
            vec![SubAckReturnCode::GRANTED_QOS0],
        ))]
    );
    h.subscribe(high, &[("t", QoS::AtLeastOnce)]);
    let publisher = h.connect("publisher");
    h.publish(publisher, "t", QoS::AtLeastOnce, false, b"1");
    assert_eq!(h.publishes(low)[0].qos.qos(), QoS::AtMostOnce);
    assert_eq!(h.publishes(high)[0].qos.qos(), QoS::AtLeastOnce);
    h.publish(publisher, "t", QoS::AtMostOnce, false, b"0");
    assert_eq!(h.publishes(high)[0].qos.qos(), QoS::AtMostOnce);
}

#[test]
fn at_most_100_unacked_qos1_towards_a_client() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    let publisher = h.connect("publisher");
    for n in 0..150u32 {
        h.publish(publisher, "t", QoS::AtLeastOnce, false, &n.to_be_bytes());
    }
    let first = h.publishes(sub);
    assert_eq!(first.len(), 100);
    // One PUBACK frees one slot: the 101st message, in order.
    h.ack_all(sub, &first[..1]);
    let next = h.publishes(sub);
    assert_eq!(next.len(), 1);
    assert_eq!(&next[0].payload[..], &100u32.to_be_bytes());
    h.ack_all(sub, &first[1..]);
    h.ack_all(sub, &next);
    let rest = h.publishes(sub);
    assert_eq!(rest.len(), 49);
    assert_eq!(&rest[48].payload[..], &149u32.to_be_bytes());
}

#[test]
fn unacked_qos1_is_redelivered_with_dup_on_resume() {
    let mut h = Harness::new();
    let (sub, _) = h.connect_session("sub", false);
    h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    let publisher = h.connect("publisher");
    h.publish(publisher, "t", QoS::AtLeastOnce, false, b"a");
    h.publish(publisher, "t", QoS::AtLeastOnce, false, b"b");
    let sent = h.publishes(sub);
    assert!(sent.iter().all(|p| !p.dup));
    h.ack_all(sub, &sent[..1]);
    h.close_transport(sub);
    let (sub, present) = h.connect_session("sub", false);
    assert!(present);
    let again = h.publishes(sub);
    assert_eq!(again.len(), 1);
    assert!(again[0].dup);
    assert_eq!(again[0].qos, sent[1].qos, "same packet id");
    assert_eq!(&again[0].payload[..], b"b");
}

#[test]
fn offline_queue_is_bounded_by_max_queued_per_session() {
    let mut config = BrokerConfig::default();
    config.max_queued_per_session = 5;
    let mut h = Harness::with_config(config);
    let publisher = offline_subscriber(&mut h);
    for n in 0..8u8 {
        h.publish(publisher, "t", QoS::AtLeastOnce, false, &[n]);
    }
    let (sub, _) = h.connect_session("sub", false);
    assert_eq!(h.payloads(sub), (0..5u8).map(|n| vec![n]).collect::<Vec<_>>());
}

#[test]
fn unsubscribe_stops_delivery() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("t", QoS::AtMostOnce)]);
    let received = h.unsubscribe(sub, &["t"]);
    assert!(matches!(received[..], [Packet::UnsubAck(_)]));
    let publisher = h.connect("publisher");
    h.publish(publisher, "t", QoS::AtMostOnce, false, b"x");
    assert!(h.received(sub).is_empty());
}
