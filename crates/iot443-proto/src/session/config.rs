//! What a [`Session`](super::Session) is configured with, and why a command can be refused.

use crate::codec::{Connect, DEFAULT_MAX_PACKET_SIZE, EncodeError, LastWill, ProtocolVersion, QoS};
use alloc::string::String;
use bytes::Bytes;
use core::time::Duration;

/// IoT Core's limit on unacknowledged QoS 1 publishes per connection
/// ([`AWS_MAX_INFLIGHT`](crate::codec::AWS_MAX_INFLIGHT)), the default window.
pub const DEFAULT_MAX_INFLIGHT: u16 = crate::codec::AWS_MAX_INFLIGHT;

/// How long an acknowledgement is waited for by default ([`SessionConfig::ack_timeout`]): 30 s.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of a client session. Build it with [`SessionConfig::new`] and adjust the fields.
///
/// ```
/// use core::time::Duration;
/// use iot443_proto::SessionConfig;
///
/// let mut config = SessionConfig::new("tls-test");
/// config.keep_alive = Duration::from_secs(300);
/// config.clean_session = false;
/// assert_eq!(config.max_inflight, 100);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The MQTT client id. IoT Core: at most 128 bytes, unique per connected device.
    pub client_id: String,
    /// Idle time after which a PINGREQ is sent (nothing sent, or nothing received, for that
    /// long); whole seconds on the wire, at most 65,535 s (longer values are capped). Zero
    /// turns keep-alive off (IoT Core then applies 1,200 s). Default 60 s.
    pub keep_alive: Duration,
    /// How long to wait for PINGRESP before the link is declared dead. Default 5 s.
    pub ping_timeout: Duration,
    /// How long to wait for CONNACK after CONNECT. Default 10 s.
    pub connect_timeout: Duration,
    /// How long a QoS 1 PUBLISH, a SUBSCRIBE or an UNSUBSCRIBE may wait for its
    /// acknowledgement once written. Default [`DEFAULT_ACK_TIMEOUT`]; zero waits forever.
    ///
    /// AWS IoT Core sends no acknowledgement at all for an operation it throttles on MQTT
    /// 3.1.1, so without a bound a throttled publish would hold its in-flight slot until the
    /// next reconnect. When it runs out, a PUBLISH ends the connection
    /// ([`LinkDeadReason::PubAckTimeout`](super::LinkDeadReason::PubAckTimeout)): it is sent
    /// again, with DUP, over the next one, as MQTT 3.1.1 allows. An application's SUBSCRIBE or
    /// UNSUBSCRIBE is given up ([`Event::RequestTimedOut`](super::Event::RequestTimedOut)); the
    /// session's own SUBSCRIBE restoring subscriptions ends the connection like a PUBLISH.
    pub ack_timeout: Duration,
    /// When `true`, a QoS 1 PUBLISH from the server is acknowledged only when the driver calls
    /// [`Session::acknowledge`](super::Session::acknowledge) — once it has handed the message
    /// on — instead of as soon as it is decoded. Default `false`.
    pub manual_acks: bool,
    /// Start a fresh session (true, default) or resume the one the server keeps (false).
    pub clean_session: bool,
    /// Most QoS 1 publishes awaiting PUBACK at once; more wait in order behind them.
    /// Default [`DEFAULT_MAX_INFLIGHT`]; at least 1.
    pub max_inflight: u16,
    /// Largest packet the session sends or accepts, fixed header included.
    pub max_packet_size: usize,
    /// The last will.
    pub will: Option<LastWill>,
    /// User name for CONNECT (custom authentication only).
    pub username: Option<String>,
    /// Password for CONNECT (custom authentication only).
    pub password: Option<Bytes>,
}

impl SessionConfig {
    /// Defaults for `client_id`: keep-alive 60 s, ping timeout 5 s, CONNACK timeout 10 s,
    /// acknowledgement timeout 30 s, clean session, 100 in flight, automatic PUBACKs.
    pub fn new(client_id: impl Into<String>) -> Self {
        SessionConfig {
            client_id: client_id.into(),
            keep_alive: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            manual_acks: false,
            clean_session: true,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            will: None,
            username: None,
            password: None,
        }
    }

    /// The CONNECT a session with this configuration sends.
    #[must_use]
    pub fn connect_packet(&self) -> Connect {
        Connect {
            protocol: ProtocolVersion::V311,
            client_id: self.client_id.clone(),
            keep_alive: self.keep_alive_secs(),
            clean_session: self.clean_session,
            will: self.will.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
        }
    }

    /// The keep-alive in whole seconds as CONNECT carries it, rounded up and capped at 65,535.
    pub(super) fn keep_alive_secs(&self) -> u16 {
        let secs = self.keep_alive.as_secs() + u64::from(self.keep_alive.subsec_nanos() > 0);
        u16::try_from(secs).unwrap_or(u16::MAX)
    }
}

/// Why the session refused a command. Nothing was queued or sent.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// QoS 2 was asked for; AWS IoT Core supports QoS 0 and 1 only.
    #[error("QoS {} is not supported: AWS IoT Core accepts QoS 0 and 1", *.0 as u8)]
    QosNotSupported(QoS),
    /// A SUBSCRIBE or UNSUBSCRIBE without any filter.
    #[error("at least one topic filter is needed")]
    NoTopicFilters,
    /// Every packet id is in use by an unacknowledged request.
    #[error("all 65535 packet ids are in use; wait for acknowledgements")]
    PacketIdsExhausted,
    /// The packet cannot be encoded (too large, or a field over 65,535 bytes).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The configuration cannot work.
    #[error("invalid session configuration: {0}")]
    InvalidConfig(&'static str),
}
