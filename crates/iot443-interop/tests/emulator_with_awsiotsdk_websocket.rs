#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The emulator's WebSocket road against the official signer: awsiotsdk's
//! `mqtt_connection_builder.websockets_with_default_aws_signing` (awscrt's SigV4 and WebSocket)
//! connects with the emulator's `aws-credentials`, subscribes, publishes at QoS 1 and receives
//! the message back; with a wrong secret or another region the upgrade is refused. Also
//! Python's `http.client` publishing over HTTPS (ALPN `x-amzn-http-ca` on the 443-style
//! listener, and the HTTPS listener without ALPN).

use iot443_interop::paths::peers_python;
use iot443_interop::{InProcessEmulator, Proc, TIMEOUT, temp_dir};
use serde_json::Value;
use std::process::Command;

/// `python ws_client.py PORT FOLDER CLIENT_ID REGION` with the key in `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY`. Prints JSON lines: connected, subscribed, published, message, done;
/// or `{"event": "error"}` and exit 1.
const WS_SCRIPT: &str = r#"
import json, os, sys, threading
from awscrt import auth, mqtt
from awsiot import mqtt_connection_builder

port, folder, client_id, region = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
LIMIT = 20
TOPIC = "ws/" + client_id + "/echo"

def emit(**fields):
    print(json.dumps(fields), flush=True)

def fail(error):
    emit(event="error", error="%s: %s" % (type(error).__name__, error))
    sys.exit(1)

credentials = auth.AwsCredentialsProvider.new_static(
    os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
connection = mqtt_connection_builder.websockets_with_default_aws_signing(
    endpoint="localhost", port=port, region=region, credentials_provider=credentials,
    ca_filepath=folder + "/ca.pem", client_id=client_id, clean_session=True, keep_alive_secs=30)

received = threading.Event()
def on_message(topic, payload, dup, qos, retain, **kwargs):
    emit(event="message", topic=topic, payload=payload.decode(), qos=int(qos))
    received.set()

try:
    emit(event="connected", **connection.connect().result(timeout=LIMIT))
    future, _ = connection.subscribe(topic=TOPIC, qos=mqtt.QoS.AT_LEAST_ONCE, callback=on_message)
    emit(event="subscribed", qos=int(future.result(timeout=LIMIT)["qos"]))
    future, _ = connection.publish(topic=TOPIC, payload="hello over websocket", qos=mqtt.QoS.AT_LEAST_ONCE)
    emit(event="published", packet_id=future.result(timeout=LIMIT)["packet_id"])
    if not received.wait(LIMIT):
        fail(TimeoutError("the message did not come back within %d s" % LIMIT))
    connection.disconnect().result(timeout=LIMIT)
except Exception as error:
    fail(error)
emit(event="done")
"#;

struct Outcome {
    ok: bool,
    events: Vec<Value>,
    stderr: String,
}

fn run_ws(emulator: &InProcessEmulator, client_id: &str, secret: &str, region: &str) -> Outcome {
    let scripts = temp_dir();
    let script = scripts.path().join("ws_client.py");
    std::fs::write(&script, WS_SCRIPT).unwrap();
    let (credentials, _) = emulator.aws_credentials();
    let mut command = Command::new(peers_python());
    command.arg(&script).arg(emulator.alpn_port().to_string()).arg(emulator.dir());
    command.arg(client_id).arg(region);
    command.env("AWS_ACCESS_KEY_ID", &credentials.access_key_id);
    command.env("AWS_SECRET_ACCESS_KEY", secret);
    let finished = Proc::run("awsiotsdk websocket", command, TIMEOUT * 2);
    let events = finished.stdout_json();
    Outcome { ok: finished.status.success(), events, stderr: finished.stderr_text() }
}

#[test]
#[ignore = "needs awsiotsdk in the peers' Python venv: run by .ci/interop"]
fn awsiotsdk_websocket_with_the_emulators_credentials_round_trips_qos1() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let (credentials, region) = emulator.aws_credentials();
    let (secret, region) = (credentials.secret_access_key.clone(), region.to_owned());
    let Outcome { ok, events, stderr } = run_ws(&emulator, "sdk-ws", &secret, &region);
    assert!(ok, "awsiotsdk over WebSocket failed: {events:?}\n{stderr}");
    let mut names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["connected", "done", "message", "published", "subscribed"], "{events:?}");
    let message = events.iter().find(|e| e["event"] == "message").unwrap();
    assert_eq!(message["topic"], "ws/sdk-ws/echo");
    assert_eq!(message["payload"], "hello over websocket");
    assert_eq!(message["qos"], 1);
}

#[test]
#[ignore = "needs awsiotsdk in the peers' Python venv: run by .ci/interop"]
fn awsiotsdk_websocket_with_a_wrong_secret_or_region_is_refused() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let (credentials, region) = emulator.aws_credentials();
    let (secret, region) = (credentials.secret_access_key.clone(), region.to_owned());
    let wrong_secret = "x".repeat(secret.len());
    for (secret, region) in
        [(wrong_secret.as_str(), region.as_str()), (secret.as_str(), "eu-north-1")]
    {
        let Outcome { ok, events, stderr } = run_ws(&emulator, "sdk-ws-bad", secret, region);
        assert!(!ok, "the upgrade was not refused ({region}): {events:?}\n{stderr}");
        let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
        assert_eq!(names, ["error"], "{events:?}\n{stderr}");
        let error = events[0]["error"].as_str().unwrap_or_default();
        assert!(error.contains("UPGRADE"), "expected a refused WebSocket upgrade: {error}");
    }
}

/// `python https_publish.py PORT FOLDER ALPN TOPIC`: one `POST /topics/TOPIC?qos=1` with the
/// device certificate, ALPN `ALPN` (or none for `none`); prints the status and the JSON body.
const HTTPS_SCRIPT: &str = r#"
import http.client, json, ssl, sys
port, folder, alpn, topic = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=folder + "/ca.pem")
context.load_cert_chain(folder + "/device.crt", folder + "/device.key")
if alpn != "none":
    context.set_alpn_protocols([alpn])
connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=20)
connection.request("POST", "/topics/" + topic + "?qos=1", body=b"from http.client")
response = connection.getresponse()
print(json.dumps({"status": response.status, "body": json.loads(response.read()),
                  "request_id": response.getheader("x-amzn-RequestId")}), flush=True)
"#;

#[test]
#[ignore = "needs the peers' Python venv: run by .ci/interop"]
fn python_http_client_publishes_on_both_https_roads() {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let scripts = temp_dir();
    let script = scripts.path().join("https_publish.py");
    std::fs::write(&script, HTTPS_SCRIPT).unwrap();
    for (port, alpn) in [(emulator.alpn_port(), "x-amzn-http-ca"), (emulator.https_port(), "none")]
    {
        let mut command = Command::new(peers_python());
        command.arg(&script).arg(port.to_string()).arg(emulator.dir()).arg(alpn);
        command.arg("sdk%2Fhttps");
        let finished = Proc::run("http.client", command, TIMEOUT);
        assert!(finished.status.success(), "{}", finished.stderr_text());
        let answer = &finished.stdout_json()[0];
        assert_eq!(answer["status"], 200, "{answer}");
        assert_eq!(answer["body"]["message"], "OK", "{answer}");
        assert_eq!(answer["body"]["traceId"], answer["request_id"], "{answer}");
    }
}
