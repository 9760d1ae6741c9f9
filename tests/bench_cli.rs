//! `iot443 bench conn|pub|sub` against the embedded emulator (a process the bench starts), read
//! through `--json`: what was asked for is what was counted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::{LIMIT, Running, lines_of};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `iot443 bench ARGS --json` with its data folder in `data_home`; returns the exit code
/// and the JSON summary.
fn bench(data_home: &Path, args: &[&str]) -> (i32, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iot443"))
        .arg("bench")
        .args(args)
        .args(["--json", "--time-limit", "120"])
        .env("XDG_DATA_HOME", data_home)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    let mut running = Running(child);
    // The bench bounds itself (--time-limit); this bounds the test if it did not.
    let line = lines.recv_timeout(LIMIT * 5).expect("a JSON summary on stdout");
    let status = running.0.wait().unwrap();
    let summary: Value =
        serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line}"));
    (status.code().unwrap_or(-1), summary)
}

#[test]
fn conn_opens_and_holds_every_connection_and_measures_both_processes() {
    let home = tempfile::tempdir().unwrap();
    let (code, summary) = bench(home.path(), &["conn", "--count", "40", "--hold", "1"]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["load"], "conn");
    assert_eq!(summary["connected"], 40, "{summary}");
    assert_eq!(summary["held"]["still_connected"], 40, "{summary}");
    assert_eq!(summary["failures"], serde_json::json!({}), "{summary}");
    assert!(summary["endpoint"].as_str().unwrap().contains("embedded emulator"), "{summary}");
    for who in ["client", "emulator"] {
        if cfg!(target_os = "linux") {
            assert!(summary[who]["per_connection_bytes"].as_f64().unwrap() > 0.0, "{summary}");
            assert!(summary[who]["cpu_at_rest_share"].as_f64().is_some(), "{summary}");
        }
    }
    assert!(summary["stopped"].is_null(), "{summary}");
}

#[test]
fn pub_counts_every_message_once_at_the_subscriber() {
    let home = tempfile::tempdir().unwrap();
    let (code, summary) =
        bench(home.path(), &["pub", "--count", "3", "--messages", "300", "--rate", "0", "-q", "1"]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["publishers"]["connected"], 3, "{summary}");
    assert_eq!(summary["sent"]["count"], 300, "{summary}");
    assert_eq!(summary["received"]["unique"], 300, "{summary}");
    assert_eq!(summary["received"]["missing"], 0, "{summary}");
    assert_eq!(summary["received"]["duplicates"], 0, "{summary}");
    assert!(
        summary["latency"]["p99_ms"].as_f64().unwrap()
            <= summary["latency"]["max_ms"].as_f64().unwrap()
    );
    assert!(summary["acknowledged"]["time"]["p50_ms"].as_f64().is_some(), "{summary}");
}

#[test]
fn sub_receives_each_message_once_per_subscriber() {
    let home = tempfile::tempdir().unwrap();
    let (code, summary) =
        bench(home.path(), &["sub", "--count", "5", "--messages", "20", "--rate", "1000"]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["subscribers"]["subscribed"], 5, "{summary}");
    assert_eq!(summary["received"]["published"], 20, "{summary}");
    assert_eq!(summary["received"]["count"], 100, "{summary}");
}

#[test]
fn the_time_limit_ends_a_hold_with_the_summary_so_far() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_iot443"))
        .args(["bench", "conn", "--count", "5", "--hold", "3600", "--time-limit", "2", "--json"])
        .env("XDG_DATA_HOME", home.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    let mut running = Running(child);
    let line = lines.recv_timeout(LIMIT * 2).expect("the summary once the time limit is reached");
    assert!(running.0.wait().unwrap().success());
    let summary: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(summary["connected"], 5, "{summary}");
    assert!(summary["stopped"].as_str().unwrap().contains("--time-limit"), "{summary}");
}

#[test]
fn a_client_id_flag_is_refused_with_the_pattern_flag_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_iot443"))
        .args(["bench", "conn", "-i", "one", "--count", "2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--client-ids"));
}
