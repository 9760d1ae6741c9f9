#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! `--transport`, `--region` and `--aws-credentials` on the command line: the WebSocket road
//! needs no certificate, its missing credentials or region are configuration errors (exit code
//! 2) that name what to set, and `https` is refused outside `pub`. Each run gets its own
//! environment: nothing of the caller's AWS settings leaks in.

use std::path::Path;
use std::process::{Command, Output};

fn iot443(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iot443"));
    command.env_clear().env("HOME", home).current_dir(home).args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_websocket_road_without_credentials_is_a_configuration_error() {
    let home = tempfile::tempdir().unwrap();
    let args =
        ["sub", "-t", "a/b", "--transport", "websocket", "-h", "abc.iot.eu-west-1.amazonaws.com"];
    let output = iot443(home.path(), &[], &args);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no AWS credentials: set AWS_ACCESS_KEY_ID"),
        "{}",
        stderr(&output)
    );

    let output = iot443(home.path(), &[("AWS_SECRET_ACCESS_KEY", "only-the-secret")], &args);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"), "{text}");
    assert!(!text.contains("only-the-secret"), "{text}");
}

#[test]
fn a_region_is_required_when_the_endpoint_does_not_say_it() {
    let home = tempfile::tempdir().unwrap();
    let credentials = home.path().join("creds");
    std::fs::write(
        &credentials,
        "[default]\naws_access_key_id = AKID\naws_secret_access_key = s\n",
    )
    .unwrap();
    let credentials = credentials.display().to_string();
    let args = [
        "pub",
        "-t",
        "a",
        "-m",
        "x",
        "--transport",
        "websocket",
        "-h",
        "localhost",
        "--aws-credentials",
        &credentials,
    ];
    let output = iot443(home.path(), &[], &args);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no AWS region to sign for with endpoint localhost"),
        "{}",
        stderr(&output)
    );

    // With --region, the road goes on to TCP: nothing listens on port 1.
    let mut with_region = args.to_vec();
    with_region.extend(["--region", "us-east-1", "-p", "1", "--connect-timeout", "2"]);
    let output = iot443(home.path(), &[], &with_region);
    assert_eq!(output.status.code(), Some(4), "a connection error: {}", stderr(&output));
    assert!(stderr(&output).contains("localhost:1"), "{}", stderr(&output));
}

#[test]
fn https_is_refused_outside_pub() {
    let home = tempfile::tempdir().unwrap();
    let output = iot443(
        home.path(),
        &[],
        &["sub", "-t", "a", "--transport", "https", "-h", "localhost", "--cert", "c", "--key", "k"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("https is publish-only: use `iot443 pub --transport https`"));
}

#[test]
fn help_explains_the_roads() {
    let home = tempfile::tempdir().unwrap();
    let output = iot443(home.path(), &[], &["sub", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for text in ["--transport", "websocket", "SigV4", "--region", "--aws-credentials"] {
        assert!(help.contains(text), "{text} in sub --help");
    }
}

#[test]
fn pub_with_transport_https_takes_the_https_road() {
    let home = tempfile::tempdir().unwrap();
    let args = [
        "pub",
        "-t",
        "a",
        "-m",
        "x",
        "--transport",
        "https",
        "-h",
        "localhost",
        "--cert",
        "c.pem",
        "--key",
        "k.pem",
        "--outbox",
        "o.db",
    ];
    let output = iot443(home.path(), &[], &args);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--outbox keeps MQTT publishes"),
        "the HTTPS road answered: {}",
        stderr(&output)
    );
}
