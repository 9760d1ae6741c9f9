//! The fixed header: packet type, flags and the variable-length "remaining length".

use super::error::{DecodeError, EncodeError};
use bytes::BufMut;
use core::fmt;

/// The largest remaining length MQTT can express in four bytes: 268,435,455.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// The kind of an MQTT control packet: the high four bits of its first byte.
///
/// Non-exhaustive: MQTT 5 adds AUTH (15).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// CONNECT (1).
    Connect = 1,
    /// CONNACK (2).
    ConnAck = 2,
    /// PUBLISH (3).
    Publish = 3,
    /// PUBACK (4).
    PubAck = 4,
    /// PUBREC (5).
    PubRec = 5,
    /// PUBREL (6).
    PubRel = 6,
    /// PUBCOMP (7).
    PubComp = 7,
    /// SUBSCRIBE (8).
    Subscribe = 8,
    /// SUBACK (9).
    SubAck = 9,
    /// UNSUBSCRIBE (10).
    Unsubscribe = 10,
    /// UNSUBACK (11).
    UnsubAck = 11,
    /// PINGREQ (12).
    PingReq = 12,
    /// PINGRESP (13).
    PingResp = 13,
    /// DISCONNECT (14).
    Disconnect = 14,
}

impl PacketType {
    /// The packet type for the high nibble of a first byte; `None` for the reserved 0 and 15.
    pub const fn from_nibble(nibble: u8) -> Option<PacketType> {
        Some(match nibble {
            1 => PacketType::Connect,
            2 => PacketType::ConnAck,
            3 => PacketType::Publish,
            4 => PacketType::PubAck,
            5 => PacketType::PubRec,
            6 => PacketType::PubRel,
            7 => PacketType::PubComp,
            8 => PacketType::Subscribe,
            9 => PacketType::SubAck,
            10 => PacketType::Unsubscribe,
            11 => PacketType::UnsubAck,
            12 => PacketType::PingReq,
            13 => PacketType::PingResp,
            14 => PacketType::Disconnect,
            _ => return None,
        })
    }

    /// The upper-case name used by the MQTT specification, e.g. `"PUBACK"`.
    pub const fn name(self) -> &'static str {
        match self {
            PacketType::Connect => "CONNECT",
            PacketType::ConnAck => "CONNACK",
            PacketType::Publish => "PUBLISH",
            PacketType::PubAck => "PUBACK",
            PacketType::PubRec => "PUBREC",
            PacketType::PubRel => "PUBREL",
            PacketType::PubComp => "PUBCOMP",
            PacketType::Subscribe => "SUBSCRIBE",
            PacketType::SubAck => "SUBACK",
            PacketType::Unsubscribe => "UNSUBSCRIBE",
            PacketType::UnsubAck => "UNSUBACK",
            PacketType::PingReq => "PINGREQ",
            PacketType::PingResp => "PINGRESP",
            PacketType::Disconnect => "DISCONNECT",
        }
    }

    /// The flags MQTT 3.1.1 requires for this type, or `None` for PUBLISH whose flags carry
    /// DUP, QoS and RETAIN.
    const fn required_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FixedHeader {
    pub(super) packet_type: PacketType,
    /// The low four bits of the first byte.
    pub(super) flags: u8,
    /// Bytes taken by the fixed header itself (2 to 5).
    pub(super) header_len: usize,
    /// The remaining length: bytes of the body that follow the fixed header.
    pub(super) remaining_len: usize,
}

impl FixedHeader {
    /// Parses the fixed header at the start of `buf`.
    ///
    /// `Ok(None)` while the header itself is incomplete. The packet type, the flags and the
    /// declared size are all checked here, before the caller waits for (and buffers) the body.
    pub(super) fn parse(buf: &[u8], max_packet_size: usize) -> Result<Option<Self>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let nibble = first >> 4;
        let flags = first & 0x0F;
        let packet_type =
            PacketType::from_nibble(nibble).ok_or(DecodeError::InvalidPacketType(nibble))?;
        if let Some(required) = packet_type.required_flags()
            && flags != required
        {
            return Err(DecodeError::ReservedFlags { packet: packet_type, flags });
        }
        let mut remaining_len = 0usize;
        for (index, &byte) in buf.iter().skip(1).take(4).enumerate() {
            remaining_len |= usize::from(byte & 0x7F) << (7 * index);
            if byte & 0x80 == 0 {
                let header =
                    FixedHeader { packet_type, flags, header_len: index + 2, remaining_len };
                if header.frame_len() > max_packet_size {
                    return Err(DecodeError::PacketTooLarge {
                        size: header.frame_len(),
                        max: max_packet_size,
                    });
                }
                return Ok(Some(header));
            }
        }
        if buf.len() >= 5 {
            // Four bytes read and the last still had its continuation bit set.
            return Err(DecodeError::MalformedRemainingLength);
        }
        Ok(None)
    }

    /// Size of the whole packet: header plus body.
    pub(super) const fn frame_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// The number of bytes the remaining-length field takes for `remaining_len`.
const fn varint_len(remaining_len: usize) -> usize {
    match remaining_len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Size of a whole packet whose body is `body_len` bytes long.
pub(super) fn frame_len(body_len: usize) -> Result<usize, EncodeError> {
    if body_len > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge {
            size: body_len + 5,
            max: MAX_REMAINING_LENGTH + 5,
        });
    }
    Ok(1 + varint_len(body_len) + body_len)
}

/// Writes a fixed header. The caller has checked `body_len` with [`frame_len`].
pub(super) fn write<B: BufMut>(out: &mut B, packet_type: PacketType, flags: u8, body_len: usize) {
    out.put_u8(((packet_type as u8) << 4) | (flags & 0x0F));
    let mut value = body_len;
    loop {
        // Truncation to the low seven bits is the point of the encoding.
        #[allow(clippy::cast_possible_truncation)]
        let mut byte = (value & 0x7F) as u8;
        value >>= 7;
        if value > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if value == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const BIG: usize = usize::MAX;

    fn encode_len(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, PacketType::Publish, 0, len);
        out.remove(0);
        out
    }

    #[test]
    fn remaining_length_boundaries_round_trip() {
        // The boundary values of MQTT 3.1.1 table 2.4.
        for (len, bytes) in [
            (0, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            assert_eq!(encode_len(len), bytes, "encoding {len}");
            let mut frame = alloc::vec![0x30];
            frame.extend_from_slice(bytes);
            let header = FixedHeader::parse(&frame, BIG).unwrap().unwrap();
            assert_eq!(header.remaining_len, len);
            assert_eq!(header.header_len, 1 + bytes.len());
            assert_eq!(frame_len(len), Ok(1 + bytes.len() + len));
        }
    }

    #[test]
    fn a_fifth_length_byte_is_malformed() {
        let frame = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
        assert_eq!(FixedHeader::parse(&frame, BIG), Err(DecodeError::MalformedRemainingLength));
    }

    #[test]
    fn an_unfinished_length_is_incomplete() {
        assert_eq!(FixedHeader::parse(&[0x30, 0xFF, 0xFF], BIG), Ok(None));
        assert_eq!(FixedHeader::parse(&[0x30], BIG), Ok(None));
    }

    #[test]
    fn a_declared_size_over_the_maximum_is_refused_before_the_body_arrives() {
        // PUBLISH declaring 200 bytes of body; only the header is here.
        let frame = [0x30, 0xC8, 0x01];
        assert_eq!(
            FixedHeader::parse(&frame, 100),
            Err(DecodeError::PacketTooLarge { size: 203, max: 100 })
        );
    }

    #[test]
    fn reserved_packet_types_are_refused() {
        assert_eq!(FixedHeader::parse(&[0x00, 0x00], BIG), Err(DecodeError::InvalidPacketType(0)));
        assert_eq!(FixedHeader::parse(&[0xF0, 0x00], BIG), Err(DecodeError::InvalidPacketType(15)));
    }

    #[test]
    fn reserved_flag_bits_are_refused() {
        // PUBACK with flags 0b0001.
        assert_eq!(
            FixedHeader::parse(&[0x41, 0x02], BIG),
            Err(DecodeError::ReservedFlags { packet: PacketType::PubAck, flags: 1 })
        );
        // SUBSCRIBE must carry 0b0010; 0b0000 is refused.
        assert_eq!(
            FixedHeader::parse(&[0x80, 0x02], BIG),
            Err(DecodeError::ReservedFlags { packet: PacketType::Subscribe, flags: 0 })
        );
    }

    #[test]
    fn oversize_body_cannot_be_encoded() {
        assert!(frame_len(MAX_REMAINING_LENGTH + 1).is_err());
    }
}
