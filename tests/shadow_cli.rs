//! `iot443 shadow` and `iot443 demo --shadow` against a running `iot443 emulator` process: a get
//! of a new thing exits 7 with the service's code and message, an update then a get prints the
//! document, `watch` prints a delta, a stale version exits 7, and the C SDK's shadow_sample
//! prints "Update Accepted" and receives a delta made with `iot443 shadow update`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::{Running, lines_of, start_emulator, wait_for_line};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `iot443 <args> --config DIR/iot443.toml -p PORT -i CLIENT_ID`.
fn iot443(dir: &Path, port: u16, client_id: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iot443"));
    command
        .args(args)
        .arg("--config")
        .arg(dir.join("iot443.toml"))
        .args(["-p", &port.to_string(), "-i", client_id])
        .env("RUST_LOG", "warn");
    command
}

fn run(dir: &Path, port: u16, args: &[&str]) -> Output {
    iot443(dir, port, "app", args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn get_update_watch_and_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, port) = start_emulator(dir.path());

    let missing = run(dir.path(), port, &["shadow", "get", "--thing", "lamp"]);
    assert_eq!(missing.status.code(), Some(7), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains(
            "iot443: shadow get of lamp rejected: 404 No shadow exists with name: 'lamp'"
        ),
        "{}",
        stderr(&missing)
    );
    assert!(missing.stdout.is_empty());

    let updated = run(
        dir.path(),
        port,
        &["shadow", "update", "--thing", "lamp", "--reported", r#"{"windowOpen":false}"#],
    );
    assert!(updated.status.success(), "{}", stderr(&updated));
    let accepted: Value = serde_json::from_slice(&updated.stdout).unwrap();
    assert_eq!(accepted["version"], 1, "{accepted}");

    let got = run(dir.path(), port, &["shadow", "get", "--thing", "lamp", "--json"]);
    assert!(got.status.success(), "{}", stderr(&got));
    let text = String::from_utf8(got.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one line off a terminal: {text}");
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["state"]["reported"]["windowOpen"], false, "{document}");
    assert_eq!(document["version"], 1, "{document}");

    // watch prints the delta of a desired change as one line.
    let mut watch = iot443(
        dir.path(),
        port,
        "watcher",
        &["shadow", "watch", "--thing", "lamp", "-C", "1", "-V"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let watch_out = lines_of(watch.stdout.take().unwrap());
    let watch_err = lines_of(watch.stderr.take().unwrap());
    let watch = Running(watch);
    wait_for_line(&watch_err, "watch subscribed", |line| {
        line.starts_with("watching ").then_some(())
    });
    let desired = run(
        dir.path(),
        port,
        &["shadow", "update", "--thing", "lamp", "--desired", r#"{"windowOpen":true}"#],
    );
    assert!(desired.status.success(), "{}", stderr(&desired));
    let delta: Value = wait_for_line(&watch_out, "delta", |line| serde_json::from_str(line).ok());
    assert_eq!(delta["state"], serde_json::json!({"windowOpen": true}), "{delta}");
    assert_eq!(delta["version"], 2, "{delta}");
    let mut watch = watch;
    let status = watch.0.wait().unwrap();
    assert!(status.success(), "watch -C 1 ends after one delta");

    let stale = run(
        dir.path(),
        port,
        &["shadow", "update", "--thing", "lamp", "--reported", "{}", "--version", "1"],
    );
    assert_eq!(stale.status.code(), Some(7), "{}", stderr(&stale));
    assert!(
        stderr(&stale).contains("iot443: shadow update of lamp rejected: 409 Version conflict"),
        "{}",
        stderr(&stale)
    );

    let named = run(dir.path(), port, &["shadow", "delete", "--thing", "lamp", "--name", "cfg"]);
    assert_eq!(named.status.code(), Some(7), "{}", stderr(&named));
    assert!(stderr(&named).contains("lamp (named shadow cfg) rejected: 404"), "{}", stderr(&named));

    let bad = run(dir.path(), port, &["shadow", "update", "--thing", "lamp", "--desired", "[1]"]);
    assert_eq!(bad.status.code(), Some(2), "refused before sending: {}", stderr(&bad));
    assert!(stderr(&bad).contains("state.desired must be a JSON object"), "{}", stderr(&bad));
}

#[test]
fn the_shadow_sample_reports_and_applies_a_delta() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, port) = start_emulator(dir.path());
    // The demo takes the configuration alone: the port the emulator wrote in it, client id and
    // thing "device".
    let mut demo = Command::new(env!("CARGO_BIN_EXE_iot443"))
        .args(["demo", "--shadow", "--count", "60", "--config"])
        .arg(dir.path().join("iot443.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(demo.stdout.take().unwrap());
    let _demo = Running(demo);
    wait_for_line(&lines, "Update Accepted", |line| {
        line.starts_with("Update Accepted").then_some(())
    });
    // `shadow update` defaults to the configuration's thing_name, "device", too.
    let desired =
        run(dir.path(), port, &["shadow", "update", "--desired", r#"{"windowOpen":true}"#]);
    assert!(desired.status.success(), "{}", stderr(&desired));
    let delta = wait_for_line(&lines, "delta", |line| {
        line.strip_prefix("Received Delta message ").map(str::to_owned)
    });
    let delta: Value = serde_json::from_str(&delta).unwrap();
    assert_eq!(delta["state"]["windowOpen"], true, "{delta}");
    wait_for_line(&lines, "the applied delta reported", |line| {
        (line.starts_with("Update Accepted") && line.ends_with("windowOpen true")).then_some(())
    });
}

#[test]
fn the_subscribe_publish_sample_runs_over_the_websocket_road() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, _port) = start_emulator(dir.path());
    // The emulator's iot443.toml names its AWS credentials and region: nothing else is needed.
    let demo = Command::new(env!("CARGO_BIN_EXE_iot443"))
        .args(["demo", "--count", "4", "--transport", "websocket", "--config"])
        .arg(dir.path().join("iot443.toml"))
        .env("RUST_LOG", "warn")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&demo.stdout);
    assert!(demo.status.success(), "{stdout}\n{}", stderr(&demo));
    assert!(stdout.contains(" over wss://localhost:"), "the WebSocket road: {stdout}");
    assert!(stdout.contains("4 of 4 messages came back"), "{stdout}");
}
