//! Why the broker closes a connection, with the IoT Core rule behind each reason.

use crate::peer_text::peer_text;
use iot443_proto::codec::DecodeError;
use iot443_proto::topic::TopicError;

/// Why the broker closed a connection.
///
/// Reported in [`BrokerEvent::Close`](super::BrokerEvent::Close). The `Display` text says what
/// happened and which AWS IoT Core rule applies, for the shell's log line; text the client
/// supplied (topics, client ids) is cut to a bounded length there, while the fields keep it
/// whole.
/// [`CloseReason::lifecycle_reason`] gives the `disconnectReason` IoT Core's lifecycle events
/// would carry (AWS-IOT.md §3.9).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The client sent DISCONNECT: an orderly close, the last will is not published.
    #[error("client sent DISCONNECT (orderly close, last will discarded)")]
    ClientDisconnected,
    /// The transport closed or failed without a DISCONNECT first.
    #[error("connection lost without DISCONNECT (IoT Core publishes the last will)")]
    TransportClosed,
    /// The client sent bytes that are not valid MQTT 3.1.1.
    #[error("malformed MQTT from the client: {0}")]
    Malformed(DecodeError),
    /// No CONNECT arrived within [`BrokerConfig::connect_timeout`](super::BrokerConfig::connect_timeout).
    #[error("no CONNECT within the connect timeout after the connection was accepted")]
    ConnectTimeout,
    /// Nothing arrived from the client for 1.5 times its (clamped) keep-alive.
    #[error(
        "keep-alive timeout: no packet from the client for 1.5 x {keep_alive_secs} s (IoT Core rule: disconnect at 1.5 x keep-alive)"
    )]
    KeepAliveTimeout {
        /// The keep-alive in force, after IoT Core's clamping to 30..=1200 s.
        keep_alive_secs: u16,
    },
    /// Another connection sent CONNECT with the same client id; the newer one wins.
    #[error(
        "client id taken over by a newer connection (IoT Core rule: one connection per client id, the new one wins)"
    )]
    Takeover,
    /// CONNECT asked for a protocol level other than 4 (MQTT 3.1.1); CONNACK 1 was sent.
    #[error(
        "unsupported MQTT protocol level {0}: this emulator speaks MQTT 3.1.1 (level 4); answered CONNACK 1"
    )]
    UnsupportedProtocolLevel(u8),
    /// The client id is not acceptable; CONNACK 2 was sent.
    #[error("client id rejected with CONNACK 2: {0}")]
    ClientIdRejected(String),
    /// The policy does not allow the action. A denied connect was answered with CONNACK 5.
    #[error(
        "policy denies {action} on {:?} (IoT Core closes MQTT 3.1.1 connections on unauthorized actions)",
        peer_text(.resource)
    )]
    PolicyDenied {
        /// `"connect"`, `"publish"` or `"subscribe"`.
        action: &'static str,
        /// The client id (connect), topic (publish) or topic filter (subscribe).
        resource: String,
    },
    /// A PUBLISH (or a last will) carried more than IoT Core's 128 KiB payload limit.
    #[error("payload of {size} bytes exceeds IoT Core's limit of 131072 bytes (128 KiB)")]
    PayloadTooLarge {
        /// The payload size received.
        size: usize,
    },
    /// A topic name or filter breaks IoT Core's topic rules (256 bytes, 7 slashes, reserved `$`).
    #[error("topic {:?} refused by IoT Core's topic rules: {error}", peer_text(.topic))]
    TopicLimit {
        /// The topic name or filter, as received.
        topic: String,
        /// The rule it breaks.
        error: TopicError,
    },
    /// A SUBSCRIBE carried more than IoT Core's 8 topic filters.
    #[error("SUBSCRIBE with {count} topic filters; IoT Core allows at most 8 per SUBSCRIBE")]
    TooManyFiltersInSubscribe {
        /// Filters in the SUBSCRIBE.
        count: usize,
    },
    /// The session would hold more than IoT Core's 50 subscriptions.
    #[error("{count} subscriptions on one connection; IoT Core allows at most 50")]
    TooManySubscriptions {
        /// Subscriptions the session would have held.
        count: usize,
    },
    /// The client broke an MQTT or IoT Core protocol rule (second CONNECT, packet before
    /// CONNECT, a QoS 2 packet IoT Core does not support, a server-to-client packet...).
    #[error("protocol violation: {0}")]
    ProtocolViolation(&'static str),
    /// With strict rates: a second CONNECT for this client id within one second.
    #[error(
        "CONNECT rate exceeded for client id {:?} (IoT Core quota: 1 CONNECT per second per client id)",
        peer_text(.client_id)
    )]
    ConnectRateExceeded {
        /// The client id.
        client_id: String,
    },
    /// More than 100 unacknowledged QoS 1 publishes from the client.
    ///
    /// Not produced by this core today: it acknowledges each inbound QoS 1 PUBLISH as soon as
    /// it is routed, so a client never has more than one unacknowledged. Kept for a shell that
    /// defers acknowledgements.
    #[error("more than 100 unacknowledged QoS 1 publishes from the client (IoT Core quota)")]
    InflightExceeded,
    /// A retained PUBLISH (or retained last will) to a reserved `$` topic.
    #[error(
        "retained message to reserved topic {:?}: IoT Core refuses retained messages on $ topics",
        peer_text(.topic)
    )]
    RetainOnReservedTopic {
        /// The topic.
        topic: String,
    },
}

impl CloseReason {
    /// Whether the connection's last will is published: on every close except an MQTT
    /// DISCONNECT from the client (AWS-IOT.md §3.7).
    pub fn publishes_will(&self) -> bool {
        !matches!(self, CloseReason::ClientDisconnected)
    }

    /// The `disconnectReason` an IoT Core lifecycle event would carry for this close
    /// (AWS-IOT.md §3.9).
    pub fn lifecycle_reason(&self) -> &'static str {
        match self {
            CloseReason::ClientDisconnected => "CLIENT_INITIATED_DISCONNECT",
            CloseReason::TransportClosed | CloseReason::ConnectTimeout => "CONNECTION_LOST",
            CloseReason::KeepAliveTimeout { .. } => "MQTT_KEEP_ALIVE_TIMEOUT",
            CloseReason::Takeover => "DUPLICATE_CLIENTID",
            CloseReason::PolicyDenied { .. } => "AUTH_ERROR",
            CloseReason::ConnectRateExceeded { .. } | CloseReason::InflightExceeded => "THROTTLED",
            CloseReason::Malformed(_)
            | CloseReason::UnsupportedProtocolLevel(_)
            | CloseReason::ClientIdRejected(_)
            | CloseReason::PayloadTooLarge { .. }
            | CloseReason::TopicLimit { .. }
            | CloseReason::TooManyFiltersInSubscribe { .. }
            | CloseReason::TooManySubscriptions { .. }
            | CloseReason::ProtocolViolation(_)
            | CloseReason::RetainOnReservedTopic { .. } => "CLIENT_ERROR",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_disconnect_skips_the_will() {
        assert!(!CloseReason::ClientDisconnected.publishes_will());
        assert!(CloseReason::TransportClosed.publishes_will());
        assert!(CloseReason::Takeover.publishes_will());
        assert!(CloseReason::KeepAliveTimeout { keep_alive_secs: 30 }.publishes_will());
    }

    #[test]
    fn display_names_the_rule() {
        let text = CloseReason::TooManyFiltersInSubscribe { count: 9 }.to_string();
        assert!(text.contains('9') && text.contains("at most 8"), "{text}");
        assert_eq!(CloseReason::Takeover.lifecycle_reason(), "DUPLICATE_CLIENTID");
    }
}
