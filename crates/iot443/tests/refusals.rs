#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! An endpoint that refuses the client does not cause a reconnect storm, and a QoS 1 message it
//! keeps refusing ends in the dead letters instead of being re-sent into the same wall forever:
//!
//! * two clients fighting over one client id (the emulator, like IoT Core, closes the older
//!   connection when the newer one connects): each close is a refusal, retried no sooner than
//!   `refused_min_delay`, so the connection attempts over a window (of virtual time, against
//!   the emulator's broker in memory) stay under the bound that implies;
//! * a policy that allows publishing to `ok/#` only: the emulator closes the connection on a
//!   PUBLISH to `forbidden/x`; after K = 3 refusals in a row with that message the oldest
//!   unacknowledged, it is set aside (its `Delivery` fails, an event says so, the outbox keeps it
//!   as a dead letter) and the messages after it are delivered;
//! * the same policy and a SUBSCRIBE to `forbidden/#`: after K = 3 refusals the SUBSCRIBE is
//!   given up (its call fails, an event says so) and the client goes on.

mod common;

use common::events::next_subscription_dropped;

use common::TestEmulator;
use common::faults::{ConnectionLog, fast_policy, log_connection};
#[cfg(feature = "outbox")]
use iot443::outbox::Outbox;
use iot443::{Client, ClientError, QoS};
use iot443_emulator::broker::Policy;
#[cfg(feature = "outbox")]
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// How long the two clients are left to fight (virtual time).
const FIGHT: Duration = Duration::from_secs(60);
const FIGHT_REFUSED_DELAY: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn two_clients_fighting_over_one_client_id_do_not_storm_the_endpoint() {
    // The emulator's real broker in memory, in virtual time: the pacing is exact, not measured.
    let broker = common::in_memory::Broker::start();
    let mut config = common::scripted::config("fight");
    config.reconnect = fast_policy();
    config.reconnect.refused_min_delay = FIGHT_REFUSED_DELAY;
    config.reconnect.jitter_seed = Some(1);

    let started = Instant::now();
    let (first, first_events) = broker.connect(&config).await;
    let first_log = log_connection(first_events);
    // Takes the client id over: the emulator closes the first connection.
    let (second, second_events) = broker.connect(&config).await;
    let second_log = log_connection(second_events);

    // A window of virtual time in which they fight.
    tokio::time::sleep(FIGHT).await;
    common::within("disconnect", first.disconnect()).await.unwrap();
    common::within("disconnect", second.disconnect()).await.unwrap();
    let first_log = first_log.await.unwrap();
    let second_log = second_log.await.unwrap();
    let window = started.elapsed();

    // Each attempt after the first waits at least `refused_min_delay` after a refusal.
    let bound = (window.as_secs_f64() / FIGHT_REFUSED_DELAY.as_secs_f64()).ceil() as usize + 2;
    let report = |name: &str, log: &ConnectionLog| {
        println!(
            "fight {name}: {} connection attempts ({} reported as refusals), {} connections \
             in {:.1} s of virtual time; bound {bound}; first cause: {:?}",
            log.reconnecting,
            log.refused,
            log.connected,
            window.as_secs_f64(),
            log.causes.first(),
        );
    };
    report("first", &first_log);
    report("second", &second_log);
    for log in [&first_log, &second_log] {
        assert!(log.reconnecting <= bound, "a reconnect storm: {log:?}");
        assert_eq!(log.refused, log.reconnecting, "every loss is a refusal: {:?}", log.causes);
    }
    // They did fight: the first was thrown out at least once, and took the id back.
    assert!(first_log.reconnecting >= 1 && first_log.connected >= 2, "{first_log:?}");
    assert!(second_log.reconnecting >= 1, "{second_log:?}");
    assert!(
        first_log.causes[0].contains("client id"),
        "the likely cause is named: {}",
        first_log.causes[0]
    );
}

const POLICY: &str = r#"{
  "statements": [
    { "common_name": "*", "publish": ["ok/#"], "subscribe": ["ok/#"] }
  ]
}"#;

/// An emulator with [`POLICY`].
async fn policy_emulator() -> TestEmulator {
    TestEmulator::start_with(|options| {
        options.broker.policy = Some(Policy::from_json(POLICY).unwrap());
    })
    .await
}

/// A configuration for `client_id` that reconnects quickly, also after a refusal (100 ms).
fn quick_to_retry(emulator: &TestEmulator, client_id: &str) -> iot443::Config {
    let mut config = emulator.config(client_id);
    config.reconnect = fast_policy();
    config.reconnect.refused_min_delay = Duration::from_millis(100);
    config
}

#[cfg(feature = "outbox")]
#[tokio::test]
async fn a_message_the_policy_forbids_is_dead_lettered_and_the_messages_after_it_are_delivered() {
    let emulator = policy_emulator().await;
    let (subscriber, _subscriber_events) = emulator.connect("policy-sub").await;
    let mut subscription =
        common::within("subscribe", subscriber.subscribe("ok/#", QoS::AtLeastOnce)).await.unwrap();

    let outbox = tempfile::tempdir().unwrap();
    let outbox_path = outbox.path().join("outbox.db");
    let mut config = quick_to_retry(&emulator, "policy-pub");
    config.outbox = Some(outbox_path.clone());
    let (publisher, events) = common::within("connect", Client::connect(&config)).await.unwrap();
    let log = log_connection(events);

    let topics = ["ok/1", "forbidden/x", "ok/2", "ok/3"];
    let mut deliveries = Vec::new();
    for topic in topics {
        deliveries.push(publisher.publish(topic, QoS::AtLeastOnce, topic).await.unwrap());
    }
    let mut results = BTreeMap::new();
    for (topic, delivery) in topics.into_iter().zip(deliveries) {
        results.insert(topic, common::within(topic, delivery).await);
    }
    for topic in ["ok/1", "ok/2", "ok/3"] {
        assert!(results[topic].is_ok(), "{topic}: {:?}", results[topic]);
    }
    match &results["forbidden/x"] {
        Err(ClientError::DeadLettered { topic, reason }) => {
            assert_eq!(topic, "forbidden/x");
            assert!(reason.contains("policy"), "the reason names the policy: {reason}");
            assert!(reason.contains("3 times"), "after K = 3 refusals: {reason}");
        }
        other => panic!("forbidden/x should be dead-lettered, got {other:?}"),
    }

    let mut received = BTreeMap::new();
    while received.len() < 3 {
        let message = common::next_message(&mut subscription, "the allowed messages").await;
        *received.entry(message.topic).or_insert(0) += 1;
    }
    assert_eq!(received.keys().collect::<Vec<_>>(), ["ok/1", "ok/2", "ok/3"]);

    common::within("disconnect", publisher.disconnect()).await.unwrap();
    let log = log.await.unwrap();
    assert_eq!(log.dead_lettered.len(), 1, "{:?}", log.dead_lettered);
    assert_eq!(log.dead_lettered[0].0, "forbidden/x");
    assert!(log.refused >= 3, "{log:?}");

    // The client is gone, so the outbox can be opened.
    let outbox = Outbox::open(&outbox_path).unwrap();
    let letters = outbox.dead_letters().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].entry.topic, "forbidden/x");
    assert_eq!(&letters[0].entry.payload[..], b"forbidden/x");
    assert!(letters[0].reason.contains("policy"), "{}", letters[0].reason);
    assert!(outbox.is_empty().unwrap(), "nothing else is left: {:?}", outbox.pending().unwrap());
    println!(
        "policy: forbidden/x dead-lettered after {} refusals ({} connection attempts, {} \
         connections); ok/1..3 delivered {:?} times; reason: {}",
        log.refused, log.reconnecting, log.connected, received, letters[0].reason
    );
    common::within("disconnect", subscriber.disconnect()).await.unwrap();
}

#[tokio::test]
async fn a_subscription_the_policy_forbids_is_given_up_after_k_refusals_and_the_client_goes_on() {
    let emulator = policy_emulator().await;
    let config = quick_to_retry(&emulator, "policy-sub-denied");
    let (client, mut events) = common::within("connect", Client::connect(&config)).await.unwrap();

    // The emulator, like IoT Core, closes the connection on a SUBSCRIBE the policy forbids.
    let refused = common::within(
        "the forbidden subscribe",
        client.subscribe("forbidden/#", QoS::AtLeastOnce),
    )
    .await;
    match refused {
        Err(ClientError::SubscriptionRefused { filter, .. }) => assert_eq!(filter, "forbidden/#"),
        other => panic!("expected SubscriptionRefused, got {other:?}"),
    }
    let mut refusals = 0;
    let dropped = common::within("the SubscriptionDropped event", async {
        loop {
            match events.recv().await {
                Some(iot443::Event::SubscriptionDropped { filter, reason }) => {
                    return (filter, reason);
                }
                Some(iot443::Event::Reconnecting { cause, .. }) => {
                    assert!(cause.contains("SUBSCRIBE to forbidden/#"), "{cause}");
                    refusals += 1;
                }
                Some(_) => {}
                None => panic!("the events ended"),
            }
        }
    })
    .await;
    assert_eq!(dropped.0, "forbidden/#");
    assert!(dropped.1.contains("3 times"), "after K = 3 refusals: {}", dropped.1);
    // The third refusal gives the SUBSCRIBE up before its own `Reconnecting` is reported.
    assert_eq!(refusals, 2, "the refusals before the third were one reconnect each");

    // The client is still usable: an allowed subscription and a round trip work.
    let mut allowed =
        common::within("subscribe ok/#", client.subscribe("ok/#", QoS::AtLeastOnce)).await.unwrap();
    client.publish("ok/after", QoS::AtLeastOnce, "still here").await.unwrap().await.unwrap();
    let message = common::next_message(&mut allowed, "the message after the refusal").await;
    assert_eq!(&message.payload[..], b"still here");
    println!("policy: SUBSCRIBE forbidden/# given up: {}", dropped.1);
    common::within("disconnect", client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn a_forbidden_subscribe_is_blamed_not_the_publishes_in_flight_beside_it() {
    let emulator = policy_emulator().await;
    let config = quick_to_retry(&emulator, "policy-mixed");
    let (client, _events) = common::within("connect", Client::connect(&config)).await.unwrap();

    // Allowed QoS 1 traffic in flight, then a SUBSCRIBE the policy forbids: after each
    // reconnect the SUBSCRIBE goes first and is refused, with publishes still unacknowledged.
    let mut deliveries = Vec::new();
    for n in 0..300 {
        deliveries.push(client.publish("ok/mixed", QoS::AtLeastOnce, n.to_string()).await.unwrap());
    }
    let refused = common::within(
        "the forbidden subscribe",
        client.subscribe("forbidden/#", QoS::AtLeastOnce),
    )
    .await;
    assert!(matches!(refused, Err(ClientError::SubscriptionRefused { .. })), "{refused:?}");
    for (n, delivery) in deliveries.into_iter().enumerate() {
        let result = common::within("a publish beside the refused SUBSCRIBE", delivery).await;
        assert!(result.is_ok(), "publish {n} was blamed for the SUBSCRIBE: {result:?}");
    }
    common::within("disconnect", client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn a_subscription_revoked_while_away_is_given_up_and_the_one_restored_with_it_is_kept() {
    // First an endpoint that allows everything: both subscriptions are granted.
    let open = TestEmulator::start().await;
    let config = quick_to_retry(&open, "policy-revoked");
    let (client, mut events) = common::within("connect", Client::connect(&config)).await.unwrap();
    let mut kept =
        common::within("subscribe", client.subscribe("ok/#", QoS::AtLeastOnce)).await.unwrap();
    let _revoked =
        common::within("subscribe", client.subscribe("revoked/#", QoS::AtLeastOnce)).await.unwrap();

    // Then the endpoint comes back on the same port and PKI with a policy that forbids one of
    // them: the session restores both in one SUBSCRIBE, which is refused; after K refusals it
    // restores them one by one, and after K more gives up the refused one only.
    let strict = open
        .restart_with(|options| options.broker.policy = Some(Policy::from_json(POLICY).unwrap()))
        .await;

    let dropped =
        common::within("the SubscriptionDropped event", next_subscription_dropped(&mut events))
            .await;
    assert_eq!(dropped.0, "revoked/#", "only the refused filter is given up");
    assert!(dropped.1.contains("3 times"), "{}", dropped.1);
    // The client stays connected, and the filter restored alongside still delivers.
    client.publish("ok/after", QoS::AtLeastOnce, "kept").await.unwrap().await.unwrap();
    let message = common::next_message(&mut kept, "a message on the kept subscription").await;
    assert_eq!(&message.payload[..], b"kept");
    common::within("disconnect", client.disconnect()).await.unwrap();
    strict.emulator.stop().await;
}
