//! The acknowledgements that carry nothing but a packet id: PUBACK, PUBREC, PUBREL, PUBCOMP
//! (MQTT 3.1.1 §3.4–3.7) and UNSUBACK (§3.11). They share one layout and one decoder
//! (`Reader::packet_id`); each keeps its own type so that one cannot be mistaken for another.

use super::PacketId;

/// PUBACK: acknowledges a QoS 1 PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PubAck {
    /// The id of the PUBLISH acknowledged.
    pub packet_id: PacketId,
}

/// PUBREC: QoS 2, publish received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PubRec {
    /// The id of the PUBLISH.
    pub packet_id: PacketId,
}

/// PUBREL: QoS 2, publish release (fixed-header flags 0b0010).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PubRel {
    /// The id of the PUBLISH.
    pub packet_id: PacketId,
}

/// PUBCOMP: QoS 2, publish complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PubComp {
    /// The id of the PUBLISH.
    pub packet_id: PacketId,
}

/// UNSUBACK: acknowledges an UNSUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnsubAck {
    /// The id of the UNSUBSCRIBE acknowledged.
    pub packet_id: PacketId,
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_wire, decode_all};
    use super::super::{DecodeError, Packet, PacketType};
    use super::*;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    #[test]
    fn puback() {
        // PUBACK, remaining length 2, packet id 0x1234.
        assert_wire(&Packet::PubAck(PubAck { packet_id: id(0x1234) }), &[0x40, 0x02, 0x12, 0x34]);
    }

    #[test]
    fn pubrec() {
        // PUBREC, remaining length 2, packet id 1.
        assert_wire(&Packet::PubRec(PubRec { packet_id: id(1) }), &[0x50, 0x02, 0x00, 0x01]);
    }

    #[test]
    fn pubrel() {
        // PUBREL carries the reserved flags 0b0010, packet id 65535.
        assert_wire(&Packet::PubRel(PubRel { packet_id: id(0xFFFF) }), &[0x62, 0x02, 0xFF, 0xFF]);
    }

    #[test]
    fn pubcomp() {
        // PUBCOMP, remaining length 2, packet id 2.
        assert_wire(&Packet::PubComp(PubComp { packet_id: id(2) }), &[0x70, 0x02, 0x00, 0x02]);
    }

    #[test]
    fn unsuback() {
        // UNSUBACK, remaining length 2, packet id 3.
        assert_wire(&Packet::UnsubAck(UnsubAck { packet_id: id(3) }), &[0xB0, 0x02, 0x00, 0x03]);
    }

    #[test]
    fn zero_packet_id() {
        assert_eq!(
            decode_all(&[0x40, 0x02, 0x00, 0x00]),
            Err(DecodeError::ZeroPacketId { packet: PacketType::PubAck })
        );
        assert_eq!(
            decode_all(&[0xB0, 0x02, 0x00, 0x00]),
            Err(DecodeError::ZeroPacketId { packet: PacketType::UnsubAck })
        );
    }

    #[test]
    fn pubrel_without_its_flags() {
        assert_eq!(
            decode_all(&[0x60, 0x02, 0x00, 0x01]),
            Err(DecodeError::ReservedFlags { packet: PacketType::PubRel, flags: 0 })
        );
    }

    #[test]
    fn one_byte_ack_is_truncated() {
        assert_eq!(
            decode_all(&[0x70, 0x01, 0x00]),
            Err(DecodeError::Truncated { packet: PacketType::PubComp })
        );
    }

    #[test]
    fn ack_with_trailing_bytes() {
        assert_eq!(
            decode_all(&[0x50, 0x04, 0x00, 0x01, 0x00, 0x00]),
            Err(DecodeError::TrailingBytes { packet: PacketType::PubRec, extra: 2 })
        );
    }
}
