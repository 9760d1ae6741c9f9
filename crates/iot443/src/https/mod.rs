//! HTTPS publish, AWS IoT Core's publish-only road: `POST /topics/<topic>?qos=N&retain=…`
//! authenticated by the device certificate, on port 443 with ALPN `x-amzn-http-ca` or on port
//! 8443 without ALPN (AWS-IOT-ROADS.md §2).
//!
//! The connection is made as the MQTT client makes it (TCP or the HTTP proxy's `CONNECT`
//! tunnel, TLS with SNI and the device certificate, the same explanations of a failed
//! handshake, TLS interception named), only the ALPN differs. A message is checked with the
//! rules of an MQTT publish before anything is sent. IoT Core's status codes become
//! [`HttpsError`] variants that say what to check.
//!
//! [`HttpsPublisher`] keeps one connection for several publishes and opens a new one when the
//! endpoint closed it (IoT Core does not promise more than one request per connection);
//! [`publish`] is one message on a connection of its own.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use iot443::https::{HttpsPublish, HttpsPublisher};
//! let config = iot443::Config::load("iot443.toml".as_ref())?;
//! let mut publisher = HttpsPublisher::new(&config);
//! for reading in ["20.5", "20.7"] {
//!     let message = HttpsPublish::new("sensors/temperature", reading).qos(iot443::QoS::AtLeastOnce);
//!     publisher.publish(&message).await?; // IoT Core answered 200
//! }
//! publisher.close().await;
//! # Ok(()) }
//! ```

mod error;
mod request;
mod response;

pub use error::{HttpsError, Refusal};
pub use request::HttpsPublish;

use crate::config::Config;
use crate::connect::{tls_failure, transport};
use crate::error::ClientError;
use bytes::BytesMut;
use response::{MAX_BODY, MAX_HEAD, Response, ResponseError};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The ALPN protocol for HTTPS publish with a client certificate on port 443.
pub const ALPN_HTTP_CA: &str = "x-amzn-http-ca";

/// IoT Core's answer 200 to a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpsPublished {
    /// The status code (200).
    pub status: u16,
    /// The body's `message` (`OK`).
    pub message: Option<String>,
    /// The body's `traceId`.
    pub trace_id: Option<String>,
    /// The `x-amzn-RequestId` header.
    pub request_id: Option<String>,
}

/// Publishes one message over HTTPS on a connection of its own, closed afterwards.
pub async fn publish(
    config: &Config,
    request: &HttpsPublish,
) -> Result<HttpsPublished, HttpsError> {
    let mut publisher = HttpsPublisher::new(config);
    let result = publisher.publish(request).await;
    publisher.close().await;
    result
}

/// Publishes messages over HTTPS, one request after the other on one connection while the
/// endpoint keeps it open, on a new one when it closed it.
///
/// A request that found its kept connection closed before any answer is sent once more on a
/// new connection: an endpoint that closes an idle connection has not read the request. Every
/// other failure is returned as it is, and the next publish opens a new connection.
pub struct HttpsPublisher {
    config: Config,
    connection: Option<TlsStream<TcpStream>>,
    buf: BytesMut,
}

impl std::fmt::Debug for HttpsPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsPublisher")
            .field("addr", &self.config.server_addr())
            .field("alpn", &self.config.alpn_protocol())
            .field("connected", &self.connection.is_some())
            .finish()
    }
}

/// How one exchange on one connection failed.
enum Failed {
    /// The connection ended before any byte of the answer (or the write found it closed):
    /// worth one more try on a new connection when it was a kept one.
    BeforeAnswer(HttpsError),
    /// Anything else.
    Other(HttpsError),
}

impl HttpsPublisher {
    /// A publisher for `config`'s endpoint, device certificate and proxy. The port is
    /// `config.port` (with `port = "auto"`, the 443-style port); on port 443, or when
    /// `config.alpn` asks for IoT Core's ALPN, it offers ALPN `x-amzn-http-ca`; elsewhere
    /// (8443) none, unless `config.alpn` names another protocol. No connection is opened yet.
    pub fn new(config: &Config) -> HttpsPublisher {
        let mut config = config.clone();
        if let Some(auto) = config.auto_port.take() {
            config.port = auto.alpn_port;
            config.alpn = Some(ALPN_HTTP_CA.to_owned());
        }
        config.alpn = match config.alpn.take() {
            // The MQTT protocol name asks for IoT Core's ALPN road on a port that is not 443.
            Some(alpn) if alpn == Config::ALPN_MQTT_CA => Some(ALPN_HTTP_CA.to_owned()),
            Some(alpn) => Some(alpn),
            None if config.port == 443 => Some(ALPN_HTTP_CA.to_owned()),
            None => None,
        };
        HttpsPublisher { config, connection: None, buf: BytesMut::new() }
    }

    /// The ALPN protocol offered, if any.
    pub fn alpn(&self) -> Option<&str> {
        self.config.alpn.as_deref()
    }

    /// Publishes `request`: resolves when IoT Core answered 200 (at QoS 1 that means it
    /// accepted the message). Nothing is sent when the message breaks a rule.
    ///
    /// Opening a connection is bounded by `config.connect_timeout` (each of TCP, the proxy
    /// tunnel and TLS), the answer by `config.ack_timeout`; a request sent again after its
    /// kept connection turned out closed may, at worst, reach IoT Core twice (an endpoint that
    /// closed without answering usually did not read it).
    pub async fn publish(&mut self, request: &HttpsPublish) -> Result<HttpsPublished, HttpsError> {
        request.check()?;
        let host = crate::connect::host_header(&self.config.endpoint, self.config.port);
        let bytes = request.encode(&host);
        let mut retried = false;
        loop {
            let kept = self.take_live_connection().await;
            let reused = kept.is_some();
            let mut stream = match kept {
                Some(stream) => stream,
                None => self.open().await?,
            };
            match self.exchange(&mut stream, &bytes, request).await {
                Ok((published, keep_alive)) => {
                    if keep_alive {
                        self.connection = Some(stream);
                    }
                    return published;
                }
                Err(Failed::BeforeAnswer(error)) if reused && !retried => {
                    tracing::debug!(
                        addr = %self.config.server_addr(),
                        "the kept HTTPS connection was closed; sending again on a new one: {error}"
                    );
                    retried = true;
                }
                Err(Failed::BeforeAnswer(error) | Failed::Other(error)) => return Err(error),
            }
        }
    }

    /// Closes the kept connection, if any (TLS close_notify, then TCP).
    pub async fn close(&mut self) {
        if let Some(mut stream) = self.connection.take() {
            let _ = tokio::time::timeout(self.config.connect_timeout, stream.shutdown()).await;
        }
    }

    /// The kept connection, unless the endpoint already closed it (or sent something unasked).
    async fn take_live_connection(&mut self) -> Option<TlsStream<TcpStream>> {
        let mut stream = self.connection.take()?;
        let mut byte = [0_u8; 1];
        // Polled once: a close already received shows as the end of the stream (or an error).
        match tokio::time::timeout(Duration::ZERO, stream.read(&mut byte)).await {
            Err(_) => Some(stream),
            Ok(_) => None,
        }
    }

    /// A new connection: credentials read on the blocking pool, TCP or the proxy tunnel, TLS.
    /// (No client id is needed: HTTPS publish has none.)
    async fn open(&mut self) -> Result<TlsStream<TcpStream>, HttpsError> {
        let credentials = transport::load_credentials(&self.config).await?;
        let connection = transport::connect_with(&self.config, &credentials).await?;
        tracing::debug!(connection = %connection.info.summary(), "HTTPS publish connection open");
        Ok(connection.stream)
    }

    /// Writes `bytes` and reads the answer, within `ack_timeout`: the published answer (200
    /// or the refusal) and whether the connection can be kept.
    async fn exchange(
        &mut self,
        stream: &mut TlsStream<TcpStream>,
        bytes: &[u8],
        request: &HttpsPublish,
    ) -> Result<(Result<HttpsPublished, HttpsError>, bool), Failed> {
        let addr = self.config.server_addr();
        let timeout = self.config.ack_timeout;
        self.buf.clear();
        let buf = &mut self.buf;
        let config = &self.config;
        let exchange = async {
            if let Err(source) = async {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
            .await
            {
                return Err(Failed::BeforeAnswer(io_error(config, "writing the request", source)));
            }
            loop {
                let closed = match stream.read_buf(buf).await {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(source) if buf.is_empty() => {
                        return Err(Failed::BeforeAnswer(io_error(
                            config,
                            "reading the answer",
                            source,
                        )));
                    }
                    Err(source) => {
                        return Err(Failed::Other(io_error(config, "reading the answer", source)));
                    }
                };
                match response::parse(buf, closed) {
                    Ok(Some(response)) => return Ok(response),
                    Ok(None) if closed && buf.is_empty() => {
                        return Err(Failed::BeforeAnswer(HttpsError::NoAnswer {
                            addr: addr.clone(),
                        }));
                    }
                    Ok(None) if closed => {
                        return Err(Failed::Other(HttpsError::BadResponse {
                            addr: addr.clone(),
                            detail: "the connection closed in the middle of the answer".to_owned(),
                        }));
                    }
                    Ok(None) if buf.len() > MAX_HEAD + MAX_BODY => {
                        return Err(Failed::Other(bad(&addr, &ResponseError::HeadTooLarge)));
                    }
                    Ok(None) => continue,
                    Err(error) => return Err(Failed::Other(bad(&addr, &error))),
                }
            }
        };
        let response = match tokio::time::timeout(timeout, exchange).await {
            Ok(outcome) => outcome?,
            Err(_) => {
                return Err(Failed::Other(HttpsError::Client(ClientError::Timeout {
                    addr,
                    stage: "HTTPS publish answer",
                    after: timeout,
                    hint: "; the endpoint did not answer: retry later, or raise ack_timeout \
                           (--ack-timeout)"
                        .to_owned(),
                })));
            }
        };
        // Bytes after the answer were never asked for: do not keep such a connection.
        let keep_alive = response.keep_alive && response.len == self.buf.len();
        Ok((self.outcome(response, request), keep_alive))
    }

    fn outcome(
        &self,
        response: Response,
        request: &HttpsPublish,
    ) -> Result<HttpsPublished, HttpsError> {
        if response.status == 200 {
            return Ok(HttpsPublished {
                status: response.status,
                message: response.message,
                trace_id: response.trace_id,
                request_id: response.request_id,
            });
        }
        let message = response
            .message
            .or_else(|| (!response.reason.is_empty()).then(|| response.reason.clone()));
        Err(HttpsError::refused(Refusal {
            addr: self.config.server_addr(),
            topic: request.topic.clone(),
            certificate: self.config.certificate.display().to_string(),
            status: response.status,
            error_type: response.error_type,
            message,
            trace_id: response.trace_id,
        }))
    }
}

/// A read or write failure: a TLS alert (the device certificate refused after the
/// handshake…) is explained as the MQTT client explains it.
fn io_error(config: &Config, during: &'static str, source: std::io::Error) -> HttpsError {
    match tls_failure::rustls_error(&source).cloned() {
        Some(rustls_error) => {
            let explanation = tls_failure::explain(config, &source, None);
            let hint = if explanation.hint.is_empty() {
                String::new()
            } else {
                format!("; {}", explanation.hint)
            };
            HttpsError::Client(ClientError::Tls {
                addr: config.server_addr(),
                detail: format!("{} while {during}", explanation.detail),
                hint,
                source: Some(Arc::new(rustls_error)),
            })
        }
        None => HttpsError::Io { addr: config.server_addr(), during, source: Arc::new(source) },
    }
}

fn bad(addr: &str, error: &ResponseError) -> HttpsError {
    HttpsError::BadResponse { addr: addr.to_owned(), detail: error.to_string() }
}
