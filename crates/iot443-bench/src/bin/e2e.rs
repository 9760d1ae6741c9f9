//! End-to-end bench of iot443 against its peers, over TLS with ALPN `x-amzn-mqtt-ca`, on
//! loopback only, bounded in count and time. Prints markdown tables.
//!
//! ```sh
//! cargo run --release -p iot443-bench --bin e2e -- [--rounds N] [--messages N]
//! ```
//!
//! (`crates/iot443-bench/run.sh` first builds `target/release/iot443` and the `publish` example,
//! then runs this.)
//!
//! One endpoint for every contender in a run: a plain mosquitto broker on a loopback port behind
//! haproxy, which terminates TLS (server certificate and CA from the emulator's PKI, client
//! certificate required) and refuses every connection whose ClientHello did not offer ALPN
//! `x-amzn-mqtt-ca` (checked at start with a client that offers none). haproxy binds
//! 127.0.0.1:443 when it is free (every peer then offers the ALPN by itself, the awsiotsdk
//! included), else a free port, with the ALPN set explicitly for every peer.
//!
//! Contenders run as child processes, interleaved A B C … in each round (the order reversed every
//! other round). Each runs under `peers/measure.c`, a ~1 MiB runner compiled at start, which
//! reaps it with `wait4(2)`: its own wall time, user+sys CPU time and peak RSS (a child forked
//! by this bench directly would inherit the bench's peak RSS as its floor). Workloads:
//!
//! 1. `connect`: whole process, start → CONNACK → one QoS 0 publish → DISCONNECT → exit.
//! 2. `inproc`: in-process connect → CONNACK, 10 connections per process (first, later).
//! 3. `qos1`: N messages of 100 bytes, 100 in flight, first publish → last PUBACK.
//! 4. `qos0`: the same at QoS 0, first publish → last written.
//! 5. `size`: stripped sizes.
//!
//! For the command-line clients (`iot443 pub -l`, `mosquitto_pub -l`) the bench starts the
//! process, lets it connect (it waits 500 ms, far longer than either needs), then writes the N
//! lines to its stdin; the time is first line written → process exit (the exit follows the last
//! PUBACK, or the last write at QoS 0, plus DISCONNECT). The Python peers and the in-process
//! library children time themselves, from their first publish.

// A bench program: setup failures are bugs to report loudly, and indexing is over vectors built
// right here. `unsafe` is for wait4(2) and kill(2) only (`measure_direct`, the fallback when no
// C compiler can build the runner).
#![allow(unsafe_code)]
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use iot443_emulator::pki::{DeviceKeyKind, Pki, PkiOptions};

const ALPN: &str = "x-amzn-mqtt-ca";
const HOST: &str = "localhost";
/// Longest any one child may run before it is killed.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
/// Time a command-line client gets to connect before its stdin is written.
const STDIN_DELAY: Duration = Duration::from_millis(500);
/// Connections per in-process connect child.
const INPROC_CONNECTS: usize = 10;
const MIB: f64 = 1024.0 * 1024.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        return child::main(&args[1..]);
    }
    let opts = match Opts::parse(&args) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("e2e: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("e2e: {message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: e2e [--rounds N] [--connect-rounds N] [--messages N] [--window N]
           [--only connect,inproc,qos1,qos0,size] [--port P] [--dir DIR]
  --rounds N          rounds of the stream workloads (default 10)
  --connect-rounds N  rounds of the connect workloads (default 20)
  --messages N        messages per stream (default 20000)
  --window N          QoS 1 messages in flight (default 100)
  --only LIST         workloads to run (default all)
  --port P            haproxy's port (default 443 when free, else a free port)
  --dir DIR           work folder: PKI, configs (default target/e2e-bench)
env: IOT443_BIN (default target/release/iot443), IOT443_PEERS_PYTHON (default
     target/peers-venv/bin/python)";

struct Opts {
    rounds: usize,
    connect_rounds: usize,
    messages: usize,
    window: usize,
    only: Vec<String>,
    port: Option<u16>,
    dir: PathBuf,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut opts = Opts {
            rounds: 10,
            connect_rounds: 20,
            messages: 20_000,
            window: 100,
            only: ["connect", "inproc", "qos1", "qos0", "size"].map(String::from).to_vec(),
            port: None,
            dir: workspace_root().join("target/e2e-bench"),
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
            let number = |text: String| {
                text.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{flag}: {text:?} is not a positive number"))
            };
            match flag.as_str() {
                "--rounds" => opts.rounds = number(value()?)?,
                "--connect-rounds" => opts.connect_rounds = number(value()?)?,
                "--messages" => opts.messages = number(value()?)?.min(1_000_000),
                "--window" => opts.window = number(value()?)?.min(65_535),
                "--only" => opts.only = value()?.split(',').map(str::to_owned).collect(),
                "--port" => {
                    opts.port = Some(value()?.parse().map_err(|_| "--port: not a port")?);
                }
                "--dir" => opts.dir = PathBuf::from(value()?),
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        opts.rounds = opts.rounds.min(1000);
        opts.connect_rounds = opts.connect_rounds.min(1000);
        Ok(opts)
    }

    fn wants(&self, workload: &str) -> bool {
        self.only.iter().any(|w| w == workload)
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

// ---------------------------------------------------------------------------------------------
// The endpoint: mosquitto behind an ALPN-enforcing haproxy.

struct Endpoint {
    port: u16,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// Folder the command-line clients run in (holds no iot443.toml).
    cwd: PathBuf,
    children: Vec<(&'static str, Child)>,
}

impl Endpoint {
    fn start(dir: &Path, port: Option<u16>) -> Result<Endpoint, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let pki_dir = dir.join("pki");
        let options = PkiOptions {
            device_key: DeviceKeyKind::Rsa2048,
            endpoint_port: Some(443),
            ..PkiOptions::default()
        };
        let pki = Pki::load_or_create(&pki_dir, &options).map_err(|e| format!("PKI: {e}"))?;
        let ca = pki.dir.join("ca.pem");
        let cert = pki.dir.join("device.crt");
        let key = pki.dir.join("device.key");
        let server_pem = dir.join("server.pem");
        let pem = [
            std::fs::read_to_string(pki.dir.join("server.crt")).map_err(|e| e.to_string())?,
            std::fs::read_to_string(pki.dir.join("server.key")).map_err(|e| e.to_string())?,
        ]
        .concat();
        std::fs::write(&server_pem, pem).map_err(|e| e.to_string())?;
        let cwd = dir.join("cwd");
        std::fs::create_dir_all(&cwd).map_err(|e| e.to_string())?;

        let port = match port {
            Some(port) => port,
            None if TcpListener::bind(("127.0.0.1", 443)).is_ok() => 443,
            None => free_port()?,
        };
        let broker_port = free_port()?;
        let mosquitto_conf = dir.join("mosquitto.conf");
        std::fs::write(
            &mosquitto_conf,
            format!(
                "# written by the iot443 e2e bench\n\
                 listener {broker_port} 127.0.0.1\n\
                 allow_anonymous true\n\
                 persistence false\n\
                 user root\n\
                 max_queued_messages 1000000\n\
                 set_tcp_nodelay true\n\
                 log_dest none\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let haproxy_cfg = dir.join("haproxy.cfg");
        std::fs::write(
            &haproxy_cfg,
            format!(
                "# written by the iot443 e2e bench: TLS with client certificates and ALPN {ALPN}\n\
                 global\n    maxconn 1000\n    nbthread 1\n\
                 defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
                 frontend iot\n    bind 127.0.0.1:{port} ssl crt {server} ca-file {ca} verify required alpn {ALPN}\n\
                 \x20   tcp-request session reject unless {{ ssl_fc_alpn -m str {ALPN} }}\n\
                 \x20   default_backend broker\n\
                 backend broker\n    server mosquitto 127.0.0.1:{broker_port}\n",
                server = server_pem.display(),
                ca = ca.display(),
            ),
        )
        .map_err(|e| e.to_string())?;

        let mut endpoint = Endpoint { port, ca, cert, key, cwd, children: Vec::new() };
        let mosquitto = Command::new("mosquitto")
            .arg("-c")
            .arg(&mosquitto_conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start mosquitto (run .ci/install-peers): {e}"))?;
        endpoint.children.push(("mosquitto", mosquitto));
        wait_listening(broker_port, "mosquitto")?;
        let haproxy = Command::new("haproxy")
            .args(["-db", "-q", "-f"])
            .arg(&haproxy_cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start haproxy (run .ci/install-peers): {e}"))?;
        endpoint.children.push(("haproxy", haproxy));
        wait_listening(port, "haproxy")?;
        for (name, child) in &mut endpoint.children {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{name} exited at start: {status}"));
            }
        }
        Ok(endpoint)
    }

    fn port_arg(&self) -> String {
        self.port.to_string()
    }

    /// HOST PORT CA CERT KEY, as the scripts and children take them.
    fn peer_args(&self) -> Vec<String> {
        vec![
            HOST.to_owned(),
            self.port_arg(),
            self.ca.display().to_string(),
            self.cert.display().to_string(),
            self.key.display().to_string(),
        ]
    }

    /// Connection flags shared by `mosquitto_pub` invocations.
    fn mosquitto_args(&self, client_id: &str, alpn: bool) -> Vec<String> {
        let mut args: Vec<String> =
            ["-h", HOST, "-p", &self.port_arg(), "-i", client_id].map(String::from).to_vec();
        for (flag, path) in [("--cafile", &self.ca), ("--cert", &self.cert), ("--key", &self.key)] {
            args.push(flag.to_owned());
            args.push(path.display().to_string());
        }
        if alpn {
            args.extend(["--tls-alpn".to_owned(), ALPN.to_owned()]);
        }
        args
    }

    /// Connection flags shared by `iot443 pub` invocations.
    fn iot443_args(&self, client_id: &str) -> Vec<String> {
        let mut args: Vec<String> =
            ["-h", HOST, "-p", &self.port_arg(), "-i", client_id].map(String::from).to_vec();
        for (flag, path) in [("--cafile", &self.ca), ("--cert", &self.cert), ("--key", &self.key)] {
            args.push(flag.to_owned());
            args.push(path.display().to_string());
        }
        if self.port != 443 {
            args.extend(["--alpn".to_owned(), ALPN.to_owned()]);
        }
        args
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn wait_listening(port: u16, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    Err(format!("{what} does not listen on 127.0.0.1:{port} after 10 s"))
}

// ---------------------------------------------------------------------------------------------
// Running and measuring one child.

/// What `wait4(2)` and the clock say about one child.
#[derive(Debug, Clone)]
struct Run {
    /// Spawn → reaped.
    wall: Duration,
    /// First byte written to its stdin → reaped, when stdin was fed.
    from_stdin: Option<Duration>,
    cpu: Duration,
    max_rss: u64,
    stdout: String,
}

impl Run {
    /// `key=<float>` from the child's stdout.
    fn reported(&self, key: &str) -> Option<Vec<f64>> {
        let line =
            self.stdout.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix('='))?;
        line.split_whitespace().map(|v| v.parse().ok()).collect()
    }
}

/// Input written to a child's stdin after a delay.
struct Feed {
    delay: Duration,
    file: Arc<PathBuf>,
}

/// The small runner (`peers/measure.c`), when it could be built.
static RUNNER: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// Compiles `peers/measure.c` into `dir`.
fn build_runner(dir: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/measure.c");
    let binary = dir.join("measure");
    let ok = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .is_ok_and(|status| status.success());
    if !ok {
        eprintln!(
            "e2e: cannot build {} (no C compiler?): children are measured directly, and their \
             peak RSS cannot be lower than this bench's own",
            source.display()
        );
    }
    let _ = RUNNER.set(ok.then_some(binary));
}

/// Runs `cmd` to its end and measures it: through the runner when there is one.
fn measure(cmd: Command, feed: Option<Feed>) -> Result<Run, String> {
    match RUNNER.get().cloned().flatten() {
        Some(runner) => measure_with_runner(&runner, cmd, feed),
        None => measure_direct(cmd, feed),
    }
}

fn measure_with_runner(runner: &Path, cmd: Command, feed: Option<Feed>) -> Result<Run, String> {
    let what = format!("{:?}", cmd.get_program());
    let mut outer = Command::new(runner);
    outer.arg(feed.as_ref().map_or(0, |f| f.delay.as_millis()).to_string());
    outer.arg(feed.as_ref().map_or_else(|| PathBuf::from("-"), |f| f.file.to_path_buf()));
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

fn command(program: impl AsRef<std::ffi::OsStr>, args: &[String], cwd: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(cwd);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IOT443_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

/// Runs `cmd` to its end (killed after [`CHILD_TIMEOUT`]) and measures it with wait4(2) here.
fn measure_direct(mut cmd: Command, feed: Option<Feed>) -> Result<Run, String> {
    let what = format!("{:?}", cmd.get_program());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if feed.is_some() { Stdio::piped() } else { Stdio::null() });
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {what}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let feeder = match (feed, child.stdin.take()) {
        (Some(feed), Some(mut stdin)) => Some(thread::spawn(move || {
            thread::sleep(feed.delay);
            let data = std::fs::read(&*feed.file).unwrap_or_default();
            let first = Instant::now();
            let _ = stdin.write_all(&data);
            first
        })),
        _ => None,
    };
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (done, done_rx) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || match done_rx.recv_timeout(CHILD_TIMEOUT) {
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // SAFETY: kill(2) with a pid this process spawned and has not reaped yet (the main
            // thread reaps it only in wait4 below, which has not returned).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            true
        }
        _ => false,
    });

    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        // SAFETY: wait4(2) on our own child, with valid pointers to a c_int and a rusage.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break rc;
    };
    let end = Instant::now();
    let _ = done.send(());
    let killed = watchdog.join().unwrap_or(false);
    let first_write = feeder.map(|f| f.join().expect("feeder thread"));
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    drop(child); // already reaped by wait4: std's handle must not wait again
    if reaped != pid {
        return Err(format!("wait4 on {what}: {}", std::io::Error::last_os_error()));
    }
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if killed || !exited_ok {
        let tail: String =
            stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(format!(
            "{what} failed ({}): {tail}",
            if killed {
                "killed after the time limit".to_owned()
            } else {
                format!("status {status:#x}")
            }
        ));
    }
    Ok(Run {
        wall: end - start,
        from_stdin: first_write.map(|first| end - first),
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        max_rss: usage.ru_maxrss as u64 * 1024,
        stdout,
    })
}

// ---------------------------------------------------------------------------------------------
// Contenders.

struct Tools {
    iot443: PathBuf,
    python: PathBuf,
    scripts: PathBuf,
    me: PathBuf,
    /// The C peer on libmosquitto, compiled at start (`None` without libmosquitto-dev).
    libmosquitto: Option<PathBuf>,
}

impl Tools {
    fn find() -> Result<Tools, String> {
        let root = workspace_root();
        let iot443 = std::env::var_os("IOT443_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/release/iot443"));
        if !iot443.is_file() {
            return Err(format!(
                "{} is missing: cargo build --release --bin iot443 (or run crates/iot443-bench/run.sh)",
                iot443.display()
            ));
        }
        let python = std::env::var_os("IOT443_PEERS_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/peers-venv/bin/python"));
        if !python.is_file() {
            return Err(format!("{} is missing: run .ci/install-peers", python.display()));
        }
        Ok(Tools {
            iot443,
            python,
            scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts"),
            me: std::env::current_exe().map_err(|e| e.to_string())?,
            libmosquitto: None,
        })
    }

    /// Compiles `peers/libmosquitto_pub.c` into `dir`.
    fn build_libmosquitto_peer(&mut self, dir: &Path) {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/libmosquitto_pub.c");
        let binary = dir.join("libmosquitto_pub");
        let built = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&binary)
            .arg(&source)
            .args(["-lmosquitto", "-lpthread"])
            .status();
        match built {
            Ok(status) if status.success() => self.libmosquitto = Some(binary),
            _ => eprintln!(
                "e2e: cannot build {} (apt-get install libmosquitto-dev): the libmosquitto C peer is left out",
                source.display()
            ),
        }
    }

    fn script(&self, name: &str) -> String {
        self.scripts.join(name).display().to_string()
    }
}

/// One contender of a workload: its name, how to start it, and which figure to take.
struct Contender {
    name: String,
    build: Box<dyn Fn(usize) -> (Command, Option<Feed>)>,
    /// Where the elapsed time comes from.
    timing: Timing,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Timing {
    /// Spawn → exit.
    Wall,
    /// First stdin byte written → exit.
    FromStdin,
    /// The child's own `elapsed_ms=`.
    Reported,
}

/// Runs every contender `rounds` times, interleaved, the order reversed every other round.
/// `results[contender][round]`.
fn interleave(title: &str, contenders: &[Contender], rounds: usize) -> Vec<Vec<Option<Run>>> {
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
            let (cmd, feed) = (contender.build)(round);
            match measure(cmd, feed) {
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

fn elapsed(run: &Run, timing: Timing) -> Duration {
    match timing {
        Timing::Wall => run.wall,
        Timing::FromStdin => run.from_stdin.unwrap_or(run.wall),
        Timing::Reported => {
            Duration::from_secs_f64(run.reported("elapsed_ms").unwrap_or_default()[0] / 1e3)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics and tables.

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// "median (min–max)" with `decimals`.
fn summary(values: &[f64], decimals: usize) -> String {
    if values.is_empty() {
        return "—".to_owned();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.d$} ({:.d$}–{:.d$})", median(values), min, max, d = decimals)
}

/// Per-round ratios `value(contender) / value(reference)` over the rounds both completed.
fn ratios(
    results: &[Vec<Option<Run>>],
    contender: usize,
    reference: usize,
    value: impl Fn(&Run) -> f64,
) -> Vec<f64> {
    results[contender]
        .iter()
        .zip(&results[reference])
        .filter_map(|(a, b)| Some(value(a.as_ref()?) / value(b.as_ref()?)))
        .collect()
}

fn values(runs: &[Option<Run>], value: impl Fn(&Run) -> f64) -> Vec<f64> {
    runs.iter().flatten().map(value).collect()
}

fn completed(runs: &[Option<Run>]) -> String {
    let ok = runs.iter().flatten().count();
    if ok == runs.len() { ok.to_string() } else { format!("{ok} of {}", runs.len()) }
}

// ---------------------------------------------------------------------------------------------
// The run.

fn run(opts: &Opts) -> Result<(), String> {
    let mut tools = Tools::find()?;
    eprintln!("e2e: starting mosquitto behind haproxy in {}", opts.dir.display());
    let endpoint = Endpoint::start(&opts.dir, opts.port)?;
    tools.build_libmosquitto_peer(&opts.dir);
    build_runner(&opts.dir);
    let started = Instant::now();
    let load_start = load_average();
    let mut report = String::new();
    let _ = writeln!(report, "{}", header(&endpoint, &tools));
    check_alpn_enforced(&endpoint)?;
    let _ = writeln!(
        report,
        "Endpoint: haproxy 127.0.0.1:{} (TLS, client certificate required, ALPN {ALPN} required: a \
         client offering no ALPN was refused at start) → mosquitto on loopback. Device key: RSA-2048 \
         (PKCS#1), server and CA: EC P-256.\n",
        endpoint.port
    );

    if opts.wants("connect") {
        report.push_str(&connect_workload(opts, &endpoint, &tools));
    }
    if opts.wants("inproc") {
        report.push_str(&inproc_workload(opts, &endpoint, &tools));
    }
    for (workload, qos) in [("qos1", 1u8), ("qos0", 0u8)] {
        if opts.wants(workload) {
            report.push_str(&stream_workload(opts, &endpoint, &tools, qos));
        }
    }
    if opts.wants("size") {
        report.push_str(&size_workload(&tools));
    }
    let _ = writeln!(
        report,
        "Total bench time: {:.0} s. Load average (1, 5, 15 min) at the start: {load_start}; at the end: {}.",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    drop(endpoint);
    println!("{report}");
    Ok(())
}

/// The first three fields of /proc/loadavg: other work on this machine shows here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn header(endpoint: &Endpoint, tools: &Tools) -> String {
    let sh = |program: &str, args: &[&str]| -> String {
        Command::new(program)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|_| "?".to_owned())
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "?".to_owned());
    let python_versions = sh(
        &tools.python.display().to_string(),
        &[
            "-c",
            "import importlib.metadata as m, sys; print('python', sys.version.split()[0], '· paho-mqtt', m.version('paho-mqtt'), '· awsiotsdk', m.version('awsiotsdk'), '· awscrt', m.version('awscrt'))",
        ],
    );
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap_or_default();
    let locked = |name: &str| {
        let needle = format!("name = \"{name}\"\nversion = \"");
        lock.find(&needle)
            .and_then(|at| lock[at + needle.len()..].split('"').next().map(str::to_owned))
            .unwrap_or_else(|| "?".to_owned())
    };
    let git = sh(
        "git",
        &["-C", &workspace_root().display().to_string(), "describe", "--always", "--dirty"],
    );
    let mut out = String::new();
    let _ = writeln!(out, "## e2e run {}\n", sh("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]));
    let _ = writeln!(
        out,
        "Machine: {} cores ({cpu}), Linux {}; iot443 {git} (`{}`, rustls {} with ring).",
        thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        sh("uname", &["-r"]),
        tools.iot443.display(),
        locked("rustls"),
    );
    let _ = writeln!(
        out,
        "Peers: mosquitto / mosquitto-clients / libmosquitto1 {} (OpenSSL {}), haproxy {}; {python_versions}; rumqttc {} (rustls {} with ring, the same ClientConfig as iot443).\n",
        sh("dpkg-query", &["-W", "-f", "${Version}", "mosquitto-clients"]),
        sh("openssl", &["version"]).split_whitespace().nth(1).unwrap_or("?"),
        sh("dpkg-query", &["-W", "-f", "${Version}", "haproxy"]),
        locked("rumqttc"),
        locked("rustls"),
    );
    let _ = endpoint;
    out
}

/// A client offering no ALPN must be refused: the endpoint behaves like IoT Core on 443.
fn check_alpn_enforced(endpoint: &Endpoint) -> Result<(), String> {
    let mut args = endpoint.mosquitto_args("bench-no-alpn", false);
    args.extend(["-t", "bench/t", "-m", "x"].map(String::from));
    let cmd = command("mosquitto_pub", &args, &endpoint.cwd);
    match measure(cmd, None) {
        Ok(_) => {
            Err("the endpoint accepted a client that offered no ALPN: check haproxy.cfg".into())
        }
        Err(_) => {
            // And with ALPN it works.
            let mut args = endpoint.mosquitto_args("bench-alpn", true);
            args.extend(["-t", "bench/t", "-m", "x"].map(String::from));
            measure(command("mosquitto_pub", &args, &endpoint.cwd), None)
                .map(|_| ())
                .map_err(|e| format!("mosquitto_pub with ALPN fails against the endpoint: {e}"))
        }
    }
}

fn connect_workload(opts: &Opts, endpoint: &Endpoint, tools: &Tools) -> String {
    let cwd = endpoint.cwd.clone();
    let mut contenders = Vec::new();
    {
        let mut args = vec!["pub".to_owned()];
        args.extend(endpoint.iot443_args("bench-c-iot443"));
        args.extend(["-t", "t", "-m", "x"].map(String::from));
        let (bin, cwd) = (tools.iot443.clone(), cwd.clone());
        contenders.push(Contender {
            name: "`iot443 pub -t t -m x`".into(),
            build: Box::new(move |_| (command(&bin, &args, &cwd), None)),
            timing: Timing::Wall,
        });
    }
    {
        let mut args = endpoint.mosquitto_args("bench-c-mosq", true);
        args.extend(["-t", "t", "-m", "x"].map(String::from));
        let cwd = cwd.clone();
        contenders.push(Contender {
            name: "`mosquitto_pub --tls-alpn … -t t -m x`".into(),
            build: Box::new(move |_| (command("mosquitto_pub", &args, &cwd), None)),
            timing: Timing::Wall,
        });
    }
    for (name, script, cid) in [
        ("paho-mqtt (Python)", "paho_pub.py", "bench-c-paho"),
        ("awsiotsdk (Python, awscrt)", "awsiot_pub.py", "bench-c-awsiot"),
    ] {
        let mut args = vec![tools.script(script), "connect".to_owned()];
        args.extend(endpoint.peer_args());
        args.push(cid.to_owned());
        let (python, cwd) = (tools.python.clone(), cwd.clone());
        contenders.push(Contender {
            name: name.into(),
            build: Box::new(move |_| (command(&python, &args, &cwd), None)),
            timing: Timing::Wall,
        });
    }
    eprintln!("e2e: connect, whole process, {} rounds", opts.connect_rounds);
    let results = interleave("connect", &contenders, opts.connect_rounds);
    const REF: usize = 1;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### 1. Connect, whole process: start → CONNACK → one QoS 0 publish → exit\n\n\
         {} rounds, interleaved; median (min–max); ratio = contender / mosquitto_pub in the same round.\n\n\
         | client | runs | wall ms | ratio | CPU ms (user+sys) | ratio | peak RSS MiB | ratio |\n\
         |---|---|---|---|---|---|---|---|",
        opts.connect_rounds
    );
    let wall = |r: &Run| r.wall.as_secs_f64() * 1e3;
    let cpu = |r: &Run| r.cpu.as_secs_f64() * 1e3;
    let rss = |r: &Run| r.max_rss as f64 / MIB;
    for (i, contender) in contenders.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            contender.name,
            completed(&results[i]),
            summary(&values(&results[i], wall), 1),
            summary(&ratios(&results, i, REF, wall), 2),
            summary(&values(&results[i], cpu), 1),
            summary(&ratios(&results, i, REF, cpu), 2),
            summary(&values(&results[i], rss), 1),
            summary(&ratios(&results, i, REF, rss), 2),
        );
    }
    out.push('\n');
    out
}

fn inproc_workload(opts: &Opts, endpoint: &Endpoint, tools: &Tools) -> String {
    let cwd = endpoint.cwd.clone();
    let mut contenders = Vec::new();
    for (name, lib) in
        [("iot443 `Client::connect`", "iot443"), ("rumqttc 0.25 (rustls, ring)", "rumqttc")]
    {
        let mut args = vec!["child".to_owned(), format!("{lib}-connects")];
        args.extend(endpoint.peer_args());
        args.extend([
            format!("bench-i-{lib}"),
            "0".into(),
            INPROC_CONNECTS.to_string(),
            "1".into(),
        ]);
        let (me, cwd) = (tools.me.clone(), cwd.clone());
        contenders.push(Contender {
            name: name.into(),
            build: Box::new(move |_| (command(&me, &args, &cwd), None)),
            timing: Timing::Wall,
        });
    }
    if let Some(peer) = &tools.libmosquitto {
        let mut args = vec!["connects".to_owned()];
        args.extend(endpoint.peer_args());
        args.extend([
            "bench-i-libmosq".into(),
            "0".into(),
            INPROC_CONNECTS.to_string(),
            "100".into(),
        ]);
        let (peer, cwd) = (peer.clone(), cwd.clone());
        contenders.push(Contender {
            name: "libmosquitto (C)".into(),
            build: Box::new(move |_| (command(&peer, &args, &cwd), None)),
            timing: Timing::Wall,
        });
    }
    for (name, script, cid) in [
        ("paho-mqtt (Python)", "paho_pub.py", "bench-i-paho"),
        ("awsiotsdk (Python, awscrt)", "awsiot_pub.py", "bench-i-awsiot"),
    ] {
        let mut args = vec![tools.script(script), "connects".to_owned()];
        args.extend(endpoint.peer_args());
        args.extend([cid.to_owned(), "0".into(), INPROC_CONNECTS.to_string(), "1".into()]);
        let (python, cwd) = (tools.python.clone(), cwd.clone());
        contenders.push(Contender {
            name: name.into(),
            build: Box::new(move |_| (command(&python, &args, &cwd), None)),
            timing: Timing::Wall,
        });
    }
    let rounds = opts.rounds;
    eprintln!("e2e: in-process connect, {rounds} rounds of {INPROC_CONNECTS} connections");
    let results = interleave("inproc", &contenders, rounds);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### 2. In-process connect → CONNACK\n\n\
         {rounds} rounds; each round one process per library makes {INPROC_CONNECTS} connections one after \
         the other (connect → CONNACK timed, then DISCONNECT). First: the process's first connection, \
         median over rounds (min–max). Later: the median of connections 2–{INPROC_CONNECTS} in each \
         round, then median over rounds (min–max of those). Each timed connection includes reading \
         the PEM files and building the TLS configuration (rumqttc gets the same rustls ClientConfig \
         as iot443, built inside the timed region).\n\n\
         | library | runs | first connect ms | later connects ms |\n|---|---|---|---|"
    );
    for (i, contender) in contenders.iter().enumerate() {
        let series: Vec<Vec<f64>> = results[i]
            .iter()
            .flatten()
            .filter_map(|r| r.reported("connect_ms"))
            .filter(|v| !v.is_empty())
            .collect();
        let first: Vec<f64> = series.iter().map(|v| v[0]).collect();
        let later: Vec<f64> =
            series.iter().filter(|v| v.len() > 1).map(|v| median(&v[1..])).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            contender.name,
            completed(&results[i]),
            summary(&first, 2),
            summary(&later, 2)
        );
    }
    out.push('\n');
    out
}

fn stream_workload(opts: &Opts, endpoint: &Endpoint, tools: &Tools, qos: u8) -> String {
    let n = opts.messages;
    let window = opts.window;
    let lines = Arc::new(opts.dir.join(format!("lines-{n}.txt")));
    let text: String = (0..n).map(|i| format!("{i:0>100}\n")).collect();
    if let Err(error) = std::fs::write(&*lines, text) {
        return format!("### QoS {qos} stream: cannot write {}: {error}\n\n", lines.display());
    }
    let cwd = endpoint.cwd.clone();
    let q = qos.to_string();
    let mut contenders = Vec::new();
    {
        let mut args = vec!["pub".to_owned()];
        args.extend(endpoint.iot443_args(&format!("bench-s{qos}-iot443")));
        args.extend(["-t", "bench/s", "-l", "-q", &q].map(String::from));
        let (bin, cwd, lines) = (tools.iot443.clone(), cwd.clone(), Arc::clone(&lines));
        contenders.push(Contender {
            name: format!("`iot443 pub -l -q {qos}` (CLI)"),
            build: Box::new(move |_| {
                (
                    command(&bin, &args, &cwd),
                    Some(Feed { delay: STDIN_DELAY, file: Arc::clone(&lines) }),
                )
            }),
            timing: Timing::FromStdin,
        });
    }
    {
        let mut args = endpoint.mosquitto_args(&format!("bench-s{qos}-mosq"), true);
        args.extend(["-t", "bench/s", "-l", "-q", &q, "-M", &window.to_string()].map(String::from));
        let (cwd, lines) = (cwd.clone(), Arc::clone(&lines));
        contenders.push(Contender {
            name: format!("`mosquitto_pub -l -q {qos} -M {window}` (libmosquitto)"),
            build: Box::new(move |_| {
                (
                    command("mosquitto_pub", &args, &cwd),
                    Some(Feed { delay: STDIN_DELAY, file: Arc::clone(&lines) }),
                )
            }),
            timing: Timing::FromStdin,
        });
    }
    if let Some(peer) = &tools.libmosquitto {
        let mut args = vec!["stream".to_owned()];
        args.extend(endpoint.peer_args());
        args.extend([
            format!("bench-s{qos}-libmosq"),
            q.clone(),
            n.to_string(),
            window.to_string(),
        ]);
        let (peer, cwd) = (peer.clone(), cwd.clone());
        contenders.push(Contender {
            name: format!("libmosquitto (C, `max_inflight` {window}, loop thread)"),
            build: Box::new(move |_| (command(&peer, &args, &cwd), None)),
            timing: Timing::Reported,
        });
    }
    for (name, lib) in [("iot443 library", "iot443"), ("rumqttc 0.25 library", "rumqttc")] {
        let mut args = vec!["child".to_owned(), format!("{lib}-stream")];
        args.extend(endpoint.peer_args());
        args.extend([format!("bench-s{qos}-{lib}"), q.clone(), n.to_string(), window.to_string()]);
        let (me, cwd) = (tools.me.clone(), cwd.clone());
        contenders.push(Contender {
            name: name.into(),
            build: Box::new(move |_| (command(&me, &args, &cwd), None)),
            timing: Timing::Reported,
        });
    }
    for (name, script, cid) in [
        ("paho-mqtt (Python)", "paho_pub.py", "paho"),
        ("awsiotsdk (Python, awscrt)", "awsiot_pub.py", "awsiot"),
    ] {
        let mut args = vec![tools.script(script), "stream".to_owned()];
        args.extend(endpoint.peer_args());
        args.extend([format!("bench-s{qos}-{cid}"), q.clone(), n.to_string(), window.to_string()]);
        let (python, cwd) = (tools.python.clone(), cwd.clone());
        contenders.push(Contender {
            name: name.into(),
            build: Box::new(move |_| (command(&python, &args, &cwd), None)),
            timing: Timing::Reported,
        });
    }
    let rounds = opts.rounds;
    eprintln!("e2e: QoS {qos} stream, {n} × 100 B, {rounds} rounds");
    let results = interleave(&format!("qos{qos}"), &contenders, rounds);
    // Ratios against mosquitto_pub (the command line) and libmosquitto (the C peer, when built).
    let references: Vec<(usize, &str)> = [(1, "mosquitto_pub"), (2, "libmosquitto")]
        .into_iter()
        .filter(|&(i, _)| i == 1 || tools.libmosquitto.is_some())
        .collect();
    let timings: Vec<Timing> = contenders.iter().map(|c| c.timing).collect();
    let mut out = String::new();
    let (number, what, to) = if qos == 1 {
        (3, format!("QoS 1 stream: {n} × 100 B, {window} in flight"), "last PUBACK")
    } else {
        (4, format!("QoS 0 stream: {n} × 100 B"), "last message written")
    };
    let _ = writeln!(
        out,
        "### {number}. {what}, first publish → {to}\n\n\
         {rounds} rounds, interleaved; median (min–max); ratios = msgs/s of the contender / msgs/s \
         of the reference in the same round (higher is better). CPU and peak RSS are the whole \
         client process's (connect included), from wait4(2); CPU µs/msg = (user+sys) / {n}. \
         Timing: (a) the bench writes the {n} lines to the client's stdin {} ms after starting it \
         (connected by then) and times first line written → process exit; (b) the client times \
         itself from its first publish (in-process children: current-thread tokio runtime; at \
         QoS 0 the two Rust libraries are timed up to their DISCONNECT flushed, since rumqttc \
         reports no per-message write).\n\n\
         | client | runs | msgs/s | {} | elapsed ms | CPU µs/msg | peak RSS MiB | timing |\n\
         |---|---|---|{}---|---|---|---|",
        STDIN_DELAY.as_millis(),
        references.iter().map(|(_, name)| format!("× {name}")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(references.len()),
    );
    for (i, contender) in contenders.iter().enumerate() {
        let timing = timings[i];
        let rate = |r: &Run| n as f64 / elapsed(r, timing).as_secs_f64();
        let ratio_columns: Vec<String> = references
            .iter()
            .map(|&(reference, _)| {
                let ref_timing = timings[reference];
                let ratio: Vec<f64> = results[i]
                    .iter()
                    .zip(&results[reference])
                    .filter_map(|(a, b)| {
                        let b = elapsed(b.as_ref()?, ref_timing).as_secs_f64();
                        Some(rate(a.as_ref()?) * b / n as f64)
                    })
                    .collect();
                summary(&ratio, 2)
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            contender.name,
            completed(&results[i]),
            summary(&values(&results[i], rate), 0),
            ratio_columns.join(" | "),
            summary(&values(&results[i], |r| elapsed(r, timing).as_secs_f64() * 1e3), 1),
            summary(&values(&results[i], |r| r.cpu.as_secs_f64() * 1e6 / n as f64), 2),
            summary(&values(&results[i], |r| r.max_rss as f64 / MIB), 1),
            if timing == Timing::FromStdin { "(a)" } else { "(b)" },
        );
    }
    out.push('\n');
    out
}

fn size_workload(tools: &Tools) -> String {
    let root = workspace_root();
    let mut out = String::from(
        "### 5. Size (stripped with `strip` on a copy)\n\n| binary | size | stripped |\n|---|---|---|\n",
    );
    let mut row = |name: &str, path: &Path| {
        let Ok(meta) = std::fs::metadata(path) else {
            let _ = writeln!(out, "| {name} | missing: {} | — |", path.display());
            return;
        };
        let copy = std::env::temp_dir().join(format!("iot443-e2e-strip-{}", std::process::id()));
        let stripped = std::fs::copy(path, &copy)
            .ok()
            .and_then(|_| Command::new("strip").arg(&copy).status().ok())
            .filter(|s| s.success())
            .and_then(|_| std::fs::metadata(&copy).ok())
            .map(|m| format!("{:.2} MiB ({} bytes)", m.len() as f64 / MIB, m.len()))
            .unwrap_or_else(|| "?".to_owned());
        let _ = std::fs::remove_file(&copy);
        let _ = writeln!(out, "| {name} | {:.2} MiB | {stripped} |", meta.len() as f64 / MIB);
    };
    row("`iot443` (CLI, release)", &tools.iot443);
    row("`examples/publish.rs` (release)", &root.join("target/release/examples/publish"));
    row("`mosquitto_pub` (Debian, dynamically linked)", Path::new("/usr/bin/mosquitto_pub"));
    for lib in ["libmosquitto.so.1", "libssl.so.3", "libcrypto.so.3"] {
        let path = Path::new("/usr/lib/x86_64-linux-gnu").join(lib);
        if path.exists() {
            row(&format!("`{lib}` (shared, used by mosquitto_pub)"), &path);
        }
    }
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------------------------
// In-process children: `e2e child KIND HOST PORT CA CERT KEY CLIENT_ID QOS COUNT WINDOW`.

mod child {
    use super::ALPN;
    use bytes::Bytes;
    use iot443::{Client, Config, Credentials, QoS};
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    struct Args {
        kind: String,
        host: String,
        port: u16,
        ca: String,
        cert: String,
        key: String,
        client_id: String,
        qos: u8,
        count: usize,
        window: usize,
    }

    pub(crate) fn main(args: &[String]) -> ExitCode {
        let [kind, host, port, ca, cert, key, client_id, qos, count, window] = args else {
            eprintln!("e2e child: expected KIND HOST PORT CA CERT KEY CLIENT_ID QOS COUNT WINDOW");
            return ExitCode::from(2);
        };
        let args = Args {
            kind: kind.clone(),
            host: host.clone(),
            port: port.parse().unwrap_or(443),
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
            client_id: client_id.clone(),
            qos: qos.parse().unwrap_or(0),
            count: count.parse().unwrap_or(1),
            window: window.parse().unwrap_or(100),
        };
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let result = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(100), async {
                match args.kind.as_str() {
                    "iot443-connects" => iot443_connects(&args).await,
                    "rumqttc-connects" => rumqttc_connects(&args).await,
                    "iot443-stream" => iot443_stream(&args).await,
                    "rumqttc-stream" => rumqttc_stream(&args).await,
                    other => Err(format!("unknown child kind {other:?}")),
                }
            })
            .await
            .unwrap_or_else(|_| Err("timed out".into()))
        });
        match result {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("e2e child {}: {error}", args.kind);
                ExitCode::FAILURE
            }
        }
    }

    fn config(args: &Args) -> Result<Config, String> {
        let mut builder = Config::builder(&args.host, &args.client_id, &args.cert, &args.key)
            .port(args.port)
            .root_ca(&args.ca);
        if args.port != 443 {
            builder = builder.alpn(ALPN);
        }
        builder.build().map_err(|e| e.to_string())
    }

    fn qos(args: &Args) -> QoS {
        if args.qos == 1 { QoS::AtLeastOnce } else { QoS::AtMostOnce }
    }

    fn payloads(count: usize) -> Vec<Bytes> {
        (0..count).map(|i| Bytes::from(format!("{i:0>100}"))).collect()
    }

    fn millis(list: &[Duration]) -> String {
        list.iter().map(|d| format!("{:.3}", d.as_secs_f64() * 1e3)).collect::<Vec<_>>().join(" ")
    }

    async fn iot443_connects(args: &Args) -> Result<String, String> {
        let config = config(args)?;
        let mut times = Vec::new();
        for _ in 0..args.count {
            let start = Instant::now();
            let (client, _events) = Client::connect(&config).await.map_err(|e| e.to_string())?;
            times.push(start.elapsed());
            client.disconnect().await.map_err(|e| e.to_string())?;
        }
        Ok(format!("connect_ms={}", millis(&times)))
    }

    async fn iot443_stream(args: &Args) -> Result<String, String> {
        let config = config(args)?;
        let (client, _events) = Client::connect(&config).await.map_err(|e| e.to_string())?;
        let payloads = payloads(args.count);
        let qos = qos(args);
        let start = Instant::now();
        let mut deliveries = Vec::with_capacity(args.count);
        for payload in payloads {
            deliveries
                .push(client.publish("bench/s", qos, payload).await.map_err(|e| e.to_string())?);
        }
        for delivery in deliveries {
            delivery.await.map_err(|e| e.to_string())?;
        }
        let mut elapsed = start.elapsed();
        client.disconnect().await.map_err(|e| e.to_string())?;
        if args.qos == 0 {
            // A QoS 0 Delivery resolves once the message is in the driver's buffer, before
            // the write: the last byte is known written only once DISCONNECT was flushed.
            elapsed = start.elapsed();
        }
        Ok(format!("elapsed_ms={:.3}", elapsed.as_secs_f64() * 1e3))
    }

    /// rumqttc with the rustls configuration iot443 builds (ring, client certificate, ALPN).
    fn rumqttc_options(args: &Args) -> Result<rumqttc::MqttOptions, String> {
        let config = config(args)?;
        let credentials = Credentials::load(&config).map_err(|e| e.to_string())?;
        let tls = iot443::tls::client_config(&config, &credentials).map_err(|e| e.to_string())?;
        let mut options = rumqttc::MqttOptions::new(&args.client_id, &args.host, args.port);
        options.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
        options.set_keep_alive(Duration::from_secs(60));
        options.set_clean_session(true);
        options.set_inflight(u16::try_from(args.window).unwrap_or(100));
        Ok(options)
    }

    async fn rumqttc_wait_connack(eventloop: &mut rumqttc::EventLoop) -> Result<(), String> {
        loop {
            match eventloop.poll().await.map_err(|e| e.to_string())? {
                rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)) => {
                    return if ack.code == rumqttc::ConnectReturnCode::Success {
                        Ok(())
                    } else {
                        Err(format!("refused: {:?}", ack.code))
                    };
                }
                _ => continue,
            }
        }
    }

    async fn rumqttc_disconnect(client: &rumqttc::AsyncClient, eventloop: &mut rumqttc::EventLoop) {
        let _ = client.disconnect().await;
        for _ in 0..1000 {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    async fn rumqttc_connects(args: &Args) -> Result<String, String> {
        let mut times = Vec::new();
        for _ in 0..args.count {
            let start = Instant::now();
            let options = rumqttc_options(args)?;
            let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
            rumqttc_wait_connack(&mut eventloop).await?;
            times.push(start.elapsed());
            rumqttc_disconnect(&client, &mut eventloop).await;
        }
        Ok(format!("connect_ms={}", millis(&times)))
    }

    async fn rumqttc_stream(args: &Args) -> Result<String, String> {
        let options = rumqttc_options(args)?;
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, args.window.max(10));
        rumqttc_wait_connack(&mut eventloop).await?;
        let payloads = payloads(args.count);
        let qos = if args.qos == 1 { rumqttc::QoS::AtLeastOnce } else { rumqttc::QoS::AtMostOnce };
        let start = Instant::now();
        let publisher = {
            let client = client.clone();
            tokio::spawn(async move {
                for payload in payloads {
                    if client.publish_bytes("bench/s", qos, false, payload).await.is_err() {
                        break;
                    }
                }
            })
        };
        let mut done = 0;
        while done < args.count {
            match eventloop.poll().await.map_err(|e| e.to_string())? {
                rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) if args.qos == 1 => done += 1,
                rumqttc::Event::Outgoing(rumqttc::Outgoing::Publish(_)) if args.qos == 0 => {
                    done += 1
                }
                _ => {}
            }
        }
        let mut elapsed = start.elapsed();
        let _ = publisher.await;
        rumqttc_disconnect(&client, &mut eventloop).await;
        if args.qos == 0 {
            // Measured like iot443's: up to DISCONNECT flushed.
            elapsed = start.elapsed();
        }
        Ok(format!("elapsed_ms={:.3}", elapsed.as_secs_f64() * 1e3))
    }
}
