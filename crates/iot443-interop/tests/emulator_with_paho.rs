#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The emulator against paho-mqtt 2.x (Python, the `ssl` module of CPython with OpenSSL):
//! with `set_alpn_protocols(["x-amzn-mqtt-ca"])` and the device certificate it subscribes to a
//! wildcard (and an exact topic) and gets its QoS 0, QoS 1 and retained messages back; without
//! ALPN, with ALPN `mqtt`, without a client certificate, or with a certificate of another CA it
//! is refused, and the emulator logs why.

use iot443_interop::emulator::pki_in;
use iot443_interop::paths::peers_python;
use iot443_interop::{ALPN, EmulatorProcess, InProcessEmulator, Proc, TIMEOUT, temp_dir};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// Connects with the emulator's device identity, publishes a retained message, subscribes to a
/// wildcard and to the retained message's exact topic (IoT Core delivers a retained message on
/// SUBSCRIBE only for an exact-topic filter, AWS-IOT.md §3.7), publishes QoS 0 and QoS 1
/// messages and prints every event and message as one JSON object per line. Exits 1 with
/// `{"event": "error"}` when anything fails or does not happen within the time limit.
const PAHO_SCRIPT: &str = r#"
import json, ssl, sys, threading
import paho.mqtt.client as mqtt

host, port, folder, alpn, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
# The folder of the client certificate (device.crt, device.key), or "none" for no certificate.
identity = sys.argv[6] if len(sys.argv) > 6 else folder
LIMIT = 20

def emit(**fields):
    print(json.dumps(fields), flush=True)

def fail(error):
    emit(event="error", error=str(error))
    sys.exit(1)

context = ssl.create_default_context(cafile=folder + "/ca.pem")
if identity != "none":
    context.load_cert_chain(identity + "/device.crt", identity + "/device.key")
if alpn != "none":
    context.set_alpn_protocols([alpn])

client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-" + mode, clean_session=True)
client.tls_set_context(context)
connected, subscribed = threading.Event(), threading.Event()
messages, done = [], threading.Event()

def on_connect(client, userdata, flags, reason_code, properties):
    emit(event="connected", reason=str(reason_code), alpn=client.socket().selected_alpn_protocol())
    connected.set()

def on_subscribe(client, userdata, mid, reason_codes, properties):
    emit(event="subscribed", granted=[rc.value for rc in reason_codes])
    subscribed.set()

def on_message(client, userdata, message):
    emit(event="message", topic=message.topic, payload=message.payload.decode(),
         qos=message.qos, retain=bool(message.retain))
    messages.append(message)
    if len(messages) >= 3:
        done.set()

client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
try:
    client.connect(host, port, keepalive=60)
except Exception as error:
    fail(error)
client.loop_start()
if not connected.wait(LIMIT):
    fail("no CONNACK within %d s" % LIMIT)

client.publish("paho/kept", "retained", qos=1, retain=True).wait_for_publish(LIMIT)
client.subscribe([("paho/+/+", 1), ("paho/kept", 1)])
if not subscribed.wait(LIMIT):
    fail("no SUBACK within %d s" % LIMIT)
client.publish("paho/a/b", "qos0", qos=0)
client.publish("paho/a/c", "qos1", qos=1).wait_for_publish(LIMIT)
if not done.wait(LIMIT):
    fail("only %d of 3 messages within %d s" % (len(messages), LIMIT))
client.disconnect()
client.loop_stop()
emit(event="done")
"#;

fn run_paho(emulator_dir: &Path, port: u16, alpn: &str, mode: &str) -> (bool, Vec<Value>, String) {
    run_paho_as(emulator_dir, Some(emulator_dir), port, alpn, mode)
}

/// Like `run_paho`, trusting the CA of `emulator_dir` but presenting the device certificate of
/// `identity_dir` (none when `None`).
fn run_paho_as(
    emulator_dir: &Path,
    identity_dir: Option<&Path>,
    port: u16,
    alpn: &str,
    mode: &str,
) -> (bool, Vec<Value>, String) {
    let scripts = temp_dir();
    let script = scripts.path().join("paho_client.py");
    std::fs::write(&script, PAHO_SCRIPT).unwrap();
    let mut command = Command::new(peers_python());
    command
        .arg(&script)
        .arg("localhost")
        .arg(port.to_string())
        .arg(emulator_dir)
        .arg(alpn)
        .arg(mode)
        .arg(identity_dir.map_or_else(|| "none".into(), |dir| dir.as_os_str().to_owned()));
    let finished = Proc::run("paho-mqtt", command, TIMEOUT * 2);
    let events = finished.stdout_json();
    (finished.status.success(), events, finished.stderr_text())
}

fn of_event<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|event| event["event"] == name).collect()
}

#[test]
#[ignore = "needs paho-mqtt in the peers' Python venv: run by .ci/interop"]
fn paho_with_alpn_publishes_and_receives_qos0_qos1_and_retained() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let (ok, events, stderr) = run_paho(emulator.dir(), emulator.alpn_port(), ALPN, "alpn");
    assert!(ok, "paho failed: {events:?}\n{stderr}");

    let connected = of_event(&events, "connected");
    assert_eq!(connected.len(), 1, "{events:?}");
    assert_eq!(connected[0]["alpn"], ALPN, "the emulator must select {ALPN}: {events:?}");
    assert_eq!(of_event(&events, "subscribed")[0]["granted"], json!([1, 1]), "{events:?}");

    let mut messages: Vec<Value> = of_event(&events, "message")
        .into_iter()
        .map(|m| json!([m["topic"], m["payload"], m["qos"], m["retain"]]))
        .collect();
    messages.sort_by_key(|m| m[0].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        messages,
        [
            json!(["paho/a/b", "qos0", 0, false]),
            json!(["paho/a/c", "qos1", 1, false]),
            json!(["paho/kept", "retained", 1, true]),
        ],
        "{events:?}"
    );
    assert_eq!(of_event(&events, "done").len(), 1, "{events:?}");
}

/// Asserts that paho failed without a CONNACK, with exactly one `error` event, and that the
/// emulator logged a refusal of `kind` whose text contains `reason`; returns the error text.
fn assert_refused_and_logged(
    emulator: &mut EmulatorProcess,
    (ok, events, stderr): (bool, Vec<Value>, String),
    kind: &str,
    reason: &str,
) -> String {
    assert!(!ok, "paho was not refused ({kind}): {events:?}\n{stderr}");
    assert!(of_event(&events, "connected").is_empty(), "{events:?}");
    let errors = of_event(&events, "error");
    assert_eq!(errors.len(), 1, "{events:?}\n{stderr}");
    let line = emulator.wait_refusal(kind);
    assert!(line.contains(reason), "emulator log for paho ({kind}): {line}");
    errors[0]["error"].as_str().unwrap_or_default().to_owned()
}

#[test]
#[ignore = "needs paho-mqtt in the peers' Python venv: run by .ci/interop"]
fn paho_without_alpn_is_refused() {
    // The field-reported alert mode; by default no ALPN is the WebSocket road (next test).
    let dir = temp_dir();
    let mut emulator = EmulatorProcess::start_with(dir.path(), &["--missing-alpn", "alert"]);
    let outcome = run_paho(dir.path(), emulator.alpn_addr.port(), "none", "noalpn");
    let error = assert_refused_and_logged(
        &mut emulator,
        outcome,
        "missing_alpn",
        "the client offered no ALPN",
    );
    // OpenSSL's name for the alert the emulator sends: no_application_protocol (120).
    let error = error.to_ascii_uppercase();
    assert!(
        error.contains("NO APPLICATION PROTOCOL") || error.contains("NO_APPLICATION_PROTOCOL"),
        "{error}"
    );
}

#[test]
#[ignore = "needs paho-mqtt in the peers' Python venv: run by .ci/interop"]
fn paho_without_alpn_reaches_the_http_server_and_never_connects() {
    // Each CONNECT is answered with HTTP 400 and a close; paho tries again until the script's
    // time limit.
    let dir = temp_dir();
    let mut emulator = EmulatorProcess::start(dir.path());
    let (ok, events, stderr) =
        run_paho(dir.path(), emulator.alpn_addr.port(), "none", "noalpnhttp");
    assert!(!ok, "paho was not refused: {events:?}\n{stderr}");
    assert!(of_event(&events, "connected").is_empty(), "{events:?}");
    let line = emulator.wait_log("WebSocket road: not an HTTP/1.x request");
    assert!(line.contains("answered 400"), "{line}");
}

#[test]
#[ignore = "needs paho-mqtt in the peers' Python venv: run by .ci/interop"]
fn paho_with_alpn_mqtt_is_refused_and_logged() {
    let dir = temp_dir();
    let mut emulator = EmulatorProcess::start(dir.path());
    let outcome = run_paho(dir.path(), emulator.alpn_addr.port(), "mqtt", "mqttalpn");
    assert_refused_and_logged(
        &mut emulator,
        outcome,
        "wrong_alpn",
        &format!("the client offered ALPN [\"mqtt\"] but not {ALPN}"),
    );
}

#[test]
#[ignore = "needs paho-mqtt in the peers' Python venv: run by .ci/interop"]
fn paho_without_client_certificate_is_refused_and_logged() {
    let dir = temp_dir();
    let mut emulator = EmulatorProcess::start(dir.path());
    let outcome = run_paho_as(dir.path(), None, emulator.alpn_addr.port(), ALPN, "nocert");
    assert_refused_and_logged(
        &mut emulator,
        outcome,
        "no_client_certificate",
        "the client presented no certificate",
    );
}

#[test]
#[ignore = "needs paho-mqtt in the peers' Python venv: run by .ci/interop"]
fn paho_with_certificate_of_another_ca_is_refused_and_logged() {
    let dir = temp_dir();
    let mut emulator = EmulatorProcess::start(dir.path());
    // A second PKI: its own CA, and a device certificate that CA issued.
    let foreign_dir = temp_dir();
    let foreign = pki_in(foreign_dir.path());
    let outcome =
        run_paho_as(dir.path(), Some(&foreign.dir), emulator.alpn_addr.port(), ALPN, "foreign");
    assert_refused_and_logged(
        &mut emulator,
        outcome,
        "unknown_ca",
        "the client certificate was not issued by the emulator's CA",
    );
}

#[test]
#[ignore = "needs paho-mqtt in the peers' Python venv: run by .ci/interop"]
fn paho_without_alpn_works_on_the_mqtts_listener() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let (ok, events, stderr) = run_paho(emulator.dir(), emulator.mqtts_port(), "none", "mqtts");
    assert!(ok, "paho on the MQTTS listener failed: {events:?}\n{stderr}");
    assert_eq!(of_event(&events, "connected")[0]["alpn"], Value::Null, "{events:?}");
    assert_eq!(of_event(&events, "message").len(), 3, "{events:?}");
}
