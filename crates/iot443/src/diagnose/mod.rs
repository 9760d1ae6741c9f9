//! `iot443 doctor`: checks a [`Config`] step by step, from the files to a publish/subscribe
//! round trip, and says what a failure at each step usually means.
//!
//! The steps, in order ([`STEPS`]):
//!
//! 1. `config`: the configuration is complete (endpoint, port, files named);
//! 2. `files`: certificate and key parse, the key matches the certificate, expiry, key file
//!    permissions ([`Credentials::load`]);
//! 3. `dns`: the endpoint resolves (through a proxy: the proxy's host);
//! 4. `tcp`: a TCP connection (through a proxy: a `CONNECT` tunnel) to the configured port and,
//!    for information, to AWS IoT Core's other port (443 ↔ 8883); with `port = "auto"` to both
//!    ports of the race, either one being enough;
//! 5. `tls`: the handshake on each port that TCP reached, with ALPN `x-amzn-mqtt-ca` on 443 and
//!    none on 8883 (version, cipher suite, ALPN offered and selected, SNI, the server's chain
//!    and the root it ends at);
//! 6. `mqtt`: CONNECT → CONNACK ([`Client::connect`]);
//! 7. `pubsub`: subscribe to `iot443/doctor/<client id>`, publish at QoS 1, receive it back;
//! 8. `roads`: every road through port 443 in turn, whatever the configuration chose: MQTT over
//!    TLS with the certificate, MQTT over WebSocket with SigV4 (when AWS credentials can be
//!    found), HTTPS publish; passes when one of them works.
//!
//! With `transport = "websocket"`, `files` checks that AWS credentials and a region are found
//! instead of the device certificate, and there is no `tls` step (the WebSocket road's TLS and
//! upgrade are part of `mqtt`).
//!
//! A failure stops the steps it makes meaningless: a bad configuration stops everything; bad
//! files still let `dns` and `tcp` run (they need no credentials) but nothing after; a network
//! failure stops the steps after it. Whenever `dns` passed, `roads` runs last all the same, so
//! that a certificate road stopped by a TLS-inspecting proxy is reported next to the roads that
//! do get through. Only the steps that ran are in the [`Report`].
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

mod network;
mod roads;

use crate::client::{Client, Events};
use crate::config::{Config, ConfigError, CredentialWarning, Credentials};
use crate::error::ClientError;
use crate::message::Event;
use iot443_proto::QoS;
use std::time::Duration;

/// The names of the steps, in the order they run. A step's position here is its index.
pub const STEPS: [&str; 8] = ["config", "files", "dns", "tcp", "tls", "mqtt", "pubsub", "roads"];

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

    if config.transport == crate::config::Transport::WebSocket {
        return diagnose_websocket(config, steps).await;
    }

    // The files are read on the blocking pool: a slow disk never stalls the runtime.
    let owned = config.clone();
    let files =
        tokio::task::spawn_blocking(move || check_files(&owned)).await.unwrap_or_else(|error| {
            Err(Step::fail(
                "files",
                format!("reading the credential files did not finish: {error}"),
                "run the doctor again".to_owned(),
            ))
        });
    let credentials = match files {
        Ok((step, credentials)) => {
            steps.push(step);
            Some(credentials)
        }
        Err(step) => {
            steps.push(step);
            None
        }
    };

    let Some(addrs) = dns_step(config, &mut steps).await else {
        return Report { steps };
    };
    let files_ok = credentials.is_some();
    connection_steps(config, credentials, &addrs, &mut steps).await;
    let no_certificate = (!files_ok).then_some("the files step failed");
    steps.push(roads::check_roads(config, no_certificate).await);
    Report { steps }
}

/// The `dns` step, pushed to `steps`; the addresses, or `None` when the name does not resolve
/// (then nothing after it can run).
async fn dns_step(config: &Config, steps: &mut Vec<Step>) -> Option<Vec<std::net::SocketAddr>> {
    let (step, addrs) = match network::check_dns(config).await {
        Ok((step, addrs)) => (step, Some(addrs)),
        Err(step) => (step, None),
    };
    steps.push(step);
    addrs
}

/// The steps for `transport = "websocket"`: `files` checks that AWS credentials and a region
/// are found (no device certificate is used), `tls` is left out (the WebSocket road's TLS has
/// no client certificate; `mqtt` includes it and the upgrade), then `dns`, `tcp`, `mqtt`,
/// `pubsub` and `roads` as on the certificate road.
async fn diagnose_websocket(config: &Config, mut steps: Vec<Step>) -> Report {
    let files = match crate::connect::websocket::find_identity(config).await {
        Ok(identity) => Step::pass(
            "files",
            format!(
                "WebSocket road (SigV4, no device certificate): access key {} from {}, region \
                 {} from {}",
                identity.credentials.access_key_id(),
                identity.credentials_from,
                identity.region,
                identity.region_from
            ),
        ),
        Err(why) => Step::fail(
            "files",
            why,
            "the WebSocket road signs with AWS credentials: set them as the message says (or \
             aws_credentials = \"FILE\"), and the region",
        ),
    };
    let files_ok = files.ok;
    steps.push(files);
    let Some(addrs) = dns_step(config, &mut steps).await else {
        return Report { steps };
    };
    // The certificate roads only when certificate files are named.
    let no_certificate =
        config.certificate.as_os_str().is_empty().then_some("no device certificate is configured");
    match network::check_tcp(config, &addrs).await {
        Ok((step, _)) => steps.push(step),
        Err(step) => {
            steps.push(step);
            steps.push(roads::check_roads(config, no_certificate).await);
            return Report { steps };
        }
    }
    if files_ok {
        session_steps(config, &mut steps).await;
    }
    steps.push(roads::check_roads(config, no_certificate).await);
    Report { steps }
}

/// `tcp`, `tls`, `mqtt` and `pubsub`, each only when the one before passed; the connection of
/// `mqtt` and `pubsub` is closed before returning.
async fn connection_steps(
    config: &Config,
    credentials: Option<Credentials>,
    addrs: &[std::net::SocketAddr],
    steps: &mut Vec<Step>,
) {
    let open = match network::check_tcp(config, addrs).await {
        Ok((step, open)) => {
            steps.push(step);
            open
        }
        Err(step) => {
            steps.push(step);
            return;
        }
    };

    // Without usable credentials no handshake is meaningful.
    let Some(credentials) = credentials else {
        return;
    };

    let tls_step = network::check_tls(&credentials, open).await;
    let tls_ok = tls_step.ok;
    steps.push(tls_step);
    if !tls_ok {
        return;
    }

    session_steps(config, steps).await;
}

/// `mqtt`, then `pubsub` when it passed, on one connection (without the outbox, without
/// reconnecting), closed before returning.
async fn session_steps(config: &Config, steps: &mut Vec<Step>) {
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
            return;
        }
    };
    steps.push(check_pubsub(&diag_config, &client, &mut events).await);
    let _ = tokio::time::timeout(config.connect_timeout, client.disconnect()).await;
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
            let endpoint = match &config.auto_port {
                Some(auto) => format!(
                    "{} port auto ({}, then {} with ALPN)",
                    config.endpoint, auto.mqtts_port, auto.alpn_port
                ),
                None => config.server_addr(),
            };
            Step::pass(
                "config",
                format!(
                    "endpoint {endpoint}, client id {:?}, certificate {}, key {}, root CA {}",
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
                    return Err(ClientError::lost(
                        config.server_addr(),
                        "the subscription ended".to_owned(),
                    ));
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
