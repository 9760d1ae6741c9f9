//! The WebSocket road: the HTTP server reached on the 443-style listener without a client
//! certificate (`AWS-IOT-ROADS.md` §1.2, E2–E8).
//!
//! `GET /mqtt?X-Amz-…` with `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a
//! `Sec-WebSocket-Protocol` offering `mqtt` (or `mqttv3.1`, which the legacy JavaScript SDK
//! sends) is verified with SigV4 ([`crate::sigv4`]) against the emulator's credentials and
//! region, and answered `101 Switching Protocols` echoing the subprotocol. MQTT then runs over
//! binary frames ([`WsBytes`]) with the same broker and policy as the other listeners, for at
//! most [`WebRules::websocket_max_duration`](super::WebRules) (IoT Core's 24 hours).
//!
//! The answers otherwise:
//!
//! | request | answer |
//! |---|---|
//! | not HTTP (MQTT bytes, …) | 400 `InvalidRequestException`, then close |
//! | a path other than `/mqtt` | 404 `ResourceNotFoundException` |
//! | `/topics/…` | 403 `ForbiddenException`: SigV4-signed HTTPS publish is not emulated |
//! | `/mqtt` with another method | 405 `MethodNotAllowedException` |
//! | not a WebSocket upgrade, or no `mqtt`/`mqttv3.1` subprotocol | 400 `InvalidRequestException` |
//! | SigV4 refused (bad signature, unknown key, wrong service or region, date outside the window, malformed) | 403 `ForbiddenException` with IoT Core's headers (§1.18) |
//!
//! IoT Core's body text for a refused upgrade is UNCONFIRMED; the emulator's `message` says
//! why, which IoT Core does not. The connection is kept after an answer (`connection:
//! keep-alive`, as IoT Core's 403) unless the request had a body or asked to close.

use super::connection::serve_mqtt;
use super::http::{self, Head, HeadError, Response};
use super::shared::Shared;
use crate::broker::PeerIdentity;
use crate::sigv4::{SignedRequest, VerifyRules, verify_presigned};
use bytes::{Bytes, BytesMut};
use futures_util::{Sink, Stream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// The subprotocols accepted, in order of preference.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// The largest WebSocket frame and message accepted: an MQTT packet of IoT Core's largest
/// payload, with room for headers (frames need not align with packets).
const MAX_FRAME: usize = 256 * 1024;

/// The prefix of the stand-in certificate id of a SigV4 connection: it cannot collide with a
/// real certificate's SHA-256 (64 hex digits).
pub const SIGV4_IDENTITY_PREFIX: &str = "sigv4:";

/// Serves HTTP on `stream` until an upgrade succeeds (then MQTT until the end) or the client
/// goes.
pub(super) async fn serve<S, P>(mut stream: S, peer: P, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    P: std::fmt::Display + Copy,
{
    let mut buf = BytesMut::new();
    loop {
        let head = match read_head(&mut stream, &mut buf, &shared).await {
            Some(Ok(head)) => head,
            Some(Err(HeadError::Malformed(detail))) => {
                tracing::warn!(%peer, "WebSocket road: {detail}; answered 400 and closed");
                let answer = Response::json(400, Some("InvalidRequestException"), &detail);
                let _ = answer.write(&mut stream, false).await;
                return;
            }
            Some(Err(HeadError::Transport(detail))) => {
                tracing::debug!(%peer, "WebSocket road: {detail}");
                return;
            }
            None => return,
        };
        let keep_alive = head.keep_alive() && matches!(head.body_length(), Ok(None | Some(0)));
        match upgrade(&head, &shared) {
            Ok((answer, identity, max_duration)) => {
                if answer.write(&mut stream, true).await.is_err() {
                    return;
                }
                let config = WebSocketConfig::default()
                    .max_frame_size(Some(MAX_FRAME))
                    .max_message_size(Some(MAX_FRAME));
                let ws = WebSocketStream::from_partially_read(
                    stream,
                    buf.to_vec(),
                    Role::Server,
                    Some(config),
                )
                .await;
                tracing::debug!(%peer, identity = %identity.certificate_sha256, "WebSocket upgraded");
                serve_mqtt(WsBytes::new(ws), peer, identity, shared, Some(max_duration)).await;
                return;
            }
            Err((answer, why)) => {
                // The reason may quote what the client sent: bounded in the log.
                let why = crate::peer_text::peer_text(&why);
                tracing::warn!(%peer, status = answer.status, "WebSocket upgrade refused: {why}");
                if answer.write(&mut stream, keep_alive).await.is_err() || !keep_alive {
                    return;
                }
            }
        }
    }
}

/// Reads a head within the request time limit, or `None` when the client closed, took too
/// long, or the emulator stops.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    shared: &Shared,
) -> Option<Result<Head, HeadError>> {
    let stopped = shared.stopped();
    tokio::select! {
        () = stopped => None,
        read = tokio::time::timeout(http::REQUEST_TIMEOUT, http::read_head(stream, buf)) => {
            match read {
                Err(_) | Ok(Ok(None)) => None,
                Ok(Ok(Some(head))) => Some(Ok(head)),
                Ok(Err(error)) => Some(Err(error)),
            }
        }
    }
}

type Refusal = (Response, String);

/// Checks the request (E2–E7): the 101 answer with the connection's identity and time limit,
/// or the refusal with the reason for the log.
fn upgrade(
    head: &Head,
    shared: &Shared,
) -> Result<(Response, PeerIdentity, std::time::Duration), Refusal> {
    let refuse = |status: u16, error_type: &str, message: String| {
        (Response::json(status, Some(error_type), &message), message)
    };
    let path = head.path();
    if path.starts_with("/topics/") {
        return Err(refuse(
            403,
            "ForbiddenException",
            "HTTPS publish without a client certificate (SigV4 in headers) is not emulated: \
             publish with the device certificate on ALPN x-amzn-http-ca or the HTTPS port"
                .into(),
        ));
    }
    if path != "/mqtt" {
        return Err(refuse(
            404,
            "ResourceNotFoundException",
            format!(
                "no such path {:?}: the WebSocket endpoint is /mqtt",
                crate::peer_text::peer_text(path)
            ),
        ));
    }
    if head.method != "GET" {
        return Err(refuse(
            405,
            "MethodNotAllowedException",
            format!("method {} is not allowed on /mqtt: the upgrade is a GET", head.method),
        ));
    }
    let key = head.header("sec-websocket-key");
    let is_upgrade = head.header_has_token("upgrade", "websocket")
        && head.header_has_token("connection", "upgrade")
        && head.header("sec-websocket-version").map(str::trim) == Some("13")
        && key.is_some();
    let Some(key) = key.filter(|_| is_upgrade) else {
        return Err(refuse(
            400,
            "InvalidRequestException",
            "not a WebSocket upgrade: send Upgrade: websocket, Connection: Upgrade, \
             Sec-WebSocket-Version: 13 and Sec-WebSocket-Key"
                .into(),
        ));
    };
    let offered: Vec<&str> = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect();
    let Some(subprotocol) = SUBPROTOCOLS.into_iter().find(|p| offered.contains(p)) else {
        return Err(refuse(
            400,
            "InvalidRequestException",
            "Sec-WebSocket-Protocol must offer mqtt (or mqttv3.1)".into(),
        ));
    };
    let Some(web) = shared.web() else {
        return Err(refuse(
            403,
            "ForbiddenException",
            "the emulator has no SigV4 credentials".into(),
        ));
    };
    let headers: Vec<(&str, &str)> =
        head.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let request =
        SignedRequest { method: &head.method, path, query: head.query(), headers: &headers };
    let rules =
        VerifyRules { region: &web.region, services: &web.services(), window: web.date_window };
    let verified =
        verify_presigned(&request, &rules, &web.credentials, unix_now()).map_err(|refusal| {
            let text = refusal.to_string();
            (
                Response::json(403, Some("ForbiddenException"), &text),
                format!("{} ({text})", refusal.kind()),
            )
        })?;
    let answer = Response {
        status: 101,
        headers: vec![
            ("upgrade", "websocket".to_owned()),
            ("connection", "Upgrade".to_owned()),
            ("sec-websocket-accept", derive_accept_key(key.trim().as_bytes())),
            ("sec-websocket-protocol", subprotocol.to_owned()),
        ],
        body: Vec::new(),
    };
    let identity = PeerIdentity {
        common_name: None,
        certificate_sha256: format!("{SIGV4_IDENTITY_PREFIX}{}", verified.access_key_id),
    };
    Ok((answer, identity, web.websocket_max_duration))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A WebSocket as a byte stream: reads yield the payloads of binary frames (frames need not
/// align with MQTT packets), writes go out as binary frames. A text frame is an error (the
/// connection closes); a close frame or the end of the stream is the end of input; pings are
/// answered by tungstenite.
pub(super) struct WsBytes<S> {
    ws: WebSocketStream<S>,
    pending: Bytes,
}

impl<S> WsBytes<S> {
    /// Wraps an upgraded WebSocket.
    pub(super) fn new(ws: WebSocketStream<S>) -> Self {
        WsBytes { ws, pending: Bytes::new() }
    }
}

impl<S> std::fmt::Debug for WsBytes<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsBytes").field("pending", &self.pending.len()).finish_non_exhaustive()
    }
}

fn io_error(error: tokio_tungstenite::tungstenite::Error) -> std::io::Error {
    match error {
        tokio_tungstenite::tungstenite::Error::Io(error) => error,
        other => std::io::Error::other(other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsBytes<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(out.remaining());
                let chunk = self.pending.split_to(n);
                out.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Ok(Message::Binary(bytes))) => self.pending = bytes,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "a text frame: MQTT over WebSocket uses binary frames only",
                    )));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(error)) => return Poll::Ready(Err(io_error(error))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsBytes<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io_error)?;
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(io_error)
    }
}
