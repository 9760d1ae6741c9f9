//! The emulator, in-process or as the `iot443 emulator` process.

use crate::process::Proc;
use iot443_emulator::pki::{Pki, PkiOptions};
use iot443_emulator::server::{Emulator, EmulatorOptions, ServerError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An emulator running in this process on its own tokio runtime (so that tests stay plain
/// synchronous `#[test]`s driving peers as processes). Stopped when dropped.
pub struct InProcessEmulator {
    emulator: Option<Emulator>,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for InProcessEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessEmulator").field("emulator", &self.emulator).finish()
    }
}

impl InProcessEmulator {
    /// Starts an emulator with its PKI in `dir`: the ALPN listener and the MQTTS listener on
    /// free ports of 127.0.0.1.
    pub fn start(dir: &Path) -> InProcessEmulator {
        InProcessEmulator::start_on(dir, 0).unwrap_or_else(|error| {
            panic!("the emulator did not start in {}: {error}", dir.display())
        })
    }

    /// Like [`InProcessEmulator::start`] with the ALPN listener on `alpn_port` (443 to be
    /// exactly what IoT Core is); the error when it cannot be bound.
    pub fn start_on(dir: &Path, alpn_port: u16) -> Result<InProcessEmulator, ServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("emulator")
            .build()
            .expect("cannot start a tokio runtime for the emulator");
        let mut options = EmulatorOptions::new(dir);
        options.alpn_port = alpn_port;
        options.mqtts_port = Some(0);
        options.https_port = Some(0);
        let emulator = runtime.block_on(Emulator::start(options))?;
        Ok(InProcessEmulator { emulator: Some(emulator), runtime })
    }

    fn emulator(&self) -> &Emulator {
        self.emulator.as_ref().expect("the emulator runs until dropped")
    }

    /// The PKI (`ca.pem`, `device.crt`, `device.key`, `iot443.toml` in its folder).
    pub fn pki(&self) -> &Pki {
        &self.emulator().pki
    }

    /// The AWS access key the emulator's WebSocket road accepts, and its region.
    pub fn aws_credentials(&self) -> (&iot443_emulator::sigv4::AwsCredentials, &str) {
        (self.emulator().aws_credentials(), self.emulator().region())
    }

    /// The port of the HTTPS publish listener.
    pub fn https_port(&self) -> u16 {
        self.emulator().https_addr.expect("an HTTPS listener").port()
    }

    /// The PKI folder.
    pub fn dir(&self) -> &Path {
        &self.pki().dir
    }

    /// The port of the listener that behaves as IoT Core's port 443 (ALPN required).
    pub fn alpn_port(&self) -> u16 {
        self.emulator().alpn_addr.port()
    }

    /// The port of the MQTTS listener (no ALPN needed).
    pub fn mqtts_port(&self) -> u16 {
        self.emulator().mqtts_addr.expect("the MQTTS listener was asked for").port()
    }

    /// Runs `future` on the emulator's runtime (for the iot443 client library in a test).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

impl Drop for InProcessEmulator {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), emulator.stop()).await
            });
        }
    }
}

/// `iot443 emulator --dir DIR --alpn-port 0 --mqtts-port 0` as a process, for tests that read
/// its log: every refused handshake is a stderr line with its reason
/// (`refused TLS from … reason="missing_alpn"`).
#[derive(Debug)]
pub struct EmulatorProcess {
    /// The process; its stderr is the emulator's log.
    pub proc: Proc,
    /// The PKI folder.
    pub dir: PathBuf,
    /// The ALPN listener's address.
    pub alpn_addr: SocketAddr,
    /// The MQTTS listener's address.
    pub mqtts_addr: SocketAddr,
}

impl EmulatorProcess {
    /// Starts the emulator with its PKI in `dir` and waits for both `listening` lines.
    pub fn start(dir: &Path) -> EmulatorProcess {
        EmulatorProcess::start_with(dir, &[])
    }

    /// Like [`EmulatorProcess::start`] with extra flags (`--missing-alpn alert`, …).
    pub fn start_with(dir: &Path, flags: &[&str]) -> EmulatorProcess {
        EmulatorProcess::start_command(crate::iot443_command(), dir, flags)
    }

    /// Runs the `iot443` binary at `binary` (a release build), logging warnings only (no line
    /// per connection): for benchmarks, which must not measure against a debug build.
    pub fn start_quiet(binary: &Path, dir: &Path, flags: &[&str]) -> EmulatorProcess {
        let mut command = crate::iot443_command_at(binary);
        command.env("RUST_LOG", "warn");
        EmulatorProcess::start_command(command, dir, flags)
    }

    fn start_command(
        mut command: std::process::Command,
        dir: &Path,
        flags: &[&str],
    ) -> EmulatorProcess {
        command.arg("emulator").arg("--dir").arg(dir).args([
            "--alpn-port",
            "0",
            "--mqtts-port",
            "0",
            "--https-port",
            "0",
        ]);
        command.args(flags);
        let mut proc = Proc::spawn("iot443 emulator", command);
        let alpn_addr = listening_addr(&mut proc, "mqtt-alpn");
        let mqtts_addr = listening_addr(&mut proc, "mqtts");
        EmulatorProcess { proc, dir: dir.to_owned(), alpn_addr, mqtts_addr }
    }

    /// Waits for the emulator's log line that contains `text`, and returns it.
    pub fn wait_log(&mut self, text: &str) -> String {
        self.proc.wait_stderr(crate::TIMEOUT, |line| line.contains(text))
    }

    /// Waits for the log line of a refused handshake whose reason is `kind` (the stable name of
    /// `HandshakeRefusal::kind`, e.g. `missing_alpn`), and returns it.
    pub fn wait_refusal(&mut self, kind: &str) -> String {
        let field = format!("reason=\"{kind}\"");
        self.proc.wait_stderr(crate::TIMEOUT, |line| {
            line.contains("refused TLS from") && line.contains(&field)
        })
    }
}

/// Reads `iot443-emulator listening NAME ADDR` from stdout.
fn listening_addr(proc: &mut Proc, name: &str) -> SocketAddr {
    let prefix = format!("iot443-emulator listening {name} ");
    let line = proc.wait_stdout(crate::TIMEOUT, |line| line.starts_with(&prefix));
    let addr = line.trim_start_matches(&prefix).trim();
    addr.parse().unwrap_or_else(|error| panic!("bad address in {line:?}: {error}"))
}

/// Creates (or loads) an emulator PKI in `dir` without starting an emulator: a CA, a server
/// certificate for localhost, and the device `device`. Used as a foreign CA, or as the
/// certificates of a mosquitto broker.
pub fn pki_in(dir: &Path) -> Pki {
    Pki::load_or_create(dir, &PkiOptions::default())
        .unwrap_or_else(|error| panic!("cannot create a PKI in {}: {error}", dir.display()))
}
