//! What a failed TLS handshake says, and what it usually means: one explanation shared by the
//! client's errors ([`ClientError::Tls`](crate::ClientError::Tls)) and `iot443 doctor`.

use super::server_chain::{ChainFacts, interception_remedy, is_amazon_endpoint};
use crate::config::Config;
use rustls::{AlertDescription, CertificateError};
use std::io;

/// The ALPN protocol of HTTPS publish on port 443 (`https::ALPN_HTTP_CA`, kept here so that
/// the explanations stay the same in a build without the feature `https`).
const ALPN_HTTP_CA: &str = "x-amzn-http-ca";

/// The facts of a TLS failure and the likely cause with its fix.
pub(crate) struct Explanation {
    /// What happened, e.g. "the server sent the alert no_application_protocol".
    pub(crate) detail: String,
    /// Likely cause and fix; empty when nothing more useful can be said.
    pub(crate) hint: String,
}

/// Explains a handshake error for a client configured as `config`; `chain` is what the server
/// presented, when it got that far (it names the issuer of an untrusted chain).
pub(crate) fn explain(
    config: &Config,
    error: &io::Error,
    chain: Option<&ChainFacts>,
) -> Explanation {
    let (detail, hint) = match rustls_error(error) {
        Some(rustls::Error::AlertReceived(AlertDescription::NoApplicationProtocol)) => (
            "the server sent the alert no_application_protocol".to_owned(),
            match config.alpn_protocol() {
                None => "ALPN x-amzn-mqtt-ca missing or refused: the client offered no ALPN, and \
                         ALPN x-amzn-mqtt-ca is probably missing: AWS IoT Core needs it for MQTT \
                         with certificates on port 443 (set alpn = \"x-amzn-mqtt-ca\", or use \
                         port 8883)"
                    .to_owned(),
                Some(protocol @ ALPN_HTTP_CA) => format!(
                    "the server does not accept ALPN {protocol:?}: for HTTPS publish with client \
                     certificates on port 443 AWS IoT Core needs it on its iot:Data-ATS \
                     endpoint; or publish on port 8443, which needs no ALPN"
                ),
                Some(protocol) => format!(
                    "ALPN x-amzn-mqtt-ca missing or refused: the server does not accept ALPN \
                     {protocol:?}: for MQTT with client certificates on port 443, AWS IoT Core \
                     needs ALPN x-amzn-mqtt-ca"
                ),
            },
        ),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        )) => untrusted(config, chain),
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

/// A server chain that does not end at a trusted root: a TLS-inspecting proxy when the facts
/// point to one (see [`ChainFacts::probably_intercepted`]), else the wrong `root_ca`.
fn untrusted(config: &Config, chain: Option<&ChainFacts>) -> (String, String) {
    let facts = chain.map(|facts| format!(": {}", facts.describe())).unwrap_or_default();
    let detail = format!("the server certificate is not signed by a trusted root{facts}");
    let roots = match &config.root_ca {
        Some(path) => format!("a root in root_ca ({})", path.display()),
        None => "a root the client trusts (the Mozilla roots, as root_ca is not set)".to_owned(),
    };
    if let Some(facts) = chain.filter(|facts| facts.probably_intercepted(&config.endpoint)) {
        let expected = if is_amazon_endpoint(&config.endpoint) {
            format!("an Amazon root (where AWS IoT Core's chains end), nor at {roots}")
        } else {
            roots
        };
        let hint = format!(
            "a TLS-inspecting (intercepting) proxy is probably in the way: it presented a chain \
             issued by {}, which does not end at {expected}; {}",
            facts.top_issuer.describe(),
            interception_remedy(&config.endpoint)
        );
        return (detail, hint);
    }
    let hint = match &config.root_ca {
        Some(path) => format!(
            "wrong root CA file (root_ca): check root_ca ({}): for AWS IoT Core use \
             AmazonRootCA1.pem, for the iot443 emulator its ca.pem",
            path.display()
        ),
        None => "wrong root CA file (root_ca): none is set, so the Mozilla roots were used: set \
                 root_ca to the CA that signed the server certificate"
            .to_owned(),
    };
    (detail, hint)
}

/// The ALPN protocol whose absence after a completed handshake fails the connection: the one
/// offered, except on port 8883, where AWS IoT Core needs none and a server may ignore it.
pub(crate) fn alpn_expected(config: &Config) -> Option<&str> {
    config.alpn_protocol().filter(|_| config.port != 8883)
}

/// A handshake that completed without the ALPN protocol the client offered: IoT Core always
/// selects `x-amzn-mqtt-ca` (or `x-amzn-http-ca`) when offered, so something in between, most
/// likely a TLS-inspecting proxy, answered instead.
pub(crate) fn alpn_dropped(
    config: &Config,
    offered: &str,
    chain: Option<&ChainFacts>,
) -> Explanation {
    let facts = chain.map(|facts| format!("; {}", facts.describe())).unwrap_or_default();
    let issuer = chain
        .map(|facts| format!(" (it presented a chain issued by {})", facts.top_issuer.describe()))
        .unwrap_or_default();
    let detail = format!(
        "the server completed the handshake without selecting the ALPN protocol {offered:?} \
         that was offered{facts}"
    );
    let aws_protocol = [Config::ALPN_MQTT_CA, ALPN_HTTP_CA].contains(&offered);
    if !aws_protocol {
        // A protocol of the user's choosing that the server ignores: the protocol is the
        // likely problem, an interceptor only the other possibility.
        return Explanation {
            detail,
            hint: format!(
                "ALPN x-amzn-mqtt-ca missing or refused: the server does not accept ALPN \
                 {offered:?}; for MQTT with client certificates on port 443 AWS IoT Core needs \
                 ALPN x-amzn-mqtt-ca (remove `alpn`, or set alpn = \"x-amzn-mqtt-ca\"); if that \
                 is what you offered elsewhere too, a TLS-inspecting (intercepting) proxy may \
                 be dropping ALPN{issuer}"
            ),
        };
    }
    Explanation {
        detail,
        hint: format!(
            "a TLS-inspecting (intercepting) proxy is probably in the way{issuer}: such proxies \
             answer the handshake themselves and drop ALPN; {}",
            interception_remedy(&config.endpoint)
        ),
    }
}

/// The chain was trusted, but it is probably an interceptor's: for an `amazonaws.com`
/// endpoint it does not end at an Amazon root, or elsewhere its issuer is named like an
/// inspecting proxy (`root_ca` trusts the proxy's CA). An interceptor cannot pass the device
/// certificate on. `None` when nothing is wrong with the chain.
pub(crate) fn trusted_interceptor(config: &Config, chain: Option<&ChainFacts>) -> Option<String> {
    let facts = chain?;
    if !facts.probably_intercepted(&config.endpoint) {
        return None;
    }
    let whose = if is_amazon_endpoint(&config.endpoint) {
        "was not Amazon's"
    } else {
        "was issued by a CA named like a TLS-inspecting proxy"
    };
    Some(format!(
        "the chain the server presented {whose} ({}): a TLS-inspecting (intercepting) proxy \
         trusted through root_ca is probably in the way; {}",
        facts.describe(),
        interception_remedy(&config.endpoint)
    ))
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
