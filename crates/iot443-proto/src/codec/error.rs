//! What can go wrong turning bytes into packets and packets into bytes.

use super::connack::ConnectReturnCode;
use super::header::PacketType;
use crate::topic::TopicError;

/// Why received bytes are not a valid MQTT packet.
///
/// Every variant means the connection should be closed (MQTT 3.1.1 §4.8). Where the server must
/// answer a CONNECT before closing, [`DecodeError::connect_return_code`] says with what.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The remaining-length field still had its continuation bit set after four bytes.
    #[error("malformed remaining length: more than 4 bytes")]
    MalformedRemainingLength,
    /// The packet declares a size above the configured maximum.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Declared size of the whole packet.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Packet type 0 or 15, which MQTT reserves.
    #[error("reserved packet type {0}")]
    InvalidPacketType(u8),
    /// The low four bits of the first byte are not what the packet type requires.
    #[error("{packet} with reserved flag bits {flags:#06b}")]
    ReservedFlags {
        /// The packet.
        packet: PacketType,
        /// The flags that were received.
        flags: u8,
    },
    /// A QoS of 3 (in PUBLISH, SUBSCRIBE or a will).
    #[error("invalid QoS {0}: MQTT defines 0, 1 and 2")]
    InvalidQos(u8),
    /// A QoS 0 PUBLISH with the DUP flag set (MQTT 3.1.1 §3.3.1.1).
    #[error("PUBLISH at QoS 0 with the DUP flag set")]
    DupOnQos0,
    /// A packet id of zero.
    #[error("{packet} with packet id 0")]
    ZeroPacketId {
        /// The packet.
        packet: PacketType,
    },
    /// A SUBSCRIBE without any topic filter.
    #[error("SUBSCRIBE without any topic filter")]
    EmptySubscribe,
    /// An UNSUBSCRIBE without any topic filter.
    #[error("UNSUBSCRIBE without any topic filter")]
    EmptyUnsubscribe,
    /// Bytes left over inside a packet after its last field.
    #[error("{extra} unexpected bytes at the end of {packet}")]
    TrailingBytes {
        /// The packet.
        packet: PacketType,
        /// How many bytes were left.
        extra: usize,
    },
    /// A field runs past the end of the packet.
    #[error("{packet} is shorter than its fields declare")]
    Truncated {
        /// The packet.
        packet: PacketType,
    },
    /// A string that is not valid UTF-8.
    #[error("{packet} carries a string that is not valid UTF-8")]
    InvalidUtf8 {
        /// The packet.
        packet: PacketType,
    },
    /// A string containing U+0000.
    #[error("{packet} carries a string containing the NUL character")]
    NulCharacter {
        /// The packet.
        packet: PacketType,
    },
    /// CONNECT whose protocol name is not `MQTT`.
    #[error("CONNECT with a protocol name other than \"MQTT\"")]
    InvalidProtocolName,
    /// CONNECT with a protocol level this codec does not speak.
    #[error("unsupported protocol level {0} (MQTT 3.1.1 is level 4)")]
    UnsupportedProtocolLevel(u8),
    /// CONNECT flags that contradict each other or set the reserved bit.
    #[error("invalid CONNECT flags {0:#010b}")]
    InvalidConnectFlags(u8),
    /// CONNACK acknowledge flags with reserved bits set.
    #[error("invalid CONNACK flags {0:#010b}")]
    InvalidConnAckFlags(u8),
    /// A SUBSCRIBE requested-QoS byte with reserved bits set.
    #[error("SUBSCRIBE options byte {0:#010b} has reserved bits set")]
    InvalidSubscriptionOptions(u8),
    /// A topic name or filter that breaks the MQTT topic rules.
    #[error("{packet} carries an invalid topic: {source}")]
    InvalidTopic {
        /// The packet.
        packet: PacketType,
        /// What is wrong with the topic.
        source: TopicError,
    },
}

impl DecodeError {
    /// The CONNACK return code a server sends before closing, for errors that have one.
    ///
    /// MQTT 3.1.1 only answers an unsupported protocol level (§3.1.2.2); every other malformed
    /// packet closes the connection without an answer.
    pub fn connect_return_code(&self) -> Option<ConnectReturnCode> {
        match self {
            DecodeError::UnsupportedProtocolLevel(_) => {
                Some(ConnectReturnCode::UNACCEPTABLE_PROTOCOL_VERSION)
            }
            _ => None,
        }
    }
}

/// Why a packet cannot be encoded. Nothing is written when encoding fails.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The packet would be larger than the codec's maximum packet size.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Size the whole packet would have.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// A string or binary field is longer than its two-byte length prefix allows.
    #[error("{field} is {len} bytes long; MQTT allows at most 65535")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A SUBSCRIBE or UNSUBSCRIBE without any topic filter.
    #[error("{0} needs at least one topic filter")]
    NoTopicFilters(PacketType),
    /// A CONNECT with a password and no user name, which MQTT 3.1.1 forbids.
    #[error("CONNECT with a password needs a user name too")]
    PasswordWithoutUsername,
    /// The output buffer cannot grow to hold the packet.
    #[error("output buffer has room for {available} bytes, the packet needs {needed}")]
    BufferFull {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes the buffer can still take.
        available: usize,
    },
}
