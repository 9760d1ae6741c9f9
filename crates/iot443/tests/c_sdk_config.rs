#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! A C SDK user keeps `aws_iot_config.h` as the `subscribe_publish_sample` ships it, with the
//! three files in `certs/` beside it, and connects with it unchanged.

mod common;

use common::{TestEmulator, next_message, within};
use iot443::{Client, Config, QoS};
use std::path::{Path, PathBuf};

/// The sample's `aws_iot_config.h` (`fixtures/aws_iot_config.h`, shared with
/// `config_c_header.rs`) as the user edits it, pointing at `localhost:{port}`.
fn sample_header(port: u16) -> String {
    const SAMPLE: &str = include_str!("fixtures/aws_iot_config.h");
    let host = "\"a3gevvffsj7zer-ats.iot.ap-northeast-1.amazonaws.com\"";
    let port_line = "#define AWS_IOT_MQTT_PORT              443";
    assert!(SAMPLE.contains(host) && SAMPLE.contains(port_line), "the fixture changed");
    SAMPLE
        .replace(host, "\"localhost\"")
        .replace(port_line, &format!("#define AWS_IOT_MQTT_PORT              {port}"))
}

/// Writes `<root>/aws_iot_config.h` for `port` and copies the emulator's CA and default device
/// into `<root>/certs/` under the sample's file names; returns the header's path.
fn lay_out(root: &Path, emulator: &TestEmulator, port: u16) -> PathBuf {
    let certs = root.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (device_cert, device_key) = emulator.emulator.pki.device_paths("device");
    // std::fs::copy keeps the key's 0600 mode.
    std::fs::copy(emulator.dir().join("ca.pem"), certs.join("rootCA.crt")).unwrap();
    std::fs::copy(device_cert, certs.join("cert.pem")).unwrap();
    std::fs::copy(device_key, certs.join("privkey.pem")).unwrap();
    let header = root.join("aws_iot_config.h");
    std::fs::write(&header, sample_header(port)).unwrap();
    header
}

/// Connects with `config`, subscribes to the sample's topic, publishes one message and checks
/// it comes back.
async fn sample_round_trip(config: &Config) -> Client {
    let (client, _events) = within("connect", Client::connect(config)).await.unwrap();
    let mut subscription =
        within("subscribe", client.subscribe("sdkTest/sub", QoS::AtLeastOnce)).await.unwrap();
    let payload = "hello from SDK QOS1 : 0";
    within("PUBACK", client.publish("sdkTest/sub", QoS::AtLeastOnce, payload).await.unwrap())
        .await
        .unwrap();
    let message = next_message(&mut subscription, "the sample message").await;
    assert_eq!(message.topic, "sdkTest/sub");
    assert_eq!(&message.payload[..], payload.as_bytes());
    client
}

#[tokio::test]
async fn sample_header_connects_to_the_mqtts_port_as_it_is() {
    let emulator = TestEmulator::start().await;
    let root = tempfile::tempdir().unwrap();
    let header = lay_out(root.path(), &emulator, emulator.mqtts_port());

    let config = Config::load(&header).unwrap();
    let certs = root.path().join("certs");
    assert_eq!(config.endpoint, "localhost");
    assert_eq!(config.port, emulator.mqtts_port());
    assert_eq!(config.client_id, "tls-test");
    assert_eq!(config.root_ca, Some(certs.join("rootCA.crt")));
    assert_eq!(config.certificate, certs.join("cert.pem"));
    assert_eq!(config.private_key, certs.join("privkey.pem"));
    assert_eq!(config.alpn_protocol(), None);

    let client = sample_round_trip(&config).await;
    assert_eq!(client.connection_info().alpn, None);
    within("disconnect", client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn sample_header_connects_to_the_alpn_port_with_alpn_set() {
    // The header has no ALPN setting; on 443 x-amzn-mqtt-ca is offered by default, on the
    // emulator's ephemeral port it is set as `--alpn` or IOT443_ALPN would.
    let emulator = TestEmulator::start().await;
    let root = tempfile::tempdir().unwrap();
    let header = lay_out(root.path(), &emulator, emulator.alpn_port());

    let mut config = Config::load(&header).unwrap();
    assert_eq!(config.port, emulator.alpn_port());
    config.apply_env(|name| (name == "IOT443_ALPN").then(|| "x-amzn-mqtt-ca".to_owned())).unwrap();
    assert_eq!(config.alpn_protocol(), Some("x-amzn-mqtt-ca"));

    let client = sample_round_trip(&config).await;
    assert_eq!(client.connection_info().alpn.as_deref(), Some("x-amzn-mqtt-ca"));
    within("disconnect", client.disconnect()).await.unwrap();
}
