#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! `iot443 sub` whose stdout is piped into a reader that pauses for 2.5 × keep-alive: a
//! stalled stdout stops the command from taking messages (backpressure), never the client.
//! It keeps pinging, so the emulator (which, like IoT Core, closes a client silent for
//! 1.5 × keep-alive) keeps the one connection, and every QoS 1 message arrives once the
//! reader reads again.

use iot443_interop::{EmulatorProcess, Proc, TIMEOUT, iot443_command, temp_dir};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

/// IoT Core's smallest keep-alive (the emulator raises a smaller one to it).
const KEEP_ALIVE_SECS: u64 = 30;
const MESSAGES: usize = 3000;

#[test]
#[ignore = "slow (about 80 s): a stdout reader that pauses for 2.5 x keep-alive; run by .ci/interop"]
fn sub_piped_into_a_reader_that_pauses_gets_every_message_over_one_connection() {
    let dir = temp_dir();
    let mut emulator = EmulatorProcess::start(dir.path());
    let config = dir.path().join("iot443.toml");
    let port = emulator.alpn_addr.port().to_string();

    let mut sub = iot443_command();
    sub.arg("sub")
        .arg("--config")
        .arg(&config)
        .args(["-p", &port, "-i", "slow-reader", "-t", "slow/#", "-q", "1", "-V"])
        .args(["-C", &MESSAGES.to_string()])
        .env("IOT443_KEEP_ALIVE", KEEP_ALIVE_SECS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = sub.spawn().expect("iot443 sub starts");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let sub = Running(Some(child));
    let (stderr_tx, stderr_rx) = std::sync::mpsc::channel::<String>();
    let stderr_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = stderr_tx.send(line);
        }
    });
    let subscribed = loop {
        let line = stderr_rx.recv_timeout(TIMEOUT).expect("iot443 sub reports its subscription");
        if line.starts_with("subscribed to") {
            break line;
        }
    };
    assert!(subscribed.contains("slow/#"), "{subscribed}");

    // 3,000 QoS 1 messages, each acknowledged by the emulator.
    let lines: String = (1..=MESSAGES).map(|n| format!("{n}\n")).collect();
    let mut publish = iot443_command();
    publish.arg("pub").arg("--config").arg(&config).args([
        "-p",
        &port,
        "-i",
        "slow-publisher",
        "-t",
        "slow/x",
        "-q",
        "1",
        "-l",
    ]);
    let published = Proc::spawn_with_input("iot443 pub", publish, lines.into_bytes())
        .wait_exit(Duration::from_secs(120));
    assert!(published.status.success(), "iot443 pub failed: {published:?}");

    // The reader pauses: this is the behaviour under test, not a wait for a condition.
    std::thread::sleep(Duration::from_secs(KEEP_ALIVE_SECS * 5 / 2));

    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut received = BTreeSet::new();
    let mut count = 0;
    while count < MESSAGES {
        let line = lines_rx
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("only {count} of {MESSAGES} messages arrived"));
        received.insert(line);
        count += 1;
    }
    let expected: BTreeSet<String> = (1..=MESSAGES).map(|n| n.to_string()).collect();
    assert_eq!(received, expected, "every message, none twice");

    let status = wait_exit(sub, TIMEOUT);
    assert!(status.success(), "iot443 sub exits 0 after -C {MESSAGES}: {status:?}");
    drop(stderr_thread.join());
    let sub_log: Vec<String> = stderr_rx.try_iter().collect();
    assert!(
        !sub_log.iter().any(|line| line.contains("reconnecting")),
        "the subscriber never reconnected: {sub_log:#?}"
    );

    // The emulator's own account: one connection for the subscriber, no keep-alive timeout.
    emulator.proc.kill();
    let log = emulator.proc.stderr_lines().to_vec();
    let about_it: Vec<&String> = log.iter().filter(|line| line.contains("slow-reader")).collect();
    assert_eq!(
        about_it.iter().filter(|line| line.contains("client connected")).count(),
        1,
        "one connection: {about_it:#?}"
    );
    assert!(
        !about_it.iter().any(|line| line.contains("keep-alive timeout")),
        "no keep-alive timeout for the slow reader: {about_it:#?}"
    );
}

/// Kills the child when the test ends early (a failed assertion), so that no process of the
/// test outlives it.
struct Running(Option<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for the child to exit, at most `timeout` (then kills it and fails): a thread waits and
/// signals.
fn wait_exit(mut running: Running, timeout: Duration) -> std::process::ExitStatus {
    let Some(mut child) = running.0.take() else { panic!("no child") };
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    match done_rx.recv_timeout(timeout) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            // Ends only the process this test started, by its PID.
            let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
            panic!("iot443 sub did not exit within {timeout:?}");
        }
    }
}
