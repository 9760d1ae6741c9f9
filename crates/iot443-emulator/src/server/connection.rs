//! One task per accepted TCP connection: TLS handshake, then bytes in and out of the broker.

use super::shared::{ConnectionHandle, Shared};
use crate::broker::{ConnectionId, PeerIdentity};
use crate::tls::TlsAcceptor;
use bytes::{Buf, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

const READ_BUFFER: usize = 16 * 1024;

/// Serves one connection until it closes, the broker closes it, or the emulator stops.
pub(super) async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Arc<TlsAcceptor>,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
) {
    let accepted = match tls.accept(tcp).await {
        Ok(accepted) => accepted,
        // The acceptor logged the refusal with its reason.
        Err(_) => return,
    };
    let mut stream = accepted.stream;
    if accepted.silent {
        // The field-reported behaviour on 443 without ALPN: TLS completes, CONNACK never comes.
        tracing::warn!(%peer, "TLS without ALPN x-amzn-mqtt-ca accepted silently; MQTT will get no answer");
        discard_until_closed(&mut stream, &stop).await;
        return;
    }
    let identity = PeerIdentity {
        common_name: accepted.peer.common_name.clone(),
        certificate_sha256: accepted.peer.certificate_sha256.clone(),
    };
    let Some((id, handle)) = shared.open(identity) else { return };
    tracing::debug!(%peer, connection = ?id, cn = ?accepted.peer.common_name, "TLS connection accepted");
    let reason = pump(&mut stream, id, &handle, &shared, &stop).await;
    if let Some(reason) = reason {
        // The transport ended on its own: the broker publishes the will if it applies.
        tracing::debug!(%peer, connection = ?id, "{reason}");
        shared.with_broker(|broker, now| broker.handle_closed(now, id));
    }
    shared.forget(id);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.shutdown()).await;
}

/// Moves bytes until the end. Returns why the transport ended when that was not the broker's
/// decision (the broker has then still to be told).
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    id: ConnectionId,
    handle: &ConnectionHandle,
    shared: &Shared,
    stop: &Notify,
) -> Option<String> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut read_buf = BytesMut::with_capacity(READ_BUFFER);
    let mut write_buf = BytesMut::new();
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        if let Some(reason) = handle.take_close() {
            // Flush what the broker still had for this client (a CONNACK refusal code, …).
            shared.poll_transmit(id, &mut write_buf);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                writer.write_all(&write_buf).await?;
                writer.flush().await
            })
            .await;
            tracing::debug!(connection = ?id, "closed: {reason}");
            // The broker decided (or the emulator is stopping): it needs no further word.
            return None;
        }
        if write_buf.is_empty() {
            shared.poll_transmit(id, &mut write_buf);
        }
        tokio::select! {
            () = &mut stopped => return Some("the emulator is stopping".into()),
            () = handle.wake.notified() => {}
            read = reader.read_buf(&mut read_buf) => match read {
                Ok(0) => return Some("the client closed the connection".into()),
                Ok(_) => {
                    shared.with_broker(|broker, now| broker.handle_bytes(now, id, &read_buf));
                    read_buf.clear();
                }
                Err(error) => return Some(format!("read failed: {error}")),
            },
            written = writer.write(&write_buf), if !write_buf.is_empty() => match written {
                Ok(0) => return Some("the connection closed while writing".into()),
                Ok(n) => {
                    write_buf.advance(n);
                    if write_buf.is_empty()
                        && let Err(error) = writer.flush().await {
                            return Some(format!("write failed: {error}"));
                        }
                }
                Err(error) => return Some(format!("write failed: {error}")),
            },
        }
    }
}

async fn discard_until_closed<S: AsyncRead + Unpin>(stream: &mut S, stop: &Notify) {
    let mut sink = vec![0u8; 4096];
    let stopped = stop.notified();
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
