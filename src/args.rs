//! Command-line arguments (clap derive). Flags follow `mosquitto_pub`/`mosquitto_sub` where the
//! meaning is the same.

use crate::exit;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use iot443::config::PortSetting;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

mod bench;
pub use bench::*;

/// MQTT to AWS IoT Core through TCP port 443 (TLS client certificates + ALPN x-amzn-mqtt-ca).
///
/// iot443 connects a device to AWS IoT Core on port 443, which corporate and cellular firewalls
/// leave open, and ships a local IoT Core endpoint (the emulator) so that everything can be
/// tried without an AWS account: `iot443 demo` runs the whole sample with zero set-up.
#[derive(Debug, Parser)]
#[command(name = "iot443", version, about, long_about, after_help = exit::HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Embedded C SDK's subscribe_publish_sample: subscribe to sdkTest/sub, publish
    /// alternately at QoS 0 and 1, and print every message that comes back (with --shadow: its
    /// shadow_sample).
    ///
    /// Without --config it starts the local IoT Core endpoint in-process (PKI in the user's
    /// data folder; port 443 when it can be bound, else a free port) and runs against it.
    #[command(after_help = exit::HELP)]
    Demo(DemoArgs),
    /// Publish messages (like mosquitto_pub).
    #[command(name = "pub", disable_help_flag = true, after_help = exit::HELP)]
    Pub(PubArgs),
    /// Subscribe and print messages (like mosquitto_sub).
    #[command(name = "sub", disable_help_flag = true, after_help = exit::HELP)]
    Sub(SubArgs),
    /// Run the local AWS IoT Core endpoint (TLS client certificates, ALPN rules of port 443,
    /// IoT Core's MQTT rules and quotas).
    Emulator(EmulatorArgs),
    /// Device Shadow: get, update or delete a thing's shadow, or watch its deltas, as a device
    /// or an application does over MQTT. A rejection exits with code 7 and prints the service's
    /// code and message.
    Shadow(ShadowArgs),
    /// Check the configuration, the files, DNS, TCP, TLS, MQTT and a publish/subscribe round
    /// trip, one line per step (✔ or ✘ with a hint of what a failure usually means).
    #[command(disable_help_flag = true, after_help = exit::DOCTOR_HELP)]
    Doctor(DoctorArgs),
    /// Load an endpoint and measure: `conn` opens and holds many connections, `pub` publishes
    /// with per-message latency, `sub` counts what many subscribers receive. Against the
    /// embedded emulator by default.
    Bench(BenchArgs),
}

/// `iot443 demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Configuration file: iot443.toml, or the C SDK's aws_iot_config.h. Without it, the demo
    /// runs against the embedded emulator.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Number of round trips (with --shadow: of reports); 0 runs until Ctrl-C.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub count: u64,
    /// Run the C SDK's shadow_sample instead: report temperature and windowOpen every second,
    /// print "Update Accepted" for each accepted update and every delta (a desired windowOpen
    /// is applied and reported back).
    #[arg(long, action = ArgAction::SetTrue)]
    pub shadow: bool,
    /// With --shadow: the thing (default: the configuration's thing_name).
    #[arg(long, value_name = "NAME", requires = "shadow")]
    pub thing: Option<String>,
    /// The road: tls (the device certificate, ALPN x-amzn-mqtt-ca on 443) or websocket (MQTT
    /// over a SigV4-signed WebSocket; against the embedded emulator with the AWS credentials
    /// it creates). Default: the configuration's `transport`, tls.
    #[arg(long, value_enum, value_name = "ROAD")]
    pub transport: Option<TransportArg>,
}

/// Connection flags shared by `pub` and `sub`.
#[derive(Debug, Args, Clone, Default)]
pub struct ConnectArgs {
    /// Configuration file: iot443.toml, or the C SDK's aws_iot_config.h. Default: ./iot443.toml
    /// if it exists. Flags override it; IOT443_* environment variables override the file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Endpoint host name (aws iot describe-endpoint --endpoint-type iot:Data-ATS).
    #[arg(short = 'h', long = "endpoint", value_name = "HOST")]
    pub endpoint: Option<String>,
    /// Port: 443 (ALPN x-amzn-mqtt-ca is offered), 8883, or auto: try 8883, then 443 with ALPN
    /// 250 ms later, keep the first that reaches CONNACK and remember it per endpoint in
    /// $XDG_STATE_HOME/iot443/ports (else ~/.local/state/iot443/ports) for a day. Default: 443.
    #[arg(short = 'p', long, value_name = "PORT", value_parser = PortSetting::parse)]
    pub port: Option<PortSetting>,
    /// Seconds allowed for each of TCP connect, TLS handshake and CONNACK (default 10).
    #[arg(long = "connect-timeout", value_name = "SECONDS", value_parser = parse_timeout)]
    pub connect_timeout: Option<Duration>,
    /// Seconds a QoS 1 publish, a subscribe or an unsubscribe may wait for its acknowledgement
    /// (default 30; 0: no bound). AWS IoT Core does not answer an operation it throttles: a
    /// publish is then sent again over a new connection, a subscribe fails (exit code 4).
    #[arg(long = "ack-timeout", value_name = "SECONDS", value_parser = parse_seconds)]
    pub ack_timeout: Option<Duration>,
    /// MQTT client id (IoT Core: unique per connected device, at most 128 bytes).
    #[arg(short = 'i', long = "client-id", value_name = "ID")]
    pub client_id: Option<String>,
    /// Root CA file that signed the endpoint's certificate (AWS: AmazonRootCA1.pem). Default:
    /// the Mozilla roots, which include Amazon's.
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Device certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Device private key (PEM: PKCS#1, PKCS#8 or SEC1).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// ALPN protocol to offer (default: x-amzn-mqtt-ca exactly when the port is 443).
    #[arg(long, value_name = "PROTOCOL")]
    pub alpn: Option<String>,
    /// HTTP proxy to tunnel through: http://[user:pass@]host:port. Overrides IOT443_PROXY, the
    /// file's `proxy` and HTTPS_PROXY.
    #[arg(long, value_name = "URL", conflicts_with = "no_proxy")]
    pub proxy: Option<String>,
    /// Connect directly, whatever the file, IOT443_PROXY or HTTPS_PROXY say.
    #[arg(long = "no-proxy", action = ArgAction::SetTrue)]
    pub no_proxy: bool,
    /// The road: tls (MQTT with the device certificate, the default) or websocket (MQTT over
    /// wss://ENDPOINT/mqtt signed with SigV4 from AWS credentials, no certificate: passes
    /// TLS-inspecting proxies); https is publish-only (`pub`: one `POST /topics/TOPIC` per message
    /// with the device certificate, ALPN x-amzn-http-ca on 443, none on 8443).
    #[arg(long, value_enum, value_name = "ROAD")]
    pub transport: Option<TransportArg>,
    /// AWS region the WebSocket road signs for (default: the endpoint's name, AWS_REGION,
    /// AWS_DEFAULT_REGION, then the profile's region).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Shared-credentials file whose [default] profile signs the WebSocket road, instead of
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and ~/.aws (the emulator writes one).
    #[arg(long = "aws-credentials", value_name = "FILE")]
    pub aws_credentials: Option<PathBuf>,
    /// Print how the connection was made (port, TLS version, cipher suite, ALPN) on stderr.
    #[arg(short = 'V', long, action = ArgAction::SetTrue)]
    pub verbose: bool,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// `iot443 shadow`.
#[derive(Debug, Args)]
pub struct ShadowArgs {
    /// The operation.
    #[command(subcommand)]
    pub action: ShadowAction,
}

/// `iot443 shadow get|update|delete|watch`.
#[derive(Debug, Subcommand)]
pub enum ShadowAction {
    /// Print the shadow's document (state, metadata, version). A shadow that does not exist
    /// is a 404 rejection (exit code 7).
    #[command(disable_help_flag = true, after_help = exit::HELP)]
    Get(ShadowCommon),
    /// Change desired and/or reported; prints the accepted answer.
    #[command(
        disable_help_flag = true,
        after_help = exit::HELP,
        group(clap::ArgGroup::new("change").required(true).multiple(true).args(["desired", "reported", "document"]))
    )]
    Update {
        /// The shadow and connection.
        #[command(flatten)]
        common: ShadowCommon,
        /// The change.
        #[command(flatten)]
        change: ShadowChange,
    },
    /// Delete the shadow (its version is kept for the next update).
    #[command(disable_help_flag = true, after_help = exit::HELP)]
    Delete(ShadowCommon),
    /// Print each delta (desired differing from reported) as one JSON line until Ctrl-C.
    #[command(disable_help_flag = true, after_help = exit::HELP)]
    Watch {
        /// The shadow and connection.
        #[command(flatten)]
        common: ShadowCommon,
        /// Print each documents message (the document before and after each update) instead.
        #[arg(long, action = ArgAction::SetTrue)]
        documents: bool,
        /// Exit after this many messages.
        #[arg(short = 'C', long = "count", value_name = "COUNT")]
        count: Option<u64>,
    },
}

/// The change of `iot443 shadow update` and `iot443 emulator shadow update`.
#[derive(Debug, Args)]
pub struct ShadowChange {
    /// New desired state: a JSON object (null members are removed), or null to remove desired.
    #[arg(long, value_name = "JSON", conflicts_with = "document")]
    pub desired: Option<String>,
    /// New reported state: a JSON object, or null to remove reported.
    #[arg(long, value_name = "JSON", conflicts_with = "document")]
    pub reported: Option<String>,
    /// A whole request document ({"state":{…},"version":…}) from FILE, or - for stdin.
    #[arg(long, value_name = "FILE|-")]
    pub document: Option<String>,
    /// Apply only if the shadow is at this version (else 409 Version conflict).
    #[arg(long, value_name = "N", conflicts_with = "document")]
    pub version: Option<u64>,
}

/// What every `iot443 shadow` operation takes.
#[derive(Debug, Args)]
pub struct ShadowCommon {
    /// The thing (default: the configuration's thing_name, else its client id).
    #[arg(long, value_name = "NAME")]
    pub thing: Option<String>,
    /// A named shadow of the thing; the classic shadow without it.
    #[arg(long, value_name = "SHADOW")]
    pub name: Option<String>,
    /// Print the answer on one line even on a terminal.
    #[arg(long, action = ArgAction::SetTrue)]
    pub json: bool,
    /// Seconds to wait for the service's answer (default 10).
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `iot443 doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the steps as one JSON object: {"steps": [{"name", "ok", "detail", "hint"}, …]}.
    #[arg(long, action = ArgAction::SetTrue)]
    pub json: bool,
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// QoS levels AWS IoT Core supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum QosArg {
    /// At most once.
    #[default]
    #[value(name = "0")]
    Zero,
    /// At least once (acknowledged with PUBACK).
    #[value(name = "1")]
    One,
}

impl From<QosArg> for iot443::QoS {
    fn from(qos: QosArg) -> Self {
        match qos {
            QosArg::Zero => iot443::QoS::AtMostOnce,
            QosArg::One => iot443::QoS::AtLeastOnce,
        }
    }
}

/// `iot443 pub`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["message", "file", "stdin_lines", "null_message"])))]
pub struct PubArgs {
    /// Topic to publish to (no wildcards; at most 256 bytes and 7 slashes).
    #[arg(short = 't', long, value_name = "TOPIC")]
    pub topic: String,
    /// The message.
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    pub message: Option<String>,
    /// Send the contents of a file as the message.
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Send one message per line of stdin; exit once every one is acknowledged.
    #[arg(short = 'l', long = "stdin-line", action = ArgAction::SetTrue)]
    pub stdin_lines: bool,
    /// Send an empty message.
    #[arg(short = 'n', long = "null-message", action = ArgAction::SetTrue)]
    pub null_message: bool,
    /// QoS: 0 or 1.
    #[arg(short = 'q', long, value_enum, default_value = "0")]
    pub qos: QosArg,
    /// Ask the endpoint to retain the message.
    #[arg(short = 'r', long, action = ArgAction::SetTrue)]
    pub retain: bool,
    /// Publish the message this many times.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u64,
    /// Durable outbox (SQLite): each QoS 1 message is on disk before it counts as sent, and
    /// what the endpoint had not acknowledged when the program ended (crash, power loss) is
    /// sent first at the next run with the same FILE. One process per FILE.
    #[arg(long, value_name = "FILE")]
    pub outbox: Option<PathBuf>,
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `iot443 sub`.
#[derive(Debug, Args)]
pub struct SubArgs {
    /// Topic filter to subscribe to; repeat for several (`+` one level, `#` the rest).
    #[arg(short = 't', long = "topic", value_name = "FILTER", required = true)]
    pub filters: Vec<String>,
    /// QoS: 0 or 1.
    #[arg(short = 'q', long, value_enum, default_value = "0")]
    pub qos: QosArg,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,
    /// Print the topic before each message.
    #[arg(short = 'v', long = "print-topic", action = ArgAction::SetTrue)]
    pub print_topic: bool,
    /// Print each message as one JSON object per line.
    #[arg(long, action = ArgAction::SetTrue)]
    pub json: bool,
    /// Keep the session on the endpoint while away (clean session off): QoS 1 messages
    /// published meanwhile arrive at the next connection with the same client id.
    #[arg(short = 'c', long = "no-clean", action = ArgAction::SetTrue)]
    pub no_clean: bool,
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `--transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// MQTT over TLS with the device certificate (ALPN x-amzn-mqtt-ca on 443).
    Tls,
    /// MQTT over a SigV4-signed WebSocket (wss://ENDPOINT/mqtt), AWS credentials.
    Websocket,
    /// HTTPS publish (POST /topics/…), `pub` only.
    Https,
}

impl From<TransportArg> for iot443::config::Transport {
    fn from(arg: TransportArg) -> Self {
        match arg {
            TransportArg::Tls => iot443::config::Transport::Tls,
            TransportArg::Websocket => iot443::config::Transport::WebSocket,
            TransportArg::Https => iot443::config::Transport::Https,
        }
    }
}

/// What the ALPN listener does with a client that offers neither x-amzn-mqtt-ca nor
/// x-amzn-http-ca.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum MissingAlpnArg {
    /// As IoT Core: no ALPN or http/1.1 reaches the HTTP server of the WebSocket road (SigV4,
    /// no client certificate); only other protocols get the no_application_protocol alert.
    #[default]
    Http,
    /// Fail the TLS handshake with the no_application_protocol alert (reported from the field).
    Alert,
    /// Complete TLS, then never answer CONNECT (also reported from the field).
    NoConnack,
}

/// Device key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DeviceKeyArg {
    /// EC P-256 (PKCS#8 PEM).
    #[default]
    Ec,
    /// RSA-2048 in PKCS#1 PEM, as the AWS console hands out.
    Rsa,
}

/// `iot443 emulator`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EmulatorArgs {
    /// Extra commands.
    #[command(subcommand)]
    pub action: Option<EmulatorAction>,
    /// Folder of the PKI and iot443.toml (created on first start, reused later).
    #[arg(long, value_name = "DIR", default_value = "iot443-emulator")]
    pub dir: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port of the listener that behaves as IoT Core's port 443: ALPN x-amzn-mqtt-ca for MQTT,
    /// x-amzn-http-ca for HTTPS publish (both with the device certificate), none or http/1.1
    /// for MQTT over WebSocket signed with SigV4. 0 picks a free port.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub alpn_port: u16,
    /// Port of the MQTTS listener (no ALPN needed). 0 picks a free port.
    #[arg(long, value_name = "PORT", default_value_t = 8883)]
    pub mqtts_port: u16,
    /// Port of the HTTPS publish listener (IoT Core's 8443: device certificate, no ALPN). 0
    /// picks a free port.
    #[arg(long, value_name = "PORT", default_value_t = 8443)]
    pub https_port: u16,
    /// The emulator's AWS region: SigV4 signatures must name it; written into iot443.toml.
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    pub region: String,
    /// Extra host name for the server certificate (repeatable).
    #[arg(long = "hostname", value_name = "NAME")]
    pub hostnames: Vec<String>,
    /// Key type of the device identity created on first start.
    #[arg(long, value_enum, default_value = "ec")]
    pub device_key: DeviceKeyArg,
    /// What the ALPN listener does without ALPN x-amzn-mqtt-ca or x-amzn-http-ca.
    #[arg(long, value_enum, default_value = "http")]
    pub missing_alpn: MissingAlpnArg,
    /// Refuse a missing SNI, or one that is not a name of the server certificate.
    #[arg(long, action = ArgAction::SetTrue)]
    pub strict_sni: bool,
    /// Policy file (JSON) restricting client ids and topics per device certificate.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Enforce IoT Core's rate quotas (100 publishes/s per connection, 1 CONNECT/s per client
    /// id, replay at 10 messages/s). Off by default so that tests and benchmarks can stream.
    #[arg(long, action = ArgAction::SetTrue)]
    pub strict_rates: bool,
}

/// `iot443 emulator <action>`.
#[derive(Debug, Subcommand)]
pub enum EmulatorAction {
    /// Add a device identity NAME.crt / NAME.key signed by the emulator's CA.
    IssueDevice {
        /// Device name ([A-Za-z0-9_-], at most 128 characters).
        name: String,
        /// Folder of the PKI.
        #[arg(long, value_name = "DIR", default_value = "iot443-emulator")]
        dir: PathBuf,
        /// Key type.
        #[arg(long, value_enum, default_value = "ec")]
        device_key: DeviceKeyArg,
    },
    /// Play the cloud side of a Device Shadow (like `aws iot-data get-thing-shadow`): get,
    /// update or delete a shadow in the emulator's folder. When an emulator serves the folder it
    /// runs the request and publishes the answers to subscribed devices (a desired change reaches
    /// them as a delta); otherwise the folder's shadow store is changed directly. A rejection
    /// exits with code 7 and prints its code and message.
    Shadow(EmulatorShadowArgs),
}

/// `iot443 emulator shadow`.
#[derive(Debug, Args)]
pub struct EmulatorShadowArgs {
    /// The operation.
    #[command(subcommand)]
    pub action: EmulatorShadowAction,
}

/// What every `iot443 emulator shadow` operation takes.
#[derive(Debug, Args)]
pub struct EmulatorShadowCommon {
    /// The thing (1-128 of [a-zA-Z0-9:_-]).
    pub thing: String,
    /// A named shadow of the thing (1-64 of [$a-zA-Z0-9:_-]); the classic shadow without it.
    #[arg(long, value_name = "SHADOW")]
    pub name: Option<String>,
    /// Folder of the emulator (its PKI and shadow store).
    #[arg(long, value_name = "DIR", default_value = "iot443-emulator")]
    pub dir: PathBuf,
    /// Print the answer on one line even on a terminal.
    #[arg(long, action = ArgAction::SetTrue)]
    pub json: bool,
}

/// `iot443 emulator shadow get|update|delete`.
#[derive(Debug, Subcommand)]
pub enum EmulatorShadowAction {
    /// Print the shadow's document (state, metadata, version).
    Get(EmulatorShadowCommon),
    /// Change desired and/or reported; prints the accepted answer.
    Update {
        #[command(flatten)]
        common: EmulatorShadowCommon,
        /// The change.
        #[command(flatten)]
        change: ShadowChange,
    },
    /// Delete the shadow (its version is kept for the next update).
    Delete(EmulatorShadowCommon),
}

/// `--connect-timeout 10` (whole or decimal seconds, more than 0, at most a day).
fn parse_timeout(value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|seconds| *seconds > 0.0 && *seconds <= 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{value:?} is not a number of seconds above 0, e.g. 10"))
}

/// Seconds, zero allowed (no bound), at most a day.
fn parse_seconds(value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|seconds| *seconds >= 0.0 && *seconds <= 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{value:?} is not a number of seconds from 0 to 86400, e.g. 30"))
}
