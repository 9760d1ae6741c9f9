//! The broker's settings.

use super::policy::Policy;
use iot443_proto::codec::DEFAULT_MAX_PACKET_SIZE;
use std::time::Duration;

/// How long a persistent session outlives its connection by default: IoT Core's 1 hour.
pub const DEFAULT_SESSION_EXPIRY: Duration = Duration::from_secs(3600);

/// How long a connection may stay without CONNECT by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many QoS 1 messages wait for a session by default (offline, or behind the in-flight
/// window).
pub const DEFAULT_MAX_QUEUED_PER_SESSION: usize = 10_000;

/// The broker's settings. Build from [`BrokerConfig::default`] and change fields.
///
/// ```
/// use iot443_emulator::broker::BrokerConfig;
///
/// let mut config = BrokerConfig::default();
/// config.strict_rates = true;
/// assert_eq!(config.session_expiry.as_secs(), 3600);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Enforce IoT Core's rate quotas (100 publishes/s per connection, 1 CONNECT/s per client
    /// id, stored messages replayed at 10/s). Off by default so tests and benchmarks can stream.
    pub strict_rates: bool,
    /// How long a persistent session (clean session = 0) and its queued QoS 1 messages are kept
    /// after its connection ends. Default 1 hour, as IoT Core.
    pub session_expiry: Duration,
    /// A connection that has not sent CONNECT after this long is closed. Default 10 s.
    pub connect_timeout: Duration,
    /// Largest packet accepted from a client, fixed header included; a larger one closes the
    /// connection as malformed. Also bounds each connection's input buffer. Default
    /// [`DEFAULT_MAX_PACKET_SIZE`] (128 KiB payload plus headers).
    pub max_packet_size: usize,
    /// QoS 1 messages kept for one session, offline or waiting behind the in-flight window;
    /// more are dropped, and each run of drops is logged twice: when it starts, and when the
    /// queue has drained to half this limit (or the session ends) with the count. Default
    /// 10,000.
    pub max_queued_per_session: usize,
    /// Authorization policy; `None` allows everything.
    pub policy: Option<Policy>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            strict_rates: false,
            session_expiry: DEFAULT_SESSION_EXPIRY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            max_queued_per_session: DEFAULT_MAX_QUEUED_PER_SESSION,
            policy: None,
        }
    }
}
