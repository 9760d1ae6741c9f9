//! An MQTT peer over any async stream, driven packet by packet by a test.

use bytes::BytesMut;
use iot443_proto::codec::{Codec, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Writes and reads whole MQTT packets on `stream` (a socket, a TLS stream, one end of
/// `tokio::io::duplex`), with no session logic: the test decides every packet. Panics on IO
/// errors and on bytes that are not MQTT.
#[derive(Debug)]
pub struct RawMqtt<S> {
    stream: S,
    codec: Codec,
    /// Bytes read and not yet decoded.
    rx: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawMqtt<S> {
    /// A peer on `stream`, with the default codec.
    pub fn new(stream: S) -> Self {
        RawMqtt { stream, codec: Codec::default(), rx: BytesMut::new() }
    }

    /// Encodes and writes `packet`, and flushes.
    pub async fn send(&mut self, packet: &Packet) {
        let mut wire = BytesMut::new();
        self.codec.encode(packet, &mut wire).expect("test packet does not encode");
        self.stream.write_all(&wire).await.expect("write failed");
        self.stream.flush().await.expect("flush failed");
    }

    /// The next packet, or `None` when the other end has closed the stream.
    pub async fn recv(&mut self) -> Option<Packet> {
        loop {
            if let Some(packet) = self.codec.decode(&mut self.rx).expect("the peer sent bad MQTT") {
                return Some(packet);
            }
            if self.stream.read_buf(&mut self.rx).await.expect("read failed") == 0 {
                assert!(self.rx.is_empty(), "the stream ended inside a packet: {:?}", self.rx);
                return None;
            }
        }
    }

    /// The stream.
    pub fn into_inner(self) -> S {
        self.stream
    }
}
