//! `iot443_log_to_stderr`: the library's log (warnings such as a world-readable key file, every
//! reconnect with its cause, and more at `debug`) on the program's stderr.

use crate::error::{Failure, IOT443_ERR_INVALID_ARGUMENT, guard};
use crate::strings::str_arg;
use std::ffi::{c_char, c_int};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

/// The level `targets` gives `target`, at most `debug`.
fn capped(targets: &Targets, target: &str) -> LevelFilter {
    let level = targets
        .iter()
        .find(|(name, _)| *name == target)
        .map_or_else(|| targets.default_level().unwrap_or(LevelFilter::OFF), |(_, level)| level);
    level.min(LevelFilter::DEBUG)
}

/// Sends the library's log to stderr, filtered by `filter`: a level, or targets with levels
/// (`"warn"`, `"info"`, `"warn,iot443=debug"`; NULL: `RUST_LOG` when set, else `"warn"`). Once per process;
/// a second call returns `IOT443_ERR_INVALID_ARGUMENT`. Secrets (keys, AWS secret keys, session
/// tokens, signatures, proxy passwords) are never logged, at any level.
///
/// # Safety
/// `filter` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_log_to_stderr(filter: *const c_char) -> c_int {
    guard("iot443_log_to_stderr", || {
        let text = if filter.is_null() {
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned())
        } else {
            // SAFETY: not NULL; the caller promises a NUL-terminated string.
            unsafe { str_arg(filter, "filter") }?.to_owned()
        };
        let targets: Targets = text.parse().map_err(|error| {
            Failure::invalid(format!(
                "log filter {text:?}: {error}; use e.g. \"warn\", \"info\" or \"iot443=debug\""
            ))
        })?;
        // tungstenite traces the WebSocket upgrade request, whose query carries the SigV4
        // signature and session token: never below debug.
        let tungstenite = capped(&targets, "tungstenite");
        let targets = targets.with_target("tungstenite", tungstenite);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(std::io::stderr)
            .finish()
            .with(targets);
        tracing::subscriber::set_global_default(subscriber).map_err(|_| {
            Failure::new(
                IOT443_ERR_INVALID_ARGUMENT,
                "iot443_log_to_stderr: logging is already set up in this process",
            )
        })
    })
}
