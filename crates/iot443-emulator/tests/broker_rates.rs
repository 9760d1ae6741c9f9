//! IoT Core's rate quotas, enforced only with `strict_rates`.
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
use iot443_proto::codec::{Connect, Packet, QoS};
use std::time::Duration;

/// Sends 150 QoS 0 publishes at one instant, 50 to each of three topics in turn, and returns
/// how many each topic's subscriber received.
fn burst_of_150(h: &mut Harness) -> Vec<usize> {
    let subs: Vec<_> = (0..3)
        .map(|n| {
            let sub = h.connect(&format!("sub-{n}"));
            h.subscribe(sub, &[(&format!("t/{n}"), QoS::AtMostOnce)]);
            sub
        })
        .collect();
    let publisher = h.connect("publisher");
    for n in 0..150u8 {
        h.publish(publisher, &format!("t/{}", n / 50), QoS::AtMostOnce, false, &[n]);
    }
    subs.into_iter().map(|sub| h.payloads(sub).len()).collect()
}

#[test]
fn publish_rate_over_100_per_second_is_discarded_with_strict_rates() {
    let mut strict = Harness::strict();
    assert_eq!(burst_of_150(&mut strict), [50, 50, 0], "the publisher's last 50 are discarded");
    assert_eq!(strict.broker.discarded_publishes(), 50);
    let mut relaxed = Harness::new();
    assert_eq!(burst_of_150(&mut relaxed), [50, 50, 50]);
    assert_eq!(relaxed.broker.discarded_publishes(), 0);
}

#[test]
fn publish_quota_counts_outbound_deliveries_too() {
    let mut h = Harness::strict();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("t", QoS::AtMostOnce)]);
    let a = h.connect("a");
    let b = h.connect("b");
    for n in 0..60u8 {
        h.publish(a, "t", QoS::AtMostOnce, false, &[n]);
        h.publish(b, "t", QoS::AtMostOnce, false, &[n]);
    }
    assert_eq!(h.payloads(sub).len(), 100, "the subscriber's connection takes 100 per second");
    h.advance(Duration::from_secs(1));
    h.send(sub, &Packet::PingReq);
    h.publish(a, "t", QoS::AtMostOnce, false, b"later");
    assert_eq!(h.payloads(sub), [b"later".to_vec()]);
}

#[test]
fn discarded_qos1_publish_is_still_acknowledged() {
    let mut h = Harness::strict();
    let publisher = h.connect("publisher");
    for n in 0..101u8 {
        h.publish(publisher, "t", QoS::AtLeastOnce, false, &[n]);
    }
    let acks = h.received(publisher).iter().filter(|p| matches!(p, Packet::PubAck(_))).count();
    assert_eq!(acks, 101);
    assert_eq!(h.broker.discarded_publishes(), 1);
}

#[test]
fn second_connect_within_a_second_is_refused_with_strict_rates() {
    let mut h = Harness::strict();
    let first = h.connect("dev");
    h.send(first, &Packet::Disconnect);
    h.advance(Duration::from_millis(500));
    let (second, received) = h.connect_with(Connect::new("dev"));
    assert!(received.is_empty(), "no CONNACK");
    h.assert_closed(second, &CloseReason::ConnectRateExceeded { client_id: "dev".into() });
    // Another client id is not affected; the same one may connect again after a second.
    h.connect("other");
    h.advance(Duration::from_millis(500));
    h.connect("dev");

    let mut relaxed = Harness::new();
    relaxed.connect("dev");
    relaxed.connect("dev");
}

#[test]
fn stored_messages_are_replayed_at_10_per_second_with_strict_rates() {
    for strict in [true, false] {
        let mut h = if strict { Harness::strict() } else { Harness::new() };
        let (sub, _) = h.connect_session("sub", false);
        h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
        h.send(sub, &Packet::Disconnect);
        let publisher = h.connect("publisher");
        for n in 0..30u8 {
            h.publish(publisher, "t", QoS::AtLeastOnce, false, &[n]);
        }
        h.advance(Duration::from_secs(1)); // the connect quota of "sub"
        let (sub, present) = h.connect_session("sub", false);
        assert!(present);
        let first = h.payloads(sub);
        if !strict {
            assert_eq!(first.len(), 30, "without strict rates everything is replayed at once");
            continue;
        }
        assert_eq!(first.len(), 10, "a burst of 10");
        h.advance(Duration::from_millis(500));
        assert_eq!(h.payloads(sub).len(), 5, "then 10 per second");
        // Live traffic is not held behind the replay.
        h.publish(publisher, "t", QoS::AtLeastOnce, false, b"live");
        assert_eq!(h.payloads(sub), [b"live".to_vec()]);
        h.advance(Duration::from_millis(1500));
        let rest = h.payloads(sub);
        assert_eq!(rest.len(), 15);
        assert_eq!(rest[14], [29]);
    }
}
