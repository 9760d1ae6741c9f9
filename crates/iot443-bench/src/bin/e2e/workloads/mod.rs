//! The workloads: each builds its contenders, runs them in interleaved rounds ([`interleave`])
//! and writes its markdown table.

pub(crate) mod connect;
pub(crate) mod costs;
pub(crate) mod fleet;
pub(crate) mod inproc;
pub(crate) mod roads;
pub(crate) mod size;
pub(crate) mod stream;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::endpoint::Endpoint;
use crate::measure::{Feed, Run, Runner, command};
use crate::tools::Tools;

/// Time a command-line client gets to connect before its stdin is written.
pub(crate) const STDIN_DELAY: Duration = Duration::from_millis(500);

/// One contender of a workload: its name, how to start it, and which figure to take.
pub(crate) struct Contender {
    /// Its name in the table.
    pub(crate) name: String,
    program: PathBuf,
    args: Vec<OsString>,
    cwd: PathBuf,
    feed: Option<Feed>,
    /// Environment changes: a value to set, or `None` to remove the variable.
    env: Vec<(OsString, Option<OsString>)>,
    /// Where the elapsed time comes from.
    pub(crate) timing: Timing,
}

impl Contender {
    /// `program args…`, run in `cwd` with stdin closed.
    pub(crate) fn new(
        name: impl Into<String>,
        program: impl Into<PathBuf>,
        args: Vec<OsString>,
        cwd: &Path,
        timing: Timing,
    ) -> Contender {
        Contender {
            name: name.into(),
            program: program.into(),
            args,
            cwd: cwd.to_owned(),
            feed: None,
            env: Vec::new(),
            timing,
        }
    }

    /// Sets the variable `name` to `value` (`None`: removes it) in the contender's environment.
    pub(crate) fn env(mut self, name: &str, value: Option<&OsStr>) -> Contender {
        self.env.push((name.into(), value.map(OsStr::to_owned)));
        self
    }

    /// A command-line client that gets the file `lines` on its stdin [`STDIN_DELAY`] after it
    /// started (connected by then), timed from the first byte written.
    pub(crate) fn fed(
        name: impl Into<String>,
        program: impl Into<PathBuf>,
        args: Vec<OsString>,
        cwd: &Path,
        lines: &Path,
    ) -> Contender {
        let mut contender = Contender::new(name, program, args, cwd, Timing::FromStdin);
        contender.feed = Some(Feed { delay: STDIN_DELAY, file: lines.to_owned() });
        contender
    }

    /// Runs it once to its end and measures it.
    fn run(&self, runner: &Runner) -> Result<Run, String> {
        let mut command = command(&self.program, &self.args, &self.cwd);
        for (name, value) in &self.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        runner.measure(command, self.feed.clone())
    }
}

/// Where a contender's elapsed time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timing {
    /// Spawn → exit.
    Wall,
    /// First stdin byte written → exit.
    FromStdin,
    /// The child's own `elapsed_ms=`.
    Reported,
}

impl Timing {
    /// The elapsed time of `run`, taken as this timing says.
    pub(crate) fn elapsed(self, run: &Run) -> Duration {
        match self {
            Timing::Wall => run.wall,
            Timing::FromStdin => run.from_stdin.unwrap_or(run.wall),
            Timing::Reported => {
                Duration::from_secs_f64(run.reported("elapsed_ms").unwrap_or_default()[0] / 1e3)
            }
        }
    }
}

/// The contenders of one workload that take `MODE HOST PORT CA CERT KEY CLIENT_ID REST…`: the
/// Python scripts, the libmosquitto C peer, and this bench's in-process children
/// (`e2e child LIB-MODE …`).
pub(crate) struct Peers<'a> {
    /// The endpoint they connect to.
    pub(crate) endpoint: &'a Endpoint,
    /// Where the programs are.
    pub(crate) tools: &'a Tools,
    /// `connect`, `connects` or `stream`.
    pub(crate) mode: &'a str,
    /// Client ids are `PREFIX-PEER`.
    pub(crate) id_prefix: String,
    /// How these contenders are timed.
    pub(crate) timing: Timing,
}

impl Peers<'_> {
    /// The client id of `peer` in this workload.
    pub(crate) fn client_id(&self, peer: &str) -> String {
        format!("{}-{peer}", self.id_prefix)
    }

    /// paho-mqtt and the awsiotsdk, by their scripts.
    pub(crate) fn python(&self, rest: &[String]) -> Vec<Contender> {
        [
            ("paho-mqtt (Python)", "paho_pub.py", "paho"),
            ("awsiotsdk (Python, awscrt)", "awsiot_pub.py", "awsiot"),
        ]
        .into_iter()
        .map(|(name, script, peer)| {
            let leading = vec![self.tools.script(script).into(), self.mode.into()];
            self.contender(name, &self.tools.python, leading, peer, rest)
        })
        .collect()
    }

    /// The library `lib` (`iot443` or `rumqttc`) in a child of this bench.
    pub(crate) fn library(&self, name: &str, lib: &str, rest: &[String]) -> Contender {
        let leading = vec!["child".into(), format!("{lib}-{}", self.mode).into()];
        self.contender(name, &self.tools.me, leading, lib, rest)
    }

    /// The C peer on iot443's C API, when it could be built.
    pub(crate) fn iot443_c(&self, name: &str, rest: &[String]) -> Option<Contender> {
        let program = self.tools.iot443_c.as_ref()?;
        Some(self.contender(name, program, vec![self.mode.into()], "iot443c", rest))
    }

    /// The libmosquitto C peer, when it could be built.
    pub(crate) fn libmosquitto(&self, name: &str, rest: &[String]) -> Option<Contender> {
        let program = self.tools.libmosquitto.as_ref()?;
        Some(self.contender(name, program, vec![self.mode.into()], "libmosq", rest))
    }

    fn contender(
        &self,
        name: &str,
        program: &Path,
        mut args: Vec<OsString>,
        peer: &str,
        rest: &[String],
    ) -> Contender {
        args.extend(self.endpoint.peer_args(&self.client_id(peer), rest));
        Contender::new(name, program, args, &self.endpoint.cwd, self.timing)
    }
}

/// Runs every contender `rounds` times, interleaved, the order reversed every other round.
/// `results[contender][round]`.
pub(crate) fn interleave(
    title: &str,
    contenders: &[Contender],
    rounds: usize,
    runner: &Runner,
) -> Vec<Vec<Option<Run>>> {
    let mut results: Vec<Vec<Option<Run>>> = contenders.iter().map(|_| Vec::new()).collect();
    let started = Instant::now();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..contenders.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut slot: Vec<Option<Run>> = contenders.iter().map(|_| None).collect();
        for i in order {
            let contender = &contenders[i];
            match contender.run(runner) {
                Ok(run)
                    if contender.timing == Timing::Reported
                        && run.reported("elapsed_ms").is_none() =>
                {
                    eprintln!(
                        "  {}: round {round}: no elapsed_ms in {:?}",
                        contender.name, run.stdout
                    );
                }
                Ok(run) => slot[i] = Some(run),
                Err(error) => eprintln!("  {}: round {round}: {error}", contender.name),
            }
        }
        for (i, run) in slot.into_iter().enumerate() {
            results[i].push(run);
        }
        eprintln!(
            "  {title}: round {}/{rounds} ({:.1} s)",
            round + 1,
            started.elapsed().as_secs_f64()
        );
    }
    results
}
