//! `iot443_log_to_stderr`: the library's log (warnings such as a world-readable key file, every
//! reconnect with its cause, and more at `debug`) on the program's stderr.

use crate::error::{Failure, IOT443_ERR_INVALID_ARGUMENT, guard};
use crate::strings::str_arg;
use std::ffi::{c_char, c_int};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

/// `targets` with every target of tungstenite at most at `debug`: its `trace` level prints the
/// WebSocket upgrade request, whose query carries the SigV4 signature and session token.
fn without_secrets(targets: Targets) -> Targets {
    let default = targets.default_level().unwrap_or(LevelFilter::OFF);
    let capped = targets.iter().map(|(target, level)| {
        let level =
            if target.contains("tungstenite") { level.min(LevelFilter::DEBUG) } else { level };
        (target.to_owned(), level)
    });
    let capped: Vec<(String, LevelFilter)> = capped.collect();
    let tungstenite_default = default.min(LevelFilter::DEBUG);
    let mut safe = Targets::new().with_default(default);
    for name in ["tungstenite", "tokio_tungstenite"] {
        safe = safe.with_target(name, tungstenite_default);
    }
    safe.with_targets(capped)
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
        let targets = without_secrets(targets);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn no_tungstenite_target_is_logged_below_debug() {
        for filter in ["trace", "tungstenite::handshake=trace", "warn,tungstenite=trace", "info"] {
            let safe = without_secrets(filter.parse().unwrap());
            for target in ["tungstenite", "tungstenite::handshake::client", "tokio_tungstenite"] {
                assert!(
                    !safe.would_enable(target, &tracing::Level::TRACE),
                    "{filter}: {target} at trace"
                );
            }
        }
        let safe = without_secrets("warn,iot443=trace".parse().unwrap());
        assert!(safe.would_enable("iot443::driver", &tracing::Level::TRACE));
        assert!(!safe.would_enable("rustls", &tracing::Level::INFO));
    }
}
