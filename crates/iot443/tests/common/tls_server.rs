//! TLS servers and certificates made in the test: a CA with any name, a server certificate it
//! issues, and a rustls acceptor on an ephemeral loopback port that hands each accepted TLS
//! stream to the test, with the ALPN rule the test asks for.

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A CA made in the test, able to issue server certificates.
pub struct TestCa {
    pub cert: CertificateDer<'static>,
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    /// A self-signed CA named `CN=common_name, O=organisation`.
    pub fn new(common_name: &str, organisation: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        params.distinguished_name.push(rcgen::DnType::OrganizationName, organisation);
        params.key_usages =
            vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            cert: cert.der().clone(),
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `host` issued by this CA, and its key.
    pub fn issue_server(
        &self,
        host: &str,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, host);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone(), self.cert.clone()], key)
    }

    /// Writes the CA certificate as PEM into `dir/name`, for `root_ca`.
    pub fn write(&self, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

/// How a [`TestTlsServer`] answers.
pub struct ServerSetup {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// The ALPN protocols the server selects from; empty: it ignores the client's ALPN (the
    /// handshake completes without any).
    pub alpn: Vec<Vec<u8>>,
    /// Client certificates required, verified against these roots; `None`: none asked for.
    pub client_roots: Option<RootCertStore>,
}

/// A TLS acceptor on an ephemeral loopback port; accepted, handshaken streams come out of
/// [`TestTlsServer::next`].
pub struct TestTlsServer {
    pub addr: SocketAddr,
    accepted: mpsc::UnboundedReceiver<TlsStream<TcpStream>>,
}

impl TestTlsServer {
    pub async fn start(setup: ServerSetup) -> TestTlsServer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match setup.client_roots {
            Some(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .unwrap(),
            ),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(setup.chain, setup.key).unwrap();
        config.alpn_protocols = setup.alpn;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, accepted) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    // A failed handshake is the client's business (and the test's assertion).
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = sender.send(stream);
                    }
                });
            }
        });
        TestTlsServer { addr, accepted }
    }

    /// A handshaken connection already waiting, if any.
    pub fn try_next(&mut self) -> Option<TlsStream<TcpStream>> {
        self.accepted.try_recv().ok()
    }

    /// The next handshaken connection.
    pub async fn next(&mut self) -> TlsStream<TcpStream> {
        super::within("a TLS connection", self.accepted.recv()).await.unwrap()
    }
}

/// An HTTP CONNECT proxy that opens every tunnel to `upstream`, whatever host it is asked for
/// (so that a test can use an `amazonaws.com` endpoint name and still stay on loopback).
pub async fn pinned_proxy(upstream: SocketAddr) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0_u8; 1];
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    addr
}
