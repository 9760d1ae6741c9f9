//! The optional policy file: client ids per certificate, publish and subscribe topics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::Harness;
use iot443_emulator::broker::{BrokerConfig, CloseReason, Policy};
use iot443_proto::codec::{ConnAck, Connect, ConnectReturnCode, Packet, QoS};

const POLICY: &str = r##"{
  "statements": [
    {
      "common_name": "device",
      "client_ids": ["device-*"],
      "publish": ["telemetry/${iot:ClientId}/#"],
      "subscribe": ["commands/${iot:ClientId}/+", "broadcast/#"]
    },
    { "common_name": "admin", "publish": ["#"], "subscribe": ["#"] }
  ]
}"##;

fn harness() -> Harness {
    let mut config = BrokerConfig::default();
    config.policy = Some(Policy::from_json(POLICY).unwrap());
    Harness::with_config(config)
}

#[test]
fn policy_denied_connect_gets_return_code_5() {
    let mut h = harness();
    let (conn, received) = h.connect_with(Connect::new("intruder"));
    let refused = ConnAck::new(false, ConnectReturnCode::NOT_AUTHORIZED);
    assert_eq!(received, vec![Packet::ConnAck(refused)]);
    let reason = CloseReason::PolicyDenied { action: "connect", resource: "intruder".into() };
    h.assert_closed(conn, &reason);
    // The same client id pattern with the right certificate is fine.
    h.connect("device-1");
}

#[test]
fn policy_selects_statements_by_certificate_common_name() {
    let mut h = harness();
    let conn = h.open_as(Some("admin"));
    h.send(conn, &Packet::Connect(Connect::new("anything")));
    assert!(matches!(
        h.received(conn)[..],
        [Packet::ConnAck(ConnAck { code: ConnectReturnCode::ACCEPTED, .. })]
    ));
    let stranger = h.open_as(None);
    h.send(stranger, &Packet::Connect(Connect::new("device-1")));
    assert!(matches!(h.close_reason(stranger), Some(CloseReason::PolicyDenied { .. })));
}

#[test]
fn policy_denied_publish_closes_connection() {
    let mut h = harness();
    let conn = h.connect("device-1");
    h.publish(conn, "telemetry/device-1/temp", QoS::AtLeastOnce, false, b"21");
    h.assert_open(conn);
    assert!(matches!(h.received(conn)[..], [Packet::PubAck(_)]));
    h.publish(conn, "telemetry/device-2/temp", QoS::AtLeastOnce, false, b"21");
    let reason =
        CloseReason::PolicyDenied { action: "publish", resource: "telemetry/device-2/temp".into() };
    h.assert_closed(conn, &reason);
    assert!(h.received(conn).is_empty(), "no PUBACK");
}

#[test]
fn policy_denied_subscribe_closes_connection() {
    let mut h = harness();
    let conn = h.connect("device-1");
    let received = h.subscribe(
        conn,
        &[("commands/device-1/reboot", QoS::AtLeastOnce), ("broadcast/+", QoS::AtMostOnce)],
    );
    assert!(matches!(received[..], [Packet::SubAck(_)]));
    let received = h.subscribe(conn, &[("commands/device-1/#", QoS::AtLeastOnce)]);
    assert!(received.is_empty(), "no SUBACK");
    let reason =
        CloseReason::PolicyDenied { action: "subscribe", resource: "commands/device-1/#".into() };
    h.assert_closed(conn, &reason);
}

#[test]
fn will_topic_must_be_allowed_for_publish() {
    let mut h = harness();
    let connect =
        common::connect_with_will("device-1", "status/device-1", QoS::AtMostOnce, false, b"x");
    let (conn, received) = h.connect_with(connect);
    let refused = ConnAck::new(false, ConnectReturnCode::NOT_AUTHORIZED);
    assert_eq!(received, vec![Packet::ConnAck(refused)]);
    assert!(matches!(
        h.close_reason(conn),
        Some(CloseReason::PolicyDenied { action: "publish", .. })
    ));
}

#[test]
fn without_policy_everything_is_allowed() {
    let mut h = Harness::new();
    let conn = h.connect("intruder");
    h.publish(conn, "telemetry/device-2/temp", QoS::AtMostOnce, false, b"21");
    h.subscribe(conn, &[("#", QoS::AtMostOnce)]);
    h.assert_open(conn);
}
