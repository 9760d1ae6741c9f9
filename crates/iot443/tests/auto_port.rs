#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! `port = "auto"` against the emulator: the MQTTS listener plays 8883 and the ALPN listener
//! plays 443. A black hole (TCP accepted, nothing forwarded) or a closed port stands for a
//! firewall; the state file lives in a temporary folder.

mod common;

use common::events::next_connected;

use common::{TestEmulator, within};
use iot443::config::AutoPort;
use iot443::{Client, ClientError, Config, ErrorKind, PortChoice, QoS};
use iot443_test_support::fault_proxy::{FaultProxy, Faults};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A port on 127.0.0.1 where nothing listens (connections are refused at once).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A stand-in for a port whose packets a firewall drops: TCP is accepted, nothing comes back.
async fn black_hole(emulator: &TestEmulator) -> FaultProxy {
    let proxy = FaultProxy::start(emulator.emulator.mqtts_addr.unwrap()).await.unwrap();
    proxy.set_faults(Faults { black_hole: true, ..Faults::default() });
    proxy
}

fn auto(mqtts_port: u16, alpn_port: u16, state_file: &Path) -> AutoPort {
    let mut auto = AutoPort::default();
    auto.mqtts_port = mqtts_port;
    auto.alpn_port = alpn_port;
    auto.state_file = Some(state_file.to_owned());
    // The certificate roads alone (the emulator's iot443.toml names its AWS credentials, which
    // would let the WebSocket road join: tests/auto_websocket.rs is about that).
    auto.websocket = false;
    auto
}

fn config_with(emulator: &TestEmulator, client_id: &str, auto: AutoPort) -> Config {
    let mut config = emulator.config(client_id);
    config.alpn = None;
    config.connect_timeout = Duration::from_secs(2);
    config.auto_port = Some(auto);
    config.validate().unwrap();
    config
}

fn remembered_port(state_file: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(state_file).ok()?;
    let line = text.lines().find(|line| line.starts_with("localhost "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Writes a state file that remembers `port` for `localhost`, raced `ago`.
fn write_memory(state: &Path, port: u16, ago: Duration) {
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let at = (now - ago).as_secs();
    std::fs::write(state, format!("# written by the test\nlocalhost {port} {at}\n")).unwrap();
}

fn state_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iot443/ports");
    (dir, path)
}

async fn connect(config: &Config) -> (Client, iot443::Events) {
    within("connecting with port = auto", Client::connect(config)).await.unwrap()
}

#[tokio::test]
async fn with_8883_silent_443_wins_the_race_and_the_next_start_goes_straight_to_it() {
    let emulator = TestEmulator::start().await;
    let hole = black_hole(&emulator).await;
    let (_dir, state) = state_file();
    let config =
        config_with(&emulator, "race-1", auto(hole.addr().port(), emulator.alpn_port(), &state));

    let (client, _events) = connect(&config).await;
    let info = client.connection_info().clone();
    assert_eq!(info.port, emulator.alpn_port());
    assert_eq!(info.alpn.as_deref(), Some("x-amzn-mqtt-ca"));
    let Some(PortChoice::Raced { others, .. }) = &info.port_choice else {
        panic!("not raced: {info:?}")
    };
    assert!(others.iter().any(|o| o.contains(&hole.addr().port().to_string())), "{others:?}");
    assert!(info.summary().contains("port auto: raced"), "{}", info.summary());
    assert_eq!(remembered_port(&state), Some(emulator.alpn_port()));
    client.publish("race/1", QoS::AtLeastOnce, "through 443").await.unwrap().await.unwrap();
    client.disconnect().await.unwrap();
    let attempts_on_8883 = hole.stats().accepted;
    assert_eq!(attempts_on_8883, 1, "the race tried 8883 first");

    let (client, _events) = connect(&config).await;
    let info = client.connection_info().clone();
    assert_eq!(info.port, emulator.alpn_port());
    assert!(
        matches!(info.port_choice, Some(PortChoice::Remembered { .. })),
        "{:?}",
        info.port_choice
    );
    assert_eq!(hole.stats().accepted, attempts_on_8883, "the second start did not try 8883");
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn when_both_ports_answer_8883_wins_and_443_is_not_even_tried() {
    let emulator = TestEmulator::start().await;
    let front_of_443 = FaultProxy::start(emulator.emulator.alpn_addr).await.unwrap();
    let (_dir, state) = state_file();
    let mut auto = auto(emulator.mqtts_port(), front_of_443.addr().port(), &state);
    // Far longer than a loopback handshake: 443 starts only if 8883 fails.
    auto.stagger = Duration::from_secs(60);
    let config = config_with(&emulator, "race-2", auto);

    let (client, _events) = connect(&config).await;
    let info = client.connection_info().clone();
    assert_eq!(info.port, emulator.mqtts_port());
    assert_eq!(info.alpn, None, "no ALPN on 8883");
    let Some(PortChoice::Raced { others, .. }) = &info.port_choice else { panic!("{info:?}") };
    assert!(others.iter().any(|o| o.ends_with("not tried")), "{others:?}");
    assert_eq!(front_of_443.stats().accepted, 0);
    assert_eq!(remembered_port(&state), Some(emulator.mqtts_port()));
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_refused_8883_starts_443_at_once_instead_of_after_the_stagger() {
    let emulator = TestEmulator::start().await;
    let (_dir, state) = state_file();
    let mut auto = auto(closed_port(), emulator.alpn_port(), &state);
    // The test's own deadline (`within`) is shorter: only an immediate start can pass.
    auto.stagger = Duration::from_secs(3_600);
    let config = config_with(&emulator, "race-3", auto);

    let (client, _events) = connect(&config).await;
    let info = client.connection_info().clone();
    assert_eq!(info.port, emulator.alpn_port());
    let Some(PortChoice::Raced { others, .. }) = &info.port_choice else { panic!("{info:?}") };
    assert!(others.iter().any(|o| o.contains("TCP")), "the refusal is reported: {others:?}");
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_remembered_port_that_fails_is_raced_again_and_the_memory_updated() {
    let emulator = TestEmulator::start().await;
    let (_dir, state) = state_file();
    let gone = closed_port();
    write_memory(&state, gone, Duration::ZERO);
    let config = config_with(&emulator, "race-4", auto(gone, emulator.alpn_port(), &state));

    let (client, _events) = connect(&config).await;
    assert!(matches!(client.connection_info().port_choice, Some(PortChoice::Raced { .. })));
    assert_eq!(remembered_port(&state), Some(emulator.alpn_port()));
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_memory_older_than_recheck_after_is_raced_again() {
    let emulator = TestEmulator::start().await;
    let (_dir, state) = state_file();
    // Remembered a day and a second ago: 443. Now 8883 answers, and wins the new race.
    write_memory(&state, emulator.alpn_port(), Duration::from_secs(86_401));
    let config =
        config_with(&emulator, "race-5", auto(emulator.mqtts_port(), emulator.alpn_port(), &state));

    let (client, _events) = connect(&config).await;
    assert_eq!(client.connection_info().port, emulator.mqtts_port());
    assert!(matches!(client.connection_info().port_choice, Some(PortChoice::Raced { .. })));
    assert_eq!(remembered_port(&state), Some(emulator.mqtts_port()));
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn when_no_port_answers_the_error_lists_each_with_a_hint() {
    let emulator = TestEmulator::start().await;
    let (_dir, state) = state_file();
    let (first, second) = (closed_port(), closed_port());
    let config = config_with(&emulator, "race-6", auto(first, second, &state));

    let error = within("the race to fail", Client::connect(&config)).await.unwrap_err();
    let ClientError::AllPortsFailed { failures, .. } = &error else { panic!("{error:?}") };
    let roads: Vec<&str> = failures.iter().map(|(road, _)| road.as_str()).collect();
    assert_eq!(roads, vec![format!("port {first}"), format!("port {second}")]);
    assert_eq!(error.kind(), ErrorKind::Connection);
    let text = error.to_string();
    assert!(text.contains("proxy") && text.contains("iot443 doctor"), "{text}");
    assert!(!state.exists(), "nothing is remembered when nothing won");
}

#[tokio::test]
async fn an_expired_certificate_is_reported_once_before_any_port_is_tried() {
    let emulator = TestEmulator::start().await;
    let hole = black_hole(&emulator).await;
    let (_dir, state) = state_file();
    let now = time::OffsetDateTime::now_utc();
    let (expired, _device) = emulator.config_with_device_valid(
        "expired",
        "race-6b",
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    );
    let mut config =
        config_with(&emulator, "race-6b", auto(hole.addr().port(), emulator.alpn_port(), &state));
    config.certificate = expired.certificate;
    config.private_key = expired.private_key;

    let error = within("the credentials check", Client::connect(&config)).await.unwrap_err();
    assert!(matches!(error, ClientError::Config(_)), "{error:?}");
    assert!(error.to_string().contains("expired"), "{error}");
    assert_eq!(hole.stats().accepted, 0, "no connection was opened");
}

#[tokio::test]
async fn a_client_on_port_auto_reconnects_through_the_race() {
    let emulator = TestEmulator::start().await;
    let front_of_443 = FaultProxy::start(emulator.emulator.alpn_addr).await.unwrap();
    let hole = black_hole(&emulator).await;
    let (_dir, state) = state_file();
    let mut config = config_with(
        &emulator,
        "race-7",
        auto(hole.addr().port(), front_of_443.addr().port(), &state),
    );
    config.reconnect = common::faults::fast_policy();

    let (client, mut events) = connect(&config).await;
    assert_eq!(client.connection_info().port, front_of_443.addr().port());
    let first = within("the first Connected event", next_connected(&mut events)).await;
    assert!(matches!(first.port_choice, Some(PortChoice::Raced { .. })), "{first:?}");
    front_of_443.cut_all();
    let reconnected = within("a reconnect", next_connected(&mut events)).await;
    assert_eq!(reconnected.port, front_of_443.addr().port());
    assert!(
        matches!(reconnected.port_choice, Some(PortChoice::Remembered { .. })),
        "the reconnect used the remembered port: {:?}",
        reconnected.port_choice
    );
    client.publish("race/7", QoS::AtLeastOnce, "after the cut").await.unwrap().await.unwrap();
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_refused_connack_does_not_win_the_race_and_is_not_remembered() {
    // The policy lets only `allowed-*` client ids connect: both ports answer CONNACK with
    // "not authorized", which is each port's failure, not a winner.
    let policy = r#"{"statements": [{"common_name": "*", "client_ids": ["allowed-*"]}]}"#;
    let emulator = TestEmulator::start_with(|options| {
        options.broker.policy = Some(iot443_emulator::broker::Policy::from_json(policy).unwrap());
    })
    .await;
    let (_dir, state) = state_file();
    let config = config_with(
        &emulator,
        "race-refused",
        auto(emulator.mqtts_port(), emulator.alpn_port(), &state),
    );

    let error = within("the race to fail", Client::connect(&config)).await.unwrap_err();
    let ClientError::AllPortsFailed { failures, .. } = &error else { panic!("{error:?}") };
    assert_eq!(failures.len(), 2, "{error}");
    assert!(
        failures.iter().all(|(_, f)| matches!(f, ClientError::ConnectionRefused { .. })),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth);
    assert!(!state.exists(), "a refusal is not remembered as the way in");
}
