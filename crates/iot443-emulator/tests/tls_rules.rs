//! The listeners' TLS rules, over real TLS on loopback: a rustls client (ring provider) against
//! `TlsAcceptor::accept`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use iot443_emulator::pki::{DeviceKeyKind, Pki, PkiOptions};
use iot443_emulator::tls::{
    Accepted, HandshakeRefusal, ListenerKind, MissingAlpn, Road, TlsAcceptor,
};
use rustls::client::Resumption;
use rustls::version::{TLS12, TLS13};
use rustls::{
    AlertDescription, ClientConfig, HandshakeKind, RootCertStore, SupportedProtocolVersion,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Upper bound for anything awaited; only reached when a test is about to fail.
const WAIT: Duration = Duration::from_secs(20);

const MQTT_CA: &str = "x-amzn-mqtt-ca";
const ALERT_443: ListenerKind = ListenerKind::Alpn { on_missing: MissingAlpn::Alert };
const SILENT_443: ListenerKind = ListenerKind::Alpn { on_missing: MissingAlpn::NoConnAck };

struct Fixture {
    _dir: tempfile::TempDir,
    pki: Pki,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    Fixture { _dir: dir, pki }
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn identity(pki: &Pki, name: &str) -> Option<Identity> {
    Some((pki.device_cert_chain(name).unwrap(), pki.device_key(name).unwrap()))
}

/// What the test client offers.
struct ClientSpec {
    roots: RootCertStore,
    identity: Option<Identity>,
    alpn: Vec<&'static str>,
    versions: Vec<&'static SupportedProtocolVersion>,
    sni: bool,
    server_name: &'static str,
}

impl ClientSpec {
    /// A well-behaved device: CA trusted, device certificate, ALPN x-amzn-mqtt-ca, SNI.
    fn device(pki: &Pki) -> ClientSpec {
        ClientSpec {
            roots: pki.ca_roots(),
            identity: identity(pki, "device"),
            alpn: vec![MQTT_CA],
            versions: vec![&TLS13, &TLS12],
            sni: true,
            server_name: "localhost",
        }
    }

    fn config(self) -> (Arc<ClientConfig>, &'static str) {
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&self.versions)
                .unwrap()
                .with_root_certificates(self.roots);
        let mut config = match self.identity {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        config.enable_sni = self.sni;
        (Arc::new(config), self.server_name)
    }
}

struct Outcome {
    server: Result<Accepted, HandshakeRefusal>,
    client: io::Result<TlsStream<TcpStream>>,
    client_addr: SocketAddr,
}

/// A loopback listener whose one connection `acceptor` handles, for tests that drive the
/// client side by hand; returns its address and the server task.
async fn serve_one(
    acceptor: TlsAcceptor,
) -> (SocketAddr, tokio::task::JoinHandle<Result<Accepted, HandshakeRefusal>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        acceptor.accept(tcp).await
    });
    (addr, server)
}

/// One connection: the server side runs `acceptor.accept`, the client side a rustls handshake.
/// A client that completed its handshake is returned with the connection open (in TLS 1.3 the
/// client finishes before the server has judged its certificate).
async fn connect(acceptor: TlsAcceptor, config: (Arc<ClientConfig>, &'static str)) -> Outcome {
    let (addr, server) = serve_one(acceptor).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client_addr = tcp.local_addr().unwrap();
    let (config, name) = config;
    let name = ServerName::try_from(name).unwrap().to_owned();
    let client = timeout(WAIT, TlsConnector::from(config).connect(name, tcp))
        .await
        .expect("client handshake hung");
    // A client that failed has dropped its socket. One that succeeded keeps it open: a server
    // that refuses it anyway (TLS 1.3 client authentication) lingers at most a second for it.
    let server = timeout(WAIT, server).await.expect("server hung").unwrap();
    Outcome { server, client, client_addr }
}

fn alert_of(error: &io::Error) -> Option<AlertDescription> {
    match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    }
}

/// The alert the client received: during its handshake, or on its first read after it.
async fn client_alert(client: io::Result<TlsStream<TcpStream>>) -> Option<AlertDescription> {
    match client {
        Err(e) => alert_of(&e),
        Ok(mut stream) => {
            let mut buf = [0u8; 64];
            match timeout(WAIT, stream.read(&mut buf)).await.expect("client read hung") {
                Err(e) => alert_of(&e),
                Ok(n) => panic!("expected an alert, read {n} bytes"),
            }
        }
    }
}

fn acceptor(pki: &Pki, kind: ListenerKind, strict_sni: bool) -> TlsAcceptor {
    TlsAcceptor::new(pki, kind, strict_sni).unwrap()
}

/// The connection carries data both ways.
async fn exchange(accepted: &mut Accepted, client: &mut TlsStream<TcpStream>) {
    client.write_all(b"\x10\x00").await.unwrap();
    let mut buf = [0u8; 2];
    timeout(WAIT, accepted.stream.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf, b"\x10\x00");
    accepted.stream.write_all(b"\x20\x02\x00\x00").await.unwrap();
    accepted.stream.flush().await.unwrap();
    let mut buf = [0u8; 4];
    timeout(WAIT, client.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf, b"\x20\x02\x00\x00");
}

#[tokio::test]
async fn alpn_x_amzn_mqtt_ca_with_device_certificate_is_accepted() {
    let f = fixture();
    let out =
        connect(acceptor(&f.pki, ALERT_443, false), ClientSpec::device(&f.pki).config()).await;
    let mut accepted = out.server.unwrap();
    let mut client = out.client.unwrap();
    assert_eq!(accepted.road, Road::Mqtt);
    assert_eq!(accepted.peer.alpn.as_deref(), Some(MQTT_CA));
    assert_eq!(client.get_ref().1.alpn_protocol(), Some(MQTT_CA.as_bytes()));
    assert_eq!(accepted.peer.common_name.as_deref(), Some("device"));
    assert_eq!(
        accepted.peer.certificate_sha256,
        Some(f.pki.device("device").unwrap().certificate_sha256)
    );
    assert_eq!(accepted.peer.sni.as_deref(), Some("localhost"));
    assert_eq!(accepted.peer.address, out.client_addr);
    assert_eq!(accepted.peer.tls_version, "TLSv1.3");
    assert!(accepted.peer.cipher_suite.starts_with("TLS13_"), "{}", accepted.peer.cipher_suite);
    exchange(&mut accepted, &mut client).await;
}

#[tokio::test]
async fn no_alpn_is_refused_with_the_no_application_protocol_alert() {
    let f = fixture();
    for versions in [vec![&TLS13], vec![&TLS12]] {
        let spec = ClientSpec { alpn: vec![], versions, ..ClientSpec::device(&f.pki) };
        let out = connect(acceptor(&f.pki, ALERT_443, false), spec.config()).await;
        let refusal = out.server.unwrap_err();
        assert!(matches!(refusal, HandshakeRefusal::MissingAlpn { .. }), "{refusal}");
        assert_eq!(refusal.peer(), out.client_addr);
        assert!(
            refusal.to_string().starts_with(&format!(
                "refused TLS from {}: the client offered no ALPN; port 443 needs ALPN x-amzn-mqtt-ca",
                out.client_addr
            )),
            "{refusal}"
        );
        let error = out.client.unwrap_err();
        assert_eq!(alert_of(&error), Some(AlertDescription::NoApplicationProtocol), "{error}");
    }
}

#[tokio::test]
async fn alpn_mqtt_only_is_refused_as_wrong_alpn_with_the_alert() {
    let f = fixture();
    let spec = ClientSpec { alpn: vec!["mqtt"], ..ClientSpec::device(&f.pki) };
    let out = connect(acceptor(&f.pki, ALERT_443, false), spec.config()).await;
    match out.server.unwrap_err() {
        HandshakeRefusal::WrongAlpn { offered, peer } => {
            assert_eq!(offered, ["mqtt"]);
            assert_eq!(peer, out.client_addr);
        }
        other => panic!("expected WrongAlpn, got {other}"),
    }
    let error = out.client.unwrap_err();
    assert_eq!(alert_of(&error), Some(AlertDescription::NoApplicationProtocol), "{error}");
}

#[tokio::test]
async fn no_connack_mode_completes_the_handshake_and_marks_the_connection_silent() {
    let f = fixture();
    // (x-amzn-http-ca is not among the lists: it reaches HTTPS publish in every mode.)
    for alpn in [vec![], vec!["mqtt"], vec!["http/1.1", "h2"]] {
        let spec = ClientSpec { alpn: alpn.clone(), ..ClientSpec::device(&f.pki) };
        let out = connect(acceptor(&f.pki, SILENT_443, false), spec.config()).await;
        let mut accepted = out.server.unwrap();
        assert_eq!(accepted.road, Road::Silent, "ALPN {alpn:?}");
        assert_eq!(accepted.peer.alpn, None);
        let mut client = out.client.unwrap();
        assert_eq!(client.get_ref().1.alpn_protocol(), None);
        exchange(&mut accepted, &mut client).await;
    }
    // A client that offers the right protocol is served normally.
    let out =
        connect(acceptor(&f.pki, SILENT_443, false), ClientSpec::device(&f.pki).config()).await;
    let accepted = out.server.unwrap();
    assert_eq!(accepted.road, Road::Mqtt);
    assert_eq!(accepted.peer.alpn.as_deref(), Some(MQTT_CA));
}

#[tokio::test]
async fn no_client_certificate_is_refused() {
    let f = fixture();
    for versions in [vec![&TLS13], vec![&TLS12]] {
        let spec = ClientSpec { identity: None, versions, ..ClientSpec::device(&f.pki) };
        let out = connect(acceptor(&f.pki, ALERT_443, false), spec.config()).await;
        let refusal = out.server.unwrap_err();
        assert!(matches!(refusal, HandshakeRefusal::NoClientCertificate { .. }), "{refusal}");
        let alert = client_alert(out.client).await;
        assert!(
            matches!(
                alert,
                Some(AlertDescription::CertificateRequired | AlertDescription::HandshakeFailure)
            ),
            "{alert:?}"
        );
    }
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused_as_unknown_ca() {
    let f = fixture();
    let foreign = fixture();
    let spec =
        ClientSpec { identity: identity(&foreign.pki, "device"), ..ClientSpec::device(&f.pki) };
    let out = connect(acceptor(&f.pki, ALERT_443, false), spec.config()).await;
    let refusal = out.server.unwrap_err();
    assert!(matches!(refusal, HandshakeRefusal::UnknownCa { .. }), "{refusal}");
    assert_eq!(client_alert(out.client).await, Some(AlertDescription::UnknownCA));
}

#[tokio::test]
async fn expired_device_certificate_is_refused() {
    let f = fixture();
    let now = time::OffsetDateTime::now_utc();
    f.pki
        .issue_device_with_validity(
            "old",
            DeviceKeyKind::EcP256,
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        )
        .unwrap();
    for versions in [vec![&TLS13], vec![&TLS12]] {
        let spec = ClientSpec {
            identity: identity(&f.pki, "old"),
            versions,
            ..ClientSpec::device(&f.pki)
        };
        let out = connect(acceptor(&f.pki, ALERT_443, false), spec.config()).await;
        let refusal = out.server.unwrap_err();
        assert!(matches!(refusal, HandshakeRefusal::ExpiredCertificate { .. }), "{refusal}");
        assert!(refusal.to_string().contains("expired at 20"), "{refusal}");
        assert_eq!(client_alert(out.client).await, Some(AlertDescription::CertificateExpired));
    }
}

#[tokio::test]
async fn mqtts_listener_needs_no_alpn() {
    let f = fixture();
    for alpn in [vec![], vec![MQTT_CA]] {
        let spec = ClientSpec { alpn, ..ClientSpec::device(&f.pki) };
        let out = connect(acceptor(&f.pki, ListenerKind::Mqtts, false), spec.config()).await;
        let mut accepted = out.server.unwrap();
        assert_eq!(accepted.road, Road::Mqtt);
        assert_eq!(accepted.peer.alpn, None);
        assert_eq!(accepted.peer.common_name.as_deref(), Some("device"));
        exchange(&mut accepted, &mut out.client.unwrap()).await;
    }
}

#[tokio::test]
async fn strict_sni_refuses_a_missing_sni_and_accepts_localhost() {
    let f = fixture();
    let spec = ClientSpec { sni: false, ..ClientSpec::device(&f.pki) };
    let out = connect(acceptor(&f.pki, ALERT_443, true), spec.config()).await;
    match out.server.unwrap_err() {
        HandshakeRefusal::SniMismatch { sni, expected, .. } => {
            assert_eq!(sni, None);
            assert_eq!(expected, ["localhost"]);
        }
        other => panic!("expected SniMismatch, got {other}"),
    }
    let error = out.client.unwrap_err();
    assert_eq!(alert_of(&error), Some(AlertDescription::UnrecognisedName), "{error}");

    // An IP address cannot travel in SNI: a client that dials 127.0.0.1 sends none.
    let spec = ClientSpec { server_name: "127.0.0.1", ..ClientSpec::device(&f.pki) };
    let out = connect(acceptor(&f.pki, ALERT_443, true), spec.config()).await;
    assert!(matches!(out.server, Err(HandshakeRefusal::SniMismatch { sni: None, .. })));

    let out = connect(acceptor(&f.pki, ALERT_443, true), ClientSpec::device(&f.pki).config()).await;
    assert_eq!(out.server.unwrap().peer.sni.as_deref(), Some("localhost"));

    // Without strict mode a missing SNI is fine.
    let spec = ClientSpec { sni: false, ..ClientSpec::device(&f.pki) };
    let out = connect(acceptor(&f.pki, ALERT_443, false), spec.config()).await;
    assert_eq!(out.server.unwrap().peer.sni, None);
}

#[tokio::test]
async fn strict_sni_refuses_a_name_the_certificate_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        PkiOptions { hostnames: vec!["iot.example.test".into()], ..PkiOptions::default() };
    let pki = Pki::load_or_create(dir.path(), &options).unwrap();
    let spec = ClientSpec { server_name: "iot.example.test", ..ClientSpec::device(&pki) };
    let out = connect(acceptor(&pki, ALERT_443, true), spec.config()).await;
    assert_eq!(out.server.unwrap().peer.sni.as_deref(), Some("iot.example.test"));

    // A client that does not check the server's name can still send a foreign one.
    let other = fixture();
    let other_acceptor = acceptor(&other.pki, ALERT_443, true);
    let spec = ClientSpec {
        roots: pki.ca_roots(),
        identity: identity(&other.pki, "device"),
        server_name: "iot.example.test",
        ..ClientSpec::device(&pki)
    };
    let out = connect(other_acceptor, spec.config()).await;
    match out.server.unwrap_err() {
        HandshakeRefusal::SniMismatch { sni, .. } => {
            assert_eq!(sni.as_deref(), Some("iot.example.test"));
        }
        other => panic!("expected SniMismatch, got {other}"),
    }
}

#[tokio::test]
async fn tls_1_2_only_and_tls_1_3_only_clients_are_accepted() {
    let f = fixture();
    for (versions, expected) in [(vec![&TLS12], "TLSv1.2"), (vec![&TLS13], "TLSv1.3")] {
        let spec = ClientSpec { versions, ..ClientSpec::device(&f.pki) };
        let out = connect(acceptor(&f.pki, ALERT_443, false), spec.config()).await;
        let mut accepted = out.server.unwrap();
        assert_eq!(accepted.peer.tls_version, expected);
        assert_eq!(accepted.peer.alpn.as_deref(), Some(MQTT_CA));
        exchange(&mut accepted, &mut out.client.unwrap()).await;
    }
}

#[tokio::test]
async fn rsa_device_key_in_pkcs1_is_accepted() {
    let f = fixture();
    let pki = &f.pki;
    let name = "rsa-device";
    // Blocking key generation before any connection: nothing else runs on this runtime yet.
    pki.issue_device(name, DeviceKeyKind::Rsa2048).unwrap();
    assert!(matches!(pki.device_key(name).unwrap(), PrivateKeyDer::Pkcs1(_)));
    for versions in [vec![&TLS13], vec![&TLS12]] {
        let spec =
            ClientSpec { identity: identity(pki, name), versions, ..ClientSpec::device(pki) };
        let out = connect(acceptor(pki, ALERT_443, false), spec.config()).await;
        let accepted = out.server.unwrap();
        assert_eq!(accepted.peer.common_name.as_deref(), Some(name));
    }
}

#[tokio::test]
async fn no_session_tickets_so_tls13_never_resumes() {
    let f = fixture();
    let spec = ClientSpec { versions: vec![&TLS13], ..ClientSpec::device(&f.pki) };
    let (mut config, name) = spec.config();
    Arc::get_mut(&mut config).unwrap().resumption = Resumption::in_memory_sessions(8);
    for _ in 0..2 {
        let out = connect(acceptor(&f.pki, ALERT_443, false), (Arc::clone(&config), name)).await;
        let mut accepted = out.server.unwrap();
        let mut client = out.client.unwrap();
        // Reading application data makes the client process any ticket sent before it.
        exchange(&mut accepted, &mut client).await;
        assert_eq!(client.get_ref().1.handshake_kind(), Some(HandshakeKind::Full));
    }
}

#[tokio::test]
async fn tls12_session_id_resumption_keeps_the_client_identity() {
    let f = fixture();
    let spec = ClientSpec { versions: vec![&TLS12], ..ClientSpec::device(&f.pki) };
    let (mut config, name) = spec.config();
    Arc::get_mut(&mut config).unwrap().resumption = Resumption::in_memory_sessions(8);
    let acceptor = acceptor(&f.pki, ALERT_443, false);
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let out = connect(acceptor.clone(), (Arc::clone(&config), name)).await;
        let accepted = out.server.unwrap();
        assert_eq!(accepted.peer.common_name.as_deref(), Some("device"));
        assert_eq!(accepted.peer.alpn.as_deref(), Some(MQTT_CA));
        kinds.push(out.client.unwrap().get_ref().1.handshake_kind());
    }
    assert_eq!(kinds, [Some(HandshakeKind::Full), Some(HandshakeKind::Resumed)]);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_server_is_reported() {
    let f = fixture();
    let spec = ClientSpec { roots: fixture().pki.ca_roots(), ..ClientSpec::device(&f.pki) };
    let out = connect(acceptor(&f.pki, ALERT_443, false), spec.config()).await;
    let refusal = out.server.unwrap_err();
    assert!(
        matches!(
            refusal,
            HandshakeRefusal::ClientAborted { alert: AlertDescription::UnknownCA, .. }
        ),
        "{refusal}"
    );
    assert!(refusal.to_string().contains("root_ca = ca.pem"), "{refusal}");
    assert!(out.client.is_err());
}

#[tokio::test]
async fn plain_mqtt_on_the_tls_port_is_refused_as_not_tls() {
    let f = fixture();
    let acceptor = acceptor(&f.pki, ALERT_443, false);
    let (addr, server) = serve_one(acceptor).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // An MQTT 3.1.1 CONNECT, client id "d".
    tcp.write_all(b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01d").await.unwrap();
    let refusal = timeout(WAIT, server).await.unwrap().unwrap().unwrap_err();
    assert!(matches!(refusal, HandshakeRefusal::NotTls { .. }), "{refusal}");
}

#[tokio::test]
async fn a_stalled_client_times_out() {
    let f = fixture();
    let acceptor =
        acceptor(&f.pki, ALERT_443, false).with_handshake_timeout(Duration::from_millis(100));
    let (addr, server) = serve_one(acceptor).await;
    let _silent_client = TcpStream::connect(addr).await.unwrap();
    let refusal = timeout(WAIT, server).await.unwrap().unwrap().unwrap_err();
    match refusal {
        HandshakeRefusal::Timeout { after, .. } => assert_eq!(after, Duration::from_millis(100)),
        other => panic!("expected Timeout, got {other}"),
    }
}

/// OpenSSL's view of the missing-ALPN refusal: `tlsv1 alert no application protocol`.
#[tokio::test]
#[ignore = "needs openssl s_client"]
async fn openssl_reports_the_no_application_protocol_alert() {
    let f = fixture();
    let acceptor = acceptor(&f.pki, ALERT_443, false);
    let (addr, server) = serve_one(acceptor).await;
    let dir = f.pki.dir.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost"])
            .arg("-CAfile")
            .arg(dir.join("ca.pem"))
            .arg("-cert")
            .arg(dir.join("device.crt"))
            .arg("-key")
            .arg(dir.join("device.key"))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run openssl s_client")
    });
    let output = timeout(WAIT, output).await.unwrap().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("tlsv1 alert no application protocol"), "{text}");
    let refusal = timeout(WAIT, server).await.unwrap().unwrap().unwrap_err();
    assert!(matches!(refusal, HandshakeRefusal::MissingAlpn { .. }), "{refusal}");
}

const HTTP_443: ListenerKind = ListenerKind::Alpn { on_missing: MissingAlpn::Http };

#[tokio::test]
async fn default_mode_routes_no_alpn_and_http11_to_the_websocket_road_without_a_certificate() {
    let f = fixture();
    assert_eq!(MissingAlpn::default(), MissingAlpn::Http);
    for (alpn, selected) in [(vec![], None), (vec!["h2", "http/1.1"], Some("http/1.1"))] {
        let spec = ClientSpec { alpn: alpn.clone(), identity: None, ..ClientSpec::device(&f.pki) };
        let out = connect(acceptor(&f.pki, HTTP_443, false), spec.config()).await;
        let mut accepted = out.server.unwrap();
        assert_eq!(accepted.road, Road::WebSocket, "ALPN {alpn:?}");
        assert_eq!(accepted.peer.alpn.as_deref(), selected);
        assert_eq!(accepted.peer.certificate_sha256, None);
        let mut client = out.client.unwrap();
        exchange(&mut accepted, &mut client).await;
    }
}

#[tokio::test]
async fn websocket_road_requests_no_certificate_and_ignores_one_offered() {
    let f = fixture();
    // rustls sends its certificate only when asked: a device configured with one connects
    // without sending it.
    let spec = ClientSpec { alpn: vec!["http/1.1"], ..ClientSpec::device(&f.pki) };
    let out = connect(acceptor(&f.pki, HTTP_443, false), spec.config()).await;
    let accepted = out.server.unwrap();
    assert_eq!(accepted.road, Road::WebSocket);
    assert_eq!(accepted.peer.common_name, None);
}

#[tokio::test]
async fn x_amzn_http_ca_reaches_https_publish_with_a_required_certificate_in_every_mode() {
    let f = fixture();
    for kind in [HTTP_443, ALERT_443, SILENT_443] {
        let spec = ClientSpec { alpn: vec!["x-amzn-http-ca"], ..ClientSpec::device(&f.pki) };
        let out = connect(acceptor(&f.pki, kind, false), spec.config()).await;
        let mut accepted = out.server.unwrap();
        assert_eq!(accepted.road, Road::HttpsPublish, "{kind:?}");
        assert_eq!(accepted.peer.alpn.as_deref(), Some("x-amzn-http-ca"));
        assert_eq!(accepted.peer.common_name.as_deref(), Some("device"));
        exchange(&mut accepted, &mut out.client.unwrap()).await;
    }
    let spec =
        ClientSpec { alpn: vec!["x-amzn-http-ca"], identity: None, ..ClientSpec::device(&f.pki) };
    let out = connect(acceptor(&f.pki, HTTP_443, false), spec.config()).await;
    let refusal = out.server.unwrap_err();
    assert!(matches!(refusal, HandshakeRefusal::NoClientCertificate { .. }), "{refusal}");
}

#[tokio::test]
async fn mqtt_ca_wins_when_both_iot_protocols_are_offered() {
    let f = fixture();
    let spec = ClientSpec { alpn: vec!["x-amzn-http-ca", MQTT_CA], ..ClientSpec::device(&f.pki) };
    let out = connect(acceptor(&f.pki, HTTP_443, false), spec.config()).await;
    let accepted = out.server.unwrap();
    assert_eq!(accepted.road, Road::Mqtt);
    assert_eq!(accepted.peer.alpn.as_deref(), Some(MQTT_CA));
}

#[tokio::test]
async fn default_mode_refuses_only_unknown_protocols_with_the_alert() {
    let f = fixture();
    for alpn in [vec!["h2"], vec!["mqtt"]] {
        let spec = ClientSpec { alpn: alpn.clone(), ..ClientSpec::device(&f.pki) };
        let out = connect(acceptor(&f.pki, HTTP_443, false), spec.config()).await;
        let refusal = out.server.unwrap_err();
        assert!(matches!(refusal, HandshakeRefusal::WrongAlpn { .. }), "{alpn:?}: {refusal}");
        let error = out.client.unwrap_err();
        assert_eq!(alert_of(&error), Some(AlertDescription::NoApplicationProtocol), "{error}");
    }
}

#[tokio::test]
async fn https_listener_serves_publish_with_a_certificate_and_no_alpn() {
    let f = fixture();
    for alpn in [vec![], vec!["h2", "http/1.1"]] {
        let spec = ClientSpec { alpn: alpn.clone(), ..ClientSpec::device(&f.pki) };
        let out = connect(acceptor(&f.pki, ListenerKind::Https, false), spec.config()).await;
        let accepted = out.server.unwrap();
        assert_eq!(accepted.road, Road::HttpsPublish, "{alpn:?}");
        assert_eq!(accepted.peer.alpn, None);
        assert_eq!(accepted.peer.common_name.as_deref(), Some("device"));
    }
    let spec = ClientSpec { alpn: vec![], identity: None, ..ClientSpec::device(&f.pki) };
    let out = connect(acceptor(&f.pki, ListenerKind::Https, false), spec.config()).await;
    assert!(matches!(out.server.unwrap_err(), HandshakeRefusal::NoClientCertificate { .. }));
}
