//! Helpers for the interoperability suite: tests of iot443 against real peers written by others
//! (Debian's mosquitto broker and clients, haproxy as an ALPN-enforcing TLS front, paho-mqtt and
//! the AWS IoT Device SDK for Python). The end-to-end bench (`iot443-bench`) starts its endpoint,
//! finds its peers and reads its paths with them too.
//!
//! Every test of this crate is ignored by default, with a reason naming its peers:
//! `.ci/interop` installs the peers (`.ci/install-peers`) and runs them with
//! `--include-ignored`. A missing peer fails the test with a message saying how to install it;
//! it is never skipped.
//!
//! * [`paths`]: the `iot443` binary (`IOT443_BIN`), the peers' Python (`IOT443_PEERS_PYTHON`),
//!   the peers' executables.
//! * [`process`]: [`Proc`], a child process killed when dropped, whose stdout and stderr lines
//!   a test waits for with a time limit.
//! * [`net`]: free loopback ports and waiting until a port accepts.
//! * [`emulator`]: the emulator in-process ([`InProcessEmulator`]) or as the `iot443 emulator`
//!   process ([`EmulatorProcess`], whose stderr logs every refused handshake).
//! * [`mitmproxy`]: mitmproxy as a TLS-intercepting proxy in a network namespace.
//! * [`mosquitto`]: a mosquitto broker, haproxy in front of it requiring ALPN
//!   `x-amzn-mqtt-ca` (both quiet and tuned for a bench with [`MosquittoOptions`] and
//!   [`FrontOptions`]), and the TLS flags of `mosquitto_pub`/`mosquitto_sub`.
//!
//! Waiting is always on a signal (a line on a pipe, a port accepting) with a time limit, never a
//! sleep. The helpers panic with everything the processes printed when an expectation fails:
//! they are for tests only, and a panic is how a test fails.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub mod emulator;
pub mod mitmproxy;
pub mod mosquitto;
pub mod net;
pub mod netns;
pub mod paths;
pub mod process;

pub use emulator::{EmulatorProcess, InProcessEmulator};
pub use mosquitto::{
    BrokerSetup, FrontOptions, Haproxy, MosquittoBroker, MosquittoOptions, ServerTls,
};
pub use process::{Finished, Proc};

use std::process::Command;
use std::time::Duration;

/// The time limit of one wait (a line, a port, a process to exit). Generous: debug builds on a
/// small CI machine running two tests at once.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The ALPN protocol AWS IoT Core requires for MQTT with client certificates on port 443.
pub const ALPN: &str = "x-amzn-mqtt-ca";

/// A fresh temporary folder, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("iot443-interop-")
        .tempdir()
        .expect("cannot create a temporary folder")
}

/// A [`Command`] for the `iot443` binary ([`paths::iot443_bin`]), with the `IOT443_*` client
/// variables of the caller's environment removed (they would override the test's
/// configuration), `RUST_LOG` unset and colours off.
pub fn iot443_command() -> Command {
    iot443_command_at(&paths::iot443_bin())
}

/// Like [`iot443_command`], running the binary at `binary` (a benchmark's release build).
pub fn iot443_command_at(binary: &std::path::Path) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in iot443::config::ENV_VARS {
        command.env_remove(name);
    }
    command.env_remove("RUST_LOG").env("NO_COLOR", "1");
    command
}
