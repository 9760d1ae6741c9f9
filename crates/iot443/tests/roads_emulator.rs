#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! The other roads through 443 against the emulator itself (not a test server): MQTT over
//! WebSocket signed with SigV4 with the credentials the emulator wrote into its folder, HTTPS
//! publish on both of its HTTPS roads, and `port = "auto"` falling back to the WebSocket road
//! when the certificate roads are refused, remembering it.

mod common;

use common::events::{next_connected, next_reconnecting};
use common::{TestEmulator, next_message, within};
use iot443::config::{AutoPort, Transport};
use iot443::https::{HttpsPublish, HttpsPublisher};
use iot443::{Client, Config, PortChoice, QoS};
use iot443_emulator::pki::{Pki, PkiOptions};
use std::time::Duration;

/// The emulator's configuration for `client_id`, on the WebSocket road.
fn websocket_config(emulator: &TestEmulator, client_id: &str) -> Config {
    let mut config = emulator.config(client_id);
    config.transport = Transport::WebSocket;
    config.reconnect.min_delay = Duration::from_millis(20);
    config.reconnect.max_delay = Duration::from_millis(200);
    config.validate().unwrap();
    assert!(config.aws_credentials.is_some(), "the emulator's iot443.toml names its credentials");
    assert!(config.region.is_some(), "the emulator's iot443.toml names its region");
    config
}

#[tokio::test]
async fn websocket_road_round_trips_qos1_with_the_emulators_credentials() {
    let emulator = TestEmulator::start().await;
    let config = websocket_config(&emulator, "roads-ws");
    let (client, _events) = within("connect", Client::connect(&config)).await.unwrap();
    let info = client.connection_info();
    let url = info.url.clone().expect("the WebSocket road names its URL");
    assert_eq!(url, format!("wss://localhost:{}/mqtt", emulator.alpn_port()));
    assert_eq!(info.alpn.as_deref(), Some("http/1.1"), "{info:?}");

    let mut messages =
        within("subscribe", client.subscribe("roads/ws", QoS::AtLeastOnce)).await.unwrap();
    let delivery = client.publish("roads/ws", QoS::AtLeastOnce, "over wss").await.unwrap();
    within("PUBACK", delivery).await.unwrap();
    let message = next_message(&mut messages, "the message back").await;
    assert_eq!((message.topic.as_str(), message.payload.as_ref()), ("roads/ws", &b"over wss"[..]));
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn websocket_road_reconnects_after_an_emulator_restart_resubscribes_and_sends_what_was_queued()
 {
    let emulator = TestEmulator::start().await;
    let config = websocket_config(&emulator, "roads-ws-restart");
    let (client, mut events) = within("connect", Client::connect(&config)).await.unwrap();
    next_connected(&mut events).await;
    let mut messages =
        within("subscribe", client.subscribe("roads/restart", QoS::AtLeastOnce)).await.unwrap();

    // The emulator goes away and comes back on the same ports, with the same credentials file.
    let emulator = emulator.restart_with(|_| {}).await;
    let cause = within("the loss", next_reconnecting(&mut events)).await;
    println!("reconnecting after: {cause}");
    // Published while the connection may be down: kept, then sent over the new connection.
    let delivery =
        client.publish("roads/restart", QoS::AtLeastOnce, "after restart").await.unwrap();
    let info = within("the reconnect", next_connected(&mut events)).await;
    assert!(info.url.is_some(), "still the WebSocket road: {info:?}");
    within("PUBACK after the reconnect", delivery).await.unwrap();
    let message =
        next_message(&mut messages, "the queued message, through the restored subscription").await;
    assert_eq!(message.payload.as_ref(), b"after restart");
    client.disconnect().await.unwrap();
    drop(emulator);
}

#[tokio::test]
async fn https_publish_reaches_a_subscriber_on_both_https_roads_of_the_emulator() {
    let emulator = TestEmulator::start_with(|options| options.https_port = Some(0)).await;
    let (subscriber, _events) = emulator.connect("roads-https-sub").await;
    let mut messages =
        within("subscribe", subscriber.subscribe("roads/https/+", QoS::AtLeastOnce)).await.unwrap();

    // The 443-style listener with ALPN x-amzn-http-ca: the emulator's iot443.toml as written.
    let mut on_alpn = emulator.config("roads-https");
    on_alpn.transport = Transport::Https;
    let https_port = emulator.emulator.https_addr.expect("an HTTPS listener").port();
    // The 8443-style listener: no ALPN.
    let mut on_https = on_alpn.clone();
    on_https.port = https_port;
    on_https.alpn = None;

    for (config, topic) in [(&on_alpn, "roads/https/alpn"), (&on_https, "roads/https/8443")] {
        let mut publisher = HttpsPublisher::new(config);
        let message = HttpsPublish::new(topic, "over https").qos(QoS::AtLeastOnce);
        let answer = within("the POST", publisher.publish(&message)).await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.message.as_deref(), Some("OK"), "{answer:?}");
        assert!(answer.trace_id.is_some() && answer.trace_id == answer.request_id, "{answer:?}");
        let received = next_message(&mut messages, topic).await;
        assert_eq!(
            (received.topic.as_str(), received.payload.as_ref()),
            (topic, &b"over https"[..])
        );
        publisher.close().await;
    }
    subscriber.disconnect().await.unwrap();
}

#[tokio::test]
async fn port_auto_falls_back_to_the_websocket_road_when_certificates_are_refused_and_remembers_it()
{
    let emulator = TestEmulator::start().await;
    // A device certificate from another CA: the emulator refuses it on every certificate road.
    let elsewhere = tempfile::tempdir().unwrap();
    let foreign = Pki::load_or_create(elsewhere.path(), &PkiOptions::default()).unwrap();
    let (certificate, key) = foreign.device_paths("device");
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("ports");

    let mut config = emulator.config("roads-auto");
    config.certificate = certificate;
    config.private_key = key;
    config.alpn = None;
    config.connect_timeout = Duration::from_secs(5);
    let mut auto = AutoPort::default();
    auto.mqtts_port = emulator.mqtts_port();
    auto.alpn_port = emulator.alpn_port();
    auto.state_file = Some(state_file.clone());
    config.auto_port = Some(auto);
    config.validate().unwrap();

    let (client, _events) = within("the race", Client::connect(&config)).await.unwrap();
    let info = client.connection_info();
    assert!(info.url.is_some(), "the WebSocket road won: {info:?}");
    assert_eq!(info.port, emulator.alpn_port());
    let Some(PortChoice::Raced { others, .. }) = &info.port_choice else {
        panic!("a race: {info:?}")
    };
    let others = others.join(" | ");
    assert!(others.contains(&format!("port {}:", emulator.mqtts_port())), "{others}");
    assert!(others.contains(&format!("port {}:", emulator.alpn_port())), "{others}");
    client.disconnect().await.unwrap();

    let remembered = std::fs::read_to_string(&state_file).unwrap();
    let line = format!("localhost {} ", emulator.alpn_port());
    let entry = remembered
        .lines()
        .find(|l| l.starts_with(&line))
        .unwrap_or_else(|| panic!("no line for localhost in {remembered}"));
    assert!(entry.ends_with(" websocket"), "the WebSocket road is remembered: {entry}");

    // The next start takes the remembered road alone.
    let (client, _events) = within("the remembered road", Client::connect(&config)).await.unwrap();
    let info = client.connection_info();
    assert!(info.url.is_some(), "{info:?}");
    assert!(matches!(info.port_choice, Some(PortChoice::Remembered { .. })), "{info:?}");
    client.disconnect().await.unwrap();
}
