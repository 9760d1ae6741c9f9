//! The programs a run measures: the `iot443` CLI, the peers' Python, this bench itself (for its
//! in-process children), and the two C programs compiled at start (the runner and the
//! libmosquitto peer).

use std::path::{Path, PathBuf};
use std::process::Command;

use iot443_interop::paths;

use crate::measure::Runner;

/// Where the measured programs are.
pub(crate) struct Tools {
    /// The `iot443` CLI, release build.
    pub(crate) iot443: PathBuf,
    /// The Python of the peers' venv (paho-mqtt, awsiotsdk).
    pub(crate) python: PathBuf,
    /// This bench's `scripts/` folder.
    scripts: PathBuf,
    /// This program, for `e2e child …`.
    pub(crate) me: PathBuf,
    /// The C peer on libmosquitto, compiled at start (`None` without libmosquitto-dev).
    pub(crate) libmosquitto: Option<PathBuf>,
    /// How children are measured.
    pub(crate) runner: Runner,
}

impl Tools {
    /// Finds the programs: `IOT443_BIN` (default `target/release/iot443`) and
    /// `IOT443_PEERS_PYTHON` (default `target/peers-venv/bin/python`).
    ///
    /// # Panics
    /// When either is missing, with the command that builds or installs it.
    pub(crate) fn find() -> Result<Tools, String> {
        Ok(Tools {
            iot443: paths::iot443_bin_of("release"),
            python: paths::peers_python(),
            scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts"),
            me: std::env::current_exe().map_err(|e| e.to_string())?,
            libmosquitto: None,
            runner: Runner::default(),
        })
    }

    /// Compiles the runner and the libmosquitto peer into `dir`; says on stderr what is left
    /// out when one cannot be built.
    pub(crate) fn build_peers(&mut self, dir: &Path) {
        self.libmosquitto = compile(dir, "libmosquitto_pub", &["-lmosquitto", "-lpthread"]);
        if self.libmosquitto.is_none() {
            eprintln!(
                "e2e: cannot build {} (apt-get install libmosquitto-dev): the libmosquitto C peer is left out",
                source("libmosquitto_pub").display()
            );
        }
        self.runner.binary = compile(dir, "measure", &[]);
        if self.runner.binary.is_none() {
            eprintln!(
                "e2e: cannot build {} (no C compiler? install gcc): no child can be measured",
                source("measure").display()
            );
        }
    }

    /// The path of the peer script `name`, as an argument.
    pub(crate) fn script(&self, name: &str) -> PathBuf {
        self.scripts.join(name)
    }
}

/// `peers/NAME.c`.
fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers").join(format!("{name}.c"))
}

/// `cc -O2 -o DIR/NAME peers/NAME.c LIBS…`: the binary, or `None` when it did not build.
fn compile(dir: &Path, name: &str, libs: &[&str]) -> Option<PathBuf> {
    let binary = dir.join(name);
    let built = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&binary)
        .arg(source(name))
        .args(libs)
        .status()
        .is_ok_and(|status| status.success());
    built.then_some(binary)
}
