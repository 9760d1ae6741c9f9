//! `iot443`: publish and subscribe to AWS IoT Core over MQTT through TCP port 443, and run a
//! local IoT Core endpoint to develop against.

// A binary has no public API: `pub` inside it only means "used by a sibling module".
#![allow(unreachable_pub)]

mod args;
mod cmd;
mod exit;

use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    init_logging(&cli.command);
    // A device client needs one thread: less memory, no cross-thread hand-offs. The emulator
    // serves many connections and uses every core.
    let mut builder = match cli.command {
        args::Command::Emulator(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            return exit::Failure::incomplete(format!("cannot start the async runtime: {error}"))
                .report();
        }
    };
    match runtime.block_on(cmd::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Logs go to stderr. `RUST_LOG` chooses the level; the default is `info` for the emulator
/// (every refused handshake and every disconnect with its reason), `error` for the bench (whose
/// summary counts the lost connections that thousands of clients would each warn of) and
/// `warn` otherwise.
fn init_logging(command: &args::Command) {
    let default = match command {
        args::Command::Emulator(_) => "info",
        args::Command::Bench(_) => "error",
        _ => "warn",
    };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // tungstenite traces the whole WebSocket upgrade request, whose query carries the SigV4
    // signature and session token: never below debug, whatever RUST_LOG says.
    if let Ok(cap) = "tungstenite=debug".parse() {
        filter = filter.add_directive(cap);
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
