#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! A subscriber whose connection is cut reconnects and keeps receiving what another client
//! publishes afterwards — with a persistent session (the endpoint kept the subscription:
//! session present) and without one (the client subscribes again by itself after CONNACK).

mod common;

use common::faults::{Tally, fast_policy, id_of, payload, proxy_for, via};
use common::{TestEmulator, next_message, within};
use iot443::{Client, ConnectionInfo, Event, Events, QoS};
use std::time::Duration;

/// Messages published after the reconnect.
const AFTER: usize = 20;
/// Bound on the probes sent while waiting for the restored subscription to take effect.
const MAX_PROBES: usize = 200;
const PROBE_EVERY: Duration = Duration::from_millis(50);

/// Skips to the next `Connected` event, checking the loss was reported first.
async fn reconnected(events: &mut Events) -> ConnectionInfo {
    let mut reported = false;
    loop {
        match events.recv().await.expect("the client is still running") {
            Event::Reconnecting { cause, .. } => {
                assert!(cause.starts_with("network"), "a cut is the network: {cause}");
                reported = true;
            }
            Event::Connected(info) => {
                assert!(reported, "Reconnecting comes before the new connection");
                return info;
            }
            Event::Disconnected { reason } => panic!("the subscriber gave up: {reason}"),
            _ => {}
        }
    }
}

async fn subscription_survives_a_cut(persistent: bool) {
    let name = if persistent { "persistent" } else { "clean" };
    let topic = format!("survive/{name}");
    let emulator = TestEmulator::start().await;
    let proxy = proxy_for(&emulator).await;
    let mut config = via(&proxy, emulator.config(&format!("survive-sub-{name}")));
    config.clean_session = !persistent;
    config.reconnect = fast_policy();
    let (subscriber, mut events) = within("connect", Client::connect(&config)).await.unwrap();
    // The first connection is reported too.
    assert!(matches!(events.recv().await, Some(Event::Connected(_))));
    let mut subscription =
        within("subscribe", subscriber.subscribe(&topic, QoS::AtLeastOnce)).await.unwrap();
    let (publisher, _publisher_events) = emulator.connect(&format!("survive-pub-{name}")).await;

    // Before the cut.
    within("PUBACK", publisher.publish(&topic, QoS::AtLeastOnce, "before").await.unwrap())
        .await
        .unwrap();
    assert_eq!(&next_message(&mut subscription, "before the cut").await.payload[..], b"before");

    proxy.cut_all();
    let info = within("the reconnect", reconnected(&mut events)).await;
    assert_eq!(info.session_present, persistent, "session present after the reconnect");

    if !persistent {
        // The restoring SUBSCRIBE follows CONNACK; nothing tells the application when SUBACK
        // came back. Probe (paced, bounded) until a message gets through.
        let mut probes = 0;
        loop {
            assert!(probes < MAX_PROBES, "the subscription was not restored");
            probes += 1;
            let delivery = publisher.publish(&topic, QoS::AtLeastOnce, "probe").await.unwrap();
            within("probe PUBACK", delivery).await.unwrap();
            if let Ok(Some(_)) = tokio::time::timeout(PROBE_EVERY, subscription.recv()).await {
                break;
            }
        }
        println!("{name}: subscription restored after {probes} probe(s)");
    }
    // After the reconnect, from the other client.
    for id in 0..AFTER {
        within("PUBACK", publisher.publish(&topic, QoS::AtLeastOnce, payload(id)).await.unwrap())
            .await
            .unwrap();
    }
    let mut tally = Tally::new(AFTER);
    while !tally.is_complete() {
        let message = next_message(&mut subscription, "a message after the reconnect").await;
        // Probes still on their way, or "before" redelivered, are not numbered.
        if message.payload.iter().all(u8::is_ascii_digit) {
            tally.record(id_of(&message.payload));
        }
    }
    println!(
        "{name}: {AFTER} of {AFTER} messages after the reconnect received, {} duplicates, \
         session present {}",
        tally.duplicates(),
        info.session_present
    );
    assert_eq!(proxy.stats().cuts, 1);
    within("disconnect", subscriber.disconnect()).await.unwrap();
    within("disconnect", publisher.disconnect()).await.unwrap();
    proxy.stop().await;
}

#[tokio::test]
async fn a_persistent_session_keeps_its_subscription_across_a_cut() {
    subscription_survives_a_cut(true).await;
}

#[tokio::test]
async fn a_clean_session_subscribes_again_after_a_cut() {
    subscription_survives_a_cut(false).await;
}
