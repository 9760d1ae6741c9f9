//! `iot443 bench`: what emqtt-bench and `mqttx bench` give, on iot443's roads, against the
//! embedded emulator (a process of its own) or any configured endpoint.
//!
//! Every load is bounded in count and in time (`--time-limit`), shows a progress line on a
//! terminal, and ends with a summary (a table, or JSON with `--json`), also at Ctrl-C.

mod conn;
mod endpoint;
mod fleet;
mod process_stats;
mod progress;
mod publish;
mod stamp;
mod stop;
mod subscribe;
mod summary;
mod tally;

use crate::args::{BenchArgs, BenchLoad};
use crate::exit::Failure;

/// File descriptors a process needs beside its connections (runtime, files, stdio).
const SPARE_FILES: u64 = 64;

pub async fn run(args: BenchArgs) -> Result<(), Failure> {
    match args.load {
        BenchLoad::Conn(args) => conn::run(args).await,
        BenchLoad::Pub(args) => publish::run(args).await,
        BenchLoad::Sub(args) => subscribe::run(args).await,
    }
}

/// Raises the open-files limit to the hard limit and checks that `connections` fit.
fn ensure_open_files(connections: u64) -> Result<(), Failure> {
    match process_stats::raise_open_files_limit() {
        Some(limit) => check_open_files(connections, limit),
        None => Ok(()),
    }
}

/// Whether `connections` fit under an open-files `limit`.
fn check_open_files(connections: u64, limit: u64) -> Result<(), Failure> {
    let needed = connections + SPARE_FILES;
    if limit < needed {
        return Err(Failure::usage(format!(
            "{connections} connections need about {needed} open files, and this process may \
             open {limit} (its hard limit): raise it (`ulimit -Hn {needed}` as root, or nofile \
             in /etc/security/limits.conf), or bench fewer connections"
        )));
    }
    Ok(())
}

/// Raises the open-files limit as far as the hard limit allows (for the emulator, whose
/// connections each need one).
pub fn raise_open_files_limit() {
    let _ = process_stats::raise_open_files_limit();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_connections_for_the_open_files_limit_is_a_usage_error_naming_both() {
        assert!(check_open_files(10_000, 20_000).is_ok());
        let failure = check_open_files(20_000, 20_000).unwrap_err();
        assert_eq!(failure.code, crate::exit::USAGE);
        assert!(failure.message.contains("20064 open files"), "{}", failure.message);
        assert!(failure.message.contains("may open 20000"), "{}", failure.message);
    }
}
