//! What a failed TLS handshake says, and what it usually means: one explanation shared by the
//! client's errors ([`ClientError::Tls`](crate::ClientError::Tls)) and `iot443 doctor`.

use crate::config::Config;
use rustls::{AlertDescription, CertificateError};
use std::io;

/// The facts of a TLS failure and the likely cause with its fix.
pub(crate) struct Explanation {
    /// What happened, e.g. "the server sent the alert no_application_protocol".
    pub(crate) detail: String,
    /// Likely cause and fix; empty when nothing more useful can be said.
    pub(crate) hint: String,
}

/// Explains a handshake error for a client configured as `config`.
pub(crate) fn explain(config: &Config, error: &io::Error) -> Explanation {
    let (detail, hint) = match rustls_error(error) {
        Some(rustls::Error::AlertReceived(AlertDescription::NoApplicationProtocol)) => (
            "the server sent the alert no_application_protocol".to_owned(),
            match config.alpn_protocol() {
                None => "ALPN x-amzn-mqtt-ca missing or refused: the client offered no ALPN, and \
                         ALPN x-amzn-mqtt-ca is probably missing: AWS IoT Core needs it for MQTT \
                         with certificates on port 443 (set alpn = \"x-amzn-mqtt-ca\", or use \
                         port 8883)"
                    .to_owned(),
                Some(protocol) => format!(
                    "ALPN x-amzn-mqtt-ca missing or refused: the server does not accept ALPN \
                     {protocol:?}: for MQTT with client certificates on port 443, AWS IoT Core \
                     needs ALPN x-amzn-mqtt-ca"
                ),
            },
        ),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        )) => (
            "the server certificate is not signed by a trusted root".to_owned(),
            match &config.root_ca {
                Some(path) => format!(
                    "wrong root CA file (root_ca): check root_ca ({}): for AWS IoT Core use \
                     AmazonRootCA1.pem, for the iot443 emulator its ca.pem",
                    path.display()
                ),
                None => "wrong root CA file (root_ca): none is set, so the Mozilla roots were \
                         used: set root_ca to the CA that signed the server certificate"
                    .to_owned(),
            },
        ),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => (
            format!("the server certificate is not valid for {:?}", config.endpoint),
            "wrong endpoint: use the one from `aws iot describe-endpoint --endpoint-type \
             iot:Data-ATS`"
                .to_owned(),
        ),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        )) => (
            "the server certificate has expired".to_owned(),
            "check the system clock (`date -u`)".to_owned(),
        ),
        Some(rustls::Error::AlertReceived(alert)) => {
            (format!("the server sent the alert {alert:?}"), refused_certificate_hint(config))
        }
        Some(other) => (other.to_string(), String::new()),
        None if error.kind() == io::ErrorKind::UnexpectedEof => (
            "the server closed the connection during the handshake".to_owned(),
            if config.alpn_protocol().is_none() {
                "ALPN x-amzn-mqtt-ca missing or refused: AWS IoT Core needs it on port 443"
                    .to_owned()
            } else {
                refused_certificate_hint(config)
            },
        ),
        None => (error.to_string(), String::new()),
    };
    Explanation { detail, hint }
}

/// The rustls error inside an I/O error, if there is one.
pub(crate) fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// The usual meaning of a TLS alert from the endpoint after our certificate was sent.
pub(crate) fn refused_certificate_hint(config: &Config) -> String {
    format!(
        "the device certificate was refused (not registered/active, or wrong CA): check that {} \
         is registered in AWS IoT, ACTIVE, and signed by a CA the endpoint trusts",
        config.certificate.display()
    )
}
