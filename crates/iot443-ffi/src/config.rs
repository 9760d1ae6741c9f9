//! A configuration without a file: `iot443_config_new`, the setters, and
//! `iot443_client_new_with_config`.
//!
//! ```c
//! iot443_config *config = NULL;
//! iot443_config_new("abc123-ats.iot.ap-northeast-1.amazonaws.com", "tls-test", &config);
//! iot443_config_set_certificate(config, "certs/cert.pem");
//! iot443_config_set_private_key(config, "certs/privkey.pem");
//! iot443_config_set_root_ca(config, "certs/rootCA.crt");
//! iot443_client *client = NULL;
//! int rc = iot443_client_new_with_config(config, &client);
//! iot443_config_free(config);
//! ```
//! Relative paths are relative to the working directory. The `IOT443_*` variables do not apply
//! to a configuration made this way: the program's settings are the settings.

use crate::error::{Failure, IOT443_ERR_CONFIG, IOT443_ERR_INVALID_ARGUMENT, guard};
use crate::strings::str_arg;
use iot443_core::Config;
use std::ffi::{c_char, c_int};
use std::path::PathBuf;
use std::time::Duration;

/// Settings for a client, made by `iot443_config_new` (opaque).
#[derive(Debug, Clone)]
pub struct iot443_config {
    endpoint: String,
    client_id: String,
    port: Option<u16>,
    certificate: Option<PathBuf>,
    private_key: Option<PathBuf>,
    root_ca: Option<PathBuf>,
    outbox: Option<PathBuf>,
    thing_name: Option<String>,
    alpn: Option<String>,
    keep_alive: Option<Duration>,
    connect_timeout: Option<Duration>,
}

impl iot443_config {
    /// The library's configuration, checked.
    pub(crate) fn build(&self) -> Result<Config, Failure> {
        let (Some(certificate), Some(private_key)) = (&self.certificate, &self.private_key) else {
            return Err(Failure::new(
                IOT443_ERR_CONFIG,
                format!(
                    "the configuration for {} has no {}: call iot443_config_set_certificate and \
                     iot443_config_set_private_key with the device's PEM files",
                    self.endpoint,
                    if self.certificate.is_none() { "certificate" } else { "private key" }
                ),
            ));
        };
        let mut builder = Config::builder(
            self.endpoint.clone(),
            self.client_id.clone(),
            certificate.clone(),
            private_key.clone(),
        );
        if let Some(port) = self.port {
            builder = builder.port(port);
        }
        if let Some(root_ca) = &self.root_ca {
            builder = builder.root_ca(root_ca.clone());
        }
        if let Some(outbox) = &self.outbox {
            builder = builder.outbox(outbox.clone());
        }
        if let Some(thing_name) = &self.thing_name {
            builder = builder.thing_name(thing_name.clone());
        }
        if let Some(alpn) = &self.alpn {
            builder = builder.alpn(alpn.clone());
        }
        if let Some(keep_alive) = self.keep_alive {
            builder = builder.keep_alive(keep_alive);
        }
        if let Some(timeout) = self.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        builder.build().map_err(|error| Failure::new(IOT443_ERR_CONFIG, error.to_string()))
    }
}

/// Starts a configuration for `endpoint` (the host name of `aws iot describe-endpoint
/// --endpoint-type iot:Data-ATS`) and `client_id`. Port 443 with ALPN `x-amzn-mqtt-ca` unless
/// set otherwise. Free it with `iot443_config_free` (clients made from it keep their own copy).
///
/// # Safety
/// `endpoint` and `client_id` are NULL or NUL-terminated strings; `out` is NULL or points to
/// writable storage for a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_config_new(
    endpoint: *const c_char,
    client_id: *const c_char,
    out: *mut *mut iot443_config,
) -> c_int {
    guard("iot443_config_new", || {
        if out.is_null() {
            return Err(Failure::invalid("iot443_config_new: out is NULL"));
        }
        // SAFETY: `out` is not NULL and the caller promises it is writable; cleared first so
        // that a failure leaves NULL there.
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: the caller promises NUL-terminated strings.
        let endpoint = unsafe { str_arg(endpoint, "endpoint") }?;
        // SAFETY: as above.
        let client_id = unsafe { str_arg(client_id, "client_id") }?;
        let config = Box::new(iot443_config {
            endpoint: endpoint.to_owned(),
            client_id: client_id.to_owned(),
            port: None,
            certificate: None,
            private_key: None,
            root_ca: None,
            outbox: None,
            thing_name: None,
            alpn: None,
            keep_alive: None,
            connect_timeout: None,
        });
        // SAFETY: as above.
        unsafe { *out = Box::into_raw(config) };
        Ok(())
    })
}

/// Frees a configuration; NULL is a no-op.
///
/// # Safety
/// `config` is NULL or a pointer from `iot443_config_new` not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_config_free(config: *mut iot443_config) {
    if !config.is_null() {
        // SAFETY: made by `Box::into_raw` in `iot443_config_new`, freed only once (the
        // caller's promise).
        drop(unsafe { Box::from_raw(config) });
    }
}

/// Runs `change` on the configuration at `config`.
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`, not used by another thread
/// during the call.
unsafe fn with_config(
    function: &str,
    config: *mut iot443_config,
    change: impl FnOnce(&mut iot443_config) -> Result<(), Failure>,
) -> c_int {
    guard(function, || {
        // SAFETY: the caller's promise: NULL or live and not shared during the call.
        let Some(config) = (unsafe { config.as_mut() }) else {
            return Err(Failure::invalid(format!("{function}: config is NULL")));
        };
        change(config)
    })
}

/// Sets a text setting from the string at `value`.
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`; `value` is NULL or a
/// NUL-terminated string.
unsafe fn set_text(
    function: &str,
    config: *mut iot443_config,
    value: *const c_char,
    set: impl FnOnce(&mut iot443_config, &str),
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        with_config(function, config, |config| {
            set(config, str_arg(value, "value")?);
            Ok(())
        })
    }
}

/// The device certificate (PEM, optionally followed by intermediates).
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`; `path` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_config_set_certificate(
    config: *mut iot443_config,
    path: *const c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        set_text("iot443_config_set_certificate", config, path, |config, path| {
            config.certificate = Some(path.into())
        })
    }
}

/// The device private key (PEM: PKCS#1 RSA, SEC1 EC or PKCS#8).
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`; `path` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_config_set_private_key(
    config: *mut iot443_config,
    path: *const c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        set_text("iot443_config_set_private_key", config, path, |config, path| {
            config.private_key = Some(path.into())
        })
    }
}

/// A PEM file of trust roots (e.g. AmazonRootCA1.pem); without it, the Mozilla roots, which
/// hold Amazon Root CA 1-4.
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`; `path` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_config_set_root_ca(
    config: *mut iot443_config,
    path: *const c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        set_text("iot443_config_set_root_ca", config, path, |config, path| {
            config.root_ca = Some(path.into())
        })
    }
}

/// A file (SQLite) where QoS 1 publishes are kept until acknowledged, across restarts; with
/// it, `iot443_publish` at QoS 1 returns once the message is on disk.
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`; `path` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_config_set_outbox(
    config: *mut iot443_config,
    path: *const c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        set_text("iot443_config_set_outbox", config, path, |config, path| {
            config.outbox = Some(path.into())
        })
    }
}

/// The TCP port: 443 (ALPN `x-amzn-mqtt-ca`, the default) or 8883.
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_config_set_port(config: *mut iot443_config, port: u16) -> c_int {
    // SAFETY: the caller's promise, passed on.
    unsafe {
        with_config("iot443_config_set_port", config, |config| {
            if port == 0 {
                return Err(Failure::invalid("port 0 is not a port; use 443 or 8883"));
            }
            config.port = Some(port);
            Ok(())
        })
    }
}

/// The MQTT keep-alive in seconds, 30 to 1200 (IoT Core's range); 60 by default.
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_config_set_keep_alive(
    config: *mut iot443_config,
    seconds: u32,
) -> c_int {
    // SAFETY: the caller's promise, passed on.
    unsafe {
        with_config("iot443_config_set_keep_alive", config, |config| {
            let keep_alive = Duration::from_secs(u64::from(seconds));
            if !Config::KEEP_ALIVE_RANGE.contains(&keep_alive) {
                return Err(Failure::new(
                    IOT443_ERR_INVALID_ARGUMENT,
                    format!("keep-alive {seconds} s is outside AWS IoT Core's 30 to 1200 s"),
                ));
            }
            config.keep_alive = Some(keep_alive);
            Ok(())
        })
    }
}

/// The time allowed for the TCP connect, the TLS handshake and CONNACK, each; 10 s by default.
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_config_set_connect_timeout(
    config: *mut iot443_config,
    timeout_ms: u32,
) -> c_int {
    // SAFETY: the caller's promise, passed on.
    unsafe {
        with_config("iot443_config_set_connect_timeout", config, |config| {
            if timeout_ms == 0 {
                return Err(Failure::invalid("a connect timeout of 0 ms cannot succeed"));
            }
            config.connect_timeout = Some(Duration::from_millis(u64::from(timeout_ms)));
            Ok(())
        })
    }
}

/// The thing name (for the Device Shadow); the client id when not set.
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`; `value` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_config_set_thing_name(
    config: *mut iot443_config,
    value: *const c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        set_text("iot443_config_set_thing_name", config, value, |config, value| {
            config.thing_name = Some(value.into())
        })
    }
}

/// The ALPN protocol to offer instead of the rule (`x-amzn-mqtt-ca` exactly on port 443).
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`; `value` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_config_set_alpn(
    config: *mut iot443_config,
    value: *const c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        set_text("iot443_config_set_alpn", config, value, |config, value| {
            config.alpn = Some(value.into())
        })
    }
}
