//! What a [`Session`](super::Session) reports to its driver through
//! [`poll_event`](super::Session::poll_event).

use crate::codec::{
    ConnectReason, DecodeError, EncodeError, Packet, PacketId, PacketType, Publish, SubscribeReason,
};
use crate::topic::TopicFilter;
use alloc::vec::Vec;
use core::fmt;

/// Identifies one [`Session::publish`](super::Session::publish) call from the moment it is
/// accepted, before it has a packet id (which it gets only when it enters the in-flight window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub(super) u64);

impl MessageId {
    /// The sequence number: message ids count up from 0 in the order of `publish` calls.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message #{}", self.0)
    }
}

/// Something the driver or the application must know about.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// CONNACK accepted the connection.
    Connected {
        /// The server resumed a stored session.
        session_present: bool,
    },
    /// CONNACK refused the connection. The session is disconnected; close the transport.
    ConnectionRefused {
        /// Why, in any MQTT version (a 3.1.1 return code as it came, with its MQTT 5 meaning).
        code: ConnectReason,
    },
    /// An application message arrived. QoS 1 messages have been acknowledged already, unless
    /// [`SessionConfig::manual_acks`](super::SessionConfig::manual_acks) is set: then call
    /// [`Session::acknowledge`](super::Session::acknowledge) once it is handed on.
    Message(Publish),
    /// A QoS 0 publish has been handed to the transport.
    PublishSent {
        /// Which publish.
        id: MessageId,
    },
    /// A QoS 0 publish could not be encoded and was dropped (reported right after the
    /// [`ProtocolError::Unencodable`] that says why); it was not sent.
    PublishDropped {
        /// Which publish.
        id: MessageId,
    },
    /// A QoS 1 publish was acknowledged with PUBACK.
    PublishAcked {
        /// Which publish.
        id: MessageId,
        /// The packet id it travelled with last.
        packet_id: PacketId,
    },
    /// A SUBSCRIBE was answered.
    SubscribeAcked {
        /// The SUBSCRIBE's packet id.
        packet_id: PacketId,
        /// One reason per filter, in order: the granted QoS, or why it was refused.
        return_codes: Vec<SubscribeReason>,
    },
    /// An UNSUBSCRIBE was answered.
    UnsubscribeAcked {
        /// The UNSUBSCRIBE's packet id.
        packet_id: PacketId,
    },
    /// After a reconnect, the server refused to restore a subscription it had granted before
    /// (for example after a policy change). Messages for it will no longer arrive.
    RestoreRefused {
        /// The filter.
        filter: TopicFilter,
    },
    /// An application's SUBSCRIBE or UNSUBSCRIBE got no answer within
    /// [`SessionConfig::ack_timeout`](super::SessionConfig::ack_timeout). It is given up: not
    /// sent again, its packet id free (a late answer is reported as [`Event::UnexpectedAck`]).
    RequestTimedOut {
        /// The request's packet id.
        packet_id: PacketId,
        /// The request: SUBSCRIBE or UNSUBSCRIBE.
        packet: Packet,
    },
    /// An acknowledgement for a packet id with nothing outstanding (a late duplicate, or a
    /// server bug). Reported, otherwise ignored.
    UnexpectedAck {
        /// PUBACK, SUBACK or UNSUBACK.
        packet: PacketType,
        /// The id it carried.
        packet_id: PacketId,
    },
    /// The link stopped answering. The session is disconnected; close the transport.
    LinkDead {
        /// Which timer fired.
        reason: LinkDeadReason,
    },
    /// The server broke the protocol. The session is disconnected; close the transport.
    ProtocolError(ProtocolError),
}

/// Why a link was declared dead.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkDeadReason {
    /// No CONNACK within the connect timeout. On port 443 this is the classic symptom of a
    /// missing ALPN `x-amzn-mqtt-ca`.
    ConnAckTimeout,
    /// No PINGRESP (nor any other packet) within the ping timeout after a PINGREQ.
    PingTimeout,
    /// A QoS 1 PUBLISH got no PUBACK within the acknowledgement timeout (AWS IoT Core sends
    /// none for a publish it throttles). It is sent again over the next connection.
    PubAckTimeout,
    /// A SUBSCRIBE restoring subscriptions after a reconnect got no SUBACK within the
    /// acknowledgement timeout. It is sent again over the next connection.
    SubAckTimeout,
}

impl fmt::Display for LinkDeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkDeadReason::ConnAckTimeout => "no CONNACK within the connect timeout",
            LinkDeadReason::PingTimeout => "no PINGRESP within the ping timeout",
            LinkDeadReason::PubAckTimeout => {
                "no PUBACK within the acknowledgement timeout (AWS IoT Core sends none for a \
                 throttled publish)"
            }
            LinkDeadReason::SubAckTimeout => {
                "no SUBACK within the acknowledgement timeout for a SUBSCRIBE restoring \
                 subscriptions"
            }
        })
    }
}

/// How the server broke the protocol.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The bytes received are not valid MQTT.
    #[error("malformed packet from the server: {0}")]
    Malformed(#[from] DecodeError),
    /// A valid packet that a server must not send, or not at this point.
    #[error("unexpected {packet} from the server {when}")]
    UnexpectedPacket {
        /// The packet.
        packet: PacketType,
        /// "before CONNACK", "after CONNACK".
        when: &'static str,
    },
    /// A QoS 2 PUBLISH, which this client never subscribes to.
    #[error("QoS 2 PUBLISH from the server, though no subscription asked for QoS 2")]
    UnrequestedQos2,
    /// A packet the session queued could not be encoded and was dropped. Commands validate
    /// their packets, so this signals a bug in the session, reported rather than panicking.
    #[error("{packet} could not be encoded and was dropped: {error}")]
    Unencodable {
        /// The packet.
        packet: PacketType,
        /// Why.
        error: EncodeError,
    },
    /// A SUBACK whose number of return codes differs from the SUBSCRIBE's filters.
    #[error("SUBACK {packet_id} has {got} return codes for {expected} filters")]
    SubAckLength {
        /// The SUBSCRIBE's packet id.
        packet_id: PacketId,
        /// Filters in the SUBSCRIBE.
        expected: usize,
        /// Codes in the SUBACK.
        got: usize,
    },
}
