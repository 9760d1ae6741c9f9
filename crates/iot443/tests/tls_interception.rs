#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! A TLS-inspecting (intercepting) proxy in the way, named: an in-test "interceptor" presents a
//! certificate for the endpoint issued by "Corporate TLS Inspection CA", or completes the
//! handshake without the ALPN protocol offered. The client's error and `iot443 doctor` say that
//! interception is the probable cause, name the issuer, and say what works; a plain wrong
//! `root_ca` is still reported as such.

mod common;

use common::tls_server::{ServerSetup, TestCa, TestTlsServer, pinned_proxy};
use common::{SHORT_CONNECT_TIMEOUT, within};
use iot443::config::ProxyConfig;
use iot443::diagnose::diagnose;
use iot443::{Client, ClientError, Config, ErrorKind};
use iot443_emulator::pki::{Pki, PkiOptions};

const AWS_ENDPOINT: &str = "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com";
const INSPECTION_CA: &str = "Corporate TLS Inspection CA";

/// A device's files (from an emulator PKI, whose CA is not the interceptor's) and a
/// configuration for `host`, port `port`, offering ALPN `x-amzn-mqtt-ca`.
struct Device {
    pki: Pki,
    dir: tempfile::TempDir,
}

impl Device {
    fn new() -> Device {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
        Device { pki, dir }
    }

    fn config(&self, host: &str, port: u16) -> Config {
        let mut config = Config::load(&self.pki.config_path()).unwrap();
        config.endpoint = host.to_owned();
        config.port = port;
        config.auto_port = None;
        config.alpn = Some(Config::ALPN_MQTT_CA.to_owned());
        config.connect_timeout = SHORT_CONNECT_TIMEOUT;
        config.reconnect.enabled = false;
        config
    }
}

/// The interceptor: a certificate for `host` issued by [`INSPECTION_CA`], no client
/// certificate asked for, and ALPN `x-amzn-mqtt-ca` selected only when `keep_alpn`.
async fn interceptor(ca: &TestCa, host: &str, keep_alpn: bool) -> TestTlsServer {
    let (chain, key) = ca.issue_server(host);
    let alpn = if keep_alpn { vec![b"x-amzn-mqtt-ca".to_vec()] } else { Vec::new() };
    TestTlsServer::start(ServerSetup { chain, key, alpn, client_roots: None }).await
}

fn tls_error(error: &ClientError) -> (&str, &str) {
    match error {
        ClientError::Tls { detail, hint, .. } => (detail, hint),
        other => panic!("expected ClientError::Tls, got {other:?}"),
    }
}

#[tokio::test]
async fn with_the_emulators_root_ca_the_error_names_the_interceptor_and_what_works() {
    let device = Device::new();
    let ca = TestCa::new(INSPECTION_CA, "Example Corp");
    let server = interceptor(&ca, "localhost", true).await;
    let config = device.config("localhost", server.addr.port());
    assert!(config.root_ca.is_some(), "the emulator's iot443.toml names its ca.pem");

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let (detail, hint) = tls_error(&error);
    assert!(detail.contains("not signed by a trusted root"), "{detail}");
    assert!(detail.contains(INSPECTION_CA), "the facts name the issuer: {detail}");
    assert!(detail.contains("does not end at an Amazon root"), "{detail}");
    assert!(hint.contains("TLS-inspecting (intercepting) proxy is probably in the way"), "{hint}");
    assert!(hint.contains(INSPECTION_CA), "{hint}");
    assert!(hint.contains("Example Corp"), "{hint}");
    assert!(hint.contains("transport = \"websocket\""), "{hint}");
    assert!(hint.contains("root_ca"), "{hint}");
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth);
}

#[tokio::test]
async fn an_amazonaws_endpoint_with_the_mozilla_roots_names_the_interceptor_and_the_bypass() {
    let device = Device::new();
    let ca = TestCa::new(INSPECTION_CA, "Example Corp");
    let server = interceptor(&ca, AWS_ENDPOINT, true).await;
    let proxy = pinned_proxy(server.addr).await;
    let mut config = device.config(AWS_ENDPOINT, 443);
    config.root_ca = None;
    config.proxy = Some(ProxyConfig::parse(&format!("http://{proxy}")).unwrap());

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let (detail, hint) = tls_error(&error);
    assert!(detail.contains(INSPECTION_CA), "{detail}");
    assert!(hint.contains("probably in the way"), "{hint}");
    assert!(hint.contains("an Amazon root"), "{hint}");
    assert!(hint.contains("TLS-inspection bypass for *.iot.eu-west-1.amazonaws.com"), "{hint}");
}

#[tokio::test]
async fn a_root_ca_of_another_endpoint_is_still_a_wrong_root_ca_and_not_interception() {
    let device = Device::new();
    // Another emulator-like endpoint: its CA is not named like an inspecting proxy.
    let other = TestCa::new("iot443 emulator CA", "iot443");
    let (chain, key) = other.issue_server("localhost");
    let server = TestTlsServer::start(ServerSetup {
        chain,
        key,
        alpn: vec![b"x-amzn-mqtt-ca".to_vec()],
        client_roots: None,
    })
    .await;
    let config = device.config("localhost", server.addr.port());

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let (detail, hint) = tls_error(&error);
    assert!(detail.contains("iot443 emulator CA"), "the facts still name the issuer: {detail}");
    assert!(hint.contains("wrong root CA file (root_ca)"), "{hint}");
    assert!(!hint.contains("intercepting"), "{hint}");
}

#[tokio::test]
async fn a_server_that_drops_the_offered_alpn_is_named_as_interception() {
    let device = Device::new();
    let ca = TestCa::new(INSPECTION_CA, "Example Corp");
    let server = interceptor(&ca, "localhost", false).await;
    let mut config = device.config("localhost", server.addr.port());
    // The device trusts the interceptor's CA: the handshake completes, without ALPN.
    config.root_ca = Some(ca.write(device.dir.path(), "inspection-ca.pem"));

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let (detail, hint) = tls_error(&error);
    assert!(detail.contains("without selecting the ALPN protocol \"x-amzn-mqtt-ca\""), "{detail}");
    assert!(hint.contains("TLS-inspecting (intercepting) proxy is probably in the way"), "{hint}");
    assert!(hint.contains(INSPECTION_CA), "{hint}");
    assert!(hint.contains("transport = \"websocket\""), "{hint}");
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth);
}

#[tokio::test]
async fn the_doctor_names_the_interceptor_at_the_tls_step() {
    let device = Device::new();
    let ca = TestCa::new(INSPECTION_CA, "Example Corp");
    let server = interceptor(&ca, "localhost", true).await;
    let config = device.config("localhost", server.addr.port());

    let report = within("diagnose", diagnose(&config)).await;
    let (index, step) = report.first_failure().unwrap();
    assert_eq!(step.name, "tls", "{report:#?}");
    assert_eq!(index, 4);
    assert!(step.detail.contains(INSPECTION_CA), "{}", step.detail);
    let hint = step.hint.clone().unwrap();
    assert!(hint.contains("TLS-inspecting (intercepting) proxy is probably in the way"), "{hint}");
    assert!(hint.contains(INSPECTION_CA), "{hint}");
    assert!(hint.contains("transport = \"websocket\""), "{hint}");
}

#[tokio::test]
async fn the_doctor_names_a_dropped_alpn_as_interception() {
    let device = Device::new();
    let ca = TestCa::new(INSPECTION_CA, "Example Corp");
    let server = interceptor(&ca, "localhost", false).await;
    let mut config = device.config("localhost", server.addr.port());
    config.root_ca = Some(ca.write(device.dir.path(), "inspection-ca.pem"));

    let report = within("diagnose", diagnose(&config)).await;
    let (_, step) = report.first_failure().unwrap();
    assert_eq!(step.name, "tls", "{report:#?}");
    assert!(step.detail.contains("without selecting the ALPN protocol"), "{}", step.detail);
    let hint = step.hint.clone().unwrap();
    assert!(hint.contains("probably in the way"), "{hint}");
}

#[tokio::test]
async fn trusting_the_interceptor_for_an_amazonaws_endpoint_is_named_by_the_doctor() {
    let device = Device::new();
    let ca = TestCa::new(INSPECTION_CA, "Example Corp");
    let mut server = interceptor(&ca, AWS_ENDPOINT, true).await;
    let proxy = pinned_proxy(server.addr).await;
    let mut config = device.config(AWS_ENDPOINT, 443);
    // The device trusts the interceptor's CA: verification passes, but it is not Amazon's.
    config.root_ca = Some(ca.write(device.dir.path(), "inspection-ca.pem"));
    config.proxy = Some(ProxyConfig::parse(&format!("http://{proxy}")).unwrap());

    let doctor = tokio::spawn(async move { diagnose(&config).await });
    // The interceptor cannot present the device certificate upstream: it closes.
    drop(server.next().await);
    let report = within("diagnose", doctor).await.unwrap();
    let tls = report.steps.iter().find(|step| step.name == "tls").unwrap();
    let text = format!("{} {}", tls.detail, tls.hint.clone().unwrap_or_default());
    assert!(text.contains("was not Amazon's"), "{report:#?}");
    assert!(text.contains(INSPECTION_CA), "{text}");
    assert!(text.contains("*.iot.eu-west-1.amazonaws.com"), "{text}");
}

#[tokio::test]
async fn trusting_the_interceptor_for_an_amazonaws_endpoint_the_client_says_the_chain_was_not_amazons()
 {
    let device = Device::new();
    let ca = TestCa::new(INSPECTION_CA, "Example Corp");
    let mut server = interceptor(&ca, AWS_ENDPOINT, true).await;
    let proxy = pinned_proxy(server.addr).await;
    let mut config = device.config(AWS_ENDPOINT, 443);
    config.root_ca = Some(ca.write(device.dir.path(), "inspection-ca.pem"));
    config.proxy = Some(ProxyConfig::parse(&format!("http://{proxy}")).unwrap());

    let client = tokio::spawn(async move { Client::connect(&config).await });
    // Upstream, IoT Core saw no client certificate: the interceptor closes before CONNACK.
    let mut stream = server.next().await;
    let mut connect = [0_u8; 2];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut connect).await.unwrap();
    tokio::io::AsyncWriteExt::shutdown(&mut stream).await.unwrap();

    let error = within("connect", client).await.unwrap().unwrap_err();
    let text = error.to_string();
    assert!(text.contains("before CONNACK"), "{text}");
    assert!(text.contains("was not Amazon's"), "{text}");
    assert!(text.contains(INSPECTION_CA), "{text}");
    assert!(text.contains("*.iot.eu-west-1.amazonaws.com"), "{text}");
}

#[tokio::test]
async fn on_port_8883_a_server_that_ignores_the_offered_alpn_is_not_called_interception() {
    let device = Device::new();
    let ca = TestCa::new("iot443 emulator CA", "iot443");
    let mut server = interceptor(&ca, "localhost", false).await;
    let proxy = pinned_proxy(server.addr).await;
    let mut config = device.config("localhost", 8883);
    config.root_ca = Some(ca.write(device.dir.path(), "ca.pem"));
    config.proxy = Some(ProxyConfig::parse(&format!("http://{proxy}")).unwrap());
    assert_eq!(config.alpn_protocol(), Some("x-amzn-mqtt-ca"), "offered anyway");

    let client = tokio::spawn(async move { Client::connect(&config).await });
    // The handshake completed without ALPN and the client sent CONNECT: TLS was accepted.
    let mut stream = server.next().await;
    let mut connect = [0_u8; 2];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut connect).await.unwrap();
    assert_eq!(connect[0], 0x10, "a CONNECT packet");
    tokio::io::AsyncWriteExt::shutdown(&mut stream).await.unwrap();
    let error = within("connect", client).await.unwrap().unwrap_err();
    assert!(!error.to_string().contains("intercepting"), "{error}");
}
