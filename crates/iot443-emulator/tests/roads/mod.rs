//! Helpers of the road tests: an emulator on loopback, rustls clients with the ALPN and
//! certificate of each road, and MQTT packets over any byte stream.
#![allow(dead_code, unreachable_pub)] // each test file uses its own part of the helper

use bytes::BytesMut;
use iot443_emulator::server::{Emulator, EmulatorOptions};
use iot443_proto::codec::{
    Codec, Connect, Packet, PacketId, Publish, PublishQos, QoS, Subscribe, SubscribeFilter,
};
use iot443_proto::topic::{TopicFilter, TopicName};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long a test waits for anything.
pub const WAIT: Duration = Duration::from_secs(10);

/// An emulator with the ALPN and HTTPS listeners on ephemeral ports, no MQTTS listener.
pub struct Roads {
    pub emulator: Emulator,
    pub dir: tempfile::TempDir,
}

impl Roads {
    pub async fn start(customise: impl FnOnce(&mut EmulatorOptions)) -> Roads {
        let dir = tempfile::tempdir().unwrap();
        let mut options = EmulatorOptions::new(dir.path());
        options.alpn_port = 0;
        options.mqtts_port = None;
        options.https_port = Some(0);
        customise(&mut options);
        let emulator = Emulator::start(options).await.unwrap();
        Roads { emulator, dir }
    }

    /// A TLS connection to `addr` offering `alpn`, with the device certificate or without.
    pub async fn tls(&self, addr: SocketAddr, alpn: &[&str], device: bool) -> TlsStream<TcpStream> {
        let pki = &self.emulator.pki;
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(pki.ca_roots());
        let mut config = if device {
            builder
                .with_client_auth_cert(
                    pki.device_cert_chain("device").unwrap(),
                    pki.device_key("device").unwrap(),
                )
                .unwrap()
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        tokio::time::timeout(WAIT, TlsConnector::from(Arc::new(config)).connect(name, tcp))
            .await
            .expect("TLS handshake hung")
            .unwrap()
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.emulator.https_addr.unwrap()
    }
}

/// MQTT packets over a byte stream.
pub struct Mqtt<S> {
    pub stream: S,
    codec: Codec,
    buf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Mqtt<S> {
    pub fn new(stream: S) -> Self {
        Mqtt { stream, codec: Codec::default(), buf: BytesMut::new() }
    }

    pub async fn send(&mut self, packet: &Packet) {
        let mut wire = BytesMut::new();
        self.codec.encode(packet, &mut wire).unwrap();
        self.stream.write_all(&wire).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// The next packet; `None` when the stream ended.
    pub async fn recv(&mut self) -> Option<Packet> {
        loop {
            if let Some(packet) = self.codec.decode(&mut self.buf).unwrap() {
                return Some(packet);
            }
            let read = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("no packet came");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// CONNECT as `client_id`, expecting CONNACK 0.
    pub async fn connect(&mut self, client_id: &str) {
        self.send(&Packet::Connect(Connect::new(client_id))).await;
        match self.recv().await {
            Some(Packet::ConnAck(connack)) => {
                assert_eq!(connack.code, iot443_proto::codec::ConnectReturnCode::ACCEPTED);
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// SUBSCRIBE to `filter` at QoS 1, expecting a SUBACK.
    pub async fn subscribe(&mut self, filter: &str) {
        let filters =
            vec![SubscribeFilter::new(TopicFilter::new(filter).unwrap(), QoS::AtLeastOnce)];
        let subscribe = Subscribe::new(PacketId::new(1).unwrap(), filters).unwrap();
        self.send(&Packet::Subscribe(subscribe)).await;
        match self.recv().await {
            Some(Packet::SubAck(_)) => {}
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// PUBLISH at QoS 0.
    pub async fn publish(&mut self, topic: &str, payload: &[u8]) {
        let publish = Publish::new(
            TopicName::new(topic).unwrap(),
            PublishQos::AtMostOnce,
            bytes::Bytes::copy_from_slice(payload),
        );
        self.send(&Packet::Publish(publish)).await;
    }

    /// The next PUBLISH (QoS 1 ones are acknowledged).
    pub async fn next_publish(&mut self) -> Publish {
        loop {
            match self.recv().await {
                Some(Packet::Publish(publish)) => {
                    if let PublishQos::AtLeastOnce(id) = publish.qos {
                        let ack = iot443_proto::codec::PubAck::new(id);
                        self.send(&Packet::PubAck(ack)).await;
                    }
                    return publish;
                }
                Some(_) => {}
                None => panic!("the stream ended before a PUBLISH"),
            }
        }
    }
}

/// Reads one HTTP response (head and `content-length` body) from `stream`.
pub async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> Response {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n =
            tokio::time::timeout(WAIT, stream.read(&mut byte)).await.expect("no answer").unwrap();
        assert_eq!(n, 1, "the connection closed mid-answer: {:?}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap().to_owned();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; length];
    tokio::time::timeout(WAIT, stream.read_exact(&mut body)).await.expect("no body").unwrap();
    Response { status, headers, body }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The body is IoT Core's `{"message":…,"traceId":…}`, the trace id equal to the request
    /// id header; returns the message.
    pub fn aws_message(&self) -> String {
        let json = self.json();
        let trace = json["traceId"].as_str().unwrap();
        assert_eq!(Some(trace), self.header("x-amzn-requestid"), "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        json["message"].as_str().unwrap().to_owned()
    }
}

/// Waits until the stream ends (the server closed it).
pub async fn assert_closed<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut sink = [0u8; 256];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut sink)).await.expect("still open") {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
