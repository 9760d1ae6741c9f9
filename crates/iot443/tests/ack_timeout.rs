#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Bounded waits for answers, against a scripted endpoint in virtual time. AWS IoT Core sends
//! no acknowledgement for an operation it throttles (MQTT 3.1.1), so nothing waits for ever:
//!
//! * a SUBSCRIBE without SUBACK fails after the acknowledgement timeout, and the connection
//!   stays;
//! * a SUBACK with an unknown packet id is logged and ignored, and the real one is still
//!   awaited;
//! * a QoS 1 PUBLISH without PUBACK ends the connection, is sent again (DUP) over the next one
//!   and delivered.

mod common;

use common::scripted::{self, Peer};
use iot443::{ClientError, QoS};
use iot443_test_support::packets::{puback, publish_fields, suback};
use std::time::Duration;
use tokio::time::Instant;

const ACK_TIMEOUT: Duration = Duration::from_secs(20);

fn config(client_id: &str) -> iot443::Config {
    let mut config = scripted::config(client_id);
    config.ack_timeout = ACK_TIMEOUT;
    config
}

#[tokio::test(start_paused = true)]
async fn a_subscribe_without_suback_fails_after_the_ack_timeout_and_the_connection_stays() {
    let (client, _events, _endpoint, mut peer) = scripted::connect(&config("no-suback")).await;
    let started = Instant::now();
    let subscribing = client.subscribe("a/#", QoS::AtLeastOnce);
    let serving = async {
        peer.expect_subscribe().await;
        peer
    };
    let (result, mut peer) = tokio::join!(subscribing, serving);
    let waited = started.elapsed();

    let error = result.expect_err("no SUBACK: the subscribe fails");
    let ClientError::NotAcknowledged { request, after, .. } = &error else {
        panic!("expected NotAcknowledged, got {error:?}");
    };
    assert_eq!(*after, ACK_TIMEOUT);
    assert!(request.contains("a/#"), "{request}");
    assert_eq!(error.kind().exit_code(), 4);
    assert!(waited >= ACK_TIMEOUT, "failed after {waited:?} of virtual time");

    // The connection is still the same one: a publish goes through it.
    let delivery = client.publish("a/b", QoS::AtLeastOnce, "still here").await.unwrap();
    let publish = peer.expect_not_ping().await;
    let (_, packet_id, dup, _) = publish_fields(&publish).unwrap();
    assert!(!dup);
    peer.send(&puback(packet_id.unwrap())).await;
    delivery.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_suback_with_an_unknown_packet_id_is_ignored_and_the_real_one_is_awaited() {
    let (client, _events, _endpoint, mut peer) = scripted::connect(&config("odd-suback")).await;
    let subscribing = client.subscribe("a/#", QoS::AtLeastOnce);
    let serving = async {
        let id = peer.expect_subscribe().await;
        peer.send(&suback(id.wrapping_add(100).max(1), &[QoS::AtLeastOnce])).await;
        // Some virtual time later, within the bound, the real answer.
        tokio::time::sleep(ACK_TIMEOUT / 2).await;
        peer.send(&suback(id, &[QoS::AtLeastOnce])).await;
        peer
    };
    let (result, _peer) = tokio::join!(subscribing, serving);
    let subscription = result.expect("the real SUBACK answers the subscribe");
    assert_eq!(subscription.granted_qos(), [QoS::AtLeastOnce]);
}

/// Serves one connection: answers PINGREQs, returns the first PUBLISH.
async fn next_publish(peer: &mut Peer) -> (u16, bool, Vec<u8>) {
    let packet = peer.expect_not_ping().await;
    let (_, packet_id, dup, payload) = publish_fields(&packet).expect("a PUBLISH");
    (packet_id.expect("QoS 1"), dup, payload.to_vec())
}

#[tokio::test(start_paused = true)]
async fn a_publish_left_without_puback_is_sent_again_over_a_new_connection_and_delivered() {
    let (client, mut events, mut endpoint, mut peer) =
        scripted::connect(&config("no-puback")).await;
    let delivery = client.publish("t/x", QoS::AtLeastOnce, "m").await.unwrap();
    let (first_id, dup, payload) = next_publish(&mut peer).await;
    assert!(!dup);
    assert_eq!(payload, b"m");

    // No PUBACK: after the acknowledgement timeout the client drops this connection itself.
    let started = Instant::now();
    assert_eq!(peer.next().await, None, "the client closes the unanswered connection");
    assert!(started.elapsed() >= ACK_TIMEOUT - Duration::from_millis(1));
    let cause = common::events::next_reconnecting(&mut events).await;
    assert!(cause.contains("PUBACK"), "{cause}");

    let mut again = endpoint.accept().await;
    again.accept_connect().await;
    let (id, dup, payload) = next_publish(&mut again).await;
    assert!(dup, "the re-sent PUBLISH carries DUP");
    assert_eq!((id, payload.as_slice()), (first_id, &b"m"[..]));
    again.send(&puback(id)).await;
    delivery.await.expect("delivered over the new connection");
}

#[tokio::test(start_paused = true)]
async fn a_publish_the_endpoint_never_acknowledges_ends_in_the_dead_letters_after_k_tries() {
    let mut config = config("never-acked");
    config.reconnect.refusals_before_dead_letter = 3;
    let (client, mut events, mut endpoint, mut peer) = scripted::connect(&config).await;
    let delivery = client.publish("t/never", QoS::AtLeastOnce, "m").await.unwrap();
    let mut tries = 0;
    loop {
        let (_, dup, _) = next_publish(&mut peer).await;
        assert_eq!(dup, tries > 0, "DUP on every try after the first");
        tries += 1;
        assert_eq!(peer.next().await, None, "the client gives the connection up");
        if tries == 3 {
            break;
        }
        peer = endpoint.accept().await;
        peer.accept_connect().await;
    }
    let error = delivery.await.expect_err("given up after three tries");
    assert!(matches!(error, ClientError::DeadLettered { .. }), "{error:?}");
    let dropped = common::events::next_event(&mut events, |event| match event {
        iot443::Event::DeadLettered { topic, reason } => Some((topic, reason)),
        _ => None,
    })
    .await;
    assert_eq!(dropped.0, "t/never");
    assert!(dropped.1.contains("3 times"), "{}", dropped.1);
}
