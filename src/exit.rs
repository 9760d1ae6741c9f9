//! The exit codes of `iot443`, documented in `--help` and the README.

use iot443::{ClientError, ErrorKind};
use std::process::ExitCode;

/// The command ran but did not achieve its goal (for example `demo`: a message did not come back).
pub const INCOMPLETE: u8 = 1;
/// Usage or configuration error: bad flag, unreadable or invalid file, invalid topic or payload.
/// (3 to 7 come from [`ErrorKind::exit_code`]: TLS or authentication, connection, protocol,
/// storage, rejected.)
pub const USAGE: u8 = ErrorKind::Usage.exit_code();

/// A request the service rejected: a shadow's error document (its code and message on stderr).
pub const REJECTED: u8 = ErrorKind::Rejected.exit_code();

/// `iot443 doctor`: the exit code is this plus the index of the first failing step (10 config,
/// 11 files, 12 dns, 13 tcp, 14 tls, 15 mqtt, 16 pubsub, 17 roads); 0 when every step passes.
pub const DOCTOR_FIRST_STEP: u8 = 10;

/// The `--help` paragraph that lists the codes.
pub const HELP: &str = "Exit codes:
  0  success
  1  the command ran but did not complete (e.g. demo: a message did not come back)
  2  usage or configuration error (flags, files, topic, payload)
  3  TLS or authentication error (certificate, CA, ALPN, CONNACK refusal; pub --transport https:
     401, 403)
  4  connection refused, timed out or lost, or a request not acknowledged in time (pub
     --transport https: 429 throttled, 5xx: retry later)
  5  protocol error from the endpoint
  6  storage error: the outbox file (locked, damaged, unwritable)
  7  the service rejected the request (stderr: its code and message): shadow, e.g.
     'shadow update of tls-test rejected: 409 Version conflict' (404: no such shadow);
     pub --transport https: 400, 404, 405, 413
  10-17  doctor: 10 + the index of the first failing step (10 config, 11 files, 12 dns,
         13 tcp, 14 tls, 15 mqtt, 16 pubsub, 17 roads: no road through 443 works)";

/// The `--help` paragraph of `iot443 doctor`.
pub const DOCTOR_HELP: &str = "Exit codes:
  0   every step passed
  10  config: the configuration is incomplete or invalid
  11  files: certificate, key or root CA file unusable (parse, key mismatch, expiry)
  12  dns: the endpoint does not resolve
  13  tcp: the port cannot be reached
  14  tls: the TLS handshake failed (ALPN, root CA, device certificate)
  15  mqtt: no CONNACK, a refusal, or a close right after CONNACK
  16  pubsub: the test message did not come back";

/// A failure of a command: what to print and which code to exit with.
#[derive(Debug)]
pub struct Failure {
    /// The message for stderr.
    pub message: String,
    /// The exit code.
    pub code: u8,
}

impl Failure {
    /// A usage or configuration failure.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure { message: message.into(), code: USAGE }
    }

    /// The command ran but did not complete.
    pub fn incomplete(message: impl Into<String>) -> Self {
        Failure { message: message.into(), code: INCOMPLETE }
    }

    /// Exits with this failure's code after printing it.
    pub fn report(&self) -> ExitCode {
        eprintln!("iot443: {}", self.message);
        ExitCode::from(self.code)
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        let code = error.kind().exit_code();
        Failure { message: error.to_string(), code }
    }
}

impl From<iot443::https::HttpsError> for Failure {
    fn from(error: iot443::https::HttpsError) -> Self {
        let code = error.kind().exit_code();
        Failure { message: error.to_string(), code }
    }
}

impl From<iot443::shadow::ShadowError> for Failure {
    fn from(error: iot443::shadow::ShadowError) -> Self {
        let code = error.kind().exit_code();
        Failure { message: error.to_string(), code }
    }
}

impl From<iot443::ConfigError> for Failure {
    fn from(error: iot443::ConfigError) -> Self {
        let flag = match &error {
            iot443::ConfigError::MissingField { field, .. } => match *field {
                "endpoint" => "; the flag -h HOST gives it too",
                "client_id" => "; the flag -i ID gives it too",
                "certificate" => "; the flag --cert FILE gives it too",
                "private_key" => "; the flag --key FILE gives it too",
                _ => "",
            },
            _ => "",
        };
        Failure::usage(format!("{error}{flag}"))
    }
}

impl From<iot443_emulator::server::ServerError> for Failure {
    fn from(error: iot443_emulator::server::ServerError) -> Self {
        Failure::usage(error.to_string())
    }
}
