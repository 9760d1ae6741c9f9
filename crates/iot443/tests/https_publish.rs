#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! HTTPS publish against an in-test TLS server that requires the device certificate, checks
//! ALPN, path, query and body, and answers as AWS IoT Core answers: 200, each error status, a
//! connection closed between requests, garbage; directly and through an HTTP CONNECT proxy.

mod common;

use common::connect_proxy::{Mode, TestProxy};
use common::tls_server::{ServerSetup, TestTlsServer};
use common::within;
use iot443::config::ProxyConfig;
use iot443::https::{self, HttpsError, HttpsPublish, HttpsPublisher};
use iot443::{ClientError, Config, ErrorKind, QoS};
use iot443_emulator::pki::{Pki, PkiOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

const TRACE: &str = "5c3a1f54-6f0d-9c4b-a7c8-1b2a3c4d5e6f";

/// The device's files (an emulator PKI: its CA signs the server and the device).
struct Setup {
    pki: Pki,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
        Setup { pki, _dir: dir }
    }

    /// A server that requires a device certificate from the PKI's CA and selects `alpn`.
    async fn server(&self, alpn: &[&[u8]]) -> TestTlsServer {
        TestTlsServer::start(ServerSetup {
            chain: self.pki.server_cert_chain(),
            key: self.pki.server_key(),
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
            client_roots: Some(self.pki.ca_roots()),
        })
        .await
    }

    fn config(&self, port: u16, alpn: Option<&str>) -> Config {
        let mut config = Config::load(&self.pki.config_path()).unwrap();
        config.endpoint = "localhost".to_owned();
        config.port = port;
        config.auto_port = None;
        config.alpn = alpn.map(str::to_owned);
        config.connect_timeout = common::SHORT_CONNECT_TIMEOUT;
        config
    }
}

/// A request as the server read it.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    host: Option<String>,
    body: Vec<u8>,
}

/// Reads one request (head and `Content-Length` body); `None` when the client closed.
async fn read_request(stream: &mut TlsStream<TcpStream>) -> Option<Request> {
    let mut buf = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head) = request.parse(&buf).unwrap() {
            let header = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
            };
            let length: usize = header("content-length").unwrap().parse().unwrap();
            let (method, path, host) = (
                request.method.unwrap().to_owned(),
                request.path.unwrap().to_owned(),
                header("host"),
            );
            while buf.len() < head + length {
                let mut chunk = [0_u8; 4096];
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the client closed in the middle of its body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[head..head + length].to_vec();
            return Some(Request { method, path, host, body });
        }
        let mut chunk = [0_u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// IoT Core's answer with `status`, its error type, message and keep-alive.
fn answer(status: u16, reason: &str, error_type: Option<&str>, message: &str) -> Vec<u8> {
    let body = format!("{{\"message\":\"{message}\",\"traceId\":\"{TRACE}\"}}");
    let error_type = error_type.map(|t| format!("x-amzn-ErrorType: {t}\r\n")).unwrap_or_default();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         x-amzn-RequestId: {TRACE}\r\n{error_type}connection: keep-alive\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn ok() -> Vec<u8> {
    answer(200, "OK", None, "OK")
}

#[tokio::test]
async fn a_200_answer_resolves_and_the_request_is_what_iot_core_expects() {
    let setup = Setup::new();
    let mut server = setup.server(&[b"x-amzn-http-ca"]).await;
    // A port other than 443 with IoT Core's ALPN asked for: HTTPS offers x-amzn-http-ca.
    let config = setup.config(server.addr.port(), Some(Config::ALPN_MQTT_CA));
    let port = server.addr.port();

    let client = tokio::spawn(async move {
        let message = HttpsPublish::new("dt/door one", "opened").qos(QoS::AtLeastOnce).retain(true);
        https::publish(&config, &message).await
    });
    let mut stream = server.next().await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"x-amzn-http-ca"[..]));
    assert!(stream.get_ref().1.peer_certificates().is_some(), "the device certificate was sent");
    let request = within("the request", read_request(&mut stream)).await.unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/topics/dt%2Fdoor%20one?qos=1&retain=true");
    assert_eq!(request.host.as_deref(), Some(format!("localhost:{port}").as_str()));
    assert_eq!(request.body, b"opened");
    stream.write_all(&ok()).await.unwrap();

    let published = within("the answer", client).await.unwrap().unwrap();
    assert_eq!(published.status, 200);
    assert_eq!(published.message.as_deref(), Some("OK"));
    assert_eq!(published.trace_id.as_deref(), Some(TRACE));
    assert_eq!(published.request_id.as_deref(), Some(TRACE));
}

#[tokio::test]
async fn without_alpn_on_an_8443_style_port_none_is_offered() {
    let setup = Setup::new();
    let mut server = setup.server(&[]).await;
    let config = setup.config(server.addr.port(), None);
    let publisher = HttpsPublisher::new(&config);
    assert_eq!(publisher.alpn(), None);

    let client =
        tokio::spawn(
            async move { https::publish(&config, &HttpsPublish::new("t", Vec::new())).await },
        );
    let mut stream = server.next().await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), None);
    let request = within("the request", read_request(&mut stream)).await.unwrap();
    assert_eq!(request.path, "/topics/t?qos=0&retain=false");
    assert!(request.body.is_empty());
    stream.write_all(&ok()).await.unwrap();
    within("the answer", client).await.unwrap().unwrap();
}

#[test]
fn on_port_443_x_amzn_http_ca_is_offered() {
    let setup = Setup::new();
    let config = setup.config(443, None);
    assert_eq!(config.alpn_protocol(), Some("x-amzn-mqtt-ca"), "the MQTT rule");
    assert_eq!(HttpsPublisher::new(&config).alpn(), Some("x-amzn-http-ca"));
}

#[tokio::test]
async fn every_error_status_becomes_its_typed_error_on_one_kept_connection() {
    let setup = Setup::new();
    let mut server = setup.server(&[]).await;
    let config = setup.config(server.addr.port(), None);
    let certificate = config.certificate.display().to_string();
    let cases: Vec<(u16, &str, &str, &str, ErrorKind, &str)> = vec![
        (400, "Bad Request", "InvalidRequestException:", "bad", ErrorKind::Rejected, "invalid"),
        (401, "Unauthorized", "UnauthorizedException:", "no", ErrorKind::TlsOrAuth, "ACTIVE"),
        (
            403,
            "Forbidden",
            "ForbiddenException:",
            "Missing Authentication Token",
            ErrorKind::TlsOrAuth,
            "not authenticated",
        ),
        (403, "Forbidden", "ForbiddenException:", "Forbidden", ErrorKind::TlsOrAuth, "iot:Publish"),
        (404, "Not Found", "ResourceNotFoundException:", "nf", ErrorKind::Rejected, "Data-ATS"),
        (405, "Method Not Allowed", "MethodNotAllowedException:", "m", ErrorKind::Rejected, "POST"),
        (
            413,
            "Payload Too Large",
            "RequestEntityTooLargeException:",
            "big",
            ErrorKind::Rejected,
            "128 KiB",
        ),
        (
            429,
            "Too Many Requests",
            "ThrottlingException:",
            "slow",
            ErrorKind::Connection,
            "retry later",
        ),
        (
            500,
            "Internal Server Error",
            "InternalFailureException:",
            "oops",
            ErrorKind::Connection,
            "retry later",
        ),
        (
            503,
            "Service Unavailable",
            "ServiceUnavailableException:",
            "down",
            ErrorKind::Connection,
            "retry later",
        ),
    ];
    let answers: Vec<Vec<u8>> = cases
        .iter()
        .map(|(status, reason, t, m, _, _)| answer(*status, reason, Some(t), m))
        .collect();
    let serving = tokio::spawn(async move {
        let mut stream = server.next().await;
        for answer in answers {
            read_request(&mut stream).await.unwrap();
            stream.write_all(&answer).await.unwrap();
        }
        server
    });

    let mut publisher = HttpsPublisher::new(&config);
    for (status, _, error_type, message, kind, advice) in &cases {
        let error =
            within("publish", publisher.publish(&HttpsPublish::new("a/b", "x"))).await.unwrap_err();
        let refusal = error.refusal().unwrap_or_else(|| panic!("a refusal: {error:?}"));
        assert_eq!(refusal.status, *status);
        assert_eq!(refusal.error_type.as_deref(), Some(*error_type));
        assert_eq!(refusal.message.as_deref(), Some(*message));
        assert_eq!(refusal.trace_id.as_deref(), Some(TRACE));
        assert_eq!(error.kind(), *kind, "{error}");
        let text = error.to_string();
        assert!(text.contains(&format!("with {status}")), "{text}");
        assert!(text.contains(TRACE), "{text}");
        assert!(text.contains(advice), "{status}: {text}");
        if *status == 403 {
            assert!(text.contains(&certificate), "403 names the certificate: {text}");
            assert!(matches!(error, HttpsError::Forbidden(_)));
        }
        if *status == 429 {
            assert!(matches!(error, HttpsError::Throttling(_)));
        }
    }
    let mut server = within("serving", serving).await.unwrap();
    assert!(server.try_next().is_none(), "every request went over the one kept connection");
    publisher.close().await;
}

#[tokio::test]
async fn a_connection_the_server_closed_between_requests_is_opened_again() {
    let setup = Setup::new();
    let mut server = setup.server(&[]).await;
    let config = setup.config(server.addr.port(), None);
    let serving = tokio::spawn(async move {
        let mut bodies = Vec::new();
        for _ in 0..3 {
            // One request per connection, although the answer says keep-alive.
            let mut stream = server.next().await;
            let request = read_request(&mut stream).await.unwrap();
            bodies.push(request.body);
            stream.write_all(&ok()).await.unwrap();
            stream.shutdown().await.unwrap();
        }
        bodies
    });

    let mut publisher = HttpsPublisher::new(&config);
    for body in ["one", "two", "three"] {
        within("publish", publisher.publish(&HttpsPublish::new("t", body).qos(QoS::AtLeastOnce)))
            .await
            .unwrap();
    }
    let bodies = within("serving", serving).await.unwrap();
    assert_eq!(bodies, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
}

#[tokio::test]
async fn a_garbage_answer_is_an_error_and_the_next_publish_uses_a_new_connection() {
    let setup = Setup::new();
    let mut server = setup.server(&[]).await;
    let config = setup.config(server.addr.port(), None);
    let serving = tokio::spawn(async move {
        let mut stream = server.next().await;
        read_request(&mut stream).await.unwrap();
        stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await.unwrap();
        let mut second = server.next().await;
        read_request(&mut second).await.unwrap();
        second.write_all(&ok()).await.unwrap();
        // Keep the first open until the client is done: it must not be reused.
        drop(stream);
    });

    let mut publisher = HttpsPublisher::new(&config);
    let error =
        within("publish", publisher.publish(&HttpsPublish::new("t", "x"))).await.unwrap_err();
    assert!(matches!(error, HttpsError::BadResponse { .. }), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(error.to_string().contains("not an HTTP/1.x response"), "{error}");
    within("publish", publisher.publish(&HttpsPublish::new("t", "y"))).await.unwrap();
    within("serving", serving).await.unwrap();
}

#[tokio::test]
async fn a_server_that_closes_without_answering_is_an_error() {
    let setup = Setup::new();
    let mut server = setup.server(&[]).await;
    let config = setup.config(server.addr.port(), None);
    let serving = tokio::spawn(async move {
        let mut stream = server.next().await;
        read_request(&mut stream).await.unwrap();
        stream.shutdown().await.unwrap();
    });
    let error =
        within("publish", https::publish(&config, &HttpsPublish::new("t", "x"))).await.unwrap_err();
    assert!(matches!(error, HttpsError::NoAnswer { .. }), "{error:?}");
    assert!(error.to_string().contains("x-amzn-http-ca"), "{error}");
    within("serving", serving).await.unwrap();
}

#[tokio::test]
async fn an_invalid_message_is_refused_before_anything_is_sent() {
    let setup = Setup::new();
    let mut server = setup.server(&[]).await;
    let config = setup.config(server.addr.port(), None);
    let mut publisher = HttpsPublisher::new(&config);

    let wildcard = publisher.publish(&HttpsPublish::new("a/+", "x")).await.unwrap_err();
    assert!(
        matches!(wildcard, HttpsError::Client(ClientError::InvalidTopic { .. })),
        "{wildcard:?}"
    );
    assert!(wildcard.to_string().contains("nothing was sent"), "{wildcard}");
    let too_deep =
        publisher.publish(&HttpsPublish::new("a/b/c/d/e/f/g/h/i", "x")).await.unwrap_err();
    assert!(matches!(too_deep, HttpsError::Client(ClientError::InvalidTopic { .. })));
    let big =
        publisher.publish(&HttpsPublish::new("t", vec![0_u8; 128 * 1024 + 1])).await.unwrap_err();
    assert!(matches!(big, HttpsError::Client(ClientError::PayloadTooLarge { .. })), "{big:?}");
    let qos2 =
        publisher.publish(&HttpsPublish::new("t", "x").qos(QoS::ExactlyOnce)).await.unwrap_err();
    assert!(matches!(qos2, HttpsError::Client(ClientError::QosNotSupported)));
    for error in [&wildcard, &too_deep, &big, &qos2] {
        assert_eq!(error.kind(), ErrorKind::Usage);
    }
    assert!(server.try_next().is_none(), "no connection was opened");
}

#[tokio::test]
async fn through_an_http_connect_proxy() {
    let setup = Setup::new();
    let mut server = setup.server(&[]).await;
    let proxy = TestProxy::start(Mode::Open).await;
    let mut config = setup.config(server.addr.port(), None);
    config.proxy = Some(ProxyConfig::parse(&proxy.url()).unwrap());
    let port = server.addr.port();

    let client = tokio::spawn(async move {
        https::publish(&config, &HttpsPublish::new("via/proxy", "tunnelled")).await
    });
    let mut stream = server.next().await;
    let request = within("the request", read_request(&mut stream)).await.unwrap();
    assert_eq!(request.body, b"tunnelled");
    stream.write_all(&ok()).await.unwrap();
    within("the answer", client).await.unwrap().unwrap();
    let requests = proxy.requests();
    assert!(
        requests.iter().any(|head| head.starts_with(&format!("CONNECT localhost:{port} HTTP/1.1"))),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_device_certificate_the_server_does_not_trust_is_a_tls_error() {
    let setup = Setup::new();
    let other_dir = tempfile::tempdir().unwrap();
    let other = Pki::load_or_create(other_dir.path(), &PkiOptions::default()).unwrap();
    // The server trusts another CA's devices only.
    let server = TestTlsServer::start(ServerSetup {
        chain: setup.pki.server_cert_chain(),
        key: setup.pki.server_key(),
        alpn: Vec::new(),
        client_roots: Some(other.ca_roots()),
    })
    .await;
    let config = setup.config(server.addr.port(), None);
    let error =
        within("publish", https::publish(&config, &HttpsPublish::new("t", "x"))).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth, "{error:?}");
    assert!(matches!(error, HttpsError::Client(ClientError::Tls { .. })), "{error:?}");
}

#[tokio::test]
async fn a_kept_connection_closed_without_an_answer_is_sent_again_once_on_a_new_one() {
    let setup = Setup::new();
    let mut server = setup.server(&[]).await;
    let config = setup.config(server.addr.port(), None);
    let serving = tokio::spawn(async move {
        let mut first = server.next().await;
        let one = read_request(&mut first).await.unwrap();
        first.write_all(&ok()).await.unwrap();
        // The second request arrives on the kept connection, which closes without answering.
        let two = read_request(&mut first).await.unwrap();
        first.shutdown().await.unwrap();
        let mut second = server.next().await;
        let again = read_request(&mut second).await.unwrap();
        second.write_all(&ok()).await.unwrap();
        (one.body, two.body, again.body, server)
    });

    let mut publisher = HttpsPublisher::new(&config);
    within("publish", publisher.publish(&HttpsPublish::new("t", "one"))).await.unwrap();
    within("publish", publisher.publish(&HttpsPublish::new("t", "two"))).await.unwrap();
    let (one, two, again, mut server) = within("serving", serving).await.unwrap();
    assert_eq!((one, two, again), (b"one".to_vec(), b"two".to_vec(), b"two".to_vec()));
    assert!(server.try_next().is_none(), "sent again once, on one new connection");
}
