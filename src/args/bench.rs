//! `iot443 bench conn|pub|sub`: load against the embedded emulator or any configured endpoint.

use super::{ConnectArgs, QosArg, parse_timeout};
use clap::{ArgAction, Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// `iot443 bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The load.
    #[command(subcommand)]
    pub load: BenchLoad,
}

/// `iot443 bench conn|pub|sub`.
#[derive(Debug, Subcommand)]
pub enum BenchLoad {
    /// Open COUNT connections (distinct client ids), hold them for --hold seconds with
    /// keep-alive, and report connects/s, connect times, failures by cause, and the memory and
    /// CPU at rest of the clients and (with the embedded emulator) of the endpoint.
    #[command(disable_help_flag = true, after_help = BENCH_HELP)]
    Conn(BenchConnArgs),
    /// COUNT publishers send --messages messages of --size bytes at --rate per second in all;
    /// with a subscriber attached (the default) every message's latency is measured.
    #[command(name = "pub", disable_help_flag = true, after_help = BENCH_HELP)]
    Pub(BenchPubArgs),
    /// COUNT subscribers to --topic; one publisher of the bench's own sends --messages at --rate
    /// (or, with --rate 0, what others publish is counted for --duration).
    #[command(name = "sub", disable_help_flag = true, after_help = BENCH_HELP)]
    Sub(BenchSubArgs),
}

/// The `--help` paragraph of every `iot443 bench` load.
pub const BENCH_HELP: &str = "The endpoint:
  Without --config or -h, the bench starts the embedded emulator as a process of its own
  (`iot443 emulator` on free ports, PKI in the user's data folder), so that its connections and
  memory are counted apart from the clients'. -p 8883 uses its MQTTS listener, --transport
  websocket its WebSocket road. With --config or -h it loads that endpoint instead: mind AWS IoT
  Core's quotas (connect requests per second per account, 100 publishes/s per connection).

Output:
  A live progress line on stderr when it is a terminal; a summary table on stdout at the end,
  or one JSON object with --json. Ctrl-C ends the load and prints the summary so far.

Exit codes:
  0  the load ran (failures are counted in the summary)
  1  no connection could be made
  2  usage or configuration error
  3-7 as for `iot443 pub` (the subscriber's or first client's failure)";

/// What every load takes.
#[derive(Debug, Args, Clone)]
pub struct BenchCommon {
    /// Client ids: {n} is replaced by the client's index from 0 (without {n}, -{n} is
    /// appended).
    #[arg(long = "client-ids", value_name = "PATTERN", default_value = "iot443-bench-{n}")]
    pub client_ids: String,
    /// One certificate per device: client id C connects with DIR/C.crt and DIR/C.key (as
    /// `iot443 emulator issue-device C --dir DIR` writes them). Default: the configuration's one
    /// certificate for every client.
    #[arg(long, value_name = "DIR")]
    pub certs: Option<PathBuf>,
    /// Connection attempts in progress at once.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// The MQTT keep-alive in seconds (30 to 1200, IoT Core's range). Default: the
    /// configuration's.
    #[arg(long = "keep-alive", value_name = "SECONDS", value_parser = clap::value_parser!(u16).range(30..=1200))]
    pub keep_alive: Option<u16>,
    /// Stop the whole load after this many seconds, finished or not.
    #[arg(long = "time-limit", default_value = "300", value_name = "SECONDS", value_parser = parse_timeout)]
    pub time_limit: Duration,
    /// Print the summary as one JSON object.
    #[arg(long, action = ArgAction::SetTrue)]
    pub json: bool,
    /// Connection flags (the endpoint; default: the embedded emulator).
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `iot443 bench conn`.
#[derive(Debug, Args)]
pub struct BenchConnArgs {
    /// Connections to open and hold.
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
    /// New connections per second at most; 0: as fast as --concurrency allows.
    #[arg(long, default_value_t = 0, value_name = "R")]
    pub rate: u32,
    /// Seconds to hold the connections once all are open (the CPU at rest is measured then).
    #[arg(long, default_value = "10", value_name = "SECONDS", value_parser = parse_timeout)]
    pub hold: Duration,
    /// What every load takes.
    #[command(flatten)]
    pub common: BenchCommon,
}

/// `iot443 bench pub`.
#[derive(Debug, Args)]
pub struct BenchPubArgs {
    /// Publishers.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Messages per second, all publishers together; 0: as fast as acknowledgements allow.
    #[arg(long, default_value_t = 1000, value_name = "R")]
    pub rate: u32,
    /// Payload bytes (at least 16: the send time and a sequence number).
    #[arg(long, default_value_t = 100, value_name = "B", value_parser = clap::value_parser!(u32).range(16..=131_072))]
    pub size: u32,
    /// QoS: 0 or 1.
    #[arg(short = 'q', long, value_enum, default_value = "1")]
    pub qos: QosArg,
    /// Messages to send, all publishers together.
    #[arg(long, default_value_t = 10_000, value_name = "M", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub messages: u64,
    /// Topic of publisher n ({n} is replaced by its index).
    #[arg(short = 't', long, default_value = "bench/{n}", value_name = "PATTERN")]
    pub topic: String,
    /// No subscriber: no latency, only throughput and acknowledgements.
    #[arg(long = "no-subscriber", action = ArgAction::SetTrue)]
    pub no_subscriber: bool,
    /// What every load takes.
    #[command(flatten)]
    pub common: BenchCommon,
}

/// `iot443 bench sub`.
#[derive(Debug, Args)]
pub struct BenchSubArgs {
    /// Subscribers.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
    /// The topic filter every subscriber takes.
    #[arg(short = 't', long, default_value = "bench/sub", value_name = "FILTER")]
    pub topic: String,
    /// QoS of the subscriptions and of the bench's publisher: 0 or 1.
    #[arg(short = 'q', long, value_enum, default_value = "0")]
    pub qos: QosArg,
    /// Messages per second the bench's own publisher sends to --topic (which must then be a
    /// topic name); 0: publish nothing, count what others publish for --duration.
    #[arg(long, default_value_t = 100, value_name = "R")]
    pub rate: u32,
    /// Messages the bench's publisher sends.
    #[arg(long, default_value_t = 1000, value_name = "M", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub messages: u64,
    /// Payload bytes of the bench's publisher (at least 16).
    #[arg(long, default_value_t = 100, value_name = "B", value_parser = clap::value_parser!(u32).range(16..=131_072))]
    pub size: u32,
    /// With --rate 0: seconds to count what arrives.
    #[arg(long, default_value = "10", value_name = "SECONDS", value_parser = parse_timeout)]
    pub duration: Duration,
    /// What every load takes.
    #[command(flatten)]
    pub common: BenchCommon,
}
