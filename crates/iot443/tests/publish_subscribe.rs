#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Publishing and subscribing through the emulator: QoS 0 and 1, retained messages, IoT Core's
//! wildcard rule, fan-out to several subscriptions, unsubscribe, pipelining, the flush on
//! disconnect, and a slow consumer.

mod common;

use common::{TestEmulator, next_message, queued_events, queued_messages, within};
use iot443::{ClientError, Event, QoS};

#[tokio::test]
async fn qos0_round_trip() {
    let emulator = TestEmulator::start().await;
    let (client, _events) = emulator.connect("qos0").await;
    let mut subscription =
        within("subscribe", client.subscribe("ps/qos0", QoS::AtMostOnce)).await.unwrap();
    assert_eq!(subscription.granted_qos(), [QoS::AtMostOnce]);

    let delivery = client.publish("ps/qos0", QoS::AtMostOnce, "zero").await.unwrap();
    within("QoS 0 delivery (written)", delivery).await.unwrap();
    let message = next_message(&mut subscription, "the QoS 0 message").await;
    assert_eq!(message.topic, "ps/qos0");
    assert_eq!(&message.payload[..], b"zero");
    assert_eq!(message.qos, QoS::AtMostOnce);
    assert!(!message.retain && !message.dup);
    within("disconnect", client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn qos1_round_trip_resolves_on_puback() {
    let emulator = TestEmulator::start().await;
    let (client, _events) = emulator.connect("qos1").await;
    let mut subscription =
        within("subscribe", client.subscribe("ps/qos1", QoS::AtLeastOnce)).await.unwrap();
    assert_eq!(subscription.granted_qos(), [QoS::AtLeastOnce]);

    let delivery = client.publish("ps/qos1", QoS::AtLeastOnce, "one").await.unwrap();
    within("PUBACK", delivery).await.unwrap();
    let message = next_message(&mut subscription, "the QoS 1 message").await;
    assert_eq!(message.topic, "ps/qos1");
    assert_eq!(&message.payload[..], b"one");
    assert_eq!(message.qos, QoS::AtLeastOnce);
    assert!(!message.retain && !message.dup);

    // The delivered QoS is the lower of the publish's and the subscription's.
    let mut low =
        within("subscribe", client.subscribe("ps/qos1low", QoS::AtMostOnce)).await.unwrap();
    within("PUBACK", client.publish("ps/qos1low", QoS::AtLeastOnce, "down").await.unwrap())
        .await
        .unwrap();
    assert_eq!(next_message(&mut low, "the downgraded message").await.qos, QoS::AtMostOnce);
    within("disconnect", client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn retained_message_is_delivered_on_exact_subscribe_with_retain_set() {
    let emulator = TestEmulator::start().await;
    let (publisher, _) = emulator.connect("retain-publisher").await;
    within(
        "retained PUBACK",
        publisher
            .publish_with_retain("ps/retained/state", QoS::AtLeastOnce, "on", true)
            .await
            .unwrap(),
    )
    .await
    .unwrap();

    let (late, _) = emulator.connect("retain-late").await;
    let mut exact =
        within("subscribe", late.subscribe("ps/retained/state", QoS::AtLeastOnce)).await.unwrap();
    let retained = next_message(&mut exact, "the retained message").await;
    assert_eq!(retained.topic, "ps/retained/state");
    assert_eq!(&retained.payload[..], b"on");
    assert!(retained.retain, "a message sent because of SUBSCRIBE has RETAIN set: {retained:?}");

    // A wildcard subscription gets no retained message (IoT Core); live ones go out with
    // RETAIN = 0.
    let (wild, _) = emulator.connect("retain-wild").await;
    let mut wildcard =
        within("subscribe", wild.subscribe("ps/retained/+", QoS::AtLeastOnce)).await.unwrap();
    within(
        "PUBACK",
        publisher.publish("ps/retained/state", QoS::AtLeastOnce, "live").await.unwrap(),
    )
    .await
    .unwrap();
    let first = next_message(&mut wildcard, "the live message").await;
    assert_eq!(&first.payload[..], b"live", "the wildcard subscription got {first:?} first");
    assert!(!first.retain);
    let live = next_message(&mut exact, "the live message").await;
    assert_eq!(&live.payload[..], b"live");
    assert!(!live.retain);
}

#[tokio::test]
async fn wildcard_subscription_follows_iot_core_matching() {
    let emulator = TestEmulator::start().await;
    let (subscriber, mut events) = emulator.connect("wild-sub").await;
    let (publisher, _) = emulator.connect("wild-pub").await;
    let mut multi =
        within("subscribe", subscriber.subscribe("ps/a/#", QoS::AtLeastOnce)).await.unwrap();
    let mut single =
        within("subscribe", subscriber.subscribe("ps/+/x", QoS::AtLeastOnce)).await.unwrap();

    for topic in ["ps/a", "ps/a/b", "ps/a/b/c", "ps/q/y", "ps/q/x"] {
        within(
            "PUBACK",
            publisher.publish(topic, QoS::AtLeastOnce, topic.to_owned()).await.unwrap(),
        )
        .await
        .unwrap();
    }

    // IoT Core: `ps/a/#` does not match `ps/a` itself.
    assert_eq!(next_message(&mut multi, "ps/a/b").await.topic, "ps/a/b");
    assert_eq!(next_message(&mut multi, "ps/a/b/c").await.topic, "ps/a/b/c");
    assert_eq!(next_message(&mut single, "ps/q/x").await.topic, "ps/q/x");
    // The subscriber saw ps/q/x, published last: anything the endpoint had sent for ps/a or
    // ps/q/y would have arrived before, and gone to a subscription or to the events.
    assert!(queued_messages(&mut multi).is_empty());
    assert!(queued_messages(&mut single).is_empty());
    let stray: Vec<Event> = queued_events(&mut events)
        .into_iter()
        .filter(|event| !matches!(event, Event::Connected(_)))
        .collect();
    assert!(stray.is_empty(), "messages that matched no subscription: {stray:?}");
}

#[tokio::test]
async fn two_subscriptions_matching_one_topic_both_receive_it_once() {
    let emulator = TestEmulator::start().await;
    let (client, _events) = emulator.connect("two-subs").await;
    let (other, _) = emulator.connect("two-subs-other").await;
    let mut exact =
        within("subscribe", client.subscribe("ps/both/x", QoS::AtLeastOnce)).await.unwrap();
    let mut wildcard =
        within("subscribe", client.subscribe("ps/both/+", QoS::AtLeastOnce)).await.unwrap();
    let mut elsewhere =
        within("subscribe", other.subscribe("ps/both/x", QoS::AtLeastOnce)).await.unwrap();

    within("PUBACK", client.publish("ps/both/x", QoS::AtLeastOnce, "x").await.unwrap())
        .await
        .unwrap();
    within("PUBACK", client.publish("ps/both/y", QoS::AtLeastOnce, "y").await.unwrap())
        .await
        .unwrap();

    assert_eq!(&next_message(&mut exact, "x on the exact one").await.payload[..], b"x");
    assert_eq!(&next_message(&mut wildcard, "x on the wildcard").await.payload[..], b"x");
    assert_eq!(&next_message(&mut elsewhere, "x on the other client").await.payload[..], b"x");
    assert_eq!(&next_message(&mut wildcard, "y on the wildcard").await.payload[..], b"y");
    // y came after x on the same connection: the exact subscription got x once and nothing else.
    assert!(queued_messages(&mut exact).is_empty());
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let emulator = TestEmulator::start().await;
    let (client, mut events) = emulator.connect("unsub").await;
    let mut leaving =
        within("subscribe", client.subscribe("ps/unsub/a", QoS::AtLeastOnce)).await.unwrap();
    let mut staying =
        within("subscribe", client.subscribe("ps/unsub/b", QoS::AtLeastOnce)).await.unwrap();
    within("PUBACK", client.publish("ps/unsub/a", QoS::AtLeastOnce, "before").await.unwrap())
        .await
        .unwrap();
    assert_eq!(&next_message(&mut leaving, "before").await.payload[..], b"before");

    within("UNSUBACK", client.unsubscribe("ps/unsub/a")).await.unwrap();
    within("PUBACK", client.publish("ps/unsub/a", QoS::AtLeastOnce, "after").await.unwrap())
        .await
        .unwrap();
    within("PUBACK", client.publish("ps/unsub/b", QoS::AtLeastOnce, "marker").await.unwrap())
        .await
        .unwrap();
    assert_eq!(&next_message(&mut staying, "the marker").await.payload[..], b"marker");

    // The marker came after "after": had "after" been delivered, it would be here by now.
    assert!(
        !matches!(common::poll_once(leaving.recv()), Some(Some(_))),
        "a message arrived after unsubscribe"
    );
    let stray: Vec<Event> = queued_events(&mut events)
        .into_iter()
        .filter(|event| !matches!(event, Event::Connected(_)))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_pipelined_qos1_publishes_are_all_acknowledged_and_received_in_order() {
    const COUNT: usize = 1_000;
    let emulator = TestEmulator::start().await;
    let (publisher, _) = emulator.connect("pipe-pub").await;
    let (subscriber, _) = emulator.connect("pipe-sub").await;
    let mut subscription =
        within("subscribe", subscriber.subscribe("ps/pipe", QoS::AtLeastOnce)).await.unwrap();

    let publishing = async {
        // Queue every publish before waiting for any PUBACK.
        let mut deliveries = Vec::with_capacity(COUNT);
        for i in 0..COUNT {
            deliveries
                .push(publisher.publish("ps/pipe", QoS::AtLeastOnce, i.to_string()).await.unwrap());
        }
        for (i, delivery) in deliveries.into_iter().enumerate() {
            delivery.await.unwrap_or_else(|error| panic!("publish {i} not acknowledged: {error}"));
        }
    };
    let receiving = async {
        for i in 0..COUNT {
            let message = subscription.recv().await.expect("subscription ended");
            assert_eq!(message.payload, i.to_string().as_bytes(), "message {i} out of order");
        }
    };
    within("1,000 publishes acknowledged and received", async {
        tokio::join!(publishing, receiving)
    })
    .await;
    within("disconnect", publisher.disconnect()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disconnect_flushes_in_flight_publishes() {
    const COUNT: usize = 300;
    let emulator = TestEmulator::start().await;
    let (publisher, _) = emulator.connect("flush-pub").await;
    let (subscriber, _) = emulator.connect("flush-sub").await;
    let mut subscription =
        within("subscribe", subscriber.subscribe("ps/flush", QoS::AtLeastOnce)).await.unwrap();

    let mut deliveries = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        deliveries
            .push(publisher.publish("ps/flush", QoS::AtLeastOnce, i.to_string()).await.unwrap());
    }
    // More than the in-flight window (100) is still queued or unacknowledged here.
    within("disconnect", publisher.disconnect()).await.unwrap();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        within("delivery", delivery)
            .await
            .unwrap_or_else(|error| panic!("publish {i} was not flushed: {error}"));
    }
    for i in 0..COUNT {
        let message = next_message(&mut subscription, "a flushed message").await;
        assert_eq!(message.payload, i.to_string().as_bytes());
    }
    let error = publisher.publish("ps/flush", QoS::AtMostOnce, "late").await.unwrap_err();
    assert!(matches!(error, ClientError::Closed), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_consumer_loses_nothing_and_does_not_deadlock() {
    const COUNT: usize = 3_000;
    let emulator = TestEmulator::start().await;
    let (publisher, _) = emulator.connect("slow-pub").await;
    let (subscriber, _) = emulator.connect("slow-sub").await;
    let mut subscription =
        within("subscribe", subscriber.subscribe("ps/slow", QoS::AtLeastOnce)).await.unwrap();

    // The subscription is not read while every message is published and acknowledged by the
    // endpoint: about three times what the client buffers per subscription, and 3 MB, more than
    // the socket buffers hold, so the endpoint has to wait for the client.
    let payload = |i: usize| format!("{i:06}{}", ".".repeat(1018));
    let mut deliveries = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        deliveries.push(publisher.publish("ps/slow", QoS::AtLeastOnce, payload(i)).await.unwrap());
    }
    for delivery in deliveries {
        within("PUBACK", delivery).await.unwrap();
    }
    // The stalled client still takes commands and writes.
    within(
        "a QoS 0 publish from the stalled client",
        subscriber.publish("ps/elsewhere", QoS::AtMostOnce, "still here").await.unwrap(),
    )
    .await
    .unwrap();

    let receiving = async {
        for i in 0..COUNT {
            let message = subscription.recv().await.expect("subscription ended");
            assert_eq!(message.payload, payload(i).as_bytes(), "message {i} lost or reordered");
        }
    };
    within("3,000 messages to the slow consumer", receiving).await;
    // And the connection is fine afterwards.
    within("PUBACK", subscriber.publish("ps/slow", QoS::AtLeastOnce, "end").await.unwrap())
        .await
        .unwrap();
    assert_eq!(&next_message(&mut subscription, "end").await.payload[..], b"end");
}

#[cfg(feature = "outbox")]
#[tokio::test]
async fn queued_publishes_with_an_outbox_keep_their_order_and_are_all_delivered() {
    let emulator = TestEmulator::start().await;
    let (subscriber, _s) = emulator.connect("queued-sub").await;
    let mut subscription =
        within("subscribe", subscriber.subscribe("ps/queued", QoS::AtLeastOnce)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.db");
    let mut config = emulator.config("queued-pub");
    config.outbox = Some(outbox.clone());
    let (client, _events) = within("connect", iot443::Client::connect(&config)).await.unwrap();

    // 300 queued before any acceptance is awaited: the driver stores them in groups.
    let mut queued = Vec::new();
    for n in 0..300 {
        let message = client.start_publish("ps/queued", QoS::AtLeastOnce, n.to_string(), false);
        queued.push(message.await.unwrap());
    }
    let mut deliveries = Vec::new();
    for message in queued {
        deliveries.push(within("acceptance", message.accepted()).await.unwrap());
    }
    for delivery in deliveries {
        within("PUBACK", delivery).await.unwrap();
    }
    for n in 0..300 {
        let message = next_message(&mut subscription, "the queued messages").await;
        assert_eq!(message.payload, n.to_string(), "in the order queued");
    }
    within("disconnect", client.disconnect()).await.unwrap();
    let outbox = iot443::Outbox::open(&outbox).unwrap();
    assert!(outbox.is_empty().unwrap(), "every acknowledged message left the outbox");
    within("disconnect", subscriber.disconnect()).await.unwrap();
}
