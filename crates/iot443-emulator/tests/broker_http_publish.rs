//! `Broker::publish_from_http`, sans-IO: the checks of an MQTT PUBLISH for a publish without a
//! connection or a client id, and the routing that follows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use bytes::Bytes;
use common::Harness;
use iot443_emulator::broker::{BrokerConfig, HttpPublishRefusal, PeerIdentity, Policy};
use iot443_proto::codec::QoS;

fn device() -> PeerIdentity {
    PeerIdentity { common_name: Some("device".into()), certificate_sha256: "00".repeat(32) }
}

#[test]
fn an_http_publish_reaches_subscribers_and_the_retained_store() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("a/#", QoS::AtLeastOnce)]);
    let now = h.now;
    h.broker
        .publish_from_http(now, &device(), "a/b", Bytes::from_static(b"x"), QoS::AtLeastOnce, true)
        .unwrap();
    let got = h.publishes(sub);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].topic.as_str(), &got[0].payload[..]), ("a/b", &b"x"[..]));
    assert_eq!(h.broker.retained_count(), 1);
}

#[test]
fn the_rules_of_an_mqtt_publish_apply() {
    let mut h = Harness::new();
    let now = h.now;
    let mut publish = |topic: &str, size: usize, qos: QoS, retain: bool| {
        h.broker.publish_from_http(now, &device(), topic, Bytes::from(vec![0u8; size]), qos, retain)
    };
    assert!(matches!(
        publish("a/+", 1, QoS::AtMostOnce, false),
        Err(HttpPublishRefusal::InvalidTopic { .. })
    ));
    assert!(matches!(
        publish("", 1, QoS::AtMostOnce, false),
        Err(HttpPublishRefusal::InvalidTopic { .. })
    ));
    assert!(matches!(
        publish("1/2/3/4/5/6/7/8/9", 1, QoS::AtMostOnce, false),
        Err(HttpPublishRefusal::InvalidTopic { .. })
    ));
    assert_eq!(publish("a", 1, QoS::ExactlyOnce, false), Err(HttpPublishRefusal::InvalidQoS));
    assert!(matches!(
        publish("$aws/x", 1, QoS::AtMostOnce, false),
        Err(HttpPublishRefusal::InvalidTopic { .. })
    ));
    assert_eq!(
        publish("$aws/rules/r/t", 1, QoS::AtMostOnce, true),
        Err(HttpPublishRefusal::RetainOnReservedTopic)
    );
    assert_eq!(
        publish("a", 128 * 1024 + 1, QoS::AtMostOnce, false),
        Err(HttpPublishRefusal::PayloadTooLarge { size: 128 * 1024 + 1 })
    );
    assert_eq!(publish("a", 128 * 1024, QoS::AtMostOnce, false), Ok(()));
}

#[test]
fn the_policy_sees_the_certificate_and_an_empty_client_id() {
    let policy = Policy::from_json(
        r#"{"statements":[
            {"common_name":"device","publish":["open/${iot:ClientId}x"]},
            {"common_name":"device","client_ids":["device"],"publish":["named/#"]}
        ]}"#,
    )
    .unwrap();
    let mut config = BrokerConfig::default();
    config.policy = Some(policy);
    let mut h = Harness::with_config(config);
    let now = h.now;
    let mut publish = |peer: &PeerIdentity, topic: &str| {
        h.broker.publish_from_http(now, peer, topic, Bytes::new(), QoS::AtMostOnce, false)
    };
    assert_eq!(publish(&device(), "open/x"), Ok(()));
    assert!(matches!(publish(&device(), "named/a"), Err(HttpPublishRefusal::PolicyDenied { .. })));
    let other = PeerIdentity { common_name: Some("other".into()), ..device() };
    assert_eq!(
        publish(&other, "open/x"),
        Err(HttpPublishRefusal::PolicyDenied { topic: "open/x".into() })
    );
}
