//! The TLS rules of the emulator's listeners, as AWS IoT Core applies them (`AWS-IOT.md` §1-2).
//!
//! * Every listener speaks TLS 1.2 and 1.3 (rustls with the ring provider) and never issues
//!   session tickets (IoT Core does not support them). Every road but the WebSocket one
//!   requires a client certificate issued by the emulator's CA ([`crate::pki::Pki`]).
//! * The port-443-style listener ([`ListenerKind::Alpn`]) routes on the ALPN list of the
//!   ClientHello, as IoT Core does on 443 (`AWS-IOT-ROADS.md` §1.2 E1, §2.3):
//!
//!   | ALPN offered | road ([`Road`]) | client certificate |
//!   |---|---|---|
//!   | contains `x-amzn-mqtt-ca` | MQTT, `x-amzn-mqtt-ca` selected | required |
//!   | contains `x-amzn-http-ca` (and not the above) | HTTPS publish, `x-amzn-http-ca` selected | required |
//!   | none, or a list with `http/1.1` | HTTP server for the WebSocket upgrade (SigV4), `http/1.1` selected when offered | not requested |
//!   | only other protocols | fatal `no_application_protocol` alert | — |
//!
//!   That is [`MissingAlpn::Http`], the default. The two older variants reproduce symptoms
//!   reported from the field for a client without `x-amzn-mqtt-ca` (`AWS-IOT.md` §1.3): a
//!   failed handshake ([`MissingAlpn::Alert`]) or a completed handshake after which CONNECT is
//!   never answered ([`MissingAlpn::NoConnAck`]); both still serve `x-amzn-http-ca`.
//! * The MQTTS listener ([`ListenerKind::Mqtts`], port 8883 in the cloud) needs no ALPN.
//! * The HTTPS listener ([`ListenerKind::Https`], port 8443 in the cloud) serves the HTTPS
//!   publish API with a client certificate, no ALPN needed.
//! * Strict SNI mode refuses a ClientHello without SNI, or with a name the server certificate
//!   does not hold, with a fatal `unrecognized_name` alert.
//!
//! [`TlsAcceptor::accept`] reads the ClientHello first (`LazyConfigAcceptor`), applies these
//! rules, completes the handshake within a time limit, and returns either the stream with what
//! is known about the peer, or a typed [`HandshakeRefusal`] that it has already logged.

mod refusal;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::{Acceptor, WebPkiClientVerifier};
use rustls::{ProtocolVersion, ServerConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::peer_text::peer_text;
use crate::pki::{Pki, certificate_sha256};
pub use refusal::HandshakeRefusal;

/// The ALPN protocol IoT Core requires on port 443 for MQTT with a client certificate.
pub const ALPN_MQTT_CA: &[u8] = b"x-amzn-mqtt-ca";
const ALPN_MQTT_CA_STR: &str = "x-amzn-mqtt-ca";
/// The ALPN protocol IoT Core serves the HTTPS publish API for on port 443 (client
/// certificate).
pub const ALPN_HTTP_CA: &[u8] = b"x-amzn-http-ca";
const ALPN_HTTP_CA_STR: &str = "x-amzn-http-ca";
/// HTTP/1.1, what WebSocket clients may offer on 443.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";
const ALPN_HTTP11_STR: &str = "http/1.1";

/// The default limit for a complete handshake, from the first byte to the client's Finished.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a refused connection is kept open after the alert, waiting for the client to close
/// first: closing with unread client bytes makes the kernel send a reset, which can destroy the
/// alert before the client reads it.
const LINGER_AFTER_REFUSAL: Duration = Duration::from_secs(1);

/// A TLS alert record, plaintext (sent before any key exchange): content type alert (21),
/// record version TLS 1.2, length 2, level fatal (2), then the description.
fn fatal_alert_record(description: rustls::AlertDescription) -> [u8; 7] {
    [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, u8::from(description)]
}

/// Which rules a listener applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenerKind {
    /// The port-443-style listener: routes on the ALPN list (see the [module documentation](self)).
    Alpn {
        /// What a ClientHello without `x-amzn-mqtt-ca` or `x-amzn-http-ca` gets.
        on_missing: MissingAlpn,
    },
    /// The MQTTS listener (port 8883 in the cloud): no ALPN needed, none selected.
    Mqtts,
    /// The HTTPS publish listener (port 8443 in the cloud): client certificate, no ALPN needed,
    /// none selected.
    Https,
}

/// What the port-443-style listener does with a client that offers neither `x-amzn-mqtt-ca`
/// nor `x-amzn-http-ca` (no ALPN extension, or a list without them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissingAlpn {
    /// IoT Core's documented behaviour: no ALPN, or a list with `http/1.1`, reaches the HTTP
    /// server of the WebSocket road (no client certificate requested); a list of only other
    /// protocols gets the fatal alert `no_application_protocol` (120).
    #[default]
    Http,
    /// Field-reported symptom (`AWS-IOT.md` §1.3): fail the handshake with the fatal alert
    /// `no_application_protocol` (120), whatever was offered.
    Alert,
    /// Field-reported symptom: complete the handshake, then never answer: [`Accepted::road`]
    /// is [`Road::Silent`], and the caller reads and discards everything the client sends
    /// (CONNECT gets no CONNACK).
    NoConnAck,
}

/// What an accepted connection is to be served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Road {
    /// MQTT with the client certificate's identity.
    Mqtt,
    /// [`MissingAlpn::NoConnAck`]: read and discard everything, never answer.
    Silent,
    /// The HTTP server of the WebSocket road: `GET /mqtt` upgraded after SigV4 verification.
    /// There is no client certificate.
    WebSocket,
    /// The HTTPS publish API (`POST /topics/…`) with the client certificate's identity.
    HttpsPublish,
}

/// What is known about an accepted client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The client's address.
    pub address: SocketAddr,
    /// The common name of the client certificate (the device name for the emulator's PKI).
    pub common_name: Option<String>,
    /// Lowercase hex SHA-256 of the client certificate's DER (IoT Core's certificate id);
    /// `None` on the WebSocket road, where no certificate is requested.
    pub certificate_sha256: Option<String>,
    /// The SNI host name the client sent.
    pub sni: Option<String>,
    /// The negotiated ALPN protocol.
    pub alpn: Option<String>,
    /// `TLSv1.2` or `TLSv1.3`.
    pub tls_version: String,
    /// The negotiated cipher suite, IANA name (e.g. `TLS13_AES_256_GCM_SHA384`).
    pub cipher_suite: String,
}

/// A client whose handshake completed.
#[derive(Debug)]
pub struct Accepted {
    /// The TLS stream, ready for the road's protocol.
    pub stream: TlsStream<TcpStream>,
    /// What is known about the client.
    pub peer: PeerInfo,
    /// What to serve on the stream.
    pub road: Road,
}

/// [`TlsAcceptor::new`] could not build the TLS configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The client certificate verifier could not be built from the CA.
    #[error(
        "could not verify client certificates against the CA in {dir}: {source}; delete \
         ca.pem and ca.key there so that a new CA is created"
    )]
    Verifier {
        /// The PKI folder.
        dir: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// rustls refused the server certificate, its key, or the protocol versions.
    #[error(
        "could not build the TLS server configuration from {dir}: {source}; delete server.crt \
         and server.key there so that they are issued again"
    )]
    Server {
        /// The PKI folder.
        dir: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: rustls::Error,
    },
}

/// Accepts TLS connections under the rules of one listener.
#[derive(Clone)]
pub struct TlsAcceptor {
    kind: ListenerKind,
    strict_sni: bool,
    handshake_timeout: Duration,
    /// DNS names of the server certificate (lowercase), for strict SNI.
    dns_names: Vec<String>,
    /// Selects `x-amzn-mqtt-ca`; refuses other offered lists with `no_application_protocol`.
    alpn_config: Arc<ServerConfig>,
    /// Selects `x-amzn-http-ca`.
    http_ca_config: Arc<ServerConfig>,
    /// Selects no ALPN.
    plain_config: Arc<ServerConfig>,
    /// No client certificate requested; selects `http/1.1` when offered.
    websocket_config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("kind", &self.kind)
            .field("strict_sni", &self.strict_sni)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("dns_names", &self.dns_names)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Builds the acceptor: the server certificate of `pki`, client certificates verified
    /// against its CA, TLS 1.2 and 1.3, no session tickets, and the ALPN rules of `kind`.
    /// The handshake limit is [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn new(pki: &Pki, kind: ListenerKind, strict_sni: bool) -> Result<Self, TlsConfigError> {
        let plain_config = server_config(pki, Vec::new(), true)?;
        let alpn_config = server_config(pki, vec![ALPN_MQTT_CA.to_vec()], true)?;
        let http_ca_config = server_config(pki, vec![ALPN_HTTP_CA.to_vec()], true)?;
        let websocket_config = server_config(pki, vec![ALPN_HTTP11.to_vec()], false)?;
        let dns_names = pki
            .server_names()
            .iter()
            .filter(|name| name.parse::<std::net::IpAddr>().is_err())
            .cloned()
            .collect();
        Ok(TlsAcceptor {
            kind,
            strict_sni,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            dns_names,
            alpn_config: Arc::new(alpn_config),
            http_ca_config: Arc::new(http_ca_config),
            plain_config: Arc::new(plain_config),
            websocket_config: Arc::new(websocket_config),
        })
    }

    /// Sets the limit for a complete handshake.
    #[must_use]
    pub fn with_handshake_timeout(mut self, limit: Duration) -> Self {
        self.handshake_timeout = limit;
        self
    }

    /// The listener's rules.
    pub fn kind(&self) -> ListenerKind {
        self.kind
    }

    /// The handshake limit.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Performs the server side of the handshake on `tcp` under the listener's rules.
    ///
    /// A refusal has already been answered on the wire (a TLS alert where the rules call for
    /// one), the connection closed, and the reason logged with `tracing::warn!`.
    pub async fn accept(&self, tcp: TcpStream) -> Result<Accepted, HandshakeRefusal> {
        // The address is gone only when the peer is; 0.0.0.0:0 then stands for "unknown".
        let peer = tcp.peer_addr().unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        let deadline = Instant::now() + self.handshake_timeout;
        let result = self.handshake(tcp, peer, deadline).await;
        match &result {
            Ok(accepted) => tracing::debug!(
                peer = %peer,
                common_name = ?accepted.peer.common_name.as_deref().map(peer_text),
                sni = ?accepted.peer.sni.as_deref().map(peer_text),
                alpn = ?accepted.peer.alpn,
                tls_version = %accepted.peer.tls_version,
                cipher_suite = %accepted.peer.cipher_suite,
                road = ?accepted.road,
                "TLS handshake completed"
            ),
            Err(refusal) => {
                tracing::warn!(peer = %peer, reason = refusal.kind(), "{refusal}");
            }
        }
        result
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        deadline: Instant,
    ) -> Result<Accepted, HandshakeRefusal> {
        let timeout = || HandshakeRefusal::Timeout { peer, after: self.handshake_timeout };

        let start =
            match timeout_at(deadline, LazyConfigAcceptor::new(Acceptor::default(), tcp)).await {
                Err(_) => return Err(timeout()),
                Ok(Err(error)) => {
                    return Err(HandshakeRefusal::from_handshake_error(peer, error, None, false));
                }
                Ok(Ok(start)) => start,
            };
        let hello = start.client_hello();
        let sni = hello.server_name().map(str::to_owned);
        let offered: Option<Vec<String>> = hello
            .alpn()
            .map(|protocols| protocols.map(|p| String::from_utf8_lossy(p).into_owned()).collect());

        if self.strict_sni && !self.sni_matches(sni.as_deref()) {
            refuse_with_alert(start.io, rustls::AlertDescription::UnrecognisedName, deadline).await;
            return Err(HandshakeRefusal::SniMismatch {
                peer,
                sni,
                expected: self.dns_names.clone(),
            });
        }

        let (config, road) = match self.kind {
            ListenerKind::Mqtts => (&self.plain_config, Road::Mqtt),
            ListenerKind::Https => (&self.plain_config, Road::HttpsPublish),
            ListenerKind::Alpn { on_missing } => {
                let offers = |protocol: &str| {
                    offered.as_ref().is_some_and(|list| list.iter().any(|p| p == protocol))
                };
                if offers(ALPN_MQTT_CA_STR) {
                    (&self.alpn_config, Road::Mqtt)
                } else if offers(ALPN_HTTP_CA_STR) {
                    (&self.http_ca_config, Road::HttpsPublish)
                } else {
                    match (on_missing, &offered) {
                        (MissingAlpn::Http, None) => (&self.websocket_config, Road::WebSocket),
                        (MissingAlpn::Http, Some(_)) if offers(ALPN_HTTP11_STR) => {
                            (&self.websocket_config, Road::WebSocket)
                        }
                        (MissingAlpn::NoConnAck, _) => (&self.plain_config, Road::Silent),
                        // rustls answers a list without our protocol with
                        // no_application_protocol.
                        (MissingAlpn::Http | MissingAlpn::Alert, Some(_)) => {
                            (&self.alpn_config, Road::Mqtt)
                        }
                        // With no ALPN extension rustls would carry on: refuse here, the same
                        // way.
                        (MissingAlpn::Alert, None) => {
                            refuse_with_alert(
                                start.io,
                                rustls::AlertDescription::NoApplicationProtocol,
                                deadline,
                            )
                            .await;
                            return Err(HandshakeRefusal::MissingAlpn { peer });
                        }
                    }
                }
            }
        };

        let handshake = start.into_stream(Arc::clone(config)).into_fallible();
        let stream = match timeout_at(deadline, handshake).await {
            Err(_) => return Err(timeout()),
            Ok(Err((error, tcp))) => {
                // rustls has written its alert (if any); let the client read it.
                linger_close(tcp, deadline).await;
                return Err(HandshakeRefusal::from_handshake_error(
                    peer,
                    error,
                    offered.as_deref(),
                    true,
                ));
            }
            Ok(Ok(stream)) => stream,
        };

        let peer_info = peer_info(&stream, peer);
        if road != Road::WebSocket && peer_info.certificate_sha256.is_none() {
            // The verifier requires a certificate on these roads, so this does not happen.
            return Err(HandshakeRefusal::NoClientCertificate { peer });
        }
        Ok(Accepted { stream, peer: peer_info, road })
    }

    fn sni_matches(&self, sni: Option<&str>) -> bool {
        sni.is_some_and(|name| self.dns_names.iter().any(|dns| dns.eq_ignore_ascii_case(name)))
    }
}

/// A server configuration selecting `alpn`; `client_auth` requires a client certificate
/// issued by the PKI's CA, else none is requested.
fn server_config(
    pki: &Pki,
    alpn: Vec<Vec<u8>>,
    client_auth: bool,
) -> Result<ServerConfig, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_err = |source| TlsConfigError::Server { dir: pki.dir.clone(), source };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(server_err)?;
    let builder = if client_auth {
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(pki.ca_roots()),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|source| TlsConfigError::Verifier { dir: pki.dir.clone(), source })?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config =
        builder.with_single_cert(pki.server_cert_chain(), pki.server_key()).map_err(server_err)?;
    // IoT Core does not support session tickets (RFC 5077; TLS 1.3 tickets likewise). The
    // builder's ticketer never produces tickets; TLS 1.3 sends none with this set to 0.
    config.send_tls13_tickets = 0;
    config.alpn_protocols = alpn;
    Ok(config)
}

/// Sends a fatal plaintext alert, then closes the way [`linger_close`] does.
async fn refuse_with_alert(mut tcp: TcpStream, alert: rustls::AlertDescription, deadline: Instant) {
    let record = fatal_alert_record(alert);
    // Best effort: the client may already be gone, and the refusal is reported either way.
    if timeout_at(deadline, tcp.write_all(&record)).await.is_ok() {
        linger_close(tcp, deadline).await;
    }
}

/// Half-closes `tcp` and reads until the client closes (or a short while passes), so that the
/// alert already written reaches the client instead of being overtaken by a reset.
async fn linger_close(mut tcp: TcpStream, deadline: Instant) {
    let limit = deadline.min(Instant::now() + LINGER_AFTER_REFUSAL);
    let drain = async {
        tcp.shutdown().await?;
        let mut sink = [0u8; 1024];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<(), io::Error>(())
    };
    // Errors and the time limit both mean: stop waiting and drop the socket.
    let _ = timeout_at(limit, drain).await;
}

/// The facts of a completed handshake; no certificate facts when the client presented none
/// (the WebSocket road).
fn peer_info(stream: &TlsStream<TcpStream>, address: SocketAddr) -> PeerInfo {
    let (_, conn) = stream.get_ref();
    let leaf = conn.peer_certificates().and_then(|certs| certs.first());
    let common_name =
        leaf.and_then(|leaf| X509Certificate::from_der(leaf).ok()).and_then(|(_, cert)| {
            cert.subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_owned)
        });
    let tls_version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    };
    let cipher_suite = conn.negotiated_cipher_suite().map_or_else(
        || "unknown".to_owned(),
        |suite| {
            let id = suite.suite();
            id.as_str().map_or_else(|| format!("{id:?}"), str::to_owned)
        },
    );
    PeerInfo {
        address,
        common_name,
        certificate_sha256: leaf.map(|leaf| certificate_sha256(leaf)),
        sni: conn.server_name().map(str::to_owned),
        alpn: conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
        tls_version,
        cipher_suite,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_alpn_alert_bytes() {
        assert_eq!(
            fatal_alert_record(rustls::AlertDescription::NoApplicationProtocol),
            [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x78]
        );
        assert_eq!(fatal_alert_record(rustls::AlertDescription::UnrecognisedName)[6], 112);
    }
}
