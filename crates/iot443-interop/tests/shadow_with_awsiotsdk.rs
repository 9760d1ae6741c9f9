#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The emulator's Device Shadow service against the official AWS IoT Device SDK v2 for Python:
//! `awsiot.iotshadow.IotShadowClient`, the class AWS's own shadow samples use, reads every answer
//! into its modelled classes (`GetShadowResponse`, `UpdateShadowResponse`, `ShadowDeltaUpdatedEvent`,
//! `ShadowUpdatedEvent`, `DeleteShadowResponse`, `ErrorResponse`). So a field the emulator names
//! differently from IoT Core, or a payload shaped differently, shows up here as a missing value.
//!
//! The connection is built from `awscrt` with `alpn_list = ["x-amzn-mqtt-ca"]` on a free port
//! (the SDK's builder offers ALPN by itself only on port 443; `emulator_with_awsiotsdk.rs` covers
//! that).

use iot443_interop::paths::peers_python;
use iot443_interop::{InProcessEmulator, Proc, TIMEOUT, temp_dir};
use serde_json::{Value, json};
use std::process::Command;

/// `python shadow_client.py PORT FOLDER THING`: runs the scenario and prints one JSON object per
/// answer (`{"step": ..., ...}`), then `{"step": "done"}`; `{"step": "error"}` and exit 1 when
/// anything fails or an answer does not come within the limit.
const SHADOW_SCRIPT: &str = r#"
import datetime, json, queue, sys
from awscrt import io, mqtt
from awsiot import iotshadow

port, folder, thing = int(sys.argv[1]), sys.argv[2], sys.argv[3]
NAMED = "config"
LIMIT = 20
QOS = mqtt.QoS.AT_LEAST_ONCE

def emit(**fields):
    print(json.dumps(fields), flush=True)

def fail(error):
    emit(step="error", error="%s: %s" % (type(error).__name__, error))
    sys.exit(1)

options = io.TlsContextOptions.create_client_with_mtls_from_path(folder + "/device.crt", folder + "/device.key")
options.override_default_trust_store_from_path(None, folder + "/ca.pem")
options.alpn_list = ["x-amzn-mqtt-ca"]
client = mqtt.Client(io.ClientBootstrap.get_or_create_static_default(), io.ClientTlsContext(options))
connection = mqtt.Connection(client=client, host_name="localhost", port=port,
    client_id="sdk-shadow-" + thing, clean_session=True, keep_alive_secs=30)

answers = queue.Queue()
def collect(kind):
    def callback(answer):
        answers.put((kind, answer))
    return callback

def next_answer():
    try:
        return answers.get(timeout=LIMIT)
    except queue.Empty:
        raise TimeoutError("no shadow answer within %d s" % LIMIT)

def answer(expected):
    kind, value = next_answer()
    if kind not in expected:
        raise AssertionError("expected one of %s, got %s: %s" % (expected, kind, plain(value)))
    return kind, value

def plain(value):
    # The SDK's modelled classes (with __slots__), datetimes and containers as plain JSON values.
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None and not k.endswith("_is_nullable")}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    names = getattr(value, "__slots__", None) or list(getattr(value, "__dict__", {}).keys())
    if names:
        return plain({name: getattr(value, name, None) for name in names})
    return value

def show(kind, value):
    return dict(kind=kind, **plain(value))

def classic(**fields):
    return dict(thing_name=thing, **fields)

def named(**fields):
    return dict(thing_name=thing, shadow_name=NAMED, **fields)

try:
    connection.connect().result(timeout=LIMIT)
    shadow = iotshadow.IotShadowClient(connection)
    subscriptions = [
        (shadow.subscribe_to_get_shadow_accepted, iotshadow.GetShadowSubscriptionRequest(**classic()), "get/accepted"),
        (shadow.subscribe_to_get_shadow_rejected, iotshadow.GetShadowSubscriptionRequest(**classic()), "get/rejected"),
        (shadow.subscribe_to_update_shadow_accepted, iotshadow.UpdateShadowSubscriptionRequest(**classic()), "update/accepted"),
        (shadow.subscribe_to_update_shadow_rejected, iotshadow.UpdateShadowSubscriptionRequest(**classic()), "update/rejected"),
        (shadow.subscribe_to_shadow_delta_updated_events, iotshadow.ShadowDeltaUpdatedSubscriptionRequest(**classic()), "update/delta"),
        (shadow.subscribe_to_shadow_updated_events, iotshadow.ShadowUpdatedSubscriptionRequest(**classic()), "update/documents"),
        (shadow.subscribe_to_delete_shadow_accepted, iotshadow.DeleteShadowSubscriptionRequest(**classic()), "delete/accepted"),
        (shadow.subscribe_to_delete_shadow_rejected, iotshadow.DeleteShadowSubscriptionRequest(**classic()), "delete/rejected"),
        (shadow.subscribe_to_get_named_shadow_accepted, iotshadow.GetNamedShadowSubscriptionRequest(**named()), "named get/accepted"),
        (shadow.subscribe_to_update_named_shadow_accepted, iotshadow.UpdateNamedShadowSubscriptionRequest(**named()), "named update/accepted"),
        (shadow.subscribe_to_named_shadow_delta_updated_events, iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest(**named()), "named update/delta"),
    ]
    for subscribe, request, kind in subscriptions:
        future, _ = subscribe(request=request, qos=QOS, callback=collect(kind))
        future.result(timeout=LIMIT)

    # 1. A thing without a shadow: get is rejected with 404.
    shadow.publish_get_shadow(iotshadow.GetShadowRequest(**classic(client_token="get-1")), QOS).result(timeout=LIMIT)
    emit(step="get new", **show(*answer(["get/rejected"])))

    # 2. Reported first: accepted, and documents (no delta: nothing desired).
    state = iotshadow.ShadowState(reported={"temperature": 21, "windowOpen": False})
    shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(**classic(state=state, client_token="up-1")), QOS).result(timeout=LIMIT)
    for _ in range(2):
        emit(step="update reported", **show(*answer(["update/accepted", "update/documents"])))

    # 3. Then desired: accepted, documents, and the delta.
    state = iotshadow.ShadowState(desired={"windowOpen": True})
    shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(**classic(state=state, client_token="up-2")), QOS).result(timeout=LIMIT)
    for _ in range(3):
        emit(step="update desired", **show(*answer(["update/accepted", "update/documents", "update/delta"])))

    # 4. The whole document.
    shadow.publish_get_shadow(iotshadow.GetShadowRequest(**classic(client_token="get-2")), QOS).result(timeout=LIMIT)
    emit(step="get", **show(*answer(["get/accepted"])))

    # 5. A stale version is refused with 409.
    state = iotshadow.ShadowState(reported={"windowOpen": True})
    shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(**classic(state=state, version=1, client_token="up-3")), QOS).result(timeout=LIMIT)
    emit(step="stale version", **show(*answer(["update/rejected"])))

    # 6. A named shadow is its own document, with its own version.
    state = iotshadow.ShadowState(desired={"interval": 5})
    shadow.publish_update_named_shadow(iotshadow.UpdateNamedShadowRequest(**named(state=state, client_token="named-1")), QOS).result(timeout=LIMIT)
    for _ in range(2):
        emit(step="named update", **show(*answer(["named update/accepted", "named update/delta"])))
    shadow.publish_get_named_shadow(iotshadow.GetNamedShadowRequest(**named(client_token="named-2")), QOS).result(timeout=LIMIT)
    emit(step="named get", **show(*answer(["named get/accepted"])))

    # 7. Delete, then get (404), then delete again (404).
    shadow.publish_delete_shadow(iotshadow.DeleteShadowRequest(**classic(client_token="del-1")), QOS).result(timeout=LIMIT)
    emit(step="delete", **show(*answer(["delete/accepted"])))
    shadow.publish_get_shadow(iotshadow.GetShadowRequest(**classic(client_token="get-3")), QOS).result(timeout=LIMIT)
    emit(step="get deleted", **show(*answer(["get/rejected"])))
    shadow.publish_delete_shadow(iotshadow.DeleteShadowRequest(**classic(client_token="del-2")), QOS).result(timeout=LIMIT)
    emit(step="delete deleted", **show(*answer(["delete/rejected"])))

    # 8. Created again, the version continues.
    state = iotshadow.ShadowState(reported={"temperature": 22})
    shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(**classic(state=state, client_token="up-4")), QOS).result(timeout=LIMIT)
    for _ in range(2):
        emit(step="update again", **show(*answer(["update/accepted", "update/documents"])))
    connection.disconnect().result(timeout=LIMIT)
except Exception as error:
    fail(error)
emit(step="done")
"#;

fn run_scenario(thing: &str) -> Vec<Value> {
    let dir = temp_dir();
    let emulator = InProcessEmulator::start(dir.path());
    let scripts = temp_dir();
    let script = scripts.path().join("shadow_client.py");
    std::fs::write(&script, SHADOW_SCRIPT).unwrap();
    let mut command = Command::new(peers_python());
    command.arg(&script).arg(emulator.alpn_port().to_string()).arg(emulator.dir()).arg(thing);
    let finished = Proc::run("awsiotsdk shadow", command, TIMEOUT * 3);
    let answers = finished.stdout_json();
    assert!(
        finished.status.success(),
        "the awsiotsdk shadow scenario failed: {answers:#?}\n{}",
        finished.stderr_text()
    );
    assert_eq!(answers.last().map(|a| a["step"].clone()), Some(json!("done")), "{answers:#?}");
    answers
}

/// The answers of one step, by kind.
fn step<'a>(answers: &'a [Value], name: &str, kind: &str) -> &'a Value {
    answers
        .iter()
        .find(|a| a["step"] == name && a["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} answer in step {name:?}: {answers:#?}"))
}

#[test]
#[ignore = "needs awsiotsdk in the peers' Python venv: run by .ci/interop"]
fn awsiotsdk_shadow_client_reads_every_answer_of_the_emulator() {
    let answers = run_scenario("sdk-lamp");

    let new = step(&answers, "get new", "get/rejected");
    assert_eq!(new["code"], 404, "{new}");
    assert_eq!(new["message"], "No shadow exists with name: 'sdk-lamp'", "{new}");
    assert_eq!(new["client_token"], "get-1", "{new}");

    let accepted = step(&answers, "update reported", "update/accepted");
    assert_eq!(accepted["version"], 1, "{accepted}");
    assert_eq!(accepted["client_token"], "up-1", "{accepted}");
    assert_eq!(accepted["state"]["reported"], json!({"temperature": 21, "windowOpen": false}));
    assert!(accepted["timestamp"].is_number(), "{accepted}");
    let documents = step(&answers, "update reported", "update/documents");
    assert_eq!(documents["current"]["version"], 1, "{documents}");
    assert_eq!(documents["current"]["state"]["reported"]["temperature"], 21, "{documents}");
    assert!(
        !answers.iter().any(|a| a["step"] == "update reported" && a["kind"] == "update/delta"),
        "an update of reported alone must not publish a delta: {answers:#?}"
    );

    let delta = step(&answers, "update desired", "update/delta");
    assert_eq!(delta["state"], json!({"windowOpen": true}), "{delta}");
    assert_eq!(delta["version"], 2, "{delta}");
    assert_eq!(delta["client_token"], "up-2", "{delta}");
    let documents = step(&answers, "update desired", "update/documents");
    assert_eq!(documents["previous"]["version"], 1, "{documents}");
    assert_eq!(documents["current"]["version"], 2, "{documents}");
    assert_eq!(documents["current"]["state"]["desired"], json!({"windowOpen": true}));

    let got = step(&answers, "get", "get/accepted");
    assert_eq!(got["version"], 2, "{got}");
    assert_eq!(got["state"]["desired"], json!({"windowOpen": true}), "{got}");
    assert_eq!(got["state"]["reported"], json!({"temperature": 21, "windowOpen": false}));
    assert_eq!(got["state"]["delta"], json!({"windowOpen": true}), "{got}");
    assert!(got["metadata"]["reported"]["temperature"]["timestamp"].is_number(), "{got}");

    let stale = step(&answers, "stale version", "update/rejected");
    assert_eq!(
        (stale["code"].clone(), stale["message"].clone()),
        (json!(409), json!("Version conflict"))
    );
    assert_eq!(stale["client_token"], "up-3", "{stale}");

    let named = step(&answers, "named update", "named update/accepted");
    assert_eq!(named["version"], 1, "a named shadow has its own version: {named}");
    let named_delta = step(&answers, "named update", "named update/delta");
    assert_eq!(named_delta["state"], json!({"interval": 5}), "{named_delta}");
    let named_get = step(&answers, "named get", "named get/accepted");
    assert_eq!(named_get["state"]["desired"], json!({"interval": 5}), "{named_get}");

    let deleted = step(&answers, "delete", "delete/accepted");
    assert_eq!(deleted["version"], 2, "{deleted}");
    assert_eq!(deleted["client_token"], "del-1", "{deleted}");
    assert_eq!(step(&answers, "get deleted", "get/rejected")["code"], 404);
    assert_eq!(step(&answers, "delete deleted", "delete/rejected")["code"], 404);

    let again = step(&answers, "update again", "update/accepted");
    assert_eq!(again["version"], 3, "the version continues after a delete: {again}");
}
