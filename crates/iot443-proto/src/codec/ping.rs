//! The packets without a body: PINGREQ and PINGRESP (MQTT 3.1.1 §3.12–3.13) and DISCONNECT
//! (§3.14). They are unit variants of [`Packet`](super::Packet); only the fixed header is on
//! the wire, so this file holds their wire tests.

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_wire, decode_all};
    use super::super::{DecodeError, Packet, PacketType};

    #[test]
    fn pingreq() {
        assert_wire(&Packet::PingReq, &[0xC0, 0x00]); // PINGREQ, remaining length 0
    }

    #[test]
    fn pingresp() {
        assert_wire(&Packet::PingResp, &[0xD0, 0x00]); // PINGRESP, remaining length 0
    }

    #[test]
    fn disconnect() {
        assert_wire(&Packet::Disconnect, &[0xE0, 0x00]); // DISCONNECT, remaining length 0
    }

    #[test]
    fn body_where_none_is_allowed() {
        assert_eq!(
            decode_all(&[0xC0, 0x01, 0x00]),
            Err(DecodeError::TrailingBytes { packet: PacketType::PingReq, extra: 1 })
        );
        assert_eq!(
            decode_all(&[0xE0, 0x02, 0x00, 0x00]),
            Err(DecodeError::TrailingBytes { packet: PacketType::Disconnect, extra: 2 })
        );
    }

    #[test]
    fn disconnect_with_flags() {
        assert_eq!(
            decode_all(&[0xE1, 0x00]),
            Err(DecodeError::ReservedFlags { packet: PacketType::Disconnect, flags: 1 })
        );
    }
}
