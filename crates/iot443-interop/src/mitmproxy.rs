//! mitmproxy, a real TLS-intercepting proxy (the kind a corporate network puts between a device
//! and the internet), run as `mitmdump` from the peers' Python venv inside a test's own network
//! namespace.
//!
//! It listens as an explicit HTTP proxy (`CONNECT host:port`) on 127.0.0.1 in the namespace,
//! terminates the client's TLS with a certificate it issues itself for the requested host
//! (signed by its own CA, `mitmproxy-ca-cert.pem` in its configuration folder), and opens its
//! own TLS connection upstream, trusting the emulator's CA there. It has no device certificate
//! to present upstream: certificate authentication cannot pass it, which is the point.

use crate::TIMEOUT;
use crate::netns::Namespace;
use crate::process::Proc;
use std::path::{Path, PathBuf};

/// `mitmdump` running in a namespace; killed when dropped.
#[derive(Debug)]
pub struct Mitmproxy {
    /// The process; its stdout is mitmproxy's log (`client connect`, `TLS Error: …`).
    pub proc: Proc,
    /// Its port on 127.0.0.1 in the namespace.
    pub port: u16,
    /// The CA certificate it signs the certificates it presents with (PEM).
    pub ca_certificate: PathBuf,
}

impl Mitmproxy {
    /// The proxy's URL for `--proxy`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The `mitmdump` of the peers' venv, beside its Python.
///
/// # Panics
/// When it is not installed, with the command that installs it.
pub fn mitmdump() -> PathBuf {
    let python = crate::paths::peers_python();
    let program = python.with_file_name("mitmdump");
    assert!(
        program.is_file(),
        "peer missing: mitmproxy is not installed in the peers' venv ({} not found): run \
         .ci/install-peers",
        program.display()
    );
    program
}

impl Namespace {
    /// Starts `mitmdump` in the namespace as an explicit proxy on 127.0.0.1:`port`, with its
    /// configuration (and CA) in `dir`, trusting `upstream_ca` for the servers it connects to;
    /// waits until it listens.
    pub fn start_mitmproxy(&self, dir: &Path, port: u16, upstream_ca: &Path) -> Mitmproxy {
        let mut command = self.command(mitmdump());
        command.args(["--listen-host", "127.0.0.1", "--listen-port", &port.to_string()]);
        command.arg("--set").arg(format!("confdir={}", dir.display()));
        command
            .arg("--set")
            .arg(format!("ssl_verify_upstream_trusted_ca={}", upstream_ca.display()));
        // Nothing from the host's environment: no upstream proxy, no user configuration.
        for name in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"] {
            command.env_remove(name);
        }
        command.env("HOME", dir);
        let mut proc = Proc::spawn(format!("mitmdump in {}", self.name()), command);
        let listening = format!("HTTP(S) proxy listening at 127.0.0.1:{port}");
        proc.wait_stdout(TIMEOUT, |line| line.contains(&listening));
        let ca_certificate = dir.join("mitmproxy-ca-cert.pem");
        assert!(
            ca_certificate.is_file(),
            "mitmproxy did not write its CA certificate {}",
            ca_certificate.display()
        );
        Mitmproxy { proc, port, ca_certificate }
    }
}
