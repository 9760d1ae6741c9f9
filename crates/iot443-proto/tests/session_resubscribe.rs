#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Subscriptions survive a reconnect: when CONNACK says the server kept no session, every
//! granted filter is subscribed again (8 per SUBSCRIBE); when it kept one, nothing is repeated.

use iot443_proto::session::{Event, SessionConfig};
use iot443_proto::topic::TopicFilter;
use iot443_proto::{Packet, QoS};
use iot443_test_support::Pair;
use iot443_test_support::packets::*;

fn subscribed(filters: &[&str]) -> Pair {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.connect(false);
    let entries = filters.iter().map(|text| filter(text, QoS::AtLeastOnce)).collect();
    let packet_id = pair.session.subscribe(entries).unwrap();
    pair.transfer();
    pair.broker.expect_matching("SUBSCRIBE", |p| matches!(p, Packet::Subscribe(_)));
    pair.broker.send(&suback(packet_id.get(), &vec![QoS::AtLeastOnce; filters.len()]));
    pair.transfer();
    pair.take_events();
    pair
}

fn resubscribed_filters(pair: &mut Pair) -> Vec<Vec<String>> {
    let mut sent = Vec::new();
    while pair.broker.pending() > 0 {
        match pair.broker.expect() {
            Packet::Subscribe(subscribe) => sent.push(
                subscribe.filters.iter().map(|entry| entry.filter.as_str().to_owned()).collect(),
            ),
            other => panic!("expected only SUBSCRIBE, got {other:?}"),
        }
    }
    sent
}

#[test]
fn granted_filters_are_subscribed_again_when_the_server_kept_no_session() {
    let mut pair = subscribed(&["a/#", "b/+"]);
    pair.cut();
    pair.connect(false);
    assert_eq!(resubscribed_filters(&mut pair), vec![vec!["a/#".to_owned(), "b/+".to_owned()]]);
}

#[test]
fn nothing_is_repeated_when_the_server_kept_the_session() {
    let mut pair = subscribed(&["a/#"]);
    pair.cut();
    pair.connect(true);
    assert!(resubscribed_filters(&mut pair).is_empty());
}

#[test]
fn restoring_uses_at_most_eight_filters_per_subscribe() {
    let filters: Vec<String> = (0..10).map(|n| format!("f/{n}")).collect();
    let texts: Vec<&str> = filters.iter().map(String::as_str).collect();
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.connect(false);
    for chunk in texts.chunks(5) {
        let entries = chunk.iter().map(|text| filter(text, QoS::AtMostOnce)).collect();
        let packet_id = pair.session.subscribe(entries).unwrap();
        pair.transfer();
        pair.broker.expect();
        pair.broker.send(&suback(packet_id.get(), &vec![QoS::AtMostOnce; chunk.len()]));
        pair.transfer();
    }
    pair.cut();
    pair.connect(false);
    let sent = resubscribed_filters(&mut pair);
    assert_eq!(sent.iter().map(Vec::len).collect::<Vec<_>>(), [8, 2]);
    assert_eq!(sent.concat(), filters);
}

#[test]
fn unsubscribed_and_refused_filters_are_not_restored() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.connect(false);
    let packet_id = pair
        .session
        .subscribe(vec![filter("keep", QoS::AtLeastOnce), filter("refused", QoS::AtLeastOnce)])
        .unwrap();
    pair.transfer();
    pair.broker.expect();
    pair.broker.send(&Packet::SubAck(iot443_proto::codec::SubAck::new(
        packet_id,
        vec![
            iot443_proto::codec::SubAckReturnCode::GRANTED_QOS1,
            iot443_proto::codec::SubAckReturnCode::FAILURE,
        ],
    )));
    pair.transfer();
    let gone = pair.session.subscribe(vec![filter("gone", QoS::AtMostOnce)]).unwrap();
    pair.transfer();
    pair.broker.expect();
    pair.broker.send(&suback(gone.get(), &[QoS::AtMostOnce]));
    pair.transfer();
    let unsubscribe = pair.session.unsubscribe(vec![TopicFilter::new("gone").unwrap()]).unwrap();
    pair.transfer();
    pair.broker.expect();
    pair.broker.send(&unsuback(unsubscribe.get()));
    pair.transfer();
    assert_eq!(pair.session.subscriptions().len(), 1);

    pair.cut();
    pair.connect(false);
    assert_eq!(resubscribed_filters(&mut pair), vec![vec!["keep".to_owned()]]);
}

#[test]
fn a_restoring_subscribe_lost_in_a_second_cut_is_sent_once_not_twice() {
    let mut pair = subscribed(&["a"]);
    pair.cut();
    pair.connect(false);
    assert_eq!(resubscribed_filters(&mut pair).len(), 1);
    pair.cut(); // before the SUBACK of the restoring SUBSCRIBE
    pair.connect(false);
    assert_eq!(resubscribed_filters(&mut pair), vec![vec!["a".to_owned()]]);
    let events = pair.take_events();
    assert!(!events.iter().any(|event| matches!(event, Event::ProtocolError(_))), "{events:?}");
}

#[test]
fn a_refused_restore_is_reported_and_the_filter_forgotten() {
    let mut pair = subscribed(&["a"]);
    pair.cut();
    pair.connect(false);
    let Packet::Subscribe(restore) = pair.broker.expect() else { panic!("no restoring SUBSCRIBE") };
    pair.broker.send(&Packet::SubAck(iot443_proto::codec::SubAck::new(
        restore.packet_id,
        vec![iot443_proto::codec::SubAckReturnCode::FAILURE],
    )));
    pair.transfer();
    let events = pair.take_events();
    assert_eq!(events, vec![Event::RestoreRefused { filter: TopicFilter::new("a").unwrap() }]);
    assert!(pair.session.subscriptions().is_empty());
}

fn subscribe_id(packet: Option<&Packet>) -> u16 {
    match packet {
        Some(Packet::Subscribe(subscribe)) => subscribe.packet_id.get(),
        other => panic!("expected an outstanding SUBSCRIBE, got {other:?}"),
    }
}

#[test]
fn a_discarded_subscribe_is_not_sent_again_and_frees_its_packet_id() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.connect(false);
    let packet_id = pair.session.subscribe(vec![filter("denied/#", QoS::AtLeastOnce)]).unwrap();
    pair.transfer();
    pair.broker.expect_matching("SUBSCRIBE", |p| matches!(p, Packet::Subscribe(_)));
    pair.cut();
    assert_eq!(subscribe_id(pair.session.oldest_request()), packet_id.get());

    let discarded = pair.session.discard_request(packet_id);
    assert!(matches!(discarded, Some(Packet::Subscribe(_))), "{discarded:?}");
    assert!(pair.session.oldest_request().is_none());
    assert!(pair.session.discard_request(packet_id).is_none(), "discarded once only");
    pair.connect(true);
    assert!(resubscribed_filters(&mut pair).is_empty(), "the SUBSCRIBE went out again");
    assert!(pair.session.subscriptions().is_empty());
    assert!(pair.take_events().is_empty(), "a discarded request is not answered by the session");
}

#[test]
fn a_discarded_restoring_subscribe_drops_every_filter_it_carried_for_later_reconnects_too() {
    let mut pair = subscribed(&["kept/#"]);
    let second = pair.session.subscribe(vec![filter("revoked/#", QoS::AtLeastOnce)]).unwrap();
    pair.transfer();
    pair.broker.expect();
    pair.broker.send(&suback(second.get(), &[QoS::AtLeastOnce]));
    pair.transfer();
    pair.take_events();
    pair.cut();
    // The server kept no session: the session restores both filters, in one SUBSCRIBE.
    pair.connect(false);
    assert_eq!(resubscribed_filters(&mut pair), vec![vec!["kept/#", "revoked/#"]]);
    let restoring = subscribe_id(pair.session.oldest_request());
    pair.cut();

    pair.session.discard_request(iot443_proto::codec::PacketId::new(restoring).unwrap()).unwrap();
    pair.connect(false);
    assert!(resubscribed_filters(&mut pair).is_empty(), "{:?}", pair.session.subscriptions());
    assert!(pair.session.subscriptions().is_empty());
}

#[test]
fn a_split_restore_restores_each_filter_of_that_subscribe_on_its_own() {
    let mut pair = subscribed(&["a/#", "b/#", "c/#"]);
    pair.cut();
    pair.connect(false);
    assert_eq!(resubscribed_filters(&mut pair), vec![vec!["a/#", "b/#", "c/#"]]);
    let restoring = subscribe_id(pair.session.oldest_request());
    pair.cut();

    let packet_id = iot443_proto::codec::PacketId::new(restoring).unwrap();
    assert!(pair.session.split_restore(packet_id));
    pair.connect(false);
    assert_eq!(resubscribed_filters(&mut pair), vec![vec!["a/#"], vec!["b/#"], vec!["c/#"]]);

    // A single filter, or the application's own SUBSCRIBE, cannot be split.
    let single = subscribe_id(pair.session.oldest_request());
    assert!(!pair.session.split_restore(iot443_proto::codec::PacketId::new(single).unwrap()));
    assert_eq!(pair.session.subscriptions().len(), 3, "splitting drops nothing");
}

#[test]
fn the_applications_own_subscribe_is_never_split() {
    let mut pair = Pair::new(SessionConfig::new("c"));
    pair.connect(false);
    let entries = vec![filter("x/#", QoS::AtMostOnce), filter("y/#", QoS::AtMostOnce)];
    let packet_id = pair.session.subscribe(entries).unwrap();
    assert!(!pair.session.split_restore(packet_id));
}

/// After a reconnect without a kept session, the SUBSCRIBEs that restore the subscriptions go out
/// before the QoS 1 publishes sent again: a request whose answer comes on a subscribed topic (a
/// Device Shadow request) then finds its answer topic subscribed again.
#[test]
fn subscriptions_are_restored_before_unacknowledged_publishes_are_sent_again() {
    let mut pair = subscribed(&["$aws/things/lamp/shadow/update/accepted"]);
    pair.publish(QoS::AtLeastOnce, r#"{"state":{"reported":{"on":true}}}"#);
    pair.transfer();
    pair.broker.expect_matching("the first PUBLISH", |p| matches!(p, Packet::Publish(_)));
    pair.cut();
    pair.connect(false);
    let mut kinds = Vec::new();
    while pair.broker.pending() > 0 {
        kinds.push(match pair.broker.expect() {
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::Publish(publish) if publish.dup => "PUBLISH (DUP)",
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(kinds, ["SUBSCRIBE", "PUBLISH (DUP)"]);
}
