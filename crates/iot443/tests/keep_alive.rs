#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Keep-alive against a scripted endpoint, in virtual time: an idle client pings every
//! keep-alive interval; a black hole (the endpoint stops answering) is noticed exactly at
//! keep-alive + ping timeout, and the QoS 1 message published into it is sent again, with DUP,
//! over the next connection.

mod common;

use common::scripted::{self, Peer};
use iot443::QoS;
use iot443_proto::codec::Packet;
use iot443_test_support::packets::{puback, publish_fields};
use std::time::Duration;
use tokio::time::Instant;

const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// The session's default ping timeout (`SessionConfig::ping_timeout`).
const PING_TIMEOUT: Duration = Duration::from_secs(5);

fn config(client_id: &str) -> iot443::Config {
    let mut config = scripted::config(client_id);
    config.keep_alive = KEEP_ALIVE;
    // Only the keep-alive decides here.
    config.ack_timeout = Duration::ZERO;
    config
}

#[tokio::test(start_paused = true)]
async fn an_idle_client_pings_every_keep_alive_interval() {
    let (_client, _events, _endpoint, mut peer) = scripted::connect(&config("idle")).await;
    let started = Instant::now();
    for n in 1..=5u32 {
        assert_eq!(peer.expect().await, Packet::PingReq);
        assert_eq!(started.elapsed(), KEEP_ALIVE * n, "PINGREQ {n} on time");
        peer.send(&Packet::PingResp).await;
    }
}

/// Reads everything until the client closes the connection, answering nothing: a black hole.
async fn swallow_until_closed(peer: &mut Peer) -> Vec<Packet> {
    let mut swallowed = Vec::new();
    while let Some(packet) = peer.next().await {
        swallowed.push(packet);
    }
    swallowed
}

#[tokio::test(start_paused = true)]
async fn a_black_hole_is_noticed_at_keep_alive_plus_ping_timeout_and_the_message_is_resent() {
    let (client, mut events, mut endpoint, mut peer) = scripted::connect(&config("holed")).await;
    let started = Instant::now();
    let delivery = client.publish("t/x", QoS::AtLeastOnce, "into the hole").await.unwrap();

    let swallowed = swallow_until_closed(&mut peer).await;
    let noticed_after = started.elapsed();
    assert_eq!(noticed_after, KEEP_ALIVE + PING_TIMEOUT, "noticed exactly when due");
    assert!(swallowed.contains(&Packet::PingReq), "{swallowed:?}");
    let cause = common::events::next_reconnecting(&mut events).await;
    assert!(cause.contains("PINGRESP"), "the keep-alive noticed it: {cause}");
    assert!(!cause.starts_with("refused"), "a dead link is the network: {cause}");

    let mut again = endpoint.accept().await;
    again.accept_connect().await;
    let publish = again.expect_not_ping().await;
    let (topic, packet_id, dup, payload) = publish_fields(&publish).expect("the publish again");
    assert_eq!((topic, payload), ("t/x", &b"into the hole"[..]));
    assert!(dup, "sent again with DUP");
    again.send(&puback(packet_id.unwrap())).await;
    delivery.await.expect("delivered after the reconnect");
}
