#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The outbox's syncs run on a thread of their own: while a commit is held up (a slow disk,
//! here a commit that waits for the test's signal), the client still answers keep-alive and
//! acknowledges the messages it receives; the publish waiting for the disk goes out once the
//! commit is done.

mod common;

use common::scripted;
use iot443::outbox::Outbox;
use iot443::{Client, QoS};
use iot443_proto::codec::Packet;
use iot443_test_support::packets::{puback, publish_fields, publish_qos1};
use std::time::Duration;

/// Short, in real time: the commit is held by a real thread, which a paused clock cannot wait
/// for (it would run ahead while the thread works). Nothing here measures time: the test
/// checks what happens while the commit is held, by order alone.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_slow_commit_delays_neither_keep_alive_nor_other_acknowledgements() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(&dir.path().join("outbox.db")).unwrap();
    // Each commit waits until the test lets it go.
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let (entered, commit_started) = tokio::sync::mpsc::unbounded_channel::<()>();
    outbox.before_commit(move || {
        let _ = entered.send(());
        let _ = gate.recv();
    });
    let mut commit_started = commit_started;

    let mut config = scripted::config("slow-disk");
    config.keep_alive = KEEP_ALIVE;
    let (connector, mut endpoint) = scripted::pipes();
    let connecting = Client::builder(&config).connector(connector).outbox(outbox).connect();
    let accepting = async {
        let mut peer = endpoint.accept().await;
        peer.accept_connect().await;
        peer
    };
    let (connected, mut peer) = tokio::join!(connecting, accepting);
    let (client, _events) = connected.unwrap();

    let subscribing = client.subscribe("in/#", QoS::AtLeastOnce);
    let serving = async {
        peer.grant_subscribe(QoS::AtLeastOnce).await;
    };
    let (subscription, ()) = tokio::join!(subscribing, serving);
    let mut subscription = subscription.unwrap();

    // A QoS 1 publish: its commit starts and is held.
    let queued = client.start_publish("out/x", QoS::AtLeastOnce, "durable", false).await.unwrap();
    commit_started.recv().await.expect("the commit started");

    // Meanwhile: a message from the endpoint is delivered and acknowledged, and the keep-alive
    // goes on for several intervals.
    peer.send(&publish_qos1("in/y", 7, b"while syncing")).await;
    let message = subscription.recv().await.unwrap();
    assert_eq!(&message.payload[..], b"while syncing");
    assert_eq!(peer.expect().await, puback(7), "acknowledged while the commit is held");
    for _ in 0..3 {
        assert_eq!(peer.expect().await, Packet::PingReq, "keep-alive while the commit is held");
        peer.send(&Packet::PingResp).await;
    }

    // The disk is done: the publish is accepted, sent and delivered.
    release.send(()).unwrap();
    let delivery = queued.accepted().await.expect("on disk");
    let publish = loop {
        match peer.expect().await {
            Packet::PingReq => peer.send(&Packet::PingResp).await,
            packet => break packet,
        }
    };
    let (topic, packet_id, _, payload) = publish_fields(&publish).expect("the publish");
    assert_eq!((topic, payload), ("out/x", &b"durable"[..]));
    peer.send(&puback(packet_id.unwrap())).await;
    delivery.await.expect("acknowledged");
    drop(release);
}
