#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! A slow application keeps its connection, in virtual time: while it takes no message for ten
//! keep-alive intervals, the client stops reading (TCP pushes back) but goes on sending PINGREQ
//! every interval — what keeps IoT Core from closing it at 1.5 × keep-alive — and acknowledges
//! only the messages it has handed on. Once the application reads, every QoS 1 message
//! arrives, in order, over the one connection, and each is acknowledged.
//!
//! Once against a scripted endpoint (which checks each PINGREQ and PUBACK), once against the
//! emulator's real broker in memory (which closes a client silent for 1.5 × keep-alive).

mod common;

use bytes::Bytes;
use common::scripted;
use iot443::{QoS, SUBSCRIPTION_QUEUE};
use iot443_proto::codec::Packet;
use iot443_test_support::packets::publish_qos1;
use std::time::Duration;
use tokio::time::Instant;

const KEEP_ALIVE: Duration = Duration::from_secs(30);
const MESSAGES: usize = 3000;

/// A QoS 1 PUBLISH to `slow/n` carrying `n`, with packet id `n % 65535 + 1`.
fn message(n: usize) -> Packet {
    let payload: &'static [u8] = Box::leak(n.to_string().into_bytes().into_boxed_slice());
    publish_qos1("slow/n", (n % 65_535 + 1) as u16, payload)
}

#[tokio::test(start_paused = true)]
async fn an_application_that_takes_nothing_for_ten_keep_alives_keeps_its_connection() {
    let mut config = scripted::config("slow-app");
    // Set directly: below IoT Core's minimum of 30 s `validate` would refuse nothing here.
    config.keep_alive = KEEP_ALIVE;
    let (client, _events, mut endpoint, mut peer) = scripted::connect(&config).await;
    let subscribing = client.subscribe("slow/#", QoS::AtLeastOnce);
    let serving = async {
        peer.grant_subscribe(QoS::AtLeastOnce).await;
        for n in 0..MESSAGES {
            peer.send(&message(n)).await;
        }
        peer
    };
    let (subscription, mut peer) = tokio::join!(subscribing, serving);
    let mut subscription = subscription.unwrap();

    // Ten keep-alive intervals in which the application takes nothing.
    let started = Instant::now();
    let pause_ends = started + KEEP_ALIVE * 10;
    let mut pings = Vec::new();
    let mut acked = 0usize;
    loop {
        match tokio::time::timeout_at(pause_ends, peer.next()).await {
            Err(_) => break,
            Ok(None) => panic!("the client closed its connection while the application was slow"),
            Ok(Some(Packet::PingReq)) => {
                pings.push(started.elapsed());
                peer.send(&Packet::PingResp).await;
            }
            Ok(Some(Packet::PubAck(_))) => acked += 1,
            Ok(Some(other)) => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings.len() >= 9, "a PINGREQ every keep-alive interval: {pings:?}");
    let mut last = Duration::ZERO;
    for at in &pings {
        assert!(*at - last <= KEEP_ALIVE, "no gap over the keep-alive: {pings:?}");
        last = *at;
    }
    assert!(KEEP_ALIVE * 10 - last <= KEEP_ALIVE, "pinging to the end: {pings:?}");
    assert_eq!(
        acked, SUBSCRIPTION_QUEUE,
        "only the messages handed on (one full subscription queue) are acknowledged"
    );

    // The application reads: every message arrives, in order, and is acknowledged.
    let reading = async {
        for n in 0..MESSAGES {
            let message = subscription.recv().await.expect("the subscription is open");
            assert_eq!(message.payload, Bytes::from(n.to_string()), "in order");
        }
    };
    let acknowledging = async {
        while acked < MESSAGES {
            match peer.next().await.expect("the connection stays") {
                Packet::PubAck(_) => acked += 1,
                Packet::PingReq => peer.send(&Packet::PingResp).await,
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(600), async { tokio::join!(reading, acknowledging) })
        .await
        .expect("every message arrives once the application reads");
    assert_eq!(acked, MESSAGES);

    // One connection all along: the connector was never asked for another.
    assert!(
        tokio::time::timeout(Duration::from_millis(1), endpoint.accept()).await.is_err(),
        "no second connection"
    );
}

#[tokio::test(start_paused = true)]
async fn against_the_real_broker_a_slow_subscriber_keeps_its_connection_and_gets_everything() {
    let broker = common::in_memory::Broker::start();
    let mut config = scripted::config("slow-subscriber");
    config.keep_alive = KEEP_ALIVE;
    let (subscriber, mut subscriber_events) = broker.connect(&config).await;
    let mut subscription = subscriber.subscribe("slow/#", QoS::AtLeastOnce).await.unwrap();
    common::events::next_connected(&mut subscriber_events).await;

    let (publisher, _publisher_events) = broker.connect(&scripted::config("publisher")).await;
    let mut deliveries = Vec::with_capacity(MESSAGES);
    for n in 0..MESSAGES {
        deliveries
            .push(publisher.publish("slow/n", QoS::AtLeastOnce, n.to_string()).await.unwrap());
    }
    for delivery in deliveries {
        delivery.await.expect("the broker acknowledges every publish");
    }

    // Ten keep-alive intervals in which the subscriber's application takes nothing.
    tokio::time::sleep(KEEP_ALIVE * 10).await;
    assert!(broker.emulator().closes().is_empty(), "{:?}", broker.emulator().closes());

    for n in 0..MESSAGES {
        let message = subscription.recv().await.expect("the subscription is open");
        assert_eq!(message.payload, Bytes::from(n.to_string()), "in order");
    }
    while let Some(event) = subscriber_events.try_recv() {
        assert!(
            !matches!(event, iot443::Event::Reconnecting { .. }),
            "one connection all along: {event:?}"
        );
    }
    assert!(broker.emulator().closes().is_empty(), "no keep-alive timeout, no close");
    subscriber.disconnect().await.unwrap();
    publisher.disconnect().await.unwrap();
}
