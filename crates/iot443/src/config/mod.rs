//! Where to connect and with which credentials: [`Config`], read from a TOML file, the `IOT443_*`
//! environment variables, a builder, or a C SDK `aws_iot_config.h`; and [`Credentials`], the
//! certificate, key and trust roots loaded and checked before any connection.
//!
//! Precedence, lowest first: the file, then the environment ([`Config::apply_env`]), then the
//! caller's own settings (command-line flags set the public fields and call [`Config::validate`]).
//! Relative paths in a file are relative to the file's folder.
//!
//! ```toml
//! endpoint    = "abc123-ats.iot.ap-northeast-1.amazonaws.com"
//! port        = 443                # 443: ALPN x-amzn-mqtt-ca · 8883: plain mutual TLS · "auto"
//! client_id   = "tls-test"
//! thing_name  = "tls-test"         # optional, defaults to client_id
//! root_ca     = "certs/rootCA.crt" # optional, defaults to the Mozilla roots (Amazon Root CA 1-4)
//! certificate = "certs/cert.pem"
//! private_key = "certs/privkey.pem"
//! # alpn = "x-amzn-mqtt-ca"        # optional override of the rule "ALPN exactly on port 443"
//! # keep_alive = 60                # seconds, 30..=1200 (AWS IoT Core's range)
//! # clean_session = true
//! # connect_timeout = 10           # seconds
//! # ack_timeout = 30               # seconds a PUBACK, SUBACK or UNSUBACK may take (0: no bound)
//! # proxy = "http://user:pass@proxy.example:3128"  # HTTP CONNECT proxy (http:// only)
//! # transport = "tls"              # "tls" (default) · "websocket" (SigV4) · "https" (pub only)
//! # region = "ap-northeast-1"      # SigV4 region; defaults to the endpoint's, then AWS_REGION
//! # aws_credentials = "aws-credentials"  # shared-credentials file used instead of the AWS chain
//! # websocket_max_age = 85800      # seconds a WebSocket connection lives (IoT Core allows 24 h)
//! ```
//!
//! # Transport
//!
//! `transport = "websocket"` ([`Transport::WebSocket`]) runs MQTT over `wss://endpoint/mqtt`,
//! signed with SigV4 from AWS credentials instead of a device certificate: `certificate` and
//! `private_key` are then not needed, `root_ca` still says whom to trust. The credentials and the
//! region are found as [`aws_credentials`] describes (`aws_credentials`, `region`).
//!
//! # Port
//!
//! Without a `port`, the client connects to 443 with ALPN `x-amzn-mqtt-ca`: the port every
//! firewall that lets HTTPS out leaves open, with no probe of other ports and nothing written
//! to disk. `port = "auto"` ([`AutoPort`]) races 8883 and 443 (8883 first, 443 250 ms later),
//! keeps the first to reach CONNACK and remembers it per endpoint in the user's state folder.
//!
//! # Proxy
//!
//! The client can tunnel through an HTTP proxy with `CONNECT endpoint:port` ([`ProxyConfig`]);
//! TLS with ALPN runs inside the tunnel exactly as without one. Which proxy, highest first:
//! `--proxy` on the command line (`--no-proxy` for none), `IOT443_PROXY`, the file's `proxy`
//! key, and last `HTTPS_PROXY`/`https_proxy`, which is used only when none of the others set a
//! proxy and `NO_PROXY`/`no_proxy` does not match the endpoint (as curl reads them:
//! comma-separated host suffixes, a leading dot allowed, `*` for every host). `NO_PROXY` applies
//! to `HTTPS_PROXY` only: an explicitly configured proxy is always used.

mod auto_port;
#[cfg(feature = "websocket")]
pub mod aws_credentials;
mod c_header;
mod credentials;
mod env;
mod error;
pub(crate) mod features;
mod proxy;
mod toml;
mod transport;

pub use auto_port::{AutoPort, InvalidPort, PortSetting};
#[cfg(feature = "websocket")]
pub use aws_credentials::{AwsCredentialsError, SigningIdentity};
pub use env::{ENV_VARS, env_var_for};
pub use error::ConfigError;
#[cfg(feature = "websocket")]
pub(crate) use error::utc_time;
pub use proxy::ProxyConfig;
pub use transport::{InvalidTransport, Transport};

#[cfg(feature = "websocket")]
pub(crate) use credentials::load_roots;
pub use credentials::{CredentialWarning, Credentials, KeyFormat, KeyKind};

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where to connect and with which credentials.
///
/// Build one with [`Config::builder`], [`Config::from_toml_file`], [`Config::from_c_sdk_header`]
/// or [`Config::load`]; layer the environment on top with [`Config::apply_env`]. Setting a public
/// field directly is allowed: call [`Config::validate`] afterwards. Files are only named here;
/// [`Credentials::load`] reads and checks them.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The endpoint's host name, e.g. `abc123-ats.iot.ap-northeast-1.amazonaws.com`
    /// (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`). Also sent as SNI and checked
    /// against the server certificate.
    pub endpoint: String,
    /// TCP port, 443 by default (ALPN `x-amzn-mqtt-ca`); 8883 is plain MQTT over mutual TLS.
    /// Not used when [`auto_port`](Config::auto_port) is set.
    pub port: u16,
    /// `port = "auto"`: race 8883 and 443 and remember the winner (see [`AutoPort`]); `None`
    /// (the default) connects to [`port`](Config::port).
    pub auto_port: Option<AutoPort>,
    /// The MQTT client identifier: 1 to 128 bytes, not starting with `$`.
    pub client_id: String,
    /// The thing name (for the shadow); [`Config::effective_thing_name`] falls back to the client id.
    pub thing_name: Option<String>,
    /// A PEM file of trust roots; `None` uses the Mozilla roots (webpki-roots), which contain
    /// Amazon Root CA 1-4.
    pub root_ca: Option<PathBuf>,
    /// The device certificate (PEM, optionally followed by intermediates). Not used (and may be
    /// empty) with [`Transport::WebSocket`].
    pub certificate: PathBuf,
    /// The device private key (PEM: PKCS#1 RSA, SEC1 EC or PKCS#8). Not used (and may be empty)
    /// with [`Transport::WebSocket`].
    pub private_key: PathBuf,
    /// ALPN protocol to offer instead of the default rule; see [`Config::alpn_protocol`].
    pub alpn: Option<String>,
    /// MQTT keep-alive, 30 s to 1200 s (AWS IoT Core's accepted range); 60 s by default.
    pub keep_alive: Duration,
    /// MQTT clean session; `true` by default.
    pub clean_session: bool,
    /// Time allowed for TCP connect, TLS handshake and CONNACK, each; 10 s by default.
    pub connect_timeout: Duration,
    /// How long a QoS 1 PUBLISH, a SUBSCRIBE or an UNSUBSCRIBE may wait for its
    /// acknowledgement; 30 s by default, zero for no bound. AWS IoT Core sends none for an
    /// operation it throttles: a PUBLISH left without PUBACK is sent again over a new connection
    /// (and counts towards its dead-letter limit), a SUBSCRIBE or UNSUBSCRIBE fails with
    /// [`ClientError::NotAcknowledged`](crate::ClientError::NotAcknowledged).
    pub ack_timeout: Duration,
    /// The file this configuration was read from, for messages.
    pub source: Option<PathBuf>,
    /// How to reconnect after the connection is lost.
    pub reconnect: crate::reconnect::ReconnectPolicy,
    /// Bounds of the queue of publishes made while disconnected.
    pub offline_queue: crate::offline_queue::OfflineQueue,
    /// A file (SQLite) where QoS 1 publishes are kept until acknowledged, across restarts.
    pub outbox: Option<PathBuf>,
    /// With an outbox: a QoS 1 message not acknowledged this long after `publish` is dropped
    /// and reported ([`ClientError::Expired`](crate::ClientError::Expired)) instead of sent
    /// late. `None` (the default): messages never expire.
    pub message_expiry: Option<Duration>,
    /// An HTTP proxy to tunnel through with `CONNECT` (see [the module docs](self#proxy) for
    /// where it comes from); `None` connects directly.
    pub proxy: Option<ProxyConfig>,
    /// The road to the endpoint: TLS with the device certificate (the default), a SigV4-signed
    /// WebSocket, or HTTPS publish.
    pub transport: Transport,
    /// The AWS region the WebSocket road signs for; `None` takes it from the endpoint's host
    /// name, then `AWS_REGION`, `AWS_DEFAULT_REGION` and the profile (see [`aws_credentials`]).
    pub region: Option<String>,
    /// A shared-credentials file whose `[default]` profile the WebSocket road signs with,
    /// instead of the AWS chain (environment, `~/.aws/credentials`, `~/.aws/config`).
    pub aws_credentials: Option<PathBuf>,
    /// The WebSocket road ends a connection this long after it opened and reconnects (signed
    /// anew), before AWS IoT Core's 24-hour limit; 23 h 50 min by default.
    pub websocket_max_age: Duration,
}

impl Config {
    /// The port used when none is given.
    pub const DEFAULT_PORT: u16 = 443;
    /// The ALPN protocol AWS IoT Core requires for MQTT with client certificates on port 443.
    pub const ALPN_MQTT_CA: &'static str = "x-amzn-mqtt-ca";
    /// Keep-alive used when none is given.
    pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(60);
    /// The keep-alive range AWS IoT Core accepts.
    pub const KEEP_ALIVE_RANGE: std::ops::RangeInclusive<Duration> =
        Duration::from_secs(30)..=Duration::from_secs(1200);
    /// Connect timeout used when none is given.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Acknowledgement timeout used when none is given ([`Config::ack_timeout`]).
    pub const DEFAULT_ACK_TIMEOUT: Duration = iot443_proto::session::DEFAULT_ACK_TIMEOUT;
    /// How long a WebSocket connection lives when nothing else is set ([`Config::websocket_max_age`]):
    /// ten minutes short of AWS IoT Core's 24 hours.
    pub const DEFAULT_WEBSOCKET_MAX_AGE: Duration = Duration::from_secs(23 * 3600 + 50 * 60);

    /// Starts a configuration for the WebSocket road ([`Transport::WebSocket`]): no certificate
    /// or key, SigV4 credentials found at every connect (see [`aws_credentials`]).
    ///
    /// ```
    /// # #[cfg(feature = "websocket")]
    /// # fn main() -> Result<(), iot443::config::ConfigError> {
    /// # use iot443::config::{Config, Transport};
    /// let config = Config::websocket_builder("abc123-ats.iot.eu-west-1.amazonaws.com", "dev")
    ///     .build()?;
    /// assert_eq!(config.transport, Transport::WebSocket);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "websocket"))]
    /// # fn main() {}
    /// ```
    ///
    /// Without the cargo feature `websocket`, `build` fails with
    /// [`ConfigError::FeatureDisabled`].
    pub fn websocket_builder(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
    ) -> ConfigBuilder {
        Config::builder(endpoint, client_id, PathBuf::new(), PathBuf::new())
            .transport(Transport::WebSocket)
    }

    /// Starts a configuration from the four settings that have no default.
    ///
    /// ```
    /// # use iot443::config::Config;
    /// let config = Config::builder(
    ///     "abc123-ats.iot.ap-northeast-1.amazonaws.com",
    ///     "tls-test",
    ///     "certs/cert.pem",
    ///     "certs/privkey.pem",
    /// )
    /// .root_ca("certs/rootCA.crt")
    /// .build()?;
    /// assert_eq!(config.alpn_protocol(), Some("x-amzn-mqtt-ca"));
    /// # Ok::<(), iot443::config::ConfigError>(())
    /// ```
    pub fn builder(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        certificate: impl Into<PathBuf>,
        private_key: impl Into<PathBuf>,
    ) -> ConfigBuilder {
        ConfigBuilder {
            config: Config {
                endpoint: endpoint.into(),
                port: Self::DEFAULT_PORT,
                auto_port: None,
                client_id: client_id.into(),
                thing_name: None,
                root_ca: None,
                certificate: certificate.into(),
                private_key: private_key.into(),
                alpn: None,
                keep_alive: Self::DEFAULT_KEEP_ALIVE,
                clean_session: true,
                connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
                ack_timeout: Self::DEFAULT_ACK_TIMEOUT,
                source: None,
                reconnect: crate::reconnect::ReconnectPolicy::default(),
                offline_queue: crate::offline_queue::OfflineQueue::default(),
                outbox: None,
                message_expiry: None,
                proxy: None,
                transport: Transport::Tls,
                region: None,
                aws_credentials: None,
                websocket_max_age: Self::DEFAULT_WEBSOCKET_MAX_AGE,
            },
        }
    }

    /// Reads a configuration file: a C SDK header when its name ends in `.h` (certificates in
    /// the default folder, see [`Config::from_c_sdk_header`]), TOML otherwise.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        if Config::is_c_sdk_header(path) {
            Config::from_c_sdk_header(path, None)
        } else {
            Config::from_toml_file(path)
        }
    }

    /// Whether [`Config::load`] reads `path` as a C SDK header (its name ends in `.h`).
    pub fn is_c_sdk_header(path: &Path) -> bool {
        path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("h"))
    }

    /// The ALPN protocol offered in the TLS ClientHello: [`Config::alpn`] when set, else
    /// `x-amzn-mqtt-ca` exactly when the port is 443, else none. (The WebSocket road offers
    /// `http/1.1` whatever this says.)
    pub fn alpn_protocol(&self) -> Option<&str> {
        match &self.alpn {
            Some(alpn) => Some(alpn),
            None if self.port == 443 => Some(Self::ALPN_MQTT_CA),
            None => None,
        }
    }

    /// The thing name, or the client id when no thing name is set (as the C SDK samples do).
    pub fn effective_thing_name(&self) -> &str {
        self.thing_name.as_deref().unwrap_or(&self.client_id)
    }

    /// `host:port`, for messages (IPv6 literals in brackets).
    pub fn server_addr(&self) -> String {
        if self.endpoint.contains(':') {
            format!("[{}]:{}", self.endpoint, self.port)
        } else {
            format!("{}:{}", self.endpoint, self.port)
        }
    }

    /// Checks every setting; errors name the file the configuration came from, if any.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let origin = self.origin();
        let check = |field: &'static str, result: Result<(), String>| {
            result.map_err(|message| ConfigError::InvalidValue {
                origin: origin.clone(),
                field,
                message,
            })
        };
        check("endpoint", check_endpoint(&self.endpoint))?;
        check("port", check_port(self.port))?;
        if let Some(auto) = &self.auto_port {
            check("port", check_port(auto.mqtts_port))?;
            check("port", check_port(auto.alpn_port))?;
        }
        check("client_id", check_client_id(&self.client_id))?;
        if let Some(thing_name) = &self.thing_name {
            check("thing_name", check_thing_name(thing_name))?;
        }
        if let Some(root_ca) = &self.root_ca {
            check("root_ca", check_path(root_ca))?;
        }
        if self.transport != Transport::WebSocket {
            check("certificate", check_path(&self.certificate))?;
            check("private_key", check_path(&self.private_key))?;
        }
        if let Some(region) = &self.region {
            check("region", check_region(region))?;
        }
        if let Some(path) = &self.aws_credentials {
            check("aws_credentials", check_path(path))?;
        }
        if self.websocket_max_age.is_zero() {
            check("websocket_max_age", Err("zero: use e.g. 23 h 50 min".to_owned()))?;
        }
        if let Some(alpn) = &self.alpn {
            check("alpn", check_alpn(alpn))?;
        }
        check("keep_alive", check_keep_alive(self.keep_alive))?;
        check("connect_timeout", check_connect_timeout(self.connect_timeout))?;
        features::check(self)
    }

    /// How errors name where this configuration came from.
    pub(crate) fn origin(&self) -> String {
        match &self.source {
            Some(path) => path.display().to_string(),
            None => "the configuration".to_owned(),
        }
    }
}

/// Builds a [`Config`]; start with [`Config::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// TCP port (default 443); turns [`auto_port`](ConfigBuilder::auto_port) off.
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self.config.auto_port = None;
        self
    }

    /// `port = "auto"`: race the ports of `auto` instead of connecting to one port.
    pub fn auto_port(mut self, auto: AutoPort) -> Self {
        self.config.auto_port = Some(auto);
        self
    }

    /// Thing name (default: the client id).
    pub fn thing_name(mut self, thing_name: impl Into<String>) -> Self {
        self.config.thing_name = Some(thing_name.into());
        self
    }

    /// Trust roots from this PEM file instead of the Mozilla roots.
    pub fn root_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.root_ca = Some(path.into());
        self
    }

    /// Offers this ALPN protocol whatever the port.
    pub fn alpn(mut self, protocol: impl Into<String>) -> Self {
        self.config.alpn = Some(protocol.into());
        self
    }

    /// MQTT keep-alive, 30 s to 1200 s (default 60 s).
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.config.keep_alive = keep_alive;
        self
    }

    /// MQTT clean session (default `true`).
    pub fn clean_session(mut self, clean_session: bool) -> Self {
        self.config.clean_session = clean_session;
        self
    }

    /// Time allowed for each of TCP connect, TLS handshake and CONNACK (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// How long an acknowledgement may take (default 30 s; zero: no bound); see
    /// [`Config::ack_timeout`].
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.config.ack_timeout = timeout;
        self
    }

    /// The file these settings came from, for messages.
    pub fn source(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.source = Some(path.into());
        self
    }

    /// Keeps QoS 1 publishes in this SQLite file until acknowledged, across restarts.
    pub fn outbox(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.outbox = Some(path.into());
        self
    }

    /// With an outbox, drops QoS 1 messages not acknowledged within `expiry`.
    pub fn message_expiry(mut self, expiry: Duration) -> Self {
        self.config.message_expiry = Some(expiry);
        self
    }

    /// Tunnels through this HTTP proxy (see [`ProxyConfig::parse`]).
    pub fn proxy(mut self, proxy: ProxyConfig) -> Self {
        self.config.proxy = Some(proxy);
        self
    }

    /// The road to the endpoint (default [`Transport::Tls`]).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.config.transport = transport;
        self
    }

    /// The AWS region the WebSocket road signs for (default: the endpoint's).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = Some(region.into());
        self
    }

    /// Signs the WebSocket road with the `[default]` profile of this shared-credentials file
    /// instead of the AWS chain.
    pub fn aws_credentials(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.aws_credentials = Some(path.into());
        self
    }

    /// How long a WebSocket connection may live before it is renewed (default 23 h 50 min).
    pub fn websocket_max_age(mut self, age: Duration) -> Self {
        self.config.websocket_max_age = age;
        self
    }

    /// Sets the reconnect policy.
    pub fn reconnect(mut self, policy: crate::reconnect::ReconnectPolicy) -> Self {
        self.config.reconnect = policy;
        self
    }

    /// Checks the settings ([`Config::validate`]) and returns the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

// Field checks shared by the builder, the TOML and header readers and the environment layer.
// Each returns what is wrong and what to do; the caller adds where the value came from.

fn check_endpoint(endpoint: &str) -> Result<(), String> {
    if endpoint.is_empty() {
        return Err("the endpoint is empty; get it with `aws iot describe-endpoint \
                    --endpoint-type iot:Data-ATS`"
            .to_owned());
    }
    if endpoint.contains("://") || endpoint.contains('/') {
        return Err(format!(
            "{endpoint:?} is not a host name: remove the scheme and any path, e.g. \
             abc123-ats.iot.ap-northeast-1.amazonaws.com"
        ));
    }
    let port_suffix = endpoint.rsplit_once(':').map(|(_, port)| port);
    if endpoint.matches(':').count() == 1
        && port_suffix.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "{endpoint:?} contains a port: give the host name alone and the port in `port`"
        ));
    }
    rustls_pki_types::ServerName::try_from(endpoint).map(drop).map_err(|_| {
        format!(
            "{endpoint:?} is neither a valid DNS name nor an IP address, e.g. \
             abc123-ats.iot.ap-northeast-1.amazonaws.com"
        )
    })
}

fn check_port(port: u16) -> Result<(), String> {
    if port == 0 {
        return Err("0 is not a usable port: use 443 (ALPN x-amzn-mqtt-ca) or 8883".to_owned());
    }
    Ok(())
}

fn check_client_id(client_id: &str) -> Result<(), String> {
    if client_id.is_empty() {
        return Err("the client id is empty: use 1 to 128 bytes, e.g. the thing name".to_owned());
    }
    if client_id.len() > 128 {
        return Err(format!(
            "the client id is {} bytes long; AWS IoT Core accepts at most 128",
            client_id.len()
        ));
    }
    if client_id.starts_with('$') {
        return Err(format!(
            "{client_id:?} starts with `$`, which AWS IoT Core reserves for its own client ids"
        ));
    }
    if client_id.contains('\0') {
        return Err("the client id contains a NUL character".to_owned());
    }
    Ok(())
}

fn check_thing_name(thing_name: &str) -> Result<(), String> {
    let valid_chars =
        thing_name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'));
    if thing_name.is_empty() || thing_name.len() > 128 || !valid_chars {
        return Err(format!(
            "{thing_name:?} is not a thing name: use 1 to 128 characters among a-z A-Z 0-9 : _ -"
        ));
    }
    Ok(())
}

fn check_path(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("the file name is empty".to_owned());
    }
    Ok(())
}

fn check_alpn(alpn: &str) -> Result<(), String> {
    if alpn.is_empty() || alpn.len() > 255 {
        return Err(format!(
            "{alpn:?} is not an ALPN protocol name: use 1 to 255 bytes, e.g. x-amzn-mqtt-ca"
        ));
    }
    Ok(())
}

fn check_region(region: &str) -> Result<(), String> {
    let valid = !region.is_empty()
        && region.len() <= 64
        && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!("{region:?} is not an AWS region name, e.g. eu-west-1"));
    }
    Ok(())
}

fn check_keep_alive(keep_alive: Duration) -> Result<(), String> {
    if !Config::KEEP_ALIVE_RANGE.contains(&keep_alive) {
        return Err(format!(
            "{} s is outside the range AWS IoT Core accepts: use 30 to 1200 seconds",
            keep_alive.as_secs_f64()
        ));
    }
    Ok(())
}

fn check_connect_timeout(timeout: Duration) -> Result<(), String> {
    if timeout.is_zero() {
        return Err("the connect timeout is zero: use a few seconds, e.g. 10".to_owned());
    }
    Ok(())
}
