//! Client sessions against the emulator's real broker on the virtual clock: QoS 1 end to end,
//! and IoT Core's keep-alive rule (closed after 1.5 × keep-alive of silence) against the
//! session's pings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use bytes::Bytes;
use core::time::Duration;
use iot443_emulator::broker::{BrokerConfig, BrokerEvent, CloseReason, MAX_INFLIGHT};
use iot443_proto::codec::{PublishQos, SubscribeReason};
use iot443_proto::session::{Event, SessionConfig};
use iot443_proto::{Instant, QoS};
use iot443_test_support::packets::{filter, topic};
use iot443_test_support::{BrokerPair, ClientRef};

const KEEP_ALIVE: Duration = Duration::from_secs(30);

fn client(pair: &mut BrokerPair, client_id: &str) -> ClientRef {
    let mut config = SessionConfig::new(client_id);
    config.keep_alive = KEEP_ALIVE;
    let client = pair.add_client(config);
    assert!(!pair.connect(client), "no stored session");
    client
}

fn messages(events: &[Event]) -> Vec<(PublishQos, Bytes)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Message(publish) => Some((publish.qos, publish.payload.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn qos1_travels_from_one_session_to_another() {
    let mut pair = BrokerPair::new(BrokerConfig::default());
    let sub = client(&mut pair, "sub");
    let publisher = client(&mut pair, "pub");
    pair.session(sub).subscribe(vec![filter("sensors/#", QoS::AtLeastOnce)]).unwrap();
    pair.transfer();
    let granted = pair.take_events(sub);
    assert!(
        matches!(&granted[..], [Event::SubscribeAcked { return_codes, .. }]
            if return_codes[..] == [SubscribeReason::granted(QoS::AtLeastOnce)]),
        "{granted:?}"
    );

    // More than the broker's in-flight window: all arrive only if the subscriber's PUBACKs
    // free it, and the publisher hears PUBACK for each.
    let count = MAX_INFLIGHT * 3;
    for n in 0..count {
        let payload = Bytes::from(n.to_string());
        pair.session(publisher)
            .publish(topic("sensors/t"), QoS::AtLeastOnce, payload, false)
            .unwrap();
    }
    pair.transfer();

    let acked = pair.take_events(publisher);
    let acked = acked.iter().filter(|e| matches!(e, Event::PublishAcked { .. })).count();
    assert_eq!(acked, count);
    let received = messages(&pair.take_events(sub));
    assert_eq!(received.len(), count);
    for (n, (qos, payload)) in received.iter().enumerate() {
        assert!(matches!(qos, PublishQos::AtLeastOnce(_)), "message {n} at {qos:?}");
        assert_eq!(payload, &Bytes::from(n.to_string()), "in order");
    }
    assert!(pair.closed(sub).is_none() && pair.closed(publisher).is_none());
}

#[test]
fn pings_keep_the_connection_for_ten_keep_alives() {
    let mut pair = BrokerPair::new(BrokerConfig::default());
    let device = client(&mut pair, "device");

    pair.advance(KEEP_ALIVE * 10);

    assert_eq!(pair.clock.now(), Instant::ZERO + KEEP_ALIVE * 10);
    assert!(pair.is_linked(device), "closed: {:?}", pair.closed(device));
    assert_eq!(pair.take_events(device), [], "no LinkDead, nothing else");
    assert_eq!(pair.broker.connection_count(), 1);
}

#[test]
fn a_client_that_stops_pinging_is_closed_at_one_and_a_half_keep_alives() {
    let mut pair = BrokerPair::new(BrokerConfig::default());
    let device = client(&mut pair, "device");
    // Two pings, the second at 60 s exactly; then the device hangs.
    pair.advance(KEEP_ALIVE * 2);
    let last_ping = pair.clock.now();
    pair.silence(device);

    pair.advance(KEEP_ALIVE * 3);

    let expected = CloseReason::KeepAliveTimeout { keep_alive_secs: 30 };
    assert_eq!(pair.closed(device), Some((last_ping + KEEP_ALIVE * 3 / 2, expected.clone())));
    assert!(!pair.is_linked(device));
    let closes: Vec<_> = pair
        .take_broker_events()
        .into_iter()
        .filter_map(|(at, event)| match event {
            BrokerEvent::Close { client_id, reason, .. } => Some((at, client_id, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(closes, [(last_ping + KEEP_ALIVE * 3 / 2, Some("device".to_owned()), expected)]);
}

#[test]
fn a_takeover_closes_the_older_link_and_its_session_loses_it() {
    let mut pair = BrokerPair::new(BrokerConfig::default());
    let first = client(&mut pair, "device");
    let second = client(&mut pair, "device");

    assert_eq!(pair.closed(first).map(|(_, reason)| reason), Some(CloseReason::Takeover));
    assert!(!pair.is_linked(first) && pair.is_linked(second));
    assert!(!pair.session(first).is_connected(), "the session saw its link end");
}
