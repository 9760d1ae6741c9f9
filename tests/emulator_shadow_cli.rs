//! `iot443 emulator shadow`: the cloud side of a Device Shadow against a running
//! `iot443 emulator` process. A desired change made with it reaches a subscribed device as a
//! delta; a stale version exits 7 with the service's code and message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::{LIMIT, start_emulator};
use iot443::{Client, Config, QoS};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

async fn cloud(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iot443"));
    command.args(["emulator", "shadow"]).args(args).arg("--dir").arg(dir);
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desired_change_from_the_cloud_side_reaches_a_device_as_a_delta() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, port) = start_emulator(dir.path());
    let mut config = Config::load(&dir.path().join("iot443.toml")).unwrap();
    config.port = port;
    config.client_id = "shadow-device".into();
    let (client, _events) = Client::connect(&config).await.unwrap();
    let mut deltas =
        client.subscribe("$aws/things/lamp/shadow/update/delta", QoS::AtLeastOnce).await.unwrap();

    let reported =
        cloud(dir.path(), &["update", "lamp", "--reported", r#"{"windowOpen":false}"#]).await;
    assert!(reported.status.success(), "{}", String::from_utf8_lossy(&reported.stderr));
    let updated =
        cloud(dir.path(), &["update", "lamp", "--desired", r#"{"windowOpen":true}"#]).await;
    assert!(updated.status.success(), "{}", String::from_utf8_lossy(&updated.stderr));
    let accepted: Value = serde_json::from_slice(&updated.stdout).unwrap();
    assert_eq!(accepted["version"], 2, "{accepted}");
    assert_eq!(accepted["state"]["desired"]["windowOpen"], true, "{accepted}");

    let delta = tokio::time::timeout(LIMIT, deltas.recv()).await.expect("no delta").unwrap();
    let delta: Value = serde_json::from_slice(&delta.payload).unwrap();
    assert_eq!(delta["state"], serde_json::json!({"windowOpen": true}), "{delta}");
    assert_eq!(delta["version"], 2, "{delta}");

    let got = cloud(dir.path(), &["get", "lamp", "--json"]).await;
    assert!(got.status.success());
    let text = String::from_utf8(got.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "--json prints one line: {text}");
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["state"]["delta"]["windowOpen"], true, "{document}");

    let stale = cloud(dir.path(), &["update", "lamp", "--reported", "{}", "--version", "1"]).await;
    assert_eq!(stale.status.code(), Some(7), "a rejection exits 7");
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert!(stderr.contains("shadow update of lamp rejected: 409 Version conflict"), "{stderr}");

    let missing = cloud(dir.path(), &["get", "lamp", "--name", "nothing"]).await;
    assert_eq!(missing.status.code(), Some(7));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("404 No shadow exists with name: 'nothing'"), "{stderr}");

    let bad = cloud(dir.path(), &["update", "lamp", "--desired", "{not json"]).await;
    assert_eq!(bad.status.code(), Some(2), "bad JSON is a usage error, caught before sending");
    client.disconnect().await.unwrap();
}
