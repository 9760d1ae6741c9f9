#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Bounded waits for acknowledgements, a paused reader's keep-alive, and PUBACKs sent only for
//! messages handed on (`manual_acks`). All on the virtual clock.
//!
//! AWS IoT Core sends no acknowledgement for an operation it throttles (MQTT 3.1.1), so every
//! wait has a bound: a PUBLISH without PUBACK ends the link and is re-sent with DUP; an
//! application's SUBSCRIBE without SUBACK is given up and reported.

use core::time::Duration;
use iot443_proto::codec::PacketType;
use iot443_proto::session::{Event, LinkDeadReason, SessionConfig};
use iot443_proto::{Instant, Packet, QoS};
use iot443_test_support::Pair;
use iot443_test_support::packets::*;

const ACK_TIMEOUT: Duration = Duration::from_secs(20);
const KEEP_ALIVE: Duration = Duration::from_secs(60);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

fn connected(configure: impl FnOnce(&mut SessionConfig)) -> Pair {
    let mut config = SessionConfig::new("c");
    config.ack_timeout = ACK_TIMEOUT;
    config.keep_alive = KEEP_ALIVE;
    config.ping_timeout = PING_TIMEOUT;
    configure(&mut config);
    let mut pair = Pair::new(config);
    pair.connect(false);
    pair
}

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

fn tick(pair: &mut Pair, to: Instant) {
    pair.clock.advance_to(to);
    pair.session.handle_timeout(pair.clock.now());
    pair.transfer();
}

#[test]
fn a_publish_without_puback_ends_the_link_at_the_ack_timeout_and_is_resent_with_dup() {
    let mut pair = connected(|_| {});
    pair.publish(QoS::AtLeastOnce, "m");
    pair.transfer();
    assert_eq!(pair.sent_publishes(), vec![(Some(1), false, "m".to_owned())]);
    assert_eq!(pair.session.poll_timeout(), Some(at(20)), "the ack deadline comes first");

    tick(&mut pair, at(19));
    assert!(pair.session.is_connected(), "not before the timeout");
    tick(&mut pair, at(20));
    assert!(!pair.session.is_connected());
    assert_eq!(pair.take_events(), vec![Event::LinkDead { reason: LinkDeadReason::PubAckTimeout }]);

    pair.cut();
    pair.connect(false);
    assert_eq!(pair.sent_publishes(), vec![(Some(1), true, "m".to_owned())]);
    pair.ack(1);
    assert!(matches!(pair.take_events()[..], [Event::PublishAcked { .. }]));
}

#[test]
fn the_ack_wait_counts_from_the_last_write_of_the_publish() {
    let mut pair = connected(|_| {});
    pair.clock.advance(Duration::from_secs(7));
    pair.publish(QoS::AtLeastOnce, "late");
    pair.transfer();
    assert_eq!(pair.session.poll_timeout(), Some(at(27)));
}

#[test]
fn a_subscribe_without_suback_is_given_up_at_the_ack_timeout_and_the_link_stays() {
    let mut pair = connected(|_| {});
    let packet_id = pair.session.subscribe(vec![filter("a/#", QoS::AtLeastOnce)]).unwrap();
    pair.transfer();
    pair.broker.expect_matching("SUBSCRIBE", |p| matches!(p, Packet::Subscribe(_)));

    tick(&mut pair, at(20));
    assert!(pair.session.is_connected(), "a request's timeout does not end the link");
    let events = pair.take_events();
    assert!(
        matches!(&events[..], [Event::RequestTimedOut { packet_id: id, packet: Packet::Subscribe(_) }] if *id == packet_id),
        "{events:?}"
    );
    assert!(pair.session.oldest_request().is_none(), "not sent again");

    // A late SUBACK is only reported.
    pair.broker.send(&suback(packet_id.get(), &[QoS::AtLeastOnce]));
    pair.transfer();
    assert!(matches!(
        pair.take_events()[..],
        [Event::UnexpectedAck { packet: PacketType::SubAck, .. }]
    ));
    assert!(pair.session.subscriptions().is_empty(), "a given-up filter is not restored");
}

#[test]
fn a_suback_with_another_packet_id_does_not_answer_the_subscribe() {
    let mut pair = connected(|_| {});
    let packet_id = pair.session.subscribe(vec![filter("a/#", QoS::AtLeastOnce)]).unwrap();
    pair.transfer();
    pair.clock.advance(Duration::from_secs(5));
    pair.broker.send(&suback(packet_id.get() + 7, &[QoS::AtLeastOnce]));
    pair.transfer();
    assert!(matches!(
        pair.take_events()[..],
        [Event::UnexpectedAck { packet: PacketType::SubAck, .. }]
    ));
    assert_eq!(pair.session.poll_timeout(), Some(at(20)), "the real SUBACK is still awaited");

    pair.broker.send(&suback(packet_id.get(), &[QoS::AtLeastOnce]));
    pair.transfer();
    assert!(matches!(pair.take_events()[..], [Event::SubscribeAcked { .. }]));
}

#[test]
fn a_zero_ack_timeout_waits_forever() {
    let mut pair = connected(|config| config.ack_timeout = Duration::ZERO);
    pair.publish(QoS::AtLeastOnce, "m");
    pair.transfer();
    assert_eq!(pair.session.poll_timeout(), Some(at(60)), "only the keep-alive runs");
}

/// Answers the PINGREQs the scripted broker got so far (and checks that nothing else came).
fn answer_pings(pair: &mut Pair) -> usize {
    let mut pings = 0;
    while pair.broker.pending() > 0 {
        pair.broker.expect_matching("PINGREQ", |p| *p == Packet::PingReq);
        pair.broker.send(&Packet::PingResp);
        pings += 1;
    }
    pings
}

#[test]
fn a_paused_reader_keeps_pinging_and_is_never_declared_dead() {
    let mut pair = connected(|_| {});
    pair.publish(QoS::AtLeastOnce, "m");
    pair.transfer();
    pair.sent_publishes();
    pair.session.pause_reading(pair.clock.now());

    // Ten keep-alive intervals without reading: a PINGREQ each interval, nothing fails (the
    // PINGRESPs and the PUBACK wait unread in the transport).
    let mut unread = Vec::new();
    let mut pings = 0;
    for n in 1..=10 {
        let deadline = pair.session.poll_timeout().expect("the ping timer runs while paused");
        assert_eq!(deadline, at(60 * n));
        pair.clock.advance_to(deadline);
        pair.session.handle_timeout(pair.clock.now());
        let mut out = Vec::new();
        pair.session.poll_transmit(pair.clock.now(), &mut out);
        pair.broker.receive(&out);
        pings += answer_pings(&mut pair);
        unread.extend_from_slice(&pair.broker.take_output());
        assert!(pair.session.is_connected(), "still connected after {n} intervals");
        assert!(pair.take_events().is_empty());
    }
    assert_eq!(pings, 10);

    // Reading again: the PUBACK and the PINGRESPs arrive, the link is fine.
    pair.session.resume_reading(pair.clock.now());
    pair.broker.send(&puback(1));
    unread.extend_from_slice(&pair.broker.take_output());
    pair.session.handle_bytes(pair.clock.now(), &unread);
    assert!(matches!(pair.take_events()[..], [Event::PublishAcked { .. }]));
    assert!(pair.session.is_connected());
    assert_eq!(pair.session.poll_timeout(), Some(at(600) + KEEP_ALIVE));
}

#[test]
fn after_resuming_an_awaited_pingresp_is_due_within_the_ping_timeout() {
    let mut pair = connected(|_| {});
    tick(&mut pair, at(60));
    pair.broker.expect_matching("PINGREQ", |p| *p == Packet::PingReq);
    pair.session.pause_reading(at(61));
    tick(&mut pair, at(100));
    assert!(pair.session.is_connected(), "the ping deadline waits while paused");
    pair.session.resume_reading(at(100));
    assert_eq!(pair.session.poll_timeout(), Some(at(100) + PING_TIMEOUT));
    tick(&mut pair, at(105));
    assert_eq!(pair.take_events(), vec![Event::LinkDead { reason: LinkDeadReason::PingTimeout }]);
}

#[test]
fn with_manual_acks_a_message_is_acknowledged_only_when_handed_on() {
    let mut pair = connected(|config| config.manual_acks = true);
    pair.broker.send(&publish_qos1("in", 5, b"x"));
    pair.transfer();
    let events = pair.take_events();
    assert!(matches!(events[..], [Event::Message(_)]), "{events:?}");
    pair.broker.expect_nothing();

    pair.session.acknowledge(id(5));
    pair.transfer();
    assert_eq!(pair.broker.expect(), puback(5));

    // While disconnected an acknowledgement is ignored: it would belong to an earlier
    // connection, whose packet ids mean nothing on the next one.
    pair.cut();
    pair.session.acknowledge(id(6));
    pair.connect(false);
    pair.broker.expect_nothing();
}
