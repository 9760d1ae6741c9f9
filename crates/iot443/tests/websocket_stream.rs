#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The WebSocket byte-stream adapter against an in-process tungstenite server over an in-memory
//! pipe: binary messages split and merged into one stream, one message per write batch, pings,
//! close frames, text frames; the maximum age in virtual time, and the driver reconnecting (and
//! resubscribing) when it is reached.

mod common;

use bytes::Bytes;
use common::in_memory::Broker;
use common::scripted;
use futures_util::{SinkExt, StreamExt};
use iot443::connect::{Connecting, Connector, Opened, WebSocketTransport};
use iot443::{Client, ConnectionInfo, Event, QoS};
use iot443_emulator::broker::PeerIdentity;
use iot443_proto::codec::Connect;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A client adapter and the server's WebSocket, connected over an in-memory pipe.
async fn pair(
    max_age: Duration,
) -> (WebSocketTransport<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(tokio_tungstenite::accept_async(server_io));
    let (ws, _response) =
        tokio_tungstenite::client_async("ws://localhost/mqtt", client_io).await.unwrap();
    let server = server.await.unwrap().unwrap();
    (WebSocketTransport::new(ws, "localhost:443", max_age), server)
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future).await.unwrap_or_else(|_| panic!("{what} did not happen"))
}

#[tokio::test]
async fn binary_messages_read_as_one_stream_whatever_their_boundaries() {
    let (mut client, mut server) = pair(DAY).await;
    // Sent while the client reads: the large message does not fit in the pipe at once.
    let sender = tokio::spawn(async move {
        server.send(Message::Binary(Bytes::from_static(&[1, 2, 3]))).await.unwrap();
        server.send(Message::Binary(Bytes::from_static(&[4, 5]))).await.unwrap();
        server.send(Message::Binary(Bytes::from(vec![6; 100_000]))).await.unwrap();
        server
    });

    // Two small reads split the first message; read_exact merges across messages.
    let mut two = [0; 2];
    within("a read", client.read_exact(&mut two)).await.unwrap();
    assert_eq!(two, [1, 2]);
    let mut three = [0; 3];
    within("a read across messages", client.read_exact(&mut three)).await.unwrap();
    assert_eq!(three, [3, 4, 5]);
    let mut big = vec![0; 100_000];
    within("a large message", client.read_exact(&mut big)).await.unwrap();
    assert!(big.iter().all(|b| *b == 6));
    within("the sender", sender).await.unwrap();
}

#[tokio::test]
async fn each_write_batch_goes_out_as_one_binary_message() {
    let (mut client, mut server) = pair(DAY).await;
    client.write_all(b"\x30\x05\x00\x01ahi\xc0\x00").await.unwrap();
    client.flush().await.unwrap();
    let message = within("the first message", server.next()).await.unwrap().unwrap();
    assert_eq!(message, Message::Binary(Bytes::from_static(b"\x30\x05\x00\x01ahi\xc0\x00")));
    // Written while the server reads: the message does not fit in the pipe at once.
    let writer = tokio::spawn(async move {
        client.write_all(&[7; 70_000]).await.unwrap();
        client.flush().await.unwrap();
        client
    });
    let message = within("the second message", server.next()).await.unwrap().unwrap();
    within("the writer", writer).await.unwrap();
    assert_eq!(message, Message::Binary(Bytes::from(vec![7; 70_000])), "one message per batch");
}

#[tokio::test]
async fn pings_are_answered_and_a_close_frame_is_the_end_of_the_stream() {
    let (mut client, mut server) = pair(DAY).await;
    server.send(Message::Ping(Bytes::from_static(b"are you there"))).await.unwrap();
    server.send(Message::Binary(Bytes::from_static(b"x"))).await.unwrap();
    let mut one = [0; 1];
    within("the message after the ping", client.read_exact(&mut one)).await.unwrap();
    assert_eq!(&one, b"x");
    // The pong goes out with the next write (or flush).
    client.flush().await.unwrap();
    let pong = within("the pong", server.next()).await.unwrap().unwrap();
    assert_eq!(pong, Message::Pong(Bytes::from_static(b"are you there")));

    server.send(Message::Close(None)).await.unwrap();
    let mut buf = [0; 16];
    let n = within("the end of the stream", client.read(&mut buf)).await.unwrap();
    assert_eq!(n, 0, "a close frame reads as end of file");
    assert!(!client.expired());
}

#[tokio::test]
async fn a_text_frame_is_an_error() {
    let (mut client, mut server) = pair(DAY).await;
    server.send(Message::Text("{\"hello\":1}".into())).await.unwrap();
    let mut buf = [0; 16];
    let error = within("the error", client.read(&mut buf)).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("text frame"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn the_stream_ends_at_its_maximum_age() {
    let max_age = Duration::from_secs(23 * 3600);
    let (mut client, mut server) = pair(max_age).await;
    let opened = tokio::time::Instant::now();
    server.send(Message::Binary(Bytes::from_static(b"early"))).await.unwrap();
    let mut five = [0; 5];
    client.read_exact(&mut five).await.unwrap();
    assert!(!client.expired());

    // Nothing more comes: virtual time runs to the age, and the stream ends.
    let mut buf = [0; 16];
    let error = client.read(&mut buf).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionAborted);
    assert!(error.to_string().contains("maximum age (1380 min)"), "{error}");
    assert!(client.expired());
    assert!(opened.elapsed() >= max_age, "not before the age");
    let error = client.write_all(b"late").await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionAborted);
}

/// WebSocket connections over in-memory pipes to one in-memory emulator, each living `max_age`.
struct WebSockets {
    broker: Broker,
    max_age: Duration,
    opened: Arc<AtomicUsize>,
}

impl Connector for WebSockets {
    fn connect(&self, _connect: &Connect) -> Connecting {
        let emulator = self.broker.clone();
        let max_age = self.max_age;
        let opened = Arc::clone(&self.opened);
        Box::pin(async move {
            let (client_io, server_io) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(server_io).await {
                    let stream = WebSocketTransport::new(ws, "client", DAY * 2);
                    let peer = PeerIdentity {
                        common_name: Some("device".to_owned()),
                        certificate_sha256: String::new(),
                    };
                    emulator.emulator().serve(stream, peer);
                }
            });
            let (ws, _) = tokio_tungstenite::client_async("ws://in-memory/mqtt", client_io)
                .await
                .map_err(|_| iot443::ClientError::Closed)?;
            opened.fetch_add(1, Ordering::SeqCst);
            let transport = WebSocketTransport::new(ws, "in-memory:443", max_age);
            Ok(Opened::new(transport, ConnectionInfo::new("in-memory", 443)))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn the_driver_reconnects_when_the_websocket_reaches_its_age_and_resubscribes() {
    let broker = Broker::start();
    let opened = Arc::new(AtomicUsize::new(0));
    let max_age = Duration::from_secs(3600);
    let connector = WebSockets { broker: broker.clone(), max_age, opened: Arc::clone(&opened) };
    let config = scripted::config("ws-aged");
    let (client, mut events) =
        Client::builder(&config).connector(Arc::new(connector)).connect().await.unwrap();
    assert!(matches!(events.recv().await, Some(Event::Connected(_))));
    let mut subscription = client.subscribe("aged/topic", QoS::AtLeastOnce).await.unwrap();

    // Virtual time runs (keep-alive pings included) until the age ends the connection.
    let mut reconnecting = None;
    let reconnected = tokio::time::timeout(max_age * 3, async {
        loop {
            match events.recv().await.expect("the client runs") {
                Event::Reconnecting { cause, .. } => reconnecting = Some(cause),
                Event::Connected(_) => break,
                Event::Disconnected { reason } => panic!("gave up: {reason}"),
                _ => {}
            }
        }
    });
    reconnected.await.expect("a reconnect within three times the maximum age");
    let cause = reconnecting.expect("the loss was reported before the new connection");
    assert!(cause.starts_with("network") && cause.contains("maximum age"), "{cause}");
    assert_eq!(opened.load(Ordering::SeqCst), 2, "a second WebSocket was opened");

    // The subscription is restored on the new connection: a message published afterwards
    // arrives (retried, as the restoring SUBSCRIBE's SUBACK is not observable).
    let mut publisher_config = scripted::config("ws-publisher");
    publisher_config.keep_alive = Duration::from_secs(1200);
    let (publisher, _publisher_events) = broker.connect(&publisher_config).await;
    let mut probes = 0;
    let received = loop {
        probes += 1;
        assert!(probes <= 50, "the subscription was not restored");
        publisher.publish("aged/topic", QoS::AtLeastOnce, "after").await.unwrap().await.unwrap();
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(100), subscription.recv()).await
        {
            break message;
        }
    };
    assert_eq!(&received.payload[..], b"after");
}
