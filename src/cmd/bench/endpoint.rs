//! The endpoint a bench loads: the embedded emulator, started as a process of its own, or the
//! configured one.

use super::process_stats::{self, Usage};
use crate::args::BenchCommon;
use crate::exit::Failure;
use iot443::Config;
use iot443::config::PortSetting;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long the emulator may take to create its PKI and listen.
const EMULATOR_START: Duration = Duration::from_secs(60);

/// The endpoint of one bench run.
pub struct Endpoint {
    /// The configuration every client starts from (its client id and files are replaced).
    pub config: Config,
    /// The emulator process, when the bench started one.
    pub emulator: Option<EmulatorProcess>,
}

impl Endpoint {
    /// The embedded emulator unless `--config` or `-h` name an endpoint.
    pub async fn open(common: &BenchCommon) -> Result<Endpoint, Failure> {
        if common.connect.client_id.is_some() {
            return Err(Failure::usage(
                "a bench connects many clients: give their ids with --client-ids PATTERN ({n} is \
                 the index), not -i",
            ));
        }
        let named = common.connect.config.is_some() || common.connect.endpoint.is_some();
        let (mut config, emulator) = if named {
            (super::super::config::resolve(&common.connect)?, None)
        } else {
            let emulator = EmulatorProcess::start().await?;
            let mut connect = common.connect.clone();
            connect.config = Some(emulator.config_path.clone());
            if connect.port == Some(PortSetting::Fixed(8883)) {
                connect.port = Some(port_setting(emulator.mqtts_port)?);
            }
            (super::super::config::resolve(&connect)?, Some(emulator))
        };
        if let Some(seconds) = common.keep_alive {
            config.keep_alive = Duration::from_secs(u64::from(seconds));
        }
        Ok(Endpoint { config, emulator })
    }

    /// `host:port (what it is)` for the summary.
    pub fn describe(&self) -> String {
        let what = match &self.emulator {
            Some(emulator) => format!("the embedded emulator, process {}", emulator.pid),
            None => "the configured endpoint".to_owned(),
        };
        format!("{} ({what}, {})", self.config.server_addr(), self.config.transport)
    }

    /// The emulator's usage, when the bench started it.
    pub async fn emulator_usage(&self) -> Option<Usage> {
        match &self.emulator {
            Some(emulator) => process_stats::read(Some(emulator.pid)).await,
            None => None,
        }
    }

    /// Ends the emulator process, if the bench started one.
    pub async fn close(self) {
        if let Some(emulator) = self.emulator {
            emulator.stop().await;
        }
    }
}

fn port_setting(port: u16) -> Result<PortSetting, Failure> {
    PortSetting::parse(&port.to_string())
        .map_err(|error| Failure::usage(format!("the emulator's MQTTS port {port}: {error}")))
}

/// `iot443 emulator` on free ports, as a child process, its PKI in the user's data folder.
pub struct EmulatorProcess {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// The `iot443.toml` it wrote for its ALPN listener.
    pub config_path: PathBuf,
    /// Its MQTTS listener's port (the 8883 road).
    pub mqtts_port: u16,
    /// Where its log goes.
    pub log_path: PathBuf,
}

impl EmulatorProcess {
    async fn start() -> Result<EmulatorProcess, Failure> {
        let dir = super::super::demo::data_dir().join("bench-emulator");
        tokio::task::spawn_blocking(move || EmulatorProcess::start_blocking(dir)).await.map_err(
            |error| Failure::incomplete(format!("starting the emulator failed: {error}")),
        )?
    }

    fn start_blocking(dir: PathBuf) -> Result<EmulatorProcess, Failure> {
        let exe = std::env::current_exe().map_err(|error| {
            Failure::incomplete(format!("cannot find this program to start the emulator: {error}"))
        })?;
        std::fs::create_dir_all(&dir).map_err(|error| {
            Failure::usage(format!(
                "cannot create the emulator's folder {}: {error}",
                dir.display()
            ))
        })?;
        let log_path = dir.join("emulator.log");
        let log = std::fs::File::create(&log_path).map_err(|error| {
            Failure::usage(format!("cannot create {}: {error}", log_path.display()))
        })?;
        let mut command = Command::new(exe);
        // A group of its own: Ctrl-C on the terminal reaches the bench, which prints its summary
        // and then ends the emulator, instead of the emulator dropping every connection first.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .args(["emulator", "--alpn-port", "0", "--mqtts-port", "0", "--https-port", "0"])
            .arg("--dir")
            .arg(&dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|error| Failure::incomplete(format!("cannot start the emulator: {error}")))?;
        let pid = child.id();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::incomplete("the emulator's output could not be read"));
        };
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end, so that the emulator never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut process = EmulatorProcess {
            child,
            pid,
            config_path: dir.join("iot443.toml"),
            mqtts_port: 0,
            log_path,
        };
        let deadline = std::time::Instant::now() + EMULATOR_START;
        while process.mqtts_port == 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = lines_rx.recv_timeout(left) else {
                let log = process.log_path.display().to_string();
                process.kill();
                return Err(Failure::incomplete(format!(
                    "the emulator did not start listening within {EMULATOR_START:?} (its log: {log})"
                )));
            };
            if let Some(addr) = line.strip_prefix("iot443-emulator listening mqtts ") {
                process.mqtts_port =
                    addr.rsplit(':').next().and_then(|port| port.parse().ok()).unwrap_or(0);
            }
        }
        Ok(process)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn stop(mut self) {
        let _ = tokio::task::spawn_blocking(move || self.kill()).await;
    }
}
