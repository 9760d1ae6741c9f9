//! Workload 6: the roads through port 443, TLS with the device certificate (ALPN
//! `x-amzn-mqtt-ca`) against MQTT over WebSocket signed with SigV4, to one endpoint that serves
//! both: the `iot443 emulator` (release build) as its own process, on loopback.
//!
//! For each client the two roads are a pair of contenders, run interleaved with the others; the
//! ratio column is WebSocket / TLS in the same round. Clients: the `iot443` CLI, the iot443
//! library (a child of this bench), and the awsiotsdk (`mtls` through its builder's parts,
//! WebSocket through `mqtt_connection_builder.websockets_with_default_aws_signing`, with the
//! emulator's `aws-credentials` file as `AWS_SHARED_CREDENTIALS_FILE`).

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use iot443_interop::{Proc, TIMEOUT};

use super::{Contender, STDIN_DELAY, Timing, interleave};
use crate::Opts;
use crate::endpoint::HOST;
use crate::measure::Run;
use crate::stats::{MIB, completed, first_and_later_connects, ratios, row, summary, values};
use crate::tools::Tools;

/// Connections per in-process connect child.
const INPROC_CONNECTS: usize = 10;

/// The emulator, as a process; killed when dropped.
struct Emulator {
    _proc: Proc,
    dir: PathBuf,
    port: u16,
    region: String,
}

impl Emulator {
    fn start(dir: &Path, tools: &Tools) -> Result<Emulator, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut command = crate::measure::command(&tools.iot443, &["emulator"], dir);
        command.arg("--dir").arg(dir).args(["--alpn-port", "0", "--mqtts-port", "0"]);
        command.args(["--https-port", "0"]).env("RUST_LOG", "warn");
        let mut proc = Proc::spawn("iot443 emulator (roads)", command);
        let prefix = "iot443-emulator listening mqtt-alpn ";
        let line = proc.wait_stdout(TIMEOUT, |line| line.starts_with(prefix));
        let addr: std::net::SocketAddr = line
            .trim_start_matches(prefix)
            .trim()
            .parse()
            .map_err(|e| format!("bad address in {line:?}: {e}"))?;
        let config = iot443::Config::from_toml_file(&dir.join("iot443.toml"))
            .map_err(|e| format!("the emulator's iot443.toml: {e}"))?;
        let region = config.region.ok_or("the emulator wrote no region into iot443.toml")?;
        Ok(Emulator { _proc: proc, dir: dir.to_owned(), port: addr.port(), region })
    }

    fn config(&self) -> PathBuf {
        self.dir.join("iot443.toml")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `HOST PORT CA CERT KEY CLIENT_ID REST…` for the scripts and the in-process children.
    fn peer_args(&self, client_id: &str, rest: &[String]) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![HOST.into(), self.port.to_string().into()];
        for name in ["ca.pem", "device.crt", "device.key"] {
            args.push(self.path(name).into_os_string());
        }
        args.push(client_id.into());
        args.extend(rest.iter().map(OsString::from));
        args
    }

    /// Points a contender on the WebSocket road at the emulator's credentials and region, and
    /// keeps the caller's AWS settings out.
    fn signed(&self, contender: Contender) -> Contender {
        let credentials = self.path("aws-credentials");
        let none = self.path("no-aws-config");
        contender
            .env("AWS_ACCESS_KEY_ID", None)
            .env("AWS_SECRET_ACCESS_KEY", None)
            .env("AWS_SESSION_TOKEN", None)
            .env("AWS_PROFILE", None)
            .env("AWS_SHARED_CREDENTIALS_FILE", Some(credentials.as_os_str()))
            .env("AWS_CONFIG_FILE", Some(none.as_os_str()))
            .env("AWS_EC2_METADATA_DISABLED", Some(OsStr::new("true")))
            .env("BENCH_WSS_REGION", Some(OsStr::new(&self.region)))
            .env("BENCH_WSS_CREDENTIALS", Some(credentials.as_os_str()))
    }
}

/// Runs the three tables and returns them. Contenders come in pairs, one client on both roads:
/// `2 i` on TLS, `2 i + 1` on WebSocket (the ratio column divides the second by the first).
pub(crate) fn run(opts: &Opts, tools: &Tools) -> String {
    let emulator = match Emulator::start(&opts.dir.join("roads-emulator"), tools) {
        Ok(emulator) => emulator,
        Err(error) => {
            return format!("### 6. Roads through 443: the emulator did not start: {error}\n\n");
        }
    };
    let mut out = format!(
        "### 6. The roads through port 443: TLS (device certificate, ALPN x-amzn-mqtt-ca) vs \
         WebSocket (SigV4), same endpoint\n\n\
         Endpoint: the `iot443 emulator` (release build) as its own process on 127.0.0.1:{} \
         (TLS 1.3; the WebSocket road is the emulator's HTTP server on the same listener, \
         `GET /mqtt` presigned with SigV4, service iotdevicegateway, region {}). Ratio = \
         WebSocket / TLS for the same client in the same round.\n\n",
        emulator.port, emulator.region
    );
    out.push_str(&connect(opts, tools, &emulator));
    out.push_str(&inproc(opts, tools, &emulator));
    out.push_str(&stream(opts, tools, &emulator));
    out
}

/// Whole process: start → CONNACK → one QoS 0 publish → exit.
fn connect(opts: &Opts, tools: &Tools, emulator: &Emulator) -> String {
    let cli = |websocket: bool, id: &str| {
        let mut args: Vec<OsString> = vec!["pub".into(), "--config".into()];
        args.push(emulator.config().into_os_string());
        if websocket {
            args.extend(["--transport".into(), "websocket".into()]);
        }
        args.extend(["-i", id, "-t", "t", "-m", "x"].map(OsString::from));
        let name = if websocket { "`iot443 pub`, WebSocket" } else { "`iot443 pub`, TLS" };
        let contender = Contender::new(name, &tools.iot443, args, &emulator.dir, Timing::Wall);
        if websocket { emulator.signed(contender) } else { contender }
    };
    let mut contenders = Vec::new();
    contenders.extend([cli(false, "roads-c-cli"), cli(true, "roads-c-cli-ws")]);
    contenders.extend(awsiot_pair(tools, emulator, "connect", "roads-c-sdk", &[], Timing::Wall));
    let rounds = opts.connect_rounds;
    eprintln!("e2e: roads, connect, whole process, {rounds} rounds");
    let results = interleave("roads connect", &contenders, rounds, &tools.runner);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#### 6a. Connect, whole process: start → CONNACK → one QoS 0 publish → exit\n\n\
         {rounds} rounds, interleaved; median (min–max).\n\n\
         | client | road | runs | wall ms | × TLS | CPU ms (user+sys) | peak RSS MiB |\n\
         |---|---|---|---|---|---|---|"
    );
    let wall = |r: &Run| r.wall.as_secs_f64() * 1e3;
    for (i, contender) in contenders.iter().enumerate() {
        let tls = i - i % 2;
        let (client, road) = split_name(&contender.name);
        out.push_str(&row(&[
            client,
            road,
            completed(&results[i]),
            summary(&values(&results[i], wall), 1),
            summary(&ratios(&results, i, tls, wall), 2),
            summary(&values(&results[i], |r| r.cpu.as_secs_f64() * 1e3), 1),
            summary(&values(&results[i], |r| r.max_rss as f64 / MIB), 1),
        ]));
    }
    out.push('\n');
    out
}

/// In-process connect → CONNACK, several connections per process.
fn inproc(opts: &Opts, tools: &Tools, emulator: &Emulator) -> String {
    let rest = ["0", &INPROC_CONNECTS.to_string(), "1"].map(String::from);
    let library = |websocket: bool| {
        let (kind, name) = if websocket {
            ("iot443wss-connects", "iot443 `Client::connect`, WebSocket")
        } else {
            ("iot443-connects", "iot443 `Client::connect`, TLS")
        };
        let mut args: Vec<OsString> = vec!["child".into(), kind.into()];
        args.extend(
            emulator.peer_args(if websocket { "roads-i-lib-ws" } else { "roads-i-lib" }, &rest),
        );
        let contender = Contender::new(name, &tools.me, args, &emulator.dir, Timing::Wall);
        if websocket { emulator.signed(contender) } else { contender }
    };
    let mut contenders = Vec::new();
    contenders.extend([library(false), library(true)]);
    contenders.extend(awsiot_pair(tools, emulator, "connects", "roads-i-sdk", &rest, Timing::Wall));
    let rounds = opts.rounds;
    eprintln!("e2e: roads, in-process connect, {rounds} rounds of {INPROC_CONNECTS}");
    let results = interleave("roads inproc", &contenders, rounds, &tools.runner);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#### 6b. In-process connect → CONNACK\n\n\
         {rounds} rounds; each round one process per client and road makes {INPROC_CONNECTS} \
         connections one after the other. First: the process's first connection; later: the \
         median of connections 2–{INPROC_CONNECTS}; median over rounds (min–max). Each iot443 \
         connection reads its files (credentials included) and signs anew.\n\n\
         | client | road | runs | first connect ms | later connects ms |\n|---|---|---|---|---|"
    );
    for (i, contender) in contenders.iter().enumerate() {
        let (first, later) = first_and_later_connects(&results[i]);
        let (client, road) = split_name(&contender.name);
        out.push_str(&row(&[
            client,
            road,
            completed(&results[i]),
            summary(&first, 2),
            summary(&later, 2),
        ]));
    }
    out.push('\n');
    out
}

/// QoS 1, N × 100 B, the window in flight, first publish → last PUBACK.
fn stream(opts: &Opts, tools: &Tools, emulator: &Emulator) -> String {
    let n = opts.messages;
    let window = opts.window;
    let lines = opts.dir.join(format!("lines-{n}.txt"));
    let text: String = (0..n).map(|i| format!("{i:0>100}\n")).collect();
    if let Err(error) = std::fs::write(&lines, text) {
        return format!("#### 6c. cannot write {}: {error}\n\n", lines.display());
    }
    let rest = ["1".to_owned(), n.to_string(), window.to_string()];
    let cli = |websocket: bool| {
        let mut args: Vec<OsString> = vec!["pub".into(), "--config".into()];
        args.push(emulator.config().into_os_string());
        if websocket {
            args.extend(["--transport".into(), "websocket".into()]);
        }
        let id = if websocket { "roads-s-cli-ws" } else { "roads-s-cli" };
        args.extend(["-i", id, "-t", "bench/s", "-l", "-q", "1"].map(OsString::from));
        let name =
            if websocket { "`iot443 pub -l -q 1`, WebSocket" } else { "`iot443 pub -l -q 1`, TLS" };
        let contender = Contender::fed(name, &tools.iot443, args, &emulator.dir, &lines);
        if websocket { emulator.signed(contender) } else { contender }
    };
    let library = |websocket: bool| {
        let (kind, name, id) = if websocket {
            ("iot443wss-stream", "iot443 library, WebSocket", "roads-s-lib-ws")
        } else {
            ("iot443-stream", "iot443 library, TLS", "roads-s-lib")
        };
        let mut args: Vec<OsString> = vec!["child".into(), kind.into()];
        args.extend(emulator.peer_args(id, &rest));
        let contender = Contender::new(name, &tools.me, args, &emulator.dir, Timing::Reported);
        if websocket { emulator.signed(contender) } else { contender }
    };
    let mut contenders = Vec::new();
    contenders.extend([cli(false), cli(true)]);
    contenders.extend([library(false), library(true)]);
    contenders.extend(awsiot_pair(
        tools,
        emulator,
        "stream",
        "roads-s-sdk",
        &rest,
        Timing::Reported,
    ));
    let rounds = opts.rounds;
    eprintln!("e2e: roads, QoS 1 stream, {n} × 100 B, {rounds} rounds");
    let results = interleave("roads qos1", &contenders, rounds, &tools.runner);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#### 6c. QoS 1 stream: {n} × 100 B, {window} in flight, first publish → last PUBACK\n\n\
         {rounds} rounds, interleaved; median (min–max). Timing as in table 3: (a) the CLI gets \
         its stdin {} ms after start and is timed first line → exit; (b) the others time \
         themselves from their first publish. CPU µs/msg = the whole process's user+sys / {n}.\n\n\
         | client | road | runs | msgs/s | × TLS | CPU µs/msg | peak RSS MiB | timing |\n\
         |---|---|---|---|---|---|---|---|",
        STDIN_DELAY.as_millis()
    );
    for (i, contender) in contenders.iter().enumerate() {
        let tls = i - i % 2;
        let timing = contender.timing;
        let rate = |r: &Run| n as f64 / timing.elapsed(r).as_secs_f64();
        let (client, road) = split_name(&contender.name);
        out.push_str(&row(&[
            client,
            road,
            completed(&results[i]),
            summary(&values(&results[i], rate), 0),
            summary(&ratios(&results, i, tls, rate), 2),
            summary(&values(&results[i], |r| r.cpu.as_secs_f64() * 1e6 / n as f64), 2),
            summary(&values(&results[i], |r| r.max_rss as f64 / MIB), 1),
            if timing == Timing::FromStdin { "(a)" } else { "(b)" }.to_owned(),
        ]));
    }
    out.push('\n');
    out
}

/// The awsiotsdk script in `mode` on both roads.
fn awsiot_pair(
    tools: &Tools,
    emulator: &Emulator,
    mode: &str,
    id: &str,
    rest: &[String],
    timing: Timing,
) -> [Contender; 2] {
    let script = tools.script("awsiot_pub.py");
    let contender = |websocket: bool| {
        let client_id = if websocket { format!("{id}-ws") } else { id.to_owned() };
        let mut args: Vec<OsString> = vec![script.clone().into_os_string(), mode.into()];
        args.extend(emulator.peer_args(&client_id, rest));
        let name = if websocket {
            "awsiotsdk (Python, awscrt), WebSocket"
        } else {
            "awsiotsdk (Python, awscrt), TLS"
        };
        let contender = Contender::new(name, &tools.python, args, &emulator.dir, timing);
        if websocket {
            emulator
                .signed(contender)
                .env("AWSIOT_WEBSOCKETS_REGION", Some(OsStr::new(&emulator.region)))
        } else {
            contender
        }
    };
    [contender(false), contender(true)]
}

/// `"client, road"` → (`client`, `road`).
fn split_name(name: &str) -> (String, String) {
    match name.rsplit_once(", ") {
        Some((client, road)) => (client.to_owned(), road.to_owned()),
        None => (name.to_owned(), String::new()),
    }
}
