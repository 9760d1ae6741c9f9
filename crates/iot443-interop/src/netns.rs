//! Network namespaces for the tests that prove what goes on the wire: a private loopback per
//! test, an nftables firewall in it, a `tcpdump` capture read back with `tshark`, and the peers
//! (the `iot443 emulator`, tinyproxy) started inside it.
//!
//! Everything talks to 127.0.0.1 *inside* a namespace the test created: the host's own network
//! and firewall are never touched, and two tests running at once each have their own ports 443,
//! 8883 and 8888.
//!
//! Needs root and the tools of Debian's `iproute2`, `nftables`, `tcpdump`, `tshark` and
//! `tinyproxy` (`.ci/install-peers` installs them). Without them [`Namespace::create`] panics
//! with what is missing: the tests fail, they are never skipped.

use crate::TIMEOUT;
use crate::process::{Finished, Proc};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The programs the namespace tests run, with the Debian package of each.
pub const TOOLS: [(&str, &str); 5] = [
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("tcpdump", "tcpdump"),
    ("tshark", "tshark"),
    ("tinyproxy", "tinyproxy"),
];

/// The unprivileged user tinyproxy switches to (it starts as root). The firewall of a proxy test
/// lets only this user open connections, so that nothing but the proxy reaches port 443.
pub const PROXY_USER: &str = "nobody";

/// The group tinyproxy switches to (Debian's group of `nobody`).
pub const PROXY_GROUP: &str = "nogroup";

/// Numbers the namespaces of this process, for unique names.
static NEXT_NAMESPACE: AtomicU32 = AtomicU32::new(0);

/// A network namespace with its loopback up, deleted (`ip netns del`) when dropped.
///
/// Its name is `iot443-<pid>-<n>`. Processes started in it with [`Namespace::command`] or
/// [`Namespace::wrap`] see only its loopback; drop them before the namespace (declare the
/// namespace first, so that it is dropped last).
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Checks that this process is root and that every program of [`TOOLS`] is installed, then
    /// creates the namespace and sets its loopback up.
    ///
    /// # Panics
    /// When not root, when a tool is missing, or when `ip netns add` fails; the message says what
    /// to do.
    pub fn create() -> Namespace {
        require_root();
        require_tools();
        let name = format!(
            "iot443-{}-{}",
            std::process::id(),
            NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed)
        );
        let added = run_unchecked("ip netns add", ip_command(["netns", "add", &name]));
        assert!(
            added.status.success(),
            "`ip netns add {name}` failed: the namespace tests need root with CAP_SYS_ADMIN and \
             a kernel with network namespaces (in a container: --privileged)\n{}",
            added.stderr_text()
        );
        // From here on, Drop deletes the namespace even when a later step panics.
        let namespace = Namespace { name };
        run_checked(
            "ip link set lo up",
            ip_command(["-n", &namespace.name, "link", "set", "lo", "up"]),
        );
        namespace
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME PROGRAM`: add the arguments, environment and pipes as usual.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = ip_command(["netns", "exec", &self.name]);
        command.arg(program);
        command
    }

    /// `command` (program, arguments, environment changes and working folder) run inside the
    /// namespace. `ip netns exec` replaces itself with the program: the child's PID is the
    /// program's, so that [`Proc`] kills the program itself.
    pub fn wrap(&self, command: &Command) -> Command {
        let mut wrapped = self.command(command.get_program());
        wrapped.args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }

    /// Loads an nftables ruleset (the text of an `nft -f` file) into the namespace.
    ///
    /// # Panics
    /// When `nft` refuses it, with its error and the ruleset.
    pub fn apply_nft(&self, ruleset: &str) {
        let mut command = self.command(tool("nft"));
        command.args(["-f", "-"]);
        let applied = Proc::spawn_with_input("nft -f -", command, ruleset.as_bytes().to_vec())
            .wait_exit(TIMEOUT);
        assert!(
            applied.status.success(),
            "nft refused the ruleset in namespace {}:\n{}\n--- ruleset:\n{ruleset}",
            self.name,
            applied.stderr_text()
        );
    }

    /// The packet count of the named counter `counter` of the nftables table `table` (family
    /// `inet`).
    ///
    /// # Panics
    /// When the counter does not exist or `nft` prints no packet count.
    pub fn counter_packets(&self, table: &str, counter: &str) -> u64 {
        let mut command = self.command(tool("nft"));
        command.args(["list", "counter", "inet", table, counter]);
        let listed = run_checked("nft list counter", command);
        let text = listed.stdout_text();
        packets_of(&text).unwrap_or_else(|| {
            panic!("no packet count for counter {counter} of table inet {table} in:\n{text}")
        })
    }

    /// Starts `tcpdump -i lo -U --immediate-mode -Z root -w FILE tcp` in the namespace and waits
    /// until it is listening.
    ///
    /// `--immediate-mode`: without it the kernel hands packets over in blocks, at the latest
    /// after a second, and a tcpdump stopped sooner writes none of them (`0 packets captured`).
    /// `-Z root`: Debian's tcpdump otherwise switches to the user `tcpdump` before opening the
    /// file, which cannot write in the test's private temporary folder.
    pub fn start_capture(&self, file: &Path) -> Capture {
        let mut command = self.command(tool("tcpdump"));
        command.args(["-i", "lo", "-U", "--immediate-mode", "-Z", "root", "-w"]);
        command.arg(file).arg("tcp");
        let mut proc = Proc::spawn(format!("tcpdump in {}", self.name), command);
        proc.wait_stderr(TIMEOUT, |line| line.contains("listening on lo"));
        Capture { proc, file: file.to_owned() }
    }

    /// Starts `iot443 emulator --dir DIR --alpn-port 443 --mqtts-port 8883` in the namespace and
    /// waits for its two `listening` lines (127.0.0.1:443 and 127.0.0.1:8883).
    pub fn start_emulator(&self, dir: &Path) -> NamespacedEmulator {
        let mut command = crate::iot443_command();
        command.arg("emulator").arg("--dir").arg(dir);
        command.args(["--alpn-port", "443", "--mqtts-port", "8883"]);
        let mut proc =
            Proc::spawn(format!("iot443 emulator in {}", self.name), self.wrap(&command));
        for listener in ["mqtt-alpn 127.0.0.1:443", "mqtts 127.0.0.1:8883"] {
            let expected = format!("iot443-emulator listening {listener}");
            proc.wait_stdout(TIMEOUT, |line| line.trim() == expected);
        }
        let config = dir.join("iot443.toml");
        assert!(config.is_file(), "the emulator did not write {}", config.display());
        NamespacedEmulator { proc, config }
    }

    /// Writes `dir/tinyproxy.conf` (listening on 127.0.0.1:`port`, allowing 127.0.0.1, CONNECT
    /// to port 443 only, switching to [`PROXY_USER`]) and starts `tinyproxy -d` in the
    /// namespace; waits until it accepts connections.
    ///
    /// tinyproxy logs to stdout (no `LogFile`): its log is read as lines, waited for, and shown
    /// when a test fails. No `PidFile`: the test has the PID of the process it started.
    pub fn start_tinyproxy(&self, dir: &Path, port: u16) -> Tinyproxy {
        let config = format!(
            "# Written by the iot443 interoperability suite.\n\
             User {PROXY_USER}\n\
             Group {PROXY_GROUP}\n\
             Port {port}\n\
             Listen 127.0.0.1\n\
             Allow 127.0.0.1\n\
             ConnectPort 443\n\
             Timeout 60\n\
             LogLevel Info\n"
        );
        let path = dir.join("tinyproxy.conf");
        std::fs::write(&path, config).expect("cannot write tinyproxy.conf");
        let mut command = self.command(tool("tinyproxy"));
        command.arg("-d").arg("-c").arg(&path);
        let mut proc = Proc::spawn(format!("tinyproxy in {}", self.name), command);
        proc.wait_stdout(TIMEOUT, |line| line.contains("Accepting connections"));
        Tinyproxy { proc, port }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let deleted = ip_command(["netns", "del", &self.name]).output();
        match deleted {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "warning: `ip netns del {}` failed: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(error) => eprintln!("warning: cannot run `ip netns del {}`: {error}", self.name),
        }
    }
}

/// The `iot443 emulator` process running in a namespace on 127.0.0.1:443 and 127.0.0.1:8883.
#[derive(Debug)]
pub struct NamespacedEmulator {
    /// The process (its stderr is the emulator's log); killed when dropped.
    pub proc: Proc,
    /// The client configuration the emulator wrote (`DIR/iot443.toml`: endpoint `localhost`,
    /// port 443, ALPN `x-amzn-mqtt-ca`, the device's files).
    pub config: PathBuf,
}

/// tinyproxy running in a namespace; killed when dropped.
#[derive(Debug)]
pub struct Tinyproxy {
    /// The process; its stdout is tinyproxy's log (`Request (file descriptor N): CONNECT …`).
    pub proc: Proc,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// A running `tcpdump`; [`Capture::stop`] ends it and returns the pcap file. Dropped without
/// `stop`, tcpdump is killed.
#[derive(Debug)]
pub struct Capture {
    proc: Proc,
    file: PathBuf,
}

impl Capture {
    /// Sends SIGTERM to tcpdump (`kill PID`), waits for it to exit after writing its last packets,
    /// and returns the capture file.
    ///
    /// # Panics
    /// When `kill` fails, or tcpdump does not exit cleanly in time.
    pub fn stop(self) -> PathBuf {
        let Capture { proc, file } = self;
        let mut kill = Command::new("kill");
        kill.arg(proc.pid().to_string());
        run_checked("kill tcpdump", kill);
        let finished = proc.wait_exit(TIMEOUT);
        assert!(finished.status.success(), "tcpdump did not stop cleanly on SIGTERM: {finished:?}");
        file
    }
}

/// `tshark -r PCAP -Y FILTER -T fields -e FIELD…`: one row per matching packet, one string per
/// field (empty when the packet lacks it; several values of one field joined by commas).
///
/// # Panics
/// When tshark fails (a bad filter or field name, an unreadable file).
pub fn tshark_fields(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut command = Command::new(tool("tshark"));
    command.arg("-r").arg(pcap).args(["-Y", filter, "-T", "fields", "-E", "separator=/t"]);
    for field in fields {
        command.args(["-e", field]);
    }
    let read = run_checked("tshark", command);
    read.stdout
        .iter()
        .filter(|line| !line.is_empty())
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

/// The number after `packets` in `nft list counter` output (`packets 11 bytes 660`).
fn packets_of(listing: &str) -> Option<u64> {
    let mut words = listing.split_whitespace();
    words.by_ref().find(|word| *word == "packets")?;
    words.next()?.parse().ok()
}

/// `ip ARGS…`.
fn ip_command<const N: usize>(args: [&str; N]) -> Command {
    let mut command = Command::new(tool("ip"));
    command.args(args);
    command
}

/// Runs `command` to its end and returns what it printed, whatever its exit status.
fn run_unchecked(what: &str, command: Command) -> Finished {
    Proc::run(what, command, TIMEOUT)
}

/// Runs `command` to its end; panics with its output unless it exits 0.
fn run_checked(what: &str, command: Command) -> Finished {
    let finished = run_unchecked(what, command);
    assert!(finished.status.success(), "{what} failed: {finished:?}");
    finished
}

/// Panics unless this process runs as root (`id -u` prints 0).
fn require_root() {
    let output = Command::new("id").arg("-u").output().expect("cannot run `id -u`");
    let uid = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        uid == "0",
        "the network-namespace tests need root (uid 0), this process runs as uid {uid}: run them \
         as root (e.g. `sudo -E cargo test -p iot443-interop --test through_firewall -- \
         --include-ignored`)"
    );
}

/// Panics naming every program of [`TOOLS`] that is not in `PATH` (or /usr/sbin, /sbin).
fn require_tools() {
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(program, _)| find_program(program).is_none())
        .map(|(program, package)| format!("{program} (Debian package {package})"))
        .collect();
    assert!(
        missing.is_empty(),
        "peer missing: {} not installed: run .ci/install-peers (apt-get install iproute2 \
         nftables tcpdump tshark tinyproxy)",
        missing.join(", ")
    );
}

/// The path of a program of [`TOOLS`] (checked by [`Namespace::create`]).
fn tool(program: &str) -> PathBuf {
    find_program(program).unwrap_or_else(|| {
        panic!("peer missing: `{program}` is not installed: run .ci/install-peers")
    })
}

/// Where `program` is: the first folder of `PATH`, then /usr/sbin and /sbin, that holds it.
fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packet_count_is_read_from_an_nft_listing() {
        let listing =
            "table inet fw {\n\tcounter blocked_8883 {\n\t\tpackets 11 bytes 660\n\t}\n}\n";
        assert_eq!(packets_of(listing), Some(11));
        assert_eq!(packets_of("table inet fw {\n}\n"), None);
    }
}
