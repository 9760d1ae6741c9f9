#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! `disconnect()` ends the driver and closes the transport even while a `Subscription` that
//! nobody reads is full and more messages are parked behind it.

mod common;

use common::scripted;
use iot443::{Event, QoS, SUBSCRIPTION_QUEUE};
use iot443_test_support::packets::publish_qos0;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn disconnect_with_a_full_unread_subscription_ends_the_driver_and_closes_the_transport() {
    let config = scripted::config("full-subscription");
    let (client, mut events, _endpoint, mut peer) = scripted::connect(&config).await;
    let subscribing = client.subscribe("full/#", QoS::AtMostOnce);
    let serving = async {
        peer.grant_subscribe(QoS::AtMostOnce).await;
        // More than the queue holds: the rest is parked and the client stops reading.
        for _ in 0..SUBSCRIPTION_QUEUE + 200 {
            peer.send(&publish_qos0("full/x", b"m")).await;
        }
        peer
    };
    let (subscription, mut peer) = tokio::join!(subscribing, serving);
    let subscription = subscription.unwrap(); // held, never read

    // Let the client take what it can (virtual time: no wall time passes).
    tokio::time::sleep(Duration::from_millis(10)).await;
    let bound = config.connect_timeout + Duration::from_secs(2);
    tokio::time::timeout(bound, client.disconnect())
        .await
        .expect("disconnect returns within its bound")
        .expect("disconnect succeeds");

    // The driver ends: its event stream closes after `Disconnected`.
    let ended = async {
        let mut disconnected = false;
        while let Some(event) = events.recv().await {
            disconnected |= matches!(event, Event::Disconnected { .. });
        }
        disconnected
    };
    let disconnected = tokio::time::timeout(bound, ended).await.expect("the driver ends");
    assert!(disconnected, "Disconnected was reported");

    // The transport is closed: the endpoint reads DISCONNECT (maybe), then the end.
    let closed = async {
        while let Some(packet) = peer.next().await {
            assert!(
                matches!(packet, iot443_proto::Packet::Disconnect | iot443_proto::Packet::PingReq),
                "{packet:?}"
            );
        }
    };
    tokio::time::timeout(bound, closed).await.expect("the transport is closed");
    drop(subscription);
}
