#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! A real TLS-intercepting proxy, mitmproxy, between `iot443` and the emulator, each test in its
//! own network namespace: the emulator on 127.0.0.1:443 and :8883, mitmproxy as the HTTP proxy on
//! 127.0.0.1:8080, trusting the emulator's CA upstream, as a corporate inspecting proxy trusts
//! the public roots.
//!
//! * The certificate road cannot pass it (mitmproxy has no device certificate to show the
//!   emulator): `iot443 pub` fails, and its error says that a TLS-inspecting proxy is in the way
//!   and names the issuer it presented (mitmproxy's CA). `iot443 doctor` says so too.
//! * The WebSocket road, signed with SigV4 and trusting mitmproxy's CA as `root_ca`, publishes
//!   and subscribes through it.

use iot443_interop::mitmproxy::Mitmproxy;
use iot443_interop::netns::{Namespace, NamespacedEmulator};
use iot443_interop::process::Stream;
use iot443_interop::{Finished, Proc, TIMEOUT, iot443_command, temp_dir};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// mitmproxy's port on 127.0.0.1 in the namespace.
const PROXY_PORT: u16 = 8080;

/// Drops in order: the client state, mitmproxy and the emulator before their folders, the
/// namespace last.
struct Setup {
    mitmproxy: Mitmproxy,
    emulator: NamespacedEmulator,
    _mitmproxy_dir: tempfile::TempDir,
    _emulator_dir: tempfile::TempDir,
    ns: Namespace,
}

impl Setup {
    fn start() -> Setup {
        let ns = Namespace::create();
        let emulator_dir = temp_dir();
        let emulator = ns.start_emulator(emulator_dir.path());
        let mitmproxy_dir = temp_dir();
        let upstream_ca = emulator_dir.path().join("ca.pem");
        let mitmproxy = ns.start_mitmproxy(mitmproxy_dir.path(), PROXY_PORT, &upstream_ca);
        Setup {
            mitmproxy,
            emulator,
            _mitmproxy_dir: mitmproxy_dir,
            _emulator_dir: emulator_dir,
            ns,
        }
    }

    /// `iot443 SUBCOMMAND --config CONFIG --proxy MITMPROXY ARGS…`, to run in the namespace.
    fn iot443(&self, subcommand: &str, args: &[&str]) -> Command {
        let mut command = iot443_command();
        command.arg(subcommand).arg("--config").arg(&self.emulator.config);
        command.arg("--proxy").arg(self.mitmproxy.url());
        command.args(args);
        for name in ["HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "AWS_PROFILE"] {
            command.env_remove(name);
        }
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            command.env_remove(name);
        }
        command
    }

    fn run(&self, subcommand: &str, args: &[&str]) -> Finished {
        let name = format!("iot443 {subcommand} {}", args.join(" "));
        Proc::run(name, self.ns.wrap(&self.iot443(subcommand, args)), TIMEOUT)
    }

    fn mitmproxy_ca(&self) -> &Path {
        &self.mitmproxy.ca_certificate
    }
}

/// Asserts that `text` says a TLS-inspecting proxy is in the way and names mitmproxy's CA.
fn assert_names_the_interception(text: &str, what: &str) {
    let lower = text.to_lowercase();
    assert!(
        lower.contains("intercept") || lower.contains("inspect"),
        "{what} must say that a TLS-inspecting proxy is in the way:\n{text}"
    );
    assert!(
        lower.contains("mitmproxy"),
        "{what} must name the issuer mitmproxy presented:\n{text}"
    );
    assert!(
        lower.contains("websocket"),
        "{what} must say what works (the WebSocket road):\n{text}"
    );
}

#[test]
#[ignore = "needs root, ip netns and mitmproxy (peers' venv): run by .ci/interop"]
fn certificate_road_through_mitmproxy_fails_and_names_the_interception() {
    let setup = Setup::start();
    let published = setup.run("pub", &["-t", "through/mitm", "-m", "hello", "-q", "1"]);
    assert!(!published.status.success(), "mutual TLS cannot pass an interceptor: {published:?}");
    assert_eq!(published.status.code(), Some(3), "exit code 3 (TLS): {published:?}");
    assert_names_the_interception(&published.stderr_text(), "iot443 pub through mitmproxy");
}

#[test]
#[ignore = "needs root, ip netns and mitmproxy (peers' venv): run by .ci/interop"]
fn certificate_road_trusting_the_interceptor_still_fails_and_names_it() {
    let setup = Setup::start();
    let ca = setup.mitmproxy_ca().to_str().unwrap().to_owned();
    let published = setup.run(
        "pub",
        &[
            "-t",
            "through/mitm",
            "-m",
            "hello",
            "-q",
            "1",
            "--cafile",
            &ca,
            "--connect-timeout",
            "5",
        ],
    );
    assert!(!published.status.success(), "mutual TLS cannot pass an interceptor: {published:?}");
    assert_names_the_interception(&published.stderr_text(), "iot443 pub trusting mitmproxy");
}

#[test]
#[ignore = "needs root, ip netns and mitmproxy (peers' venv): run by .ci/interop"]
fn doctor_through_mitmproxy_names_the_interception() {
    let setup = Setup::start();
    let doctor = setup.run("doctor", &[]);
    assert!(!doctor.status.success(), "the doctor must report the failure: {doctor:?}");
    let text = format!("{}\n{}", doctor.stdout_text(), doctor.stderr_text());
    assert_names_the_interception(&text, "iot443 doctor through mitmproxy");
}

#[test]
#[ignore = "needs root, ip netns and mitmproxy (peers' venv): run by .ci/interop"]
fn websocket_road_through_mitmproxy_publishes_and_subscribes() {
    let setup = Setup::start();
    let ca = setup.mitmproxy_ca().to_str().unwrap().to_owned();
    let road = ["--transport", "websocket", "--cafile", &ca];

    let mut sub_args = vec!["-t", "through/wss", "-C", "1", "-q", "1", "-V", "--json"];
    sub_args.extend(road);
    sub_args.extend(["-i", "wss-sub"]);
    let mut sub = Proc::spawn("iot443 sub (wss)", setup.ns.wrap(&setup.iot443("sub", &sub_args)));
    let connected = sub.wait_stderr(TIMEOUT, |line| line.starts_with("connected to"));
    sub.wait_stderr(TIMEOUT, |line| line.starts_with("subscribed to"));

    let mut pub_args = vec!["-t", "through/wss", "-m", "hello through mitmproxy", "-q", "1"];
    pub_args.extend(road);
    pub_args.extend(["-i", "wss-pub", "-V"]);
    let published = setup.run("pub", &pub_args);
    assert!(
        published.status.success(),
        "iot443 pub over WebSocket through mitmproxy: {published:?}"
    );

    let line = sub
        .try_wait_line(Stream::Stdout, TIMEOUT, |_| true)
        .unwrap_or_else(|| panic!("iot443 sub printed no message\n{}", sub.describe()));
    let message: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert_eq!(message["topic"], "through/wss", "{message}");
    assert_eq!(message["payload"], "hello through mitmproxy", "{message}");
    let finished = sub.wait_exit(TIMEOUT);
    assert!(finished.status.success(), "iot443 sub -C 1 must exit 0: {finished:?}");
    println!("subscriber: {connected}");
}
