//! Workloads 3 and 4: a stream of N messages of 100 bytes at QoS 1 (first publish → last
//! PUBACK) or QoS 0 (first publish → last written).

use std::ffi::OsString;
use std::fmt::Write as _;

use iot443_interop::paths;

use super::{Contender, Peers, STDIN_DELAY, Timing, interleave};
use crate::Opts;
use crate::endpoint::Endpoint;
use crate::measure::Run;
use crate::stats::{MIB, completed, row, summary, values};
use crate::tools::Tools;

/// Runs the workload at `qos` and returns its table.
pub(crate) fn run(opts: &Opts, endpoint: &Endpoint, tools: &Tools, qos: u8) -> String {
    let n = opts.messages;
    let window = opts.window;
    let lines = opts.dir.join(format!("lines-{n}.txt"));
    let text: String = (0..n).map(|i| format!("{i:0>100}\n")).collect();
    if let Err(error) = std::fs::write(&lines, text) {
        return format!("### QoS {qos} stream: cannot write {}: {error}\n\n", lines.display());
    }
    let peers = Peers {
        endpoint,
        tools,
        mode: "stream",
        id_prefix: format!("bench-s{qos}"),
        timing: Timing::Reported,
    };
    let q = qos.to_string();
    let stream = |extra: &[&str]| {
        let mut args = ["-t", "bench/s", "-l", "-q", &q].map(OsString::from).to_vec();
        args.extend(extra.iter().map(OsString::from));
        args
    };
    let mut iot443_args = vec![OsString::from("pub")];
    iot443_args.extend(endpoint.iot443_args(&peers.client_id("iot443")));
    iot443_args.extend(stream(&[]));
    let mut mosquitto_args = endpoint.mosquitto_args(&peers.client_id("mosq"), true);
    mosquitto_args.extend(stream(&["-M", &window.to_string()]));
    let mut contenders = vec![
        Contender::fed(
            format!("`iot443 pub -l -q {qos}` (CLI)"),
            &tools.iot443,
            iot443_args,
            &endpoint.cwd,
            &lines,
        ),
        Contender::fed(
            format!("`mosquitto_pub -l -q {qos} -M {window}` (libmosquitto)"),
            paths::peer("mosquitto_pub"),
            mosquitto_args,
            &endpoint.cwd,
            &lines,
        ),
    ];
    // QOS COUNT WINDOW.
    let rest = [q.clone(), n.to_string(), window.to_string()];
    contenders.extend(
        peers.libmosquitto(
            &format!("libmosquitto (C, `max_inflight` {window}, loop thread)"),
            &rest,
        ),
    );
    contenders.extend(peers.iot443_c("iot443 C API (libiot443.so, `iot443_publish_async`)", &rest));
    contenders.push(peers.library("iot443 library", "iot443", &rest));
    contenders.push(peers.library("rumqttc 0.25 library", "rumqttc", &rest));
    contenders.extend(peers.python(&rest));
    let rounds = opts.rounds;
    eprintln!("e2e: QoS {qos} stream, {n} × 100 B, {rounds} rounds");
    let results = interleave(&format!("qos{qos}"), &contenders, rounds, &tools.runner);
    // Ratios against mosquitto_pub (the command line) and libmosquitto (the C peer, when built).
    let references: Vec<(usize, &str)> = [(1, "mosquitto_pub"), (2, "libmosquitto")]
        .into_iter()
        .filter(|&(i, _)| i == 1 || tools.libmosquitto.is_some())
        .collect();
    let mut out = String::new();
    let (number, what, to) = if qos == 1 {
        (3, format!("QoS 1 stream: {n} × 100 B, {window} in flight"), "last PUBACK")
    } else {
        (4, format!("QoS 0 stream: {n} × 100 B"), "last message written")
    };
    let _ = writeln!(
        out,
        "### {number}. {what}, first publish → {to}\n\n\
         {rounds} rounds, interleaved; median (min–max); ratios = msgs/s of the contender / msgs/s \
         of the reference in the same round (higher is better). CPU and peak RSS are the whole \
         client process's (connect included), from wait4(2); CPU µs/msg = (user+sys) / {n}. \
         Timing: (a) the bench writes the {n} lines to the client's stdin {} ms after starting it \
         (connected by then) and times first line written → process exit; (b) the client times \
         itself from its first publish (in-process children: current-thread tokio runtime; at \
         QoS 0 the two Rust libraries are timed up to their DISCONNECT flushed, since rumqttc \
         reports no per-message write).\n\n\
         | client | runs | msgs/s | {} | elapsed ms | CPU µs/msg | peak RSS MiB | timing |\n\
         |---|---|---|{}---|---|---|---|",
        STDIN_DELAY.as_millis(),
        references.iter().map(|(_, name)| format!("× {name}")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(references.len()),
    );
    for (i, contender) in contenders.iter().enumerate() {
        let timing = contender.timing;
        let rate = |r: &Run| n as f64 / timing.elapsed(r).as_secs_f64();
        let ratio_columns: Vec<String> = references
            .iter()
            .map(|&(reference, _)| {
                let ref_timing = contenders[reference].timing;
                let ratio: Vec<f64> = results[i]
                    .iter()
                    .zip(&results[reference])
                    .filter_map(|(a, b)| {
                        let b = ref_timing.elapsed(b.as_ref()?).as_secs_f64();
                        Some(rate(a.as_ref()?) * b / n as f64)
                    })
                    .collect();
                summary(&ratio, 2)
            })
            .collect();
        let mut cells = vec![
            contender.name.clone(),
            completed(&results[i]),
            summary(&values(&results[i], rate), 0),
        ];
        cells.extend(ratio_columns);
        cells.extend([
            summary(&values(&results[i], |r| timing.elapsed(r).as_secs_f64() * 1e3), 1),
            summary(&values(&results[i], |r| r.cpu.as_secs_f64() * 1e6 / n as f64), 2),
            summary(&values(&results[i], |r| r.max_rss as f64 / MIB), 1),
            if timing == Timing::FromStdin { "(a)" } else { "(b)" }.to_owned(),
        ]);
        out.push_str(&row(&cells));
    }
    out.push('\n');
    out
}
