#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The QoS 1 in-flight window: at most `max_inflight` publishes await PUBACK, the rest wait in
//! order; what the session refuses before anything is queued.

use bytes::Bytes;
use iot443_proto::codec::DEFAULT_MAX_PACKET_SIZE;
use iot443_proto::session::{DEFAULT_MAX_INFLIGHT, Event, MessageId, SessionConfig, SessionError};
use iot443_proto::{EncodeError, Packet, QoS};
use iot443_test_support::Pair;
use iot443_test_support::packets::*;

/// (packet id, payload) of every packet the broker received, which must all be PUBLISHes.
fn sent_publishes(pair: &mut Pair) -> Vec<(Option<u16>, String)> {
    pair.sent_publishes().into_iter().map(|(packet_id, _, payload)| (packet_id, payload)).collect()
}

#[test]
fn a_window_of_three_sends_three_then_one_more_per_puback_in_order() {
    let mut pair = Pair::connected_with_window(3);
    let ids: Vec<MessageId> =
        (0..7).map(|n| pair.publish(QoS::AtLeastOnce, &format!("m{n}"))).collect();
    pair.transfer();

    assert_eq!(
        sent_publishes(&mut pair),
        vec![(Some(1), "m0".into()), (Some(2), "m1".into()), (Some(3), "m2".into())]
    );
    assert_eq!(pair.session.inflight_len(), 3);
    assert_eq!(pair.session.queued_len(), 4);

    pair.ack(1);
    assert_eq!(sent_publishes(&mut pair), vec![(Some(4), "m3".into())]);
    assert_eq!((pair.session.inflight_len(), pair.session.queued_len()), (3, 3));

    // Out of order: the window counts, not which message was acknowledged.
    pair.ack(3);
    assert_eq!(sent_publishes(&mut pair), vec![(Some(5), "m4".into())]);
    pair.ack(2);
    assert_eq!(sent_publishes(&mut pair), vec![(Some(6), "m5".into())]);
    pair.ack(4);
    assert_eq!(sent_publishes(&mut pair), vec![(Some(7), "m6".into())]);
    assert_eq!((pair.session.inflight_len(), pair.session.queued_len()), (3, 0));

    for packet_id in [5, 6, 7] {
        pair.ack(packet_id);
        pair.broker.expect_nothing();
    }
    assert_eq!((pair.session.inflight_len(), pair.session.queued_len()), (0, 0));

    let acked: Vec<(MessageId, u16)> = pair
        .take_events()
        .into_iter()
        .map(|event| match event {
            Event::PublishAcked { id, packet_id } => (id, packet_id.get()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        acked,
        vec![
            (ids[0], 1),
            (ids[2], 3),
            (ids[1], 2),
            (ids[3], 4),
            (ids[4], 5),
            (ids[5], 6),
            (ids[6], 7)
        ]
    );
}

#[test]
fn the_default_window_is_one_hundred() {
    assert_eq!(DEFAULT_MAX_INFLIGHT, 100);
    assert_eq!(SessionConfig::new("c").max_inflight, DEFAULT_MAX_INFLIGHT);

    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.connect(false);
    for n in 0..150 {
        pair.publish(QoS::AtLeastOnce, &format!("m{n}"));
    }
    pair.transfer();

    let sent = sent_publishes(&mut pair);
    assert_eq!(sent.len(), 100);
    assert_eq!(sent.last(), Some(&(Some(100), "m99".to_owned())));
    assert_eq!(pair.session.inflight_len(), 100);
    assert_eq!(pair.session.queued_len(), 50);

    // With a backlog waiting, the window is refilled a quarter (25) at a time, so that one
    // write carries a batch instead of one publish per PUBACK.
    for packet_id in 1..=24 {
        pair.ack(packet_id);
    }
    assert_eq!(sent_publishes(&mut pair), vec![], "24 free slots: still waiting for a batch");
    pair.ack(25);
    let batch = sent_publishes(&mut pair);
    assert_eq!(batch.len(), 25);
    assert_eq!(batch.first(), Some(&(Some(101), "m100".to_owned())));
    assert_eq!(pair.session.queued_len(), 25);
}

#[test]
fn light_traffic_goes_out_at_once_even_with_messages_in_flight() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.connect(false);
    for n in 0..100 {
        pair.publish(QoS::AtLeastOnce, &format!("m{n}"));
    }
    pair.transfer();
    assert_eq!(sent_publishes(&mut pair).len(), 100);
    // A few more than the window: fewer than a batch wait, so each free slot is used at once.
    for n in 100..103 {
        pair.publish(QoS::AtLeastOnce, &format!("m{n}"));
    }
    pair.ack(1);
    assert_eq!(sent_publishes(&mut pair), vec![(Some(101), "m100".into())]);
}

#[test]
fn publishes_while_disconnected_count_as_queued_not_in_flight() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.publish(QoS::AtLeastOnce, "a");
    pair.publish(QoS::AtMostOnce, "b");
    assert_eq!((pair.session.inflight_len(), pair.session.queued_len()), (0, 2));
    pair.connect(false);
    assert_eq!((pair.session.inflight_len(), pair.session.queued_len()), (1, 0));
}

#[test]
fn a_qos0_publish_behind_a_full_window_keeps_its_place() {
    let mut pair = Pair::connected_with_window(1);
    pair.publish(QoS::AtLeastOnce, "first");
    pair.publish(QoS::AtLeastOnce, "second");
    let qos0 = pair.publish(QoS::AtMostOnce, "third");
    pair.transfer();

    assert_eq!(sent_publishes(&mut pair), vec![(Some(1), "first".into())]);
    assert_eq!(pair.session.queued_len(), 2);
    assert!(
        !pair.take_events().contains(&Event::PublishSent { id: qos0 }),
        "the QoS 0 publish must not overtake the waiting QoS 1 one"
    );

    pair.ack(1);
    assert_eq!(sent_publishes(&mut pair), vec![(Some(2), "second".into()), (None, "third".into())]);
    assert!(pair.take_events().contains(&Event::PublishSent { id: qos0 }));
}

#[test]
fn a_qos0_publish_with_nothing_waiting_goes_out_even_when_the_window_is_full() {
    let mut pair = Pair::connected_with_window(1);
    pair.publish(QoS::AtLeastOnce, "held");
    let qos0 = pair.publish(QoS::AtMostOnce, "free");
    pair.transfer();
    assert_eq!(sent_publishes(&mut pair), vec![(Some(1), "held".into()), (None, "free".into())]);
    assert_eq!(pair.take_events(), vec![Event::PublishSent { id: qos0 }]);
    assert_eq!(pair.session.inflight_len(), 1, "QoS 0 never occupies the window");
}

#[test]
fn publish_acked_carries_the_message_id_returned_by_publish() {
    let mut pair = Pair::connected_with_window(10);
    let qos0 = pair.publish(QoS::AtMostOnce, "zero");
    let qos1 = pair.publish(QoS::AtLeastOnce, "one");
    assert_eq!((qos0.get(), qos1.get()), (0, 1), "message ids count publish calls from 0");
    pair.transfer();
    sent_publishes(&mut pair);
    pair.ack(1);
    assert_eq!(
        pair.take_events(),
        vec![Event::PublishSent { id: qos0 }, Event::PublishAcked { id: qos1, packet_id: id(1) }]
    );
}

#[test]
fn qos2_publish_is_refused_and_nothing_is_queued() {
    let mut pair = Pair::connected_with_window(10);
    assert_eq!(
        pair.session.publish(topic("t"), QoS::ExactlyOnce, Bytes::from_static(b"x"), false),
        Err(SessionError::QosNotSupported(QoS::ExactlyOnce))
    );
    assert_eq!((pair.session.inflight_len(), pair.session.queued_len()), (0, 0));
    pair.transfer();
    pair.broker.expect_nothing();

    // Neither a message id nor a packet id was used up.
    let next = pair.publish(QoS::AtLeastOnce, "ok");
    assert_eq!(next.get(), 0);
    pair.transfer();
    assert_eq!(sent_publishes(&mut pair), vec![(Some(1), "ok".into())]);
}

#[test]
fn qos2_subscription_is_refused_and_nothing_is_sent() {
    let mut pair = Pair::connected_with_window(10);
    assert_eq!(
        pair.session
            .subscribe(vec![filter("a/#", QoS::AtLeastOnce), filter("b/+", QoS::ExactlyOnce)]),
        Err(SessionError::QosNotSupported(QoS::ExactlyOnce))
    );
    pair.transfer();
    pair.broker.expect_nothing();
    assert_eq!(pair.session.subscribe(vec![filter("a/#", QoS::AtLeastOnce)]), Ok(id(1)));
}

#[test]
fn an_oversize_payload_is_refused_and_nothing_is_queued() {
    let mut config = SessionConfig::new("c");
    config.max_packet_size = 1024;
    let mut pair = Pair::new(config);
    pair.connect(false);

    // Fixed header 1 + 2 (remaining length 1,022 needs two bytes), topic "t" 3, packet id 2.
    let fits = Bytes::from(vec![0u8; 1024 - 1 - 2 - 3 - 2]);
    let over = Bytes::from(vec![0u8; 1024 - 1 - 2 - 3 - 2 + 1]);
    assert_eq!(
        pair.session.publish(topic("t"), QoS::AtLeastOnce, over, false),
        Err(SessionError::Encode(EncodeError::PacketTooLarge { size: 1025, max: 1024 }))
    );
    assert_eq!((pair.session.inflight_len(), pair.session.queued_len()), (0, 0));
    pair.transfer();
    pair.broker.expect_nothing();
    assert!(pair.take_events().is_empty());

    let accepted = pair.session.publish(topic("t"), QoS::AtLeastOnce, fits, false).unwrap();
    assert_eq!(accepted.get(), 0, "the refused publish used no message id");
    pair.transfer();
    let packet = pair.broker.expect();
    assert!(matches!(packet, Packet::Publish(ref p) if p.payload.len() == 1016));
}

#[test]
fn the_default_packet_limit_refuses_a_payload_larger_than_it() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    let payload = Bytes::from(vec![0u8; DEFAULT_MAX_PACKET_SIZE]);
    let error = pair.session.publish(topic("t"), QoS::AtMostOnce, payload, false).unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::Encode(EncodeError::PacketTooLarge { size, max })
                if max == DEFAULT_MAX_PACKET_SIZE && size > max
        ),
        "{error:?}"
    );
    assert_eq!(pair.session.queued_len(), 0);
}

#[test]
fn a_window_of_zero_is_an_invalid_config() {
    let mut config = SessionConfig::new("c");
    config.max_inflight = 0;
    assert!(matches!(iot443_proto::Session::new(config), Err(SessionError::InvalidConfig(_))));
}
