//! The `IOT443_*` environment variables, which override the file.

use super::{Config, ConfigError, ProxyConfig};
use std::path::PathBuf;
use std::time::Duration;

/// The variables [`Config::apply_env`] reads, with the setting each overrides.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("IOT443_ENDPOINT", "endpoint"),
    ("IOT443_PORT", "port"),
    ("IOT443_CLIENT_ID", "client_id"),
    ("IOT443_THING_NAME", "thing_name"),
    ("IOT443_ROOT_CA", "root_ca"),
    ("IOT443_CERTIFICATE", "certificate"),
    ("IOT443_PRIVATE_KEY", "private_key"),
    ("IOT443_ALPN", "alpn"),
    ("IOT443_KEEP_ALIVE", "keep_alive (seconds)"),
    ("IOT443_PROXY", "proxy"),
    ("IOT443_TRANSPORT", "transport"),
    ("IOT443_REGION", "region"),
    ("IOT443_AWS_CREDENTIALS", "aws_credentials"),
    ("HTTPS_PROXY", "proxy, when no other source sets one (filtered by NO_PROXY)"),
    ("https_proxy", "proxy, like HTTPS_PROXY (which wins when both are set)"),
];

/// The `IOT443_*` variable that sets the configuration key `field`, if any.
///
/// ```
/// assert_eq!(iot443::config::env_var_for("endpoint"), Some("IOT443_ENDPOINT"));
/// assert_eq!(iot443::config::env_var_for("outbox"), None);
/// ```
pub fn env_var_for(field: &str) -> Option<&'static str> {
    ENV_VARS.iter().find(|(_, key)| *key == field).map(|(var, _)| *var)
}

impl Config {
    /// Overrides settings with the `IOT443_*` variables that `vars` returns: `IOT443_ENDPOINT`,
    /// `IOT443_PORT`, `IOT443_CLIENT_ID`, `IOT443_THING_NAME`, `IOT443_ROOT_CA`,
    /// `IOT443_CERTIFICATE`, `IOT443_PRIVATE_KEY`, `IOT443_ALPN`, `IOT443_KEEP_ALIVE`
    /// (seconds), `IOT443_PROXY`, `IOT443_TRANSPORT`, `IOT443_REGION` and
    /// `IOT443_AWS_CREDENTIALS`.
    ///
    /// When no proxy is set (neither by the file nor by `IOT443_PROXY`), `HTTPS_PROXY` or
    /// `https_proxy` sets it unless `NO_PROXY`/`no_proxy` matches the endpoint (see the
    /// [precedence](super#proxy)).
    ///
    /// `vars` is usually `|name| std::env::var(name).ok()` (see [`Config::apply_process_env`]);
    /// tests pass their own. A variable set to the empty string counts as unset. Relative paths
    /// are kept as given (relative to the working directory). An invalid value is an error that
    /// names the variable, and leaves `self` unchanged.
    pub fn apply_env(&mut self, vars: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |name: &str| vars(name).filter(|v| !v.is_empty());
        let mut next = self.clone();

        if let Some(v) = get("IOT443_ENDPOINT") {
            check("IOT443_ENDPOINT", "endpoint", super::check_endpoint(&v))?;
            next.endpoint = v;
        }
        if let Some(v) = get("IOT443_PORT") {
            let port = super::PortSetting::parse(&v)
                .map_err(|e| invalid("IOT443_PORT", "port", e.to_string()))?;
            port.apply(&mut next);
        }
        if let Some(v) = get("IOT443_CLIENT_ID") {
            check("IOT443_CLIENT_ID", "client_id", super::check_client_id(&v))?;
            next.client_id = v;
        }
        if let Some(v) = get("IOT443_THING_NAME") {
            check("IOT443_THING_NAME", "thing_name", super::check_thing_name(&v))?;
            next.thing_name = Some(v);
        }
        if let Some(v) = get("IOT443_ROOT_CA") {
            next.root_ca = Some(PathBuf::from(v));
        }
        if let Some(v) = get("IOT443_CERTIFICATE") {
            next.certificate = PathBuf::from(v);
        }
        if let Some(v) = get("IOT443_PRIVATE_KEY") {
            next.private_key = PathBuf::from(v);
        }
        if let Some(v) = get("IOT443_ALPN") {
            check("IOT443_ALPN", "alpn", super::check_alpn(&v))?;
            next.alpn = Some(v);
        }
        if let Some(v) = get("IOT443_KEEP_ALIVE") {
            let keep_alive =
                parse_seconds(&v).map_err(|m| invalid("IOT443_KEEP_ALIVE", "keep_alive", m))?;
            check("IOT443_KEEP_ALIVE", "keep_alive", super::check_keep_alive(keep_alive))?;
            next.keep_alive = keep_alive;
        }
        if let Some(v) = get("IOT443_TRANSPORT") {
            next.transport = v.parse().map_err(|e: super::InvalidTransport| {
                invalid("IOT443_TRANSPORT", "transport", e.to_string())
            })?;
            super::features::transport("environment variable IOT443_TRANSPORT", next.transport)?;
        }
        if let Some(v) = get("IOT443_REGION") {
            check("IOT443_REGION", "region", super::check_region(&v))?;
            next.region = Some(v);
        }
        if let Some(v) = get("IOT443_AWS_CREDENTIALS") {
            next.aws_credentials = Some(PathBuf::from(v));
        }

        if let Some(v) = get("IOT443_PROXY") {
            super::features::proxy("environment variable IOT443_PROXY")?;
            next.proxy =
                Some(ProxyConfig::parse(&v).map_err(|m| invalid("IOT443_PROXY", "proxy", m))?);
        }
        if next.proxy.is_none()
            && let Some((var, proxy)) = super::proxy::from_https_proxy_env(&vars, &next.endpoint)
        {
            super::features::proxy(&format!("environment variable {var}"))?;
            next.proxy = Some(proxy.map_err(|m| invalid(var, "proxy", m))?);
        }

        *self = next;
        Ok(())
    }

    /// [`Config::apply_env`] with the process's environment.
    pub fn apply_process_env(&mut self) -> Result<(), ConfigError> {
        self.apply_env(|name| std::env::var(name).ok())
    }
}

fn invalid(var: &str, field: &'static str, message: String) -> ConfigError {
    ConfigError::InvalidValue { origin: format!("environment variable {var}"), field, message }
}

fn check(var: &str, field: &'static str, result: Result<(), String>) -> Result<(), ConfigError> {
    result.map_err(|message| invalid(var, field, message))
}

fn parse_seconds(value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("{value:?} is not a whole number of seconds, e.g. 60"))
}
