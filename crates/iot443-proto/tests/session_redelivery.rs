#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Redelivery after a lost connection: unacknowledged QoS 1 publishes go out again with DUP and
//! their packet ids, in order, before anything queued; unacknowledged SUBSCRIBE/UNSUBSCRIBE go
//! out again; unwritten QoS 0 publishes survive; acknowledged ones are not repeated.

use iot443_proto::codec::{Subscribe, Unsubscribe};
use iot443_proto::session::{Event, MessageId};
use iot443_proto::topic::TopicFilter;
use iot443_proto::{Packet, QoS};
use iot443_test_support::Pair;
use iot443_test_support::packets::*;

fn p(packet_id: Option<u16>, dup: bool, payload: &str) -> (Option<u16>, bool, String) {
    (packet_id, dup, payload.to_owned())
}

#[test]
fn unacked_qos1_publishes_are_resent_with_dup_and_their_ids_in_order_before_queued_ones() {
    let mut pair = Pair::connected_with_window(4);
    let ids: Vec<MessageId> =
        (0..4).map(|n| pair.publish(QoS::AtLeastOnce, &format!("m{n}"))).collect();
    pair.transfer();
    assert_eq!(pair.sent_publishes().len(), 4);
    pair.ack(2);
    pair.take_events();

    pair.cut();
    let later = pair.publish(QoS::AtLeastOnce, "m4");
    let qos0 = pair.publish(QoS::AtMostOnce, "m5");
    assert_eq!((pair.session.inflight_len(), pair.session.queued_len()), (3, 2));

    pair.connect(true);
    assert_eq!(
        pair.sent_publishes(),
        vec![
            p(Some(1), true, "m0"),
            p(Some(3), true, "m2"),
            p(Some(4), true, "m3"),
            p(Some(5), false, "m4"),
            p(None, false, "m5"),
        ]
    );

    for packet_id in [4, 1, 5, 3] {
        pair.ack(packet_id);
    }
    assert_eq!(
        pair.take_events(),
        vec![
            Event::PublishSent { id: qos0 },
            Event::PublishAcked { id: ids[3], packet_id: id(4) },
            Event::PublishAcked { id: ids[0], packet_id: id(1) },
            Event::PublishAcked { id: later, packet_id: id(5) },
            Event::PublishAcked { id: ids[2], packet_id: id(3) },
        ]
    );
    assert_eq!((pair.session.inflight_len(), pair.session.queued_len()), (0, 0));
}

#[test]
fn publishes_are_resent_after_every_reconnect_until_acked() {
    let mut pair = Pair::connected_with_window(10);
    let message = pair.publish(QoS::AtLeastOnce, "m");
    pair.transfer();
    assert_eq!(pair.sent_publishes(), vec![p(Some(1), false, "m")]);

    for _ in 0..3 {
        pair.cut();
        pair.connect(false);
        assert_eq!(pair.sent_publishes(), vec![p(Some(1), true, "m")]);
    }
    pair.ack(1);
    assert_eq!(pair.take_events(), vec![Event::PublishAcked { id: message, packet_id: id(1) }]);
    pair.cut();
    pair.connect(false);
    pair.broker.expect_nothing();
}

#[test]
fn a_dead_link_redelivers_like_a_cut() {
    let mut config = iot443_proto::SessionConfig::new("c");
    config.max_inflight = 10;
    // Longer than the keep-alive: the PINGREQ's missing answer is noticed first.
    config.ack_timeout = core::time::Duration::from_secs(600);
    let mut pair = Pair::new(config);
    pair.connect(false);
    pair.publish(QoS::AtLeastOnce, "m");
    pair.transfer();
    pair.sent_publishes();

    // PINGREQ, then no answer: the session declares the link dead on its own.
    assert!(pair.advance_to_next_timeout(core::time::Duration::from_secs(60)));
    pair.broker.expect_matching("PINGREQ", |packet| *packet == Packet::PingReq);
    assert!(pair.advance_to_next_timeout(core::time::Duration::from_secs(5)));
    assert!(!pair.session.is_connected());
    pair.cut();
    pair.take_events();

    pair.connect(false);
    assert_eq!(pair.sent_publishes(), vec![p(Some(1), true, "m")]);
}

#[test]
fn unacked_subscribe_and_unsubscribe_are_resent() {
    let mut pair = Pair::connected_with_window(10);
    let sub = pair.session.subscribe(vec![filter("cmd/#", QoS::AtLeastOnce)]).unwrap();
    let unsub = pair.session.unsubscribe(vec![TopicFilter::new("old/+").unwrap()]).unwrap();
    let acked = pair.session.subscribe(vec![filter("done", QoS::AtMostOnce)]).unwrap();
    pair.transfer();
    let first: Vec<Packet> = (0..3).map(|_| pair.broker.expect()).collect();
    pair.broker.send(&suback(acked.get(), &[QoS::AtMostOnce]));
    pair.transfer();
    pair.take_events();

    pair.cut();
    pair.connect(true);

    let subscribe =
        Packet::Subscribe(Subscribe::new(sub, vec![filter("cmd/#", QoS::AtLeastOnce)]).unwrap());
    let unsubscribe = Packet::Unsubscribe(
        Unsubscribe::new(unsub, vec![TopicFilter::new("old/+").unwrap()]).unwrap(),
    );
    assert_eq!(first[..2], [subscribe.clone(), unsubscribe.clone()]);
    assert_eq!(pair.broker.expect(), subscribe);
    assert_eq!(pair.broker.expect(), unsubscribe);
    pair.broker.expect_nothing();

    pair.broker.send(&suback(sub.get(), &[QoS::AtLeastOnce]));
    pair.broker.send(&unsuback(unsub.get()));
    pair.transfer();
    let events = pair.take_events();
    assert!(matches!(
        events.as_slice(),
        [Event::SubscribeAcked { packet_id: s, .. }, Event::UnsubscribeAcked { packet_id: u }]
            if *s == sub && *u == unsub
    ));
}

#[test]
fn requests_made_while_disconnected_are_sent_after_connack() {
    let mut pair = Pair::connected_with_window(10);
    pair.cut();
    let sub = pair.session.subscribe(vec![filter("cmd/#", QoS::AtLeastOnce)]).unwrap();
    pair.transfer();
    pair.broker.expect_nothing();
    pair.connect(false);
    assert_eq!(
        pair.broker.expect(),
        Packet::Subscribe(Subscribe::new(sub, vec![filter("cmd/#", QoS::AtLeastOnce)]).unwrap())
    );
}

#[test]
fn unwritten_qos0_publishes_survive_a_cut_and_go_out_after_reconnect() {
    let mut pair = Pair::connected_with_window(10);
    let written = pair.publish(QoS::AtMostOnce, "written");
    pair.transfer();
    assert_eq!(pair.sent_publishes(), vec![p(None, false, "written")]);
    assert_eq!(pair.take_events(), vec![Event::PublishSent { id: written }]);

    let a = pair.publish(QoS::AtMostOnce, "a");
    let b = pair.publish(QoS::AtMostOnce, "b");
    pair.cut();
    assert!(pair.take_events().is_empty(), "nothing was written, nothing reported sent");
    assert_eq!(pair.session.queued_len(), 2);

    pair.connect(false);
    assert_eq!(pair.sent_publishes(), vec![p(None, false, "a"), p(None, false, "b")]);
    assert_eq!(
        pair.take_events(),
        vec![Event::PublishSent { id: a }, Event::PublishSent { id: b }]
    );
}

#[test]
fn a_cut_before_anything_was_written_keeps_publish_order_and_sends_without_dup() {
    let mut pair = Pair::connected_with_window(10);
    pair.publish(QoS::AtLeastOnce, "a");
    pair.publish(QoS::AtMostOnce, "b");
    pair.publish(QoS::AtLeastOnce, "c");
    // The transport fails before the driver wrote anything.
    pair.cut();
    pair.connect(false);
    let sent = pair.sent_publishes();
    let order: Vec<&str> = sent.iter().map(|(_, _, payload)| payload.as_str()).collect();
    assert_eq!(order, ["a", "b", "c"], "publishes keep their order across a reconnect");
    assert!(
        sent.iter().all(|(_, dup, _)| !dup),
        "DUP marks a redelivery, and these were never delivered: {sent:?}"
    );
}

#[test]
fn publishes_filled_in_by_a_puback_read_together_with_garbage_are_not_marked_dup() {
    let mut pair = Pair::connected_with_window(1);
    pair.publish(QoS::AtLeastOnce, "first");
    pair.publish(QoS::AtLeastOnce, "second");
    pair.transfer();
    assert_eq!(pair.sent_publishes(), vec![p(Some(1), false, "first")]);

    // One read: the PUBACK opens the window for "second", then a malformed packet kills the
    // connection before "second" could be written.
    pair.session.handle_bytes(pair.clock.now(), &[0x40, 0x02, 0x00, 0x01, 0xF0, 0x00]);
    assert!(!pair.session.is_connected());
    pair.cut();
    pair.take_events();

    pair.connect(false);
    let sent = pair.sent_publishes();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].1, sent[0].2.as_str()), (false, "second"));
}

#[test]
fn acked_messages_are_not_resent() {
    let mut pair = Pair::connected_with_window(10);
    for n in 0..3 {
        pair.publish(QoS::AtLeastOnce, &format!("m{n}"));
    }
    pair.transfer();
    pair.sent_publishes();
    for packet_id in 1..=3 {
        pair.ack(packet_id);
    }
    assert_eq!(pair.session.inflight_len(), 0);
    pair.cut();
    pair.connect(false);
    pair.broker.expect_nothing();
    assert_eq!(pair.session.inflight_len(), 0);
}

#[test]
fn a_puback_lost_in_the_cut_is_answered_by_the_redelivery() {
    let mut pair = Pair::connected_with_window(10);
    let message = pair.publish(QoS::AtLeastOnce, "m");
    pair.transfer();
    pair.sent_publishes();
    // The broker answers, but the link breaks before the PUBACK reaches the client.
    pair.broker.send(&puback(1));
    pair.cut();
    assert!(pair.take_events().is_empty());

    pair.connect(false);
    assert_eq!(pair.sent_publishes(), vec![p(Some(1), true, "m")]);
    pair.ack(1);
    assert_eq!(pair.take_events(), vec![Event::PublishAcked { id: message, packet_id: id(1) }]);
}

#[test]
fn disconnect_keeps_unacked_publishes_for_the_next_connection() {
    let mut pair = Pair::connected_with_window(10);
    pair.publish(QoS::AtLeastOnce, "m");
    pair.transfer();
    pair.sent_publishes();
    pair.session.disconnect(pair.clock.now());
    pair.transfer();
    pair.broker.expect_matching("DISCONNECT", |packet| *packet == Packet::Disconnect);
    assert!(!pair.session.is_connected());
    pair.cut();

    pair.connect(false);
    assert_eq!(pair.sent_publishes(), vec![p(Some(1), true, "m")]);
}
