//! The run's header: when, on which machine, which versions of iot443 and of every peer; and
//! the load average, which shows the other work on a shared machine.

use std::fmt::Write as _;
use std::process::Command;
use std::thread;

use iot443_interop::paths;

use crate::tools::Tools;

/// The first three fields of /proc/loadavg: other work on this machine shows here.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// `## e2e run DATE`, then the machine, iot443's version and the peers' versions.
pub(crate) fn header(tools: &Tools) -> String {
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
    let lock =
        std::fs::read_to_string(paths::workspace_dir().join("Cargo.lock")).unwrap_or_default();
    let locked = |name: &str| {
        let needle = format!("name = \"{name}\"\nversion = \"");
        lock.find(&needle)
            .and_then(|at| lock[at + needle.len()..].split('"').next().map(str::to_owned))
            .unwrap_or_else(|| "?".to_owned())
    };
    let git = sh(
        "git",
        &["-C", &paths::workspace_dir().display().to_string(), "describe", "--always", "--dirty"],
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
    out
}
