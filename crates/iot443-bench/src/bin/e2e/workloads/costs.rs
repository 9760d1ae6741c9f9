//! Workload 7 (only with `--only costs`): what one QoS 1 message costs each client, in counts
//! that do not depend on the machine's speed: instructions (valgrind's callgrind), heap
//! allocations (valgrind's DHAT) and system calls (`strace -f -c`).
//!
//! Each client streams N₁ and then N₂ messages in a process of its own under each tool; the cost
//! per message is (count(N₂) − count(N₁)) / (N₂ − N₁), so the process's start, the TLS handshake
//! and the exit cancel out. The tools slow the client down (valgrind about 30 times), which
//! changes how many messages share a read or a write: the system calls per message are those of
//! a slowed-down client, and the instructions include the polls that its pacing causes.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use iot443_interop::Proc;
use iot443_interop::paths;

use crate::endpoint::Endpoint;
use crate::tools::Tools;

/// The two stream lengths.
const COUNTS: [usize; 2] = [2_000, 12_000];

/// Longest one measured child may run.
const LIMIT: Duration = Duration::from_secs(300);

/// A client to measure: its name, program, and the arguments before `HOST PORT …`.
struct Client {
    name: &'static str,
    program: std::path::PathBuf,
    leading: Vec<OsString>,
}

/// One tool: its name and how to read its count from what the child printed (and a file).
#[derive(Clone, Copy)]
enum Tool {
    Instructions,
    Allocations,
    Syscalls,
}

impl Tool {
    fn command(self, program: &Path, out: &Path) -> Command {
        match self {
            Tool::Instructions => {
                let mut command = Command::new(paths::peer("valgrind"));
                command
                    .arg("--tool=callgrind")
                    .arg(format!("--callgrind-out-file={}", out.display()));
                command.arg(program);
                command
            }
            Tool::Allocations => {
                let mut command = Command::new(paths::peer("valgrind"));
                command.arg("--tool=dhat").arg(format!("--dhat-out-file={}", out.display()));
                command.arg(program);
                command
            }
            Tool::Syscalls => {
                let mut command = Command::new(paths::peer("strace"));
                command.args(["-f", "-c", "-U", "calls", "-o"]).arg(out).arg(program);
                command
            }
        }
    }

    /// The count, from valgrind's stderr or strace's summary file.
    fn count(self, stderr: &str, out: &Path) -> Option<f64> {
        let number = |text: &str| text.trim().replace(',', "").parse::<f64>().ok();
        match self {
            // `==123== Collected : 123456789`
            Tool::Instructions => stderr
                .lines()
                .find_map(|line| line.split_once("Collected :").map(|(_, n)| n.to_owned()))
                .and_then(|n| number(&n)),
            // `==123== Total:     1,234,567 bytes in 12,345 blocks`
            Tool::Allocations => stderr.lines().find_map(|line| {
                let (_, rest) = line.split_once("Total:")?;
                let (_, blocks) = rest.split_once(" bytes in ")?;
                number(blocks.trim_end_matches("blocks"))
            }),
            // The last line of `-U calls`: `      1363 total`
            Tool::Syscalls => {
                let summary = std::fs::read_to_string(out).ok()?;
                let total =
                    summary.lines().rev().find(|line| line.trim_end().ends_with("total"))?;
                number(total.trim_end().trim_end_matches("total"))
            }
        }
    }
}

/// Measures the clients and returns the table.
pub(crate) fn run(endpoint: &Endpoint, tools: &Tools) -> String {
    let mut clients = vec![
        Client {
            name: "iot443 library",
            program: tools.me.clone(),
            leading: vec!["child".into(), "iot443-stream".into()],
        },
        Client {
            name: "rumqttc 0.25 library",
            program: tools.me.clone(),
            leading: vec!["child".into(), "rumqttc-stream".into()],
        },
    ];
    if let Some(program) = &tools.iot443_c {
        clients.push(Client {
            name: "iot443 C API",
            program: program.clone(),
            leading: vec!["stream".into()],
        });
    }
    if let Some(program) = &tools.libmosquitto {
        clients.push(Client {
            name: "libmosquitto (C)",
            program: program.clone(),
            leading: vec!["stream".into()],
        });
    }
    let [n1, n2] = COUNTS;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### 7. What one QoS 1 message costs: instructions, allocations, system calls\n\n\
         Each client streams {n1} and then {n2} messages of 100 bytes (100 in flight) in its own \
         process under each tool; per message = (count at {n2} − count at {n1}) / {}. Instructions: \
         `valgrind --tool=callgrind` (all threads); allocations: `valgrind --tool=dhat` (heap \
         blocks); system calls: `strace -f -c` (all threads). The tools slow the clients, so the \
         system calls are those of a slowed-down client.\n\n\
         | client | instructions/msg | allocations/msg | syscalls/msg |\n|---|---|---|---|",
        n2 - n1
    );
    for (i, client) in clients.iter().enumerate() {
        eprintln!("e2e: costs of {}", client.name);
        let cells: Vec<String> = [Tool::Instructions, Tool::Allocations, Tool::Syscalls]
            .into_iter()
            .map(|tool| per_message(endpoint, client, tool, &format!("costs{i}")))
            .collect();
        let _ = writeln!(out, "| {} | {} |", client.name, cells.join(" | "));
    }
    out.push('\n');
    out
}

/// `(count(N₂) − count(N₁)) / (N₂ − N₁)` for `client` under `tool`, or why not.
fn per_message(endpoint: &Endpoint, client: &Client, tool: Tool, id: &str) -> String {
    let mut counts = Vec::new();
    for n in COUNTS {
        let out =
            std::env::temp_dir().join(format!("iot443-e2e-costs-{}-{id}-{n}", std::process::id()));
        let mut command = tool.command(&client.program, &out);
        command.args(&client.leading);
        let rest = ["1".to_owned(), n.to_string(), "100".to_owned()];
        command.args(endpoint.peer_args(&format!("bench-{id}"), &rest));
        command.current_dir(&endpoint.cwd);
        let finished = Proc::run(client.name, command, LIMIT);
        let count = tool.count(&finished.stderr_text(), &out);
        let _ = std::fs::remove_file(&out);
        match (finished.status.success(), count) {
            (true, Some(count)) => counts.push(count),
            _ => {
                let tail: Vec<&String> = finished.stderr.iter().rev().take(3).collect();
                eprintln!("  {}: failed at {n}: {tail:?}", client.name);
                return "failed".to_owned();
            }
        }
    }
    match counts[..] {
        [c1, c2] => format!("{:.1}", (c2 - c1) / (COUNTS[1] - COUNTS[0]) as f64),
        _ => "failed".to_owned(),
    }
}
