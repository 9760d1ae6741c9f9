//! Debian's mosquitto broker and clients, and haproxy in front of the broker requiring ALPN
//! `x-amzn-mqtt-ca` as AWS IoT Core does on port 443.
//!
//! mosquitto 2.0 cannot require ALPN on a listener, hence haproxy: it terminates TLS (client
//! certificate required, verified against the emulator PKI's CA), selects `x-amzn-mqtt-ca`,
//! rejects any session that did not negotiate it, and forwards plain MQTT to mosquitto on a
//! loopback port.

use crate::net::{free_port, wait_accepting};
use crate::paths::peer;
use crate::process::Proc;
use crate::{ALPN, TIMEOUT};
use iot443_emulator::pki::Pki;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The server side of TLS: a CA that verifies client certificates, and the server certificate.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The CA certificate (PEM) client certificates must be issued by.
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

impl ServerTls {
    /// The CA and server certificate of an emulator PKI (the server certificate holds
    /// `localhost`, `127.0.0.1` and `::1`).
    pub fn from_pki(pki: &Pki) -> ServerTls {
        ServerTls {
            ca: pki.dir.join("ca.pem"),
            cert: pki.dir.join("server.crt"),
            key: pki.dir.join("server.key"),
        }
    }
}

/// A mosquitto broker with a configuration written by the test: a plain MQTT listener on a
/// loopback port and, optionally, a TLS listener requiring a client certificate.
#[derive(Debug)]
pub struct MosquittoBroker {
    /// The broker process (its log is on stderr).
    pub proc: Proc,
    /// The plain MQTT listener (127.0.0.1).
    pub plain_port: u16,
    /// The TLS listener (127.0.0.1), when asked for.
    pub tls_port: Option<u16>,
}

/// How [`MosquittoBroker::start_with`] configures the broker beyond what every broker here has
/// (anonymous access, no persistence, `user root`, a plain listener on a free loopback port).
#[derive(Debug, Clone, Copy)]
pub struct MosquittoOptions<'a> {
    /// A second listener with TLS and `require_certificate true` (no ALPN: mosquitto cannot
    /// require it). Default none.
    pub tls: Option<&'a ServerTls>,
    /// `max_queued_messages`. Default 100,000, far above any test's message count.
    pub max_queued_messages: u32,
    /// `set_tcp_nodelay true`: PUBACKs leave at once instead of waiting on Nagle's algorithm
    /// (for a bench). Default off, as in mosquitto.
    pub tcp_nodelay: bool,
    /// Log errors to information on stderr (the default), which a test reads; `false` logs
    /// nothing (`log_dest none`, for a bench).
    pub log: bool,
}

impl Default for MosquittoOptions<'_> {
    fn default() -> Self {
        MosquittoOptions { tls: None, max_queued_messages: 100_000, tcp_nodelay: false, log: true }
    }
}

impl MosquittoBroker {
    /// Writes `dir/mosquitto.conf` and starts the broker: anonymous access, no persistence,
    /// `user root` (so that root does not switch to the user `mosquitto`, which could not read
    /// the test's files), queues far above any test's message count. With `tls`, a second
    /// listener with `require_certificate true` (no ALPN: mosquitto cannot require it).
    pub fn start(dir: &Path, tls: Option<&ServerTls>) -> MosquittoBroker {
        MosquittoBroker::start_with(dir, &MosquittoOptions { tls, ..MosquittoOptions::default() })
    }

    /// Like [`MosquittoBroker::start`], configured by `options`. Returns once the broker runs:
    /// it logged so, or (without a log) its plain listener accepts.
    ///
    /// # Panics
    /// When mosquitto is not installed, the configuration cannot be written, or the broker
    /// does not start within [`TIMEOUT`].
    pub fn start_with(dir: &Path, options: &MosquittoOptions<'_>) -> MosquittoBroker {
        let plain_port = free_port();
        let mut config = format!(
            "# Written by the iot443 interoperability suite.\n\
             user root\n\
             persistence false\n\
             allow_anonymous true\n\
             max_queued_messages {}\n",
            options.max_queued_messages
        );
        if options.tcp_nodelay {
            config.push_str("set_tcp_nodelay true\n");
        }
        config.push_str(if options.log {
            "log_dest stderr\n\
             log_type error\n\
             log_type warning\n\
             log_type notice\n\
             log_type information\n"
        } else {
            "log_dest none\n"
        });
        config.push_str(&format!("listener {plain_port} 127.0.0.1\n"));
        let tls_port = options.tls.map(|tls| {
            let port = free_port();
            config.push_str(&format!(
                "listener {port} 127.0.0.1\n\
                 cafile {}\n\
                 certfile {}\n\
                 keyfile {}\n\
                 require_certificate true\n",
                tls.ca.display(),
                tls.cert.display(),
                tls.key.display()
            ));
            port
        });
        let path = dir.join("mosquitto.conf");
        std::fs::write(&path, config).expect("cannot write mosquitto.conf");
        let mut command = Command::new(peer("mosquitto"));
        command.arg("-c").arg(&path);
        let mut proc = Proc::spawn("mosquitto", command);
        if options.log {
            proc.wait_stderr(TIMEOUT, |line| {
                line.contains("mosquitto version") && line.contains("running")
            });
        } else {
            wait_accepting(plain_port, TIMEOUT, "mosquitto");
        }
        MosquittoBroker { proc, plain_port, tls_port }
    }
}

/// haproxy terminating TLS in front of a plain MQTT port, requiring a client certificate and
/// ALPN `x-amzn-mqtt-ca` (a session without it is rejected after the handshake).
#[derive(Debug)]
pub struct Haproxy {
    /// The haproxy process (log on stderr).
    pub proc: Proc,
    /// Its TLS port (127.0.0.1).
    pub port: u16,
}

/// How [`Haproxy::start_alpn_front_with`] runs haproxy.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrontOptions {
    /// The TLS port on 127.0.0.1; `None` (the default) picks a free one.
    pub port: Option<u16>,
    /// `nbthread`; `None` (the default) leaves haproxy's own choice, one thread per core.
    pub threads: Option<u16>,
    /// Log nothing (`-q`, no `log`), for a bench; by default every session is logged on stderr.
    pub quiet: bool,
}

impl Haproxy {
    /// Writes `dir/haproxy.cfg` (and `dir/haproxy-server.pem`, certificate and key in one file
    /// as haproxy's `crt` wants them), starts haproxy in the foreground and waits until its port
    /// accepts.
    pub fn start_alpn_front(dir: &Path, tls: &ServerTls, backend_port: u16) -> Haproxy {
        Haproxy::start_alpn_front_with(dir, tls, backend_port, &FrontOptions::default())
    }

    /// Like [`Haproxy::start_alpn_front`], run as `options` say.
    ///
    /// # Panics
    /// When haproxy is not installed, refuses its configuration, or its port does not accept
    /// within [`TIMEOUT`].
    pub fn start_alpn_front_with(
        dir: &Path,
        tls: &ServerTls,
        backend_port: u16,
        options: &FrontOptions,
    ) -> Haproxy {
        let pem = dir.join("haproxy-server.pem");
        let mut both = std::fs::read(&tls.cert).expect("cannot read the server certificate");
        if !both.ends_with(b"\n") {
            both.push(b'\n');
        }
        both.extend(std::fs::read(&tls.key).expect("cannot read the server key"));
        std::fs::write(&pem, both).expect("cannot write haproxy-server.pem");
        let port = options.port.unwrap_or_else(free_port);
        let mut global = String::new();
        if !options.quiet {
            global.push_str("    log stderr format raw local0 info\n");
        }
        if let Some(threads) = options.threads {
            global.push_str(&format!("    nbthread {threads}\n"));
        }
        let log = if options.quiet { "" } else { "    log global\n    option tcplog\n" };
        let config = format!(
            "# Written by the iot443 interoperability suite: AWS IoT Core's port 443 rules.\n\
             global\n\
             {global}\
             defaults\n\
             \x20   mode tcp\n\
             {log}\
             \x20   timeout connect 5s\n\
             \x20   timeout client 120s\n\
             \x20   timeout server 120s\n\
             frontend iot\n\
             \x20   bind 127.0.0.1:{port} ssl crt {pem} ca-file {ca} verify required alpn {ALPN}\n\
             \x20   tcp-request session reject unless {{ ssl_fc_alpn -m str {ALPN} }}\n\
             \x20   default_backend mosquitto\n\
             backend mosquitto\n\
             \x20   server broker 127.0.0.1:{backend_port}\n",
            pem = pem.display(),
            ca = tls.ca.display(),
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).expect("cannot write haproxy.cfg");
        let mut check = Command::new(peer("haproxy"));
        check.arg("-c").arg("-f").arg(&path);
        let checked = Proc::run("haproxy -c", check, TIMEOUT);
        assert!(
            checked.status.success(),
            "haproxy refused its configuration:\n{}\n{}",
            checked.stdout_text(),
            checked.stderr_text()
        );
        let mut command = Command::new(peer("haproxy"));
        command.arg("-db");
        if options.quiet {
            command.arg("-q");
        }
        command.arg("-f").arg(&path);
        let proc = Proc::spawn("haproxy", command);
        wait_accepting(port, TIMEOUT, "haproxy");
        Haproxy { proc, port }
    }
}

/// A mosquitto broker with its own TLS listener, and haproxy in front of its plain listener
/// requiring ALPN `x-amzn-mqtt-ca`, with the certificates of an emulator PKI (no emulator runs).
#[derive(Debug)]
pub struct BrokerSetup {
    /// The PKI: CA, server certificate for localhost, device `device`.
    pub pki: Pki,
    /// The broker.
    pub mosquitto: MosquittoBroker,
    /// The ALPN-enforcing front.
    pub haproxy: Haproxy,
}

impl BrokerSetup {
    /// Creates the PKI in `dir/pki` and starts mosquitto and haproxy with their configurations
    /// in `dir`.
    pub fn start(dir: &Path) -> BrokerSetup {
        let pki = crate::emulator::pki_in(&dir.join("pki"));
        let tls = ServerTls::from_pki(&pki);
        let mosquitto = MosquittoBroker::start(dir, Some(&tls));
        let haproxy = Haproxy::start_alpn_front(dir, &tls, mosquitto.plain_port);
        BrokerSetup { pki, mosquitto, haproxy }
    }

    /// The port of mosquitto's own TLS listener (client certificate required, no ALPN).
    pub fn mosquitto_tls_port(&self) -> u16 {
        self.mosquitto.tls_port.expect("the broker was started with a TLS listener")
    }

    /// Writes an `iot443.toml` for the device `device` of the PKI at `path`.
    pub fn client_config(
        &self,
        path: &Path,
        port: u16,
        client_id: &str,
        alpn: Option<&str>,
    ) -> PathBuf {
        write_client_config(path, &self.pki.dir, port, client_id, alpn)
    }
}

/// Writes an `iot443.toml` at `path`: endpoint `localhost`, `port`, `client_id`, the CA and the
/// device `device` of the PKI in `pki_dir`, and `alpn` when given (iot443 offers
/// `x-amzn-mqtt-ca` by itself only on port 443).
pub fn write_client_config(
    path: &Path,
    pki_dir: &Path,
    port: u16,
    client_id: &str,
    alpn: Option<&str>,
) -> PathBuf {
    let mut text = format!(
        "# Written by the iot443 interoperability suite.\n\
         endpoint    = \"localhost\"\n\
         port        = {port}\n\
         client_id   = \"{client_id}\"\n\
         root_ca     = \"{}\"\n\
         certificate = \"{}\"\n\
         private_key = \"{}\"\n",
        pki_dir.join("ca.pem").display(),
        pki_dir.join("device.crt").display(),
        pki_dir.join("device.key").display(),
    );
    if let Some(alpn) = alpn {
        text.push_str(&format!("alpn        = \"{alpn}\"\n"));
    }
    std::fs::write(path, text).expect("cannot write iot443.toml");
    path.to_owned()
}

/// The connection flags of `mosquitto_pub`/`mosquitto_sub` for a TLS endpoint on localhost:
/// `-h localhost -p PORT --cafile CA [--cert C --key K] [--tls-alpn ALPN]`.
pub fn tls_flags(
    port: u16,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    alpn: Option<&str>,
) -> Vec<OsString> {
    let mut flags: Vec<OsString> =
        vec!["-h".into(), "localhost".into(), "-p".into(), port.to_string().into()];
    flags.push("--cafile".into());
    flags.push(ca.into());
    if let Some((cert, key)) = identity {
        flags.push("--cert".into());
        flags.push(cert.into());
        flags.push("--key".into());
        flags.push(key.into());
    }
    if let Some(alpn) = alpn {
        flags.push("--tls-alpn".into());
        flags.push(alpn.into());
    }
    flags
}

/// The flags for the emulator PKI in `dir` (its CA, the device `device`) and ALPN
/// `x-amzn-mqtt-ca`.
pub fn device_flags(dir: &Path, port: u16) -> Vec<OsString> {
    device_flags_with_alpn(dir, port, Some(ALPN))
}

/// Like [`device_flags`], offering `alpn` (or none).
pub fn device_flags_with_alpn(dir: &Path, port: u16, alpn: Option<&str>) -> Vec<OsString> {
    tls_flags(
        port,
        &dir.join("ca.pem"),
        Some((&dir.join("device.crt"), &dir.join("device.key"))),
        alpn,
    )
}

/// Runs `mosquitto_pub` with `args` to its end.
pub fn mosquitto_pub(args: impl IntoIterator<Item = impl Into<OsString>>) -> crate::Finished {
    let mut command = Command::new(peer("mosquitto_pub"));
    command.args(args.into_iter().map(Into::into));
    Proc::run("mosquitto_pub", command, TIMEOUT)
}

/// A message `mosquitto_sub` printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The topic.
    pub topic: String,
    /// The QoS it was delivered with.
    pub qos: u8,
    /// The retain flag.
    pub retain: bool,
    /// The payload (text).
    pub payload: String,
}

/// A running `mosquitto_sub`, subscribed (it printed its SUBACK) before [`MosquittoSub::start`]
/// returns.
#[derive(Debug)]
pub struct MosquittoSub {
    /// The process.
    pub proc: Proc,
}

/// The prefix of a message line (`-F`), which debug lines never start with.
const MESSAGE_PREFIX: &str = "MSG|";

impl MosquittoSub {
    /// Starts `mosquitto_sub -d -F … ARGS` and waits until it is subscribed. `-d` prints the
    /// SUBACK; `stdbuf -oL` makes it line-buffered on the pipe so that the line arrives when it
    /// is printed.
    pub fn start(args: impl IntoIterator<Item = impl Into<OsString>>) -> MosquittoSub {
        let mut command = Command::new(peer("stdbuf"));
        command
            .arg("-oL")
            .arg(peer("mosquitto_sub"))
            .arg("-d")
            .arg("-F")
            .arg(format!("{MESSAGE_PREFIX}%t|%q|%r|%p"))
            .args(args.into_iter().map(Into::into));
        let mut proc = Proc::spawn("mosquitto_sub", command);
        proc.wait_stdout(TIMEOUT, |line| line.starts_with("Subscribed (mid:"));
        MosquittoSub { proc }
    }

    /// Waits for the next message.
    pub fn next_message(&mut self) -> Received {
        let line = self.proc.wait_stdout(TIMEOUT, |line| line.starts_with(MESSAGE_PREFIX));
        parse_message(&line).unwrap_or_else(|| panic!("unexpected mosquitto_sub line {line:?}"))
    }
}

fn parse_message(line: &str) -> Option<Received> {
    let mut fields = line.strip_prefix(MESSAGE_PREFIX)?.splitn(4, '|');
    let topic = fields.next()?.to_owned();
    let qos = fields.next()?.parse().ok()?;
    let retain = fields.next()? == "1";
    let payload = fields.next()?.to_owned();
    Some(Received { topic, qos, retain, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_lines_are_parsed() {
        assert_eq!(
            parse_message("MSG|a/b/c|1|0|hello|world"),
            Some(Received {
                topic: "a/b/c".into(),
                qos: 1,
                retain: false,
                payload: "hello|world".into()
            })
        );
        assert_eq!(parse_message("Client (null) received SUBACK"), None);
    }
}
