//! CONNECT handling: protocol level, client ids, keep-alive clamping, timeouts and takeover.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use bytes::BytesMut;
use common::Harness;
use iot443_emulator::broker::{BrokerEvent, CloseReason};
use iot443_proto::codec::{Codec, ConnAck, Connect, ConnectReturnCode, Packet, QoS};
use std::time::Duration;

fn refused(code: ConnectReturnCode) -> Vec<Packet> {
    vec![Packet::ConnAck(ConnAck::new(false, code))]
}

#[test]
fn unsupported_protocol_level_gets_return_code_1_then_close() {
    let mut h = Harness::new();
    let conn = h.open();
    let mut wire = BytesMut::new();
    Codec::default().encode(&Packet::Connect(Connect::new("dev")), &mut wire).unwrap();
    // 0x10 len 0x00 0x04 'M' 'Q' 'T' 'T' level: MQTT 5 is level 5.
    assert_eq!(wire[8], 4);
    wire[8] = 5;
    h.send_raw(conn, &wire);
    assert_eq!(h.received(conn), refused(ConnectReturnCode::UNACCEPTABLE_PROTOCOL_VERSION));
    h.assert_closed(conn, &CloseReason::UnsupportedProtocolLevel(5));
}

#[test]
fn packet_before_connect_closes_connection() {
    let mut h = Harness::new();
    let conn = h.open();
    h.send(conn, &Packet::PingReq);
    assert!(h.received(conn).is_empty());
    assert!(matches!(h.close_reason(conn), Some(CloseReason::ProtocolViolation(_))));
    assert_eq!(h.broker.connection_count(), 0);
}

#[test]
fn second_connect_closes_connection() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    h.send(conn, &Packet::Connect(Connect::new("dev")));
    assert!(h.received(conn).is_empty(), "no second CONNACK");
    assert_eq!(
        h.close_reason(conn),
        Some(&CloseReason::ProtocolViolation("second CONNECT on one connection"))
    );
}

#[test]
fn client_that_never_connects_is_closed_after_10_seconds() {
    let mut h = Harness::new();
    let silent = h.open();
    let late = h.open();
    h.advance(Duration::from_millis(9_900));
    h.assert_open(silent);
    h.send(late, &Packet::Connect(Connect::new("late")));
    h.advance(Duration::from_millis(100));
    h.assert_closed(silent, &CloseReason::ConnectTimeout);
    h.assert_open(late);
    assert_eq!(h.broker.connection_count(), 1);
}

#[test]
fn client_id_over_128_bytes_is_rejected_with_return_code_2() {
    let mut h = Harness::new();
    let longest = h.connect(&"a".repeat(128));
    h.assert_open(longest);
    let (conn, received) = h.connect_with(Connect::new("a".repeat(129)));
    assert_eq!(received, refused(ConnectReturnCode::IDENTIFIER_REJECTED));
    assert!(matches!(h.close_reason(conn), Some(CloseReason::ClientIdRejected(_))));
}

#[test]
fn empty_client_id_is_rejected_with_return_code_2() {
    let mut h = Harness::new();
    let (conn, received) = h.connect_with(Connect::new(""));
    assert_eq!(received, refused(ConnectReturnCode::IDENTIFIER_REJECTED));
    assert!(matches!(h.close_reason(conn), Some(CloseReason::ClientIdRejected(_))));
}

#[test]
fn client_id_starting_with_dollar_is_rejected_with_return_code_2() {
    let mut h = Harness::new();
    let (conn, received) = h.connect_with(Connect::new("$aws-device"));
    assert_eq!(received, refused(ConnectReturnCode::IDENTIFIER_REJECTED));
    assert!(matches!(h.close_reason(conn), Some(CloseReason::ClientIdRejected(_))));
    let dollar_inside = h.connect("device$1");
    h.assert_open(dollar_inside);
}

/// Connects with `keep_alive` and returns the keep-alive the broker reports, after checking
/// that the connection survives just under 1.5 times it and is closed at 1.5 times it.
fn effective_keep_alive(requested: u16) -> u16 {
    let mut h = Harness::new();
    let (conn, _) = h.connect_with(Connect::new("dev").with_keep_alive(requested));
    let (_, _, keep_alive) = h.connected(conn).unwrap();
    let grace = Duration::from_millis(u64::from(keep_alive) * 1500);
    h.advance(grace - Duration::from_millis(1));
    h.assert_open(conn);
    h.advance(Duration::from_millis(1));
    h.assert_closed(conn, &CloseReason::KeepAliveTimeout { keep_alive_secs: keep_alive });
    keep_alive
}

#[test]
fn keep_alive_zero_is_clamped_to_1200_seconds() {
    assert_eq!(effective_keep_alive(0), 1200);
}

#[test]
fn keep_alive_over_1200_is_clamped_to_1200_seconds() {
    assert_eq!(effective_keep_alive(1201), 1200);
    assert_eq!(effective_keep_alive(u16::MAX), 1200);
}

#[test]
fn keep_alive_under_30_is_raised_to_30_seconds() {
    assert_eq!(effective_keep_alive(1), 30);
    assert_eq!(effective_keep_alive(29), 30);
    assert_eq!(effective_keep_alive(30), 30);
}

#[test]
fn silence_for_one_and_a_half_keep_alive_closes_connection() {
    let mut h = Harness::new();
    let conn = h.connect("dev"); // keep-alive 60 s
    h.advance(Duration::from_secs(80));
    h.send(conn, &Packet::PingReq);
    assert_eq!(h.received(conn), vec![Packet::PingResp]);
    h.advance(Duration::from_secs(89));
    h.assert_open(conn);
    h.advance(Duration::from_secs(1));
    h.assert_closed(conn, &CloseReason::KeepAliveTimeout { keep_alive_secs: 60 });
}

#[test]
fn among_many_connections_only_the_silent_ones_time_out() {
    // Each PINGREQ moves its connection's entry in the broker's ordered deadlines: every
    // connection must still close at its own deadline, and no other.
    let mut h = Harness::new();
    let talkers: Vec<_> = (0..50).map(|n| h.connect(&format!("talker-{n}"))).collect();
    let silent: Vec<_> = (0..50).map(|n| h.connect(&format!("silent-{n}"))).collect();
    for _ in 0..4 {
        h.advance(Duration::from_secs(80));
        for &conn in &talkers {
            h.send(conn, &Packet::PingReq);
            assert_eq!(h.received(conn), vec![Packet::PingResp]);
        }
        if h.broker.connection_count() > talkers.len() {
            // Before 90 s of silence, after the first 80 s: every silent one still open.
            silent.iter().for_each(|&conn| h.assert_open(conn));
        }
    }
    for &conn in &silent {
        h.assert_closed(conn, &CloseReason::KeepAliveTimeout { keep_alive_secs: 60 });
    }
    talkers.iter().for_each(|&conn| h.assert_open(conn));
    assert_eq!(h.broker.connection_count(), talkers.len());
}

#[test]
fn client_id_takeover_closes_old_connection() {
    let mut h = Harness::new();
    let old = h.connect("dev");
    h.subscribe(old, &[("t", QoS::AtMostOnce)]);
    let new = h.connect("dev");
    h.assert_closed(old, &CloseReason::Takeover);
    h.assert_open(new);
    assert_eq!(h.broker.connection_count(), 1);
    // The new connection started a clean session: the old subscription is gone.
    let publisher = h.connect("publisher");
    h.publish(publisher, "t", QoS::AtMostOnce, false, b"x");
    assert!(h.publishes(new).is_empty());
    assert!(h.publishes(old).is_empty());
}

#[test]
fn takeover_by_a_persistent_connect_carries_the_session_over() {
    let mut h = Harness::new();
    let (old, _) = h.connect_session("dev", false);
    h.subscribe(old, &[("t", QoS::AtLeastOnce)]);
    let (new, session_present) = h.connect_session("dev", false);
    assert!(session_present);
    h.assert_closed(old, &CloseReason::Takeover);
    let publisher = h.connect("publisher");
    h.publish(publisher, "t", QoS::AtLeastOnce, false, b"x");
    assert_eq!(h.payloads(new), [b"x".to_vec()]);
}

#[test]
fn ping_gets_pingresp() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    h.send(conn, &Packet::PingReq);
    assert_eq!(h.received(conn), vec![Packet::PingResp]);
}

#[test]
fn wake_is_reported_once_until_output_is_taken() {
    let mut h = Harness::new();
    let conn = h.open();
    h.send(conn, &Packet::Connect(Connect::new("dev")));
    h.send(conn, &Packet::PingReq);
    let wakes = |h: &Harness| {
        h.events.iter().filter(|e| matches!(e, BrokerEvent::Wake(c) if *c == conn)).count()
    };
    assert_eq!(wakes(&h), 1, "CONNACK and PINGRESP wait in one batch");
    assert_eq!(h.received(conn).len(), 2);
    h.send(conn, &Packet::PingReq);
    assert_eq!(wakes(&h), 2);
}

#[test]
fn calls_for_a_closed_connection_are_ignored() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    h.send(conn, &Packet::Disconnect);
    h.assert_closed(conn, &CloseReason::ClientDisconnected);
    let events = h.events.len();
    h.send(conn, &Packet::PingReq);
    h.close_transport(conn);
    assert_eq!(h.events.len(), events);
    assert!(h.received(conn).is_empty());
}
