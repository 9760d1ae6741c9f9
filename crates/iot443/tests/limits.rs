#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! AWS IoT Core's limits, checked by the client before anything is sent: a clear error for that
//! call, nothing on the wire, and the connection stays up.
//!
//! "Nothing was sent" is shown by a second client subscribed to everything: after the refused
//! publish, a valid one follows, and it is the first message the watcher receives.

mod common;

use common::{TestEmulator, next_message, queued_messages, within};
use iot443::{Client, ClientError, ErrorKind, Subscription};
use iot443_proto::QoS;
use iot443_proto::codec::AWS_MAX_PAYLOAD;
use iot443_proto::topic::TopicError;

/// A publisher, and a watcher client (kept to keep its connection) subscribed to every topic of
/// the test (`limits/#`).
async fn publisher_and_watcher(emulator: &TestEmulator) -> (Client, Client, Subscription) {
    let (publisher, _) = emulator.connect("limits-publisher").await;
    let (watcher, _) = emulator.connect("limits-watcher").await;
    let watching =
        within("subscribe", watcher.subscribe("limits/#", QoS::AtLeastOnce)).await.unwrap();
    (publisher, watcher, watching)
}

/// Publishes a valid marker and checks it is the next thing the watcher sees: the refused
/// publish before it put nothing on the wire, and the connection still works.
async fn marker_arrives_first(publisher: &Client, watching: &mut Subscription, marker: &str) {
    within(
        "marker delivery",
        publisher.publish("limits/marker", QoS::AtLeastOnce, marker.to_owned()).await.unwrap(),
    )
    .await
    .expect("the connection is kept after a refused publish");
    let first = next_message(watching, "the marker").await;
    assert_eq!(first.topic, "limits/marker", "something else was sent: {first:?}");
    assert_eq!(&first.payload[..], marker.as_bytes());
    assert!(queued_messages(watching).is_empty());
}

#[tokio::test]
async fn oversize_payload_is_refused_and_nothing_is_sent() {
    let emulator = TestEmulator::start().await;
    let (publisher, _watcher, mut watching) = publisher_and_watcher(&emulator).await;

    let payload = vec![b'x'; AWS_MAX_PAYLOAD + 1];
    let error = publisher.publish("limits/big", QoS::AtLeastOnce, payload).await.unwrap_err();
    let ClientError::PayloadTooLarge { topic, size, max } = &error else {
        panic!("expected ClientError::PayloadTooLarge, got {error:?}");
    };
    assert_eq!((topic.as_str(), *size, *max), ("limits/big", 131_073, 131_072));
    assert_eq!(
        error.to_string(),
        "payload of 131073 bytes for topic \"limits/big\" exceeds AWS IoT Core's limit of 131072 \
         bytes; nothing was sent"
    );
    assert_eq!(error.kind(), ErrorKind::Usage);

    marker_arrives_first(&publisher, &mut watching, "after oversize").await;
}

#[tokio::test]
async fn payload_of_exactly_128_kib_is_delivered() {
    let emulator = TestEmulator::start().await;
    let (publisher, _watcher, mut watching) = publisher_and_watcher(&emulator).await;

    let payload: Vec<u8> = (0..AWS_MAX_PAYLOAD).map(|i| (i % 251) as u8).collect();
    within(
        "delivery",
        publisher.publish("limits/full", QoS::AtLeastOnce, payload.clone()).await.unwrap(),
    )
    .await
    .unwrap();
    let message = next_message(&mut watching, "the 128 KiB message").await;
    assert_eq!(message.topic, "limits/full");
    assert_eq!(message.payload.len(), AWS_MAX_PAYLOAD);
    assert!(message.payload == payload);
}

#[tokio::test]
async fn topic_with_eight_slashes_is_refused_and_nothing_is_sent() {
    let emulator = TestEmulator::start().await;
    let (publisher, _watcher, mut watching) = publisher_and_watcher(&emulator).await;

    let deep = "limits/b/c/d/e/f/g/h/i";
    assert_eq!(deep.matches('/').count(), 8);
    let error = publisher.publish(deep, QoS::AtLeastOnce, "deep").await.unwrap_err();
    let ClientError::InvalidTopic { topic, source } = &error else {
        panic!("expected ClientError::InvalidTopic, got {error:?}");
    };
    assert_eq!(topic, deep);
    assert_eq!(*source, TopicError::TooManyLevels { slashes: 8, max: 7 });
    let message = error.to_string();
    assert!(message.starts_with(&format!("invalid topic {deep:?}: ")), "{message}");
    assert!(message.contains("8 '/' separators where AWS IoT Core allows 7"), "{message}");
    assert!(message.ends_with("; nothing was sent"), "{message}");
    assert_eq!(error.kind(), ErrorKind::Usage);

    marker_arrives_first(&publisher, &mut watching, "after 8 slashes").await;

    // Seven slashes is within the limit.
    let seven = "limits/b/c/d/e/f/g/h";
    within("delivery", publisher.publish(seven, QoS::AtLeastOnce, "7").await.unwrap())
        .await
        .unwrap();
    assert_eq!(next_message(&mut watching, "the 7-slash message").await.topic, seven);
}

#[tokio::test]
async fn wildcard_in_publish_topic_is_refused_and_nothing_is_sent() {
    let emulator = TestEmulator::start().await;
    let (publisher, _watcher, mut watching) = publisher_and_watcher(&emulator).await;

    for topic_text in ["limits/+/x", "limits/#"] {
        let error = publisher.publish(topic_text, QoS::AtMostOnce, "w").await.unwrap_err();
        let ClientError::InvalidTopic { topic, source } = &error else {
            panic!("expected ClientError::InvalidTopic, got {error:?}");
        };
        assert_eq!(topic, topic_text);
        assert_eq!(*source, TopicError::WildcardInName);
        let message = error.to_string();
        assert!(message.contains("wildcard"), "{message}");
        assert!(message.contains("only for subscription filters"), "{message}");
        assert!(message.ends_with("; nothing was sent"), "{message}");
        assert_eq!(error.kind(), ErrorKind::Usage);
    }

    marker_arrives_first(&publisher, &mut watching, "after wildcards").await;
}

#[tokio::test]
async fn qos_2_is_refused_and_nothing_is_sent() {
    let emulator = TestEmulator::start().await;
    let (publisher, _watcher, mut watching) = publisher_and_watcher(&emulator).await;

    let error = publisher.publish("limits/q2", QoS::ExactlyOnce, "q2").await.unwrap_err();
    assert!(matches!(error, ClientError::QosNotSupported), "{error:?}");
    assert!(error.to_string().contains("use QoS 0 or 1"), "{error}");
    let error = publisher.subscribe("limits/q2", QoS::ExactlyOnce).await.unwrap_err();
    assert!(matches!(error, ClientError::QosNotSupported), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Usage);

    marker_arrives_first(&publisher, &mut watching, "after QoS 2").await;
}
