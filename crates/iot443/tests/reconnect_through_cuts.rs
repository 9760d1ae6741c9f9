#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! 10,000 QoS 1 messages published through a proxy that cuts the connection at a random moment
//! every 0.2–1 s all reach a persistent-session subscriber: the publisher reconnects and re-sends
//! what was not acknowledged (with DUP), the subscriber's session keeps what it missed.
//! Duplicates are counted at the receiver (by the number in each payload) and printed, with the
//! cuts, the reconnects and the outages (`--nocapture` shows them).

mod common;

use common::TestEmulator;
use common::faults::{
    ConnectionLog, count_ids, fast_policy, log_connection, payload, proxy_for, via,
};
use iot443::{Client, Delivery, QoS};
use iot443_test_support::fault_proxy::Faults;
use std::time::Duration;

const MESSAGES: usize = 10_000;
/// The publisher's pace: `PER_TICK` messages every `TICK`, 2,000 messages/s, so the stream lasts
/// about 5 s and spans several cuts.
const TICK: Duration = Duration::from_millis(10);
const PER_TICK: usize = 20;
/// The whole test, publishing and receiving included.
const WHOLE_TEST: Duration = Duration::from_secs(120);
/// How long the receiver counts: less than the whole test, so that a loss fails with the list
/// of missing messages rather than with the test's timeout.
const RECEIVING: Duration = Duration::from_secs(100);

fn cutting(seed: u64) -> Faults {
    Faults {
        cut_every: Some((Duration::from_millis(200), Duration::from_secs(1))),
        seed,
        ..Faults::default()
    }
}

/// What one run measured.
struct Run {
    duplicates: usize,
    publisher_cuts: u64,
    publisher: ConnectionLog,
    subscriber_cuts: u64,
    subscriber: ConnectionLog,
}

/// Publishes `MESSAGES` numbered QoS 1 messages through a cutting proxy to a persistent-session
/// subscriber (through a cutting proxy of its own when `cut_subscriber`), and checks that every
/// one arrived.
async fn run(name: &str, cut_subscriber: bool) -> Run {
    let emulator = TestEmulator::start().await;
    let topic = format!("cuts/{name}");
    let seed = rand::random::<u64>();
    println!("{name}: fault seed {seed}");

    // The subscriber: persistent session, fixed client id.
    let subscriber_proxy = proxy_for(&emulator).await;
    let mut subscriber_config = emulator.config(&format!("cuts-sub-{name}"));
    if cut_subscriber {
        subscriber_config = via(&subscriber_proxy, subscriber_config);
    }
    subscriber_config.clean_session = false;
    subscriber_config.reconnect = fast_policy();
    let (subscriber, subscriber_events) = Client::connect(&subscriber_config).await.unwrap();
    let subscriber_log = log_connection(subscriber_events);
    let subscription = subscriber.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let received = count_ids(subscription, MESSAGES, RECEIVING);

    // The publisher, through its own cutting proxy.
    let publisher_proxy = proxy_for(&emulator).await;
    let mut publisher_config = via(&publisher_proxy, emulator.config(&format!("cuts-pub-{name}")));
    publisher_config.reconnect = fast_policy();
    let (publisher, publisher_events) = Client::connect(&publisher_config).await.unwrap();
    let publisher_log = log_connection(publisher_events);

    publisher_proxy.set_faults(cutting(seed));
    if cut_subscriber {
        subscriber_proxy.set_faults(cutting(seed ^ 0x5EED));
    }

    let mut deliveries: Vec<(usize, Delivery)> = Vec::with_capacity(MESSAGES);
    let mut pace = tokio::time::interval(TICK);
    let mut next = 0;
    while next < MESSAGES {
        pace.tick().await;
        for id in next..(next + PER_TICK).min(MESSAGES) {
            let delivery = publisher.publish(&topic, QoS::AtLeastOnce, payload(id)).await.unwrap();
            deliveries.push((id, delivery));
        }
        next += PER_TICK;
    }
    for (id, delivery) in deliveries {
        if let Err(error) = delivery.await {
            panic!("message {id} was not delivered: {error}");
        }
    }

    let tally = received.await.unwrap();
    // Stop cutting before disconnecting, so that the DISCONNECTs go through.
    publisher_proxy.set_faults(Faults::default());
    subscriber_proxy.set_faults(Faults::default());
    let publisher_cuts = publisher_proxy.stats().cuts;
    let subscriber_cuts = subscriber_proxy.stats().cuts;
    assert!(
        tally.is_complete(),
        "{name}: {} of {MESSAGES} messages arrived; missing (first 20): {:?}",
        tally.unique(),
        tally.missing(20)
    );

    publisher.disconnect().await.unwrap();
    subscriber.disconnect().await.unwrap();
    let publisher = publisher_log.await.unwrap();
    let subscriber = subscriber_log.await.unwrap();
    assert!(publisher_cuts >= 2, "{name}: the run should span several cuts, got {publisher_cuts}");
    assert_eq!(publisher.refused, 0, "{name}: a cut is the network: {:?}", publisher.causes);
    assert!(publisher.dead_lettered.is_empty(), "{:?}", publisher.dead_lettered);
    publisher_proxy.stop().await;
    subscriber_proxy.stop().await;
    Run { duplicates: tally.duplicates(), publisher_cuts, publisher, subscriber_cuts, subscriber }
}

fn report(name: &str, run: &Run) {
    println!(
        "{name}: {MESSAGES} of {MESSAGES} received, {} duplicates; publisher: {} cuts, {} \
         reconnects, outages {}; subscriber: {} cuts, {} reconnects, outages {}",
        run.duplicates,
        run.publisher_cuts,
        run.publisher.reconnects(),
        run.publisher.outage_summary(),
        run.subscriber_cuts,
        run.subscriber.reconnects(),
        run.subscriber.outage_summary(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_arrives_when_the_publisher_is_cut_again_and_again() {
    let name = "direct-subscriber";
    let run = tokio::time::timeout(WHOLE_TEST, run(name, false))
        .await
        .unwrap_or_else(|_| panic!("{name}: not done within {WHOLE_TEST:?}"));
    report(name, &run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_arrives_when_publisher_and_subscriber_are_both_cut() {
    let name = "cut-subscriber";
    let run = tokio::time::timeout(WHOLE_TEST, run(name, true))
        .await
        .unwrap_or_else(|_| panic!("{name}: not done within {WHOLE_TEST:?}"));
    assert!(run.subscriber_cuts >= 1, "the subscriber should have been cut at least once");
    report(name, &run);
}

/// While the network is down, every new connection is reset in the middle of the TLS handshake
/// (the proxy cuts it within the first 100 bytes of the ClientHello): that is the network, not
/// the endpoint refusing the client, so the unacknowledged messages are kept and delivered
/// afterwards — never set aside as refused.
#[tokio::test]
async fn connections_reset_during_the_handshake_are_the_network_and_lose_nothing() {
    const OUTAGE_ATTEMPTS: usize = 5;
    const QUEUED: usize = 10;
    let emulator = TestEmulator::start().await;
    let (subscriber, _subscriber_events) = emulator.connect("resets-sub").await;
    let subscription =
        common::within("subscribe", subscriber.subscribe("resets/t", QoS::AtLeastOnce))
            .await
            .unwrap();
    let received = count_ids(subscription, QUEUED, common::WAIT);

    let proxy = proxy_for(&emulator).await;
    let mut config = via(&proxy, emulator.config("resets-pub"));
    config.reconnect = fast_policy();
    let (publisher, mut events) =
        common::within("connect", Client::connect(&config)).await.unwrap();

    // Sent but never acknowledged: the link swallows them, then goes down for good.
    proxy.set_faults(Faults { black_hole: true, ..Faults::default() });
    let mut deliveries = Vec::new();
    for id in 0..QUEUED {
        deliveries
            .push(publisher.publish("resets/t", QoS::AtLeastOnce, payload(id)).await.unwrap());
    }
    proxy.set_faults(Faults { cut_at_byte: Some((1, 100)), ..Faults::default() });
    proxy.cut_all();

    let mut causes = Vec::new();
    while causes.len() < OUTAGE_ATTEMPTS {
        match common::within("reconnect attempts", events.recv()).await.unwrap() {
            iot443::Event::Reconnecting { cause, .. } => causes.push(cause),
            iot443::Event::DeadLettered { topic, reason } => {
                panic!("{topic} set aside during a network outage: {reason}")
            }
            _ => {}
        }
    }
    proxy.set_faults(Faults::default());
    for (id, delivery) in deliveries.into_iter().enumerate() {
        if let Err(error) = common::within("PUBACK", delivery).await {
            panic!("message {id} was not delivered: {error}; causes: {causes:#?}");
        }
    }
    let tally = received.await.unwrap();
    assert!(tally.is_complete(), "missing {:?}", tally.missing(QUEUED));
    assert!(
        causes.iter().all(|cause| cause.starts_with("network")),
        "a reset is the network: {causes:#?}"
    );
    println!(
        "resets: {} connections cut by the proxy, {QUEUED} of {QUEUED} delivered, {} \
         duplicates; first causes: {:?}",
        proxy.stats().cuts,
        tally.duplicates(),
        &causes[..2]
    );
    common::within("disconnect", publisher.disconnect()).await.unwrap();
    common::within("disconnect", subscriber.disconnect()).await.unwrap();
    proxy.stop().await;
}
