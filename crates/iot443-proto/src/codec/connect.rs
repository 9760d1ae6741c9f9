//! CONNECT: the first packet a client sends (MQTT 3.1.1 §3.1).

use super::error::{DecodeError, EncodeError};
use super::wire::{Reader, prefixed_len, put_prefixed};
use super::{PacketType, ProtocolVersion, QoS};
use crate::topic::TopicName;
use alloc::string::String;
use bytes::{BufMut, Bytes};

const FLAG_RESERVED: u8 = 0b0000_0001;
const FLAG_CLEAN_SESSION: u8 = 0b0000_0010;
const FLAG_WILL: u8 = 0b0000_0100;
const FLAG_WILL_QOS_SHIFT: u8 = 3;
const FLAG_WILL_QOS_MASK: u8 = 0b0001_1000;
const FLAG_WILL_RETAIN: u8 = 0b0010_0000;
const FLAG_PASSWORD: u8 = 0b0100_0000;
const FLAG_USERNAME: u8 = 0b1000_0000;

/// A CONNECT packet. Build it with [`Connect::new`] and the `with_*` methods.
///
/// CONNECT is the one packet that names its own protocol version: [`Connect::protocol`], not
/// the codec's version, decides its layout when it is encoded, and it is decoded by the level it
/// carries, so that a server learns the client's version from it.
///
/// ```
/// use iot443_proto::codec::{Connect, LastWill};
/// use iot443_proto::topic::TopicName;
/// use iot443_proto::QoS;
///
/// let will = LastWill::new(TopicName::new("devices/tls-test/status").unwrap(), "gone", QoS::AtLeastOnce);
/// let connect = Connect::new("tls-test")
///     .with_keep_alive(300)
///     .with_clean_session(false)
///     .with_will(will);
/// assert_eq!(connect.keep_alive, 300);
/// assert!(connect.will.is_some());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol version requested.
    pub protocol: ProtocolVersion,
    /// The client identifier. IoT Core allows up to 128 bytes; empty only with a clean session.
    pub client_id: String,
    /// Keep-alive in seconds; 0 turns it off (IoT Core then uses 1,200 s).
    pub keep_alive: u16,
    /// Start a new session (true) or resume a stored one (false).
    pub clean_session: bool,
    /// The message the server publishes if the connection ends without DISCONNECT.
    pub will: Option<LastWill>,
    /// User name (IoT Core's custom authentication; unused with client certificates).
    pub username: Option<String>,
    /// Password, as binary data.
    pub password: Option<Bytes>,
}

/// The last will: published by the server when the client disappears without DISCONNECT.
/// Build it with [`LastWill::new`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Topic to publish to.
    pub topic: TopicName,
    /// Payload to publish.
    pub payload: Bytes,
    /// QoS of the will message.
    pub qos: QoS,
    /// Whether the will message is retained.
    pub retain: bool,
}

impl LastWill {
    /// A will publishing `payload` to `topic` at `qos`, not retained.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>, qos: QoS) -> Self {
        LastWill { topic, payload: payload.into(), qos, retain: false }
    }

    /// The same will, retained (or not).
    #[must_use]
    pub fn with_retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }
}

/// Decodes a CONNECT by the protocol level it carries, whatever the codec's version.
pub(super) fn decode(reader: &mut Reader) -> Result<Connect, DecodeError> {
    let name = reader.string()?;
    let level = reader.u8()?;
    if name != ProtocolVersion::V311.protocol_name() {
        return Err(DecodeError::InvalidProtocolName);
    }
    let protocol = match level {
        4 => ProtocolVersion::V311,
        other => return Err(DecodeError::UnsupportedProtocolLevel(other)),
    };
    // MQTT 5: properties follow the keep-alive, and the will carries its own.
    let ProtocolVersion::V311 = protocol;
    let flags = reader.u8()?;
    let has_will = flags & FLAG_WILL != 0;
    let will_qos = QoS::from_u8((flags & FLAG_WILL_QOS_MASK) >> FLAG_WILL_QOS_SHIFT)?;
    let will_retain = flags & FLAG_WILL_RETAIN != 0;
    let has_username = flags & FLAG_USERNAME != 0;
    let has_password = flags & FLAG_PASSWORD != 0;
    if flags & FLAG_RESERVED != 0
        || (!has_will && (will_qos != QoS::AtMostOnce || will_retain))
        || (has_password && !has_username)
    {
        return Err(DecodeError::InvalidConnectFlags(flags));
    }
    let keep_alive = reader.u16()?;
    let client_id = reader.string()?;
    let will = if has_will {
        let topic = TopicName::new(reader.shared_string()?)
            .map_err(|source| DecodeError::InvalidTopic { packet: PacketType::Connect, source })?;
        let payload = reader.binary()?;
        Some(LastWill { topic, payload, qos: will_qos, retain: will_retain })
    } else {
        None
    };
    let username = if has_username { Some(reader.string()?) } else { None };
    let password = if has_password { Some(reader.binary()?) } else { None };
    Ok(Connect {
        protocol,
        client_id,
        keep_alive,
        clean_session: flags & FLAG_CLEAN_SESSION != 0,
        will,
        username,
        password,
    })
}

impl Connect {
    /// The keep-alive [`Connect::new`] sets: 60 seconds.
    pub const DEFAULT_KEEP_ALIVE: u16 = 60;

    /// A CONNECT for MQTT 3.1.1 with the given client id, a keep-alive of
    /// [`DEFAULT_KEEP_ALIVE`](Connect::DEFAULT_KEEP_ALIVE), a clean session, no will and no
    /// credentials.
    pub fn new(client_id: impl Into<String>) -> Self {
        Connect {
            protocol: ProtocolVersion::V311,
            client_id: client_id.into(),
            keep_alive: Self::DEFAULT_KEEP_ALIVE,
            clean_session: true,
            will: None,
            username: None,
            password: None,
        }
    }

    /// The same CONNECT for another protocol version.
    #[must_use]
    pub fn with_protocol(mut self, protocol: ProtocolVersion) -> Self {
        self.protocol = protocol;
        self
    }

    /// The same CONNECT with a keep-alive of `seconds`; 0 turns it off.
    #[must_use]
    pub fn with_keep_alive(mut self, seconds: u16) -> Self {
        self.keep_alive = seconds;
        self
    }

    /// The same CONNECT starting a new session (true) or resuming a stored one (false).
    #[must_use]
    pub fn with_clean_session(mut self, clean_session: bool) -> Self {
        self.clean_session = clean_session;
        self
    }

    /// The same CONNECT with a last will.
    #[must_use]
    pub fn with_will(mut self, will: LastWill) -> Self {
        self.will = Some(will);
        self
    }

    /// The same CONNECT with a user name.
    #[must_use]
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The same CONNECT with a password. MQTT 3.1.1 allows a password only with a user name:
    /// encoding refuses one without ([`EncodeError::PasswordWithoutUsername`]).
    #[must_use]
    pub fn with_password(mut self, password: impl Into<Bytes>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Body length in the layout of [`Connect::protocol`].
    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        let ProtocolVersion::V311 = self.protocol;
        if self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::PasswordWithoutUsername);
        }
        let mut len = 2 + self.protocol.protocol_name().len() + 1 + 1 + 2;
        len += prefixed_len("client id", self.client_id.len())?;
        if let Some(will) = &self.will {
            len += prefixed_len("will topic", will.topic.as_str().len())?;
            len += prefixed_len("will payload", will.payload.len())?;
        }
        if let Some(username) = &self.username {
            len += prefixed_len("user name", username.len())?;
        }
        if let Some(password) = &self.password {
            len += prefixed_len("password", password.len())?;
        }
        Ok(len)
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_session {
            flags |= FLAG_CLEAN_SESSION;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | ((will.qos as u8) << FLAG_WILL_QOS_SHIFT);
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= FLAG_USERNAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        flags
    }

    /// Writes the body in the layout of [`Connect::protocol`].
    pub(super) fn encode_body<B: BufMut>(&self, out: &mut B) {
        let ProtocolVersion::V311 = self.protocol;
        put_prefixed(out, self.protocol.protocol_name().as_bytes());
        out.put_u8(self.protocol.level());
        out.put_u8(self.flags());
        out.put_u16(self.keep_alive);
        put_prefixed(out, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            put_prefixed(out, will.topic.as_str().as_bytes());
            put_prefixed(out, &will.payload);
        }
        if let Some(username) = &self.username {
            put_prefixed(out, username.as_bytes());
        }
        if let Some(password) = &self.password {
            put_prefixed(out, password);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Packet;
    use super::super::test_util::{assert_wire, decode_all};
    use super::*;

    #[test]
    fn minimal_connect() {
        assert_wire(
            &Packet::Connect(Connect::new("tls-test")),
            &[
                0x10, // CONNECT, flags 0
                0x14, // remaining length 20
                0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
                0x04, // level 4 = MQTT 3.1.1
                0x02, // flags: clean session
                0x00, 0x3C, // keep-alive 60 s
                0x00, 0x08, b't', b'l', b's', b'-', b't', b'e', b's', b't', // client id
            ],
        );
    }

    #[test]
    fn connect_with_will_username_and_password() {
        let will = LastWill::new(TopicName::new("w").unwrap(), "bye", QoS::AtLeastOnce);
        let connect = Connect::new("c")
            .with_keep_alive(0)
            .with_clean_session(false)
            .with_will(will.with_retain(true))
            .with_username("u")
            .with_password("pw");
        assert_wire(
            &Packet::Connect(connect),
            &[
                0x10,
                0x1C, // CONNECT, remaining length 28
                0x00,
                0x04,
                b'M',
                b'Q',
                b'T',
                b'T',
                0x04,        // "MQTT", level 4
                0b1110_1100, // user name, password, will retain, will QoS 1, will; no clean session
                0x00,
                0x00, // keep-alive off
                0x00,
                0x01,
                b'c', // client id
                0x00,
                0x01,
                b'w', // will topic
                0x00,
                0x03,
                b'b',
                b'y',
                b'e', // will payload
                0x00,
                0x01,
                b'u', // user name
                0x00,
                0x02,
                b'p',
                b'w', // password
            ],
        );
    }

    fn connect_bytes(name: &[u8], level: u8, flags: u8) -> alloc::vec::Vec<u8> {
        let mut bytes = alloc::vec![0x10, 0];
        bytes.extend_from_slice(&[0x00, u8::try_from(name.len()).unwrap()]);
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(&[level, flags, 0x00, 0x3C, 0x00, 0x01, b'c']);
        bytes[1] = u8::try_from(bytes.len() - 2).unwrap();
        bytes
    }

    #[test]
    fn wrong_protocol_name() {
        assert_eq!(
            decode_all(&connect_bytes(b"MQIsdp", 4, 0x02)),
            Err(DecodeError::InvalidProtocolName)
        );
    }

    #[test]
    fn wrong_protocol_level_maps_to_connack_code_1() {
        let error = decode_all(&connect_bytes(b"MQTT", 5, 0x02)).unwrap_err();
        assert_eq!(error, DecodeError::UnsupportedProtocolLevel(5));
        assert_eq!(error.connect_return_code().map(|code| code.get()), Some(0x01));
    }

    #[test]
    fn reserved_connect_flag() {
        assert_eq!(
            decode_all(&connect_bytes(b"MQTT", 4, 0x03)),
            Err(DecodeError::InvalidConnectFlags(0x03))
        );
    }

    #[test]
    fn will_qos_without_will_flag() {
        assert_eq!(
            decode_all(&connect_bytes(b"MQTT", 4, 0x0A)),
            Err(DecodeError::InvalidConnectFlags(0x0A))
        );
    }

    #[test]
    fn will_qos_three() {
        assert_eq!(decode_all(&connect_bytes(b"MQTT", 4, 0x1E)), Err(DecodeError::InvalidQos(3)));
    }

    #[test]
    fn password_without_username() {
        assert_eq!(
            decode_all(&connect_bytes(b"MQTT", 4, 0x42)),
            Err(DecodeError::InvalidConnectFlags(0x42))
        );
        let connect = Connect::new("c").with_password(Bytes::new());
        assert_eq!(
            super::super::Codec::default()
                .encode(&Packet::Connect(connect), &mut alloc::vec::Vec::new()),
            Err(EncodeError::PasswordWithoutUsername)
        );
    }

    #[test]
    fn invalid_utf8_client_id() {
        let mut bytes = connect_bytes(b"MQTT", 4, 0x02);
        let last = bytes.len() - 1;
        bytes[last] = 0xFF;
        assert_eq!(
            decode_all(&bytes),
            Err(DecodeError::InvalidUtf8 { packet: PacketType::Connect })
        );
    }

    #[test]
    fn nul_in_client_id() {
        let mut bytes = connect_bytes(b"MQTT", 4, 0x02);
        let last = bytes.len() - 1;
        bytes[last] = 0x00;
        assert_eq!(
            decode_all(&bytes),
            Err(DecodeError::NulCharacter { packet: PacketType::Connect })
        );
    }

    #[test]
    fn client_id_longer_than_the_packet() {
        let mut bytes = connect_bytes(b"MQTT", 4, 0x02);
        let len_at = bytes.len() - 2;
        bytes[len_at] = 0x09; // claims 9 bytes, 1 present
        assert_eq!(decode_all(&bytes), Err(DecodeError::Truncated { packet: PacketType::Connect }));
    }

    #[test]
    fn trailing_byte_after_client_id() {
        let mut bytes = connect_bytes(b"MQTT", 4, 0x02);
        bytes.push(0xAA);
        bytes[1] += 1;
        assert_eq!(
            decode_all(&bytes),
            Err(DecodeError::TrailingBytes { packet: PacketType::Connect, extra: 1 })
        );
    }

    #[test]
    fn will_topic_with_wildcard() {
        let will = LastWill::new(TopicName::new("w").unwrap(), Bytes::new(), QoS::AtMostOnce);
        let connect = Connect::new("c").with_will(will);
        let mut bytes = alloc::vec::Vec::new();
        super::super::Codec::default().encode(&Packet::Connect(connect), &mut bytes).unwrap();
        let at = bytes.iter().rposition(|&b| b == b'w').unwrap();
        bytes[at] = b'#';
        assert!(matches!(
            decode_all(&bytes),
            Err(DecodeError::InvalidTopic { packet: PacketType::Connect, .. })
        ));
    }

    #[test]
    fn client_id_over_65535_bytes_cannot_be_encoded() {
        let connect = Connect::new("x".repeat(70_000));
        assert_eq!(
            super::super::Codec::default().encoded_len(&Packet::Connect(connect)),
            Err(EncodeError::FieldTooLong { field: "client id", len: 70_000 })
        );
    }
}
