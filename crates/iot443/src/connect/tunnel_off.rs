//! Without the feature `proxy`: no HTTP CONNECT tunnel. A configuration with a proxy is refused
//! before any connection ([`crate::config::features`]); this is what the roads that would open
//! a tunnel get if one still reaches them.

use crate::config::ProxyConfig;
use crate::error::ClientError;
use std::time::Duration;
use tokio::net::TcpStream;

/// Always the [`ConfigError::FeatureDisabled`](crate::ConfigError::FeatureDisabled) for `proxy`.
pub(crate) async fn open(
    proxy: &ProxyConfig,
    _target: &str,
    _timeout: Duration,
) -> Result<TcpStream, ClientError> {
    Err(crate::config::features::proxy_disabled(&format!("the proxy {proxy}")).into())
}
