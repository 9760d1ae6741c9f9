//! The last will: published on every close except a DISCONNECT from the client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::{Harness, connect_with_will};
use iot443_emulator::broker::{CloseReason, ConnectionId};
use iot443_proto::codec::{Connect, Packet, QoS};
use std::time::Duration;

/// A subscriber to `will/#` and a connection with a will on `will/<client_id>`.
fn with_will(h: &mut Harness, client_id: &str) -> (ConnectionId, ConnectionId) {
    let watcher = h.connect(&format!("watcher-{client_id}"));
    h.subscribe(watcher, &[("will/#", QoS::AtLeastOnce)]);
    let topic = format!("will/{client_id}");
    let connect = connect_with_will(client_id, &topic, QoS::AtMostOnce, false, b"gone");
    let (conn, received) = h.connect_with(connect);
    assert_eq!(received.len(), 1, "CONNACK");
    h.assert_open(conn);
    (watcher, conn)
}

#[test]
fn will_published_on_abnormal_disconnect_only() {
    let mut h = Harness::new();
    let (watcher, polite) = with_will(&mut h, "polite");
    h.send(polite, &Packet::Disconnect);
    h.assert_closed(polite, &CloseReason::ClientDisconnected);
    // A transport close after DISCONNECT is ignored: still no will.
    h.close_transport(polite);
    assert!(h.payloads(watcher).is_empty(), "no will after DISCONNECT");

    let (watcher, lost) = with_will(&mut h, "lost");
    h.close_transport(lost);
    h.assert_closed(lost, &CloseReason::TransportClosed);
    assert_eq!(h.payloads(watcher), [b"gone".to_vec()]);
}

#[test]
fn will_published_on_keep_alive_timeout() {
    let mut h = Harness::new();
    let (watcher, silent) = with_will(&mut h, "silent");
    h.advance(Duration::from_secs(89));
    h.send(watcher, &Packet::PingReq);
    h.received(watcher);
    h.advance(Duration::from_secs(1));
    h.assert_closed(silent, &CloseReason::KeepAliveTimeout { keep_alive_secs: 60 });
    assert_eq!(h.payloads(watcher), [b"gone".to_vec()]);
}

#[test]
fn will_published_on_takeover() {
    let mut h = Harness::new();
    let (watcher, old) = with_will(&mut h, "dev");
    let new = h.connect("dev");
    h.assert_closed(old, &CloseReason::Takeover);
    h.assert_open(new);
    assert_eq!(h.payloads(watcher), [b"gone".to_vec()]);
}

#[test]
fn will_published_when_the_broker_closes_for_a_protocol_error() {
    let mut h = Harness::new();
    let (watcher, rude) = with_will(&mut h, "rude");
    h.send(rude, &Packet::Connect(Connect::new("rude")));
    assert!(matches!(h.close_reason(rude), Some(CloseReason::ProtocolViolation(_))));
    assert_eq!(h.payloads(watcher), [b"gone".to_vec()]);
}

#[test]
fn will_retain_and_qos_are_honoured() {
    let mut h = Harness::new();
    let watcher = h.connect("watcher");
    h.subscribe(watcher, &[("status/dev", QoS::AtLeastOnce)]);
    let connect = connect_with_will("dev", "status/dev", QoS::AtLeastOnce, true, b"offline");
    let (conn, _) = h.connect_with(connect);
    h.close_transport(conn);
    let live = h.publishes(watcher);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].qos.qos(), QoS::AtLeastOnce);
    assert!(!live[0].retain, "live delivery has RETAIN 0");
    assert_eq!(h.broker.retained_count(), 1);
    let later = h.connect("later");
    let received = h.subscribe(later, &[("status/dev", QoS::AtLeastOnce)]);
    let Some(Packet::Publish(retained)) = received.get(1) else { panic!("{received:?}") };
    assert!(retained.retain);
    assert_eq!(&retained.payload[..], b"offline");
}

#[test]
fn will_at_qos2_is_refused_at_connect() {
    let mut h = Harness::new();
    let connect = connect_with_will("dev", "status/dev", QoS::ExactlyOnce, false, b"x");
    let (conn, received) = h.connect_with(connect);
    assert!(received.is_empty());
    assert!(matches!(h.close_reason(conn), Some(CloseReason::ProtocolViolation(_))));
}
