//! With `message_expiry`, a QoS 1 message that waited in the outbox too long is dropped and
//! reported instead of being sent late; the others are replayed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::{TestEmulator, next_message, within};
use iot443::outbox::{NewMessage, Outbox};
use iot443::{Event, QoS};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

#[tokio::test]
async fn an_expired_outbox_message_is_dropped_and_reported_and_a_fresh_one_is_replayed() {
    let emulator = TestEmulator::start().await;
    let (subscriber, _subscriber_events) = emulator.connect("expiry-subscriber").await;
    let mut messages = subscriber.subscribe("expiry/#", QoS::AtLeastOnce).await.unwrap();

    // What an earlier run left behind: one message past its expiry, one still fresh.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    {
        let mut outbox = Outbox::open(&path).unwrap();
        let stale = NewMessage {
            topic: "expiry/stale",
            payload: b"too late",
            qos: 1,
            retain: false,
            expires_at_ms: Some(now_ms() - 1_000),
        };
        let fresh = NewMessage {
            topic: "expiry/fresh",
            payload: b"in time",
            qos: 1,
            retain: false,
            expires_at_ms: Some(now_ms() + 3_600_000),
        };
        outbox.push(&[stale, fresh]).unwrap();
    }

    let mut config = emulator.config("expiry-publisher");
    config.outbox = Some(path.clone());
    config.message_expiry = Some(Duration::from_secs(60));
    let (publisher, mut events) =
        within("connect", iot443::Client::connect(&config)).await.unwrap();

    let message = next_message(&mut messages, "the fresh message").await;
    assert_eq!(message.topic, "expiry/fresh");
    let mut expired = Vec::new();
    while let Some(event) = events.try_recv() {
        if let Event::Expired { topic } = event {
            expired.push(topic);
        }
    }
    assert_eq!(expired, ["expiry/stale"]);
    publisher.disconnect().await.unwrap();
    assert!(common::queued_messages(&mut messages).is_empty(), "the stale message was sent");
    assert!(Outbox::open(&path).unwrap().is_empty().unwrap());
    subscriber.disconnect().await.unwrap();
}
