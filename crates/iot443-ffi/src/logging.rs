//! `iot443_log_to_stderr`: the library's log (warnings such as a world-readable key file, every
//! reconnect with its cause, and more at `debug`) on the program's stderr.

use crate::error::{Failure, IOT443_ERR_INVALID_ARGUMENT, guard};
use crate::strings::str_arg;
use std::ffi::{c_char, c_int};

/// Sends the library's log to stderr, filtered by `filter` in `RUST_LOG` syntax: `"warn"`,
/// `"info"`, `"iot443=debug"`, … (NULL: `RUST_LOG` when set, else `"warn"`). Once per process;
/// a second call returns `IOT443_ERR_INVALID_ARGUMENT`. Secrets (keys, AWS secret keys, session
/// tokens, signatures, proxy passwords) are never logged, at any level.
///
/// # Safety
/// `filter` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_log_to_stderr(filter: *const c_char) -> c_int {
    guard("iot443_log_to_stderr", || {
        let mut directives = if filter.is_null() {
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
        } else {
            // SAFETY: not NULL; the caller promises a NUL-terminated string.
            let text = unsafe { str_arg(filter, "filter") }?;
            tracing_subscriber::EnvFilter::try_new(text).map_err(|error| {
                Failure::invalid(format!(
                    "log filter {text:?}: {error}; use e.g. \"warn\", \"info\" or \"iot443=debug\""
                ))
            })?
        };
        // tungstenite traces the WebSocket upgrade request, whose query carries the SigV4
        // signature and session token: never below debug.
        if let Ok(cap) = "tungstenite=debug".parse() {
            directives = directives.add_directive(cap);
        }
        tracing_subscriber::fmt()
            .with_env_filter(directives)
            .with_writer(std::io::stderr)
            .try_init()
            .map_err(|_| {
                Failure::new(
                    IOT443_ERR_INVALID_ARGUMENT,
                    "iot443_log_to_stderr: logging is already set up in this process",
                )
            })
    })
}
