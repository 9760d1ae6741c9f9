//! One task per connection: the TLS handshake (for TCP connections), then the road the
//! handshake chose: bytes in and out of the broker until the end (MQTT, also inside a
//! WebSocket), or HTTP requests (HTTPS publish).

use super::shared::{Closing, ConnectionHandle, Shared};
use crate::broker::{ConnectionId, PeerIdentity};
use crate::peer_text::peer_text;
use crate::tls::{Road, TlsAcceptor};
use bytes::{Buf, BytesMut};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const READ_BUFFER: usize = 16 * 1024;

/// How long the last bytes for a closing client, and the transport's shutdown, may take.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// Serves one accepted TCP connection: TLS under the listener's rules, then its road.
pub(super) async fn serve_tls(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Arc<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let accepted = match tls.accept(tcp).await {
        Ok(accepted) => accepted,
        // The acceptor logged the refusal with its reason.
        Err(_) => return,
    };
    let mut stream = accepted.stream;
    let identity = || PeerIdentity {
        common_name: accepted.peer.common_name.clone(),
        certificate_sha256: accepted.peer.certificate_sha256.clone().unwrap_or_default(),
    };
    match accepted.road {
        Road::Silent => {
            // The field-reported behaviour on 443 without ALPN: TLS completes, CONNACK never
            // comes.
            tracing::warn!(%peer, "TLS without ALPN x-amzn-mqtt-ca accepted silently; MQTT will get no answer");
            discard_until_closed(&mut stream, &shared).await;
        }
        Road::WebSocket => super::websocket::serve(stream, peer, shared).await,
        Road::HttpsPublish => super::https_publish::serve(stream, peer, identity(), shared).await,
        // Road is non-exhaustive for other crates only; MQTT is the remaining road.
        Road::Mqtt => serve_mqtt(stream, peer, identity(), shared, None).await,
    }
}

/// Serves MQTT on `stream` for `identity` until the client or the broker closes it, the
/// emulator stops, or `max_duration` (if any) has passed; `peer` names the other end in logs.
pub(super) async fn serve_mqtt<S, P>(
    mut stream: S,
    peer: P,
    identity: PeerIdentity,
    shared: Arc<Shared>,
    max_duration: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    P: fmt::Display,
{
    let common_name = identity.common_name.clone();
    let Some((id, handle)) = shared.open(identity) else { return };
    let common_name = common_name.as_deref().map(peer_text);
    tracing::debug!(%peer, conn = %id, ?common_name, "MQTT connection opened");
    let deadline = max_duration.map(|limit| tokio::time::Instant::now() + limit);
    let ended = pump(&mut stream, id, &handle, &shared, deadline).await;
    let closing = match ended {
        Ended::Told(closing) => closing,
        Ended::Transport(detail) => {
            // The transport ended on its own: the broker publishes the will if it applies, and
            // reports the close like one of its own.
            tracing::debug!(%peer, conn = %id, "transport ended: {detail}");
            shared.with_broker(|broker, now| broker.handle_closed(now, id));
            handle.take_close().unwrap_or(Closing::Stopping)
        }
    };
    match closing {
        Closing::Broker { reason, dropped } => tracing::debug!(
            %peer,
            conn = %id,
            lifecycle = reason.lifecycle_reason(),
            dropped,
            "connection task ends: {reason}"
        ),
        Closing::Stopping => {
            tracing::debug!(%peer, conn = %id, "connection task ends: the emulator is stopping");
        }
    }
    shared.forget(id);
    let _ = tokio::time::timeout(FLUSH_LIMIT, stream.shutdown()).await;
}

/// How [`pump`] ended.
enum Ended {
    /// The broker closed the connection or the emulator stops; the broker needs no word.
    Told(Closing),
    /// The transport ended or failed (the text says how); the broker must be told.
    Transport(String),
}

/// Moves bytes until the end.
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    id: ConnectionId,
    handle: &ConnectionHandle,
    shared: &Shared,
    deadline: Option<tokio::time::Instant>,
) -> Ended {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut read_buf = BytesMut::with_capacity(READ_BUFFER);
    let mut write_buf = BytesMut::new();
    let stopped = shared.stopped();
    tokio::pin!(stopped);
    let expired = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    loop {
        if let Some(closing) = handle.take_close() {
            // Flush what the broker still had for this client (a CONNACK refusal code, …).
            shared.poll_transmit(id, &mut write_buf);
            let _ = tokio::time::timeout(FLUSH_LIMIT, async {
                writer.write_all(&write_buf).await?;
                writer.flush().await
            })
            .await;
            return Ended::Told(closing);
        }
        if write_buf.is_empty() {
            shared.poll_transmit(id, &mut write_buf);
        }
        tokio::select! {
            () = &mut stopped => return Ended::Told(Closing::Stopping),
            () = &mut expired => {
                return Ended::Transport("the connection reached its maximum duration".into());
            }
            () = handle.wake.notified() => {}
            read = reader.read_buf(&mut read_buf) => match read {
                Ok(0) => return Ended::Transport("the client closed the connection".into()),
                Ok(_) => {
                    shared.with_broker(|broker, now| broker.handle_bytes(now, id, &read_buf));
                    read_buf.clear();
                }
                Err(error) => return Ended::Transport(format!("read failed: {error}")),
            },
            written = writer.write(&write_buf), if !write_buf.is_empty() => match written {
                Ok(0) => return Ended::Transport("the connection closed while writing".into()),
                Ok(n) => {
                    write_buf.advance(n);
                    if write_buf.is_empty()
                        && let Err(error) = writer.flush().await {
                            return Ended::Transport(format!("write failed: {error}"));
                        }
                }
                Err(error) => return Ended::Transport(format!("write failed: {error}")),
            },
        }
    }
}

async fn discard_until_closed<S: AsyncRead + Unpin>(stream: &mut S, shared: &Shared) {
    let mut sink = vec![0u8; 4096];
    let stopped = shared.stopped();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => return,
            read = stream.read(&mut sink) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}
