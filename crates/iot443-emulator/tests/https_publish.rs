//! The HTTPS publish API with the device certificate: on the 443-style listener with ALPN
//! `x-amzn-http-ca` and on the HTTPS listener (8443) without ALPN, received by an MQTT
//! subscriber; every error status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod roads;

use iot443_emulator::broker::Policy;
use iot443_proto::codec::PublishQos;
use roads::{Mqtt, Roads, assert_closed, read_response};
use tokio::io::AsyncWriteExt as _;

fn post(topic_path: &str, query: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /topics/{topic_path}?{query} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

async fn subscriber(
    roads: &Roads,
    filter: &str,
) -> Mqtt<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut device =
        Mqtt::new(roads.tls(roads.emulator.alpn_addr, &["x-amzn-mqtt-ca"], true).await);
    device.connect("subscriber").await;
    device.subscribe(filter).await;
    device
}

#[tokio::test]
async fn publish_on_both_listeners_reaches_a_subscriber_with_iot_core_answers() {
    let roads = Roads::start(|_| {}).await;
    let mut device = subscriber(&roads, "sensors/#").await;

    // 443 with ALPN x-amzn-http-ca; a topic with an encoded slash and space; keep-alive.
    let mut https = roads.tls(roads.emulator.alpn_addr, &["x-amzn-http-ca"], true).await;
    https.write_all(&post("sensors%2Fa%20b", "qos=1", b"{\"t\":21}")).await.unwrap();
    let response = read_response(&mut https).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.aws_message(), "OK");
    assert_eq!(response.header("connection"), Some("keep-alive"));
    assert_eq!(response.body.len(), 65, "IoT Core's answer is 65 bytes");
    let got = device.next_publish().await;
    assert_eq!(got.topic.as_str(), "sensors/a b");
    assert_eq!(&got.payload[..], b"{\"t\":21}");
    assert!(matches!(got.qos, PublishQos::AtLeastOnce(_)));

    // A second request on the same connection, QoS 0 by default.
    https.write_all(&post("sensors/second", "", b"")).await.unwrap();
    assert_eq!(read_response(&mut https).await.status, 200);
    let got = device.next_publish().await;
    assert_eq!((got.topic.as_str(), got.payload.len()), ("sensors/second", 0));
    assert_eq!(got.qos, PublishQos::AtMostOnce);

    // The HTTPS listener, no ALPN, HTTP/1.0 without keep-alive: answered, then closed.
    let mut https = roads.tls(roads.https_addr(), &[], true).await;
    https
        .write_all(
            b"POST /topics/sensors/old?qos=0&retain=false HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
        )
        .await
        .unwrap();
    let response = read_response(&mut https).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));
    assert_closed(&mut https).await;
    let got = device.next_publish().await;
    assert_eq!((got.topic.as_str(), &got.payload[..]), ("sensors/old", &b"hi"[..]));
}

#[tokio::test]
async fn retained_publish_is_delivered_to_a_later_subscriber() {
    let roads = Roads::start(|_| {}).await;
    let mut https = roads.tls(roads.https_addr(), &[], true).await;
    https.write_all(&post("state/lamp", "retain=true", b"on")).await.unwrap();
    assert_eq!(read_response(&mut https).await.status, 200);
    let mut device = subscriber(&roads, "state/lamp").await;
    let got = device.next_publish().await;
    assert_eq!(&got.payload[..], b"on");
    assert!(got.retain);
}

#[tokio::test]
async fn a_shadow_request_over_https_reaches_the_shadow_service() {
    let roads = Roads::start(|_| {}).await;
    let mut device = subscriber(&roads, "$aws/things/lamp/shadow/update/accepted").await;
    let mut https = roads.tls(roads.https_addr(), &[], true).await;
    let body = br#"{"state":{"reported":{"on":true}}}"#;
    https.write_all(&post("$aws/things/lamp/shadow/update", "qos=1", body)).await.unwrap();
    assert_eq!(read_response(&mut https).await.status, 200);
    let got = device.next_publish().await;
    let accepted: serde_json::Value = serde_json::from_slice(&got.payload).unwrap();
    assert_eq!(accepted["state"]["reported"]["on"], true);
    assert_eq!(accepted["version"], 1);
}

fn assert_error(response: &roads::Response, status: u16, error_type: &str) -> String {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(response.header("x-amzn-errortype"), Some(format!("{error_type}:").as_str()));
    response.aws_message()
}

#[tokio::test]
async fn every_error_status() {
    let policy =
        Policy::from_json(r#"{"statements":[{"common_name":"device","publish":["open/#"]}]}"#)
            .unwrap();
    let roads = Roads::start(|options| options.broker.policy = Some(policy)).await;
    let mut https = roads.tls(roads.https_addr(), &[], true).await;
    let mut ask = async |request: Vec<u8>| {
        https.write_all(&request).await.unwrap();
        read_response(&mut https).await
    };
    let message =
        assert_error(&ask(post("open/a", "qos=2", b"x")).await, 400, "InvalidRequestException");
    assert!(message.contains("qos"), "{message}");
    assert_error(&ask(post("open/a", "retain=maybe", b"x")).await, 400, "InvalidRequestException");
    assert_error(&ask(post("open/%2B", "", b"x")).await, 400, "InvalidRequestException");
    assert_error(&ask(post("open/%zz", "", b"x")).await, 400, "InvalidRequestException");
    assert_error(
        &ask(post("open/a/b/c/d/e/f/g/h", "", b"x")).await,
        400,
        "InvalidRequestException",
    );
    assert_error(
        &ask(post("$aws/things/x/shadow/update", "", b"x")).await,
        403,
        "ForbiddenException",
    );
    let message = assert_error(&ask(post("closed/a", "", b"x")).await, 403, "ForbiddenException");
    assert!(message.contains("closed/a"), "{message}");
    assert_error(
        &ask(b"GET /topics/open/a HTTP/1.1\r\n\r\n".to_vec()).await,
        405,
        "MethodNotAllowedException",
    );
    assert_error(
        &ask(b"GET /things HTTP/1.1\r\n\r\n".to_vec()).await,
        404,
        "ResourceNotFoundException",
    );
    // A payload just over 128 KiB is read and refused with 413 (the emulator's choice).
    let big = vec![b'x'; 128 * 1024 + 1];
    assert_error(&ask(post("open/big", "", &big)).await, 413, "RequestEntityTooLargeException");
    // The connection carried all of them; this one still publishes.
    assert_eq!(ask(post("open/a", "", b"x")).await.status, 200);
    // Without Content-Length (so without a body, in HTTP/1.1): 400, the connection stays.
    let response = ask(b"POST /topics/open/a HTTP/1.1\r\n\r\n".to_vec()).await;
    let message = assert_error(&response, 400, "InvalidRequestException");
    assert!(message.contains("Content-Length"), "{message}");
    assert_eq!(response.header("connection"), Some("keep-alive"));
    // Chunked bodies are not read: 400 and close.
    let chunked =
        b"POST /topics/open/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n";
    let response = ask(chunked.to_vec()).await;
    assert_error(&response, 400, "InvalidRequestException");
    assert_eq!(response.header("connection"), Some("close"));
    assert_closed(&mut https).await;
}

#[tokio::test]
async fn a_huge_announced_body_gets_413_without_being_read_and_garbage_gets_400() {
    let roads = Roads::start(|_| {}).await;
    let mut https = roads.tls(roads.https_addr(), &[], true).await;
    https.write_all(b"POST /topics/a HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n").await.unwrap();
    let response = read_response(&mut https).await;
    assert_error(&response, 413, "RequestEntityTooLargeException");
    assert_closed(&mut https).await;

    let mut https = roads.tls(roads.https_addr(), &[], true).await;
    https.write_all(&[0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 4, 2, 0, 60]).await.unwrap();
    let response = read_response(&mut https).await;
    assert_error(&response, 400, "InvalidRequestException");
    assert_closed(&mut https).await;

    let mut https = roads.tls(roads.https_addr(), &[], true).await;
    let long_header = format!("POST /topics/a HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(20_000));
    https.write_all(long_header.as_bytes()).await.unwrap();
    let message = assert_error(&read_response(&mut https).await, 400, "InvalidRequestException");
    assert!(message.contains("16384"), "{message}");
}
