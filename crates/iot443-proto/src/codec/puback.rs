//! The acknowledgements that carry nothing but a packet id: PUBACK, PUBREC, PUBREL, PUBCOMP
//! (MQTT 3.1.1 §3.4–3.7) and UNSUBACK (§3.11). They share one layout and one decoder
//! (`Reader::packet_id`); each keeps its own type so that one cannot be mistaken for another.
//! (MQTT 5 gives the four PUB* acknowledgements a reason code and properties, and UNSUBACK a
//! reason code per filter: each type can grow its own fields.)

use super::error::DecodeError;
use super::wire::Reader;
use super::{PacketId, ProtocolVersion};
use bytes::BufMut;

/// Defines one acknowledgement type: the struct, its constructor and its wire format.
macro_rules! ack {
    ($(#[$doc:meta])* $name:ident, $id_doc:literal) => {
        $(#[$doc])*
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name {
            #[doc = $id_doc]
            pub packet_id: PacketId,
        }

        impl $name {
            #[doc = concat!("The ", stringify!($name), " carrying `packet_id`.")]
            pub const fn new(packet_id: PacketId) -> Self {
                $name { packet_id }
            }

            pub(super) fn decode(
                version: ProtocolVersion,
                reader: &mut Reader,
            ) -> Result<Self, DecodeError> {
                // MQTT 5: a reason code and properties may follow the packet id.
                let ProtocolVersion::V311 = version;
                Ok($name { packet_id: reader.packet_id()? })
            }

            pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
                let ProtocolVersion::V311 = version;
                2
            }

            pub(super) fn encode_body<B: BufMut>(&self, version: ProtocolVersion, out: &mut B) {
                let ProtocolVersion::V311 = version;
                out.put_u16(self.packet_id.get());
            }
        }
    };
}

ack!(
    /// PUBACK: acknowledges a QoS 1 PUBLISH. Build it with [`PubAck::new`].
    PubAck,
    "The id of the PUBLISH acknowledged."
);

ack!(
    /// PUBREC: QoS 2, publish received. Build it with [`PubRec::new`].
    PubRec,
    "The id of the PUBLISH."
);

ack!(
    /// PUBREL: QoS 2, publish release (fixed-header flags 0b0010). Build it with
    /// [`PubRel::new`].
    PubRel,
    "The id of the PUBLISH."
);

ack!(
    /// PUBCOMP: QoS 2, publish complete. Build it with [`PubComp::new`].
    PubComp,
    "The id of the PUBLISH."
);

ack!(
    /// UNSUBACK: acknowledges an UNSUBSCRIBE. Build it with [`UnsubAck::new`].
    UnsubAck,
    "The id of the UNSUBSCRIBE acknowledged."
);

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
        assert_wire(&Packet::PubAck(PubAck::new(id(0x1234))), &[0x40, 0x02, 0x12, 0x34]);
    }

    #[test]
    fn pubrec() {
        // PUBREC, remaining length 2, packet id 1.
        assert_wire(&Packet::PubRec(PubRec::new(id(1))), &[0x50, 0x02, 0x00, 0x01]);
    }

    #[test]
    fn pubrel() {
        // PUBREL carries the reserved flags 0b0010, packet id 65535.
        assert_wire(&Packet::PubRel(PubRel::new(id(0xFFFF))), &[0x62, 0x02, 0xFF, 0xFF]);
    }

    #[test]
    fn pubcomp() {
        // PUBCOMP, remaining length 2, packet id 2.
        assert_wire(&Packet::PubComp(PubComp::new(id(2))), &[0x70, 0x02, 0x00, 0x02]);
    }

    #[test]
    fn unsuback() {
        // UNSUBACK, remaining length 2, packet id 3.
        assert_wire(&Packet::UnsubAck(UnsubAck::new(id(3))), &[0xB0, 0x02, 0x00, 0x03]);
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
