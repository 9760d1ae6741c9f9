#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The emulator against Debian's `mosquitto_pub` and `mosquitto_sub` (libmosquitto, OpenSSL):
//! with `--tls-alpn x-amzn-mqtt-ca` and the device certificate they publish and subscribe
//! (QoS 0 and 1, retained, wildcards); without ALPN, with ALPN `mqtt`, without a client
//! certificate, or with a certificate of another CA they are refused, and the emulator logs why.

use iot443_emulator::pki::Pki;
use iot443_interop::emulator::pki_in;
use iot443_interop::mosquitto::{
    MosquittoSub, Received, device_flags, device_flags_with_alpn, mosquitto_pub, tls_flags,
};
use iot443_interop::{ALPN, EmulatorProcess, InProcessEmulator, temp_dir};
use std::ffi::OsString;
use std::path::Path;

fn publish(flags: &[OsString], extra: &[&str]) {
    let finished = mosquitto_pub(flags.iter().cloned().chain(extra.iter().map(OsString::from)));
    assert!(
        finished.status.success(),
        "mosquitto_pub {extra:?} failed ({}):\n{}",
        finished.status,
        finished.stderr_text()
    );
}

fn received(topic: &str, qos: u8, retain: bool, payload: &str) -> Received {
    Received { topic: topic.into(), qos, retain, payload: payload.into() }
}

#[test]
#[ignore = "needs mosquitto clients: run by .ci/interop"]
fn mosquitto_clients_exchange_qos0_and_qos1_with_a_wildcard_over_alpn() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let flags = device_flags(emulator.dir(), emulator.alpn_port());

    let mut sub = MosquittoSub::start(
        flags
            .iter()
            .cloned()
            .chain(["-t", "a/+/c", "-q", "1", "-i", "mosq-sub"].map(OsString::from)),
    );
    publish(&flags, &["-i", "mosq-pub", "-t", "a/b/c", "-q", "0", "-m", "zero"]);
    publish(&flags, &["-i", "mosq-pub", "-t", "a/x/c", "-q", "1", "-m", "one"]);
    // Does not match a/+/c; the QoS 1 publish after it is acknowledged only once routed.
    publish(&flags, &["-i", "mosq-pub", "-t", "a/b/d", "-q", "1", "-m", "no match"]);
    publish(&flags, &["-i", "mosq-pub", "-t", "a/yy/c", "-q", "1", "-m", "last"]);

    let mut got: Vec<Received> = (0..3).map(|_| sub.next_message()).collect();
    got.sort_by(|a, b| a.payload.cmp(&b.payload));
    assert_eq!(
        got,
        [
            received("a/yy/c", 1, false, "last"),
            received("a/x/c", 1, false, "one"),
            received("a/b/c", 0, false, "zero"),
        ]
    );
}

#[test]
#[ignore = "needs mosquitto clients: run by .ci/interop"]
fn retained_message_reaches_a_later_mosquitto_sub() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let flags = device_flags(emulator.dir(), emulator.alpn_port());

    publish(&flags, &["-i", "mosq-pub", "-t", "exact/topic", "-q", "1", "-r", "-m", "kept"]);
    // A fresh subscriber gets it at once, flagged retained.
    let mut sub = MosquittoSub::start(
        flags
            .iter()
            .cloned()
            .chain(["-t", "exact/topic", "-q", "1", "-C", "1", "-i", "late"].map(OsString::from)),
    );
    assert_eq!(sub.next_message(), received("exact/topic", 1, true, "kept"));
    let finished = sub.proc.wait_exit(iot443_interop::TIMEOUT);
    assert!(finished.status.success(), "mosquitto_sub -C 1: {}", finished.stderr_text());

    // IoT Core sends retained messages on SUBSCRIBE only for exact topics (AWS-IOT.md §3.7): a
    // wildcard subscriber's first message is the live one published after it subscribed.
    let mut wildcard = MosquittoSub::start(
        flags.iter().cloned().chain(["-t", "exact/+", "-q", "1", "-i", "wild"].map(OsString::from)),
    );
    publish(&flags, &["-i", "mosq-pub", "-t", "exact/live", "-q", "1", "-m", "live"]);
    assert_eq!(wildcard.next_message(), received("exact/live", 1, false, "live"));
}

#[test]
#[ignore = "needs mosquitto clients: run by .ci/interop"]
fn mqtts_listener_serves_mosquitto_clients_without_alpn() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let d = emulator.dir();
    let flags = device_flags_with_alpn(d, emulator.mqtts_port(), None);
    let mut sub = MosquittoSub::start(
        flags
            .iter()
            .cloned()
            .chain(["-t", "plain/#", "-q", "1", "-i", "mqtts-sub"].map(OsString::from)),
    );
    publish(&flags, &["-i", "mqtts-pub", "-t", "plain/8883", "-q", "1", "-m", "no alpn needed"]);
    assert_eq!(sub.next_message(), received("plain/8883", 1, false, "no alpn needed"));
}

/// Runs `mosquitto_pub` and then `mosquitto_sub` with `flags` against the emulator process:
/// both must exit non-zero, and for each the emulator must log a refusal of `kind` whose text
/// contains `reason`.
fn assert_both_refused(
    emulator: &mut EmulatorProcess,
    flags: &[OsString],
    kind: &str,
    reason: &str,
) {
    let publish = mosquitto_pub(
        flags
            .iter()
            .cloned()
            .chain(["-i", "refused-pub", "-t", "t", "-m", "m"].map(OsString::from)),
    );
    assert!(!publish.status.success(), "mosquitto_pub was not refused ({kind}): {publish:?}");
    let line = emulator.wait_refusal(kind);
    assert!(line.contains(reason), "emulator log for mosquitto_pub ({kind}): {line}");

    let mut command = std::process::Command::new(iot443_interop::paths::peer("mosquitto_sub"));
    command.args(flags).args(["-i", "refused-sub", "-t", "t", "-C", "1"]);
    let subscribe = iot443_interop::Proc::run("mosquitto_sub", command, iot443_interop::TIMEOUT);
    assert!(!subscribe.status.success(), "mosquitto_sub was not refused ({kind}): {subscribe:?}");
    let line = emulator.wait_refusal(kind);
    assert!(line.contains(reason), "emulator log for mosquitto_sub ({kind}): {line}");
}

fn device_identity(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    (dir.join("device.crt"), dir.join("device.key"))
}

#[test]
#[ignore = "needs mosquitto clients: run by .ci/interop"]
fn mosquitto_without_alpn_is_refused_and_logged() {
    // The field-reported alert mode; the default is the next test.
    let dir = temp_dir();
    let mut emulator = EmulatorProcess::start_with(dir.path(), &["--missing-alpn", "alert"]);
    let (cert, key) = device_identity(dir.path());
    let flags =
        tls_flags(emulator.alpn_addr.port(), &dir.path().join("ca.pem"), Some((&cert, &key)), None);
    assert_both_refused(&mut emulator, &flags, "missing_alpn", "the client offered no ALPN");
}

#[test]
#[ignore = "needs mosquitto clients: run by .ci/interop"]
fn mosquitto_without_alpn_reaches_the_http_server_and_fails_at_once() {
    // By default, as IoT Core: no ALPN is the WebSocket road's HTTP server, which answers
    // MQTT's CONNECT with HTTP 400 and closes.
    let dir = temp_dir();
    let mut emulator = EmulatorProcess::start(dir.path());
    let (cert, key) = device_identity(dir.path());
    let flags =
        tls_flags(emulator.alpn_addr.port(), &dir.path().join("ca.pem"), Some((&cert, &key)), None);
    let publish = mosquitto_pub(
        flags.iter().cloned().chain(["-i", "http-pub", "-t", "t", "-m", "m"].map(OsString::from)),
    );
    assert!(!publish.status.success(), "mosquitto_pub was not refused: {publish:?}");
    let line = emulator.wait_log("WebSocket road: not an HTTP/1.x request");
    assert!(line.contains("answered 400"), "{line}");
}

#[test]
#[ignore = "needs mosquitto clients: run by .ci/interop"]
fn mosquitto_with_alpn_mqtt_is_refused_and_logged() {
    let dir = temp_dir();
    let mut emulator = EmulatorProcess::start(dir.path());
    let (cert, key) = device_identity(dir.path());
    let flags = tls_flags(
        emulator.alpn_addr.port(),
        &dir.path().join("ca.pem"),
        Some((&cert, &key)),
        Some("mqtt"),
    );
    assert_both_refused(
        &mut emulator,
        &flags,
        "wrong_alpn",
        &format!("the client offered ALPN [\"mqtt\"] but not {ALPN}"),
    );
}

#[test]
#[ignore = "needs mosquitto clients: run by .ci/interop"]
fn mosquitto_without_client_certificate_is_refused_and_logged() {
    let dir = temp_dir();
    let mut emulator = EmulatorProcess::start(dir.path());
    let flags = tls_flags(emulator.alpn_addr.port(), &dir.path().join("ca.pem"), None, Some(ALPN));
    assert_both_refused(
        &mut emulator,
        &flags,
        "no_client_certificate",
        "the client presented no certificate",
    );
}

#[test]
#[ignore = "needs mosquitto clients: run by .ci/interop"]
fn mosquitto_with_certificate_of_another_ca_is_refused_and_logged() {
    let dir = temp_dir();
    let mut emulator = EmulatorProcess::start(dir.path());
    // A second PKI: its own CA, and a device certificate that CA issued.
    let foreign_dir = temp_dir();
    let foreign: Pki = pki_in(foreign_dir.path());
    let (cert, key) = device_identity(&foreign.dir);
    let flags = tls_flags(
        emulator.alpn_addr.port(),
        &dir.path().join("ca.pem"),
        Some((&cert, &key)),
        Some(ALPN),
    );
    assert_both_refused(
        &mut emulator,
        &flags,
        "unknown_ca",
        "the client certificate was not issued by the emulator's CA",
    );
}
