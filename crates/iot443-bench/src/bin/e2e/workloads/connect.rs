//! Workload 1: connect, whole process: start → CONNACK → one QoS 0 publish → exit.

use std::ffi::OsString;
use std::fmt::Write as _;

use iot443_interop::paths;

use super::{Contender, Peers, Timing, interleave};
use crate::Opts;
use crate::endpoint::Endpoint;
use crate::measure::Run;
use crate::stats::{MIB, completed, ratios, row, summary, values};
use crate::tools::Tools;

/// Runs the workload and returns its table.
pub(crate) fn run(opts: &Opts, endpoint: &Endpoint, tools: &Tools) -> String {
    let peers = Peers {
        endpoint,
        tools,
        mode: "connect",
        id_prefix: "bench-c".into(),
        timing: Timing::Wall,
    };
    let publish_once = ["-t", "t", "-m", "x"].map(OsString::from);
    let mut iot443_args = vec![OsString::from("pub")];
    iot443_args.extend(endpoint.iot443_args(&peers.client_id("iot443")));
    iot443_args.extend(publish_once.clone());
    let mut mosquitto_args = endpoint.mosquitto_args(&peers.client_id("mosq"), true);
    mosquitto_args.extend(publish_once);
    let mut contenders = vec![
        Contender::new(
            "`iot443 pub -t t -m x`",
            &tools.iot443,
            iot443_args,
            &endpoint.cwd,
            Timing::Wall,
        ),
        Contender::new(
            "`mosquitto_pub --tls-alpn … -t t -m x`",
            paths::peer("mosquitto_pub"),
            mosquitto_args,
            &endpoint.cwd,
            Timing::Wall,
        ),
    ];
    contenders.extend(peers.python(&[]));
    eprintln!("e2e: connect, whole process, {} rounds", opts.connect_rounds);
    let results = interleave("connect", &contenders, opts.connect_rounds, &tools.runner);
    /// The reference of the ratios: mosquitto_pub.
    const REF: usize = 1;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### 1. Connect, whole process: start → CONNACK → one QoS 0 publish → exit\n\n\
         {} rounds, interleaved; median (min–max); ratio = contender / mosquitto_pub in the same round.\n\n\
         | client | runs | wall ms | ratio | CPU ms (user+sys) | ratio | peak RSS MiB | ratio |\n\
         |---|---|---|---|---|---|---|---|",
        opts.connect_rounds
    );
    let wall = |r: &Run| r.wall.as_secs_f64() * 1e3;
    let cpu = |r: &Run| r.cpu.as_secs_f64() * 1e3;
    let rss = |r: &Run| r.max_rss as f64 / MIB;
    for (i, contender) in contenders.iter().enumerate() {
        out.push_str(&row(&[
            contender.name.clone(),
            completed(&results[i]),
            summary(&values(&results[i], wall), 1),
            summary(&ratios(&results, i, REF, wall), 2),
            summary(&values(&results[i], cpu), 1),
            summary(&ratios(&results, i, REF, cpu), 2),
            summary(&values(&results[i], rss), 1),
            summary(&ratios(&results, i, REF, rss), 2),
        ]));
    }
    out.push('\n');
    out
}
