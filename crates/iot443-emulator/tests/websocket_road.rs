//! The WebSocket road of the 443-style listener: TLS without a client certificate, the
//! upgrade `GET /mqtt` signed with SigV4 (the emulator's own credentials), then MQTT in binary
//! frames; every refusal as IoT Core's 403 and the emulator's 400/404/405.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod roads;

use futures_util::{SinkExt as _, StreamExt as _};
use iot443_emulator::broker::Policy;
use iot443_emulator::sigv4::{AwsCredentials, SERVICE_IOT_DEVICE_GATEWAY, amz_date, presign};
use iot443_emulator::tls::MissingAlpn;
use roads::{Mqtt, Roads, WAIT, assert_closed, read_response};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
    )
    .unwrap()
}

/// A presigned query for `host` with `credentials` in `region`, signed `offset` seconds from now.
fn signed_query(credentials: &AwsCredentials, region: &str, host: &str, offset: i64) -> String {
    presign(
        credentials,
        region,
        SERVICE_IOT_DEVICE_GATEWAY,
        host,
        &amz_date(unix_now() + offset),
        None,
        None,
    )
}

/// The WebSocket handshake over `stream` to `/mqtt?query` with `Host: host` and the subprotocol.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    host: &str,
    query: &str,
    subprotocol: &str,
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<S>,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    let mut request = format!("wss://{host}/mqtt?{query}").into_client_request().unwrap();
    request.headers_mut().insert("Host", HeaderValue::from_str(host).unwrap());
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(subprotocol).unwrap());
    tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream))
        .await
        .expect("upgrade hung")
}

/// A WebSocket as a byte stream for the MQTT helper (the client side of the adapter).
struct ClientBytes<S> {
    ws: tokio_tungstenite::WebSocketStream<S>,
    pending: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ClientBytes<S> {
    async fn send(&mut self, bytes: &[u8]) {
        self.ws.send(Message::Binary(bytes.to_vec().into())).await.unwrap();
    }
}

/// MQTT through the WebSocket: packets split across frames on purpose (one byte per frame
/// for CONNECT), several packets in one frame for the rest.
async fn mqtt_over(
    ws: &mut ClientBytes<impl AsyncRead + AsyncWrite + Unpin>,
    packet: &iot443_proto::codec::Packet,
) {
    let mut wire = bytes::BytesMut::new();
    iot443_proto::codec::Codec::default().encode(packet, &mut wire).unwrap();
    if matches!(packet, iot443_proto::codec::Packet::Connect(_)) {
        for byte in wire.iter() {
            ws.send(&[*byte]).await;
        }
    } else {
        ws.send(&wire).await;
    }
}

async fn recv_packet(
    ws: &mut ClientBytes<impl AsyncRead + AsyncWrite + Unpin>,
) -> Option<iot443_proto::codec::Packet> {
    let codec = iot443_proto::codec::Codec::default();
    loop {
        let mut buf = bytes::BytesMut::from(ws.pending.as_slice());
        if let Some(packet) = codec.decode(&mut buf).unwrap() {
            ws.pending = buf.to_vec();
            return Some(packet);
        }
        match tokio::time::timeout(WAIT, ws.ws.next()).await.expect("no frame came") {
            Some(Ok(Message::Binary(bytes))) => ws.pending.extend_from_slice(&bytes),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn signed_upgrade_carries_mqtt_both_ways_with_the_mqtt_subprotocol_echoed() {
    let roads = Roads::start(|_| {}).await;
    let addr = roads.emulator.alpn_addr;
    // A device on MQTT with its certificate, subscribed.
    let mut device = Mqtt::new(roads.tls(addr, &["x-amzn-mqtt-ca"], true).await);
    device.connect("device").await;
    device.subscribe("from/ws").await;

    let host = "localhost";
    let query = signed_query(roads.emulator.aws_credentials(), roads.emulator.region(), host, 0);
    // No ALPN, no certificate (like the C++ CRT SDK).
    let tls = roads.tls(addr, &[], false).await;
    let (ws, response) = upgrade(tls, host, &query, "mqtt").await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["sec-websocket-protocol"], "mqtt");
    let mut ws = ClientBytes { ws, pending: Vec::new() };

    use iot443_proto::codec::{
        Connect, Packet, PacketId, Publish, PublishQos, QoS, Subscribe, SubscribeFilter,
    };
    use iot443_proto::topic::{TopicFilter, TopicName};
    // A metrics suffix in the user name, as the CRT SDKs send, is tolerated.
    let mut connect = Connect::new("ws-client");
    connect.username = Some("?SDK=PythonV2&Version=1.0".into());
    mqtt_over(&mut ws, &Packet::Connect(connect)).await;
    assert!(matches!(recv_packet(&mut ws).await, Some(Packet::ConnAck(_))));
    let filter = SubscribeFilter::new(TopicFilter::new("to/ws").unwrap(), QoS::AtLeastOnce);
    let subscribe = Subscribe::new(PacketId::new(7).unwrap(), vec![filter]).unwrap();
    let publish = Publish::new(
        TopicName::new("from/ws").unwrap(),
        PublishQos::AtMostOnce,
        &b"hello from ws"[..],
    );
    // Two packets in one frame.
    let mut wire = bytes::BytesMut::new();
    let codec = iot443_proto::codec::Codec::default();
    codec.encode(&Packet::Subscribe(subscribe), &mut wire).unwrap();
    codec.encode(&Packet::Publish(publish), &mut wire).unwrap();
    ws.send(&wire).await;
    assert!(matches!(recv_packet(&mut ws).await, Some(Packet::SubAck(_))));
    let got = device.next_publish().await;
    assert_eq!((got.topic.as_str(), &got.payload[..]), ("from/ws", &b"hello from ws"[..]));

    device.publish("to/ws", b"hello to ws").await;
    match recv_packet(&mut ws).await {
        Some(Packet::Publish(publish)) => assert_eq!(&publish.payload[..], b"hello to ws"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

#[tokio::test]
async fn legacy_subprotocol_and_http11_alpn_and_a_host_with_port_are_accepted() {
    let roads = Roads::start(|_| {}).await;
    let addr = roads.emulator.alpn_addr;
    let host = format!("localhost:{}", addr.port());
    let query = signed_query(roads.emulator.aws_credentials(), roads.emulator.region(), &host, -60);
    let tls = roads.tls(addr, &["http/1.1"], false).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (ws, response) = upgrade(tls, &host, &query, "mqttv3.1").await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "mqttv3.1");
    let mut ws = ClientBytes { ws, pending: Vec::new() };
    mqtt_over(
        &mut ws,
        &iot443_proto::codec::Packet::Connect(iot443_proto::codec::Connect::new("legacy")),
    )
    .await;
    assert!(matches!(recv_packet(&mut ws).await, Some(iot443_proto::codec::Packet::ConnAck(_))));
}

/// Sends a raw upgrade request and reads the answer.
async fn raw_request(
    roads: &Roads,
    request: &str,
) -> (roads::Response, tokio_rustls::client::TlsStream<tokio::net::TcpStream>) {
    let mut tls = roads.tls(roads.emulator.alpn_addr, &[], false).await;
    tls.write_all(request.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let response = read_response(&mut tls).await;
    (response, tls)
}

fn upgrade_request(target: &str, host: &str, subprotocol: Option<&str>) -> String {
    let protocol =
        subprotocol.map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n")).unwrap_or_default();
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n"
    )
}

fn assert_forbidden(response: &roads::Response, contains: &str) {
    assert_eq!(response.status, 403, "{response:?}");
    assert_eq!(response.header("x-amzn-errortype"), Some("ForbiddenException:"));
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        response.header("access-control-expose-headers"),
        Some("x-amzn-ErrorMessage, x-amzn-RequestId, x-amzn-ErrorType, Date")
    );
    assert_eq!(response.header("connection"), Some("keep-alive"));
    let message = response.aws_message();
    assert!(message.contains(contains), "{message:?} lacks {contains:?}");
}

#[tokio::test]
async fn every_sigv4_refusal_is_a_403_with_iot_core_headers_and_the_connection_stays() {
    let roads = Roads::start(|options| options.region = "eu-west-1".into()).await;
    let credentials = roads.emulator.aws_credentials().clone();
    assert_eq!(roads.emulator.region(), "eu-west-1");
    let host = "localhost";
    let wrong_secret = AwsCredentials { secret_access_key: "x".repeat(40), ..credentials.clone() };
    let unknown_key =
        AwsCredentials { access_key_id: "AKIAUNKNOWNKEY000000".into(), ..credentials.clone() };
    let now = amz_date(unix_now());
    let cases = [
        (
            presign(&wrong_secret, "eu-west-1", SERVICE_IOT_DEVICE_GATEWAY, host, &now, None, None),
            "signature does not match",
        ),
        (
            presign(&unknown_key, "eu-west-1", SERVICE_IOT_DEVICE_GATEWAY, host, &now, None, None),
            "unknown access key id AKIAUNKNOWNKEY000000",
        ),
        (presign(&credentials, "eu-west-1", "s3", host, &now, None, None), "service \"s3\""),
        (
            presign(&credentials, "us-east-1", SERVICE_IOT_DEVICE_GATEWAY, host, &now, None, None),
            "region \"us-east-1\"",
        ),
        // Signed an hour ago by the wall clock, which may tick once more before the check:
        // 3600 or 3601 s, so the test names the refusal, not the count.
        (
            signed_query(&credentials, "eu-west-1", host, -3600),
            "s behind the emulator's clock, outside the window of 300 s",
        ),
        (
            signed_query(&credentials, "eu-west-1", host, 0)
                .replace("X-Amz-Algorithm=AWS4-HMAC-SHA256&", ""),
            "X-Amz-Algorithm: missing",
        ),
    ];
    // All on one connection: a 403 keeps it open, as IoT Core's `connection: keep-alive` says.
    let mut tls = roads.tls(roads.emulator.alpn_addr, &[], false).await;
    for (query, expected) in &cases {
        let request = upgrade_request(&format!("/mqtt?{query}"), host, Some("mqtt"));
        tls.write_all(request.as_bytes()).await.unwrap();
        let response = read_response(&mut tls).await;
        assert_forbidden(&response, expected);
    }
    // A good one on the same connection is upgraded.
    let query = signed_query(&credentials, "eu-west-1", host, 0);
    let (_ws, response) = upgrade(tls, host, &query, "mqtt").await.unwrap();
    assert_eq!(response.status(), 101);
}

#[tokio::test]
async fn wrong_paths_methods_subprotocols_and_non_upgrades_are_answered() {
    let roads = Roads::start(|_| {}).await;
    let query =
        signed_query(roads.emulator.aws_credentials(), roads.emulator.region(), "localhost", 0);
    let target = format!("/mqtt?{query}");

    let (response, _) =
        raw_request(&roads, &upgrade_request("/other", "localhost", Some("mqtt"))).await;
    assert_eq!(response.status, 404);
    assert_eq!(response.header("x-amzn-errortype"), Some("ResourceNotFoundException:"));

    let (response, _) = raw_request(&roads, &upgrade_request(&target, "localhost", None)).await;
    assert_eq!(response.status, 400);
    assert!(response.aws_message().contains("Sec-WebSocket-Protocol"));
    let (response, _) =
        raw_request(&roads, &upgrade_request(&target, "localhost", Some("wamp"))).await;
    assert_eq!(response.status, 400);

    let plain_get = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (response, _) = raw_request(&roads, &plain_get).await;
    assert_eq!(response.status, 400);
    assert!(response.aws_message().contains("not a WebSocket upgrade"));

    let post = format!("POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
    let (response, _) = raw_request(&roads, &post).await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("x-amzn-errortype"), Some("MethodNotAllowedException:"));

    let publish = "POST /topics/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n\r\nx";
    let (response, mut tls) = raw_request(&roads, publish).await;
    assert_forbidden_publish(&response);
    // A request with a body ends the connection after the answer.
    assert_closed(&mut tls).await;
}

fn assert_forbidden_publish(response: &roads::Response) {
    assert_eq!(response.status, 403, "{response:?}");
    assert!(response.aws_message().contains("not emulated"));
}

#[tokio::test]
async fn mqtt_bytes_on_the_http_server_get_a_400_and_a_close_not_a_hang() {
    let roads = Roads::start(|_| {}).await;
    let mut tls = roads.tls(roads.emulator.alpn_addr, &[], false).await;
    // CONNECT, MQTT 3.1.1, client id "dev".
    tls.write_all(&[
        0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30, 0, 3, b'd', b'e', b'v',
    ])
    .await
    .unwrap();
    let response = read_response(&mut tls).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(response.header("x-amzn-errortype"), Some("InvalidRequestException:"));
    assert_closed(&mut tls).await;
}

#[tokio::test]
async fn a_text_frame_closes_the_connection() {
    let roads = Roads::start(|_| {}).await;
    let query =
        signed_query(roads.emulator.aws_credentials(), roads.emulator.region(), "localhost", 0);
    let tls = roads.tls(roads.emulator.alpn_addr, &[], false).await;
    let (mut ws, _) = upgrade(tls, "localhost", &query, "mqtt").await.unwrap();
    ws.send(Message::Text("CONNECT".into())).await.unwrap();
    match tokio::time::timeout(WAIT, ws.next()).await.expect("still open") {
        Some(Ok(Message::Close(_)) | Err(_)) | None => {}
        Some(Ok(other)) => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn the_policy_applies_to_sigv4_connections_through_its_wildcard_statement() {
    let policy = Policy::from_json(
        r##"{"statements":[
            {"common_name":"device","publish":["#"],"subscribe":["#"]},
            {"common_name":"*","client_ids":["ws-*"],"publish":["ws/${iot:ClientId}"],"subscribe":["ws/#"]}
        ]}"##,
    )
    .unwrap();
    let roads = Roads::start(|options| options.broker.policy = Some(policy)).await;
    let query =
        signed_query(roads.emulator.aws_credentials(), roads.emulator.region(), "localhost", 0);
    // Allowed client id: CONNACK 0.
    let tls = roads.tls(roads.emulator.alpn_addr, &[], false).await;
    let (ws, _) = upgrade(tls, "localhost", &query, "mqtt").await.unwrap();
    let mut ws = ClientBytes { ws, pending: Vec::new() };
    mqtt_over(
        &mut ws,
        &iot443_proto::codec::Packet::Connect(iot443_proto::codec::Connect::new("ws-1")),
    )
    .await;
    match recv_packet(&mut ws).await {
        Some(iot443_proto::codec::Packet::ConnAck(connack)) => {
            assert_eq!(connack.code, iot443_proto::codec::ConnectReturnCode::ACCEPTED);
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    // Another client id: no statement applies, CONNACK 5 and close.
    let tls = roads.tls(roads.emulator.alpn_addr, &[], false).await;
    let (ws, _) = upgrade(tls, "localhost", &query, "mqtt").await.unwrap();
    let mut ws = ClientBytes { ws, pending: Vec::new() };
    mqtt_over(
        &mut ws,
        &iot443_proto::codec::Packet::Connect(iot443_proto::codec::Connect::new("device")),
    )
    .await;
    match recv_packet(&mut ws).await {
        Some(iot443_proto::codec::Packet::ConnAck(connack)) => {
            assert_eq!(connack.code, iot443_proto::codec::ConnectReturnCode::NOT_AUTHORIZED);
        }
        other => panic!("expected CONNACK 5, got {other:?}"),
    }
}

#[tokio::test]
async fn alert_mode_still_refuses_no_alpn_and_the_websocket_road_is_gone() {
    let roads = Roads::start(|options| options.missing_alpn = MissingAlpn::Alert).await;
    let pki = &roads.emulator.pki;
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(pki.ca_roots())
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(roads.emulator.alpn_addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let result = tokio::time::timeout(
        WAIT,
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp),
    )
    .await
    .unwrap();
    assert!(result.is_err(), "the handshake must fail with the alert");
}
