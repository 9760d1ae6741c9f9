//! Workload 2: in-process connect → CONNACK, several connections per process.

use std::fmt::Write as _;

use super::{Peers, Timing, interleave};
use crate::Opts;
use crate::endpoint::Endpoint;
use crate::stats::{completed, first_and_later_connects, row, summary};
use crate::tools::Tools;

/// Connections per in-process connect child.
const INPROC_CONNECTS: usize = 10;

/// Runs the workload and returns its table.
pub(crate) fn run(opts: &Opts, endpoint: &Endpoint, tools: &Tools) -> String {
    let peers = Peers {
        endpoint,
        tools,
        mode: "connects",
        id_prefix: "bench-i".into(),
        timing: Timing::Wall,
    };
    // QOS COUNT WINDOW.
    let rest = |window: &str| ["0", &INPROC_CONNECTS.to_string(), window].map(String::from);
    let mut contenders = vec![
        peers.library("iot443 `Client::connect`", "iot443", &rest("1")),
        peers.library("rumqttc 0.25 (rustls, ring)", "rumqttc", &rest("1")),
    ];
    contenders.extend(peers.libmosquitto("libmosquitto (C)", &rest("100")));
    contenders.extend(peers.python(&rest("1")));
    let rounds = opts.rounds;
    eprintln!("e2e: in-process connect, {rounds} rounds of {INPROC_CONNECTS} connections");
    let results = interleave("inproc", &contenders, rounds, &tools.runner);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### 2. In-process connect → CONNACK\n\n\
         {rounds} rounds; each round one process per library makes {INPROC_CONNECTS} connections one after \
         the other (connect → CONNACK timed, then DISCONNECT). First: the process's first connection, \
         median over rounds (min–max). Later: the median of connections 2–{INPROC_CONNECTS} in each \
         round, then median over rounds (min–max of those). Each timed connection includes reading \
         the PEM files and building the TLS configuration (rumqttc gets the same rustls ClientConfig \
         as iot443, built inside the timed region).\n\n\
         | library | runs | first connect ms | later connects ms |\n|---|---|---|---|"
    );
    for (i, contender) in contenders.iter().enumerate() {
        let (first, later) = first_and_later_connects(&results[i]);
        out.push_str(&row(&[
            contender.name.clone(),
            completed(&results[i]),
            summary(&first, 2),
            summary(&later, 2),
        ]));
    }
    out.push('\n');
    out
}
