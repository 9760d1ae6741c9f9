#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The iot443 client library (and CLI) against a real broker: Debian's mosquitto, reached
//! * through haproxy, which enforces AWS IoT Core's port 443 rules (client certificate, ALPN
//!   `x-amzn-mqtt-ca`, anything else rejected), and
//! * on mosquitto's own TLS listener (`require_certificate true`, no ALPN; its port is not 443,
//!   so iot443 offers none).

use iot443::{Client, Config, ErrorKind, Message, QoS, Subscription};
use iot443_interop::mosquitto::{
    MosquittoSub, Received, device_flags, device_flags_with_alpn, mosquitto_pub,
};
use iot443_interop::{ALPN, BrokerSetup, Proc, TIMEOUT, iot443_command, temp_dir};
use std::ffi::OsString;
use std::path::Path;
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn config(pki_dir: &Path, port: u16, client_id: &str, alpn: Option<&str>) -> Config {
    let mut builder = Config::builder(
        "localhost",
        client_id,
        pki_dir.join("device.crt"),
        pki_dir.join("device.key"),
    )
    .root_ca(pki_dir.join("ca.pem"))
    .port(port);
    if let Some(alpn) = alpn {
        builder = builder.alpn(alpn);
    }
    builder.build().unwrap()
}

async fn next(subscription: &mut Subscription) -> Message {
    tokio::time::timeout(TIMEOUT, subscription.recv())
        .await
        .expect("no message within the time limit")
        .expect("the subscription ended")
}

/// Subscribes to `lib/+/t` at QoS 1, publishes QoS 0 and QoS 1 messages and gets both back;
/// then a message from `mosquitto_pub` (with `pub_flags`) arrives too, and one from the library
/// reaches a `mosquitto_sub` (with `sub_flags`).
fn round_trips(
    rt: &Runtime,
    config: &Config,
    expected_alpn: Option<&str>,
    pub_flags: &[OsString],
    sub_flags: &[OsString],
) {
    let (client, _events) = rt.block_on(Client::connect(config)).unwrap();
    assert_eq!(
        client.connection_info().alpn.as_deref(),
        expected_alpn,
        "{:?}",
        client.connection_info()
    );
    let mut subscription = rt.block_on(client.subscribe("lib/+/t", QoS::AtLeastOnce)).unwrap();
    assert_eq!(subscription.granted_qos(), [QoS::AtLeastOnce]);

    rt.block_on(async {
        client.publish("lib/zero/t", QoS::AtMostOnce, "qos0").await.unwrap().await.unwrap();
        client.publish("lib/one/t", QoS::AtLeastOnce, "qos1").await.unwrap().await.unwrap();
        let mut got = [next(&mut subscription).await, next(&mut subscription).await];
        got.sort_by(|a, b| a.topic.cmp(&b.topic));
        let got: Vec<_> =
            got.iter().map(|m| (m.topic.as_str(), &m.payload[..], m.qos, m.retain)).collect();
        assert_eq!(
            got,
            [
                ("lib/one/t", &b"qos1"[..], QoS::AtLeastOnce, false),
                ("lib/zero/t", &b"qos0"[..], QoS::AtMostOnce, false),
            ]
        );
    });

    // A peer publishes; the library's subscription (already acknowledged) receives it.
    let published = mosquitto_pub(
        pub_flags.iter().cloned().chain(
            ["-i", "mosq-pub", "-t", "lib/peer/t", "-q", "1", "-m", "from mosquitto_pub"]
                .map(OsString::from),
        ),
    );
    assert!(published.status.success(), "{published:?}");
    let message = rt.block_on(next(&mut subscription));
    assert_eq!(
        (message.topic.as_str(), &message.payload[..]),
        ("lib/peer/t", &b"from mosquitto_pub"[..])
    );
    assert_eq!(message.qos, QoS::AtLeastOnce);

    // The library publishes; a peer subscriber receives it.
    let mut sub = MosquittoSub::start(
        sub_flags
            .iter()
            .cloned()
            .chain(["-t", "lib/to-peer", "-q", "1", "-i", "mosq-sub"].map(OsString::from)),
    );
    rt.block_on(async {
        client
            .publish("lib/to-peer", QoS::AtLeastOnce, "from iot443")
            .await
            .unwrap()
            .await
            .unwrap();
    });
    assert_eq!(
        sub.next_message(),
        Received {
            topic: "lib/to-peer".into(),
            qos: 1,
            retain: false,
            payload: "from iot443".into()
        }
    );
    rt.block_on(client.disconnect()).unwrap();
}

#[test]
#[ignore = "needs mosquitto, mosquitto clients and haproxy: run by .ci/interop"]
fn client_through_haproxy_with_alpn_publishes_and_subscribes_qos0_qos1() {
    let dir = temp_dir();
    let setup = BrokerSetup::start(dir.path());
    let rt = runtime();
    let config = config(&setup.pki.dir, setup.haproxy.port, "lib-alpn", Some(ALPN));
    let flags = device_flags(&setup.pki.dir, setup.haproxy.port);
    round_trips(&rt, &config, Some(ALPN), &flags, &flags);
}

#[test]
#[ignore = "needs mosquitto and haproxy: run by .ci/interop"]
fn client_with_another_alpn_is_refused_by_haproxy_and_the_error_names_the_alpn() {
    let dir = temp_dir();
    let setup = BrokerSetup::start(dir.path());
    let rt = runtime();
    let config = config(&setup.pki.dir, setup.haproxy.port, "lib-wrong-alpn", Some("mqtt"));
    let error = rt.block_on(Client::connect(&config)).expect_err("haproxy must reject ALPN mqtt");
    let text = error.to_string();
    assert!(
        text.contains("ALPN x-amzn-mqtt-ca"),
        "the error must point at ALPN x-amzn-mqtt-ca: {text}"
    );
    assert!(
        matches!(error.kind(), ErrorKind::TlsOrAuth | ErrorKind::Connection),
        "{:?}: {text}",
        error.kind()
    );

    // The CLI says the same, and exits non-zero.
    let path = setup.client_config(
        &dir.path().join("iot443.toml"),
        setup.haproxy.port,
        "cli-wrong-alpn",
        Some("mqtt"),
    );
    let mut command = iot443_command();
    command.arg("pub").arg("--config").arg(&path).args(["-t", "x", "-m", "refused", "-q", "1"]);
    let finished = Proc::run("iot443 pub", command, TIMEOUT);
    assert!(!finished.status.success(), "{finished:?}");
    assert!(finished.stderr_text().contains("ALPN x-amzn-mqtt-ca"), "{finished:?}");
}

#[test]
#[ignore = "needs mosquitto and mosquitto clients: run by .ci/interop"]
fn client_on_mosquittos_own_tls_listener_without_alpn_publishes_and_subscribes() {
    let dir = temp_dir();
    let setup = BrokerSetup::start(dir.path());
    let rt = runtime();
    let port = setup.mosquitto_tls_port();
    let config = config(&setup.pki.dir, port, "lib-mqtts", None);
    assert_eq!(config.alpn_protocol(), None, "no ALPN on a port other than 443");
    let d = &setup.pki.dir;
    let flags = device_flags_with_alpn(d, port, None);
    round_trips(&rt, &config, None, &flags, &flags);
}

#[test]
#[ignore = "needs mosquitto and mosquitto clients: run by .ci/interop"]
fn cli_pub_and_sub_on_mosquittos_own_tls_listener_without_alpn() {
    let dir = temp_dir();
    let setup = BrokerSetup::start(dir.path());
    let port = setup.mosquitto_tls_port();
    let config = setup.client_config(&dir.path().join("iot443.toml"), port, "cli-mqtts", None);

    // A retained message first, so that `iot443 sub` started afterwards gets it without any
    // race with its SUBSCRIBE.
    let mut command = iot443_command();
    command
        .arg("pub")
        .arg("--config")
        .arg(&config)
        .args(["-t", "cli/kept", "-m", "kept", "-q", "1", "-r", "-V"]);
    let published = Proc::run("iot443 pub", command, TIMEOUT);
    assert!(published.status.success(), "{published:?}");
    assert!(published.stderr_text().contains("alpn=none"), "{published:?}");

    let mut command = iot443_command();
    command.arg("sub").arg("--config").arg(&config).args([
        "-t",
        "cli/kept",
        "-C",
        "1",
        "-q",
        "1",
        "-v",
        "-i",
        "cli-mqtts-sub",
    ]);
    let received = Proc::run("iot443 sub", command, TIMEOUT);
    assert!(received.status.success(), "{received:?}");
    assert_eq!(received.stdout, ["cli/kept kept"]);

    // And a mosquitto_sub on the same listener receives what iot443 pub sends.
    let d = &setup.pki.dir;
    let flags = device_flags_with_alpn(d, port, None);
    let mut sub = MosquittoSub::start(
        flags
            .iter()
            .cloned()
            .chain(["-t", "cli/live", "-q", "1", "-i", "mosq-sub"].map(OsString::from)),
    );
    let mut command = iot443_command();
    command
        .arg("pub")
        .arg("--config")
        .arg(&config)
        .args(["-t", "cli/live", "-m", "live", "-q", "1"]);
    let published = Proc::run("iot443 pub", command, TIMEOUT);
    assert!(published.status.success(), "{published:?}");
    assert_eq!(
        sub.next_message(),
        Received { topic: "cli/live".into(), qos: 1, retain: false, payload: "live".into() }
    );
}
