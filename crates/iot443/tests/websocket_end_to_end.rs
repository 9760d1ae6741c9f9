#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    // tungstenite's handshake callback returns its `ErrorResponse` by value.
    clippy::result_large_err,
    missing_docs
)]
//! The WebSocket road end to end: a TLS server on loopback (certificate from a test CA made
//! here) that checks ALPN `http/1.1`, verifies the upgrade's SigV4 query signature with this
//! file's own code (not aws-sigv4), and forwards MQTT to the in-memory emulator. Publish and
//! subscribe through it, a new signature at every reconnect, the session token, and the upgrade
//! refusals (403 with IoT Core's headers, 404, a 101 without the `mqtt` subprotocol).

mod common;

use bytes::Bytes;
use common::connect_proxy::{Mode, TestProxy};
use iot443::config::{Config, ProxyConfig};
use iot443::{Client, ErrorKind, Event, QoS};
use iot443_emulator::broker::BrokerConfig;
use iot443_emulator::server::InMemoryEmulator;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use ring::{digest, hmac};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

const WAIT: Duration = Duration::from_secs(20);
const AKID: &str = "AKIDE2ETEST";
const SECRET: &str = "e2e-secret/Key+value";
const REGION: &str = "us-east-1";

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future).await.unwrap_or_else(|_| panic!("{what} did not happen"))
}

/// How the test server answers the upgrade.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Verify the signature: 101 (echoing `mqtt`) or 403.
    Verify,
    /// 101 without a subprotocol.
    NoSubprotocol,
    /// 404.
    NotFound,
}

/// What the server saw of one upgrade.
#[derive(Debug, Clone)]
struct Upgrade {
    alpn: Option<String>,
    host: String,
    tokens: Vec<String>,
    verified: Result<(), String>,
}

struct Server {
    port: u16,
    dir: tempfile::TempDir,
    upgrades: Arc<Mutex<Vec<Upgrade>>>,
    cut: watch::Sender<u32>,
    /// While set, every upgrade is refused with 403.
    refuse: Arc<AtomicBool>,
    emulator: Arc<InMemoryEmulator>,
}

impl Server {
    async fn start(answer: Answer) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))
            .unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key: PrivateKeyDer<'static> = PrivatePkcs8KeyDer::from(key.serialize_der()).into();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let emulator = Arc::new(InMemoryEmulator::start(BrokerConfig::default()));
        let upgrades = Arc::new(Mutex::new(Vec::new()));
        let (cut, cut_rx) = watch::channel(0);
        let refuse = Arc::new(AtomicBool::new(false));
        let served_refuse = Arc::clone(&refuse);
        let (served_emulator, served_upgrades) = (Arc::clone(&emulator), Arc::clone(&upgrades));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, emulator, upgrades) =
                    (acceptor.clone(), Arc::clone(&served_emulator), Arc::clone(&served_upgrades));
                let mut cut_rx = cut_rx.clone();
                let refusing = served_refuse.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let alpn = tls
                        .get_ref()
                        .1
                        .alpn_protocol()
                        .map(|a| String::from_utf8_lossy(a).into_owned());
                    let callback = |request: &Request, response: Response| {
                        upgrade(request, response, answer, refusing, alpn.clone(), &upgrades)
                    };
                    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tls, callback).await else {
                        return;
                    };
                    let mut ws = iot443::connect::WebSocketTransport::new(
                        ws,
                        "client",
                        Duration::from_secs(86_400),
                    );
                    let mut mqtt = emulator.connect(Some("device"));
                    cut_rx.mark_unchanged();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut ws, &mut mqtt) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Server { port, dir, upgrades, cut, refuse, emulator }
    }

    fn credentials(&self, secret: &str, token: Option<&str>) -> std::path::PathBuf {
        let path = self.dir.path().join("aws-credentials");
        let token = token.map(|t| format!("aws_session_token = {t}\n")).unwrap_or_default();
        std::fs::write(
            &path,
            format!(
                "[default]\naws_access_key_id = {AKID}\naws_secret_access_key = {secret}\n{token}"
            ),
        )
        .unwrap();
        path
    }

    fn config(&self, client_id: &str, secret: &str, token: Option<&str>) -> Config {
        let mut config = Config::websocket_builder("localhost", client_id)
            .port(self.port)
            .root_ca(self.dir.path().join("ca.pem"))
            .aws_credentials(self.credentials(secret, token))
            .region(REGION)
            .build()
            .unwrap();
        config.reconnect.min_delay = Duration::from_millis(10);
        config.reconnect.max_delay = Duration::from_millis(50);
        config
    }

    fn upgrades(&self) -> Vec<Upgrade> {
        self.upgrades.lock().unwrap().clone()
    }
}

/// The server's side of the upgrade: records it, verifies it, answers.
fn upgrade(
    request: &Request,
    mut response: Response,
    answer: Answer,
    refusing: bool,
    alpn: Option<String>,
    upgrades: &Mutex<Vec<Upgrade>>,
) -> Result<Response, ErrorResponse> {
    let host = request.headers().get("host").and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
    let query = request.uri().query().unwrap_or("");
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(n, v)| (decode(n), decode(v)))
        .collect();
    let tokens: Vec<String> = params
        .iter()
        .filter(|(n, _)| n == "X-Amz-Security-Token")
        .map(|(_, v)| v.clone())
        .collect();
    let offered_mqtt = request
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == "mqtt"));
    let verified = if request.uri().path() != "/mqtt" {
        Err(format!("path {}", request.uri().path()))
    } else if !offered_mqtt {
        Err("no mqtt subprotocol offered".to_owned())
    } else {
        verify(&params, &host)
    };
    upgrades.lock().unwrap().push(Upgrade { alpn, host, tokens, verified: verified.clone() });
    let refuse = |status: StatusCode, body: &str| {
        let mut refusal = ErrorResponse::new(Some(body.to_owned()));
        *refusal.status_mut() = status;
        let headers = refusal.headers_mut();
        headers.insert("x-amzn-ErrorType", HeaderValue::from_static("ForbiddenException:"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        // A server clock far ahead: the client reports the skew.
        headers.insert("Date", HeaderValue::from_static("Fri, 01 Jan 2100 00:00:00 GMT"));
        refusal
    };
    match answer {
        Answer::NotFound => Err(refuse(StatusCode::NOT_FOUND, "{\"message\":\"Not Found\"}")),
        Answer::NoSubprotocol => Ok(response),
        Answer::Verify => match verified {
            Ok(()) if !refusing => {
                response
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
                Ok(response)
            }
            _ => Err(refuse(
                StatusCode::FORBIDDEN,
                "{\"message\":\"The request signature we calculated does not match\",\"traceId\":\"t\"}",
            )),
        },
    }
}

/// SigV4 query-signature verification, as IoT Core does it (token outside the canonical
/// request, whatever its position).
fn verify(params: &[(String, String)], host: &str) -> Result<(), String> {
    let get = |name: &str| {
        params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).ok_or(format!("no {name}"))
    };
    if get("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err("algorithm".to_owned());
    }
    let credential = get("X-Amz-Credential")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(format!("credential {credential}"));
    };
    if *akid != AKID || *region != REGION || *service != "iotdevicegateway" {
        return Err(format!("scope {credential}"));
    }
    let amz_date = get("X-Amz-Date")?;
    if !amz_date.starts_with(date) || get("X-Amz-SignedHeaders")? != "host" {
        return Err("date or signed headers".to_owned());
    }
    let canonical: BTreeMap<String, String> = params
        .iter()
        .filter(|(n, _)| n != "X-Amz-Signature" && n != "X-Amz-Security-Token")
        .map(|(n, v)| (encode(n), encode(v)))
        .collect();
    let canonical_query: Vec<String> = canonical.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let empty = hex(digest::digest(&digest::SHA256, b"").as_ref());
    let creq = format!("GET\n/mqtt\n{}\nhost:{host}\n\nhost\n{empty}", canonical_query.join("&"));
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, creq.as_bytes()).as_ref())
    );
    let mut key = format!("AWS4{SECRET}").into_bytes();
    for part in [*date, *region, *service, "aws4_request", sts.as_str()] {
        key =
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes()).as_ref().to_vec();
    }
    if hex(&key) == get("X-Amz-Signature")? { Ok(()) } else { Err("signature mismatch".to_owned()) }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn publish_and_subscribe_over_the_signed_websocket() {
    let server = Server::start(Answer::Verify).await;
    let config = server.config("ws-e2e", SECRET, None);
    let (client, mut events) = within("connect", Client::connect(&config)).await.unwrap();
    let info = client.connection_info().clone();
    assert_eq!(info.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(info.url, Some(format!("wss://localhost:{}/mqtt", server.port)));
    assert!(
        info.summary().contains(&format!("over wss://localhost:{}/mqtt", server.port)),
        "{}",
        info.summary()
    );
    assert!(matches!(events.recv().await, Some(Event::Connected(_))));

    let mut subscription =
        within("SUBACK", client.subscribe("ws/e2e", QoS::AtLeastOnce)).await.unwrap();
    let delivery =
        client.publish("ws/e2e", QoS::AtLeastOnce, Bytes::from_static(b"over wss")).await.unwrap();
    within("PUBACK", delivery).await.unwrap();
    let message = within("the message", subscription.recv()).await.unwrap();
    assert_eq!(&message.payload[..], b"over wss");

    let upgrades = server.upgrades();
    assert_eq!(upgrades.len(), 1);
    assert_eq!(upgrades[0].verified, Ok(()));
    assert_eq!(upgrades[0].alpn.as_deref(), Some("http/1.1"));
    assert_eq!(upgrades[0].host, format!("localhost:{}", server.port), "host:port off 443");
    assert!(upgrades[0].tokens.is_empty());
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn every_reconnect_is_signed_anew_and_the_subscription_survives() {
    let server = Server::start(Answer::Verify).await;
    let config = server.config("ws-reconnect", SECRET, None);
    let (client, mut events) = within("connect", Client::connect(&config)).await.unwrap();
    assert!(matches!(events.recv().await, Some(Event::Connected(_))));
    let mut subscription =
        within("SUBACK", client.subscribe("ws/again", QoS::AtLeastOnce)).await.unwrap();
    // A new credentials file before the cut: it is read again at the reconnect.
    server.credentials(SECRET, Some("rotated-token"));

    server.cut.send_modify(|n| *n += 1);
    within("the reconnect", async {
        loop {
            if let Some(Event::Connected(_)) = events.recv().await {
                break;
            }
        }
    })
    .await;
    let upgrades = server.upgrades();
    assert_eq!(upgrades.len(), 2, "a second upgrade");
    assert!(upgrades.iter().all(|u| u.verified.is_ok()), "{upgrades:?}");
    assert_eq!(upgrades[1].tokens, vec!["rotated-token".to_owned()], "the rotated file was read");

    let mut probes = 0;
    loop {
        probes += 1;
        assert!(probes < 100, "the subscription was not restored");
        let delivery = client.publish("ws/again", QoS::AtLeastOnce, "after").await.unwrap();
        within("PUBACK", delivery).await.unwrap();
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(50), subscription.recv()).await
        {
            assert_eq!(&message.payload[..], b"after");
            break;
        }
    }
}

#[tokio::test]
async fn the_session_token_goes_once_and_outside_the_signature() {
    let server = Server::start(Answer::Verify).await;
    let token = "IQoJb3JpZ2luX2VjE+/token==";
    let config = server.config("ws-token", SECRET, Some(token));
    let (client, _events) = within("connect", Client::connect(&config)).await.unwrap();
    let upgrades = server.upgrades();
    assert_eq!(upgrades[0].verified, Ok(()), "verified with the token left out");
    assert_eq!(upgrades[0].tokens, vec![token.to_owned()], "exactly once");
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_403_is_an_authentication_error_that_says_what_to_check() {
    let server = Server::start(Answer::Verify).await;
    let config = server.config("ws-403", "not-the-secret-value", None);
    let error = within("the refusal", Client::connect(&config)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth);
    let text = error.to_string();
    assert!(
        text.contains(&format!(
            "localhost:{} refused the WebSocket upgrade: HTTP 403 Forbidden (ForbiddenException)",
            server.port
        )),
        "{text}"
    );
    assert!(text.contains("The request signature we calculated does not match"), "{text}");
    assert!(text.contains(AKID) && text.contains(REGION), "names the key id and region: {text}");
    assert!(
        text.contains("the local time is") && text.contains("2100-01-01 00:00:00 UTC"),
        "{text}"
    );
    assert!(text.contains("s apart"), "the skew: {text}");
    assert!(!text.contains("not-the-secret-value"), "no secret: {text}");
    assert!(server.upgrades()[0].verified.is_err());
}

#[tokio::test]
async fn a_404_is_a_connection_error_with_the_status() {
    let server = Server::start(Answer::NotFound).await;
    let error = within("the refusal", Client::connect(&server.config("ws-404", SECRET, None)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connection);
    let text = error.to_string();
    assert!(
        text.contains(&format!("localhost:{}", server.port)) && text.contains("HTTP 404 Not Found"),
        "{text}"
    );
}

#[tokio::test]
async fn a_101_without_the_mqtt_subprotocol_is_a_protocol_error() {
    let server = Server::start(Answer::NoSubprotocol).await;
    let error = within("the failure", Client::connect(&server.config("ws-101", SECRET, None)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(error.to_string().contains("mqtt"), "{error}");
}

#[tokio::test]
async fn https_is_refused_by_the_mqtt_client() {
    let mut config = Config::websocket_builder("localhost", "ws-https").build().unwrap();
    config.transport = iot443::config::Transport::Https;
    let error = Client::connect(&config).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage);
    assert!(
        error.to_string().contains("https is publish-only: use `iot443 pub --transport https`"),
        "{error}"
    );
}

#[tokio::test]
async fn the_websocket_road_goes_through_the_http_connect_proxy() {
    let server = Server::start(Answer::Verify).await;
    let proxy = TestProxy::start(Mode::Open).await;
    let mut config = server.config("ws-proxy", SECRET, None);
    config.proxy = Some(ProxyConfig::parse(&proxy.url()).unwrap());
    let (client, _events) = within("connect", Client::connect(&config)).await.unwrap();
    let requests = proxy.requests();
    assert!(
        requests[0].starts_with(&format!("CONNECT localhost:{} ", server.port)),
        "{requests:?}"
    );
    assert_eq!(client.connection_info().proxy, Some(proxy.addr.to_string()));
    assert_eq!(server.upgrades()[0].verified, Ok(()));
    let delivery = client.publish("ws/proxy", QoS::AtLeastOnce, "tunnelled").await.unwrap();
    within("PUBACK", delivery).await.unwrap();
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn the_outbox_and_the_offline_queue_deliver_once_the_websocket_is_back() {
    let server = Server::start(Answer::Verify).await;
    // The subscriber is connected to the broker directly, out of the way of the cuts.
    let subscriber_config =
        Config::builder("in-memory", "ws-outbox-sub", "unused", "unused").build().unwrap();
    let direct = Arc::new(Direct(Arc::clone(&server.emulator)));
    let (subscriber, _subscriber_events) =
        within("subscriber", Client::builder(&subscriber_config).connector(direct).connect())
            .await
            .unwrap();
    let mut subscription =
        within("SUBACK", subscriber.subscribe("ws/outbox", QoS::AtLeastOnce)).await.unwrap();

    let outbox_dir = tempfile::tempdir().unwrap();
    let mut config = server.config("ws-outbox", SECRET, None);
    config.outbox = Some(outbox_dir.path().join("outbox.db"));
    config.reconnect.refused_min_delay = Duration::from_millis(20);
    let (client, mut events) = within("connect", Client::connect(&config)).await.unwrap();
    assert!(matches!(events.recv().await, Some(Event::Connected(_))));

    // Every connection is cut and every upgrade refused for a while.
    server.refuse.store(true, Ordering::SeqCst);
    server.cut.send_modify(|n| *n += 1);
    within("a refused reconnect", async {
        loop {
            if let Some(Event::Reconnecting { attempt: 2.., cause, .. }) = events.recv().await {
                assert!(cause.contains("403"), "{cause}");
                break;
            }
        }
    })
    .await;
    // Published while no WebSocket is up: kept (in the outbox) and sent once one is.
    let delivery = client.publish("ws/outbox", QoS::AtLeastOnce, "kept").await.unwrap();
    let queued = client.publish("ws/outbox", QoS::AtMostOnce, "queued").await.unwrap();
    server.refuse.store(false, Ordering::SeqCst);
    within("PUBACK after the reconnect", delivery).await.unwrap();
    within("the QoS 0 message written", queued).await.unwrap();
    let mut payloads = Vec::new();
    while payloads.len() < 2 {
        let message = within("the messages", subscription.recv()).await.unwrap();
        payloads.push(String::from_utf8(message.payload.to_vec()).unwrap());
    }
    payloads.sort();
    assert_eq!(payloads, ["kept", "queued"]);
    assert!(server.upgrades().iter().any(|u| u.verified.is_ok()), "verified upgrades");
}

/// Connections straight to the in-memory broker, without WebSocket.
struct Direct(Arc<InMemoryEmulator>);

impl iot443::connect::Connector for Direct {
    fn connect(&self, _connect: &iot443_proto::codec::Connect) -> iot443::connect::Connecting {
        let stream = self.0.connect(Some("device"));
        Box::pin(async move {
            Ok(iot443::connect::Opened::new(stream, iot443::ConnectionInfo::new("in-memory", 443)))
        })
    }
}
