#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The client runs over any `AsyncRead + AsyncWrite` ([`Client::connect_over`]): here an
//! in-memory `tokio::io::duplex` pipe with a scripted MQTT peer on the other end, written with
//! the same codec the client and the emulator use.

mod common;

use bytes::{Bytes, BytesMut};
use common::{next_message, within};
use iot443::{Client, ClientError, ConnectionInfo, ErrorKind, QoS, SessionConfig};
use iot443_proto::codec::{
    Codec, ConnAck, ConnectReason, ConnectReturnCode, Packet, PacketId, PubAck, Publish,
    PublishQos, SubAck, SubAckReturnCode, UnsubAck,
};
use iot443_proto::topic::TopicName;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// The server end of the pipe, one packet at a time.
struct Peer {
    stream: DuplexStream,
    codec: Codec,
    received: BytesMut,
}

impl Peer {
    fn new(stream: DuplexStream) -> Peer {
        Peer { stream, codec: Codec::default(), received: BytesMut::new() }
    }

    /// The next packet from the client; `None` when it closed the pipe.
    async fn next(&mut self) -> Option<Packet> {
        loop {
            if let Some(packet) = self.codec.decode(&mut self.received).expect("valid MQTT") {
                return Some(packet);
            }
            if self.stream.read_buf(&mut self.received).await.unwrap() == 0 {
                return None;
            }
        }
    }

    async fn expect(&mut self) -> Packet {
        self.next().await.expect("a packet from the client, not the end of the stream")
    }

    async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        self.codec.encode(&packet, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    /// Expects CONNECT from `client_id` and answers with `code`.
    async fn accept_connect(&mut self, client_id: &str, code: ConnectReturnCode) {
        let Packet::Connect(connect) = self.expect().await else { panic!("expected CONNECT") };
        assert_eq!(connect.client_id, client_id);
        assert!(connect.clean_session);
        assert_eq!(connect.keep_alive, 60);
        self.send(Packet::ConnAck(ConnAck::new(false, code))).await;
    }
}

/// What the caller of `connect_over` says about a transport that is not TLS.
fn pipe_info() -> ConnectionInfo {
    ConnectionInfo::new("pipe", 1883)
}

#[tokio::test]
async fn client_speaks_mqtt_over_an_in_memory_pipe() {
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let script = tokio::spawn(async move {
        let mut peer = Peer::new(server_end);
        peer.accept_connect("over-stream", ConnectReturnCode::ACCEPTED).await;

        let Packet::Subscribe(subscribe) = peer.expect().await else {
            panic!("expected SUBSCRIBE")
        };
        assert_eq!(subscribe.filters.len(), 1);
        assert_eq!(subscribe.filters[0].filter.as_str(), "pipe/+");
        assert_eq!(subscribe.filters[0].qos, QoS::AtLeastOnce);
        peer.send(Packet::SubAck(SubAck::new(
            subscribe.packet_id,
            vec![SubAckReturnCode::GRANTED_QOS1],
        )))
        .await;

        // The client's QoS 1 publish: acknowledge it, then echo it back as the broker would.
        let Packet::Publish(publish) = peer.expect().await else { panic!("expected PUBLISH") };
        assert_eq!(publish.topic.as_str(), "pipe/echo");
        assert_eq!(&publish.payload[..], b"ping");
        let id = publish.qos.packet_id().expect("QoS 1 has a packet id");
        peer.send(Packet::PubAck(PubAck::new(id))).await;
        let echo_id = PacketId::new(77).unwrap();
        peer.send(Packet::Publish(Publish::new(
            TopicName::new("pipe/echo").unwrap(),
            PublishQos::AtLeastOnce(echo_id),
            Bytes::from_static(b"pong"),
        )))
        .await;
        let Packet::PubAck(ack) = peer.expect().await else { panic!("expected PUBACK") };
        assert_eq!(ack.packet_id, echo_id, "the client acknowledges the echoed message");

        let Packet::Unsubscribe(unsubscribe) = peer.expect().await else {
            panic!("expected UNSUBSCRIBE")
        };
        assert_eq!(unsubscribe.filters[0].as_str(), "pipe/+");
        peer.send(Packet::UnsubAck(UnsubAck::new(unsubscribe.packet_id))).await;

        assert_eq!(peer.expect().await, Packet::Disconnect);
        assert_eq!(peer.next().await, None, "the client closes the pipe after DISCONNECT");
    });

    let (client, _events) = within(
        "CONNACK",
        Client::connect_over(client_end, SessionConfig::new("over-stream"), pipe_info()),
    )
    .await
    .unwrap();
    assert_eq!(client.connection_info().summary(), "connected to pipe:1883 (no TLS) alpn=none");
    let mut subscription =
        within("SUBACK", client.subscribe("pipe/+", QoS::AtLeastOnce)).await.unwrap();
    assert_eq!(subscription.granted_qos(), [QoS::AtLeastOnce]);
    within("PUBACK", client.publish("pipe/echo", QoS::AtLeastOnce, "ping").await.unwrap())
        .await
        .unwrap();
    let message = next_message(&mut subscription, "the echo").await;
    assert_eq!((message.topic.as_str(), &message.payload[..]), ("pipe/echo", &b"pong"[..]));
    assert_eq!(message.qos, QoS::AtLeastOnce);
    within("UNSUBACK", client.unsubscribe("pipe/+")).await.unwrap();
    within("disconnect", client.disconnect()).await.unwrap();
    within("the peer's script", script).await.unwrap();
}

#[tokio::test]
async fn refused_connack_names_the_code_and_the_fix() {
    let (client_end, server_end) = tokio::io::duplex(4096);
    let script = tokio::spawn(async move {
        let mut peer = Peer::new(server_end);
        peer.accept_connect("refused", ConnectReturnCode::NOT_AUTHORIZED).await;
        peer
    });

    let error = within(
        "CONNACK",
        Client::connect_over(client_end, SessionConfig::new("refused"), pipe_info()),
    )
    .await
    .unwrap_err();
    let ClientError::ConnectionRefused { addr, code, hint } = &error else {
        panic!("expected ClientError::ConnectionRefused, got {error:?}");
    };
    assert_eq!(addr, "pipe:1883");
    assert_eq!(*code, ConnectReason::NOT_AUTHORIZED);
    assert_eq!(code.wire(), ConnectReturnCode::NOT_AUTHORIZED.get(), "the code as it came");
    assert!(hint.contains("iot:Connect"), "{hint}");
    assert!(
        error
            .to_string()
            .starts_with("pipe:1883 refused the MQTT connection: not authorized (5); "),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth);
    drop(within("the peer's script", script).await.unwrap());
}

#[tokio::test]
async fn peer_closing_before_connack_is_a_lost_connection_with_likely_causes() {
    let (client_end, server_end) = tokio::io::duplex(4096);
    let script = tokio::spawn(async move {
        let mut peer = Peer::new(server_end);
        let Packet::Connect(_) = peer.expect().await else { panic!("expected CONNECT") };
        // Dropping the peer closes the pipe without an answer.
    });

    let error = within(
        "the end of the pipe",
        Client::connect_over(client_end, SessionConfig::new("dropped"), pipe_info()),
    )
    .await
    .unwrap_err();
    let ClientError::ConnectionLost { addr, reason, .. } = &error else {
        panic!("expected ClientError::ConnectionLost, got {error:?}");
    };
    assert_eq!(addr, "pipe:1883");
    assert!(reason.contains("the endpoint closed the connection before CONNACK"), "{reason}");
    assert_eq!(error.kind(), ErrorKind::Connection);
    within("the peer's script", script).await.unwrap();
}

#[tokio::test]
async fn refused_subscription_names_the_filter_and_keeps_the_connection() {
    let (client_end, server_end) = tokio::io::duplex(4096);
    let script = tokio::spawn(async move {
        let mut peer = Peer::new(server_end);
        peer.accept_connect("sub-refused", ConnectReturnCode::ACCEPTED).await;
        let Packet::Subscribe(subscribe) = peer.expect().await else {
            panic!("expected SUBSCRIBE")
        };
        peer.send(Packet::SubAck(SubAck::new(
            subscribe.packet_id,
            vec![SubAckReturnCode::FAILURE],
        )))
        .await;
        let Packet::Publish(publish) = peer.expect().await else { panic!("expected PUBLISH") };
        assert_eq!(publish.qos, PublishQos::AtMostOnce);
        assert_eq!(peer.expect().await, Packet::Disconnect);
    });

    let (client, _events) = within(
        "CONNACK",
        Client::connect_over(client_end, SessionConfig::new("sub-refused"), pipe_info()),
    )
    .await
    .unwrap();
    let error =
        within("SUBACK", client.subscribe("private/#", QoS::AtLeastOnce)).await.unwrap_err();
    let ClientError::SubscriptionRefused { addr, filter } = &error else {
        panic!("expected ClientError::SubscriptionRefused, got {error:?}");
    };
    assert_eq!((addr.as_str(), filter.as_str()), ("pipe:1883", "private/#"));
    assert!(error.to_string().contains("iot:Subscribe"), "{error}");
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth);
    // The connection is still up.
    within("QoS 0 written", client.publish("public/x", QoS::AtMostOnce, "ok").await.unwrap())
        .await
        .unwrap();
    within("disconnect", client.disconnect()).await.unwrap();
    within("the peer's script", script).await.unwrap();
}

#[tokio::test]
async fn a_qos0_delivery_waits_for_its_bytes_to_be_written_and_fails_if_they_never_are() {
    // A pipe of 1 KiB that the peer stops reading after CONNACK: a 16 KiB QoS 0 message cannot
    // be written. When the peer then closes, the bytes are lost, and the Delivery says so
    // instead of having claimed "written" when the message was only encoded.
    let (client_end, server_end) = tokio::io::duplex(1024);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let script = tokio::spawn(async move {
        let mut peer = Peer::new(server_end);
        peer.accept_connect("qos0-unwritten", ConnectReturnCode::ACCEPTED).await;
        let _ = stop_rx.await;
        drop(peer);
    });
    let session = SessionConfig::new("qos0-unwritten");
    let (client, _events) =
        within("connect", Client::connect_over(client_end, session, pipe_info())).await.unwrap();

    let delivery =
        client.publish("pipe/big", QoS::AtMostOnce, Bytes::from(vec![7_u8; 16 * 1024])).await;
    let delivery = delivery.unwrap();
    stop_tx.send(()).unwrap();
    let result = within("the QoS 0 delivery", delivery).await;
    match result {
        Err(error) => assert_eq!(error.kind(), ErrorKind::Connection, "{error}"),
        Ok(()) => panic!("a QoS 0 message whose bytes never left reported success"),
    }
    script.await.unwrap();
}
