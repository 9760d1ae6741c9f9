//! `iot443`: publish and subscribe to AWS IoT Core over MQTT through TCP port 443.
//!
//! The subcommands (`demo`, `pub`, `sub`, `emulator`) arrive with the client and emulator crates;
//! for now the binary explains itself.

use clap::Parser;

/// MQTT to AWS IoT Core through TCP port 443 (TLS client certificates + ALPN x-amzn-mqtt-ca).
///
/// iot443 connects a device to AWS IoT Core on port 443, which corporate and cellular firewalls
/// leave open, and ships a local IoT Core endpoint for development without an AWS account.
#[derive(Debug, Parser)]
#[command(name = "iot443", version, about, long_about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "iot443 {}: the client and the local endpoint are not built yet; see `iot443 --help`.",
        env!("CARGO_PKG_VERSION")
    );
}
