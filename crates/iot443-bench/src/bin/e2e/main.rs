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
//! 6. `roads` (only with `--only roads`): TLS against WebSocket + SigV4, both to the emulator.
//! 7. `costs` (only with `--only costs`): instructions, allocations and system calls per QoS 1
//!    message of each client, under valgrind and strace (see [`workloads::costs`]).
//! 8. `fleet` (only with `--only fleet`): 10,000 connections from one process, held with
//!    keep-alive, iot443 against rumqttc (see [`workloads::fleet`]; `e2e fleet …` children).
//!
//! For the command-line clients (`iot443 pub -l`, `mosquitto_pub -l`) the bench starts the
//! process, lets it connect (it waits 500 ms, far longer than either needs), then writes the N
//! lines to its stdin; the time is first line written → process exit (the exit follows the last
//! PUBACK, or the last write at QoS 0, plus DISCONNECT). The Python peers and the in-process
//! library children time themselves, from their first publish.
//!
//! The rooms: this file reads the command line and runs the workloads in order; [`endpoint`]
//! starts mosquitto and haproxy (with `iot443-interop`'s helpers) and says how to reach them;
//! [`tools`] finds and builds the programs measured; [`measure`] runs one child and reads what
//! `wait4(2)` says about it; [`workloads`] builds each workload's contenders, runs them in
//! interleaved rounds and writes its table, with the figures of [`stats`]; [`report`] writes the
//! run's header; [`child`] is the in-process library side (`e2e child …`).

// A bench program: setup failures are bugs to report loudly (the endpoint's helpers panic with
// what to install), and indexing is over vectors built right here.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod child;
mod endpoint;
mod fleet_child;
mod measure;
mod report;
mod stats;
mod tools;
mod workloads;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use endpoint::Endpoint;
use iot443_interop::{ALPN, paths};
use tools::Tools;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        return child::main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("fleet") {
        return fleet_child::main(&args[1..]);
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
           [--only connect,inproc,qos1,qos0,size,roads,costs,fleet] [--port P] [--dir DIR]
           [--endpoint mosquitto|emulator]
  --rounds N          rounds of the stream workloads (default 10)
  --connect-rounds N  rounds of the connect workloads (default 20)
  --messages N        messages per stream (default 20000)
  --window N          QoS 1 messages in flight (default 100)
  --only LIST         workloads to run (default all but roads: TLS vs WebSocket + SigV4,
                      both to the iot443 emulator; and costs: instructions, allocations and
                      system calls per QoS 1 message, under valgrind and strace; and fleet:
                      10,000 connections from one process, iot443 and rumqttc)
  --port P            haproxy's port (default 443 when free, else a free port)
  --dir DIR           work folder: PKI, configs (default target/e2e-bench)
  --endpoint E        mosquitto (default: haproxy + mosquitto) or emulator (the iot443
                      emulator process on its own: fast enough to show the clients' ceiling)
env: IOT443_BIN (default target/release/iot443), IOT443_PEERS_PYTHON (default
     target/peers-venv/bin/python)";

/// The command line.
struct Opts {
    rounds: usize,
    connect_rounds: usize,
    messages: usize,
    window: usize,
    only: Vec<String>,
    port: Option<u16>,
    dir: PathBuf,
    /// `--endpoint emulator`: the iot443 emulator process instead of haproxy + mosquitto.
    emulator: bool,
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
            dir: paths::workspace_dir().join("target/e2e-bench"),
            emulator: false,
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
                "--endpoint" => {
                    opts.emulator = match value()?.as_str() {
                        "mosquitto" => false,
                        "emulator" => true,
                        other => {
                            return Err(format!(
                                "--endpoint: {other:?} is not mosquitto or emulator"
                            ));
                        }
                    }
                }
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

/// Starts the endpoint, runs the workloads asked for in order, and prints the report.
fn run(opts: &Opts) -> Result<(), String> {
    let mut tools = Tools::find()?;
    let endpoint = if opts.emulator {
        eprintln!(
            "e2e: starting the iot443 emulator ({}) in {}",
            tools.iot443.display(),
            opts.dir.display()
        );
        Endpoint::emulator(&tools.iot443, &opts.dir)?
    } else {
        eprintln!("e2e: starting mosquitto behind haproxy in {}", opts.dir.display());
        Endpoint::start(&opts.dir, opts.port)?
    };
    tools.build_peers(&opts.dir);
    let started = Instant::now();
    let load_start = report::load_average();
    let mut report = String::new();
    let _ = writeln!(report, "{}", report::header(&tools));
    endpoint.check_alpn_enforced()?;
    let _ = writeln!(
        report,
        "Endpoint: {} (a client offering no ALPN {ALPN} was refused at start). Device key: \
         RSA-2048 (PKCS#1), server and CA: EC P-256.\n",
        endpoint.description
    );

    if opts.wants("connect") {
        report.push_str(&workloads::connect::run(opts, &endpoint, &tools));
    }
    if opts.wants("inproc") {
        report.push_str(&workloads::inproc::run(opts, &endpoint, &tools));
    }
    for (workload, qos) in [("qos1", 1u8), ("qos0", 0u8)] {
        if opts.wants(workload) {
            report.push_str(&workloads::stream::run(opts, &endpoint, &tools, qos));
        }
    }
    if opts.wants("size") {
        report.push_str(&workloads::size::run(&tools));
    }
    if opts.wants("roads") {
        report.push_str(&workloads::roads::run(opts, &tools));
    }
    if opts.wants("costs") {
        report.push_str(&workloads::costs::run(&endpoint, &tools));
    }
    if opts.wants("fleet") {
        report.push_str(&workloads::fleet::run(&opts.dir, &tools));
    }
    let _ = writeln!(
        report,
        "Total bench time: {:.0} s. Load average (1, 5, 15 min) at the start: {load_start}; at the end: {}.",
        started.elapsed().as_secs_f64(),
        report::load_average()
    );
    drop(endpoint);
    println!("{report}");
    Ok(())
}
