//! Everything that can go wrong for a [`Client`](crate::Client), with where and what to do.

use crate::config::ConfigError;
use crate::outbox::OutboxError;
use iot443_proto::codec::ConnectReason;
use iot443_proto::session::ProtocolError;
use iot443_proto::topic::TopicError;
use std::sync::Arc;
use std::time::Duration;

/// The cause behind a lost connection: an I/O error, a protocol error, … (shared, so that every
/// caller waiting on the connection gets the same error).
pub type LostCause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why a client operation failed.
///
/// Every message names the place (host:port, topic, file) and suggests what to do next. Use
/// [`ClientError::kind`] to branch on the broad category (the CLI maps it to its exit codes).
///
/// Errors are `Clone`: the sources that are not (operating-system errors, the outbox's) are
/// shared behind an [`Arc`], so that every caller waiting on one failure gets it whole.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The configuration or the credential files are not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Resolving or reaching the endpoint over TCP failed.
    #[error(
        "cannot reach {addr} over TCP: {source}; check the endpoint name, the port and that a firewall lets it out{hint}"
    )]
    Connect {
        /// `host:port`.
        addr: String,
        /// The operating system's error.
        source: Arc<std::io::Error>,
        /// Extra advice, starting with "; " when present.
        hint: &'static str,
    },
    /// A TCP connect, TLS handshake or CONNACK did not complete in time.
    #[error("{stage} with {addr} timed out after {after:?}{hint}")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// What was waited for: "TCP connect", "TLS handshake", "CONNACK".
        stage: &'static str,
        /// The timeout.
        after: Duration,
        /// Extra advice, starting with "; " when present.
        hint: String,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {addr} failed: {detail}{hint}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// What rustls or the server said.
        detail: String,
        /// Likely cause and fix, starting with "; " when known.
        hint: String,
        /// rustls' own error, when the failure came from rustls (an alert, a certificate the
        /// verifier refused, …); `None` for a failure of the stream under it.
        #[source]
        source: Option<Arc<rustls::Error>>,
    },
    /// The HTTP proxy could not be reached, or did not open the tunnel (`CONNECT host:port`).
    ///
    /// Its [`kind`](ClientError::kind) is [`ErrorKind::TlsOrAuth`] when the proxy refused with
    /// 407 (credentials) or 403 (forbidden), [`ErrorKind::Connection`] otherwise (unreachable,
    /// timed out, another status). The reconnecting client retries the latter as network
    /// failures.
    #[error("HTTP proxy {proxy}: {detail}{hint}")]
    Proxy {
        /// The proxy as `http://[user:***@]host:port`: the password never appears.
        proxy: String,
        /// The HTTP status of the proxy's answer, when it answered.
        status: Option<u16>,
        /// What happened: the status line, or the network error.
        detail: String,
        /// Likely cause and fix, starting with "; " when known.
        hint: String,
    },
    /// The endpoint (or a proxy on the way) answered the WebSocket upgrade with a status other
    /// than 101.
    ///
    /// Its [`kind`](ClientError::kind) is [`ErrorKind::TlsOrAuth`] for 401 and 403 (AWS IoT Core
    /// refusing the SigV4 signature: credentials, region, clock), [`ErrorKind::Connection`]
    /// otherwise.
    #[error("{addr} refused the WebSocket upgrade: {detail}{hint}")]
    WebSocketRefused {
        /// `host:port`.
        addr: String,
        /// The HTTP status.
        status: u16,
        /// The status line and what the endpoint said (`x-amzn-ErrorType`, its message), e.g.
        /// `HTTP 403 Forbidden (ForbiddenException): …`.
        detail: String,
        /// What to check, starting with "; ".
        hint: String,
    },
    /// The WebSocket upgrade did not follow the protocol (a 101 without the `mqtt`
    /// subprotocol, a malformed answer).
    #[error("WebSocket upgrade with {addr} failed: {detail}")]
    WebSocketProtocol {
        /// `host:port`.
        addr: String,
        /// What went wrong.
        detail: String,
    },
    /// `port = "auto"`: no port reached CONNACK; each port's failure in the order tried.
    ///
    /// Its [`kind`](ClientError::kind) is that of the first port whose failure came from the
    /// endpoint itself (a TLS or CONNACK refusal says more than a blocked port), else
    /// [`ErrorKind::Connection`]: a port that a firewall drops or a proxy will not tunnel to
    /// says nothing about the endpoint.
    #[error("no port of {host} reached CONNACK (port = \"auto\"): {}{hint}", describe_ports(.failures))]
    AllPortsFailed {
        /// The endpoint's host name.
        host: String,
        /// Each road tried (`port 8883`, `port 443`, `port 443 (WebSocket)`), with why it
        /// failed.
        failures: Vec<(String, ClientError)>,
        /// Likely cause and fix, starting with "; " when known.
        hint: String,
    },
    /// The endpoint answered CONNECT with a refusal.
    #[error("{addr} refused the MQTT connection: {code}{hint}")]
    ConnectionRefused {
        /// `host:port`.
        addr: String,
        /// Why, as the endpoint said it (an MQTT 3.1.1 return code, with its MQTT 5 meaning).
        code: ConnectReason,
        /// Likely cause and fix.
        hint: &'static str,
    },
    /// A topic or filter breaks MQTT's or AWS IoT Core's rules. Nothing was sent.
    #[error("invalid topic {topic:?}: {source}; nothing was sent")]
    InvalidTopic {
        /// The topic as given.
        topic: String,
        /// What is wrong.
        source: TopicError,
    },
    /// A payload over AWS IoT Core's 128 KiB limit. Nothing was sent.
    #[error(
        "payload of {size} bytes for topic {topic:?} exceeds AWS IoT Core's limit of {max} bytes; nothing was sent"
    )]
    PayloadTooLarge {
        /// The topic.
        topic: String,
        /// Payload size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// QoS 2, which AWS IoT Core does not support. Nothing was sent.
    #[error("QoS 2 is not supported by AWS IoT Core; use QoS 0 or 1 (nothing was sent)")]
    QosNotSupported,
    /// More than 8 filters in one SUBSCRIBE (AWS IoT Core's limit). Nothing was sent.
    #[error("{count} filters in one SUBSCRIBE; AWS IoT Core accepts at most 8 (nothing was sent)")]
    TooManyFilters {
        /// Filters given.
        count: usize,
    },
    /// The endpoint refused a subscription (SUBACK failure code).
    #[error(
        "{addr} refused the subscription to {filter:?}; check the policy attached to the certificate allows iot:Subscribe on it"
    )]
    SubscriptionRefused {
        /// `host:port`.
        addr: String,
        /// The filter.
        filter: String,
    },
    /// The endpoint broke the MQTT protocol; the connection was closed.
    #[error("protocol error from {addr}: {source}")]
    Protocol {
        /// `host:port`.
        addr: String,
        /// What it did.
        source: ProtocolError,
    },
    /// The connection ended before the operation completed.
    #[error("connection to {addr} lost before the operation completed: {reason}")]
    ConnectionLost {
        /// `host:port`.
        addr: String,
        /// Why the connection ended.
        reason: String,
        /// The error behind it, when there is one (a read or write error, a protocol error…).
        #[source]
        source: Option<LostCause>,
    },
    /// The endpoint did not acknowledge a SUBSCRIBE or UNSUBSCRIBE within the acknowledgement
    /// timeout (AWS IoT Core sends no answer to a request it throttles). The request was given
    /// up; the connection stays.
    #[error(
        "{addr} did not acknowledge {request} within {after:?}; AWS IoT Core sends no answer to a \
         request it throttles: try again later, or raise ack_timeout (--ack-timeout)"
    )]
    NotAcknowledged {
        /// `host:port`.
        addr: String,
        /// What was asked, e.g. `a SUBSCRIBE to a/#`.
        request: String,
        /// The acknowledgement timeout.
        after: Duration,
    },
    /// The MQTT session refused the command (for example every packet id is in use).
    #[error("the MQTT session refused the command: {0}")]
    Session(#[from] iot443_proto::session::SessionError),
    /// The queue of publishes waiting for a connection is full (see `OfflineQueue`).
    #[error(
        "the offline queue is full ({messages} messages, {bytes} bytes waiting): the endpoint has been unreachable for a while; publish less often, raise the queue's bounds, or let it drop the oldest QoS 0 messages"
    )]
    QueueFull {
        /// Messages waiting.
        messages: usize,
        /// Payload bytes waiting.
        bytes: usize,
    },
    /// A queued QoS 0 message was dropped to make room in a full offline queue.
    #[error("QoS 0 message to {topic:?} dropped from the full offline queue")]
    Dropped {
        /// Its topic.
        topic: String,
    },
    /// A QoS 1 message the endpoint kept refusing was set aside (in the outbox's dead letters
    /// when there is an outbox) instead of being re-sent forever.
    #[error(
        "message to {topic:?} set aside as a dead letter: {reason}; check that the policy allows iot:Publish on this topic"
    )]
    DeadLettered {
        /// Its topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// A QoS 1 message was not acknowledged within the configured message expiry and was
    /// dropped from the outbox.
    #[error(
        "message to {topic:?} expired before the endpoint acknowledged it; it was dropped (see message_expiry)"
    )]
    Expired {
        /// Its topic.
        topic: String,
    },
    /// The durable outbox failed (its own [`ErrorKind::Storage`]).
    #[error("outbox: {0}")]
    Outbox(#[source] Arc<OutboxError>),
    /// The client was disconnected (by `disconnect`, or after a fatal error) and accepts no more
    /// operations.
    #[error("the client is disconnected; create a new one with Client::connect")]
    Closed,
}

/// The broad category of a [`ClientError`], stable for programs and exit codes.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Configuration, credential files, or an invalid argument (topic, payload, QoS).
    Usage,
    /// TLS handshake or authentication (certificate, CA, ALPN, CONNACK refusal).
    TlsOrAuth,
    /// The endpoint could not be reached, timed out, or the connection was lost.
    Connection,
    /// The endpoint broke the MQTT protocol.
    Protocol,
    /// The durable outbox (its file) failed.
    Storage,
    /// The service refused a request (a Device Shadow rejection: 400, 404, 409, …; an HTTPS
    /// publish refused with 400, 404, 405 or 413).
    Rejected,
}

impl ErrorKind {
    /// The exit code the `iot443` command uses for this kind, for programs that follow it: 2
    /// usage, 3 TLS or authentication, 4 connection, 5 protocol, 6 storage (the outbox), 7 a
    /// request the service rejected (a shadow's error document).
    ///
    /// ```
    /// assert_eq!(iot443::ErrorKind::Connection.exit_code(), 4);
    /// ```
    pub const fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage => 2,
            ErrorKind::TlsOrAuth => 3,
            ErrorKind::Connection => 4,
            ErrorKind::Protocol => 5,
            ErrorKind::Storage => 6,
            ErrorKind::Rejected => 7,
        }
    }
}

impl ClientError {
    /// The broad category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Config(_)
            | ClientError::InvalidTopic { .. }
            | ClientError::PayloadTooLarge { .. }
            | ClientError::QosNotSupported
            | ClientError::TooManyFilters { .. }
            | ClientError::Session(_) => ErrorKind::Usage,
            ClientError::Outbox(_) => ErrorKind::Storage,
            ClientError::Proxy { status: Some(403 | 407), .. } => ErrorKind::TlsOrAuth,
            ClientError::Proxy { .. } => ErrorKind::Connection,
            ClientError::WebSocketRefused { status: 401 | 403, .. } => ErrorKind::TlsOrAuth,
            ClientError::WebSocketRefused { .. } => ErrorKind::Connection,
            ClientError::WebSocketProtocol { .. } => ErrorKind::Protocol,
            ClientError::Tls { .. }
            | ClientError::ConnectionRefused { .. }
            | ClientError::SubscriptionRefused { .. } => ErrorKind::TlsOrAuth,
            ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::ConnectionLost { .. }
            | ClientError::NotAcknowledged { .. }
            | ClientError::QueueFull { .. }
            | ClientError::Dropped { .. }
            | ClientError::Expired { .. }
            | ClientError::Closed => ErrorKind::Connection,
            ClientError::DeadLettered { .. } => ErrorKind::TlsOrAuth,
            ClientError::Protocol { .. } => ErrorKind::Protocol,
            ClientError::AllPortsFailed { failures, .. } => failures
                .iter()
                .find(|(_, error)| error.came_from_the_endpoint())
                .map_or(ErrorKind::Connection, |(_, error)| error.kind()),
        }
    }
}

impl ClientError {
    /// Whether the endpoint itself answered with this failure (TLS, CONNACK, a close before
    /// CONNACK, bad MQTT), as opposed to the path to it (TCP, a timeout, the proxy).
    pub(crate) fn came_from_the_endpoint(&self) -> bool {
        matches!(
            self,
            ClientError::Tls { .. }
                | ClientError::ConnectionRefused { .. }
                | ClientError::ConnectionLost { .. }
                | ClientError::Protocol { .. }
                | ClientError::WebSocketRefused { status: 401 | 403, .. }
                | ClientError::WebSocketProtocol { .. }
        )
    }
}

impl From<OutboxError> for ClientError {
    fn from(error: OutboxError) -> Self {
        ClientError::Outbox(Arc::new(error))
    }
}

impl ClientError {
    /// A lost connection with `reason`, and no error behind it.
    pub(crate) fn lost(addr: impl Into<String>, reason: impl Into<String>) -> ClientError {
        ClientError::ConnectionLost { addr: addr.into(), reason: reason.into(), source: None }
    }
}

/// `port 8883: … | port 443: …` for [`ClientError::AllPortsFailed`].
fn describe_ports(failures: &[(String, ClientError)]) -> String {
    let described: Vec<String> =
        failures.iter().map(|(road, error)| format!("{road}: {error}")).collect();
    described.join(" | ")
}

/// The advice that goes with a CONNACK refusal, by meaning (the same for a 3.1.1 return code
/// and the MQTT 5 reason code that means the same).
const REFUSAL_HINTS: [(ConnectReason, &str); 3] = [
    (
        ConnectReason::NOT_AUTHORIZED,
        "; the certificate is not allowed to connect with this client id: check that it is \
         ACTIVE and that its policy allows iot:Connect for this client id",
    ),
    (
        ConnectReason::CLIENT_IDENTIFIER_NOT_VALID,
        "; the client id was rejected: use 1 to 128 bytes, not starting with '$'",
    ),
    (ConnectReason::UNSUPPORTED_PROTOCOL_VERSION, "; the endpoint does not speak MQTT 3.1.1"),
];

/// The advice that goes with a CONNACK refusal, or `""` when there is none.
pub(crate) fn refusal_hint(code: ConnectReason) -> &'static str {
    REFUSAL_HINTS.iter().find(|(reason, _)| *reason == code).map_or("", |(_, hint)| hint)
}
