//! CONNACK: the server's answer to CONNECT (MQTT 3.1.1 §3.2).

use super::ProtocolVersion;
use super::error::DecodeError;
use super::wire::Reader;
use bytes::BufMut;
use core::fmt;

/// A CONNACK packet. Build it with [`ConnAck::new`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck {
    /// The server resumed a stored session (only ever set for `clean_session = false`).
    pub session_present: bool,
    /// Whether the connection was accepted, and if not, why.
    pub code: ConnectReturnCode,
}

/// The MQTT 3.1.1 CONNACK return code. A newtype rather than an enum so that codes this version
/// does not know survive decoding and can be reported as they came.
///
/// This is the wire value of one version; what a session reports is the version-neutral
/// [`ConnectReason`](super::ConnectReason), which a `ConnectReturnCode` converts into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectReturnCode(u8);

impl ConnectReturnCode {
    /// 0: connection accepted.
    pub const ACCEPTED: Self = Self(0x00);
    /// 1: the server does not support the requested protocol level.
    pub const UNACCEPTABLE_PROTOCOL_VERSION: Self = Self(0x01);
    /// 2: the client id is not allowed.
    pub const IDENTIFIER_REJECTED: Self = Self(0x02);
    /// 3: the MQTT service is unavailable.
    pub const SERVER_UNAVAILABLE: Self = Self(0x03);
    /// 4: malformed user name or password.
    pub const BAD_USERNAME_OR_PASSWORD: Self = Self(0x04);
    /// 5: the client is not authorized to connect.
    pub const NOT_AUTHORIZED: Self = Self(0x05);

    /// The code for a wire value.
    pub const fn new(code: u8) -> Self {
        Self(code)
    }

    /// The wire value.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Whether the connection was accepted.
    pub const fn is_accepted(self) -> bool {
        self.0 == 0
    }

    /// A short description, or `None` for a code MQTT 3.1.1 does not define.
    pub const fn description(self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "connection accepted",
            0x01 => "unacceptable protocol version",
            0x02 => "client identifier rejected",
            0x03 => "server unavailable",
            0x04 => "bad user name or password",
            0x05 => "not authorized",
            _ => return None,
        })
    }
}

impl fmt::Display for ConnectReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::reason::fmt_v311(f, self.description(), self.0)
    }
}

pub(super) fn decode(
    version: ProtocolVersion,
    reader: &mut Reader,
) -> Result<ConnAck, DecodeError> {
    // MQTT 5: the code is a reason code and properties follow it.
    let ProtocolVersion::V311 = version;
    let flags = reader.u8()?;
    if flags & !0x01 != 0 {
        return Err(DecodeError::InvalidConnAckFlags(flags));
    }
    let code = ConnectReturnCode(reader.u8()?);
    Ok(ConnAck { session_present: flags & 0x01 != 0, code })
}

impl ConnAck {
    /// A CONNACK answering with `code`; `session_present` says the server resumed a stored
    /// session (MQTT requires `false` with a refusal).
    pub const fn new(session_present: bool, code: ConnectReturnCode) -> Self {
        ConnAck { session_present, code }
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        let ProtocolVersion::V311 = version;
        2
    }

    pub(super) fn encode_body<B: BufMut>(&self, version: ProtocolVersion, out: &mut B) {
        let ProtocolVersion::V311 = version;
        out.put_u8(u8::from(self.session_present));
        out.put_u8(self.code.0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_wire, decode_all};
    use super::super::{Packet, PacketType};
    use super::*;

    #[test]
    fn accepted_with_session_present() {
        assert_wire(
            &Packet::ConnAck(ConnAck::new(true, ConnectReturnCode::ACCEPTED)),
            &[
                0x20, // CONNACK
                0x02, // remaining length 2
                0x01, // session present
                0x00, // accepted
            ],
        );
    }

    #[test]
    fn refused_not_authorized() {
        assert_wire(
            &Packet::ConnAck(ConnAck::new(false, ConnectReturnCode::NOT_AUTHORIZED)),
            &[
                0x20, // CONNACK
                0x02, // remaining length 2
                0x00, // no session present
                0x05, // not authorized
            ],
        );
    }

    #[test]
    fn unknown_codes_survive() {
        let bytes = [
            0x20, // CONNACK
            0x02, // remaining length 2
            0x00, // no session present
            0x07, // return code 7: not defined by MQTT 3.1.1
        ];
        let packet = decode_all(&bytes).unwrap().unwrap();
        let Packet::ConnAck(connack) = &packet else { panic!("{packet:?}") };
        assert_eq!(connack.code.get(), 7);
        assert_eq!(connack.code.description(), None);
        assert!(!connack.code.is_accepted());
        assert_wire(&packet, &bytes);
    }

    #[test]
    fn reserved_acknowledge_flags() {
        assert_eq!(decode_all(&[0x20, 0x02, 0x02, 0x00]), Err(DecodeError::InvalidConnAckFlags(2)));
    }

    #[test]
    fn short_connack() {
        assert_eq!(
            decode_all(&[0x20, 0x01, 0x00]),
            Err(DecodeError::Truncated { packet: PacketType::ConnAck })
        );
    }

    #[test]
    fn trailing_byte() {
        assert_eq!(
            decode_all(&[0x20, 0x03, 0x00, 0x00, 0x00]),
            Err(DecodeError::TrailingBytes { packet: PacketType::ConnAck, extra: 1 })
        );
    }
}
