//! Error codes, this thread's last error message, and the guard every entry point runs in.
//!
//! Codes -2 to -7 are the classes of the `iot443` command's exit codes 2 to 7 (configuration,
//! TLS or authentication, connection, protocol, storage, rejected); the others are the C API's
//! own.

use iot443_core::{ClientError, ErrorKind};
use std::cell::RefCell;
use std::ffi::{CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Success.
pub const IOT443_OK: c_int = 0;
/// The configuration is incomplete or invalid, or a file it names cannot be used (the
/// message names the file and the setting).
pub const IOT443_ERR_CONFIG: c_int = -2;
/// The TLS handshake or the authentication failed: certificate, root CA, ALPN, a CONNACK
/// refusal, a policy that refuses a subscription.
pub const IOT443_ERR_TLS: c_int = -3;
/// The endpoint could not be reached, or the connection was lost before the operation ended.
pub const IOT443_ERR_CONNECTION: c_int = -4;
/// The endpoint broke the MQTT protocol.
pub const IOT443_ERR_PROTOCOL: c_int = -5;
/// The outbox (its SQLite file) failed: locked, damaged or unwritable.
pub const IOT443_ERR_STORAGE: c_int = -6;
/// The service rejected the request.
pub const IOT443_ERR_REJECTED: c_int = -7;
/// The operation did not finish within its `timeout_ms` (or the library's own timeout). The
/// message says what is left: a publish that timed out waiting for its acknowledgement stays
/// queued and is still sent; a subscribe that timed out may still be granted (unsubscribe).
pub const IOT443_ERR_TIMEOUT: c_int = -8;
/// The client is not connected: `iot443_connect` was not called yet, or the client was
/// disconnected.
pub const IOT443_ERR_CLOSED: c_int = -9;
/// An argument is invalid: a NULL pointer, a string that is not UTF-8, QoS 2, a wildcard in a
/// publish topic, a payload over 128 KiB, a topic over IoT Core's limits. Nothing was sent.
pub const IOT443_ERR_INVALID_ARGUMENT: c_int = -10;
/// A blocking function was called from inside a callback, where waiting could deadlock.
/// Return from the callback first, or use `iot443_publish_async`.
pub const IOT443_ERR_IN_CALLBACK: c_int = -11;
/// A queue is full: `iot443_publish_async` from inside a callback found its publish queue full,
/// the offline queue is full while the connection is down, or every MQTT packet id is in use.
/// Nothing was queued; try again later.
pub const IOT443_ERR_WOULD_BLOCK: c_int = -12;
/// A bug in iot443 was caught at the boundary; the message says where. Please report it.
pub const IOT443_ERR_INTERNAL: c_int = -13;

/// A failure on its way to C: the code, and the message for [`iot443_last_error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) code: c_int,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: c_int, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(IOT443_ERR_INVALID_ARGUMENT, message)
    }

    pub(crate) fn closed() -> Failure {
        Failure::new(
            IOT443_ERR_CLOSED,
            "the client is not connected: call iot443_connect first (after iot443_disconnect, \
             call it again)",
        )
    }

    /// Not connected, naming the endpoint.
    pub(crate) fn closed_at(addr: &str) -> Failure {
        Failure::new(
            IOT443_ERR_CLOSED,
            format!(
                "the client is not connected to {addr}: call iot443_connect first (after \
                 iot443_disconnect, or once the connection ended for good, call it again)"
            ),
        )
    }

    pub(crate) fn in_callback(function: &str) -> Failure {
        Failure::new(
            IOT443_ERR_IN_CALLBACK,
            format!(
                "{function} was called from inside an iot443 callback, where waiting could \
                 deadlock; return from the callback first, or use iot443_publish_async"
            ),
        )
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Failure {
        Failure::new(code_of(&error), error.to_string())
    }
}

/// The C code for a library error.
pub(crate) fn code_of(error: &ClientError) -> c_int {
    match error {
        ClientError::Config(_) => IOT443_ERR_CONFIG,
        ClientError::InvalidTopic { .. }
        | ClientError::PayloadTooLarge { .. }
        | ClientError::QosNotSupported
        | ClientError::TooManyFilters { .. } => IOT443_ERR_INVALID_ARGUMENT,
        ClientError::Timeout { .. } | ClientError::NotAcknowledged { .. } => IOT443_ERR_TIMEOUT,
        ClientError::Session(_) | ClientError::QueueFull { .. } => IOT443_ERR_WOULD_BLOCK,
        ClientError::Closed => IOT443_ERR_CLOSED,
        other => match other.kind() {
            ErrorKind::Usage => IOT443_ERR_INVALID_ARGUMENT,
            ErrorKind::TlsOrAuth => IOT443_ERR_TLS,
            ErrorKind::Protocol => IOT443_ERR_PROTOCOL,
            ErrorKind::Storage => IOT443_ERR_STORAGE,
            ErrorKind::Rejected => IOT443_ERR_REJECTED,
            _ => IOT443_ERR_CONNECTION,
        },
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `failure` as this thread's last error and returns its code.
pub(crate) fn record(failure: Failure) -> c_int {
    tracing::debug!(code = failure.code, "{}", failure.message);
    let message = crate::strings::c_string(&failure.message);
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
    failure.code
}

/// Runs an entry point: its failure becomes the code returned (and this thread's last error),
/// and a panic becomes [`IOT443_ERR_INTERNAL`] instead of unwinding into C.
pub(crate) fn guard(function: &str, body: impl FnOnce() -> Result<(), Failure>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => IOT443_OK,
        Ok(Err(mut failure)) => {
            if !failure.message.starts_with(function) {
                failure.message = format!("{function}: {}", failure.message);
            }
            record(failure)
        }
        Err(panic) => record(Failure::new(
            IOT443_ERR_INTERNAL,
            format!(
                "internal error in {function} (a bug in iot443, please report it): {}",
                panic_message(&panic)
            ),
        )),
    }
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "a panic without a message"
    }
}

/// This thread's last failure, in words: what failed, where (file, host:port, topic) and what
/// to do next. `""` when no call on this thread has failed yet. Valid until the next failing
/// call on this thread; a successful call leaves it as it was.
#[unsafe(no_mangle)]
pub extern "C" fn iot443_last_error() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}

/// A short description of an error code, e.g. `"connection error"`: a static string.
#[unsafe(no_mangle)]
pub extern "C" fn iot443_strerror(code: c_int) -> *const c_char {
    let text: &'static str = match code {
        IOT443_OK => "success\0",
        IOT443_ERR_CONFIG => "configuration error\0",
        IOT443_ERR_TLS => "TLS or authentication error\0",
        IOT443_ERR_CONNECTION => "connection error\0",
        IOT443_ERR_PROTOCOL => "protocol error from the endpoint\0",
        IOT443_ERR_STORAGE => "storage error (the outbox)\0",
        IOT443_ERR_REJECTED => "rejected by the service\0",
        IOT443_ERR_TIMEOUT => "timed out\0",
        IOT443_ERR_CLOSED => "not connected\0",
        IOT443_ERR_INVALID_ARGUMENT => "invalid argument\0",
        IOT443_ERR_IN_CALLBACK => "blocking call from inside a callback\0",
        IOT443_ERR_WOULD_BLOCK => "queue full\0",
        IOT443_ERR_INTERNAL => "internal error\0",
        _ => "unknown error code\0",
    };
    text.as_ptr().cast()
}
