//! The WebSocket road's 24-hour limit, in virtual time: the road served over an in-memory
//! stream (`InMemoryEmulator::serve_websocket`), a client that keeps its connection alive with
//! PINGREQ, and the close that comes at 24 hours of tokio's (paused) clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use futures_util::{SinkExt as _, StreamExt as _};
use iot443_emulator::broker::{BrokerConfig, CloseReason};
use iot443_emulator::server::{InMemoryEmulator, WebRules};
use iot443_emulator::sigv4::{AwsCredentials, SERVICE_IOT_DEVICE_GATEWAY, amz_date, presign};
use iot443_proto::codec::{Codec, Connect, Packet};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

fn credentials() -> AwsCredentials {
    AwsCredentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
    }
}

fn encode(packet: &Packet) -> Vec<u8> {
    let mut wire = bytes::BytesMut::new();
    Codec::default().encode(packet, &mut wire).unwrap();
    wire.to_vec()
}

#[tokio::test(start_paused = true)]
async fn a_websocket_connection_is_closed_at_24_hours_of_virtual_time() {
    let mut emulator = InMemoryEmulator::start(BrokerConfig::default());
    emulator.set_web_rules(WebRules::new(credentials(), "us-east-1"));
    let (client, server) = tokio::io::duplex(64 * 1024);
    emulator.serve_websocket(server);

    // The signature's date is the wall clock's (SigV4), not tokio's.
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let date = amz_date(i64::try_from(unix.as_secs()).unwrap());
    let query = presign(
        &credentials(),
        "us-east-1",
        SERVICE_IOT_DEVICE_GATEWAY,
        "localhost",
        &date,
        None,
        None,
    );
    let mut request = format!("ws://localhost/mqtt?{query}").into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    let (mut ws, response) = tokio_tungstenite::client_async(request, client).await.unwrap();
    assert_eq!(response.status(), 101);

    let mut connect = Connect::new("long-lived");
    connect.keep_alive = 1200;
    ws.send(Message::Binary(encode(&Packet::Connect(connect)).into())).await.unwrap();
    let started = tokio::time::Instant::now();
    // CONNACK, then a PINGREQ every 20 minutes (inside IoT Core's keep-alive) until the end.
    let mut frames = 0;
    let mut ping =
        tokio::time::interval_at(started + Duration::from_secs(1200), Duration::from_secs(1200));
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Binary(_))) => frames += 1,
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if ws.send(Message::Binary(encode(&Packet::PingReq).into())).await.is_err() {
                    break;
                }
            }
        }
    }
    let lasted = started.elapsed();
    assert!(lasted >= Duration::from_secs(24 * 3600), "closed after {lasted:?}");
    assert!(lasted < Duration::from_secs(24 * 3600 + 1200), "closed after {lasted:?}");
    // CONNACK and one PINGRESP per PINGREQ: the connection was alive all along.
    assert!(frames >= 72, "{frames} frames");
    let closed = emulator.next_close().await;
    assert_eq!(closed.reason, CloseReason::TransportClosed);
    assert_eq!(closed.client_id.as_deref(), Some("long-lived"));
    emulator.stop().await;
}
