//! Shared by the command-line tests: the `iot443` binary as a child process (killed when the
//! test ends, however it ends), its output read line by line, and an `iot443 emulator` process
//! on free ports.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

/// The longest any wait for a child's output may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(30);

/// A child process killed (by its own handle) when the test ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines of `output` as they come, read on a thread of their own.
pub fn lines_of(output: impl Read + Send + 'static) -> Receiver<String> {
    let (lines_tx, lines_rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    lines_rx
}

/// The first line of `lines` that `pick` accepts (the lines before it are skipped), within
/// [`LIMIT`].
pub fn wait_for_line<T>(
    lines: &Receiver<String>,
    what: &str,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> T {
    loop {
        let line = match lines.recv_timeout(LIMIT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("no {what} within {LIMIT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the output ended before {what}"),
        };
        if let Some(found) = pick(&line) {
            return found;
        }
    }
}

/// `iot443 emulator` on free ports with its folder in `dir`; returns it and its ALPN port.
pub fn start_emulator(dir: &Path) -> (Running, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iot443"))
        .args(["emulator", "--alpn-port", "0", "--mqtts-port", "0", "--https-port", "0", "--dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    let guard = Running(child);
    let port = wait_for_line(&lines, "emulator start", |line| {
        let addr = line.strip_prefix("iot443-emulator listening mqtt-alpn ")?;
        addr.rsplit(':').next()?.trim().parse::<u16>().ok()
    });
    (guard, port)
}
