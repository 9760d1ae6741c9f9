//! UNSUBSCRIBE: the client removes subscriptions (MQTT 3.1.1 §3.10).

use super::error::{DecodeError, EncodeError};
use super::wire::{Reader, prefixed_len, put_prefixed, require_filters};
use super::{PacketId, PacketType, ProtocolVersion};
use crate::topic::TopicFilter;
use alloc::vec::Vec;
use bytes::BufMut;

/// An UNSUBSCRIBE packet. Build it with [`Unsubscribe::new`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The packet id the UNSUBACK will carry.
    pub packet_id: PacketId,
    /// The filters to remove, exactly as they were subscribed; never empty on the wire.
    pub filters: Vec<TopicFilter>,
}

pub(super) fn decode(
    version: ProtocolVersion,
    reader: &mut Reader,
) -> Result<Unsubscribe, DecodeError> {
    // MQTT 5: properties follow the packet id.
    let ProtocolVersion::V311 = version;
    let packet_id = reader.packet_id()?;
    let mut filters = Vec::new();
    while reader.has_remaining() {
        let filter = TopicFilter::new(reader.string()?)
            .map_err(|source| DecodeError::InvalidTopic { packet: reader.packet(), source })?;
        filters.push(filter);
    }
    if filters.is_empty() {
        return Err(DecodeError::EmptyUnsubscribe);
    }
    Ok(Unsubscribe { packet_id, filters })
}

impl Unsubscribe {
    /// An UNSUBSCRIBE from `filters` with `packet_id`, or [`EncodeError::NoTopicFilters`]
    /// when `filters` is empty (MQTT requires at least one).
    pub fn new(packet_id: PacketId, filters: Vec<TopicFilter>) -> Result<Self, EncodeError> {
        require_filters(PacketType::Unsubscribe, &filters)?;
        Ok(Unsubscribe { packet_id, filters })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let ProtocolVersion::V311 = version;
        require_filters(PacketType::Unsubscribe, &self.filters)?;
        self.filters.iter().try_fold(2, |len, filter| {
            Ok(len + prefixed_len("topic filter", filter.as_str().len())?)
        })
    }

    pub(super) fn encode_body<B: BufMut>(&self, version: ProtocolVersion, out: &mut B) {
        let ProtocolVersion::V311 = version;
        out.put_u16(self.packet_id.get());
        for filter in &self.filters {
            put_prefixed(out, filter.as_str().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_wire, decode_all};
    use super::super::{Codec, Packet};
    use super::*;
    use alloc::vec;

    #[test]
    fn unsubscribe_two_filters() {
        assert_wire(
            &Packet::Unsubscribe(
                Unsubscribe::new(
                    PacketId::new(0x0A0B).unwrap(),
                    vec![TopicFilter::new("a").unwrap(), TopicFilter::new("b/#").unwrap()],
                )
                .unwrap(),
            ),
            &[
                0xA2, // UNSUBSCRIBE, reserved flags 0b0010
                0x0A, // remaining length 10
                0x0A, 0x0B, // packet id
                0x00, 0x01, b'a', // "a"
                0x00, 0x03, b'b', b'/', b'#', // "b/#"
            ],
        );
    }

    #[test]
    fn empty_unsubscribe() {
        assert_eq!(decode_all(&[0xA2, 0x02, 0x00, 0x01]), Err(DecodeError::EmptyUnsubscribe));
        assert_eq!(
            Unsubscribe::new(PacketId::MIN, vec![]),
            Err(EncodeError::NoTopicFilters(PacketType::Unsubscribe))
        );
        let mut unsubscribe =
            Unsubscribe::new(PacketId::MIN, vec![TopicFilter::new("a").unwrap()]).unwrap();
        unsubscribe.filters.clear();
        let packet = Packet::Unsubscribe(unsubscribe);
        assert_eq!(
            Codec::default().encode(&packet, &mut alloc::vec::Vec::new()),
            Err(EncodeError::NoTopicFilters(PacketType::Unsubscribe))
        );
    }

    #[test]
    fn wrong_flags() {
        assert_eq!(
            decode_all(&[0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, b'a']),
            Err(DecodeError::ReservedFlags { packet: PacketType::Unsubscribe, flags: 0 })
        );
    }

    #[test]
    fn invalid_utf8_filter() {
        assert_eq!(
            decode_all(&[0xA2, 0x05, 0x00, 0x01, 0x00, 0x01, 0xFF]),
            Err(DecodeError::InvalidUtf8 { packet: PacketType::Unsubscribe })
        );
    }
}
