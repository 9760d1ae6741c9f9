//! Workload 8 (only with `--only fleet`): 10,000 device connections (distinct client ids) from
//! one process, held with keep-alive against the `iot443 emulator` process, a fresh one for each
//! client: the iot443 library and rumqttc 0.25 (one event loop per connection, one shared rustls
//! configuration) in `e2e fleet` children, and `iot443 bench conn`. Memory per connection is the
//! growth of resident memory over the connections; the CPU at rest is measured during the hold.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iot443_emulator::pki::{Pki, PkiOptions};
use iot443_interop::emulator::EmulatorProcess;
use iot443_interop::mosquitto::ServerTls;

use crate::endpoint::HOST;
use crate::tools::Tools;

/// Connections held by each client.
pub(crate) const CONNECTIONS: u64 = 10_000;
/// How long they are held: past one keep-alive round trip (IoT Core's smallest, 30 s).
const HOLD: Duration = Duration::from_secs(40);
/// The keep-alive of every connection.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// A process's resident memory, its peak, and its CPU time, from /proc.
fn usage(pid: u32) -> Option<(u64, u64, Duration)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |name: &str| -> Option<u64> {
        status.lines().find_map(|l| l.strip_prefix(name))?.split_whitespace().next()?.parse().ok()
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 =
        rest.split_whitespace().skip(11).take(2).filter_map(|t| t.parse::<u64>().ok()).sum();
    Some((kib("VmRSS:")? * 1024, kib("VmHWM:")? * 1024, Duration::from_millis(ticks * 10)))
}

/// The `key=value` fields of a child's line.
fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// One client's row: connected, connects/s, client KiB/connection, client CPU at rest,
/// emulator KiB/connection, emulator CPU at rest.
struct Row {
    name: String,
    cells: Vec<String>,
}

/// Runs `command` against a fresh emulator in `dir`; the child prints the fleet line.
fn run_child(name: &str, dir: &Path, tools: &Tools, lib: &str) -> Row {
    let _ = std::fs::remove_dir_all(dir);
    let pki = Pki::load_or_create(dir, &PkiOptions::default()).expect("fleet PKI");
    let emulator = EmulatorProcess::start_quiet(&tools.iot443, dir, &[]);
    let pid = emulator.proc.pid();
    let (cert, key) = pki.device_paths("device");
    let ca = ServerTls::from_pki(&pki).ca;
    let before = usage(pid);
    let mut command = Command::new(&tools.me);
    command
        .arg("fleet")
        .arg(lib)
        .arg(HOST)
        .arg(emulator.alpn_addr.port().to_string())
        .args([&ca, &cert, &key])
        .arg(format!("fleet-{lib}"))
        .arg(CONNECTIONS.to_string())
        .arg(HOLD.as_secs().to_string())
        .arg(KEEP_ALIVE.as_secs().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    eprintln!("e2e: fleet of {CONNECTIONS} with {name}");
    let mut child = command.spawn().expect("the fleet child");
    // Samples of the emulator's CPU time, for its share during the hold.
    let mut samples = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        if let Some((_, _, cpu)) = usage(pid) {
            samples.push((Instant::now(), cpu));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let emulator_peak = usage(pid).map(|(_, peak, _)| peak);
    let output = child.wait_with_output().expect("the fleet child's output");
    let line = String::from_utf8_lossy(&output.stdout).to_string();
    drop(emulator);
    let connected = field(&line, "connected").unwrap_or(0.0);
    let per = |bytes: f64| {
        if connected > 0.0 { format!("{:.1}", bytes / connected / 1024.0) } else { "—".into() }
    };
    let client = match (field(&line, "rss_before"), field(&line, "rss_after")) {
        (Some(before), Some(after)) => per(after - before),
        _ => "—".into(),
    };
    let client_cpu = match (field(&line, "cpu_rest_s"), field(&line, "hold_s")) {
        (Some(cpu), Some(hold)) if hold > 0.0 => format!("{:.2} %", cpu / hold * 100.0),
        _ => "—".into(),
    };
    let emulator_per = match (before, emulator_peak) {
        (Some((rss, _, _)), Some(peak)) => per(peak as f64 - rss as f64),
        _ => "—".into(),
    };
    // The hold is the child's last HOLD seconds; leave a second at each end.
    let end = samples.last().map(|(at, _)| *at);
    let emulator_cpu = end
        .and_then(|end| {
            let from = end.checked_sub(HOLD - Duration::from_secs(2))?;
            let first = samples.iter().find(|(at, _)| *at >= from)?;
            let last = samples.iter().rev().find(|(at, _)| *at <= end - Duration::from_secs(1))?;
            let span = last.0.checked_duration_since(first.0)?.as_secs_f64();
            (span > 0.0).then(|| {
                format!("{:.2} %", last.1.saturating_sub(first.1).as_secs_f64() / span * 100.0)
            })
        })
        .unwrap_or_else(|| "—".into());
    let rate = match field(&line, "connect_s") {
        Some(s) if s > 0.0 => format!("{:.0}", connected / s),
        _ => "—".into(),
    };
    Row {
        name: name.to_owned(),
        cells: vec![
            format!("{connected:.0}"),
            rate,
            client,
            client_cpu,
            emulator_per,
            emulator_cpu,
            field(&line, "lost").map_or("—".into(), |l| format!("{l:.0}")),
        ],
    }
}

/// `iot443 bench conn` itself, which starts its own emulator and reports both sides.
fn run_cli(tools: &Tools, data_home: &Path) -> Row {
    let _ = std::fs::remove_dir_all(data_home);
    eprintln!("e2e: fleet of {CONNECTIONS} with iot443 bench conn");
    let output = Command::new(&tools.iot443)
        .args(["bench", "conn", "--json", "--count", &CONNECTIONS.to_string()])
        .args([
            "--hold",
            &HOLD.as_secs().to_string(),
            "--keep-alive",
            &KEEP_ALIVE.as_secs().to_string(),
        ])
        .env("XDG_DATA_HOME", data_home)
        .stderr(Stdio::inherit())
        .output()
        .expect("iot443 bench conn");
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    let kib = |who: &str| {
        summary[who]["per_connection_bytes"]
            .as_f64()
            .map_or("—".into(), |b| format!("{:.1}", b / 1024.0))
    };
    let cpu = |who: &str| {
        summary[who]["cpu_at_rest_share"]
            .as_f64()
            .map_or("—".into(), |s| format!("{:.2} %", s * 100.0))
    };
    Row {
        name: "`iot443 bench conn` (CLI)".into(),
        cells: vec![
            summary["connected"].to_string(),
            summary["connects_per_second"].as_f64().map_or("—".into(), |r| format!("{r:.0}")),
            kib("client"),
            cpu("client"),
            kib("emulator"),
            cpu("emulator"),
            summary["held"]["lost"].to_string(),
        ],
    }
}

/// Runs the workload and returns its table.
pub(crate) fn run(dir: &Path, tools: &Tools) -> String {
    let rows = [
        run_child("iot443 library", &dir.join("fleet-iot443"), tools, "iot443"),
        run_child(
            "rumqttc 0.25 (an event loop per connection)",
            &dir.join("fleet-rumqttc"),
            tools,
            "rumqttc",
        ),
        run_cli(tools, &dir.join("fleet-cli")),
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### 8. A fleet: {CONNECTIONS} device connections from one process\n\n\
         Distinct client ids, 64 handshakes at a time, EC P-256 device key, against a fresh \
         `iot443 emulator` process each; held {} s with keep-alive {} s. KiB per connection: \
         growth of resident memory over the connections (client: from before the first connect \
         to the start of the hold; emulator: from before to its peak). CPU at rest: share of one \
         core during the hold. One run.\n\n\
         | client | connected | connects/s | client KiB/conn | client CPU at rest | emulator KiB/conn | emulator CPU at rest | lost |\n\
         |---|---|---|---|---|---|---|---|",
        HOLD.as_secs(),
        KEEP_ALIVE.as_secs()
    );
    for row in rows {
        let _ = writeln!(out, "| {} | {} |", row.name, row.cells.join(" | "));
    }
    out.push('\n');
    out
}
