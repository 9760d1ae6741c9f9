//! The endpoint every contender talks to: mosquitto behind an ALPN-enforcing haproxy, started
//! with `iot443-interop`'s helpers, and the flags each kind of client reaches it with.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use iot443_emulator::pki::{DeviceKeyKind, Pki, PkiOptions};
use iot443_interop::emulator::EmulatorProcess;
use iot443_interop::mosquitto::{self, mosquitto_pub};
use iot443_interop::net::free_port;
use iot443_interop::{ALPN, FrontOptions, Haproxy, MosquittoBroker, MosquittoOptions, ServerTls};

/// The host name every client connects to (the server certificate holds it).
pub(crate) const HOST: &str = "localhost";

/// mosquitto on a loopback port behind haproxy, which terminates TLS (client certificate
/// required) and refuses sessions that did not negotiate ALPN `x-amzn-mqtt-ca`. Both are killed
/// when dropped, haproxy first.
pub(crate) struct Endpoint {
    /// haproxy's TLS port on 127.0.0.1.
    pub(crate) port: u16,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// Folder the command-line clients run in (holds no iot443.toml).
    pub(crate) cwd: PathBuf,
    /// What it is, for the report.
    pub(crate) description: String,
    // Declared in the order they are dropped: the front before the broker behind it.
    _haproxy: Option<Haproxy>,
    _mosquitto: Option<MosquittoBroker>,
    _emulator: Option<EmulatorProcess>,
}

impl Endpoint {
    /// Creates (or loads) the PKI in `dir/pki` (device key RSA-2048, PKCS#1, as the AWS console
    /// hands them out), then starts mosquitto and haproxy with their configurations in `dir`.
    /// haproxy listens on `port`, else on 443 when it is free, else on a free port.
    ///
    /// # Panics
    /// When mosquitto or haproxy is missing or does not start (the message says what to
    /// install): see `iot443_interop::mosquitto`.
    pub(crate) fn start(dir: &Path, port: Option<u16>) -> Result<Endpoint, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let options = PkiOptions {
            device_key: DeviceKeyKind::Rsa2048,
            endpoint_port: Some(443),
            ..PkiOptions::default()
        };
        let pki =
            Pki::load_or_create(&dir.join("pki"), &options).map_err(|e| format!("PKI: {e}"))?;
        let (cert, key) = pki.device_paths("device");
        let cwd = dir.join("cwd");
        std::fs::create_dir_all(&cwd).map_err(|e| format!("{}: {e}", cwd.display()))?;

        let port = match port {
            Some(port) => port,
            None if TcpListener::bind(("127.0.0.1", 443)).is_ok() => 443,
            None => free_port(),
        };
        let server = ServerTls::from_pki(&pki);
        let broker = MosquittoOptions {
            max_queued_messages: 1_000_000,
            tcp_nodelay: true,
            log: false,
            ..MosquittoOptions::default()
        };
        let mosquitto = MosquittoBroker::start_with(dir, &broker);
        let front = FrontOptions { port: Some(port), threads: Some(1), quiet: true };
        let haproxy = Haproxy::start_alpn_front_with(dir, &server, mosquitto.plain_port, &front);
        Ok(Endpoint {
            port,
            ca: server.ca,
            cert,
            key,
            cwd,
            description: format!(
                "haproxy 127.0.0.1:{port} (TLS, client certificate required, ALPN {ALPN} \
                 required) → mosquitto on loopback"
            ),
            _haproxy: Some(haproxy),
            _mosquitto: Some(mosquitto),
            _emulator: None,
        })
    }

    /// The fast endpoint: the `iot443 emulator` process on its own (its ALPN listener on a free
    /// port, logging warnings only), with the same kind of PKI in `dir/emulator`. It
    /// acknowledges as soon as it has read a PUBLISH, so it shows the clients' own ceiling
    /// where haproxy + mosquitto cap them. `iot443`: the binary run as the emulator, the
    /// bench's release build (a debug build would be the limit).
    pub(crate) fn emulator(iot443: &Path, dir: &Path) -> Result<Endpoint, String> {
        let pki_dir = dir.join("emulator");
        let options = PkiOptions {
            device_key: DeviceKeyKind::Rsa2048,
            endpoint_port: Some(443),
            ..PkiOptions::default()
        };
        let pki = Pki::load_or_create(&pki_dir, &options).map_err(|e| format!("PKI: {e}"))?;
        let (cert, key) = pki.device_paths("device");
        let cwd = dir.join("cwd");
        std::fs::create_dir_all(&cwd).map_err(|e| format!("{}: {e}", cwd.display()))?;
        let emulator = EmulatorProcess::start_quiet(iot443, &pki_dir, &["--device-key", "rsa"]);
        let port = emulator.alpn_addr.port();
        Ok(Endpoint {
            port,
            ca: ServerTls::from_pki(&pki).ca,
            cert,
            key,
            cwd,
            description: format!(
                "the `iot443 emulator` process on 127.0.0.1:{port} (TLS, client certificate \
                 and ALPN {ALPN} required, as IoT Core's 443; two worker threads)"
            ),
            _haproxy: None,
            _mosquitto: None,
            _emulator: Some(emulator),
        })
    }

    /// `HOST PORT CA CERT KEY CLIENT_ID REST…`, the arguments of the scripts, the C peer and the
    /// in-process children after their mode.
    pub(crate) fn peer_args(&self, client_id: &str, rest: &[String]) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![HOST.into(), self.port.to_string().into()];
        args.extend([&self.ca, &self.cert, &self.key].map(|path| path.as_os_str().to_owned()));
        args.push(client_id.into());
        args.extend(rest.iter().map(OsString::from));
        args
    }

    /// The connection flags of `mosquitto_pub`, offering ALPN `x-amzn-mqtt-ca` when `alpn`.
    pub(crate) fn mosquitto_args(&self, client_id: &str, alpn: bool) -> Vec<OsString> {
        let mut args = self.tls_flags(alpn.then_some(ALPN));
        args.extend(["-i".into(), client_id.into()]);
        args
    }

    /// The connection flags of `iot443 pub` (the same as `mosquitto_pub`'s but `--alpn`, which
    /// it needs only on a port other than 443).
    pub(crate) fn iot443_args(&self, client_id: &str) -> Vec<OsString> {
        let mut args = self.tls_flags(None);
        args.extend(["-i".into(), client_id.into()]);
        if self.port != 443 {
            args.extend(["--alpn".into(), ALPN.into()]);
        }
        args
    }

    fn tls_flags(&self, alpn: Option<&str>) -> Vec<OsString> {
        mosquitto::tls_flags(self.port, &self.ca, Some((&self.cert, &self.key)), alpn)
    }

    /// A client offering no ALPN must be refused, and one offering it accepted: the endpoint
    /// behaves like IoT Core on 443.
    pub(crate) fn check_alpn_enforced(&self) -> Result<(), String> {
        let publish = |client_id: &str, alpn: bool| {
            let mut args = self.mosquitto_args(client_id, alpn);
            args.extend(["-t", "bench/t", "-m", "x"].map(OsString::from));
            mosquitto_pub(args)
        };
        if publish("bench-no-alpn", false).status.success() {
            return Err(
                "the endpoint accepted a client that offered no ALPN: check haproxy.cfg".into()
            );
        }
        let with_alpn = publish("bench-alpn", true);
        if !with_alpn.status.success() {
            return Err(format!(
                "mosquitto_pub with ALPN fails against the endpoint ({}): {}",
                with_alpn.status,
                with_alpn.stderr_text()
            ));
        }
        Ok(())
    }
}
