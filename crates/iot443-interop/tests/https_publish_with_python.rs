#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The emulator's HTTPS publish API against a plain HTTPS client written by others: Python's
//! `http.client` with the device certificate, `POST /topics/<topic>?qos=1` as AWS documents it,
//! on the 443-style listener with ALPN `x-amzn-http-ca` and on the 8443-style listener without
//! ALPN; an `iot443 sub` receives each message.

use iot443_interop::paths::peers_python;
use iot443_interop::process::Stream;
use iot443_interop::{InProcessEmulator, Proc, TIMEOUT, iot443_command, temp_dir};
use serde_json::Value;
use std::process::Command;

/// `python https_publish.py PORT FOLDER TOPIC PAYLOAD ALPN|-`: one POST; prints one JSON line
/// with the status, the body, the negotiated ALPN and the request id header.
const HTTPS_SCRIPT: &str = r#"
import http.client, json, ssl, sys, urllib.parse
port, folder, topic, payload, alpn = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
context = ssl.create_default_context(cafile=folder + "/ca.pem")
context.load_cert_chain(folder + "/device.crt", folder + "/device.key")
if alpn != "-":
    context.set_alpn_protocols([alpn])
connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=20)
path = "/topics/" + urllib.parse.quote(topic, safe="") + "?qos=1"
connection.request("POST", path, body=payload.encode())
response = connection.getresponse()
body = response.read().decode()
print(json.dumps({"status": response.status, "body": body,
                  "alpn": connection.sock.selected_alpn_protocol() if connection.sock else None,
                  "request_id": response.getheader("x-amzn-RequestId"),
                  "content_type": response.getheader("content-type")}), flush=True)
"#;

fn https_post(
    port: u16,
    folder: &std::path::Path,
    topic: &str,
    payload: &str,
    alpn: &str,
) -> Value {
    let scripts = temp_dir();
    let script = scripts.path().join("https_publish.py");
    std::fs::write(&script, HTTPS_SCRIPT).unwrap();
    let mut command = Command::new(peers_python());
    command.arg(&script).arg(port.to_string()).arg(folder).args([topic, payload, alpn]);
    let finished = Proc::run("python http.client", command, TIMEOUT);
    assert!(finished.status.success(), "the HTTPS client failed: {finished:?}");
    let mut lines = finished.stdout_json();
    assert_eq!(lines.len(), 1, "{finished:?}");
    lines.remove(0)
}

/// Starts `iot443 sub -t TOPIC -C 1 -q 1 -V --json` against the emulator, waits until it is
/// subscribed, POSTs `payload` with `post`, and returns the message it printed.
fn received_by_iot443_sub(
    emulator: &InProcessEmulator,
    topic: &str,
    post: impl FnOnce() -> Value,
) -> (Value, Value) {
    let mut command = iot443_command();
    command.arg("sub").arg("--config").arg(emulator.dir().join("iot443.toml"));
    command.args(["-t", topic, "-C", "1", "-q", "1", "-V", "--json", "-i", "https-sub"]);
    let mut sub = Proc::spawn("iot443 sub", command);
    sub.wait_stderr(TIMEOUT, |line| line.starts_with("subscribed to"));
    let answer = post();
    let line = sub
        .try_wait_line(Stream::Stdout, TIMEOUT, |_| true)
        .unwrap_or_else(|| panic!("iot443 sub printed no message\n{}", sub.describe()));
    let message: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let finished = sub.wait_exit(TIMEOUT);
    assert!(finished.status.success(), "iot443 sub -C 1 must exit 0: {finished:?}");
    (answer, message)
}

fn assert_ok_answer(answer: &Value) {
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["content_type"], "application/json", "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["message"], "OK", "{answer}");
    let trace_id = body["traceId"].as_str().unwrap_or_default();
    assert!(!trace_id.is_empty(), "no traceId: {answer}");
    assert_eq!(
        answer["request_id"].as_str(),
        Some(trace_id),
        "x-amzn-RequestId = traceId: {answer}"
    );
}

#[test]
#[ignore = "needs Python (the peers' venv): run by .ci/interop"]
fn python_https_post_with_alpn_x_amzn_http_ca_reaches_iot443_sub() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let port = emulator.alpn_port();
    let (answer, message) = received_by_iot443_sub(&emulator, "https/alpn", || {
        https_post(port, emulator.dir(), "https/alpn", "hello over https 443", "x-amzn-http-ca")
    });
    assert_ok_answer(&answer);
    assert_eq!(answer["alpn"], "x-amzn-http-ca", "{answer}");
    assert_eq!(message["topic"], "https/alpn", "{message}");
    assert_eq!(message["payload"], "hello over https 443", "{message}");
    assert_eq!(message["qos"], 1, "{message}");
}

#[test]
#[ignore = "needs Python (the peers' venv): run by .ci/interop"]
fn python_https_post_on_the_8443_listener_without_alpn_reaches_iot443_sub() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let port = emulator.https_port();
    let (answer, message) = received_by_iot443_sub(&emulator, "https/8443", || {
        https_post(port, emulator.dir(), "https/8443", "hello over https 8443", "-")
    });
    assert_ok_answer(&answer);
    assert_eq!(answer["alpn"], Value::Null, "{answer}");
    assert_eq!(message["topic"], "https/8443", "{message}");
    assert_eq!(message["payload"], "hello over https 8443", "{message}");
}

#[test]
#[ignore = "needs Python (the peers' venv): run by .ci/interop"]
fn python_https_post_to_a_wildcard_topic_gets_400_as_json() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let answer = https_post(emulator.https_port(), emulator.dir(), "a/+/b", "x", "-");
    assert_eq!(answer["status"], 400, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
}
