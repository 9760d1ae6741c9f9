#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Keep-alive: PINGREQ after `keep_alive` without sending or without receiving, the PINGRESP
//! deadline, and what postpones or extends each timer. All on the virtual clock.

use bytes::Bytes;
use core::time::Duration;
use iot443_proto::session::{Event, LinkDeadReason, SessionConfig};
use iot443_proto::{Instant, Packet, QoS};
use iot443_test_support::Pair;
use iot443_test_support::packets::*;

const KEEP_ALIVE: Duration = Duration::from_secs(60);
const PING_TIMEOUT: Duration = Duration::from_secs(5);
const NANO: Duration = Duration::from_nanos(1);

/// A connected pair with the default keep-alive (60 s) and ping timeout (5 s), at time zero.
fn connected() -> Pair {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.connect(false);
    pair
}

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

/// One nanosecond before `at(secs)`.
fn just_before(secs: u64) -> Instant {
    Instant::ZERO + (Duration::from_secs(secs) - NANO)
}

/// Moves the clock to `to`, lets timers fire and moves the bytes.
fn tick(pair: &mut Pair, to: Instant) {
    pair.clock.advance_to(to);
    pair.session.handle_timeout(pair.clock.now());
    pair.transfer();
}

fn expect_pingreq(pair: &mut Pair) {
    pair.broker.expect_matching("PINGREQ", |p| *p == Packet::PingReq);
    pair.broker.expect_nothing();
}

#[test]
fn pingreq_goes_out_after_keep_alive_of_idleness_and_not_before() {
    let mut pair = connected();
    assert_eq!(pair.session.poll_timeout(), Some(at(60)));

    tick(&mut pair, just_before(60));
    pair.broker.expect_nothing();
    assert_eq!(pair.session.poll_timeout(), Some(at(60)));

    assert!(pair.advance_to_next_timeout(KEEP_ALIVE));
    assert_eq!(pair.clock.now(), at(60));
    expect_pingreq(&mut pair);
    assert_eq!(pair.session.poll_timeout(), Some(at(60) + PING_TIMEOUT), "PINGRESP deadline");
    assert!(pair.take_events().is_empty());
}

#[test]
fn sending_alone_does_not_postpone_the_ping() {
    // A client that keeps sending into a dead link must still find out that nothing comes back.
    let mut pair = connected();
    pair.clock.advance_to(at(30));
    pair.session.publish(topic("t"), QoS::AtMostOnce, Bytes::from_static(b"x"), false).unwrap();
    pair.transfer();
    pair.broker.expect();
    assert_eq!(pair.session.poll_timeout(), Some(at(60)), "nothing received since CONNACK");

    tick(&mut pair, just_before(60));
    pair.broker.expect_nothing();
    tick(&mut pair, at(60));
    expect_pingreq(&mut pair);
}

#[test]
fn sending_and_receiving_postpone_the_ping() {
    let mut pair = connected();
    pair.clock.advance_to(at(30));
    pair.session.publish(topic("t"), QoS::AtLeastOnce, Bytes::from_static(b"x"), false).unwrap();
    pair.transfer();
    pair.broker.expect();
    pair.clock.advance_to(at(31));
    pair.broker.send(&puback(1));
    pair.transfer();
    assert_eq!(pair.session.poll_timeout(), Some(at(90)), "the older of sent (30) and received");

    tick(&mut pair, at(60));
    pair.broker.expect_nothing();
    tick(&mut pair, just_before(90));
    pair.broker.expect_nothing();

    tick(&mut pair, at(90));
    expect_pingreq(&mut pair);
}

#[test]
fn answering_a_qos1_message_counts_as_sending() {
    let mut pair = connected();
    pair.clock.advance_to(at(40));
    pair.broker.send(&publish_qos1("cmd", 3, b"go"));
    pair.transfer();
    pair.broker.expect_matching("PUBACK 3", |p| *p == puback(3));
    assert_eq!(pair.session.poll_timeout(), Some(at(100)));
}

#[test]
fn receiving_alone_does_not_postpone_the_ping() {
    let mut pair = connected();
    pair.clock.advance_to(at(40));
    pair.broker.send(&publish_qos0("news", b"hello"));
    pair.transfer();
    assert!(matches!(pair.take_events().as_slice(), [Event::Message(_)]));
    pair.broker.expect_nothing();
    assert_eq!(pair.session.poll_timeout(), Some(at(60)), "nothing sent since CONNACK");

    tick(&mut pair, at(60));
    expect_pingreq(&mut pair);
}

#[test]
fn pingresp_clears_the_deadline_and_the_next_ping_follows_a_full_interval_later() {
    let mut pair = connected();
    tick(&mut pair, at(60));
    expect_pingreq(&mut pair);

    pair.clock.advance_to(at(61));
    pair.broker.send(&Packet::PingResp);
    pair.transfer();
    assert!(pair.take_events().is_empty(), "PINGRESP is not an application event");
    assert_eq!(pair.session.poll_timeout(), Some(at(120)), "back to the keep-alive timer");

    tick(&mut pair, at(65));
    assert!(pair.take_events().is_empty(), "the old deadline must not fire");
    assert!(pair.session.is_connected());

    tick(&mut pair, at(120));
    expect_pingreq(&mut pair);
    assert_eq!(pair.session.poll_timeout(), Some(at(125)));
}

#[test]
fn no_pingresp_within_ping_timeout_is_a_dead_link() {
    let mut pair = connected();
    tick(&mut pair, at(60));
    expect_pingreq(&mut pair);

    tick(&mut pair, just_before(65));
    assert!(pair.take_events().is_empty());
    assert!(pair.session.is_connected());

    assert!(pair.advance_to_next_timeout(PING_TIMEOUT));
    assert_eq!(pair.clock.now(), at(65));
    assert_eq!(pair.take_events(), vec![Event::LinkDead { reason: LinkDeadReason::PingTimeout }]);
    assert!(!pair.session.is_connected());
    assert_eq!(pair.session.poll_timeout(), None);
    pair.broker.expect_nothing();
}

#[test]
fn a_custom_ping_timeout_is_honoured() {
    let mut config = SessionConfig::new("c");
    config.keep_alive = Duration::from_secs(30);
    config.ping_timeout = Duration::from_secs(2);
    let mut pair = Pair::new(config);
    pair.connect(false);
    assert!(pair.advance_to_next_timeout(Duration::from_secs(30)));
    expect_pingreq(&mut pair);
    assert_eq!(pair.session.poll_timeout(), Some(at(32)));
    assert!(pair.advance_to_next_timeout(Duration::from_secs(2)));
    assert_eq!(pair.take_events(), vec![Event::LinkDead { reason: LinkDeadReason::PingTimeout }]);
}

#[test]
fn any_packet_while_a_ping_is_outstanding_extends_the_deadline() {
    let mut pair = connected();
    tick(&mut pair, at(60));
    expect_pingreq(&mut pair);
    assert_eq!(pair.session.poll_timeout(), Some(at(65)));

    // The server is alive and busy: its PINGRESP is queued behind this message.
    pair.clock.advance_to(at(63));
    pair.broker.send(&publish_qos0("news", b"hello"));
    pair.transfer();
    assert!(matches!(pair.take_events().as_slice(), [Event::Message(_)]));
    assert_eq!(pair.session.poll_timeout(), Some(at(68)));

    tick(&mut pair, at(65));
    assert!(pair.take_events().is_empty(), "the original deadline must not fire");
    assert!(pair.session.is_connected());

    tick(&mut pair, at(68));
    assert_eq!(pair.take_events(), vec![Event::LinkDead { reason: LinkDeadReason::PingTimeout }]);
}

#[test]
fn only_one_ping_is_outstanding_at_a_time() {
    let mut pair = connected();
    tick(&mut pair, at(60));
    expect_pingreq(&mut pair);
    // Sending while the ping is outstanding neither sends another PINGREQ nor moves the deadline.
    pair.clock.advance_to(at(62));
    pair.session.publish(topic("t"), QoS::AtMostOnce, Bytes::from_static(b"x"), false).unwrap();
    pair.transfer();
    pair.broker.expect();
    tick(&mut pair, at(64));
    pair.broker.expect_nothing();
    assert_eq!(pair.session.poll_timeout(), Some(at(65)));
}

#[test]
fn keep_alive_zero_runs_no_timer() {
    let mut config = SessionConfig::new("c");
    config.keep_alive = Duration::ZERO;
    let mut pair = Pair::new(config);
    let Packet::Connect(connect) = pair.connect(false) else { panic!("not CONNECT") };
    assert_eq!(connect.keep_alive, 0);
    assert_eq!(pair.session.poll_timeout(), None);

    tick(&mut pair, at(100_000));
    pair.broker.expect_nothing();
    assert!(pair.session.is_connected());
    assert_eq!(pair.session.poll_timeout(), None);
}

#[test]
fn keep_alive_above_the_wire_maximum_pings_within_what_connect_announced() {
    // CONNECT can only say 65,535 s; the server closes the link after 1.5 times that, so the
    // session must not wait the longer configured interval.
    let mut config = SessionConfig::new("c");
    config.keep_alive = Duration::from_secs(100_000);
    let mut pair = Pair::new(config);
    let Packet::Connect(connect) = pair.connect(false) else { panic!("not CONNECT") };
    assert_eq!(connect.keep_alive, u16::MAX);
    assert_eq!(pair.session.poll_timeout(), Some(at(u64::from(u16::MAX))));

    tick(&mut pair, at(u64::from(u16::MAX)));
    expect_pingreq(&mut pair);
}

#[test]
fn a_late_wake_up_still_sends_the_ping_and_times_from_then() {
    let mut pair = connected();
    tick(&mut pair, at(200));
    expect_pingreq(&mut pair);
    assert_eq!(pair.session.poll_timeout(), Some(at(205)));
}

#[test]
fn the_keep_alive_timer_restarts_on_reconnect() {
    let mut pair = connected();
    tick(&mut pair, at(60));
    expect_pingreq(&mut pair);
    pair.clock.advance_to(at(62));
    pair.cut();
    assert_eq!(pair.session.poll_timeout(), None);

    pair.connect(false);
    assert_eq!(pair.session.poll_timeout(), Some(at(122)), "no stale PINGRESP deadline");
    tick(&mut pair, at(70));
    assert!(pair.take_events().is_empty());
    assert!(pair.session.is_connected());
}
