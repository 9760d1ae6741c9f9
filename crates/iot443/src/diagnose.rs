//! `iot443 doctor`: checks a [`Config`] step by step, from the files to a publish/subscribe
//! round trip, and says what a failure at each step usually means.
//!
//! The steps, in order ([`STEPS`]):
//!
//! 1. `config`: the configuration is complete (endpoint, port, files named);
//! 2. `files`: certificate and key parse, the key matches the certificate, expiry, key file
//!    permissions ([`Credentials::load`]);
//! 3. `dns`: the endpoint resolves;
//! 4. `tcp`: a TCP connection to the configured port;
//! 5. `tls`: the handshake with the configured ALPN (version, cipher suite, ALPN offered and
//!    selected, SNI, the server's chain);
//! 6. `mqtt`: CONNECT → CONNACK ([`Client::connect`]);
//! 7. `pubsub`: subscribe to `iot443/doctor/<client id>`, publish at QoS 1, receive it back.
//!
//! A failure stops the steps it makes meaningless: a bad configuration stops everything; bad
//! files still let `dns` and `tcp` run (they need no credentials) but nothing after; a network
//! failure stops the steps after it. Only the steps that ran are in the [`Report`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = iot443::Config::load("iot443.toml".as_ref())?;
//! let report = iot443::diagnose::diagnose(&config).await;
//! for step in &report.steps {
//!     println!("{} {}: {}", if step.ok { "✔" } else { "✘" }, step.name, step.detail);
//! }
//! # Ok(()) }
//! ```

use crate::client::{Client, Events};
use crate::config::{Config, ConfigError, CredentialWarning, Credentials};
use crate::error::ClientError;
use crate::message::Event;
use crate::tls;
use crate::tls_failure;
use iot443_proto::QoS;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The names of the steps, in the order they run. A step's position here is its index.
pub const STEPS: [&str; 7] = ["config", "files", "dns", "tcp", "tls", "mqtt", "pubsub"];

/// How long the TLS step waits after the handshake for the server to refuse the device
/// certificate (with TLS 1.3 the client finishes its handshake before the server checks it).
const REFUSAL_WINDOW: Duration = Duration::from_millis(300);

/// How long the `mqtt` step watches for the connection being closed right after CONNACK.
const CLOSE_WINDOW: Duration = Duration::from_millis(300);

/// The outcome of [`diagnose`]: the steps that ran, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One entry per step that ran; see [`STEPS`] for the order.
    pub steps: Vec<Step>,
}

impl Report {
    /// Whether every step that ran passed (the steps stop after a failure, so this also means
    /// that all of them ran).
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|step| step.ok)
    }

    /// The first failing step and its index in [`STEPS`].
    pub fn first_failure(&self) -> Option<(usize, &Step)> {
        self.steps.iter().find(|step| !step.ok).map(|step| (step.index(), step))
    }
}

/// One checked step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The step's name, one of [`STEPS`].
    pub name: &'static str,
    /// Whether it passed. A passing step may still carry a warning in `detail` (a certificate
    /// that expires within 30 days, a key file readable by others).
    pub ok: bool,
    /// What was found: addresses, TLS parameters, the error.
    pub detail: String,
    /// What a failure at this step usually means and what to do; `None` when it passed.
    pub hint: Option<String>,
}

impl Step {
    /// This step's index in [`STEPS`].
    pub fn index(&self) -> usize {
        STEPS.iter().position(|name| *name == self.name).unwrap_or(STEPS.len())
    }

    fn pass(name: &'static str, detail: impl Into<String>) -> Step {
        Step { name, ok: true, detail: detail.into(), hint: None }
    }

    fn fail(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Step {
        Step { name, ok: false, detail: detail.into(), hint: Some(hint.into()) }
    }
}

/// Runs the steps against `config` and reports each.
///
/// Every network step is bounded by `config.connect_timeout`. The `mqtt` and `pubsub` steps
/// connect with the configuration's client id, without its outbox and without reconnecting;
/// the connection is closed before returning.
pub async fn diagnose(config: &Config) -> Report {
    let mut steps = Vec::with_capacity(STEPS.len());

    let config_step = check_config(config);
    let config_ok = config_step.ok;
    steps.push(config_step);
    if !config_ok {
        return Report { steps };
    }

    let credentials = match check_files(config) {
        Ok((step, credentials)) => {
            steps.push(step);
            Some(credentials)
        }
        Err(step) => {
            steps.push(step);
            None
        }
    };

    let addrs = match check_dns(config).await {
        Ok((step, addrs)) => {
            steps.push(step);
            addrs
        }
        Err(step) => {
            steps.push(step);
            return Report { steps };
        }
    };

    let tcp = match check_tcp(config, &addrs).await {
        Ok((step, tcp)) => {
            steps.push(step);
            tcp
        }
        Err(step) => {
            steps.push(step);
            return Report { steps };
        }
    };

    // Without usable credentials no handshake is meaningful.
    let Some(credentials) = credentials else {
        return Report { steps };
    };

    let tls_step = check_tls(config, &credentials, tcp).await;
    let tls_ok = tls_step.ok;
    steps.push(tls_step);
    if !tls_ok {
        return Report { steps };
    }

    let mut diag_config = config.clone();
    diag_config.outbox = None;
    diag_config.message_expiry = None;
    diag_config.reconnect.enabled = false;
    let (client, mut events) = match check_mqtt(&diag_config).await {
        Ok((step, client, events)) => {
            steps.push(step);
            (client, events)
        }
        Err(step) => {
            steps.push(step);
            return Report { steps };
        }
    };

    steps.push(check_pubsub(&diag_config, &client, &mut events).await);
    let _ = tokio::time::timeout(config.connect_timeout, client.disconnect()).await;
    Report { steps }
}

/// The topic of the `pubsub` step: `iot443/doctor/<client id>`, with characters a topic cannot
/// hold (`+`, `#`, `/`) replaced by `_`.
pub fn test_topic(client_id: &str) -> String {
    let id: String =
        client_id.chars().map(|c| if matches!(c, '+' | '#' | '/') { '_' } else { c }).collect();
    format!("iot443/doctor/{id}")
}

fn check_config(config: &Config) -> Step {
    match config.validate() {
        Ok(()) => {
            let root_ca = match &config.root_ca {
                Some(path) => path.display().to_string(),
                None => "Mozilla roots (built in)".to_owned(),
            };
            Step::pass(
                "config",
                format!(
                    "endpoint {}, client id {:?}, certificate {}, key {}, root CA {}",
                    config.server_addr(),
                    config.client_id,
                    config.certificate.display(),
                    config.private_key.display(),
                    root_ca
                ),
            )
        }
        Err(error) => {
            let hint = match &error {
                ConfigError::MissingField { field, .. } => format!(
                    "add `{field}` to the configuration file (or pass it as a flag); `iot443 \
                     emulator` writes a complete iot443.toml for the local endpoint"
                ),
                _ => "fix the setting named above; see `iot443 --help` for the keys".to_owned(),
            };
            Step::fail("config", error.to_string(), hint)
        }
    }
}

fn check_files(config: &Config) -> Result<(Step, Credentials), Step> {
    match Credentials::load(config) {
        Ok(credentials) => {
            let mut detail = format!(
                "certificate {} valid until {}; key {} ({:?}) matches it",
                config.certificate.display(),
                date(credentials.not_after),
                credentials.key_kind,
                credentials.key_format
            );
            let permissions = credentials
                .warnings
                .iter()
                .any(|w| matches!(w, CredentialWarning::KeyReadableByOthers { .. }));
            if cfg!(unix) && !permissions {
                detail.push_str("; key file readable by its owner only");
            }
            for warning in &credentials.warnings {
                detail.push_str("; warning: ");
                detail.push_str(&warning.to_string());
            }
            Ok((Step::pass("files", detail), credentials))
        }
        Err(error) => {
            let hint = files_hint(config, &error);
            Err(Step::fail("files", error.to_string(), hint))
        }
    }
}

fn files_hint(config: &Config, error: &ConfigError) -> String {
    match error {
        ConfigError::CertificateExpired { .. } => {
            "the device certificate has expired: renew it (create a new certificate in AWS IoT \
             with the same policy and thing, replace the files), or fix the device clock"
                .to_owned()
        }
        ConfigError::CertificateNotYetValid { .. } => {
            "the device clock is probably behind: check `date -u`".to_owned()
        }
        ConfigError::KeyDoesNotMatchCertificate { .. } => format!(
            "the key file belongs to another certificate: use the key created together with {}",
            config.certificate.display()
        ),
        ConfigError::NoRootInFile { path } => format!(
            "unknown root file: {} holds no certificate; use AmazonRootCA1.pem, or remove \
             root_ca to use the built-in roots",
            path.display()
        ),
        ConfigError::BadCertificate { path, .. } if Some(path) == config.root_ca.as_ref() => {
            format!(
                "unknown root file: {} is not a usable root CA; use AmazonRootCA1.pem, or \
                 remove root_ca to use the built-in roots",
                path.display()
            )
        }
        ConfigError::BadCertificate { .. } | ConfigError::NoCertificateInFile { .. } => {
            "the certificate file is not the device certificate: use the xxxx-certificate.pem.crt \
             AWS IoT gave you"
                .to_owned()
        }
        ConfigError::NoPrivateKeyInFile { .. } => {
            "the key file holds no private key: use the xxxx-private.pem.key AWS IoT gave you"
                .to_owned()
        }
        ConfigError::UnsupportedKey { .. } => {
            "the key cannot be used: AWS IoT Core accepts RSA (2048 bits or more) and EC \
             P-256/P-384, unencrypted"
                .to_owned()
        }
        ConfigError::Io { path, .. } => {
            format!("{} cannot be read: check the path and its permissions", path.display())
        }
        _ => "fix the file named above".to_owned(),
    }
}

async fn check_dns(config: &Config) -> Result<(Step, Vec<SocketAddr>), Step> {
    let lookup = tokio::net::lookup_host((config.endpoint.as_str(), config.port));
    match tokio::time::timeout(config.connect_timeout, lookup).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                return Err(Step::fail(
                    "dns",
                    format!("{} has no address", config.endpoint),
                    dns_hint(),
                ));
            }
            let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            Ok((Step::pass("dns", format!("{} → {}", config.endpoint, list.join(", "))), addrs))
        }
        Ok(Err(error)) => Err(Step::fail(
            "dns",
            format!("cannot resolve {}: {error}", config.endpoint),
            dns_hint(),
        )),
        Err(_) => Err(Step::fail(
            "dns",
            format!("resolving {} timed out after {:?}", config.endpoint, config.connect_timeout),
            dns_hint(),
        )),
    }
}

fn dns_hint() -> String {
    "check the endpoint name (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`) and the \
     DNS settings of this network"
        .to_owned()
}

async fn check_tcp(config: &Config, addrs: &[SocketAddr]) -> Result<(Step, TcpStream), Step> {
    let timeout = config.connect_timeout;
    match tokio::time::timeout(timeout, TcpStream::connect(addrs)).await {
        Ok(Ok(tcp)) => {
            let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            let mut detail = format!("connected to {peer}");
            // The other AWS IoT Core port, as extra information.
            let other = match config.port {
                443 => Some(8883),
                8883 => Some(443),
                _ => None,
            };
            if let Some(other) = other {
                let others: Vec<SocketAddr> =
                    addrs.iter().map(|a| SocketAddr::new(a.ip(), other)).collect();
                let probe = tokio::time::timeout(
                    timeout.min(Duration::from_secs(2)),
                    TcpStream::connect(others.as_slice()),
                )
                .await;
                let state = match probe {
                    Ok(Ok(_)) => "open".to_owned(),
                    Ok(Err(error)) => format!("not reachable ({error})"),
                    Err(_) => "timed out (filtered?)".to_owned(),
                };
                detail.push_str(&format!("; port {other}: {state}"));
            }
            Ok((Step::pass("tcp", detail), tcp))
        }
        Ok(Err(error)) => {
            let hint = match error.kind() {
                io::ErrorKind::ConnectionRefused => {
                    "nothing listens there: check the endpoint and the port".to_owned()
                }
                _ => tcp_hint(config.port),
            };
            Err(Step::fail(
                "tcp",
                format!("cannot connect to {}: {error}", config.server_addr()),
                hint,
            ))
        }
        Err(_) => Err(Step::fail(
            "tcp",
            format!("connecting to {} timed out after {timeout:?}", config.server_addr()),
            tcp_hint(config.port),
        )),
    }
}

fn tcp_hint(port: u16) -> String {
    if port == 443 {
        "a firewall or proxy is blocking port 443 to this endpoint".to_owned()
    } else {
        format!(
            "a firewall may be dropping port {port}: try port 443 with ALPN x-amzn-mqtt-ca, which \
             firewalls usually let out"
        )
    }
}

async fn check_tls(config: &Config, credentials: &Credentials, tcp: TcpStream) -> Step {
    let tls_config = match tls::client_config(config, credentials) {
        Ok(tls_config) => tls_config,
        Err(error) => {
            return Step::fail("tls", error.to_string(), "the credentials cannot be used by TLS");
        }
    };
    let server_name = match tls::server_name(config) {
        Ok(name) => name,
        Err(error) => return Step::fail("tls", error.to_string(), "fix the endpoint name"),
    };
    let sni = match &server_name {
        rustls_pki_types::ServerName::DnsName(name) => format!("SNI {}", name.as_ref()),
        _ => "no SNI (the endpoint is an IP address)".to_owned(),
    };
    let offered = config.alpn_protocol().unwrap_or("none").to_owned();
    let connector = TlsConnector::from(Arc::clone(&tls_config));
    let handshake =
        tokio::time::timeout(config.connect_timeout, connector.connect(server_name, tcp)).await;
    let mut stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            let (detail, hint) = tls_failure(config, &error);
            return Step::fail("tls", format!("{detail}; ALPN offered {offered}, {sni}"), hint);
        }
        Err(_) => {
            return Step::fail(
                "tls",
                format!("the handshake timed out after {:?}", config.connect_timeout),
                "something between here and the endpoint swallows TLS (a proxy or a captive \
                 portal?)",
            );
        }
    };
    let summary = tls_summary(&stream, &offered, &sni);

    // With TLS 1.3 the server checks the device certificate after the client's handshake is
    // done: a refusal arrives as an alert on the first read.
    let mut byte = [0_u8; 1];
    match tokio::time::timeout(REFUSAL_WINDOW, stream.read(&mut byte)).await {
        Ok(Err(error)) => {
            let (detail, hint) = tls_failure(config, &error);
            Step::fail("tls", format!("{detail} after the handshake; {summary}"), hint)
        }
        Ok(Ok(0)) => Step::fail(
            "tls",
            format!("the server closed the connection right after the handshake; {summary}"),
            tls_failure::refused_certificate_hint(config),
        ),
        // Nothing to read (the server waits for CONNECT), or unexpected data: the handshake
        // itself is fine.
        Ok(Ok(_)) | Err(_) => Step::pass("tls", summary),
    }
}

/// Version, cipher suite, ALPN, SNI and the server's chain of an established connection.
fn tls_summary(stream: &TlsStream<TcpStream>, offered: &str, sni: &str) -> String {
    let (_, connection) = stream.get_ref();
    let version = connection
        .protocol_version()
        .map_or_else(|| "unknown version".to_owned(), tls_failure::version_name);
    let cipher = connection
        .negotiated_cipher_suite()
        .map(|suite| format!("{:?}", suite.suite()))
        .unwrap_or_default();
    let selected = connection
        .alpn_protocol()
        .map(|alpn| String::from_utf8_lossy(alpn).into_owned())
        .unwrap_or_else(|| "none".to_owned());
    let chain = connection
        .peer_certificates()
        .map(|certs| {
            certs
                .iter()
                .map(|cert| match x509_parser::parse_x509_certificate(cert) {
                    Ok((_, parsed)) => {
                        format!("subject {} issued by {}", parsed.subject(), parsed.issuer())
                    }
                    Err(_) => "(unparsable certificate)".to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" → ")
        })
        .unwrap_or_else(|| "none".to_owned());
    format!(
        "{version} {cipher}, ALPN offered {offered}, selected {selected}, {sni}; server chain: \
         {chain}"
    )
}

/// What a TLS error says, and what it usually means (the client's own explanation).
fn tls_failure(config: &Config, error: &io::Error) -> (String, String) {
    let explanation = tls_failure::explain(config, error);
    let hint = if explanation.hint.is_empty() {
        "the TLS handshake failed".to_owned()
    } else {
        explanation.hint
    };
    (explanation.detail, hint)
}

async fn check_mqtt(config: &Config) -> Result<(Step, Client, Events), Step> {
    match Client::connect(config).await {
        Ok((client, mut events)) => {
            let info = client.connection_info();
            let detail = format!(
                "CONNACK accepted client id {:?} ({}, session present: {})",
                config.client_id,
                info.summary(),
                info.session_present
            );
            // A connection closed right after CONNACK.
            let deadline = tokio::time::Instant::now() + CLOSE_WINDOW;
            while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
                if let Some(reason) = closed(&event) {
                    return Err(Step::fail(
                        "mqtt",
                        format!("CONNACK, then the connection was closed: {reason}"),
                        closed_hint(),
                    ));
                }
            }
            Ok((Step::pass("mqtt", detail), client, events))
        }
        Err(error) => {
            let hint = match &error {
                ClientError::Timeout { stage: "CONNACK", .. } => {
                    "TLS fine but no CONNACK → ALPN missing: on port 443 AWS IoT Core completes \
                     TLS without ALPN x-amzn-mqtt-ca and then never answers CONNECT"
                        .to_owned()
                }
                // The client's own advice for the refusal code.
                ClientError::ConnectionRefused { code, hint, .. } => {
                    match hint.strip_prefix("; ") {
                        Some(advice) => advice.to_owned(),
                        None => format!("CONNACK refusal {code}"),
                    }
                }
                ClientError::ConnectionLost { .. } | ClientError::Closed => closed_hint(),
                _ => "the MQTT connection failed".to_owned(),
            };
            Err(Step::fail("mqtt", error.to_string(), hint))
        }
    }
}

fn closed_hint() -> String {
    "CONNACK then immediate close → policy or duplicate client id: check that the policy allows \
     iot:Connect, iot:Subscribe, iot:Receive and iot:Publish, and that no other device uses \
     this client id"
        .to_owned()
}

/// Why the connection ended, when `event` says it did.
fn closed(event: &Event) -> Option<String> {
    match event {
        Event::Disconnected { reason } => Some(reason.clone()),
        Event::Reconnecting { cause, .. } => Some(cause.clone()),
        _ => None,
    }
}

async fn check_pubsub(config: &Config, client: &Client, events: &mut Events) -> Step {
    let topic = test_topic(&config.client_id);
    let timeout = config.connect_timeout;
    let round_trip = async {
        let mut subscription = client.subscribe(&topic, QoS::AtLeastOnce).await?;
        let payload = format!("iot443 doctor {}", std::process::id());
        client.publish(&topic, QoS::AtLeastOnce, payload.clone()).await?.await?;
        loop {
            match subscription.recv().await {
                Some(message) if message.payload.as_ref() == payload.as_bytes() => {
                    return Ok(());
                }
                Some(_) => continue,
                None => {
                    return Err(ClientError::ConnectionLost {
                        addr: config.server_addr(),
                        reason: "the subscription ended".to_owned(),
                    });
                }
            }
        }
    };
    let closed_event = async {
        loop {
            match events.recv().await {
                Some(event) => {
                    if let Some(reason) = closed(&event) {
                        return reason;
                    }
                }
                None => return "the client ended".to_owned(),
            }
        }
    };
    let outcome = tokio::time::timeout(timeout, async {
        tokio::select! {
            result = round_trip => result.map_err(|error| {
                let hint = match &error {
                    ClientError::SubscriptionRefused { .. } => {
                        "the policy does not allow iot:Subscribe on this topic".to_owned()
                    }
                    ClientError::ConnectionLost { .. } | ClientError::Closed => closed_hint(),
                    _ => "the publish/subscribe round trip failed".to_owned(),
                };
                (error.to_string(), hint)
            }),
            reason = closed_event => Err((
                format!("the connection was closed: {reason}"),
                closed_hint(),
            )),
        }
    })
    .await;
    match outcome {
        Ok(Ok(())) => Step::pass(
            "pubsub",
            format!("subscribed to {topic}, published at QoS 1 (PUBACK), received it back"),
        ),
        Ok(Err((detail, hint))) => Step::fail("pubsub", format!("{topic}: {detail}"), hint),
        Err(_) => Step::fail(
            "pubsub",
            format!("{topic}: the message did not come back within {timeout:?}"),
            "the policy probably does not allow iot:Receive (or iot:Publish) on this topic",
        ),
    }
}

/// A date as `2025-01-31`.
fn date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}
