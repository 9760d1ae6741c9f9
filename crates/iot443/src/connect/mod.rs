//! Where a client's transports come from: the [`Connector`] trait, and the one iot443 uses by
//! default, TCP (or an HTTP proxy's tunnel) + TLS as the [`Config`] says, or with
//! `transport = "websocket"` the SigV4-signed WebSocket road ([`websocket`], [`sigv4`]).
//!
//! The driver asks its connector for a new transport at the start and after every lost
//! connection, and knows nothing else about it: a WebSocket road, a test's in-memory pipe or a
//! scripted endpoint plug in here without touching the driver.
//!
//! ```
//! use iot443::connect::{Connecting, Connector, Opened};
//! use iot443::{ClientError, ConnectionInfo};
//! use iot443_proto::codec::Connect;
//!
//! /// Hands out in-memory pipes, whose other ends a test serves.
//! struct Pipes(tokio::sync::mpsc::UnboundedSender<tokio::io::DuplexStream>);
//!
//! impl Connector for Pipes {
//!     fn connect(&self, _connect: &Connect) -> Connecting {
//!         let (client, server) = tokio::io::duplex(64 * 1024);
//!         let sent = self.0.send(server);
//!         Box::pin(async move {
//!             sent.map_err(|_| ClientError::Closed)?;
//!             Ok(Opened::new(client, ConnectionInfo::new("memory", 1883)))
//!         })
//!     }
//! }
//! ```

mod auto;
pub(crate) mod server_chain;
#[cfg(feature = "websocket")]
pub mod sigv4;
pub(crate) mod tls_failure;
pub(crate) mod transport;
#[cfg(feature = "proxy")]
pub(crate) mod tunnel;
#[cfg(not(feature = "proxy"))]
#[path = "tunnel_off.rs"]
pub(crate) mod tunnel;
#[cfg(feature = "websocket")]
pub mod websocket;
#[cfg(feature = "websocket")]
mod ws_stream;

#[cfg(feature = "websocket")]
pub use ws_stream::WebSocketTransport;

use crate::config::{Config, ConfigError, Transport as Road};
use crate::error::ClientError;
use crate::message::ConnectionInfo;
use auto::race as port_race;
use bytes::{Bytes, BytesMut};
use iot443_proto::Codec;
use iot443_proto::Packet;
use iot443_proto::codec::Connect;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Why an endpoint usually closes a connection before CONNACK.
pub(crate) const CLOSED_BEFORE_CONNACK: &str = "the endpoint closed the connection before \
     CONNACK: the certificate, the client id or (on port 443) ALPN x-amzn-mqtt-ca was probably \
     not accepted";

/// Any byte stream the driver can run MQTT over.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// A transport behind a box, so that reconnects can hand over new ones.
pub type BoxTransport = Box<dyn Transport>;

/// A transport just opened, ready for the MQTT session.
pub struct Opened {
    pub(crate) transport: BoxTransport,
    pub(crate) info: ConnectionInfo,
    /// `Some` when the connector already wrote CONNECT (the `port = "auto"` race): what it read
    /// back, starting with the CONNACK.
    pub(crate) read_ahead: Option<BytesMut>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").field("info", &self.info).finish_non_exhaustive()
    }
}

impl Opened {
    /// A transport on which nothing was exchanged yet; the session sends CONNECT. `info`
    /// describes it (reported on [`Event::Connected`](crate::Event::Connected)).
    pub fn new(
        transport: impl AsyncRead + AsyncWrite + Send + Unpin + 'static,
        info: ConnectionInfo,
    ) -> Opened {
        Opened { transport: Box::new(transport), info, read_ahead: None }
    }

    /// A TLS connection on which nothing was exchanged yet.
    pub(crate) fn fresh(connection: transport::Connection) -> Opened {
        Opened::new(connection.stream, connection.info)
    }

    /// A connection that raced to CONNACK.
    pub(crate) fn handshaken(handshaken: port_race::Handshaken) -> Opened {
        Opened {
            transport: handshaken.transport,
            info: handshaken.info,
            read_ahead: Some(handshaken.read_ahead),
        }
    }

    /// How this transport is connected.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }
}

/// An attempt to open a transport.
pub type Connecting = Pin<Box<dyn Future<Output = Result<Opened, ClientError>> + Send>>;

/// Opens transports for a client: the first one, and a new one after each lost connection.
///
/// Implementations must not block: do file and DNS work inside the returned future on the
/// blocking pool (as [`TlsConnector`] does). An attempt that fails is retried with the
/// reconnect backoff; its error's [`kind`](ClientError::kind) and text say why.
pub trait Connector: Send + Sync + 'static {
    /// Starts an attempt. `connect` is the CONNECT the session will send: a connector that
    /// exchanges CONNECT and CONNACK itself (racing several ports) writes it.
    fn connect(&self, connect: &Connect) -> Connecting;

    /// Whether another transport can be opened after the first; `false` ends the client when
    /// its transport ends. `true` by default.
    fn can_reconnect(&self) -> bool {
        true
    }
}

/// TCP + TLS (or the HTTP proxy's tunnel + TLS) as a [`Config`] says, every time anew: the
/// credential files are read again (on the blocking pool), so a renewed certificate is picked
/// up at the next reconnect. With `port = "auto"` it races the ports to CONNACK. With
/// `transport = "websocket"` it opens the WebSocket road instead, with the AWS credentials
/// found and the upgrade signed anew at every connect (`port = "auto"` does not apply there:
/// it connects to [`Config::port`]).
#[derive(Debug, Clone)]
pub struct TlsConnector {
    config: Arc<Config>,
}

impl TlsConnector {
    /// A connector for `config`.
    pub fn new(config: Config) -> TlsConnector {
        TlsConnector { config: Arc::new(config) }
    }
}

impl Connector for TlsConnector {
    fn connect(&self, connect: &Connect) -> Connecting {
        let config = Arc::clone(&self.config);
        let connect = connect.clone();
        Box::pin(async move { open(&config, &connect).await })
    }
}

/// Opens a transport as `config` says: the WebSocket road, one port, or with `port = "auto"`
/// the race, which also sends `connect` (the session's CONNECT) and reads the CONNACK.
pub(crate) async fn open(config: &Config, connect: &Connect) -> Result<Opened, ClientError> {
    // A road compiled out of this build is a configuration error here, whatever built `config`.
    crate::config::features::check(config)?;
    match config.transport {
        #[cfg(feature = "websocket")]
        Road::WebSocket => return websocket::connect(config).await,
        Road::Https => return Err(https_is_publish_only(config)),
        _ => {}
    }
    match &config.auto_port {
        Some(auto) => {
            let packet = encode_connect(connect)?;
            Ok(Opened::handshaken(port_race::connect(config, auto, &packet).await?))
        }
        None => Ok(Opened::fresh(transport::connect(config).await?)),
    }
}

/// The `Host` header for `host:port`: the host alone on 443 (what IoT Core signs against),
/// IPv6 literals in brackets.
#[cfg(any(feature = "websocket", feature = "https"))]
pub(crate) fn host_header(host: &str, port: u16) -> String {
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
    if port == 443 { host } else { format!("{host}:{port}") }
}

/// The MQTT client refuses `transport = "https"`.
pub(crate) fn https_is_publish_only(config: &Config) -> ClientError {
    ClientError::Config(ConfigError::InvalidValue {
        origin: config.origin(),
        field: "transport",
        message: "https is publish-only: use `iot443 pub --transport https`, or transport \
                  \"tls\" or \"websocket\" for MQTT"
            .to_owned(),
    })
}

fn encode_connect(connect: &Connect) -> Result<Bytes, ClientError> {
    let mut packet = BytesMut::with_capacity(64);
    Codec::default()
        .encode(&Packet::Connect(connect.clone()), &mut packet)
        .map_err(|error| ClientError::Session(error.into()))?;
    Ok(packet.freeze())
}

/// A transport the application opened: it cannot be reopened, so there is no reconnect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Given;

impl Connector for Given {
    fn connect(&self, _connect: &Connect) -> Connecting {
        Box::pin(async { Err(ClientError::Closed) })
    }

    fn can_reconnect(&self) -> bool {
        false
    }
}
