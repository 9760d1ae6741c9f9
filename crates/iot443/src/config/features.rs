//! Settings that need a cargo feature this build of the crate may leave out: each is a
//! [`ConfigError::FeatureDisabled`] that names the field and the feature, never ignored.

use super::{Config, ConfigError, Transport};

/// The feature `transport = road` needs, when this build leaves it out.
pub(crate) fn transport(origin: &str, road: Transport) -> Result<(), ConfigError> {
    let missing = match road {
        Transport::WebSocket if !cfg!(feature = "websocket") => Some("websocket"),
        Transport::Https if !cfg!(feature = "https") => Some("https"),
        _ => None,
    };
    match missing {
        Some(_) => Err(transport_disabled(origin, road)),
        None => Ok(()),
    }
}

/// The error for `transport = road` in a build without the road's feature.
pub(crate) fn transport_disabled(origin: &str, road: Transport) -> ConfigError {
    let feature = if road == Transport::Https { "https" } else { "websocket" };
    disabled(origin, "transport", format!("= {:?}", road.name()), feature)
}

/// A proxy was set (by `origin`): that needs the feature `proxy`.
pub(crate) fn proxy(origin: &str) -> Result<(), ConfigError> {
    if cfg!(feature = "proxy") { Ok(()) } else { Err(proxy_disabled(origin)) }
}

/// The error for a proxy set (by `origin`) in a build without the feature `proxy`.
pub(crate) fn proxy_disabled(origin: &str) -> ConfigError {
    disabled(origin, "proxy", "set (an HTTP CONNECT proxy)".to_owned(), "proxy")
}

/// An outbox file was set (by `origin`): that needs the feature `outbox`.
pub(crate) fn outbox(origin: &str) -> Result<(), ConfigError> {
    if cfg!(feature = "outbox") {
        Ok(())
    } else {
        Err(disabled(origin, "outbox", "set (a durable outbox file)".to_owned(), "outbox"))
    }
}

/// No `root_ca` (the built-in roots wanted): that needs the feature `webpki-roots`.
#[cfg(not(feature = "webpki-roots"))]
pub(crate) fn default_roots(origin: &str) -> ConfigError {
    disabled(origin, "root_ca", "unset (the built-in Mozilla roots)".to_owned(), "webpki-roots")
}

/// Every setting of `config` that needs a feature this build leaves out.
pub(crate) fn check(config: &Config) -> Result<(), ConfigError> {
    let origin = config.origin();
    transport(&origin, config.transport)?;
    if config.proxy.is_some() {
        proxy(&origin)?;
    }
    if config.outbox.is_some() {
        outbox(&origin)?;
    }
    Ok(())
}

fn disabled(
    origin: &str,
    field: &'static str,
    setting: String,
    feature: &'static str,
) -> ConfigError {
    ConfigError::FeatureDisabled { origin: origin.to_owned(), field, setting, feature }
}
