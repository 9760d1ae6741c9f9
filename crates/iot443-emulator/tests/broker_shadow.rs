//! The Device Shadow service inside the broker (AWS-IOT.md §4): requests on `$aws/things/…/shadow/…`
//! answered on their accepted/rejected/delta/documents topics with AWS's documents, every
//! rejection the emulator can produce, 429 beyond 10 requests in flight, and what a store sees.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use bytes::BytesMut;
use common::{Harness, publish_packet};
use iot443_emulator::broker::{CloseReason, MAX_SHADOW_IN_FLIGHT, Policy};
use iot443_proto::Instant;
use iot443_proto::aws::shadow::{Shadow, ShadowId, ShadowName, ShadowOperation, ThingName};
use iot443_proto::codec::{Codec, Packet, PacketId, QoS};
use proptest::prelude::*;
use std::time::Duration;

/// Unix time of the harness's clock, anchored by [`service`].
const UNIX: u64 = 1_700_000_000;

const LAMP: &str = "$aws/things/lamp/shadow";

/// A harness with the clock anchored and a device subscribed to every answer of `prefix`.
fn service(prefixes: &[&str]) -> (Harness, iot443_emulator::broker::ConnectionId) {
    let mut h = Harness::new();
    h.broker.set_unix_time(h.now, UNIX);
    let device = h.connect("device");
    let mut filters = Vec::new();
    for prefix in prefixes {
        for suffix in [
            "get/accepted",
            "get/rejected",
            "update/accepted",
            "update/rejected",
            "update/delta",
            "update/documents",
            "delete/accepted",
            "delete/rejected",
        ] {
            filters.push(format!("{prefix}/{suffix}"));
        }
    }
    for chunk in filters.chunks(8) {
        let chunk: Vec<(&str, QoS)> =
            chunk.iter().map(|f| (f.as_str(), QoS::AtLeastOnce)).collect();
        h.subscribe(device, &chunk);
    }
    h.received(device);
    (h, device)
}

/// The answers `conn` received since the last call, as (topic, payload text), acknowledged.
fn answers(h: &mut Harness, conn: iot443_emulator::broker::ConnectionId) -> Vec<(String, String)> {
    let publishes = h.publishes(conn);
    h.ack_all(conn, &publishes);
    publishes
        .iter()
        .map(|p| {
            assert_eq!(p.qos.qos(), QoS::AtLeastOnce, "answers go at QoS 1 to QoS 1 subscribers");
            (p.topic.as_str().to_owned(), String::from_utf8(p.payload.to_vec()).unwrap())
        })
        .collect()
}

fn request(
    h: &mut Harness,
    conn: iot443_emulator::broker::ConnectionId,
    topic: &str,
    payload: &str,
) {
    h.publish(conn, topic, QoS::AtLeastOnce, false, payload.as_bytes());
}

fn topic(suffix: &str) -> String {
    format!("{LAMP}/{suffix}")
}

#[test]
fn get_of_a_new_shadow_is_rejected_with_404() {
    let (mut h, device) = service(&[LAMP]);
    request(&mut h, device, &topic("get"), r#"{"clientToken":"g1"}"#);
    assert_eq!(
        answers(&mut h, device),
        [(
            topic("get/rejected"),
            format!(
                r#"{{"code":404,"message":"No shadow exists with name: 'lamp'","timestamp":{UNIX},"clientToken":"g1"}}"#
            )
        )]
    );
    assert!(h.broker.shadow(&lamp_id()).is_none(), "a get creates nothing");
}

fn lamp_id() -> ShadowId {
    ShadowId::classic(ThingName::new("lamp").unwrap())
}

#[test]
fn update_reported_then_desired_publishes_accepted_delta_and_documents() {
    let (mut h, device) = service(&[LAMP]);
    request(
        &mut h,
        device,
        &topic("update"),
        r#"{"state":{"reported":{"on":false}},"clientToken":"u1"}"#,
    );
    let first = answers(&mut h, device);
    assert_eq!(
        first,
        [
            (
                topic("update/accepted"),
                format!(
                    r#"{{"state":{{"reported":{{"on":false}}}},"metadata":{{"reported":{{"on":{{"timestamp":{UNIX}}}}}}},"version":1,"timestamp":{UNIX},"clientToken":"u1"}}"#
                )
            ),
            (
                topic("update/documents"),
                format!(
                    r#"{{"current":{{"state":{{"reported":{{"on":false}}}},"metadata":{{"reported":{{"on":{{"timestamp":{UNIX}}}}}}},"version":1}},"timestamp":{UNIX},"clientToken":"u1"}}"#
                )
            ),
        ]
    );

    h.advance(Duration::from_secs(5));
    let later = UNIX + 5;
    request(
        &mut h,
        device,
        &topic("update"),
        r#"{"state":{"desired":{"on":true}},"clientToken":"u2"}"#,
    );
    let second = answers(&mut h, device);
    let topics: Vec<&str> = second.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [topic("update/accepted"), topic("update/delta"), topic("update/documents")]
    );
    assert_eq!(
        second[1].1,
        format!(
            r#"{{"version":2,"timestamp":{later},"state":{{"on":true}},"metadata":{{"on":{{"timestamp":{later}}}}},"clientToken":"u2"}}"#
        )
    );

    request(&mut h, device, &topic("get"), "");
    let got = answers(&mut h, device);
    assert_eq!(
        got,
        [(
            topic("get/accepted"),
            format!(
                r#"{{"state":{{"desired":{{"on":true}},"reported":{{"on":false}},"delta":{{"on":true}}}},"metadata":{{"desired":{{"on":{{"timestamp":{later}}}}},"reported":{{"on":{{"timestamp":{UNIX}}}}}}},"version":2,"timestamp":{later}}}"#
            )
        )]
    );
}

#[test]
fn a_named_shadow_is_independent_of_the_classic_one() {
    let named = format!("{LAMP}/name/config");
    let (mut h, device) = service(&[LAMP, &named]);
    request(&mut h, device, &topic("update"), r#"{"state":{"reported":{"a":1}}}"#);
    request(&mut h, device, &topic("update"), r#"{"state":{"reported":{"a":2}}}"#);
    request(&mut h, device, &format!("{named}/update"), r#"{"state":{"reported":{"b":1}}}"#);
    let all = answers(&mut h, device);
    let named_accepted: Vec<&(String, String)> =
        all.iter().filter(|(t, _)| *t == format!("{named}/update/accepted")).collect();
    assert_eq!(named_accepted.len(), 1, "{all:?}");
    assert!(named_accepted[0].1.contains(r#""version":1"#), "{all:?}");
    request(&mut h, device, &format!("{named}/get"), "");
    let got = answers(&mut h, device);
    assert!(got[0].1.starts_with(r#"{"state":{"reported":{"b":1}}"#), "{got:?}");
    let config =
        ShadowId::named(ThingName::new("lamp").unwrap(), ShadowName::new("config").unwrap());
    assert_eq!(h.broker.shadow(&config).map(Shadow::version), Some(1));
    assert_eq!(h.broker.shadow(&lamp_id()).map(Shadow::version), Some(2));

    // A 404 for a named shadow names the shadow.
    request(&mut h, device, &format!("{LAMP}/name/other/get"), "");
    let other = h.publishes(device);
    assert!(other.is_empty(), "not subscribed to the other shadow's answers: nothing arrives");
}

/// Every rejection the emulator produces, with the clientToken echoed where the request had a
/// valid one.
#[test]
fn every_reachable_rejection_has_aws_code_and_message() {
    let (mut h, device) = service(&[LAMP]);
    request(&mut h, device, &topic("update"), r#"{"state":{"reported":{"v":0}}}"#);
    answers(&mut h, device);
    let deep = (0..7).fold("1".to_owned(), |inner, _| format!(r#"{{"a":{inner}}}"#));
    let big = "x".repeat(8 * 1024);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{".to_vec(), r#"{"code":400,"message":"Invalid JSON""#),
        (b"[1]".to_vec(), r#"{"code":400,"message":"Invalid JSON""#),
        (
            br#"{"clientToken":"t1"}"#.to_vec(),
            r#"{"code":400,"message":"Missing required node: state","timestamp":1700000000,"clientToken":"t1"}"#,
        ),
        (
            br#"{"state":[],"clientToken":"t2"}"#.to_vec(),
            r#"{"code":400,"message":"State node must be an object","timestamp":1700000000,"clientToken":"t2"}"#,
        ),
        (
            br#"{"state":{"desired":1}}"#.to_vec(),
            r#"{"code":400,"message":"Desired node must be an object""#,
        ),
        (
            br#"{"state":{"reported":"x"}}"#.to_vec(),
            r#"{"code":400,"message":"Reported node must be an object""#,
        ),
        (
            br#"{"state":{"reported":{}},"version":-1}"#.to_vec(),
            r#"{"code":400,"message":"Invalid version""#,
        ),
        (
            format!(r#"{{"state":{{"reported":{{}}}},"clientToken":"{}"}}"#, "t".repeat(65))
                .into_bytes(),
            r#"{"code":400,"message":"Invalid clientToken""#,
        ),
        (
            format!(r#"{{"state":{{"reported":{deep}}}}}"#).into_bytes(),
            r#"{"code":400,"message":"JSON contains too many levels of nesting; maximum is 6""#,
        ),
        (
            br#"{"state":{"reported":{"list":[1,null]}}}"#.to_vec(),
            r#"{"code":400,"message":"State contains an invalid node""#,
        ),
        (
            br#"{"state":{"reported":{"v":1}},"version":7,"clientToken":"t3"}"#.to_vec(),
            r#"{"code":409,"message":"Version conflict","timestamp":1700000000,"clientToken":"t3"}"#,
        ),
        (
            format!(r#"{{"state":{{"reported":{{"big":"{big}"}}}}}}"#).into_bytes(),
            r#"{"code":413,"message":"The payload exceeds the maximum size allowed""#,
        ),
        (
            vec![0xc3, 0x28],
            r#"{"code":415,"message":"Unsupported documented encoding; supported encoding is UTF-8""#,
        ),
    ];
    for (payload, expected) in &cases {
        h.publish(device, &topic("update"), QoS::AtLeastOnce, false, payload);
        let got = answers(&mut h, device);
        assert_eq!(got.len(), 1, "one answer to {:?}: {got:?}", String::from_utf8_lossy(payload));
        assert_eq!(got[0].0, topic("update/rejected"));
        assert!(
            got[0].1.starts_with(expected),
            "{:?} → {}",
            String::from_utf8_lossy(payload),
            got[0].1
        );
    }
    assert_eq!(
        h.broker.shadow(&lamp_id()).map(Shadow::version),
        Some(1),
        "no rejection changed it"
    );

    for operation in ["get", "delete"] {
        h.publish(device, &topic(operation), QoS::AtLeastOnce, false, b"not json");
        let got = answers(&mut h, device);
        assert_eq!(got[0].0, topic(&format!("{operation}/rejected")));
        assert!(got[0].1.starts_with(r#"{"code":400,"message":"Invalid JSON""#), "{got:?}");
    }
}

#[test]
fn delete_keeps_the_version_for_the_next_update() {
    let (mut h, device) = service(&[LAMP]);
    request(&mut h, device, &topic("update"), r#"{"state":{"reported":{"a":1}}}"#);
    request(&mut h, device, &topic("update"), r#"{"state":{"reported":{"a":2}}}"#);
    answers(&mut h, device);
    request(&mut h, device, &topic("delete"), r#"{"clientToken":"d1"}"#);
    assert_eq!(
        answers(&mut h, device),
        [(
            topic("delete/accepted"),
            format!(r#"{{"version":2,"timestamp":{UNIX},"clientToken":"d1"}}"#)
        )]
    );
    request(&mut h, device, &topic("delete"), "");
    let again = answers(&mut h, device);
    assert_eq!(again[0].0, topic("delete/rejected"));
    assert!(again[0].1.starts_with(r#"{"code":404"#), "{again:?}");
    request(&mut h, device, &topic("update"), r#"{"state":{"reported":{"a":3}}}"#);
    let created = answers(&mut h, device);
    assert!(created[0].1.contains(r#""version":3"#), "{created:?}");
}

/// Encodes `count` update requests into one read.
fn burst(count: usize) -> BytesMut {
    let codec = Codec::default();
    let mut wire = BytesMut::new();
    for n in 0..count {
        let payload = format!(r#"{{"state":{{"reported":{{"n":{n}}}}},"clientToken":"b{n}"}}"#);
        let id = PacketId::new(u16::try_from(n + 100).unwrap()).unwrap();
        let publish =
            publish_packet(&topic("update"), QoS::AtLeastOnce, id, false, payload.as_bytes());
        codec.encode(&Packet::Publish(publish), &mut wire).unwrap();
    }
    wire
}

#[test]
fn more_than_ten_requests_in_one_read_get_429() {
    let (mut h, device) = service(&[LAMP]);
    h.send_raw(device, &burst(MAX_SHADOW_IN_FLIGHT));
    let ten = answers(&mut h, device);
    assert_eq!(ten.iter().filter(|(t, _)| t.ends_with("/update/accepted")).count(), 10);
    assert!(!ten.iter().any(|(t, _)| t.ends_with("/rejected")), "{ten:?}");

    h.send_raw(device, &burst(MAX_SHADOW_IN_FLIGHT + 2));
    let twelve = answers(&mut h, device);
    let rejected: Vec<&String> =
        twelve.iter().filter(|(t, _)| t.ends_with("/update/rejected")).map(|(_, p)| p).collect();
    assert_eq!(
        rejected,
        [
            &format!(
                r#"{{"code":429,"message":"Too Many Requests","timestamp":{UNIX},"clientToken":"b10"}}"#
            ),
            &format!(
                r#"{{"code":429,"message":"Too Many Requests","timestamp":{UNIX},"clientToken":"b11"}}"#
            ),
        ]
    );
    assert_eq!(h.broker.shadow(&lamp_id()).map(Shadow::version), Some(20));
}

#[test]
fn requests_are_not_routed_to_subscribers_but_answers_are() {
    let (mut h, device) = service(&[LAMP]);
    let watcher = h.connect("watcher");
    h.subscribe(watcher, &[("$aws/things/+/shadow/update", QoS::AtLeastOnce)]);
    h.subscribe(watcher, &[("$aws/things/lamp/shadow/update/accepted", QoS::AtMostOnce)]);
    h.received(watcher);
    request(&mut h, device, &topic("update"), r#"{"state":{"reported":{"a":1}}}"#);
    let seen = h.publishes(watcher);
    let topics: Vec<&str> = seen.iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(topics, [topic("update/accepted")], "the request itself is the service's");
    assert_eq!(seen[0].qos.qos(), QoS::AtMostOnce, "at the subscription's QoS");
    // Answers on a reserved topic published by a client are ordinary messages, not requests.
    request(&mut h, device, &topic("update/accepted"), r#"{"fake":true}"#);
    assert_eq!(h.payloads(watcher), [br#"{"fake":true}"#.to_vec()]);
}

#[test]
fn the_policy_applies_to_shadow_topics() {
    let policy = Policy::from_json(
        r#"{"statements":[{"common_name":"device","client_ids":["device"],
            "publish":["$aws/things/lamp/shadow/get"],"subscribe":["$aws/things/lamp/shadow/get/+"]}]}"#,
    )
    .unwrap();
    let mut config = iot443_emulator::broker::BrokerConfig::default();
    config.policy = Some(policy);
    let mut h = Harness::with_config(config);
    let device = h.connect("device");
    h.publish(device, &topic("get"), QoS::AtLeastOnce, false, b"");
    h.assert_open(device);
    h.publish(device, &topic("update"), QoS::AtLeastOnce, false, br#"{"state":{}}"#);
    assert!(matches!(
        h.close_reason(device),
        Some(CloseReason::PolicyDenied { action: "publish", .. })
    ));
}

#[test]
fn changes_are_reported_once_each_for_the_store_and_can_be_restored() {
    let (mut h, device) = service(&[LAMP]);
    request(&mut h, device, &topic("update"), r#"{"state":{"reported":{"a":1}}}"#);
    request(&mut h, device, &topic("update"), r#"{"state":{"reported":{"a":2}}}"#);
    request(&mut h, device, &topic("get"), "");
    let (id, shadow) = h.broker.poll_shadow_change().expect("the update is reported");
    assert_eq!(id, lamp_id());
    assert_eq!(shadow.version(), 2);
    assert!(h.broker.poll_shadow_change().is_none(), "one report per shadow, gets report nothing");

    let mut restored = Harness::new();
    restored.broker.set_unix_time(restored.now, UNIX);
    restored.broker.restore_shadow(id.clone(), Shadow::from_stored(&shadow.to_stored()).unwrap());
    // The same update at version 2, twice: applied once, then a conflict.
    let mut at_version_2 = || {
        let request = br#"{"state":{"reported":{"a":3}},"version":2}"#;
        let answer =
            restored.broker.shadow_request(restored.now, &id, ShadowOperation::Update, request);
        answer.map(|d| String::from_utf8(d).unwrap()).map_err(|d| String::from_utf8(d).unwrap())
    };
    assert!(at_version_2().unwrap().contains(r#""version":3"#));
    let refused = at_version_2().unwrap_err();
    assert!(refused.starts_with(r#"{"code":409"#), "{refused}");
}

#[test]
fn the_clock_anchor_gives_answers_their_unix_time() {
    let (mut h, device) = service(&[LAMP]);
    h.broker.set_unix_time(Instant::from_duration(Duration::from_secs(0)), 42);
    request(&mut h, device, &topic("get"), "");
    let got = answers(&mut h, device);
    assert!(got[0].1.contains(r#""timestamp":1042"#), "{got:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever a client publishes on a shadow request topic, the broker answers exactly once
    /// and the connection stays open.
    #[test]
    fn any_payload_gets_one_answer_and_never_closes(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        operation in prop::sample::select(vec!["get", "update", "delete"]),
    ) {
        let (mut h, device) = service(&[LAMP]);
        h.publish(device, &topic(operation), QoS::AtLeastOnce, false, &payload);
        let got = answers(&mut h, device);
        h.assert_open(device);
        let prefix = format!("{LAMP}/{operation}/");
        prop_assert!(got.iter().all(|(t, _)| t.starts_with(&prefix)), "{:?}", got);
        let verdicts = got.iter().filter(|(t, _)| t.ends_with("/accepted") || t.ends_with("/rejected")).count();
        prop_assert_eq!(verdicts, 1, "{:?}", got);
    }
}
