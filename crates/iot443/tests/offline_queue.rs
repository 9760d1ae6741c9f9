#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The offline queue: publishes made while the client is disconnected wait in a bounded queue
//! (`OfflineQueue`: at most `max_messages` messages and `max_bytes` payload bytes) and are sent
//! after the reconnect. When it is full a new publish fails with `QueueFull`, or, with
//! `WhenFull::DropOldestQos0`, the oldest queued QoS 0 message is dropped (its Delivery fails
//! with `Dropped`) to make room.
//!
//! The client goes through a `FaultProxy`; the proxy refuses new connections and cuts the live
//! one, so the client stays disconnected until the refusal is lifted.

mod common;

use common::events::{next_connected, next_reconnecting};

use common::faults::{fast_policy, proxy_for, via};
use common::{TestEmulator, next_message, within};
use iot443::{Client, ClientError, Config, Delivery, Events, QoS, Subscription, WhenFull};
use iot443_test_support::fault_proxy::{FaultProxy, Faults};

/// Everything a test needs: the emulator, a subscriber on `topic` connected directly, and a
/// publisher through a proxy that is now refusing connections, disconnected.
struct Setup {
    emulator: TestEmulator,
    proxy: FaultProxy,
    subscriber: Client,
    subscription: Subscription,
    publisher: Client,
    events: Events,
    /// The topic the subscriber listens on.
    topic: String,
}

async fn disconnected_publisher(
    name: &str,
    topic: &str,
    customise: impl FnOnce(&mut Config),
) -> Setup {
    let emulator = TestEmulator::start().await;
    let (subscriber, _subscriber_events) = emulator.connect(&format!("{name}-sub")).await;
    let subscription =
        within("subscribe", subscriber.subscribe(topic, QoS::AtLeastOnce)).await.unwrap();
    let proxy = proxy_for(&emulator).await;
    let mut config = via(&proxy, emulator.config(&format!("{name}-pub")));
    config.reconnect = fast_policy();
    config.offline_queue.max_messages = 3;
    customise(&mut config);
    let (publisher, mut events) = within("connect", Client::connect(&config)).await.unwrap();
    within("first connection event", next_connected(&mut events)).await;

    proxy.set_faults(Faults { refuse_new: true, ..Faults::default() });
    proxy.cut_all();
    within("the cut to be noticed", next_reconnecting(&mut events)).await;
    Setup { emulator, proxy, subscriber, subscription, publisher, events, topic: topic.to_owned() }
}

impl Setup {
    /// Publishes to the setup's topic while the publisher is disconnected; `publish` itself
    /// must return a Delivery (a refusal of the offline queue comes through the Delivery).
    async fn publish_offline(&self, qos: QoS, payload: impl Into<bytes::Bytes>) -> Delivery {
        within("a publish while disconnected", self.publisher.publish(&self.topic, qos, payload))
            .await
            .expect("publish returns a Delivery")
    }

    /// Lets the client reconnect and waits until it has.
    async fn heal(&mut self) {
        self.proxy.set_faults(Faults::default());
        within("the reconnect", next_connected(&mut self.events)).await;
    }

    /// The next `count` payloads on the subscription, in order.
    async fn received(&mut self, count: usize) -> Vec<String> {
        let mut payloads = Vec::new();
        for _ in 0..count {
            let message = next_message(&mut self.subscription, "a queued message").await;
            payloads.push(String::from_utf8(message.payload.to_vec()).unwrap());
        }
        payloads
    }

    async fn end(self) {
        within("disconnect", self.publisher.disconnect()).await.unwrap();
        within("disconnect", self.subscriber.disconnect()).await.unwrap();
        self.proxy.stop().await;
        drop(self.emulator);
    }
}

#[tokio::test]
async fn publishes_while_disconnected_wait_and_are_delivered_after_reconnect() {
    let mut setup = disconnected_publisher("offline-wait", "offline/wait", |_| {}).await;
    let mut deliveries = Vec::new();
    for payload in ["1", "2", "3"] {
        deliveries.push(setup.publish_offline(QoS::AtLeastOnce, payload).await);
    }

    setup.heal().await;
    for delivery in deliveries {
        within("PUBACK of a queued message", delivery).await.unwrap();
    }
    assert_eq!(setup.received(3).await, ["1", "2", "3"]);
    setup.end().await;
}

#[tokio::test]
async fn a_full_offline_queue_refuses_with_queue_full() {
    let mut setup = disconnected_publisher("offline-full", "offline/full", |_| {}).await;
    let mut deliveries = Vec::new();
    for payload in ["1", "2", "3"] {
        deliveries.push(setup.publish_offline(QoS::AtLeastOnce, payload).await);
    }
    // Without an outbox `publish` returns once the command is handed to the driver; the bound
    // is applied by the driver, so the refusal comes from the Delivery.
    let fourth = within(
        "the fourth publish",
        setup.publisher.publish("offline/full", QoS::AtLeastOnce, "4"),
    )
    .await
    .expect("publish itself returns a Delivery");
    let error = within("the fourth Delivery", fourth).await.unwrap_err();
    assert!(
        matches!(error, ClientError::QueueFull { messages: 3, .. }),
        "expected QueueFull with 3 messages, got {error:?}"
    );

    setup.heal().await;
    for delivery in deliveries {
        within("PUBACK of a queued message", delivery).await.unwrap();
    }
    assert_eq!(setup.received(3).await, ["1", "2", "3"]);
    setup.end().await;
}

#[tokio::test]
async fn drop_oldest_qos0_makes_room() {
    let mut setup = disconnected_publisher("offline-drop", "offline/drop", |config| {
        config.offline_queue.when_full = WhenFull::DropOldestQos0;
    })
    .await;
    let mut deliveries = Vec::new();
    for (payload, qos) in [
        ("a", QoS::AtMostOnce),
        ("b", QoS::AtLeastOnce),
        ("c", QoS::AtMostOnce),
        ("d", QoS::AtLeastOnce),
    ] {
        deliveries.push(setup.publish_offline(qos, payload).await);
    }
    let mut deliveries = deliveries.into_iter();
    let a = deliveries.next().unwrap();
    let error = within("the Delivery of the dropped message", a).await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Dropped { topic } if topic == "offline/drop"),
        "expected Dropped for \"a\", got {error:?}"
    );

    setup.heal().await;
    for delivery in deliveries {
        within("delivery of a queued message", delivery).await.unwrap();
    }
    assert_eq!(setup.received(3).await, ["b", "c", "d"]);
    // Nothing else (in particular not "a") arrives: a marker published afterwards is next.
    within("the marker", setup.publisher.publish("offline/drop", QoS::AtLeastOnce, "end"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(setup.received(1).await, ["end"]);
    setup.end().await;
}

#[tokio::test]
async fn max_bytes_bounds_the_queue_too() {
    let mut setup = disconnected_publisher("offline-bytes", "offline/bytes", |config| {
        config.offline_queue.max_messages = 1000;
        config.offline_queue.max_bytes = 1000;
    })
    .await;
    let mut deliveries = Vec::new();
    for n in 0..3u8 {
        deliveries.push(setup.publish_offline(QoS::AtLeastOnce, vec![b'0' + n; 400]).await);
    }
    let third = deliveries.pop().unwrap();
    let error = within("the third Delivery", third).await.unwrap_err();
    assert!(
        matches!(error, ClientError::QueueFull { messages: 2, bytes: 800 }),
        "expected QueueFull with 2 messages and 800 bytes, got {error:?}"
    );

    setup.heal().await;
    for delivery in deliveries {
        within("PUBACK of a queued message", delivery).await.unwrap();
    }
    let received = setup.received(2).await;
    assert_eq!(received, ["0".repeat(400), "1".repeat(400)]);
    setup.end().await;
}
