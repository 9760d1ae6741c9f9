//! Running one child to its end and measuring it: wall time, user+sys CPU and peak RSS from
//! `wait4(2)`, through the small runner `peers/measure.c` when it could be built.

use std::ffi::OsStr;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::time::Duration;

/// Longest any one child may run before it is killed.
pub(crate) const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// What `wait4(2)` and the clock say about one child.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// Spawn → reaped.
    pub(crate) wall: Duration,
    /// First byte written to its stdin → reaped, when stdin was fed.
    pub(crate) from_stdin: Option<Duration>,
    /// User + system CPU time.
    pub(crate) cpu: Duration,
    /// Peak resident set size, bytes.
    pub(crate) max_rss: u64,
    /// What it printed on stdout.
    pub(crate) stdout: String,
}

impl Run {
    /// `key=<float> <float>…` from the child's stdout.
    pub(crate) fn reported(&self, key: &str) -> Option<Vec<f64>> {
        let line =
            self.stdout.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix('='))?;
        line.split_whitespace().map(|v| v.parse().ok()).collect()
    }
}

/// Input written to a child's stdin after a delay.
#[derive(Debug, Clone)]
pub(crate) struct Feed {
    /// From the start of the child to the first byte written.
    pub(crate) delay: Duration,
    /// The bytes to write.
    pub(crate) file: PathBuf,
}

/// A child's command with `args`, run in `cwd`, with none of the caller's `IOT443_*` variables
/// (they would override the bench's settings).
pub(crate) fn command(
    program: impl AsRef<OsStr>,
    args: &[impl AsRef<OsStr>],
    cwd: &Path,
) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(cwd);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IOT443_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Measures children through the runner `peers/measure.c` (wait4(2) in a process of its own, so
/// that a child's peak RSS is its own). It is compiled at start; without a C compiler nothing
/// can be measured. (No `unsafe` here: the C boundary of the workspace is `crates/iot443-ffi`.)
#[derive(Debug, Clone, Default)]
pub(crate) struct Runner {
    /// The compiled runner.
    pub(crate) binary: Option<PathBuf>,
}

impl Runner {
    /// Runs `cmd` to its end (killed after [`CHILD_TIMEOUT`]) and measures it.
    pub(crate) fn measure(&self, cmd: Command, feed: Option<Feed>) -> Result<Run, String> {
        match &self.binary {
            Some(runner) => measure_with_runner(runner, cmd, feed),
            None => Err(format!(
                "cannot measure {:?}: the runner peers/measure.c was not built (install gcc)",
                cmd.get_program()
            )),
        }
    }
}

fn measure_with_runner(runner: &Path, cmd: Command, feed: Option<Feed>) -> Result<Run, String> {
    let what = format!("{:?}", cmd.get_program());
    let mut outer = Command::new(runner);
    outer.arg(feed.as_ref().map_or(0, |f| f.delay.as_millis()).to_string());
    outer.arg(feed.as_ref().map_or_else(|| PathBuf::from("-"), |f| f.file.clone()));
    outer.arg(CHILD_TIMEOUT.as_secs().to_string());
    outer.arg(cmd.get_program()).args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        outer.current_dir(dir);
    }
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => outer.env(name, value),
            None => outer.env_remove(name),
        };
    }
    outer.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = outer.spawn().map_err(|e| format!("cannot start {what}: {e}"))?;
    let output = child.wait_with_output().map_err(|e| format!("{what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = stderr.lines().rev().find_map(|line| line.strip_prefix("E2E-MEASURE "));
    let field = |key: &str| -> Option<f64> {
        report?
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    };
    if !output.status.success() || report.is_none() {
        let tail: Vec<&str> =
            stderr.lines().filter(|l| !l.starts_with("E2E-MEASURE") && !l.is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(5)..].join(" / ");
        return Err(format!("{what} failed ({}): {tail}", output.status));
    }
    let micros = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1e6);
    Ok(Run {
        wall: micros(field("wall_us").unwrap_or_default()),
        from_stdin: field("from_stdin_us").filter(|v| *v >= 0.0).map(micros),
        cpu: micros(field("cpu_us").unwrap_or_default()),
        max_rss: field("maxrss_kib").unwrap_or_default() as u64 * 1024,
        stdout,
    })
}
