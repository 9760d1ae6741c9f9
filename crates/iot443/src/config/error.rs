//! [`ConfigError`]: why a configuration or its credential files cannot be used.

#[cfg(feature = "websocket")]
use super::AwsCredentialsError;
use super::env_var_for;
use std::fmt;
use std::path::PathBuf;

/// Why a configuration or its credential files cannot be used.
///
/// Every message names the file, environment variable or key, says what is wrong and what to do.
/// Private key material never appears in a message.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error(
        "cannot read {}: {source}; check the path (paths in a config file are relative to its \
         folder) and the file's permissions",
        .path.display()
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error (shared, so that the error can be cloned).
        source: std::sync::Arc<std::io::Error>,
    },
    /// A configuration file is not valid TOML.
    #[error("{} is not valid TOML: {message}", .path.display())]
    Toml {
        /// The file (`<TOML text>` for [`Config::from_toml_str`](super::Config::from_toml_str)).
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A configuration file has a key this version does not know.
    #[error(
        "unknown key `{key}` in {}; the known keys are {}",
        .path.display(),
        super::toml::KNOWN_KEYS.join(", ")
    )]
    UnknownKey {
        /// The file (`<TOML text>` for [`Config::from_toml_str`](super::Config::from_toml_str)).
        path: PathBuf,
        /// The key as written.
        key: String,
    },
    /// A required setting is missing.
    #[error("{origin}: `{field}` is required but missing; add it{}", supply_hint(field))]
    MissingField {
        /// Where the configuration came from: a file, or a description.
        origin: String,
        /// The key (or C `#define`) that is missing.
        field: &'static str,
    },
    /// A setting has a value that cannot be used.
    #[error("{origin}: invalid `{field}`: {message}")]
    InvalidValue {
        /// Where the value came from: a file, an environment variable, or a description.
        origin: String,
        /// The key (or C `#define`) concerned.
        field: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// The certificate file holds no certificate.
    #[error(
        "no certificate in {}: expected a PEM block `-----BEGIN CERTIFICATE-----` (the device \
         certificate AWS IoT gave you, e.g. xxxx-certificate.pem.crt); check that `certificate` \
         does not point at the key or the public key",
        .path.display()
    )]
    NoCertificateInFile {
        /// The file.
        path: PathBuf,
    },
    /// The private key file holds no private key.
    #[error(
        "no private key in {}: expected a PEM block `-----BEGIN RSA PRIVATE KEY-----`, \
         `-----BEGIN EC PRIVATE KEY-----` or `-----BEGIN PRIVATE KEY-----` (AWS IoT's \
         xxxx-private.pem.key); check that `private_key` does not point at the certificate or the \
         public key",
        .path.display()
    )]
    NoPrivateKeyInFile {
        /// The file.
        path: PathBuf,
    },
    /// The private key is of a kind or format that cannot be used.
    #[error("private key {} cannot be used: {detail}", .path.display())]
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
        /// What kind it is and what to use instead.
        detail: String,
    },
    /// The private key is not the one the certificate was issued for.
    #[error(
        "private key {} does not belong to certificate {}; use the key file created together \
         with this certificate (AWS IoT shows a certificate's key only once, at creation)",
        .private_key.display(),
        .certificate.display()
    )]
    KeyDoesNotMatchCertificate {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        private_key: PathBuf,
    },
    /// The device certificate has expired.
    #[error(
        "certificate {} expired on {}; create a new certificate in AWS IoT (attach the same \
         policy and thing) and replace the file, or check the device clock if that date is wrong",
        .path.display(),
        utc(.not_after)
    )]
    CertificateExpired {
        /// The certificate file.
        path: PathBuf,
        /// Its end of validity.
        not_after: time::OffsetDateTime,
    },
    /// The device certificate is not valid yet.
    #[error(
        "certificate {} is not valid before {}; check the device clock (`date -u`), it is \
         probably behind",
        .path.display(),
        utc(.not_before)
    )]
    CertificateNotYetValid {
        /// The certificate file.
        path: PathBuf,
        /// Its start of validity.
        not_before: time::OffsetDateTime,
    },
    /// The root CA file holds no certificate.
    #[error(
        "no certificate in root CA file {}: expected a PEM block `-----BEGIN CERTIFICATE-----` \
         such as AmazonRootCA1.pem; or remove `root_ca` to use the built-in Mozilla roots, which \
         include Amazon Root CA 1-4",
        .path.display()
    )]
    NoRootInFile {
        /// The file.
        path: PathBuf,
    },
    /// No AWS credentials or region for the WebSocket road.
    #[cfg(feature = "websocket")]
    #[error(transparent)]
    AwsCredentials(#[from] AwsCredentialsError),
    /// A setting needs a cargo feature of the `iot443` crate that this build leaves out (see
    /// the crate's feature table): `transport = "websocket"` without `websocket`, a `proxy`
    /// without `proxy`, an `outbox` file without `outbox`, `transport = "https"` without
    /// `https`, no `root_ca` without `webpki-roots`.
    #[error(
        "{origin}: `{field}` {setting} needs the cargo feature `{feature}`, which this build of \
         iot443 leaves out; rebuild with the cargo feature `{feature}`{}",
        feature_alternative(field)
    )]
    FeatureDisabled {
        /// Where the setting came from: a file, an environment variable, or a description.
        origin: String,
        /// The key concerned (`transport`, `proxy`, `outbox`, `root_ca`).
        field: &'static str,
        /// What it asks for, as a phrase: `= "websocket"`, `set (an HTTP proxy)`, ….
        setting: String,
        /// The cargo feature to enable.
        feature: &'static str,
    },
    /// A certificate file holds something that is not a usable certificate.
    #[error("certificate file {} is not usable: {detail}", .path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        detail: String,
    },
}

/// A UTC time as `2025-01-31 23:59:59 UTC`, for messages.
#[cfg(feature = "websocket")]
pub(crate) fn utc_time(t: time::OffsetDateTime) -> String {
    utc(&t).to_string()
}

/// A UTC time as `2025-01-31 23:59:59 UTC`.
fn utc(t: &time::OffsetDateTime) -> impl fmt::Display {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// What else than rebuilding helps with a [`ConfigError::FeatureDisabled`].
fn feature_alternative(field: &str) -> String {
    match field {
        "root_ca" => " (or set `root_ca` to Amazon's root, AmazonRootCA1.pem)".to_owned(),
        field => format!(", or remove `{field}`"),
    }
}

/// How else a required key can be given: its environment variable ([`super::Config::apply_env`]).
fn supply_hint(field: &str) -> String {
    env_var_for(field).map(|var| format!(" (or set {var})")).unwrap_or_default()
}
