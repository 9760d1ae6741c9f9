#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! ALPN `x-amzn-mqtt-ca` on the port-443-style listener: what works, and what a missing ALPN
//! looks like in both symptoms AWS IoT Core is reported to show.

mod common;

use common::{SHORT_CONNECT_TIMEOUT, TestEmulator, within};
use iot443::{Client, ClientError, ErrorKind, QoS};
use iot443_emulator::tls::MissingAlpn;

#[tokio::test]
async fn alpn_listener_accepts_a_client_offering_x_amzn_mqtt_ca() {
    let emulator = TestEmulator::start().await;
    let config = emulator.config("alpn-ok");
    assert_eq!(config.alpn_protocol(), Some("x-amzn-mqtt-ca"));

    let (client, _events) = within("connect", Client::connect(&config)).await.unwrap();
    let info = client.connection_info();
    assert_eq!(info.alpn.as_deref(), Some("x-amzn-mqtt-ca"));
    assert!(matches!(info.tls_version.as_str(), "TLS1.3" | "TLS1.2"), "{info:?}");
    assert!(!info.cipher_suite.is_empty(), "{info:?}");
    assert_eq!(info.host, "localhost");
    assert_eq!(info.port, emulator.alpn_port());
    assert_eq!(info.remote_addr.map(|addr| addr.port()), Some(emulator.alpn_port()));
    let summary = info.summary();
    assert!(summary.contains("alpn=x-amzn-mqtt-ca"), "{summary}");
    assert!(summary.contains(&format!("localhost:{}", emulator.alpn_port())), "{summary}");

    // MQTT works over it.
    let mut subscription =
        within("subscribe", client.subscribe("alpn/ok", QoS::AtLeastOnce)).await.unwrap();
    within("delivery", client.publish("alpn/ok", QoS::AtLeastOnce, "hi").await.unwrap())
        .await
        .unwrap();
    let message = common::next_message(&mut subscription, "the message back").await;
    assert_eq!(&message.payload[..], b"hi");
    within("disconnect", client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn missing_alpn_fails_the_handshake_with_a_hint_naming_x_amzn_mqtt_ca() {
    // The field-reported mode; by default a client without ALPN reaches the HTTP server of the
    // WebSocket road (next test).
    let emulator =
        TestEmulator::start_with(|options| options.missing_alpn = MissingAlpn::Alert).await;
    let mut config = emulator.config("alpn-missing");
    config.alpn = None;
    assert_ne!(config.port, 443, "on a port other than 443 no ALPN is offered by default");
    assert_eq!(config.alpn_protocol(), None);

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let ClientError::Tls { addr, detail, hint, .. } = &error else {
        panic!("expected ClientError::Tls, got {error:?}");
    };
    assert_eq!(addr, &format!("localhost:{}", emulator.alpn_port()));
    assert!(detail.contains("no_application_protocol"), "{detail}");
    assert!(hint.contains("ALPN x-amzn-mqtt-ca is probably missing"), "{hint}");
    assert!(hint.contains("alpn = \"x-amzn-mqtt-ca\""), "the fix is named: {hint}");
    let message = error.to_string();
    assert!(message.starts_with(&format!("TLS handshake with localhost:{}", emulator.alpn_port())));
    assert!(message.contains("x-amzn-mqtt-ca"), "{message}");
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth);
}

#[tokio::test]
async fn missing_alpn_on_the_default_emulator_fails_at_once_not_by_timeout() {
    // The default, as IoT Core: no ALPN reaches the HTTP server (WebSocket road), which answers
    // the CONNECT with HTTP 400 and closes. The client fails at once, not at its timeout.
    let emulator = TestEmulator::start().await;
    let mut config = emulator.config("alpn-missing-http");
    config.alpn = None;
    config.connect_timeout = std::time::Duration::from_secs(30);

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    assert!(!matches!(error, ClientError::Timeout { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&format!("localhost:{}", emulator.alpn_port())), "{text}");
    // The HTTP answer is named as such, with what to do, not as a malformed MQTT packet.
    assert!(text.contains("answered HTTP (\"HTTP/1.1 400 Bad Request\")"), "{text}");
    assert!(text.contains("ALPN x-amzn-mqtt-ca"), "{text}");
}

#[tokio::test]
async fn another_alpn_protocol_is_refused_with_a_hint_naming_x_amzn_mqtt_ca() {
    let emulator = TestEmulator::start().await;
    let mut config = emulator.config("alpn-other");
    config.alpn = Some("mqtt".to_owned());

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let ClientError::Tls { detail, hint, .. } = &error else {
        panic!("expected ClientError::Tls, got {error:?}");
    };
    assert!(detail.contains("no_application_protocol"), "{detail}");
    assert!(hint.contains("does not accept ALPN \"mqtt\""), "{hint}");
    assert!(hint.contains("x-amzn-mqtt-ca"), "{hint}");
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth);
}

#[tokio::test]
async fn missing_alpn_without_connack_times_out_with_a_hint_naming_alpn() {
    let emulator =
        TestEmulator::start_with(|options| options.missing_alpn = MissingAlpn::NoConnAck).await;
    let mut config = emulator.config("alpn-silent");
    config.alpn = None;
    config.connect_timeout = SHORT_CONNECT_TIMEOUT;

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let ClientError::Timeout { addr, stage, after, hint } = &error else {
        panic!("expected a CONNACK ClientError::Timeout, got {error:?}");
    };
    assert_eq!(addr, &format!("localhost:{}", emulator.alpn_port()));
    assert_eq!(*stage, "CONNACK");
    assert_eq!(*after, SHORT_CONNECT_TIMEOUT);
    assert!(hint.contains("TLS succeeded but the endpoint never answered CONNECT"), "{hint}");
    assert!(hint.contains("ALPN x-amzn-mqtt-ca"), "{hint}");
    let message = error.to_string();
    assert!(message.starts_with("CONNACK with localhost:"), "{message}");
    assert!(message.contains("timed out after 2s"), "{message}");
    assert_eq!(error.kind(), ErrorKind::Connection);
}

#[tokio::test]
async fn mqtts_listener_needs_no_alpn() {
    let emulator = TestEmulator::start().await;
    let config = emulator.mqtts_config("mqtts-ok");
    assert_eq!(config.alpn_protocol(), None);

    let (client, _events) = within("connect", Client::connect(&config)).await.unwrap();
    let info = client.connection_info();
    assert_eq!(info.alpn, None);
    assert_eq!(info.port, emulator.mqtts_port());
    assert!(matches!(info.tls_version.as_str(), "TLS1.3" | "TLS1.2"), "{info:?}");
    assert!(info.summary().contains("alpn=none"), "{}", info.summary());

    let mut subscription =
        within("subscribe", client.subscribe("mqtts/ok", QoS::AtMostOnce)).await.unwrap();
    within("delivery", client.publish("mqtts/ok", QoS::AtMostOnce, "plain").await.unwrap())
        .await
        .unwrap();
    let message = common::next_message(&mut subscription, "the message back").await;
    assert_eq!(&message.payload[..], b"plain");
    within("disconnect", client.disconnect()).await.unwrap();
}
