#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! A dead link — the proxy keeps the connection open and forwards nothing (a black hole) — is
//! noticed by the keep-alive: PINGREQ goes out, no PINGRESP comes back within the ping timeout,
//! and the client reconnects. A QoS 1 message published into the black hole is delivered after
//! the reconnect. The measured detection time is printed (`--nocapture`), not asserted: the
//! expected bound is keep-alive + ping timeout (1 s + 5 s here).

mod common;

use common::events::{next_connected, next_reconnecting};

use common::faults::{fast_policy, proxy_for, via};
use common::{TestEmulator, next_message, within};
use iot443::{Client, QoS};
use iot443_test_support::fault_proxy::Faults;
use std::time::Duration;
use tokio::time::Instant;

const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// The session's default ping timeout (`SessionConfig::ping_timeout`; `Config` has no knob).
const PING_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_black_holed_link_is_detected_by_the_keep_alive_and_the_client_reconnects() {
    let emulator = TestEmulator::start().await;
    let (subscriber, _subscriber_events) = emulator.connect("dead-link-sub").await;
    let mut subscription =
        within("subscribe", subscriber.subscribe("dead/link", QoS::AtLeastOnce)).await.unwrap();

    let proxy = proxy_for(&emulator).await;
    let mut config = via(&proxy, emulator.config("dead-link-pub"));
    // Set directly: below IoT Core's range of 30..=1200 s, which `validate` would refuse, and
    // the emulator clamps it to 30 s on its side, so it never times the client out here.
    config.keep_alive = KEEP_ALIVE;
    config.reconnect = fast_policy();
    // A reconnect attempt that starts before the black hole is lifted waits this long for its
    // TLS handshake (the ClientHello is swallowed) before trying again.
    config.connect_timeout = Duration::from_secs(2);
    let (publisher, mut events) = within("connect", Client::connect(&config)).await.unwrap();
    within("first connection event", next_connected(&mut events)).await;
    // The link works before the fault.
    within("PUBACK", publisher.publish("dead/link", QoS::AtLeastOnce, "before").await.unwrap())
        .await
        .unwrap();
    assert_eq!(&next_message(&mut subscription, "before").await.payload[..], b"before");

    proxy.set_faults(Faults { black_hole: true, ..Faults::default() });
    let black_hole_since = Instant::now();
    let during = publisher.publish("dead/link", QoS::AtLeastOnce, "during").await.unwrap();

    let cause = within("the dead link to be noticed", next_reconnecting(&mut events)).await;
    let detected_after = black_hole_since.elapsed();
    proxy.set_faults(Faults::default());
    assert!(cause.contains("PINGRESP"), "the keep-alive noticed it: {cause}");
    assert!(!cause.starts_with("refused"), "a dead link is the network: {cause}");

    within("the reconnect", next_connected(&mut events)).await;
    let reconnected_after = black_hole_since.elapsed();
    within("PUBACK of the message sent into the black hole", during).await.unwrap();
    assert_eq!(&next_message(&mut subscription, "during").await.payload[..], b"during");

    println!(
        "dead link: detected after {:.2} s (keep-alive {} s + ping timeout {} s = {} s), \
         reconnected after {:.2} s; cause: {cause}",
        detected_after.as_secs_f64(),
        KEEP_ALIVE.as_secs(),
        PING_TIMEOUT.as_secs(),
        (KEEP_ALIVE + PING_TIMEOUT).as_secs(),
        reconnected_after.as_secs_f64(),
    );
    within("disconnect", publisher.disconnect()).await.unwrap();
    within("disconnect", subscriber.disconnect()).await.unwrap();
    proxy.stop().await;
}

/// The same dead link while the client keeps publishing (QoS 1, one message every 300 ms) into
/// it: its own traffic must not hide that nothing comes back. Before the fix the next PINGREQ
/// waited for `keep_alive` without *sending*, so a steady publisher only noticed once the
/// in-flight window of 100 was full (30 s here), and a QoS 0 publisher never.
#[tokio::test]
async fn a_dead_link_is_detected_while_the_client_keeps_publishing_into_it() {
    const EVERY: Duration = Duration::from_millis(300);
    let emulator = TestEmulator::start().await;
    let (subscriber, _subscriber_events) = emulator.connect("busy-dead-link-sub").await;
    let mut subscription =
        within("subscribe", subscriber.subscribe("dead/busy", QoS::AtLeastOnce)).await.unwrap();

    let proxy = proxy_for(&emulator).await;
    let mut config = via(&proxy, emulator.config("busy-dead-link-pub"));
    config.keep_alive = KEEP_ALIVE;
    config.reconnect = fast_policy();
    config.connect_timeout = Duration::from_secs(2);
    let (publisher, mut events) = within("connect", Client::connect(&config)).await.unwrap();
    within("first connection event", next_connected(&mut events)).await;

    proxy.set_faults(Faults { black_hole: true, ..Faults::default() });
    let black_hole_since = Instant::now();
    let mut deliveries = Vec::new();
    let mut pace = tokio::time::interval(EVERY);
    let detection = async {
        loop {
            tokio::select! {
                cause = next_reconnecting(&mut events) => return cause,
                _ = pace.tick() => {
                    let n = deliveries.len();
                    let delivery = publisher
                        .publish("dead/busy", QoS::AtLeastOnce, n.to_string())
                        .await
                        .unwrap();
                    deliveries.push(delivery);
                }
            }
        }
    };
    let cause = within("the dead link to be noticed while publishing", detection).await;
    let detected_after = black_hole_since.elapsed();
    proxy.set_faults(Faults::default());
    assert!(cause.contains("PINGRESP"), "the keep-alive noticed it: {cause}");

    let sent = deliveries.len();
    for delivery in deliveries {
        within("PUBACK of a message sent into the black hole", delivery).await.unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < sent {
        let message =
            next_message(&mut subscription, "the messages sent into the black hole").await;
        seen.insert(String::from_utf8(message.payload.to_vec()).unwrap());
    }
    println!(
        "dead link while publishing every {} ms: detected after {:.2} s (keep-alive {} s + ping \
         timeout {} s), {sent} messages published meanwhile, all delivered after the reconnect",
        EVERY.as_millis(),
        detected_after.as_secs_f64(),
        KEEP_ALIVE.as_secs(),
        PING_TIMEOUT.as_secs(),
    );
    within("disconnect", publisher.disconnect()).await.unwrap();
    within("disconnect", subscriber.disconnect()).await.unwrap();
    proxy.stop().await;
}
