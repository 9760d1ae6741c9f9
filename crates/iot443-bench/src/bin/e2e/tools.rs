//! The programs a run measures: the `iot443` CLI, the peers' Python, this bench itself (for its
//! in-process children), and the C programs compiled at start (the runner, the libmosquitto
//! peer, and the peer and the one-message publisher on iot443's C API).

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
    /// The C peer on iot443's C API (`libiot443.so`, release), compiled at start (`None`
    /// without the release library).
    pub(crate) iot443_c: Option<PathBuf>,
    /// `crates/iot443-ffi/examples/publish_one.c` with the release `libiot443.a` linked in.
    pub(crate) publish_one_static: Option<PathBuf>,
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
            iot443_c: None,
            publish_one_static: None,
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
        self.build_c_api_peers(dir);
        self.runner.binary = compile(dir, "measure", &[]);
        if self.runner.binary.is_none() {
            eprintln!(
                "e2e: cannot build {} (no C compiler? install gcc): no child can be measured",
                source("measure").display()
            );
        }
    }

    /// The C API's peer (linked with `libiot443.so`) and `publish_one` (with `libiot443.a`),
    /// from the release library beside the `iot443` binary (`cargo build --release -p
    /// iot443-ffi`).
    fn build_c_api_peers(&mut self, dir: &Path) {
        let lib_dir = self.iot443.parent().map(Path::to_path_buf).unwrap_or_default();
        let ffi = paths::workspace_dir().join("crates/iot443-ffi");
        let include = format!("-I{}", ffi.join("include").display());
        let shared = lib_dir.join("libiot443.so");
        let static_lib = lib_dir.join("libiot443.a");
        if !shared.is_file() || !static_lib.is_file() {
            eprintln!(
                "e2e: no release libiot443 in {} (cargo build --release -p iot443-ffi): the C API \
                 peer is left out",
                lib_dir.display()
            );
            return;
        }
        let rpath = format!("-Wl,-rpath,{}", lib_dir.display());
        let shared = shared.display().to_string();
        self.iot443_c = compile(dir, "iot443_c_pub", &[&include, &shared, &rpath, "-lpthread"]);
        let static_lib = static_lib.display().to_string();
        let mut static_args = vec![include.as_str(), static_lib.as_str()];
        static_args.extend(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"]);
        self.publish_one_static = compile_source(
            dir,
            "publish_one_static",
            &ffi.join("examples/publish_one.c"),
            &static_args,
        );
        if self.iot443_c.is_none() || self.publish_one_static.is_none() {
            eprintln!("e2e: the C API peer or publish_one did not build (see above)");
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
    compile_source(dir, name, &source(name), libs)
}

/// `cc -O2 -o DIR/NAME SOURCE ARGS…`: the binary, or `None` when it did not build.
fn compile_source(dir: &Path, name: &str, source: &Path, libs: &[&str]) -> Option<PathBuf> {
    let binary = dir.join(name);
    let built = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&binary)
        .arg(source)
        .args(libs)
        .status()
        .is_ok_and(|status| status.success());
    built.then_some(binary)
}
