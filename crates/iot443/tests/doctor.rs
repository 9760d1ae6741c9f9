#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! `iot443 doctor` (`diagnose`) against the emulator: every step passes when all is right, and
//! each classic mistake fails at its own step with its own hint.

mod common;

use common::{TestEmulator, within};
use iot443::diagnose::{Report, STEPS, diagnose};
use iot443_emulator::pki::{DeviceKeyKind, Pki, PkiOptions};

/// Asserts that the report fails first at `step`, with a hint containing `hint`, that every
/// step before it ran and passed, and that no step after `tcp` ran past the failure.
fn assert_fails_at(report: &Report, step: &str, hint: &str) {
    let (index, failed) =
        report.first_failure().unwrap_or_else(|| panic!("no failure: {report:#?}"));
    assert_eq!(failed.name, step, "{report:#?}");
    assert_eq!(STEPS[index], step);
    let before: Vec<&str> = report.steps.iter().take(index).map(|s| s.name).collect();
    assert_eq!(before, STEPS[..index].to_vec(), "every earlier step ran: {report:#?}");
    assert!(report.steps.iter().take(index).all(|s| s.ok), "{report:#?}");
    let got = failed.hint.as_deref().unwrap_or_default();
    assert!(got.contains(hint), "hint {got:?} should mention {hint:?}");
    assert!(!report.passed());
    let tcp = STEPS.iter().position(|name| *name == "tcp").unwrap();
    assert!(
        report.steps.iter().filter(|s| s.name != "roads").all(|s| s.index() <= index.max(tcp)),
        "a step the failure makes meaningless ran: {report:#?}"
    );
}

#[tokio::test]
async fn every_step_passes_against_the_emulator() {
    let emulator = TestEmulator::start().await;
    let config = emulator.config("doctor-ok");

    let report = within("diagnose", diagnose(&config)).await;
    let names: Vec<&str> = report.steps.iter().map(|s| s.name).collect();
    assert_eq!(names, STEPS.to_vec(), "{report:#?}");
    assert!(report.passed(), "{report:#?}");
    assert!(report.first_failure().is_none());
    for step in &report.steps {
        assert!(step.hint.is_none(), "{step:?}");
        assert!(!step.detail.is_empty(), "{step:?}");
    }
    let detail = |name: &str| &report.steps.iter().find(|s| s.name == name).unwrap().detail;
    assert!(detail("files").contains("EC P-256"), "{}", detail("files"));
    assert!(detail("dns").contains("127.0.0.1"), "{}", detail("dns"));
    let tls = detail("tls");
    assert!(tls.contains("ALPN offered x-amzn-mqtt-ca, selected x-amzn-mqtt-ca"), "{tls}");
    assert!(tls.contains("SNI localhost"), "{tls}");
    assert!(tls.contains("TLS1."), "{tls}");
    assert!(tls.contains("server chain: subject"), "{tls}");
    assert!(detail("pubsub").contains("iot443/doctor/doctor-ok"), "{}", detail("pubsub"));
    // Every road of the emulator's 443-style listener works: certificates, SigV4, HTTPS.
    let roads = detail("roads");
    for road in ["tls: works (CONNACK", "websocket: works (CONNACK", "https: works (POST"] {
        assert!(roads.contains(road), "{road:?} in {roads}");
    }
    assert!(roads.contains("over wss://localhost:"), "{roads}");
}

#[tokio::test]
async fn no_alpn_on_the_alpn_listener_fails_at_tls_naming_x_amzn_mqtt_ca() {
    // The field-reported alert mode (the default serves the WebSocket road: next test).
    let emulator = TestEmulator::start_with(|options| {
        options.missing_alpn = iot443_emulator::tls::MissingAlpn::Alert;
    })
    .await;
    let mut config = emulator.config("doctor-no-alpn");
    config.alpn = None;
    assert_ne!(config.port, 443);
    assert_eq!(config.alpn_protocol(), None);

    let report = within("diagnose", diagnose(&config)).await;
    assert_fails_at(&report, "tls", "ALPN x-amzn-mqtt-ca missing or refused");
    let tls = &report.steps[4];
    assert!(tls.detail.contains("no_application_protocol"), "{}", tls.detail);
    let after: Vec<&str> = report.steps.iter().skip(5).map(|s| s.name).collect();
    assert_eq!(after, ["roads"], "after tls only the roads step runs: {report:#?}");
}

#[tokio::test]
async fn no_alpn_on_the_default_alpn_listener_passes_tls_and_fails_at_mqtt_at_once() {
    // As on IoT Core, no ALPN reaches the HTTP server of the WebSocket road: TLS completes
    // without a client certificate, and MQTT's CONNECT gets an HTTP 400, not a hang.
    let emulator = TestEmulator::start().await;
    let mut config = emulator.config("doctor-no-alpn-http");
    config.alpn = None;
    config.connect_timeout = std::time::Duration::from_secs(30);

    let report = within("diagnose", diagnose(&config)).await;
    let mqtt = report.steps.iter().find(|s| s.name == "mqtt").expect("an mqtt step");
    assert!(!mqtt.ok, "{report:#?}");
    assert!(report.steps.iter().find(|s| s.name == "tls").is_some_and(|s| s.ok), "{report:#?}");
}

#[tokio::test]
async fn root_ca_of_another_endpoint_fails_at_tls_naming_the_root_ca_file() {
    let emulator = TestEmulator::start().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let other = Pki::load_or_create(elsewhere.path(), &PkiOptions::default()).unwrap();
    let mut config = emulator.config("doctor-wrong-ca");
    config.root_ca = Some(other.dir.join("ca.pem"));

    let report = within("diagnose", diagnose(&config)).await;
    assert_fails_at(&report, "tls", "wrong root CA file (root_ca");
    let hint = report.steps[4].hint.clone().unwrap();
    assert!(hint.contains(&other.dir.join("ca.pem").display().to_string()), "{hint}");
    let after: Vec<&str> = report.steps.iter().skip(5).map(|s| s.name).collect();
    assert_eq!(after, ["roads"], "after tls only the roads step runs: {report:#?}");
}

#[tokio::test]
async fn expired_device_certificate_fails_at_files_with_renew_hint() {
    let emulator = TestEmulator::start().await;
    let now = time::OffsetDateTime::now_utc();
    let (config, _) = emulator.config_with_device_valid(
        "expired",
        "doctor-expired",
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    );

    let report = within("diagnose", diagnose(&config)).await;
    assert_fails_at(&report, "files", "expired: renew it");
    let files = &report.steps[1];
    assert!(files.detail.contains("expired on"), "{}", files.detail);
    // The network steps that need no credentials still run, and pass; after them only the
    // roads, where the certificate roads are not tried and the WebSocket road (the emulator's
    // AWS credentials, named by its iot443.toml) works.
    let names: Vec<&str> = report.steps.iter().map(|s| s.name).collect();
    assert_eq!(names, ["config", "files", "dns", "tcp", "roads"], "{report:#?}");
    assert!(report.steps[2].ok && report.steps[3].ok, "{report:#?}");
    let roads = &report.steps[4].detail;
    assert!(roads.contains("tls: not tried: the files step failed"), "{roads}");
    assert!(roads.contains("websocket: works"), "{roads}");
    assert!(roads.contains("https: not tried"), "{roads}");
}

#[tokio::test]
async fn key_of_another_device_fails_at_files_naming_the_mismatch() {
    let emulator = TestEmulator::start().await;
    let other = emulator.emulator.pki.issue_device("other", DeviceKeyKind::EcP256).unwrap();
    let mut config = emulator.config("doctor-wrong-key");
    config.private_key = other.private_key_path.clone();

    let report = within("diagnose", diagnose(&config)).await;
    assert_fails_at(&report, "files", "the key file belongs to another certificate");
    assert!(report.steps[1].detail.contains("does not belong to certificate"), "{report:#?}");
    assert!(report.steps.iter().all(|s| s.name != "tls"), "{report:#?}");
}

#[tokio::test]
async fn certificate_expiring_soon_passes_with_a_warning() {
    let emulator = TestEmulator::start().await;
    let now = time::OffsetDateTime::now_utc();
    let (config, _) = emulator.config_with_device_valid(
        "soon",
        "soon",
        now - time::Duration::days(300),
        now + time::Duration::days(10),
    );

    let report = within("diagnose", diagnose(&config)).await;
    let files = &report.steps[1];
    assert!(files.ok, "{report:#?}");
    assert!(files.detail.contains("warning: certificate"), "{}", files.detail);
    assert!(files.detail.contains("expires in"), "{}", files.detail);
}

#[tokio::test]
async fn tls_without_alpn_then_no_connack_fails_at_mqtt_naming_alpn() {
    let emulator = TestEmulator::start_with(|options| {
        options.missing_alpn = iot443_emulator::tls::MissingAlpn::NoConnAck;
    })
    .await;
    let mut config = emulator.config("doctor-no-connack");
    config.alpn = None;
    config.connect_timeout = common::SHORT_CONNECT_TIMEOUT;

    let report = within("diagnose", diagnose(&config)).await;
    assert_fails_at(&report, "mqtt", "no CONNACK → ALPN missing");
    assert!(report.steps[4].detail.contains("ALPN offered none, selected none"), "{report:#?}");
}

fn detail<'a>(report: &'a Report, name: &str) -> &'a str {
    &report.steps.iter().find(|s| s.name == name).unwrap().detail
}

#[tokio::test]
async fn with_port_auto_tcp_and_tls_are_checked_on_both_ports_and_one_is_enough() {
    use iot443::config::AutoPort;
    use iot443_test_support::fault_proxy::{FaultProxy, Faults};
    let emulator = TestEmulator::start().await;
    // 8883 plays a port whose packets a firewall swallows: TCP opens, nothing comes back.
    let hole = FaultProxy::start(emulator.emulator.mqtts_addr.unwrap()).await.unwrap();
    hole.set_faults(Faults { black_hole: true, ..Faults::default() });
    let state = tempfile::tempdir().unwrap();
    let mut auto = AutoPort::default();
    auto.mqtts_port = hole.addr().port();
    auto.alpn_port = emulator.alpn_port();
    auto.state_file = Some(state.path().join("ports"));
    let mut config = emulator.config("doctor-auto");
    config.alpn = None;
    config.connect_timeout = std::time::Duration::from_secs(1);
    config.auto_port = Some(auto);

    let report = within("diagnose", diagnose(&config)).await;
    assert!(report.passed(), "{report:#?}");
    let tcp = detail(&report, "tcp");
    assert!(tcp.contains(&format!("port {}: connected", hole.addr().port())), "{tcp}");
    assert!(tcp.contains(&format!("port {}: connected", emulator.alpn_port())), "{tcp}");
    let tls = detail(&report, "tls");
    assert!(
        tls.contains(&format!("port {}: the handshake timed out", hole.addr().port())),
        "{tls}"
    );
    assert!(tls.contains("ALPN offered x-amzn-mqtt-ca, selected x-amzn-mqtt-ca"), "{tls}");
    assert!(tls.contains("ends at the root"), "{tls}");
    assert!(detail(&report, "mqtt").contains("port auto: raced"), "{}", detail(&report, "mqtt"));
}

#[tokio::test]
async fn through_a_proxy_dns_is_the_proxys_and_tcp_is_a_connect_tunnel() {
    use common::connect_proxy::{Mode, TestProxy};
    let emulator = TestEmulator::start().await;
    let proxy = TestProxy::start(Mode::Open).await;
    let mut config = emulator.config("doctor-proxy");
    config.proxy = Some(iot443::config::ProxyConfig::parse(&proxy.url()).unwrap());

    let report = within("diagnose", diagnose(&config)).await;
    assert!(report.passed(), "{report:#?}");
    assert!(detail(&report, "dns").contains("the proxy resolves localhost"), "{report:#?}");
    let tcp = detail(&report, "tcp");
    assert!(tcp.contains(&format!("through proxy {}", proxy.addr)), "{tcp}");
    assert!(tcp.contains("tunnel open"), "{tcp}");
    assert!(
        proxy.requests().iter().all(|r| r.starts_with("CONNECT localhost:")),
        "{:?}",
        proxy.requests()
    );
    assert!(detail(&report, "mqtt").contains("via proxy"), "{}", detail(&report, "mqtt"));
}

#[tokio::test]
async fn a_proxy_that_refuses_the_tunnel_fails_at_tcp_with_the_proxys_hint() {
    use common::connect_proxy::{Mode, TestProxy};
    let emulator = TestEmulator::start().await;
    let proxy = TestProxy::start(Mode::RequireAuth("Basic dTpw")).await;
    let mut config = emulator.config("doctor-proxy-407");
    config.proxy = Some(iot443::config::ProxyConfig::parse(&proxy.url()).unwrap());

    let report = within("diagnose", diagnose(&config)).await;
    assert_fails_at(&report, "tcp", "credentials");
    assert!(detail(&report, "tcp").contains("407"), "{report:#?}");
}

#[tokio::test]
async fn the_websocket_road_is_checked_with_its_credentials_and_no_certificate() {
    let emulator = TestEmulator::start().await;
    let mut config = emulator.config("doctor-ws");
    config.transport = iot443::config::Transport::WebSocket;
    config.certificate = std::path::PathBuf::new();
    config.private_key = std::path::PathBuf::new();
    config.validate().unwrap();

    let report = within("diagnose", diagnose(&config)).await;
    let names: Vec<&str> = report.steps.iter().map(|s| s.name).collect();
    assert_eq!(names, ["config", "files", "dns", "tcp", "mqtt", "pubsub", "roads"], "{report:#?}");
    assert!(report.passed(), "{report:#?}");
    let detail = |name: &str| &report.steps.iter().find(|s| s.name == name).unwrap().detail;
    assert!(detail("files").contains("no device certificate"), "{}", detail("files"));
    assert!(detail("files").contains("region us-east-1"), "{}", detail("files"));
    assert!(detail("mqtt").contains("over wss://localhost:"), "{}", detail("mqtt"));
    let roads = detail("roads");
    assert!(roads.contains("tls: not tried: no device certificate is configured"), "{roads}");
    assert!(roads.contains("websocket: works"), "{roads}");
}
