#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Packet ids: they start at 1, count up, wrap from 65,535 to 1, skip ids still in use, and
//! SUBSCRIBE, UNSUBSCRIBE and PUBLISH draw from the same space.

use bytes::Bytes;
use iot443_proto::session::{Event, MessageId};
use iot443_proto::topic::TopicFilter;
use iot443_proto::{Packet, QoS};
use iot443_test_support::Pair;
use iot443_test_support::packets::*;

fn publish(pair: &mut Pair) -> MessageId {
    pair.session.publish(topic("t"), QoS::AtLeastOnce, Bytes::new(), false).unwrap()
}

/// The packet id of every packet the broker received.
fn sent_ids(pair: &mut Pair) -> Vec<u16> {
    (0..pair.broker.pending())
        .map(|_| match pair.broker.expect() {
            Packet::Publish(publish) => publish.qos.packet_id().unwrap().get(),
            Packet::Subscribe(subscribe) => subscribe.packet_id.get(),
            Packet::Unsubscribe(unsubscribe) => unsubscribe.packet_id.get(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn ids_start_at_one_and_count_up() {
    let mut pair = Pair::connected_with_window(10);
    for _ in 0..5 {
        publish(&mut pair);
    }
    pair.transfer();
    assert_eq!(sent_ids(&mut pair), [1, 2, 3, 4, 5]);
}

#[test]
fn ids_keep_counting_after_acks_instead_of_reusing_freed_ones() {
    let mut pair = Pair::connected_with_window(10);
    publish(&mut pair);
    publish(&mut pair);
    pair.transfer();
    assert_eq!(sent_ids(&mut pair), [1, 2]);
    pair.broker.send(&puback(1));
    pair.transfer();
    publish(&mut pair);
    pair.transfer();
    assert_eq!(sent_ids(&mut pair), [3]);
}

#[test]
fn subscribe_unsubscribe_and_publish_share_the_id_space() {
    let mut pair = Pair::connected_with_window(10);
    publish(&mut pair);
    let sub = pair.session.subscribe(vec![filter("a/#", QoS::AtLeastOnce)]).unwrap();
    publish(&mut pair);
    let unsub = pair.session.unsubscribe(vec![TopicFilter::new("a/#").unwrap()]).unwrap();
    publish(&mut pair);
    assert_eq!((sub.get(), unsub.get()), (2, 4));
    pair.transfer();
    assert_eq!(sent_ids(&mut pair), [1, 2, 3, 4, 5]);
}

#[test]
fn a_queued_publish_takes_its_id_when_it_enters_the_window() {
    let mut pair = Pair::connected_with_window(1);
    publish(&mut pair);
    publish(&mut pair);
    let sub = pair.session.subscribe(vec![filter("a", QoS::AtMostOnce)]).unwrap();
    pair.transfer();
    assert_eq!(sent_ids(&mut pair), [1, 2], "the SUBSCRIBE took id 2 while the publish waited");
    assert_eq!(sub.get(), 2);
    pair.broker.send(&puback(1));
    pair.transfer();
    assert_eq!(sent_ids(&mut pair), [3]);
}

/// Publishes and acknowledges in batches of up to `batch` until the broker has seen packet id
/// 65,535, stopping exactly there; checks that every id is the one after the last, skipping
/// `in_use`.
fn cycle_to_the_last_id(pair: &mut Pair, batch: usize, in_use: &[u16]) {
    let mut expected = (1..=u16::MAX).filter(|n| !in_use.contains(n));
    let mut remaining = expected.clone().count();
    while remaining > 0 {
        let count = batch.min(remaining);
        for _ in 0..count {
            publish(pair);
        }
        pair.transfer();
        let ids = sent_ids(pair);
        assert_eq!(ids.len(), count);
        for packet_id in ids {
            assert_eq!(Some(packet_id), expected.next(), "ids must follow each other");
            pair.broker.send(&puback(packet_id));
        }
        pair.transfer();
        pair.take_events();
        remaining -= count;
    }
}

#[test]
fn ids_wrap_from_65535_to_1_skipping_those_still_in_use() {
    let mut pair = Pair::connected_with_window(2);
    // Id 1 stays unacknowledged across the whole cycle.
    let held = publish(&mut pair);
    pair.transfer();
    assert_eq!(sent_ids(&mut pair), [1]);

    cycle_to_the_last_id(&mut pair, 1, &[1]);
    assert_eq!(pair.session.inflight_len(), 1, "only the held message is in flight");

    let after_wrap = publish(&mut pair);
    pair.transfer();
    assert_eq!(sent_ids(&mut pair), [2], "1 is still in use, so the id after 65,535 is 2");

    pair.broker.send(&puback(1));
    pair.broker.send(&puback(2));
    pair.transfer();
    assert_eq!(
        pair.take_events(),
        vec![
            Event::PublishAcked { id: held, packet_id: id(1) },
            Event::PublishAcked { id: after_wrap, packet_id: id(2) },
        ]
    );
    assert_eq!(after_wrap.get(), 65_535, "message ids never wrap");
}

#[test]
fn wrap_around_also_skips_an_outstanding_subscribe() {
    let mut pair = Pair::connected_with_window(100);
    // Id 1: a publish never acknowledged. Id 2: a SUBSCRIBE never answered.
    publish(&mut pair);
    let sub = pair.session.subscribe(vec![filter("a/#", QoS::AtLeastOnce)]).unwrap();
    assert_eq!(sub.get(), 2);
    pair.transfer();
    assert_eq!(sent_ids(&mut pair), [1, 2]);

    cycle_to_the_last_id(&mut pair, 98, &[1, 2]);

    publish(&mut pair);
    let next_sub = pair.session.subscribe(vec![filter("b", QoS::AtMostOnce)]).unwrap();
    pair.transfer();
    assert_eq!(sent_ids(&mut pair), [3, 4]);
    assert_eq!(next_sub.get(), 4);

    // The original SUBSCRIBE is still answerable by its id.
    pair.broker.send(&suback(2, &[QoS::AtLeastOnce]));
    pair.transfer();
    assert!(matches!(
        pair.take_events().as_slice(),
        [Event::SubscribeAcked { packet_id, .. }] if *packet_id == sub
    ));
}
