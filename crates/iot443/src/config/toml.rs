//! The TOML configuration file (format in the [module docs](super)).

use super::{Config, ConfigError, PortSetting};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Value;

/// Every key a configuration file may hold, in the documented order.
pub(super) const KNOWN_KEYS: &[&str] = &[
    "endpoint",
    "port",
    "client_id",
    "thing_name",
    "root_ca",
    "certificate",
    "private_key",
    "alpn",
    "keep_alive",
    "clean_session",
    "connect_timeout",
    "ack_timeout",
    "proxy",
    "transport",
    "region",
    "aws_credentials",
    "websocket_max_age",
];

/// How [`Config::from_toml_str`] names its input in errors.
const INLINE_NAME: &str = "<TOML text>";

impl Config {
    /// Reads a TOML configuration file; relative paths in it are relative to its folder.
    ///
    /// Unknown keys are an error (a misspelt key would otherwise be ignored silently).
    pub fn from_toml_file(path: &Path) -> Result<Config, ConfigError> {
        Config::from_toml_file_with(path, |_| None)
    }

    /// Like [`Config::from_toml_file`], where a required key the file lacks (`endpoint`,
    /// `client_id`, `certificate`, `private_key`) may come from `supplied(key)`: a command-line
    /// flag or an environment variable that overrides it anyway. So may `transport` (with
    /// `websocket`, `certificate` and `private_key` are not required). Supplied paths are used as
    /// given (relative to the working directory).
    ///
    /// ```
    /// # use iot443::config::Config;
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("iot443.toml");
    /// std::fs::write(&path, "client_id = \"dev\"\ncertificate = \"c.pem\"\nprivate_key = \"k.pem\"\n")?;
    /// let config = Config::from_toml_file_with(&path, |key| {
    ///     (key == "endpoint").then(|| "abc123-ats.iot.eu-west-1.amazonaws.com".to_owned())
    /// })?;
    /// assert_eq!(config.endpoint, "abc123-ats.iot.eu-west-1.amazonaws.com");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_toml_file_with(
        path: &Path,
        supplied: impl Fn(&'static str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source: std::sync::Arc::new(source),
        })?;
        let base_dir = path.parent().unwrap_or_else(|| Path::new(""));
        parse(&text, base_dir, path, Some(path), &supplied)
    }

    /// Parses TOML text; relative paths are resolved against `base_dir`. Errors name the input
    /// `<TOML text>`.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        parse(text, base_dir, Path::new(INLINE_NAME), None, &|_| None)
    }
}

/// Reads the settings of `text`; `name` is how errors call the input, `source` is the file.
fn parse(
    text: &str,
    base_dir: &Path,
    name: &Path,
    source: Option<&Path>,
    supplied: &dyn Fn(&'static str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Toml {
        path: name.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let origin = name.display().to_string();
    let reader = Reader { origin: &origin, base_dir };

    let mut fields = Fields::default();
    for (key, value) in &table {
        match key.as_str() {
            "endpoint" => fields.endpoint = Some(reader.string("endpoint", value)?),
            "port" => fields.port = Some(reader.port(value)?),
            "client_id" => fields.client_id = Some(reader.string("client_id", value)?),
            "thing_name" => fields.thing_name = Some(reader.string("thing_name", value)?),
            "root_ca" => fields.root_ca = Some(reader.path("root_ca", value)?),
            "certificate" => fields.certificate = Some(reader.path("certificate", value)?),
            "private_key" => fields.private_key = Some(reader.path("private_key", value)?),
            "alpn" => fields.alpn = Some(reader.string("alpn", value)?),
            "keep_alive" => fields.keep_alive = Some(reader.seconds("keep_alive", value)?),
            "clean_session" => fields.clean_session = Some(reader.boolean("clean_session", value)?),
            "connect_timeout" => {
                fields.connect_timeout = Some(reader.seconds("connect_timeout", value)?)
            }
            "ack_timeout" => fields.ack_timeout = Some(reader.seconds("ack_timeout", value)?),
            "proxy" => {
                let url = reader.string("proxy", value)?;
                fields.proxy =
                    Some(super::ProxyConfig::parse(&url).map_err(|m| reader.invalid("proxy", m))?);
            }
            "transport" => {
                let name = reader.string("transport", value)?;
                fields.transport = Some(
                    name.parse::<super::Transport>()
                        .map_err(|e| reader.invalid("transport", e.to_string()))?,
                );
            }
            "region" => fields.region = Some(reader.string("region", value)?),
            "aws_credentials" => {
                fields.aws_credentials = Some(reader.path("aws_credentials", value)?)
            }
            "websocket_max_age" => {
                fields.websocket_max_age = Some(reader.seconds("websocket_max_age", value)?)
            }
            "outbox" => fields.outbox = Some(reader.path("outbox", value)?),
            "message_expiry" => {
                fields.message_expiry = Some(reader.seconds("message_expiry", value)?)
            }
            _ => return Err(ConfigError::UnknownKey { path: name.to_owned(), key: key.clone() }),
        }
    }

    let missing = |field: &'static str| ConfigError::MissingField { origin: origin.clone(), field };
    // The WebSocket road signs with AWS credentials: no certificate or key is needed.
    if fields.transport.is_none() {
        fields.transport = supplied("transport").and_then(|name| name.parse().ok());
    }
    let websocket = fields.transport == Some(super::Transport::WebSocket);
    let not_needed = |field: &'static str| {
        if websocket { Ok(PathBuf::new()) } else { Err(missing(field)) }
    };
    let mut builder = Config::builder(
        fields.endpoint.or_else(|| supplied("endpoint")).ok_or_else(|| missing("endpoint"))?,
        fields.client_id.or_else(|| supplied("client_id")).ok_or_else(|| missing("client_id"))?,
        fields
            .certificate
            .or_else(|| supplied("certificate").map(PathBuf::from))
            .map_or_else(|| not_needed("certificate"), Ok)?,
        fields
            .private_key
            .or_else(|| supplied("private_key").map(PathBuf::from))
            .map_or_else(|| not_needed("private_key"), Ok)?,
    );
    // The builder's checks name the file: give it the name even for inline text.
    builder = builder.source(source.unwrap_or(name));
    match fields.port {
        Some(PortSetting::Fixed(port)) => builder = builder.port(port),
        Some(PortSetting::Auto) => builder = builder.auto_port(super::AutoPort::default()),
        None => {}
    }
    if let Some(thing_name) = fields.thing_name {
        builder = builder.thing_name(thing_name);
    }
    if let Some(root_ca) = fields.root_ca {
        builder = builder.root_ca(root_ca);
    }
    if let Some(alpn) = fields.alpn {
        builder = builder.alpn(alpn);
    }
    if let Some(keep_alive) = fields.keep_alive {
        builder = builder.keep_alive(keep_alive);
    }
    if let Some(clean_session) = fields.clean_session {
        builder = builder.clean_session(clean_session);
    }
    if let Some(timeout) = fields.connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(timeout) = fields.ack_timeout {
        builder = builder.ack_timeout(timeout);
    }
    if let Some(outbox) = fields.outbox {
        builder = builder.outbox(outbox);
    }
    if let Some(expiry) = fields.message_expiry {
        builder = builder.message_expiry(expiry);
    }
    if let Some(proxy) = fields.proxy {
        builder = builder.proxy(proxy);
    }
    if let Some(transport) = fields.transport {
        builder = builder.transport(transport);
    }
    if let Some(region) = fields.region {
        builder = builder.region(region);
    }
    if let Some(path) = fields.aws_credentials {
        builder = builder.aws_credentials(path);
    }
    if let Some(age) = fields.websocket_max_age {
        builder = builder.websocket_max_age(age);
    }
    let mut config = builder.build()?;
    config.source = source.map(Path::to_owned);
    Ok(config)
}

/// The settings found in a file, before defaults.
#[derive(Default)]
struct Fields {
    endpoint: Option<String>,
    port: Option<PortSetting>,
    client_id: Option<String>,
    thing_name: Option<String>,
    root_ca: Option<PathBuf>,
    certificate: Option<PathBuf>,
    private_key: Option<PathBuf>,
    alpn: Option<String>,
    keep_alive: Option<Duration>,
    clean_session: Option<bool>,
    connect_timeout: Option<Duration>,
    ack_timeout: Option<Duration>,
    outbox: Option<PathBuf>,
    message_expiry: Option<Duration>,
    proxy: Option<super::ProxyConfig>,
    transport: Option<super::Transport>,
    region: Option<String>,
    aws_credentials: Option<PathBuf>,
    websocket_max_age: Option<Duration>,
}

/// Converts TOML values into settings, with errors that name the file and the key.
struct Reader<'a> {
    origin: &'a str,
    base_dir: &'a Path,
}

impl Reader<'_> {
    fn invalid(&self, field: &'static str, message: String) -> ConfigError {
        ConfigError::InvalidValue { origin: self.origin.to_owned(), field, message }
    }

    fn expected(&self, field: &'static str, what: &str, value: &Value) -> ConfigError {
        self.invalid(field, format!("expected {what}, found {} {value}", value.type_str()))
    }

    fn string(&self, field: &'static str, value: &Value) -> Result<String, ConfigError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.expected(field, "a string", other)),
        }
    }

    fn path(&self, field: &'static str, value: &Value) -> Result<PathBuf, ConfigError> {
        let path = PathBuf::from(self.string(field, value)?);
        if path.as_os_str().is_empty() {
            return Err(self.invalid(field, "the file name is empty".to_owned()));
        }
        Ok(if path.is_absolute() { path } else { self.base_dir.join(path) })
    }

    fn port(&self, value: &Value) -> Result<PortSetting, ConfigError> {
        match value {
            Value::Integer(n) => u16::try_from(*n)
                .ok()
                .filter(|p| *p != 0)
                .map(PortSetting::Fixed)
                .ok_or_else(|| self.invalid("port", format!("{n} is not a TCP port (1-65535)"))),
            Value::String(s) => {
                PortSetting::parse(s).map_err(|e| self.invalid("port", e.to_string()))
            }
            other => Err(self.expected("port", "443, 8883 or \"auto\"", other)),
        }
    }

    fn seconds(&self, field: &'static str, value: &Value) -> Result<Duration, ConfigError> {
        let seconds = match value {
            Value::Integer(n) => *n as f64,
            Value::Float(f) => *f,
            other => return Err(self.expected(field, "a number of seconds", other)),
        };
        Duration::try_from_secs_f64(seconds)
            .map_err(|_| self.invalid(field, format!("{seconds} is not a number of seconds")))
    }

    fn boolean(&self, field: &'static str, value: &Value) -> Result<bool, ConfigError> {
        match value {
            Value::Boolean(b) => Ok(*b),
            other => Err(self.expected(field, "true or false", other)),
        }
    }
}
