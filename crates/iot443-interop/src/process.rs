//! Child processes that are killed when dropped, with their output read line by line.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A line, or the end of one of the outputs (`None`).
type OutputEvent = (Stream, Option<String>);

/// A running child process. Dropping it kills the process (by its PID) and reaps it.
///
/// Two threads read its stdout and stderr line by line (ANSI colour codes removed); the test
/// waits for a line with [`Proc::wait_stdout`] / [`Proc::wait_stderr`], or for the exit with
/// [`Proc::wait_exit`], each with a time limit. Everything read is kept for the failure message.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    events: Receiver<OutputEvent>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    open_outputs: u8,
    status: Option<ExitStatus>,
}

/// What a process printed, and how it exited.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The exit status.
    pub status: ExitStatus,
    /// Its stdout, one entry per line.
    pub stdout: Vec<String>,
    /// Its stderr, one entry per line.
    pub stderr: Vec<String>,
}

impl Finished {
    /// Stdout as one string.
    pub fn stdout_text(&self) -> String {
        self.stdout.join("\n")
    }

    /// Stderr as one string.
    pub fn stderr_text(&self) -> String {
        self.stderr.join("\n")
    }

    /// Stdout read as one JSON value per line (the Python peers' event reports); a line that
    /// is not JSON fails the test, showing the whole run.
    pub fn stdout_json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .iter()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}\n{self:?}"))
            })
            .collect()
    }
}

impl Proc {
    /// Starts `command` with stdin closed and stdout/stderr piped. `name` is for messages.
    ///
    /// # Panics
    /// When the program cannot be started.
    pub fn spawn(name: impl Into<String>, mut command: Command) -> Proc {
        command.stdin(Stdio::null());
        Proc::spawn_configured(name.into(), command)
    }

    fn spawn_configured(name: String, mut command: Command) -> Proc {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start {name} ({:?}): {error}", command.get_program())
        });
        let (sender, events) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            forward_lines(stdout, Stream::Stdout, sender.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            forward_lines(stderr, Stream::Stderr, sender);
        }
        Proc {
            name,
            child,
            events,
            stdout: Vec::new(),
            stderr: Vec::new(),
            open_outputs: 2,
            status: None,
        }
    }

    /// Like [`Proc::spawn`], writing `input` to the process's stdin (from a thread) and closing
    /// it afterwards.
    pub fn spawn_with_input(name: impl Into<String>, mut command: Command, input: Vec<u8>) -> Proc {
        command.stdin(Stdio::piped());
        let name = name.into();
        let mut proc = Proc::spawn_configured(name, command);
        if let Some(mut stdin) = proc.child.stdin.take() {
            std::thread::spawn(move || {
                // A process that exits early closes the pipe: its own failure tells the test.
                let _ = std::io::Write::write_all(&mut stdin, &input);
            });
        }
        proc
    }

    /// Runs `command` to its end (at most `timeout`) and returns what it printed.
    pub fn run(name: impl Into<String>, command: Command, timeout: Duration) -> Finished {
        Proc::spawn(name, command).wait_exit(timeout)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for a stdout line for which `matches` holds and returns it.
    ///
    /// # Panics
    /// After `timeout`, or when the process closed its outputs first; the message holds
    /// everything it printed.
    pub fn wait_stdout(&mut self, timeout: Duration, matches: impl Fn(&str) -> bool) -> String {
        self.wait_line(Stream::Stdout, timeout, matches)
    }

    /// Waits for a stderr line for which `matches` holds and returns it. See
    /// [`Proc::wait_stdout`].
    pub fn wait_stderr(&mut self, timeout: Duration, matches: impl Fn(&str) -> bool) -> String {
        self.wait_line(Stream::Stderr, timeout, matches)
    }

    /// Waits for a line of `stream` for which `matches` holds, and returns it.
    ///
    /// # Panics
    /// See [`Proc::wait_stdout`].
    pub fn wait_line(
        &mut self,
        stream: Stream,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        match self.try_wait_line(stream, timeout, matches) {
            Some(line) => line,
            None if self.open_outputs == 0 => {
                let details = self.describe();
                panic!(
                    "{} closed its output without printing the expected {stream:?} line\n{details}",
                    self.name
                );
            }
            None => {
                let details = self.describe();
                panic!(
                    "{} did not print the expected {stream:?} line within {timeout:?}\n{details}",
                    self.name
                );
            }
        }
    }

    /// Like [`Proc::wait_line`], but `None` (instead of a panic) when no such line came within
    /// `timeout` or the process closed its outputs, for a test that retries something.
    pub fn try_wait_line(
        &mut self,
        stream: Stream,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while self.open_outputs > 0 {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(remaining) {
                Ok(event) => {
                    if let Some((from, line)) = self.record(event)
                        && from == stream
                        && matches(&line)
                    {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => self.open_outputs = 0,
            }
        }
        None
    }

    /// Whether the process still has its outputs open (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.drain();
        self.open_outputs > 0
    }

    /// Takes the lines printed so far without waiting.
    pub fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.record(event);
        }
    }

    /// The stdout lines read so far.
    pub fn stdout_lines(&mut self) -> &[String] {
        self.drain();
        &self.stdout
    }

    /// The stderr lines read so far.
    pub fn stderr_lines(&mut self) -> &[String] {
        self.drain();
        &self.stderr
    }

    /// Waits until the process closed its outputs (it exits), at most `timeout`, and returns
    /// its status and everything it printed.
    ///
    /// # Panics
    /// After `timeout` (the process is killed first), with everything it printed.
    pub fn wait_exit(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        while self.open_outputs > 0 {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(remaining) {
                Ok(event) => {
                    self.record(event);
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    let details = self.describe();
                    panic!("{} did not exit within {timeout:?} (killed)\n{details}", self.name);
                }
                Err(RecvTimeoutError::Disconnected) => self.open_outputs = 0,
            }
        }
        // Both outputs are closed: the process is exiting (none of the peers hands its pipes to
        // a child that outlives it).
        let status = self.child.wait().unwrap_or_else(|error| {
            panic!("cannot wait for {} (pid {}): {error}", self.name, self.child.id())
        });
        self.status = Some(status);
        Finished {
            status,
            stdout: std::mem::take(&mut self.stdout),
            stderr: std::mem::take(&mut self.stderr),
        }
    }

    /// Kills the process (SIGKILL, by PID) and reaps it. Idempotent.
    pub fn kill(&mut self) {
        if self.status.is_some() {
            return;
        }
        let _ = self.child.kill();
        if let Ok(status) = self.child.wait() {
            self.status = Some(status);
        }
    }

    /// The process's name, status and every line it printed so far, for failure messages.
    pub fn describe(&mut self) -> String {
        self.drain();
        let status = match (self.status, self.child.try_wait()) {
            (Some(status), _) | (None, Ok(Some(status))) => status.to_string(),
            _ => "still running".to_owned(),
        };
        let mut text = format!("--- {} (pid {}): {status}\n", self.name, self.child.id());
        let _ = writeln!(text, "--- stdout:");
        for line in &self.stdout {
            let _ = writeln!(text, "{line}");
        }
        let _ = writeln!(text, "--- stderr:");
        for line in &self.stderr {
            let _ = writeln!(text, "{line}");
        }
        text
    }

    /// Stores an event; returns the line it carried, if any.
    fn record(&mut self, (stream, line): OutputEvent) -> Option<(Stream, String)> {
        let Some(line) = line else {
            self.open_outputs = self.open_outputs.saturating_sub(1);
            return None;
        };
        match stream {
            Stream::Stdout => self.stdout.push(line.clone()),
            Stream::Stderr => self.stderr.push(line.clone()),
        }
        Some((stream, line))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads `output` line by line on a thread and sends each line, then `None` at the end.
fn forward_lines(output: impl Read + Send + 'static, stream: Stream, sender: Sender<OutputEvent>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(output);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buffer);
                    let line = strip_ansi(text.trim_end_matches(['\n', '\r']));
                    if sender.send((stream, Some(line))).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = sender.send((stream, None));
    });
}

/// Removes ANSI escape sequences (`ESC [ … letter`) that loggers add to coloured output.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_codes_are_removed() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m refused"),
            "2026  WARN refused"
        );
    }

    #[test]
    fn lines_and_exit_status_are_collected() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo one; echo two >&2; echo three; exit 3"]);
        let mut proc = Proc::spawn("sh", command);
        assert_eq!(proc.wait_stdout(Duration::from_secs(10), |l| l == "three"), "three");
        let finished = proc.wait_exit(Duration::from_secs(10));
        assert_eq!(finished.status.code(), Some(3));
        assert_eq!(finished.stdout, ["one", "three"]);
        assert_eq!(finished.stderr, ["two"]);
    }
}
