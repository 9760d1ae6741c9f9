#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The `iot443` command with Debian's `mosquitto_pub` and `mosquitto_sub` on the other end:
//! `iot443 pub` → `mosquitto_sub`, `mosquitto_pub` → `iot443 sub`, first through a real
//! mosquitto broker behind haproxy requiring ALPN `x-amzn-mqtt-ca` (AWS IoT Core's port 443
//! rules), then through the emulator.

use iot443_interop::mosquitto::{MosquittoSub, Received, device_flags, mosquitto_pub};
use iot443_interop::process::Stream;
use iot443_interop::{
    ALPN, BrokerSetup, InProcessEmulator, Proc, TIMEOUT, iot443_command, temp_dir,
};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// `iot443 pub --config CONFIG -t x -m hello -q 1 EXTRA…` is received by a `mosquitto_sub`
/// subscribed with `sub_flags`.
fn iot443_pub_reaches_mosquitto_sub(config: &Path, sub_flags: &[OsString], extra: &[&str]) {
    let mut sub = MosquittoSub::start(
        sub_flags
            .iter()
            .cloned()
            .chain(["-t", "x", "-q", "1", "-i", "mosq-sub"].map(OsString::from)),
    );
    let mut command = iot443_command();
    command
        .arg("pub")
        .arg("--config")
        .arg(config)
        .args(["-t", "x", "-m", "hello", "-q", "1", "-V"]);
    command.args(extra);
    let published = Proc::run("iot443 pub", command, TIMEOUT);
    assert!(published.status.success(), "iot443 pub failed: {published:?}");
    assert!(
        published.stderr_text().contains(&format!("alpn={ALPN}")),
        "iot443 pub -V must report ALPN {ALPN}: {published:?}"
    );
    assert_eq!(
        sub.next_message(),
        Received { topic: "x".into(), qos: 1, retain: false, payload: "hello".into() }
    );
}

/// `mosquitto_pub` with `pub_flags` is received by `iot443 sub --config CONFIG -t x -C 1`.
///
/// `iot443 sub -V` reports `connected to …` once connected, but nothing once subscribed: the
/// test publishes `hello N` at QoS 1 until the subscriber prints a message (at most 40 times,
/// waiting 250 ms for the line after each), then checks the first one it printed.
fn mosquitto_pub_reaches_iot443_sub(config: &Path, pub_flags: &[OsString], extra: &[&str]) {
    let mut command = iot443_command();
    command
        .arg("sub")
        .arg("--config")
        .arg(config)
        .args(["-t", "x", "-C", "1", "-q", "1", "-V", "--json"]);
    command.args(extra);
    let mut sub = Proc::spawn("iot443 sub", command);
    let connected = sub.wait_stderr(TIMEOUT, |line| line.starts_with("connected to"));
    assert!(connected.contains(&format!("alpn={ALPN}")), "{connected}");

    let mut line = None;
    for attempt in 0..40 {
        let message = format!("hello {attempt}");
        let published =
            mosquitto_pub(pub_flags.iter().cloned().chain(
                ["-i", "mosq-pub", "-t", "x", "-q", "1", "-m", &message].map(OsString::from),
            ));
        assert!(published.status.success(), "mosquitto_pub failed: {published:?}");
        line = sub.try_wait_line(Stream::Stdout, Duration::from_millis(250), |_| true);
        if line.is_some() || !sub.is_running() {
            break;
        }
    }
    let Some(line) = line else {
        panic!("iot443 sub printed no message\n{}", sub.describe());
    };
    let message: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert!(message["payload"].as_str().is_some_and(|p| p.starts_with("hello ")), "{message}");
    assert_eq!(
        json!([message["topic"], message["qos"], message["retain"]]),
        json!(["x", 1, false]),
        "{message}"
    );
    let finished = sub.wait_exit(TIMEOUT);
    assert!(finished.status.success(), "iot443 sub -C 1 must exit 0: {finished:?}");
}

#[test]
#[ignore = "needs mosquitto, mosquitto clients and haproxy: run by .ci/interop"]
fn iot443_pub_reaches_mosquitto_sub_through_haproxy_alpn() {
    let dir = temp_dir();
    let setup = BrokerSetup::start(dir.path());
    let config = setup.client_config(
        &dir.path().join("iot443.toml"),
        setup.haproxy.port,
        "cli-pub",
        Some(ALPN),
    );
    iot443_pub_reaches_mosquitto_sub(
        &config,
        &device_flags(&setup.pki.dir, setup.haproxy.port),
        &[],
    );
}

#[test]
#[ignore = "needs mosquitto, mosquitto clients and haproxy: run by .ci/interop"]
fn mosquitto_pub_reaches_iot443_sub_through_haproxy_alpn() {
    let dir = temp_dir();
    let setup = BrokerSetup::start(dir.path());
    let config = setup.client_config(
        &dir.path().join("iot443.toml"),
        setup.haproxy.port,
        "cli-sub",
        Some(ALPN),
    );
    mosquitto_pub_reaches_iot443_sub(
        &config,
        &device_flags(&setup.pki.dir, setup.haproxy.port),
        &[],
    );
}

#[test]
#[ignore = "needs mosquitto, mosquitto clients and haproxy: run by .ci/interop"]
fn iot443_pub_lines_at_qos1_all_reach_mosquitto_sub_through_haproxy_alpn() {
    const LINES: usize = 500;
    let dir = temp_dir();
    let setup = BrokerSetup::start(dir.path());
    let config = setup.client_config(
        &dir.path().join("iot443.toml"),
        setup.haproxy.port,
        "cli-lines",
        Some(ALPN),
    );
    let flags = device_flags(&setup.pki.dir, setup.haproxy.port);
    let mut sub = MosquittoSub::start(
        flags
            .iter()
            .cloned()
            .chain(["-t", "lines", "-q", "1", "-i", "mosq-lines"].map(OsString::from)),
    );
    let input: String = (0..LINES).map(|n| format!("line {n}\n")).collect();
    let mut command = iot443_command();
    command.arg("pub").arg("--config").arg(&config).args(["-t", "lines", "-l", "-q", "1"]);
    let published =
        Proc::spawn_with_input("iot443 pub -l", command, input.into_bytes()).wait_exit(TIMEOUT);
    assert!(published.status.success(), "iot443 pub -l failed: {published:?}");
    // One connection, QoS 1 both ways: mosquitto keeps the order.
    for n in 0..LINES {
        let message = sub.next_message();
        assert_eq!((message.payload.as_str(), message.qos), (format!("line {n}").as_str(), 1));
    }
}

#[test]
#[ignore = "needs mosquitto clients: run by .ci/interop"]
fn iot443_pub_reaches_mosquitto_sub_through_the_emulator() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    // The iot443.toml the emulator wrote, as it is: it must work whatever port the ALPN
    // listener got (here a free one, not 443, where alone iot443 offers x-amzn-mqtt-ca unasked).
    let config = emulator.pki().config_path();
    let flags = device_flags(emulator.dir(), emulator.alpn_port());
    iot443_pub_reaches_mosquitto_sub(&config, &flags, &["-i", "cli-pub"]);
}

#[test]
#[ignore = "needs mosquitto clients: run by .ci/interop"]
fn mosquitto_pub_reaches_iot443_sub_through_the_emulator() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let config = emulator.pki().config_path();
    let flags = device_flags(emulator.dir(), emulator.alpn_port());
    mosquitto_pub_reaches_iot443_sub(&config, &flags, &["-i", "cli-sub"]);
}
