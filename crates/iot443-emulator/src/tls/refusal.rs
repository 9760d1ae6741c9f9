//! Why a TLS handshake was refused, and how rustls' errors map to those reasons.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustls::CertificateError;

use super::ALPN_MQTT_CA_STR;
use crate::peer_text::peer_text;

/// Why [`TlsAcceptor::accept`](super::TlsAcceptor::accept) refused a connection.
///
/// The `Display` text is the operator's log line: it names the peer, the reason, and what the
/// client must change. What the client sent (its ALPN list, its SNI) is cut to a bounded
/// length there; the fields keep it whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeRefusal {
    /// Port-443 listener: the ClientHello carried no ALPN extension. With
    /// [`MissingAlpn::Alert`](super::MissingAlpn::Alert) the client received a fatal
    /// `no_application_protocol` alert.
    #[error(
        "refused TLS from {peer}: the client offered no ALPN; port 443 needs ALPN \
         {ALPN_MQTT_CA_STR} for MQTT with a client certificate (or connect to the MQTTS port \
         8883, which needs none)"
    )]
    MissingAlpn {
        /// The client's address.
        peer: SocketAddr,
    },
    /// Port-443 listener: the client offered ALPN protocols, none of them `x-amzn-mqtt-ca`; the
    /// client received a fatal `no_application_protocol` alert.
    #[error(
        "refused TLS from {peer}: the client offered ALPN {} but not \
         {ALPN_MQTT_CA_STR}; port 443 with a client certificate needs {ALPN_MQTT_CA_STR} (`mqtt` \
         is for custom authorizers; check the length prefix of the protocol list); \
         on IoT Core's 443, x-amzn-http-ca is HTTPS publish and http/1.1 or no ALPN is MQTT over \
         WebSocket",
        peer_text(&offered_list(.offered))
    )]
    WrongAlpn {
        /// The client's address.
        peer: SocketAddr,
        /// The protocols offered (lossy UTF-8).
        offered: Vec<String>,
    },
    /// The client sent no certificate.
    #[error(
        "refused TLS from {peer}: the client presented no certificate; IoT Core authenticates \
         devices by X.509 client certificate: configure `certificate` and `private_key`"
    )]
    NoClientCertificate {
        /// The client's address.
        peer: SocketAddr,
    },
    /// The client certificate was not issued by the emulator's CA (or its signature is bad).
    #[error(
        "refused TLS from {peer}: the client certificate was not issued by the emulator's CA \
         ({reason}); use a device certificate issued from ca.pem of the emulator's PKI folder"
    )]
    UnknownCa {
        /// The client's address.
        peer: SocketAddr,
        /// The verifier's finding.
        reason: CertificateError,
    },
    /// The client certificate has expired.
    #[error(
        "refused TLS from {peer}: the client certificate expired{}; issue a new device \
         certificate",
        not_after.map(|t| format!(" at {}", utc_text(t))).unwrap_or_default()
    )]
    ExpiredCertificate {
        /// The client's address.
        peer: SocketAddr,
        /// The certificate's `notAfter`, seconds since the Unix epoch, when known.
        not_after: Option<u64>,
    },
    /// The client certificate is not valid yet.
    #[error(
        "refused TLS from {peer}: the client certificate is not valid yet{}; check the clocks \
         of the device and of the emulator's host",
        not_before.map(|t| format!(" (valid from {})", utc_text(t))).unwrap_or_default()
    )]
    CertificateNotYetValid {
        /// The client's address.
        peer: SocketAddr,
        /// The certificate's `notBefore`, seconds since the Unix epoch, when known.
        not_before: Option<u64>,
    },
    /// The client certificate was refused for another reason (wrong key usage, revoked ...).
    #[error(
        "refused TLS from {peer}: the client certificate was refused ({reason}); issue a device \
         certificate with the emulator's PKI"
    )]
    BadCertificate {
        /// The client's address.
        peer: SocketAddr,
        /// The verifier's finding.
        reason: CertificateError,
    },
    /// Strict SNI: the client sent no SNI, or a name the server certificate does not hold. The
    /// client received a fatal `unrecognized_name` alert.
    #[error(
        "refused TLS from {peer}: {}; strict SNI mode needs the endpoint host name, one of {expected:?}",
        match sni {
            Some(name) => format!("the client sent SNI {:?}, which the server certificate does not hold", peer_text(name)),
            None => "the client sent no SNI (or an IP address, which SNI cannot carry)".to_owned(),
        }
    )]
    SniMismatch {
        /// The client's address.
        peer: SocketAddr,
        /// The SNI host name sent, if any.
        sni: Option<String>,
        /// The DNS names the server certificate holds.
        expected: Vec<String>,
    },
    /// The client aborted the handshake with an alert, typically because it does not trust the
    /// server certificate.
    #[error(
        "TLS handshake with {peer} failed: the client sent the alert {alert:?}; if it does not \
         trust the server certificate, configure the client with root_ca = ca.pem of the \
         emulator's PKI folder and connect to a name the certificate holds (localhost, ...)"
    )]
    ClientAborted {
        /// The client's address.
        peer: SocketAddr,
        /// The alert the client sent.
        alert: rustls::AlertDescription,
    },
    /// The first bytes were not a TLS ClientHello (for example plain MQTT sent to the TLS port).
    #[error(
        "refused TLS from {peer}: the client does not speak TLS ({source}); MQTT to IoT Core \
         is always inside TLS: enable TLS in the client"
    )]
    NotTls {
        /// The client's address.
        peer: SocketAddr,
        /// What rustls found.
        source: rustls::Error,
    },
    /// The handshake did not finish in time.
    #[error(
        "refused TLS from {peer}: no complete TLS handshake within {after:?}; the client is too \
         slow, stalled, or not speaking TLS"
    )]
    Timeout {
        /// The client's address.
        peer: SocketAddr,
        /// The handshake time limit.
        after: Duration,
    },
    /// The connection failed or the client hung up during the handshake.
    #[error(
        "TLS handshake with {peer} failed: {source}; the client closed the connection (it may \
         reject the server certificate: it must trust ca.pem) or the network failed"
    )]
    Io {
        /// The client's address.
        peer: SocketAddr,
        /// The underlying error.
        source: io::Error,
    },
    /// rustls refused the handshake for another reason (no common cipher suite or version ...).
    #[error("refused TLS from {peer}: {source}")]
    Tls {
        /// The client's address.
        peer: SocketAddr,
        /// The underlying error.
        source: rustls::Error,
    },
}

impl HandshakeRefusal {
    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        match self {
            Self::MissingAlpn { peer }
            | Self::WrongAlpn { peer, .. }
            | Self::NoClientCertificate { peer }
            | Self::UnknownCa { peer, .. }
            | Self::ExpiredCertificate { peer, .. }
            | Self::CertificateNotYetValid { peer, .. }
            | Self::BadCertificate { peer, .. }
            | Self::SniMismatch { peer, .. }
            | Self::ClientAborted { peer, .. }
            | Self::NotTls { peer, .. }
            | Self::Timeout { peer, .. }
            | Self::Io { peer, .. }
            | Self::Tls { peer, .. } => *peer,
        }
    }

    /// A short stable name of the reason, for structured logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingAlpn { .. } => "missing_alpn",
            Self::WrongAlpn { .. } => "wrong_alpn",
            Self::NoClientCertificate { .. } => "no_client_certificate",
            Self::UnknownCa { .. } => "unknown_ca",
            Self::ExpiredCertificate { .. } => "expired_certificate",
            Self::CertificateNotYetValid { .. } => "certificate_not_yet_valid",
            Self::BadCertificate { .. } => "bad_certificate",
            Self::SniMismatch { .. } => "sni_mismatch",
            Self::ClientAborted { .. } => "client_aborted",
            Self::NotTls { .. } => "not_tls",
            Self::Timeout { .. } => "timeout",
            Self::Io { .. } => "io",
            Self::Tls { .. } => "tls",
        }
    }

    /// Classifies an error of the handshake. `offered` is the client's ALPN list, `hello_read`
    /// whether the ClientHello had been parsed.
    pub(super) fn from_handshake_error(
        peer: SocketAddr,
        error: io::Error,
        offered: Option<&[String]>,
        hello_read: bool,
    ) -> HandshakeRefusal {
        let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
            return Self::Io { peer, source: error };
        };
        match tls {
            rustls::Error::NoCertificatesPresented => Self::NoClientCertificate { peer },
            rustls::Error::NoApplicationProtocol => Self::WrongAlpn {
                peer,
                offered: offered.map(<[String]>::to_vec).unwrap_or_default(),
            },
            rustls::Error::InvalidCertificate(reason) => Self::from_certificate_error(peer, reason),
            rustls::Error::AlertReceived(alert) => Self::ClientAborted { peer, alert: *alert },
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }
                if !hello_read =>
            {
                Self::NotTls { peer, source: tls.clone() }
            }
            other => Self::Tls { peer, source: other.clone() },
        }
    }

    fn from_certificate_error(peer: SocketAddr, reason: &CertificateError) -> HandshakeRefusal {
        match reason {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                Self::UnknownCa { peer, reason: reason.clone() }
            }
            CertificateError::Expired => Self::ExpiredCertificate { peer, not_after: None },
            CertificateError::ExpiredContext { not_after, .. } => {
                Self::ExpiredCertificate { peer, not_after: Some(not_after.as_secs()) }
            }
            CertificateError::NotValidYet => {
                Self::CertificateNotYetValid { peer, not_before: None }
            }
            CertificateError::NotValidYetContext { not_before, .. } => {
                Self::CertificateNotYetValid { peer, not_before: Some(not_before.as_secs()) }
            }
            other => Self::BadCertificate { peer, reason: other.clone() },
        }
    }
}

/// The offered ALPN protocols as one text, `["a", "b"]`, for [`peer_text`].
fn offered_list(offered: &[String]) -> String {
    format!("{offered:?}")
}

/// `2049-12-31T23:59:59Z` from seconds since the Unix epoch.
fn utc_text(secs: u64) -> String {
    let Ok(at) = i64::try_from(secs)
        .map_err(drop)
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).map_err(drop))
    else {
        return format!("{secs} s after the Unix epoch");
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 50312))
    }

    #[test]
    fn log_line_names_peer_reason_and_remedy() {
        let text = HandshakeRefusal::MissingAlpn { peer: peer() }.to_string();
        assert!(text.starts_with(
            "refused TLS from 127.0.0.1:50312: the client offered no ALPN; port 443 needs ALPN \
             x-amzn-mqtt-ca"
        ));
    }

    #[test]
    fn rustls_errors_are_classified() {
        let wrap = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let classify = |e| HandshakeRefusal::from_handshake_error(peer(), wrap(e), None, true);
        assert!(matches!(
            classify(rustls::Error::NoCertificatesPresented),
            HandshakeRefusal::NoClientCertificate { .. }
        ));
        assert!(matches!(
            classify(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)),
            HandshakeRefusal::UnknownCa { .. }
        ));
        let expired =
            classify(rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
                time: rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
                    2_000_000_000,
                )),
                not_after: rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
                    1_700_000_000,
                )),
            }));
        assert!(expired.to_string().contains("expired at 2023-11-14T22:13:20Z"), "{expired}");
        let eof = HandshakeRefusal::from_handshake_error(
            peer(),
            io::ErrorKind::UnexpectedEof.into(),
            None,
            true,
        );
        assert!(matches!(eof, HandshakeRefusal::Io { .. }));
    }

    #[test]
    fn a_long_alpn_list_gives_a_bounded_line() {
        // The most a ClientHello can carry: 257 protocols of 255 bytes.
        let offered = vec!["p".repeat(255); 257];
        let total = offered_list(&offered).len();
        let text = HandshakeRefusal::WrongAlpn { peer: peer(), offered }.to_string();
        assert!(text.len() < 1_000, "{} bytes", text.len());
        assert!(text.contains(&format!("…({total} bytes)")), "{text}");
    }
}
