//! Where the programs under test and the peers are.

use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate).
pub fn workspace_dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate_dir.to_path_buf())
}

/// The `iot443` binary: `IOT443_BIN`, else `<workspace>/target/debug/iot443`.
///
/// # Panics
/// When the file does not exist, with the command that builds it.
pub fn iot443_bin() -> PathBuf {
    iot443_bin_of("debug")
}

/// The `iot443` binary built with the cargo profile `profile` (`"debug"`, `"release"`):
/// `IOT443_BIN`, else `<workspace>/target/<profile>/iot443`.
///
/// # Panics
/// When the file does not exist, with the command that builds it.
pub fn iot443_bin_of(profile: &str) -> PathBuf {
    let (path, origin) = match std::env::var_os("IOT443_BIN").filter(|v| !v.is_empty()) {
        Some(path) => (PathBuf::from(path), "IOT443_BIN"),
        None => (workspace_dir().join("target").join(profile).join("iot443"), "the default path"),
    };
    if !path.is_file() {
        let flag = match profile {
            "debug" => String::new(),
            "release" => " --release".to_owned(),
            other => format!(" --profile {other}"),
        };
        panic!(
            "the iot443 binary is missing at {} ({origin}): run `cargo build{flag} --bin iot443` \
             first, or set IOT443_BIN to the binary (.ci/interop and crates/iot443-bench/run.sh \
             build it)",
            path.display()
        );
    }
    path
}

/// The Python of the peers' venv (paho-mqtt, awsiotsdk): `IOT443_PEERS_PYTHON`, else
/// `<workspace>/target/peers-venv/bin/python`.
///
/// # Panics
/// When it does not exist, with the command that installs it.
pub fn peers_python() -> PathBuf {
    let (path, origin) = match std::env::var_os("IOT443_PEERS_PYTHON").filter(|v| !v.is_empty()) {
        Some(path) => (PathBuf::from(path), "IOT443_PEERS_PYTHON"),
        None => (workspace_dir().join("target/peers-venv/bin/python"), "the default path"),
    };
    if !path.is_file() {
        panic!(
            "peer missing: the Python venv with paho-mqtt and awsiotsdk is not at {} ({origin}): \
             run .ci/install-peers (or set IOT443_PEERS_PYTHON)",
            path.display()
        );
    }
    path
}

/// A peer's executable found in `PATH` (`mosquitto`, `mosquitto_pub`, `haproxy`, …).
///
/// # Panics
/// When it is not installed, with the command that installs it.
pub fn peer(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    // Debian installs the mosquitto broker in /usr/sbin, which a non-root PATH may lack.
    let extra = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "peer missing: `{name}` is not installed (not found in PATH): run \
                 .ci/install-peers, which installs mosquitto, mosquitto-clients, haproxy and \
                 openssl (stdbuf comes with coreutils)"
            )
        })
}
