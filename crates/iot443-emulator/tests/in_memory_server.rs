//! The emulator's server over in-memory streams in paused tokio time: its keep-alive and
//! CONNECT timers run in virtual time, and every close is reported with its typed reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use iot443_emulator::broker::{BrokerConfig, CloseReason, Policy};
use iot443_emulator::server::InMemoryEmulator;
use iot443_proto::codec::{ConnectReturnCode, Packet};
use iot443_test_support::RawMqtt;
use iot443_test_support::packets::{connack, connack_refused, connect};
use std::time::Duration;
use tokio::io::DuplexStream;
use tokio::time::{Instant, timeout};

const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// IoT Core's rule: 1.5 × keep-alive of silence closes the connection.
const GRACE: Duration = Duration::from_secs(45);
/// Upper bound for a close that must come, in virtual time.
const WAIT: Duration = Duration::from_secs(3_600);

/// Connects `client_id` with a keep-alive of 30 s and takes the CONNACK.
async fn connected(emulator: &InMemoryEmulator, client_id: &str) -> RawMqtt<DuplexStream> {
    let mut client = RawMqtt::new(emulator.connect(Some("device")));
    client.send(&connect(client_id, 30)).await;
    assert_eq!(client.recv().await, Some(connack(false)));
    client
}

/// Asserts that `waited` is `expected`, up to the timer wheel's millisecond.
#[track_caller]
fn assert_about(waited: Duration, expected: Duration) {
    let late = waited.checked_sub(expected).unwrap_or_else(|| panic!("{waited:?} < {expected:?}"));
    assert!(late <= Duration::from_millis(1), "{waited:?}, expected {expected:?}");
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_closed_after_one_and_a_half_keep_alives() {
    let mut emulator = InMemoryEmulator::start(BrokerConfig::default());
    let mut client = connected(&emulator, "dev").await;
    let silent_since = Instant::now();

    let closed = timeout(WAIT, emulator.next_close()).await.expect("a close");

    assert_about(silent_since.elapsed(), GRACE);
    assert_eq!(closed.reason, CloseReason::KeepAliveTimeout { keep_alive_secs: 30 });
    assert_eq!(closed.client_id.as_deref(), Some("dev"));
    assert_eq!(closed.dropped, 0);
    assert_eq!(client.recv().await, None, "the emulator ended the stream");
    emulator.stop().await;
}

#[tokio::test(start_paused = true)]
async fn pingreqs_keep_a_client_open_for_ten_keep_alives() {
    let mut emulator = InMemoryEmulator::start(BrokerConfig::default());
    let mut client = connected(&emulator, "dev").await;

    for _ in 0..10 {
        tokio::time::sleep(KEEP_ALIVE).await;
        client.send(&Packet::PingReq).await;
        assert_eq!(client.recv().await, Some(Packet::PingResp));
    }
    assert_eq!(emulator.closes(), [], "no keep-alive timeout in 10 × keep-alive");

    // The timer still runs: from the last PINGREQ, 1.5 × keep-alive of silence closes it.
    let last_ping = Instant::now();
    let closed = timeout(WAIT, emulator.next_close()).await.expect("a close");
    assert_about(last_ping.elapsed(), GRACE);
    assert_eq!(closed.reason, CloseReason::KeepAliveTimeout { keep_alive_secs: 30 });
    emulator.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_without_connect_is_closed_after_the_connect_timeout() {
    let mut config = BrokerConfig::default();
    config.connect_timeout = Duration::from_secs(7);
    let mut emulator = InMemoryEmulator::start(config);
    let mut client = RawMqtt::new(emulator.connect(None));
    let opened = Instant::now();

    let closed = timeout(WAIT, emulator.next_close()).await.expect("a close");

    assert_about(opened.elapsed(), Duration::from_secs(7));
    assert_eq!((closed.client_id, closed.reason), (None, CloseReason::ConnectTimeout));
    assert_eq!(client.recv().await, None);
    emulator.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_common_name_given_is_what_the_policy_sees() {
    let policy = r#"{"statements": [{"common_name": "device", "client_ids": ["dev"]}]}"#;
    let mut config = BrokerConfig::default();
    config.policy = Some(Policy::from_json(policy).unwrap());
    let mut emulator = InMemoryEmulator::start(config);
    let _allowed = connected(&emulator, "dev").await;

    let mut other = RawMqtt::new(emulator.connect(Some("other")));
    other.send(&connect("dev", 30)).await;
    assert_eq!(other.recv().await, Some(connack_refused(ConnectReturnCode::NOT_AUTHORIZED)));
    assert_eq!(other.recv().await, None);

    let closed = timeout(WAIT, emulator.next_close()).await.expect("a close");
    let denied = CloseReason::PolicyDenied { action: "connect", resource: "dev".into() };
    assert_eq!(closed.reason, denied);
    emulator.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_hangs_up_is_reported_as_a_lost_connection() {
    let mut emulator = InMemoryEmulator::start(BrokerConfig::default());
    let mut orderly = connected(&emulator, "orderly").await;
    orderly.send(&Packet::Disconnect).await;
    let closed = timeout(WAIT, emulator.next_close()).await.expect("a close");
    assert_eq!(closed.reason, CloseReason::ClientDisconnected);

    let lost = connected(&emulator, "lost").await;
    drop(lost);
    let closed = timeout(WAIT, emulator.next_close()).await.expect("a close");
    assert_eq!(closed.client_id.as_deref(), Some("lost"));
    assert_eq!(closed.reason, CloseReason::TransportClosed);
    assert_eq!(emulator.closes().len(), 2);
    emulator.stop().await;
}
