//! TLS for AWS IoT Core: rustls with the ring provider, TLS 1.3 and 1.2, the device certificate
//! as client authentication, SNI and host-name verification always on, and the ALPN protocol of
//! [`Config::alpn_protocol`] (`x-amzn-mqtt-ca` on port 443).

use crate::config::{Config, ConfigError, Credentials};
use crate::connect::server_chain::{Presented, RecordingVerifier};
use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls_pki_types::ServerName;
use std::sync::Arc;

/// The rustls client configuration for `config`, authenticating with `credentials`.
///
/// The server certificate is always verified against `credentials.roots` and the endpoint's host
/// name; there is no option to turn that off. ALPN offers exactly one protocol,
/// [`Config::alpn_protocol`], or none.
pub fn client_config(
    config: &Config,
    credentials: &Credentials,
) -> Result<Arc<ClientConfig>, ConfigError> {
    client_config_recording(config, credentials, Presented::default())
}

/// [`client_config`], recording the chain each server presents into `presented` (to name the
/// issuer of a chain that is not trusted, or not Amazon's).
pub(crate) fn client_config_recording(
    config: &Config,
    credentials: &Credentials,
    presented: Presented,
) -> Result<Arc<ClientConfig>, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(
        Arc::new(credentials.roots.clone()),
        Arc::clone(&provider),
    )
    .build()
    .map_err(|e| ConfigError::InvalidValue {
        origin: config.origin(),
        field: "root_ca",
        message: format!("the trust roots cannot verify a server: {e}"),
    })?;
    let verifier = Arc::new(RecordingVerifier::new(webpki, presented));
    let mut tls = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConfigError::InvalidValue {
            origin: "the TLS settings".to_owned(),
            field: "tls",
            message: format!("rustls refused TLS 1.2 and 1.3 with the ring provider: {e}"),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(credentials.cert_chain.clone(), credentials.key.clone_key())
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => ConfigError::KeyDoesNotMatchCertificate {
                certificate: config.certificate.clone(),
                private_key: config.private_key.clone(),
            },
            other => ConfigError::UnsupportedKey {
                path: config.private_key.clone(),
                detail: format!("rustls cannot use it for client authentication: {other}"),
            },
        })?;
    tls.alpn_protocols =
        config.alpn_protocol().map(|p| vec![p.as_bytes().to_vec()]).unwrap_or_default();
    // The configuration is built anew at every connect (a renewed certificate is picked up), so
    // a session cache in it would never be read again: rustls' default one holds 256 sessions,
    // ~14 KiB for each connection of a fleet.
    tls.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(tls))
}

/// What a finished handshake agreed on, as `ConnectionInfo` and `iot443 doctor` print it.
pub(crate) struct Negotiated {
    /// "TLS1.3", "TLS1.2".
    pub(crate) version: Option<String>,
    /// E.g. "TLS13_AES_128_GCM_SHA256".
    pub(crate) cipher_suite: Option<String>,
    /// The ALPN protocol the server selected.
    pub(crate) alpn: Option<String>,
}

/// What `connection` negotiated.
pub(crate) fn negotiated(connection: &rustls::ClientConnection) -> Negotiated {
    Negotiated {
        version: connection.protocol_version().map(version_name),
        cipher_suite: connection.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())),
        alpn: connection.alpn_protocol().map(|alpn| String::from_utf8_lossy(alpn).into_owned()),
    }
}

/// "TLS1.3", "TLS1.2", as `ConnectionInfo` and `iot443 doctor` print it.
pub(crate) fn version_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLS1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The name the server certificate must match, also sent as SNI (for a DNS name).
pub fn server_name(config: &Config) -> Result<ServerName<'static>, ConfigError> {
    ServerName::try_from(config.endpoint.clone()).map_err(|_| ConfigError::InvalidValue {
        origin: config.origin(),
        field: "endpoint",
        message: format!(
            "{:?} is neither a valid DNS name nor an IP address, e.g. \
             abc123-ats.iot.ap-northeast-1.amazonaws.com",
            config.endpoint
        ),
    })
}
