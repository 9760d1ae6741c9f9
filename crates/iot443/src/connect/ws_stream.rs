//! A WebSocket as a byte stream for the MQTT driver: [`WebSocketTransport`].
//!
//! MQTT rides in binary messages (AWS IoT Core, MQTT 3.1.1 §6): each write batch goes out as one
//! binary message (the driver writes every ready packet in one buffer), and incoming binary
//! messages of any size are read as one stream, whatever their boundaries. Pings are answered
//! by tungstenite; a close frame reads as the end of the stream; a text frame is an error. The
//! stream also ends by itself after a maximum age (reads and writes then fail with
//! `ConnectionAborted`), so that the driver reconnects (signed anew) before AWS IoT Core's
//! 24-hour limit on WebSocket connections.

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// A WebSocket carrying MQTT, read and written as bytes ([`AsyncRead`] + [`AsyncWrite`]).
pub struct WebSocketTransport<S> {
    ws: WebSocketStream<S>,
    /// What is left of the binary message being read.
    pending: Bytes,
    /// When the connection has lived its maximum age.
    expiry: Pin<Box<Sleep>>,
    max_age: Duration,
    /// `host:port`, for the log line at expiry.
    addr: String,
    /// The stream ended (close frame, end of the connection, or the maximum age).
    ended: bool,
    expired: bool,
}

impl<S> std::fmt::Debug for WebSocketTransport<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketTransport")
            .field("addr", &self.addr)
            .field("max_age", &self.max_age)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketTransport<S> {
    /// Wraps an upgraded WebSocket to `addr` (`host:port`, for messages); `max_age` after now,
    /// reads and writes fail with [`io::ErrorKind::ConnectionAborted`].
    pub fn new(ws: WebSocketStream<S>, addr: impl Into<String>, max_age: Duration) -> Self {
        WebSocketTransport {
            ws,
            pending: Bytes::new(),
            expiry: Box::pin(tokio::time::sleep(max_age)),
            max_age,
            addr: addr.into(),
            ended: false,
            expired: false,
        }
    }

    /// Whether the stream ended because it reached its maximum age.
    pub fn expired(&self) -> bool {
        self.expired
    }

    /// Checks the age; logs once and ends the stream when it is reached.
    fn poll_expiry(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.expired && self.expiry.as_mut().poll(cx).is_ready() {
            self.expired = true;
            self.ended = true;
            tracing::info!(
                addr = %self.addr,
                "the WebSocket connection to {} is {} min old: closing it to reconnect (signed \
                 anew) before AWS IoT Core's 24-hour limit on WebSocket connections",
                self.addr,
                self.max_age.as_secs() / 60
            );
        }
        self.expired
    }
}

/// The error that ends a connection at its maximum age.
fn aged(max_age: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        format!(
            "the WebSocket connection reached its maximum age ({} min): reconnecting before AWS \
             IoT Core's 24-hour limit",
            max_age.as_secs() / 60
        ),
    )
}

/// A tungstenite error as an I/O error for the driver.
fn io_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(error) => error,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket is closed")
        }
        other => io::Error::new(io::ErrorKind::InvalidData, format!("WebSocket: {other}")),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WebSocketTransport<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(this.pending.get(..n).unwrap_or_default());
                this.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.poll_expiry(cx) {
                // An error, not a clean end: the driver counts it as the network's doing (no
                // refusal of an outstanding message) and reconnects.
                return Poll::Ready(Err(aged(this.max_age)));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => this.pending = data,
                // tungstenite answers pings itself; pongs and raw frames carry no MQTT.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    tracing::debug!(addr = %this.addr, ?frame, "the endpoint closed the WebSocket");
                    this.ended = true;
                }
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} sent a WebSocket text frame; MQTT over WebSocket uses binary \
                             frames only",
                            this.addr
                        ),
                    )));
                }
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) | None => {
                    this.ended = true;
                }
                Some(Err(error)) => return Poll::Ready(Err(io_error(error))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WebSocketTransport<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.poll_expiry(cx) {
            return Poll::Ready(Err(aged(this.max_age)));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut ws = Pin::new(&mut this.ws);
        ready!(ws.as_mut().poll_ready(cx)).map_err(io_error)?;
        ws.start_send(Message::Binary(Bytes::copy_from_slice(data))).map_err(io_error)?;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.get_mut().ws).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(error) => Poll::Ready(Err(io_error(error))),
        }
    }
}
